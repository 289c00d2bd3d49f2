"""Static checks of a ruleset, no usage needed: load errors, overlaps, gaps, unreachable rules, broken examples.

The analyses look for a concrete usage rather than reason symbolically. For each field
they collect the values the conditions name (models, regions, choices, numbers on and
around comparison boundaries) plus one value no condition names, and try the
combinations. Every usage a finding shows has been through `check_items` and the rules'
own predicates and guards, so it is never a guess. A search that cannot be exhaustive
(a condition comparing two expressions, a quantity it cannot produce, too many
combinations) never claims that a rule is unreachable or that a gap is refused.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import attrs

from . import fields as t
from . import model as m
from .bill import decimal_text
from .errors import Diagnostic, RuleFileError, UsageError
from .examples import document, layered
from .interpreter import evaluate_items, relative_version
from .program import Guard, KindSpec, PriceRule, Program, RelativeRule
from .ruleset import BUNDLED_NAME, load
from .semantics import compile_condition, conjuncts, describe, expr_fields, failing_conditions, fields_of
from .usage import check_items

# Codes of the analyses; the loader's own codes (BR0xx-BR2xx) are documented beside them in docs/errors.md.
OVERLAP, GAP, UNREACHABLE = "BR301", "BR302", "BR303"
SHADOWED = "BR312"  # a relative rule a table that prices the case itself shadows
OVERLAY_UNMATCHED = "BR315"  # an overlay rule that matches nothing the list prices
DEAD_UNTIL = "BR311"  # an `until` past the `from` of the version that replaces the rule
EXAMPLE_INVALID, EXAMPLE_REFUSED, EXAMPLE_TOTAL = "BR304", "BR305", "BR306"
OFFERED_UNPRICED = "BR307"
UNCHARGED, UNCHARGED_FOR_MODEL = "BR308", "BR309"
ONLY_ANY_REGION = "BR310"
SPLIT_TIERS = "BR314"  # a monthly minimum whose scope holds some of a tier set's usage and not the rest
MID_MONTH = "BR316"  # a monthly table's version that starts on another day than a 1st
TIME_GAP = "BR317"  # a day between two versions that no rule prices
BASELESS = "BR318"  # a relative rule whose base prices nothing (or is priced in monthly tiers)
RIVALS = "BR319"  # two relative rules of one field's case (or one quantity) that one usage can match

# Past this many combinations a search stops and says it was not exhaustive.
_LIMIT = 20000
# Abstract witnesses (derived quantities taken as free) tried as concrete usages, at most.
_REALISE = 50

UsageItem = tuple[tuple[str, Any], ...]


@attrs.frozen
class Finding:
    """One problem `check` reports: a stable code, a place, a sentence and, where it helps, a usage that shows it."""

    code: str
    message: str
    span: m.Span
    source_line: str = attrs.field(default="", eq=False, repr=False)
    example: UsageItem | None = None  # a usage item, field by field, that exhibits the problem
    related: tuple[m.Span, ...] = ()  # the other places involved

    def render(self) -> str:
        lines = [Diagnostic(self.code, self.message, self.span, self.source_line).render()]
        if self.example is not None:
            lines.append(f"  example: {inline(self.example)}")
        lines.extend(f"  see: {span}" for span in self.related)
        return "\n".join(lines)


@attrs.frozen
class Report:
    """What `check` found; `loaded` is False when the rules could not be program at all."""

    root: str
    findings: tuple[Finding, ...]
    loaded: bool


def check(path: str | Path | None = None, overlays: Sequence[str | Path] = ()) -> Report:
    """Check a folder of rule files (or one file), with overlays on it; the bundled ruleset by default."""
    shown = BUNDLED_NAME if path is None else str(path)
    try:
        rules = load(path, overlays)
    except RuleFileError as error:
        findings = tuple(Finding(d.code, d.message, d.span, d.source_line) for d in error.diagnostics)
        return Report(shown, findings, loaded=False)
    return Report(shown, tuple(analyse(rules.program)), loaded=True)


def analyse(program: Program) -> list[Finding]:
    """Every analysis finding of a program ruleset, in file order, each with its source line.

    A program is immutable, and the loader gives rules loaded again the program it compiled
    before: the findings of the last few programs analysed are kept, so a ruleset checked
    again in the same process (by the API, then the command) is analysed once.
    """
    with _analysed_lock:
        known = _analysed.get(id(program))
        if known is not None and known[0] is program:
            return list(known[1])
    findings = _analyse(program)
    with _analysed_lock:
        _analysed[id(program)] = (program, tuple(findings))
        while len(_analysed) > _ANALYSED_KEPT:
            _analysed.popitem(last=False)
    return findings


_ANALYSED_KEPT = 4
_analysed: OrderedDict[int, tuple[Program, tuple[Finding, ...]]] = OrderedDict()  # id -> (program, its findings)
_analysed_lock = threading.Lock()


def _analyse(program: Program) -> list[Finding]:
    findings = [
        *_overlaps(program), *_gaps(program), *_unreachable(program), *_offered_unpriced(program), *_uncharged(program),
        *_only_any_region(program), *_examples(program), *_shadowed_relatives(program), *_unmatched_overlays(program),
        *_mid_month(program), *_time_gaps(program), *_baseless_relatives(program), *_rival_relatives(program),
        *_split_tier_sets(program),
    ]
    findings = [attrs.evolve(f, source_line=program.source_line(f.span)) for f in findings]
    return sorted(findings, key=lambda f: (f.span.path, f.span.line, f.span.column, f.code))


# Output formats ---------------------------------------------------------------


def inline(item: UsageItem) -> str:
    """A usage item as one line of YAML flow style, the way a usage document would hold it."""
    return "{" + ", ".join(f"{key}: {_yaml(value)}" for key, value in item) + "}"


_PLAIN = re.compile(r"[A-Za-z_][\w.\-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return decimal_text(Decimal(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS else json.dumps(text, ensure_ascii=False)


SCHEMA = "bedrock-rules/findings/1"  # bedrock_rules/schemas/findings.json


def to_json(findings: Iterable[Finding]) -> str:
    """Findings as JSON; keys in a fixed order, example values as a usage document holds them."""
    listed = [
        {
            "code": f.code,
            "message": f.message,
            "path": f.span.path,
            "line": f.span.line,
            "column": f.span.column,
            "end_line": f.span.end_line or f.span.line,
            "end_column": f.span.end_column or f.span.column,
            "example": None if f.example is None else {k: _plain(v) for k, v in f.example},
            "related": [{"path": s.path, "line": s.line, "column": s.column} for s in f.related],
        }
        for f in findings
    ]
    return json.dumps({"schema": SCHEMA, "findings": listed}, indent=2, ensure_ascii=False) + "\n"


def _plain(value: Any) -> Any:
    # JSON has no exact decimal: whole numbers stay numbers, others are exact strings as in bills.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else decimal_text(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, t.Instant):
        return str(value)
    return value


def to_github(findings: Iterable[Finding]) -> str:
    """Findings as GitHub Actions workflow commands, one `::error` annotation each."""
    lines = []
    for f in findings:
        message = f.message
        if f.example is not None:
            message += f"\nexample: {inline(f.example)}"
        message += "".join(f"\nsee: {span}" for span in f.related)
        props = [f"file={_gh_property(f.span.path)}", f"line={f.span.line}", f"col={f.span.column}"]
        if f.span.end_line == f.span.line and f.span.end_column > f.span.column:
            props += [f"endLine={f.span.end_line}", f"endColumn={f.span.end_column}"]
        props.append(f"title={_gh_property(f.code)}")
        lines.append(f"::error {','.join(props)}::{_gh_data(message)}\n")
    return "".join(lines)


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


# Searching for a usage -------------------------------------------------------


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()  # an optional field left out of the usage


@attrs.frozen
class _Found:
    """The outcome of a search: a usage (item and its checked values), or None; and whether the search was complete."""

    item: UsageItem | None
    values: Mapping[str, Any] | None
    exhaustive: bool


class _Search:
    """Concrete usages of one kind, tried against conditions and the kind's guards."""

    def __init__(self, program: Program, kind: KindSpec):
        self.program = program
        self.kind = kind
        self.types = {f.name: f.type for f in kind.fields}
        self.derived = {d.name: d for d in kind.derived}
        self.model_field = kind.model_field
        self.region_field = kind.region_field
        # A dated guard (`offer M from D`, `refuse … until D`) refuses on some days only; this
        # search does not range over days, so it cannot say such a guard refuses a usage.
        self.guards = tuple(g for g in program.guards.get(kind.name, ()) if not g.dated)
        self.guard_conditions = list(self._guard_conditions())
        self.complete = True  # the current search's candidates cover every case
        self._guards_of: dict[Any, tuple[Guard, ...]] = {}  # per model: the guards that can refuse its usage
        self._base: tuple[dict[str, set[str]], bool] | None = None
        self._models: dict[tuple[frozenset[str], frozenset[str]], list[Any]] = {}
        self._base_candidates: dict[str, tuple[list[Any], bool]] = {}

    def guards_for(self, point: Mapping[str, Any]) -> tuple[Guard, ...]:
        """The guards that can refuse a usage of the point's model: a guard whose condition
        names other models only (`model in …`, `provider = …` among its conjuncts) never does."""
        model = point.get(self.model_field) if self.model_field else None
        found = self._guards_of.get(model)
        if found is None:
            found = self._guards_of[model] = tuple(g for g in self.guards if self._may_refuse(g, model))
        return found

    def _may_refuse(self, guard: Guard, model: Any) -> bool:
        if guard.condition is None or type(model) is not str or model not in self.program.models:
            return True
        provider = self.program.provider_of(model)
        for cond in conjuncts([guard.condition]):
            for field, value in ((self.model_field, model), ("provider", provider)):
                if isinstance(cond, m.Equals) and cond.field == field and not cond.negated:
                    named = cast(m.Texted, cond.value).text
                    if self.program.aliases.get(named, named) != value:
                        return False
                elif isinstance(cond, m.Member) and cond.field == field and not cond.negated:
                    if value not in {self.program.aliases.get(v, v) for v in cond.values}:
                        return False
        return True

    def _guard_conditions(self) -> Iterable[m.Condition]:
        """The conditions of the guards on this kind, as written: only their constants are wanted."""
        for rule_file in self.program.files:
            for statement in rule_file.statements:
                if isinstance(statement, m.Offer) and self.model_field and self.region_field:
                    yield m.Member(self.model_field, statement.models)
                    yield m.Member(self.region_field, statement.regions)
                elif isinstance(statement, (m.Refuse, m.Require)) and (not statement.kinds or self.kind.name in statement.kinds):
                    if isinstance(statement, m.Refuse):
                        yield statement.when
                    else:
                        yield statement.condition
                        if statement.when is not None:
                            yield statement.when

    def find(self, conditions: Sequence[m.Condition], guarded: bool = True) -> _Found:
        """A usage meeting every condition (and, when guarded, refused by no guard)."""
        if self._base is None:  # the guards' constants, harvested once
            base: dict[str, set[str]] = defaultdict(set)
            self._base = (base, all([self._harvest(cond, base) for cond in self.guard_conditions]))
        own: dict[str, set[str]] = defaultdict(set)
        self.complete = self._base[1]
        for cond in conditions:
            self.complete &= self._harvest(cond, own)
        mentioned: dict[str, set[str]] = defaultdict(set, self._base[0])
        for name, named in own.items():
            mentioned[name] = mentioned[name] | named  # a new set: the base's are shared
        names = [f.name for f in self.kind.fields] + [d for d in self.derived if d in mentioned]
        candidates = {}
        for name in names:
            if name in own or (name == self.model_field and "provider" in own):
                candidates[name] = self._candidates(name, mentioned)
                continue
            cached = self._base_candidates.get(name)  # what only the guards name: the same every search
            if cached is None:
                was, self.complete = self.complete, True
                cached = self._base_candidates[name] = (self._candidates(name, mentioned), self.complete)
                self.complete &= was
            candidates[name] = list(cached[0])
            self.complete &= cached[1]
        exhaustive = self.complete
        predicates = [compile_condition(c, self.types) for c in conditions]
        for cond, predicate in zip(conditions, predicates, strict=True):
            fields = {self.model_field if n == "provider" else n for n in fields_of(cond)}
            if len(fields) == 1 and (only := fields.pop()) is not None and only in candidates:
                kept = self._kept(cond)
                if kept is not None:  # `field = word`, `field in words`: no need to evaluate each
                    candidates[only] = [v for v in candidates[only] if type(v) is str and v in kept]
                else:
                    candidates[only] = [v for v in candidates[only] if predicate(self._point({only: v}))]
        if any(not values for values in candidates.values()):
            return _Found(None, None, exhaustive)
        if guarded and self._refused_whole(candidates):
            return _Found(None, None, exhaustive)
        size = 1
        for choices in candidates.values():
            size *= len(choices)
        if size > _LIMIT:
            exhaustive = False
        tries = 0
        combos = itertools.islice(itertools.product(*candidates.values()), _LIMIT)
        for combo in combos:
            point = self._point(dict(zip(names, combo, strict=True)))
            if not all(p(point) for p in predicates):
                continue
            if guarded and any(g.refuses(point) for g in self.guards_for(point)):
                continue
            tries += 1
            if tries > _REALISE:
                return _Found(None, None, False)
            for item, values in self._realise(point, mentioned):
                if all(p(values) for p in predicates) and not (
                    guarded and any(g.refuses(values) for g in self.guards_for(values))
                ):
                    return _Found(item, values, True)
            exhaustive = False  # an abstract witness no concrete usage realised: say nothing definite
        return _Found(None, None, exhaustive)

    def models_of(self, conditions: Sequence[m.Condition]) -> frozenset[str] | None:
        """The models conditions allow, from their plain `model =`, `model in`, `provider =` and
        `provider in` conjuncts; None when they name none. Two rules whose sets do not meet
        never price the same usage: no need to search for one."""
        allowed: set[str] | None = None
        for cond in conjuncts(conditions):
            if not isinstance(cond, (m.Equals, m.Member)):
                continue
            kept: set[str] | None = None
            if cond.field == "provider":
                names = self._kept_texts(cond)
                if names is not None:
                    kept = {model for model, info in self.program.models.items() if info.provider in names}
            elif cond.field == self.model_field:
                kept = self._kept(cond)
            if kept is not None:
                allowed = kept if allowed is None else allowed & kept
        return None if allowed is None else frozenset(allowed)

    @staticmethod
    def _kept_texts(cond: m.Condition) -> set[str] | None:
        if isinstance(cond, m.Equals) and not cond.negated and isinstance(cond.value, m.Word):
            return {cond.value.text}
        if isinstance(cond, m.Member) and not cond.negated:
            return set(cond.values)
        return None

    def _refused_whole(self, candidates: Mapping[str, list[Any]]) -> bool:
        """Whether a guard refuses every candidate at once: its condition reads only fields
        with one candidate (`model`, `region` …) and holds for them (an offer elsewhere)."""
        fixed = {name: values[0] for name, values in candidates.items() if len(values) == 1 and values[0] is not ABSENT}
        point = self._point(fixed)
        for guard in self.guards_for(point):
            if guard.condition is None:
                continue
            read = {self.model_field if name == "provider" else name for name in fields_of(guard.condition)}
            if read <= fixed.keys() and guard.refuses(point):
                return True
        return False

    def _kept(self, cond: m.Condition) -> set[str] | None:
        """The text values a plain `model = a` / `region in a, b` condition keeps (models by canonical name)."""
        if isinstance(cond, m.Equals) and not cond.negated and isinstance(cond.value, m.Word) and cond.field != "provider":
            named: tuple[str, ...] = (cond.value.text,)
        elif isinstance(cond, m.Member) and not cond.negated and cond.field != "provider":
            named = tuple(cond.values)
        else:
            return None
        if cond.field == self.model_field:
            return {self.program.aliases.get(v, v) for v in named}
        if isinstance(self.types.get(cond.field), (t.RegionType, t.EnumType)):
            return set(named)
        return None

    def _point(self, assigned: Mapping[str, Any]) -> dict[str, Any]:
        point = {k: v for k, v in assigned.items() if v is not ABSENT}
        model = point.get(self.model_field) if self.model_field else None
        if model in self.program.models:
            point["provider"] = self.program.provider_of(cast(str, model))
        return point

    def _harvest(self, cond: m.Condition, mentioned: dict[str, set[str]]) -> bool:
        """Note the constants a condition names per field; False when it compares expressions."""
        if isinstance(cond, (m.AllOf, m.AnyOf)):
            return all([self._harvest(p, mentioned) for p in cond.parts])
        if isinstance(cond, m.Not):
            return self._harvest(cond.part, mentioned)
        if isinstance(cond, m.Compare):
            for field_side, number_side in ((cond.left, cond.right), (cond.right, cond.left)):
                if isinstance(field_side, m.FieldRef) and isinstance(number_side, m.DateValue):
                    mentioned[field_side.name].add(number_side.text)  # a date field against a date
                    return True
                if isinstance(field_side, m.FieldRef) and isinstance(number_side, m.Number):
                    mentioned[field_side.name].add(str(number_side.value))
                    return True
            numbers = _numbers(cond.left) + _numbers(cond.right)
            for name in fields_of(cond):
                mentioned[name].update(numbers)
            return False
        if isinstance(cond, m.Member):
            mentioned[cond.field].update(cond.values)
            return True
        value = cond.value
        if isinstance(value, m.Word):
            mentioned[cond.field].add(value.text)
        elif isinstance(value, m.Number):
            mentioned[cond.field].add(str(value.value))
        return True

    def _candidates(self, name: str, mentioned: Mapping[str, set[str]]) -> list[Any]:
        if name in self.derived:
            return _numeric(mentioned[name], integral=True)
        spec = self.kind.field_map[name]
        named = name in mentioned or (name == self.model_field and "provider" in mentioned)
        if not named:
            if spec.has_default:
                return [spec.default]
            if spec.optional:
                return [ABSENT]
            return [self._representative(spec.type)]
        values = self._values(spec.type, mentioned.get(name, set()), mentioned.get("provider", set()))
        if values is None:
            self.complete = False
            values = [spec.default if spec.has_default else self._representative(spec.type)]
        return [*values, ABSENT] if spec.optional else values

    def _values(self, field_type: t.FieldType, named: set[str], providers: set[str]) -> list[Any] | None:
        if isinstance(field_type, t.ModelType):
            key = (frozenset(named), frozenset(providers))
            found = self._models.get(key)
            if found is None:
                found = self._models[key] = self._model_values(named, providers)
            return list(found)
        return self._other_values(field_type, named)

    def _model_values(self, named: set[str], providers: set[str]) -> list[Any]:
        models = self.program.models
        canonical = {self.program.aliases.get(x, x) for x in named}
        chosen = [n for n in models if n in canonical]
        chosen += [next(n for n, info in models.items() if info.provider == p) for p in sorted(providers)
                   if any(info.provider == p for info in models.values())]
        chosen += [n for n in models if n not in chosen][:1]
        return list(dict.fromkeys(chosen))

    def _other_values(self, field_type: t.FieldType, named: set[str]) -> list[Any] | None:
        if isinstance(field_type, t.RegionType):
            regions = [r for r in self.program.regions if r in named]
            return regions + [r for r in self.program.regions if r not in named][:1]
        if isinstance(field_type, t.EnumType):
            return list(field_type.values)
        if isinstance(field_type, t.FlagType):
            return [False, True]
        if isinstance(field_type, t.CountType):
            return _numeric(named, integral=True)
        if isinstance(field_type, t.DecimalType):
            return _numeric(named, integral=False)
        if isinstance(field_type, t.DateType):
            return _days(named)
        if isinstance(field_type, t.ListOf) and isinstance(field_type.item, t.EnumType):
            values = [v for v in field_type.item.values if v in named]
            others = [v for v in field_type.item.values if v not in named][:1]
            return [(), *((v,) for v in values + others), tuple(values)]
        return None  # a list of records: no candidates to try

    def _representative(self, field_type: t.FieldType) -> Any:
        """A value for a field no condition names: any value does."""
        if isinstance(field_type, t.ModelType):
            return next(iter(self.program.models), "")
        if isinstance(field_type, t.RegionType):
            return next(iter(self.program.regions), "")
        if isinstance(field_type, t.EnumType):
            return field_type.values[0]
        if isinstance(field_type, t.FlagType):
            return False
        if isinstance(field_type, t.CountType):
            return 1
        if isinstance(field_type, t.DecimalType):
            return Decimal(1)
        if isinstance(field_type, t.DateType):
            return _days(set())[0]
        return ()

    def _realise(self, point: Mapping[str, Any], mentioned: Mapping[str, set[str]]) -> Iterable[tuple[UsageItem, Mapping[str, Any]]]:
        """Concrete usages for an abstract point: inputs chosen so each derived quantity takes its value there."""
        raw: dict[str, Any] = {}
        for spec in self.kind.fields:
            if spec.name in point and not (spec.has_default and point[spec.name] == spec.default):
                raw[spec.name] = point[spec.name]
        targets = {name: point[name] for name in self.derived if name in point}
        free = sorted({f for name in targets for f in self._inputs(name)} - set(mentioned))
        for assignment in self._assignments(free, targets):
            attempt = {**raw, **assignment}
            items, problems = check_items(self.program, [{"kind": self.kind.name, **_raw(attempt)}])
            if problems or not items:
                continue
            values = items[0].values
            if all(values.get(name) == target for name, target in targets.items()):
                ordered = [(f.name, attempt[f.name]) for f in self.kind.fields if f.name in attempt]
                yield (("kind", self.kind.name), *ordered), values

    def _inputs(self, name: str) -> set[str]:
        """The fields a derived quantity is computed from, through other derived quantities."""
        found: set[str] = set()
        for field in expr_fields(self.derived[name].expr):
            found |= self._inputs(field) if field in self.derived else {field}
        return found

    def _assignments(self, free: Sequence[str], targets: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
        if not targets:
            yield {}
            return
        # Inputs of max/min take the value itself; of products and sums, the value and 1s or 0s.
        for value in dict.fromkeys(targets.values()):
            if not isinstance(value, int):
                continue
            yield {f: value for f in free}
            for rest in (1, 0):
                for chosen in free:
                    yield {f: value if f == chosen else rest for f in free}


def _numbers(expr: m.Expr) -> list[str]:
    if isinstance(expr, m.Number):
        return [str(expr.value)]
    if isinstance(expr, m.Binary):
        return _numbers(expr.left) + _numbers(expr.right)
    if isinstance(expr, m.Call):
        return [n for a in expr.args for n in _numbers(a)]
    if isinstance(expr, m.SumEach):
        return _numbers(expr.body)
    return []


def _numeric(named: Iterable[str], integral: bool) -> list[Any]:
    """The named constants first (examples read best with them), then their neighbours and 0."""
    constants = sorted({Decimal(n) for n in named if _is_number(n)})
    first: list[Decimal] = [c for c in constants if not integral or c == c.to_integral_value()]
    around: set[Decimal] = {Decimal(0)}
    for c in constants:
        around |= {c.to_integral_value() - 1, c.to_integral_value() + 1, c.to_integral_value()}
    if not integral:
        around |= {(a + b) / 2 for a, b in itertools.pairwise(constants)}
    values = [*first, *sorted(around - set(first))]
    return [_number(v) for v in values if v >= 0]


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"\d+(\.\d+)?", text))


def _number(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value


def _raw(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else str(v) if isinstance(v, t.Instant) else v for k, v in values.items()}


def _days(named: Iterable[str]) -> list[t.Instant]:
    """A date field's candidates: each date a condition names, the day before and the day after
    (conditions compare by UTC day); a day of 2000 when none is named."""
    days: set[datetime.date] = set()
    for text in named:
        instant = t.read_instant(text)
        if isinstance(instant, t.Instant):
            days.update(instant.day + datetime.timedelta(days=n) for n in (-1, 0, 1))
    return [t.Instant(day, day.isoformat()) for day in sorted(days or {datetime.date(2000, 1, 1)})]


# Overlaps -------------------------------------------------------------------------


def _overlaps(program: Program) -> list[Finding]:
    """Two rules charging the same quantity that one usage can match: it would be priced twice."""
    groups: dict[tuple, list[PriceRule]] = defaultdict(list)
    for rule in program.rules:
        groups[(rule.kind, rule.quantity, rule.each)].append(rule)
    searches = {name: _Search(program, kind) for name, kind in program.kinds.items()}
    # One finding per pair of rows, naming every quantity they both price.
    pairs: dict[tuple, tuple[PriceRule, PriceRule, list[str], _Found]] = {}
    dead: dict[tuple[str, str], tuple[PriceRule, PriceRule, _Found]] = {}
    for (kind, quantity, _), rules in groups.items():
        for first, second in _candidate_pairs(rules, program.kinds[kind], program.aliases):
            rows = (_row(first), _row(second))
            if rows in pairs:
                if quantity not in pairs[rows][2]:
                    pairs[rows][2].append(quantity)
                continue
            if not _windows_meet(first.window, second.window):
                continue  # never on one day
            relative_fields = {rel.field for rel in program.relatives.get(kind, ()) if rel.field is not None}
            if any(_mentions(first, f) != _mentions(second, f) for f in relative_fields):
                continue  # where a relative rule on the field applies, the table naming it wins (BR310 says where)
            if first.start != second.start:  # versions: the later `from` replaces on its days
                earlier, later = sorted((first, second), key=lambda r: r.start)
                if earlier.window is not None and earlier.window.end is not None and (earlier.id, later.id) not in dead:
                    found = searches[kind].find([*first.conditions, *second.conditions])
                    values = cast(Mapping[str, Any], found.values)  # found with an item: its values too
                    if found.item is not None and first.matches(values) and second.matches(values):
                        dead[earlier.id, later.id] = (earlier, later, found)
                continue
            found = searches[kind].find([*first.conditions, *second.conditions])
            values = cast(Mapping[str, Any], found.values)
            if found.item is not None and first.matches(values) and second.matches(values):
                pairs[rows] = (first, second, [quantity], found)
    findings: list[Finding] = []
    for earlier, later, found in dead.values():
        assert earlier.window is not None and later.window is not None and later.window.start is not None
        assert found.item is not None
        example = (*found.item, ("at", later.window.start.isoformat()))
        findings.append(Finding(
            DEAD_UNTIL,
            f"this rule's window ({earlier.window}) runs past the start of the version at {later.where} "
            f"({later.window}), which replaces it from that day: the end is never reached; end it the day before",
            earlier.span, example=example, related=(later.span,),
        ))
    for first, second, quantities, found in pairs.values():
        what = " and ".join(f"`{q}`" for q in quantities)
        if first.id == second.id:
            message = f"this rule repeats the one at {first.where}: both price {what} of `{first.kind}` usage under the same conditions"
            if (first.rate, first.free, first.per) != (second.rate, second.free, second.per):
                message += f", at different prices ({_price_text(first)} there, {_price_text(second)} here)"
        else:
            message = f"this rule and the one at {first.where} both price {what} for the same `{first.kind}` usage"
        findings.append(Finding(OVERLAP, message, second.span, example=found.item, related=(first.span,)))
    return findings


def _apart(first: frozenset[str] | None, second: frozenset[str] | None) -> bool:
    """Whether two sets of models (None: any model) have none in common."""
    return first is not None and second is not None and not (first & second)


def _mentions(rule: PriceRule, field: str) -> bool:
    return any(field in fields_of(cond) for cond in rule.conditions)


def _shadowed_relatives(program: Program) -> list[Finding]:
    """BR310: a relative rule a table shadows, because the table prices the case itself
    (its conditions name the field) for some usage the relative rule matches."""
    findings = []
    for kind, relatives in program.relatives.items():
        search = _Search(program, program.kinds[kind])
        for rel in relatives:
            if rel.field is None:
                continue
            cases = m.Member(rel.field, tuple(sorted(map(str, rel.cases))), False, rel.span)
            for rule in program.rules:
                if rule.kind != kind or rule.refusal is not None or not any(rel.field in fields_of(c) for c in rule.conditions):
                    continue
                if not _windows_meet(rel.window, rule.window):
                    continue
                if _apart(search.models_of(rel.conditions), search.models_of(rule.conditions)):
                    continue  # no model both apply to
                found = search.find([*rel.conditions, *rule.conditions, cases])
                values = found.values
                if found.item is None or values is None or values.get(rel.field) not in rel.cases:
                    continue
                if rel.matches(values) and rule.matches(values):
                    findings.append(Finding(
                        SHADOWED,
                        f"the table at {rule.where} prices {rule.quantity} of this case itself, so this relative rule "
                        f"({rel.text}) does not apply there; narrow its `when`, or delete the copied table",
                        rel.span, example=found.item, related=(rule.span,),
                    ))
                    break
    return findings


def _mid_month(program: Program) -> list[Finding]:
    """BR316: a monthly table whose window starts or ends within a month. Each version's tier
    set is its own, so a mid-month change restarts the month's tiers on that day."""
    findings = []
    seen: set[m.Span] = set()
    for rule in program.rules:
        window = rule.window
        if rule.tiers is None or window is None or rule.span in seen:
            continue
        cut = [
            day.isoformat() for day, first in ((window.start, True), (window.end, False))
            if day is not None and (day.day != 1 if first else (day + datetime.timedelta(days=1)).day != 1)
        ]
        if cut:
            seen.add(rule.span)
            findings.append(Finding(
                MID_MONTH,
                f"this monthly table's window ({window}) cuts a month at {', '.join(cut)}: the month's tiers restart "
                "with each version; start versions of a monthly table on a 1st (and end them on a month's last day)",
                rule.span,
            ))
    return findings


def _split_tier_sets(program: Program) -> list[Finding]:
    """BR314: a monthly minimum whose scope holds some usage a tier set prices and not other
    usage of the same tier set: a month with both is refused (BU207), as the rules do not say
    how to split a tier charge between the minimum and the rest."""
    findings = []
    for minimum in program.minimums:
        if not minimum.conditions:
            continue  # the whole kind: every tier set of it is in scope
        search = _Search(program, program.kinds[minimum.kind])
        outside = m.Not(m.AllOf(minimum.conditions, minimum.span), minimum.span)
        for rule in program.rules:
            if rule.kind != minimum.kind or rule.tiers is None or not _windows_meet(rule.window, minimum.window):
                continue
            inside = search.find([*rule.conditions, *minimum.conditions])
            if inside.item is None or inside.values is None or not (rule.matches(inside.values) and minimum.matches(inside.values)):
                continue
            out = search.find([*rule.conditions, outside])
            if out.item is None or out.values is None or not rule.matches(out.values) or minimum.matches(out.values):
                continue
            findings.append(Finding(
                SPLIT_TIERS,
                f"this minimum's scope holds some usage of the tier set at {rule.where} ({rule.tiers.label}) and not the "
                f"rest (such as {inline(out.item)}): a month with both is refused; scope the minimum by the fields "
                "that choose the tier set",
                minimum.span, example=inside.item, related=(rule.span,),
            ))
            break
    return findings


def _time_gaps(program: Program) -> list[Finding]:
    """BR317: a day no rule prices between two days some rule prices, for one usage: a rule
    `until` a day and the next version `from` a later day than the one after it."""
    findings = []
    for kind_name, kind in program.kinds.items():
        rules = [r for r in program.rules if r.kind == kind_name]
        ending = [r for r in rules if r.window is not None and r.window.end is not None and r.refusal is None]
        if not ending:
            continue
        search = _Search(program, kind)
        reported: set[str] = set()
        for first in ending:
            assert first.window is not None and first.window.end is not None
            day = first.window.end + datetime.timedelta(days=1)
            for later in rules:
                start = later.window.start if later.window is not None else None
                if (later.quantity, later.each) != (first.quantity, first.each) or start is None or start <= day:
                    continue
                if first.id in reported:
                    break
                found = search.find([*first.conditions, *later.conditions])
                if found.item is None or found.values is None or not (first.matches(found.values) and later.matches(found.values)):
                    continue
                raw = dict(found.item)
                if first.quantity in search.types:
                    raw[first.quantity] = 1
                if _charged(program, raw, first.window.end, first.quantity) and _charged(program, raw, start, first.quantity):
                    refusal = _charged(program, raw, day, first.quantity, refusal=True)
                    if refusal == "BU202":  # refused because no rule prices it, not by a guard
                        reported.add(first.id)
                        findings.append(Finding(
                            TIME_GAP,
                            f"no rule prices {first.quantity} of this usage from {day.isoformat()} until "
                            f"{(start - datetime.timedelta(days=1)).isoformat()}: this rule ends {first.window.end.isoformat()} "
                            f"and the next version ({later.where}) starts {start.isoformat()}; close the gap, or refuse those days "
                            "with a dated `refuse`",
                            first.span, example=(*((k, v) for k, v in raw.items() if k != "at"), ("at", day.isoformat())),
                            related=(later.span,),
                        ))
                        break
    return findings


def _charged(program: Program, raw: Mapping[str, Any], day: Any, quantity: str, refusal: bool = False) -> Any:
    """Whether a usage dated `day` gets a line for `quantity`; with `refusal`, the code that refuses it (None if priced)."""
    items, problems = check_items(program, [{**raw, "at": day.isoformat()}])
    if problems:
        return problems[0].code if refusal else False
    try:
        bill = evaluate_items(program, items)
    except UsageError as error:
        return error.problems[0].code if refusal else False
    if refusal:
        return None
    return any(charge.rule_id.startswith(f"{raw['kind']}/{quantity}") for item in bill.items for charge in item.charges)


def _baseless_relatives(program: Program) -> list[Finding]:
    """BR318: a relative rule that prices nothing: for no usage it applies to is its base usage
    priced by a rule, or the base is priced by a monthly table (a factor needs a per-unit rate)."""
    findings = []
    for kind_name, relatives in program.relatives.items():
        search = _Search(program, program.kinds[kind_name])
        for rel in relatives:
            own = list(rel.conditions)
            if rel.field is not None:
                own.append(m.Member(rel.field, tuple(sorted(map(str, rel.cases))), False, rel.span))
            case = None if rel.field is not None else next(iter(rel.cases))
            rel_models = search.models_of(own)
            applies = search.find(own)
            if applies.item is None:
                continue  # the rule applies to no usage at all: another finding's business
            priced, monthly, exhaustive = False, None, applies.exhaustive
            for rule in program.rules:
                if rule.kind != kind_name or rule.refusal is not None:
                    continue
                if rel.field is None and rule.quantity == case:
                    priced = True  # a table prices the quantity itself: the rule is shadowed, not baseless
                    break
                if (rel.field is None and rule.quantity != rel.base) or (rel.quantities and rule.quantity not in rel.quantities):
                    continue
                # The base usage is this usage with the field set to the base value: drop the
                # rule's conditions on the field, then test the rule on the base usage.
                kept = [c for c in rule.conditions if rel.field is None or rel.field not in fields_of(c)]
                if _apart(rel_models, search.models_of(kept)):
                    continue  # no model both apply to: no usage to find
                found = search.find([*own, *kept])
                exhaustive &= found.exhaustive
                if found.item is None or found.values is None or not rel.matches(found.values):
                    continue
                base_values = {**found.values, rel.field: rel.base} if rel.field is not None else found.values
                if rule.matches(base_values):
                    if rule.tiers is not None:
                        monthly = monthly or rule
                        continue
                    priced = True
                    break
            if priced or (monthly is None and not exhaustive):
                continue
            what = f"{rel.field} = {rel.base}" if rel.field is not None else rel.base
            message = (
                f"the base of this relative rule ({what}) is priced in monthly tiers at {monthly.where}: "
                "a relative price needs a per-unit base rate"
                if monthly is not None else
                f"no rule prices the base of this relative rule ({what}) for any usage it applies to, so it prices nothing"
            )
            findings.append(Finding(
                BASELESS, message, rel.span, example=applies.item, related=(monthly.span,) if monthly is not None else (),
            ))
    return findings


def _rival_relatives(program: Program) -> list[Finding]:
    """BR319: two relative rules that price the same case of one field (or the same quantity)
    for one usage, neither a later version of the other: `eval` refuses that charge as ambiguous."""
    findings = []
    for kind_name, relatives in program.relatives.items():
        search = _Search(program, program.kinds[kind_name])
        for index, second in enumerate(relatives):
            for first in relatives[:index]:
                cases = first.cases & second.cases
                if first.field != second.field or not cases or not _windows_meet(first.window, second.window):
                    continue
                if first.quantities and second.quantities and not first.quantities & second.quantities:
                    continue  # `charging` different quantities: each prices its own
                if relative_version(first) == relative_version(second) and first.start != second.start:
                    continue  # versions: the later `from` replaces the other on its days (as eval reads them)
                own = [*first.conditions, *second.conditions]
                if first.field is not None:
                    own.append(m.Member(first.field, tuple(sorted(map(str, cases))), False, second.span))
                found = search.find(own)
                if found.item is None or found.values is None or not (first.matches(found.values) and second.matches(found.values)):
                    continue
                what = f"{first.field} = {found.values.get(first.field)}" if first.field is not None else next(iter(cases))
                findings.append(Finding(
                    RIVALS,
                    f"this relative rule and the one at {first.where} both price {what} for the same `{kind_name}` usage; "
                    "neither is chosen by its place in the file: eval refuses that charge as ambiguous",
                    second.span, example=found.item, related=(first.span,),
                ))
    return findings


def _unmatched_overlays(program: Program) -> list[Finding]:
    """BR315: an overlay rule that matches nothing the list prices (on its kinds, in its window):
    a misspelt condition or a model the list does not price, which would never apply."""
    findings = []
    for layer in program.layers:
        for rule in layer.rules:
            search = _Search(program, program.kinds[rule.kind])
            extra: list[m.Condition] = []
            relative = rule.relative
            if relative is not None and relative.field is not None:
                extra.append(m.Member(relative.field, tuple(sorted(map(str, relative.cases))), False, rule.span))
            listed = [
                r for r in program.rules
                if r.kind == rule.kind and r.rate is not None and _windows_meet(rule.window, r.window)
                and (rule.quantity is None or r.quantity == rule.quantity)
            ]
            models = search.models_of(rule.conditions)
            if any(_meets(search, rule, r, extra) for r in listed if not _apart(models, search.models_of(r.conditions))):
                continue
            if not search.complete:
                continue  # not proven: check stays silent rather than guess
            # A usage the overlay rule selects, and the list rule that comes closest to pricing it.
            found = search.find([*rule.conditions, *extra], guarded=False)
            nearest = listed[0] if listed else None
            values = found.values
            if values is not None and listed:
                fields = program.kinds[rule.kind].fields
                nearest = min(listed, key=lambda r: len(failing_conditions(r.conditions, fields, values)))
            said = ""
            if nearest is not None and values is not None:
                failing = failing_conditions(nearest.conditions, program.kinds[rule.kind].fields, values)
                guards = program.refusing(rule.kind, values)
                if failing:
                    said = f"; the closest list rule, {nearest.where}, needs " + " and ".join(failing)
                elif guards:
                    said = f"; the list refuses such usage: {guards[0].reason} ({guards[0].span.where})"
            findings.append(Finding(
                OVERLAY_UNMATCHED,
                f"this overlay rule ({rule.text}) matches nothing the list prices for {rule.kind}{said}; "
                "check its conditions and window against the list",
                rule.span, example=found.item, related=() if nearest is None else (nearest.span,),
            ))
    return findings


def _meets(search: Any, rule: Any, listed: PriceRule, extra: list[m.Condition]) -> bool:
    found = search.find([*rule.conditions, *listed.conditions, *extra])
    values = found.values
    if found.item is None or values is None or not rule.matches(values) or not listed.matches(values):
        return False
    relative = rule.relative
    return relative is None or relative.field is None or values.get(relative.field) in relative.cases


def _windows_meet(first: m.Window | None, second: m.Window | None) -> bool:
    """Whether two windows (None: every day) share a day."""
    if first is None or second is None:
        return True
    starts = [d for d in (first.start, second.start) if d is not None]
    ends = [d for d in (first.end, second.end) if d is not None]
    return not starts or not ends or max(starts) <= min(ends)


def _candidate_pairs(rules: Sequence[PriceRule], kind: KindSpec, aliases: Mapping[str, str]) -> Iterable[tuple[PriceRule, PriceRule]]:
    """The pairs of rules that might match one usage, in file order, without trying all n² pairs.

    Rules are bucketed by the values their conditions allow for the model (then the
    region) field: two rules that allow no common model can never match one usage. In a
    bucket, rules whose conditions bound one number (`x <= 512`, `x > 512`) are sorted
    by the lower bound and swept, pairing only intervals that intersect. A table of n
    rows for n models is then n buckets of one rule, not n² searches.
    """
    order = {id(rule): i for i, rule in enumerate(rules)}
    pairs: set[tuple[int, int]] = set()
    for bucket in _buckets(rules, [f for f in (kind.model_field, kind.region_field) if f is not None], aliases):
        for first, second in _swept(bucket):
            a, b = sorted((order[id(first)], order[id(second)]))
            pairs.add((a, b))
    for a, b in sorted(pairs):
        yield rules[a], rules[b]


def _allowed(rule: PriceRule, field: str, aliases: Mapping[str, str]) -> frozenset[str] | None:
    """The values a rule's top-level conditions allow for `field`; None when they do not restrict it."""
    allowed: frozenset[str] | None = None
    for cond in conjuncts(rule.conditions):
        if isinstance(cond, m.Equals) and cond.field == field and not cond.negated and isinstance(cond.value, m.Word):
            values = frozenset({cond.value.text})
        elif isinstance(cond, m.Member) and cond.field == field and not cond.negated:
            values = frozenset(cond.values)
        else:
            continue
        values = frozenset(aliases.get(v, v) for v in values)  # a model by any of its names
        allowed = values if allowed is None else allowed & values
    return allowed


def _buckets(rules: Sequence[PriceRule], fields: Sequence[str], aliases: Mapping[str, str]) -> list[list[PriceRule]]:
    """Groups of rules such that two rules that can match one usage share a group."""
    if not fields or len(rules) < 2:
        return [list(rules)]
    field, rest = fields[0], fields[1:]
    by_value: dict[str, list[PriceRule]] = defaultdict(list)
    anywhere = []
    for rule in rules:
        allowed = _allowed(rule, field, aliases)
        if allowed is None:
            anywhere.append(rule)
        else:
            for value in allowed:
                by_value[value].append(rule)
    if not by_value:
        return _buckets(rules, rest, aliases)
    buckets = []
    for bucket in by_value.values():
        buckets.extend(_buckets([*bucket, *anywhere], rest, aliases))
    if len(anywhere) > 1:
        buckets.extend(_buckets(anywhere, rest, aliases))
    return buckets


def _swept(rules: Sequence[PriceRule]) -> Iterable[tuple[PriceRule, PriceRule]]:
    """Pairs of rules whose bounds on one number may intersect (all pairs when they do not all bound one)."""
    intervals = [_interval(rule) for rule in rules]
    fields = {iv[0] for iv in intervals if iv is not None}
    if len(rules) < 3 or None in intervals or len(fields) != 1:
        yield from itertools.combinations(rules, 2)
        return
    # Sort by lower bound; a rule pairs with the later ones that start before it ends.
    ordered = sorted(zip(intervals, rules, strict=True), key=lambda x: _low_key(x[0][1]))  # type: ignore[index]
    for i, ((_, tier), rule) in enumerate(ordered):  # type: ignore[misc]
        for (_, other), later in ordered[i + 1:]:  # type: ignore[misc]
            if not _may_meet(tier, other):
                break
            yield rule, later


def _interval(rule: PriceRule) -> tuple[str, _Tier] | None:
    """The range one numeric field takes under a rule's top-level comparisons, if it has exactly one such field."""
    found: dict[str, _Tier] = {}
    for cond in conjuncts(rule.conditions):
        simple = _simple_compare(cond)
        if simple is None:
            continue
        field, op, value = simple
        tier = _Tier.of(op, value, rule.span)
        found[field] = _meet(found[field], tier) if field in found else tier
    if len(found) != 1:
        return None
    return next(iter(found.items()))


def _meet(a: _Tier, b: _Tier) -> _Tier:
    lo, lo_closed = max((a.lo, a.lo_closed), (b.lo, b.lo_closed), key=lambda x: _low_key(_Tier(x[0], x[1], None, False, "", a.span)))
    hi, hi_closed = min((a.hi, a.hi_closed), (b.hi, b.hi_closed), key=lambda x: _high_key(x[0], x[1]))
    return _Tier(lo, lo_closed, hi, hi_closed, a.text, a.span)


def _low_key(tier: _Tier) -> tuple[int, Decimal, int]:
    # Unbounded first; at one value, a closed bound (`>= 5`) starts before an open one (`> 5`).
    return (0, Decimal(0), 0) if tier.lo is None else (1, tier.lo, 0 if tier.lo_closed else 1)


def _high_key(hi: Decimal | None, closed: bool) -> tuple[int, Decimal, int]:
    return (1, Decimal(0), 0) if hi is None else (0, hi, 1 if closed else 0)


def _may_meet(earlier: _Tier, later: _Tier) -> bool:
    """Whether `later` (which starts no lower) starts before `earlier` ends."""
    if earlier.hi is None or later.lo is None:
        return True
    if later.lo != earlier.hi:
        return later.lo < earlier.hi
    return later.lo_closed and earlier.hi_closed


def _price_text(rule: PriceRule) -> str:
    if rule.rate is None:
        return "free"
    return f"{rule.rate} per {rule.per}"


def _row(rule: PriceRule) -> tuple[str, int]:
    return (rule.span.path, rule.span.line)


# Gaps -----------------------------------------------------------------------------


@attrs.frozen
class _Tier:
    """A range of values a row or column prices: `lo < x <= hi` and the like; None is unbounded."""

    lo: Decimal | None
    lo_closed: bool
    hi: Decimal | None
    hi_closed: bool
    text: str
    span: m.Span

    @classmethod
    def of(cls, op: str, value: Decimal, span: m.Span) -> _Tier:
        return {
            "<": cls(None, False, value, False, f"< {value}", span),
            "<=": cls(None, False, value, True, f"<= {value}", span),
            ">": cls(value, False, None, False, f"> {value}", span),
            ">=": cls(value, True, None, False, f">= {value}", span),
            "=": cls(value, True, value, True, str(value), span),
        }[op]

    def holds(self, v: Decimal) -> bool:
        above_lo = self.lo is None or v > self.lo or (self.lo_closed and v == self.lo)
        below_hi = self.hi is None or v < self.hi or (self.hi_closed and v == self.hi)
        return above_lo and below_hi

    def starts_below(self, v: Decimal) -> bool:
        return self.lo is None or self.lo < v

    def ends_above(self, v: Decimal) -> bool:
        return self.hi is None or self.hi > v


def _hole(tiers: Sequence[_Tier], integral: bool) -> tuple[Decimal, _Tier, _Tier] | None:
    """A value between two tiers that none holds, with the tiers just below and above it."""
    bounds = sorted({b for tier in tiers for b in (tier.lo, tier.hi) if b is not None})
    points = {p for b in bounds for p in (b - 1, b, b + 1)}
    if not integral:
        points |= {(a + b) / 2 for a, b in itertools.pairwise(bounds)}
    for v in sorted(p for p in points if p >= 0):
        if any(tier.holds(v) for tier in tiers):
            continue
        below = [tier for tier in tiers if tier.starts_below(v)]
        above = [tier for tier in tiers if tier.ends_above(v)]
        if below and above:
            # A tier below v that does not hold v ends below it, so its `hi` is finite; likewise `lo` above.
            return v, max(below, key=lambda x: cast(Decimal, x.hi)), min(above, key=lambda x: cast(Decimal, x.lo))
    return None


def _gaps(program: Program) -> list[Finding]:
    """Tiers of one field in a table with a hole between them: usages there are priced by no row."""
    by_cell = {(r.span.path, r.span.line, r.span.column): r for r in program.rules}
    findings: list[Finding] = []
    for rule_file in program.files:
        for table in rule_file.statements:
            if not isinstance(table, m.PriceTable) or table.kind not in program.kinds:
                continue
            search = _Search(program, program.kinds[table.kind])
            rows = [row for row in table.rows if len(row) == len(table.columns)]

            def rules_of(row: Sequence[m.Cell]) -> list[PriceRule]:
                return [r for c in row if (r := by_cell.get((c.span.path, c.span.line, c.span.column))) is not None]

            findings.extend(_key_gaps(table, rows, rules_of, search))
            findings.extend(_column_gaps(table, rows, rules_of, search))
    findings.extend(_when_gaps(program))
    return findings


def _when_gaps(program: Program) -> Iterable[Finding]:
    """Tables split by `when x < 10` / `when x > 10` (all else equal) that leave a hole, as condition columns can."""
    groups: dict[tuple, list[tuple[_Tier, m.PriceTable, m.Condition]]] = defaultdict(list)
    for rule_file in program.files:
        for table in rule_file.statements:
            if not isinstance(table, m.PriceTable) or table.when is None or table.kind not in program.kinds:
                continue
            parts = conjuncts([table.when])
            for i, part in enumerate(parts):
                simple = _simple_compare(part)
                if simple is None:
                    continue
                field, op, value = simple
                rest = tuple(sorted(describe(p) for j, p in enumerate(parts) if j != i))
                key = (table.kind, field, tuple(sorted(table.regions)), rest)
                groups[key].append((_Tier.of(op, value, part.span), table, part))
    for (kind, field, _, _), tiered in groups.items():
        if len(tiered) < 2:
            continue
        search = _Search(program, program.kinds[kind])
        hole = _hole([tier for tier, _, _ in tiered], _integral(search, field))
        if hole is None:
            continue
        value, below, above = hole
        table, part = next((table, part) for tier, table, part in tiered if tier is above)
        rows = {cell.span.line for row in table.rows for cell in row}
        rule = next((r for r in program.rules if r.span.path == table.span.path and r.span.line in rows), None)
        if rule is None:
            continue
        conditions = [c for c in conjuncts(rule.conditions) if c != part]
        finding = _gap_finding(search, conditions, field, value, below, above, " (the tables' `when`)")
        if finding is not None:
            yield finding


def _key_gaps(table, rows, rules_of, search: _Search) -> Iterable[Finding]:
    """Rows for the same key (say, one model) whose tiers in a key column leave a hole."""
    keys = [i for i, c in enumerate(table.columns) if isinstance(c, m.KeyColumn)]
    for j in keys:
        field = table.columns[j].field
        groups: dict[tuple, list[tuple[_Tier | None, Sequence[m.Cell]]]] = defaultdict(list)
        for row in rows:
            group = tuple(_cell_text(row[i]) for i in keys if i != j)
            groups[group].append((_cell_tier(row[j]), row))
        for group, tiered in groups.items():
            if not any(isinstance(row[j], m.CompareCell) for _, row in tiered) or any(tier is None for tier, _ in tiered):
                continue
            tiers = [tier for tier, _ in tiered if tier is not None]  # none is None: see above
            hole = _hole(tiers, _integral(search, field))
            if hole is None:
                continue
            value, below, above = hole
            row = next(row for tier, row in tiered if tier is above)
            rules = rules_of(row)
            if not rules:
                continue
            conditions = [c for c in rules[0].conditions if c.span != row[j].span]
            for_what = ", ".join(f"{table.columns[i].field} {text}" for i, text in zip((i for i in keys if i != j), group, strict=True))
            where = f" for {for_what}" if for_what else ""
            finding = _gap_finding(search, conditions, field, value, below, above, where)
            if finding is not None:
                yield finding


def _column_gaps(table, rows, rules_of, search: _Search) -> Iterable[Finding]:
    """Condition columns on one field (`steps <= 50`, `steps > 60`) that leave a hole."""
    by_field: dict[str, list[tuple[int, _Tier]]] = defaultdict(list)
    for i, column in enumerate(table.columns):
        if isinstance(column, m.ConditionColumn):
            simple = _simple_compare(column.condition)
            if simple is not None:
                field, op, value = simple
                by_field[field].append((i, _Tier.of(op, value, column.span)))
    for field, columns in by_field.items():
        if len(columns) < 2 or not rows:
            continue
        hole = _hole([tier for _, tier in columns], _integral(search, field))
        if hole is None:
            continue
        value, below, above = hole
        index = next(i for i, tier in columns if tier is above)
        rule = next((r for r in rules_of(rows[0]) if r.span == rows[0][index].span), None)
        if rule is None:
            continue
        finding = _gap_finding(search, list(rule.conditions[:-1]), field, value, below, above, "")
        if finding is not None:
            yield finding


def _gap_finding(search: _Search, conditions, field, value, below: _Tier, above: _Tier, where: str) -> Finding | None:
    pinned = [m.Compare(m.FieldRef(field), op, m.Number(value)) for op in ("<=", ">=")]
    found = search.find([*conditions, *pinned])
    if found.item is None and found.exhaustive:
        return None  # every usage there is refused first: the hole is closed by a guard
    message = (
        f"gap between tiers: no row prices {field} {decimal_text(value)}{where}; "
        f"the tiers are `{below.text}` ({below.span.where}) and `{above.text}`"
    )
    return Finding(GAP, message, above.span, example=found.item, related=(below.span,))


def _cell_tier(cell: m.Cell) -> _Tier | None:
    if isinstance(cell, m.CompareCell):
        return _Tier.of(cell.op, cell.value, cell.span)
    if isinstance(cell, m.RateCell):
        return _Tier.of("=", cell.rate, cell.span)
    if isinstance(cell, m.ValueCell) and len(cell.values) == 1 and _is_number(cell.values[0]):
        return _Tier.of("=", Decimal(cell.values[0]), cell.span)
    return None  # `any`: every value is priced


def _cell_text(cell: m.Cell) -> str:
    if isinstance(cell, m.ValueCell):
        return ", ".join(cell.values)
    if isinstance(cell, m.CompareCell):
        return f"{cell.op} {cell.value}"
    if isinstance(cell, m.RateCell):
        return str(cell.rate)
    return "any"


def _simple_compare(cond: m.Condition) -> tuple[str, str, Decimal] | None:
    if isinstance(cond, m.Compare) and isinstance(cond.left, m.FieldRef) and isinstance(cond.right, m.Number):
        return cond.left.name, cond.op, cond.right.value
    return None


def _integral(search: _Search, field: str) -> bool:
    # Derived quantities in practice come from whole numbers (max of sides, a product of counts).
    return not isinstance(search.types.get(field), t.DecimalType)


# Unreachable rules ---------------------------------------------------------------


def _unreachable(program: Program) -> list[Finding]:
    """Rules no usage can reach: their conditions contradict, or guards refuse every usage they match."""
    searches = {name: _Search(program, kind) for name, kind in program.kinds.items()}
    by_row: dict[tuple[str, int], list[PriceRule]] = defaultdict(list)
    for rule in program.rules:
        by_row[_row(rule)].append(rule)
    findings = []
    for rules in by_row.values():
        dead = []
        for rule in rules:
            search = searches[rule.kind]
            found = search.find(rule.conditions)
            if found.item is None and found.exhaustive:
                dead.append((rule, *_reason(rule, search)))
        # A row dead in every cell for one reason is one finding, not one per price.
        if len(dead) == len(rules) and len({message for _, message, _, _ in dead}) == 1:
            rule, message, example, related = dead[0]
            findings.append(Finding(UNREACHABLE, f"this row can never apply: {message}", rule.span, example=example, related=related))
            continue
        for rule, message, example, related in dead:
            message = f"this price of {rule.quantity} can never apply: {message}"
            findings.append(Finding(UNREACHABLE, message, rule.span, example=example, related=related))
    return findings


def _reason(rule: PriceRule, search: _Search) -> tuple[str, UsageItem | None, tuple[m.Span, ...]]:
    unguarded = search.find(rule.conditions, guarded=False)
    if unguarded.item is None:
        return f"no usage meets all of its conditions ({' and '.join(describe(c) for c in rule.conditions)})", None, ()
    refusing = [g for g in search.guards if g.refuses(cast(Mapping[str, Any], unguarded.values))]
    guard = refusing[0]
    return (
        f"every usage it matches is refused first, like this one: \"{guard.reason}\" ({guard.span.where})",
        unguarded.item,
        (guard.span,),
    )


# Offered where no table prices it --------------------------------------------------


def _offered_unpriced(program: Program) -> list[Finding]:
    """`offer M only in R1, R2` where, for a kind that prices M somewhere, no rule's region
    list takes one of those regions: a table that forgot a region the model is sold in."""
    findings: list[Finding] = []
    for rule_file in program.files:
        for offer in (s for s in rule_file.statements if isinstance(s, m.Offer)):
            for name in offer.models:
                model = program.aliases.get(name)
                if model is None:
                    continue
                for kind in program.kinds.values():
                    findings.extend(_unpriced_regions(program, kind, model, offer))
    return findings


def _unpriced_regions(program: Program, kind: KindSpec, model: str, offer: m.Offer) -> Iterable[Finding]:
    region_field = kind.region_field
    if kind.model_field is None or region_field is None:
        return
    rules = [*program.by_model.get(kind.name, {}).get(model, ()), *program.unindexed.get(kind.name, ())]
    rules = [r for r in rules if r.refusal is None and _admits(r, kind.model_field, model)]
    if not any(_admits(r, kind.model_field, model) for r in program.by_model.get(kind.name, {}).get(model, ())):
        return  # the kind does not price this model anywhere: nothing forgotten
    search = _Search(program, kind)
    for region in offer.regions:
        if any(_admits(rule, region_field, region) for rule in rules):
            continue
        at = [m.Equals(kind.model_field, m.Word(model)), m.Equals(region_field, m.Word(region))]
        found = search.find(at)  # a usage there that no guard refuses: it is sold, and priced nowhere
        if found.item is None:
            continue
        title = program.models[model].title
        message = f"{title} is offered in {region}, but no {kind.name} price covers {region}"
        yield Finding(OFFERED_UNPRICED, message, offer.span, example=found.item)


def _admits(rule: PriceRule | RelativeRule, field: str, value: str) -> bool:
    """Whether a rule's own conditions on `field` (equality or a list) let `value` through."""
    for cond in rule.conditions:
        if isinstance(cond, m.Equals) and cond.field == field and not cond.negated and cast(m.Texted, cond.value).text != value:
            return False
        if isinstance(cond, m.Member) and cond.field == field and (value in cond.values) == cond.negated:
            return False
    return True


# Billable quantities no rule charges -------------------------------------------------


def _uncharged(program: Program) -> list[Finding]:
    """Billable quantities that no rule charges at all (BR308), or that some models of a
    kind are charged for and another model, where it is priced, neither charges, frees
    nor refuses (BR309). `eval` refuses such usage when the quantity is nonzero; `check`
    says so before any usage meets it."""
    declared: dict[tuple[str, str], m.Span] = {}
    for rule_file in program.files:
        for statement in (s for s in rule_file.statements if isinstance(s, m.Kind)):
            parts: tuple[m.Field | m.Derived, ...] = (*statement.fields, *statement.derived)
            for part in parts:
                declared[(statement.name, part.name)] = part.span
    findings = []
    for kind in program.kinds.values():
        rules = [r for r in program.rules if r.kind == kind.name]
        charged = {r.quantity for r in rules}
        if not rules and not program.frees.get(kind.name):
            continue  # a kind no rule prices at all is refused whole, with its own message
        for quantity in program.quantities.get(kind.name, ()):
            if quantity not in charged:
                message = (
                    f"`{quantity}` of `{kind.name}` is a billable quantity no rule charges: usage with it is refused; "
                    "price it, mark it `free` or refuse it in a table, or declare it without a unit if it is not billed"
                )
                findings.append(Finding(UNCHARGED, message, declared.get((kind.name, quantity), kind.span)))
        findings.extend(_uncharged_for_model(program, kind, rules))
    return findings


def _uncharged_for_model(program: Program, kind: KindSpec, rules: Sequence[PriceRule]) -> Iterable[Finding]:
    model_field, region_field = kind.model_field, kind.region_field
    if model_field is None:
        return
    fields = {f.name for f in kind.fields}
    regions: list[str | None] = list(program.regions) if region_field is not None else [None]
    by_model = program.by_model.get(kind.name, {})
    unindexed = program.unindexed.get(kind.name, ())
    charged_for: dict[str, dict[str, None]] = defaultdict(dict)  # quantity -> models some rule charges it for, in order
    for model in program.models:
        for rule in (*by_model.get(model, ()), *unindexed):
            if _admits(rule, model_field, model):
                charged_for[rule.quantity].setdefault(model)
    search = _Search(program, kind)
    for model in program.models:
        provider = program.provider_of(model)
        own = [
            r for r in (*by_model.get(model, ()), *unindexed)
            if _admits(r, model_field, model) and _admits(r, "provider", provider)
        ]
        if not any(r in by_model.get(model, ()) for r in own):
            continue  # the kind does not price this model anywhere: nothing forgotten
        # Quantities a relative rule prices for this model from another quantity (`cache_read_tokens
        # at 0.1 of input_tokens when model in …`): charged wherever their base is.
        relative = {
            next(iter(rel.cases)) for rel in program.relatives.get(kind.name, ())
            if rel.field is None and _admits(rel, model_field, model) and _admits(rel, "provider", provider)
        }
        own_in: dict[str | None, list[PriceRule]] = {}  # per region, the model's rules there
        usable: dict[str | None, Any] = {}  # per region, a usage no guard refuses (None: none)
        for quantity in program.quantities.get(kind.name, ()):
            others = [o for o in charged_for.get(quantity, ()) if o != model]
            if not others or quantity not in fields or quantity in relative:
                continue
            missing = []
            for region in regions:
                here = own_in.get(region)
                if here is None:
                    here = own_in[region] = [r for r in own if region is None or _admits(r, region_field, region)]  # type: ignore[arg-type]
                if not here or any(r.quantity == quantity for r in here):
                    continue
                if region not in usable:  # the same for every quantity: searched once per region
                    at = [m.Equals(model_field, m.Word(model))]
                    if region is not None:
                        at.append(m.Equals(region_field, m.Word(region)))  # type: ignore[arg-type]
                    usable[region] = search.find(at).item
                item = usable[region]
                if item is not None:
                    missing.append((region, item))
            if not missing:
                continue
            where = "" if regions == [None] else " in " + ", ".join(str(r) for r, _ in missing)
            message = (
                f"`{quantity}` of `{kind.name}` is charged for model {others[0]} but not for model {model}{where}: "
                "such usage is refused; price it, mark it `free` or refuse it with a reason in a table"
            )
            example = (*missing[0][1], (quantity, 1))
            yield Finding(UNCHARGED_FOR_MODEL, message, next(r for r in own if r in by_model.get(model, ())).span, example=example)


# Regions only `in any` tables price -------------------------------------------------


def _only_any_region(program: Program) -> list[Finding]:
    """A region no rule names while tables list regions: what a new `region` line picks up.

    Such a region is priced by every `in any` table and by none of the tables that list
    their regions: usually a region just added, whose per-region prices are not written yet.
    """
    tables = [s for f in program.files for s in f.statements if isinstance(s, m.PriceTable)]
    listed = [t for t in tables if t.regions]
    anywhere = [t.span.where for t in tables if t.any_region]
    if not listed or not anywhere:
        return []
    named: set[str] = {r for t in listed for r in t.regions}
    conditions = [c for rule in program.rules for c in rule.conditions]
    conditions += [g.condition for gs in program.guards.values() for g in gs if g.condition is not None]
    conditions += [c for fs in program.frees.values() for f in fs for c in f.conditions]
    for cond in conditions:
        named |= _words(cond)
    for f in program.files:
        for statement in f.statements:
            if isinstance(statement, m.Offer):
                named |= set(statement.regions)
            elif isinstance(statement, m.Example):
                named |= {v.text for item in statement.items for _, v in item.fields if isinstance(v, m.Word)}
    findings = []
    for name, region in program.regions.items():
        if name not in named:
            message = (
                f"region {name} is named by no rule: the `in any` tables ({', '.join(anywhere)}) price there, "
                "and no table that lists its regions does; list it where it is sold, or leave it out"
            )
            findings.append(Finding(ONLY_ANY_REGION, message, region.span))
    return findings


def _words(cond: m.Condition) -> set[str]:
    """The names a condition compares a field with."""
    if isinstance(cond, (m.AllOf, m.AnyOf)):
        return set().union(*(_words(p) for p in cond.parts))
    if isinstance(cond, m.Not):
        return _words(cond.part)
    if isinstance(cond, m.Member):
        return set(cond.values)
    if isinstance(cond, m.Equals) and isinstance(cond.value, m.Word):
        return {cond.value.text}
    return set()


# Worked examples -------------------------------------------------------------------


def _examples(program: Program) -> list[Finding]:
    """Examples whose usage is not valid, is refused by the rules, or does not total what it expects."""
    findings = []
    for example, layers in layered(program):  # an overlay's examples are priced with it
        usage = document(example)["usage"]
        items, problems = check_items(layers, usage)
        for problem in problems:
            item = example.items[(problem.item or 1) - 1]
            field = re.split(r"[.\[]", problem.field or "", maxsplit=1)[0]
            span = next((value.span for name, value in item.fields if name == field), item.span)
            what = f"item {problem.item}, field {problem.field}" if problem.field else f"item {problem.item}"
            findings.append(Finding(EXAMPLE_INVALID, f"example {what}: {problem.message}", span))
        if problems:
            continue
        try:
            bill = evaluate_items(layers, items)
        except UsageError as error:
            reasons: dict[int, list[str]] = defaultdict(list)  # one finding per item, all its reasons
            for problem in error.problems:
                reasons[problem.item or 1].append(problem.message)
            for index, messages in reasons.items():
                message = "; ".join(dict.fromkeys(messages))
                span = example.items[index - 1].span
                findings.append(Finding(EXAMPLE_REFUSED, f"the rules refuse example item {index}: {message}", span))
            continue
        if bill.total != example.expect:
            message = f"example \"{example.title}\" expects {decimal_text(example.expect)}; the rules give {decimal_text(bill.total)}"
            findings.append(Finding(EXAMPLE_TOTAL, message, example.span))
    return findings
