"""Which fields can change how a usage is priced, once some of its values are known.

Summing usages before pricing them (a log's records, a batch of items) is pricing each
of them only when every rule, refusal, free statement, relative rule and overlay rule
that can apply to them decides the same way for all of them. `reads_beyond` answers
that for the usages sharing some values (their model, region, choices): every
condition is evaluated over the known values, with the others unknown, in three
values (holds, does not, cannot tell). A statement whose conditions do not hold for
the known values cannot apply, so what else it reads does not matter; the fields a
statement that may apply reads besides the known ones are the answer. Empty: these
usages are priced alike whatever their other values (their quantities aside).

Relative rules and overlays price a usage from the price of the same usage with
another value of a field (`priority at 1.75 of standard`): the rules that can apply
to that usage are looked at too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from . import model as m
from .program import Program
from .semantics import compile_condition, fields_of

# A condition's outcome over the known values: True, False, or None (it reads an unknown field).
_Decide = Callable[[Mapping[str, Any]], "bool | None"]


def reads_beyond(program: Program, kind: str, values: Mapping[str, Any], known: Collection[str]) -> frozenset[str]:
    """The fields other than `known` that the statements which can apply to a usage of
    `kind` with these `values` of the `known` fields read (see the module's docstring)."""
    types = _types(program.kinds[kind])
    known = frozenset(known)
    found: set[str] = set()
    relatives: list[tuple[str, frozenset[Any], Any, tuple[m.Condition, ...]]] = [
        (rel.field, rel.cases, rel.base, rel.conditions) for rel in program.relatives.get(kind, ()) if rel.field is not None
    ]
    overlay_rules = [rule for layer in program.layers for rule in layer.rules if rule.kind == kind]
    for rule in overlay_rules:
        relative = rule.relative
        if relative is not None and relative.field is not None:
            relatives.append((relative.field, frozenset(relative.cases), relative.base, tuple(rule.conditions)))
    for field, *_ in relatives:
        if field not in known:
            found.add(field)  # which case a usage is depends on a value not known here
    statements: list[tuple[m.Condition, ...]] = [free.conditions for free in program.frees.get(kind, ())]
    statements += [(guard.condition,) for guard in program.guards.get(kind, ()) if guard.condition is not None]
    statements += [tuple(rule.conditions) for rule in overlay_rules]
    for variant in _variants(values, relatives):
        candidates = _candidates(program, kind, variant)
        for conditions in (*statements, *(rule.conditions for rule in candidates)):
            found |= _unknown_reads(conditions, variant, known, types)
    return frozenset(found)


def quoted_beyond(program: Program, kind: str, values: Mapping[str, Any], known: Collection[str]) -> frozenset[str]:
    """The fields other than `known` that the price rules which could price such a usage
    read at all: a refusal naming the closest of them quotes the usage's values of those."""
    found: set[str] = set()
    for rule in _candidates(program, kind, values):
        for cond in rule.conditions:
            found |= fields_of(cond)
    return frozenset(found - frozenset(known))


def _variants(values: Mapping[str, Any], relatives: list[tuple[str, frozenset[Any], Any, Any]]) -> list[Mapping[str, Any]]:
    """The values, and those of every usage a relative rule prices them from (chains followed)."""
    found = [values]
    seen = {tuple(sorted(values.items(), key=lambda pair: pair[0]))}
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        for field, cases, base, _ in relatives:
            if current.get(field) in cases:
                variant = {**current, field: base}
                key = tuple(sorted(variant.items(), key=lambda pair: pair[0]))
                if key not in seen:
                    seen.add(key)
                    found.append(variant)
    return found


def _candidates(program: Program, kind: str, values: Mapping[str, Any]) -> Iterable[Any]:
    """The price rules that could price a usage (as `interpreter.candidate_rules` finds them)."""
    unindexed = program.unindexed.get(kind, ())
    model_field = program.kinds[kind].model_field
    if model_field is None:
        return unindexed
    return (*program.by_model.get(kind, {}).get(values.get(model_field), ()), *unindexed)  # type: ignore[arg-type]


def _unknown_reads(
    conditions: Iterable[m.Condition], values: Mapping[str, Any], known: frozenset[str], types: Mapping[str, Any],
) -> set[str]:
    """What a statement reads besides the known fields; nothing when it cannot apply."""
    reads: set[str] = set()
    for cond in conditions:
        outcome = _decide(cond, values, known, types)
        if outcome is False:
            return set()  # does not apply to these usages, whatever it reads
        if outcome is None:
            reads |= _fields(cond) - known
    return reads


def _decide(cond: m.Condition, values: Mapping[str, Any], known: frozenset[str], types: Mapping[str, Any]) -> bool | None:
    """A condition's outcome over the known values, None when it depends on others."""
    if _fields(cond) <= known:
        return _predicate(cond, types)(values)
    if isinstance(cond, m.AllOf):
        outcomes = [_decide(part, values, known, types) for part in cond.parts]
        return False if False in outcomes else None
    if isinstance(cond, m.AnyOf):
        outcomes = [_decide(part, values, known, types) for part in cond.parts]
        return True if True in outcomes else None
    # `not …` over an unknown field needs that field present: it cannot be told here.
    return None


# What the questions above ask again and again (every usage's deciding values, the same
# rules' conditions): each condition's fields and compiled test, and each kind's field
# types, kept by the object's identity (checked, so that a freed object's reused id finds
# nothing). Conditions and kinds are immutable; two threads at worst compute one twice.
_KEPT = 200_000
_kept_fields: dict[int, tuple[Any, frozenset[str]]] = {}
_kept_predicates: dict[int, tuple[Any, Any, Callable[[Mapping[str, Any]], Any]]] = {}
_kept_types: dict[int, tuple[Any, Mapping[str, Any]]] = {}


def _fields(cond: m.Condition) -> frozenset[str]:
    found = _kept_fields.get(id(cond))
    if found is not None and found[0] is cond:
        return found[1]
    fields = frozenset(fields_of(cond))
    if len(_kept_fields) >= _KEPT:
        _kept_fields.clear()
    _kept_fields[id(cond)] = (cond, fields)
    return fields


def _predicate(cond: m.Condition, types: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Any]:
    found = _kept_predicates.get(id(cond))
    if found is not None and found[0] is cond and found[1] is types:
        return found[2]
    predicate = compile_condition(cond, types)
    if len(_kept_predicates) >= _KEPT:
        _kept_predicates.clear()
    _kept_predicates[id(cond)] = (cond, types, predicate)
    return predicate


def _types(spec: Any) -> Mapping[str, Any]:
    found = _kept_types.get(id(spec))
    if found is not None and found[0] is spec:
        return found[1]
    types = {f.name: f.type for f in spec.fields}
    if len(_kept_types) >= _KEPT:
        _kept_types.clear()
    _kept_types[id(spec)] = (spec, types)
    return types
