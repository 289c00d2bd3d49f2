"""The public face of a loaded ruleset: load once, evaluate many, from any thread."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import compiler
from .bill import Bill
from .interpreter import evaluate_items
from .model import Example
from .resources import bundled_rules
from .usage import check_items, items_of, read_document

if TYPE_CHECKING:
    from .totals import Totals

# How messages and bills name the bundled ruleset's folder, wherever it is installed.
BUNDLED_NAME = "rulesets/bedrock"


class Ruleset:
    """A compiled ruleset. Immutable once loaded, so one instance serves every thread."""

    __slots__ = ("_compiled", "_pricer")

    def __init__(self, compiled: compiler.Compiled):
        self._compiled = compiled
        self._pricer = None  # made on first use; its plan caches are safe to share between threads

    def _shared_pricer(self):
        from .interpreter import Pricer

        if self._pricer is None:
            self._pricer = Pricer(self._compiled)  # two threads may both make one: either serves
        return self._pricer

    @property
    def compiled(self) -> compiler.Compiled:
        return self._compiled

    @property
    def currency(self) -> str:
        return self._compiled.currency

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._compiled.kinds)

    @property
    def examples(self) -> tuple[Example, ...]:
        return self._compiled.examples

    def evaluate(self, document: Mapping[str, Any], source: str | None = None) -> Bill:
        """Price a usage document (`{"usage": [...]}`); raises UsageError when refused."""
        return self.evaluate_items(items_of(document, source), source)

    def evaluate_items(self, items: Iterable[Mapping[str, Any]], source: str | None = None) -> Bill:
        """Price usage items given one by one, without building a document."""
        checked, problems = check_items(self._compiled, list(items), source)
        return evaluate_items(self._compiled, checked, problems)

    def totals(self, items: Iterable[Mapping[str, Any]], group_by: Sequence[str] = ()) -> Totals:
        """Totals-only pricing of a stream of usage items, in constant memory.

        Unlike `evaluate`, items the rules cannot price do not stop the run: they are
        counted per reason in `Totals.unpriced` (with their positions, 1-based).
        """
        from .totals import Accumulator

        accumulator = Accumulator(self._compiled, group_by, self._shared_pricer())
        accumulator.add_items(items)
        return accumulator.result()

    def evaluate_text(self, text: str, source: str = "<usage>") -> Bill:
        """Price a usage document given as JSON or YAML text."""
        return self.evaluate(read_document(text, source), source)


def load(path: str | Path | None = None) -> Ruleset:
    """Load a folder of rule files (or one file); the bundled Bedrock ruleset by default.

    Raises RuleFileError listing every problem in every file.
    """
    if path is None:
        root = bundled_rules()
        return Ruleset(compiler.load_files(compiler.rule_paths(root), root, BUNDLED_NAME, prebuilt=True))
    root = Path(path)
    return Ruleset(compiler.load_files(compiler.rule_paths(root), root))
