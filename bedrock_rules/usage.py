"""Usage documents: read JSON or YAML exactly, and check every item against its kind.

Numbers are read as `int` or `Decimal`, never float. Every problem of a document is
collected, each naming the item and the field, before anything is priced.
"""

from __future__ import annotations

import decimal
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import attrs

from . import limits
from .errors import Problem, UsageError, did_you_mean
from .fields import DateType, Instant, convert, convert_fields, shown_value
from .program import Program
from .semantics import Missing


@attrs.frozen
class Item:
    """One usage item, checked: its fields with defaults applied and its quantities."""

    index: int
    name: str | None
    kind: str
    values: Mapping[str, Any] = attrs.field(eq=False)
    source: str | None = None

    @property
    def label(self) -> str:
        return f"item {self.index}" + (f" ({self.name})" if self.name else "")


# Reading ----------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number a usage can hold")


def json_error(error: json.JSONDecodeError) -> tuple[str, int]:
    """The decoder's complaint and its offset, worded the same on every Python version.

    Python 3.13 says "Illegal trailing comma before end of object" at the comma where
    earlier versions say "Expecting property name enclosed in double quotes" at the brace.
    """
    text, pos = error.doc, error.pos
    comma = pos if text[pos : pos + 1] == "," else len(text[:pos].rstrip(" \t\r\n")) - 1
    if comma >= 0 and text[comma] == ",":
        closing = text[comma + 1 :].lstrip(" \t\r\n")[:1]
        if closing in ("}", "]"):
            return f"a comma before the closing {closing!r}", comma
    return error.msg, pos


# How usage JSON is decoded: numbers exact, no NaN or Infinity, no key twice in an object.
_JSON_EXACT: dict[str, Any] = {
    "parse_int": limits.exact_int,
    "parse_float": limits.exact_decimal,
    "parse_constant": _no_constants,
    "object_pairs_hook": _no_duplicates,
}

_YAML_INT = "tag:yaml.org,2002:int"
_YAML_FLOAT = "tag:yaml.org,2002:float"
_YAML_BOOL = "tag:yaml.org,2002:bool"


@functools.cache
def _yaml_loader() -> type:
    """Safe YAML: no object construction, decimals stay exact, duplicate keys refused.

    Built on first use: most documents are JSON, and importing yaml costs start-up time.
    """
    import yaml  # start-up time: most documents are JSON

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            # Aliases are refused outright: expanding them is how a few lines become a billion.
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not accepted in usage documents; write the value out", self.peek_event().start_mark
                )
            nested = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
            self.depth += nested
            try:
                if self.depth > limits.MAX_DEPTH:
                    too_deep = limits.nesting(f"more than {limits.MAX_DEPTH}")
                    raise yaml.composer.ComposerError(None, None, too_deep, self.peek_event().start_mark)
                return super().compose_node(parent, index)
            finally:
                self.depth -= nested

    def limited(problem: str | None, node: yaml.ScalarNode) -> None:
        if problem:
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)

    def exact_int(loader: Loader, node: yaml.ScalarNode) -> Any:
        limited(limits.number_text(node.value), node)
        text = loader.construct_scalar(node)
        try:
            return int(text, 10)  # `010` is ten, as in JSON, not YAML 1.1's octal eight
        except ValueError:  # an explicit `!!int` on something else
            raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a whole number", node.start_mark) from None

    def exact_decimal(loader: Loader, node: yaml.ScalarNode) -> Any:
        text = loader.construct_scalar(node).replace("_", "")
        if text.lower().lstrip("+-") in (".inf", ".nan"):
            raise yaml.constructor.ConstructorError(None, None, f"{text} is not a number a usage can hold", node.start_mark)
        try:
            return limits.exact_decimal(text)
        except limits.LimitExceeded as error:
            limited(str(error), node)

    def unique_mapping(loader: Loader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]`: a list or mapping cannot be a field name
                raise yaml.constructor.ConstructorError(None, None, "a key must be a name, not a list or mapping", key_node.start_mark)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
                )
            result[key] = loader.construct_object(value_node)
        return result

    def plain_only(loader: Loader, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag.replace('tag:yaml.org,2002:', '!!')} values are not accepted in usage documents", node.start_mark
        )

    def as_text(loader: Loader, node: yaml.ScalarNode) -> str:
        return loader.construct_scalar(node)

    # YAML 1.2 (core schema, as JSON would read it), not PyYAML's YAML 1.1. Numbers are
    # written as in JSON: YAML 1.1 also reads `1:30` as 90, `0x10` as 16, `0o10` or `010`
    # as 8 and `1_000` as 1000, which would price a guess; those stay text and are refused
    # as counts. Only true and false are flags: `no`, `off`, `yes`, `on` (a country code,
    # a feature's name) stay text. `=` and `<<` are plain text too, as YAML 1.2 has them.
    replaced = (_YAML_INT, _YAML_FLOAT, _YAML_BOOL, "tag:yaml.org,2002:value", "tag:yaml.org,2002:merge")
    Loader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag not in replaced]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(_YAML_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    Loader.add_implicit_resolver(_YAML_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
    Loader.add_implicit_resolver(
        _YAML_FLOAT,
        re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    Loader.add_constructor("tag:yaml.org,2002:int", exact_int)
    Loader.add_constructor("tag:yaml.org,2002:float", exact_decimal)
    Loader.add_constructor("tag:yaml.org,2002:map", unique_mapping)
    # A usage document holds mappings, lists, text, numbers, true/false and null: a set's
    # order is not even stable, and a date (`name: 2024-06-01`) is meant as text.
    Loader.add_constructor("tag:yaml.org,2002:timestamp", as_text)
    for tag in ("set", "binary", "omap", "pairs"):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", plain_only)
    return Loader


def _as_json(text: str, source: str) -> bool:
    """Whether a document is read as JSON: named .json, or not named YAML and looking like JSON."""
    return source.endswith(".json") or (not source.endswith((".yaml", ".yml")) and text.lstrip()[:1] in ("{", "["))


def _limits_then_is_json(text: str, source: str) -> bool:
    """Whether the document is JSON, once its size (and, as JSON, its nesting) is within the limits; else refused (BU003)."""
    too_large = limits.document_size(text)
    if too_large:
        raise UsageError([Problem(too_large, source=source, code="BU003")])
    if not _as_json(text, source):
        return False
    too_deep = limits.json_depth(text)
    if too_deep:
        raise UsageError([Problem(too_deep, source=source, code="BU003")])
    return True


def read_document(text: str, source: str) -> Any:
    """Parse a usage document; JSON when it looks like JSON or is named .json."""
    if _limits_then_is_json(text, source):
        try:
            return json.loads(text, **_JSON_EXACT)
        except json.JSONDecodeError as error:
            said, pos = json_error(error)
            line, column = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
            message = f"not valid JSON: {said} at line {line}, column {column}"
            raise UsageError([Problem(message, source=source, code="BU002")]) from None
        except limits.LimitExceeded as error:
            raise UsageError([Problem(str(error), source=source, code="BU003")]) from None
        except ValueError as error:
            raise UsageError([Problem(f"not valid JSON: {error}", source=source, code="BU002")]) from None
    import yaml  # start-up time: most documents are JSON

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError([Problem(f"not valid YAML: {error.problem or error.context}{where}", source=source, code="BU002")]) from None
    except (yaml.YAMLError, decimal.InvalidOperation) as error:
        raise UsageError([Problem(f"not valid YAML: {error}", source=source, code="BU002")]) from None


# Checking ---------------------------------------------------------------------


def check_items(
    program: Program, raw_items: Sequence[Any], source: str | None = None, start: int = 1, at: Instant | None = None
) -> tuple[list[Item], list[Problem]]:
    """Check raw usage items against the ruleset's kinds; every problem is returned.

    `at` dates the items that carry no `at` of their own (`--at DATE`).
    """
    lookups = {"model": program.aliases, "region": {r: r for r in program.regions}}
    items: list[Item] = []
    problems: list[Problem] = []
    for index, raw in enumerate(raw_items, start):
        if not isinstance(raw, Mapping):
            problems.append(Problem(
                f"expected an object with `kind` and its fields, got {shown_value(raw)}", index, source=source, code="BU102"
            ))
            continue
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            problems.append(Problem(f"expected a text, got {shown_value(name)}", index, field="name", source=source, code="BU106"))
            name = None
        kind_name = raw.get("kind")
        if kind_name is None:
            kinds = ", ".join(program.kinds)
            problems.append(Problem(f"missing; expected one of {kinds}", index, name, "kind", source, code="BU103"))
            continue
        kind = program.kinds.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            hint = did_you_mean(kind_name, program.kinds) if isinstance(kind_name, str) else ""
            problems.append(Problem(
                f"unknown kind {shown_value(kind_name)}{hint}; expected one of {', '.join(program.kinds)}",
                index, name, "kind", source, code="BU103",
            ))
            continue
        values, bad = convert_fields(raw, kind.fields, lookups, "", frozenset({"kind", "name", "at"}))
        for b in bad:
            problems.append(Problem(b.message, index, name, b.path, source, code=b.code))
        refused = bool(bad)
        if "at" in raw:
            instant, wrong = convert(raw["at"], DateType(), lookups)
            if wrong:
                problems.append(Problem(wrong, index, name, "at", source, code="BU108"))
                refused = True
            values["at"] = instant
        elif at is not None:
            values["at"] = at
        if refused:
            continue
        model_field = kind.model_field
        if model_field and model_field in values:
            values["provider"] = program.provider_of(values[model_field])
        failed = False
        for derived in kind.derived:
            try:
                values[derived.name] = derived.compute(values)
            except decimal.DecimalException:
                problems.append(Problem(
                    f"{derived.name} cannot be computed exactly from these numbers", index, name, derived.name, source,
                    code="BU107",
                ))
                failed = True
                continue
            except Missing:  # an optional input was left out: the quantity is absent
                continue
            if values[derived.name] < 0:  # `tokens - 1000` without max(…, 0) would bill a credit
                problems.append(Problem(
                    f"{derived.name} comes to {values[derived.name]} for this usage; a quantity cannot be below 0 "
                    "(the rules should write it with max(…, 0))",
                    index, name, derived.name, source, code="BU107",
                ))
                failed = True
        if not failed:
            items.append(Item(index, name, kind.name, values, source))
    return items, problems


def items_of(document: Any, source: str | None = None) -> list[Any]:
    """The raw items of a document, or UsageError when its shape is wrong."""
    if not isinstance(document, Mapping):
        raise UsageError([Problem(f"expected an object with a `usage` list, got {shown_value(document)}", source=source, code="BU101")])
    unknown = [k for k in document if k != "usage"]
    problems = [
        Problem(f"unknown top-level key {shown_value(k)}; a usage document holds `usage`", source=source, code="BU101")
        for k in unknown
    ]
    usage = document.get("usage")
    if "usage" not in document:
        problems.append(Problem(
            "no `usage` list: a usage document is an object holding `usage`, a list of items", source=source, code="BU101"
        ))
    elif not isinstance(usage, list):
        problems.append(Problem(f"`usage` must be a list of items, got {shown_value(usage)}", source=source, code="BU101"))
    elif too_many := limits.item_count(len(usage)):
        problems.append(Problem(too_many, source=source, code="BU003"))
    if problems:
        raise UsageError(problems)
    return cast(list[Any], usage)  # a list: anything else is a problem raised above


# Streaming --------------------------------------------------------------------


class _NotPlain(Exception):
    """The document is not a plain `{"usage": [...]}` (or is broken): it is read whole instead."""


def stream_items(text: str, source: str) -> Iterator[Any]:
    """The raw items of a usage document one at a time, holding one item, not the document's values.

    Gives what `items_of(read_document(text, source), source)` gives, and raises the same
    UsageError, except that a document refused as a whole may be refused after some of its
    items were given: a caller prices nothing until the last item was read. A document
    that is not a plain `usage` list (other keys, another shape, a syntax error, a limit
    met) is read whole by `read_document`, so every message is the one it gives.
    """
    if _limits_then_is_json(text, source):
        plain = _json_items(text)
    else:
        plain = _yaml_items(text)
    given = 0
    try:
        for raw in plain:
            if given == limits.MAX_ITEMS:  # count the rest without giving them: the document is refused
                given += 1 + sum(1 for _ in plain)
                raise UsageError([Problem(limits.item_count(given) or "", source=source, code="BU003")])
            given += 1
            yield raw
        return
    except _NotPlain:
        pass
    raw_items = items_of(read_document(text, source), source)  # raises the document's problems
    if given:  # a document read whole cannot be valid where its stream was not
        raise RuntimeError(f"{source}: the usage document reads as a whole but not as a stream")
    yield from raw_items


_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # what json.loads skips between values


def _skip_space(text: str, at: int) -> int:
    """The position of the first character past `at` that json.loads would not skip."""
    return _JSON_SPACE.match(text, at).end()  # type: ignore[union-attr]  # `*` matches anywhere


def _json_items(text: str) -> Iterator[Any]:
    """The items of a JSON document `{"usage": [...]}`, decoded one at a time; _NotPlain otherwise."""
    decoder = json.JSONDecoder(**_JSON_EXACT)
    space = _skip_space
    try:
        at = space(text, 0)
        for expected in ("{", '"usage"', ":", "["):
            if expected == '"usage"':
                if text[at : at + 1] != '"':
                    raise _NotPlain
                key, at = decoder.raw_decode(text, at)
                if key != "usage":
                    raise _NotPlain
            elif text[at : at + 1] == expected:
                at += 1
            else:
                raise _NotPlain
            at = space(text, at)
        if text[at : at + 1] == "]":
            at += 1
        else:
            while True:
                item, at = decoder.raw_decode(text, at)
                yield item
                at = space(text, at)
                if text[at : at + 1] == "]":
                    at += 1
                    break
                if text[at : at + 1] != ",":
                    raise _NotPlain
                at = space(text, at + 1)
        at = space(text, at)
        if text[at : at + 1] != "}" or space(text, at + 1) != len(text):
            raise _NotPlain
    except _NotPlain:
        raise
    except Exception:  # noqa: BLE001 - read whole, the document gets its exact message
        raise _NotPlain from None


def _yaml_items(text: str) -> Iterator[Any]:
    """The items of a YAML document whose one key is `usage`, composed one at a time; _NotPlain otherwise."""
    import yaml  # start-up time: most documents are JSON

    try:
        loader = _yaml_loader()(text)  # the reader refuses some characters at once
    except Exception:  # noqa: BLE001 - read whole, the document gets its exact message
        raise _NotPlain from None
    try:
        for event in (yaml.StreamStartEvent, yaml.DocumentStartEvent, yaml.MappingStartEvent):
            if not loader.check_event(event) or getattr(loader.peek_event(), "anchor", None) or getattr(loader.peek_event(), "tag", None):
                raise _NotPlain
            loader.get_event()
        loader.depth = 1  # within the top mapping, as when the document is composed whole
        if not loader.check_event(yaml.ScalarEvent) or loader.construct_document(loader.compose_node(None, None)) != "usage":
            raise _NotPlain
        start = loader.peek_event()
        if not isinstance(start, yaml.SequenceStartEvent) or start.anchor or start.tag:
            raise _NotPlain
        loader.get_event()
        index = 0
        while not loader.check_event(yaml.SequenceEndEvent):
            loader.depth = 2  # within the `usage` list
            known = set(loader.anchors)
            node = loader.compose_node(None, index)
            # An anchor is kept only for its place (a second `&a` is refused naming the first), not its node.
            for name in set(loader.anchors) - known:
                loader.anchors[name] = _Anchor(loader.anchors[name].start_mark)
            yield loader.construct_document(node)
            index += 1
        loader.get_event()
        for end in (yaml.MappingEndEvent, yaml.DocumentEndEvent, yaml.StreamEndEvent):
            if not loader.check_event(end):
                raise _NotPlain
            loader.get_event()
    except _NotPlain:
        raise
    except Exception:  # noqa: BLE001 - read whole, the document gets its exact message
        raise _NotPlain from None
    finally:
        loader.dispose()


@attrs.frozen
class _Anchor:
    start_mark: Any
