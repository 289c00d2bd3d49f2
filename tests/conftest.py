"""Shared fixtures: the bundled ruleset, an in-process CLI runner, text snapshots."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import attrs
import jsonschema
import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

import bedrock_rules
from bedrock_rules.cli import main

ROOT = Path(__file__).resolve().parent.parent

# The bundled list prices by date: usage written for the seed's (mid-2024) prices is
# priced on a day of them, with `--at SEED_DAY` or `at=SEED_DAY`.
SEED_DAY = "2024-07-15"

# Parsed rule files are cached per user (bedrock_rules/parsecache.py): the tests keep
# theirs in a private folder of their own, so no run sees another's entries.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="bedrock-rules-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)


# Test files whose every case runs under --first-case-only: the parser's and the
# messages' own cases, what a dependency's version (lark's above all) changes first.
EVERY_CASE = frozenset({"test_language_cases.py", "test_rule_errors.py", "test_usage_errors.py", "test_messages.py"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--first-case-only", action="store_true",
        help="each parametrized test runs its first case only (but in the parser's and messages' test files): "
             "CI's run at the lowest allowed versions, where the cases' data does not change what is checked",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--first-case-only"):
        return
    seen: set[tuple[str, str]] = set()
    kept, dropped = [], []
    for item in items:
        key = (str(item.path), getattr(item, "originalname", item.name))
        if key in seen and item.path.name not in EVERY_CASE:
            dropped.append(item)
        else:
            seen.add(key)
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@attrs.frozen
class Run:
    """A command's exit status and output. Every command that reads rules first says on stderr
    which ruleset it used (`ruleset: DIR (how)`); that line is kept apart in `ruleset`, so the
    tests of messages read `err` as the rest and tests/test_config.py checks the line itself."""

    code: int
    out: str
    err: str
    ruleset: str = ""

    def transcript(self) -> str:
        """What a user sees (but the ruleset line), as one text for snapshots."""
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


RULESET_LINE = "ruleset: "


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "bedrock_rules" / "schemas" / f"{name}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validate_json(text: str) -> dict:
    """A JSON output checked against the schema it names (`"schema": "bedrock-rules/NAME/1"`)."""
    data = json.loads(text)
    assert isinstance(data, dict) and isinstance(data.get("schema"), str), "a JSON output names its schema"
    prefix, name, _version = data["schema"].split("/")  # the schema's own `const` checks the version
    assert prefix == "bedrock-rules"
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(name).iter_errors(data)]
    assert not errors, "\n".join(errors)
    return data


def log_path_cases(groupings: tuple[str | None, ...], formats: tuple[str, ...]) -> list:
    """(group_by, container, format) cases for comparing two ways of pricing a log: every
    grouping in both containers, the formats in turn (each renders the same totals), not
    every combination. The first and the last run everywhere; the others are marked slow
    (they run once in CI)."""
    pairs = [(group_by, container) for group_by in groupings for container in ("plain", "gz")]
    shift = len(formats) % 2 == 0  # with an even number of formats, both containers meet each
    cases = [(*pair, formats[(index + (index // 2 if shift else 0)) % len(formats)]) for index, pair in enumerate(pairs)]
    return [
        pytest.param(*case, marks=() if index in (0, len(cases) - 1) else pytest.mark.slow)
        for index, case in enumerate(cases)
    ]


def run_cli(*args: str, stdin: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = old_stdin
    said = err.getvalue()
    # Every JSON output a test produces is checked against the schema shipped in the package.
    formats = [b for a, b in zip(args, args[1:], strict=False) if a == "--format"]
    if args and (out.getvalue().startswith("{") or (formats == ["json"] and out.getvalue())):
        validate_json(out.getvalue())
    ruleset = ""
    if said.startswith(RULESET_LINE):
        ruleset, _, said = said.partition("\n")
    return Run(code, out.getvalue(), said, ruleset)


class TextSnapshot(SingleFileSnapshotExtension):
    """One readable text file per snapshot."""

    _write_mode = WriteMode.TEXT
    file_extension = "txt"

    def serialize(self, data, **kwargs):
        return str(data)


class JSONSnapshot(TextSnapshot):
    file_extension = "json"


FOLDER_PROBLEMS = pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda path: shutil.rmtree(path / "usage"), "usage: error[BU001]: no such folder of usage documents"),
        (
            lambda path: [p.unlink() for p in (path / "usage").iterdir()],
            "usage: error[BU001]: no usage documents (*.json, *.yaml, *.yml) in this folder",
        ),
        (
            lambda path: shutil.copy(path / "usage" / "monthly.yaml", path / "usage" / "monthly.json"),
            "usage: error[BU001]: monthly.json and monthly.yaml would share one bill (monthly.bill.json); rename one",
        ),
    ],
    ids=["missing-folder", "empty-folder", "same-stem"],
)
"""A folder of usage documents that would test nothing, or whose bills would clash: `setup(path)`
breaks `path/usage` (holding monthly.yaml), `message` is what the plugin and `snapshot` say."""


@pytest.fixture(scope="session")
def rules() -> bedrock_rules.Ruleset:
    return bedrock_rules.load()


@pytest.fixture
def text_snapshot(snapshot):
    return snapshot.use_extension(TextSnapshot)


@pytest.fixture
def json_snapshot(snapshot):
    return snapshot.use_extension(JSONSnapshot)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so paths in messages do not depend on the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
