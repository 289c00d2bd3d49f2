"""Checked usage items to charges: refusals first, then exactly one rule per charge.

An item is priced only when every quantity it uses that some rule charges is charged
by a rule that matches it; otherwise it is refused with the reason. Nothing is
guessed: no fallback rate, no silent zero.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from decimal import Decimal

from . import types as t
from .bill import Bill, Charge, ItemBill
from .compiler import EXACT, ROUNDING_MODES, Compiled, PriceRule, failing_conditions
from .errors import Problem, UsageError
from .usage import Item


def price_item(compiled: Compiled, item: Item) -> tuple[ItemBill | None, list[Problem]]:
    """The item's charges, or the problems that refuse it."""
    values = item.values
    refusals = [
        _problem(item, f"{guard.reason} ({guard.span.where})")
        for guard in compiled.guards.get(item.kind, ())
        if guard.refuses(values)
    ]
    if refusals:
        return None, refusals

    kind = compiled.kinds[item.kind]
    candidates = candidate_rules(compiled, item)
    matched = [rule for rule in candidates if rule.matches(values)]
    frees = [free for free in compiled.frees.get(item.kind, ()) if free.matches(values)]
    if not matched and not frees:
        message = f"no rule prices {item.kind} usage with {_key_values(compiled, item)}"
        return None, [_problem(item, message + _closest(compiled, item, candidates))]

    problems: list[Problem] = []
    by_charge: dict[tuple, list[PriceRule]] = {}
    for rule in matched:
        by_charge.setdefault((rule.quantity, rule.each), []).append(rule)
    for (quantity, _), rules in by_charge.items():
        if len(rules) > 1:
            where = " and ".join(r.where for r in rules)
            problems.append(_problem(item, f"the rules at {where} both price {quantity}; the ruleset is ambiguous"))
    covered = {rule.quantity for rule in matched}
    for quantity in compiled.quantities.get(item.kind, ()):
        if quantity not in covered and values.get(quantity, 0) != 0:
            problems.append(_problem(
                item,
                f"no rule prices {quantity} ({values[quantity]}) for {item.kind} usage with "
                f"{_key_values(compiled, item)}",
                quantity,
            ))

    charges: list[Charge] = []
    for rule in matched:
        quantity = values.get(rule.quantity)
        if quantity is None:
            continue
        what = rule.quantity + "".join(f" ({value})" for _, value in rule.each)
        if rule.refusal is not None:
            if quantity != 0:
                problems.append(_problem(item, f"{rule.refusal} ({rule.where})", rule.quantity))
            continue
        unit = kind.unit_of(rule.quantity)
        if rule.rate is None:
            charges.append(Charge(what, quantity, unit, None, rule.per, Decimal(0), rule.where, rule.id, rule.free))
            continue
        try:
            amount = EXACT.divide(EXACT.multiply(quantity, rule.rate), rule.per)
        except decimal.DecimalException:
            problems.append(_problem(item, f"{rule.quantity}: the amount cannot be computed exactly", rule.quantity))
            continue
        charges.append(Charge(what, quantity, unit, rule.rate, rule.per, _round(compiled, "each charge", amount), rule.where, rule.id))
    for free in frees:
        charges.append(Charge(item.kind, 1, None, None, Decimal(1), Decimal(0), free.span.where, f"{item.kind}/free", free.reason))
    if problems:
        return None, problems
    return ItemBill(item.index, item.name, item.kind, charges, exact_sum(c.amount for c in charges), item.source), []


def candidate_rules(compiled: Compiled, item: Item) -> tuple[PriceRule, ...]:
    """The price rules that could price an item: its kind's, and its model's when the kind has one."""
    unindexed = compiled.unindexed.get(item.kind, ())
    model_field = compiled.kinds[item.kind].model_field
    if model_field is None:
        return unindexed
    return (*compiled.by_model.get(item.kind, {}).get(item.values.get(model_field), ()), *unindexed)


def evaluate_items(compiled: Compiled, items: Sequence[Item], problems: Sequence[Problem] = ()) -> Bill:
    """Price every item, or raise UsageError with every problem when any is refused."""
    all_problems = list(problems)
    priced: list[ItemBill] = []
    for item in items:
        bill, refused = price_item(compiled, item)
        if refused:
            all_problems.extend(refused)
        elif bill is not None:
            priced.append(bill)
    if all_problems:
        all_problems.sort(key=lambda p: (p.source or "", p.item or 0))
        raise UsageError(all_problems)
    total = exact_sum(b.subtotal for b in priced)
    return Bill(compiled.currency, priced, _round(compiled, "the total", total))


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """A sum in the exact context: the default context would round past 28 digits."""
    total = Decimal(0)
    for amount in amounts:
        total = EXACT.add(total, amount)
    return total


def _closest(compiled: Compiled, item: Item, candidates: Iterable[PriceRule]) -> str:
    """Why the nearest rule (fewest unmet conditions) does not apply, for messages."""
    kind = compiled.kinds[item.kind]
    best: list[str] | None = None
    best_rule = None
    for rule in candidates:
        failing = failing_conditions(rule, kind, item.values)
        if best is None or len(failing) < len(best):
            best, best_rule = failing, rule
    if best_rule is None or not best:
        return ""
    return f"; the closest rule ({best_rule.where}) needs " + " and ".join(best)


def _round(compiled: Compiled, target: str, amount: Decimal) -> Decimal:
    for rounding in compiled.rounding:
        if rounding.target == target:
            exponent = Decimal(1).scaleb(-rounding.places)
            return amount.quantize(exponent, rounding=ROUNDING_MODES[rounding.mode])
    return amount


def _problem(item: Item, message: str, field: str | None = None) -> Problem:
    return Problem(message, item.index, item.name, field, item.source)


def _key_values(compiled: Compiled, item: Item) -> str:
    """The values that choose a price (model, region, choices), for messages."""
    kind = compiled.kinds[item.kind]
    shown = []
    for spec in kind.fields:
        if isinstance(spec.type, (t.ModelType, t.RegionType, t.EnumType, t.FlagType)) and spec.name in item.values:
            value = item.values[spec.name]
            shown.append(f"{spec.name} {str(value).lower() if isinstance(value, bool) else value}")
    return ", ".join(shown) if shown else "these fields"
