"""The bundled list is dated: the seed's prices from mid-2024, the 2025-26 list beside them.

Invocation-log records shaped as AWS writes them (shared/formats/INVOCATION-LOGS.md), from
mid-2024, 2025 and 2026, are priced at the rates in force at their timestamps: one record
per area of the current list (routes, cache counts, tiers, guardrail units of a blocked call).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import ROOT, run_cli

ACCOUNT = "111122223333"


def _record(stamp: str, operation: str, model_id: str, region: str = "us-east-1", **parts: object) -> dict:
    record: dict = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": stamp,
        "accountId": ACCOUNT,
        "identity": {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/worker"},
        "region": region,
        "requestId": "0d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a11",
        "operation": operation,
        "modelId": model_id,
    }
    record.update(parts)
    return record


def _converse(stamp: str, model_id: str, usage: dict, region: str = "us-east-1", request: dict | None = None) -> dict:
    body = {"messages": [{"role": "user", "content": [{"text": "Summarise the ticket."}]}], **(request or {})}
    return _record(
        stamp, "Converse", model_id, region,
        input={"inputContentType": "application/json", "inputBodyJson": body},
        output={"outputContentType": "application/json", "outputBodyJson": {
            "output": {"message": {"role": "assistant", "content": [{"text": "Done."}]}},
            "stopReason": "end_turn",
            "usage": {**usage, "totalTokens": usage.get("inputTokens", 0) + usage.get("outputTokens", 0)},
            "metrics": {"latencyMs": 812},
        }},
    )


def _blocked(stamp: str, units: dict) -> dict:
    """A Converse call whose guardrail blocked the input: no tokens, the guardrail's units."""
    guardrail = "gr7x2k9q1abc"
    usage = {
        "topicPolicyUnits": 0, "contentPolicyUnits": 0, "wordPolicyUnits": 0, "sensitiveInformationPolicyUnits": 0,
        "sensitiveInformationPolicyFreeUnits": 0, "contextualGroundingPolicyUnits": 0, **units,
    }
    return _record(
        stamp, "Converse", "us.anthropic.claude-3-haiku-20240307-v1:0",
        input={"inputContentType": "application/json", "inputBodyJson": {
            "messages": [{"role": "user", "content": [{"text": "…"}]}],
            "guardrailConfig": {"guardrailIdentifier": guardrail, "guardrailVersion": "1", "trace": "enabled"},
        }},
        output={"outputContentType": "application/json", "outputBodyJson": {
            "output": {"message": {"role": "assistant", "content": [{"text": "Sorry, I can't help with that."}]}},
            "stopReason": "guardrail_intervened",
            "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
            "trace": {"guardrail": {"inputAssessment": {guardrail: {"invocationMetrics": {
                "guardrailProcessingLatency": 190, "usage": usage,
                "guardrailCoverage": {"textCharacters": {"guarded": 640, "total": 640}},
            }}}}},
        }},
    )


RECORDS = {
    # mid-2024, the seed's prices: 11,000 x 0.008 / 1000 + 4,000 x 0.024 / 1000 (worked example 7).
    "2024-invoke-model-claude-2.1": (_record(
        "2024-07-02T09:15:00Z", "InvokeModel", "anthropic.claude-v2:1", "us-west-2",
        input={"inputContentType": "application/json", "inputBodyJson": {"prompt": "\n\nHuman: Hi\n\nAssistant:"},
               "inputTokenCount": 11000},
        output={"outputContentType": "application/json", "outputBodyJson": {"completion": "Hi.", "stop_reason": "stop_sequence"},
                "outputTokenCount": 4000},
    ), "0.184"),
    # mid-2024 stream: 571 x 0.00025 / 1000 + 281 x 0.00125 / 1000.
    "2024-stream-claude-3-haiku": (_record(
        "2024-07-10T12:00:00Z", "InvokeModelWithResponseStream", "anthropic.claude-3-haiku-20240307-v1:0",
        input={"inputContentType": "application/json", "inputBodyJson": {"anthropic_version": "bedrock-2023-05-31"},
               "inputTokenCount": 571},
        output={"outputContentType": "application/json", "outputTokenCount": 281, "outputBodyJson": [
            {"type": "message_start", "message": {"usage": {"input_tokens": 571, "output_tokens": 1}}},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hello"}},
            {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 571, "outputTokenCount": 281, "invocationLatency": 3848, "firstByteLatency": 509}},
        ]},
    ), "0.000494"),
    # 2025, Nova Pro with cache reads at 0.25 x input: 0.008 + 0.0064 + 40 x 0.0002 = 0.0224.
    "2025-converse-nova-pro-cache-read": (_converse(
        "2025-08-01T10:00:00Z", "amazon.nova-pro-v1:0",
        {"inputTokens": 10000, "outputTokens": 2000, "cacheReadInputTokens": 40000, "cacheWriteInputTokens": 0},
    ), "0.0224"),
    # 2025, the global profile of Sonnet 4.5 (its table's price): 0.1 x 3 + 0.01 x 15.
    "2025-converse-stream-global-sonnet-4.5": (_record(
        "2025-11-15T08:30:00Z", "ConverseStream", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        input={"inputContentType": "application/json", "inputBodyJson": {"messages": []}},
        output={"outputContentType": "application/json", "outputBodyJson": [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "…"}, "contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": {"inputTokens": 100000, "outputTokens": 10000, "totalTokens": 110000},
                          "metrics": {"latencyMs": 2100}}},
        ]},
    ), "0.45"),
    # 2025, through `us.`: 1.1 x global.
    "2025-converse-us-sonnet-4.5": (_converse(
        "2025-11-15T08:31:00Z", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"inputTokens": 100000, "outputTokens": 10000},
    ), "0.495"),
    # 2026, Haiku 4.5 in-region at the offer's 1.1 / 5.5, cache read 0.11, 5-minute write 1.375 per 1M
    # (an Anthropic body's own usage names the cache counts).
    "2026-invoke-model-haiku-4.5-cache": (_record(
        "2026-09-15T14:00:00Z", "InvokeModel", "anthropic.claude-haiku-4-5-20251001-v1:0", "us-west-2",
        input={"inputContentType": "application/json", "inputBodyJson": {"anthropic_version": "bedrock-2023-05-31"},
               "inputTokenCount": 20000},
        output={"outputContentType": "application/json", "outputTokenCount": 1000, "outputBodyJson": {
            "type": "message", "stop_reason": "end_turn",
            "usage": {"input_tokens": 20000, "output_tokens": 1000, "cache_read_input_tokens": 100000,
                      "cache_creation_input_tokens": 10000},
        }},
    ), "0.05225"),
    # 2026, Nova Pro through `eu.`, at its own rate: 0.1 x 1.05 + 0.01 x 4.2.
    "2026-converse-eu-nova-pro": (_converse(
        "2026-01-10T09:00:00Z", "eu.amazon.nova-pro-v1:0", {"inputTokens": 100000, "outputTokens": 10000}, "eu-central-1",
    ), "0.147"),
    # 2025, Nova Pro on the priority tier (1.75 x): 1,000,000 x 0.0014 / 1000.
    "2025-converse-nova-pro-priority": (_converse(
        "2025-12-01T09:00:00Z", "amazon.nova-pro-v1:0", {"inputTokens": 1000000, "outputTokens": 0},
        request={"serviceTier": {"type": "priority"}},
    ), "1.4"),
    # A blocked call is billed for its guardrail: 1 topic and 1 content unit, before the cut
    # (1.00 and 0.75 per 1,000) …
    "2024-blocked-before-the-cut": (_blocked("2024-11-30T23:59:00Z", {"topicPolicyUnits": 1, "contentPolicyUnits": 1}), "0.00175"),
    # … and after it (0.15 each).
    "2024-blocked-after-the-cut": (_blocked("2024-12-05T10:00:00Z", {"topicPolicyUnits": 1, "contentPolicyUnits": 1}), "0.0003"),
}


@pytest.mark.parametrize("name", list(RECORDS), ids=list(RECORDS))
def test_a_record_is_priced_at_the_rates_in_force_at_its_timestamp(name, in_tmp):
    record, total = RECORDS[name]
    (in_tmp / "calls.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--format", "json")
    assert run.code == 0, run.out + run.err
    totals = json.loads(run.out)
    assert totals["counts"]["priced"] == 1
    assert Decimal(totals["total"]) == Decimal(total)


def test_the_rule_of_a_dated_price_is_cited_with_its_version(in_tmp):
    record, _ = RECORDS["2024-blocked-after-the-cut"]
    (in_tmp / "calls.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    charges = json.loads(run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--format", "json").out)["groups"][0]["charges"]
    assert {c["id"].rsplit("; ", 1)[-1] for c in charges if c["amount"] != "0"} == {"from 2024-12-01]"}


def test_a_model_used_before_its_launch_is_refused_naming_the_date(in_tmp):
    early = _converse("2025-09-01T10:00:00Z", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", {"inputTokens": 10, "outputTokens": 1})
    (in_tmp / "calls.jsonl").write_text(json.dumps(early) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", "calls.jsonl")
    assert run.code != 0
    assert "Claude Sonnet 4.5 is offered from 2025-09-29" in run.out + run.err
    usage = {"usage": [{"kind": "text", "model": "claude-sonnet-4.5", "region": "us-east-1", "input_tokens": 10, "at": "2025-09-28"}]}
    run = run_cli("eval", "-", stdin=json.dumps(usage))
    assert run.code == 2
    assert "Claude Sonnet 4.5 is offered from 2025-09-29" in run.err and "this item is dated 2025-09-28" in run.err


def test_an_undated_item_is_refused_and_told_to_give_a_date():
    usage = {"usage": [{"kind": "text", "model": "claude-3-haiku", "region": "us-east-1", "input_tokens": 10}]}
    run = run_cli("eval", "-", stdin=json.dumps(usage))
    assert run.code == 2
    assert "this item has no date" in run.err and "--at DATE" in run.err
    assert run_cli("eval", "-", "--at", "2024-07-15", stdin=json.dumps(usage)).code == 0


@pytest.mark.parametrize(
    ("prefix", "scope", "amount"),
    [("", "in_region", "3.3"), ("global.", "global", "3"), ("us.", "geographic", "3.3"), ("eu.", "geographic", "3.3"),
     ("apac.", "geographic", "3.3"), ("jp.", "geographic", "3.3"), ("au.", "geographic", "3.3"), ("us-gov.", "geographic", "3.6")],
)
def test_each_profile_prefix_prices_at_the_scope_it_names(prefix, scope, amount, in_tmp):
    model_id = f"{prefix}anthropic.claude-sonnet-4-5-20250929-v1:0"
    record = _converse("2026-01-10T09:00:00Z", model_id, {"inputTokens": 1000000, "outputTokens": 0})
    (in_tmp / "calls.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", "calls.jsonl", "--format", "json")
    assert run.code == 0, run.out + run.err
    # 1,000,000 input tokens: above 200K, so the long-context rate, 6 per 1M globally.
    assert Decimal(json.loads(run.out)["total"]) == Decimal(amount) * 2


def test_a_tier_the_sources_do_not_price_is_refused_with_its_reason(in_tmp):
    record = _converse("2026-01-10T09:00:00Z", "anthropic.claude-haiku-4-5-20251001-v1:0", {"inputTokens": 10, "outputTokens": 1},
                       request={"serviceTier": "flex"})
    (in_tmp / "calls.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", "calls.jsonl")
    assert run.code != 0
    assert "no source prices a priority or flex tier for Claude models" in run.out + run.err


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_prices_at_a_date_lists_only_the_version_in_force(at_root):
    def rates(day: str) -> dict:
        run = run_cli("prices", "claude-3-haiku", "--region", "us-east-1", "--at", day, "--format", "json")
        assert run.code == 0, run.err
        return json.loads(run.out)

    before, after = rates("2025-07-19"), rates("2025-07-20")
    assert before["at"] == "2025-07-19"
    assert [(r["quantity"], r["rate"], r["valid"]) for r in before["rates"][:2]] == [
        ("input_tokens", "0.00025", "from 2024-07-01"), ("output_tokens", "0.00125", "from 2024-07-01"),
    ]
    assert not any("batch" in r["relative"] for r in before["relatives"])
    batch = next(r for r in after["relatives"] if "batch" in r["relative"])
    assert batch == {
        "kind": "text", "relative": "mode = batch at 0.5 of on_demand", "when": [], "rule": batch["rule"], "valid": "from 2025-07-20",
    }


def test_prices_at_a_date_keeps_both_context_rows_and_the_offer_window(at_root):
    run = run_cli("prices", "claude-sonnet-4", "--at", "2025-11-15", "--format", "json")
    found = json.loads(run.out)
    assert {(r["quantity"], tuple(r["when"]), r["rate"]) for r in found["rates"] if r["rate"]} == {
        ("input_tokens", ("context_tokens <= 200000",), "0.003"), ("output_tokens", ("context_tokens <= 200000",), "0.015"),
        ("input_tokens", ("context_tokens > 200000",), "6"), ("output_tokens", ("context_tokens > 200000",), "22.5"),
    }
    assert "Claude Sonnet 4 is offered from 2025-05-14" in run_cli("prices", "claude-sonnet-4", "--at", "2025-05-01").out
    assert "Claude Sonnet 4 is offered from 2025-05-14" not in run_cli("prices", "claude-sonnet-4", "--at", "2025-11-15").out


def test_prices_at_a_date_drops_a_replaced_version(in_tmp):
    (in_tmp / "r.rules").write_text(
        "currency USD\nregion r1\nprovider p\n  model a\nend\n"
        "kind text\n  model: model\n  region: region\n  tokens: count = 0 unit tokens\nend\n"
        "prices text in any from 2024-07-01\n| model | tokens per 1000 |\n|-------|-----------------|\n| a | 0.75 |\n"
        "prices text in any from 2024-12-01\n| model | tokens per 1000 |\n|-------|-----------------|\n| a | 0.15 |\n",
        encoding="utf-8",
    )

    def listed(*args: str) -> list:
        run = run_cli("prices", "a", "--rules", "r.rules", *args, "--format", "json")
        return [(r["rate"], r["valid"]) for r in json.loads(run.out)["rates"]]

    assert listed() == [("0.75", "from 2024-07-01"), ("0.15", "from 2024-12-01")]
    assert listed("--at", "2024-11-30") == [("0.75", "from 2024-07-01")]
    assert listed("--at", "2024-12-01") == [("0.15", "from 2024-12-01")]
    assert listed("--at", "2024-06-30") == []


def test_the_2026_example_month_prices_on_the_current_list(at_root):
    run = run_cli("eval", "examples/monthly-2026.yaml", "--format", "json")
    assert run.code == 0, run.err
    bill = json.loads(run.out)
    # 0.78075 global Sonnet 4.5 with cache + 0.825 through us. + 0.4725 Nova Micro batch
    # + 0.25 Titan embeddings + 2.4 Nova Canvas + 0.9 guardrail after the cut.
    assert [item["subtotal"] for item in bill["items"]] == ["0.78075", "0.825", "0.4725", "0.25", "2.4", "0.9"]
    assert bill["total"] == "5.62825"
