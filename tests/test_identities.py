"""Bills for machines name rules by stable ids: a comment or a moved file changes none of them.

Every output meant for machines or for storing (the JSON bill, totals as JSON and CSV,
FOCUS rows, the bills `snapshot --update` writes) is produced twice: with a copy of the
bundled ruleset, and with a copy where every file starts with a new comment line and one
file has another name. The bytes must be the same. The table, meant for people, still
cites `file:line`, and that line moves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ROOT, SEED_DAY, run_cli

CASES = sorted(p for p in (ROOT / "tests" / "cases").glob("*.yaml") if not p.stem.startswith("refused-"))
# One log priced whole; two whose unpriced records are refused by rules (an offer, a table
# cell, a guard), so their reasons cite rules: by `file:line` for people, by id for machines.
LOGS = [ROOT / "tests" / "logs" / name for name in ("priced.jsonl.gz", "mixed.jsonl", "guarded.jsonl")]


@pytest.fixture
def two_rulesets(in_tmp: Path) -> tuple[str, str]:
    """`same`: the bundled rules; `moved`: the same rules, every line one further down, a file renamed."""
    shutil.copytree(ROOT / "rulesets" / "bedrock", in_tmp / "same")
    shutil.copytree(ROOT / "rulesets" / "bedrock", in_tmp / "moved")
    for path in sorted((in_tmp / "moved").glob("*.rules")):
        path.write_text("# a comment that moves every line below it\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    (in_tmp / "moved" / "cohere.rules").rename(in_tmp / "moved" / "zz-cohere-moved.rules")
    return "same", "moved"


def _both(rulesets: tuple[str, str], *args: str) -> tuple[str, str]:
    outputs = []
    for rules in rulesets:
        run = run_cli(*args, "--rules", rules)
        assert run.code in (0, 3), run.err
        outputs.append(run.out)
    return outputs[0], outputs[1]


def test_the_table_still_cites_the_line_which_moves(two_rulesets):
    same, moved = _both(two_rulesets, "eval", str(ROOT / "examples" / "monthly.yaml"))
    assert "same/anthropic.rules:77" in same
    assert "moved/anthropic.rules:78" in moved and "moved/zz-cohere-moved.rules:36" in moved


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_bills_of_every_priced_case_are_unchanged(two_rulesets, fmt):
    args = ["eval", *(str(case) for case in CASES), "--format", fmt, "--at", SEED_DAY]  # the seed's cases are undated
    if fmt == "csv":
        args += ["--group-by", "kind,model"]
    same, moved = _both(two_rulesets, *args)
    assert '"id": "text/input_tokens[' in same or "text/input_tokens[" in same
    assert same == moved


@pytest.mark.parametrize("log", LOGS, ids=lambda path: path.name)
@pytest.mark.parametrize("fmt", ["json", "csv", "focus"])
def test_invocation_log_totals_are_unchanged(two_rulesets, fmt, log):
    args = ["eval", "--input", "invocation-log", str(log), "--format", fmt]
    args += ["--billing-account", "111122223333"] if fmt == "focus" else ["--group-by", "model,region"]
    same, moved = _both(two_rulesets, *args)
    assert same and same == moved
    if fmt == "json" and log.name != "priced.jsonl.gz":
        assert "/refuse[" in same or "/cache_read_tokens" in same  # its reasons cite rules, by id
        assert ".rules:" not in same


def test_the_table_of_log_totals_cites_the_rules_refusing_by_line(two_rulesets):
    same, moved = _both(two_rulesets, "eval", "--input", "invocation-log", str(LOGS[1]))
    assert "(same/anthropic.rules:" in same and "(moved/anthropic.rules:" in moved


def test_focus_rows_of_a_usage_document_are_unchanged(two_rulesets):
    args = ["eval", str(ROOT / "examples" / "monthly.yaml"), "--format", "focus", "--period", "2024-07",
            "--billing-account", "111122223333"]
    same, moved = _both(two_rulesets, *args)
    assert "SkuPriceId" in same and same == moved


def test_stored_snapshots_still_match(two_rulesets, in_tmp):
    shutil.copytree(ROOT / "tests" / "snapshot", in_tmp / "usage")
    same, moved = two_rulesets
    assert run_cli("snapshot", "usage", "--rules", same, "--update").code == 0
    stored = {p.name: p.read_bytes() for p in (in_tmp / "usage").glob("*.bill.json")}
    assert stored
    run = run_cli("snapshot", "usage", "--rules", moved)
    assert (run.code, run.out) == (0, f"usage: {len(stored)} documents; {len(stored)} matched\n")
