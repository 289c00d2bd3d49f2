"""Field types of usage documents, resolved from the words a `kind` declares."""

from __future__ import annotations

from decimal import Decimal

import attrs


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
    values: tuple[str, ...] = attrs.field(converter=tuple)

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
    fields: tuple[FieldSpec, ...] = attrs.field(converter=tuple)

    def describe(self) -> str:
        return "an object with " + ", ".join(f.name for f in self.fields)


FieldType = CountType | DecimalType | FlagType | ModelType | RegionType | EnumType | ListOf | RecordType

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
