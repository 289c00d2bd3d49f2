"""Overlays: a customer's rates layered on a ruleset (`--overlay PATH`), without copying it.

An overlay file starts with `overlay "TITLE" [WINDOW]` and holds fixed-rate `prices`
tables, `adjust` statements (a percentage on the rate below) and `relative` rules, and
examples. It changes the rates of charges the list prices, and nothing else: it does not
sell, refuse or free anything, so every charge has a list rate and a charged rate.

For one charge of one item, each layer in turn picks its most specific matching rule:
the one whose selector constrains a strict superset of the fields every other matching
rule constrains. Two rules of one layer that can meet with neither more specific are
refused at load (BR221): a selector is a product of per-field sets, so whether two can
meet is decided exactly, with no search. Outside its window a rule does not exist.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from .bill import decimal_text
from .compiler import _Compiler
from .errors import Diagnostic, RuleFileError
from .program import KindSpec, Layer, OverlayRule, PriceRule, Program, rule_identity
from .semantics import EXACT, all_of, describe

# What an overlay file may hold: rates and their examples, never declarations or refusals.
_ALLOWED = (m.OverlayHeader, m.PriceTable, m.Relative, m.Adjust, m.Example)
_WHAT = {
    m.Currency: "a `currency`", m.Rounding: "a rounding", m.Region: "a region", m.Provider: "a provider",
    m.Kind: "a kind", m.Record: "a record", m.PriceList: "a pricelist table", m.Offer: "an `offer`",
    m.Refuse: "a `refuse`", m.Require: "a `require`", m.Free: "a `free` statement",
}


def list_placement(files: Sequence[m.RuleFile], sources: Mapping[str, Sequence[str]]) -> list[Diagnostic]:
    """BR224 for an overlay file found among a ruleset's own files."""
    found = []
    for rule_file in files:
        for statement in rule_file.statements:
            if isinstance(statement, (m.OverlayHeader, m.Adjust)):
                word = "overlay" if isinstance(statement, m.OverlayHeader) else "adjust"
                found.append(_diagnostic(
                    "BR224",
                    f"`{word}` belongs in an overlay file, given with `--overlay {rule_file.path}` (or `overlays = [...]` "
                    "in the configuration), not in the rules folder",
                    statement.span, sources,
                ))
                break
    return found


def compile_layers(
    program: Program, layers: Sequence[tuple[str, Sequence[m.RuleFile]]], sources: Mapping[str, Sequence[str]]
) -> Program:
    """The program with overlay layers on it, in order; raises RuleFileError listing every problem."""
    compiled: list[Layer] = []
    diagnostics: list[Diagnostic] = []
    all_sources = {**program.sources, **{k: tuple(v) for k, v in sources.items()}}
    for path, files in layers:
        layer, problems = _layer(program, path, files, all_sources)
        diagnostics.extend(problems)
        if layer is not None:
            compiled.append(layer)
    if diagnostics:
        raise RuleFileError(sorted(diagnostics, key=lambda d: (d.span.path, d.span.line, d.span.column)))
    dated = {rule.kind for layer in compiled for rule in layer.rules if rule.window is not None}
    return attrs.evolve(program, layers=tuple(compiled), sources=all_sources, dated_kinds=program.dated_kinds | dated)


def _diagnostic(code: str, message: str, span: m.Span, sources: Mapping[str, Sequence[str]]) -> Diagnostic:
    lines = sources.get(span.path, ())
    return Diagnostic(code, message, span, lines[span.line - 1] if 0 < span.line <= len(lines) else "")


def _layer(
    program: Program, path: str, files: Sequence[m.RuleFile], sources: Mapping[str, Sequence[str]]
) -> tuple[Layer | None, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    compiler = _Compiler(list(files), {path: tuple(lines) for path, lines in sources.items()}, program.root)
    compiler.regions = dict(program.regions)
    compiler.providers = dict(program.providers)
    compiler.models = dict(program.models)
    compiler.aliases = dict(program.aliases)
    compiler.kinds = dict(program.kinds)
    rules: list[OverlayRule] = []
    titles: list[str] = []
    windows: list[m.Window | None] = []
    examples: list[m.Example] = []
    first_span = m.Span(path, 1, 1)
    for rule_file in files:
        statements = rule_file.statements
        header = statements[0] if statements and isinstance(statements[0], m.OverlayHeader) else None
        if header is None:
            problems.append(_diagnostic(
                "BR224",
                'an overlay file starts with its header, `overlay "TITLE"` (with `until DATE` when it ends); '
                "a ruleset's own files are given with `--rules`",
                statements[0].span if statements else m.Span(rule_file.path, 1, 1), sources,
            ))
            continue
        if not titles:
            first_span = header.span
        titles.append(header.title)
        windows.append(header.window)
        for statement in statements[1:]:
            if isinstance(statement, m.OverlayHeader):
                problems.append(_diagnostic("BR224", "an overlay file has one `overlay` header, its first line", statement.span, sources))
                continue
            if not isinstance(statement, _ALLOWED):
                what = _WHAT.get(type(statement), "this statement")
                problems.append(_diagnostic(
                    "BR224",
                    f"an overlay changes the rates the list gives; it does not declare, sell or refuse anything: "
                    f"{what} belongs in the rules folder",
                    statement.span, sources,
                ))
                continue
            if isinstance(statement, m.Example):
                examples.append(statement)
                continue
            window = _within(statement.window, header.window, statement.span, sources, problems)
            for kind_name in _kind_names(compiler, statement):
                kind = program.kinds.get(kind_name)
                if kind is None:
                    compiler._unknown("kind", kind_name, program.kinds, statement.span)
                    continue
                rules.extend(_rules(compiler, program, statement, kind, window, sources, problems))
    problems.extend(compiler.diagnostics)
    problems.extend(_ambiguous(rules, sources))
    if problems:
        return None, problems
    window = windows[0] if len(windows) == 1 else None
    layer = Layer(" + ".join(titles) or path, path, window, tuple(rules), first_span, tuple(examples), tuple(files))
    return layer, []


def _kind_names(compiler: _Compiler, statement: Any) -> list[str]:
    if isinstance(statement, m.PriceTable):
        return [statement.kind]
    return list(statement.kinds) if statement.kinds else list(compiler.kinds)


def _within(
    window: m.Window | None, outer: m.Window | None, span: m.Span, sources: Any, problems: list[Diagnostic]
) -> m.Window | None:
    """A statement's window, which the header's bounds: BR223 when it reaches outside."""
    if outer is None:
        return window
    if window is None:
        return outer
    # A bound the statement leaves open is the header's; one it states must lie inside the header's window.
    early = window.start is not None and outer.start is not None and window.start < outer.start
    early = early or (window.start is not None and outer.end is not None and window.start > outer.end)
    late = window.end is not None and outer.end is not None and window.end > outer.end
    late = late or (window.end is not None and outer.start is not None and window.end < outer.start)
    if early or late:
        problems.append(_diagnostic(
            "BR223", f"this window reaches outside the overlay's ({outer}); an overlay's rules apply only inside it", span, sources,
        ))
    start = window.start if window.start is not None else outer.start
    end = window.end if window.end is not None else outer.end
    return m.Window(start, end, window.span)


def _rules(
    compiler: _Compiler, program: Program, statement: Any, kind: KindSpec, window: m.Window | None, sources: Any,
    problems: list[Diagnostic],
) -> list[OverlayRule]:
    if isinstance(statement, m.PriceTable):
        if statement.monthly is not None:  # a tier set prices a month's total, not a charge's rate
            problems.append(_diagnostic(
                "BR224", "an overlay's table changes rates per unit: monthly tiers belong to the list's own tables",
                statement.span, sources,
            ))
            return []
        table = statement if statement.regions else attrs.evolve(statement, any_region=kind.region_field is not None)
        found = []
        for rule in compiler._table(table, kind):
            if rule.rate is None:
                problems.append(_diagnostic(
                    "BR224", "an overlay's table holds rates: it changes what the list charges, it does not free or refuse anything",
                    rule.span, sources,
                ))
                continue
            constraints = _selector(rule.conditions, kind, program, rule.span, sources, problems)
            if constraints is None:
                continue
            text = f"at {decimal_text(rule.rate)} per {decimal_text(rule.per)}"
            found.append(OverlayRule(
                kind.name, "table", _fields(constraints, kind), constraints, window, text, rule.span, rule.matches,
                rule.conditions, quantity=rule.quantity, rate=rule.rate, per=rule.per, each=rule.each, block=rule.block,
            ))
        return found
    if isinstance(statement, m.Relative):
        relative = compiler._relative(statement, kind)
        if relative is None:
            return []
        constraints = _selector(relative.conditions, kind, program, statement.span, sources, problems)
        if constraints is None:
            return []
        if relative.field is not None:
            constraints = _merge(constraints, relative.field, ("in", frozenset(map(str, relative.cases))))
        return [OverlayRule(
            kind.name, "relative", _fields(constraints, kind), constraints, window, relative.text, statement.span,
            relative.matches, relative.conditions, factor=relative.factor, relative=relative,
        )]
    # adjust
    conditions: list[m.Condition] = []
    if statement.when is not None:
        checked = compiler._check_condition(statement.when, kind)
        if checked is None:
            return []
        conditions.append(checked)
    constraints = _selector(conditions, kind, program, statement.span, sources, problems)
    if constraints is None:
        return []
    factor = EXACT.add(Decimal(1), statement.percent.scaleb(-2))
    if factor <= 0:
        message = f"an adjustment of {statement.percent}% leaves no rate: take off less than 100%"
        problems.append(_diagnostic("BR224", message, statement.span, sources))
        return []
    sign = "+" if statement.percent >= 0 else "-"
    return [OverlayRule(
        kind.name, "adjust", _fields(constraints, kind), constraints, window, f"by {sign}{abs(statement.percent)}%",
        statement.span, all_of(conditions, kind.fields), tuple(conditions), factor=factor,
    )]


# selectors --------------------------------------------------------------------------


def _selector(
    conditions: Sequence[m.Condition], kind: KindSpec, program: Program, span: m.Span, sources: Any, problems: list[Diagnostic]
) -> dict[str, tuple] | None:
    """Per field, what the conditions allow of it; None (after BR222) when one is not a selector."""
    constraints: dict[str, tuple] = {}
    atoms: list[m.Condition] = []
    for condition in conditions:
        atoms.extend(condition.parts if isinstance(condition, m.AllOf) else (condition,))
    for atom in atoms:
        found = _atom(atom)
        if found is None:
            problems.append(_diagnostic(
                "BR222",
                f"`{describe(atom)}` is not a selector: an overlay's conditions name one field each (`=`, `!=`, `in`, "
                "`not in`, or a comparison with a number), joined by `and`, so the most specific rule can be known",
                getattr(atom, "span", span) or span, sources,
            ))
            return None
        field, constraint = found
        constraints = _merge(constraints, field, constraint)
    model_field = kind.model_field
    if model_field is not None and model_field in constraints:
        # A model has one provider: `model = m1` says `provider = p` too, where p provides m1.
        models = _values_allowed(constraints[model_field])
        if models is not None:
            providers = frozenset(program.models[name].provider for name in models if name in program.models)
            constraints = _merge(constraints, "provider", ("in", providers))
        else:
            constraints = _merge(constraints, "provider", ("all",))
    return constraints


def _atom(atom: m.Condition) -> tuple[str, tuple] | None:
    if isinstance(atom, m.Equals) and isinstance(atom.value, (m.Word, m.Number)):
        value = atom.value.text if isinstance(atom.value, m.Word) else str(atom.value.value)
        return str(atom.field), ("not" if atom.negated else "in", frozenset({str(value)}))
    if isinstance(atom, m.Member):
        return str(atom.field), ("not" if atom.negated else "in", frozenset(map(str, atom.values)))
    if isinstance(atom, m.Compare):
        if isinstance(atom.left, m.FieldRef) and isinstance(atom.right, m.Number):
            return atom.left.name, ("range", atom.op, atom.right.value)
        if isinstance(atom.left, m.Number) and isinstance(atom.right, m.FieldRef):
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[atom.op]
            return atom.right.name, ("range", flipped, atom.left.value)
    return None


def _merge(constraints: Mapping[str, tuple], field: str, constraint: tuple) -> dict[str, tuple]:
    """`constraints` with one more on `field`: a field's constraints are kept as a conjunction."""
    merged = dict(constraints)
    merged[field] = (*merged.get(field, ()), constraint)
    return merged


def _values_allowed(atoms: tuple) -> frozenset[str] | None:
    """The values a conjunction allows, when it names them; None when it is open."""
    allowed: frozenset[str] | None = None
    for atom in atoms:
        if atom[0] == "in":
            allowed = atom[1] if allowed is None else allowed & atom[1]
    if allowed is None:
        return None
    excluded = frozenset().union(*(atom[1] for atom in atoms if atom[0] == "not"))
    return allowed - excluded


def _fields(constraints: Mapping[str, tuple], kind: KindSpec) -> frozenset[str]:
    return frozenset({"kind", *constraints})


def _satisfiable(atoms: tuple) -> bool:
    """Whether some value meets every constraint of one field."""
    if any(atom[0] == "all" for atom in atoms) and len(atoms) == 1:
        return True
    ranges = [atom for atom in atoms if atom[0] == "range"]
    allowed = _values_allowed(tuple(atom for atom in atoms if atom[0] != "range"))
    if allowed is not None:
        return any(all(_in_range(value, r) for r in ranges) for value in allowed)
    low, low_closed, high, high_closed = None, False, None, False
    for _, op, bound in ranges:
        if op in (">", ">=") and (low is None or bound > low or (bound == low and op == ">")):
            low, low_closed = bound, op == ">="
        if op in ("<", "<=") and (high is None or bound < high or (bound == high and op == "<")):
            high, high_closed = bound, op == "<="
    if low is None or high is None:
        return True
    return low < high or (low == high and low_closed and high_closed)


def _in_range(value: str, atom: tuple) -> bool:
    try:
        number = Decimal(value)
    except ArithmeticError:
        return False
    _, op, bound = atom
    return {"<": number < bound, "<=": number <= bound, ">": number > bound, ">=": number >= bound}[op]


def _windows_meet(a: m.Window | None, b: m.Window | None) -> bool:
    start = max((w.start for w in (a, b) if w is not None and w.start is not None), default=None)
    end = min((w.end for w in (a, b) if w is not None and w.end is not None), default=None)
    return start is None or end is None or start <= end


def _quantities(rule: OverlayRule) -> frozenset[str] | None:
    """The quantities a rule can change; None: every one."""
    if rule.form == "table":
        return frozenset({rule.quantity or ""})
    if rule.form == "relative" and rule.relative is not None:
        if rule.relative.field is None:
            return frozenset(rule.relative.cases)
        return rule.relative.quantities or None
    return None


def meet(a: OverlayRule, b: OverlayRule) -> bool:
    """Whether some charge of some usage matches both rules: exact, field by field."""
    if a.kind != b.kind or not _windows_meet(a.window, b.window):
        return False
    qa, qb = _quantities(a), _quantities(b)
    if qa is not None and qb is not None and not qa & qb:
        return False
    if a.each != b.each and a.each and b.each:
        return False
    for field in set(a.constraints) & set(b.constraints):
        if not _satisfiable((*a.constraints[field], *b.constraints[field])):
            return False
    return True


def _ambiguous(rules: Sequence[OverlayRule], sources: Any) -> list[Diagnostic]:
    """BR221: two rules of one layer that can meet, neither more specific."""
    found = []
    for index, a in enumerate(rules):
        for b in rules[index + 1:]:
            if a.fields < b.fields or b.fields < a.fields or not meet(a, b):
                continue
            first, second = sorted((a, b), key=lambda r: (r.span.path, r.span.line, r.span.column))
            both = sorted((a.fields | b.fields) - {"kind"})
            what = f"{a.kind} usage" + (" selected by " + ", ".join(both) if both else "")
            found.append(_diagnostic(
                "BR221",
                f"the overlay rules at {first.span} and {second.span} both apply to {what}, and neither is more "
                "specific; add the other's condition to one of them, or narrow one so they cannot meet",
                second.span, sources,
            ))
    return found


# pricing ------------------------------------------------------------------------------

PricedBy = Callable[[Mapping[str, Any]], list[PriceRule]]
_DEPTH = 16  # relative rules chained through a layer: more than this is a cycle


def apply_layers(
    program: Program, kind: str, values: Mapping[str, Any], rules: list[PriceRule], priced_by: PricedBy,
    upto: int | None = None, depth: int = 0,
) -> list[PriceRule]:
    """The list's rules for a usage (`rules`), with the rates each overlay layer gives in their place."""
    at = values.get("at")
    day = None if at is None else at.day
    for index, layer in enumerate(program.layers[:upto]):
        rules = [_apply(program, index, layer, kind, values, rule, priced_by, day, depth) for rule in rules]
    return rules


def applying(layer: Layer, kind: str, values: Mapping[str, Any], rule: PriceRule, day: datetime.date | None) -> list[OverlayRule]:
    """The rules of a layer that change a charge (`rule`'s) of a usage."""
    found = []
    for candidate in layer.rules:
        if candidate.kind != kind or not candidate.in_window(day):
            continue
        if candidate.form == "table" and (candidate.quantity != rule.quantity or candidate.each != rule.each):
            continue
        if candidate.form == "relative" and candidate.relative is not None:
            relative = candidate.relative
            if relative.field is not None:
                if values.get(relative.field) not in relative.cases:
                    continue
                if relative.quantities and rule.quantity not in relative.quantities:
                    continue
            elif rule.quantity not in relative.cases:
                continue
        if candidate.matches(values):
            found.append(candidate)
    return found


def _apply(
    program: Program, index: int, layer: Layer, kind: str, values: Mapping[str, Any], rule: PriceRule, priced_by: PricedBy,
    day: datetime.date | None, depth: int,
) -> PriceRule:
    if rule.rate is None and rule.tiers is None:
        return rule  # free or not offered in the list: an overlay does not sell it
    found = applying(layer, kind, values, rule, day)
    if not found:
        return rule
    listed = rule.list_rule or rule
    if rule.tiers is not None:  # the month's tier lines are priced from the tier set: an overlay rate would not reach them
        where = " and ".join(o.where for o in found)
        return attrs.evolve(
            rule, rate=None, list_rule=listed,
            refusal=f"the overlay rule at {where} would change a rate the list gives in monthly tiers, which overlays cannot change",
        )
    winners = [o for o in found if all(other is o or other.fields < o.fields for other in found)]
    if len(winners) != 1:
        where = " and ".join(o.where for o in found)
        return attrs.evolve(rule, rate=None, refusal=f"the overlay rules at {where} all apply and none is more specific", list_rule=listed)
    chosen = winners[0]
    # A charge an overlay prices is a charge of its own (totals and diffs tell them apart):
    # its id is the list's (or the base's) with the overlay and what its rule says added.
    named = f'overlay "{layer.title}": ' + chosen.text + ("" if chosen.window is None else f" {chosen.window}")
    if chosen.form == "table":
        rule_id = _with(rule, rule.quantity, named)
        basis: tuple[tuple[str, str, Decimal | None], ...] = ((chosen.where, rule_id, chosen.rate),)
        return attrs.evolve(
            rule, id=rule_id, rate=chosen.rate, per=chosen.per, block=chosen.block, span=chosen.span, basis=basis, list_rule=listed,
        )
    if chosen.form == "adjust":
        assert chosen.factor is not None and rule.rate is not None  # a tier set's rule was refused above
        rule_id = _with(rule, rule.quantity, named)
        basis = ((chosen.where, rule_id, chosen.factor), *(rule.basis or ((rule.where, rule.id, rule.rate),)))
        return attrs.evolve(
            rule, id=rule_id, rate=EXACT.multiply(rule.rate, chosen.factor), span=chosen.span, basis=basis, list_rule=listed,
        )
    relative = chosen.relative
    assert relative is not None and chosen.factor is not None
    if depth >= _DEPTH:
        return attrs.evolve(rule, rate=None, refusal=f"{relative.text} ({chosen.where}) goes round in a circle", list_rule=listed)
    # The base charge alone is resolved, through the layers up to this one.
    base_values: Mapping[str, Any] = values
    if relative.field is not None:
        base_values = {**values, relative.field: relative.base}
        listed_base = [r for r in priced_by(base_values) if (r.quantity, r.each) == (rule.quantity, rule.each)]
        missing = f"{relative.field} = {relative.base}"
    else:
        listed_base = [r for r in priced_by(values) if (r.quantity, r.each) == (relative.base, rule.each)]
        missing = str(relative.base)
    base_rules = apply_layers(program, kind, base_values, listed_base, priced_by, upto=index + 1, depth=depth + 1)
    base = next((r for r in base_rules if r.rate is not None), None)
    if base is None:
        refusal = f"{relative.text} ({chosen.where}), and {missing} has no rate here"
        return attrs.evolve(rule, rate=None, refusal=refusal, list_rule=listed)
    assert base.rate is not None
    rule_id = _with(base, rule.quantity, named)
    basis = ((chosen.where, rule_id, chosen.factor), *(base.basis or ((base.where, base.id, base.rate),)))
    return attrs.evolve(
        rule, id=rule_id, rate=EXACT.multiply(base.rate, chosen.factor), per=base.per, span=chosen.span, basis=basis,
        list_rule=listed,
    )


def _with(rule: PriceRule, quantity: str, part: str) -> str:
    """`rule`'s id, under the charge's own name, with one more part: `text/input_tokens[model = a; overlay "X": by -20%]`."""
    conditions = rule.id[len(f"{rule.kind}/{rule.quantity}[") : -1]
    return rule_identity(rule.kind, quantity, [conditions, part] if conditions else [part])


def dated_rules(program: Program, kind: str, values: Mapping[str, Any]) -> list[tuple[m.Span, m.Window]]:
    """The dated overlay rules that match a usage, windows ignored (an undated usage is refused)."""
    found = []
    for layer in program.layers:
        for rule in layer.rules:
            if rule.kind == kind and rule.window is not None and rule.matches(values):
                if rule.form == "relative" and rule.relative is not None and rule.relative.field is not None:
                    if values.get(rule.relative.field) not in rule.relative.cases:
                        continue
                found.append((rule.span, rule.window))
    return found


def list_rate(rule: PriceRule, listed: PriceRule) -> Decimal | None:
    """The list's rate for a charge, per the unit the charged rate is given in."""
    if listed.rate is None:
        return None
    if listed.per == rule.per:
        return listed.rate
    return EXACT.divide(EXACT.multiply(listed.rate, rule.per), listed.per)



def overlays_of(program: Program) -> tuple[str, ...]:
    """The overlays a bill was priced under, by title (a bill names no file)."""
    return tuple(layer.title for layer in program.layers)
