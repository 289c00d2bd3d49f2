"""Invocation logs: every operation and model-ID form, failures, gz, stdin, grouping, and
the property that a log's bill equals the bill of the same usage written as a document."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bedrock_rules
from bedrock_rules.bedrock.logs import totals_of_log
from conftest import ROOT, run_cli

LOGS = ROOT / "tests" / "logs"
MIXED = str(LOGS / "mixed.jsonl")


@pytest.fixture(autouse=True)
def _from_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_mixed_log_is_priced_with_what_it_could_not_price(fmt, text_snapshot):
    run = run_cli("eval", "--input", "invocation-log", _relative(LOGS / "mixed.jsonl"), "--format", fmt)
    assert run.code == 3, run.err
    assert run.transcript() == text_snapshot


def test_the_mixed_log_in_numbers(rules):
    totals = totals_of_log(rules, open(MIXED, encoding="utf-8"))
    assert (totals.read, totals.priced) == (13, 7)
    assert totals.failed_calls == (("ThrottlingException", 1),)
    reasons = {u.reason: u.places for u in totals.unpriced}
    assert reasons == {
        "Claude 3 Opus is offered only in us-west-2 (bedrock:anthropic.rules:46)": (9,),
        "a call to provisioned throughput: billed per model unit hour, not per call": (12,),
        "field cache_read_tokens: prompt caching is not in the price list (mid-2024) (bedrock:anthropic.rules:75)": (13,),
        "unknown model 'acme.superlm-v9'": (7,),
    }
    assert [(u.reason.split(":")[0], u.places) for u in totals.malformed] == [("not valid JSON", (8,))]
    # 11000/4000 Claude 2.1, 571/281 + 100/10 … no: line 13 is unpriced, so Haiku is lines 2 and 3.
    expected = (
        Decimal(11000) * Decimal("0.008") / 1000 + Decimal(4000) * Decimal("0.024") / 1000  # InvokeModel
        + Decimal(571 + 1200) * Decimal("0.00025") / 1000 + Decimal(281 + 300) * Decimal("0.00125") / 1000  # stream, Converse
        + Decimal(2000) * Decimal("0.003") / 1000 + Decimal(1000) * Decimal("0.015") / 1000  # ConverseStream, eu-central-1
        + Decimal(10000) * Decimal("0.0001") / 1000  # embeddings through a foundation-model ARN
        + 2 * Decimal("0.08") + 3 * Decimal("0.01")  # SDXL 1.0 premium x 2, Titan standard x 3
    )
    assert totals.total == expected


def test_strict_refuses_the_whole_log(text_snapshot):
    run = run_cli("eval", "--input", "invocation-log", "--strict", _relative(LOGS / "mixed.jsonl"))
    assert run.code == 2
    assert run.out == ""
    assert run.transcript() == text_snapshot


def test_gzip_file_and_grouping(text_snapshot):
    run = run_cli(
        "eval", "--input", "invocation-log", _relative(LOGS / "priced.jsonl.gz"),
        "--group-by", "model,operation,tag:team", "--format", "json",
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["counts"] == {"read": 7, "priced": 7, "failed_calls": 0, "unpriced": 0, "malformed": 0}
    assert sum(Decimal(g["subtotal"]) for g in data["groups"]) == Decimal(data["total"])
    assert run.transcript() == text_snapshot


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_stdin_plain_and_gzip(compress, monkeypatch):
    data = (LOGS / "mixed.jsonl").read_bytes()
    if compress:
        data = gzip.compress(data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    from bedrock_rules.cli import main

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["eval", "--input", "invocation-log", "-", "--format", "json"]) == 3
    assert json.loads(out.getvalue())["total"] == "0.397169"


def test_group_by_day_and_identity(rules):
    totals = totals_of_log(rules, open(MIXED, encoding="utf-8"), group_by=("day", "identity"))
    days = {group[0] for group, _ in totals.subtotals}
    assert days == {"2024-07-02", "2024-07-03"}
    assert sum(subtotal for _, subtotal in totals.subtotals) == totals.total


def test_an_unknown_grouping_is_refused():
    run = run_cli("eval", "--input", "invocation-log", MIXED, "--group-by", "colour")
    assert run.code == 2
    assert "cannot group invocation logs by 'colour'" in run.err


def test_a_missing_log_file_is_refused():
    run = run_cli("eval", "--input", "invocation-log", "no/such.jsonl")
    assert run.code == 2
    assert "no/such.jsonl: cannot read invocation log: No such file or directory" in run.err


def test_a_truncated_gzip_file_is_refused(tmp_path):
    broken = tmp_path / "cut.jsonl.gz"
    broken.write_bytes(gzip.compress((LOGS / "mixed.jsonl").read_bytes())[:200])
    run = run_cli("eval", "--input", "invocation-log", str(broken))
    assert run.code == 2
    assert "cannot read invocation log" in run.err
    assert "Traceback" not in run.err


def test_usage_documents_can_be_grouped_and_written_as_csv():
    run = run_cli("eval", "examples/monthly.yaml", "--group-by", "kind", "--format", "csv")
    assert run.code == 0, run.err
    header, *rows = run.out.splitlines()
    assert header == "kind,id,what,quantity,unit,rate,per,amount,items"
    assert sum(Decimal(row.split(",")[-2]) for row in rows) == Decimal("29469.684")


# The property: a log prices exactly like the same calls written as a usage document.

CALLS = [  # (model ID as logged, region) pairs the rules price for text
    ("anthropic.claude-v2:1", "us-west-2"),
    ("us.anthropic.claude-3-haiku-20240307-v1:0", "us-east-1"),
    ("arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-instant-v1", "eu-central-1"),
    ("cohere.command-text-v14", "ap-south-1"),
    ("meta.llama2-13b-chat-v1", "us-east-1"),
    ("mistral.mixtral-8x7b-instruct-v0:1", "eu-west-3"),
    ("ai21.j2-mid-v1", "sa-east-1"),
]
OPERATIONS = ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"]
# The rules price by date: every record has its instant, and the document's items the same one.
STAMP = "2024-07-02T09:15:00Z"


def _record(model_id: str, region: str, operation: str, tokens_in: int, tokens_out: int) -> dict:
    record = {
        "schemaType": "ModelInvocationLog", "timestamp": STAMP, "region": region, "operation": operation, "modelId": model_id,
    }
    if operation == "InvokeModel":
        record.update(input={"inputTokenCount": tokens_in}, output={"outputTokenCount": tokens_out})
    elif operation == "InvokeModelWithResponseStream":
        metrics = {"inputTokenCount": tokens_in, "outputTokenCount": tokens_out}
        record.update(input={}, output={"outputBodyJson": [{"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}]})
    elif operation == "Converse":
        record.update(input={}, output={"outputBodyJson": {"usage": {"inputTokens": tokens_in, "outputTokens": tokens_out}}})
    else:
        usage = {"inputTokens": tokens_in, "outputTokens": tokens_out}
        record.update(input={}, output={"outputBodyJson": [{"contentBlockDelta": {}}, {"metadata": {"usage": usage}}]})
    return record


calls = st.lists(
    st.tuples(st.sampled_from(CALLS), st.sampled_from(OPERATIONS), st.integers(0, 10**7), st.integers(0, 10**7)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls)
def test_a_log_prices_like_the_same_usage_document(rules, generated):
    lines = [json.dumps(_record(m, r, op, i, o)) for (m, r), op, i, o in generated]
    document = {
        "usage": [
            {"kind": "text", "model": m.rsplit("/", 1)[-1].removeprefix("us."), "region": r, "input_tokens": i, "output_tokens": o,
             "at": STAMP}
            for (m, r), _, i, o in generated
        ]
    }
    bill = rules.evaluate(document)
    totals = totals_of_log(rules, lines)
    assert totals.complete
    assert totals.total == bill.total
    by_rule: dict[str, Decimal] = {}
    for item in bill.items:
        for charge in item.charges:
            by_rule[charge.rule_id] = by_rule.get(charge.rule_id, Decimal(0)) + charge.amount
    assert {line.rule_id: line.amount for line in totals.lines} == by_rule


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({
    "kind": st.sampled_from(["text", "embedding", "image", "provisioned", "guardrail"]),
    "model": st.sampled_from(["claude-2.1", "claude-3-opus", "embed-english", "sdxl-1.0", "command", "nope", 7]),
    "region": st.sampled_from(["us-east-1", "us-west-2", "eu-central-1", "mars-1"]),
    "input_tokens": st.one_of(st.integers(0, 10**6), st.just(-1), st.just(True), st.just("12")),
}), max_size=20))
def test_totals_agree_with_the_itemized_bill_item_by_item(rules, items):
    """The fast path and the slow path price (or refuse) every item the same way."""
    totals = rules.totals(items)
    priced = Decimal(0)
    refused = 0
    for item in items:
        try:
            priced += rules.evaluate({"usage": [item]}).total
        except bedrock_rules.UsageError:
            refused += 1
    assert totals.total == priced
    assert sum(u.count for u in totals.unpriced) == refused


def test_streamed_items_report_the_first_places_of_each_problem(rules):
    good = {"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 1000, "output_tokens": 0, "at": STAMP}
    items = [dict(good) for _ in range(300)]
    for position in (250, 7, 120):  # 1-based positions of items with a bad count
        items[position - 1] = {**good, "input_tokens": -1}
    items[41] = {**good, "region": "us-east-9"}
    totals = rules.totals(items, group_by=["model"])
    assert totals.read == 300 and totals.priced == 296
    assert [(u.reason, u.places) for u in totals.unpriced] == [
        ("field input_tokens: expected a whole number ≥ 0, got -1", (7, 120, 250)),
        ("field region: unknown region \"us-east-9\" (did you mean 'us-east-1'?)", (42,)),
    ]
    assert totals.subtotals == ((("claude-2.1",), Decimal(296) * Decimal("0.008")),)
    assert totals.lines[0].items == 296


def test_streamed_items_group_by_canonical_model_names(rules):
    items = [
        {"kind": "text", "model": "anthropic.claude-v2:1", "region": "us-west-2", "input_tokens": 1000, "at": STAMP},
        {"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 1000, "at": STAMP},
        {"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 1000, "name": "east", "at": STAMP},
    ]
    totals = rules.totals(items, group_by=["model", "region"])
    assert [(group, subtotal) for group, subtotal in totals.subtotals] == [
        (("claude-2.1", "us-east-1"), Decimal("0.008")),
        (("claude-2.1", "us-west-2"), Decimal("0.016")),
    ]


def test_progress_is_shown_on_a_terminal_and_only_there(tmp_path, monkeypatch):
    from bedrock_rules.commands import eval as eval_command

    monkeypatch.setattr(eval_command._Progress, "INTERVAL", 0)  # report at every record
    log = tmp_path / "many.jsonl"
    line = (LOGS / "mixed.jsonl").read_text(encoding="utf-8").splitlines()[0]
    log.write_text((line + "\n") * 50, encoding="utf-8")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stderr, expect_progress in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stderr)
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        from bedrock_rules.cli import main

        assert main(["eval", "--input", "invocation-log", str(log)]) == 0
        assert "total: 9.2 USD" in out.getvalue()
        said, shown = stderr.getvalue().split("\n", 1)
        assert said == "ruleset: bedrock (bundled)"
        if expect_progress:
            assert "\r50 records, " in shown and "records/s, running total" in shown
            assert shown.endswith("\r\x1b[K")  # the line is cleared at the end
        else:
            assert shown == ""


# The streaming paths agree with the bill item by item, on rulesets built to trip them.

def _per_item(rules, items):
    priced, refused = Decimal(0), 0
    for item in items:
        try:
            priced += rules.evaluate({"usage": [item]}).total
        except bedrock_rules.UsageError:
            refused += 1
    return priced, refused


@pytest.mark.parametrize("order", ["refused-last", "refused-first"])
def test_a_batch_with_a_quantity_that_must_be_zero_refuses_the_items_that_have_it(rules, order):
    # On a day of the seed's prices: the bundled list is dated.
    fine = {"kind": "embedding", "model": "embed-english", "region": "us-east-1", "input_tokens": 1000, "at": "2024-07-15"}
    output = {**fine, "output_tokens": 5000}  # "not applicable" for embedding models
    items = [fine, output] * 3 if order == "refused-last" else [output, fine] * 3
    totals = rules.totals(items)
    assert (totals.total, sum(u.count for u in totals.unpriced)) == _per_item(rules, items) == (Decimal("0.0003"), 3)
    assert totals.unpriced[0].reason == "field output_tokens: not applicable (bedrock:cohere.rules:35)"


TRICKY_RULES = """currency USD
region r1
round the total to 2 places half_up
kind text
  model: model
  region: region
  input_tokens: count = 0 unit tokens
  extra: count optional unit things
end
provider p
  model m
end
prices text in any
| model | input_tokens per PER | extra per 1 |
|-------|----------------------|-------------|
| m     | RATE                 | 2           |
"""


def _tricky(folder, rate: str, per: str):
    folder.mkdir()
    (folder / "tricky.rules").write_text(TRICKY_RULES.replace("PER", per).replace("RATE", rate), encoding="utf-8")
    return bedrock_rules.load(folder)


def test_streams_leave_out_absent_optional_quantities_and_round_the_total_like_a_bill(tmp_path):
    rules = _tricky(tmp_path / "a", "0.004", "1000")
    items = [
        {"kind": "text", "model": "m", "region": "r1", "input_tokens": 3},  # no `extra`: no line for it
        {"kind": "text", "model": "m", "region": "r1", "input_tokens": 1001, "extra": 2},
    ]
    totals = rules.totals(items)
    bill = rules.evaluate({"usage": items})
    assert (totals.priced, totals.unpriced) == (2, ())
    assert totals.total == bill.total == Decimal("4.00")  # 4.016012 rounded, as the rules say


def test_streams_refuse_amounts_that_are_not_exact_like_a_bill(tmp_path):
    rules = _tricky(tmp_path / "b", "1", "3")  # 1 USD per 3 tokens: one token is 0.333…
    items = [{"kind": "text", "model": "m", "region": "r1", "input_tokens": 1}] * 3
    assert _per_item(rules, items) == (Decimal(0), 3)
    totals = rules.totals(items)
    assert (totals.priced, sum(u.count for u in totals.unpriced)) == (0, 3)
    assert totals.unpriced[0].reason.startswith("field input_tokens: the amount cannot be computed exactly at the rate of ")
    assert totals.unpriced[0].reason.endswith("b/tricky.rules:16")


def test_grouping_by_kind_and_name_on_every_path(rules):
    items = [
        {"kind": "image", "model": "sdxl-1.0", "region": "us-east-1", "width": 512, "height": 512, "steps": 10, "name": "a", "at": STAMP},
        {"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 1000, "name": "a", "at": STAMP},
    ]
    totals = rules.totals(items, group_by=["kind", "name"])
    assert [group for group, _ in totals.subtotals] == [("image", "a"), ("text", "a")]


def test_distinct_unpriced_reasons_are_bounded(rules):
    from bedrock_rules.totals import MAX_REASONS, OTHER_REASONS

    items = [{"kind": "text", "model": f"no-such-model-{n}", "region": "us-east-1"} for n in range(MAX_REASONS + 200)]
    totals = rules.totals(items)
    assert len(totals.unpriced) == MAX_REASONS + 1
    other = next(u for u in totals.unpriced if u.reason == OTHER_REASONS)
    assert (other.count, other.places[0]) == (200, MAX_REASONS + 1)
    assert sum(u.count for u in totals.unpriced) == len(items)


def test_several_logs_name_the_file_of_each_unpriced_line():
    run = run_cli("eval", "--input", "invocation-log", _relative(LOGS / "priced.jsonl.gz"), _relative(LOGS / "mixed.jsonl"))
    assert run.code == 3
    assert "  1 x tests/logs/mixed.jsonl: unknown model 'acme.superlm-v9' (line 7)\n" in run.out
    assert "records: 20 read, 14 priced, 1 failed calls (not charged), 4 not priced, 1 malformed\n" in run.out


# Every priced dimension a record carries (guardrails, cache, scope, tier, latency).

GUARDED = _relative(LOGS / "guarded.jsonl")


def test_guardrail_units_are_billed_from_every_trace_even_when_the_model_is_not():
    run = run_cli("eval", "--input", "invocation-log", GUARDED, "--format", "json")
    assert run.code == 3, run.err
    data = json.loads(run.out)
    charges = {c["what"]: (c["quantity"], c["amount"]) for g in data["groups"] for c in g["charges"] if c["amount"] != "0"}
    # Converse in 1+1 out 2+2, InvokeModel blocked 3, stream 1+1, unknown model's topic 1; the
    # records are of 2025-11-20, after the December 2024 cut (0.15 per 1,000 for both).
    assert charges["content_policy_units"] == ("8", "0.0012")
    assert charges["topic_policy_units"] == ("4", "0.0006")
    assert charges["sensitive_information_policy_units"] == ("3", "0.0003")
    assert charges["input_tokens"] == ("4550", "0.0011375")  # the global and us. profiles priced as in-region
    assert data["total"] == "0.0041125"
    assert data["counts"] == {"read": 14, "priced": 4, "failed_calls": 1, "unpriced": 9, "malformed": 0}
    reasons = {u["reason"]: u["first_lines"] for u in data["unpriced"]}
    assert reasons["guardrail units unknown: the record shows a guardrail ran but carries no unit counts"] == [4]
    assert reasons["unknown model 'acme.superlm-v9'"] == [5]
    def lines_of(start: str) -> list[list[int]]:
        return [lines for reason, lines in reasons.items() if reason.startswith(start)]

    cache = "field cache_{}_tokens: prompt caching is not in the price list (mid-2024) (text/"  # JSON cites rules by id
    assert lines_of(cache.format("read")) == [[7, 9]]  # Converse usage; a stream's message_start
    assert lines_of(cache.format("write")) == [[8]]  # an Anthropic body's cache_creation_input_tokens
    latency = "no source prices latency-optimized inference for Claude models (Claude 3.5 Haiku's is not found)"
    assert lines_of(latency) == [[12]]
    assert not [reason for reason in reasons if ".rules:" in reason]
    assert [r for r in reasons if r.startswith("field contextual_grounding_policy_units: ")] != []
    s3 = next(r for r in reasons if r.startswith("the request body is in S3 (s3://"))
    assert s3.endswith("an image call cannot be priced from the record alone") and reasons[s3] == [11]
    profile = next(r for r in reasons if "application inference profile" in r)
    assert "map it to its model with --profiles FILE" in profile and reasons[profile] == [10]


@pytest.mark.parametrize("engine", ["default", "duckdb"])
def test_a_failed_calls_guardrail_is_grouped_under_its_models_name(tmp_path, engine):
    # A Claude Haiku 4.5 call through the global profile, and one that failed after its guardrail ran.
    usage = {"input_tokens": 1000, "output_tokens": 100}
    priced = json.loads(_cached_call("global.anthropic.claude-haiku-4-5-20251001-v1:0", usage))
    failed = json.loads(_cached_call("global.anthropic.claude-haiku-4-5-20251001-v1:0", usage))
    failed["errorCode"] = "ThrottlingException"
    del failed["input"]["inputTokenCount"], failed["output"]["outputTokenCount"]
    failed["output"]["outputBodyJson"] = {
        "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Sorry"}],
        "stop_reason": "guardrail_intervened", "amazon-bedrock-guardrailAction": "INTERVENED",
        "amazon-bedrock-trace": {"guardrail": {"input": {"gr1abc": {"invocationMetrics": {
            "guardrailProcessingLatency": 100,
            "usage": {"topicPolicyUnits": 1000, "contentPolicyUnits": 1000, "wordPolicyUnits": 0,
                      "sensitiveInformationPolicyUnits": 0, "sensitiveInformationPolicyFreeUnits": 0,
                      "contextualGroundingPolicyUnits": 0},
            "guardrailCoverage": {"textCharacters": {"guarded": 100, "total": 100}}}}}}},
    }
    log = tmp_path / "calls.jsonl"
    log.write_text(json.dumps(priced) + "\n" + json.dumps(failed) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(log), "--format", "json", "--group-by", "model", "--engine", engine)
    assert run.code == 0, run.err
    totals = json.loads(run.out)
    assert [group["group"] for group in totals["groups"]] == [{"model": "claude-haiku-4.5"}]
    charged = {c["what"]: c["amount"] for c in totals["groups"][0]["charges"]}
    assert (charged["content_policy_units"], charged["topic_policy_units"]) == ("0.15", "0.15")
    assert totals["counts"]["failed_calls"] == 1


def test_a_service_tier_and_a_global_scope_reach_the_rules(rules):
    from bedrock_rules.bedrock.logs import LogReader

    record = json.loads((LOGS / "guarded.jsonl").read_text(encoding="utf-8").splitlines()[5])
    record["input"]["inputBodyJson"]["serviceTier"] = {"type": "flex"}
    entry = LogReader(rules.program).entry(record, 1)
    assert entry.items[0]["scope"] == "global" and entry.items[0]["service_tier"] == "flex"
    totals = totals_of_log(rules, [json.dumps(record)])
    assert totals.total == 0 and [u.reason.split(" (")[0] for u in totals.unpriced] == [
        "no source prices a priority or flex tier for Claude models"
    ]
    record["modelId"] = "eu." + record["modelId"].removeprefix("global.")
    item = LogReader(rules.program).entry(record, 1).items[0]
    assert (item["scope"], item["geography"]) == ("geographic", "eu")


def _cached_call(model_id: str, usage: dict, top: dict | None = None, stream: bool = False) -> str:
    """An InvokeModel record of an Anthropic model whose body reports its usage (snake_case), as AWS logs it."""
    body: dict | list = {"id": "msg_01", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "ok"}],
                         "stop_reason": "end_turn", "usage": usage}
    if stream:  # InvokeModelWithResponseStream: the usage of the message_start event, then the others'
        body = [{"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "usage": usage}},
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": usage["output_tokens"]}}]
    return json.dumps({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-06-10T16:47:52Z",
        "accountId": "111122223333", "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/worker"},
        "region": "us-east-1", "requestId": "7a0f9c2e-5b1d-4e8a-9c3f-2d6b8e1a4f70",
        "operation": "InvokeModelWithResponseStream" if stream else "InvokeModel", "modelId": model_id,
        "input": {"inputContentType": "application/json", "inputBodyJson": {
            "anthropic_version": "bedrock-2023-05-31", "max_tokens": 256,
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
            "inputTokenCount": usage["input_tokens"], **(top or {})},
        "output": {"outputContentType": "application/json", "outputBodyJson": body, "outputTokenCount": usage["output_tokens"]},
    }, separators=(",", ":"))


def _split(five: int, hour: int) -> dict:
    return {"input_tokens": 100, "cache_creation_input_tokens": five + hour, "cache_read_input_tokens": 0, "output_tokens": 10,
            "cache_creation": {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("engine", ["default", "duckdb"])
def test_one_hour_cache_writes_are_priced_apart_from_five_minute_ones(tmp_path, stream, engine):
    # Claude Haiku 4.5 through the global profile: writes at 1.25 x (5 minutes) and 2 x (an hour) of 1 per 1,000,000.
    log = tmp_path / "calls.jsonl"
    log.write_text("\n".join([
        _cached_call("global.anthropic.claude-haiku-4-5-20251001-v1:0", _split(0, 1000000), stream=stream),
        # the record's own count is the whole too (AWS's cacheWriteInputTokenCount): 400,000 of it for 5 minutes
        _cached_call("global.anthropic.claude-haiku-4-5-20251001-v1:0", _split(400000, 600000),
                     top={"cacheWriteInputTokenCount": 1000000}, stream=stream),
    ]) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(log), "--format", "json", "--engine", engine)
    assert run.code == 0, run.err
    totals = json.loads(run.out)
    charged = {c["what"]: (c["quantity"], c["amount"]) for g in totals["groups"] for c in g["charges"]}
    assert charged["cache_write_1h_tokens"] == ("1600000", "3.2")  # 1.6 x 2
    assert charged["cache_write_tokens"] == ("400000", "0.5")  # 0.4 x 1.25, not the 2,000,000 written in all
    assert totals["total"] == "3.7003"  # and 200 input tokens at 1, 20 output at 5 per 1,000,000


def test_a_one_hour_part_that_does_not_fit_its_whole_is_malformed(tmp_path):
    usage = _split(0, 1000)
    usage["cache_creation_input_tokens"] = 999
    without = _split(0, 1000)
    del without["cache_creation_input_tokens"]
    older = _split(0, 1000)  # a model whose one-hour writes no source prices: refused, not priced as 5-minute ones
    log = tmp_path / "calls.jsonl"
    log.write_text("\n".join([
        _cached_call("anthropic.claude-haiku-4-5-20251001-v1:0", usage),
        _cached_call("anthropic.claude-haiku-4-5-20251001-v1:0", without),
        _cached_call("anthropic.claude-3-5-sonnet-20241022-v2:0", older),
    ]) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(log), "--format", "json")
    assert run.code == 3, run.err
    totals = json.loads(run.out)
    assert [(m["reason"], m["first_lines"]) for m in totals["malformed"]] == [
        ("cache_write_1h_tokens 1000 is more than the cache_write_tokens count it is part of (999)", [1]),
        ("cache_write_1h_tokens 1000 without the cache_write_tokens count it is part of", [2]),
    ]
    assert [u["first_lines"] for u in totals["unpriced"]] == [[3]]
    assert "one-hour cache writes are priced from Claude Sonnet 4.5 and Haiku 4.5 on" in totals["unpriced"][0]["reason"]


PROFILE = {
    "inferenceProfileName": "support-bot", "createdAt": "2025-10-01T10:00:00Z",
    "inferenceProfileArn": "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6",
    "inferenceProfileId": "a1b2c3d4e5f6", "status": "ACTIVE", "type": "APPLICATION",
    "models": [{"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"}],
}


@pytest.mark.parametrize("shape", ["get-inference-profile", "plain-yaml"])
def test_profiles_resolve_application_inference_profiles(shape, tmp_path):
    if shape == "get-inference-profile":
        profiles = tmp_path / "profiles.json"
        profiles.write_text(json.dumps(PROFILE), encoding="utf-8")
    else:
        profiles = tmp_path / "profiles.yaml"
        profiles.write_text("a1b2c3d4e5f6: anthropic.claude-3-haiku-20240307-v1:0\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", GUARDED, "--profiles", str(profiles), "--format", "json")
    data = json.loads(run.out)
    assert data["total"] == "0.0056125"  # + 1000 x 0.00025 + 1000 x 0.00125 per 1000
    assert data["counts"]["priced"] == 5
    assert not any("application inference profile" in u["reason"] for u in data["unpriced"])


def test_a_wrong_profiles_file_is_refused(tmp_path):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({**PROFILE, "models": []}), encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", GUARDED, "--profiles", str(profiles))
    assert run.code == 2 and run.out == ""
    assert "profile 1: expected inferenceProfileArn or inferenceProfileId and models" in run.err


# Hostile and careless records.

def _haiku(**changes) -> str:
    record = {"schemaType": "ModelInvocationLog", "timestamp": STAMP, "region": "us-east-1", "operation": "InvokeModel",
              "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
              "input": {"inputTokenCount": 1000}, "output": {"outputTokenCount": 1000}}
    record.update(changes)
    return json.dumps(record)


@pytest.mark.parametrize(("line", "reason"), [
    (_haiku(input={}, output={}), "no input_tokens count in the record"),
    (_haiku(input={"inputTokenCount": None}), "no input_tokens count in the record"),
    (_haiku(output={}), "no output_tokens count in the record"),
    (_haiku(input="1000"), "input or output is not an object"),
    (_haiku().replace('"inputTokenCount": 1000', '"inputTokenCount": 1000000, "inputTokenCount": 1'),
     "duplicate key in the record: 'inputTokenCount'"),
    (_haiku().replace('"modelId"', '"modelId": "anthropic.claude-3-opus-20240229-v1:0", "modelId"'),
     "duplicate key in the record: 'modelId'"),
], ids=["no-counts", "null", "one-of-two", "input-not-object", "duplicate-count", "duplicate-model"])
def test_a_record_without_certain_counts_is_malformed_not_free(line, reason, tmp_path):
    log = tmp_path / "calls.jsonl"
    log.write_text(_haiku() + "\n" + line + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(log))
    assert run.code == 3
    assert "total: 0.0015 USD" in run.out
    assert "records: 2 read, 1 priced, 0 failed calls (not charged), 0 not priced, 1 malformed" in run.out
    assert f"  1 x {reason} (line 2)" in run.out


def test_a_gzip_bomb_line_is_malformed_and_memory_stays_flat(tmp_path, monkeypatch):
    import tracemalloc

    from bedrock_rules import limits
    from bedrock_rules.bedrock import containers

    monkeypatch.setattr(limits, "MAX_LOG_RECORD_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(_haiku().encode() + b"\n" + b'{"modelId": "')
        block = b"a" * (1 << 20)
        for _ in range(64):  # one line of 64 MiB, the cap is 1 MiB
            out.write(block)
        out.write(b'"}\n' + _haiku().encode() + b"\n")
    assert bomb.stat().st_size < 200_000
    tracemalloc.start()
    with containers.open_binary(str(bomb)) as raw:
        found = [(place, type(value).__name__) for place, value in containers.records(raw)]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == [(1, "dict"), (2, "Malformed"), (3, "dict")]
    assert peak < 8 << 20, peak  # the 64 MiB line was never held
    run = run_cli("eval", "--input", "invocation-log", str(bomb))
    assert run.code == 3
    assert "1 x record too long: more than 1,048,576 bytes; the limit is 1,048,576 bytes (16 MiB) per record (line 2)" in run.out


def test_a_lone_surrogate_in_a_grouped_field_does_not_stop_the_bill(tmp_path):
    log = tmp_path / "calls.jsonl"
    line = _haiku(identity={"arn": "arn:aws:sts::1:assumed-role/x/\\ud800"}, requestMetadata={"team": "\\udfff"})
    log.write_text(line.replace("\\\\u", "\\u") + "\n", encoding="utf-8")
    for fmt in ("table", "json", "csv"):
        run = run_cli("eval", "--input", "invocation-log", str(log), "--group-by", "identity,tag:team", "--format", fmt)
        assert run.code == 0, run.err
        assert "\\ud800" in run.out and "0.00125" in run.out


# The containers users have: the same seven records, however they are stored.

def _priced_records() -> list[str]:
    return gzip.decompress((LOGS / "priced.jsonl.gz").read_bytes()).decode().splitlines()


def _csv(records: list[str]) -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["@timestamp", "@message"])
    for n, record in enumerate(records):
        writer.writerow([f"2024-07-02 09:15:{n:02d}.000", record])
    return out.getvalue()


CONTAINERS = {
    "bom-crlf": lambda r: "\ufeff" + "\r\n".join(r) + "\r\n",
    "pretty-printed": lambda r: "\n".join(json.dumps(json.loads(x), indent=2) for x in r) + "\n",
    "json-array": lambda r: "\ufeff" + json.dumps([json.loads(x) for x in r], indent=2),
    "insights-csv": _csv,
    "insights-messages": lambda r: json.dumps([{"@timestamp": "2024-07-02", "@message": x} for x in r]),
    "get-query-results": lambda r: json.dumps({
        "results": [[{"field": "@timestamp", "value": "2024-07-02"}, {"field": "@message", "value": x}] for x in r],
        "statistics": {"recordsMatched": len(r), "recordsScanned": len(r), "bytesScanned": 1.0}, "status": "Complete",
    }, indent=1),
    # the same on one line (`jq -c`), and an array whose @message is the record itself, not its text
    "get-query-results-compact": lambda r: json.dumps({
        "results": [[{"field": "@timestamp", "value": "2024-07-02"}, {"field": "@message", "value": x}] for x in r],
        "statistics": {}, "status": "Complete",
    }, separators=(",", ":")),
    "insights-message-objects": lambda r: json.dumps([{"@timestamp": "2024-07-02", "@message": json.loads(x)} for x in r]),
}


@pytest.mark.parametrize(("export", "reason"), [
    ("@timestamp,modelId,input.inputTokenCount\r\n2024-07-02 09:15:00.000,anthropic.claude-v2:1,1000\r\n",
     "no @message column in this Logs Insights export: the query must keep @message, the whole record"),
    (json.dumps({"results": [[{"field": "@timestamp", "value": "2024-07-02"}, {"field": "modelId", "value": "anthropic.claude-v2:1"}]],
                 "statistics": {}, "status": "Complete"}, separators=(",", ":")),
     "no @message field in this result row"),
], ids=["insights-csv", "get-query-results-compact"])
def test_an_export_without_the_records_says_so(export, reason, tmp_path):
    log = tmp_path / "export"
    log.write_text(export, encoding="utf-8", newline="")
    run = run_cli("eval", "--input", "invocation-log", str(log), "--format", "json")
    assert run.code == 3
    assert json.loads(run.out)["malformed"] == [{"reason": reason, "count": 1, "first_lines": [1 if export.startswith("{") else 2]}]


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_every_container_gives_the_same_bill(container, tmp_path):
    records = _priced_records()
    log = tmp_path / "export"
    log.write_text(CONTAINERS[container](records), encoding="utf-8", newline="")
    run = run_cli("eval", "--input", "invocation-log", str(log), "--format", "json")
    assert run.code == 0, run.out + run.err
    data = json.loads(run.out)
    expected = run_cli("eval", "--input", "invocation-log", _relative(LOGS / "priced.jsonl.gz"), "--format", "json")
    assert data["total"] == json.loads(expected.out)["total"]
    assert data["counts"]["read"] == data["counts"]["priced"] == 7  # records, not lines


def test_a_folder_of_gzipped_logs_is_read_recursively_in_order(tmp_path):
    records = _priced_records()
    for n, record in enumerate(records):
        part = tmp_path / "AWSLogs" / "111122223333" / "BedrockModelInvocationLogs" / "us-east-1" / "2024" / "07" / f"{n:02d}"
        part.mkdir(parents=True)
        (part / f"20240702T{n:02d}00Z_abc.json.gz").write_bytes(gzip.compress((record + "\n").encode()))
    (tmp_path / "AWSLogs" / "111122223333" / "BedrockModelInvocationLogs" / "us-east-1" / "2024" / "07" / "03" / "bad.json.gz").write_bytes(
        gzip.compress(b"{not json}\n"))
    run = run_cli("eval", "--input", "invocation-log", str(tmp_path))
    assert run.code == 3
    assert "records: 8 read, 7 priced, 0 failed calls (not charged), 0 not priced, 1 malformed" in run.out
    assert "07/03/bad.json.gz: not valid JSON" in run.out


@pytest.mark.parametrize("engine", ["default", "duckdb"])
def test_a_log_folder_that_cannot_be_listed_refuses_the_run_naming_it(tmp_path, monkeypatch, engine):
    # A day's folder the user may not read (permissions, a broken mount): its logs would be left out.
    days = tmp_path / "AWSLogs" / "111122223333" / "BedrockModelInvocationLogs" / "us-east-1" / "2024" / "07"
    for day, record in zip(("01", "02"), _priced_records(), strict=False):
        (days / day).mkdir(parents=True)
        (days / day / "20240701T0000Z_abc.json.gz").write_bytes(gzip.compress((record + "\n").encode()))
    listing = os.scandir

    def scandir(path):
        if str(path) == str(days / "02"):
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    run = run_cli("eval", "--input", "invocation-log", str(tmp_path), "--engine", engine)
    assert (run.code, run.out) == (2, "")
    assert f"{days / '02'}: cannot read invocation log folder: Permission denied" in run.err


@pytest.mark.parametrize("decoder", ["", "stdlib"])
def test_a_record_cut_short_is_malformed_with_the_same_reason_whichever_decoder_reads_it(tmp_path, monkeypatch, decoder):
    monkeypatch.setenv("BEDROCK_RULES_JSON", decoder)
    whole = _cached_call("anthropic.claude-haiku-4-5-20251001-v1:0", {"input_tokens": 10, "output_tokens": 1})
    log = tmp_path / "calls.jsonl"
    log.write_text(whole + "\n" + whole[:150] + "\n" + whole + "\n", encoding="utf-8")  # a write cut off mid-string
    run = run_cli("eval", "--input", "invocation-log", str(log), "--format", "json")
    assert run.code == 3, run.err
    assert json.loads(run.out)["malformed"] == [{"reason": "not valid JSON: Unterminated string", "count": 1, "first_lines": [2]}]


def test_a_broken_json_array_reports_the_rest_as_unreadable(tmp_path):
    log = tmp_path / "calls.json"
    log.write_text("[" + _haiku() + ",\n" + _haiku() + ",\n{oops}\n, " + _haiku() + "]", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(log))
    assert run.code == 3
    assert "records: 3 read, 2 priced" in run.out
    assert "the rest of the file cannot be read (line 3)" in run.out


def test_an_embedding_record_needs_no_output_count(rules):
    line = _haiku(modelId="cohere.embed-english-v3", output={"outputBodyJson": {"embeddings": [[0.1]]}})
    totals = totals_of_log(rules, [line, _haiku(output={})])
    assert (totals.priced, totals.total) == (1, Decimal("0.0001"))
    assert [u.reason for u in totals.malformed] == ["no output_tokens count in the record"]


def _sdxl(input_tokens: object) -> str:
    record = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2024-07-02T09:15:00Z",
        "accountId": "111122223333", "region": "us-east-1", "requestId": "5a0e3c1e-8f7a-4c55-9a61-2b1f3c8f0a12",
        "operation": "InvokeModel", "modelId": "stability.stable-diffusion-xl-v1",
        "input": {"inputBodyJson": {"text_prompts": [{"text": "a cat"}], "steps": 30, "width": 1024, "height": 1024},
                  "inputTokenCount": input_tokens},
        "output": {"outputTokenCount": 0, "outputImageHeight": 1024, "outputImageWidth": 1024},
    }
    return json.dumps(record)


def test_an_image_call_with_a_nonzero_token_count_is_reported_not_dropped(rules):
    priced = totals_of_log(rules, [_sdxl(0)])
    assert (priced.priced, priced.total, priced.unpriced) == (1, Decimal("0.04"), ())
    reported = totals_of_log(rules, [_sdxl(0), _sdxl(37)])
    assert (reported.priced, reported.total) == (1, Decimal("0.04"))
    assert [(u.reason, u.count) for u in reported.unpriced] == [
        ("an image call with inputTokenCount 37: the rules price this model's images, not its tokens", 1),
    ]


def test_a_timestamp_that_is_not_text_is_named_as_such(tmp_path):
    record = json.loads(_cached_call("anthropic.claude-haiku-4-5-20251001-v1:0", {"input_tokens": 10, "output_tokens": 1}))
    record["timestamp"] = 1763657272
    log = tmp_path / "calls.jsonl"
    log.write_text(json.dumps(record) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(log))
    assert run.code == 3
    assert "  1 x timestamp 1763657272 is not a time written as text: the rules price by date (line 1)" in run.out


@pytest.mark.parametrize("engine", ["default", "duckdb"])
@pytest.mark.parametrize("packed", [False, True])
def test_a_log_saved_as_utf16_is_refused_naming_the_encoding(tmp_path, engine, packed):
    # PowerShell's `>` writes UTF-16: every line would be "not valid JSON", and nothing said why.
    data = "\n".join(_priced_records()).encode("utf-16")
    log = tmp_path / ("calls.jsonl.gz" if packed else "calls.jsonl")
    log.write_bytes(gzip.compress(data) if packed else data)
    run = run_cli("eval", "--input", "invocation-log", str(log), "--engine", engine)
    assert (run.code, run.out) == (2, "")
    assert run.err.endswith(
        f"  {log}: cannot read invocation log: the file is UTF-16 text; invocation logs are UTF-8, as AWS writes them\n"
    )
