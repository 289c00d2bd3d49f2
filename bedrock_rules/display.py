"""How values are shown: control characters made visible, display width, aligned columns, safe CSV and Markdown.

Every human format shows names, tags and log values that someone else wrote. A newline or
an escape sequence in them could forge a line (`total: 0.01 USD`) or hide one; a wide
character would shift a column; a cell starting with `=` is a formula in a spreadsheet;
`</details>` in a pull-request comment is HTML. This module is the one place that knows
how to show such text, and it imports nothing from the package, so every stage can use it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction

# Categories shown as escapes: controls, format characters (bidi overrides, zero-width
# joiners, tag characters), lone surrogates, and the line and paragraph separators.
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """`text` with every control, format or surrogate character written as an escape (`\\n`, `\\x1b`, `\\u202e`).

    What is left prints as itself and cannot move the cursor, start a new line or
    reorder what follows; it also always encodes as UTF-8.
    """
    if text.isprintable():  # the common case: nothing to escape (printable excludes every hidden category)
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _HIDDEN else c for c in text)


def visible_lines(text: str) -> str:
    """Like `visible`, but the newlines that separate the lines of a message stay newlines."""
    return "\n".join(visible(line) for line in text.split("\n"))


def encodable(text: str) -> str:
    """`text` with lone surrogates written as `\\udXXX`, so it encodes as UTF-8 (machine formats keep the rest)."""
    return _SURROGATE.sub(lambda m: _escape(m.group()), text)


def clip(text: str, limit: int = 200) -> str:
    """At most `limit` characters of a value echoed in a message, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def width(text: str) -> int:
    """Columns `text` takes in a terminal: wide East Asian characters 2, combining marks 0."""
    if text.isascii():
        return len(text)
    total = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Me", "Mn", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def align(rows: Sequence[Sequence[str]], right: Iterable[int] = (), indent: str = "", ruled: bool = False) -> list[str]:
    """Rows of cells as lines of columns two spaces apart, padded by display width.

    Cells are made `visible` first, so no cell can break its row, and cut at MAX_CELL
    characters, so no cell can widen every row past reading. Columns in `right`
    are aligned right (amounts); trailing spaces are dropped. `ruled` draws a line of
    dashes under the first row (the header).
    """
    shown = [[_cell(cell) for cell in row] for row in rows]
    if not shown:
        return []
    right = set(right)
    widths = [max(width(row[i]) for row in shown) for i in range(len(shown[0]))]
    if ruled:
        shown.insert(1, ["-" * size for size in widths])
    return [_line(row, widths, right, indent) for row in shown]


# Characters of one cell a table shows (then `… (N characters)`). Every row is padded to
# its column's widest cell: one name of 45 MB in a document of 40,000 items would make a
# table of terabytes. The machine formats (JSON, CSV) keep every value whole.
MAX_CELL = 500


def _cell(text: str) -> str:
    return visible(clip(text, MAX_CELL))


def _line(shown: Sequence[str], widths: Sequence[int], right: set[int] | frozenset[int], indent: str) -> str:
    parts = []
    for i, (cell, size) in enumerate(zip(shown, widths, strict=True)):
        pad = " " * (size - width(cell))
        parts.append(pad + cell if i in right else cell + pad)
    return (indent + "  ".join(parts)).rstrip()


class Aligner:
    """`align` for rows given one at a time, holding none of them in memory.

    A column's width is known only after its last row, so the rows wait in a temporary
    file (in memory while small), one line each: a shown cell never holds a tab or a
    newline (`visible` escapes them), so those separate cells and rows. `lines()` then
    gives what `align` gives for the same rows, line by line.
    """

    SPOOL = 1 << 20  # characters kept in memory before the rows go to a temporary file

    def __init__(self, header: Sequence[str], right: Iterable[int] = (), indent: str = "", ruled: bool = False):
        import tempfile  # start-up time: only a bill written row by row needs it

        self._rows = tempfile.SpooledTemporaryFile(self.SPOOL, mode="w+", encoding="utf-8", newline="\n")
        self._right = frozenset(right)
        self._indent = indent
        self._ruled = ruled
        self._header = [_cell(cell) for cell in header]
        self._widths = [width(cell) for cell in self._header]

    def add(self, row: Sequence[str]) -> None:
        shown = [_cell(cell) for cell in row]
        self._widths = [max(size, width(cell)) for size, cell in zip(self._widths, shown, strict=True)]
        self._rows.write("\t".join(shown) + "\n")

    def lines(self) -> Iterator[str]:
        """The aligned lines, header first; the rows are read back once."""
        widths, right, indent = self._widths, self._right, self._indent
        yield _line(self._header, widths, right, indent)
        if self._ruled:
            yield _line(["-" * size for size in widths], widths, right, indent)
        self._rows.seek(0)
        for row in self._rows:
            yield _line(row[:-1].split("\t"), widths, right, indent)
        self._rows.close()


# Machine and review formats ----------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_cell(text: str) -> str:
    """A text cell that a spreadsheet will not run: a leading `= + - @`, tab or CR gets a `'` (OWASP).

    A plain decimal number (`-0.5`) is left alone: it is a number, not a formula. Control
    and format characters are shown as escapes, as in every human format: a bare CR
    would also end the row for most CSV readers (Python's writer does not quote it).
    """
    shown = visible(text)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + shown
    return shown


# Characters that open or close a construct in GitHub Markdown wherever they stand:
# emphasis, code, links and images (no `[`, so no `](`), table cells, strikethrough,
# headings, mentions, math. Each is escaped with a backslash, so it shows as itself.
# (`.`, `-`, `+` matter only at the start of a line, where no value is ever written.)
_MARKDOWN = re.compile(r"([\\`*_{}\[\]#!|~@$])")


def markdown(text: str) -> str:
    """Text shown literally in Markdown, in a paragraph or a table cell: no heading, link,
    image, emphasis, mention, table cell break or HTML; newlines are shown as `\\n`."""
    text = visible(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


def markdown_code(text: str) -> str:
    """Text in a Markdown code span, however many backticks it holds; `|` is escaped for tables."""
    text = visible(text).replace("|", "\\|")
    runs = [len(run) for run in re.findall("`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# Percentages -----------------------------------------------------------------------------


def share_text(part: int, whole: int) -> str:
    """`part` of `whole` in percent, never rounded up: `100.0`, `99.95`, `66.66…` (cut, with an ellipsis)."""
    exact = Fraction(100 * part, whole) if whole else Fraction(100)
    places = 1 if (exact * 10).denominator == 1 else 2
    scale = 10**places
    cut = int(exact * scale)  # towards zero: 99.999… never shows as 100
    text = f"{cut // scale}.{cut % scale:0{places}d}"
    return text if (exact * scale).denominator == 1 else text + "…"
