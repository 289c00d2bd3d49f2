"""Rule text to model: the only module that imports lark.

Lark's exceptions are translated here, in one place, into `Diagnostic`s with 1-based
lines and columns and readable token names. After a syntax error the parser skips to
the next line that starts a statement and goes on, so one run reports every syntax
error of a file, not just the first.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from decimal import Decimal
from typing import Any, cast

import lark
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from . import limits
from . import model as m
from .errors import Diagnostic, RuleFileError
from .fields import Instant, read_instant
from .lookalike import blank_format_characters as _blank_format_characters
from .lookalike import foreign as _foreign
from .lookalike import format_characters as _format_characters
from .lookalike import skeleton as _skeleton
from .prebuilt import parser_tables
from .resources import grammar_path

# Words with a meaning inside statements, where a name could also stand. The
# contextual lexer does not reserve them, so a declaration that would make one of them
# a name is refused. Statement keywords (`model`, `region`, …) are only keywords at the
# start of a line and stay free for fields.
KEYWORDS = frozenset(
    """aka and any at billed block by charging contains each end expect for free from graduated in item list
    monthly not of only optional or per sum unit until volume when""".split()
)
STATEMENT_STARTS = frozenset(
    "currency round region provider kind record prices pricelist offer refuse require free example relative minimum overlay adjust".split()
)
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")

_TOKEN_NAMES = {
    "WORD": "a name",
    "NUMBER": "a number",
    "STRING": 'a quoted text ("…")',
    "_NL": "end of line",
    "$END": "end of file",
    "SEPARATOR": "a |---| line",
    "COMPARE": "a comparison (<, <=, >, >=)",
    "EQUALS": "`=`",
    "NOT_EQUALS": "`!=`",
    "ADD": "`+` or `-`",
    "MUL": "`*` or `/`",
    "NOT_OFFERED": "`-`",
    "OPTIONAL": "`optional`",
    "ROUND_TARGET": "`each charge` or `the total`",
    "DATE": "a date (2024-12-01)",
}


@functools.cache
def _lark() -> Lark:
    grammar = grammar_path().read_text(encoding="utf-8")
    prebuilt = _prebuilt(grammar)
    if prebuilt is not None:
        return prebuilt
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _prebuilt(grammar: str) -> Lark | None:
    """The parser tables a wheel ships (see prebuilt.py), if they fit this grammar and lark."""
    saved = parser_tables(grammar, lark.__version__)
    return None if saved is None else Lark.load(io.BytesIO(saved))


def build_strict() -> Lark:
    """The same grammar in Lark's strict mode: raises on any conflict or collision."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=True,
    )


def parse(text: str, path: str) -> m.RuleFile:
    """Parse one rule file; raises RuleFileError with every problem found."""
    if text.startswith("\ufeff"):  # a byte-order mark, as some editors write: not part of the rules
        text = text[1:]
    if not text.endswith("\n"):
        text += "\n"
    # Lines as lark counts them: only "\n" ends one (splitlines() also splits at "\r", "\f", …).
    lines = [line.removesuffix("\r") for line in text.split("\n")[:-1]]
    hidden = _format_characters(path, lines)
    if hidden:
        # Parsed with each one blanked (columns unchanged), so the file's other problems show
        # too; messages quote the lines as written, where outputs show the characters as escapes.
        text = _blank_format_characters(text)
    try:
        rule_file = _parse(text, path, lines)
    except RuleFileError as error:
        raise RuleFileError([*hidden, *error.diagnostics], error.parsed) from None
    if hidden:
        raise RuleFileError(hidden, rule_file)
    return rule_file


def _parse(text: str, path: str, lines: list[str]) -> m.RuleFile:
    diagnostics: list[Diagnostic] = []
    tree = None
    remaining = text
    while True:
        try:
            tree = _lark().parse(remaining)
            break
        except UnexpectedInput as error:
            diagnostics.append(_syntax_diagnostic(error, path, lines))
            restart = _next_statement_line(lines, error.line)
            if restart is None:
                break
            if len(diagnostics) == limits.MAX_SYNTAX_ERRORS:
                span = m.Span(path, restart, 1, restart, 2)
                diagnostics.append(Diagnostic("BR003", limits.syntax_errors(), span, lines[restart - 1]))
                break
            # Blank what came before, so lines and columns stay those of the file.
            remaining = "\n" * (restart - 1) + "\n".join(lines[restart - 1 :]) + "\n"
    if diagnostics:
        raise RuleFileError(diagnostics)
    assert tree is not None  # parsed: with no diagnostic, the loop ended on a parse
    too_deep = limits.too_deep(tree, limits.MAX_RULE_DEPTH)
    if too_deep is not None:  # building the model recurses once per level
        line, column = too_deep
        span = m.Span(path, line, column, line, column + 1)
        raise RuleFileError([Diagnostic("BR003", limits.rule_depth(), span, lines[line - 1])])
    lookalikes = _lookalike_names(tree, path, lines)
    builder = _Builder(path, lines)
    rule_file = builder.transform(tree)
    if builder.diagnostics or lookalikes:
        both = [*builder.diagnostics, *lookalikes]
        raise RuleFileError(sorted(both, key=lambda d: (d.span.line, d.span.column)), rule_file)
    return rule_file


# Names of one file that look alike; lookalike.py says why, and compares names across files.
def _lookalike_names(tree: Tree, path: str, lines: list[str]) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    seen: dict[str, tuple[str, int]] = {}  # skeleton -> (the first name with it, its line)
    for token in tree.scan_values(lambda v: isinstance(v, Token) and v.type == "WORD"):
        name = str(token)
        span = m.Span(path, token.line, token.column, token.line, token.column + len(name))
        foreign = [c for c in name if _foreign(c)]
        if foreign:
            letters = ", ".join(f"`{c}` U+{ord(c):04X} {unicodedata.name(c, '')}".rstrip() for c in dict.fromkeys(foreign))
            found.append(Diagnostic(
                "BR112", f"the name `{name}` mixes scripts: {letters} among Latin letters; "
                "a name is written in Latin letters, so two names cannot look alike",
                span, lines[token.line - 1],
            ))
            continue
        skeleton = name.casefold() if name.isascii() else _skeleton(name)
        first = seen.setdefault(skeleton, (name, token.line))
        if first[0] != name and not (name.isascii() and first[0].isascii()):  # `Text` and `text` are plainly two
            found.append(Diagnostic(
                "BR113", f"the name `{name}` looks like `{first[0]}` (line {first[1]}); write one name one way",
                span, lines[token.line - 1],
            ))
    return found


def _next_statement_line(lines: list[str], after: int) -> int | None:
    for number in range(max(after, 1) + 1, len(lines) + 1):
        line = lines[number - 1]
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if line[:1] not in (" ", "\t") and first in STATEMENT_STARTS:
            return number
    return None


def _describe(terminal: str) -> str:
    if terminal in _TOKEN_NAMES:
        return _TOKEN_NAMES[terminal]
    try:
        pattern = _lark().get_terminal(terminal).pattern
    except KeyError:
        return terminal.lower()
    return f"`{pattern.value}`" if pattern.type == "str" else terminal.lower()


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type == "_NL":
        return "end of line"
    return f"`{token.value}`"


def _syntax_diagnostic(error: UnexpectedInput, path: str, lines: list[str]) -> Diagnostic:
    line = max(error.line, 1) if error.line > 0 else len(lines)
    column = max(error.column, 1) if error.column > 0 else 1
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            code, found = "BR101", "unexpected end of file"
            line, column = len(lines), len(lines[-1]) + 1 if lines else 1
        else:
            code, found = "BR100", f"unexpected {_describe_token(token)}"
        expected = sorted({_describe(t) for t in error.accepts or error.expected})
        message = f"{found}; expected {_one_of(expected)}"
        glued = re.search(r"(?:^|\s)([A-Za-z_][\w.-]*:[\w.-]+)", lines[line - 1] if line <= len(lines) else "")
        if "`:`" in expected and glued:  # names may hold `:` (model IDs do), so `a:b` is one name
            message += f"; `{glued.group(1)}` reads as one name: put a space after the `:`"
        width = len(str(token.value)) if token.type not in ("_NL", "$END") else 1
    elif isinstance(error, UnexpectedCharacters):
        char = lines[line - 1][column - 1] if line <= len(lines) else "?"
        code, message, width = "BR102", f"unexpected character {char!r}", 1
    else:  # pragma: no cover - LALR raises only the two above
        code, message, width = "BR100", str(error), 1
    span = m.Span(path, line, column, line, column + width)
    return Diagnostic(code, message, span, lines[line - 1] if line <= len(lines) else "")


def _one_of(options: list[str]) -> str:
    if len(options) == 1:
        return options[0]
    return "one of " + ", ".join(options)


def _line(token: Token) -> int:
    """A token's line: always set, as the parser keeps positions (lark types it as optional)."""
    return cast(int, token.line)


def _span(path: str, meta_or_token: Any) -> m.Span:
    return m.Span(
        path,
        meta_or_token.line,
        meta_or_token.column,
        meta_or_token.end_line,
        meta_or_token.end_column,
    )


class _PerBlock(Decimal):
    """`per block of N`, as the `per` rule gives it to the column or scope that holds it."""


def _window(children: list[Any]) -> m.Window | None:
    return next((c for c in children if isinstance(c, m.Window)), None)


def _text(token: Token) -> str:
    return str(token)[1:-1] if token.type == "STRING" else str(token)


@v_args(meta=True)
class _Builder(Transformer):
    """One method per grammar rule, each building the model class of that name."""

    def __init__(self, path: str, lines: list[str]):
        super().__init__()
        self.path = path
        self.lines = lines
        self.diagnostics: list[Diagnostic] = []

    def __default__(self, data, children, meta):  # pragma: no cover - grammar and builder agree
        raise NotImplementedError(f"no builder for grammar rule {data!r}")

    # helpers
    def _at(self, node: Any) -> m.Span:
        return _span(self.path, node)

    def _word(self, token: Token) -> m.Name:
        """A name as written, with its own span."""
        return m.Name(str(token), self._at(token))

    def _name(self, token: Token, what: str, identifier: bool = True) -> m.Name:
        """A declared name: not a keyword and, for fields and kinds, an identifier."""
        name = self._word(token)
        span = name.span
        source = self.lines[span.line - 1]
        if name in KEYWORDS:
            self.diagnostics.append(
                Diagnostic("BR110", f"`{name}` is a keyword and cannot name a {what}", span, source)
            )
        elif identifier and not IDENTIFIER.match(name):
            self.diagnostics.append(
                Diagnostic(
                    "BR111",
                    f"a {what} name uses lower-case letters, digits and `_`, not `{name}`",
                    span,
                    source,
                )
            )
        return name

    def _title(self, children: list[Any]) -> str | None:
        strings = [c for c in children if isinstance(c, Token) and c.type == "STRING"]
        return _text(strings[0]) if strings else None

    # start: _NL? statement*
    def start(self, meta, children):
        return m.RuleFile(self.path, children)

    # currency: "currency" WORD _NL
    def currency(self, meta, children):
        return m.Currency(str(children[0]), self._at(meta))

    # rounding: "round" ROUND_TARGET "to" NUMBER "places" WORD _NL
    def rounding(self, meta, children):
        target, places, mode = children
        whole = str(places).isdigit()
        too_fine = limits.round_places(str(places)) if whole else None
        if not whole or too_fine:
            code, message = ("BR003", too_fine) if whole else ("BR203", f"round to a whole number of places, not {places}")
            self.diagnostics.append(Diagnostic(code, message, self._at(places), self.lines[places.line - 1]))
            places = "0"
        return m.Rounding(str(target), int(places), str(mode), self._at(meta))

    # region: "region" WORD STRING? billed? _NL
    def region(self, meta, children):
        billed = next((c.names for c in children if isinstance(c, m.Billed)), ())
        title = self._title([c for c in children if not isinstance(c, m.Billed)])
        return m.Region(self._name(children[0], "region", False), title, self._at(meta), billed)

    # provider: "provider" WORD STRING? _NL model* "end" _NL
    def provider(self, meta, children):
        name = self._name(children[0], "provider")
        models = [c for c in children if isinstance(c, m.Model)]
        return m.Provider(name, self._title(children[1:2]), models, self._at(meta))

    # model: "model" WORD STRING? aliases? billed? _NL
    def model(self, meta, children):
        name = self._name(children[0], "model", False)
        aliases = next((c for c in children if isinstance(c, tuple)), ())
        billed = next((c.names for c in children if isinstance(c, m.Billed)), ())
        return m.Model(name, self._title(children[1:2]), aliases, self._at(meta), billed)

    # billed: "billed" WORD ("," WORD)*
    def billed(self, meta, children):
        return m.Billed(tuple(self._word(c) for c in children), self._at(meta))

    # model_billed: "model" WORD billed _NL
    def model_billed(self, meta, children):
        return m.ModelBilled(self._word(children[0]), children[1].names, self._at(meta))

    # aliases: "aka" WORD ("," WORD)*
    def aliases(self, meta, children):
        return tuple(self._word(c) for c in children)

    # kind: "kind" WORD STRING? _NL (field | derived)* "end" _NL
    def kind(self, meta, children):
        name = self._name(children[0], "kind")
        fields = [c for c in children if isinstance(c, m.Field)]
        derived = [c for c in children if isinstance(c, m.Derived)]
        return m.Kind(name, self._title(children[1:2]), fields, derived, self._at(meta))

    # record: "record" WORD STRING? _NL field* "end" _NL
    def record(self, meta, children):
        name = self._name(children[0], "record")
        fields = [c for c in children if isinstance(c, m.Field)]
        return m.Record(name, self._title(children[1:2]), fields, self._at(meta))

    # field: WORD ":" type_ref default? OPTIONAL? unit? _NL
    def field(self, meta, children):
        name = self._name(children[0], "field")
        type_ref = children[1]
        default = next((c[1] for c in children if isinstance(c, tuple) and c[0] == "default"), None)
        unit = next((c[1] for c in children if isinstance(c, tuple) and c[0] == "unit"), None)
        optional = any(isinstance(c, Token) and c.type == "OPTIONAL" for c in children)
        billed = next((c.names for c in children if isinstance(c, m.Billed)), ())
        return m.Field(name, type_ref, default, optional, unit, self._at(meta), billed)

    # derived: WORD "=" expr unit? _NL
    def derived(self, meta, children):
        name = self._name(children[0], "quantity")
        unit = children[2][1] if len(children) > 2 else None
        return m.Derived(name, children[1], unit, self._at(meta))

    # default: "=" value
    def default(self, meta, children):
        return ("default", children[0])

    # unit: "unit" (WORD | STRING)
    def unit(self, meta, children):
        return ("unit", _text(children[0]))

    # type_ref: WORD ("|" WORD)*  -> named_type
    def named_type(self, meta, children):
        return m.NamedType([self._word(c) for c in children], self._at(meta))

    # type_ref: "list" "of" type_ref  -> list_type
    def list_type(self, meta, children):
        return m.ListType(children[0], self._at(meta))

    # prices: "prices" WORD scope* _NL header separator? row*
    def prices(self, meta, children):
        kind = self._word(children[0])
        regions: tuple[str, ...] = ()
        any_region = False
        when = charging = monthly = None
        columns: tuple = ()
        rows = []
        seen: set[str] = set()
        for child in children[1:]:
            part = "charging" if isinstance(child, m.Charging) else child[0] if isinstance(child, tuple) and child else None
            if part in ("regions", "when", "charging", "monthly"):
                if part in seen:  # a second one would silently replace the first
                    word = {"regions": "in"}.get(part, part)
                    self.diagnostics.append(Diagnostic(
                        "BR210", f"a price table's first line takes one `{word}`; join the conditions with `and` or list the regions once",
                        self._at(meta), self.lines[meta.line - 1],
                    ))
                seen.add(part)
            if isinstance(child, tuple) and child and child[0] == "regions":
                regions = child[1]
                any_region = child[1] == ()
            elif isinstance(child, tuple) and child and child[0] == "when":
                when = child[1]
            elif isinstance(child, m.Charging):
                charging = child
            elif isinstance(child, tuple) and child and child[0] == "monthly":
                monthly = child[1]
            elif isinstance(child, tuple) and child and child[0] == "header":
                columns = child[1]
            elif isinstance(child, tuple) and child and child[0] == "row":
                rows.append(child[1])
        window = next((c for c in children if isinstance(c, m.Window)), None)
        return m.PriceTable(kind, regions, when, charging, columns, rows, self._at(meta), window, any_region=any_region, monthly=monthly)

    # window: "from" DATE ("until" DATE)? -> window_from | "until" DATE -> window_until
    def window_until(self, meta, children):
        return m.Window(None, self._day(children[0]), self._at(meta))

    def window_from(self, meta, children):
        days = [self._day(token) for token in children]
        start, end = days[0], days[1] if len(days) > 1 else None
        if start is not None and end is not None and end < start:
            self.diagnostics.append(Diagnostic(
                "BR206", f"this window ends ({end}) before it starts ({start})", self._at(meta), self.lines[meta.line - 1]
            ))
        return m.Window(start, end, self._at(meta))

    def _day(self, token: Token):
        """A whole day of a window: a valid date with no time (BR205 otherwise)."""
        instant = read_instant(str(token))
        problem = instant if isinstance(instant, str) else None
        if problem is None and "T" in str(token):
            problem = f"validity bounds are whole days: write {str(token)[:10]}"
        if problem is not None:
            self.diagnostics.append(Diagnostic("BR205", problem, self._at(token), self.lines[_line(token) - 1]))
            return None
        assert isinstance(instant, Instant)
        return instant.day

    def _instant(self, token: Token) -> m.DateValue:
        """A date or time as an example writes it, checked (BR205)."""
        instant = read_instant(str(token))
        if isinstance(instant, str):
            self.diagnostics.append(Diagnostic("BR205", instant, self._at(token), self.lines[_line(token) - 1]))
        return m.DateValue(str(token), self._at(token))

    # pricelist: "pricelist" WORD "from" WORD "unit" STRING per _NL header separator? row*
    def pricelist(self, meta, children):
        kind, offer, unit, per = self._word(children[0]), self._word(children[1]), _text(children[2]), children[3]
        if isinstance(per, _PerBlock):  # a SKU's price is per unit of its offer, never per started block
            self.diagnostics.append(Diagnostic(
                "BR211", "a pricelist's price is `per N` of the quantity; `per block of N` is for price tables",
                self._at(meta), self.lines[meta.line - 1],
            ))
            per = Decimal(per)
        columns: tuple = ()
        rows = []
        for child in children[4:]:
            if child[0] == "header":
                columns = child[1]
            elif child[0] == "row":
                rows.append(child[1])
        return m.PriceList(kind, offer, unit, per, columns, rows, self._at(meta))

    # scope: "in" names
    def scope_regions(self, meta, children):
        return ("regions", children[0])

    # scope: "in" "any"
    def scope_any_region(self, meta, children):
        return ("regions", ())

    # scope: "when" condition
    def scope_when(self, meta, children):
        return ("when", children[0])

    # scope: "charging" WORD per?
    def scope_charging(self, meta, children):
        per = children[1] if len(children) > 1 else Decimal(1)
        return m.Charging(self._word(children[0]), Decimal(per), self._at(meta), isinstance(per, _PerBlock))

    # scope: "monthly" TIER_MODE
    def scope_monthly(self, meta, children):
        return ("monthly", str(children[0]))

    # per: "per" NUMBER
    def per(self, meta, children):
        return Decimal(str(children[0]))

    # per: "per" "block" "of" NUMBER -> per_block
    def per_block(self, meta, children):
        return _PerBlock(str(children[0]))

    # header: "|" (header_cell "|")+ _NL
    def header(self, meta, children):
        return ("header", tuple(children))

    def key_column(self, meta, children):
        return m.KeyColumn(self._word(children[0]), self._at(meta))

    def charge_column(self, meta, children):
        per = children[1]
        return m.ChargeColumn(self._word(children[0]), Decimal(per), self._at(meta), isinstance(per, _PerBlock))

    def condition_column(self, meta, children):
        return m.ConditionColumn(children[0], self._at(meta))

    # separator: SEPARATOR _NL
    def separator(self, meta, children):
        return ("separator",)

    # row: "|" (cell "|")+ _NL
    def row(self, meta, children):
        return ("row", tuple(children))

    def value_cell(self, meta, children):
        return m.ValueCell(children[0], self._at(meta))

    def compare_cell(self, meta, children):
        return m.CompareCell(str(children[0]), Decimal(str(children[1])), self._at(meta))

    def any_cell(self, meta, children):
        return m.AnyCell(self._at(meta))

    def rate_cell(self, meta, children):
        return m.RateCell(Decimal(str(children[0])), self._at(meta))

    def free_cell(self, meta, children):
        return m.FreeCell(_text(children[0]) if children else None, self._at(meta))

    def not_offered_cell(self, meta, children):
        return m.NotOfferedCell(None, self._at(meta))

    def reason_cell(self, meta, children):
        return m.NotOfferedCell(_text(children[0]), self._at(meta))

    # offer: "offer" names "only" "in" names window? _NL | "offer" names window _NL
    def offer(self, meta, children):
        window = _window(children)
        names = [c for c in children if isinstance(c, tuple)]
        regions = names[1] if len(names) > 1 else ()
        return m.Offer(names[0], regions, self._at(meta), window)

    # refuse: "refuse" kinds "when" condition window? ":" STRING _NL
    def refuse(self, meta, children):
        window = _window(children)
        kinds, when, reason = [c for c in children if not isinstance(c, m.Window)]
        return m.Refuse(kinds, when, _text(reason), self._at(meta), window)

    # require: "require" kinds condition ("when" condition)? window? ":" STRING _NL
    def require(self, meta, children):
        window = _window(children)
        kinds, condition, *rest = [c for c in children if not isinstance(c, m.Window)]
        when = rest[0] if len(rest) == 2 else None
        return m.Require(kinds, condition, when, _text(rest[-1]), self._at(meta), window)

    # free: "free" kinds ("when" condition)? window? ":" STRING _NL
    def free(self, meta, children):
        window = _window(children)
        kinds, *rest = [c for c in children if not isinstance(c, m.Window)]
        when = rest[0] if len(rest) == 2 else None
        return m.Free(kinds, when, _text(rest[-1]), self._at(meta), window)

    # relative: "relative" kinds relative_case "at" ratio "of" WORD relative_scope* window? _NL
    def relative(self, meta, children):
        kinds, (field, cases), (factor, written), base, *rest = children
        regions: tuple = ()
        when = None
        quantities: tuple = ()
        for part in rest:
            if isinstance(part, tuple) and part[0] == "regions":
                regions = part[1]
            elif isinstance(part, tuple) and part[0] == "when":
                when = part[1]
            elif isinstance(part, tuple) and part[0] == "quantities":
                quantities = part[1]
        return m.Relative(
            kinds, field, cases, factor, self._word(base), regions, when, quantities, _window(rest), self._at(meta), written
        )

    # overlay: "overlay" STRING window? _NL
    def overlay(self, meta, children):
        return m.OverlayHeader(_text(children[0]), _window(children), self._at(meta))

    # adjust: "adjust" kinds "by" ADD NUMBER PERCENT ("when" condition)? window? _NL
    def adjust(self, meta, children):
        window = _window(children)
        kinds, sign, number, _percent, *rest = [c for c in children if not isinstance(c, m.Window)]
        percent = Decimal(str(number))
        when = rest[0] if rest else None
        return m.Adjust(kinds, -percent if str(sign) == "-" else percent, when, window, self._at(meta))

    def case_value(self, meta, children):
        return (self._word(children[0]), (self._word(children[2]),))

    def case_values(self, meta, children):
        return (self._word(children[0]), children[1])

    def case_quantity(self, meta, children):
        return (None, (self._word(children[0]),))

    # ratio: NUMBER PERCENT?  (50% is 0.5, exactly)
    def ratio(self, meta, children):
        number = Decimal(str(children[0]))
        percent = len(children) > 1
        return (number.scaleb(-2) if percent else number, "".join(map(str, children)))

    def scope_quantities(self, meta, children):
        return ("quantities", children[0])

    # minimum: "minimum" NUMBER "monthly" "for" kinds ("when" condition)? window? ":" STRING _NL
    def minimum(self, meta, children):
        window = _window(children)
        amount, kinds, *rest = [c for c in children if not isinstance(c, m.Window)]
        when = rest[0] if len(rest) == 2 else None
        return m.Minimum(Decimal(str(amount)), kinds, when, _text(rest[-1]), self._at(meta), window)

    # kinds: "any" -> any_kind | names
    def any_kind(self, meta, children):
        return ()

    def kinds(self, meta, children):
        return children[0]

    # example: "example" STRING ("at" DATE)? "expect" NUMBER _NL example_item+ "end" _NL
    def example(self, meta, children):
        at = None
        if isinstance(children[1], Token) and children[1].type == "DATE":
            at = self._instant(children[1])
            children = [children[0], *children[2:]]
        title, expect, *items = children
        return m.Example(_text(title), Decimal(str(expect)), items, self._at(meta), at)

    # example_item: "item" WORD STRING? _NL example_field*
    def example_item(self, meta, children):
        kind = self._word(children[0])
        name = _text(children[1]) if len(children) > 1 and isinstance(children[1], Token) else None
        fields = [c for c in children if isinstance(c, tuple)]
        return m.ExampleItem(kind, name, fields, self._at(meta))

    # example_field: WORD ":" value _NL
    def example_field(self, meta, children):
        return (self._word(children[0]), children[1])

    # conditions
    # `?rule … -> alias` keeps single children wrapped; unwrap them here.
    def any_of(self, meta, children):
        return children[0] if len(children) == 1 else m.AnyOf(children, self._at(meta))

    def all_of(self, meta, children):
        return children[0] if len(children) == 1 else m.AllOf(children, self._at(meta))

    def negation(self, meta, children):
        return m.Not(children[0], self._at(meta))

    def equals(self, meta, children):
        return m.Equals(self._word(children[0]), children[2], False, self._at(meta))

    def not_equals(self, meta, children):
        return m.Equals(self._word(children[0]), children[2], True, self._at(meta))

    def member(self, meta, children):
        return m.Member(self._word(children[0]), children[1], False, self._at(meta))

    def not_member(self, meta, children):
        return m.Member(self._word(children[0]), children[1], True, self._at(meta))

    def contains(self, meta, children):
        return m.Contains(self._word(children[0]), children[1], self._at(meta))

    def compare(self, meta, children):
        left, op, right = children
        return m.Compare(left, str(op), right, self._at(meta))

    # expressions
    def binary(self, meta, children):
        left, op, right = children
        return m.Binary(str(op), left, right, self._at(meta))

    def number(self, meta, children):
        return m.Number(Decimal(str(children[0])), self._at(meta))

    def field_ref(self, meta, children):
        return m.FieldRef(self._word(children[0]), self._at(meta))

    def call(self, meta, children):
        return m.Call(self._word(children[0]), children[1:], self._at(meta))

    def sum_each(self, meta, children):
        return m.SumEach(children[0], self._word(children[1]), self._at(meta))

    # names: WORD ("," WORD)*
    def names(self, meta, children):
        return tuple(self._word(c) for c in children)

    # values
    def word_value(self, meta, children):
        return m.Word(str(children[0]), self._at(meta))

    def number_value(self, meta, children):
        return m.Number(Decimal(str(children[0])), self._at(meta))

    def string_value(self, meta, children):
        return m.Text(_text(children[0]), self._at(meta))

    def list_value(self, meta, children):
        return m.ListValue(children, self._at(meta))

    def record_value(self, meta, children):
        return m.RecordValue(children, self._at(meta))

    def date_value(self, meta, children):
        return self._instant(children[0])

    # factor: DATE -> date_literal (a date compared with a date field)
    def date_literal(self, meta, children):
        return self._instant(children[0])

    def pair(self, meta, children):
        return (str(children[0]), children[1])
