"""Bills of large usage documents, priced item by item, with memory that does not grow per item.

`Ruleset.evaluate` returns a `Bill` holding every item; a document of a million items
would hold gigabytes. Here each item is read, checked, priced and written before the
next is read (`usage.stream_items`), and what stays is small: the running total, at most
the problems a refusal lists (and a count of the rest), a column's width. The written
items wait in a temporary file until the last item was read, because a bill is never
shown in part: any problem, in any item, refuses the whole input with every problem
listed, as `evaluate` does, and the temporary file is dropped unread.

The output is byte for byte what `dump` and `render_table` give for the same bill.
"""

from __future__ import annotations

import decimal
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol, TextIO

from .bill import (
    LISTED_HEADER,
    LISTED_RIGHT,
    TABLE_HEADER,
    TABLE_RIGHT,
    Bill,
    ItemBill,
    PeriodBill,
    dump,
    item_data,
    render_period,
    table_rows,
    total_line,
)
from .display import Aligner, encodable
from .errors import MAX_LISTED_PROBLEMS, Problem, UsageError
from .fields import Instant
from .interpreter import price_item, round_amount
from .periods import PeriodTally
from .program import Program
from .semantics import EXACT, exact_sum
from .usage import check_items

SPOOL = 1 << 20  # characters of written items kept in memory before they go to a temporary file


class Sink(Protocol):
    """Where priced items go: a bill written item by item, or running totals."""

    def add(self, item: ItemBill, values: Mapping[str, Any]) -> None: ...

    def finish(self, total: Decimal, out: TextIO) -> None: ...

    def add_periods(self, periods: tuple[PeriodBill, ...]) -> None:
        """Monthly tier lines and true-ups, priced once every item was read (before `finish`)."""


def price_documents(
    program: Program,
    documents: Iterable[tuple[str, Callable[[], Iterator[Any]]]],
    sink: Sink,
    out: TextIO,
    several: bool = False,
    at: Instant | None = None,
) -> None:
    """Price every item of every document into `sink`, then write it to `out`; or raise
    UsageError with every problem (at most the listed number, and a count of the rest)
    and write nothing.

    `documents` are (source, items) with `items()` giving a document's raw items (or
    raising UsageError for the document); with `several`, items are named by document.
    """
    problems = Problems()
    total = Decimal(0)
    total_exact = True
    # Monthly tables and minimums price a month's total: the tally keeps sums per month, not items.
    tally = PeriodTally(program, lambda amount: round_amount(program, "each charge", amount)) if program.periodic else None
    for source, items in documents:
        shown = source if several else None
        found = Problems()
        try:
            for index, raw in enumerate(items(), 1):
                bill = None
                checked, bad = check_items(program, [raw], shown, index, at)
                if checked:
                    bill, refused = price_item(program, checked[0])
                    bad.extend(refused)
                if bad:
                    found.extend(bad)
                elif bill is not None and not problems.count and not found.count:  # once refused, nothing more is written
                    sink.add(bill, checked[0].values)
                    if tally is not None:
                        tally.add(bill.kind, checked[0].values, bill.charges)
                    try:
                        total = EXACT.add(total, bill.subtotal)
                    except decimal.DecimalException:
                        total_exact = False
        except UsageError as error:  # the document as a whole: its items' problems are not reported (as `evaluate`)
            found = Problems()
            found.extend(error.problems)
        problems.merge(found)
    periods: tuple[PeriodBill, ...] = ()
    if not problems.count and tally is not None:
        try:
            periods, period_problems = tally.result()
            total = EXACT.add(total, exact_sum(period.total for period in periods))
        except decimal.DecimalException:
            period_problems = [Problem("a period's amounts cannot be computed exactly", code="BU204")]
        problems.extend(period_problems)
    if not problems.count:
        try:
            if not total_exact:
                raise decimal.Inexact
            total = round_amount(program, "the total", total)
        except decimal.DecimalException:
            raise UsageError([Problem("the total cannot be computed exactly", code="BU204")]) from None
    if problems.count:
        raise UsageError(problems.listed())
    if periods:
        sink.add_periods(periods)
    sink.finish(total, out)


class Problems:
    """Problems in the order a refusal lists them (by document, then item), holding at most
    the listed number and one more, and counting all."""

    def __init__(self) -> None:
        self.held: list[Problem] = []
        self.count = 0

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.count += 1
            if len(self.held) <= MAX_LISTED_PROBLEMS:
                self.held.append(problem)

    def merge(self, other: Problems) -> None:
        # A stable sort by (document, item), as `evaluate` sorts: earlier documents first among equals.
        self.held = sorted([*self.held, *other.held], key=lambda p: (p.source or "", p.item or 0))[: MAX_LISTED_PROBLEMS + 1]
        self.count += other.count

    def listed(self) -> list[Problem]:
        if self.count <= MAX_LISTED_PROBLEMS + 1:
            return self.held
        return [*self.held[:MAX_LISTED_PROBLEMS], Problem(f"… and {self.count - MAX_LISTED_PROBLEMS:,} more problems")]


class JsonBill:
    """The JSON bill (`bill.dump`), its items written as they come: the total, which comes
    first in the bill, is known only at the end, so they wait in a temporary file."""

    def __init__(self, currency: str, overlays: tuple[str, ...] = ()):
        self.currency = currency
        self.overlays = overlays  # the overlays priced under, by title (bill.Bill.overlays)
        self._items = tempfile.SpooledTemporaryFile(SPOOL, mode="w+", encoding="utf-8", newline="\n")
        self._first = True
        self._periods: tuple[PeriodBill, ...] = ()

    def add(self, item: ItemBill, values: Mapping[str, Any]) -> None:
        text = json.dumps(item_data(item, bool(self.overlays)), indent=2, ensure_ascii=False)
        # Indented as the bill's items are, two levels deep.
        self._items.write(("    " if self._first else ",\n    ") + encodable(text).replace("\n", "\n    "))
        self._first = False

    def add_periods(self, periods: tuple[PeriodBill, ...]) -> None:
        self._periods = periods

    def finish(self, total: Decimal, out: TextIO) -> None:
        empty = dump(Bill(self.currency, (), total, self._periods, self.overlays))
        # The items go where the empty bill has `"items": []`; the periods, when any, follow them.
        head, marker, tail = empty.partition('"items": []')
        if not marker:
            raise AssertionError("the JSON bill has no items key")
        if self._first:
            out.write(empty)
        else:
            out.write(head + '"items": [\n')
            self._items.seek(0)
            _copy(self._items, out)
            out.write("\n  ]" + tail)
        self._items.close()


class TableBill:
    """The bill's table (`bill.render_table`), its rows aligned once the widest is known."""

    def __init__(self, currency: str, overlays: tuple[str, ...] = ()):
        self.currency = currency
        self.overlays = overlays  # under overlays, a `list rate` column and a line naming each
        listed = bool(overlays)
        self._rows = Aligner(LISTED_HEADER if listed else TABLE_HEADER, right=LISTED_RIGHT if listed else TABLE_RIGHT, ruled=True)
        self._periods: tuple[PeriodBill, ...] = ()

    def add(self, item: ItemBill, values: Mapping[str, Any]) -> None:
        for row in table_rows(item, self.currency, bool(self.overlays)):
            self._rows.add(row)

    def add_periods(self, periods: tuple[PeriodBill, ...]) -> None:
        self._periods = periods

    def finish(self, total: Decimal, out: TextIO) -> None:
        for line in self._rows.lines():
            out.write(line + "\n")
        for period in self._periods:
            out.write("\n" + "\n".join(render_period(period, self.currency)) + "\n")
        for overlay in self.overlays:
            out.write(f"overlay: {overlay}\n")
        out.write(total_line(total, self.currency) + "\n")


class TotalsOf:
    """Running totals (`--group-by`, CSV): each priced item is added to an accumulator."""

    def __init__(self, accumulator: Any, write: Callable[[Any, TextIO], object]):
        self.accumulator = accumulator
        self.write = write

    def add(self, item: ItemBill, values: Mapping[str, Any]) -> None:
        self.accumulator.add_bill_item(item, values)

    def add_periods(self, periods: tuple[PeriodBill, ...]) -> None:
        pass  # the accumulator sums the months itself (Accumulator.add_bill_item)

    def finish(self, total: Decimal, out: TextIO) -> None:
        self.write(self.accumulator.result(), out)


def _copy(source: Any, out: TextIO, size: int = 1 << 16) -> None:
    while True:
        chunk = source.read(size)
        if not chunk:
            return
        out.write(chunk)
