"""Checking the rules against AWS Price List offer files: what differs, what is not covered.

Each price dimension of an offer is matched to a `pricelist` row (by the offer code and
the SKU's attributes), priced by the interpreter as a usage of one unit of the row's
quantity dated on the term's `effectiveDate` (so a dated list is compared with the
version in force that day), and compared exactly with the offer's price, both per the
offer's unit. What
no row matches, what the rules refuse, and the rules of the models the offers cover
that no SKU reached are reported too: each is a finding, so an offer the rules match
everywhere reports none.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

import attrs

from .bedrock.offers import OfferPrice
from .bill import decimal_text
from .display import align, encodable, visible
from .fields import ListOf
from .interpreter import price_item
from .program import PriceRule, Program, SkuRule
from .rates import in_force
from .ruleset import Ruleset
from .semantics import EXACT, compile_condition, conjuncts, fields_of

# What a finding is, in the order the report lists them.
DIFFERS = "differs"  # the offer's price is not the rules' price
NOT_COVERED = "not covered"  # no pricelist row matches the SKU, or it is a tier of a tiered price
UNPRICED = "not priced"  # a row maps the SKU, but the rules refuse that usage
AMBIGUOUS = "ambiguous"  # several rows match one SKU
NO_SKU = "no SKU"  # a rule of a model the offers cover that no SKU reached
ORDER = (DIFFERS, UNPRICED, AMBIGUOUS, NOT_COVERED, NO_SKU)


@attrs.frozen
class Finding:
    what: str
    message: str
    price: OfferPrice | None = None
    offer_rate: Decimal | None = None  # per the offer's unit
    rule_rate: Decimal | None = None  # the rules' rate, converted to the offer's unit
    rule: str | None = None  # file:line of the rule (or pricelist row) concerned
    mapping: str | None = None  # file:line of the pricelist row that matched


@attrs.frozen
class Report:
    offers: tuple[tuple[str, str, str, int], ...]  # (file, offerCode, version, prices read)
    matched: int  # prices the rules give exactly
    effective: tuple[str, ...]  # the terms' effective dates, oldest first
    findings: tuple[Finding, ...]

    def count(self, what: str) -> int:
        return sum(1 for f in self.findings if f.what == what)


def check_offers(rules: Ruleset, prices: Sequence[OfferPrice]) -> Report:
    """Compare every price of the offers with the rules in force on its term's effective date."""
    program = rules.program
    findings: list[Finding] = []
    reached: set[tuple[str, str]] = set()  # (rule place, quantity) a SKU's price came from
    covered: dict[tuple[str, str], set[str]] = {}  # (kind, model) -> regions the offers priced it in
    days: dict[tuple[str, str], set[datetime.date]] = {}  # (kind, model) -> the terms' effective days
    matched = 0
    for price in prices:
        rows = [row for row in program.sku_rules if row.offer == price.offer and row.matches(price.attributes)]
        if price.ranged:
            findings.append(Finding(NOT_COVERED, "a tier of a tiered price: the rules hold no tiers for it", price))
            continue
        if not rows:
            findings.append(Finding(NOT_COVERED, "no pricelist row matches it", price))
            continue
        if len(rows) > 1:
            where = " and ".join(row.where for row in rows)
            findings.append(Finding(AMBIGUOUS, f"the pricelist rows at {where} all match it", price))
            continue
        row = rows[0]
        region = price.attributes.get("regionCode")
        kind = program.kinds[row.kind]
        values = dict(row.values)
        model = values.get(kind.model_field) if kind.model_field else None
        if model is not None and region:
            covered.setdefault((row.kind, model), set()).add(region)
            days.setdefault((row.kind, model), set()).add(price.effective)
        if row.unit != price.unit:
            findings.append(Finding(
                DIFFERS, f"its unit is {price.unit!r}; the pricelist row says {row.unit!r}", price, mapping=row.where
            ))
            continue
        result = _rule_rate(rules, row, region, values, price.effective)
        if isinstance(result, str):
            findings.append(Finding(UNPRICED, result, price, mapping=row.where))
            continue
        rule_rate, rule_where, places = result
        reached.update((place, row.quantity) for place in places)
        if rule_rate == price.price:
            matched += 1
            continue
        findings.append(Finding(
            DIFFERS, "the offer's price is not the rules'", price, price.price, rule_rate, rule_where, row.where
        ))
    findings.extend(_without_sku(program, covered, days, reached))
    offers: dict[str, tuple[str, str, str, int]] = {}
    for price in prices:
        file, offer, version, count = offers.get(price.source, (price.source, price.offer, price.version, 0))
        offers[price.source] = (file, offer, version, count + 1)
    findings.sort(key=lambda f: ORDER.index(f.what))
    effective = tuple(sorted({price.effective.isoformat() for price in prices}))
    return Report(tuple(offers.values()), matched, effective, tuple(findings))


def _rule_rate(
    rules: Ruleset, row: SkuRule, region: str | None, values: dict[str, str], day: datetime.date
) -> tuple[Decimal, str, tuple[str, ...]] | str:
    """The rules' rate on `day` for one unit of the row's quantity, per the offer's unit, with the
    places of the rules it comes from (a relative price's too); or why the rules do not give one."""
    program = rules.program
    kind = program.kinds[row.kind]
    raw: dict[str, Any] = {"kind": row.kind, "at": day.isoformat()}
    for name, value in values.items():  # a row names one value; a list field holds it alone
        raw[name] = [value] if isinstance(kind.field_map[name].type, ListOf) else value
    if kind.region_field and kind.region_field not in raw:
        if not region:
            return "the SKU has no regionCode and the pricelist row names no region"
        if region not in program.regions:
            return f"region {region} is not in the rules"
        raw[kind.region_field] = region
    if row.quantity in kind.field_map:
        raw[row.quantity] = 1
    items, problems = rules.check_items([raw])
    if problems:
        return "; ".join(p.message for p in problems)
    bill, problems = price_item(program, items[0])
    if bill is None:
        return "the rules refuse it: " + "; ".join(p.message for p in problems)
    # By the rule's id (`kind/quantity[…]`): a charge per list value is named after the value too.
    charge = next((c for c in bill.charges if c.rule_id.partition("[")[0] == f"{row.kind}/{row.quantity}"), None)
    if charge is None:
        return f"no rule charges {row.quantity} for it"
    if charge.rate is None:
        return f"the rules charge nothing for it ({charge.rule})"
    rate = EXACT.divide(EXACT.multiply(charge.rate, row.per), charge.per)
    places = tuple(where for where, _, _ in charge.basis) or (charge.rule,)
    return rate, charge.rule, places


def _without_sku(
    program: Program,
    covered: dict[tuple[str, str], set[str]],
    days: dict[tuple[str, str], set[datetime.date]],
    reached: set[tuple[str, str]],
) -> Iterable[Finding]:
    """The rules with a rate, of each model the offers priced, in the regions they priced it in,
    in force on a day of the offers' terms, that no SKU reached."""
    for (kind_name, model), regions in covered.items():
        kind = program.kinds[kind_name]
        types_ = {f.name: f.type for f in kind.fields}
        rules = program.by_model.get(kind_name, {}).get(model, ())
        for rule in rules:
            if rule.rate is None or (rule.where, rule.quantity) in reached or not _in_some(rule, kind.region_field, regions, types_):
                continue
            if not any(in_force(rule, rules, kind.model_field, day) for day in days.get((kind_name, model), ())):
                continue
            yield Finding(NO_SKU, f"no SKU of the offers reaches {kind_name} {rule.quantity} of {model}", rule=rule.where)


def _in_some(rule: PriceRule, region_field: str | None, regions: set[str], types_: dict[str, Any]) -> bool:
    """Whether the rule's conditions on the region alone admit one of the regions."""
    checks = [c for c in conjuncts(rule.conditions) if region_field and fields_of(c) == {region_field}]
    field = cast(str, region_field)  # with no region field, there are no checks
    return any(all(compile_condition(c, types_)({field: r}) for c in checks) for r in regions)


# Output -------------------------------------------------------------------------------


def _sku_text(price: OfferPrice) -> str:
    region = price.attributes.get("regionCode", "no region")
    # The marketplace offer names the model only in `servicename`; the others in `model`.
    named = price.attributes.get("servicename") or price.attributes.get("model")
    named = f", {named}" if named else ""
    return f"{price.sku} {price.usagetype or '(no usagetype)'} ({region}{named}, effective {price.effective.isoformat()})"


def render_text(report: Report) -> str:
    out = [f"{file}: {offer} {version}: {count} price{'s' if count != 1 else ''}" for file, offer, version, count in report.offers]
    out.append(f"terms effective {', '.join(report.effective)}: each compared with the rules in force on its term's date")
    rows = []
    for finding in report.findings:
        if finding.price is not None:
            subject = _sku_text(finding.price)
            if finding.what == DIFFERS and finding.offer_rate is not None and finding.rule_rate is not None:
                unit = finding.price.unit
                detail = (
                    f"offer {decimal_text(finding.offer_rate)} per {unit}, rules {decimal_text(finding.rule_rate)} "
                    f"per {unit} ({finding.rule}; row {finding.mapping})"
                )
            else:
                detail = finding.message + (f" (row {finding.mapping})" if finding.mapping else "")
        else:
            subject, detail = f"rule {finding.rule}", finding.message
        rows.append([finding.what + ":", subject, detail])
    out.extend(align(rows))
    counts = ", ".join(f"{report.count(what)} {what}" for what in ORDER)
    out.append(f"{report.matched} price{'s' if report.matched != 1 else ''} as the rules give them; {counts}")
    return "\n".join(map(visible, out)) + "\n"


# The JSON's shape, named in it; bedrock_rules/schemas/pricelist.json describes it.
SCHEMA = "bedrock-rules/pricelist/1"


def to_data(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "offers": [{"file": f, "offer": o, "version": v, "prices": n} for f, o, v, n in report.offers],
        "effective": list(report.effective),
        "matched": report.matched,
        "counts": {what: report.count(what) for what in ORDER},
        "findings": [_finding_data(f) for f in report.findings],
    }


def _finding_data(finding: Finding) -> dict[str, Any]:
    data: dict[str, Any] = {"finding": finding.what, "message": finding.message}
    price = finding.price
    if price is not None:
        data.update({
            "file": price.source,
            "offer": price.offer,
            "sku": price.sku,
            "rate_code": price.rate_code,
            "usagetype": price.usagetype,
            "region": price.attributes.get("regionCode"),
            "effective": price.effective.isoformat(),
            "unit": price.unit,
            "price": decimal_text(price.price),
        })
    if finding.rule_rate is not None:
        data["rules_price"] = decimal_text(finding.rule_rate)
    data["rule"] = finding.rule
    data["row"] = finding.mapping
    return data


def dump(report: Report) -> str:
    return encodable(json.dumps(to_data(report), indent=2, ensure_ascii=False)) + "\n"
