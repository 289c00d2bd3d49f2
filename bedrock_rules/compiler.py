"""Syntax trees to a `Program`: names resolved, every reference checked, lookups built.

Compilation reports every problem of every file at once. It reads no file: the loader
hands it the parsed files and their source lines (for the lines diagnostics quote).
What it produces is immutable: price rules indexed by kind and model, conditions and
derived quantities compiled to closures (see semantics.py) over a dict of usage values.
"""

from __future__ import annotations

import datetime
import decimal
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import attrs

from . import fields as t
from . import model as m
from .errors import Diagnostic, RuleFileError, did_you_mean
from .fields import convert
from .program import (
    DerivedSpec,
    FreeRule,
    Guard,
    KindSpec,
    MinimumRule,
    ModelInfo,
    PriceRule,
    Program,
    RelativeRule,
    SkuRule,
    Tier,
    TierSet,
    rule_identity,
)
from .semantics import (
    EXACT,
    FUNCTIONS,
    RESERVED_FIELDS,
    ROUNDING_MODES,
    all_of,
    compile_expr,
    describe,
    describe_expr,
    expr_fields,
    fields_of,
    to_plain,
)


def compile_files(files: Sequence[m.RuleFile], sources: Mapping[str, Sequence[str]], root: str) -> Program:
    """The program of parsed rule files; raises RuleFileError listing every problem.

    `sources` holds each file's lines by the name its spans carry; `root` names the
    ruleset in messages that belong to no file (a missing `currency`).
    """
    return _Compiler(list(files), {path: tuple(lines) for path, lines in sources.items()}, root).compile()


class _Compiler:
    def __init__(self, files: list[m.RuleFile], sources: dict[str, tuple[str, ...]], root: str):
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
        lines: Sequence[str] = self.sources.get(span.path, [])
        source = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
        diagnostic = Diagnostic(code, message, span, source)
        # One problem once: a statement checked for each of its kinds (`refuse text, image when
        # mode = batc`) finds the same problem at the same place for each.
        if diagnostic not in self.diagnostics:
            self.diagnostics.append(diagnostic)

    def statements(self, cls: type) -> Iterable[Any]:
        for rule_file in self.files:
            for statement in rule_file.statements:
                if isinstance(statement, cls):
                    yield statement

    # the whole pass ------------------------------------------------------------
    def compile(self) -> Program:
        currency = self._currency()
        self._declare_names()
        self._declare_kinds()
        rules = self._price_rules()
        guards = self._guards()
        frees = self._frees()
        relatives = self._relatives()
        minimums = self._minimums()
        sku_rules = self._sku_rules()
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
        for name, billable in _billable(self.kinds, rules, guards, frees).items():
            quantities[name].extend(q for q in billable if q not in quantities[name])
        return Program(
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
            sku_rules=tuple(sku_rules),
            sources=self.sources,
            relatives={k: _field_order(self.kinds[k], [r for r in relatives if r.kind == k]) for k in {r.kind for r in relatives}},
            dated_kinds=frozenset(
                {r.kind for r in rules if r.window is not None}
                | {r.kind for r in relatives if r.window is not None}
                | {k for g in guards if g.dated for k in g.kinds}
                | {k for f in frees if f.window is not None for k in f.kinds}
                | {r.kind for r in minimums if r.window is not None}
            ),
            minimums=tuple(minimums),
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
            self.regions[str(region.name)] = region  # plain text: it becomes usage values
        for provider in self.statements(m.Provider):
            if provider.name in self.providers:
                self._duplicate("provider", provider.name, self.providers[provider.name].span, provider.span)
            self.providers[str(provider.name)] = provider
            for model in provider.models:
                if model.name in self.models:
                    self._duplicate("model", model.name, self.models[model.name].span, model.span)
                    continue
                self.models[str(model.name)] = ModelInfo(
                    str(model.name), model.title or str(model.name), str(provider.name), tuple(map(str, model.aliases)), model.span
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
                        self.aliases[str(spelling)] = str(model.name)
        for billed in self.statements(m.ModelBilled):
            if billed.model not in self.models:  # by its name, as the block declaring it says it
                self._unknown("model", billed.model, self.models, billed.span)
        for record in self.statements(m.Record):
            if record.name in self.records:
                self._duplicate("record", record.name, self.records[record.name].span, record.span)
            self.records[str(record.name)] = record

    def _duplicate(self, what: str, name: str, first: m.Span, again: m.Span) -> None:
        self.error("BR201", f"{what} `{name}` is declared twice; first at {first.where}", again)

    def _unknown(self, what: str, name: str, known: Iterable[str], span: m.Span) -> None:
        self.error("BR200", f"unknown {what} `{name}`{did_you_mean(name, known)}", m.span_of(name, span))

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
                    derived.append(DerivedSpec(str(d.name), d.unit, d.expr, compile_expr(d.expr, EXACT)))
                    scope[d.name] = t.DecimalType()
            self.kinds[str(kind.name)] = KindSpec(str(kind.name), kind.title or str(kind.name), fields, tuple(derived), kind.span)

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
            if f.default is not None:
                default = self._constant(f.default, field_type, f"the default of `{f.name}`")
            fields.append(t.FieldSpec(str(f.name), field_type, default, has_default, f.optional, f.unit))
        return tuple(fields)

    def _type(self, ref: m.TypeRef, depth: int = 0) -> t.FieldType | None:
        if isinstance(ref, m.ListType):
            item = self._type(ref.item, depth + 1)
            return t.ListOf(item) if item is not None else None
        if len(ref.names) > 1:
            return t.EnumType(tuple(map(str, ref.names)))
        name = ref.names[0]
        builtin: dict[str, t.FieldType] = {
            "count": t.CountType(), "decimal": t.DecimalType(), "flag": t.FlagType(),
            "model": t.ModelType(), "region": t.RegionType(), "date": t.DateType(),
        }
        if name in builtin:
            return builtin[name]
        if name in self.records and depth < 4:
            record = self.records[name]
            return t.RecordType(str(name), self._fields(record.fields, f"record `{name}`"))
        known = [*builtin, *self.records]
        self.error(
            "BR200",
            f"unknown type `{name}`{did_you_mean(name, known)}; a choice of values is written `a | b`",
            ref.span,
        )
        return None

    def _constant(self, value: m.Value, field_type: t.FieldType, what: str) -> Any:
        """A literal written in the rules, converted to the value a usage would hold."""
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
            if field_type is None and expr.name == "at":
                self._at_in_condition(expr.name, expr.span)
                return False
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
        if isinstance(expr, m.DateValue):  # `ceil(2025-01-01)`, `units + 2025-01-01`: dates are only compared
            self.error("BR203", f"a date ({expr.text}) is compared with a date field, never computed with", expr.span)
            return False
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
            sides = (cond.left, cond.right)
            if any(self._is_date(side, scope) for side in sides):
                return self._date_compare(cond, scope)
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

    @staticmethod
    def _is_date(expr: m.Expr, scope: Mapping[str, t.FieldType]) -> bool:
        return isinstance(expr, m.DateValue) or (isinstance(expr, m.FieldRef) and isinstance(scope.get(expr.name), t.DateType))

    def _date_compare(self, cond: m.Compare, scope: Mapping[str, t.FieldType]) -> m.Condition | None:
        """`contract_start >= 2025-01-01`: a date field with a date (or another date field), by UTC day."""
        for side in (cond.left, cond.right):
            if isinstance(side, m.FieldRef) and side.name == "at":
                self._at_in_condition(side.name, side.span)
                return None
            if not self._is_date(side, scope):
                self.error(
                    "BR203", f"a date is compared with a date (`contract_start >= 2025-01-01`), not with `{describe_expr(side)}`",
                    side.span,
                )
                return None
        return cond

    def _at_in_condition(self, name: str, span: m.Span) -> None:
        self.error(
            "BR207",
            "`at` cannot be tested in a condition: dates are stated with `from`/`until` at the end of the line, "
            "so `check` and the refusal of undated usage can see them",
            m.span_of(name, span),
        )

    def _scope(self, kind: KindSpec) -> dict[str, t.FieldType]:
        scope = {f.name: f.type for f in kind.fields}
        scope.update({d.name: t.DecimalType() for d in kind.derived})
        return scope

    def _field_type(self, name: str, kind: KindSpec, span: m.Span) -> t.FieldType | None:
        if name == "at":
            self._at_in_condition(name, span)
            return None
        if name == "provider" and kind.model_field:
            return t.EnumType(tuple(self.providers))
        scope = self._scope(kind)
        if name not in scope:
            self.error(
                "BR200",
                f"kind `{kind.name}` has no field `{name}`{did_you_mean(name, scope)}",
                m.span_of(name, span),
            )
            return None
        return scope[name]

    def _value_word(self, text: str, field_type: t.FieldType, field: str, span: m.Span) -> str | None:
        """A value named in a condition or a key cell, resolved to its canonical spelling."""
        if isinstance(field_type, t.ListOf):
            field_type = field_type.item
        if isinstance(field_type, t.ModelType):
            if text in self.aliases:
                return self.aliases[text]  # plain text, as the program holds names
            self._unknown("model", text, self.aliases, span)
            return None
        if isinstance(field_type, t.RegionType):
            if text in self.regions:
                return str(text)
            self._unknown("region", text, self.regions, span)
            return None
        if isinstance(field_type, t.EnumType):
            if text in field_type.values:
                return str(text)
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
                return str(text)
            self.error("BR203", f"`{field}` is true or false, not `{text}`", span)
            return None
        if t.is_numeric(field_type):
            try:
                Decimal(text)
            except decimal.InvalidOperation:
                self.error("BR203", f"`{field}` is a number, not `{text}`", span)
                return None
            return str(text)
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
        if table.any_region and kind.region_field is None:
            self.error("BR200", f"kind `{kind.name}` has no region field; remove `in any`", table.span)
            return []
        if not table.regions and not table.any_region and kind.region_field is not None:
            # A new `region` line must not silently join a table: the table says where it applies.
            self.error(
                "BR220",
                f"this table does not say where it applies: add `in REGION, …` or `in any` (kind `{kind.name}` has a region)",
                table.span,
            )
            return []
        if table.regions:
            region_field = kind.region_field
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
        if table.monthly is not None:
            return self._monthly_table(table, kind, common)
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
                rule = self._cell_rule(table, kind, column, columns[id(column)], cell, [*common, *keys], table.window)
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
                resolved[id(column)] = (column.quantity, column.per, None, column.block)
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
                resolved[id(column)] = (table.charging.quantity, table.charging.per, checked, table.charging.block)
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

    def _cell_rule(self, table, kind, column, resolved, cell, conditions, window=None) -> PriceRule | None:
        quantity, per, extra, block = resolved
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
            (str(c.field), str(cast(m.Texted, c.value).text))
            for c in conditions
            if isinstance(c, m.Equals) and isinstance(scope.get(c.field), t.ListOf)
        )
        # A dated rule's id names its window: two versions of one charge are two rules.
        parts = [describe(c) for c in conditions] + ([str(window)] if window is not None else [])
        return PriceRule(
            id=rule_identity(kind.name, str(quantity), parts),
            kind=kind.name,
            quantity=str(quantity),
            per=per,
            rate=rate,
            free=free,
            refusal=refusal,
            conditions=tuple(conditions),
            each=each,
            span=cell.span,
            matches=all_of(conditions, kind.fields),
            window=window,
            block=block,
        )

    # monthly tables -------------------------------------------------------------
    def _monthly_table(self, table: m.PriceTable, kind: KindSpec, common: list[m.Condition]) -> list[PriceRule]:
        """`prices … monthly graduated|volume`: one rule per row group, its tiers over a month's total.

        The key column named like the charged quantity is the tier column: its cells are
        bands of the month's running total (`<= N`, then at most one `> N`), not conditions
        on an item, so they become the tier set and the other key columns choose the set.
        """
        charges = [c for c in table.columns if isinstance(c, m.ChargeColumn)]
        if table.charging is not None or len(charges) != 1 or len(charges) != len(
            [c for c in table.columns if not isinstance(c, m.KeyColumn)]
        ):
            self.error("BR214", "a monthly table has one price column, `QUANTITY per N` (no `charging`, no condition columns)", table.span)
            return []
        charge = charges[0]
        tier_columns = [c for c in table.columns if isinstance(c, m.KeyColumn) and c.field == charge.quantity]
        if len(tier_columns) != 1:
            self.error(
                "BR214",
                f"a monthly table needs one tier column named like the quantity it charges: `| {charge.quantity} |` "
                f"with cells such as `<= 1000000` and `> 1000000`",
                table.span,
            )
            return []
        tier_column = tier_columns[0]
        keys = [c for c in table.columns if c is not tier_column and c is not charge]
        groups: dict[tuple[str, ...], tuple[list[m.Condition], list[str], list[tuple[m.CompareCell, m.Cell]]]] = {}
        for row in table.rows:
            if len(row) != len(table.columns):
                where = row[0].span if row else table.span
                self.error("BR210", f"this row has {len(row)} cells; the table's header has {len(table.columns)}", where)
                continue
            cells = dict(zip(map(id, table.columns), row, strict=True))
            band, price = cells[id(tier_column)], cells[id(charge)]
            if not isinstance(band, m.CompareCell) or band.op not in ("<=", ">"):
                self.error("BR214", "a tier cell is a band of the month's total: `<= N`, or `> N` for the open-ended last tier", band.span)
                continue
            if not isinstance(price, (m.RateCell, m.FreeCell)):
                self.error("BR214", "a tier of a monthly table holds a rate or `free`", price.span)
                continue
            conditions = self._row_keys([cells[id(c)] for c in keys], keys, kind)
            if conditions is None:
                continue
            key = tuple(describe(c) for c in conditions)
            values = [", ".join(cell.values) for cell in (cells[id(c)] for c in keys) if isinstance(cell, m.ValueCell)]
            groups.setdefault(key, (conditions, values, []))[2].append((band, price))
        rules = []
        for conditions, values, bands in groups.values():
            tiers = self._tiers(bands)
            if tiers is None:
                continue
            all_conditions = [*common, *conditions]
            parts = [describe(c) for c in all_conditions] + ([str(table.window)] if table.window is not None else [])
            rule_id = f"{kind.name}/{charge.quantity}[" + "; ".join(parts) + "]"
            # Named by its row's other keys, else by the table's `when`: `input_tokens (MODEL)`.
            scope = "; ".join(values) if values else (describe(table.when) if table.when is not None else "")
            label = charge.quantity + (f" ({scope})" if scope else "")
            tier_set = TierSet(rule_id, label, charge.quantity, table.monthly or "", charge.per, charge.block, tiers, table.span)
            rules.append(PriceRule(
                id=rule_id, kind=kind.name, quantity=charge.quantity, per=charge.per, rate=None, free=None, refusal=None,
                conditions=tuple(all_conditions), each=(), span=table.span, matches=all_of(all_conditions, kind.fields),
                window=table.window, block=charge.block, tiers=tier_set,
            ))
        return rules

    def _tiers(self, bands: list[tuple[m.CompareCell, m.Cell]]) -> tuple[Tier, ...] | None:
        """A row group's bands as ascending tiers: `<= N` bounds, then at most one `> N` at the highest."""
        bounded = sorted((b for b in bands if b[0].op == "<="), key=lambda b: b[0].value)
        open_ended = [b for b in bands if b[0].op == ">"]
        ok = True
        for (first, _), (second, _) in zip(bounded, bounded[1:], strict=False):
            if first.value == second.value:
                self.error("BR214", f"two tiers end at {second.value}; each tier's bound is its own", second.span)
                ok = False
        if not bounded:
            self.error("BR214", "a tier set needs at least one `<= N` tier", bands[0][0].span)
            return None
        top = bounded[-1][0].value
        if len(open_ended) > 1:
            self.error("BR214", "a tier set has at most one open-ended `> N` tier", open_ended[1][0].span)
            ok = False
        elif open_ended and open_ended[0][0].value != top:
            self.error(
                "BR214", f"the open-ended tier starts where the last `<=` tier ends: write `> {top}`", open_ended[0][0].span
            )
            ok = False
        if not ok:
            return None
        tiers = []
        lower = Decimal(0)
        for band, price in [*bounded, *open_ended]:
            upper = band.value if band.op == "<=" else None
            if isinstance(price, m.RateCell):
                tiers.append(Tier(lower, upper, price.rate, None, price.span))
            else:
                assert isinstance(price, m.FreeCell)
                tiers.append(Tier(lower, upper, None, price.reason or "", price.span))
            lower = band.value
        return tuple(tiers)

    def _minimums(self) -> list[MinimumRule]:
        """`minimum AMOUNT monthly for KINDS [when …] [WINDOW]`: one rule per kind it covers."""
        found = []
        for minimum in self.statements(m.Minimum):
            window = minimum.window
            if window is not None and (
                (window.start is not None and window.start.day != 1)
                or (window.end is not None and (window.end + datetime.timedelta(days=1)).day != 1)
            ):
                self.error(
                    "BR215",
                    "a monthly minimum's window covers whole months: start on a 1st, end on a month's last day",
                    window.span,
                )
                continue
            needs = sorted(fields_of(minimum.when)) if minimum.when is not None else []
            label = f"minimum {minimum.amount}" + (f" ({describe(minimum.when)})" if minimum.when is not None else "")
            parts = [str(minimum.amount), *([describe(minimum.when)] if minimum.when is not None else [])]
            parts += [str(window)] if window is not None else []
            minimum_id = rule_identity(", ".join(minimum.kinds) or "any", "minimum", parts)
            for kind in self._kinds(minimum.kinds, minimum.span, needs):
                conditions = []
                if minimum.when is not None:
                    checked = self._check_condition(minimum.when, kind)
                    if checked is None:
                        continue
                    conditions.append(checked)
                found.append(MinimumRule(
                    kind.name, minimum.amount, minimum.reason, minimum.span, all_of(conditions, kind.fields), window, label,
                    tuple(conditions), minimum_id,
                ))
        return found

    # refusals and free items --------------------------------------------------------
    # pricelist tables ----------------------------------------------------------
    def _sku_rules(self) -> list[SkuRule]:
        found: list[SkuRule] = []
        for table in self.statements(m.PriceList):
            kind = self.kinds.get(table.kind)
            if kind is None:
                self._unknown("kind", table.kind, self.kinds, table.span)
                continue
            if table.per <= 0:
                self.error("BR203", "`per` needs a number above 0", table.span)
                continue
            found.extend(self._sku_table(table, kind))
        return found

    def _sku_table(self, table: m.PriceList, kind: KindSpec) -> list[SkuRule]:
        scope = self._scope(kind)
        quantities = {name for name, field_type in scope.items() if t.is_numeric(field_type)}
        columns: list[tuple[str, str]] = []  # (what, name): attribute, field or quantity
        for column in table.columns:
            if not isinstance(column, m.KeyColumn):
                self.error("BR211", "a pricelist column names a SKU attribute, a field of the kind or `quantity`", column.span)
                return []
            name = str(column.field)
            columns.append(("quantity" if name == "quantity" else "field" if name in scope else "attribute", name))
        if not any(what == "quantity" for what, _ in columns) or not any(what == "attribute" for what, _ in columns):
            self.error("BR211", "a pricelist table needs a `quantity` column and a SKU attribute column (`usagetype`)", table.span)
            return []
        rules = []
        for row in table.rows:
            if len(row) != len(columns):
                self.error("BR211", f"this row has {len(row)} cells; the header has {len(columns)}", row[0].span)
                continue
            attributes, values, quantity, ok = [], [], None, True
            for (what, name), cell in zip(columns, row, strict=True):
                if isinstance(cell, m.AnyCell) and what != "quantity":
                    continue
                if what == "attribute":
                    if not isinstance(cell, m.NotOfferedCell) or cell.reason is None:
                        self.error("BR211", f'a `{name}` cell is a quoted pattern ("USE1-*-input-tokens") or `any`', cell.span)
                        ok = False
                        continue
                    attributes.append((name, cell.reason))
                    continue
                if not isinstance(cell, m.ValueCell) or len(cell.values) != 1:
                    self.error("BR211", f"a `{name}` cell is one name" + ("" if what == "quantity" else " or `any`"), cell.span)
                    ok = False
                    continue
                if what == "quantity":
                    if cell.values[0] not in quantities:
                        self._unknown(f"quantity of kind `{kind.name}`", cell.values[0], quantities, cell.span)
                        ok = False
                    quantity = str(cell.values[0])
                    continue
                value = self._value_word(cell.values[0], scope[name], name, cell.span)
                if value is None:
                    ok = False
                    continue
                values.append((name, value))
            if ok and quantity is not None:
                span = m.Span(table.span.path, row[0].span.line, 1)
                rules.append(SkuRule(kind.name, str(table.offer), table.unit, table.per, tuple(attributes), tuple(values), quantity, span))
        return rules

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
            for region in offer.regions:  # else every usage of the model would be refused as offered only there
                if region not in self.regions:
                    self._unknown("region", region, self.regions, offer.span)
            for model_name in offer.models:
                resolved = self.aliases.get(model_name)
                if resolved is None:
                    self._unknown("model", model_name, self.aliases, offer.span)
                    continue
                if offer.window is not None:  # refuses every day outside the window
                    reason = f"{self.models[resolved].title} is offered {offer.window}"
                    for kind in self.kinds.values():
                        if kind.model_field is not None:
                            when: m.Condition = m.Equals(kind.model_field, m.Word(model_name, offer.span), False, offer.span)
                            dated = self._guard((kind.name,), when, reason, offer.span)
                            guards.extend(attrs.evolve(g, outside=offer.window) for g in dated)
                if not offer.regions:
                    continue
                reason = f"{self.models[resolved].title} is offered only in {regions}"
                for kind in self.kinds.values():
                    region_field = kind.region_field
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
            guards.extend(self._guard(refuse.kinds, refuse.when, refuse.reason, refuse.span, refuse.window))
        for require in self.statements(m.Require):
            when = m.Not(require.condition, require.span)
            if require.when is not None:
                when = m.AllOf([require.when, when], require.span)
            guards.extend(self._guard(require.kinds, when, require.reason, require.span, require.window))
        return guards

    def _guard(self, kind_names, when, reason, span, window=None) -> list[Guard]:
        kinds = self._kinds(kind_names, span, sorted(fields_of(when)))
        guards = []
        for kind in kinds:
            checked = self._check_condition(when, kind)
            if checked is not None:
                guards.append(Guard(frozenset({kind.name}), reason, span, all_of([checked], kind.fields), checked, window))
        return guards

    # relative prices -------------------------------------------------------------
    def _relatives(self) -> list[RelativeRule]:
        found: list[RelativeRule] = []
        for rel in self.statements(m.Relative):
            for kind in self._kinds(rel.kinds, rel.span):
                rule = self._relative(rel, kind)
                if rule is not None:
                    found.append(rule)
        # BR212: following case -> base (per field) or quantity -> base quantity must end.
        graphs: dict[tuple[str, str | None], dict[Any, list[tuple[Any, RelativeRule]]]] = defaultdict(lambda: defaultdict(list))
        for rule in found:
            for case in rule.cases:
                graphs[rule.kind, rule.field][case].append((rule.base, rule))
        for graph in graphs.values():
            cycle = _cycle({node: [b for b, _ in edges] for node, edges in graph.items()})
            if cycle:
                involved = [r for node in cycle for b, r in graph[node] if b in cycle]
                places = " and ".join(dict.fromkeys(f"{r.text} ({r.where})" for r in involved))
                self.error("BR212", f"relative prices that go round in a circle: {places}; one of them must be a price", involved[0].span)
        return found

    def _relative(self, rel: m.Relative, kind: KindSpec) -> RelativeRule | None:
        scope = self._scope(kind)
        numeric = {name for name, ft in scope.items() if t.is_numeric(ft)}
        bad = len(self.diagnostics)
        if rel.factor <= 0:
            self.error("BR213", f"a relative price's factor is above 0, not {rel.factor_text}", rel.span)
        cases: list[Any] = []
        base: Any = rel.base
        if rel.field is not None:
            ft = scope.get(rel.field)
            if not isinstance(ft, (t.EnumType, t.FlagType)):
                self.error(
                    "BR213",
                    f"`{rel.field}` is not a choice of kind `{kind.name}`: a relative price is of another value of a choice "
                    "(`mode = batch at 0.5 of on_demand`) or of another quantity (`cache_read_tokens at 0.1 of input_tokens`)",
                    m.span_of(rel.field, rel.span),
                )
                return None
            values = ft.values if isinstance(ft, t.EnumType) else ("true", "false")
            for value in (*rel.cases, rel.base):
                if value not in values:
                    self.error(
                        "BR213", f"`{value}` is not a value of `{rel.field}`{did_you_mean(value, values)}; expected {ft.describe()}",
                        m.span_of(value, rel.span),
                    )
            if rel.base in rel.cases:
                self.error("BR213", f"`{rel.base}` cannot be priced at a factor of itself", m.span_of(rel.base, rel.span))
            cases = [t.literal(ft, str(v)) for v in rel.cases if v in values]
            base = t.literal(ft, str(rel.base)) if rel.base in values else rel.base
        else:
            for quantity in (rel.cases[0], rel.base):
                if quantity not in numeric:
                    self._unknown(f"quantity of kind `{kind.name}`", quantity, numeric, m.span_of(quantity, rel.span))
            if rel.cases[0] == rel.base:
                self.error("BR213", f"`{rel.base}` cannot be priced at a factor of itself", m.span_of(rel.base, rel.span))
            cases = [str(rel.cases[0])]
            base = str(rel.base)
        for quantity in rel.quantities:
            if quantity not in numeric:
                self._unknown(f"quantity of kind `{kind.name}`", quantity, numeric, m.span_of(quantity, rel.span))
        conditions: list[m.Condition] = []
        if rel.regions:
            if kind.region_field is None:
                self.error("BR200", f"kind `{kind.name}` has no region field; remove `in …`", rel.span)
                return None
            checked = self._check_condition(m.Member(kind.region_field, rel.regions, False, rel.span), kind)
            if checked is not None:
                conditions.append(checked)
        if rel.when is not None:
            checked = self._check_condition(rel.when, kind)
            if checked is not None:
                conditions.append(checked)
        if len(self.diagnostics) > bad:
            return None
        case = f"{rel.field} {'= ' + rel.cases[0] if len(rel.cases) == 1 else 'in ' + ', '.join(rel.cases)}" if rel.field else rel.cases[0]
        return RelativeRule(
            kind=kind.name, field=None if rel.field is None else str(rel.field), cases=frozenset(cases), base=base,
            factor=rel.factor, quantities=frozenset(map(str, rel.quantities)), conditions=tuple(conditions), window=rel.window,
            text=f"{case} at {rel.factor_text} of {rel.base}", span=rel.span, matches=all_of(conditions, kind.fields),
        )

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
                frees.append(FreeRule(
                    frozenset({kind.name}), free.reason, free.span, all_of(conditions, kind.fields), tuple(conditions), free.window
                ))
        return frees


def _field_order(kind: KindSpec, rules: list[RelativeRule]) -> tuple[RelativeRule, ...]:
    """Relative rules in the order they apply: by their field's place in the kind (outermost
    first), the quantity form last."""
    places = {f.name: i for i, f in enumerate(kind.fields)}
    return tuple(sorted(rules, key=lambda r: places.get(r.field, len(places)) if r.field else len(places) + 1))


def _cycle(edges: Mapping[Any, Any]) -> list[Any] | None:
    """A cycle in a graph of node -> following nodes, as the nodes on it; None when acyclic."""
    state: dict[Any, int] = {}
    path: list[Any] = []

    def visit(node: Any) -> list[Any] | None:
        state[node] = 1
        path.append(node)
        for following in edges.get(node, ()):
            if state.get(following) == 1:
                return path[path.index(following):]
            if following not in state:
                found = visit(following)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for start in list(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _model_keys(rule: PriceRule, model_field: str | None) -> tuple[str, ...] | None:
    """The models a rule can only match, for the by-model index; None when any model."""
    if model_field is None:
        return None
    for cond in rule.conditions:
        if isinstance(cond, m.Equals) and cond.field == model_field and not cond.negated:
            return (cast(m.Texted, cond.value).text,)
        if isinstance(cond, m.Member) and cond.field == model_field and not cond.negated:
            return tuple(cond.values)
    return None




def _billable(
    kinds: Mapping[str, KindSpec], rules: Sequence[PriceRule], guards: Sequence[Guard], frees: Sequence[FreeRule]
) -> dict[str, list[str]]:
    """Per kind, the quantities that are billable without a rule charging them.

    A count, decimal or derived quantity with a unit is billable unless it is an input:
    read by a derived quantity or by a condition (of a table, `refuse`, `require` or
    `free`). A nonzero billable quantity that no matching rule charges or frees refuses
    the item, so a quantity the rules forgot can never be priced 0.
    """
    read: dict[str, set[str]] = defaultdict(set)
    for rule in rules:
        for cond in rule.conditions:
            read[rule.kind] |= fields_of(cond)
    for guard in guards:
        if guard.condition is not None:
            for name in guard.kinds:
                read[name] |= fields_of(guard.condition)
    for free in frees:
        for cond in free.conditions:
            for name in free.kinds:
                read[name] |= fields_of(cond)
    billable: dict[str, list[str]] = {}
    for name, kind in kinds.items():
        inputs = set(read[name])
        for derived in kind.derived:
            inputs |= expr_fields(derived.expr)
        measured = [f.name for f in kind.fields if f.unit is not None and t.is_numeric(f.type)]
        measured += [d.name for d in kind.derived if d.unit is not None]
        billable[name] = [q for q in measured if q not in inputs]
    return billable
