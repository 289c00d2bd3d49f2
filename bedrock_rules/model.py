"""The values a rule file means: frozen attrs classes built by the parser.

Every node carries the `Span` it came from; spans take no part in equality, so two
files that differ only in layout (what `fmt` changes) have equal models.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs


def as_tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    """attrs' converter for sequence fields: a tuple, so values hash. Typed, unlike `tuple`
    itself, so a type checker reads a field's argument as any iterable of its items."""
    return tuple(items)


@attrs.frozen
class Span:
    """Where a node starts and ends in its file; lines and columns are 1-based."""

    path: str
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    @property
    def where(self) -> str:
        """`file:line`, the short form bills and messages cite."""
        return f"{self.path}:{self.line}"


NOWHERE = Span("<builtin>", 0, 0)


class Name(str):
    """A name as written in a rule file, with the span of the name itself.

    It compares and hashes as its text, so the span takes no part in equality and a
    name serves as a key wherever its text does; messages point their caret at it.
    """

    span: Span

    def __new__(cls, text: str, span: Span = NOWHERE) -> Name:
        name = super().__new__(cls, text)
        name.span = span
        return name

    def __reduce__(self) -> tuple:  # pickled (prebuilt cache) with its span
        return (Name, (str(self), self.span))


def span_of(name: str, fallback: Span) -> Span:
    """Where a name is written: its own span when the parser gave it one, else `fallback`."""
    span = getattr(name, "span", NOWHERE)
    return fallback if span == NOWHERE else span


def _span() -> Span:
    return attrs.field(default=NOWHERE, eq=False, repr=False)


# Expressions ---------------------------------------------------------------


@attrs.frozen
class Number:
    value: Decimal
    span: Span = _span()


@attrs.frozen
class FieldRef:
    name: str
    span: Span = _span()


@attrs.frozen
class Binary:
    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@attrs.frozen
class Call:
    function: str
    args: tuple[Expr, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class SumEach:
    """`sum(EXPR for each LIST)`: EXPR evaluated for every record of LIST."""

    body: Expr
    list_field: str
    span: Span = _span()




# Values (defaults, example fields, condition operands) ----------------------


@attrs.frozen
class Word:
    """A bare word: a name, an enum value, `true` or `false`."""

    text: str
    span: Span = _span()


@attrs.frozen
class Text:
    text: str
    span: Span = _span()


@attrs.frozen
class ListValue:
    items: tuple[Value, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class RecordValue:
    pairs: tuple[tuple[str, Value], ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class DateValue:
    """A date as written (`2024-12-05`, `2024-12-05T10:00:00Z`): the text is kept, so
    `fmt` writes it back as it was and a usage reads it as a document would."""

    text: str
    span: Span = _span()


# A date literal is an expression too: it is compared with a date field (`contract_start >= 2025-01-01`).
Expr = Number | FieldRef | Binary | Call | SumEach | DateValue
Value = Word | Number | Text | ListValue | RecordValue | DateValue
Texted = Word | Text | DateValue  # the values written as text: what `field = value` compares


@attrs.frozen
class Window:
    """`from D until E`: the whole UTC days from `start` to `end`, both included; None is open."""

    start: datetime.date | None
    end: datetime.date | None
    span: Span = _span()

    def __str__(self) -> str:
        parts = []
        if self.start is not None:
            parts.append(f"from {self.start.isoformat()}")
        if self.end is not None:
            parts.append(f"until {self.end.isoformat()}")
        return " ".join(parts)

    def contains(self, day: datetime.date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


# Conditions ----------------------------------------------------------------


@attrs.frozen
class Equals:
    field: str
    value: Value
    negated: bool = False
    span: Span = _span()


@attrs.frozen
class Member:
    field: str
    values: tuple[str, ...] = attrs.field(converter=as_tuple)
    negated: bool = False
    span: Span = _span()


@attrs.frozen
class Contains:
    field: str
    value: Value
    span: Span = _span()


@attrs.frozen
class Compare:
    left: Expr
    op: str
    right: Expr
    span: Span = _span()


@attrs.frozen
class AllOf:
    parts: tuple[Condition, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class AnyOf:
    parts: tuple[Condition, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class Not:
    part: Condition
    span: Span = _span()


Condition = Equals | Member | Contains | Compare | AllOf | AnyOf | Not


# Declarations ----------------------------------------------------------------


@attrs.frozen
class Currency:
    code: str
    span: Span = _span()


@attrs.frozen
class Rounding:
    """`round each charge|the total to N places MODE`."""

    target: str
    places: int
    mode: str
    span: Span = _span()


@attrs.frozen
class Billed:
    """`billed NAME, …`: what AWS billing data calls a region, a model or a quantity."""

    names: tuple[str, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class Region:
    name: str
    title: str | None
    span: Span = _span()
    billed: tuple[str, ...] = attrs.field(default=(), converter=as_tuple)  # names in AWS billing data


@attrs.frozen
class Model:
    name: str
    title: str | None
    aliases: tuple[str, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()
    billed: tuple[str, ...] = attrs.field(default=(), converter=as_tuple)  # names in AWS billing data


@attrs.frozen
class ModelBilled:
    """`model NAME billed CODE, …` outside a provider block: billing names for a declared model."""

    model: str
    names: tuple[str, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class Provider:
    name: str
    title: str | None
    models: tuple[Model, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class NamedType:
    """A type written as words: `count`, `flag`, `model`, a record, or `a | b | c`."""

    names: tuple[str, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class ListType:
    item: TypeRef
    span: Span = _span()


TypeRef = NamedType | ListType


@attrs.frozen
class Field:
    name: str
    type: TypeRef
    default: Value | None
    optional: bool
    unit: str | None
    span: Span = _span()
    billed: tuple[str, ...] = attrs.field(default=(), converter=as_tuple)  # names in AWS billing data


@attrs.frozen
class Derived:
    name: str
    expr: Expr
    unit: str | None
    span: Span = _span()


@attrs.frozen
class Kind:
    name: str
    title: str | None
    fields: tuple[Field, ...] = attrs.field(converter=as_tuple)
    derived: tuple[Derived, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class Record:
    name: str
    title: str | None
    fields: tuple[Field, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


# Price tables ------------------------------------------------------------------


@attrs.frozen
class KeyColumn:
    """A column whose cells say which usages a row is for (`model`, `longest_side`)."""

    field: str
    span: Span = _span()


@attrs.frozen
class ChargeColumn:
    """A column of rates for one quantity: `input_tokens per 1000`."""

    quantity: str
    per: Decimal
    span: Span = _span()
    block: bool = False  # `per block of N`: each started block of N charged whole


@attrs.frozen
class ConditionColumn:
    """A column of rates that apply when a condition holds: `commitment = 1_month`."""

    condition: Condition
    span: Span = _span()


Column = KeyColumn | ChargeColumn | ConditionColumn


@attrs.frozen
class ValueCell:
    values: tuple[str, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class CompareCell:
    op: str
    value: Decimal
    span: Span = _span()


@attrs.frozen
class AnyCell:
    span: Span = _span()


@attrs.frozen
class RateCell:
    rate: Decimal
    span: Span = _span()


@attrs.frozen
class FreeCell:
    reason: str | None
    span: Span = _span()


@attrs.frozen
class NotOfferedCell:
    """`-`, or a quoted reason: the rules say this combination is not sold."""

    reason: str | None
    span: Span = _span()


Cell = ValueCell | CompareCell | AnyCell | RateCell | FreeCell | NotOfferedCell


@attrs.frozen
class Charging:
    quantity: str
    per: Decimal
    span: Span = _span()
    block: bool = False


@attrs.frozen
class PriceTable:
    kind: str
    regions: tuple[str, ...] = attrs.field(converter=as_tuple)
    when: Condition | None = None
    charging: Charging | None = None
    columns: tuple[Column, ...] = attrs.field(converter=as_tuple, factory=tuple)
    rows: tuple[tuple[Cell, ...], ...] = attrs.field(
        converter=lambda rows: tuple(tuple(r) for r in rows), factory=tuple
    )
    span: Span = _span()
    window: Window | None = None
    any_region: bool = False  # `in any`: every region, including those declared later
    monthly: str | None = None  # `monthly graduated` or `monthly volume`: tiers over a month's total


@attrs.frozen
class PriceList:
    """`pricelist KIND from OFFER unit "UNIT" per N` and its table: Price List SKUs to usages.

    Columns name SKU attributes (cells are quoted patterns), fields of the kind (cells
    are values) or `quantity` (the quantity the SKU's price charges); `any` leaves a
    cell open. A SKU's price is for `per` of the quantity, in the offer's `unit`.
    """

    kind: str
    offer: str
    unit: str
    per: Decimal
    columns: tuple[Column, ...] = attrs.field(converter=as_tuple, factory=tuple)
    rows: tuple[tuple[Cell, ...], ...] = attrs.field(
        converter=lambda rows: tuple(tuple(r) for r in rows), factory=tuple
    )
    span: Span = _span()


# Availability, constraints, free items --------------------------------------


@attrs.frozen
class Offer:
    """`offer MODELS only in REGIONS [WINDOW]` or `offer MODELS WINDOW`; regions empty for the latter."""

    models: tuple[str, ...] = attrs.field(converter=as_tuple)
    regions: tuple[str, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()
    window: Window | None = None


@attrs.frozen
class Refuse:
    """`refuse KINDS when CONDITION: "reason"`; kinds is empty for `any`."""

    kinds: tuple[str, ...] = attrs.field(converter=as_tuple)
    when: Condition
    reason: str
    span: Span = _span()
    window: Window | None = None


@attrs.frozen
class Require:
    """`require KINDS CONDITION [when CONDITION]: "reason"`."""

    kinds: tuple[str, ...] = attrs.field(converter=as_tuple)
    condition: Condition
    when: Condition | None
    reason: str
    span: Span = _span()
    window: Window | None = None


@attrs.frozen
class Free:
    """`free KINDS [when CONDITION]: "reason"`: a charge line of zero, with why."""

    kinds: tuple[str, ...] = attrs.field(converter=as_tuple)
    when: Condition | None
    reason: str
    span: Span = _span()
    window: Window | None = None


@attrs.frozen
class Relative:
    """`relative KINDS CASE at FACTOR of BASE [in …] [when …] [charging …] [WINDOW]`.

    The case form names a field, the values it prices (`cases`) and the base value; the
    quantity form (`field` None) prices quantity `cases[0]` at a factor of quantity `base`.
    """

    kinds: tuple[str, ...] = attrs.field(converter=as_tuple)
    field: str | None
    cases: tuple[str, ...] = attrs.field(converter=as_tuple)
    factor: Decimal
    base: str
    regions: tuple[str, ...] = attrs.field(converter=as_tuple, factory=tuple)
    when: Condition | None = None
    quantities: tuple[str, ...] = attrs.field(converter=as_tuple, factory=tuple)
    window: Window | None = None
    span: Span = _span()
    factor_text: str = attrs.field(default="", eq=False)  # as written (`50%`), for messages


@attrs.frozen
class Minimum:
    """`minimum AMOUNT monthly for KINDS [when CONDITION] [WINDOW]: "reason"`; kinds empty for `any`."""

    amount: Decimal
    kinds: tuple[str, ...] = attrs.field(converter=tuple)
    when: Condition | None
    reason: str
    span: Span = _span()
    window: Window | None = None


# Worked examples ---------------------------------------------------------------


@attrs.frozen
class ExampleItem:
    kind: str
    name: str | None
    fields: tuple[tuple[str, Value], ...] = attrs.field(converter=as_tuple)
    span: Span = _span()


@attrs.frozen
class Example:
    title: str
    expect: Decimal
    items: tuple[ExampleItem, ...] = attrs.field(converter=as_tuple)
    span: Span = _span()
    at: DateValue | None = None  # dates every item that has no `at:` of its own


# Overlays ------------------------------------------------------------------------


@attrs.frozen
class OverlayHeader:
    """`overlay "TITLE" [WINDOW]`: the first line of an overlay file."""

    title: str
    window: Window | None = None
    span: Span = _span()


@attrs.frozen
class Adjust:
    """`adjust KINDS by ±N% [when …] [WINDOW]`: the rate below, times (1 + percent / 100)."""

    kinds: tuple[str, ...] = attrs.field(converter=tuple)
    percent: Decimal  # signed: -20 for `by -20%`
    when: Condition | None = None
    window: Window | None = None
    span: Span = _span()


Statement = (
    Currency | Rounding | Region | Provider | Kind | Record | PriceTable | PriceList | Offer | Refuse | Require | Free | Example
    | Relative | ModelBilled | Minimum | OverlayHeader | Adjust
)


@attrs.frozen
class RuleFile:
    path: str
    statements: tuple[Statement, ...] = attrs.field(converter=as_tuple)
