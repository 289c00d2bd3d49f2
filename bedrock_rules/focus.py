"""Charges as FOCUS 1.2 rows (the FinOps Open Cost and Usage Specification), as CSV or Parquet.

One row per charge; subtotals and totals are not FOCUS rows. The writer knows FOCUS and
nothing about a provider: who provides, publishes and invoices the service and what it is
called come in as `provider` data from the layer that knows the provider.

Costs come in two layers. The list side (ListUnitPrice, ListCost) is the rule's price. The
charged side (ContractedUnitPrice, ContractedCost, EffectiveCost, BilledCost) is what an
agreement charges: a charge without its own charged rate is charged at list, so a price
overlay fills the charged side alone and the list side stays the published price.

FOCUS's own rules hold on every row: ListUnitPrice x PricingQuantity = ListCost exactly
(a unit price is left empty when a rule's rounding makes the product differ, as the spec
allows for a conditional column), times are UTC `YYYY-MM-DDTHH:mm:ssZ` and period ends
are exclusive.
"""

from __future__ import annotations

import csv
import decimal
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs

from .bill import decimal_text
from .errors import Problem, UsageError

# The FOCUS 1.2 columns written, in this order: the Mandatory ones, then the Conditional and
# Recommended ones a usage charge fills, then the custom `x_` columns.
COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName",
    "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "RegionId", "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceId",
    "x_RuleId", "x_Kind", "x_Model", "x_Item",
)
MANDATORY_NOT_NULL = (
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory",
    "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)
PROVIDER_COLUMNS = ("ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceName", "ServiceCategory", "ServiceSubcategory")
DECIMAL_COLUMNS = (
    "BilledCost", "ConsumedQuantity", "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "ListCost", "ListUnitPrice",
    "PricingQuantity",
)
TIME_COLUMNS = ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart")
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


@attrs.frozen
class Period:
    """A span of time in UTC, start inclusive, end exclusive."""

    start: datetime
    end: datetime

    @classmethod
    def month(cls, text: str) -> Period:
        """`2026-11`: that calendar month."""
        try:
            first = datetime.strptime(text, "%Y-%m").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ValueError(f"expected a month such as 2026-11, got {text!r}") from None
        following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        return cls(first, following)

    @classmethod
    def day(cls, value: date) -> Period:
        start = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
        return cls(start, start + timedelta(days=1))

    def billing(self) -> Period:
        """The calendar month this period starts in."""
        return Period.month(self.start.strftime("%Y-%m"))

    def holds(self, other: Period) -> bool:
        return self.start <= other.start and other.end <= self.end


@attrs.frozen
class Charge:
    """One charge to write as one row. `charged_rate` and `charged_cost` default to list."""

    sku_id: str
    meter: str
    description: str
    quantity: Decimal | int
    unit: str | None
    per: Decimal
    list_rate: Decimal | None
    list_cost: Decimal
    kind: str
    model: str | None
    region: str | None
    item: str
    period: Period
    charged_rate: Decimal | None = None
    charged_cost: Decimal | None = None


def utc(moment: datetime) -> str:
    """FOCUS's DateTimeFormat: `YYYY-MM-DDTHH:mm:ssZ`, in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pricing_unit(unit: str | None, per: Decimal) -> str | None:
    """FOCUS's UnitFormat: `1000 Tokens` for a rate per 1000 tokens, `Images` for one per image."""
    if unit is None:
        return None
    words = " ".join(word[:1].upper() + word[1:] for word in unit.split())
    return words if per == 1 else f"{decimal_text(per)} {words}"


def sku_price_id(charge: Charge) -> str:
    """Stable for one price of one SKU: the same rule at the same price always gives the same id,
    wherever the rule sits in its file; a new price gives a new id."""
    key = json.dumps([charge.sku_id, charge.unit, decimal_text(charge.per),
                      None if charge.list_rate is None else decimal_text(charge.list_rate)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


def rows(charges: Iterable[Charge], provider: Mapping[str, str], currency: str, account: str, account_name: str | None = None
         ) -> list[dict[str, Any]]:
    """One FOCUS row per charge; decimals stay Decimal, times are datetimes in UTC."""
    missing = [c for c in PROVIDER_COLUMNS if not provider.get(c)]
    if missing:
        raise ValueError(f"provider data lacks {', '.join(missing)}")
    written = []
    problems: list[Problem] = []
    for charge in charges:
        quantity = Decimal(charge.quantity)
        try:
            pricing_quantity = _EXACT.divide(quantity, charge.per)
        except decimal.DecimalException:
            problems.append(Problem(f"{charge.item} {charge.meter}: {decimal_text(quantity)} is not a whole multiple of the "
                                    f"pricing unit's {decimal_text(charge.per)}, so no exact PricingQuantity exists"))
            continue
        list_rate = Decimal(0) if charge.list_rate is None else charge.list_rate
        charged_cost = charge.list_cost if charge.charged_cost is None else charge.charged_cost
        charged_rate = list_rate if charge.charged_rate is None else charge.charged_rate
        billing = charge.period.billing()
        written.append({
            "BilledCost": charged_cost,
            "BillingAccountId": account,
            "BillingAccountName": account_name,
            "BillingCurrency": currency,
            "BillingPeriodEnd": billing.end,
            "BillingPeriodStart": billing.start,
            "ChargeCategory": "Usage",
            "ChargeClass": None,
            "ChargeDescription": charge.description,
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": charge.period.end,
            "ChargePeriodStart": charge.period.start,
            "ConsumedQuantity": quantity,
            "ConsumedUnit": pricing_unit(charge.unit, Decimal(1)),
            "ContractedCost": charged_cost,
            # A unit price whose product with PricingQuantity is not the cost (a rule rounds) is left empty.
            "ContractedUnitPrice": charged_rate if charged_rate * pricing_quantity == charged_cost else None,
            "EffectiveCost": charged_cost,
            "InvoiceIssuerName": provider["InvoiceIssuerName"],
            "ListCost": charge.list_cost,
            "ListUnitPrice": list_rate if list_rate * pricing_quantity == charge.list_cost else None,
            "PricingCategory": "Standard",
            "PricingQuantity": pricing_quantity,
            "PricingUnit": pricing_unit(charge.unit, charge.per),
            "ProviderName": provider["ProviderName"],
            "PublisherName": provider["PublisherName"],
            "RegionId": charge.region,
            "ServiceCategory": provider["ServiceCategory"],
            "ServiceName": provider["ServiceName"],
            "ServiceSubcategory": provider["ServiceSubcategory"],
            "SkuId": charge.sku_id,
            "SkuMeter": charge.meter,
            "SkuPriceId": sku_price_id(charge),
            "x_RuleId": charge.sku_id,
            "x_Kind": charge.kind,
            "x_Model": charge.model,
            "x_Item": charge.item,
        })
    if problems:
        raise UsageError(problems)
    return written


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return utc(value)
    return str(value)


def render_csv(table: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV with a header; an empty cell is a null."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in table:
        writer.writerow([_text(row[c]) for c in COLUMNS])
    return out.getvalue()


def write_parquet(table: Sequence[Mapping[str, Any]], path: str) -> None:
    """The rows as Parquet: decimals as DECIMAL(38, s) (FOCUS's "Extended" class), times as UTC timestamps
    in milliseconds (Parquet has no seconds unit; providers' own FOCUS exports use milliseconds too)."""
    import pyarrow as pa  # optional dependency: the `parquet` extra
    import pyarrow.parquet as pq  # optional dependency: as above

    fields, columns = [], []
    for name in COLUMNS:
        values = [row[name] for row in table]
        if name in DECIMAL_COLUMNS:
            scale = max([-int(v.as_tuple().exponent) for v in values if v is not None] + [0])
            # Every value at the column's scale must fit in 38 digits, or it would be rounded.
            if any(v is not None and v.adjusted() + 1 + scale > 38 for v in values):
                raise UsageError([Problem(f"{name}: a value needs more than 38 digits, more than Parquet's DECIMAL(38) holds")])
            kind = pa.decimal128(38, scale)
        elif name in TIME_COLUMNS:
            kind = pa.timestamp("ms", tz="UTC")
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind, nullable=True))
        columns.append(pa.array(values, type=kind))
    pq.write_table(pa.Table.from_arrays(columns, schema=pa.schema(fields)), path)
