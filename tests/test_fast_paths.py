"""The quick ways of pricing give exactly what the full checks give.

`Ruleset.evaluate` prices an item from the plan of its deciding values when it can
(`interpreter.Pricer.bill`), and goes through `check_items` and `price_item` otherwise.
Here every document is priced both ways; the bills must be equal value for value,
with the same Decimal representations (`repr`) and the same JSON bytes, and a refused
document must be refused with the same problems.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from test_invariants import RULES, SETTINGS, TEMPLATES, documents
from test_language_cases import CASE_FILES, load_case, read_case

import bedrock_rules
from bedrock_rules.bill import dump
from bedrock_rules.errors import UsageError
from bedrock_rules.interpreter import evaluate_items
from bedrock_rules.usage import check_items, items_of


def slow_bill(rules: bedrock_rules.Ruleset, document: dict):
    """The bill through the full checks only, as before plans were used for bills."""
    checked, problems = check_items(rules.program, list(items_of(document)))
    return evaluate_items(rules.program, checked, problems)


def both(rules: bedrock_rules.Ruleset, document: dict) -> tuple[object, object]:
    outcomes = []
    for way in (rules.evaluate, lambda doc: slow_bill(rules, doc)):
        try:
            outcomes.append(way(document))
        except UsageError as error:
            outcomes.append(("refused", [repr(p) for p in error.problems]))
    return outcomes[0], outcomes[1]


def assert_same(rules: bedrock_rules.Ruleset, document: dict) -> None:
    fast, slow = both(rules, document)
    assert repr(fast) == repr(slow)
    if not isinstance(slow, tuple):
        assert dump(fast) == dump(slow)


@SETTINGS
@given(documents())
def test_the_bundled_rules_bill_every_document_the_same_both_ways(document):
    assert_same(RULES, document)


def test_every_template_item_alone_is_billed_the_same_both_ways():
    for item in TEMPLATES:
        assert_same(RULES, {"usage": [item]})
        assert_same(RULES, {"usage": [{**item, "name": "n"}, item]})
    # The comparison is worth something only if most items take the quick way. The bundled
    # list is dated, and a dated kind's items go the slow way (the day decides their rules):
    # the quick way is measured on the kinds no dated rule prices.
    pricer = RULES._shared_pricer()
    undated = [item for item in TEMPLATES if item["kind"] not in RULES.program.dated_kinds]
    assert undated
    quick = [item for item in undated if pricer.bill([item]) is not None]
    assert len(quick) > len(undated) / 2
    assert all(pricer.bill([item]) is None for item in TEMPLATES if item["kind"] in RULES.program.dated_kinds)


@pytest.mark.parametrize(
    "change",
    [
        {"input_tokens": -1},
        {"input_tokens": "12"},
        {"input_tokens": True},
        {"input_tokens": 1.5},
        {"input_tokens": 10**41},
        {"region": None},
        {"region": "mars-east-1"},
        {"name": 7},
        {"surprise": 1},
        {"cache_write_tokens": 5},
    ],
)
def test_items_the_plans_do_not_accept_are_refused_the_same_both_ways(change):
    item = {"kind": "text", "model": "anthropic.claude-v2:1", "region": "us-west-2", "input_tokens": 11000, "output_tokens": 40}
    fast, slow = both(RULES, {"usage": [{**item, **change}]})
    assert repr(fast) == repr(slow)


@pytest.mark.parametrize("path", [p for p in CASE_FILES if "usages" in read_case(p)], ids=lambda p: p.stem)
def test_every_language_case_is_billed_the_same_both_ways(path: Path, tmp_path):
    case = read_case(path)
    folder, overlays = load_case(case, tmp_path)
    rules = bedrock_rules.load(folder, overlays=overlays)
    for usage in case["usages"]:
        assert_same(rules, {"usage": usage["usage"]})
