"""Relative prices under hostile rule text: a factor whose product with its base rate no
exact context holds is refused for the usage it would price, never an internal error and
never a rate cut short."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
import yaml

import bedrock_rules
from bedrock_rules.errors import UsageError
from conftest import ROOT, run_cli

BASE = yaml.safe_load((ROOT / "tests" / "language" / "relative.yaml").read_text(encoding="utf-8"))["rules"]["main.rules"]
HUGE = "9" * 200
BATCH = {"kind": "text", "model": "a", "region": "r1", "mode": "batch", "at": "2024-06-01"}


@pytest.fixture
def huge_factor(in_tmp):
    assert "at 50% of on_demand" in BASE
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(BASE.replace("at 50% of on_demand", f"at {HUGE} of on_demand"), encoding="utf-8")
    return bedrock_rules.load(in_tmp / "rules")


def test_a_factor_past_exact_arithmetic_refuses_the_usage_it_prices(huge_factor, in_tmp):
    (in_tmp / "usage.json").write_text(json.dumps({"usage": [{**BATCH, "input_tokens": 10}]}), encoding="utf-8")
    run = run_cli("eval", "usage.json", "--rules", "rules")
    assert (run.code, run.out) == (2, "")  # it was an internal error (Inexact), exit 70
    assert "item 1, field input_tokens: error[BU201]: " in run.err
    assert "of rules/main.rules:19: the rate cannot be computed exactly (rules/main.rules:29)" in run.err
    with pytest.raises(UsageError):
        huge_factor.evaluate({"usage": [{**BATCH, "input_tokens": 10}]})  # the quick one-item way too
    with pytest.raises(UsageError):
        huge_factor.evaluate({"usage": [{**BATCH, "input_tokens": 10}]}, at="2024-06-01")


def test_usage_the_factor_does_not_touch_still_prices(huge_factor):
    on_demand = {**BATCH, "mode": "on_demand", "input_tokens": 1000}
    assert huge_factor.evaluate({"usage": [on_demand]}).total == Decimal("0.003")
    assert huge_factor.totals([on_demand]).total == Decimal("0.003")


@pytest.mark.parametrize(("added", "quantity"), [
    ("relative text mode = batch at 0.7 of on_demand when model = a", "input_tokens"),  # the same case, narrower
    ("relative text cache_read_tokens at 0.2 of input_tokens", "cache_read_tokens"),  # the same quantity, wider
])
def test_two_relative_rules_for_one_case_refuse_it_whatever_their_order(in_tmp, added, quantity):
    # Neither rule is chosen by its place in the file: the charge both would price is refused, naming both.
    (in_tmp / "rules").mkdir()
    usage = {"usage": [{**BATCH, "input_tokens": 10, "cache_read_tokens": 10}]}
    (in_tmp / "usage.json").write_text(json.dumps(usage), encoding="utf-8")
    messages = []
    assert "\nrelative text mode = batch" in BASE
    for text in (BASE.replace("\nrelative text mode = batch", f"\n{added}\nrelative text mode = batch", 1), BASE + f"{added}\n"):
        (in_tmp / "rules" / "main.rules").write_text(text, encoding="utf-8")
        run = run_cli("eval", "usage.json", "--rules", "rules")
        assert (run.code, run.out) == (2, ""), run.err
        # (through the batch rule's base for cache reads: the on-demand price it is half of is refused)
        assert f"item 1, field {quantity}: error[BU201]: " in run.err
        assert re.search(r"the relative rules at rules/main\.rules:\d+ and rules/main\.rules:\d+ both price "
                         f"{quantity} here; the ruleset is ambiguous", run.err)
        messages.append(run.err)
        with pytest.raises(UsageError, match="ambiguous"):
            bedrock_rules.load(in_tmp / "rules").evaluate(usage)  # the quick one-item way too
    assert len(messages) == 2
