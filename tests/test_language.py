"""Semantics of the rule language beyond one bill: how streamed totals count a refused item.

The language itself is tested by the data files in tests/language (test_language_cases.py).
"""

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
prices job in any
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


def test_totals_count_an_item_with_a_derived_quantity_below_zero_as_unpriced(rules):
    # tokens 20: spare = 20 - 1000 < 0, refused (tests/language/derived-below-zero.yaml);
    # tokens 3000: 3000 / 1000 x 1 + 2000 / 1000 x 2 = 7
    totals = rules.totals(job(tokens=20)["usage"] + job(tokens=3000)["usage"])
    assert (totals.priced, totals.total, sum(u.count for u in totals.unpriced)) == (1, Decimal("7"), 1)
    (unpriced,) = totals.unpriced
    assert unpriced.reason.startswith("field spare: spare comes to -980 for this usage")
