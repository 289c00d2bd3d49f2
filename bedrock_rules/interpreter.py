"""Checked usage items to charges: refusals first, then exactly one rule per charge.

An item is priced only when every quantity it uses that some rule charges is charged
by a rule that matches it; otherwise it is refused with the reason. Nothing is
guessed: no fallback rate, no silent zero.
"""

from __future__ import annotations

import bisect
import datetime
import decimal
import operator
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import attrs

from . import fields as t
from . import limits
from . import model as m
from .bill import Bill, Charge, ItemBill, PeriodBill, charge_like, new_bill, new_item_bill
from .errors import Problem, UsageError
from .fields import Instant, read_instant
from .overlays import apply_layers, dated_rules, list_rate, overlays_of
from .periods import PeriodTally, amount_of, minimums_of, month_of
from .program import PriceRule, Program, rule_identity
from .reads import quoted_beyond, reads_beyond
from .semantics import EXACT, ROUNDING_MODES, Missing, exact_sum, failing_conditions, fields_of
from .usage import Item, check_items


def price_item(program: Program, item: Item) -> tuple[ItemBill | None, list[Problem]]:
    """The item's charges, or the problems that refuse it."""
    values = item.values
    at = values.get("at")
    if at is None and item.kind in program.dated_kinds:
        undated = _undated(program, item)
        if undated is not None:
            return None, [undated]
    refusals = [
        _problem(item, f"{guard.reason} ({guard.span.where})" + (f"; this item is dated {at}" if guard.dated else ""), code="BU201")
        for guard in program.refusing(item.kind, item.values)
    ]
    if refusals:
        return None, refusals

    candidates, matched, frees = _matching(program, item)
    if at is None:
        monthly = [rule.where for rule in matched if rule.tiers is not None]
        monthly += [rule.where for rule in minimums_of(program, item.kind, values)]
        if monthly:
            return None, [_problem(
                item,
                f"{item.kind} usage is priced per calendar month ({', '.join(dict.fromkeys(monthly))}) and this item has no "
                "date; monthly pricing needs the item's month: give it `at:` or price undated items at one date with `--at DATE`",
                code="BU205",
            )]
    if not matched and not frees:
        message = f"no rule prices {item.kind} usage with {_key_values(program, item)}"
        return None, [_problem(item, message + _closest(program, item, candidates), code="BU202")]

    problems: list[Problem] = []
    by_charge: dict[tuple, list[PriceRule]] = {}
    for rule in matched:
        by_charge.setdefault((rule.quantity, rule.each), []).append(rule)
    for (quantity, _), rules in by_charge.items():
        if len(rules) > 1:
            where = " and ".join(r.where for r in rules)
            problems.append(_problem(item, f"the rules at {where} both price {quantity}; the ruleset is ambiguous", code="BU203"))
    # The invariant: every nonzero billable quantity is charged, freed or refused by a
    # matching rule; one no matching rule charges refuses the item, naming what matched.
    covered = {rule.quantity for rule in matched}
    matched_at = ", ".join(dict.fromkeys(rule.where for rule in matched))
    for quantity in program.quantities.get(item.kind, ()):
        if quantity not in covered and values.get(quantity, 0) != 0:
            message = (
                f"no rule prices {quantity} ({values[quantity]}) for {item.kind} usage with "
                f"{_key_values(program, item)}"
            )
            if matched_at:
                message += f"; the rules that match ({matched_at}) do not charge it"
            problems.append(_problem(item, message, quantity, code="BU202"))

    charges: list[Charge] = []
    for rule in matched:
        quantity = values.get(rule.quantity)
        if quantity is None:
            continue
        if rule.refusal is not None:
            if quantity != 0:
                problems.append(_problem(item, f"{rule.refusal} ({rule.where})", rule.quantity, code="BU201"))
            continue
        if rule.tiers is not None:  # priced in its month's period lines, not here
            charges.append(attrs.evolve(
                line_charge(program, item.kind, rule, quantity),
                note=f"monthly {rule.tiers.mode}", period=month_of(at), period_rule=rule.tiers.id,
            ))
            continue
        if rule.rate is None:
            charges.append(line_charge(program, item.kind, rule, quantity))
            continue
        try:
            amount = round_amount(program, "each charge", amount_of(quantity, rule.rate, rule.per, rule.block))
        except decimal.DecimalException:
            problems.append(_problem(
                item, f"the amount cannot be computed exactly at the rate of {rule.where}", rule.quantity, code="BU204"
            ))
            continue
        charges.append(line_charge(program, item.kind, rule, quantity, amount))
    charges.extend(line_charge(program, item.kind, free) for free in frees)
    if problems:
        return None, problems
    try:
        subtotal = exact_sum(c.amount for c in charges)
    except decimal.DecimalException:  # each charge exact, their sum past EXACT's digits
        return None, [_problem(item, "the item's subtotal cannot be computed exactly", None, code="BU204")]
    at = values.get("at")
    return ItemBill(
        item.index, item.name, item.kind, charges, subtotal, item.source, None if at is None else str(at)
    ), []


def _matching(program: Program, item: Item) -> tuple[tuple[PriceRule, ...], list[PriceRule], list[Any]]:
    """The candidate price rules of an item, those that match it, and the free statements that do.

    On a dated item only the rules whose window holds its day match, and of several that
    price one charge the one with the latest `from` (a later version) replaces the others.
    """
    candidates = candidate_rules(program, item)
    frees = [free for free in program.frees.get(item.kind, ()) if free.matches(item.values)]
    at = item.values.get("at")
    if at is not None and item.kind in program.dated_kinds:
        day = at.day
        frees = [free for free in frees if free.window is None or free.window.contains(day)]
    matched = _priced_by(program, item.kind, item.values, candidates)
    if program.layers:  # a customer's rates over the list's (overlays.py)
        matched = apply_layers(program, item.kind, item.values, matched, lambda values: _priced_by(program, item.kind, values))
    return candidates, matched, frees


def _priced_by(program: Program, kind: str, values: Mapping[str, Any], candidates: Sequence[PriceRule] | None = None) -> list[PriceRule]:
    """The price rules that price a usage with these values: the tables' rules, and the
    rules relative prices derive from them (see `_relative`)."""
    if candidates is None:
        candidates = candidate_rules(program, Item(0, None, kind, values))
    matched = [rule for rule in candidates if rule.matches(values)]
    at = values.get("at")
    day = None if at is None or kind not in program.dated_kinds else at.day
    if day is not None:
        matched = _latest([rule for rule in matched if rule.window is None or rule.window.contains(day)])
    relatives = program.relatives.get(kind)
    if not relatives:
        return matched
    return _relative(program, kind, values, matched, relatives, day)


def _relative(program, kind, values, matched, relatives, day) -> list[PriceRule]:
    """`matched` with the charges relative rules price put in.

    Precedence: a table rule that prices the case itself (its conditions name the field;
    for the quantity form, any rule charging the quantity) wins; else the first matching
    relative rule, in the kind's field order, prices it from the base usage's own price
    (found the same way, so chains and dated bases are followed); else a table rule that
    does not name the field. Two relative rules of one field (or one quantity) that both
    match price nothing: the charge is refused as ambiguous (`_rival`).
    """
    applying = [
        rel for rel in relatives
        if (rel.field is None or values.get(rel.field) in rel.cases)
        and (day is None or rel.window is None or rel.window.contains(day))
        and rel.matches(values)
    ]
    if day is not None:  # of two versions of one relative rule, the later `from`
        newest: dict[Any, Any] = {}
        for rel in applying:
            newest[relative_version(rel)] = max(newest.get(relative_version(rel), rel.start), rel.start)
        applying = [rel for rel in applying if rel.start == newest[relative_version(rel)]]
    result = list(matched)
    derived: dict[tuple, Any] = {}  # charge -> the relative rule that priced it
    for rel in applying:
        if rel.field is not None:
            base_rules = _priced_by(program, kind, {**values, rel.field: rel.base})
            own = {
                (rule.quantity, rule.each) for rule in matched
                if any(rel.field in fields_of(cond) for cond in rule.conditions)
            }
            # Where a table prices the case itself, it wins over the tables that do not name the field.
            result = [
                r for r in result
                if r.basis or (r.quantity, r.each) not in own or any(rel.field in fields_of(c) for c in r.conditions)
            ]
            for base in base_rules:
                key = (base.quantity, base.each)
                if key in own or (rel.quantities and base.quantity not in rel.quantities):
                    continue
                if key in derived:  # priced by an earlier field's rule (a chain), or by a rival for this field
                    result = _rival(result, key, derived[key], rel)
                    continue
                derived[key] = rel
                result = _replace(result, key, _scaled(base, rel, base.quantity))
        else:
            case = next(iter(rel.cases))
            if any(rule.quantity == case for rule in matched):
                continue  # a table prices the quantity itself
            for base in [r for r in result if r.quantity == rel.base]:
                key = (case, base.each)
                if key in derived:
                    result = _rival(result, key, derived[key], rel)
                    continue
                derived[key] = rel
                result.append(_scaled(base, rel, case))
    return result


def relative_version(rel: Any) -> tuple:
    """What makes two relative rules versions of one (the later `from` replaces the other on its
    days): the field and its cases, or the quantity and its base; a factor or a base value may change."""
    return (rel.field, rel.base if rel.field is None else None, tuple(sorted(map(str, rel.cases))))


def _rival(rules: list[PriceRule], key: tuple, first: Any, other: Any) -> list[PriceRule]:
    """`rules` as they are when `other` is a later field's relative rule (the earlier one's base
    followed it already); when both price the same field's case (or the same quantity), neither
    is chosen by its place in the file: the charge is refused as ambiguous."""
    if first.field != other.field or first.where == other.where:
        return rules
    refusal = f"the relative rules at {first.where} and {other.where} both price {key[0]} here; the ruleset is ambiguous"
    return [
        attrs.evolve(rule, rate=None, refusal=refusal) if (rule.quantity, rule.each) == key and rule.basis else rule
        for rule in rules
    ]


def _replace(rules: list[PriceRule], key: tuple, derived: PriceRule) -> list[PriceRule]:
    """`rules` with the table rules of charge `key` replaced by `derived`, in their place (bill order)."""
    out: list[PriceRule] = []
    placed = False
    for rule in rules:
        if (rule.quantity, rule.each) == key and not rule.basis:
            if not placed:
                out.append(derived)
                placed = True
            continue
        out.append(rule)
    if not placed:
        out.append(derived)
    return out


def _scaled(base: PriceRule, rel: Any, quantity: str) -> PriceRule:
    """The rule a relative price derives from its base's: rate × factor, cited as both."""
    refusal = None if base.refusal is None else f"{rel.text} ({rel.where}), and the base is not offered here: {base.refusal}"
    if base.tiers is not None:  # whether its units would join the base's tiers is a contract question
        refusal = f"{rel.text} ({rel.where}) needs a per-unit base rate, and the base ({base.where}) is priced monthly in tiers"
        return attrs.evolve(base, quantity=quantity, rate=None, refusal=refusal, span=rel.span, tiers=None, block=False)
    try:
        rate = None if base.rate is None else EXACT.multiply(base.rate, rel.factor)
    except decimal.DecimalException:  # a 200-digit factor: refused, never a rate cut short (nor None, which is free)
        rate = None
        refusal = f"{rel.text} of {base.where}: the rate cannot be computed exactly"
    conditions = base.id[len(f"{base.kind}/{base.quantity}[") : -1]  # `model = a`, under the charge's own name
    rule_id = rule_identity(base.kind, quantity, [conditions, rel.text] if conditions else [rel.text])
    basis = ((rel.where, rule_id, rel.factor), *(base.basis or ((base.where, base.id, base.rate),)))
    return attrs.evolve(
        base, id=rule_id,
        quantity=quantity, rate=rate, refusal=refusal, span=rel.span, basis=basis,
    )


def _latest(rules: list[PriceRule]) -> list[PriceRule]:
    """Per charge, the rules with the latest `from`: one, or several that overlap (refused as ambiguous)."""
    newest: dict[tuple, Any] = {}
    for rule in rules:
        key = (rule.quantity, rule.each)
        newest[key] = max(newest.get(key, rule.start), rule.start)
    return [rule for rule in rules if rule.start == newest[(rule.quantity, rule.each)]]


def _undated(program: Program, item: Item) -> Problem | None:
    """The refusal of an item with no date that dated statements could price, refuse or free.

    Nothing is priced by today's clock: the item needs `at:` or `--at`.
    """
    values = item.values
    dated: list[tuple[Any, Any]] = [
        (rule.span, rule.window) for rule in candidate_rules(program, item) if rule.window is not None and rule.matches(values)
    ]
    dated += [
        (guard.span, guard.window or guard.outside)
        for guard in program.guards.get(item.kind, ()) if guard.dated and guard.refuses(values)
    ]
    dated += [(free.span, free.window) for free in program.frees.get(item.kind, ()) if free.window is not None and free.matches(values)]
    if program.layers:
        dated += dated_rules(program, item.kind, values)
    if not dated:
        return None
    cited = ", ".join(dict.fromkeys(f"{span.where} {window}" for span, window in dated))
    days = [w.start for _, w in dated if w.start is not None] or [w.end for _, w in dated if w.end is not None]
    hint = max(days).isoformat()
    return _problem(
        item,
        f"{item.kind} usage is priced differently by date ({cited}) and this item has no date; "
        f"give it `at:` (e.g. at: {hint}) or price undated items at one date with `--at DATE`",
        code="BU205",
    )


def candidate_rules(program: Program, item: Item) -> tuple[PriceRule, ...]:
    """The price rules that could price an item: its kind's, and its model's when the kind has one."""
    unindexed = program.unindexed.get(item.kind, ())
    model_field = program.kinds[item.kind].model_field
    if model_field is None:
        return unindexed
    model = cast(str, item.values.get(model_field))  # None (no model given) finds no rule
    return (*program.by_model.get(item.kind, {}).get(model, ()), *unindexed)


def evaluate_items(program: Program, items: Sequence[Item], problems: Sequence[Problem] = ()) -> Bill:
    """Price every item, or raise UsageError with every problem when any is refused."""
    all_problems = list(problems)
    priced: list[ItemBill] = []
    for item in items:
        bill, refused = price_item(program, item)
        if refused:
            all_problems.extend(refused)
        elif bill is not None:
            priced.append(bill)
    periods: tuple[PeriodBill, ...] = ()
    if program.periodic and not all_problems:
        tally = PeriodTally(program, lambda amount: round_amount(program, "each charge", amount))
        try:
            for item, bill in zip(items, priced, strict=True):
                tally.add(item.kind, item.values, bill.charges)
            periods, period_problems = tally.result()
        except decimal.DecimalException:
            period_problems = [Problem("a period's amounts cannot be computed exactly", code="BU204")]
        all_problems.extend(period_problems)
    if all_problems:
        all_problems.sort(key=lambda p: (p.source or "", p.item or 0))
        raise UsageError(all_problems)
    try:
        total = round_amount(
            program, "the total", exact_sum([*(b.subtotal for b in priced), *(p.total for p in periods)])
        )
    except decimal.DecimalException:
        raise UsageError([Problem("the total cannot be computed exactly", code="BU204")]) from None
    return Bill(program.currency, priced, total, periods, overlays_of(program))


def _closest(program: Program, item: Item, candidates: Iterable[PriceRule]) -> str:
    """Why the nearest rule (fewest unmet conditions) does not apply, for messages."""
    kind = program.kinds[item.kind]
    best: list[str] | None = None
    best_rule = None
    for rule in candidates:
        failing = failing_conditions(rule.conditions, kind.fields, item.values)
        if best is None or len(failing) < len(best):
            best, best_rule = failing, rule
    at = item.values.get("at")
    if best_rule is not None and not best and at is not None and best_rule.window is not None:
        return f"; the closest rule ({best_rule.where}) prices it {best_rule.window}, and this item is dated {at}"
    if best_rule is None or not best:
        return ""
    return f"; the closest rule ({best_rule.where}) needs " + " and ".join(best)


# Rounding at the exact context's precision: the default context (28 digits) fails on large amounts.
_ROUNDING = decimal.Context(prec=EXACT.prec, Emax=EXACT.Emax, Emin=EXACT.Emin, traps=[decimal.InvalidOperation])


def round_amount(program: Program, target: str, amount: Decimal) -> Decimal:
    """`amount` rounded as the rules declare for `target` ("each charge", "the total")."""
    for rounding in program.rounding:
        if rounding.target == target:
            exponent = Decimal(1).scaleb(-rounding.places)
            return amount.quantize(exponent, rounding=ROUNDING_MODES[rounding.mode], context=_ROUNDING)
    return amount


_ZERO = Decimal(0)


def line_charge(program: Program, kind: str, rule: Any, quantity: Any = 0, amount: Decimal = Decimal(0)) -> Charge:
    """The bill line a price rule (or a `free` statement) gives for `quantity`."""
    if not isinstance(rule, PriceRule):  # a free statement: one zero line for the item
        return Charge(kind, 1, None, None, Decimal(1), Decimal(0), rule.span.where, free_id(kind, rule), rule.reason, rule.window)
    what = rule.quantity + "".join(f" ({value})" for _, value in rule.each)
    unit = program.kinds[kind].unit_of(rule.quantity)
    charge = Charge(
        what, quantity, unit, rule.rate, rule.per, amount, rule.where, rule.id, rule.free, rule.window, rule.basis, rule.block
    )
    listed = rule.list_rule
    if listed is not None:  # an overlay changed the rate: the bill shows the list's too
        cited = listed.basis or ((listed.where, listed.id, listed.rate),)
        charge = attrs.evolve(charge, list_rate=list_rate(rule, listed), list_rule=listed.where, list_id=listed.id, list_basis=cited)
    return charge


def free_id(kind: str, free: Any) -> str:
    """The stable id of a `free` statement's line: its kind and its reason."""
    return rule_identity(kind, "free", [free.reason])


def _problem(item: Item, message: str, field: str | None = None, *, code: str) -> Problem:
    return Problem(message, item.index, item.name, field, item.source, code=code)


def _key_values(program: Program, item: Item) -> str:
    """The values that choose a price (model, region, choices), for messages."""
    kind = program.kinds[item.kind]
    shown = []
    for spec in kind.fields:
        if isinstance(spec.type, (t.ModelType, t.RegionType, t.EnumType, t.FlagType)) and spec.name in item.values:
            value = item.values[spec.name]
            shown.append(f"{spec.name} {str(value).lower() if isinstance(value, bool) else value}")
    return ", ".join(shown) if shown else "these fields"


@attrs.frozen
class Plan:
    """How every item with the same deciding values is priced (see Pricer)."""

    refusal: str | None  # the reason every such item is refused
    # (quantity, charge id, rule); quantity "" for a free item, which counts 1
    charges: tuple[tuple[str, str, Any], ...] = ()
    zero: tuple[str, ...] = ()  # quantities that must be 0, or the item goes the slow way for its message
    slow: bool = False  # the rules overlap here: always price the slow way, for the full message
    # Per charge, its quantity and bill line with quantity and amount 0 (a free item's
    # line as it is): an itemized bill copies the rest of each line from here.
    lines: tuple[tuple[str, Charge], ...] = ()


class Pricer:
    """Prices raw usage items one at a time, for streams: charges, or the reason not.

    Items whose deciding values (model, region, choices, flags, and any quantity a
    condition reads) are the same are priced the same way, so the way (a `Plan`) is
    worked out once per combination and reused. An item the fast path does not accept
    as it is goes the slow way, through `check_items` and `price_item`, which give the
    same result with the full message. Thread-safe: a plan is computed from immutable
    rules, and two threads computing the same plan store equal values.
    """

    MAX_PLANS = 50_000  # per kind; past it, plans are computed and not kept

    def __init__(self, program: Program):
        self.program = program
        self._plans: dict[str, dict[tuple, Plan]] = {name: {} for name in program.kinds}
        self._kinds = {name: _FastKind(program, name) for name in program.kinds}
        self._rounds_each = any(r.target == "each charge" for r in program.rounding)
        self._rounds_total = any(r.target == "the total" for r in program.rounding)
        self._periodic = program.periodic
        self._currency = program.currency
        self._overlays = overlays_of(program)
        self._bounds = window_bounds(program)
        self._instants: dict[str, tuple[str, int]] = {}  # an `at` as written: its text in bills, its span of days

    def price(self, raw: Mapping[str, Any]) -> tuple[tuple[Charge, ...], Mapping[str, Any]] | tuple[None, str]:
        """Itemized charges of one item with its checked values, or the reason it is refused."""
        items, problems = check_items(self.program, [raw])
        if not problems:
            bill, problems = price_item(self.program, items[0])
            if bill is not None:
                return bill.charges, items[0].values
        return None, "; ".join(_reason(p) for p in problems)

    def batch_counts(self, kind: str, dated: bool = False) -> tuple[tuple[str, int | None], ...] | None:
        """The count fields of a kind that batches (see Batch), with their defaults; else None.

        A kind batches when its deciding fields are text (model, region, choices) and
        all its other fields are counts; with `dated`, a dated kind too (its items
        summed per window of days by the caller, see `plan_of`). Which of its items
        can be summed their deciding values tell: see `summable`.
        """
        fast_kind = self._kinds.get(kind)
        if fast_kind is None or fast_kind.raw_key is None or (fast_kind.dated and not dated):
            return None
        counts: list[tuple[str, int | None]] = []
        for field, simple, has_default, default, optional in fast_kind.rest:
            if simple is not _COUNT or optional:
                return None
            counts.append((field, cast(int, default) if has_default else None))  # a count's default is an int
        return tuple(counts)

    def batchable(self, raw: Mapping[str, Any], layout: Sequence[str]) -> Batch | None:
        """How to price, many at a time, the items that share this item's deciding fields.

        `layout` names the fields of a row (count fields, then `name`); a row ends with the
        item's size. A dated kind's batch holds items whose `at` falls in the same span of days between
        the rules' window edges as this one's (the caller keys batches by `segment`).
        """
        counts = self.batch_counts(raw.get("kind"), dated=True)  # type: ignore[arg-type]
        if counts is None:
            return None
        fast_kind = self._kinds[raw["kind"]]
        if fast_kind.dated and type(raw.get("at")) is not str:
            return None  # the batch key's span of days is read from `at`'s text: a date given otherwise goes item by item
        fast = self._dated_plan(fast_kind, raw) if fast_kind.dated else self.fast(raw)
        if fast is None:
            return None
        values, plan = fast
        if plan.slow or not self.summable(raw["kind"], values, plan):
            return None
        assert fast_kind.raw_key is not None  # counts are only given for such kinds
        decided = {name: values[name] for name in fast_kind.decided if name in values}
        # The batch's items give the same deciding fields, and all an `at` or none (the key says).
        present = sum(1 for name in (*fast_kind.raw_key, "kind", "at") if raw.get(name) is not None)
        indices = tuple((layout.index(field), default) for field, default in counts)
        fields = tuple(field for field, _ in counts)
        return Batch(plan, decided, present, fields, indices, layout.index("name"), len(layout))

    def segment(self, at: Any) -> int | None:
        """The span of days between the rules' window edges an item's `at` text falls in
        (see `window_bounds`); None when it is not a date's text. Kept per text."""
        if type(at) is not str:
            return None
        known = self._instants.get(at)
        if known is None:
            known = self._instant(at)
            if known is None:
                return None
        return known[1]

    def summable(self, kind: str, values: Mapping[str, Any], plan: Plan) -> bool:
        """Whether the items of a kind that share these deciding values are priced alike
        whatever their counts, by `plan`, which charges only counts: then their counts may
        be summed and priced once. Not so where a rule that can apply to them reads a
        count or a derived quantity (a rate chosen by a request's size): those items are
        priced one by one."""
        counts = self.batch_counts(kind, dated=True)
        if counts is None or self._kinds[kind].beyond(values, plan):
            return False
        names = {name for name, _ in counts}
        return all(quantity in names for quantity in plan.zero) and all(
            quantity in names for quantity, _, _ in plan.charges if quantity
        )

    def fast(self, raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], Plan] | None:
        """The checked values and plan of an item, or None when it must go the slow way."""
        try:
            fast_kind = self._kinds.get(raw.get("kind"))  # type: ignore[arg-type]
        except (AttributeError, TypeError):  # not a mapping, or a list for a kind: the slow way says so
            return None
        if fast_kind is None or fast_kind.dated or not fast_kind.allowed.issuperset(raw):
            return None  # a dated kind's price depends on the day: the slow way decides
        plan: Plan | None
        if fast_kind.raw_key is not None:
            # The deciding values are fields as written: look the plan up before checking them.
            raw_key = tuple(map(raw.get, fast_kind.raw_key, fast_kind.absent))
            try:
                known = fast_kind.by_raw_key.get(raw_key)
            except TypeError:  # a list or object where a name belongs: the slow way says so
                return None
            if known is not None and known is not _BEYOND:
                kept: Plan = known[0]
                values = fast_kind.check_rest(raw, known[1])
                if values is None or kept.slow:
                    return None
                for quantity in kept.zero:
                    if values.get(quantity, 0) != 0:
                        return None
                return values, kept
        values = fast_kind.check(raw)
        if values is None:
            return None
        # Items whose deciding values no applicable rule reads past share a plan; the others
        # are keyed by every value a rule of the kind reads (a long-context rate reads the size).
        beyond = fast_kind.beyond(values)
        key = fast_kind.key(values) if beyond else fast_kind.deciding_key(values)
        plans = self._plans[fast_kind.name]
        plan = plans.get(key)
        if plan is None:
            plan = self._plan(fast_kind.name, values)
            if not beyond and plan.refusal is not None:
                beyond = fast_kind.beyond(values, plan)  # a refusal's message may quote more
                if beyond:
                    key = fast_kind.key(values)
            if len(plans) < self.MAX_PLANS:
                plans[key] = plan
        if fast_kind.raw_key is not None and len(fast_kind.by_raw_key) < self.MAX_PLANS:
            raw_key = tuple(map(raw.get, fast_kind.raw_key, fast_kind.absent))
            fast_kind.by_raw_key[raw_key] = (
                _BEYOND if beyond else (plan, {name: values[name] for name in fast_kind.decided if name in values})
            )
        if plan.slow:
            return None
        for quantity in plan.zero:
            if values.get(quantity, 0) != 0:
                return None
        return values, plan

    def plan_of(self, raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], Plan] | None:
        """`fast`, for dated kinds too: the checked values and plan of an item, or None when it
        must go the slow way. A dated item's plan holds for the days its rules' windows hold
        alike (see `Program.dated_kinds`); it is not kept here: callers key it by those days."""
        fast_kind = self._kinds.get(raw.get("kind"))  # type: ignore[arg-type]
        if fast_kind is None or not fast_kind.dated:
            return self.fast(raw)
        found = self._dated_plan(fast_kind, raw)
        if found is None:
            return None
        values, plan = found
        for quantity in plan.zero:
            if values.get(quantity, 0) != 0:
                return None
        return None if plan.slow else (values, plan)

    def _dated_plan(self, fast_kind: _FastKind, raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], Plan] | None:
        """A dated item's checked values and plan, the counts it gives aside (see `plan_of`).
        A plan that prices (no refusal, whose message may quote more) is kept per deciding
        values and span of days between window edges, where no rule reads past those values."""
        values = fast_kind.check(raw)
        if values is None or values.get("at") is None:
            return None
        if fast_kind.beyond(values):
            return values, self._plan(fast_kind.name, values)
        key = (fast_kind.deciding_key(values), bisect.bisect_right(self._bounds, values["at"].day))
        plans = self._plans[fast_kind.name]  # `fast` keeps no plan of a dated kind: the two never share a key
        plan = plans.get(key)
        if plan is None:
            plan = self._plan(fast_kind.name, values)
            if plan.refusal is None and len(plans) < self.MAX_PLANS:
                plans[key] = plan
        return values, plan

    def _plan(self, kind_name: str, values: Mapping[str, Any]) -> Plan:
        item = Item(0, None, kind_name, values)
        program = self.program
        if program.refusing(item.kind, item.values):
            return Plan(_refusal(program, item))
        _, matched, frees = _matching(program, item)
        if not matched and not frees:
            return Plan(_refusal(program, item))
        charges_of = [(rule.quantity, rule.each) for rule in matched]
        if len(set(charges_of)) != len(charges_of) or not all(_exact_per_unit(rule) for rule in matched):
            return Plan(None, slow=True)
        if any(rule.block or rule.tiers is not None for rule in matched):  # not linear in the quantity
            return Plan(None, slow=True)
        covered = {rule.quantity for rule in matched}
        zero = [q for q in program.quantities.get(kind_name, ()) if q not in covered]
        zero += [rule.quantity for rule in matched if rule.refusal is not None]
        charges = [(rule.quantity, rule.id, rule) for rule in matched if rule.refusal is None]
        charges += [("", free_id(kind_name, free), free) for free in frees]
        lines = tuple((quantity, line_charge(program, kind_name, rule)) for quantity, _, rule in charges)
        return Plan(None, tuple(charges), tuple(zero), lines=lines)

    def bill(self, raw_items: Sequence[Any], source: str | None = None) -> Bill | None:
        """The itemized bill of raw items the quick way, or None when any needs the slow way.

        Equal to `evaluate_items(check_items(...))` (the plans are the slow path's
        decisions, made once): an embedding program pricing one response at a time pays
        two dictionary lookups, a check of each count and the arithmetic (see `_Shape`).
        """
        if self._periodic:  # period lines and true-ups are priced across items: the slow way
            return None
        priced = []
        total = _ZERO
        index = 0
        item_bill = self._item_bill
        for raw in raw_items:
            index += 1
            item = item_bill(raw, index, source)
            if item is None:
                return None
            priced.append(item)
            try:
                total = _exact_add(total, item.subtotal)
            except decimal.DecimalException:
                return None  # refused the slow way, with its message
        return self._bill(tuple(priced), total)

    def one(self, raw: Any, source: str | None = None) -> Bill | None:
        """`bill([raw], source)`: one item's bill the quick way, or None."""
        if self._periodic:
            return None
        item = self._item_bill(raw, 1, source)
        if item is None:
            return None
        # The total is 0 + the subtotal, which is the subtotal itself, digits and exponent:
        # a subtotal is a sum that starts at 0 (its exponent is at most 0, and it is never -0).
        if self._rounds_total:
            return self._bill((item,), item.subtotal)
        return new_bill(self._currency, (item,), item.subtotal, (), self._overlays)

    def quick_item(self, raw: Any) -> ItemBill | None:
        """One item's bill the quick way (as the first of a bill), or None when it needs the slow way."""
        return None if self._periodic else self._item_bill(raw, 1, None)

    def _bill(self, items: tuple[ItemBill, ...], total: Decimal) -> Bill | None:
        if self._rounds_total:
            try:
                total = round_amount(self.program, "the total", total)
            except decimal.DecimalException:
                return None
        return new_bill(self._currency, items, total, (), self._overlays)

    def _item_bill(self, raw: Any, index: int, source: str | None) -> ItemBill | None:
        """One raw item's bill the quick way, or None when it needs the slow way."""
        try:
            fast_kind = self._kinds.get(raw.get("kind"))
        except (AttributeError, TypeError):  # not a mapping, or a list for a kind: the slow way says so
            return None
        if fast_kind is None:
            return None
        if fast_kind.count_fields is None:
            return self._planned_item_bill(raw, index, source)
        keys = tuple(raw)
        shape = fast_kind.shapes.get(keys)
        if shape is None:
            shape = self._shape(fast_kind, keys)
            if shape is None:  # an unknown key, or a count that must be given is not
                return None
        try:
            key = shape.key(raw)
            if shape.at:
                known_at = self._instants.get(raw["at"]) if type(raw["at"]) is str else None
                if known_at is None:
                    known_at = self._instant(raw["at"])
                    if known_at is None:
                        return None
                at_text, segment = known_at
                if fast_kind.dated:
                    key = (key, segment)
            else:
                at_text = None
            lines = shape.lines.get(key)
        except TypeError:  # a list or object where a name belongs: the slow way says so
            return None
        if lines is None:
            lines = self._lines(fast_kind, shape, raw, key)
            if lines is None:
                return None
        elif lines is _SLOW_LINES:
            return None
        if shape.named:
            name = raw["name"]
            if name is not None and type(name) is not str:
                return None
        else:
            name = None
        counts = shape.counts(raw)
        for value in counts:
            if type(value) is not int or value < 0 or value >= _COUNT_BOUND:
                return None  # the slow way refuses it, with its message
        for position in lines.zero:
            if counts[position]:
                return None
        charges = []
        subtotal = _ZERO
        plain = lines.plain
        for position, rate, per, line in lines.lines:
            if position < 0:  # the same for every such item: a free item's line, a count left out
                amount = line.amount
            else:
                quantity = counts[position]
                if rate is None:
                    amount = _ZERO
                else:
                    try:
                        amount = _narrow_divide(_narrow_multiply(quantity, rate), per)
                    except decimal.DecimalException:
                        try:
                            amount = EXACT.divide(EXACT.multiply(quantity, rate), per)
                        except decimal.DecimalException:
                            return None  # refused the slow way, with its message
                    if not plain and self._rounds_each:
                        try:
                            amount = round_amount(self.program, "each charge", amount)
                        except decimal.DecimalException:
                            return None
                line = charge_like(line, quantity, amount)
            if plain and subtotal is _ZERO:  # 0 + amount is the amount itself (see _Lines.plain)
                subtotal = amount
            else:
                try:
                    subtotal = _exact_add(subtotal, amount)
                except decimal.DecimalException:
                    return None  # refused the slow way, with its message
            charges.append(line)
        return new_item_bill(index, name, fast_kind.name, tuple(charges), subtotal, source, at_text)

    def _shape(self, fast_kind: _FastKind, keys: tuple) -> _Shape | None:
        """How to read items of a kind that give these keys, in this order; kept. None when an
        item with these keys goes the slow way (an unknown key, a required count left out)."""
        if not fast_kind.allowed.issuperset(keys):
            return None
        if fast_kind.dated and "at" not in keys:  # priced by date, and no date: the slow way refuses or prices it
            return None
        assert fast_kind.count_fields is not None  # only kinds whose other fields are counts have shapes
        given = [(field, default) for field, default in fast_kind.count_fields if field in keys]
        left = [(field, default) for field, default in fast_kind.count_fields if field not in keys]
        if any(default is _NOT_SIMPLE for _, default in left):
            return None
        shape = _Shape(
            given_values([field for field in fast_kind.raw_key or () if field in keys]),
            given_values([field for field, _ in given]),
            tuple(None if default is _ABSENT else default for _, default in left),
            tuple(field for field, _ in given + left),
            "name" in keys,
            "at" in keys,
        )
        if len(fast_kind.shapes) < self.MAX_PLANS:
            fast_kind.shapes[keys] = shape
        return shape

    def _instant(self, at: Any) -> tuple[str, int] | None:
        """An item's `at` as the bill shows it and the span of days between the rules' window
        edges it falls in (see `window_bounds`); None when it is no date. Kept per text."""
        instant = read_instant(at) if type(at) is str else None
        if not isinstance(instant, Instant):
            return None
        known = (str(instant), bisect.bisect_right(self._bounds, instant.day))
        if len(self._instants) >= self.MAX_PLANS:
            self._instants.clear()
        self._instants[at] = known
        return known

    def _lines(self, fast_kind: _FastKind, shape: _Shape, raw: Mapping[str, Any], key: Any) -> _Lines | None:
        """The bill lines of the items of this shape whose deciding fields (and span of days) are
        `key`, worked out from this one by `fast` (or `plan_of`) and kept; None when it needs
        the slow way."""
        # A dated item's plan without `plan_of`'s check of the counts that must be 0: the lines
        # keep those (`_Lines.zero`), so an item that gives one goes the slow way, the others not.
        found = self._dated_plan(fast_kind, raw) if fast_kind.dated else self.fast(raw)
        if found is None:
            return None
        values, plan = found
        if plan.refusal is not None or plan.slow or fast_kind.beyond(values):
            # Priced the slow way whatever its counts (a refusal, tiers), or a rule that can
            # apply reads more than the key (a long-context rate reads the prompt's size):
            # every item of this key goes the slow way, without asking again.
            if len(shape.lines) < self.MAX_PLANS:
                shape.lines[key] = _SLOW_LINES
            return None
        positions = {field: position for position, field in enumerate(shape.order)}
        if not all(quantity in positions for quantity in plan.zero) or not all(q in positions for q, _ in plan.lines if q):
            return None
        given = len(shape.order) - len(shape.fill)
        if any(shape.fill[positions[quantity] - given] for quantity in plan.zero if positions[quantity] >= given):
            return None  # a count left out whose default must be 0 and is not: refused the slow way
        entries: list[tuple[int, Decimal | None, Decimal, Charge]] = []
        for quantity, line in plan.lines:
            if not quantity:  # a free item's line, as it is
                entries.append((-1, None, line.per, line))
            elif positions[quantity] < given:
                entries.append((positions[quantity], line.rate, line.per, line))
            elif (default := shape.fill[positions[quantity] - given]) is not None:  # left out: its default
                try:
                    amount = _ZERO if line.rate is None else _exact_amount(default, line.rate, line.per)
                    if line.rate is not None and self._rounds_each:
                        amount = round_amount(self.program, "each charge", amount)
                except decimal.DecimalException:
                    return None
                entries.append((-1, None, line.per, charge_like(line, default, amount)))
            # an optional count left out: no line, as in price_item
        # Each amount is quantity x rate / per, exact, so its exponent is at most the rate's
        # less the per's; at most 0, and with a rate >= 0, 0 + the amount is the amount itself.
        plain = not self._rounds_each and all(
            line.rate is None or (not line.rate.is_signed() and _exponent(line.rate) <= _exponent(line.per)) for _, line in plan.lines
        )
        lines = _Lines(tuple(entries), tuple(positions[quantity] for quantity in plan.zero if positions[quantity] < given), plain)
        if len(shape.lines) < self.MAX_PLANS:
            shape.lines[key] = lines
        return lines

    def _planned_item_bill(self, raw: Any, index: int, source: str | None) -> ItemBill | None:
        """An item's bill from its plan (`fast`), for kinds with fields besides names and counts."""
        fast = self.fast(raw)
        if fast is None:
            return None
        values, plan = fast
        if plan.refusal is not None:
            return None
        charges = []
        subtotal = _ZERO
        for quantity_name, line in plan.lines:
            if not quantity_name:  # a free item's line
                charges.append(line)
                subtotal = _exact_add(subtotal, line.amount)
                continue
            quantity = values.get(quantity_name)
            if quantity is None:  # an optional quantity left out: no line, as in price_item
                continue
            rate = line.rate
            if rate is None:
                amount = _ZERO
            else:
                try:
                    amount = _exact_amount(quantity, rate, line.per)
                    if self._rounds_each:
                        amount = round_amount(self.program, "each charge", amount)
                except decimal.DecimalException:
                    return None  # refused the slow way, with its message
            try:
                subtotal = _exact_add(subtotal, amount)
            except decimal.DecimalException:
                return None  # refused the slow way, with its message
            charges.append(charge_like(line, quantity, amount))
        at = values.get("at")
        return new_item_bill(index, raw.get("name"), raw["kind"], tuple(charges), subtotal, source, None if at is None else str(at))


class _Shape:
    """How the quick way reads items of one kind that give the same keys in the same order.

    `key(raw)`: the deciding fields given (what `lines` is kept by, with the span of days
    under dated rules); `counts(raw)`: the counts given, to be checked; `fill`: each count
    left out, its default (None for an optional one: no line). `order` names the given
    counts, then those left out; `named`, `at`: whether a name, a date is given. Items of
    the same deciding values (and days) are priced by the same `_Lines`, kept here.
    """

    __slots__ = ("key", "counts", "fill", "order", "named", "at", "lines")

    def __init__(
        self, key: Callable[[Any], Any], counts: Callable[[Any], tuple], fill: tuple, order: tuple[str, ...], named: bool, at: bool
    ):
        self.key = key
        self.counts = counts
        self.fill = fill
        self.order = order
        self.named = named
        self.at = at
        self.lines: dict[Any, _Lines] = {}


def given_values(fields: Sequence[str]) -> Callable[[Any], tuple]:
    """The values of `fields` in a mapping that holds them all, as a tuple, at C speed."""
    if len(fields) >= 2:
        return operator.itemgetter(*fields)
    if len(fields) == 1:
        field = fields[0]
        return lambda raw: (raw[field],)
    return lambda raw: ()


class _Lines:
    """A plan's bill lines for the quick way, for one `_Shape`, in bill order: (position of
    its count in the counts the shape reads, rate, per, the line with quantity and amount 0),
    or (-1, None, per, the line as it is) for a line every such item has alike (a free
    item's, a count left out at its default). `zero`: positions of counts that must be 0;
    `plain`: no rounding, and every rate >= 0 with an exponent at most its per's (so 0 +
    an amount is the amount, digits and all). Immutable once made: shared between threads."""

    __slots__ = ("lines", "zero", "plain")

    def __init__(self, lines: tuple[tuple[int, Decimal | None, Decimal, Charge], ...], zero: tuple[int, ...], plain: bool):
        self.lines = lines
        self.zero = zero
        self.plain = plain


_exact_add = EXACT.add


def _exponent(value: Decimal) -> int:
    return cast(int, value.as_tuple().exponent)  # a finite rate's: never 'n', 'N' or 'F'


# Exact arithmetic at a working precision that covers ordinary amounts: an exact result
# is the same Decimal (digits and exponent) whatever the precision that holds it, and a
# wider one is computed about three times more slowly. What does not fit (Rounded,
# Inexact) is computed again in EXACT, which decides.
_NARROW = decimal.Context(
    prec=40, Emax=EXACT.Emax, Emin=EXACT.Emin,
    traps=[decimal.Inexact, decimal.Rounded, decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_narrow_multiply = _NARROW.multiply
_narrow_divide = _NARROW.divide


def _exact_amount(quantity: Any, rate: Decimal, per: Decimal) -> Decimal:
    """quantity x rate / per, exactly: the same value and digits as in `price_item`."""
    try:
        return _narrow_divide(_narrow_multiply(quantity, rate), per)
    except decimal.DecimalException:
        return EXACT.divide(EXACT.multiply(quantity, rate), per)


_ABSENT = object()
_BEYOND = object()  # a raw key whose plan depends on more than the deciding values
_SLOW_LINES = _Lines((), (), False)  # a shape's key whose items all go the slow way


def _sum_of_counts(expr: m.Expr, counts: Collection[str]) -> bool:
    """Whether a derived quantity adds counts (and whole constants) only: for any counts it
    is a count, never below 0, never inexact, so the quick way, which computes no derived
    quantity, refuses nothing the slow way would refuse for it. Its value still decides
    nothing there: `_lines` takes the quick way only where no rule that can apply reads it."""
    if isinstance(expr, m.FieldRef):
        return expr.name in counts
    if isinstance(expr, m.Number):
        return expr.value >= 0 and expr.value == expr.value.to_integral_value()
    if isinstance(expr, m.Binary):
        return expr.op == "+" and _sum_of_counts(expr.left, counts) and _sum_of_counts(expr.right, counts)
    return False


def window_bounds(program: Program) -> list[datetime.date]:
    """The days on which some window of the rules (or of an overlay) opens, or closes (the
    day after its last): between two of them, every window holds every day alike or none."""
    windows = [rule.window for rule in program.rules]
    for table in (program.frees, program.guards, program.relatives):
        for statements in table.values():
            for statement in statements:
                windows += [getattr(statement, "window", None), getattr(statement, "outside", None)]
    for layer in program.layers:
        windows += [layer.window, *(getattr(rule, "window", None) for rule in layer.rules)]
    bounds = set()
    for window in windows:
        if window is None or not hasattr(window, "contains"):
            continue
        if window.start is not None:
            bounds.add(window.start)
        if window.end is not None:
            bounds.add(window.end + datetime.timedelta(days=1))
    return sorted(bounds)


def _exact_per_unit(rule: PriceRule) -> bool:
    """Whether rate / per is a finite decimal, so that any count's amount is exact and
    summing counts before pricing gives the sum of the items' amounts. (A rate per 3
    units is not: such rules are priced item by item, where an inexact amount is refused.)"""
    if rule.rate is None:
        return True
    try:
        EXACT.divide(rule.rate, rule.per)
    except decimal.DecimalException:
        return False
    return True


def _refusal(program: Program, item: Item) -> str:
    _, problems = price_item(program, item)
    return "; ".join(_reason(p) for p in problems)


class _FastKind:
    """A kind's fields, checked the quick way: anything unusual is left to check_items."""

    def __init__(self, program: Program, name: str):
        kind = program.kinds[name]
        self.name = name
        self.derived = kind.derived
        self.model_field = kind.model_field
        self.provider_of = program.provider_of
        self.dated = name in program.dated_kinds
        # `at` changes no price of an undated kind: it is checked, and kept for the bill.
        self.allowed = frozenset({"kind", "name", "at", *(f.name for f in kind.fields)})
        # (name, quick check or None, has default, default, optional)
        self.fields = tuple(
            (spec.name, _simple_check(spec.type, program), spec.has_default, spec.default, spec.optional)
            for spec in kind.fields
        )
        discrete = {
            spec.name for spec in kind.fields
            if isinstance(spec.type, (t.ModelType, t.RegionType, t.EnumType, t.FlagType))
        }
        read: set[str] = set()
        for rule in program.rules:
            if rule.kind == name:
                for cond in rule.conditions:
                    read |= fields_of(cond)
        for guard in program.guards.get(name, ()):
            if guard.condition is not None:
                read |= fields_of(guard.condition)
        for free in program.frees.get(name, ()):
            for cond in free.conditions:
                read |= fields_of(cond)
        for rel in program.relatives.get(name, ()):
            for cond in rel.conditions:
                read |= fields_of(cond)
            if rel.field is not None:
                read.add(rel.field)
        for layer in program.layers:  # an overlay's conditions decide prices too
            for overlay_rule in layer.rules:
                if overlay_rule.kind == name:
                    for cond in overlay_rule.conditions:
                        read |= fields_of(cond)
                    if overlay_rule.relative is not None and overlay_rule.relative.field is not None:
                        read.add(overlay_rule.relative.field)
        read.discard("provider")  # follows from the model
        # Every value some rule reads: a plan is the same for items equal in all of them.
        self.key_fields = tuple(sorted(discrete | read))
        # The deciding values (model, region, choices, flags): for most items, those the
        # rules that can apply to them read (see `beyond`), and then they alone key a plan.
        self.deciding = tuple(sorted(discrete))
        self.program = program
        self._beyond: dict[tuple, tuple[frozenset[str], frozenset[str]]] = {}
        # When every deciding value is text, plans can be found from the raw item before
        # its deciding fields are checked; `decided` are those fields, with `provider`, as
        # checking makes them. Only text-valued fields qualify: as dict keys, 1 == True ==
        # Decimal(1), "1" is none of them.
        textual = {
            spec.name for spec in kind.fields if isinstance(spec.type, (t.ModelType, t.RegionType, t.EnumType))
        }
        self.raw_key = self.deciding if set(self.deciding) <= textual else None
        self.absent = (_ABSENT,) * len(self.deciding)  # map(raw.get, raw_key, absent): the key at C speed
        self.decided = (*self.deciding, "provider")
        self.by_raw_key: dict[tuple, Any] = {}  # raw key -> (plan, decided values), or _BEYOND
        self.rest = tuple(f for f in self.fields if f[0] not in set(self.deciding))
        # A kind whose other fields are all counts is billed the quick way from `shapes`
        # (see `_Shape`): `count_fields` are those counts, each with its default, or _ABSENT
        # when it may be left out, or _NOT_SIMPLE when it must be given.
        self.shapes: dict[tuple, _Shape] = {}
        self.count_fields: tuple[tuple[str, Any], ...] | None = None
        counts = {field[0] for field in self.rest}
        if (
            self.raw_key is not None
            and all(field[1] is _COUNT for field in self.rest)
            and all(_sum_of_counts(derived.expr, counts) for derived in self.derived)
        ):
            self.count_fields = tuple(
                (field, default if has_default else _ABSENT if optional else _NOT_SIMPLE)
                for field, _, has_default, default, optional in self.rest
            )
        always = {spec.name for spec in kind.fields if spec.has_default or not spec.optional}
        if set(self.key_fields) <= always and len(self.key_fields) > 1:
            self.key: Callable[[Any], Any] = operator.itemgetter(*self.key_fields)
        else:
            self.key = lambda values: tuple(values.get(name, _ABSENT) for name in self.key_fields)

    def deciding_key(self, values: Mapping[str, Any]) -> tuple:
        return tuple(values.get(name, _ABSENT) for name in self.deciding)

    def beyond(self, values: Mapping[str, Any], plan: Plan | None = None) -> frozenset[str]:
        """What the rules that can apply to items with these deciding values read besides
        them; with a refusal `plan`, what its message can quote besides them too."""
        key = self.deciding_key(values)
        found = self._beyond.get(key)
        if found is None:
            known = (*self.deciding, "provider")
            found = (
                reads_beyond(self.program, self.name, values, known), quoted_beyond(self.program, self.name, values, known),
            )
            if len(self._beyond) < Pricer.MAX_PLANS:
                self._beyond[key] = found
        return found[0] | found[1] if plan is not None and plan.refusal is not None else found[0]

    def check_rest(self, raw: Mapping[str, Any], decided: Mapping[str, Any]) -> dict[str, Any] | None:
        """Values of an item whose deciding fields were checked before (`decided`)."""
        return self._fill(raw, self.rest, dict(decided))

    def check(self, raw: Mapping[str, Any]) -> dict[str, Any] | None:
        if not self.allowed.issuperset(raw):
            return None
        return self._fill(raw, self.fields, {})

    def _fill(self, raw: Mapping[str, Any], fields: tuple, values: dict[str, Any]) -> dict[str, Any] | None:
        """`values` with `fields` of `raw` checked, defaults, the provider and derived quantities."""
        name = raw.get("name")
        if name is not None and type(name) is not str:
            return None
        if "at" in raw:
            at = raw["at"]
            instant = read_instant(at) if type(at) is str else None
            if not isinstance(instant, Instant):
                return None
            values["at"] = instant
        for field, simple, has_default, default, optional in fields:
            if field in raw:
                if simple is None:
                    return None
                value = simple(raw[field])
                if value is _NOT_SIMPLE:
                    return None
                values[field] = value
            elif has_default:
                values[field] = default
            elif not optional:
                return None
        if self.model_field is not None and "provider" not in values:
            model = values.get(self.model_field)
            if model is not None:
                values["provider"] = self.provider_of(model)
        for derived in self.derived:
            try:
                value = derived.compute(values)
            except Missing:
                continue
            except decimal.DecimalException:
                return None
            if value < 0:  # refused the slow way, with its message
                return None
            values[derived.name] = value
        return values


_NOT_SIMPLE = object()


_COUNT_BOUND = 10**limits.MAX_DIGITS  # larger counts go the slow way, which refuses them


def _count_check(value: Any) -> Any:
    return value if type(value) is int and 0 <= value < _COUNT_BOUND else _NOT_SIMPLE


_COUNT = _count_check


@attrs.frozen
class Batch:
    """Prices many items that share their deciding fields, with few Python-level steps.

    The items arrive as rows (see `Accumulator`): each the values of a fixed list of
    fields, read while the item was at hand, and its number of keys. A batch checks
    and sums whole columns with C-level builtins; anything unusual sends it the slow way.
    """

    plan: Plan
    decided: Mapping[str, Any]
    present: int  # deciding fields the batch's items give (the same for all of them)
    fields: tuple[str, ...]  # the kind's count fields, in the order of `sums`
    counts: tuple[tuple[int, int | None], ...]  # (row index, default or None if required) per count field
    name_index: int
    size_index: int

    def sums(self, rows: Sequence[tuple]) -> list[int] | None:
        """Per count field, the sum over all rows; None when any row needs the slow way.

        Every key a row holds must be a field the check below counts: the rows' sizes
        must add up to the fields found, which (the fields being distinct keys, each
        row holding at least its own) holds only when no row has an unknown key.
        """
        columns = list(zip(*rows, strict=True))
        n = len(rows)
        names = columns[self.name_index]
        named = n - names.count(None)
        if named and not set(map(type, names)) <= _NAME_TYPES:
            return None
        expected = self.present * n + named
        sums = []
        for index, default in self.counts:
            column: Sequence[Any] = columns[index]
            missing = column.count(None)
            if missing:
                if default is None:
                    return None
                column = [v for v in column if v is not None]
            expected += n - missing
            if column and (set(map(type, column)) != _INT or min(column) < 0 or max(column) >= _BATCH_COUNT_BOUND):
                return None
            sums.append(sum(column) + (default or 0) * missing)
        if sum(columns[self.size_index]) != expected:
            return None
        # Quantities no rule prices here, or a rule refuses, must be 0 in every row
        # (counts are >= 0, so a zero sum says so); otherwise rows are refused one by one.
        totals = dict(zip(self.fields, sums, strict=True))
        if any(totals.get(quantity, 1) != 0 for quantity in self.plan.zero):
            return None
        return sums


# Counts past any real usage (10^18) send their batch item by item: an item whose own
# subtotal cannot be computed exactly is then refused by name, not folded into a sum.
_BATCH_COUNT_BOUND = 10**18
_NAME_TYPES = frozenset({str, type(None)})
_INT = {int}


def _simple_check(field_type: t.FieldType, program: Program):
    """A quick check-and-convert for one field type, or None to always go the slow way."""
    if isinstance(field_type, t.CountType):
        return _COUNT
    if isinstance(field_type, t.FlagType):
        return lambda v: v if v is True or v is False else _NOT_SIMPLE
    if isinstance(field_type, t.ModelType):
        aliases = program.aliases
        return lambda v: aliases.get(v, _NOT_SIMPLE) if type(v) is str else _NOT_SIMPLE
    if isinstance(field_type, (t.RegionType, t.EnumType)):
        allowed = frozenset(program.regions if isinstance(field_type, t.RegionType) else field_type.values)
        return lambda v: v if type(v) is str and v in allowed else _NOT_SIMPLE
    if isinstance(field_type, t.ListOf) and isinstance(field_type.item, t.EnumType):
        allowed = frozenset(field_type.item.values)
        return lambda v: tuple(v) if type(v) is list and all(type(x) is str and x in allowed for x in v) else _NOT_SIMPLE
    return None


def _reason(problem: Problem) -> str:
    return f"field {problem.field}: {problem.message}" if problem.field else problem.message
