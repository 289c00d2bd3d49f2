"""Semantics of the rule language at its edges: absent fields, negation, derived quantities."""

from __future__ import annotations

from decimal import Decimal

import pytest

import bedrock_rules

RULES = """currency USD
region r1
provider p
  model a
end
kind job
  model: model
  region: region
  tokens: count = 0 unit tokens
  steps: count optional unit steps
  spare = tokens - 1000 unit tokens
end
require job steps <= 150: "at most 150 steps"
prices job
| model | tokens per 1000 | spare per 1000 |
|-------|-----------------|----------------|
| a     | 1               | 2              |
"""


@pytest.fixture
def rules(tmp_path):
    (tmp_path / "job.rules").write_text(RULES, encoding="utf-8")
    return bedrock_rules.load(tmp_path)


def job(**fields):
    return {"usage": [{"kind": "job", "model": "a", "region": "r1", **fields}]}


def test_a_require_on_an_optional_field_does_not_apply_when_the_field_is_left_out(rules):
    assert rules.evaluate(job(tokens=3000)).total == Decimal("7")  # 3 + 2 x 2; no steps: nothing to require
    assert rules.evaluate(job(tokens=3000, steps=150)).total == Decimal("7")
    with pytest.raises(bedrock_rules.UsageError) as refused:
        rules.evaluate(job(tokens=3000, steps=151))
    assert refused.value.problems[0].message.startswith("at most 150 steps (")


def test_a_derived_quantity_below_zero_is_refused_not_billed_as_a_credit(rules):
    with pytest.raises(bedrock_rules.UsageError) as refused:
        rules.evaluate(job(tokens=20))
    (problem,) = refused.value.problems
    assert (problem.item, problem.field) == (1, "spare")
    assert problem.message == (
        "spare comes to -980 for this usage; a quantity cannot be below 0 (the rules should write it with max(…, 0))"
    )
    totals = rules.totals(job(tokens=20)["usage"] + job(tokens=3000)["usage"])
    assert (totals.priced, totals.total, sum(u.count for u in totals.unpriced)) == (1, Decimal("7"), 1)


def test_a_price_table_takes_one_region_list_one_condition_and_one_charging(tmp_path):
    text = RULES.replace("prices job\n", "prices job in r1 in r1\n")
    (tmp_path / "job.rules").write_text(text, encoding="utf-8")
    with pytest.raises(bedrock_rules.RuleFileError) as caught:
        bedrock_rules.load(tmp_path)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "BR210"
    assert "takes one `in`" in diagnostic.message
