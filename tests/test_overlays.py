"""Overlays: a customer's rates layered on a ruleset (`--overlay`, `overlays = [...]`,
`load(..., overlays=[...])`), as a user meets them: bills, explanations, messages, exit codes."""

from __future__ import annotations

import csv
import datetime
import io
import json
import pickle
import re
import shutil
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bedrock_rules
from bedrock_rules.checker import check
from conftest import ROOT, run_cli

ACME = ROOT / "examples" / "overlays" / "acme.rules"
ERRORS_MD = ROOT / "docs" / "errors.md"

USAGE = """\
usage:
  - name: sonnet
    kind: text
    model: claude-3.5-sonnet
    region: us-east-1
    at: 2026-03-15
    input_tokens: 10000
    output_tokens: 2000
  - name: haiku batch
    kind: text
    model: claude-3-haiku
    region: us-east-1
    mode: batch
    at: 2026-03-15
    input_tokens: 100000
    output_tokens: 20000
  - name: haiku in july
    kind: text
    model: claude-3-haiku
    region: us-east-1
    at: 2026-07-01
    input_tokens: 100000
    output_tokens: 20000
"""


@pytest.fixture
def acme(in_tmp):
    shutil.copy(ACME, in_tmp / "acme.rules")
    (in_tmp / "usage.yaml").write_text(USAGE, encoding="utf-8")
    return in_tmp


def test_eval_table_shows_the_list_rate_the_rate_charged_and_both_rules(acme):
    run = run_cli("eval", "usage.yaml", "--overlay", "acme.rules")
    assert run.code == 0, run.err
    assert run.ruleset == "ruleset: bedrock (bundled); overlays: acme.rules"
    lines = run.out.splitlines()
    assert lines[0].split() == ["item", "charge", "quantity", "list", "rate", "rate", "amount", "rule"]
    # Sonnet on demand: 20% off the list's 0.003 and 0.015: 10 x 0.0024 = 0.024, 2 x 0.012 = 0.024
    assert lines[2].split() == [
        "1", "sonnet", "(text)", "input_tokens", "10000", "tokens", "0.003", "USD", "per", "1000",
        "0.0024", "USD", "per", "1000", "0.024", "acme.rules:6", "×0.8", "of", "bedrock:anthropic.rules:73", "(from", "2024-07-01)",
    ]
    # Haiku batch: 50% of the fixed 0.0002: 100 x 0.0001 = 0.01; the list's rules are cited after
    # `on`: its batch rule, half its on-demand rate (0.000125)
    assert "0.000125 USD per 1000  0.0001 USD per 1000" in lines[5]
    assert lines[5].endswith(
        "acme.rules:15 ×0.5 of acme.rules:12 on bedrock:anthropic.rules:203 ×0.5 of bedrock:anthropic.rules:75 (from 2024-07-01)"
    )
    # 1 July: the overlay has expired, the list rate is charged and only the list is cited
    assert lines[8].split()[-4:] == ["0.025", "bedrock:anthropic.rules:75", "(from", "2024-07-01)"]
    assert "overlay: Acme Corp: negotiated rates" in lines
    # 0.048 + 0.02 + (100 x 0.00025 + 20 x 0.00125 = 0.05) = 0.118
    assert lines[-1] == "total: 0.118 USD"


def test_eval_json_cites_the_overlay_rule_and_the_list_rule(acme):
    run = run_cli("eval", "usage.yaml", "--overlay", "acme.rules", "--format", "json")
    assert run.code == 0, run.err
    bill = json.loads(run.out)
    assert bill["overlays"] == ["Acme Corp: negotiated rates"]
    sonnet_input, _ = bill["items"][0]["charges"]
    listed = "text/input_tokens[region in us-east-1, us-west-2; model = claude-3.5-sonnet; from 2024-07-01]"
    own = listed[:-1] + '; overlay "Acme Corp: negotiated rates": by -20% until 2026-06-30]'
    assert {k: sonnet_input[k] for k in ("id", "rate", "list_rate", "list_id", "basis")} == {
        "id": own,
        "rate": "0.0024",
        "list_rate": "0.003",
        "list_id": listed,
        "basis": [{"id": own, "factor": "0.8"}, {"id": listed, "rate": "0.003"}],
    }
    haiku_batch_input, _ = bill["items"][1]["charges"]
    # the list's id for Claude 3 Haiku on demand, and the overlay's fixed rate
    fixed = (
        "text/input_tokens[region in us-east-1, us-west-2; model = claude-3-haiku; from 2024-07-01; "
        'overlay "Acme Corp: negotiated rates": at 0.0002 per 1000 until 2026-06-30]'
    )
    assert haiku_batch_input["basis"][-1] == {"id": fixed, "rate": "0.0002"}
    july_input, _ = bill["items"][2]["charges"]
    assert july_input["rate"] == july_input["list_rate"] == "0.00025"
    assert "list_id" not in july_input and "overlay" not in july_input["id"]


def test_a_bill_without_overlays_has_no_overlay_fields(acme):
    (acme / "acme.rules").unlink()  # a rule file beside the usage would be taken for a ruleset
    bill = json.loads(run_cli("eval", "usage.yaml", "--format", "json").out)
    assert "overlays" not in bill
    assert not any("list_rate" in c for item in bill["items"] for c in item["charges"])


def test_explain_shows_the_overlay_arithmetic_and_the_list_rate(acme):
    run = run_cli("explain", "usage.yaml", "--overlay", "acme.rules")
    assert run.code == 0, run.err
    assert "    overlay: rate 0.0024 = 0.003 × 0.8 (by -20%)\n    list rate 0.003 (bedrock:anthropic.rules:73)\n" in run.out
    assert (
        "    overlay: rate 0.0001 = 0.0002 × 0.5 (mode = batch at 0.5 of on_demand)\n"
        "    overlay: rate 0.0002, fixed (acme.rules:12)\n"
        "    list rate 0.000125 (bedrock:anthropic.rules:203)\n"
    ) in run.out
    assert "    6 | adjust text by -20% when provider = anthropic\n" in run.out


def test_explain_json_gives_the_steps_and_every_rule_involved(acme):
    run = run_cli("explain", "usage.yaml", "--overlay", "acme.rules", "--format", "json")  # checked against its schema
    assert run.code == 0, run.err
    charge = json.loads(run.out)["items"][1]["charges"][0]
    assert charge["steps"] == [
        "overlay: rate 0.0001 = 0.0002 × 0.5 (mode = batch at 0.5 of on_demand)",
        "overlay: rate 0.0002, fixed (acme.rules:12)",
        "list rate 0.000125 (bedrock:anthropic.rules:203)",
    ]
    # The overlay's fixed rate, then the list's own rules for the charge: its batch rule and its row.
    assert [[line["line"] for line in quote] for quote in charge["involved"]] == [[9, 10, 12], [203], [70, 71, 75]]
    assert charge["involved"][1][0]["text"].startswith("relative text mode = batch at 0.5 of on_demand when model in claude-3-haiku")


def test_snapshot_says_how_to_accept_the_bills_with_the_overlay(acme):
    (acme / "bills").mkdir()
    shutil.move(acme / "usage.yaml", acme / "bills" / "usage.yaml")
    run = run_cli("snapshot", "bills", "--overlay", "acme.rules")
    assert run.code == 1
    assert "bedrock-rules snapshot bills --overlay acme.rules --update" in run.out
    assert run_cli("snapshot", "bills", "--overlay", "acme.rules", "--update").code == 0
    stored = json.loads((acme / "bills" / "usage.bill.json").read_text(encoding="utf-8"))
    assert stored["overlays"] == ["Acme Corp: negotiated rates"]
    assert run_cli("snapshot", "bills", "--overlay", "acme.rules").code == 0
    (acme / "acme.rules").unlink()  # beside the usage it would be taken for a ruleset
    assert run_cli("snapshot", "bills").code == 1  # at list prices the stored bills differ


def test_the_acme_examples_pass_before_and_after_expiry(acme):
    run = run_cli("test", "--overlay", "acme.rules")
    assert run.code == 0, run.out
    assert "PASS  acme.rules:17  Acme in March 2026: Claude 3.5 Sonnet and Claude 3 Haiku, on demand and batch\n" in run.out
    assert "PASS  acme.rules:42  Expiry: the last second of the contract, then list prices again\n" in run.out


TINY = """\
currency USD
provider p "P"
  model a "A"
  model b "B"
end
kind text
  model: model
  input_tokens: count = 0 unit tokens
end
prices text
| model | input_tokens per 1000 |
|-------|-----------------------|
| a     | 0.002                 |
| b     | 0.004                 |
example "a at list" expect 0.002
  item text
    model: a
    input_tokens: 1000
end
"""

DEAL = """\
overlay "Deal"
adjust text by -50%
example "b under the deal: 1000 / 1000 x (0.004 x 0.5 = 0.002)" expect 0.002
  item text
    model: b
    input_tokens: 1000
end
"""


def test_coverage_counts_a_list_rule_an_overlay_example_priced_through(in_tmp):
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "tiny.rules").write_text(TINY, encoding="utf-8")
    (in_tmp / "deal.rules").write_text(DEAL, encoding="utf-8")
    alone = run_cli("test", "--rules", "rules", "--coverage")
    assert "coverage: 1 of 2 price rules exercised by examples (50.0%)" in alone.out
    # b's row is the list's rule still, priced through the overlay by the overlay's example
    layered = run_cli("test", "--rules", "rules", "--overlay", "deal.rules", "--coverage")
    assert layered.code == 0, layered.out
    assert "coverage: 2 of 2 price rules exercised by examples (100.0%)" in layered.out


def test_an_overlay_example_that_expects_the_list_price_fails(acme):
    text = (acme / "acme.rules").read_text(encoding="utf-8").replace("expect 0.132", "expect 0.166")
    (acme / "acme.rules").write_text(text, encoding="utf-8")
    run = run_cli("test", "--overlay", "acme.rules")
    assert run.code == 1
    assert "FAIL  acme.rules:17" in run.out
    assert "      expected 0.166, got 0.132\n" in run.out


def test_undated_usage_under_a_dated_overlay_is_refused_naming_at(in_tmp):
    (in_tmp / "u.yaml").write_text("usage:\n  - {kind: text, model: claude-3-haiku, region: us-east-1, input_tokens: 1000}\n")
    run = run_cli("eval", "u.yaml", "--overlay", str(ACME))
    assert run.code == 2
    assert "error[BU205]: text usage is priced differently by date" in run.err
    assert "--at DATE" in run.err
    priced = run_cli("eval", "u.yaml", "--overlay", str(ACME), "--at", "2026-03-01", "--format", "json")
    assert json.loads(priced.out)["total"] == "0.0002"  # 1000 / 1000 x 0.0002, the fixed rate


def test_two_rules_neither_more_specific_are_refused_at_load_with_both_places(in_tmp):
    (in_tmp / "deal.rules").write_text(
        'overlay "Deal"\nadjust text by -20% when provider = anthropic\nadjust text by -10% when mode = batch\n',
        encoding="utf-8",
    )
    (in_tmp / "u.yaml").write_text("usage: []\n")
    run = run_cli("eval", "u.yaml", "--overlay", "deal.rules")
    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith(
        "deal.rules:3:1: error[BR221]: the overlay rules at deal.rules:2:1 and deal.rules:3:1 both apply to text usage "
        "selected by mode, provider, and neither is more specific"
    )


def test_check_reports_an_overlay_rule_that_matches_nothing(in_tmp):
    (in_tmp / "typo.rules").write_text(
        'overlay "Typo"\nadjust text by -20% when provider = anthropic\n'
        "adjust text by -10% when model = titan-text-express and mode = batch\n",
        encoding="utf-8",
    )
    run = run_cli("check", "--overlay", "typo.rules")
    assert run.code == 1
    findings = re.findall(r"^(\S+): error\[(BR\d+)\]", run.out, flags=re.M)
    assert findings == [("typo.rules:3:1", "BR315")]
    assert "this overlay rule (by -10%) matches nothing the list prices for text" in run.out
    (in_tmp / "typo.rules").unlink()
    assert run_cli("check", "--overlay", str(ACME)).code == 0


def test_an_overlay_file_without_its_header_and_a_missing_one_are_refused(in_tmp):
    (in_tmp / "plain.rules").write_text("adjust text by -10%\n", encoding="utf-8")
    run = run_cli("check", "--overlay", "plain.rules", "--overlay", "missing.rules")
    assert run.code == 2
    assert "plain.rules:1:1: error[BR224]: an overlay file starts with its header" in run.out
    assert "missing.rules:1:1: error[BR001]: no such rule file or folder" in run.out


def test_diff_across_the_expiry_lists_every_changed_charge(acme):
    (acme / "u.yaml").write_text(
        "usage:\n  - {kind: text, model: claude-3.5-sonnet, region: us-east-1, input_tokens: 10000}\n", encoding="utf-8"
    )
    run = run_cli("diff", "--at-before", "2026-06-30", "--at-after", "2026-07-01", "--overlay", "acme.rules", "u.yaml", "--format", "json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    # 10 x 0.0024 = 0.024 on the contract's last day, 10 x 0.003 = 0.03 the day after
    assert (data["total"]["old"], data["total"]["new"]) == ("0.024", "0.03")
    assert data["dates"] == {"before": "2026-06-30", "after": "2026-07-01"}


def _log_record(timestamp: str, request: str) -> str:
    """One model invocation log record, as Bedrock writes it (see docs/logs.md)."""
    return json.dumps({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": timestamp, "accountId": "111122223333",
        "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/worker"}, "region": "us-east-1", "requestId": request,
        "operation": "InvokeModel", "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "input": {"inputContentType": "application/json", "inputBodyJson": {"messages": [{"role": "user", "content": "hi"}]},
                  "inputTokenCount": 100000},
        "output": {"outputContentType": "application/json", "outputBodyJson": {"content": []}, "outputTokenCount": 20000},
    }) + "\n"


def test_invocation_logs_are_priced_by_each_records_day(acme):
    (acme / "calls.jsonl").write_text(
        _log_record("2026-06-30T23:59:59Z", "0d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a11")
        + _log_record("2026-07-01T00:00:00Z", "1d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a12"),
        encoding="utf-8",
    )
    run = run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--overlay", "acme.rules", "--format", "json")
    assert run.code == 0, run.err
    totals = json.loads(run.out)
    # 30 June at the fixed rates: 100 x 0.0002 + 20 x 0.001 = 0.04; 1 July at list: 100 x 0.00025 + 20 x 0.00125 = 0.05
    assert totals["total"] == "0.09"
    amounts = sorted((c["amount"], c.get("list_rate"), "overlay" in c["id"]) for g in totals["groups"] for c in g["charges"])
    assert amounts == [("0.02", "0.00025", True), ("0.02", "0.00125", True), ("0.025", None, False), ("0.025", None, False)]


def test_log_totals_as_a_table_and_csv_give_the_list_rate_beside_the_rate_charged(acme):
    (acme / "calls.jsonl").write_text(
        _log_record("2026-06-30T23:59:59Z", "0d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a11")
        + _log_record("2026-07-01T00:00:00Z", "1d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a12"),
        encoding="utf-8",
    )
    table = run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--overlay", "acme.rules")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["charge", "quantity", "list", "rate", "rate", "amount", "rule"]
    # In the order of the rules: 1 July, the list's rate on both sides and only the list cited
    assert lines[2].split() == [
        "input_tokens", "100000", "tokens", "0.00025", "USD", "per", "1000", "0.00025", "USD", "per", "1000", "0.025",
        "bedrock:anthropic.rules:75", "(from", "2024-07-01)",
    ]
    # then 30 June at Acme's fixed rate, cited with the list's rule as the bill's table cites it
    assert lines[4].split() == [
        "input_tokens", "100000", "tokens", "0.00025", "USD", "per", "1000", "0.0002", "USD", "per", "1000", "0.02",
        "acme.rules:12", "on", "bedrock:anthropic.rules:75", "(from", "2024-07-01)",
    ]
    assert lines[-3:-1] == ["overlay: Acme Corp: negotiated rates", "total: 0.09 USD"]

    rows = list(csv.DictReader(io.StringIO(run_cli(
        "eval", "--input", "invocation-log", "calls.jsonl", "--overlay", "acme.rules", "--format", "csv").out)))
    listed = "text/input_tokens[region in us-east-1, us-west-2; model = claude-3-haiku; from 2024-07-01]"
    inputs = [(row["rate"], row["list_rate"], row["list_id"], row["amount"]) for row in rows if row["what"] == "input_tokens"]
    assert inputs == [("0.00025", "0.00025", "", "0.025"), ("0.0002", "0.00025", listed, "0.02")]
    # Without overlays the columns are as they were
    (acme / "acme.rules").unlink()
    plain = run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--format", "csv")
    assert plain.out.splitlines()[0] == "id,what,quantity,unit,rate,per,amount,items"
    assert "list rate" not in run_cli("eval", "--input", "invocation-log", "calls.jsonl").out


def test_focus_rows_carry_the_list_price_and_the_contracted_one(acme):
    (acme / "acme.rules").rename(acme / "contract.overlay")  # any file name: --overlay names it
    (acme / "june.jsonl").write_text(_log_record("2026-06-30T10:00:00Z", "0d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a11"), encoding="utf-8")
    for source in (["usage.yaml"], ["--input", "invocation-log", "june.jsonl"]):
        period = "2026-03" if source == ["usage.yaml"] else "2026-06"
        if source == ["usage.yaml"]:  # one month's usage
            (acme / "usage.yaml").write_text(USAGE.split("  - name: haiku in july")[0], encoding="utf-8")
        run = run_cli("eval", *source, "--overlay", "contract.overlay", "--format", "focus", "--period", period,
                      "--billing-account", "111122223333")
        assert run.code == 0, run.err
        rows = list(csv.DictReader(io.StringIO(run.out)))
        haiku = next(row for row in rows if row["ConsumedQuantity"] == "100000")
        # On demand (the log) the list's 100 x 0.00025 = 0.025, batch (the usage document) half of it;
        # Acme's fixed 0.0002, halved for batch too
        listed = ("0.0125", "0.000125") if source == ["usage.yaml"] else ("0.025", "0.00025")
        assert (haiku["ListCost"], haiku["ListUnitPrice"]) == listed
        assert haiku["BilledCost"] == haiku["ContractedCost"] == ("0.01" if source == ["usage.yaml"] else "0.02")


def test_pricelist_check_compares_the_list_prices_whatever_the_overlay(in_tmp):
    offer = str(ROOT / "tests" / "pricelist" / "fm-us-east-1.json")
    listed = run_cli("pricelist", "check", offer)
    overlaid = run_cli("pricelist", "check", offer, "--overlay", str(ACME))
    assert (overlaid.code, overlaid.out) == (listed.code, listed.out)
    assert overlaid.err == "bedrock-rules pricelist: the list prices are compared; the overlays are not applied\n"


def test_prices_lists_the_overlay_rules_for_a_model(acme):
    run = run_cli("prices", "claude-3-haiku", "--region", "us-east-1", "--overlay", "acme.rules")
    assert run.code == 0, run.err
    assert re.search(r"text +input_tokens +overlay: 0.0002 USD per 1000 +mode = on_demand and until 2026-06-30 +acme.rules:12", run.out)
    assert re.search(r"text +every quantity +overlay: by -20% +until 2026-06-30 +acme.rules:6", run.out)


# The Python API ----------------------------------------------------------------------------

ITEM = {"kind": "text", "model": "claude-3.5-sonnet", "region": "us-east-1", "input_tokens": 10000, "output_tokens": 2000}


def test_load_takes_overlays_and_a_loaded_ruleset_pickles_with_them():
    rules = bedrock_rules.load(overlays=[ACME])
    bill = rules.evaluate({"usage": [{**ITEM, "at": "2026-03-15"}]})
    assert bill.total == Decimal("0.048")
    copy = pickle.loads(pickle.dumps(rules))
    assert copy.evaluate({"usage": [{**ITEM, "at": "2026-03-15"}]}) == bill


_LIST = bedrock_rules.load()
_ACME = bedrock_rules.load(overlays=[ACME])
_MODELS = ["claude-3.5-sonnet", "claude-3-haiku", "claude-2.1", "llama3-8b-instruct", "mistral-7b-instruct", "titan-text-lite"]


@settings(max_examples=60, deadline=None)
@given(
    models=st.lists(st.sampled_from(_MODELS), min_size=1, max_size=4),
    mode=st.sampled_from(["on_demand", "batch"]),
    tokens=st.integers(0, 10**7),
    day=st.dates(datetime.date(2026, 7, 1), datetime.date(2030, 12, 31)),
)
def test_an_overlay_outside_its_window_changes_nothing(models, mode, tokens, day):
    usage = [
        {"kind": "text", "model": model, "region": "us-west-2", "mode": mode, "at": day.isoformat(),
         "input_tokens": tokens, "output_tokens": tokens // 3}
        for model in models
    ]
    try:
        listed = _LIST.evaluate({"usage": usage})
    except bedrock_rules.UsageError as error:
        with pytest.raises(bedrock_rules.UsageError) as overlaid:
            _ACME.evaluate({"usage": usage})
        assert overlaid.value.render() == error.render()
        return
    overlaid = _ACME.evaluate({"usage": usage})
    # The same bill, line for line; it only names the overlay it was priced under.
    assert attrs.evolve(overlaid, overlays=()) == listed
    assert overlaid.overlays == ("Acme Corp: negotiated rates",)


@settings(max_examples=40, deadline=None)
@given(
    tenths=st.integers(-999, 999).filter(bool),
    models=st.lists(st.sampled_from(_MODELS), min_size=1, max_size=3),
    tokens=st.integers(0, 10**7),
)
def test_an_adjustment_is_the_list_amount_times_one_plus_its_percent(tmp_path_factory, tenths, models, tokens):
    percent = Decimal(tenths).scaleb(-1)  # -99.9% .. +99.9%, in tenths
    sign = "-" if percent < 0 else "+"
    path = tmp_path_factory.mktemp("overlay") / "deal.rules"
    path.write_text(f'overlay "Deal"\nadjust text by {sign}{abs(percent)}%\n', encoding="utf-8")
    usage = [
        {"kind": "text", "model": model, "region": "us-west-2", "input_tokens": tokens, "output_tokens": tokens // 7}
        for model in models
    ]
    try:
        listed = _LIST.evaluate({"usage": usage})
    except bedrock_rules.UsageError:
        return  # a usage the list refuses: an overlay cannot price it (the property above covers refusals)
    overlaid = bedrock_rules.load(overlays=[path]).evaluate({"usage": usage})
    factor = 1 + percent / 100
    for before, after in zip(listed.items, overlaid.items, strict=True):
        for old, new in zip(before.charges, after.charges, strict=True):
            assert new.amount == old.amount * factor  # exact: Decimal, no rounding in these rules
            assert (new.list_rate, new.rate) == (old.rate, old.rate * factor)
    assert overlaid.total == listed.total * factor


# docs/errors.md: each overlay code's wrong snippet gives it, its fixed one gives nothing ---------

_LIST_PRICES = """\
prices image in us-east-1
| model    | images per 1 |
|----------|--------------|
| sdxl-0.8 | 0.018        |
| sdxl-1.0 | 0.04         |
"""


def _overlay_sections() -> dict[str, list[str]]:
    text = ERRORS_MD.read_text(encoding="utf-8")
    parts = re.split(r"^### (BR\d+)", text.partition("\n## Usage documents")[0], flags=re.M)
    blocks = {code: re.findall(r"```overlay\n(.*?)```", body, flags=re.S) for code, body in zip(parts[1::2], parts[2::2], strict=True)}
    return {code: found for code, found in blocks.items() if found}


def test_every_overlay_code_has_a_documented_snippet():
    assert set(_overlay_sections()) == {"BR221", "BR222", "BR223", "BR224", "BR315"}


@pytest.mark.parametrize("code", sorted(_overlay_sections()))
def test_the_documented_overlay_snippets_do_what_they_say(code, in_tmp):
    prelude = re.split(r"^## ", ERRORS_MD.read_text(encoding="utf-8"), maxsplit=1, flags=re.M)[0]
    rules = in_tmp / "rules"
    rules.mkdir()
    (rules / "prelude.rules").write_text(re.findall(r"```rules\n(.*?)```", prelude, flags=re.S)[0], encoding="utf-8")
    (rules / "prices.rules").write_text(_LIST_PRICES, encoding="utf-8")
    wrong, fixed = _overlay_sections()[code]
    (in_tmp / "wrong.rules").write_text(wrong, encoding="utf-8")
    (in_tmp / "fixed.rules").write_text(fixed, encoding="utf-8")
    report = check("rules", ["wrong.rules"])
    assert code in {f.code for f in report.findings}, "\n".join(f.render() for f in report.findings)
    report = check("rules", ["fixed.rules"])
    assert report.loaded and report.findings == (), "\n".join(f.render() for f in report.findings)


PERIODIC_RULES = ROOT / "tests" / "periods" / "rules"


def test_an_overlay_rate_for_a_monthly_tier_set_is_refused_not_left_out(in_tmp):
    # The month's tier lines are priced from the list's tier set: an adjusted rate could not
    # reach them, so the usage is refused with the reason instead of billed at the list's tiers.
    (in_tmp / "deal.rules").write_text('overlay "Deal"\nadjust text by -20% when model = claude-3-haiku\n', encoding="utf-8")
    (in_tmp / "u.yaml").write_text(
        "usage:\n  - {kind: text, model: claude-3-haiku, region: us-west-2, input_tokens: 1500, at: 2026-03-02}\n",
        encoding="utf-8",
    )
    listed = run_cli("eval", "u.yaml", "--rules", str(PERIODIC_RULES), "--format", "json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["total"] == "1.25"  # 1000 at 1 per 1000, 500 at 0.5 per 1000
    run = run_cli("eval", "u.yaml", "--rules", str(PERIODIC_RULES), "--overlay", "deal.rules")
    assert run.code == 2
    assert run.out == ""
    assert "error[BU201]: the overlay rule at deal.rules:2 would change a rate the list gives in monthly tiers" in run.err


def test_an_overlay_cannot_hold_a_monthly_table(in_tmp):
    (in_tmp / "deal.rules").write_text(
        'overlay "Deal"\n'
        "prices text in us-west-2 monthly graduated\n"
        "| model          | input_tokens | input_tokens per 1000 |\n"
        "|----------------|--------------|-----------------------|\n"
        "| claude-3-haiku | <= 1000      | 0.8                   |\n"
        "| claude-3-haiku | > 1000       | 0.4                   |\n",
        encoding="utf-8",
    )
    run = run_cli("check", "--rules", str(PERIODIC_RULES), "--overlay", "deal.rules")
    assert run.code == 2
    assert "deal.rules:2:1: error[BR224]: an overlay's table changes rates per unit: monthly tiers belong to the list's" in run.out
