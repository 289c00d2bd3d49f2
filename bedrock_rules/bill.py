"""The bill: frozen values, and the one JSON `dump()` the CLI and the snapshots share."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Protocol

import attrs

from .display import align, encodable
from .model import Window, as_tuple


def item_label(index: int, name: str | None) -> str:
    """How bills name an item: its position, then its name when it has one."""
    return f"{index}" + (f" {name}" if name else "")


# Where the three classes of a priced item keep their fields: a plain slotted base, so
# that `_quick_builder` can fill an object of the base's own mutable subclass and then make
# it the frozen class (see there). Each tuple is the class's fields in order, then `__weakref__`.
class _ChargeSlots:
    __slots__ = (
        "what", "quantity", "unit", "rate", "per", "amount", "rule", "rule_id", "note", "valid", "basis", "block",
        "period", "period_rule", "list_rate", "list_rule", "list_id", "list_basis", "__weakref__",
    )


class _ItemBillSlots:
    __slots__ = ("index", "name", "kind", "charges", "subtotal", "source", "at", "__weakref__")


class _BillSlots:
    __slots__ = ("currency", "items", "total", "periods", "overlays", "__weakref__")


@attrs.frozen(weakref_slot=False)
class Charge(_ChargeSlots):
    """One line of a bill: what the rule at `rule` charged for one usage item."""

    what: str
    quantity: Decimal | int
    unit: str | None
    rate: Decimal | None
    per: Decimal
    amount: Decimal
    rule: str  # file:line of the rule, for people (the table, explain)
    rule_id: str  # for machines: stable across edits that keep the rule's meaning (program.rule_identity)
    note: str | None = None  # why a charge is free
    valid: Window | None = None  # the days of the version that priced it; None: an undated rule
    # A relative price: (rule, id, factor) outermost first, then (base rule, id, its rate); else empty.
    basis: tuple[tuple[str, str, Decimal | None], ...] = ()
    block: bool = False  # `per` is a block size: amount = ceil(quantity / per) × rate
    # A monthly table's charge: the month (`2026-03`) whose period lines price the quantity,
    # and the tier set's id. Its amount is 0 here and counts in the period, not the item.
    period: str | None = None
    period_rule: str | None = None
    # An overlay changed the rate: the list's rate (per `per`), its rule (file:line, and its id
    # for machines), and its basis (the list rule alone, or a relative price's steps). None: no
    # overlay touched it.
    list_rate: Decimal | None = None
    list_rule: str | None = None
    list_id: str | None = None
    list_basis: tuple[tuple[str, str, Decimal | None], ...] = ()

    @property
    def cited(self) -> str:
        """The rule as the table cites it: `file:line`, its window when dated, and for a
        relative price each factor down to the base rule (`a.rules:9 ×0.5 of a.rules:3`).
        An overlay's rate cites its rules, then `on` the list's (`acme.rules:6 ×0.8 of a.rules:3`,
        `acme.rules:9 on a.rules:3`)."""
        text = _chain(self.basis) if self.basis else self.rule
        if self.list_rule is not None and self.list_basis and [s[0] for s in self.list_basis] != [s[0] for s in self.basis[-1:]]:
            text += " on " + _chain(self.list_basis)
        return text + (f" ({self.valid})" if self.valid is not None else "")


def _chain(basis: tuple[tuple[str, str, Decimal | None], ...]) -> str:
    steps = [f"{where} ×{decimal_text(factor)}" for where, _, factor in basis[:-1] if factor is not None]
    return " of ".join([*steps, basis[-1][0]])


@attrs.frozen(weakref_slot=False)
class ItemBill(_ItemBillSlots):
    index: int
    name: str | None
    kind: str
    charges: tuple[Charge, ...] = attrs.field(converter=as_tuple)
    subtotal: Decimal = Decimal(0)
    source: str | None = None
    at: str | None = None  # the item's date, normalised (2024-12-05, 2024-12-05T10:00:00Z)

    @property
    def label(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return where + item_label(self.index, self.name)


@attrs.frozen
class PeriodLine:
    """One tier of a monthly table in one month: the part of the month's total it prices."""

    tier_set: str  # `input_tokens (MODEL)`
    tier: str  # `<= 1000000000`, `> 1000000000`
    quantity: Decimal | int
    unit: str | None
    rate: Decimal | None  # None: a free tier
    per: Decimal
    block: bool
    amount: Decimal
    rule: str  # file:line of the tier's cell, for people (the table and explain)
    rule_id: str  # the tier set's id, for machines (JSON, diff)
    mode: str  # graduated or volume
    blocks: Decimal | int | None = None  # `per block of N`: the blocks charged
    note: str | None = None  # a free tier's reason


@attrs.frozen
class TrueUp:
    """A monthly minimum the month's charges in its scope fell short of: the difference."""

    label: str  # `minimum 100 (provider = amazon)`
    minimum: Decimal
    charged: Decimal
    amount: Decimal
    rule: str  # file:line of the statement, for people
    reason: str
    rule_id: str = ""  # the minimum's stable id, for machines: `text/minimum[100; provider = amazon]`


@attrs.frozen
class PeriodBill:
    """One calendar month (UTC) of an evaluation: its tier lines and true-ups."""

    month: str  # 2026-03
    lines: tuple[PeriodLine, ...] = attrs.field(converter=as_tuple)
    true_ups: tuple[TrueUp, ...] = attrs.field(converter=as_tuple, factory=tuple)
    total: Decimal = Decimal(0)


@attrs.frozen(weakref_slot=False)
class Bill(_BillSlots):
    currency: str
    items: tuple[ItemBill, ...] = attrs.field(converter=as_tuple)
    total: Decimal = Decimal(0)
    periods: tuple[PeriodBill, ...] = attrs.field(converter=as_tuple, factory=tuple)  # monthly tiers and minimums
    overlays: tuple[str, ...] = ()  # the overlays priced under, `title (path)`, in order


def _quick_builder(cls: type, copied: bool = False) -> Any:
    """A constructor of `cls` for the quick pricing paths: positional, every field, no converters
    (tuples are given as tuples); with `copied`, `(template, quantity, amount)`, every other
    field copied from `template`.

    attrs' frozen `__init__` sets each field through `object.__setattr__`, a call per field
    (a Charge has 18). Here the object is made as the base's mutable subclass, its slots
    set by plain attribute stores, and then made a `cls`: the same slots, so the same
    object as `cls(...)` makes, equal, hashing, pickling and frozen alike.
    """
    storage = cls.__bases__[0]
    names = tuple(field.name for field in attrs.fields(cls))
    if getattr(storage, "__slots__", None) != (*names, "__weakref__") or cls.__basicsize__ != storage.__basicsize__:
        raise TypeError(f"{storage.__name__}.__slots__ must list {cls.__name__}'s fields in order, then __weakref__")
    building = type(f"_Building{cls.__name__}", (storage,), {"__slots__": ()})
    if copied:
        parameters = "template, quantity, amount"
        stores = [f"    self.{n} = {n if n in ('quantity', 'amount') else 'template.' + n}\n" for n in names]
    else:
        parameters = ", ".join(names)
        stores = [f"    self.{n} = {n}\n" for n in names]
    source = f"def build({parameters}):\n    self = new(building)\n{''.join(stores)}    self.__class__ = cls\n    return self\n"
    namespace: dict[str, Any] = {"new": object.__new__, "building": building, "cls": cls}
    exec(source, namespace)  # noqa: S102 - built from the class's own field names, once
    return namespace["build"]


# charge_like(line, quantity, amount): `line` with its own quantity and amount.
charge_like = _quick_builder(Charge, copied=True)
new_item_bill = _quick_builder(ItemBill)  # (index, name, kind, charges, subtotal, source, at)
new_bill = _quick_builder(Bill)  # (currency, items, total, periods, overlays)


def decimal_text(value: Decimal | int) -> str:
    """An exact decimal as plain text: no exponent, no trailing zeros after the point."""
    if isinstance(value, int):
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# The JSON bill's shape, named in the bill; bedrock_rules/schemas/bill.json describes it.
# The number changes when a key is removed or changes meaning, never for an added key.
# 2: a charge names its rule by its stable id alone (1 also cited `file:line`, which moved
# whenever a line above the rule was added).
SCHEMA = "bedrock-rules/bill/2"


def to_data(bill: Bill) -> dict[str, Any]:
    """The bill as JSON-ready data, keys in a fixed order, amounts as decimal strings.

    Rules are named by their stable ids, never by `file:line`: the same rules give the same
    bytes after a comment is added or a rule moves to another file (`explain` gives the line).
    """
    return {
        "schema": SCHEMA,
        "currency": bill.currency,
        "total": decimal_text(bill.total),
        **({"overlays": list(bill.overlays)} if bill.overlays else {}),
        "items": [item_data(item, bool(bill.overlays)) for item in bill.items],
        **({"periods": [period_data(period) for period in bill.periods]} if bill.periods else {}),
    }


def item_data(item: ItemBill, overlaid: bool = False) -> dict[str, Any]:
    """One item of the JSON bill (`to_data`), for writers that give a bill one item at a time;
    `overlaid`: priced under overlays, so each charge gives its list rate too."""
    return {
        "item": item.index,
        "name": item.name,
        **({"document": item.source} if item.source else {}),
        "kind": item.kind,
        **({"at": item.at} if item.at is not None else {}),
        "subtotal": decimal_text(item.subtotal),
        "charges": [
            {
                "id": charge.rule_id,
                "what": charge.what,
                "quantity": decimal_text(charge.quantity),
                "unit": charge.unit,
                "rate": None if charge.rate is None else decimal_text(charge.rate),
                "per": decimal_text(charge.per),
                "amount": None if charge.period is not None else decimal_text(charge.amount),
                **({"block": True} if charge.block else {}),
                **({"period": charge.period, "period_rule": charge.period_rule} if charge.period is not None else {}),
                **({"note": charge.note} if charge.note else {}),
                **({"valid": _window_data(charge.valid)} if charge.valid is not None else {}),
                **({"basis": _basis_data(charge.basis)} if charge.basis else {}),
                **(_list_data(charge) if overlaid else {}),
            }
            for charge in item.charges
        ],
    }


def period_data(period: PeriodBill) -> dict[str, Any]:
    """A month's period lines as JSON-ready data (bills and totals share it)."""
    return {
        "month": period.month,
        "total": decimal_text(period.total),
        "lines": [
            {
                "id": line.rule_id,
                "tier_set": line.tier_set,
                "mode": line.mode,
                "tier": line.tier,
                "quantity": decimal_text(line.quantity),
                "unit": line.unit,
                **({"blocks": decimal_text(line.blocks)} if line.blocks is not None else {}),
                "rate": None if line.rate is None else decimal_text(line.rate),
                "per": decimal_text(line.per),
                **({"block": True} if line.block else {}),
                "amount": decimal_text(line.amount),
                **({"note": line.note} if line.note else {}),
            }
            for line in period.lines
        ],
        "true_ups": [
            {
                "id": true_up.rule_id,
                "minimum": decimal_text(true_up.minimum),
                "scope": true_up.label,
                "charged": decimal_text(true_up.charged),
                "amount": decimal_text(true_up.amount),
                "reason": true_up.reason,
            }
            for true_up in period.true_ups
        ],
    }


def _basis_data(basis: tuple[tuple[str, str, Decimal | None], ...]) -> list[dict[str, str | None]]:
    steps: list[dict[str, str | None]] = [
        {"id": rule_id, "factor": decimal_text(factor)} for _, rule_id, factor in basis[:-1] if factor is not None
    ]
    _, rule_id, rate = basis[-1]
    return [*steps, {"id": rule_id, "rate": None if rate is None else decimal_text(rate)}]


def _list_data(charge: Charge) -> dict[str, Any]:
    """Under overlays, every charge's list rate; the list's rule (by id) where an overlay changed the rate."""
    if charge.list_id is None:
        return {"list_rate": None if charge.rate is None else decimal_text(charge.rate)}
    return {
        "list_rate": None if charge.list_rate is None else decimal_text(charge.list_rate),
        "list_id": charge.list_id,
        **({"list_basis": _basis_data(charge.list_basis)} if len(charge.list_basis) > 1 else {}),
    }


def _window_data(window: Window) -> dict[str, str | None]:
    return {
        "from": None if window.start is None else window.start.isoformat(),
        "until": None if window.end is None else window.end.isoformat(),
    }


def dump(bill: Bill) -> str:
    """The bill as JSON text, byte-identical for the same bill, ending in a newline.

    Text stays as written (UTF-8), except lone surrogates, which JSON can only escape
    (`\\ud800`): written raw they could not be encoded, and no bill would be printed.
    """
    return encodable(json.dumps(to_data(bill), indent=2, ensure_ascii=False)) + "\n"


class Rated(Protocol):
    """What `rate_text` reads: a charge, or a line of totals."""

    @property
    def rate(self) -> Decimal | None: ...
    @property
    def per(self) -> Decimal: ...
    @property
    def note(self) -> str | None: ...
    @property
    def block(self) -> bool: ...


class Listed(Rated, Protocol):
    """What `list_rate_text` reads besides: the list's rate and rule where an overlay changed the rate."""

    @property
    def list_rate(self) -> Decimal | None: ...
    @property
    def list_rule(self) -> str | None: ...


def rate_text(charge: Rated, currency: str) -> str:
    """`0.008 USD per 1000`, `5 USD per block of 100`, `39.6 USD each`, or why a line is free."""
    return _rate_text(charge.rate, charge, currency)


def list_rate_of(charge: Listed) -> Decimal | None:
    """The list's rate: the one an overlay changed, else the rate itself."""
    return charge.list_rate if charge.list_rule is not None else charge.rate


def list_rate_text(charge: Listed, currency: str) -> str:
    """The list's rate (`list_rate_of`) as `rate_text` writes a rate."""
    return _rate_text(list_rate_of(charge), charge, currency)


def _rate_text(rate: Decimal | None, charge: Rated, currency: str) -> str:
    if rate is None:
        return charge.note or "free"
    if charge.block:
        per = f"per block of {decimal_text(charge.per)}"
    else:
        per = "each" if charge.per == 1 else f"per {decimal_text(charge.per)}"
    return f"{decimal_text(rate)} {currency} {per}"


TABLE_HEADER = ("item", "charge", "quantity", "rate", "amount", "rule")
TABLE_RIGHT = frozenset({2, 4})  # the columns aligned right: quantities and amounts


# Under overlays, a `list rate` column before the rate (bills without overlays stay as they were).
LISTED_HEADER = ("item", "charge", "quantity", "list rate", "rate", "amount", "rule")
LISTED_RIGHT = frozenset({2, 5})


def table_rows(item: ItemBill, currency: str, listed: bool = False) -> list[tuple[str, ...]]:
    """One item's rows of the table: a line per charge, then its subtotal; `listed`: with the list rate."""
    rows: list[tuple[str, ...]] = []
    for position, charge in enumerate(item.charges):
        quantity = decimal_text(charge.quantity) + (f" {charge.unit}" if charge.unit else "")
        rate = rate_text(charge, currency)
        label = f"{item.label} ({item.kind})" if position == 0 else ""
        list_rate = (list_rate_text(charge, currency),) if listed else ()
        amount = f"→ {charge.period}" if charge.period is not None else decimal_text(charge.amount)
        rows.append((label, charge.what, quantity, *list_rate, rate, amount, charge.cited))
    rows.append(("", "subtotal", "", *(("",) if listed else ()), "", decimal_text(item.subtotal), ""))
    return rows


def total_line(total: Decimal, currency: str) -> str:
    return f"total: {decimal_text(total)} {currency}"


def render_table(bill: Bill) -> str:
    """The bill for people: one line per charge, a subtotal per item, the total."""
    listed = bool(bill.overlays)
    rows = [row for item in bill.items for row in table_rows(item, bill.currency, listed)]
    out = align([LISTED_HEADER if listed else TABLE_HEADER, *rows], right=LISTED_RIGHT if listed else TABLE_RIGHT, ruled=True)
    for period in bill.periods:
        out.append("")
        out.extend(render_period(period, bill.currency))
    out.extend(f"overlay: {overlay}" for overlay in bill.overlays)
    out.append(total_line(bill.total, bill.currency))
    return "\n".join(out) + "\n"


def render_period(period: PeriodBill, currency: str) -> list[str]:
    """A month's period lines: per tier set one line per tier used, then the true-ups."""
    header = ("tier set", "tier", "quantity", "rate", "amount", "rule")
    rows: list[tuple[str, ...]] = []
    shown = None
    for line in period.lines:
        quantity = decimal_text(line.quantity) + (f" {line.unit}" if line.unit else "")
        if line.blocks is not None:
            quantity += f" ({decimal_text(line.blocks)} blocks)"
        label = f"{line.tier_set} {line.mode}" if line.rule_id != shown else ""
        shown = line.rule_id
        rows.append((label, line.tier, quantity, rate_text(line, currency), decimal_text(line.amount), line.rule))
    for true_up in period.true_ups:
        rows.append((
            true_up.label, f"charged {decimal_text(true_up.charged)}", "", "", decimal_text(true_up.amount), true_up.rule
        ))
    rows.append(("period total", "", "", "", decimal_text(period.total), ""))
    return [f"period {period.month}", *align([header, *rows], right={2, 4}, ruled=True)]
