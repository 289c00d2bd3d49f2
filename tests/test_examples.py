"""The worked examples written in the rule files reproduce to the exact decimal."""

from __future__ import annotations

import json

import pytest

import bedrock_rules
from bedrock_rules.bill import decimal_text
from bedrock_rules.examples import document
from conftest import run_cli

EXAMPLES = bedrock_rules.load().examples


def _id(example) -> str:
    return example.title.split(":")[0].replace(" ", "-").replace(".", "").lower()[:60]


def test_every_source_example_is_written_in_the_rules():
    numbers = {e.title.split(".")[0] for e in EXAMPLES}
    assert {str(n) for n in range(1, 27)} <= numbers


@pytest.mark.parametrize("example", EXAMPLES, ids=[_id(e) for e in EXAMPLES])
def test_example_total_through_the_cli(example, tmp_path, json_snapshot):
    usage = tmp_path / "usage.json"
    usage.write_text(json.dumps(document(example)), encoding="utf-8")
    run = run_cli("eval", str(usage), "--format", "json")
    assert run.code == 0, run.err
    bill = json.loads(run.out)
    assert bill["total"] == decimal_text(example.expect)
    assert run.out == json_snapshot


def test_the_test_command_passes_every_example():
    run = run_cli("test")
    assert run.code == 0
    assert run.out.endswith(f"{len(EXAMPLES)} passed, 0 failed\n")


def test_examples_exercise_every_price_rule():
    run = run_cli("test", "--coverage", "--min-coverage", "100")
    assert run.code == 0, run.out
    assert "NOT COVERED" not in run.out
    assert "(100.0%)" in run.out


TINY = "currency USD\nregion r-1\nkind text\n  region: region\n  input_tokens: count = 0 unit tokens\nend\n"


def _tiny_rules(tmp_path, rest: str) -> str:
    """A one-file ruleset: a `text` kind with one count, then `rest`."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "tiny.rules").write_text(TINY + rest, encoding="utf-8")
    return str(rules)


def test_min_coverage_fails_below_the_bar(tmp_path):
    rules = _tiny_rules(
        tmp_path, "prices text in r-1\n| input_tokens per 1000 |\n| 0.5 |\nprices text in any\n| input_tokens per 1 |\n| 2 |\n"
    )
    run = run_cli("test", rules, "--coverage", "--min-coverage", "50")
    assert run.code == 1
    assert "coverage: 0 of 2 price rules exercised by examples (0.0%)" in run.out
    assert "coverage 0.0% is below the minimum of 50%" in run.out


def test_a_wrong_expectation_fails_with_the_charges(tmp_path):
    rules = _tiny_rules(
        tmp_path,
        "prices text in any\n| input_tokens per 1000 |\n| 0.5 |\n"
        'example "two thousand tokens" expect 2\n  item text\n    region: r-1\n    input_tokens: 2000\nend\n',
    )
    run = run_cli("test", rules)
    assert run.code == 1
    assert "expected 2, got 1" in run.out
    assert "input_tokens = 1" in run.out
    assert run.out.endswith("0 passed, 1 failed\n")


def test_coverage_counts_a_row_only_for_a_nonzero_quantity(tmp_path):
    # The example gives input tokens only: its bill has an output line for 0 tokens,
    # which says nothing about the output rate, so that rate is not covered.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.rules").write_text(
        "currency USD\nregion r-1\nkind text\n  region: region\n  input_tokens: count = 0 unit tokens\n"
        "  output_tokens: count = 0 unit tokens\nend\n"
        "prices text in any\n| input_tokens per 1000 | output_tokens per 1000 |\n| 0.5 | 1.5 |\n"
        'example "input only" expect 1\n  item text\n    region: r-1\n    input_tokens: 2000\nend\n',
        encoding="utf-8",
    )
    run = run_cli("test", str(rules), "--coverage", "--min-coverage", "100")
    assert run.code == 1, run.out
    assert "NOT COVERED  " in run.out and "text/output_tokens" in run.out
    assert "text/input_tokens" not in run.out
    assert "coverage: 1 of 2 price rules exercised by examples (50.0%)" in run.out
