"""Worked examples written in rule files: turn them into usage, check their totals, measure coverage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from .bill import Bill
from .errors import BedrockRulesError
from .fields import Instant
from .model import Example
from .program import PriceRule
from .ruleset import Ruleset
from .semantics import to_plain


@attrs.frozen
class ExampleResult:
    example: Example
    bill: Bill | None
    error: str | None

    @property
    def passed(self) -> bool:
        return self.bill is not None and self.bill.total == self.example.expect

    @property
    def actual(self) -> Decimal | None:
        return None if self.bill is None else self.bill.total


def document(example: Example) -> dict[str, Any]:
    """The usage document an example describes; `example … at DATE` dates the items with no `at:`."""
    usage = []
    for item in example.items:
        raw: dict[str, Any] = {"kind": item.kind}
        if item.name:
            raw["name"] = item.name
        if example.at is not None:
            raw["at"] = example.at.text
        raw.update((name, to_plain(value)) for name, value in item.fields)
        usage.append(raw)
    return {"usage": usage}


def run(rules: Ruleset, at: Instant | None = None) -> list[ExampleResult]:
    """Every example's bill or refusal; `at` dates the items an example leaves undated."""
    results = []
    for example in rules.examples:
        try:
            results.append(ExampleResult(example, rules.evaluate(document(example), at=at), None))
        except BedrockRulesError as error:
            results.append(ExampleResult(example, None, error.render()))
    return results


def priced_rules(rules: Ruleset) -> list[PriceRule]:
    """The rules that put a line on a bill: rates and free cells, not `-` or reasons."""
    return [rule for rule in rules.program.rules if rule.refusal is None]


def uncovered(rules: Ruleset, results: list[ExampleResult]) -> list[PriceRule]:
    """The price rules no example's bill used for a nonzero quantity, in file order.

    A line for 0 tokens proves nothing about the rate, so it does not count as a test.
    """
    used = {
        charge.rule_id
        for r in results if r.bill for item in r.bill.items for charge in item.charges
        if charge.quantity != 0
    }
    return [rule for rule in priced_rules(rules) if rule.id not in used]
