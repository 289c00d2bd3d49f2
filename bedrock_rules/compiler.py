"""Rule files to a `Ruleset`: names resolved, every reference checked, lookups built.

Compilation reports every problem of every file at once. What it produces is
immutable: price rules indexed by kind and model, conditions and derived quantities
compiled to closures over a dict of usage values. Rule text is interpreted here, by
walking the model, never handed to `eval`.
"""

from __future__ import annotations

import decimal
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import attrs

from . import limits
from . import model as m
from . import types as t
from .errors import Diagnostic, RuleFileError, did_you_mean

# Exact arithmetic: a result that cannot be represented exactly raises, never rounds.
EXACT = decimal.Context(
    prec=120,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
# Inside ceil() and floor() a quotient need not terminate: the integer part is exact.
_LOOSE = decimal.Context(prec=120, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                         traps=[decimal.InvalidOperation, decimal.DivisionByZero])

RESERVED_FIELDS = frozenset({"kind", "name", "provider"})
FUNCTIONS = {"ceil": 1, "floor": 1, "max": None, "min": None}
ROUNDING_MODES = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
}


class Missing(Exception):
    """An optional field the usage left out: conditions that need it do not hold."""


Values = Mapping[str, Any]
Predicate = Callable[[Values], bool]


@attrs.frozen
class ModelInfo:
    name: str
    title: str
    provider: str
    aliases: tuple[str, ...]
    span: m.Span = attrs.field(eq=False, repr=False)


@attrs.frozen
class DerivedSpec:
    name: str
    unit: str | None
    expr: m.Expr
    compute: Callable[[Values], Any] = attrs.field(eq=False, repr=False)


@attrs.frozen
class KindSpec:
    name: str
    title: str
    fields: tuple[t.FieldSpec, ...]
    derived: tuple[DerivedSpec, ...]
    span: m.Span = attrs.field(eq=False, repr=False)

    @property
    def field_map(self) -> dict[str, t.FieldSpec]:
        return {f.name: f for f in self.fields}

    @property
    def model_field(self) -> str | None:
        return next((f.name for f in self.fields if isinstance(f.type, t.ModelType)), None)

    def unit_of(self, quantity: str) -> str | None:
        for f in self.fields:
            if f.name == quantity:
                return f.unit
        for d in self.derived:
            if d.name == quantity:
                return d.unit
        return None


@attrs.frozen
class PriceRule:
    """One cell of a price table: what it charges, at what rate, under which conditions."""

    id: str
    kind: str
    quantity: str
    per: Decimal
    rate: Decimal | None  # None: free or not offered
    free: str | None  # the reason a free cell gives, "" when it gives none
    refusal: str | None  # the reason a not-offered cell gives
    conditions: tuple[m.Condition, ...]
    each: tuple[tuple[str, str], ...]  # list-field values that make the charge distinct
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)

    @property
    def where(self) -> str:
        return self.span.where


@attrs.frozen
class Guard:
    """A refusal (`refuse`, `require`, `offer`): when `refuses` holds, the usage is refused."""

    kinds: frozenset[str]
    reason: str
    span: m.Span = attrs.field(eq=False)
    refuses: Predicate = attrs.field(eq=False, repr=False)
    condition: m.Condition | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class FreeRule:
    kinds: frozenset[str]
    reason: str
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)
    conditions: tuple[m.Condition, ...] = attrs.field(default=(), eq=False, repr=False)


@attrs.frozen
class Compiled:
    """Everything a ruleset means, resolved; `Ruleset` wraps it with the public API."""

    root: str
    currency: str
    rounding: tuple[m.Rounding, ...]
    regions: Mapping[str, m.Region]
    providers: Mapping[str, m.Provider]
    models: Mapping[str, ModelInfo]
    aliases: Mapping[str, str]  # every accepted spelling to the model's short name
    kinds: Mapping[str, KindSpec]
    rules: tuple[PriceRule, ...]
    by_model: Mapping[str, Mapping[str, tuple[PriceRule, ...]]]
    unindexed: Mapping[str, tuple[PriceRule, ...]]
    quantities: Mapping[str, tuple[str, ...]]  # per kind, the quantities some rule charges
    guards: Mapping[str, tuple[Guard, ...]]
    frees: Mapping[str, tuple[FreeRule, ...]]
    examples: tuple[m.Example, ...]
    files: tuple[m.RuleFile, ...]


def load_files(paths: Sequence[Path], root: Path, shown_root: str | None = None, prebuilt: bool = False) -> Compiled:
    """Parse and compile rule files; raises RuleFileError listing every problem.

    Messages and bills name files relative to the working folder, or under
    `shown_root` when given (the bundled ruleset is `rulesets/bedrock` wherever
    it is installed, so bills do not change with the install location). `prebuilt`
    lets the bundled ruleset use the parse its wheel ships (see prebuilt.py).
    """
    diagnostics: list[Diagnostic] = []
    files: list[m.RuleFile] = []
    texts: dict[str, str] = {}
    too_many = limits.rule_file_count(len(paths))
    if too_many:
        raise RuleFileError([Diagnostic("BR003", too_many, m.Span(shown_root or _shown(root), 1, 1))])
    for path in paths:
        shown = f"{shown_root}/{path.name}" if shown_root else _shown(path)
        try:
            too_large = limits.rule_file_size(path.stat().st_size)
            if too_large:
                diagnostics.append(Diagnostic("BR003", too_large, m.Span(shown, 1, 1)))
                continue
            texts[shown] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            diagnostics.append(Diagnostic("BR001", f"cannot read rule file: {reason}", m.Span(shown, 1, 1)))
    parsed: dict[str, m.RuleFile] = {}
    if prebuilt:
        from .prebuilt import parsed_files

        parsed = parsed_files(texts)
    for shown, text in texts.items():
        if shown in parsed:
            files.append(parsed[shown])
            continue
        from .parser import parse  # only when needed: importing lark costs start-up time

        try:
            files.append(parse(text, shown))
        except RuleFileError as error:
            diagnostics.extend(error.diagnostics)
    sources = {shown: text.splitlines() for shown, text in texts.items()}
    shown_dir = shown_root or _shown(root)
    if not paths:
        diagnostics.append(Diagnostic("BR002", "no rule files (*.rules) here", m.Span(shown_dir, 1, 1)))
    if diagnostics:
        raise RuleFileError(diagnostics)
    return _Compiler(files, sources, shown_dir).compile()


def rule_paths(root: Path) -> list[Path]:
    """The rule files of a folder in name order (or the one file given)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise RuleFileError([Diagnostic("BR001", "no such rule file or folder", m.Span(_shown(root), 1, 1))])
    return sorted(root.glob("*.rules"))


def _shown(path: Path) -> str:
    """A path as messages and bills show it: relative to the working folder when under it,
    with `/` on every platform, so bills are byte-identical on Windows too."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


class _Compiler:
    def __init__(self, files: list[m.RuleFile], sources: dict[str, list[str]], root: str):
        self.files = files
        self.sources = sources
        self.root = root
        self.diagnostics: list[Diagnostic] = []
        self.regions: dict[str, m.Region] = {}
        self.providers: dict[str, m.Provider] = {}
        self.models: dict[str, ModelInfo] = {}
        self.aliases: dict[str, str] = {}
        self.records: dict[str, m.Record] = {}
        self.kinds: dict[str, KindSpec] = {}

    # diagnostics ------------------------------------------------------------
    def error(self, code: str, message: str, span: m.Span) -> None:
        lines = self.sources.get(span.path, [])
        source = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
        self.diagnostics.append(Diagnostic(code, message, span, source))

    def statements(self, cls: type) -> Iterable[Any]:
        for rule_file in self.files:
            for statement in rule_file.statements:
                if isinstance(statement, cls):
                    yield statement

    # the whole pass ------------------------------------------------------------
    def compile(self) -> Compiled:
        currency = self._currency()
        self._declare_names()
        self._declare_kinds()
        rules = self._price_rules()
        guards = self._guards()
        frees = self._frees()
        examples = tuple(self.statements(m.Example))
        for example in examples:
            for item in example.items:
                if item.kind not in self.kinds:
                    self._unknown("kind", item.kind, self.kinds, item.span)
        rounding = tuple(self.statements(m.Rounding))
        for r in rounding:
            if r.mode not in ROUNDING_MODES:
                self.error("BR203", f"unknown rounding `{r.mode}`; use one of {', '.join(ROUNDING_MODES)}", r.span)
        if self.diagnostics:
            raise RuleFileError(sorted(self.diagnostics, key=lambda d: (d.span.path, d.span.line, d.span.column)))

        by_model: dict[str, dict[str, list[PriceRule]]] = defaultdict(lambda: defaultdict(list))
        unindexed: dict[str, list[PriceRule]] = defaultdict(list)
        quantities: dict[str, list[str]] = defaultdict(list)
        for rule in rules:
            models = _model_keys(rule, self.kinds[rule.kind].model_field)
            if models is None:
                unindexed[rule.kind].append(rule)
            else:
                for name in models:
                    by_model[rule.kind][name].append(rule)
            if rule.quantity not in quantities[rule.kind]:
                quantities[rule.kind].append(rule.quantity)
        return Compiled(
            root=self.root,
            currency=currency,
            rounding=rounding,
            regions=dict(self.regions),
            providers=dict(self.providers),
            models=dict(self.models),
            aliases=dict(self.aliases),
            kinds=dict(self.kinds),
            rules=tuple(rules),
            by_model={k: {n: tuple(v) for n, v in d.items()} for k, d in by_model.items()},
            unindexed={k: tuple(v) for k, v in unindexed.items()},
            quantities={k: tuple(v) for k, v in quantities.items()},
            guards={k: tuple(g for g in guards if k in g.kinds) for k in self.kinds},
            frees={k: tuple(f for f in frees if k in f.kinds) for k in self.kinds},
            examples=examples,
            files=tuple(self.files),
        )

    def _currency(self) -> str:
        declared = list(self.statements(m.Currency))
        if not declared:
            self.error("BR204", "no `currency` statement in the ruleset", m.Span(self.root, 1, 1))
            return ""
        for other in declared[1:]:
            if other.code != declared[0].code:
                self.error("BR201", f"currency `{other.code}` contradicts `{declared[0].code}` at {declared[0].span}", other.span)
        return declared[0].code

    # names ------------------------------------------------------------------
    def _declare_names(self) -> None:
        for region in self.statements(m.Region):
            if region.name in self.regions:
                self._duplicate("region", region.name, self.regions[region.name].span, region.span)
            self.regions[region.name] = region
        for provider in self.statements(m.Provider):
            if provider.name in self.providers:
                self._duplicate("provider", provider.name, self.providers[provider.name].span, provider.span)
            self.providers[provider.name] = provider
            for model in provider.models:
                if model.name in self.models:
                    self._duplicate("model", model.name, self.models[model.name].span, model.span)
                    continue
                self.models[model.name] = ModelInfo(
                    model.name, model.title or model.name, provider.name, model.aliases, model.span
                )
                for spelling in (model.name, *model.aliases):
                    owner = self.aliases.get(spelling)
                    if owner is not None and owner != model.name:
                        self.error(
                            "BR202",
                            f"`{spelling}` already names model `{owner}` ({self.models[owner].span.where})",
                            model.span,
                        )
                    else:
                        self.aliases[spelling] = model.name
        for record in self.statements(m.Record):
            if record.name in self.records:
                self._duplicate("record", record.name, self.records[record.name].span, record.span)
            self.records[record.name] = record

    def _duplicate(self, what: str, name: str, first: m.Span, again: m.Span) -> None:
        self.error("BR201", f"{what} `{name}` is declared twice; first at {first.where}", again)

    def _unknown(self, what: str, name: str, known: Iterable[str], span: m.Span) -> None:
        self.error("BR200", f"unknown {what} `{name}`{did_you_mean(name, known)}", self._at_name(span, name))

    def _at_name(self, span: m.Span, name: str) -> m.Span:
        """The span of `name` itself within a statement, for the caret; the statement's otherwise.

        The model keeps names as plain strings, so the name is found in the statement's lines.
        """
        lines = self.sources.get(span.path, [])
        last = span.end_line if span.end_line >= span.line else span.line
        for number in range(span.line, min(last, len(lines)) + 1):
            text = lines[number - 1]
            start = span.column - 1 if number == span.line else 0
            for match in re.finditer(re.escape(name), text[start:] if start >= 0 else text):
                begin = start + match.start()
                end = begin + len(name)
                before = text[begin - 1] if begin > 0 else " "
                after = text[end] if end < len(text) else " "
                if not (before.isalnum() or before in "_.:-") and not (after.isalnum() or after in "_.:-"):
                    return m.Span(span.path, number, begin + 1, number, end + 1)
        return span

    # kinds ------------------------------------------------------------------
    def _declare_kinds(self) -> None:
        for kind in self.statements(m.Kind):
            if kind.name in self.kinds:
                self._duplicate("kind", kind.name, self.kinds[kind.name].span, kind.span)
                continue
            fields = self._fields(kind.fields, f"kind `{kind.name}`")
            scope = {f.name: f.type for f in fields}
            derived = []
            for d in kind.derived:
                if d.name in scope or d.name in RESERVED_FIELDS:
                    self.error("BR201", f"`{d.name}` is already a field of kind `{kind.name}`", d.span)
                    continue
                if self._check_expr(d.expr, scope, {}):
                    derived.append(DerivedSpec(d.name, d.unit, d.expr, _compile_expr(d.expr, EXACT)))
                    scope[d.name] = t.DecimalType()
            self.kinds[kind.name] = KindSpec(kind.name, kind.title or kind.name, fields, tuple(derived), kind.span)

    def _fields(self, declared: Sequence[m.Field], owner: str) -> tuple[t.FieldSpec, ...]:
        fields: list[t.FieldSpec] = []
        seen: set[str] = set()
        for f in declared:
            if f.name in seen:
                self.error("BR201", f"field `{f.name}` is declared twice in {owner}", f.span)
                continue
            if f.name in RESERVED_FIELDS:
                self.error("BR110", f"`{f.name}` is reserved for usage documents and cannot name a field", f.span)
                continue
            seen.add(f.name)
            field_type = self._type(f.type)
            if field_type is None:
                continue
            default, has_default = None, f.default is not None
            if has_default:
                default = self._constant(f.default, field_type, f"the default of `{f.name}`")
            fields.append(t.FieldSpec(f.name, field_type, default, has_default, f.optional, f.unit))
        return tuple(fields)

    def _type(self, ref: m.TypeRef, depth: int = 0) -> t.FieldType | None:
        if isinstance(ref, m.ListType):
            item = self._type(ref.item, depth + 1)
            return t.ListOf(item) if item is not None else None
        if len(ref.names) > 1:
            return t.EnumType(ref.names)
        name = ref.names[0]
        builtin = {
            "count": t.CountType(), "decimal": t.DecimalType(), "flag": t.FlagType(),
            "model": t.ModelType(), "region": t.RegionType(),
        }
        if name in builtin:
            return builtin[name]
        if name in self.records and depth < 4:
            record = self.records[name]
            return t.RecordType(name, self._fields(record.fields, f"record `{name}`"))
        known = [*builtin, *self.records]
        self.error(
            "BR200",
            f"unknown type `{name}`{did_you_mean(name, known)}; a choice of values is written `a | b`",
            ref.span,
        )
        return None

    def _constant(self, value: m.Value, field_type: t.FieldType, what: str) -> Any:
        """A literal written in the rules, converted to the value a usage would hold."""
        from .usage import convert  # the same rules as usage documents

        plain = to_plain(value)
        result, problem = convert(plain, field_type, self._lookup_tables())
        if problem:
            self.error("BR203", f"{what}: {problem}", value.span)
        return result

    def _lookup_tables(self) -> dict[str, Mapping[str, str]]:
        return {"model": self.aliases, "region": {r: r for r in self.regions}}

    # expressions and conditions -------------------------------------------------
    def _check_expr(self, expr: m.Expr, scope: Mapping[str, t.FieldType], records: Mapping[str, t.FieldType]) -> bool:
        ok = True
        if isinstance(expr, m.Number):
            return True
        if isinstance(expr, m.FieldRef):
            field_type = records.get(expr.name) or scope.get(expr.name)
            if field_type is None:
                self._unknown("quantity", expr.name, [*scope, *records], expr.span)
                return False
            if not t.is_numeric(field_type):
                self.error("BR203", f"`{expr.name}` is not a number and cannot be computed with", expr.span)
                return False
            return True
        if isinstance(expr, m.Binary):
            return self._check_expr(expr.left, scope, records) & self._check_expr(expr.right, scope, records)
        if isinstance(expr, m.Call):
            arity = FUNCTIONS.get(expr.function, -1)
            if arity == -1:
                self._unknown("function", expr.function, FUNCTIONS, expr.span)
                return False
            if arity is not None and len(expr.args) != arity:
                self.error("BR203", f"{expr.function}() takes {arity} argument, not {len(expr.args)}", expr.span)
                ok = False
            for arg in expr.args:
                ok &= self._check_expr(arg, scope, records)
            return ok
        if isinstance(expr, m.SumEach):
            list_type = scope.get(expr.list_field)
            if not (isinstance(list_type, t.ListOf) and isinstance(list_type.item, t.RecordType)):
                self.error("BR203", f"`sum(… for each {expr.list_field})` needs a list of records", expr.span)
                return False
            inner = {f.name: f.type for f in list_type.item.fields}
            return self._check_expr(expr.body, scope, inner)
        raise AssertionError(expr)  # pragma: no cover

    def _check_condition(self, cond: m.Condition, kind: KindSpec) -> m.Condition | None:
        """The condition with model aliases resolved, or None after reporting a problem."""
        if isinstance(cond, (m.AllOf, m.AnyOf)):
            parts = [self._check_condition(p, kind) for p in cond.parts]
            if any(p is None for p in parts):
                return None
            return attrs.evolve(cond, parts=parts)
        if isinstance(cond, m.Not):
            part = self._check_condition(cond.part, kind)
            return None if part is None else attrs.evolve(cond, part=part)
        if isinstance(cond, m.Compare):
            scope = self._scope(kind)
            ok = self._check_expr(cond.left, scope, {}) & self._check_expr(cond.right, scope, {})
            return cond if ok else None
        field_type = self._field_type(cond.field, kind, cond.span)
        if field_type is None:
            return None
        if isinstance(cond, m.Member):
            values = [self._value_word(v, field_type, cond.field, cond.span) for v in cond.values]
            return None if None in values else attrs.evolve(cond, values=values)
        value = cond.value
        if isinstance(cond, m.Contains) and not isinstance(field_type, t.ListOf):
            self.error("BR203", f"`contains` needs a list field; `{cond.field}` is {field_type.describe()}", cond.span)
            return None
        if not isinstance(value, (m.Word, m.Number)):
            self.error("BR203", f"compare `{cond.field}` with a name or a number", cond.span)
            return None
        text = value.text if isinstance(value, m.Word) else str(value.value)
        resolved = self._value_word(text, field_type, cond.field, value.span)
        if resolved is None:
            return None
        return attrs.evolve(cond, value=m.Word(resolved, value.span))

    def _scope(self, kind: KindSpec) -> dict[str, t.FieldType]:
        scope = {f.name: f.type for f in kind.fields}
        scope.update({d.name: t.DecimalType() for d in kind.derived})
        return scope

    def _field_type(self, name: str, kind: KindSpec, span: m.Span) -> t.FieldType | None:
        if name == "provider" and kind.model_field:
            return t.EnumType(tuple(self.providers))
        scope = self._scope(kind)
        if name not in scope:
            self.error(
                "BR200",
                f"kind `{kind.name}` has no field `{name}`{did_you_mean(name, scope)}",
                self._at_name(span, name),
            )
            return None
        return scope[name]

    def _value_word(self, text: str, field_type: t.FieldType, field: str, span: m.Span) -> str | None:
        """A value named in a condition or a key cell, resolved to its canonical spelling."""
        if isinstance(field_type, t.ListOf):
            field_type = field_type.item
        if isinstance(field_type, t.ModelType):
            if text in self.aliases:
                return self.aliases[text]
            self._unknown("model", text, self.aliases, span)
            return None
        if isinstance(field_type, t.RegionType):
            if text in self.regions:
                return text
            self._unknown("region", text, self.regions, span)
            return None
        if isinstance(field_type, t.EnumType):
            if text in field_type.values:
                return text
            what = "provider" if field == "provider" else f"value of `{field}`"
            self.error(
                "BR203",
                f"`{text}` is not a {what}{did_you_mean(text, field_type.values)}; "
                f"expected {field_type.describe()}",
                span,
            )
            return None
        if isinstance(field_type, t.FlagType):
            if text in ("true", "false"):
                return text
            self.error("BR203", f"`{field}` is true or false, not `{text}`", span)
            return None
        if t.is_numeric(field_type):
            try:
                Decimal(text)
            except decimal.InvalidOperation:
                self.error("BR203", f"`{field}` is a number, not `{text}`", span)
                return None
            return text
        self.error("BR203", f"`{field}` cannot be matched against a value", span)
        return None

    # price tables -------------------------------------------------------------
    def _price_rules(self) -> list[PriceRule]:
        rules: list[PriceRule] = []
        for table in self.statements(m.PriceTable):
            kind = self.kinds.get(table.kind)
            if kind is None:
                self._unknown("kind", table.kind, self.kinds, table.span)
                continue
            rules.extend(self._table(table, kind))
        return rules

    def _table(self, table: m.PriceTable, kind: KindSpec) -> list[PriceRule]:
        common: list[m.Condition] = []
        if table.regions:
            region_field = next((f.name for f in kind.fields if isinstance(f.type, t.RegionType)), None)
            if region_field is None:
                self.error("BR200", f"kind `{kind.name}` has no region field; remove `in …`", table.span)
                return []
            checked = self._check_condition(m.Member(region_field, table.regions, False, table.span), kind)
            if checked is None:
                return []
            common.append(checked)
        if table.when is not None:
            checked = self._check_condition(table.when, kind)
            if checked is None:
                return []
            common.append(checked)
        numeric = {name for name, ft in self._scope(kind).items() if t.is_numeric(ft)}
        charging = table.charging
        if charging is not None and charging.quantity not in numeric:
            self._unknown(f"quantity of kind `{kind.name}`", charging.quantity, numeric, charging.span)
            return []
        columns = self._columns(table, kind, numeric)
        if columns is None:
            return []
        rules = []
        for row in table.rows:
            if len(row) != len(table.columns):
                span = row[0].span if row else table.span
                self.error(
                    "BR210",
                    f"this row has {len(row)} cells; the table's header has {len(table.columns)}",
                    span,
                )
                continue
            keys = self._row_keys(row, table.columns, kind)
            if keys is None:
                continue
            for column, cell in zip(table.columns, row, strict=False):
                if isinstance(column, m.KeyColumn):
                    continue
                rule = self._cell_rule(table, kind, column, columns[id(column)], cell, [*common, *keys])
                if rule is not None:
                    rules.append(rule)
        return rules

    def _columns(self, table: m.PriceTable, kind: KindSpec, numeric: set[str]) -> dict[int, Any] | None:
        """For each price column: (quantity, per, extra condition or None)."""
        resolved: dict[int, Any] = {}
        priced = False
        for column in table.columns:
            if isinstance(column, m.KeyColumn):
                if self._field_type(column.field, kind, column.span) is None:
                    return None  # reported once here, not again for every row
                continue
            priced = True
            if isinstance(column, m.ChargeColumn):
                if column.quantity not in numeric:
                    self._unknown(f"quantity of kind `{kind.name}`", column.quantity, numeric, column.span)
                    return None
                if column.per <= 0:
                    self.error("BR203", "`per` needs a number above 0", column.span)
                    return None
                resolved[id(column)] = (column.quantity, column.per, None)
            else:
                if table.charging is None:
                    self.error(
                        "BR210",
                        "a column headed by a condition needs `charging QUANTITY` on the table's first line",
                        column.span,
                    )
                    return None
                checked = self._check_condition(column.condition, kind)
                if checked is None:
                    return None
                resolved[id(column)] = (table.charging.quantity, table.charging.per, checked)
        if not priced:
            self.error("BR210", "this table has no price column (`QUANTITY per N` or a condition)", table.span)
            return None
        return resolved

    def _row_keys(self, row: Sequence[m.Cell], columns: Sequence[m.Column], kind: KindSpec) -> list[m.Condition] | None:
        keys: list[m.Condition] = []
        ok = True
        for column, cell in zip(columns, row, strict=False):
            if not isinstance(column, m.KeyColumn):
                continue
            condition: m.Condition | None
            if isinstance(cell, m.AnyCell):
                continue
            if isinstance(cell, m.ValueCell):
                condition = (
                    m.Equals(column.field, m.Word(cell.values[0], cell.span), False, cell.span)
                    if len(cell.values) == 1
                    else m.Member(column.field, cell.values, False, cell.span)
                )
            elif isinstance(cell, m.RateCell):  # a number in a key column is a value
                condition = m.Equals(column.field, m.Number(cell.rate, cell.span), False, cell.span)
            elif isinstance(cell, m.CompareCell):
                condition = m.Compare(m.FieldRef(column.field, cell.span), cell.op, m.Number(cell.value, cell.span), cell.span)
            else:
                self.error(
                    "BR210",
                    f"column `{column.field}` says which usages a row is for: write a value, "
                    "values separated by commas, a comparison such as `<= 512`, or `any`",
                    cell.span,
                )
                ok = False
                continue
            checked = self._check_condition(condition, kind)
            if checked is None:
                ok = False
            else:
                keys.append(checked)
        return keys if ok else None

    def _cell_rule(self, table, kind, column, resolved, cell, conditions) -> PriceRule | None:
        quantity, per, extra = resolved
        if extra is not None:
            conditions = [*conditions, extra]
        rate = free = refusal = None
        if isinstance(cell, m.RateCell):
            rate = cell.rate
        elif isinstance(cell, m.FreeCell):
            free = cell.reason or "free"
        elif isinstance(cell, m.NotOfferedCell):
            refusal = cell.reason or "not offered"
        else:
            self.error(
                "BR210",
                "a price column holds a rate, `free`, `-` (not offered) or a quoted reason",
                cell.span,
            )
            return None
        scope = self._scope(kind)
        each = tuple(
            (c.field, c.value.text)
            for c in conditions
            if isinstance(c, m.Equals) and isinstance(scope.get(c.field), t.ListOf)
        )
        rule_id = f"{kind.name}/{quantity}[" + "; ".join(describe(c) for c in conditions) + "]"
        return PriceRule(
            id=rule_id,
            kind=kind.name,
            quantity=quantity,
            per=per,
            rate=rate,
            free=free,
            refusal=refusal,
            conditions=tuple(conditions),
            each=each,
            span=cell.span,
            matches=_all(conditions, kind),
        )

    # refusals and free items --------------------------------------------------------
    def _kinds(self, names: Sequence[str], span: m.Span, needs: Sequence[str] = ()) -> list[KindSpec]:
        if not names:  # `any`: every kind that has the fields the condition needs
            return [k for k in self.kinds.values() if all(n in self._scope(k) or (n == "provider" and k.model_field) for n in needs)]
        found = []
        for name in names:
            if name in self.kinds:
                found.append(self.kinds[name])
            else:
                self._unknown("kind", name, self.kinds, span)
        return found

    def _guards(self) -> list[Guard]:
        guards: list[Guard] = []
        for offer in self.statements(m.Offer):
            regions = ", ".join(offer.regions)
            for model_name in offer.models:
                resolved = self.aliases.get(model_name)
                if resolved is None:
                    self._unknown("model", model_name, self.aliases, offer.span)
                    continue
                reason = f"{self.models[resolved].title} is offered only in {regions}"
                for kind in self.kinds.values():
                    region_field = next((f.name for f in kind.fields if isinstance(f.type, t.RegionType)), None)
                    if kind.model_field is None or region_field is None:
                        continue
                    when = m.AllOf(
                        [
                            m.Equals(kind.model_field, m.Word(model_name, offer.span), False, offer.span),
                            m.Member(region_field, offer.regions, True, offer.span),
                        ],
                        offer.span,
                    )
                    guards.extend(self._guard((kind.name,), when, reason, offer.span))
        for refuse in self.statements(m.Refuse):
            guards.extend(self._guard(refuse.kinds, refuse.when, refuse.reason, refuse.span))
        for require in self.statements(m.Require):
            when = m.Not(require.condition, require.span)
            if require.when is not None:
                when = m.AllOf([require.when, when], require.span)
            guards.extend(self._guard(require.kinds, when, require.reason, require.span))
        return guards

    def _guard(self, kind_names, when, reason, span) -> list[Guard]:
        kinds = self._kinds(kind_names, span, sorted(_fields_of(when)))
        guards = []
        for kind in kinds:
            checked = self._check_condition(when, kind)
            if checked is not None:
                guards.append(Guard(frozenset({kind.name}), reason, span, _all([checked], kind), checked))
        return guards

    def _frees(self) -> list[FreeRule]:
        frees = []
        for free in self.statements(m.Free):
            for kind in self._kinds(free.kinds, free.span):
                conditions = []
                if free.when is not None:
                    checked = self._check_condition(free.when, kind)
                    if checked is None:
                        continue
                    conditions.append(checked)
                frees.append(FreeRule(frozenset({kind.name}), free.reason, free.span, _all(conditions, kind), tuple(conditions)))
        return frees


# Helpers shared with the interpreter ----------------------------------------------


def to_plain(value: m.Value) -> Any:
    """A value written in a rule file as the plain data a usage document would hold."""
    if isinstance(value, m.Word):
        return {"true": True, "false": False}.get(value.text, value.text)
    if isinstance(value, m.Number):
        number = value.value
        return int(number) if number == number.to_integral_value() and "." not in str(number) else number
    if isinstance(value, m.Text):
        return value.text
    if isinstance(value, m.ListValue):
        return [to_plain(v) for v in value.items]
    return {k: to_plain(v) for k, v in value.pairs}


def describe(cond: m.Condition) -> str:
    """A condition as canonical text: stable ids, explanations and messages use it."""
    if isinstance(cond, m.Equals):
        return f"{cond.field} {'!=' if cond.negated else '='} {_value_text(cond.value)}"
    if isinstance(cond, m.Member):
        return f"{cond.field} {'not in' if cond.negated else 'in'} {', '.join(cond.values)}"
    if isinstance(cond, m.Contains):
        return f"{cond.field} contains {_value_text(cond.value)}"
    if isinstance(cond, m.Compare):
        return f"{describe_expr(cond.left)} {cond.op} {describe_expr(cond.right)}"
    if isinstance(cond, m.AllOf):
        return " and ".join(_grouped(p) for p in cond.parts)
    if isinstance(cond, m.AnyOf):
        return " or ".join(_grouped(p) for p in cond.parts)
    return f"not {_grouped(cond.part)}"


def _grouped(cond: m.Condition) -> str:
    return f"({describe(cond)})" if isinstance(cond, (m.AllOf, m.AnyOf)) else describe(cond)


def _value_text(value: m.Value) -> str:
    return value.text if isinstance(value, (m.Word, m.Text)) else str(getattr(value, "value", value))


def describe_expr(expr: m.Expr) -> str:
    if isinstance(expr, m.Number):
        return str(expr.value)
    if isinstance(expr, m.FieldRef):
        return expr.name
    if isinstance(expr, m.Binary):
        return f"{describe_expr(expr.left)} {expr.op} {describe_expr(expr.right)}"
    if isinstance(expr, m.Call):
        return f"{expr.function}({', '.join(describe_expr(a) for a in expr.args)})"
    return f"sum({describe_expr(expr.body)} for each {expr.list_field})"


def fields_of(cond: m.Condition) -> set[str]:
    """The fields and quantities a condition reads."""
    return _fields_of(cond)


def _fields_of(cond: m.Condition) -> set[str]:
    if isinstance(cond, (m.AllOf, m.AnyOf)):
        return set().union(*(_fields_of(p) for p in cond.parts))
    if isinstance(cond, m.Not):
        return _fields_of(cond.part)
    if isinstance(cond, m.Compare):
        return _expr_fields(cond.left) | _expr_fields(cond.right)
    return {cond.field}


def _expr_fields(expr: m.Expr) -> set[str]:
    if isinstance(expr, m.FieldRef):
        return {expr.name}
    if isinstance(expr, m.Binary):
        return _expr_fields(expr.left) | _expr_fields(expr.right)
    if isinstance(expr, m.Call):
        return set().union(set(), *(_expr_fields(a) for a in expr.args))
    if isinstance(expr, m.SumEach):
        return {expr.list_field}
    return set()


def _conjuncts(conditions: Iterable[m.Condition]) -> list[m.Condition]:
    """`a and b` as its parts, so a message names only the parts that fail."""
    parts: list[m.Condition] = []
    for cond in conditions:
        parts.extend(_conjuncts(cond.parts) if isinstance(cond, m.AllOf) else [cond])
    return parts


def failing_conditions(rule: PriceRule, kind: KindSpec, values: Values) -> list[str]:
    """The conditions of a rule that a usage does not meet, each with the usage's value."""
    types_ = {f.name: f.type for f in kind.fields}
    failing = []
    for cond in _conjuncts(rule.conditions):
        if _compile_condition(cond, types_)(values):
            continue
        shown = []
        for name in sorted(_fields_of(cond)):
            value = values.get(name)
            shown.append(f"{name} is not given" if value is None else f"{name} is {_shown_value(value)}")
        text = describe(cond)
        if isinstance(cond, m.Equals) and isinstance(types_.get(cond.field), t.ListOf):
            text = f"{cond.field} {'does not contain' if cond.negated else 'contains'} {_value_text(cond.value)}"
        failing.append(f"{text} ({'; '.join(shown)})")
    return failing


def _shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown_value(v) for v in value) + "]"
    return str(value)


def _model_keys(rule: PriceRule, model_field: str | None) -> tuple[str, ...] | None:
    """The models a rule can only match, for the by-model index; None when any model."""
    if model_field is None:
        return None
    for cond in rule.conditions:
        if isinstance(cond, m.Equals) and cond.field == model_field and not cond.negated:
            return (cond.value.text,)
        if isinstance(cond, m.Member) and cond.field == model_field and not cond.negated:
            return tuple(cond.values)
    return None


# Compiling conditions and expressions to closures --------------------------------------


def _all(conditions: Sequence[m.Condition], kind: KindSpec) -> Predicate:
    types_ = {f.name: f.type for f in kind.fields}
    preds = [_compile_condition(c, types_) for c in conditions]
    if not preds:
        return lambda values: True
    if len(preds) == 1:
        return preds[0]
    return lambda values: all(p(values) for p in preds)


def _typed(text: str, field_type: t.FieldType | None) -> Any:
    if isinstance(field_type, t.ListOf):
        field_type = field_type.item
    if field_type is None:
        return text
    return t.literal(field_type, text)


def _compile_condition(cond: m.Condition, types_: Mapping[str, t.FieldType]) -> Predicate:
    if isinstance(cond, m.AllOf):
        parts = [_compile_condition(p, types_) for p in cond.parts]
        return lambda v: all(p(v) for p in parts)
    if isinstance(cond, m.AnyOf):
        parts = [_compile_condition(p, types_) for p in cond.parts]
        return lambda v: any(p(v) for p in parts)
    if isinstance(cond, m.Not):
        # A condition on a field the usage leaves out does not hold, negated or not:
        # `not steps > 50` needs steps as much as `steps <= 50` does. So a `require`
        # (refuse when not …) does not apply to a usage without the fields it reads.
        inner = _compile_condition(cond.part, types_)
        needed = tuple(_fields_of(cond.part))
        return lambda v: all(name in v for name in needed) and not inner(v)
    if isinstance(cond, m.Compare):
        left, right = _compile_expr(cond.left, EXACT), _compile_expr(cond.right, EXACT)
        compare = _COMPARISONS[cond.op]

        def compared(v: Values) -> bool:
            try:
                return compare(left(v), right(v))
            except Missing:
                return False

        return compared
    field = cond.field
    field_type = types_.get(field)
    listed = isinstance(field_type, t.ListOf)
    if isinstance(cond, m.Member):
        wanted = frozenset(_typed(x, field_type) for x in cond.values)
        negated = cond.negated
        if listed:
            return lambda v: field in v and (not wanted.isdisjoint(v[field])) != negated
        return lambda v: field in v and (v[field] in wanted) != negated
    target = _typed(cond.value.text, field_type)
    if isinstance(cond, m.Contains) or listed:
        negated = isinstance(cond, m.Equals) and cond.negated
        return lambda v: field in v and (target in v[field]) != negated
    if cond.negated:
        return lambda v: field in v and v[field] != target
    return lambda v: field in v and v[field] == target


_COMPARISONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compile_expr(expr: m.Expr, ctx: decimal.Context) -> Callable[[Values], Any]:
    if isinstance(expr, m.Number):
        number = expr.value
        constant = int(number) if number == number.to_integral_value() else number
        return lambda v: constant
    if isinstance(expr, m.FieldRef):
        name = expr.name

        def read(v: Values) -> Any:
            try:
                return v[name]
            except KeyError:
                raise Missing(name) from None

        return read
    if isinstance(expr, m.Binary):
        left, right = _compile_expr(expr.left, ctx), _compile_expr(expr.right, ctx)
        if expr.op == "/":
            return lambda v: ctx.divide(Decimal(left(v)), Decimal(right(v)))
        operation = {"+": ctx.add, "-": ctx.subtract, "*": ctx.multiply}[expr.op]
        integral = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}[expr.op]

        def arithmetic(v: Values) -> Any:
            a, b = left(v), right(v)
            if type(a) is int and type(b) is int:
                return integral(a, b)
            return operation(a, b)

        return arithmetic
    if isinstance(expr, m.Call):
        if expr.function in ("ceil", "floor"):
            arg = _compile_expr(expr.args[0], _LOOSE)
            rounding = ROUND_CEILING if expr.function == "ceil" else ROUND_FLOOR
            return lambda v: _integral(arg(v), rounding)
        args = [_compile_expr(a, ctx) for a in expr.args]
        pick = max if expr.function == "max" else min
        return lambda v: pick(a(v) for a in args)
    body = _compile_expr(expr.body, ctx)
    list_field = expr.list_field

    def summed(v: Values) -> Any:
        total: Any = 0
        for record in v.get(list_field, ()):
            value = body({**v, **record})
            total = total + value if type(total) is int and type(value) is int else ctx.add(total, value)
        return total

    return summed


def _integral(value: Any, rounding: str) -> int:
    if type(value) is int:
        return value
    return int(Decimal(value).to_integral_value(rounding=rounding))
