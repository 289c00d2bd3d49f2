"""The compiled program: kinds, price rules, refusals and free rules, resolved and indexed.

Values only: the compiler builds one, the interpreter and the tools read it. Conditions
are kept both as syntax (to describe them) and as closures (to decide them).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from . import fields as t
from . import model as m
from .semantics import Predicate, Values


@attrs.frozen
class ModelInfo:
    name: str
    title: str
    provider: str
    aliases: tuple[str, ...]
    span: m.Span = attrs.field(eq=False, repr=False)


@attrs.frozen
class DerivedSpec:
    name: str
    unit: str | None
    expr: m.Expr
    compute: Callable[[Values], Any] = attrs.field(eq=False, repr=False)


@attrs.frozen
class KindSpec:
    name: str
    title: str
    fields: tuple[t.FieldSpec, ...]
    derived: tuple[DerivedSpec, ...]
    span: m.Span = attrs.field(eq=False, repr=False)

    @property
    def field_map(self) -> dict[str, t.FieldSpec]:
        return {f.name: f for f in self.fields}

    @property
    def model_field(self) -> str | None:
        """The field naming the model, if the kind has one."""
        return next((f.name for f in self.fields if isinstance(f.type, t.ModelType)), None)

    @property
    def region_field(self) -> str | None:
        """The field naming the region, if the kind has one."""
        return next((f.name for f in self.fields if isinstance(f.type, t.RegionType)), None)

    def unit_of(self, quantity: str) -> str | None:
        for f in self.fields:
            if f.name == quantity:
                return f.unit
        for d in self.derived:
            if d.name == quantity:
                return d.unit
        return None


def rule_identity(kind: str, charge: str, parts: Sequence[str] = ()) -> str:
    """A rule's stable identity: `kind/charge[part; part]`, e.g.
    `text/input_tokens[region in us-east-1; model = alpha]`.

    Bills for machines (JSON, CSV, FOCUS, snapshots) name a charge's rule by it, and
    `diff` matches rules by it. It is built from what the rule means (its kind, what it
    charges, its conditions in canonical text, its window, a relative price's text), never
    from where it sits, so a comment, a blank line, reformatting or moving the rule to
    another file of the ruleset leaves it unchanged. `parts` are canonical texts (see
    semantics.describe); a rule with none is `kind/charge[]`.
    """
    return f"{kind}/{charge}[{'; '.join(parts)}]"


@attrs.frozen
class PriceRule:
    """One cell of a price table: what it charges, at what rate, under which conditions."""

    id: str
    kind: str
    quantity: str
    per: Decimal
    rate: Decimal | None  # None: free or not offered
    free: str | None  # the reason a free cell gives, "" when it gives none
    refusal: str | None  # the reason a not-offered cell gives
    conditions: tuple[m.Condition, ...]
    each: tuple[tuple[str, str], ...]  # list-field values that make the charge distinct
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)
    window: m.Window | None = None  # the days it prices; None: every day
    # A rate derived by relative rules: (rule place, rule id, factor) outermost first, then
    # the base rule's (place, id, its rate). Empty for a table's own cell.
    basis: tuple[tuple[str, str, Decimal | None], ...] = attrs.field(default=(), eq=False)
    block: bool = False  # `per block of N`: ceil(quantity / per) × rate
    tiers: TierSet | None = None  # a monthly table's tier set: the quantity is priced per period
    # A rate an overlay changed: the list's own rule for this charge (see overlays.py).
    list_rule: PriceRule | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def start(self) -> datetime.date:
        """Its first day, for picking versions: an undated rule is from the beginning of time."""
        return self.window.start if self.window is not None and self.window.start is not None else datetime.date.min

    @property
    def where(self) -> str:
        return self.span.where


@attrs.frozen
class Tier:
    """One band of a monthly table: above `lower`, up to `upper` (None: no end) of the month's total."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal | None  # None: free
    free: str | None  # the reason a free tier gives, "" when it gives none
    span: m.Span = attrs.field(eq=False)

    @property
    def text(self) -> str:
        """How bills name the band, as the table writes it: `<= 1000000`, `> 1000000000`."""
        return f"<= {self.upper}" if self.upper is not None else f"> {self.lower}"


@attrs.frozen
class TierSet:
    """The tiers of one row group of a monthly table, over one month's total of `quantity`."""

    id: str  # the rule id of the charge it prices
    label: str  # `input_tokens (MODEL)`, as period lines name it
    quantity: str
    mode: str  # "graduated" or "volume"
    per: Decimal
    block: bool
    tiers: tuple[Tier, ...]  # ascending; only the last may be open-ended
    span: m.Span = attrs.field(eq=False)


@attrs.frozen
class MinimumRule:
    """`minimum AMOUNT monthly for …` for one kind; the statements' rules share their span."""

    kind: str
    amount: Decimal
    reason: str
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)
    window: m.Window | None = None
    label: str = ""  # `minimum 100 (provider = amazon)`, as true-up lines name it
    conditions: tuple[m.Condition, ...] = attrs.field(default=(), eq=False, repr=False)  # its `when`, checked
    id: str = ""  # stable, as bills for machines name it: `text/minimum[100; provider = amazon]`

    @property
    def where(self) -> str:
        return self.span.where


@attrs.frozen
class RelativeRule:
    """A price stated as a factor of another (`relative …`), for one kind.

    `field` set: the values `cases` of it are priced at `factor` × the price of the same
    usage with `field = base`. `field` None: quantity `cases[0]` at `factor` × the price
    of quantity `base` of the same usage.
    """

    kind: str
    field: str | None
    cases: frozenset[str]
    base: str
    factor: Decimal
    quantities: frozenset[str]  # `charging …`: only these; empty: every quantity the base prices
    conditions: tuple[m.Condition, ...]
    window: m.Window | None
    text: str  # `mode = batch at 0.5 of on_demand`, as bills and explanations name it
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)

    @property
    def where(self) -> str:
        return self.span.where

    @property
    def start(self) -> datetime.date:
        return self.window.start if self.window is not None and self.window.start is not None else datetime.date.min


@attrs.frozen
class Guard:
    """A refusal (`refuse`, `require`, `offer`): when `refuses` holds, the usage is refused."""

    kinds: frozenset[str]
    reason: str
    span: m.Span = attrs.field(eq=False)
    refuses: Predicate = attrs.field(eq=False, repr=False)
    condition: m.Condition | None = attrs.field(default=None, eq=False, repr=False)
    window: m.Window | None = None  # it refuses only on these days
    outside: m.Window | None = None  # an offer's window: it refuses on every day outside it

    def applies(self, day: datetime.date | None) -> bool:
        """Whether it refuses on `day` when its condition holds (`None`: an undated usage)."""
        if day is None:
            return self.outside is None
        if self.window is not None and not self.window.contains(day):
            return False
        return self.outside is None or not self.outside.contains(day)

    @property
    def dated(self) -> bool:
        return self.window is not None or self.outside is not None


@attrs.frozen
class FreeRule:
    kinds: frozenset[str]
    reason: str
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)
    conditions: tuple[m.Condition, ...] = attrs.field(default=(), eq=False, repr=False)
    window: m.Window | None = None


@attrs.frozen
class SkuRule:
    """One row of a `pricelist` table: which Price List SKUs it matches and the usage they price."""

    kind: str
    offer: str  # the offer file's `offerCode`
    unit: str  # the unit its price dimensions give (`1M tokens`)
    per: Decimal  # how much of the quantity one unit is
    attributes: tuple[tuple[str, str], ...]  # SKU attribute to pattern (`*` any text)
    values: tuple[tuple[str, str], ...]  # usage field to value, canonical
    quantity: str
    span: m.Span = attrs.field(eq=False)

    @property
    def where(self) -> str:
        return self.span.where

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether a SKU's attributes fit every pattern of the row."""
        return all(_glob(pattern, attributes.get(name)) for name, pattern in self.attributes)


def _glob(pattern: str, text: Any) -> bool:
    """`*` stands for any text (none too); everything else is itself (no `?` or `[…]`: usagetypes hold them)."""
    if not isinstance(text, str):
        return False
    parts = pattern.split("*")
    if len(parts) == 1:
        return text == pattern
    if not text.startswith(parts[0]) or not text.endswith(parts[-1]) or len(text) < len(parts[0]) + len(parts[-1]):
        return False
    position, end = len(parts[0]), len(text) - len(parts[-1])
    for part in parts[1:-1]:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@attrs.frozen
class Program:
    """Everything a ruleset means, resolved; `Ruleset` wraps it with the public API."""

    root: str
    currency: str
    rounding: tuple[m.Rounding, ...]
    regions: Mapping[str, m.Region]
    providers: Mapping[str, m.Provider]
    models: Mapping[str, ModelInfo]
    aliases: Mapping[str, str]  # every accepted spelling to the model's short name
    kinds: Mapping[str, KindSpec]
    rules: tuple[PriceRule, ...]
    by_model: Mapping[str, Mapping[str, tuple[PriceRule, ...]]]
    unindexed: Mapping[str, tuple[PriceRule, ...]]
    quantities: Mapping[str, tuple[str, ...]]  # per kind, the billable quantities (compiler._billable)
    guards: Mapping[str, tuple[Guard, ...]]
    frees: Mapping[str, tuple[FreeRule, ...]]
    examples: tuple[m.Example, ...]
    files: tuple[m.RuleFile, ...]
    sku_rules: tuple[SkuRule, ...] = ()  # `pricelist` rows: how Price List offer files name the prices
    # Each file's lines by the name messages show, so diagnostics never read a file again.
    sources: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, eq=False, repr=False)
    dated_kinds: frozenset[str] = frozenset()  # kinds some dated statement prices, refuses or frees
    relatives: Mapping[str, tuple[RelativeRule, ...]] = attrs.field(factory=dict)  # per kind, in field order
    minimums: tuple[MinimumRule, ...] = ()  # monthly commitments, in file order
    layers: tuple[Layer, ...] = ()  # overlays, in the order given (`--overlay`)

    @property
    def periodic(self) -> bool:
        """Whether a bill has period lines: a monthly table or a minimum prices across items."""
        return bool(self.minimums) or any(rule.tiers is not None for rule in self.rules)

    @property
    def item_fields(self) -> frozenset[str]:
        """The names a usage item's values can have: `kind`, `name`, every field and quantity of a kind."""
        names = {"kind", "name"}
        for kind in self.kinds.values():
            names.update(f.name for f in kind.fields)
            names.update(d.name for d in kind.derived)
        return frozenset(names)

    def refusing(self, kind: str, values: Values) -> list[Guard]:
        """The guards (`offer`, `refuse`, `require`) that refuse a usage of a kind with these values."""
        at = values.get("at")
        day = None if at is None else at.day
        return [guard for guard in self.guards.get(kind, ()) if guard.applies(day) and guard.refuses(values)]

    def provider_of(self, model: str) -> str:
        """The provider of a model, by its canonical name."""
        return self.models[model].provider

    def source_line(self, span: m.Span) -> str:
        """The line of rule text a span starts on ("" when unknown)."""
        lines = self.sources.get(span.path, ())
        return lines[span.line - 1] if 0 < span.line <= len(lines) else ""


@attrs.frozen
class OverlayRule:
    """One rule of an overlay: a fixed rate (`table`), an `adjust`, or a `relative` rule.

    `fields` are the fields its selector constrains (`model` counts as `provider` too),
    which decide the most specific rule for a charge; `constraints` what it allows of each,
    which decide whether two rules can meet at all.
    """

    kind: str
    form: str  # "table", "adjust" or "relative"
    fields: frozenset[str]
    constraints: Mapping[str, Any]  # field -> ("in", values) | ("not", values) | ("range", low, high)
    window: m.Window | None
    text: str  # how explanations name it: `by -20%`, `mode = batch at 0.5 of on_demand`
    span: m.Span = attrs.field(eq=False)
    matches: Predicate = attrs.field(eq=False, repr=False)
    conditions: tuple[m.Condition, ...] = ()
    quantity: str | None = None  # a table's: the one quantity it charges
    rate: Decimal | None = None  # a table's rate
    per: Decimal = Decimal(1)
    factor: Decimal | None = None  # an adjust's 1 + percent / 100, a relative rule's factor
    relative: RelativeRule | None = None
    each: tuple[tuple[str, str], ...] = ()
    block: bool = False  # a table's `per block of N`

    @property
    def where(self) -> str:
        return self.span.where

    def in_window(self, day: datetime.date | None) -> bool:
        return self.window is None or (day is not None and self.window.contains(day))


@attrs.frozen
class Layer:
    """One `--overlay` PATH: its files' rules, which change the rates of the layers below."""

    title: str
    path: str
    window: m.Window | None
    rules: tuple[OverlayRule, ...]
    span: m.Span = attrs.field(eq=False)
    examples: tuple[m.Example, ...] = ()
    files: tuple[m.RuleFile, ...] = ()  # its parsed files, so a ruleset with overlays pickles
