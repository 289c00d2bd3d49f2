"""Which fields of an invocation-log record feed which usage fields: one table.

A new field AWS adds is one line here (and one row in docs/logs.md). A path is read
from the record; `output.outputBodyJson[]` means "each event of a streamed response"
(read from the last event back). The first path that holds a value gives the field.

`when_undeclared` says what happens when the usage kind the rules use for the call
does not declare the field: `refuse` a value other than `neutral` (a nonzero count the
rules cannot price is reported, never dropped), or `omit` it (it only describes the call).
`part_of` names the count a field is a part of, given as a whole in the record: that
count is the rest (the whole less this part), so no token is priced twice.
"""

from __future__ import annotations

import attrs

BODY = "output.outputBodyJson"
EVENTS = "output.outputBodyJson[]"
REQUEST = "input.inputBodyJson"


@attrs.frozen
class Source:
    usage_field: str
    paths: tuple[str, ...]
    neutral: object  # the value that costs nothing extra: 0, `standard`
    when_undeclared: str  # "refuse" or "omit"
    part_of: str | None = None  # the usage field whose count in the record holds this one


TOKEN_FIELDS: tuple[Source, ...] = (
    Source("input_tokens", (
        "input.inputTokenCount",
        f"{BODY}.usage.inputTokens",  # Converse
        f"{EVENTS}.metadata.usage.inputTokens",  # ConverseStream's metadata event
        f"{EVENTS}.amazon-bedrock-invocationMetrics.inputTokenCount",  # a stream's last event
    ), 0, "refuse"),
    Source("output_tokens", (
        "output.outputTokenCount",
        f"{BODY}.usage.outputTokens",
        f"{EVENTS}.metadata.usage.outputTokens",
        f"{EVENTS}.amazon-bedrock-invocationMetrics.outputTokenCount",
    ), 0, "refuse"),
    Source("cache_read_tokens", (
        "input.cacheReadInputTokenCount",
        f"{BODY}.usage.cacheReadInputTokens",  # Converse
        f"{EVENTS}.metadata.usage.cacheReadInputTokens",
        f"{BODY}.usage.cache_read_input_tokens",  # an InvokeModel body that writes its usage in snake_case
        f"{EVENTS}.amazon-bedrock-invocationMetrics.cacheReadInputTokenCount",
        f"{EVENTS}.message.usage.cache_read_input_tokens",  # such a stream: its message_start event
        f"{EVENTS}.usage.cache_read_input_tokens",  # such a stream: its message_delta event
    ), 0, "refuse"),
    Source("cache_write_tokens", (
        "input.cacheWriteInputTokenCount",
        f"{BODY}.usage.cacheWriteInputTokens",
        f"{EVENTS}.metadata.usage.cacheWriteInputTokens",
        f"{BODY}.usage.cache_creation_input_tokens",
        f"{EVENTS}.amazon-bedrock-invocationMetrics.cacheWriteInputTokenCount",
        f"{EVENTS}.message.usage.cache_creation_input_tokens",
        f"{EVENTS}.usage.cache_creation_input_tokens",
    ), 0, "refuse"),
    # Of those writes, the ones kept an hour (priced apart from 5-minute ones): a body that
    # writes its usage in snake_case splits `cache_creation_input_tokens` by time to live in
    # `usage.cache_creation`.
    Source("cache_write_1h_tokens", (
        f"{BODY}.usage.cache_creation.ephemeral_1h_input_tokens",
        f"{EVENTS}.message.usage.cache_creation.ephemeral_1h_input_tokens",
        f"{EVENTS}.usage.cache_creation.ephemeral_1h_input_tokens",
    ), 0, "refuse", part_of="cache_write_tokens"),
    # The tier's log field is not confirmed from a published record: the request body's
    # `serviceTier` (a string or `{"type": …}`), or the record's or response's own.
    Source("service_tier", (
        f"{REQUEST}.serviceTier", "serviceTier", f"{BODY}.serviceTier", f"{EVENTS}.metadata.serviceTier",
    ), "standard", "refuse"),
    Source("latency", (f"{REQUEST}.performanceConfig.latency", "performanceConfig.latency"), "standard", "refuse"),
    Source("inference_region", ("inferenceRegion",), None, "omit"),
)

# The record's instant, which becomes each of its items' `at` (the day its prices are
# those of) when the rules date anything; with no dated rule it changes no price.
TIMESTAMP = "timestamp"

# The record-level token counts an image call leaves at 0 (image models are priced per
# image): a nonzero one is reported with the call, never dropped.
IMAGE_CALL_TOKENS: tuple[tuple[str, str], ...] = (("input", "inputTokenCount"), ("output", "outputTokenCount"))

# Counts a record must carry when the rules price them for its model (an embedding's
# output is "not applicable"): without them the record is malformed, not billed 0.
REQUIRED_COUNTS = ("input_tokens", "output_tokens")

# Guardrail units, as AWS counts them per policy in `invocationMetrics.usage`.
GUARDRAIL_UNITS: tuple[tuple[str, str], ...] = (
    ("contentPolicyUnits", "content_policy_units"),
    ("contentPolicyImageUnits", "content_policy_image_units"),
    ("topicPolicyUnits", "topic_policy_units"),
    ("wordPolicyUnits", "word_policy_units"),
    ("sensitiveInformationPolicyUnits", "sensitive_information_policy_units"),
    ("sensitiveInformationPolicyFreeUnits", "sensitive_information_policy_free_units"),
    ("contextualGroundingPolicyUnits", "contextual_grounding_policy_units"),
    ("automatedReasoningPolicyUnits", "automated_reasoning_policy_units"),
)

# Service tier and latency spellings, to the usage values the rules declare.
TIERS = {"default": "standard", "standard": "standard", "priority": "priority", "flex": "flex"}
LATENCIES = {"standard": "standard", "optimized": "optimized"}

# `modelId` prefixes of the system-defined cross-region inference profiles.
GLOBAL_PREFIX = "global"
GEOGRAPHIES = ("us", "eu", "apac", "jp", "au", "us-gov")


def profile_model(model_id: str) -> tuple[str, dict[str, str]]:
    """A cross-region inference profile id (`global.` or `us.`, `eu.`, … + a model id) as the
    model id and the scope its prefix names, as the log reader reads it; any other id as it is."""
    prefix, dot, rest = model_id.partition(".")
    if dot and prefix == GLOBAL_PREFIX:
        return rest, {"scope": "global"}
    if dot and prefix in GEOGRAPHIES:
        return rest, {"scope": "geographic", "geography": prefix}
    return model_id, {}
