"""The public face of a loaded ruleset: load once, evaluate many, from any thread."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .bill import Bill
from .compiler import compile_files
from .errors import Problem
from .fields import DateType, Instant, convert
from .interpreter import Pricer, evaluate_items
from .limits import MAX_ITEMS
from .loader import BUNDLED_NAME, load_program
from .model import Example
from .overlays import compile_layers
from .program import Program
from .totals import Accumulator, Totals
from .usage import Item, check_items, items_of, read_document

__all__ = ["BUNDLED_NAME", "Ruleset", "load"]


class Ruleset:
    """A compiled ruleset. Immutable once loaded, so one instance serves every thread."""

    __slots__ = ("_program", "_pricer")

    def __init__(self, program: Program):
        self._program = program
        self._pricer: Pricer | None = None  # made on first use; its plan caches are safe to share between threads

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its parsed rule files, compiled again when unpickled, so a ruleset can
        go to a process pool or to Spark executors. The compiled conditions are closures,
        which pickle cannot carry; the parsed files (frozen values) and their lines can, and
        compiling them is deterministic, so the copy prices exactly as the original does."""
        program = self._program
        layers = tuple((layer.path, layer.files) for layer in program.layers)
        return _compiled, (program.files, dict(program.sources), program.root, layers)

    def _shared_pricer(self) -> Pricer:
        if self._pricer is None:
            self._pricer = Pricer(self._program)  # two threads may both make one: either serves
        return self._pricer

    @property
    def program(self) -> Program:
        """What the rules mean, resolved: for the tools (check, explain, diff) built on a ruleset."""
        return self._program

    @property
    def sources(self) -> Mapping[str, tuple[str, ...]]:
        """Each rule file's lines, by the name messages show for it."""
        return self._program.sources

    @property
    def currency(self) -> str:
        return self._program.currency

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._program.kinds)

    @property
    def item_fields(self) -> frozenset[str]:
        """What a usage item can be grouped by: `kind`, `name`, and every field and quantity of a kind."""
        return self._program.item_fields

    @property
    def examples(self) -> tuple[Example, ...]:
        return self._program.examples

    def evaluate(self, document: Mapping[str, Any], source: str | None = None, at: When = None) -> Bill:
        """Price a usage document (`{"usage": [...]}`); raises UsageError when refused.

        `at` (a date, a zoned datetime, or their ISO text) dates the items with no `at` of their own.
        """
        if at is None and type(document) is dict and len(document) == 1:
            usage = document.get("usage")
            if type(usage) is list:  # the same bill, from the plans, when they can
                pricer = self._pricer or self._shared_pricer()
                if len(usage) == 1:
                    bill = pricer.one(usage[0], source)
                    if bill is not None:
                        return bill
                elif len(usage) <= MAX_ITEMS:
                    bill = pricer.bill(usage, source)
                    if bill is not None:
                        return bill
        return self.evaluate_items(items_of(document, source), source, at)

    def evaluate_items(self, items: Iterable[Mapping[str, Any]], source: str | None = None, at: When = None) -> Bill:
        """Price usage items given one by one, without building a document."""
        items = list(items)
        if at is None:  # the quick way knows only the items' own dates
            bill = self._shared_pricer().bill(items, source)
            if bill is not None:
                return bill
        checked, problems = self.check_items(items, source, at=at)
        return self.bill(checked, problems)

    def check_items(
        self, items: Iterable[Any], source: str | None = None, start: int = 1, at: When = None
    ) -> tuple[list[Item], list[Problem]]:
        """Raw usage items checked against their kinds: the checked items and every problem."""
        return check_items(self._program, list(items), source, start, _instant(at))

    def bill(self, items: Sequence[Item], problems: Sequence[Problem] = ()) -> Bill:
        """The bill of checked items; raises UsageError with `problems` and every refusal."""
        return evaluate_items(self._program, items, problems)

    def accumulator(self, group_by: Sequence[str] = ()) -> Accumulator:
        """An empty running total, sharing this ruleset's pricing plans."""
        return Accumulator(self._program, group_by, self._shared_pricer())

    def totals(self, items: Iterable[Mapping[str, Any]], group_by: Sequence[str] = ()) -> Totals:
        """Totals-only pricing of a stream of usage items, in constant memory.

        Unlike `evaluate`, items the rules cannot price do not stop the run: they are
        counted per reason in `Totals.unpriced` (with their positions, 1-based).
        """
        accumulator = self.accumulator(group_by)
        accumulator.add_items(items)
        return accumulator.result()

    def evaluate_text(self, text: str, source: str = "<usage>", at: When = None) -> Bill:
        """Price a usage document given as JSON or YAML text."""
        return self.evaluate(read_document(text, source), source, at)


# What `at=` takes: ISO text, a date, a zoned datetime, or None (items keep their own dates).
When = str | datetime.date | Instant | None


def _instant(at: Any) -> Instant | None:
    """The `at` a caller gives, checked as a usage's `at:` is; ValueError when it is not a date."""
    if at is None or isinstance(at, Instant):
        return at
    value, problem = convert(at, DateType(), {})
    if problem:
        raise ValueError(f"at: {problem}")
    return value


def _compiled(files: Sequence[Any], sources: Mapping[str, Sequence[str]], root: str, layers: Sequence[Any] = ()) -> Ruleset:
    """A pickled ruleset, unpickled (see `Ruleset.__reduce__`)."""
    program = compile_files(files, sources, root)
    if layers:
        program = compile_layers(program, layers, sources)
    return Ruleset(program)


def load(path: str | Path | None = None, overlays: Sequence[str | Path] = ()) -> Ruleset:
    """Load a folder of rule files (or one file); the bundled Bedrock ruleset by default.

    `overlays`: overlay files or folders (a customer's rates), layered on the rules in order.
    Raises RuleFileError listing every problem in every file.
    """
    return Ruleset(load_program(path, overlays))
