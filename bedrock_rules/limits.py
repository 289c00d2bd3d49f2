"""The limits on what the engine reads, and the checks that enforce them.

A service prices documents it did not write: each limit here turns input that would
exhaust memory, time or the interpreter's stack into a plain refusal naming the limit
and the value. Usage documents are refused with `UsageError`, rule files with BR003.
The numbers are generous for real price lists and usage; see docs/reliability.md.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Any

# Kept with the refusal that applies it (errors.UsageError); listed here with the others.
from .errors import MAX_LISTED_PROBLEMS as MAX_LISTED_PROBLEMS

MAX_DOCUMENT_CHARS = 50 * 1024 * 1024  # one usage document, JSON or YAML
MAX_ITEMS = 1_000_000  # items of one document; Ruleset.totals streams any number
MAX_DEPTH = 32  # lists and objects inside one another in a usage document
MAX_DIGITS = 40  # digits of a number in a usage document, written out in full
MAX_RULE_FILE_BYTES = 5 * 1024 * 1024
MAX_RULE_FILES = 1_000  # rule files in one ruleset folder
MAX_RULE_DEPTH = 100  # levels of a rule file's parse tree: nested conditions, long sums, nested values
MAX_SYNTAX_ERRORS = 100  # per rule file: each one re-parses the rest of the file
MAX_LOG_RECORD_BYTES = 16 * 1024 * 1024  # one invocation-log record (a line, or a JSON value); longer is malformed
MAX_OFFER_BYTES = 512 * 1024 * 1024  # one AWS Price List offer file (AmazonBedrock's is tens of MB)
MAX_ROUND_PLACES = 20  # `round … to N places`: money needs few; each place costs a digit of precision


class LimitExceeded(ValueError):
    """A reader hook's refusal; its message is shown as it is."""


def exceeded(what: str, value: str, limit: str) -> str:
    """The one shape of every limit message: what is wrong, the value found, the limit."""
    return f"{what}: {value}; the limit is {limit}"


def document_size(text: str) -> str | None:
    if len(text) <= MAX_DOCUMENT_CHARS:
        return None
    return exceeded("document too large", f"{len(text):,} characters", f"{MAX_DOCUMENT_CHARS:,} characters (50 MiB)")


def item_count(count: int) -> str | None:
    if count <= MAX_ITEMS:
        return None
    return exceeded(
        "too many items", f"{count:,} items", f"{MAX_ITEMS:,} items per document; price longer streams with Ruleset.totals"
    )


def nesting(levels: str) -> str:
    return exceeded("nested too deeply", f"{levels} levels of lists and objects", f"{MAX_DEPTH} levels")


# Strings hold no structure; what is left of a JSON text once they are gone is brackets
# and scalars. Removing innermost `[]`/`{}` pairs once per level measures the depth at
# C speed, before the parser (which recurses) sees the text.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_CLOSES = {"]": "[", "}": "{"}


def json_depth(text: str) -> str | None:
    """A refusal when a JSON text nests deeper than MAX_DEPTH; None when it does not (or is not JSON)."""
    # One pass over the brackets, holding only the open ones: a document's pieces are not
    # copied (the text without its strings costs a string object per piece, 100 MB for
    # 140,000 items). Brackets that do not pair up are left to the rule below, which
    # finds what the parser would stop at.
    open_brackets: list[str] = []
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group()
        if bracket in ("[", "{"):
            open_brackets.append(bracket)
            if len(open_brackets) > MAX_DEPTH:
                break
        elif bracket in _CLOSES:
            if not open_brackets or open_brackets.pop() != _CLOSES[bracket]:
                break
    else:
        return None if not open_brackets else _paired_depth(text)
    return _paired_depth(text)


def _paired_depth(text: str) -> str | None:
    """`json_depth` of a text whose brackets do not pair up (or nest too deeply): innermost pairs removed level by level."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(MAX_DEPTH):
        if not brackets:
            return None
        brackets, removed = _INNERMOST.subn("", brackets)
        if not removed:
            return None  # unbalanced: the parser says where
    return nesting(f"more than {MAX_DEPTH}") if brackets and _INNERMOST.search(brackets) else None


_DIGITS_BOUND = 10**4000  # computed once: the power costs 60 µs, and every count of every item is checked


def digits(number: int | Decimal) -> int | None:
    """How many digits the number has written out in full (`1E+3` is 1000: 4); None past 4,000."""
    if isinstance(number, int):
        return len(str(abs(number))) if -_DIGITS_BOUND < number < _DIGITS_BOUND else None
    if not number.is_finite():
        return None
    _, shown, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    return max(len(shown) + exponent, 1) + max(-exponent, 0)


def number(value: int | Decimal) -> str | None:
    """A refusal when a number has more than MAX_DIGITS digits."""
    count = digits(value)
    if count is not None and count <= MAX_DIGITS:
        return None
    shown = f"{count} digits" if count is not None else f"more than {MAX_DIGITS} digits"
    # 0.1E-99 has as many digits, written out, as 1E+99: the one is too small, the other too large.
    small = isinstance(value, Decimal) and value.is_finite() and value != 0 and value.adjusted() < 0
    return exceeded("number too small" if small else "number too large", shown, f"{MAX_DIGITS} digits")


def number_text(text: str) -> str | None:
    """`number` for a literal as written, before converting it: a 5,000-digit int is slow to convert."""
    if len(text) > 4 * MAX_DIGITS:
        return exceeded("number too large", f"{len(text):,} characters long", f"{MAX_DIGITS} digits")
    return None


def exact_int(text: str) -> int:
    """JSON integers; MAX_DIGITS is checked per field, where the message can name it."""
    problem = number_text(text)
    if problem:
        raise LimitExceeded(problem)
    return int(text)


def exact_decimal(text: str) -> Decimal:
    """JSON and YAML decimals, exact; refused when no Decimal can hold them (`1e9999999999999999999`)."""
    problem = number_text(text)
    if problem is None:
        try:
            return Decimal(text)
        except decimal.InvalidOperation:
            problem = exceeded("number too large", repr(text), f"{MAX_DIGITS} digits")
    raise LimitExceeded(problem)


def rule_file_size(size: int) -> str | None:
    if size <= MAX_RULE_FILE_BYTES:
        return None
    return exceeded("rule file too large", f"{size:,} bytes", f"{MAX_RULE_FILE_BYTES:,} bytes (5 MiB)")


def rule_file_count(count: int) -> str | None:
    if count <= MAX_RULE_FILES:
        return None
    return exceeded("too many rule files", f"{count:,}", f"{MAX_RULE_FILES:,} files")


def rule_depth() -> str:
    return exceeded(
        "nested too deeply",
        f"more than {MAX_RULE_DEPTH} levels of conditions, expressions or values",
        f"{MAX_RULE_DEPTH} levels; split the statement",
    )


def round_places(places: str) -> str | None:
    """For the digits of `round … to N places` as written."""
    if len(places) < 4 and int(places) <= MAX_ROUND_PLACES:
        return None
    return exceeded("rounding too fine", f"{places} places", f"{MAX_ROUND_PLACES} places")


def syntax_errors() -> str:
    limit = f"{MAX_SYNTAX_ERRORS} per file; the rest of the file is not read"
    return exceeded("too many syntax errors", f"more than {MAX_SYNTAX_ERRORS}", limit)


def too_deep(tree: Any, limit: int) -> tuple[int, int] | None:
    """The line and column of the first node deeper than `limit` in a lark parse tree, or None.

    Iterative, as the point is to refuse what recursion cannot handle. A node without a
    position of its own (`[]` holds no token) is placed where its nearest ancestor is.
    """
    stack = [(tree, 1, (1, 1))]
    while stack:
        node, level, place = stack.pop()
        where: Any = node if hasattr(node, "type") else getattr(node, "meta", None)
        if getattr(where, "line", None) is not None:
            place = (where.line, where.column)
        if level > limit:
            return place
        # Children last-first, so the first node found past the limit is the leftmost.
        stack.extend((child, level + 1, place) for child in reversed(getattr(node, "children", ())))
    return None
