"""Field types of usage documents, and converting a document's value to the type a field declares.

The compiler converts the literals written in rule files (defaults) with the same
functions, so a default means exactly what the same value in a usage document means.
"""

from __future__ import annotations

import calendar
import datetime
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from . import limits
from .errors import did_you_mean
from .model import as_tuple

# Per value type (`model`, `region`), every accepted spelling to its canonical name.
Lookups = Mapping[str, Mapping[str, str]]


@attrs.frozen
class CountType:
    """A whole number ≥ 0."""

    def describe(self) -> str:
        return "a whole number ≥ 0"


@attrs.frozen
class DecimalType:
    """An exact decimal number ≥ 0."""

    def describe(self) -> str:
        return "a decimal number ≥ 0"


@attrs.frozen
class FlagType:
    def describe(self) -> str:
        return "true or false"


@attrs.frozen
class ModelType:
    def describe(self) -> str:
        return "a model name or model ID"


@attrs.frozen
class RegionType:
    def describe(self) -> str:
        return "a region code"


@attrs.frozen
class EnumType:
    values: tuple[str, ...] = attrs.field(converter=as_tuple)

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)


@attrs.frozen
class ListOf:
    item: FieldType

    def describe(self) -> str:
        if isinstance(self.item, EnumType):
            return "a list of values among " + ", ".join(self.item.values)
        if isinstance(self.item, RecordType):
            return "a list of objects with " + ", ".join(f.name for f in self.item.fields)
        return f"a list of {self.item.describe()}"


@attrs.frozen
class RecordType:
    name: str
    fields: tuple[FieldSpec, ...] = attrs.field(converter=as_tuple)

    def describe(self) -> str:
        return "an object with " + ", ".join(f.name for f in self.fields)


@attrs.frozen
class DateType:
    """An ISO 8601 date, or a date and time with its zone (held in UTC)."""

    def describe(self) -> str:
        return "a date (2025-03-01) or a time with its zone (2025-03-01T10:11:12Z)"


FieldType = CountType | DecimalType | FlagType | ModelType | RegionType | EnumType | ListOf | RecordType | DateType


@attrs.frozen(order=True)
class Instant:
    """A usage's date: its UTC day (what windows compare) and its text, normalised to UTC."""

    day: datetime.date
    text: str = attrs.field(order=False)

    def __str__(self) -> str:
        return self.text


# ASCII digits only: `\d` also takes full-width and Arabic-Indic digits, which would be read
# as the date they stand for but shown (in bills, in `at`) as written.
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?\Z")


def read_instant(text: str) -> Instant | str:
    """A date or a zoned datetime as an Instant, or a sentence saying why it is not one.

    Nothing is assumed: a time without a zone is refused, never read as local or UTC.
    """
    match = _DATE.match(text)
    if match is None:
        return f"{json.dumps(text)} is not a date; write 2025-03-01 or 2025-03-01T10:11:12Z"
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if not 1 <= month <= 12:
        return f"{text[:10]} is not a date: there is no month {month}"
    if year < 1:
        return f"{text[:10]} is not a date: there is no year 0 (years start at 0001)"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return f"{text[:10]} is not a date: {calendar.month_name[month]} {year} has {days} days"
    if match[4] is None:
        return Instant(datetime.date(year, month, day), text)
    if match[8] is None:
        return f"a time needs a zone: write {text}Z; nothing is assumed"
    hour, minute, second = int(match[4]), int(match[5]), int(match[6] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return f"{text} is not a time of day"
    if match[8] == "Z" and year >= 1000:  # already UTC: what the conversion below gives, without it
        return Instant(datetime.date(year, month, day), f"{text[:16]}:{second:02d}{match[7] or ''}Z")
    zone = datetime.timezone.utc
    if match[8] != "Z":
        sign = 1 if match[8][0] == "+" else -1
        zh, zm = int(match[8][1:3]), int(match[8][4:6])
        if zh > 23 or zm > 59:
            return f"{match[8]} is not a time zone"
        zone = datetime.timezone(sign * datetime.timedelta(hours=zh, minutes=zm))
    fraction = match[7] or ""
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=zone).astimezone(datetime.timezone.utc)
    except OverflowError:
        return f"{text} is not a date the calendar holds"
    normal = moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    return Instant(moment.date(), normal)

NUMERIC = (CountType, DecimalType)


@attrs.frozen
class FieldSpec:
    """A field of a kind or record: its type, its default, whether it may be absent."""

    name: str
    type: FieldType
    default: object = None
    has_default: bool = False
    optional: bool = False
    unit: str | None = None


def is_numeric(field_type: FieldType) -> bool:
    return isinstance(field_type, NUMERIC)


def literal(field_type: FieldType, text: str) -> object:
    """The Python value a bare word or number means for a field of this type."""
    if isinstance(field_type, FlagType):
        return {"true": True, "false": False}[text]
    if isinstance(field_type, NUMERIC):
        return Decimal(text)
    return text


# Converting usage values ----------------------------------------------------------


def shown_value(value: Any) -> str:
    """A usage value as messages quote it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return str(value)


def convert(value: Any, field_type: FieldType, lookups: Lookups) -> tuple[Any, str | None]:
    """A document value as the engine holds it, or a sentence saying what is wrong.

    Nested problems are reported for the first element at fault, with its place.
    """
    problems = _convert(value, field_type, lookups, "")
    if isinstance(problems, Bad):
        where = f"{problems.path}: " if problems.path else ""
        return None, f"{where}{problems.message}"
    return problems, None


@attrs.frozen
class Bad:
    """A value that does not convert: where in the value, why, and the problem's code."""

    path: str
    message: str
    code: str = "BU106"  # a value of the wrong type


def _expected(field_type: FieldType, value: Any, path: str) -> Bad:
    return Bad(path, f"expected {field_type.describe()}, got {shown_value(value)}")


def _convert(value: Any, ft: FieldType, lookups: Lookups, path: str) -> Any:
    if isinstance(ft, CountType):
        if type(value) is int and value >= 0:
            too_large = limits.number(value)
            return Bad(path, too_large, "BU003") if too_large else value
        return _expected(ft, value, path)
    if isinstance(ft, DecimalType):
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and Decimal(value).is_finite() and value >= 0:
            too_large = limits.number(value)
            return Bad(path, too_large, "BU003") if too_large else Decimal(value)
        return _expected(ft, value, path)
    if isinstance(ft, FlagType):
        return value if isinstance(value, bool) else _expected(ft, value, path)
    if isinstance(ft, (ModelType, RegionType)):
        what = "model" if isinstance(ft, ModelType) else "region"
        table = lookups[what]
        if isinstance(value, str) and value in table:
            return table[value]
        if not isinstance(value, str):
            return _expected(ft, value, path)
        return Bad(path, f"unknown {what} {shown_value(value)}{did_you_mean(value, table)}")
    if isinstance(ft, EnumType):
        if isinstance(value, str) and value in ft.values:
            return value
        hint = did_you_mean(value, ft.values) if isinstance(value, str) else ""
        return Bad(path, f"expected {ft.describe()}, got {shown_value(value)}{hint}")
    if isinstance(ft, ListOf):
        if not isinstance(value, list):
            return _expected(ft, value, path)
        converted = []
        for position, element in enumerate(value, 1):
            result = _convert(element, ft.item, lookups, f"{path}[{position}]")
            if isinstance(result, Bad):
                return result
            converted.append(result)
        return tuple(converted)
    if isinstance(ft, DateType):
        if isinstance(value, Instant):
            return value
        if isinstance(value, datetime.datetime):  # a caller's own value (YAML gives text)
            if value.tzinfo is None:
                return Bad(path, f"a time needs a zone: write {value.isoformat()}Z; nothing is assumed", "BU108")
            value = value.isoformat()
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        if not isinstance(value, str):
            return _expected(ft, value, path)
        instant = read_instant(value)
        return Bad(path, instant, "BU108") if isinstance(instant, str) else instant
    if isinstance(ft, RecordType):
        if not isinstance(value, Mapping):
            return _expected(ft, value, path)
        record, problems = convert_fields(value, ft.fields, lookups, path)
        return problems[0] if problems else record
    raise AssertionError(ft)  # pragma: no cover


def convert_fields(
    given: Mapping[str, Any], specs: Sequence[FieldSpec], lookups: Lookups, path: str, ignore: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[Bad]]:
    """Every field of `given` converted by its spec; defaults applied; each problem with its path."""
    known = {s.name for s in specs}
    problems: list[Bad] = []
    prefix = f"{path}." if path else ""
    unknown = 0
    for key in given:
        if key not in known and key not in ignore:
            unknown += 1
            if unknown > limits.MAX_LISTED_PROBLEMS:  # counted, not listed: memory stays bounded per item
                continue
            shown = key if isinstance(key, str) else shown_value(key)
            hint = did_you_mean(shown, known) or f" (fields: {', '.join(s.name for s in specs)})"
            problems.append(Bad(f"{prefix}{shown}", f"unknown field{hint}", "BU104"))
    if unknown > limits.MAX_LISTED_PROBLEMS:
        more = unknown - limits.MAX_LISTED_PROBLEMS
        problems.append(Bad(path, f"… and {more:,} more unknown fields", "BU104"))
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in given:
            if spec.has_default:
                values[spec.name] = spec.default
            elif not spec.optional:
                problems.append(Bad(f"{prefix}{spec.name}", f"missing; expected {spec.type.describe()}", "BU105"))
            continue
        result = _convert(given[spec.name], spec.type, lookups, f"{prefix}{spec.name}")
        if isinstance(result, Bad):
            problems.append(result)
        else:
            values[spec.name] = result
    return values, problems
