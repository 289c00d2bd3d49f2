"""The errors bedrock-rules raises, each carrying every problem found, with its place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import attrs

from .display import visible, visible_lines
from .model import Span


@attrs.frozen
class Diagnostic:
    """One problem in a rule file: a stable code, a place and a plain sentence."""

    code: str
    message: str
    span: Span
    source_line: str = attrs.field(default="", eq=False, repr=False)

    def render(self) -> str:
        head = f"{self.span}: error[{self.code}]: {self.message}"
        if not self.source_line:
            return head
        line = self.source_line.rstrip("\n")
        if self.span.end_line == self.span.line:
            width = max(1, self.span.end_column - self.span.column)
        else:  # a statement running past its line: underline the rest of the line
            width = max(1, len(line.rstrip()) - self.span.column + 1)
        caret = " " * (self.span.column - 1) + "^" * width
        return f"{head}\n  {line}\n  {caret}"


@attrs.frozen
class Problem:
    """One problem in a usage document: a stable code (BUxxx, see docs/errors.md), the item and the field."""

    message: str
    item: int | None = None
    item_name: str | None = None
    field: str | None = None
    source: str | None = None
    code: str = attrs.field(default="", kw_only=True)

    def render(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.item is not None:
            label = f"item {self.item}"
            if self.item_name:
                label += f" ({self.item_name})"
            parts.append(label)
        if self.field:
            parts.append(f"field {self.field}")
        where = visible(", ".join(parts))
        # The source, name and field are the user's text: none may start a line of its own
        # or hide one. A message keeps its own line breaks (a YAML error's second line).
        message = visible_lines(self.message)
        message = f"error[{self.code}]: {message}" if self.code else message
        return f"{where}: {message}" if where else message


class BedrockRulesError(Exception):
    """Base of every error the engine raises on bad input."""

    def render(self) -> str:
        return str(self)


class RuleFileError(BedrockRulesError):
    """Rule files that cannot be loaded; `diagnostics` holds every problem."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class UsageError(BedrockRulesError):
    """A usage document that is refused; `problems` holds every reason at once."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"usage refused: {count} problem{'s' if count != 1 else ''}, nothing was priced"
        return "\n".join([head, *(f"  {p.render()}" for p in self.problems)])


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a close candidate exists, else an empty string."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    # Two swapped letters (`modle`) are the likeliest slip, though difflib ranks `mode` first.
    swapped = [c for c in close if len(c) == len(name) and sorted(c) == sorted(name)]
    return f" (did you mean '{(swapped or close)[0]}'?)" if close else ""
