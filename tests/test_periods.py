"""Period pricing: monthly graduated and volume tiers, per block of N, monthly minimums,
through the command line (bills, messages, exit codes), the totals and the log path."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bedrock_rules
from bedrock_rules import totals as totals_output
from bedrock_rules.bedrock.logs import totals_of_log
from conftest import ROOT, run_cli

EXAMPLES = "examples/periods"
LOG_RULES = ROOT / "tests" / "periods" / "rules"
LOG = ROOT / "tests" / "periods" / "july-august.jsonl"


def _micro(tokens: int, at: str | None, output: int = 0) -> dict:
    item = {"kind": "text", "model": "acme-micro", "region": "us-east-1", "input_tokens": tokens, "output_tokens": output}
    return {**item, "at": at} if at is not None else item


@pytest.fixture
def april(in_tmp):
    """Two Micro items of April 2026 (under the 100 USD commitment), and one of Lite."""
    usage = [
        _micro(800_000_000, "2026-04-03", output=10_000_000),
        _micro(700_000_000, "2026-04-20T08:00:00+02:00"),
        {"kind": "text", "model": "acme-lite", "region": "us-east-1", "input_tokens": 1_500_000, "at": "2026-04-30"},
    ]
    (in_tmp / "april.json").write_text(json.dumps({"usage": usage}), encoding="utf-8")
    return in_tmp / "april.json"


def test_the_bill_shows_each_month_s_tier_lines_and_true_up(april):
    result = run_cli("eval", "--rules", str(ROOT / EXAMPLES), str(april))
    assert result.code == 0, result.err
    out = result.out.replace(str(ROOT) + "/", "")
    # Micro, graduated: 1000000000 / 1000 x 0.00003 = 30; 500000000 / 1000 x 0.00002 = 10.
    # Lite, volume, per block of 1M: 1500000 is in `<= 1000000000`: ceil(1.5) = 2 blocks x 0.03 = 0.06.
    # Output 10000000 / 1000 x 0.00014 = 1.4, on item 1 (and in the minimum's scope: model = acme-micro).
    # Minimum: 100 - (30 + 10 + 1.4) = 58.6. Period 30 + 10 + 0.06 + 58.6 = 98.66; total 1.4 + 98.66 = 100.06.
    assert "1 (text)  input_tokens   800000000 tokens  monthly graduated     → 2026-04  examples/periods/prices.rules:21" in out
    assert "          subtotal                                                     1.4\n" in out
    period = out.split("\n\nperiod 2026-04\n", 1)[1].splitlines()
    rows = [line.split("  ") for line in period[2:]]
    assert [[cell.strip() for cell in row if cell.strip()] for row in rows] == [
        ["input_tokens (model = acme-micro) graduated", "<= 1000000000", "1000000000 tokens", "0.00003 USD per 1000", "30",
         "examples/periods/prices.rules:24"],
        ["> 1000000000", "500000000 tokens", "0.00002 USD per 1000", "10", "examples/periods/prices.rules:25"],
        ["input_tokens (model = acme-lite) volume", "<= 1000000000", "1500000 tokens (2 blocks)",
         "0.03 USD per block of 1000000", "0.06", "examples/periods/prices.rules:33"],
        ["minimum 100 (model = acme-micro)", "charged 41.4", "58.6", "examples/periods/prices.rules:44"],
        ["period total", "98.66"],
        ["total: 100.06 USD"],
    ]


def test_the_json_bill_has_period_lines_and_charges_without_amounts(april):
    result = run_cli("eval", "--rules", str(ROOT / EXAMPLES), str(april), "--format", "json")  # checked against bill.json
    assert result.code == 0, result.err
    bill = json.loads(result.out)
    first = bill["items"][0]["charges"][0]
    assert (first["amount"], first["period"], first["note"]) == (None, "2026-04", "monthly graduated")
    assert bill["items"][0]["subtotal"] == "1.4"  # the output tokens only: the input counts in the period
    (period,) = bill["periods"]
    assert period["month"] == "2026-04" and period["total"] == "98.66"
    assert [(line["tier"], line["quantity"], line["amount"], line.get("blocks")) for line in period["lines"]] == [
        ("<= 1000000000", "1000000000", "30", None),
        ("> 1000000000", "500000000", "10", None),
        ("<= 1000000000", "1500000", "0.06", "2"),
    ]
    assert [(t["minimum"], t["charged"], t["amount"]) for t in period["true_ups"]] == [("100", "41.4", "58.6")]
    assert bill["total"] == "100.06"


def test_an_undated_item_under_monthly_pricing_is_refused_naming_at(in_tmp):
    (in_tmp / "u.json").write_text(json.dumps({"usage": [_micro(1000, None)]}), encoding="utf-8")
    refused = run_cli("eval", "--rules", str(ROOT / EXAMPLES), "u.json")
    assert refused.code == 2 and refused.out == ""
    assert "item 1: error[BU205]: text usage is priced per calendar month (" in refused.err
    assert "give it `at:` or price undated items at one date with `--at DATE`" in refused.err
    # with --at it has a month: 1000 / 1000 x 0.00003 = 0.00003 for March, before the commitment
    dated = run_cli("eval", "--rules", str(ROOT / EXAMPLES), "u.json", "--at", "2026-03-05")
    assert dated.code == 0, dated.err
    assert dated.out.endswith(" 0.00003\ntotal: 0.00003 USD\n")
    assert "<= 1000000000  1000 tokens  0.00003 USD per 1000  0.00003" in dated.out


def test_a_month_past_the_last_tier_is_refused_whole(in_tmp):
    (in_tmp / "rules").mkdir()
    text = (ROOT / EXAMPLES / "prices.rules").read_text(encoding="utf-8").replace("| > 1000000000  | 0.00002               |\n", "")
    (in_tmp / "rules" / "prices.rules").write_text(text, encoding="utf-8")
    (in_tmp / "u.json").write_text(json.dumps({"usage": [_micro(800_000_000, "2026-03-01"), _micro(300_000_000, "2026-03-31")]}))
    refused = run_cli("eval", "--rules", "rules", "u.json")
    assert refused.code == 2 and refused.out == ""
    assert "error[BU206]: period 2026-03: the month's input_tokens (model = acme-micro) total 1100000000, past the last tier" in refused.err


def test_the_worked_examples_pass_and_check_is_clean():
    tested = run_cli("test", "--rules", EXAMPLES, "--coverage")
    assert tested.code == 0, tested.out + tested.err
    assert "coverage: 4 of 4 price rules exercised by examples (100.0%)" in tested.out
    assert tested.out.endswith("4 passed, 0 failed\n")
    checked = run_cli("check", "--rules", EXAMPLES)
    assert checked.code == 0, checked.out


def test_explain_shows_each_item_s_place_in_its_period_and_the_period_arithmetic(april):
    result = run_cli("explain", "--rules", str(ROOT / EXAMPLES), str(april))
    assert result.code == 0, result.err
    lines = result.out.replace(str(ROOT) + "/", "").splitlines()
    assert (
        "  input_tokens: 700000000 tokens, counted in period 2026-04 (monthly graduated, examples/periods/prices.rules:21): "
        "running total 800000000 → 1500000000 (tiers <= 1000000000, > 1000000000)"
    ) in lines
    assert "period 2026-04: 98.66 USD" in lines
    assert (
        "  input_tokens (model = acme-micro) graduated, > 1000000000: 500000000 tokens ÷ 1000 × 0.00002 USD = 10 USD "
        "(examples/periods/prices.rules:25)"
    ) in lines
    assert (
        "  input_tokens (model = acme-lite) volume, <= 1000000000: ceil(1500000 tokens ÷ 1000000) = 2 blocks × 0.03 USD "
        "= 0.06 USD (examples/periods/prices.rules:33)"
    ) in lines
    assert (
        "  minimum 100 (model = acme-micro): 100 − 41.4 charged = 58.6 USD (examples/periods/prices.rules:44: "
        '"a commitment of 100 USD a month of Acme Micro")'
    ) in lines
    assert lines[-1] == "total: 100.06 USD"
    as_json = run_cli("explain", "--rules", str(ROOT / EXAMPLES), str(april), "--format", "json")  # checked against explain.json
    assert json.loads(as_json.out)["periods"][0]["true_up_arithmetic"] == ["100 − 41.4 charged = 58.6 USD"]


def test_the_log_path_sums_each_month_before_pricing_it():
    # July: 800 + 700 = 1500 tokens: 1000 / 1000 x 1 = 1, then 500 / 1000 x 0.5 = 0.25; August 700 / 1000 x 1 = 0.7;
    # output 100 + 100 + 0 = 200 / 1000 x 1 = 0.2. Total 2.15.
    result = run_cli("eval", "--rules", str(LOG_RULES), "--input", "invocation-log", str(LOG))
    assert result.code == 0, result.err
    out = result.out.replace(str(ROOT) + "/", "")
    assert "period 2024-07\n" in out and "period 2024-08\n" in out
    assert "input_tokens (claude-3-haiku) graduated  <= 1000  1000 tokens  1 USD per 1000         1" in out
    assert "> 1000    500 tokens  0.5 USD per 1000    0.25" in out
    assert "total: 2.15 USD\nrecords: 3 read, 3 priced" in out
    grouped = run_cli("eval", "--rules", str(LOG_RULES), "--input", "invocation-log", str(LOG), "--group-by", "model", "--format", "json")
    data = json.loads(grouped.out)  # checked against totals.json
    assert data["total"] == "2.15"
    assert [g["subtotal"] for g in data["groups"]] == ["0.2"]  # the period lines belong to no group
    assert [p["total"] for p in data["periods"]] == ["1.25", "0.7"]


def test_totals_of_a_log_equal_the_itemized_bill():
    rules = bedrock_rules.load(LOG_RULES)
    lines = LOG.read_text(encoding="utf-8").splitlines()
    summed = totals_of_log(rules, lines)
    items = [
        {"kind": "text", "model": "claude-3-haiku", "region": "us-west-2", "input_tokens": n, "output_tokens": o, "at": at}
        for n, o, at in ((800, 100, "2024-07-02T10:00:00Z"), (700, 100, "2024-07-31T23:59:59Z"), (700, 0, "2024-08-01"))
    ]
    bill = rules.evaluate({"usage": items})
    assert summed.total == bill.total == Decimal("2.15")
    assert summed.periods == bill.periods
    assert rules.totals(items).periods == bill.periods
    csv = totals_output.render_csv(summed).splitlines()
    assert csv[3] == (
        "text/input_tokens[region in us-west-2; model = claude-3-haiku],period 2024-07 input_tokens (claude-3-haiku) > 1000,"
        "500,tokens,0.5,1000,0.25,"
    )


# A graduated tier set of random bounds and rates over a month of random items.
_bounds = st.lists(st.integers(1, 10**6), min_size=1, max_size=4, unique=True).map(sorted)
_rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("5"), places=4)


@settings(max_examples=40, deadline=None)
@given(_bounds, st.lists(_rates, min_size=5, max_size=5), st.booleans(), st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_graduated_tiers_over_a_period_equal_the_sum_of_per_tier_amounts(bounds, rates, open_ended, quantities):
    mode_rows = [(f"<= {bound}", rate) for bound, rate in zip(bounds, rates, strict=False)]
    if open_ended:
        mode_rows.append((f"> {bounds[-1]}", rates[len(bounds)]))
    total = sum(quantities)
    if not open_ended and total > bounds[-1]:
        quantities = [min(q, bounds[-1] // len(quantities)) for q in quantities]
        total = sum(quantities)
    rules = _load_tiers("graduated", mode_rows)
    bill = rules.evaluate({"usage": [{"kind": "run", "units": q, "at": f"2026-03-{day + 1:02d}"} for day, q in enumerate(quantities)]})
    # by hand: each tier prices the part of the month's total between its lower and upper bound, per 100 units
    expected = Decimal(0)
    lower = 0
    for text, rate in mode_rows:
        upper = int(text.split()[1]) if text.startswith("<=") else None
        portion = max(0, (total if upper is None else min(total, upper)) - lower)
        expected += Decimal(portion) * rate / 100
        lower = upper if upper is not None else lower
    assert bill.total == expected
    assert sum(line.amount for period in bill.periods for line in period.lines) == expected
    assert sum(line.quantity for period in bill.periods for line in period.lines) == total
    assert all(item.subtotal == 0 for item in bill.items)  # an item's units count in the period only
    assert rules.totals([{"kind": "run", "units": q, "at": "2026-03-01"} for q in quantities]).total == expected


@settings(max_examples=30, deadline=None)
@given(_bounds, st.lists(_rates, min_size=5, max_size=5), st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_volume_tiers_price_the_whole_month_at_the_tier_its_total_reaches(bounds, rates, quantities):
    rows = [(f"<= {bound}", rate) for bound, rate in zip(bounds, rates, strict=False)]
    rows.append((f"> {bounds[-1]}", rates[len(bounds)]))
    rules = _load_tiers("volume", rows)
    bill = rules.evaluate({"usage": [{"kind": "run", "units": q, "at": "2026-03-01"} for q in quantities]})
    total = sum(quantities)
    rate = next((r for b, r in zip(bounds, rates, strict=False) if total <= b), rates[len(bounds)])
    assert bill.total == Decimal(total) * rate / 100


def _load_tiers(mode: str, rows: list[tuple[str, Decimal]]) -> bedrock_rules.Ruleset:
    table = "\n".join(f"| {band} | {rate} |" for band, rate in rows)
    with tempfile.TemporaryDirectory(prefix="periods-") as folder:  # hypothesis calls it many times: none is left behind
        (Path(folder) / "main.rules").write_text(
            "currency USD\n"
            "kind run\n  units: count = 0 unit units\nend\n"
            f"prices run monthly {mode}\n| units | units per 100 |\n|---|---|\n{table}\n",
            encoding="utf-8",
        )
        return bedrock_rules.load(folder)


def test_diff_names_the_tier_line_and_the_true_up_a_rate_change_moves(april, in_tmp):
    for side in ("old", "new"):
        (in_tmp / side).mkdir()
        text = (ROOT / EXAMPLES / "prices.rules").read_text(encoding="utf-8")
        if side == "new":
            text = text.replace("| > 1000000000  | 0.00002               |", "| > 1000000000  | 0.000025              |")
        (in_tmp / side / "prices.rules").write_text(text, encoding="utf-8")
    run = run_cli("diff", "old", "new", str(april), "--format", "json")  # checked against diff.json
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [(r["change"], r["old"]["price"], r["new"]["price"]) for r in data["rules"]] == [(
        "changed",
        "monthly graduated: <= 1000000000 at 0.00003, > 1000000000 at 0.00002 USD per 1000",
        "monthly graduated: <= 1000000000 at 0.00003, > 1000000000 at 0.000025 USD per 1000",
    )]
    # 500000000 / 1000 x 0.000025 = 12.5 (was 10); the true-up falls by as much: 100 - 43.9 = 56.1; the total stays 100.06
    (document,) = data["documents"]
    assert document["delta"] == "0"
    assert [(c["item"], c["name"], c["what"], c["old"], c["new"]) for c in document["charges"]] == [
        (0, "period 2026-04", "input_tokens (model = acme-micro) > 1000000000", "10", "12.5"),
        (0, "period 2026-04", "true-up of minimum 100 (model = acme-micro)", "58.6", "56.1"),
    ]


def test_the_html_page_lists_the_period_lines_so_its_table_adds_up_to_the_total(april):
    page = run_cli("eval", "--rules", str(ROOT / EXAMPLES), str(april), "--format", "html")
    assert page.code == 0, page.err
    assert 'amounting to <span class="shown-amount">100.06</span> USD' in page.out
    assert "<td>period 2026-04</td>" in page.out or '<td class="short">period 2026-04</td>' in page.out
    logs = run_cli("eval", "--rules", str(LOG_RULES), "--input", "invocation-log", str(LOG), "--format", "html")
    assert logs.code == 0, logs.err
    assert 'amounting to <span class="shown-amount">2.15</span> USD' in logs.out


def test_focus_rows_are_refused_rather_than_short_of_the_period_lines(april):
    account = ("--billing-account", "111122223333")
    run = run_cli("eval", "--rules", str(ROOT / EXAMPLES), str(april), "--format", "focus", "--period", "2026-04", *account)
    assert run.code == 2 and run.out == ""
    assert "the month's tier lines and true-ups would be left out, so no FOCUS rows are written" in run.err
    logs = run_cli("eval", "--rules", str(LOG_RULES), "--input", "invocation-log", str(LOG), "--format", "focus", *account)
    assert logs.code == 2 and "no FOCUS rows are written" in logs.err


def test_snapshot_names_the_period_lines_a_rate_change_moves(april, in_tmp):
    (in_tmp / "rules").mkdir()
    text = (ROOT / EXAMPLES / "prices.rules").read_text(encoding="utf-8")
    (in_tmp / "rules" / "prices.rules").write_text(text, encoding="utf-8")
    (in_tmp / "usage").mkdir()
    april.rename(in_tmp / "usage" / "april.json")
    assert run_cli("snapshot", "usage", "--rules", "rules", "--update").code == 0
    (in_tmp / "rules" / "prices.rules").write_text(
        text.replace("| > 1000000000  | 0.00002               |", "| > 1000000000  | 0.000025              |"), encoding="utf-8"
    )
    changed = run_cli("snapshot", "usage", "--rules", "rules")
    assert changed.code == 1
    assert "  period 2026-04 input_tokens (model = acme-micro) > 1000000000: 10 -> 12.5\n" in changed.out
    assert "  period 2026-04 true-up of minimum 100 (model = acme-micro): 58.6 -> 56.1\n" in changed.out


def test_reconcile_refuses_rather_than_compare_a_side_short_of_its_period_lines():
    run = run_cli("reconcile", "--rules", str(LOG_RULES), "--cur", str(ROOT / "tests" / "reconcile" / "cur-july-2.csv"), str(LOG))
    assert run.code == 2 and run.out == ""
    assert "a month's tier lines and true-ups do not have: nothing was compared" in run.err


def test_tiers_over_a_month_of_huge_quantities_stay_exact():
    # 35-digit quantities: the default decimal context (28 digits) would round the tier portions
    big = 10**34 + 7
    rules = _load_tiers("graduated", [("<= 3", Decimal("1")), ("> 3", Decimal("0.0001"))])
    bill = rules.evaluate({"usage": [{"kind": "run", "units": big, "at": "2026-03-01"}, {"kind": "run", "units": big, "at": "2026-03-09"}]})
    # by hand: 3 / 100 x 1 = 0.03; 2 x (10^34 + 7) - 3 = 20000000000000000000000000000000011 units past the first
    # tier, / 100 x 0.0001 = 20000000000000000000000000000.000011; total 20000000000000000000000000000.030011
    assert [line.quantity for line in bill.periods[0].lines] == [3, 2 * big - 3]
    assert bill.total == Decimal("20000000000000000000000000000.030011")


def test_a_block_size_that_divides_into_no_finite_decimal_still_counts_whole_blocks(in_tmp):
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(
        "currency USD\nkind run\n  units: count = 0 unit units\nend\n"
        "prices run\n| units per block of 3 |\n|---|\n| 0.5 |\n", encoding="utf-8"
    )
    rules = bedrock_rules.load(in_tmp / "rules")
    # ceil(1000001 / 3) = 333334 blocks x 0.5 = 166667; ceil(3 / 3) = 1 x 0.5; 0 units, 0 blocks
    bill = rules.evaluate({"usage": [{"kind": "run", "units": 1000001}, {"kind": "run", "units": 3}, {"kind": "run", "units": 0}]})
    assert [item.subtotal for item in bill.items] == [Decimal("166667"), Decimal("0.5"), 0]
    assert rules.totals([{"kind": "run", "units": 1000001}, {"kind": "run", "units": 3}]).total == Decimal("166667.5")
    explained = run_cli("explain", "--rules", "rules", "--at", "2026-01-01", "-", stdin='{"usage": [{"kind": "run", "units": 1000001}]}')
    assert "  units: ceil(1000001 units ÷ 3) = 333334 blocks × 0.5 USD = 166667 USD" in explained.out.splitlines()


def test_graduated_bands_may_end_between_whole_units():
    # a band of a count may end at 1.5: a month of 1 + 2 = 3 units is 1.5 in each tier, per 100 units:
    # 1.5 / 100 x 2 = 0.03; 1.5 / 100 x 1 = 0.015; total 0.045
    rules = _load_tiers("graduated", [("<= 1.5", Decimal("2")), ("> 1.5", Decimal("1"))])
    bill = rules.evaluate({"usage": [{"kind": "run", "units": 1, "at": "2026-03-01"}, {"kind": "run", "units": 2, "at": "2026-03-02"}]})
    assert [(line.tier, line.quantity, line.amount) for line in bill.periods[0].lines] == [
        ("<= 1.5", Decimal("1.5"), Decimal("0.03")), ("> 1.5", Decimal("1.5"), Decimal("0.015")),
    ]
    assert bill.total == Decimal("0.045")


def test_the_documents_of_one_eval_share_their_months(in_tmp):
    # 800000000 in one document, 700000000 in the other, both March: one period, 30 + 10 = 40 (not 24 + 21)
    for name, tokens, day in (("a.json", 800_000_000, "2026-03-03"), ("b.json", 700_000_000, "2026-03-20")):
        (in_tmp / name).write_text(json.dumps({"usage": [_micro(tokens, day)]}), encoding="utf-8")
    bill = json.loads(run_cli("eval", "--rules", str(ROOT / EXAMPLES), "a.json", "b.json", "--format", "json").out)
    assert [item["document"] for item in bill["items"]] == ["a.json", "b.json"]
    assert [(p["month"], p["total"]) for p in bill["periods"]] == [("2026-03", "40")]
    grouped = run_cli("eval", "--rules", str(ROOT / EXAMPLES), "a.json", "b.json", "--group-by", "model")
    assert grouped.out.splitlines()[-3:] == [
        "period total                                                                                             40",
        "total: 40 USD",
        "items: 2 read, 2 priced",
    ]


def test_the_streamed_bill_is_byte_for_byte_the_bill_with_its_periods(april):
    rules = bedrock_rules.load(ROOT / EXAMPLES)
    document = json.loads(april.read_text(encoding="utf-8"))
    streamed = run_cli("eval", "--rules", str(ROOT / EXAMPLES), str(april), "--format", "json")
    assert streamed.code == 0, streamed.err
    assert streamed.out == bedrock_rules.dump(rules.evaluate(document))
    assert '"periods": [' in streamed.out
    table = run_cli("eval", "--rules", str(ROOT / EXAMPLES), str(april))
    assert table.out == bedrock_rules.render_table(rules.evaluate(document))
