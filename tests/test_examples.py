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
