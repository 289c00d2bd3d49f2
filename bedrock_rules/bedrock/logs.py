"""Model invocation log records as usage items, in the vocabulary the loaded rules declare.

A record becomes the usage item of its model call and, when a guardrail ran, a
guardrail item: the guardrail is billed whatever model it guards, so a call whose model
cannot be priced (or that a guardrail blocked) still owes it. Which kind a call is
comes from the rules: the kind that prices the model and declares token counts (or
images, for an image call), and the kind that declares guardrail units. Which record
field feeds which usage field is the table in `fields.py`. No model is named here; a
record the rules cannot price is reported with its reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from ..errors import Problem, UsageError
from ..fields import Instant, read_instant
from ..program import Program
from ..ruleset import Ruleset
from ..totals import Entry, Totals
from . import containers
from .containers import Malformed
from .fields import (
    BODY,
    EVENTS,
    GEOGRAPHIES,
    GLOBAL_PREFIX,
    GUARDRAIL_UNITS,
    IMAGE_CALL_TOKENS,
    LATENCIES,
    REQUEST,
    REQUIRED_COUNTS,
    TIERS,
    TIMESTAMP,
    TOKEN_FIELDS,
)

# What `--group-by` offers for logs, besides `tag:KEY` (a requestMetadata pair).
GROUPS = ("model", "region", "day", "identity", "operation", "kind")

_GUARDRAIL_FIELDS = tuple(usage for _, usage in GUARDRAIL_UNITS)
_UNIT_NAMES = dict(GUARDRAIL_UNITS)
# In a guardrail's usage object, what is not a unit count: the number of policies checked.
_NOT_UNITS = frozenset({"automatedReasoningPolicies"})


# Groups every priced item states itself, the same as its record says them: grouped by
# these alone, a record's attributes are never read. (Not `model`: a guardrail item is
# grouped under the model of the call it guarded, which only the record says.)
ITEM_GROUPS = frozenset({"region", "kind"})


def needs_attributes(group_by: Iterable[str]) -> frozenset[str]:
    """The record attributes grouping by `group_by` reads; empty when its items say it all."""
    wanted = frozenset(group_by)
    return frozenset() if wanted <= ITEM_GROUPS else wanted


def check_groups(group_by: Iterable[str]) -> None:
    """Refuse a grouping the log reader cannot give."""
    for key in group_by:
        if key not in GROUPS and not key.startswith("tag:"):
            raise UsageError([Problem(f"cannot group invocation logs by {key!r}; use {', '.join(GROUPS)} or tag:KEY")])


def read_records(
    compiled: Program, lines: Iterable[str], attributes: bool | Iterable[str] = True, profiles: Mapping[str, str] | None = None,
) -> Iterator[Entry]:
    """Every record of JSON lines given as text, as an Entry (for callers holding lines)."""
    reader = LogReader(compiled, attributes, profiles)
    for number, text in enumerate(lines, 1):
        if not text or text.isspace():
            continue
        try:
            record = containers.decode(text)
        except (ValueError, RecursionError) as error:
            yield Entry(number, malformed=containers.problem(error))
            continue
        yield reader.entry(record, number)


def read_file(reader: LogReader, raw: IO[bytes]) -> Iterator[Entry]:
    """Every record of one log file (any container `containers` reads), as an Entry."""
    for place, record in containers.records(raw):
        if type(record) is Malformed:
            yield Entry(place, malformed=record.reason)
        else:
            yield reader.entry(record, place)


def totals_of_log(
    rules: Ruleset, lines: Iterable[str], group_by: Iterable[str] = (), profiles: Mapping[str, str] | None = None,
) -> Totals:
    """Totals of invocation-log records given as JSON lines, in constant memory."""
    accumulator = rules.accumulator(tuple(group_by))
    accumulator.add_records(read_records(rules.program, lines, attributes=needs_attributes(accumulator.group_by), profiles=profiles))
    return accumulator.result()


class LogReader:
    """Turns records into entries, remembering what each model ID resolved to."""

    def __init__(self, compiled: Program, attributes: bool | Iterable[str] = True, profiles: Mapping[str, str] | None = None):
        """`attributes`: whether entries carry the record's grouping attributes (all of them),
        or the names of those wanted (no other is computed)."""
        self.compiled = compiled
        self._wanted = None if isinstance(attributes, bool) else frozenset(attributes)
        self.attributes = bool(self._wanted) if self._wanted is not None else attributes
        self.profiles = dict(profiles or {})
        self._models: dict[str, tuple[str | None, dict[str, str], str | None]] = {}
        self._kinds: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._charges: dict[tuple[str, str, str], bool] = {}
        kinds = compiled.kinds.values()
        self._declared = {k.name: frozenset(f.name for f in k.fields) for k in kinds}
        self._guardrail_kind = next((k.name for k in kinds if self._declared[k.name] & set(_GUARDRAIL_FIELDS)), None)
        # Only rules that date something need each record's date; reading it costs every record.
        self._dated = bool(compiled.dated_kinds)

    # model IDs ----------------------------------------------------------------------

    def _model(self, model_id: str) -> tuple[str | None, dict[str, str], str | None]:
        """(the rules' model name or None, where it was served, the reason when None)."""
        known = self._models.get(model_id)
        if known is None:
            if len(self._models) >= 100_000:  # a cache: on hostile input, stop growing it
                self._models.clear()
            known = self._models[model_id] = self._resolve(model_id)
        return known

    def _resolve(self, model_id: str) -> tuple[str | None, dict[str, str], str | None]:
        shown = clean(model_id)
        if ":provisioned-model/" in model_id:
            return None, {}, "a call to provisioned throughput: billed per model unit hour, not per call"
        if ":application-inference-profile/" in model_id:
            profile_id = model_id.rsplit("/", 1)[-1]
            mapped = self.profiles.get(model_id) or self.profiles.get(profile_id)
            if mapped is None:
                return None, {}, (
                    f"{shown} is an application inference profile, which names no model; "
                    "map it to its model with --profiles FILE (the output of `aws bedrock get-inference-profile`)"
                )
            model, served, _ = self._resolve(mapped)
            if model is None:
                return None, {}, f"application inference profile {shown} maps to {clean(mapped)!r}, an unknown model"
            return model, served, None
        candidate = model_id
        if candidate.startswith("arn:"):
            candidate = candidate.split(":", 5)[-1].split("/", 1)[-1]
        aliases = self.compiled.aliases
        if candidate in aliases:
            return aliases[candidate], {"scope": "in_region"}, None
        # A system-defined inference profile puts its scope before the model ID: `us.` + the ID.
        head, _, rest = candidate.partition(".")
        if rest and rest in aliases and "." in rest:
            if head == GLOBAL_PREFIX:
                return aliases[rest], {"scope": "global"}, None
            if head in GEOGRAPHIES:
                return aliases[rest], {"scope": "geographic", "geography": head}, None
        return None, {}, f"unknown model {shown!r}"

    def _kind(self, model: str, needs: str) -> tuple[str | None, str | None]:
        """The kind that prices `model` and declares `needs`, or why there is none."""
        known = self._kinds.get((model, needs))
        if known is None:
            known = self._kinds[(model, needs)] = self._find_kind(model, needs)  # as many as models x 2
        return known

    def _find_kind(self, model: str, needs: str) -> tuple[str | None, str | None]:
        kinds = [k for k, models in self.compiled.by_model.items() if model in models and needs in self._declared[k]]
        if len(kinds) == 1:
            return kinds[0], None
        if not kinds:
            return None, f"the rules price {model} in no kind with {needs}"
        return None, f"the rules price {model} as {' and as '.join(sorted(kinds))}; the record does not say which"

    def _charged(self, kind: str, model: str, quantity: str) -> bool:
        """Whether a rule prices `quantity` of `model` (at a rate, or free): then a record
        without it cannot be priced. An embedding's output, "not applicable", is not."""
        key = (model, kind, quantity)
        known = self._charges.get(key)
        if known is None:
            rules = self.compiled.by_model.get(kind, {}).get(model, ())
            known = self._charges[key] = any(r.quantity == quantity and r.refusal is None for r in rules)
        return known

    # records ------------------------------------------------------------------------

    def entry(self, record: Any, place: int = 0) -> Entry:
        if type(record) is not dict:
            return Entry(place, malformed="not a JSON object")
        given = record.get("input", {})
        output = record.get("output", {})
        if type(given) is not dict or type(output) is not dict:
            return Entry(place, malformed="input or output is not an object")
        attributes = _attributes(record, self._wanted) if self.attributes else {}
        items: list[dict[str, Any]] = []
        reasons: list[str] = []
        self._guardrail(record, output, items, reasons)
        if record.get("errorCode"):
            return Entry(place, items, attributes, _joined(reasons), clean(str(record["errorCode"])))
        model_id = record.get("modelId")
        if type(model_id) is not str or not model_id:
            return Entry(place, malformed="no modelId")
        model, served, why = self._model(model_id)
        if model is None:
            reasons.insert(0, why or "")
            return Entry(place, items, attributes, _joined(reasons))
        if self.attributes and (self._wanted is None or "model" in self._wanted):
            attributes["model"] = model
        problem = self._call(record, given, output, model, served, items, reasons)
        if problem is not None:
            return Entry(place, attributes=attributes, malformed=problem)
        if self._dated and items:
            stamp = record.get(TIMESTAMP)
            instant = read_instant(stamp) if type(stamp) is str else None
            if not isinstance(instant, Instant):
                why = instant if isinstance(instant, str) else f"no {TIMESTAMP}"
                return Entry(place, attributes=attributes, malformed=f"{why}: the rules price by date")
            for item in items:
                item["at"] = instant.text
        return Entry(place, items, attributes, _joined(reasons))

    def _call(
        self, record: Mapping[str, Any], given: Mapping[str, Any], output: Mapping[str, Any], model: str,
        served: Mapping[str, str], items: list[dict[str, Any]], reasons: list[str],
    ) -> str | None:
        """The model call's item into `items` (or its reason into `reasons`); a malformed record's reason."""
        region = record.get("region")
        body = given.get("inputBodyJson")
        image = _image_fields(body if type(body) is dict else {}, output)
        if image is None and body is None and "inputBodyS3Path" in given:
            image_kind, _ = self._kind(model, "images")
            token_kind, _ = self._kind(model, "input_tokens")
            if image_kind is not None and token_kind is None:
                reasons.insert(0, (
                    f"the request body is in S3 ({clean(str(given['inputBodyS3Path']))}): "
                    "an image call cannot be priced from the record alone"
                ))
                return None
        if image is not None:
            kind, why = self._kind(model, "images")
            if kind is None:
                reasons.insert(0, why or "")
                return None
            sides = {"input": given, "output": output}
            tokens = [(key, sides[side].get(key)) for side, key in IMAGE_CALL_TOKENS if sides[side].get(key) not in (None, 0)]
            if tokens:
                counts = ", ".join(f"{key} {clean(str(count))}" for key, count in tokens)
                reasons.insert(0, f"an image call with {counts}: the rules price this model's images, not its tokens")
                return None
            items.insert(0, {"kind": kind, "model": model, "region": region, **image})
            return None
        kind, why = self._kind(model, "input_tokens")
        if kind is None:
            reasons.insert(0, why or "")
            return None
        declared = self._declared[kind]
        item: dict[str, Any] = {"kind": kind, "model": model, "region": region}
        value: Any
        for name, value in served.items():
            if name in declared:
                item[name] = value
        answer = output.get("outputBodyJson")
        request = body if type(body) is dict else None
        response = answer if type(answer) is dict else None
        events = answer if type(answer) is list else None
        roots = {"record": record, "input": given, "output": output, "request": request, "body": response, "events": events}
        regions = self.compiled.regions
        for field, paths, required, refuse, neutral, normal in _FIELDS_FROM[request is not None, response is not None, events is not None]:
            value = None
            for root, keys in paths:  # _first, inline: this runs for every field of every record
                if root == "events":
                    value = _first(roots, ((root, keys),))
                else:
                    value = roots[root]
                    for key in keys:
                        if type(value) is not dict:
                            value = None
                            break
                        value = value.get(key)
                if value is not None:
                    break
            if value is None:
                if required and self._charged(kind, model, field):
                    return f"no {field} count in the record"
                continue
            if normal:
                value = _normal(field, value)
            if field in declared:
                # An inference region the rules do not name is left out; one that is not text
                # (a list, an object) goes to the item, whose check refuses it, rather than crash here.
                if field != "inference_region" or type(value) is not str or value in regions:
                    item[field] = value
            elif refuse and value != neutral:
                reasons.insert(0, f"the rules price no {field} for {kind} usage ({clean(str(value))} in this call)")
                return None
        items.insert(0, item)
        return None

    def _guardrail(self, record: Mapping[str, Any], output: Mapping[str, Any], items: list, reasons: list[str]) -> None:
        """The guardrail item of a call, from every trace in the record; or why not."""
        units, guarded = guardrail_units(output.get("outputBodyJson"))
        if units is None:
            if guarded:
                reasons.append("guardrail units unknown: the record shows a guardrail ran but carries no unit counts")
            return
        if isinstance(units, str):
            reasons.append(units)
            return
        unknown = [f"{clean(k)} ({v})" for k, v in units.items() if k not in _UNIT_NAMES and v]
        if unknown:
            reasons.append(f"the log reader does not know guardrail usage {', '.join(unknown)}")
            return
        kind = self._guardrail_kind
        if kind is None:
            if any(units.values()):
                reasons.append("the rules declare no kind with guardrail units")
            return
        declared = self._declared[kind]
        item: dict[str, Any] = {"kind": kind, "region": record.get("region")}
        if "counted_by" in declared:  # the rules' marker of units AWS counted, not characters
            item["counted_by"] = "aws"
        for aws, usage in GUARDRAIL_UNITS:
            count = units.get(aws, 0)
            if usage in declared:
                item[usage] = count
            elif count:
                reasons.append(f"the rules price no {usage} for {kind} usage ({count} in this call)")
                return
        items.append(item)


def guardrail_units(body: Any) -> tuple[dict[str, int] | str | None, bool]:
    """Units per policy summed over every assessment in a response body (or its events),
    and whether a guardrail ran; a reason instead of the units when a count is not whole."""
    containers_ = body if type(body) is list else [body]
    units: dict[str, int] = {}
    found = guarded = False
    for container in containers_:
        if type(container) is not dict:
            continue
        if "amazon-bedrock-guardrailAction" in container or container.get("stopReason") == "guardrail_intervened":
            guarded = True
        for assessment in _assessments(container):
            guarded = True
            metrics = assessment.get("invocationMetrics") if type(assessment) is dict else None
            usage = metrics.get("usage") if type(metrics) is dict else None
            if type(usage) is not dict:
                continue
            found = True
            for name, count in usage.items():
                if name in _NOT_UNITS:
                    continue
                if type(count) is not int or count < 0:
                    return f"guardrail usage {clean(name)} is not a whole number ≥ 0 ({clean(str(count))})", True
                units[name] = units.get(name, 0) + count
    return (units if found else None), guarded


def _assessments(container: Mapping[str, Any]) -> Iterator[Any]:
    """Each guardrail's assessment, in the places the record format puts them."""
    traces = []
    for holder in (container, container.get("metadata")):  # Converse, and ConverseStream's metadata event
        trace = holder.get("trace") if type(holder) is dict else None
        guardrail = trace.get("guardrail") if type(trace) is dict else None
        if type(guardrail) is dict:
            traces.append((guardrail.get("inputAssessment"), guardrail.get("outputAssessments")))
    trace = container.get("amazon-bedrock-trace")  # InvokeModel and each stream event
    guardrail = trace.get("guardrail") if type(trace) is dict else None
    if type(guardrail) is dict:
        traces.append((guardrail.get("input"), guardrail.get("outputs")))
    for given, outputs in traces:
        if type(given) is dict:
            yield from given.values()  # keyed by guardrail id
        for output in outputs if type(outputs) is list else [outputs]:
            if type(output) is not dict:
                continue
            for assessment in output.values():  # keyed by guardrail id: one, or a list of them
                yield from assessment if type(assessment) is list else [assessment]


Path = tuple[str, tuple[str, ...]]
# Where a path starts, longest prefix first: each of these is found once per record.
_ROOTS = (
    (f"{EVENTS}.", "events"), (f"{BODY}.", "body"), (f"{REQUEST}.", "request"),
    ("input.", "input"), ("output.", "output"), ("", "record"),
)


def _compile(path: str) -> Path:
    """A table path as (the part of the record it starts from, the keys below it)."""
    prefix, root = next((p, r) for p, r in _ROOTS if path.startswith(p))
    return root, tuple(path[len(prefix):].split("."))


# The table's paths, split once: this runs for every record.
_PATHS = tuple((source, tuple(_compile(p) for p in source.paths)) for source in TOKEN_FIELDS)
# The same, without the paths from parts a record lacks, by (request body, response
# body, response events) present: most records have no bodies, and skip most paths.
_PATHS_FROM = {
    (request, body, events): tuple(
        (source, tuple(
            (root, keys) for root, keys in paths
            if {"request": request, "body": body, "events": events}.get(root, True)
        ))
        for source, paths in _PATHS
    )
    for request in (False, True) for body in (False, True) for events in (False, True)
}
# The same as (field, paths, required, refused when undeclared, neutral, spelled several ways).
_FIELDS_FROM = {
    present: tuple(
        (source.usage_field, paths, source.usage_field in REQUIRED_COUNTS, source.when_undeclared == "refuse",
         source.neutral, source.usage_field in ("service_tier", "latency"))
        for source, paths in table
    )
    for present, table in _PATHS_FROM.items()
}


def _first(roots: Mapping[str, Any], paths: tuple[Path, ...]) -> Any:
    for root, keys in paths:
        start = roots[root]
        if start is None:
            continue
        for value in reversed(start) if root == "events" else (start,):  # a stream: last event first
            for key in keys:
                if type(value) is not dict:
                    value = None
                    break
                value = value.get(key)
            if value is not None:
                return value
    return None


def _normal(field: str, value: Any) -> Any:
    """Spellings of a tier or a latency, to the values the rules use."""
    if field == "service_tier":
        if type(value) is dict:
            value = value.get("type")
        return TIERS.get(value, value) if type(value) is str else value
    if field == "latency" and type(value) is str:
        return LATENCIES.get(value, value)
    return value


def _joined(reasons: list[str]) -> str | None:
    return "; ".join(reasons) if reasons else None


def clean(text: str) -> str:
    """Text from a record, safe to print: a lone surrogate is shown as its escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _day(stamp: Any) -> str:
    """A record's day: its timestamp's UTC day, as dated rules price it. AWS writes UTC (`Z`);
    a time in another zone (`23:30:00-05:00`) is on the next day in UTC, not the one it reads."""
    if type(stamp) is str and len(stamp) > 10 and stamp[-6:-5] in ("+", "-"):
        instant = read_instant(stamp)
        if isinstance(instant, Instant):
            return instant.day.isoformat()
    return clean(str(stamp or "")[:10]) or "(none)"


def _attributes(record: Mapping[str, Any], wanted: frozenset[str] | None = None) -> dict[str, str]:
    """The record's grouping attributes; only those `wanted` (and tags when one is) when given."""
    identity = record.get("identity")
    found = {
        "region": lambda: clean(str(record.get("region") or "(none)")),
        "day": lambda: _day(record.get("timestamp")),
        "identity": lambda: clean(str(identity.get("arn"))) if isinstance(identity, dict) and identity.get("arn") else "(none)",
        "operation": lambda: clean(str(record.get("operation") or "(none)")),
        "model": lambda: clean(str(record.get("modelId") or "(none)")),
    }
    attributes = {name: value() for name, value in found.items() if wanted is None or name in wanted}
    metadata = record.get("requestMetadata")
    if isinstance(metadata, dict) and (wanted is None or any(name.startswith("tag:") for name in wanted)):
        attributes.update({f"tag:{clean(str(k))}": clean(str(v)) for k, v in metadata.items()})
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
