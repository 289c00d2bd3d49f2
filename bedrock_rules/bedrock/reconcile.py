"""Reconciling a bill from invocation logs with AWS's own: CUR 2.0 or FOCUS exports (CSV or Parquet).

AWS bills Bedrock per usage type, hour or day; there is no per-request line. So both sides
are summed per day, region, model and quantity (the "dimension") and compared there. A
usage type reads `<region code>-<model billing name>-<token segment>[-qualifiers]`
(`USE1-MODEL-input-tokens`); the three names are data in the rule files
(`billed` on region, model and field lines), never guessed here. A usage type whose names
the rules do not give, or that carries a qualifier (batch, flex, cross-region…) the rules
do not reconcile, is listed as a line the logs cannot explain, never dropped.

Numbers are read as Decimal from the export's text. AWS computes costs as binary
doubles, so costs are compared with a stated tolerance; quantities in pricing units
(`1K tokens`, `1M tokens`) are converted to the rules' units and rounded to whole units.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import attrs

from .. import limits
from .. import model as m
from ..bill import decimal_text
from ..display import align
from ..errors import Problem, UsageError
from ..program import Program
from ..semantics import EXACT
from ..totals import Totals

# The offer codes Bedrock is billed under (CUR-FOCUS.md §1.1: all four, never one).
PRODUCT_CODES = frozenset({"AmazonBedrock", "AmazonBedrockService", "AmazonBedrockFoundationModels", "AmazonBedrockAgentCore"})
USAGE_LINE_TYPES = frozenset({"Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"})
# pricing_unit (CUR) or PricingUnit (FOCUS) -> how many of the rules' units one is.
UNITS = {"1k tokens": Decimal(1000), "1m tokens": Decimal(1_000_000), "tokens": Decimal(1), "1000 tokens": Decimal(1000),
         "1000000 tokens": Decimal(1_000_000)}

CUR_COLUMNS = {"day": "line_item_usage_start_date", "usage_type": "line_item_usage_type", "amount": "line_item_usage_amount",
               "unit": "pricing_unit", "cost": "line_item_unblended_cost", "product": "line_item_product_code"}
FOCUS_COLUMNS = {"day": "ChargePeriodStart", "usage_type": "SkuMeter", "amount": "PricingQuantity", "unit": "PricingUnit",
                 "cost": "BilledCost", "product": "x_ServiceCode"}
# The currency a line is billed in, when the export gives it: a cost in another is not the rules'.
CURRENCY_COLUMNS = ("line_item_currency_code", "BillingCurrency")


@attrs.frozen
class BillingNames:
    """The rules' `billed` names: region codes, model billing names and token segments."""

    regions: Mapping[str, str]
    models: Mapping[str, str]
    dimensions: Mapping[str, str]

    @classmethod
    def of(cls, program: Program) -> BillingNames:
        regions = {code: name for name, region in program.regions.items() for code in region.billed}
        models = {code: str(model.name) for provider in program.providers.values() for model in provider.models for code in model.billed}
        # `model NAME billed CODE` lines, kept apart from the models' declarations.
        models.update(
            (str(code), str(statement.model))
            for rule_file in program.files for statement in rule_file.statements if isinstance(statement, m.ModelBilled)
            for code in statement.names
        )
        dimensions = {
            code: str(field.name)
            for rule_file in program.files for statement in rule_file.statements if isinstance(statement, m.Kind)
            for field in statement.fields for code in field.billed
        }
        return cls(regions, models, dimensions)

    def parse(self, usage_type: str) -> tuple[str, str, str] | str:
        """(region, model, dimension) of a usage type, or why it cannot be read."""
        code, _, rest = usage_type.partition("-")
        region = self.regions.get(code)
        if region is None:
            return f"no region is billed as {code!r}"
        # The longest token segment first: `cache-read-input-token-count` holds `input-token`.
        for segment in sorted(self.dimensions, key=len, reverse=True):
            at = rest.find(f"-{segment}")
            if at <= 0:
                continue
            billed_model, qualifiers = rest[:at], rest[at + 1 + len(segment):]
            model = self.models.get(billed_model)
            if model is None:
                return f"no model is billed as {billed_model!r}"
            if qualifiers:
                return _qualified(qualifiers.lstrip("-"))
            return region, model, self.dimensions[segment]
        return "no quantity is billed under this usage type's token segment"


# What the qualifiers after a usage type's token segment mean (CUR-FOCUS.md §1.4), so a line
# the reconciler leaves out says why. Longest first: `cross-region-global` holds `global`.
QUALIFIERS = {
    "cross-region-global": "global cross-region inference (a `global.` profile)",
    "cross-region-geo": "geographic cross-region inference (a `us.`, `eu.`, … profile)",
    "long-context": "the long-context price (a request past the model's long-context threshold)",
    "latency-optimized": "latency-optimized inference",
    "custom-model": "a custom (fine-tuned or imported) model",
    "global-standard": "the standard tier through a global profile",
    "priority": "the priority service tier",
    "standard": "the standard service tier",
    "batch": "batch inference",
    "flex": "the flex service tier",
}


def _qualified(qualifiers: str) -> str:
    """Why a usage type with qualifiers (`batch`, `cross-region-global-batch`, …) is not reconciled."""
    meanings, rest = [], qualifiers
    while rest:
        known = next((q for q in sorted(QUALIFIERS, key=len, reverse=True) if rest == q or rest.startswith(q + "-")), None)
        if known is None:
            meanings.append(f"{rest!r}, a qualifier this reconciler does not know")
            break
        meanings.append(f"{known!r}: {QUALIFIERS[known]}")
        rest = rest[len(known) + 1:]
    return "priced apart from the plain usage type, and not reconciled: " + "; ".join(meanings)


@attrs.frozen
class Side:
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)

    def plus(self, quantity: Decimal, cost: Decimal) -> Side:
        return Side(EXACT.add(self.quantity, quantity), EXACT.add(self.cost, cost))  # exact: never rounded to 28 digits


@attrs.frozen
class Unexplained:
    source: str
    usage_type: str
    reason: str
    cost: Decimal


@attrs.frozen
class Reconciliation:
    tolerance: Decimal
    rows: tuple[tuple[tuple[str, str, str, str], Side, Side], ...]  # key (day, region, model, dimension), CUR, logs
    unexplained: tuple[Unexplained, ...]
    unpriced_records: int

    def differs(self, cur: Side, logs: Side) -> bool:
        return cur.quantity != logs.quantity or abs(EXACT.subtract(cur.cost, logs.cost)) > self.tolerance

    @property
    def clean(self) -> bool:
        return not self.unexplained and not any(self.differs(c, g) for _, c, g in self.rows)


def read_export(path: str) -> list[dict[str, str]]:
    """A CUR 2.0 or FOCUS export's rows, each value as text (Parquet needs pyarrow)."""
    try:
        if path.endswith(".parquet"):
            try:
                import pyarrow.parquet as pq  # optional dependency: the `parquet` extra
            except ImportError:
                raise UsageError([Problem("reading Parquet needs pyarrow: pip install 'bedrock-rules[parquet]'", source=path)]) from None
            table = pq.read_table(path)
            # Decimal and timestamp cells keep their exact text; a double would print as Python shows it.
            return [{k: "" if v is None else _cell(v) for k, v in row.items()} for row in table.to_pylist()]
        with open(path, encoding="utf-8-sig", newline="") as file:
            return list(csv.DictReader(file))
    except OSError as error:
        raise UsageError([Problem(f"cannot read the billing export: {error.strerror or error}", source=path)]) from None


def _cell(value: object) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    return str(value)


def cur_side(names: BillingNames, exports: Mapping[str, Sequence[Mapping[str, str]]], currency: str
             ) -> tuple[dict[tuple[str, str, str, str], Side], list[Unexplained]]:
    """The billing exports summed per (day, region, model, dimension), and the lines that do not map."""
    sums: dict[tuple[str, str, str, str], Side] = {}
    unexplained: list[Unexplained] = []
    problems: list[Problem] = []
    for source, rows in exports.items():
        if not rows:
            continue
        columns = CUR_COLUMNS if CUR_COLUMNS["usage_type"] in rows[0] else FOCUS_COLUMNS
        missing = [c for key, c in columns.items() if c not in rows[0] and key != "product"]
        if missing:
            problems.append(Problem(f"neither a CUR 2.0 nor a FOCUS export: no column {', '.join(missing)}", source=source))
            continue
        for number, row in enumerate(rows, 2):  # line 1 is the header
            where = f"{source}:{number}"
            if None in row or None in row.values():  # csv gives the cells past the header, or the missing ones, as None
                problems.append(Problem("the row does not have as many cells as the header has columns", source=where))
                continue
            if not _is_bedrock(row, columns):
                continue
            billed_in = next((row[c] for c in CURRENCY_COLUMNS if row.get(c)), currency)
            if billed_in != currency:
                problems.append(Problem(f"billed in {billed_in!r}; the rules price in {currency}", source=where))
                continue
            try:
                amount, cost = Decimal(row[columns["amount"]] or "0"), Decimal(row[columns["cost"]] or "0")
                numbers = amount.is_finite() and cost.is_finite()  # NaN and Infinity are text Decimal reads
            except decimal.InvalidOperation:
                numbers = False
            if not numbers:
                problems.append(Problem("usage amount or cost is not a number", source=where))
                continue
            too_long = limits.number(amount) or limits.number(cost)  # a double AWS writes has far fewer digits
            if too_long:
                problems.append(Problem(f"usage amount or cost: {too_long}", source=where))
                continue
            if not _DAY.match(row[columns["day"]]) or not _is_day(row[columns["day"]][:10]):
                problems.append(Problem(f"the usage start {row[columns['day']]!r} is not a date", source=where))
                continue
            usage_type = row[columns["usage_type"]]
            per = UNITS.get(row[columns["unit"]].strip().lower())
            parsed = names.parse(usage_type)
            if per is None:
                parsed = f"the pricing unit {row[columns['unit']]!r} is not one the reconciler converts"
            if isinstance(parsed, str):
                unexplained.append(Unexplained(where, usage_type, parsed, cost))
                continue
            region, model, dimension = parsed
            assert per is not None  # a line in a unit not converted was listed above
            key = (row[columns["day"]][:10], region, model, dimension)
            sums[key] = sums.get(key, Side()).plus(EXACT.multiply(amount, per), cost)
    if problems:
        raise UsageError(problems)
    # A double's product (11.000000000000002 x 1000) is rounded to whole units.
    return {k: Side(v.quantity.to_integral_value(decimal.ROUND_HALF_EVEN), v.cost) for k, v in sums.items()}, unexplained


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _is_day(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_bedrock(row: Mapping[str, str], columns: Mapping[str, str]) -> bool:
    if columns is CUR_COLUMNS:
        kind = row.get("line_item_line_item_type")
        return row.get(columns["product"]) in PRODUCT_CODES and (kind is None or kind in USAGE_LINE_TYPES)
    code = row.get(columns["product"])
    return code in PRODUCT_CODES if code is not None else "Bedrock" in row.get("ServiceName", "")


def logs_side(totals: Totals) -> dict[tuple[str, str, str, str], Side]:
    """Log totals grouped by day, model and region, per charge."""
    if totals.periods:  # a month's tier lines belong to no day, model or region: a per-day side would be short
        raise UsageError([Problem(
            "these rules price some usage per calendar month (monthly tiers or a minimum); the AWS bill is compared "
            "per day, model and region, which a month's tier lines and true-ups do not have: nothing was compared"
        )])
    at = {key: totals.group_by.index(key) for key in ("day", "region", "model")}
    sums: dict[tuple[str, str, str, str], Side] = {}
    for line in totals.lines:
        key = (line.group[at["day"]], line.group[at["region"]], line.group[at["model"]], line.what)
        sums[key] = sums.get(key, Side()).plus(Decimal(line.quantity), line.amount)
    return sums


def reconcile(program: Program, exports: Mapping[str, Sequence[Mapping[str, str]]], totals: Totals, tolerance: Decimal
              ) -> Reconciliation:
    cur, unexplained = cur_side(BillingNames.of(program), exports, program.currency)
    logs = logs_side(totals)
    keys = sorted(set(cur) | set(logs))
    rows = tuple((key, cur.get(key, Side()), logs.get(key, Side())) for key in keys)
    unpriced = sum(u.count for u in (*totals.unpriced, *totals.malformed))
    return Reconciliation(tolerance, rows, tuple(unexplained), unpriced)


def render_text(result: Reconciliation, currency: str) -> str:
    """Per day, region, model and dimension: both sides and the difference; then what does not map."""
    header = ("day", "region", "model", "dimension", "CUR quantity", "logs quantity", "CUR cost", "logs cost", "difference", "")
    table: list[tuple[str, ...]] = [header]
    for (day, region, model, dimension), cur, logs in result.rows:
        if cur == Side() and logs != Side():
            verdict = "not billed by the CUR"
        elif logs == Side() and cur != Side():
            verdict = "not in the logs"
        else:
            verdict = "differs" if result.differs(cur, logs) else "ok"
        table.append((day, region, model, dimension, decimal_text(cur.quantity), decimal_text(logs.quantity),
                      decimal_text(cur.cost), decimal_text(logs.cost), decimal_text(EXACT.subtract(cur.cost, logs.cost)), verdict))
    out = align(table, right={4, 5, 6, 7, 8}, ruled=True)
    differing = sum(1 for _, c, g in result.rows if result.differs(c, g))
    out.append(f"costs compared with a tolerance of {decimal_text(result.tolerance)} {currency} per line "
               "(AWS computes costs as binary doubles); quantities in the rules' units, CUR amounts rounded to whole units")
    if result.unexplained:
        out.append("")
        out.append(f"CUR lines the logs cannot explain ({len(result.unexplained)}):")
        out.extend(f"  {u.source}  {u.usage_type}  {decimal_text(u.cost)} {currency}: {u.reason}" for u in result.unexplained)
    if result.unpriced_records:
        out.append(f"{result.unpriced_records} log records the rules cannot price are left out (eval lists them)")
    out.append(f"{len(result.rows)} lines compared, {differing} differ, {len(result.unexplained)} CUR lines unexplained")
    return "\n".join(out) + "\n"


def read_exports(paths: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    return {path: read_export(path) for path in paths}
