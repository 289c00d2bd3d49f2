"""Parsed rule files are cached per user, and a cache entry never changes a result.

The cache (bedrock_rules/parsecache.py) is a private folder under $XDG_CACHE_HOME; an
entry is used only when the folder and the file are the user's own and no one else
can write them, and its checksum and key match. Each test gets a fresh cache folder.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict

import pytest

import bedrock_rules
from bedrock_rules import loader, parsecache, parser
from bedrock_rules.bill import dump
from conftest import ROOT, SEED_DAY

DOCUMENT = {"usage": [{"kind": "text", "model": "anthropic.claude-v2:1", "region": "us-west-2",
                       "input_tokens": 11000, "output_tokens": 4000}]}


@pytest.fixture
def rules_folder(tmp_path, monkeypatch):
    """A copy of two bundled rule files, the shared declarations and Anthropic's prices (a
    ruleset that loads, not prebuilt, so its files are parsed), and a fresh cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BEDROCK_RULES_CACHE", raising=False)
    # Programs compiled in this process are kept by their texts (loader.py): none is kept
    # here, so every load reads the parse cache, the subject of these tests.
    monkeypatch.setattr(loader, "_COMPILED_KEPT", 0)
    monkeypatch.setattr(loader, "_compiled", OrderedDict())
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in (ROOT / "rulesets" / "bedrock" / name for name in ("shared.rules", "anthropic.rules")):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture
def parses(monkeypatch):
    """Counts the rule files actually parsed."""
    seen = []
    real = parser.parse

    def counting(text, path):
        seen.append(path)
        return real(text, path)

    monkeypatch.setattr(parser, "parse", counting)
    return seen


def cache_files(tmp_path):
    return sorted((tmp_path / "cache" / "bedrock-rules" / "parsed").glob("*.parsed"))


def test_the_second_load_reads_the_cache_and_bills_the_same(rules_folder, parses, tmp_path):
    first = dump(bedrock_rules.load(rules_folder).evaluate(DOCUMENT, at=SEED_DAY))
    files = len(list(rules_folder.glob("*.rules")))
    assert len(parses) == files
    assert len(cache_files(tmp_path)) == files
    parses.clear()
    assert dump(bedrock_rules.load(rules_folder).evaluate(DOCUMENT, at=SEED_DAY)) == first
    assert parses == []


def test_the_cache_folder_is_private(rules_folder, tmp_path):
    bedrock_rules.load(rules_folder)
    folder = tmp_path / "cache" / "bedrock-rules" / "parsed"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for entry in cache_files(tmp_path):
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_an_edited_file_is_parsed_again(rules_folder, parses):
    bedrock_rules.load(rules_folder)
    parses.clear()
    target = sorted(rules_folder.glob("*.rules"))[0]
    target.write_text(target.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    bedrock_rules.load(rules_folder)
    assert [p.rsplit("/", 1)[-1] for p in parses] == [target.name]


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate", "empty", "other-key"])
def test_a_corrupt_entry_is_ignored(rules_folder, parses, tmp_path, damage):
    first = dump(bedrock_rules.load(rules_folder).evaluate(DOCUMENT, at=SEED_DAY))
    entries = cache_files(tmp_path)
    originals = [entry.read_bytes() for entry in entries]
    for number, entry in enumerate(entries):
        data = originals[number]
        if damage == "flip-a-byte":
            data = data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:]
        elif damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = b""
        else:  # a valid entry of another file under this file's name
            data = originals[(number + 1) % len(entries)]
        entry.write_bytes(data)
    parses.clear()
    assert dump(bedrock_rules.load(rules_folder).evaluate(DOCUMENT, at=SEED_DAY)) == first
    assert len(parses) == len(entries)


def test_a_folder_others_can_write_is_not_trusted(rules_folder, parses, tmp_path):
    bedrock_rules.load(rules_folder)
    folder = tmp_path / "cache" / "bedrock-rules" / "parsed"
    os.chmod(folder, 0o777)
    parses.clear()
    bedrock_rules.load(rules_folder)
    assert len(parses) == len(list(rules_folder.glob("*.rules")))


def test_an_entry_others_can_write_is_not_trusted(rules_folder, parses, tmp_path):
    bedrock_rules.load(rules_folder)
    for entry in cache_files(tmp_path):
        os.chmod(entry, 0o666)
    parses.clear()
    bedrock_rules.load(rules_folder)
    assert len(parses) == len(list(rules_folder.glob("*.rules")))


def test_a_linked_entry_is_not_followed(rules_folder, parses, tmp_path):
    bedrock_rules.load(rules_folder)
    entries = cache_files(tmp_path)
    for entry in entries:
        target = entry.with_suffix(".elsewhere")
        entry.rename(target)
        entry.symlink_to(target)
    parses.clear()
    bedrock_rules.load(rules_folder)
    assert len(parses) == len(entries)


def test_the_cache_can_be_turned_off(rules_folder, parses, tmp_path, monkeypatch):
    monkeypatch.setenv("BEDROCK_RULES_CACHE", "off")
    bedrock_rules.load(rules_folder)
    bedrock_rules.load(rules_folder)
    assert len(parses) == 2 * len(list(rules_folder.glob("*.rules")))
    assert cache_files(tmp_path) == []


def test_a_file_with_errors_is_never_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "bad.rules").write_text("currency USD\nregion\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(bedrock_rules.RuleFileError) as caught:
            bedrock_rules.load(tmp_path / "bad.rules")
        assert "bad.rules:" in str(caught.value)
    assert cache_files(tmp_path) == []


def test_the_key_covers_the_name_bills_show(rules_folder):
    text = "currency USD\n"
    assert parsecache.key(text, "a.rules") != parsecache.key(text, "b.rules")
