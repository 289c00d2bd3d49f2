"""Period pricing: a month's quantities priced in tiers, and monthly minimums with their true-ups.

A period is one calendar month (UTC) of one evaluation. A charge a monthly table prices
is not priced on its item: its quantity is summed per (month, tier set), and the sum is
priced once, graduated (each unit at its tier's rate) or volume (every unit at the rate
of the tier the total reaches). The tally keeps sums, never items, so the streaming
totals use it too: memory grows with months x tier sets, not with records.

Per-period lines and not per-item amounts: a graduated amount per item would depend on
the order of the items, and blocks and true-ups belong to no item.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from .bill import Charge, PeriodBill, PeriodLine, TrueUp
from .errors import Problem
from .program import MinimumRule, Program, Tier, TierSet
from .semantics import EXACT, exact_sum

_ZERO = Decimal(0)


def month_of(at: Any) -> str:
    """The period of an item's `at` (an Instant): its UTC month, `2026-03`."""
    return f"{at.day.year:04d}-{at.day.month:02d}"


def blocks(quantity: Decimal | int, size: Decimal) -> Decimal:
    """Started blocks of `size` in `quantity`: ceil(quantity / size), exactly (a block of 3 divides
    into no finite decimal, so whole blocks and the remainder, never the quotient)."""
    whole = EXACT.divide_int(Decimal(quantity), size)
    return EXACT.add(whole, 1) if EXACT.remainder(Decimal(quantity), size) > 0 else whole


def amount_of(quantity: Decimal | int, rate: Decimal, per: Decimal, block: bool) -> Decimal:
    """quantity × rate ÷ per, or ceil(quantity ÷ per) × rate for `per block of N`."""
    if block:
        return EXACT.multiply(blocks(quantity, per), rate)
    return EXACT.divide(EXACT.multiply(quantity, rate), per)


def tier_portions(tier_set: TierSet, total: Decimal | int) -> list[tuple[Tier, Decimal | int]] | None:
    """Which tiers price a month's total, and how much of it each prices; None past the last tier.

    Graduated: each tier its part of the total (a tier no unit reaches is left out; a
    total of 0 shows the first tier with 0). Volume: the tier the total reaches, for all of it.
    """
    last = tier_set.tiers[-1]
    if last.upper is not None and total > last.upper:
        return None
    if tier_set.mode == "volume":
        for tier in tier_set.tiers:
            if tier.upper is None or total <= tier.upper:
                return [(tier, total)]
    portions: list[tuple[Tier, Decimal | int]] = []
    for tier in tier_set.tiers:
        top = total if tier.upper is None else min(total, tier.upper)
        portion = EXACT.subtract(Decimal(top), tier.lower)  # exact: the default context keeps 28 digits
        if portion > 0:
            portions.append((tier, portion))
    return portions or [(tier_set.tiers[0], total)]


def tier_lines(
    tier_set: TierSet, total: Decimal | int, unit: str | None, rule_of: Callable[[Tier], str], round_each: Callable[[Decimal], Decimal]
) -> list[PeriodLine] | None:
    """The period lines of one tier set's month, or None when the total passes the last tier."""
    portions = tier_portions(tier_set, total)
    if portions is None:
        return None
    lines = []
    for tier, portion in portions:
        amount = _ZERO if tier.rate is None else round_each(amount_of(portion, tier.rate, tier_set.per, tier_set.block))
        lines.append(PeriodLine(
            tier_set.label, tier.text, portion, unit, tier.rate, tier_set.per, tier_set.block, amount,
            rule_of(tier), tier_set.id, tier_set.mode,
            blocks(portion, tier_set.per) if tier_set.block else None,
            None if tier.rate is not None else (tier.free or "free"),
        ))
    return lines


def minimums_of(program: Program, kind: str, values: Mapping[str, Any]) -> list[MinimumRule]:
    """The monthly minimums whose scope holds a usage (windows aside)."""
    return [rule for rule in program.minimums if rule.kind == kind and rule.matches(values)]


class PeriodTally:
    """Priced items in, period bills out: sums per (month, tier set) and per (month, minimum)."""

    def __init__(self, program: Program, round_each: Callable[[Decimal], Decimal]):
        self.program = program
        self.round_each = round_each
        self.months: set[str] = set()
        self.quantities: dict[tuple[str, str], list[Any]] = {}  # (month, tier set id) -> [tier set, sum, kind]
        self.scopes: dict[tuple[str, str], set[frozenset[str]]] = {}  # the minimums its items are in
        self.charged: dict[tuple[str, str], Decimal] = {}  # (month, minimum) -> the items' own amounts
        self.tier_sets = {rule.tiers.id: rule.tiers for rule in program.rules if rule.tiers is not None}

    def add(self, kind: str, values: Mapping[str, Any], charges: Iterable[Charge]) -> None:
        """One priced item: its period charges summed, its own amounts counted toward its minimums."""
        at = values.get("at")
        if at is None:  # undated: in no period (price_item refused it if it needed one)
            return
        month = month_of(at)
        self.months.add(month)
        scope = frozenset(
            rule.where for rule in minimums_of(self.program, kind, values)
            if rule.window is None or rule.window.contains(at.day)
        )
        own = _ZERO
        for charge in charges:
            if charge.period is None:
                own = EXACT.add(own, charge.amount)
                continue
            key = (month, charge.period_rule or "")
            line = self.quantities.get(key)
            if line is None:
                self.quantities[key] = [self.tier_sets[key[1]], charge.quantity, kind]
                self.scopes[key] = {scope}
            else:
                line[1] = EXACT.add(line[1], charge.quantity)
                self.scopes[key].add(scope)
        for where in scope:
            self.charged[month, where] = EXACT.add(self.charged.get((month, where), _ZERO), own)

    def result(self) -> tuple[tuple[PeriodBill, ...], list[Problem]]:
        """Every period's lines and true-ups, in month order; or the problems that refuse them."""
        program = self.program
        problems: list[Problem] = []
        order = {rule.tiers.id: n for n, rule in enumerate(program.rules) if rule.tiers is not None}
        statements = {rule.where: rule for rule in program.minimums}  # one per statement, for its amount and window
        periods = []
        for month in sorted(self.months):
            lines: list[PeriodLine] = []
            in_scope: dict[str, Decimal] = {}  # minimum -> the month's tier amounts in its scope
            for (_, set_id), (tier_set, total, kind) in sorted(
                ((key, value) for key, value in self.quantities.items() if key[0] == month), key=lambda kv: order[kv[0][1]]
            ):
                unit = program.kinds[kind].unit_of(tier_set.quantity)
                priced = tier_lines(tier_set, total, unit, lambda tier: tier.span.where, self.round_each)
                if priced is None:
                    top = tier_set.tiers[-1]
                    problems.append(Problem(
                        f"period {month}: the month's {tier_set.label} total {total}, past the last tier "
                        f"({top.text}, {top.span.where}); the rules do not price beyond it",
                        code="BU206",
                    ))
                    continue
                scopes = self.scopes[month, set_id]
                if len(scopes) > 1:
                    split = sorted(frozenset.union(*scopes) - frozenset.intersection(*scopes))
                    problems.append(Problem(
                        f"period {month}: the tier set {tier_set.label} ({tier_set.span.where}) holds usage inside and "
                        f"outside the minimum at {', '.join(split)}; the rules do not say how to split its tier charges",
                        code="BU207",
                    ))
                    continue
                lines.extend(priced)
                for where in next(iter(scopes)):
                    in_scope[where] = EXACT.add(in_scope.get(where, _ZERO), exact_sum(line.amount for line in priced))
            true_ups = []
            first_day = _first_day(month)
            for where, rule in statements.items():
                if rule.window is not None and not rule.window.contains(first_day):
                    continue
                charged = EXACT.add(self.charged.get((month, where), _ZERO), in_scope.get(where, _ZERO))
                if charged < rule.amount:
                    true_ups.append(TrueUp(
                        rule.label, rule.amount, charged, EXACT.subtract(rule.amount, charged), where, rule.reason, rule.id
                    ))
            total = exact_sum([*(line.amount for line in lines), *(t.amount for t in true_ups)])
            if lines or true_ups:
                periods.append(PeriodBill(month, lines, true_ups, total))
        return tuple(periods), problems


def _first_day(month: str) -> datetime.date:
    year, number = month.split("-")
    return datetime.date(int(year), int(number), 1)
