"""Exact integers and exact sums: no rounding context may make a quantity or a total short.

`ceil()` and `floor()` take the integer part of an exact value, however many digits the
product has; summed quantities are exact past Python's 28 digits; a sum of exact charges
that needs more digits than exact arithmetic holds is refused (BU204) on every path, the
usage document's, `Ruleset.totals` and the invocation log's, never an internal error.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

import pytest

import bedrock_rules
from bedrock_rules.errors import UsageError
from conftest import ROOT, SEED_DAY, run_cli

HEADER = "currency USD\nregion r1\nprovider p\n  model a\nend\n"
# 1 + 10^-125: times a 40-digit count, 165 significant digits; a 120-digit context drops the tail
TINY_STEP = "1." + "0" * 124 + "1"


def _rules(tmp_path, derived: str, quantity: str = "units", field: str = "tokens: count"):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "main.rules").write_text(
        HEADER + f"kind job\n  model: model\n  region: region\n  {field}\n  {derived}\nend\n"
        f"prices job in r1\n| model | {quantity} per 1 |\n|-------|-----------|\n| a     | 1         |\n",
        encoding="utf-8",
    )
    return bedrock_rules.load(folder)


def _charge(rules, **fields):
    bill = rules.evaluate({"usage": [{"kind": "job", "model": "a", "region": "r1", **fields}]})
    (item,) = bill.items
    (charge,) = item.charges
    return charge.quantity, charge.amount


@pytest.mark.parametrize(
    ("function", "tokens", "expected"),
    [
        ("ceil", 10**39 + 1, 10**39 + 2),  # (10^39 + 1)(1 + 10^-125): just above 10^39 + 1
        ("floor", 10**39 + 1, 10**39 + 1),
        ("ceil", 9 * 10**39, 9 * 10**39 + 1),
    ],
)
def test_ceil_and_floor_of_a_huge_product_are_exact(function, tokens, expected, tmp_path):
    rules = _rules(tmp_path, f"units = {function}(tokens * {TINY_STEP})")
    quantity, amount = _charge(rules, tokens=tokens)
    assert quantity == expected
    assert amount == Decimal(expected)


def test_a_third_times_three_is_one_inside_floor(tmp_path):
    """A rounded 1/3 times 3 is 0.999…: its floor would be 0, and a nonzero quantity would vanish."""
    rules = _rules(tmp_path, "units = floor(tokens / 3 * 3)")
    assert _charge(rules, tokens=1) == (1, Decimal(1))
    assert _charge(rules, tokens=10**39 + 1) == (10**39 + 1, Decimal(10**39 + 1))


def test_ceil_of_a_quotient_that_does_not_terminate_is_still_an_integer(tmp_path):
    rules = _rules(tmp_path, "units = ceil(tokens / 7) + floor(tokens / 7)")
    assert _charge(rules, tokens=10**39) == (2 * (10**39 // 7) + 1, Decimal(2 * (10**39 // 7) + 1))


def test_summed_decimal_quantities_are_exact_past_28_digits(tmp_path):
    """Python's default context keeps 28 digits: 10^20 + 10^-9 would lose the 10^-9."""
    rules = _rules(tmp_path, "units = hours", field="hours: decimal")
    items = [{"kind": "job", "model": "a", "region": "r1", "hours": h} for h in (10**20, Decimal("0.000000001"))]
    totals = rules.totals(items)
    (line,) = totals.lines
    assert line.quantity == Decimal("100000000000000000000.000000001")
    assert totals.total == Decimal("100000000000000000000.000000001")
    assert totals.total == rules.evaluate({"usage": items}).total


# A sum past exact arithmetic's 120 digits: claude-2.1's input rate set to 10^-118 (exact
# per record), its output rate 0.024 per 1000 on 10^39 tokens: the total spans 155 digits.


@pytest.fixture
def far_apart(tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    shutil.copytree(ROOT / "rulesets" / "bedrock", folder)
    text = (folder / "anthropic.rules").read_text(encoding="utf-8")
    row = "| claude-2.1        | 0.008                 |"
    assert row in text
    (folder / "anthropic.rules").write_text(text.replace(row, f"| claude-2.1        | 0.{'0' * 117}1 |", 1), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return folder


def _record() -> dict:
    return json.loads((ROOT / "tests" / "logs" / "mixed.jsonl").read_text(encoding="utf-8").splitlines()[0])


def test_a_sum_of_exact_charges_past_exact_arithmetic_is_refused_on_the_log_path(far_apart, tmp_path):
    # Two records, each exact on its own (1 input token; 10^39 output tokens): their sum is not.
    # Split so, the sum is the total's on every way of reading a log (the dated list prices
    # Claude's text record by record, the long-context rate being chosen per call).
    small, large = _record(), _record()
    assert small["modelId"] == "anthropic.claude-v2:1"
    small["input"]["inputTokenCount"], small["output"]["outputTokenCount"] = 1, 0
    large["input"]["inputTokenCount"], large["output"]["outputTokenCount"] = 0, 10**39
    (tmp_path / "calls.jsonl").write_text(json.dumps(small) + "\n" + json.dumps(large) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--rules", "rules")
    assert (run.code, run.out) == (2, "")
    assert run.err == "usage refused: 1 problem, nothing was priced\n  error[BU204]: the total cannot be computed exactly\n"


def test_the_same_sum_is_refused_in_a_usage_document_and_in_totals(far_apart, tmp_path):
    item = {
        "kind": "text", "name": "a", "model": "claude-2.1", "region": "us-west-2", "at": SEED_DAY,
        "input_tokens": 1, "output_tokens": 10**39,
    }
    (tmp_path / "usage.json").write_text(json.dumps({"usage": [item]}), encoding="utf-8")
    run = run_cli("eval", "usage.json", "--rules", "rules")
    assert (run.code, run.out) == (2, "")
    assert "item 1 (a): error[BU204]: the item's subtotal cannot be computed exactly" in run.err
    rules = bedrock_rules.load(far_apart)
    with pytest.raises(UsageError) as evaluated:  # one item, the way an embedding program prices it
        rules.evaluate({"usage": [item]})
    assert [p.code for p in evaluated.value.problems] == ["BU204"]
    # Totals price this kind item by item (its context size is derived per item): the one
    # item is left unpriced with the reason, never priced 0 ...
    alone = rules.totals([item])
    assert (alone.total, alone.priced, [(u.reason, u.count) for u in alone.unpriced]) == (
        0, 0, [("the item's subtotal cannot be computed exactly", 1)]
    )
    # ... and the same sum over two items, each exact on its own, refuses the total.
    small, large = {**item, "name": "small", "output_tokens": 0}, {**item, "name": "large", "input_tokens": 0}
    with pytest.raises(UsageError) as refused:
        rules.totals([small, large])
    assert [(p.code, p.message) for p in refused.value.problems] == [("BU204", "the total cannot be computed exactly")]
