"""Relative prices under hostile rule text: a factor whose product with its base rate no
exact context holds is refused for the usage it would price, never an internal error and
never a rate cut short."""

from __future__ import annotations

import json
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
