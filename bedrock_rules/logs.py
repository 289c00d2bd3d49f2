"""Model invocation logs (JSON lines, plain or gzipped) as a stream of usage items.

Each record becomes one usage item in the vocabulary of the usage-document contract
(kinds `text`, `embedding`, `image` and their fields). Which kind a call is, and which
model it names, comes from the record and the loaded rules: the model ID is looked up
among the rules' model names and aliases, after removing an ARN's resource prefix and,
when needed, a cross-region inference-profile prefix (`us.`, `eu.`, …). No model is
named here. A record the rules cannot price is reported with its reason, never dropped.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import attrs

from .compiler import Compiled

# Log fields that become usage fields when the usage kind declares them, so a ruleset
# that starts pricing cache tokens needs no change here.
_TOKEN_FIELDS = (
    ("input_tokens", ("input", "inputTokenCount"), ("inputTokens",)),
    ("output_tokens", ("output", "outputTokenCount"), ("outputTokens",)),
    ("cache_read_input_tokens", ("input", "cacheReadInputTokenCount"), ("cacheReadInputTokens",)),
    ("cache_write_input_tokens", ("input", "cacheWriteInputTokenCount"), ("cacheWriteInputTokens",)),
)
# The metrics a streaming response's last event carries, by usage field.
_STREAM_METRICS = {"input_tokens": "inputTokenCount", "output_tokens": "outputTokenCount"}


@attrs.define  # not frozen: one is made per log line, and a frozen init costs twice as much
class Record:
    """One log line, read: either a usage item with its grouping attributes, or why not."""

    line: int
    item: Mapping[str, Any] | None = None
    attributes: Mapping[str, str] = attrs.field(factory=dict)
    unpriced: str | None = None  # the reason the record cannot be priced
    error_code: str | None = None  # a failed call: counted, not priced
    malformed: str | None = None  # the line is not a log record


def open_log(path: str) -> IO[str]:
    """A log file as text lines; `.gz` (or gzip magic on stdin) is decompressed on the fly."""
    if path == "-":
        raw = sys.stdin.buffer
        if not hasattr(raw, "peek"):
            raw = io.BufferedReader(raw)  # type: ignore[arg-type]
        head = raw.peek(2)[:2]
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    else:
        stream = gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace")


_DECODER = json.JSONDecoder(parse_float=Decimal)  # one decoder: building one per line is costly
_RAW_DECODE = _DECODER.raw_decode


def _decode(text: str) -> Any:
    """One JSON value filling the line. raw_decode skips decode()'s two whitespace scans;
    a line that starts with whitespace, or has more after the value, goes the full way."""
    try:
        value, end = _RAW_DECODE(text)
    except ValueError:
        return _DECODER.decode(text)
    if end != len(text) and not text[end:].isspace():
        return _DECODER.decode(text)  # raises "Extra data"
    return value


def read_records(compiled: Compiled, lines: Iterable[str], attributes: bool = True) -> Iterator[Record]:
    """Every non-blank line of a log, as a Record; `attributes=False` skips grouping data."""
    reader = LogReader(compiled, attributes)
    for number, text in enumerate(lines, 1):
        if not text or text.isspace():
            continue
        try:
            record = _decode(text)
        except ValueError as error:
            detail = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            yield Record(number, malformed=f"not valid JSON: {detail}")
            continue
        if type(record) is not dict:
            yield Record(number, malformed="not a JSON object")
            continue
        yield reader.to_usage(record, number)


class LogReader:
    """Turns records into usage items, remembering what each model ID resolved to."""

    def __init__(self, compiled: Compiled, attributes: bool = True):
        self.compiled = compiled
        self.attributes = attributes
        self._models: dict[str, tuple[str, str, frozenset[str]] | None] = {}

    def _model(self, model_id: str) -> tuple[str, str, frozenset[str]] | None:
        """(model name, token kind, the token fields that kind declares), or None if unknown."""
        if model_id not in self._models:
            if len(self._models) >= 100_000:  # a cache: on hostile input, stop growing it
                self._models.clear()
            model = resolve_model(self.compiled, model_id)
            if model is None:
                self._models[model_id] = None
            else:
                kind = _token_kind(self.compiled, model)
                spec = self.compiled.kinds.get(kind)
                declared = frozenset(f.name for f in spec.fields) if spec else frozenset()
                self._models[model_id] = (model, kind, declared)
        return self._models[model_id]

    def to_usage(self, record: Mapping[str, Any], line: int = 0) -> Record:
        attributes = _attributes(record) if self.attributes else {}
        if record.get("errorCode"):
            return Record(line, attributes=attributes, error_code=str(record["errorCode"]))
        model_id = record.get("modelId")
        if type(model_id) is not str or not model_id:
            return Record(line, attributes=attributes, malformed="no modelId")
        if ":provisioned-model/" in model_id:
            return Record(
                line,
                attributes=attributes,
                unpriced="a call to provisioned throughput: billed per model unit hour, not per call",
            )
        known = self._model(model_id)
        if known is None:
            return Record(line, attributes={**attributes, "model": model_id}, unpriced=f"unknown model {model_id!r}")
        model, kind, declared = known
        if self.attributes:
            attributes["model"] = model
        item: dict[str, Any] = {"kind": kind, "model": model, "region": record.get("region")}
        given = record.get("input")
        given = given if type(given) is dict else {}
        output = record.get("output")
        output = output if type(output) is dict else {}
        body = given.get("inputBodyJson")
        image = _image_fields(body if type(body) is dict else {}, output)
        if image is not None:
            item["kind"] = "image"
            item.update(image)
        else:
            problem = _token_fields(record, given, output, kind, declared, item)
            if problem:
                if self.attributes:
                    attributes["kind"] = kind
                return Record(line, attributes=attributes, unpriced=problem)
        if self.attributes:
            attributes["kind"] = item["kind"]
        return Record(line, item=item, attributes=attributes)


def resolve_model(compiled: Compiled, model_id: str) -> str | None:
    """The rules' name for a model ID, an ARN or a cross-region inference profile."""
    candidate = model_id
    if candidate.startswith("arn:"):
        resource = candidate.split(":", 5)[-1]
        candidate = resource.split("/", 1)[-1]
    if candidate in compiled.aliases:
        return compiled.aliases[candidate]
    # An inference profile puts a geography before the model ID: `us.` + the ID.
    head, _, rest = candidate.partition(".")
    if rest and rest in compiled.aliases and "." in rest:
        return compiled.aliases[rest]
    return None


def _attributes(record: Mapping[str, Any]) -> dict[str, str]:
    identity = record.get("identity")
    attributes = {
        "region": str(record.get("region") or "(none)"),
        "day": str(record.get("timestamp") or "")[:10] or "(none)",
        "identity": str(identity.get("arn")) if isinstance(identity, dict) and identity.get("arn") else "(none)",
        "operation": str(record.get("operation") or "(none)"),
        "model": str(record.get("modelId") or "(none)"),
    }
    metadata = record.get("requestMetadata")
    if isinstance(metadata, dict):
        attributes.update({f"tag:{k}": str(v) for k, v in metadata.items()})
    return attributes


def _image_fields(body: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any] | None:
    """Image-generation fields from the request body; None when the call made no image."""
    config = body.get("imageGenerationConfig")
    if isinstance(config, dict) or "taskType" in body:
        config = config if isinstance(config, dict) else {}
        fields = {"images": config.get("numberOfImages", 1), "quality": config.get("quality", "standard")}
        _size(fields, config, output)
        return fields
    if "text_prompts" in body:
        fields = {"images": body.get("samples", 1)}
        if "steps" in body:
            fields["steps"] = body["steps"]
        _size(fields, body, output)
        return fields
    if "outputImageWidth" in output or "outputImageHeight" in output:
        fields = {}
        _size(fields, {}, output)
        return fields
    return None


def _size(fields: dict[str, Any], given: Mapping[str, Any], output: Mapping[str, Any]) -> None:
    for name, logged in (("width", "outputImageWidth"), ("height", "outputImageHeight")):
        if name in given:
            fields[name] = given[name]
        elif logged in output:
            fields[name] = output[logged]


def _token_kind(compiled: Compiled, model: str) -> str:
    """`embedding` when the rules price the model only as an embedding model, else `text`."""
    priced_as = {kind for kind, models in compiled.by_model.items() if model in models}
    return "embedding" if "embedding" in priced_as and "text" not in priced_as else "text"


def _token_fields(
    record: Mapping[str, Any], given: Mapping[str, Any], output: Mapping[str, Any], kind: str,
    declared: frozenset[str], item: dict[str, Any],
) -> str | None:
    """Token counts into `item`; a reason when the record has counts the kind cannot hold.

    The record's own counts come first; a streamed response's last event and Converse
    `usage` are read only when the record lacks its input or output count.
    """
    counts = {"input": given, "output": output}
    fallback: dict[str, Any] | None = None
    if given.get("inputTokenCount") is None or output.get("outputTokenCount") is None:
        fallback = _fallback_counts(record)
    for field, (section, key), converse_keys in _TOKEN_FIELDS:
        value = counts[section].get(key)
        if value is None and fallback is not None:
            value = next((fallback[k] for k in (*converse_keys, _STREAM_METRICS.get(field)) if k in fallback), None)
        if value is None:
            continue
        if field in declared:
            item[field] = value
        elif value != 0:
            return f"the rules price no {field} for {kind} usage ({value} in this call)"
    return None


def _fallback_counts(record: Mapping[str, Any]) -> dict[str, Any]:
    """Counts from Converse `usage` and from a streamed response's metrics, in one mapping."""
    return {**_stream_metrics(record), **_converse_usage(record)}


def _converse_usage(record: Mapping[str, Any]) -> Mapping[str, Any]:
    output = record.get("output")
    body = output.get("outputBodyJson") if isinstance(output, dict) else None
    if isinstance(body, dict) and isinstance(body.get("usage"), dict):
        return body["usage"]
    if isinstance(body, list):  # ConverseStream: the `metadata` event
        for event in reversed(body):
            if isinstance(event, dict):
                metadata = event.get("metadata")
                if isinstance(metadata, dict) and isinstance(metadata.get("usage"), dict):
                    return metadata["usage"]
    return {}


def _stream_metrics(record: Mapping[str, Any]) -> Mapping[str, Any]:
    output = record.get("output")
    body = output.get("outputBodyJson") if isinstance(output, dict) else None
    if isinstance(body, list):
        for event in reversed(body):
            if isinstance(event, dict) and isinstance(event.get("amazon-bedrock-invocationMetrics"), dict):
                return event["amazon-bedrock-invocationMetrics"]
    return {}
