"""Streaming totals: price any number of usage items in constant memory.

Charges are summed per group (`--group-by`) and per rule, so memory grows with the
number of groups and rules, not of items; since every charge is linear in its
quantity, the summed line is exactly the sum of the item lines. What cannot be priced
is counted per reason, with the first few places it occurred.
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import attrs

from .bill import Charge, PeriodBill, decimal_text, list_rate_of, list_rate_text, period_data, rate_text, render_period
from .display import align, csv_cell, encodable, visible
from .errors import Problem, UsageError
from .interpreter import Pricer, free_id, given_values, line_charge, round_amount
from .overlays import overlays_of
from .periods import PeriodTally
from .program import Program, rule_identity
from .semantics import EXACT, describe, exact_sum

MAX_PLACES = 5  # line numbers or item positions kept per unpriced reason
MAX_REASONS = 1_000  # distinct unpriced reasons kept; past it they are counted together
OTHER_REASONS = f"other reasons (past the first {MAX_REASONS:,} distinct ones)"


@attrs.define  # not frozen: one is made per record read, and a frozen init costs twice as much
class Entry:
    """One entry of a stream read from outside (a log record): its usage items and
    grouping attributes, or why it cannot be priced (some of its items may still be)."""

    line: int
    items: Sequence[Mapping[str, Any]] = attrs.field(factory=list)
    attributes: Mapping[str, str] = attrs.field(factory=dict)
    unpriced: str | None = None  # why (part of) the entry cannot be priced
    error_code: str | None = None  # a failed call: counted, not charged
    malformed: str | None = None  # not an entry at all


@attrs.frozen
class TotalLine:
    group: tuple[str, ...]
    rule_id: str
    what: str
    unit: str | None
    rate: Decimal | None
    per: Decimal
    rule: str
    quantity: Decimal | int
    amount: Decimal
    items: int
    note: str | None = None
    block: bool = False  # `per block of N`: the amount is the items' amounts summed
    list_rate: Decimal | None = None  # an overlay changed the rate: the list's (see Charge)
    list_rule: str | None = None
    list_id: str | None = None
    cited: str = ""  # the rule as the bill's table cites it (Charge.cited): window, relative steps, list rule


@attrs.frozen
class Unpriced:
    reason: str  # for people: the rules it cites as `file:line`
    count: int
    places: tuple[int, ...]
    # For machines (JSON): the same reason with each rule cited by a stable name, which a
    # comment or a moved rule does not change (see cited_by_id).
    stable: str = ""


@attrs.frozen
class Totals:
    currency: str
    group_by: tuple[str, ...]
    lines: tuple[TotalLine, ...]
    subtotals: tuple[tuple[tuple[str, ...], Decimal], ...]
    total: Decimal
    read: int
    priced: int
    failed_calls: tuple[tuple[str, int], ...]
    unpriced: tuple[Unpriced, ...]
    malformed: tuple[Unpriced, ...]
    # Monthly tables' tier lines and minimums' true-ups, per calendar month: priced from the
    # month's summed quantities, in no group (a tier charge has no per-group share).
    periods: tuple[PeriodBill, ...] = ()
    overlays: tuple[str, ...] = ()  # the overlays priced under, by title, in order (as Bill.overlays)

    @property
    def complete(self) -> bool:
        return not self.unpriced and not self.malformed


class Accumulator:
    """Adds usage items (or log records) one at a time; `result()` gives the Totals.

    Per group and rule it keeps the summed quantity; amounts are computed once, in
    `result()`, as summed quantity x rate / per. That equals the sum of the items'
    amounts exactly, because the arithmetic is exact and each charge is linear. When
    the rules round each charge, amounts are summed item by item instead.
    """

    def __init__(self, compiled: Program, group_by: Sequence[str] = (), pricer: Pricer | None = None):
        self.compiled = compiled
        self.pricer = pricer or Pricer(compiled)  # a shared one keeps its plans across streams
        self.group_by = tuple(group_by)
        self.read = 0
        self.priced = 0
        self._per_item = any(r.target == "each charge" for r in compiled.rounding)
        # (group, rule id) -> [rule or charge, summed quantity, summed amount or None, items]
        self._lines: dict[tuple[tuple[str, ...], str], list[Any]] = {}
        self._failed: dict[str, int] = {}
        self._unpriced: dict[str, list[Any]] = {}
        self._malformed: dict[str, list[Any]] = {}
        self.source: str | None = None  # the file being read, when there are several
        # Monthly tables and minimums: quantities summed per (month, tier set), amounts per
        # (month, minimum), priced in result(). Every item then goes the item-by-item way,
        # which gives its checked values (for the minimums' scopes) and its period charges.
        self._periods = (
            PeriodTally(compiled, lambda amount: round_amount(compiled, "each charge", amount)) if compiled.periodic else None
        )
        if self._periods is not None:
            self._per_item = True
        # Batching (add_items) is for kinds whose deciding fields are text and whose other
        # fields are counts. The batch key is the deciding fields of every such kind,
        # `kind`, and the grouping fields; a row is the kind's count fields, `name` and the size.
        # Under dated rules the key holds the span of days between window edges an item's
        # `at` falls in too (a plan holds for such a span), or None when it has no `at`.
        batching = [name for name in compiled.kinds if self.pricer.batch_counts(name, dated=True) is not None]
        fast_kinds = self.pricer._kinds
        deciding = {"kind", *(f for name in batching for f in fast_kinds[name].raw_key or ())}
        self._layouts: dict[str, tuple[str, ...]] = {}
        if batching and set(self.group_by) <= deciding:
            self._key_fields = tuple(sorted(deciding))
            self._layouts = {
                name: (*(field for field, _ in self.pricer.batch_counts(name, dated=True) or ()), "name") for name in batching
            }

    def _from_source(self, reason: str) -> str:
        """A reason with the file it comes from, when several are read: line numbers are per file."""
        return f"{self.source}: {reason}" if self.source else reason

    @property
    def total(self) -> Decimal:
        """The running total (for progress reports)."""
        try:
            return exact_sum(_amount(line) for line in self._lines.values())
        except decimal.DecimalException:
            raise _inexact() from None

    def add_record(self, record: Entry) -> None:
        """One entry: its items are charged; it counts as priced only when all of it is.

        An entry is counted once: malformed, else not priced (any reason, its own or an
        item's refusal, joined), else a failed call, else priced.
        """
        self.read += 1
        if record.malformed is not None:
            _count(self._malformed, self._from_source(record.malformed), record.line)
            return
        reasons = [record.unpriced] if record.unpriced is not None else []
        for item in record.items:
            refusal = self._charge(item, record.attributes)
            if refusal is not None:
                reasons.append(refusal)
        if reasons:
            _count(self._unpriced, self._from_source("; ".join(reasons)), record.line)
        elif record.error_code is not None:
            self._failed[record.error_code] = self._failed.get(record.error_code, 0) + 1
        else:
            self.priced += 1

    MAX_SHAPES = 1_000  # keys of items (in order) whose deciding fields have a reader kept
    MAX_UNBATCHABLE = 100_000  # keys remembered as not batching (a cache: past it, asked again)
    BATCH = 48  # items held per deciding-value combination: summed while still in the CPU's cache
    MAX_HELD = 20_000  # items held in all batches together: past it every batch is summed, so memory
    # stays flat however many distinct combinations a stream has

    def add_items(self, items: Iterable[Mapping[str, Any]], start: int = 1) -> None:
        """Many usage items: those sharing their deciding fields are checked and summed together.

        Items are held in batches of at most BATCH per combination, so memory stays
        bounded whatever the length of the stream. A batch that holds anything unusual
        is priced item by item, with the same result and the exact messages.
        """
        self._add_positioned(enumerate(items, start))

    def add_records(self, records: Iterable[Entry]) -> None:
        """Many records; their usage items are batched like `add_items` when a record holds one
        item and its grouping attributes say no more than the item's own fields (batches group by those)."""
        group_by = self.group_by
        if not set(group_by) <= self.compiled.item_fields:  # grouped by what only the records say (a day, a tag)
            for record in records:
                self.add_record(record)
            return

        def positioned() -> Iterator[tuple[int, Mapping[str, Any]]]:
            for record in records:
                items = record.items
                if len(items) != 1 or record.unpriced is not None or record.error_code is not None or record.malformed is not None:
                    self.add_record(record)
                    continue
                item = items[0]
                attributes = record.attributes
                for name in group_by:
                    if name in attributes:
                        said, value = attributes[name], item.get(name)
                        if said != value and said != group_text(value):  # the first test spares a call per record
                            self.add_record(record)  # grouped by what the record says, item by item
                            break
                else:
                    yield record.line, item

        self._add_positioned(positioned())

    def _add_positioned(self, pairs: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        if self._per_item or not self._layouts:
            for position, raw in pairs:
                self.add_item(raw, position)
            return
        pricer = self.pricer
        key_fields = self._key_fields
        readers: dict[tuple, Any] = {}  # an item's keys, in order -> a reader of the deciding fields it gives
        rows_of = {kind: _getter(layout, size=True) for kind, layout in self._layouts.items()}
        batches: dict[tuple, tuple[Any, list, list, list, Any]] = {}
        find = batches.get
        unbatchable: set[tuple] = set()
        limit = self.BATCH
        held = 0
        instants = pricer._instants  # an `at` text's (shown text, span of days), kept per text
        segment_of = pricer.segment
        for position, raw in pairs:
            # One read of the item while it is at hand: the deciding fields and the span
            # of days its `at` falls in (the batch key), then its kind's counts, the name and
            # the size, from which a batch is checked.
            try:
                keys = tuple(raw)
                read = readers.get(keys)
                if read is None:
                    read = given_values([field for field in key_fields if field in keys])
                    if len(readers) < self.MAX_SHAPES:
                        readers[keys] = read
                at = raw.get("at")
                known_at = instants.get(at) if type(at) is str else None
                key = (keys, read(raw), known_at[1] if known_at is not None else segment_of(at))
                known = find(key)
            except (AttributeError, TypeError):  # not a mapping, or unhashable values
                self.add_item(raw, position)
                continue
            if known is None:
                if key in unbatchable:
                    self.add_item(raw, position)
                    continue
                kind = raw.get("kind")
                layout = self._layouts.get(kind) if type(raw) is dict and type(kind) is str else None
                batch = pricer.batchable(raw, layout) if layout is not None else None
                if batch is None or batch.plan.refusal is not None:
                    if len(unbatchable) < self.MAX_UNBATCHABLE:
                        unbatchable.add(key)  # the slow way item by item: exact messages and places
                    self.add_item(raw, position)
                    continue
                known = batches[key] = (batch, [], [], [], rows_of[cast(str, kind)])  # a kind with a layout is its name
            rows = known[1]
            rows.append(known[4](raw))
            known[2].append(raw)
            known[3].append(position)
            held += 1
            if len(rows) >= limit:
                held -= len(rows)
                self._flush(known)
            elif held >= self.MAX_HELD:
                for each in batches.values():
                    self._flush(each)
                batches.clear()  # combinations seen once do not stay in memory either
                held = 0
        for known in batches.values():
            self._flush(known)

    def _flush(self, known: tuple[Any, list, list, list, Any]) -> None:
        batch, rows, raws, positions, _ = known
        if not rows:
            return
        sums = batch.sums(rows)
        if sums is None:
            for raw, position in zip(raws, positions, strict=True):
                self.add_item(raw, position)
        else:
            count = len(rows)
            self.read += count
            self.priced += count
            first = raws[0]  # the batch shares its deciding fields, and grouping uses no others
            group = self._group(first, batch.decided, {})
            self._add_sums(group, first["kind"], batch.plan, dict(zip(batch.fields, sums, strict=True)), count)
        rows.clear()
        raws.clear()
        positions.clear()

    def _add_sums(self, group: tuple[str, ...], kind: str, plan: Any, sums: Mapping[str, Any], count: int) -> None:
        """`count` items priced by `plan`, whose quantities add up to `sums`."""
        lines = self._lines
        for quantity_name, charge_id, rule in plan.charges:
            quantity = sums.get(quantity_name) if quantity_name else count
            if quantity is None:  # an optional quantity the items leave out: no line, as in a bill
                continue
            key = (group, charge_id)
            line = lines.get(key)
            if line is None:
                lines[key] = [line_charge(self.compiled, kind, rule), quantity, None, count]
            else:
                line[1] = _add(line[1], quantity)
                line[3] += count

    def add_sums(self, group: tuple[str, ...], kind: str, plan: Any, sums: Mapping[str, Any], count: int) -> None:
        """`count` priced items of one group, all priced by `plan` (`Pricer.plan_of`), whose
        quantities add up to `sums`: what a reader that sums counts itself hands over."""
        self.read += count
        self.priced += count
        self._add_sums(group, kind, plan, sums, count)

    def add_failed(self, error_code: str, count: int = 1) -> None:
        """`count` failed calls (not charged) with this error code."""
        self.read += count
        self._failed[error_code] = self._failed.get(error_code, 0) + count

    def sum_plan(self, raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any] | None:
        """(checked values, plan) of an item that stands for several whose counts it sums, or
        None when pricing the sum would not be pricing each item.

        The sum is priced like each item when the kind's fields besides its counts are
        deciding text, the items share the instant `raw` gives (dated rules), no rule that can apply to the items reads a count or a
        derived quantity (`Pricer.summable`), no rule rounds each charge, every count the
        items leave out defaults to 0, and the plan needs no item-by-item message.
        """
        kind = raw.get("kind")
        counts = self.pricer.batch_counts(kind, dated=True) if type(kind) is str and type(raw) is dict else None
        if self._per_item or counts is None or any(field not in raw and default for field, default in counts):
            return None
        found = self.pricer.plan_of(raw)  # a dated item's plan holds for its date: the items must share it
        if found is None or not self.pricer.summable(cast(str, kind), *found):
            return None  # a rule that can apply reads more than the counts' sums tell (a request's size)
        return found

    def add_summed(
        self, raw: Mapping[str, Any], count: int, places: Sequence[int] = (), attributes: Mapping[str, str] | None = None,
    ) -> bool:
        """`count` usage items that share every field but their counts, given as one item
        whose counts are the items' sums (`places`: the first few of the items' places,
        shown when the rules refuse them), as `count` add_record calls would add them.
        False, adding nothing, when `sum_plan` says the items must be added one by one."""
        found = self.sum_plan(raw)
        if found is None:
            return False
        values, plan = found
        self.read += count
        if plan.refusal is not None:
            _count_many(self._unpriced, self._from_source(plan.refusal), count, places)
            return True
        self.priced += count
        self._add_sums(self._group(raw, values, attributes or {}), raw["kind"], plan, values, count)
        return True

    def add_counted(self, outcome: str, reason: str, count: int, places: Sequence[int] = ()) -> None:
        """`count` entries read with one outcome: `malformed` or `unpriced` for `reason`, or
        `failed` calls with error code `reason` (the same as `count` add_record calls)."""
        self.read += count
        if outcome == "failed":
            self._failed[reason] = self._failed.get(reason, 0) + count
        else:
            _count_many(self._malformed if outcome == "malformed" else self._unpriced, self._from_source(reason), count, places)

    def partial(self) -> dict[str, Any]:
        """What this accumulator summed, as plain picklable data for `merge` (in another process)."""
        return {
            "read": self.read, "priced": self.priced, "lines": self._lines, "failed": self._failed,
            "unpriced": self._unpriced, "malformed": self._malformed,
        }

    def merge(self, partial: Mapping[str, Any]) -> None:
        """Add what another accumulator over the same rules and grouping summed (its `partial()`).

        Quantities and item counts add; amounts are computed once, in `result()`, so the
        merged totals are those of one accumulator that read everything. Partials merged
        in the order their inputs were read give the same reasons and places.
        """
        self.read += partial["read"]
        self.priced += partial["priced"]
        for key, (charge, quantity, amount, items) in partial["lines"].items():
            line = self._lines.get(key)
            if line is None:
                self._lines[key] = [charge, quantity, amount, items]
            else:
                line[1] = _add(line[1], quantity)
                if amount is not None:
                    line[2] = _add(line[2], amount)
                line[3] += items
        for code, count in partial["failed"].items():
            self._failed[code] = self._failed.get(code, 0) + count
        for name in ("unpriced", "malformed"):
            table = getattr(self, f"_{name}")
            for reason, (count, places) in partial[name].items():
                _count_many(table, reason, count, places)

    def add_item(self, raw: Mapping[str, Any], position: int, attributes: Mapping[str, str] | None = None) -> None:
        self.read += 1
        self._price(raw, attributes or {}, position)

    def add_bill_item(self, item: Any, values: Mapping[str, Any]) -> None:
        """An item already priced in a bill (`bill.ItemBill`), with its checked values."""
        self.read += 1
        self.priced += 1
        context = {"kind": item.kind, "name": item.name, **values}
        if self._periods is not None:
            self._periods.add(item.kind, values, item.charges)
        self._add_charges(tuple(self._group_value(name, context, {}) for name in self.group_by), item.charges)

    def _price(self, raw: Mapping[str, Any], attributes: Mapping[str, str], place: int) -> None:
        refusal = self._charge(raw, attributes)
        if refusal is None:
            self.priced += 1
        else:
            _count(self._unpriced, self._from_source(refusal), place)

    def _charge(self, raw: Mapping[str, Any], attributes: Mapping[str, str]) -> str | None:
        """The item's charges added to their lines; the reason when it is refused."""
        fast = None if self._per_item else self.pricer.fast(raw)
        if fast is not None:
            values, plan = fast
            if plan.refusal is not None:
                return plan.refusal
            self._add_sums(self._group(raw, values, attributes), raw["kind"], plan, values, 1)
            return None
        if not self._per_item and not self.group_by:
            # A dated item (`fast` leaves those out) the quick way, by the bill lines kept per
            # deciding values and span of days; None when it needs the slow way, which says why.
            quick = self.pricer.quick_item(raw)
            if quick is not None:
                self._add_charges((), quick.charges)
                return None
        charges, checked = self.pricer.price(raw)
        if charges is None:
            return cast(str, checked)  # refused: the reason
        if self._periods is not None:
            self._periods.add(raw["kind"], cast(Mapping[str, Any], checked), charges)
        self._add_charges(self._group(raw, cast(Mapping[str, Any], checked), attributes), charges)
        return None

    def _group(self, raw: Mapping[str, Any], values: Mapping[str, Any], attributes: Mapping[str, str]) -> tuple[str, ...]:
        """The item's group: its checked values (canonical model names), `kind` and `name`."""
        if not self.group_by:
            return ()
        context = {"kind": raw.get("kind"), "name": raw.get("name"), **values}
        return tuple(self._group_value(name, context, attributes) for name in self.group_by)

    def _add_charges(self, group: tuple[str, ...], charges: Iterable[Charge]) -> None:
        for charge in charges:
            if charge.period is not None:  # summed in its period (see PeriodTally), not on a line
                continue
            key = (group, charge.rule_id)
            line = self._lines.get(key)
            if line is None:
                # Per started block is not linear in the quantity: such lines sum the items' amounts.
                summed = self._per_item or charge.block
                self._lines[key] = [charge, charge.quantity, charge.amount if summed else None, 1]
            else:
                line[1] = _add(line[1], charge.quantity)
                if line[2] is not None:
                    line[2] = _add(line[2], charge.amount)
                line[3] += 1

    @staticmethod
    def _group_value(name: str, raw: Mapping[str, Any], attributes: Mapping[str, str]) -> str:
        if name in attributes:
            return attributes[name]
        return group_text(raw.get(name))

    def result(self) -> Totals:
        lines = []
        subtotals: dict[tuple[str, ...], Decimal] = {}
        # Within a group, lines come in the order of the rules in the rule files (the
        # order of the price page); free lines of whole items last.
        order = {rule.id: position for position, rule in enumerate(self.compiled.rules)}
        last = len(order)

        def place(entry: tuple[tuple[tuple[str, ...], str], Any]) -> tuple:
            (group, charge_id), _ = entry
            return (group, order.get(charge_id, last), charge_id)

        try:
            for (group, _), line in sorted(self._lines.items(), key=place):
                charge, quantity, _, items = line
                amount = _amount(line)
                lines.append(TotalLine(
                    group, charge.rule_id, charge.what, charge.unit, charge.rate, charge.per, charge.rule,
                    quantity, amount, items, charge.note, charge.block, charge.list_rate, charge.list_rule, charge.list_id,
                    charge.cited,
                ))
                subtotals[group] = EXACT.add(subtotals.get(group, Decimal(0)), amount)
            periods: tuple[PeriodBill, ...] = ()
            if self._periods is not None:
                periods, problems = self._periods.result()
                if problems:  # a period that cannot be priced: no total is shown as whole without it
                    raise UsageError(problems)
            total = round_amount(
                self.compiled, "the total", exact_sum([*subtotals.values(), *(period.total for period in periods)])
            )
        except decimal.DecimalException:  # each record exact, the sum past EXACT's digits
            raise _inexact() from None
        # The rules reasons cite, by a stable name for machines: worked out once, when any is.
        ids = citation_ids(self.compiled) if self._unpriced or self._malformed else {}
        return Totals(
            currency=self.compiled.currency,
            group_by=self.group_by,
            lines=tuple(lines),
            subtotals=tuple(sorted(subtotals.items())),
            total=total,
            read=self.read,
            priced=self.priced,
            failed_calls=tuple(sorted(self._failed.items())),
            unpriced=_unpriced(self._unpriced, ids),
            malformed=_unpriced(self._malformed, ids),
            periods=periods,
            overlays=overlays_of(self.compiled),
        )


def _getter(fields: Sequence[str], size: bool = False):
    """A function giving a mapping's values for `fields` as a tuple (None when absent),
    then, with `size`, its number of keys. Up to four fields are spelled out: on the hot
    path that is about twice as fast as map()."""
    n = len(fields)
    if n == 4:
        a, b, c, d = fields
        if size:
            return lambda raw: (raw.get(a), raw.get(b), raw.get(c), raw.get(d), len(raw))
        return lambda raw: (raw.get(a), raw.get(b), raw.get(c), raw.get(d))
    if n == 3:
        a, b, c = fields
        if size:
            return lambda raw: (raw.get(a), raw.get(b), raw.get(c), len(raw))
        return lambda raw: (raw.get(a), raw.get(b), raw.get(c))
    if n == 2:
        a, b = fields
        if size:
            return lambda raw: (raw.get(a), raw.get(b), len(raw))
        return lambda raw: (raw.get(a), raw.get(b))
    if size:
        return lambda raw: (*map(raw.get, fields), len(raw))
    return lambda raw: tuple(map(raw.get, fields))


def _inexact() -> UsageError:
    """The refusal of a sum of exact charges that needs more digits than exact arithmetic
    holds: the same as a usage document's (interpreter.evaluate_items), never rounded."""
    return UsageError([Problem("the total cannot be computed exactly", code="BU204")])


def _add(a: Any, b: Any) -> Any:
    """Two quantities (or amounts) added exactly: ints as ints, anything else in EXACT;
    Python's default context would round a Decimal sum past 28 digits without a word."""
    if type(a) is int and type(b) is int:
        return a + b
    try:
        return EXACT.add(a, b)
    except decimal.DecimalException:
        raise _inexact() from None


def _amount(line: list[Any]) -> Decimal:
    charge, quantity, amount, _ = line
    if amount is not None:
        return amount
    if charge.rate is None:
        return Decimal(0)
    return EXACT.divide(EXACT.multiply(quantity, charge.rate), charge.per)


def group_text(value: Any) -> str:
    """A field's value as a group's name: `true`, `a, b` for a list, `(none)` when absent."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ", ".join(group_text(v) for v in value) or "(none)"
    if isinstance(value, Mapping):
        return " ".join(f"{k}={group_text(v)}" for k, v in value.items())
    return str(value)


def where(unpriced: Unpriced, place: str = "line") -> str:
    """`line 8`, `lines 3, 9`, or `lines 1, 2, 3, 4, 5, …` when there were more."""
    shown = ", ".join(str(p) for p in unpriced.places) + (", …" if unpriced.count > len(unpriced.places) else "")
    return f"{place}{'s' if unpriced.count > 1 else ''} {shown}"


def _count(table: dict[str, list[Any]], reason: str, place: int) -> None:
    if reason not in table and len(table) >= MAX_REASONS:  # memory stays bounded on hostile input
        reason = OTHER_REASONS
    entry = table.setdefault(reason, [0, []])
    entry[0] += 1
    if len(entry[1]) < MAX_PLACES or place < entry[1][-1]:
        entry[1] = sorted([*entry[1], place])[:MAX_PLACES]


def _count_many(table: dict[str, list[Any]], reason: str, count: int, places: Sequence[int]) -> None:
    """`_count` for `count` entries at once, `places` the first few of theirs."""
    if reason not in table and len(table) >= MAX_REASONS:
        reason = OTHER_REASONS
    entry = table.setdefault(reason, [0, []])
    entry[0] += count
    entry[1] = sorted([*entry[1], *places])[:MAX_PLACES]


def _unpriced(table: Mapping[str, list[Any]], ids: Mapping[str, str]) -> tuple[Unpriced, ...]:
    found = [Unpriced(reason, count, tuple(places), cited_by_id(reason, ids)) for reason, (count, places) in table.items()]
    return tuple(sorted(found, key=lambda u: (-u.count, u.stable, u.reason)))


_CITATION = re.compile(r"[^\s(),;]+:[0-9]+")  # `ROOT:FILE.rules:14` (a bundled ruleset), `rules/main.rules:20`


def cited_by_id(reason: str, ids: Mapping[str, str]) -> str:
    """`reason` with every rule it cites by place named by its stable id instead."""
    return _CITATION.sub(lambda found: ids.get(found.group(0), found.group(0)), reason)


def citation_ids(program: Program) -> dict[str, str]:
    """Each place a reason can cite (`rules/main.rules:14`) to a stable name of what stands there.

    A table row holds a rule per charge: `text/input_tokens, output_tokens[model = a]`. A
    guard, a relative price or a free rule is named by what it means, as rule ids are.
    """
    found: dict[str, set[str]] = {}

    def add(where: str, name: str) -> None:
        found.setdefault(where, set()).add(name)

    for rule in program.rules:
        add(rule.where, rule.id)
    for minimum in program.minimums:
        add(minimum.where, minimum.id)
    for _kind, guards in sorted(program.guards.items()):
        for guard in guards:
            kinds = ", ".join(sorted(guard.kinds)) or "any"
            parts = [describe(guard.condition) if guard.condition is not None else guard.reason]
            parts += [f"{label} {window}" for label, window in (("in", guard.window), ("offered", guard.outside)) if window]
            add(guard.span.where, rule_identity(kinds, "refuse", parts))
    for kind, relatives in sorted(program.relatives.items()):
        for rel in relatives:
            parts = [rel.text, *(describe(c) for c in rel.conditions), *([str(rel.window)] if rel.window else [])]
            add(rel.where, rule_identity(kind, "relative", parts))
    for kind, frees in sorted(program.frees.items()):
        for free in frees:
            add(free.span.where, free_id(kind, free))  # as its bill lines name it
    for layer in program.layers:
        for overlay_rule in layer.rules:
            parts = [overlay_rule.text, *(describe(c) for c in overlay_rule.conditions)]
            parts += [str(overlay_rule.window)] if overlay_rule.window else []
            add(overlay_rule.where, rule_identity(overlay_rule.kind, f"overlay {layer.title}", parts))
    return {where: _one_name(names) for where, names in found.items()}


def _one_name(names: set[str]) -> str:
    """One name for the rules on one line: a table row's charges, or a statement's kinds, share the rest."""
    if len(names) == 1:
        return next(iter(names))
    parts = set()
    for name in names:
        head, _, tail = name.partition("[")
        kind, _, charge = head.rpartition("/")
        parts.add((kind, charge, tail))
    kinds, charges, tails = ({p[i] for p in parts} for i in range(3))
    if len(tails) == 1 and len(kinds) == 1:
        return f"{next(iter(kinds))}/{', '.join(sorted(charges))}[{next(iter(tails))}"
    if len(tails) == 1 and len(charges) == 1:
        return f"{', '.join(sorted(kinds))}/{next(iter(charges))}[{next(iter(tails))}"
    return " | ".join(sorted(names))


# Output ---------------------------------------------------------------------------


# 2: a line names its rule by its stable id alone (1 also cited `file:line`).
SCHEMA = "bedrock-rules/totals/2"  # bedrock_rules/schemas/totals.json


def to_data(totals: Totals, place: str = "line") -> dict[str, Any]:
    """JSON-ready data with a fixed key order and decimal strings."""
    return {
        "schema": SCHEMA,
        "currency": totals.currency,
        "total": decimal_text(totals.total),
        "group_by": list(totals.group_by),
        "counts": {
            "read": totals.read,
            "priced": totals.priced,
            "failed_calls": sum(c for _, c in totals.failed_calls),
            "unpriced": sum(u.count for u in totals.unpriced),
            "malformed": sum(u.count for u in totals.malformed),
        },
        "groups": [
            {
                "group": dict(zip(totals.group_by, group, strict=True)),
                "subtotal": decimal_text(subtotal),
                "charges": [_line_data(line) for line in totals.lines if line.group == group],
            }
            for group, subtotal in totals.subtotals
        ],
        "failed_calls": [{"error_code": code, "count": count} for code, count in totals.failed_calls],
        "unpriced": [{"reason": u.stable or u.reason, "count": u.count, f"first_{place}s": list(u.places)} for u in totals.unpriced],
        "malformed": [
            {"reason": u.stable or u.reason, "count": u.count, f"first_{place}s": list(u.places)} for u in totals.malformed
        ],
        **({"periods": [period_data(period) for period in totals.periods]} if totals.periods else {}),
    }


def _line_data(line: TotalLine) -> dict[str, Any]:
    return {
        "id": line.rule_id,
        "what": line.what,
        "quantity": decimal_text(line.quantity),
        "unit": line.unit,
        "rate": None if line.rate is None else decimal_text(line.rate),
        "per": decimal_text(line.per),
        "amount": decimal_text(line.amount),
        "items": line.items,
        **({"note": line.note} if line.note else {}),
        **({"block": True} if line.block else {}),
        # An overlay changed the rate: the list's rate and rule (by id) beside it.
        **({"list_rate": None if line.list_rate is None else decimal_text(line.list_rate), "list_id": line.list_id}
           if line.list_id is not None else {}),
    }


def dump(totals: Totals, place: str = "line") -> str:
    return encodable(json.dumps(to_data(totals, place), indent=2, ensure_ascii=False)) + "\n"


def render_csv(totals: Totals) -> str:
    """One row per summed charge; group columns first.

    Rules are named by their stable ids (no `file:line`, which moves when a line is added).
    Text cells (groups, ids, names, units) go through `csv_cell`, so a value
    written by someone else is never a spreadsheet formula; the number columns are
    exact decimals, written as they are.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    listed = bool(totals.overlays)  # under overlays, each line's list rate, and the list's rule where an overlay changed it
    writer.writerow([
        *map(csv_cell, totals.group_by), "id", "what", "quantity", "unit", "rate", "per", "amount", "items",
        *(("list_rate", "list_id") if listed else ()),
    ])
    for line in totals.lines:
        listing = () if not listed else (_rate_cell(list_rate_of(line)), csv_cell(line.list_id or ""))
        writer.writerow([
            *map(csv_cell, line.group), csv_cell(line.rule_id), csv_cell(line.what), decimal_text(line.quantity),
            csv_cell(line.unit or ""), _rate_cell(line.rate), decimal_text(line.per),
            decimal_text(line.amount), line.items, *listing,
        ])
    for period in totals.periods:  # in no group: a month's tier lines and true-ups
        for tier in period.lines:
            writer.writerow([
                *("" for _ in totals.group_by), csv_cell(tier.rule_id), csv_cell(f"period {period.month} {tier.tier_set} {tier.tier}"),
                decimal_text(tier.quantity), csv_cell(tier.unit or ""), _rate_cell(tier.rate),
                decimal_text(tier.per), decimal_text(tier.amount), "", *(("", "") if listed else ()),
            ])
        for true_up in period.true_ups:
            writer.writerow([
                *("" for _ in totals.group_by), csv_cell(true_up.rule_id), csv_cell(f"period {period.month} true-up {true_up.label}"),
                decimal_text(true_up.charged), "", "", "", decimal_text(true_up.amount), "", *(("", "") if listed else ()),
            ])
    return out.getvalue()


def _rate_cell(rate: Decimal | None) -> str:
    return "" if rate is None else decimal_text(rate)


def render_table(totals: Totals, place: str = "line") -> str:
    """The totals for people: a line per group and rule, cited as the bill's table cites it;
    under overlays, with the list rate beside the rate (as the bill's table)."""
    listed = bool(totals.overlays)
    header = (*totals.group_by, "charge", "quantity", *(("list rate",) if listed else ()), "rate", "amount", "rule")
    rows: list[tuple[str, ...]] = []
    width = len(totals.group_by)
    for group, subtotal in totals.subtotals:
        first = True
        for line in (x for x in totals.lines if x.group == group):
            quantity = decimal_text(line.quantity) + (f" {line.unit}" if line.unit else "")
            rate = rate_text(line, totals.currency)
            list_rate = (list_rate_text(line, totals.currency),) if listed else ()
            shown_group = group if first else ("",) * width
            rows.append((*shown_group, line.what, quantity, *list_rate, rate, decimal_text(line.amount), line.cited))
            first = False
        if width:
            rows.append((*("",) * width, "subtotal", "", *(("",) if listed else ()), "", decimal_text(subtotal), ""))
    out = align([header, *rows], right={width + 1, width + 3 + listed}, ruled=True)
    for period in totals.periods:
        out.append("")
        out.extend(render_period(period, totals.currency))
    out.extend(f"overlay: {overlay}" for overlay in totals.overlays)
    out.append(f"total: {decimal_text(totals.total)} {totals.currency}")
    failed = sum(c for _, c in totals.failed_calls)
    if place == "item":  # usage documents: refusals stop the run, so everything read is priced
        out.append(f"items: {totals.read} read, {totals.priced} priced")
    else:
        out.append(
            f"records: {totals.read} read, {totals.priced} priced, {failed} failed calls (not charged), "
            f"{sum(u.count for u in totals.unpriced)} not priced, {sum(u.count for u in totals.malformed)} malformed"
        )
    for code, count in totals.failed_calls:
        out.append(f"  failed: {visible(code)} x {count}")
    for title, entries in (("not priced", totals.unpriced), ("malformed", totals.malformed)):
        if entries:
            out.append(f"{title}:")
            for u in entries:
                out.append(f"  {u.count} x {visible(u.reason)} ({where(u, place)})")
    return "\n".join(out) + "\n"
