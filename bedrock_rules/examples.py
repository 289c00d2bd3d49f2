"""Worked examples written in rule files: turn them into usage, check their totals, measure coverage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from .bill import Bill
from .errors import BedrockRulesError
from .fields import Instant
from .model import Example
from .program import PriceRule, Program
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


def layered(program: Program) -> list[tuple[Example, Program]]:
    """Every example with the program it is priced under: the list's examples without
    overlays, an overlay's with the list and the overlays up to its own."""
    base = attrs.evolve(program, layers=()) if program.layers else program
    found = [(example, base) for example in program.examples]
    for index, layer in enumerate(program.layers):
        upto = attrs.evolve(program, layers=program.layers[: index + 1])
        found.extend((example, upto) for example in layer.examples)
    return found


def run(rules: Ruleset, at: Instant | None = None) -> list[ExampleResult]:
    """Every example's bill or refusal; `at` dates the items an example leaves undated."""
    results = []
    rulesets: dict[int, Ruleset] = {id(rules.program): rules}
    for example, program in layered(rules.program):
        ruleset = rulesets.setdefault(id(program), Ruleset(program))
        try:
            results.append(ExampleResult(example, ruleset.evaluate(document(example), at=at), None))
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
        charge.list_id or charge.rule_id  # an overlay's charge exercises the list's rule under it
        for r in results if r.bill for item in r.bill.items for charge in item.charges
        if charge.quantity != 0
    }
    return [rule for rule in priced_rules(rules) if rule.id not in used]
