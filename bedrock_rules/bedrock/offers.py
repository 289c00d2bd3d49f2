"""AWS Price List offer files for Amazon Bedrock, read into one price per SKU and price dimension.

The Bulk API's offer file (`{"offerCode", "version", "products": {SKU: …}, "terms":
{"OnDemand": {SKU: {TERM: {"effectiveDate", "priceDimensions": {RATE: …}}}}}}`) and
the Query API's `get-products` output (`{"PriceList": [product, …]}`, each product a
JSON text or object with its own `terms`) are both read; the three service codes
(AmazonBedrock, AmazonBedrockFoundationModels, AmazonBedrockService) share the shape.
Prices are exact decimals from the strings AWS writes (`"1.1000000000"`).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from .. import limits
from ..errors import Problem, UsageError

# The term type whose prices the rules hold: pay as you go, no commitment.
ON_DEMAND = "OnDemand"


@attrs.frozen
class OfferPrice:
    """One price dimension of one SKU's on-demand term."""

    source: str  # the file it was read from
    offer: str  # offerCode, e.g. AmazonBedrockFoundationModels
    version: str
    sku: str
    attributes: Mapping[str, str] = attrs.field(eq=False)
    effective: datetime.date  # the term's effectiveDate (its day, UTC)
    rate_code: str
    description: str
    unit: str
    price: Decimal
    ranged: bool  # a tier of a tiered price (a range other than 0 to Inf)

    @property
    def usagetype(self) -> str:
        return self.attributes.get("usagetype", "")


def read_offer(path: str) -> list[OfferPrice]:
    """Every on-demand price of an offer file; UsageError naming the file and the SKU when one cannot be read."""
    try:
        with open(path, "rb") as file:
            raw = file.read(limits.MAX_OFFER_BYTES + 1)
    except OSError as error:
        raise UsageError([Problem(f"cannot read the offer file: {error.strerror}", source=path)]) from None
    if len(raw) > limits.MAX_OFFER_BYTES:
        raise UsageError([Problem(f"offer file too large (over {limits.MAX_OFFER_BYTES:,} bytes)", source=path)])
    try:
        data = json.loads(raw.decode("utf-8-sig"), parse_float=Decimal, parse_int=Decimal)
    except (UnicodeDecodeError, ValueError) as error:
        raise UsageError([Problem(f"not an offer file: not JSON ({error})", source=path)]) from None
    problems: list[Problem] = []
    prices = list(_prices(data, path, problems))
    if problems:
        raise UsageError(problems)
    return prices


def _prices(data: Any, path: str, problems: list[Problem]) -> Iterator[OfferPrice]:
    if isinstance(data, dict) and isinstance(data.get("PriceList"), list):  # get-products output
        for number, entry in enumerate(data["PriceList"], 1):
            if isinstance(entry, str):
                try:
                    entry = json.loads(entry, parse_float=Decimal, parse_int=Decimal)
                except ValueError:
                    entry = None
            product = entry.get("product") if isinstance(entry, dict) else None
            if not isinstance(product, dict) or not isinstance(product.get("sku"), str):
                problems.append(Problem(f"PriceList entry {number}: expected a product with a sku", source=path))
                continue
            offer = str(entry.get("serviceCode") or product.get("attributes", {}).get("servicecode", ""))
            terms = (entry.get("terms") or {}).get(ON_DEMAND, {})
            yield from _sku_prices(path, offer, str(entry.get("version", "")), product, terms, problems)
        return
    if not isinstance(data, dict) or not isinstance(data.get("products"), dict) or "offerCode" not in data:
        problems.append(Problem("not an offer file: expected offerCode, products and terms (AWS Price List JSON)", source=path))
        return
    offer, version = str(data["offerCode"]), str(data.get("version", ""))
    on_demand = (data.get("terms") or {}).get(ON_DEMAND) or {}
    for sku, product in data["products"].items():
        if not isinstance(product, dict):
            problems.append(Problem(f"SKU {sku}: expected a product object", source=path))
            continue
        yield from _sku_prices(path, offer, version, {"sku": sku, **product}, on_demand.get(sku) or {}, problems)


def _sku_prices(
    path: str, offer: str, version: str, product: dict[str, Any], terms: Any, problems: list[Problem]
) -> Iterator[OfferPrice]:
    sku = str(product["sku"])
    attributes = {str(k): str(v) for k, v in (product.get("attributes") or {}).items() if v is not None}
    if not isinstance(terms, dict):
        problems.append(Problem(f"SKU {sku}: expected its terms as an object", source=path))
        return
    for term in terms.values():
        if not isinstance(term, dict):
            problems.append(Problem(f"SKU {sku}: expected a term object", source=path))
            continue
        effective = _date(term.get("effectiveDate"))
        if effective is None:
            problems.append(Problem(f"SKU {sku}: effectiveDate {term.get('effectiveDate')!r} is not a date", source=path))
            continue
        for rate_code, dimension in (term.get("priceDimensions") or {}).items():
            price = _price(dimension)
            if price is None:
                problems.append(Problem(f"SKU {sku}: rate {rate_code}: expected pricePerUnit USD as a decimal", source=path))
                continue
            begin = str(dimension.get("beginRange", dimension.get("startingRange", "0")))
            end = str(dimension.get("endRange", dimension.get("endingRange", "Inf")))
            yield OfferPrice(
                path, offer, version, sku, attributes, effective, str(rate_code),
                str(dimension.get("description", "")), str(dimension.get("unit", "")), price,
                ranged=(begin, end) != ("0", "Inf"),
            )


def _date(text: Any) -> datetime.date | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _price(dimension: Any) -> Decimal | None:
    usd = dimension.get("pricePerUnit", {}).get("USD") if isinstance(dimension, dict) else None
    if not isinstance(usd, str):
        return None
    try:
        price = Decimal(usd)
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None
