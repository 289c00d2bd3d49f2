"""`eval --format focus`: FOCUS 1.2 rows, checked against the specification's own rules."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bedrock_rules import focus
from conftest import ROOT, SEED_DAY, run_cli

EXAMPLE = str(ROOT / "examples" / "monthly.yaml")
LOG = str(ROOT / "tests" / "logs" / "mixed.jsonl")
UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def focus_rows(*args: str) -> list[dict[str, str]]:
    run = run_cli("eval", "--at", SEED_DAY, *args, "--format", "focus", "--billing-account", "111122223333")
    assert run.code in (0, 3), run.err
    return list(csv.DictReader(io.StringIO(run.out)))


def when(text: str) -> datetime:
    assert UTC.fullmatch(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def check_spec_rules(rows: list[dict[str, str]]) -> None:
    """The FOCUS 1.2 rules a usage row must meet (CUR-FOCUS.md §3.2)."""
    assert rows
    for row in rows:
        assert list(row) == list(focus.COLUMNS)
        for column in focus.MANDATORY_NOT_NULL:
            assert row[column] != "", column
        assert row["ChargeCategory"] == "Usage" and row["ChargeClass"] == "" and row["ChargeFrequency"] == "Usage-Based"
        quantity = Decimal(row["PricingQuantity"])
        # ListUnitPrice x PricingQuantity = ListCost, and the same for the contracted side, exactly.
        assert Decimal(row["ListUnitPrice"]) * quantity == Decimal(row["ListCost"])
        assert Decimal(row["ContractedUnitPrice"]) * quantity == Decimal(row["ContractedCost"])
        assert row["EffectiveCost"] == row["BilledCost"] == row["ContractedCost"] == row["ListCost"]  # no agreement: list
        # UTC, start inclusive and end exclusive: the charge period lies inside the billing period.
        charge = when(row["ChargePeriodStart"]), when(row["ChargePeriodEnd"])
        billing = when(row["BillingPeriodStart"]), when(row["BillingPeriodEnd"])
        assert charge[0] < charge[1] and billing[0] <= charge[0] and charge[1] <= billing[1]
        assert billing[0].day == 1 and billing[1].day == 1 and (billing[1] - billing[0]).days in (28, 29, 30, 31)
        # PricingUnit in UnitFormat: "<whole number> <plural units>" or the units alone.
        assert re.fullmatch(r"(\d+ )?[A-Z][A-Za-z]*( [A-Z][A-Za-z]*)*", row["PricingUnit"]), row["PricingUnit"]
        per = Decimal(row["PricingUnit"].split()[0]) if row["PricingUnit"][0].isdigit() else 1
        assert quantity * per == Decimal(row["ConsumedQuantity"])
        assert row["x_RuleId"] == row["SkuId"] and all(not c.startswith("x_") or c[2:3].isupper() for c in row)


def test_a_usage_document_becomes_one_row_per_charge(rules):
    rows = focus_rows(EXAMPLE, "--period", "2024-07")
    check_spec_rules(rows)
    bill = rules.evaluate_text((ROOT / "examples" / "monthly.yaml").read_text(encoding="utf-8"))
    assert len(rows) == sum(len(item.charges) for item in bill.items)
    assert sum(Decimal(r["ListCost"]) for r in rows) == bill.total
    first = rows[0]
    # Each item is dated (at): its lines are charged over its day, in its month's billing period.
    assert (first["ChargePeriodStart"], first["ChargePeriodEnd"]) == ("2024-07-15T00:00:00Z", "2024-07-16T00:00:00Z")
    assert (first["BillingPeriodStart"], first["BillingPeriodEnd"]) == ("2024-07-01T00:00:00Z", "2024-08-01T00:00:00Z")
    assert focus_rows(EXAMPLE) == rows  # dated items need no --period
    assert (first["PricingQuantity"], first["PricingUnit"], first["ListUnitPrice"]) == ("11", "1000 Tokens", "0.008")
    assert (first["ConsumedQuantity"], first["ConsumedUnit"]) == ("11000", "Tokens")
    assert (first["ServiceName"], first["ServiceCategory"], first["ProviderName"]) == ("Amazon Bedrock", "AI and Machine Learning", "AWS")
    assert (first["RegionId"], first["x_Model"], first["x_RuleId"]) == (
        "us-west-2", "claude-2.1", "text/input_tokens[region in us-east-1, us-west-2; model = claude-2.1; from 2024-07-01]"
    )


def test_invocation_logs_become_one_row_per_day_model_region_and_charge():
    rows = focus_rows("--input", "invocation-log", LOG)
    check_spec_rules(rows)
    for row in rows:
        start, end = when(row["ChargePeriodStart"]), when(row["ChargePeriodEnd"])
        assert (end - start).days == 1 and start.hour == 0
    run = run_cli("eval", "--at", SEED_DAY, "--input", "invocation-log", LOG, "--format", "json")
    assert sum(Decimal(r["ListCost"]) for r in rows) == Decimal(json.loads(run.out)["total"])


UNDATED_RULES = (
    "currency USD\nregion r\nprovider p\n  model m\nend\n"
    "kind text\n  model: model\n  region: region\n  input_tokens: count = 0 unit tokens\nend\n"
    "prices text in any\n| model | input_tokens per 1000 |\n|---|---|\n| m | 2 |\n"
)


@pytest.fixture
def undated(in_tmp) -> Path:
    """Rules that price by no date, and a document of one undated item and one dated item (UTC 2026-01-01)."""
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(UNDATED_RULES, encoding="utf-8")
    item = {"kind": "text", "model": "m", "region": "r", "input_tokens": 5000}
    document = {"usage": [item, {**item, "name": "late", "at": "2025-12-31T23:30:00-02:00"}]}
    (in_tmp / "usage.json").write_text(json.dumps(document), encoding="utf-8")
    return in_tmp


def test_december_ends_in_january(undated):
    run = run_cli("eval", "usage.json", "--rules", "rules", "--format", "focus", "--billing-account", "1", "--period", "2025-12")
    assert run.code == 2  # the dated item's UTC day is 2026-01-01: outside December
    assert "item 2 (late): dated 2026-01-01T01:30:00Z, outside --period 2025-12" in run.err
    (undated / "usage.json").write_text(json.dumps({"usage": [{"kind": "text", "model": "m", "region": "r", "input_tokens": 1}]}))
    run = run_cli("eval", "usage.json", "--rules", "rules", "--format", "focus", "--billing-account", "1", "--period", "2025-12")
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows} == {("2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z")}
    assert {(r["ChargePeriodStart"], r["ChargePeriodEnd"]) for r in rows} == {("2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z")}


def test_an_undated_item_takes_the_period_and_a_dated_one_its_own_day(undated):
    run = run_cli("eval", "usage.json", "--rules", "rules", "--format", "focus", "--billing-account", "1")
    assert (run.code, run.out) == (2, "")
    assert "item 1: FOCUS rows need a charge period and this item has no date: give it `at` or pass --period YYYY-MM" in run.err
    assert "item 2" not in run.err
    run = run_cli("eval", "usage.json", "--rules", "rules", "--format", "focus", "--billing-account", "1", "--period", "2026-01")
    assert run.code == 0, run.err
    rows = list(csv.DictReader(io.StringIO(run.out)))
    check_spec_rules(rows)
    assert [(r["x_Item"], r["ChargePeriodStart"], r["ChargePeriodEnd"]) for r in rows] == [
        ("item 1", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        ("item 2 (late)", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),  # its UTC day
    ]


def test_sku_price_id_stays_when_lines_move_and_changes_with_the_price(in_tmp):
    shutil.copytree(ROOT / "rulesets" / "bedrock", in_tmp / "rules")
    before = focus_rows(EXAMPLE, "--period", "2024-07", "--rules", "rules")
    anthropic = in_tmp / "rules" / "anthropic.rules"
    text = anthropic.read_text(encoding="utf-8")
    anthropic.write_text("# a comment that moves every line\n" + text, encoding="utf-8")
    moved = focus_rows(EXAMPLE, "--period", "2024-07", "--rules", "rules")
    assert moved == before  # every column, SkuPriceId and the rule's id among them
    anthropic.write_text(text.replace("0.008", "0.009", 1), encoding="utf-8")
    repriced = focus_rows(EXAMPLE, "--period", "2024-07", "--rules", "rules")
    assert repriced[0]["SkuPriceId"] != before[0]["SkuPriceId"] and repriced[0]["SkuId"] == before[0]["SkuId"]
    assert repriced[1]["SkuPriceId"] == before[1]["SkuPriceId"]


def test_parquet_holds_the_same_rows_with_decimal_and_utc_types(in_tmp):
    run = run_cli(
        "eval", "--at", SEED_DAY, EXAMPLE, "--format", "focus", "--period", "2024-07", "--billing-account", "1", "--output", "bill.parquet"
    )
    assert (run.code, run.out) == (0, "")
    assert run.err.endswith("FOCUS rows written to bill.parquet\n")
    table = pq.read_table(in_tmp / "bill.parquet")
    assert table.column_names == list(focus.COLUMNS)
    assert str(table.schema.field("ListCost").type).startswith("decimal128(38,")
    assert str(table.schema.field("ChargePeriodStart").type) == "timestamp[ms, tz=UTC]"
    csv_rows = focus_rows(EXAMPLE, "--period", "2024-07")
    data = table.to_pylist()
    assert [Decimal(r["ListCost"]) for r in csv_rows] == [r["ListCost"] for r in data]
    assert [Decimal(r["PricingQuantity"]) for r in csv_rows] == [r["PricingQuantity"] for r in data]
    assert data[0]["ChargePeriodEnd"].isoformat() == "2024-07-16T00:00:00+00:00"  # the item's day
    assert data[0]["ChargeClass"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([EXAMPLE, "--format", "focus", "--billing-account", "1", "--period", "2026-11"],
         "item 5 (reserved capacity): dated 2024-07-15, outside --period 2026-11"),  # every item named, the last too
        ([EXAMPLE, "--format", "focus", "--period", "2026-11"], "FOCUS rows need a BillingAccountId: pass --billing-account ID"),
        ([EXAMPLE, "--format", "focus", "--period", "2026-11", "--billing-account", "1", "--group-by", "model"],
         "--group-by does not apply to --format focus"),
        ([EXAMPLE, "--period", "2026-11"], "--period, --billing-account and --output apply to --format focus only"),
        (["--input", "invocation-log", LOG, "--format", "focus", "--billing-account", "1", "--period", "2026-11"],
         "records of 2024-07-02 are outside --period 2026-11"),
    ],
    ids=["item-outside-period", "no-account", "group-by", "period-without-focus", "day-outside-period"],
)
def test_what_focus_cannot_know_is_refused(args, message):
    run = run_cli("eval", "--at", SEED_DAY, *args)
    assert run.code == 2 and run.out == ""
    assert message in run.err


def test_a_month_that_is_not_one_is_refused(capsys):
    from bedrock_rules.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["eval", "--at", SEED_DAY, EXAMPLE, "--format", "focus", "--period", "November"])
    assert stop.value.code == 2
    assert "expected a month such as 2026-11, got 'November'" in capsys.readouterr().err


def test_the_generic_writer_names_no_provider():
    source = (ROOT / "bedrock_rules" / "focus.py").read_text(encoding="utf-8")
    assert not re.search(r"bedrock|aws|amazon", source, flags=re.I)


def test_a_charged_rate_fills_the_charged_side_and_leaves_the_list_side():
    period = focus.Period.month("2026-11")
    charge = focus.Charge(
        sku_id="text/input_tokens", meter="input_tokens", description="d", quantity=Decimal(11000), unit="tokens",
        per=Decimal(1000), list_rate=Decimal("0.008"), list_cost=Decimal("0.088"), kind="text",
        model="m", region="r", item="item 1", period=period, charged_rate=Decimal("0.006"), charged_cost=Decimal("0.066"),
    )
    provider = dict.fromkeys(focus.PROVIDER_COLUMNS, "x")
    (row,) = focus.rows([charge], provider, "USD", "1")
    assert (row["ListUnitPrice"], row["ListCost"]) == (Decimal("0.008"), Decimal("0.088"))
    assert (row["ContractedUnitPrice"], row["ContractedCost"], row["EffectiveCost"], row["BilledCost"]) == (
        Decimal("0.006"), Decimal("0.066"), Decimal("0.066"), Decimal("0.066"))


def test_a_rounded_cost_leaves_the_unit_price_empty_rather_than_break_the_product():
    charge = focus.Charge(
        sku_id="s", meter="m", description="d", quantity=Decimal(3), unit="images", per=Decimal(1),
        list_rate=Decimal("0.333"), list_cost=Decimal("1.00"), kind="image", model=None, region=None,
        item="item 1", period=focus.Period.month("2026-11"),
    )
    (row,) = focus.rows([charge], dict.fromkeys(focus.PROVIDER_COLUMNS, "x"), "USD", "1")
    assert row["ListUnitPrice"] is None and row["ListCost"] == Decimal("1.00") and row["PricingUnit"] == "Images"
