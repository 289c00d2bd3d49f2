"""`bedrock-rules reconcile`: the bill of invocation logs against AWS's CUR 2.0 or FOCUS export.

tests/reconcile/ holds the fixtures: invocation-log records from tests/logs/mixed.jsonl,
and billing exports written with CUR 2.0's column names and Bedrock usage types of the
shapes AWS uses (CUR-FOCUS.md §1.2, §1.4, §3.3), costs with a binary double's digits.
"""

from __future__ import annotations

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import bedrock_rules
from bedrock_rules.bedrock.reconcile import BillingNames
from conftest import ROOT, run_cli

HERE = ROOT / "tests" / "reconcile"


def rows_of(out: str) -> dict[tuple[str, ...], list[str]]:
    """The comparison table: (day, region, model, dimension) -> the other cells."""
    lines = out.splitlines()
    table = {}
    for line in lines[2:]:
        if not line.startswith("20"):
            break
        cells = line.split()
        table[tuple(cells[:4])] = [cells[4], cells[5], cells[6], cells[7], cells[8], " ".join(cells[9:])]
    return table


def test_a_matching_export_reconciles_within_the_stated_tolerance():
    run = run_cli("reconcile", "--cur", str(HERE / "cur-claude-2.1.csv"), str(HERE / "claude-2.1.jsonl"))
    assert run.code == 0, run.out + run.err
    assert run.ruleset == "ruleset: bedrock (bundled)"
    assert rows_of(run.out) == {
        # CUR's usage amount is in 1K tokens; its cost is a double's text, read exactly.
        ("2024-07-02", "us-west-2", "claude-2.1", "input_tokens"): ["11000", "11000", "0.08800000000000001", "0.088",
                                                                   "0.00000000000000001", "ok"],
        ("2024-07-02", "us-west-2", "claude-2.1", "output_tokens"): ["4000", "4000", "0.096", "0.096", "0", "ok"],
    }
    assert "costs compared with a tolerance of 0.000001 USD per line" in run.out
    assert run.out.endswith("2 lines compared, 0 differ, 0 CUR lines unexplained\n")  # the EC2 line is not Bedrock's


def test_differences_unexplained_lines_and_unbilled_logs_are_listed_and_exit_1():
    run = run_cli("reconcile", "--cur", str(HERE / "cur-july-2.csv"), str(HERE / "july-2.jsonl"))
    assert run.code == 1
    table = rows_of(run.out)
    assert table[("2024-07-02", "us-west-2", "claude-3-haiku", "output_tokens")] == [
        "300", "281", "0.000375", "0.00035125", "0.00002375", "differs"]
    assert table[("2024-07-02", "us-west-2", "claude-3-haiku", "input_tokens")][-1] == "ok"
    assert table[("2024-07-02", "us-east-1", "embed-english", "input_tokens")][-1] == "not billed by the CUR"
    assert table[("2024-07-02", "us-east-1", "sdxl-1.0", "images")][-1] == "not billed by the CUR"
    cur = HERE / "cur-july-2.csv"
    batch = ("USW2-Claude3Haiku-input-tokens-batch  0.00025 USD: "
             "priced apart from the plain usage type, and not reconciled: 'batch': batch inference")
    assert f"  {cur}:6  {batch}\n" in run.out
    assert f"  {cur}:7  USE1-Claude4.6Sonnet-input-tokens  0.069 USD: no model is billed as 'Claude4.6Sonnet'\n" in run.out
    assert run.out.endswith("6 lines compared, 3 differ, 2 CUR lines unexplained\n")


def test_a_tolerance_of_zero_counts_the_double_s_last_digit():
    run = run_cli("reconcile", "--cur", str(HERE / "cur-claude-2.1.csv"), str(HERE / "claude-2.1.jsonl"), "--tolerance", "0")
    assert run.code == 1
    assert rows_of(run.out)[("2024-07-02", "us-west-2", "claude-2.1", "input_tokens")][-1] == "differs"


def test_aws_focus_export_reconciles_as_the_cur_does():
    focus = run_cli("reconcile", "--cur", str(HERE / "focus-claude-2.1.csv"), str(HERE / "claude-2.1.jsonl"))
    cur = run_cli("reconcile", "--cur", str(HERE / "cur-claude-2.1.csv"), str(HERE / "claude-2.1.jsonl"))
    assert (focus.code, rows_of(focus.out)) == (cur.code, rows_of(cur.out))


def test_parquet_exports_read_as_the_csv_does(tmp_path):
    for name in ("cur-july-2", "focus-claude-2.1"):
        pq.write_table(pacsv.read_csv(HERE / f"{name}.csv"), tmp_path / f"{name}.parquet")
    for name, logs in (("cur-july-2", "july-2.jsonl"), ("focus-claude-2.1", "claude-2.1.jsonl")):
        from_csv = run_cli("reconcile", "--cur", str(HERE / f"{name}.csv"), str(HERE / logs))
        from_parquet = run_cli("reconcile", "--cur", str(tmp_path / f"{name}.parquet"), str(HERE / logs))
        assert (from_parquet.code, rows_of(from_parquet.out)) == (from_csv.code, rows_of(from_csv.out))


def test_an_export_that_is_neither_is_refused(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    run = run_cli("reconcile", "--cur", str(other), str(HERE / "claude-2.1.jsonl"))
    assert (run.code, run.out) == (2, "")
    assert "neither a CUR 2.0 nor a FOCUS export: no column ChargePeriodStart, SkuMeter" in run.err


def test_a_cost_that_is_not_a_number_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "cur.csv"
    bad.write_text((HERE / "cur-claude-2.1.csv").read_text(encoding="utf-8").replace("0.096,", "n/a,", 1), encoding="utf-8")
    run = run_cli("reconcile", "--cur", str(bad), str(HERE / "claude-2.1.jsonl"))
    assert run.code == 2
    assert f"{bad}:3: usage amount or cost is not a number" in run.err


@pytest.mark.parametrize(
    ("usage_type", "read"),
    [
        ("USW2-Claude3Haiku-input-tokens", ("us-west-2", "claude-3-haiku", "input_tokens")),
        ("USE1-Claude3Sonnet-output-tokens", ("us-east-1", "claude-3-sonnet", "output_tokens")),
        # The longest token segment is tried first: this one also holds `input-token`.
        ("USW2-Claude3Haiku-cache-read-input-token-count", ("us-west-2", "claude-3-haiku", "cache_read_tokens")),
        ("USW2-Claude2.1-input-tokens", ("us-west-2", "claude-2.1", "input_tokens")),
        # Billing names on lines of their own (`model mistral-7b billed Mistral7B`), as AWS data shows them.
        ("EUW2-Mistral7B-output-tokens", ("eu-west-2", "mistral-7b", "output_tokens")),
        ("EUW2-MistralLarge-input-tokens", ("eu-west-2", "mistral-large", "input_tokens")),
        ("EUW2-Mixtral8x7B-output-tokens", ("eu-west-2", "mixtral-8x7b", "output_tokens")),
        ("USE1-Claude2.0-input-tokens", ("us-east-1", "claude-2.0", "input_tokens")),
        ("UGW1-Claude3Haiku-input-tokens", "no region is billed as 'UGW1'"),
        ("USE1-Claude4Sonnet-input-tokens-cross-region-global", "no model is billed as 'Claude4Sonnet'"),
        # Suffixes say what the usage type prices apart; each is named, none is read as the plain usage type.
        ("USE1-Claude3Haiku-input-tokens-cross-region-global",
         "priced apart from the plain usage type, and not reconciled: 'cross-region-global': "
         "global cross-region inference (a `global.` profile)"),
        ("USE1-Claude3Haiku-output-tokens-long-context-cross-region-global",
         "priced apart from the plain usage type, and not reconciled: 'long-context': the long-context price (a request "
         "past the model's long-context threshold); 'cross-region-global': global cross-region inference (a `global.` profile)"),
        ("USE1-Claude3Haiku-input-tokens-cross-region-global-batch",
         "priced apart from the plain usage type, and not reconciled: 'cross-region-global': "
         "global cross-region inference (a `global.` profile); 'batch': batch inference"),
        ("USE1-Claude3Haiku-input-tokens-flex",
         "priced apart from the plain usage type, and not reconciled: 'flex': the flex service tier"),
        ("USE1-Claude3Haiku-input-tokens-priority",
         "priced apart from the plain usage type, and not reconciled: 'priority': the priority service tier"),
        ("USE1-Claude3Haiku-input-tokens-latency-optimized",
         "priced apart from the plain usage type, and not reconciled: 'latency-optimized': latency-optimized inference"),
        ("USE1-Claude3Haiku-cache-write-input-token-count-custom-model",
         "priced apart from the plain usage type, and not reconciled: 'custom-model': a custom (fine-tuned or imported) model"),
        ("USE1-Claude3Haiku-input-tokens-1h-ttl",
         "priced apart from the plain usage type, and not reconciled: '1h-ttl', a qualifier this reconciler does not know"),
        ("USE1-Guardrail-ContentPolicyUnitsConsumed", "no quantity is billed under this usage type's token segment"),
    ],
)
def test_usage_types_are_read_with_the_rules_billing_names(usage_type, read, rules):
    assert BillingNames.of(rules.program).parse(usage_type) == read


def test_billing_names_come_from_the_rule_files(tmp_path):
    (tmp_path / "main.rules").write_text(
        'currency USD\nregion r1 billed R1\nprovider p\n  model a billed ModelA\nend\n'
        "kind job\n  model: model\n  region: region\n  x: count = 0 unit things billed x-units\nend\n"
        "prices job in any\n| model | x per 1 |\n|---|---|\n| a | 2 |\n",
        encoding="utf-8",
    )
    names = BillingNames.of(bedrock_rules.load(tmp_path).program)
    assert names.parse("R1-ModelA-x-units") == ("r1", "a", "x")


CUR_HEADER, CUR_INPUT, CUR_OUTPUT, CUR_EC2 = (HERE / "cur-claude-2.1.csv").read_text(encoding="utf-8").splitlines()[:4]


@pytest.mark.parametrize(("cell", "changed", "reason"), [
    ("USD", "EUR", "billed in 'EUR'; the rules price in USD"),
    ("11.0", "NaN", "usage amount or cost is not a number"),
    ("11.0", "Infinity", "usage amount or cost is not a number"),
    ("0.08800000000000001", "1e99999999", "usage amount or cost: number too large: 100000000 digits; the limit is 40 digits"),
    ("2024-07-02T00:00:00Z,2024-07-03", "2024-02-30T00:00:00Z,2024-07-03", "the usage start '2024-02-30T00:00:00Z' is not a date"),
], ids=["currency", "nan", "infinity", "huge-cost", "no-such-day"])
def test_a_cur_line_that_cannot_be_compared_refuses_the_run_naming_its_line(tmp_path, cell, changed, reason):
    cur = tmp_path / "cur.csv"
    cur.write_text("\n".join([CUR_HEADER, CUR_INPUT.replace(cell, changed, 1), CUR_OUTPUT, CUR_EC2]) + "\n", encoding="utf-8")
    run = run_cli("reconcile", "--cur", str(cur), str(HERE / "claude-2.1.jsonl"))
    assert (run.code, run.out) == (2, "")
    assert run.err.endswith(f"  {cur}:2: {reason}\n")


def test_a_cur_row_cut_short_is_refused_not_left_out(tmp_path):
    # Not even its product code is there: it might be a Bedrock line, so it is not skipped as another service's.
    cur = tmp_path / "cur.csv"
    cur.write_text("\n".join([CUR_HEADER, ",".join(CUR_INPUT.split(",")[:3]), CUR_OUTPUT, CUR_EC2]) + "\n", encoding="utf-8")
    run = run_cli("reconcile", "--cur", str(cur), str(HERE / "claude-2.1.jsonl"))
    assert (run.code, run.out) == (2, "")
    assert run.err.endswith(f"  {cur}:2: the row does not have as many cells as the header has columns\n")
