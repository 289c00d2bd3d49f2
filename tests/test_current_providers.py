"""The 2025-26 prices of the providers other than Anthropic and Amazon, from real-shaped
invocation-log records: each record is priced at the rates in force on its timestamp's day,
and what the sources do not price is refused with its reason."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import bedrock_rules
from bedrock_rules.bedrock.logs import totals_of_log
from bedrock_rules.errors import UsageError

M = Decimal(1_000_000)
K = Decimal(1000)


def _record(model_id: str, timestamp: str, region: str = "us-east-1", operation: str = "Converse", **given) -> dict:
    """A record as Bedrock writes it; `tokens` (in, out) go where the operation puts them."""
    tokens_in, tokens_out = given.pop("tokens", (0, 0))
    usage = {"inputTokens": tokens_in, "outputTokens": tokens_out, "totalTokens": tokens_in + tokens_out}
    usage.update(given.pop("cache", {}))
    body: dict = {"messages": [{"role": "user", "content": [{"text": "Summarise the attached report."}]}]}
    body.update(given.pop("request", {}))
    record = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": timestamp,
        "accountId": "111122223333",
        "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/worker"},
        "region": region,
        "requestId": "5c2b9f3e-0d1a-4e8b-9a6f-2f8e1c7d4b10",
        "operation": operation,
        "modelId": model_id,
        "input": {"inputContentType": "application/json", "inputBodyJson": body, "inputTokenCount": tokens_in},
        "output": {"outputContentType": "application/json", "outputTokenCount": tokens_out},
    }
    if operation == "Converse":
        record["output"]["outputBodyJson"] = {
            "output": {"message": {"role": "assistant", "content": [{"text": "The report says…"}]}},
            "stopReason": "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 812},
        }
    elif operation == "ConverseStream":
        record["output"]["outputBodyJson"] = [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "The report says…"}, "contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": usage, "metrics": {"latencyMs": 1290}}},
        ]
    else:  # InvokeModel with the model's own body
        record["output"]["outputBodyJson"] = {"choices": [{"message": {"content": "The report says…"}}]}
    return record


def _totals(rules: bedrock_rules.Ruleset, *records: dict):
    return totals_of_log(rules, [json.dumps(r) for r in records])


@pytest.fixture(scope="module")
def rules() -> bedrock_rules.Ruleset:
    return bedrock_rules.load()


def test_llama_through_a_us_profile_in_2025_is_priced_at_the_in_region_rate(rules):
    totals = _totals(
        rules,
        _record("us.meta.llama3-3-70b-instruct-v1:0", "2025-08-10T12:00:00Z", tokens=(1200, 300)),
        _record("meta.llama3-1-405b-instruct-v1:0", "2025-09-01T08:30:00Z", "us-west-2", "ConverseStream", tokens=(1000, 500)),
    )
    assert totals.complete, totals.unpriced
    assert totals.total == 1500 * Decimal("0.00072") / K + 1500 * Decimal("0.0024") / K


def test_llama_before_its_first_price_and_before_its_launch_is_refused_naming_the_date(rules):
    totals = _totals(
        rules,
        _record("meta.llama4-maverick-17b-instruct-v1:0", "2025-05-20T10:00:00Z", tokens=(100, 10)),
        _record("meta.llama3-1-70b-instruct-v1:0", "2025-03-01T10:00:00Z", tokens=(100, 10)),
    )
    assert totals.priced == 0 and totals.total == 0
    reasons = " | ".join(u.reason for u in totals.unpriced)
    assert "Llama 4 Maverick 17B is offered from 2025-06-01" in reasons
    assert "the sources price this model from 2025-07-20" in reasons


def test_deepseek_stream_in_2025_and_its_cache_counts_refused(rules):
    totals = _totals(
        rules,
        _record("us.deepseek.r1-v1:0", "2025-05-01T00:00:00Z", "us-east-1", "ConverseStream", tokens=(1000, 2000)),
        _record("deepseek.r1-v1:0", "2025-05-02T00:00:00Z", tokens=(1000, 2000), cache={"cacheReadInputTokens": 400}),
    )
    assert totals.total == 1000 * Decimal("1.35") / M + 2000 * Decimal("5.4") / M
    [refused] = totals.unpriced
    assert refused.places == (2,)
    assert refused.reason.startswith(
        "field cache_read_tokens: no prompt-caching price for this model in the sources (bedrock:deepseek.rules:"
    )


def test_a_model_before_its_launch_month_is_refused(rules):
    totals = _totals(rules, _record("qwen.qwen3-32b-v1:0", "2025-09-30T23:59:59Z", tokens=(10, 10)))
    assert totals.priced == 0
    assert "Qwen3 32B is offered from 2025-10-01" in totals.unpriced[0].reason
    totals = _totals(rules, _record("qwen.qwen3-32b-v1:0", "2025-10-01T00:00:00Z", tokens=(1_000_000, 1_000_000)))
    assert totals.complete and totals.total == Decimal("0.15") + Decimal("0.6")


def test_service_tiers_from_the_request_body_in_2026(rules):
    request = {"serviceTier": {"type": "priority"}}
    totals = _totals(
        rules,
        _record("mistral.mistral-large-3-675b-instruct", "2026-02-01T09:00:00Z", tokens=(2_000_000, 1_000_000), request=request),
        _record(
            "mistral.mistral-large-3-675b-instruct", "2026-02-01T09:00:01Z", tokens=(2_000_000, 1_000_000), request={"serviceTier": "flex"}
        ),
        _record("zai.glm-5", "2026-07-02T00:00:00Z", tokens=(1_000_000, 1_000_000)),
    )
    assert totals.complete, totals.unpriced
    standard = 2 * Decimal("0.5") + 1 * Decimal("1.5")
    assert totals.total == standard * Decimal("1.75") + standard * Decimal("0.5") + Decimal("1.0") + Decimal("3.2")


def test_a_tier_the_sources_do_not_price_is_refused_and_before_tiers_existed_too(rules):
    totals = _totals(
        rules,
        _record("deepseek.r1-v1:0", "2026-01-05T00:00:00Z", tokens=(10, 10), request={"serviceTier": "priority"}),
        _record("qwen.qwen3-32b-v1:0", "2025-11-18T00:00:00Z", tokens=(10, 10), request={"serviceTier": "flex"}),
    )
    reasons = sorted(u.reason for u in totals.unpriced)
    assert totals.priced == 0
    assert "no priority or flex price for this model in the sources" in reasons[0]
    assert "before 2025-11-19" in reasons[1]


def test_cohere_command_input_is_cut_on_the_day_of_the_2025_page(rules):
    day_before = _record("cohere.command-text-v14", "2025-07-19T23:00:00Z", "us-east-1", "InvokeModel", tokens=(6000, 2000))
    day_of = _record("cohere.command-text-v14", "2025-07-20T01:00:00Z", "us-east-1", "InvokeModel", tokens=(6000, 2000))
    assert _totals(rules, day_before).total == 6 * Decimal("0.0015") + 2 * Decimal("0.002")
    assert _totals(rules, day_of).total == 6 * Decimal("0.001") + 2 * Decimal("0.002")


def test_the_seed_prices_still_apply_to_a_mid_2024_record(rules):
    large = "mistral.mistral-large-2402-v1:0"
    totals = _totals(rules, _record(large, "2024-08-01T00:00:00Z", "eu-west-3", "InvokeModel", tokens=(2000, 1000)))
    assert totals.total == 2 * Decimal("0.008") + 1 * Decimal("0.024")
    totals = _totals(rules, _record(large, "2024-06-30T00:00:00Z", "eu-west-3", "InvokeModel", tokens=(2000, 1000)))
    # Before the seed's first day (2024-07-01) no price is known: refused, never priced.
    assert totals.priced == 0 and totals.total == 0
    assert totals.unpriced[0].reason.startswith(
        "field input_tokens: no rule prices input_tokens (2000) for text usage with model mistral-large"
    )


def test_an_eu_profile_is_priced_where_the_sources_price_it(rules):
    geo = _record("eu.mistral.pixtral-large-2502-v1:0", "2025-09-10T00:00:00Z", "eu-west-3", tokens=(10000, 1000))
    local = _record("mistral.pixtral-large-2502-v1:0", "2025-09-10T00:00:00Z", "eu-west-3", tokens=(10000, 1000))
    assert _totals(rules, geo).total == 10 * Decimal("0.002") + 1 * Decimal("0.006")
    refused = _totals(rules, local)
    assert refused.priced == 0
    assert "the sources price Pixtral Large in Europe through the eu. profile only" in refused.unpriced[0].reason


def test_embed_v4_in_2026(rules):
    record = _record("cohere.embed-v4:0", "2026-01-15T00:00:00Z", "us-east-1", "InvokeModel", tokens=(1_000_000, 0))
    record["input"]["inputBodyJson"] = {"texts": ["a"], "input_type": "search_document"}
    record["output"]["outputBodyJson"] = {"embeddings": [[0.1, 0.2]], "response_type": "embeddings_floats"}
    totals = _totals(rules, record)
    assert totals.complete, totals.unpriced
    assert totals.total == Decimal("0.12")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # Batch at 0.5 of on-demand from the 2025-07-20 page; the seed's batch (= on demand) before it.
        ({"model": "llama3.1-8b", "mode": "batch", "input_tokens": 10000, "at": "2025-08-01"}, 10 * Decimal("0.00011")),
        ({"model": "llama2-13b-chat", "mode": "batch", "input_tokens": 10000, "at": "2024-09-01"}, 10 * Decimal("0.00075")),
        ({"model": "minimax-m2", "mode": "batch", "input_tokens": 1_000_000, "at": "2026-02-01"}, Decimal("0.15")),
        ({"model": "gemma-3-4b", "service_tier": "flex", "output_tokens": 1_000_000, "at": "2026-02-01"}, Decimal("0.04")),
        ({"model": "nemotron-super-3-120b", "service_tier": "priority", "input_tokens": 1_000_000, "at": "2026-05-01"}, Decimal("0.2625")),
        # L's own figures outside the US.
        ({"model": "deepseek-v3.2", "region": "ap-northeast-1", "input_tokens": 1_000_000, "at": "2026-04-01"}, Decimal("0.74")),
        ({"model": "minimax-m2.5", "region": "eu-west-2", "output_tokens": 1_000_000, "at": "2026-05-01"}, Decimal("1.86")),
    ],
    ids=["llama-batch", "llama2-batch-2024", "minimax-batch", "gemma-flex", "nemotron-priority", "deepseek-tokyo", "minimax-london"],
)
def test_relative_and_regional_prices(rules, item, expected):
    bill = rules.evaluate({"usage": [{"kind": "text", "region": "us-east-1", **item}]})
    assert bill.total == expected


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"model": "llama3.2-11b", "mode": "batch", "at": "2025-08-01"}, "offers no batch price for this model"),
        ({"model": "jamba-1.5-mini", "mode": "batch", "at": "2025-08-01"}, "offers no batch price for AI21 models"),
        ({"model": "command-r", "mode": "batch", "at": "2025-08-01"}, "no batch price for Cohere models"),
        ({"model": "qwen3-32b", "region": "eu-central-1", "at": "2026-01-01"}, "the sources price this Qwen model in the US only"),
        ({"model": "llama3.3-70b", "latency": "optimized", "at": "2025-08-01"}, "is priced for Llama 3.1 70B and 405B only"),
        ({"model": "glm-5", "at": "2026-03-31"}, "GLM-5 is offered from 2026-04-01"),
    ],
    ids=["llama32-batch", "jamba-batch", "cohere-batch", "qwen-europe", "llama-latency", "glm-before-launch"],
)
def test_what_the_sources_do_not_price_is_refused_with_the_reason(rules, item, reason):
    with pytest.raises(UsageError) as refused:
        rules.evaluate({"usage": [{"kind": "text", "region": "us-east-1", "input_tokens": 1000, **item}]})
    assert reason in str(refused.value)


def test_global_and_us_profiles_of_2026_models_and_a_long_prompt(rules):
    astra = "openai.gpt-6-astra"
    totals = _totals(
        rules,
        _record(f"global.{astra}", "2026-10-15T00:00:00Z", "eu-west-2", tokens=(100_000, 10_000)),
        _record(f"us.{astra}", "2026-10-15T00:00:01Z", "us-east-1", "ConverseStream", tokens=(100_000, 10_000)),
        _record(f"global.{astra}", "2026-10-15T00:00:02Z", "us-east-1", tokens=(300_000, 10_000), cache={"cacheReadInputTokens": 10_000}),
        _record("us.xai.grok-4.7", "2026-11-10T00:00:00Z", "us-west-2", tokens=(1_000_000, 1_000_000)),
        _record("global.moonshotai.kimi-k3", "2026-11-10T00:00:00Z", "ap-northeast-1", tokens=(1_000_000, 0)),
    )
    assert totals.complete, totals.unpriced
    global_astra = Decimal("0.1") * 10 + Decimal("0.01") * 50
    long_prompt = Decimal("0.3") * 20 + Decimal("0.01") * 75 + Decimal("0.01") * 2  # 310,000 tokens > 272,000
    grok_us = (Decimal(2) + Decimal(6)) * Decimal("1.1")
    assert totals.total == global_astra + global_astra * Decimal("1.1") + long_prompt + grok_us + Decimal(3)


def test_a_2026_model_through_a_geography_the_sources_do_not_price_is_refused(rules):
    totals = _totals(rules, _record("eu.openai.gpt-6-astra", "2026-10-15T00:00:00Z", "eu-west-3", tokens=(10, 10)))
    assert totals.priced == 0
    assert "the sources price GPT-5 and GPT-6 through the global and us. profiles only" in totals.unpriced[0].reason


def test_an_imported_model_is_refused_and_custom_import_usage_is_priced_by_the_minute(rules):
    arn = "arn:aws:bedrock:us-east-1:111122223333:imported-model/abcd1234efgh"
    totals = _totals(rules, _record(arn, "2026-03-10T00:00:00Z", tokens=(100, 10)))
    assert totals.priced == 0
    assert "Custom Model Import is billed per custom model unit minute" in totals.unpriced[0].reason
    bill = rules.evaluate({"usage": [
        {"kind": "custom_import", "region": "us-east-1", "copies": 1, "cmus_per_copy": 3, "minutes": 11, "at": "2026-03-10"},
    ]})
    assert bill.total == 3 * 15 * Decimal("0.05718")  # 11 minutes bill three 5-minute windows
    with pytest.raises(UsageError) as refused:
        rules.evaluate({"usage": [{"kind": "custom_import", "region": "eu-west-3", "cmus_per_copy": 1, "minutes": 5, "at": "2026-03-10"}]})
    assert "Custom Model Import in us-east-1, us-west-2 and eu-central-1 only" in str(refused.value)


def test_a_video_model_is_refused_with_what_it_is_billed_by(rules):
    totals = _totals(rules, _record("us.twelvelabs.pegasus-1-2-v1:0", "2026-01-10T00:00:00Z", tokens=(5000, 300)))
    assert totals.priced == 0
    assert "Pegasus is billed per second of input video, which these rules do not hold" in totals.unpriced[0].reason
