"""What FOCUS rows say about Amazon Bedrock, and Bedrock bills and log totals as FOCUS charges.

The generic writer (bedrock_rules/focus.py) names no provider; the values here are
passed down to it as data. They follow the FOCUS converters' AWS mapping and AWS's own
FOCUS export: service "Amazon Bedrock" in the category "AI and Machine Learning",
provided, published and invoiced by AWS (Marketplace-billed models are published by
their vendor, which usage documents and invocation logs do not say: AWS is written).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from ..bill import Bill
from ..errors import Problem, UsageError
from ..fields import Instant
from ..focus import Charge, Period
from ..semantics import EXACT
from ..totals import Totals
from ..usage import Item

PROVIDER = {
    "ProviderName": "AWS",
    "PublisherName": "AWS",
    "InvoiceIssuerName": "AWS",
    "ServiceName": "Amazon Bedrock",
    "ServiceCategory": "AI and Machine Learning",
    "ServiceSubcategory": "Generative AI",
}
# Invocation-log totals are grouped by these, so each row has its day, model and region.
LOG_GROUPS = ("day", "model", "region")


def charges_of_bill(items: Sequence[Item], bill: Bill, period: Period | None) -> list[Charge]:
    """One charge per priced line of a usage document's bill: over the item's day (UTC)
    when it is dated (`at`), which must then fall in `period` when one is named; over
    `period` when it is not. Every item that cannot be placed is named at once."""
    if bill.periods:
        raise UsageError([PERIODS_REFUSAL])
    charges = []
    problems: list[Problem] = []
    for item, priced in zip(items, bill.items, strict=True):
        charged = _item_period(item, period, problems)
        if charged is None:
            continue
        model, region = item.values.get("model"), item.values.get("region")
        for charge in priced.charges:
            list_rate, list_cost, charged_rate, charged_cost = _sides(
                charge.list_id, charge.list_rate, charge.rate, charge.amount, charge.quantity, charge.per
            )
            charges.append(Charge(
                sku_id=charge.rule_id, meter=charge.what, description=_description(charge.what, item.kind, model, region),
                quantity=charge.quantity, unit=charge.unit, per=charge.per,
                kind=item.kind, model=None if model is None else str(model),
                region=None if region is None else str(region), item=item.label, period=charged,
                list_rate=list_rate, list_cost=list_cost, charged_rate=charged_rate, charged_cost=charged_cost,
            ))
    if problems:
        raise UsageError(problems)
    return charges


def _item_period(item: Item, period: Period | None, problems: list[Problem]) -> Period | None:
    """The charge period of an item's lines, or None with the problem added."""
    at = item.values.get("at")
    if not isinstance(at, Instant):
        if period is None:
            problems.append(Problem(
                f"{item.label}: FOCUS rows need a charge period and this item has no date: give it `at` "
                "or pass --period YYYY-MM (the month its usage was in)"
            ))
        return period
    try:
        day = Period.day(at.day)
    except OverflowError:  # 9999-12-31, whose next day the calendar lacks
        problems.append(Problem(f"{item.label}: {at} is the calendar's last day; its charge period cannot end"))
        return None
    if period is not None and not period.holds(day):
        problems.append(Problem(f"{item.label}: dated {at}, outside --period {period.start:%Y-%m}"))
        return None
    return day


def charges_of_totals(totals: Totals, period: Period | None) -> list[Charge]:
    """One charge per day, model, region and rule of invocation-log totals."""
    if totals.periods:
        raise UsageError([PERIODS_REFUSAL])
    at = {key: totals.group_by.index(key) for key in LOG_GROUPS}
    charges, problems = [], []
    for line in totals.lines:
        day_text, model, region = (line.group[at[key]] for key in LOG_GROUPS)
        try:
            day = Period.day(date.fromisoformat(day_text))
        except (ValueError, OverflowError):  # not a date, or 9999-12-31, whose next day the calendar lacks
            problems.append(Problem(f"{line.items} priced record(s) have no timestamp to date the charge by ({day_text})"))
            continue
        if period is not None and not period.holds(day):
            problems.append(Problem(f"records of {day_text} are outside --period {period.start:%Y-%m}"))
            continue
        kind = line.rule_id.split("/", 1)[0]
        list_rate, list_cost, charged_rate, charged_cost = _sides(
            line.list_id, line.list_rate, line.rate, line.amount, line.quantity, line.per
        )
        charges.append(Charge(
            sku_id=line.rule_id, meter=line.what, description=_description(line.what, kind, model, region),
            quantity=line.quantity, unit=line.unit, per=line.per,
            kind=kind, model=model, region=region, item=f"{line.items} call{'s' if line.items != 1 else ''}", period=day,
            list_rate=list_rate, list_cost=list_cost, charged_rate=charged_rate, charged_cost=charged_cost,
        ))
    if problems:
        raise UsageError(problems)
    return charges


# Monthly tiers and minimums price a month's total, not a charge: a FOCUS row per charge
# would leave their amounts out, so the export is refused rather than short.
PERIODS_REFUSAL = Problem(
    "these rules price some usage per calendar month (monthly tiers or a minimum), and FOCUS rows are written per "
    "charge: the month's tier lines and true-ups would be left out, so no FOCUS rows are written; use eval for the bill"
)


def _sides(
    list_id: str | None, list_rate: Decimal | None, rate: Decimal | None, amount: Decimal, quantity: Any, per: Decimal
) -> tuple[Decimal | None, Decimal, Decimal | None, Decimal | None]:
    """(list rate, list cost, charged rate, charged cost): under an overlay, the list side is the
    list's price and the charged side the overlay's; otherwise the charged side is left to default to list."""
    if list_id is None or list_rate is None:
        return rate, amount, None, None
    return list_rate, EXACT.divide(EXACT.multiply(quantity, list_rate), per), rate, amount


def _description(what: str, kind: str, model: object, region: object) -> str:
    return f"{what} of {kind} usage" + (f", model {model}" if model else "") + (f", {region}" if region else "")
