"""`bedrock-rules snapshot USAGE_DIR`: stored bills beside usage documents, for CI without Python tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bedrock_rules.cli import main
from bedrock_rules.resources import bundled_rules
from conftest import FOLDER_PROBLEMS, ROOT, SEED_DAY, run_cli

USAGE_DIR = ROOT / "tests" / "snapshot"
CLAUDE_21 = "| claude-2.1        | 0.008                 | 0.024                  |"


@pytest.fixture
def work(in_tmp) -> Path:
    """A repository: a copy of the shipped rules in rules/, usage documents in usage/, no stored bills yet."""
    shutil.copytree(bundled_rules(), in_tmp / "rules")
    shutil.copytree(USAGE_DIR, in_tmp / "usage")
    return in_tmp


def snapshot(*args: str):
    return run_cli("snapshot", "usage", "--rules", "rules", *args)


def bills(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work / "usage").glob("*.bill.json"))}


def raise_claude_21_input_rate(work: Path) -> None:
    path = work / "rules" / "anthropic.rules"
    text = path.read_text(encoding="utf-8")
    assert text.count(CLAUDE_21) == 1
    path.write_text(text.replace(CLAUDE_21, CLAUDE_21.replace("0.008 ", "0.0085")), encoding="utf-8")


def test_new_documents_are_reported_not_written_until_update(work):
    run = snapshot()
    assert (run.code, run.err) == (1, "")
    assert run.out == (
        "new      usage/chat.json: no stored bill usage/chat.bill.json\n"
        "new      usage/monthly.yaml: no stored bill usage/monthly.bill.json\n"
        "usage: 2 documents; 0 matched, 2 new\n"
        "to accept the bills as they are now: bedrock-rules snapshot usage --rules rules --update\n"
    )
    assert bills(work) == {}

    run = snapshot("--update")
    assert (run.code, run.err) == (0, "")
    assert run.out == "wrote    usage/chat.bill.json\nwrote    usage/monthly.bill.json\nusage: 2 documents; 0 matched, 2 written\n"
    assert list(bills(work)) == ["chat.bill.json", "monthly.bill.json"]

    run = snapshot()
    assert (run.code, run.out, run.err) == (0, "usage: 2 documents; 2 matched\n", "")


def test_a_stored_bill_is_the_eval_json_byte_for_byte_and_the_same_every_run(work):
    assert snapshot("--update").code == 0
    first = bills(work)
    for name in ("chat.json", "monthly.yaml"):
        run = run_cli("eval", "--at", SEED_DAY, f"usage/{name}", "--rules", "rules", "--format", "json")
        assert run.code == 0
        assert first[name.rsplit(".", 1)[0] + ".bill.json"] == run.out.encode("utf-8")
    assert b"\r" not in first["chat.bill.json"]
    assert "assistant de café".encode() in first["chat.bill.json"]  # UTF-8, not \u escapes

    for stored in (work / "usage").glob("*.bill.json"):
        stored.unlink()
    assert snapshot("--update").code == 0
    assert bills(work) == first


def test_a_changed_price_is_shown_charge_by_charge_then_accepted(work, text_snapshot):
    assert snapshot("--update").code == 0
    before = bills(work)
    raise_claude_21_input_rate(work)

    run = snapshot()
    assert run.code == 1
    claude = "text/input_tokens[region in us-east-1, us-west-2; model = claude-2.1; from 2024-07-01]"
    assert f"  item 1 (nightly summaries) input_tokens: 0.088 -> 0.0935 ({claude})\n      rate: 0.008 -> 0.0085\n" in run.out
    assert f"  item 1 (assistant de café) input_tokens: 2 -> 2.125 ({claude})\n" in run.out
    assert '  -          "amount": "0.088",\n  +          "amount": "0.0935",\n' in run.out
    assert "usage: 2 documents; 0 matched, 2 changed\n" in run.out
    assert run.transcript() == text_snapshot
    assert bills(work) == before, "without --update nothing is written"

    run = snapshot("--update")
    assert (run.code, run.err) == (0, "")
    assert run.out == "updated  usage/chat.bill.json\nupdated  usage/monthly.bill.json\nusage: 2 documents; 0 matched, 2 updated\n"
    assert b'"amount": "0.0935"' in bills(work)["monthly.bill.json"]
    assert snapshot().code == 0


def test_a_deleted_document_leaves_an_orphan_that_update_removes(work):
    assert snapshot("--update").code == 0
    (work / "usage" / "chat.json").unlink()

    run = snapshot()
    assert run.code == 1
    assert run.out == (
        "orphan   usage/chat.bill.json: no usage document chat.json, .yaml or .yml\n"
        "usage: 1 document; 1 matched, 1 orphaned\n"
        "to accept the bills as they are now: bedrock-rules snapshot usage --rules rules --update\n"
    )
    assert "chat.bill.json" in bills(work)

    run = snapshot("--update")
    assert (run.code, run.out) == (0, "removed  usage/chat.bill.json\nusage: 1 document; 1 matched, 1 removed\n")
    assert list(bills(work)) == ["monthly.bill.json"]


def test_a_stored_bill_that_is_not_json_is_a_change_with_its_text_diff(work):
    assert snapshot("--update").code == 0
    (work / "usage" / "chat.bill.json").write_text("edited by hand\n", encoding="utf-8")
    run = snapshot()
    assert run.code == 1
    assert "changed  usage/chat.bill.json\n  the stored bill is not a bill in JSON; see the text diff\n" in run.out
    assert "  -edited by hand\n  +{\n" in run.out


@pytest.mark.parametrize("update", [False, True], ids=["check", "update"])
def test_unreadable_or_refused_documents_are_refused_and_nothing_is_written(work, update):
    (work / "usage" / "broken.yaml").write_text("usage:\n  - kind: text\n    input_tokens: [1\n", encoding="utf-8")
    shutil.copy(ROOT / "tests" / "diff" / "opus-east.yaml", work / "usage")
    run = snapshot(*(["--update"] if update else []))
    assert run.code == 2
    assert run.out == ""
    assert run.err == (
        "usage refused: 2 problems, nothing was priced\n"
        "  usage/broken.yaml: error[BU002]: not valid YAML: expected ',' or ']', but got '<stream end>' at line 4, column 1\n"
        "  usage/opus-east.yaml, item 1 (opus east): error[BU201]: Claude 3 Opus is offered only in us-west-2 "
        "(rules/anthropic.rules:46)\n"
    )
    assert bills(work) == {}


def test_rules_that_cannot_be_loaded_are_refused(work):
    path = work / "rules" / "anthropic.rules"
    path.write_text(path.read_text(encoding="utf-8").replace("offer claude-3-opus only", "offer claude-3-opuss only"), encoding="utf-8")
    run = snapshot("--update")
    assert run.code == 2
    assert "error[BR200]: unknown model `claude-3-opuss`" in run.err
    assert bills(work) == {}


@FOLDER_PROBLEMS
def test_a_folder_with_nothing_to_snapshot_or_a_clash_is_refused(work, setup, message):
    setup(work)
    run = snapshot("--update")
    assert (run.code, run.out, run.err) == (2, "", f"usage refused: 1 problem, nothing was priced\n  {message}\n")


def test_the_help_says_what_each_exit_status_means(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["snapshot", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for line in ("exit status:", "  0  every bill matches", "  1  a bill changed", "  2  unreadable input", "one the rules refuse"):
        assert line in text


def test_a_moved_rule_changes_no_bill_and_an_edited_document_is_named(work):
    assert snapshot("--update").code == 0
    rules = work / "rules" / "anthropic.rules"
    rules.write_text("# a comment moves every rule down a line\n" + rules.read_text(encoding="utf-8"), encoding="utf-8")
    chat = work / "usage" / "chat.json"
    chat.write_text(
        '{"usage": [{"at": "2024-07-15", "name": "assistant de café", "kind": "text", "model": "claude-2.1", "region": "us-east-1", '
        '"input_tokens": 250000, "output_tokens": 80000}, {"kind": "agent"}]}\n',
        encoding="utf-8",
    )
    run = snapshot()
    assert run.code == 1
    lines = run.out.splitlines()
    start = lines.index("changed  usage/chat.bill.json") + 1
    assert lines[start : lines.index("  --- usage/chat.bill.json", start)] == [
        "  item 2 (triage): item gone (was 1.68, text)",
        "  item 2: new item, 0 (agent)",
        "  total: 5.6 -> 3.92 USD (-1.68)",
    ]
    # Bills name rules by their ids, so the moved rule changes no stored bill.
    assert "usage: 2 documents; 1 matched, 1 changed" in lines and "monthly" not in run.out


def test_a_stored_bill_that_cannot_be_read_or_written_is_refused(tmp_path, monkeypatch):
    import shutil

    from conftest import ROOT as root

    folder = tmp_path / "usage"
    folder.mkdir()
    shutil.copy(root / "examples" / "monthly.yaml", folder / "monthly.yaml")
    (folder / "monthly.bill.json").mkdir()  # in the way of the bill
    monkeypatch.chdir(tmp_path)
    for args in (("snapshot", "usage"), ("snapshot", "usage", "--update")):
        run = run_cli(*args)
        assert run.code == 2
        assert run.err.endswith("usage/monthly.bill.json: error[BU001]: not a regular file; only files are read and written\n")
        assert "Traceback" not in run.err


def test_a_file_given_for_the_folder_is_named_as_a_file(in_tmp):
    (in_tmp / "usage.yaml").write_text("usage: []\n", encoding="utf-8")
    run = run_cli("snapshot", "usage.yaml")
    assert (run.code, run.out) == (2, "")
    assert run.err.endswith("usage.yaml: error[BU001]: is a file: snapshot takes a folder of usage documents\n")
