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

import bisect
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Annotated, Any

from .. import limits
from ..errors import Problem, UsageError
from ..fields import Instant, read_instant
from ..interpreter import window_bounds
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
        self._dated = bool(compiled.dated_kinds) or compiled.periodic  # monthly pricing needs the month too

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
        if ":imported-model/" in model_id:  # Custom Model Import: billed by the minute the model is up
            return None, {}, (
                "a call to an imported model: Custom Model Import is billed per custom model unit minute, "
                "not per call; price it as custom_import usage"
            )
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
            if "model" in attributes and type(record.get("modelId")) is str:  # grouped as its priced calls are
                attributes["model"] = self._model(record["modelId"])[0] or attributes["model"]
            undated = self._date(record, items)
            if undated is not None:
                return Entry(place, attributes=attributes, malformed=undated)
            return Entry(place, items, attributes, _joined(reasons), clean(str(record["errorCode"])))
        model_id = record.get("modelId")
        if type(model_id) is not str or not model_id:
            return Entry(place, malformed="no modelId")
        model, served, why = self._model(model_id)
        if model is None:
            reasons.insert(0, why or "")
            # The guardrail of a call to a model the rules do not know is billed all the same, at its date.
            undated = self._date(record, items)
            if undated is not None:
                return Entry(place, attributes=attributes, malformed=undated)
            return Entry(place, items, attributes, _joined(reasons))
        if self.attributes and (self._wanted is None or "model" in self._wanted):
            attributes["model"] = model
        problem = self._call(record, given, output, model, served, items, reasons)
        if problem is not None:
            return Entry(place, attributes=attributes, malformed=problem)
        undated = self._date(record, items)
        if undated is not None:
            return Entry(place, attributes=attributes, malformed=undated)
        return Entry(place, items, attributes, _joined(reasons))

    def _date(self, record: Mapping[str, Any], items: list[dict[str, Any]]) -> str | None:
        """Give every item the record's instant when the rules price by date; the reason when it has none."""
        if not (self._dated and items):
            return None
        stamp = record.get(TIMESTAMP)
        instant = read_instant(stamp) if type(stamp) is str else None
        if not isinstance(instant, Instant):
            if isinstance(instant, str):
                why = instant
            elif stamp is None:
                why = f"no {TIMESTAMP}"
            else:  # a number, an object: not the text AWS writes
                why = f"{TIMESTAMP} {clean(str(stamp))[:40]} is not a time written as text"
            return f"{why}: the rules price by date"
        # The rules' windows are days: a time AWS writes (UTC) is priced as its day, and says
        # so in a refusal, so the records of a day refused alike are counted as one reason (as
        # the sums of `--engine duckdb` and Spark have them); any other time is kept whole.
        at = stamp[:10] if isinstance(stamp, str) and STAMP.match(stamp) else instant.text
        for item in items:
            item["at"] = at
        return None

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
        for part, whole in _PARTS:
            if part in item:
                problem = _take_part(item, part, whole)
                if problem is not None:
                    return problem
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


# (part, whole): a count the record gives inside another (see Source.part_of).
_PARTS = tuple((source.usage_field, source.part_of) for source in TOKEN_FIELDS if source.part_of)


def _take_part(item: dict[str, Any], part: str, whole: str) -> str | None:
    """`item[whole]` less `item[part]`, both whole numbers; why the record is malformed when they
    do not add up. A count that is not a whole number is left for the item's check to refuse."""
    share, total = item[part], item.get(whole)
    if type(share) is not int:
        return None
    if total is None:
        return f"{part} {share} without the {whole} count it is part of" if share else None
    if type(total) is not int:
        return None
    if share > total:
        return f"{part} {share} is more than the {whole} count it is part of ({total})"
    item[whole] = total - share
    return None


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


# The quick way ---------------------------------------------------------------------
#
# Most records of a log are alike: a call to a model with its token counts at the
# record's top level and nothing else. Such a record is read by msgspec into the few
# fields it has (every key known, every value of the expected type), and only its
# integer counts are added to the sums of its *shape*: the values that decide how it is
# read and priced (model ID, region, tier, latency, inference region, which counts it
# gives, the day window when the rules date prices, the grouping attributes). A shape is
# worked out once, from its first record, by the standard reader and pricer; at the end
# each shape's sums are priced once, exactly. Anything else (a body, a guardrail, an
# image call, an unknown key, a duplicate key, a count that is not a whole number, a
# shape the standard way refuses or prices per record, such as a tier on a request's
# own size) is read the standard way, record by record, into the same totals.

BLOCK = 1 << 20  # bytes read at a time


def add_log(reader: LogReader, accumulator: Any, raw: IO[bytes]) -> None:
    """Every record of one log file into `accumulator` (`Ruleset.accumulator`): the same
    totals as `accumulator.add_records(read_file(reader, raw))`, the usual records summed
    per shape."""
    summing = _Summing.make(reader, accumulator) if containers.container(raw) == "lines" else None
    if summing is None:
        accumulator.add_records(read_file(reader, raw))
        return
    accumulator.add_records(summing.entries(raw))
    summing.finish()


def _structs() -> Any:
    """The record's shape for msgspec, every key known (an unknown one sends it the standard way)."""
    import msgspec  # start-up time: only logs need it

    # A whole number ≥ 0 that fits 64 bits (a larger one is checked the standard way, which has its own bound).
    count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None
    text = str | None
    # gc=False: records hold only text, numbers and each other, never a cycle, and the
    # collector walking thousands of them per block costs more than reading them.
    def struct(name: str, fields: tuple[tuple[str, Any], ...], frozen: bool = False) -> Any:
        return msgspec.defstruct(
            name, [(field, kind, None) for field, kind in fields], frozen=frozen,
            forbid_unknown_fields=True, omit_defaults=True, gc=False,
        )

    identity = struct("Identity", (("arn", text),), frozen=True)
    given = struct("Input", (
        ("inputContentType", text), ("inputTokenCount", count),
        ("cacheReadInputTokenCount", count), ("cacheWriteInputTokenCount", count),
    ))
    output = struct("Output", (("outputContentType", text), ("outputTokenCount", count)))
    performance = struct("Performance", (("latency", text),), frozen=True)
    Record = struct("Record", (
        ("schemaType", text), ("schemaVersion", text), ("timestamp", text), ("accountId", text),
        ("identity", identity | None), ("region", text), ("requestId", text), ("operation", text),
        ("modelId", text), ("input", given | None), ("output", output | None), ("errorCode", text),
        ("inferenceRegion", text), ("serviceTier", text), ("performanceConfig", performance | None),
        ("requestMetadata", dict[str, str] | None),
    ))
    return msgspec, Record


# The counts a bodiless record gives, as (Input or Output attribute, usage field): the
# first path of each in the field table (the others are in bodies, which these records lack).
_COUNTS = (
    ("inputTokenCount", "input_tokens"),
    ("outputTokenCount", "output_tokens"),
    ("cacheReadInputTokenCount", "cache_read_tokens"),
    ("cacheWriteInputTokenCount", "cache_write_tokens"),
)
_FIRST_PATHS = {source.usage_field: source.paths[0] for source in TOKEN_FIELDS}
assert all(_FIRST_PATHS[usage].split(".")[-1] == name for name, usage in _COUNTS)  # the table and this list agree
# A timestamp in the form AWS writes (UTC): its day is its first ten characters.
STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?Z\Z")


class _Shape:
    """How every record of one shape is priced: its group, kind and plan, which of its
    counts feed which quantity, and which must be 0 (else the record goes the standard way)."""

    __slots__ = ("group", "kind", "plan", "fields", "zero", "defaults", "sums")

    def __init__(self, group, kind, plan, fields, zero, defaults):
        self.group = group
        self.kind = kind
        self.plan = plan
        self.fields = fields  # per count (in _COUNTS order): its usage field, or None
        self.zero = zero  # indices of counts that must be 0
        self.defaults = defaults  # (usage field, default) of the kind's counts the shape leaves out
        self.sums = [0, 0, 0, 0, 0]  # records, then each count


class _Summing:
    """Sums the usual records of a log per shape (see above); hands the others on."""

    MAX_SHAPES = 200_000  # past it, new shapes are read the standard way: memory stays bounded

    def __init__(self, reader: LogReader, accumulator: Any, msgspec: Any, record_type: Any):
        self.reader = reader
        self.accumulator = accumulator
        self.decode = msgspec.json.Decoder(record_type).decode
        self.decode_many = msgspec.json.Decoder(list[record_type]).decode
        self.encode = msgspec.json.Encoder().encode
        self.errors = (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError)
        self.shapes: dict[tuple, _Shape | None] = {}
        compiled = reader.compiled
        self.dated = reader._dated
        self.days: dict[str, int | None] = {}
        self.bounds = window_bounds(compiled) if self.dated else []
        wanted = reader._wanted if reader.attributes else frozenset()
        if wanted is None:
            wanted = frozenset(GROUPS) | {"tag:"}
        self.tags = tuple(sorted(name[4:] for name in wanted if name.startswith("tag:") and len(name) > 4))
        self.any_tag = any(name.startswith("tag:") for name in wanted)
        self.by_day = "day" in wanted
        self.by_identity = "identity" in wanted
        self.by_operation = "operation" in wanted
        self.plans: dict[tuple, Any] = {}

    @classmethod
    def make(cls, reader: LogReader, accumulator: Any) -> _Summing | None:
        """A summing reader, or None when the standard way must read everything: msgspec is
        absent or not wanted, the rules round each charge, or the reader is not the plain one."""
        if containers.quick_decoder() is None or accumulator._per_item or reader.compiled is not accumulator.compiled:
            return None
        if reader._wanted is None and reader.attributes:  # every attribute, tags included: the standard way
            return None
        try:
            msgspec, record_type = _structs()
        except ImportError:
            return None
        return cls(reader, accumulator, msgspec, record_type)

    def entries(self, raw: IO[bytes]) -> Iterator[Entry]:
        """The entries of the records that are not summed here, in order; summed ones are added up."""
        cap = limits.MAX_LOG_RECORD_BYTES
        shapes = self.shapes
        dated = self.dated
        days = self.days
        stamp_ok = STAMP.match
        extra = self._extra
        # What decides how a record is read and priced, and its counts, each in one C call.
        fields_of = operator.attrgetter("modelId", "region", "serviceTier", "performanceConfig", "inferenceRegion", "errorCode")
        counts_of = operator.attrgetter(*(f"{'output' if name == 'outputTokenCount' else 'input'}.{name}" for name, _ in _COUNTS))
        standard = containers.LineDecoder()
        reader = self.reader
        read = raw.read
        number = 0
        carry = b""
        skipping = False
        first = True
        while True:
            chunk = read(BLOCK)
            if not chunk:
                break
            if first:
                first = False
                while len(chunk) < len(containers.BOM) and containers.BOM.startswith(chunk):
                    more = read(BLOCK)
                    if not more:
                        break
                    chunk += more
                if chunk.startswith(containers.BOM):
                    chunk = chunk[len(containers.BOM):]
            if skipping:  # the rest of an over-long line
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk = chunk[end + 1:]
                skipping = False
            lines = (carry + chunk if carry else chunk).split(b"\n")
            carry = lines.pop()
            for line, record in zip(lines, self._decoded(lines, cap), strict=True):
                number += 1
                if record is not None:
                    try:
                        a, b, c, d = counts_of(record)  # input, output, cache read, cache write
                    except AttributeError:  # no input or no output: the standard way
                        a = False
                    if a is not False:
                        if dated:
                            stamp = record.timestamp
                            segment = days.get(stamp[:10], False) if type(stamp) is str and stamp_ok(stamp) else None
                            if segment is False:
                                segment = self._segment(stamp[:10])  # type: ignore[index]
                        else:
                            segment = 0
                        if segment is not None:
                            key = (
                                fields_of(record), a is None, b is None, c is None, d is None, segment,
                                extra(record) if extra else None,
                            )
                            shape: Any = shapes.get(key, False)
                            if shape is False:
                                shape = self._shape(key, line, number)
                            if shape is not None:
                                zero = shape.zero
                                if not zero or not any((a, b, c, d)[i] for i in zero):
                                    sums = shape.sums
                                    sums[0] += 1
                                    if a:
                                        sums[1] += a
                                    if b:
                                        sums[2] += b
                                    if c:
                                        sums[3] += c
                                    if d:
                                        sums[4] += d
                                    continue
                if len(line) > cap:
                    yield Entry(number, malformed=containers.too_long())
                    continue
                value = standard(line)
                if value is containers.BLANK:
                    continue
                if type(value) is Malformed:
                    yield Entry(number, malformed=value.reason)
                else:
                    yield reader.entry(value, number)
            if len(carry) > cap:
                number += 1
                yield Entry(number, malformed=containers.too_long())
                carry = b""
                skipping = True
        if carry:
            number += 1
            value = standard(carry)
            if value is not containers.BLANK:
                yield Entry(number, malformed=value.reason) if type(value) is Malformed else reader.entry(value, number)

    def _decoded(self, lines: list[bytes], cap: int) -> list[Any]:
        """Each line's record, or None where the line must be read the standard way.

        A record is taken only when msgspec's encoding of it is exactly as long as its
        line: every key is one this reader knows and holds a value of the expected type,
        so the encoding can only be shorter, and is shorter when the line named a key
        twice (msgspec keeps the last, the standard way refuses the record), was spaced,
        or wrote a value another way (`\\u00e9`, `null`). A whole block is read as one
        array first (as many records as lines, or a line held more than one value, joined
        by a comma); when anything in it is unusual, line by line.
        """
        if lines and len(lines[0]) <= cap:  # only the first can be longer than a block
            try:
                records = self.decode_many(b"[" + b",".join(lines) + b"]")
            except self.errors:
                pass
            else:
                if len(records) == len(lines) and len(self.encode(records)) == sum(map(len, lines)) + len(lines) + 1:
                    return records
        found = []
        for line in lines:
            try:
                record = self.decode(line)
            except self.errors:
                record = None
            if record is not None and (len(line) > cap or len(self.encode(record)) != len(line) - line.endswith(b"\r")):
                record = None
            found.append(record)
        return found

    @property
    def _extra(self) -> Any:
        """The grouping attributes a record's shape holds besides its fields, or None when none."""
        parts = []
        if self.by_day:
            parts.append(lambda r: (r.timestamp or "")[:10])
        if self.by_identity:
            parts.append(lambda r: r.identity)
        if self.by_operation:
            parts.append(lambda r: r.operation)
        if self.any_tag:
            tags = self.tags
            parts.append(lambda r: None if r.requestMetadata is None else tuple(r.requestMetadata.get(t) for t in tags))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return lambda r: tuple(part(r) for part in parts)

    def _segment(self, day: str) -> int | None:
        """Which span between the rules' window edges a day falls in; None when it is no date."""
        if len(self.days) >= 100_000:
            self.days.clear()
        instant = read_instant(day)
        found = bisect.bisect_right(self.bounds, instant.day) if isinstance(instant, Instant) else None
        self.days[day] = found
        return found

    def _shape(self, key: tuple, line: bytes, number: int) -> _Shape | None:
        """The shape of a record, from the standard reader and pricer; None: the standard way."""
        shape = self._work_out(line, number)
        if len(self.shapes) < self.MAX_SHAPES:
            self.shapes[key] = shape
        return shape

    def _work_out(self, line: bytes, number: int) -> _Shape | None:
        try:
            record = containers.decode(line.decode("utf-8"))
        except (ValueError, RecursionError):  # what msgspec read, the standard decoder does not: its way decides
            return None
        code = record.get("errorCode")
        if code and type(record.get("input", {})) is dict and type(record.get("output", {})) is dict:
            return _Shape(clean(code), None, None, (), (), ())  # a failed call: counted, whatever its counts
        # The same record with every count 0: what it is read as, whatever its counts.
        for index, (name, _) in enumerate(_COUNTS):
            if _present(record, index):
                record["output" if name == "outputTokenCount" else "input"][name] = 0
        entry = self.reader.entry(record, number)
        if entry.malformed is not None or entry.unpriced is not None or entry.error_code is not None or len(entry.items) != 1:
            return None
        item = entry.items[0]
        kind = item.get("kind")
        pricer = self.accumulator.pricer
        if type(kind) is not str or pricer.batch_counts(kind, dated=True) is None:
            return None  # a kind priced on more than its counts and names: record by record
        found = pricer.plan_of(item)
        if found is None:
            return None
        values, plan = found
        if plan.refusal is not None or not pricer.summable(kind, values, plan):
            return None  # refused, or a rule that can apply reads more than the sums tell: record by record
        fields = tuple(usage if usage in item else None for _, usage in _COUNTS)
        declared = self.reader._declared[kind]
        # A count the kind does not declare must be 0 (the standard way refuses it otherwise);
        # so must a quantity no matching rule prices (plan.zero).
        zero = tuple(
            index for index, (_, usage) in enumerate(_COUNTS)
            if _present(record, index) and (usage not in declared or usage in plan.zero)
        )
        counts = dict(pricer.batch_counts(kind, dated=True) or ())
        defaults = tuple((name, default) for name, default in counts.items() if name not in item)
        if any(default is None for _, default in defaults):
            return None
        group = self.accumulator._group(item, values, entry.attributes)
        return _Shape(group, kind, plan, fields, zero, defaults)

    def finish(self) -> None:
        """The sums, priced once per shape, into the accumulator."""
        accumulator = self.accumulator
        for shape in self.shapes.values():
            if shape is None or not shape.sums[0]:
                continue
            count = shape.sums[0]
            if shape.kind is None:
                accumulator.add_failed(shape.group, count)
                shape.sums[0] = 0
                continue
            sums = {usage: shape.sums[index + 1] for index, usage in enumerate(shape.fields) if usage is not None}
            for name, default in shape.defaults:
                sums[name] = default * count
            accumulator.add_sums(shape.group, shape.kind, shape.plan, sums, count)
            shape.sums = [0, 0, 0, 0, 0]


def _present(record: Mapping[str, Any], index: int) -> bool:
    name = _COUNTS[index][0]
    side = record.get("output" if name == "outputTokenCount" else "input")
    return type(side) is dict and name in side


