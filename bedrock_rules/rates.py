"""Every rate that applies to one model: the question "what does this model cost?", answered from the rules.

A rate is a price rule whose model condition names the model; the conditions the
model (and, when asked, the region) already settle are left out, the others are shown
as the rule's "when". Refusals (`offer … only in`, `refuse`, `require`) that name the
model are listed beside the rates, with their own remaining conditions, and so are the
relative rules (batch at 0.5 of on-demand …) that derive its other prices.

Dated rules show their window. Asked for one day, only what is in force that day is
listed: a rule whose window holds it and that no later version of the same charge
replaces (one from a later day whose other conditions are among its own).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from .bill import decimal_text
from .display import align, encodable, visible
from .errors import did_you_mean
from .explainer import rate_text
from .program import KindSpec, PriceRule, Program
from .semantics import compile_condition, conjuncts, describe, fields_of


class UnknownName(Exception):
    """A model or region the rules do not name; `problems` holds every one, each naming its option."""

    def __init__(self, problems: Sequence[str]):
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


@attrs.frozen
class Rate:
    kind: str
    quantity: str
    rate: Decimal | None  # None: free or not offered
    per: Decimal
    price: str  # as the rule's cell says it: `0.003 USD per 1000`, `free`, `not offered: "…"`
    when: tuple[str, ...]  # the rule's conditions the model and region do not settle
    rule: str  # file:line
    id: str
    valid: str = ""  # its window (`from 2025-07-20`), empty for an undated rule


@attrs.frozen
class Refusal:
    kinds: tuple[str, ...]  # the kinds the same refusal holds for (an `offer` line guards every kind)
    reason: str
    when: tuple[str, ...]  # empty: always refused for this model (and region), on the days it holds
    rule: str
    dated: bool = False  # it holds on some days only (a window, or an offer's days): not every usage


@attrs.frozen
class Relative:
    kind: str
    text: str  # `mode = batch at 0.5 of on_demand`
    when: tuple[str, ...]
    rule: str
    valid: str = ""


@attrs.frozen
class ModelRates:
    model: str
    title: str
    provider: str
    region: str | None
    known: tuple[tuple[str, str], ...]  # other field values given (the scope a profile prefix names)
    currency: str
    rates: tuple[Rate, ...]
    refusals: tuple[Refusal, ...]
    relatives: tuple[Relative, ...] = ()
    at: str | None = None  # the day asked for; None: every version


def model_rates(
    program: Program,
    model: str,
    region: str | None = None,
    known: Mapping[str, str] | None = None,
    at: datetime.date | None = None,
) -> ModelRates:
    """The rates and refusals of a model (any spelling the rules accept), in one region or all,
    on one day (`at`) or on every day (each dated rule with its window).

    `known` gives other field values the question settles (`scope: global`); a kind
    without such a field ignores it. Raises UnknownName when the model or region is not
    in the rules.
    """
    problems = []
    name = program.aliases.get(model)
    if name is None:
        problems.append(f"unknown model {model!r}{did_you_mean(model, program.aliases)}")
    if region is not None and region not in program.regions:
        problems.append(f"--region: unknown region {region!r}{did_you_mean(region, program.regions)}")
    if problems or name is None:
        raise UnknownName(problems)
    given = dict(known or {})
    info = program.models[name]
    rates: list[Rate] = []
    refusals: dict[tuple[str, tuple[str, ...], str, bool], list[str]] = {}
    relatives: list[Relative] = []
    for kind in program.kinds.values():
        if kind.model_field is None:
            continue
        # A rule for any model (or chosen by provider) applies when its model conditions hold.
        rules = (*program.by_model.get(kind.name, {}).get(name, ()), *program.unindexed.get(kind.name, ()))
        for rule in rules:
            when = _remaining(kind, rule.conditions, name, info.provider, region, given)
            if when is None or (at is not None and not in_force(rule, rules, kind.model_field, at)):
                continue
            rates.append(Rate(
                kind.name, rule.quantity, rule.rate, rule.per, rate_text(rule, program.currency), when, rule.where, rule.id,
                _valid(rule.window),
            ))
        for guard in program.guards.get(kind.name, ()):
            if guard.condition is None or kind.model_field not in _fields(guard.condition):
                continue  # a refusal of every model is the kind's, not this model's
            if at is not None and not guard.applies(at):
                continue
            when = _remaining(kind, (guard.condition,), name, info.provider, region, given)
            if when is not None:
                reason = guard.reason + (f" ({_valid(guard.window)})" if guard.window is not None and at is None else "")
                dated = at is None and guard.dated  # on the day asked, a dated guard that applies holds all day
                refusals.setdefault((reason, when, guard.span.where, dated), []).append(kind.name)
        for rel in program.relatives.get(kind.name, ()):
            if at is not None and rel.window is not None and not rel.window.contains(at):
                continue
            when = _remaining(kind, rel.conditions, name, info.provider, region, given)
            if when is not None and (rel.field is None or rel.field not in given or given[rel.field] in rel.cases):
                relatives.append(Relative(kind.name, rel.text, when, rel.where, _valid(rel.window)))
    rates.extend(_overlay_rates(program, name, info.provider, region, given, at))
    return ModelRates(
        name, info.title, info.provider, region, tuple(sorted(given.items())), program.currency, tuple(rates),
        tuple(Refusal(tuple(kinds), reason, when, where, dated) for (reason, when, where, dated), kinds in refusals.items()),
        tuple(relatives), None if at is None else at.isoformat(),
    )


def _valid(window: m.Window | None) -> str:
    return "" if window is None else str(window)


def in_force(rule: PriceRule, rules: Sequence[PriceRule], model_field: str | None, day: datetime.date) -> bool:
    """Whether `rule` prices on `day`: in its window, and not replaced by a later version
    (a rule of the same charge, from a later day, whose other conditions are among its own)."""
    if rule.window is not None and not rule.window.contains(day):
        return False

    def others(r: PriceRule) -> set[str]:
        return {describe(c) for c in conjuncts(r.conditions) if fields_of(c) != {model_field}}

    return not any(
        (later.quantity, later.each) == (rule.quantity, rule.each) and later.start > rule.start
        and (later.window is None or later.window.contains(day)) and others(later) <= others(rule)
        for later in rules
    )


def _overlay_rates(
    program: Program, model: str, provider: str, region: str | None, given: Mapping[str, str],
    at: datetime.date | None,
) -> list[Rate]:
    """The overlay rules (`--overlay`) that can change this model's rates, after the list's, in layer order.

    An overlay changes a rate the list gives, so each shows what it does (`overlay: by -20%`,
    a fixed rate) and when; the rate charged for a usage is the bill's, shown by `explain`.
    """
    found = []
    for layer in program.layers:
        for rule in layer.rules:
            kind = program.kinds[rule.kind]
            if kind.model_field is None:
                continue
            if at is not None and rule.window is not None and not rule.window.contains(at):
                continue
            when = _remaining(kind, rule.conditions, model, provider, region, given)
            if when is None:
                continue
            relative = rule.relative
            if relative is not None and relative.field is not None:
                when = (f"{relative.field} in {', '.join(sorted(map(str, relative.cases)))}", *when)
            if rule.window is not None:
                when = (*when, str(rule.window))
            if rule.form == "table":
                per = "each" if rule.per == 1 else f"per {decimal_text(rule.per)}"
                price = f"overlay: {decimal_text(rule.rate or 0)} {program.currency} {per}"
            else:
                price = f"overlay: {rule.text}"
            found.append(Rate(
                kind.name, rule.quantity or "every quantity", rule.rate, rule.per, price, when, rule.where, "",
            ))
    return found


def _fields(condition: m.Condition) -> set[str]:
    names = fields_of(condition)
    return names | ({"model"} if "provider" in names else set())


def _remaining(
    kind: KindSpec,
    conditions: Sequence[m.Condition],
    model: str,
    provider: str,
    region: str | None,
    given: Mapping[str, str],
) -> tuple[str, ...] | None:
    """The conditions left once the model and region are known; None when they rule the rule out.

    Only a condition on the model (or its provider) and region alone is decided here: one
    that also reads another field stays, shown, since the usage decides it.
    """
    types_ = {f.name: f.type for f in kind.fields}
    known: dict[str, Any] = {kind.model_field or "model": model, "provider": provider}
    settled = {kind.model_field, "provider"}
    if region is not None and kind.region_field is not None:
        known[kind.region_field] = region
        settled.add(kind.region_field)
    for name, value in given.items():
        if name in types_:
            known[name] = value
            settled.add(name)
    left: list[str] = []
    for condition in conjuncts(conditions):
        if fields_of(condition) <= settled:
            if not compile_condition(condition, types_)(known):
                return None
            continue
        left.append(describe(condition))
    return tuple(left)


# Output -------------------------------------------------------------------------------


def render_text(found: ModelRates) -> str:
    """The rates as a table for people, then the refusals."""
    where = f" in {found.region}" if found.region else ""
    where += "".join(f", {name} {value}" for name, value in found.known)
    where += f", on {found.at}" if found.at else ""
    count = f"{len(found.rates)} rate{'s' if len(found.rates) != 1 else ''}"
    always = {kind for refusal in found.refusals if not refusal.when and not refusal.dated for kind in refusal.kinds}
    if found.rates and {rate.kind for rate in found.rates} <= always:
        count += ", none charged: every usage is refused (below)"  # e.g. a region the model is not offered in
    out = [f"{found.title} ({found.model}, {found.provider}){where}: {count}"]
    if found.rates:
        rows = [["kind", "quantity", "price", "when", "rule"]]
        rows.extend(
            [r.kind, r.quantity, r.price, " and ".join(r.when) or "always", _cited(r.rule, r.valid)] for r in found.rates
        )
        out.extend(align(rows, indent="  ", ruled=True))
    if found.relatives:
        out.append("derived:")
        for rel in found.relatives:
            when = f" when {' and '.join(rel.when)}" if rel.when else ""
            out.append(f"  {rel.kind}: {rel.text}{when} — {_cited(rel.rule, rel.valid)}")
    if found.refusals:
        out.append("refused:")
        for refusal in found.refusals:
            when = f" when {' and '.join(refusal.when)}" if refusal.when else ""
            out.append(f"  {', '.join(refusal.kinds)}{when}: {refusal.reason} — {refusal.rule}")
    return "\n".join(map(visible, out)) + "\n"


def _cited(rule: str, valid: str) -> str:
    return f"{rule} ({valid})" if valid else rule


# The JSON's shape, named in it; bedrock_rules/schemas/prices.json describes it.
SCHEMA = "bedrock-rules/prices/1"


def to_data(found: ModelRates) -> dict[str, Any]:
    """The rates as JSON-ready data: rates as decimal strings, keys in a fixed order."""
    return {
        "schema": SCHEMA,
        "model": found.model,
        "title": found.title,
        "provider": found.provider,
        "region": found.region,
        **{name: value for name, value in found.known},
        "currency": found.currency,
        "at": found.at,
        "rates": [
            {
                "kind": r.kind,
                "quantity": r.quantity,
                "rate": None if r.rate is None else decimal_text(r.rate),
                "per": decimal_text(r.per),
                "price": r.price,
                "when": list(r.when),
                "rule": r.rule,
                "valid": r.valid or None,
                "id": r.id,
            }
            for r in found.rates
        ],
        "relatives": [
            {"kind": r.kind, "relative": r.text, "when": list(r.when), "rule": r.rule, "valid": r.valid or None}
            for r in found.relatives
        ],
        "refusals": [{"kinds": list(r.kinds), "reason": r.reason, "when": list(r.when), "rule": r.rule} for r in found.refusals],
    }


def dump(found: ModelRates) -> str:
    return encodable(json.dumps(to_data(found), indent=2, ensure_ascii=False)) + "\n"
