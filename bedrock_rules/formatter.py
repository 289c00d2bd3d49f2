"""Rule text in one canonical layout, meaning unchanged: the logic behind `bedrock-rules fmt`.

Every statement of the language is one line and the grammar ignores spaces and tabs
between tokens, so re-spacing a line's tokens cannot change what it means as long as no
two tokens merge and none splits. The formatter therefore works line by line: it splits
each line with the grammar's own terminal patterns, re-joins the tokens with canonical
spacing, indents by block, aligns price tables and runs of `model` and `region` lines,
and keeps every comment on its line. It refuses text that does not parse, and parses its
own output to check that the model is the one it started from.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

from .parser import KEYWORDS, parse
from .resources import grammar_path

INDENT = "  "
# Which tokens sit tight against their neighbour; every other pair gets one space.
_TIGHT_BEFORE = frozenset(", : ) ] } %".split())
_TIGHT_AFTER = frozenset("( [ {".split())
_LINE_BREAK = re.compile(r"\r?\n")


class Token(NamedTuple):
    kind: str  # word, number, string, date or op
    text: str


class Line(NamedTuple):
    """One source line: its tokens, its `# comment` (or ""), and its code as written."""

    tokens: tuple[Token, ...]
    comment: str
    code: str

    @property
    def first(self) -> str:
        return self.tokens[0].text if self.tokens else ""


class FormatterBug(RuntimeError):
    """The formatted text would mean something else: a bug in `fmt`, never in the input."""


def format_text(text: str, path: str) -> str:
    """`text` in the canonical layout; raises RuleFileError (the parser's) when it does not parse.
    A byte-order mark some editors write stays in front, as it was."""
    if text.startswith("\ufeff"):
        return "\ufeff" + format_text(text[1:], path)
    before = parse(text, path)
    lines = [_lex(raw) for raw in _LINE_BREAK.split(text)]
    formatted = _Layout(lines).render()
    if parse(formatted, path).statements != before.statements:
        raise FormatterBug(f"formatting {path} would change its meaning")
    return formatted


# Lexing ---------------------------------------------------------------------


@functools.cache
def _terminal(name: str) -> str:
    """A terminal's regular expression as the grammar writes it, so the two cannot drift."""
    match = re.search(rf"^{name}(?:\.\d+)?: /(.*)/$", grammar_path().read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:  # pragma: no cover - the grammar defines all four
        raise FormatterBug(f"the grammar has no terminal {name}")
    return match.group(1)


@functools.cache
def _lexeme() -> re.Pattern[str]:
    # WORD before NUMBER, as lark orders them: `1_month` is one word, not 1 and `_month`.
    alternatives = [
        r"[\t ]+",
        r"(?P<comment>#.*)",
        rf"(?P<string>{_terminal('STRING')})",
        # Dates before names and numbers, as the grammar's DATE.2 is: `2024-12-01` is one token.
        rf"(?P<date>{_terminal('DATE')})",
        r"(?P<op><=|>=|!=|[|,:()\[\]{}=<>+\-*/—%])",
        rf"(?P<word>{_terminal('WORD')})",
        rf"(?P<number>{_terminal('NUMBER')})",
    ]
    return re.compile("|".join(alternatives))


def _lex(raw: str) -> Line:
    tokens: list[Token] = []
    comment = ""
    position, end = 0, len(raw)
    code_end = end
    while position < end:
        match = _lexeme().match(raw, position)
        if match is None:  # pragma: no cover - the text parsed, so every character is a token's
            raise FormatterBug(f"cannot split {raw!r} at column {position + 1}")
        kind = match.lastgroup
        if kind == "comment":
            comment, code_end = match.group().rstrip(), position
            break
        if kind is not None:
            tokens.append(Token(kind, match.group()))
        position = match.end()
    return Line(tuple(tokens), comment, raw[:code_end].strip())


def _join(tokens: Sequence[Token], not_call: int | None = None) -> str:
    """Tokens with one space between them, none inside brackets or before `,` and `:`.

    A name right before `(` is a function call and keeps it tight, except the name at
    index `not_call`: the last kind of a `require`, which a condition in parentheses
    may follow.
    """
    text = ""
    for index, token in enumerate(tokens):
        signed = index > 1 and tokens[index - 1].text in ("+", "-") and tokens[index - 2].text == "by"
        if index and not signed and _spaced(tokens[index - 1], token, index - 1 != not_call):  # `by -20%`: the sign is the number's
            text += " "
        text += token.text
    return text


def _spaced(left: Token, right: Token, may_call: bool) -> bool:
    if right.text in _TIGHT_BEFORE or left.text in _TIGHT_AFTER:
        return False
    is_call = left.kind == "word" and (left.text == "sum" or left.text not in KEYWORDS)
    return not (right.text == "(" and is_call and may_call)


def _last_required_kind(tokens: Sequence[Token]) -> int | None:
    """In `require KIND, KIND CONDITION: …`, the index of the last kind."""
    if not tokens or tokens[0].text != "require":
        return None
    index = 1
    while index + 2 < len(tokens) and tokens[index + 1].text == ",":
        index += 2
    return index


# Layout ---------------------------------------------------------------------


class _Table(NamedTuple):
    header: int
    separator: int | None
    rows: list[int]


class _Layout:
    """Decides each line's role and indent, then renders tables and aligned runs."""

    def __init__(self, lines: list[Line]):
        self.lines = lines
        self.indent: dict[int, int] = {}
        self.tables: list[_Table] = []
        self.runs: list[list[int]] = []  # aligned `model` or `region` lines
        self.out: dict[int, list[str]] = {}
        self._read_structure()

    def _read_structure(self) -> None:
        block = ""  # provider, kind, example, prices, or "" at the top level
        run_kind = ""
        run: list[int] = []
        for index, line in enumerate(self.lines):
            if not line.tokens:
                if not line.comment:  # a blank line ends an aligned run; a comment does not
                    run_kind, run = "", []
                continue
            if block == "prices" and line.first != "|":
                block = ""
            indent = 0
            if block == "prices":
                self._table_line(index, line)
            elif block and line.first == "end" and len(line.tokens) == 1:
                block = ""
            elif block == "example":
                is_item = line.first == "item" and (len(line.tokens) < 2 or line.tokens[1].text != ":")
                indent = 1 if is_item else 2
            elif block:
                indent = 1
            elif line.first in ("provider", "kind", "record", "example", "prices", "pricelist"):
                # A pricelist's table is laid out as a price table's.
                block = {"record": "kind", "pricelist": "prices"}.get(line.first, line.first)
                if block == "prices":
                    self.tables.append(_Table(-1, None, []))
            self.indent[index] = indent
            # Runs of declarations align their columns; `model … billed …` lines outside a provider too.
            aligned = line.first if (line.first, block) in (("model", "provider"), ("region", ""), ("model", "")) else ""
            if aligned != run_kind or not aligned:
                run_kind, run = aligned, []
                if aligned:
                    self.runs.append(run)
            if aligned:
                run.append(index)

    def _table_line(self, index: int, line: Line) -> None:
        table = self.tables[-1]
        if table.header < 0:
            self.tables[-1] = table._replace(header=index)
        elif table.separator is None and not table.rows and re.fullmatch(_terminal("SEPARATOR"), line.code):
            self.tables[-1] = table._replace(separator=index)
        else:
            table.rows.append(index)

    def render(self) -> str:
        for table in self.tables:
            self._render_table(table)
        for run in self.runs:
            self._render_run(run)
        text: list[str] = []
        blank = False
        for index, line in enumerate(self.lines):
            if not line.tokens and not line.comment:
                blank = bool(text)
                continue
            if blank:
                text.append("")
                blank = False
            if line.tokens:
                rendered = self.out.get(index) or [INDENT * self.indent[index] + _join(line.tokens, _last_required_kind(line.tokens))]
                rendered[0] += f"  {line.comment}" if line.comment else ""
                text.extend(rendered)
                blank = line.first == "overlay" and not self.indent[index]  # an overlay's header stands apart
            else:
                text.append(INDENT * self._indent_after(index) + line.comment)
        return "".join(f"{line}\n" for line in text)

    def _indent_after(self, index: int) -> int:
        """A whole-line comment is indented like the next line of code."""
        following = next((i for i in range(index + 1, len(self.lines)) if self.lines[i].tokens), None)
        return 0 if following is None else self.indent[following]

    def _render_run(self, run: list[int]) -> None:
        """`model NAME "Title" aka …` (or `region NAME "Title"`) lines, in aligned columns."""
        table = [_declaration_columns(self.lines[i].tokens) for i in run]
        widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
        for index, row in zip(run, table, strict=True):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True) if width]
            self.out[index] = [INDENT * self.indent[index] + " ".join(cells).rstrip()]

    def _render_table(self, table: _Table) -> None:
        """Every `|` column padded to its widest cell; a `|---|` line after the header."""
        lines = [table.header, *table.rows]
        cells = {i: _cells(self.lines[i].tokens) for i in lines}
        header_width = len(cells[table.header])
        aligns = _alignments(self.lines[table.separator].code) if table.separator is not None else []
        aligns += [(False, False)] * (header_width - len(aligns))
        widths: list[int] = []
        for row in cells.values():
            for column, cell in enumerate(row):
                if column == len(widths):
                    widths.append(0)
                widths[column] = max(widths[column], len(cell))
        for column, (left, right) in enumerate(aligns[:header_width]):
            widths[column] = max(widths[column], 1 + left + right)  # `:---:` needs three dashes
        for i in lines:
            self.out[i] = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(cells[i], widths, strict=False)) + " |"]
        rule = "|" + "|".join(_dashes(widths[c] + 2, *aligns[c]) for c in range(header_width)) + "|"
        if table.separator is None:
            self.out[table.header].append(rule)
        else:
            self.out[table.separator] = [rule]


def _declaration_columns(tokens: Sequence[Token]) -> list[str]:
    """keyword, name, title ("" when none), and the rest (`aka …`)."""
    titled = len(tokens) > 2 and tokens[2].kind == "string"
    rest = tokens[3:] if titled else tokens[2:]
    return [tokens[0].text, tokens[1].text, tokens[2].text if titled else "", _join(rest)]


def _cells(tokens: Sequence[Token]) -> list[str]:
    """The cells of a `| a | b |` line, each joined canonically."""
    cells: list[str] = []
    current: list[Token] = []
    for token in tokens[1:]:
        if token.text == "|":
            cells.append(_join(current))
            current = []
        else:
            current.append(token)
    return cells


def _alignments(separator: str) -> list[tuple[bool, bool]]:
    """Markdown's column alignment colons (`:---`, `---:`), kept as written."""
    return [(cell.startswith(":"), cell.endswith(":")) for cell in re.findall(r":?-+:?", separator)]


def _dashes(width: int, left: bool, right: bool) -> str:
    return (":" if left else "-") + "-" * (width - 2) + (":" if right else "-")
