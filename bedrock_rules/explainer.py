"""Why a bill says what it says: each charge's rule text and arithmetic, and each refusal's reasons.

An explanation is built from the interpreter's own answers (`price_item`,
`candidate_rules`), so it can never disagree with the bill: it only adds the rule
text, the arithmetic in words and, for a refused item, why each guard refused it and
why each candidate price rule did not match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from .bill import Charge, PeriodBill, PeriodLine, TrueUp, decimal_text, item_label, period_data
from .display import encodable, visible
from .errors import Problem
from .interpreter import candidate_rules, evaluate_items, price_item
from .periods import blocks
from .program import FreeRule, KindSpec, PriceRule, Program
from .semantics import EXACT, describe_expr, failing_conditions
from .usage import Item


@attrs.frozen
class Quote:
    """The lines of a rule file a charge or a refusal rests on; `mark` underlines a cell."""

    where: str  # file:line
    lines: tuple[tuple[int, str], ...]  # (line number, text)
    mark: tuple[int, int] | None = None  # columns (start, end) on the last line


@attrs.frozen
class ChargeWhy:
    charge: Charge
    arithmetic: str
    derivation: str | None  # how a derived quantity is computed, e.g. `model_hours = model_units * hours`
    quote: Quote
    # A relative price: its rate's arithmetic, outermost first (`rate 0.0015 = 0.003 × 0.5 (…)`),
    # and the rules involved after the first: each relative rule, then the base cell.
    steps: tuple[str, ...] = ()
    involved: tuple[Quote, ...] = ()


@attrs.frozen
class GuardWhy:
    reason: str
    quote: Quote


@attrs.frozen
class Candidate:
    """A price rule that could have priced a refused item; `unmet` is empty when it matches."""

    rule: PriceRule
    unmet: tuple[str, ...]


@attrs.frozen
class ItemWhy:
    index: int
    name: str | None
    kind: str
    source: str | None
    subtotal: Decimal | None  # None: refused
    charges: tuple[ChargeWhy, ...] = ()
    problems: tuple[str, ...] = ()  # the refusal messages, as `eval` prints them
    guards: tuple[GuardWhy, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    model: str | None = None  # the model candidates were chosen by, when the kind has one

    @property
    def refused(self) -> bool:
        return self.subtotal is None

    @property
    def label(self) -> str:
        return item_label(self.index, self.name)


@attrs.frozen
class PeriodWhy:
    """A month's period lines and true-ups, each with its arithmetic in words."""

    period: PeriodBill
    lines: tuple[tuple[PeriodLine, str], ...]
    true_ups: tuple[tuple[TrueUp, str], ...]


@attrs.frozen
class Explanation:
    currency: str
    items: tuple[ItemWhy, ...]
    total: Decimal | None  # None when any item is refused
    periods: tuple[PeriodWhy, ...] = ()

    @property
    def refused(self) -> int:
        return sum(1 for item in self.items if item.refused)


# The reusable part: why a rule does or does not apply ------------------------------


def candidates(program: Program, item: Item) -> list[Candidate]:
    """Every price rule the interpreter considers for an item, with the conditions it does not meet."""
    kind = program.kinds[item.kind]
    return [
        Candidate(rule, tuple(failing_conditions(rule.conditions, kind.fields, item.values)))
        for rule in candidate_rules(program, item)
    ]


def closest(found: Iterable[Candidate]) -> Candidate | None:
    """The candidate with the fewest unmet conditions (the first of equals)."""
    best: Candidate | None = None
    for candidate in found:
        if best is None or len(candidate.unmet) < len(best.unmet):
            best = candidate
    return best


def rate_text(rule: PriceRule, currency: str) -> str:
    """What a rule's cell says: `0.008 USD per 1000`, `39.6 USD each`, `free`, `not offered`."""
    if rule.refusal is not None:
        return f'not offered: "{rule.refusal}"' if rule.refusal != "not offered" else "not offered"
    per = f"per block of {decimal_text(rule.per)}" if rule.block else "each" if rule.per == 1 else f"per {decimal_text(rule.per)}"
    if rule.tiers is not None:  # `monthly graduated: <= 1000 at 0.004, > 1000 at 0.002 USD per 1000`
        tiers = ", ".join(
            f"{tier.text} free" if tier.rate is None else f"{tier.text} at {decimal_text(tier.rate)}" for tier in rule.tiers.tiers
        )
        return f"monthly {rule.tiers.mode}: {tiers} {currency} {per}"
    if rule.rate is None:
        return "free" if rule.free == "free" else f'free: "{rule.free}"'
    return f"{decimal_text(rule.rate)} {currency} {per}"


# Explaining ---------------------------------------------------------------------------


def explain(program: Program, items: Sequence[Item]) -> Explanation:
    """Explain every item, priced or refused; the total only when every item is priced.

    Rule text is quoted from the lines the loader kept: no rule file is read again.
    """
    quoter = _Quoter(program)
    running = _running_totals(program, items)
    explained = [_explain_item(program, item, quoter, running) for item in items]
    total = None
    periods: tuple[PeriodWhy, ...] = ()
    if not any(item.refused for item in explained):
        bill = evaluate_items(program, items)  # the interpreter's total, rounded as the rules say
        total = bill.total
        periods = tuple(_period_why(program, period) for period in bill.periods)
    return Explanation(program.currency, tuple(explained), total, periods)


def _running_totals(program: Program, items: Sequence[Item]) -> dict[tuple[int, str | None, str], tuple[Decimal, Decimal]]:
    """Per (item, document, tier set) its place in the month: the running total before and after it.

    For explanation only (a period is priced from its total, never item by item): items
    are taken in order of `at`, then as the documents give them.
    """
    if not program.periodic:
        return {}
    order = sorted(
        (item for item in items if item.values.get("at") is not None),
        key=lambda item: (item.values["at"].day, item.values["at"].text),
    )
    totals: dict[tuple[str, str], Decimal] = {}
    running: dict[tuple[int, str | None, str], tuple[Decimal, Decimal]] = {}
    for item in order:
        bill, _ = price_item(program, item)
        for charge in bill.charges if bill is not None else ():
            if charge.period is None or charge.period_rule is None:
                continue
            key = (charge.period, charge.period_rule)
            before = totals.get(key, Decimal(0))
            totals[key] = EXACT.add(before, charge.quantity)
            running[item.index, item.source, charge.period_rule] = (before, totals[key])
    return running


def _period_why(program: Program, period: PeriodBill) -> PeriodWhy:
    currency = program.currency
    lines = []
    for line in period.lines:
        quantity = decimal_text(line.quantity) + (f" {line.unit}" if line.unit else "")
        if line.rate is None:
            text = f"{quantity}: free" + (f', "{line.note}"' if line.note and line.note != "free" else "")
        elif line.block:
            text = (
                f"ceil({quantity} ÷ {decimal_text(line.per)}) = {decimal_text(line.blocks or 0)} blocks "
                f"× {decimal_text(line.rate)} {currency}"
            )
        else:
            per = "" if line.per == 1 else f" ÷ {decimal_text(line.per)}"
            text = f"{quantity}{per} × {decimal_text(line.rate)} {currency}"
        lines.append((line, f"{text} = {decimal_text(line.amount)} {currency}"))
    true_ups = [
        (
            true_up,
            f"{decimal_text(true_up.minimum)} − {decimal_text(true_up.charged)} charged = {decimal_text(true_up.amount)} {currency}",
        )
        for true_up in period.true_ups
    ]
    return PeriodWhy(period, tuple(lines), tuple(true_ups))


def _explain_item(program: Program, item: Item, quoter: _Quoter, running: Mapping[tuple, tuple[Decimal, Decimal]]) -> ItemWhy:
    bill, problems = price_item(program, item)
    kind = program.kinds[item.kind]
    if bill is not None:
        charges = tuple(
            _relative_why(program, charge, quoter, kind) if charge.basis else
            ChargeWhy(
                charge,
                _period_place(charge, quoter, running.get((item.index, item.source, charge.period_rule or "")))
                if charge.period is not None else arithmetic(program, charge),
                _derivation(kind, quoter.price_rule(charge)), quoter.charge(charge),
            )
            for charge in bill.charges
        )
        return ItemWhy(item.index, item.name, item.kind, item.source, bill.subtotal, charges)
    guards = tuple(GuardWhy(g.reason, quoter.statement(g.span)) for g in program.refusing(item.kind, item.values))
    model_field = kind.model_field
    return ItemWhy(
        item.index, item.name, item.kind, item.source, None,
        problems=tuple(_refusal(p) for p in problems),
        guards=guards,
        candidates=tuple(candidates(program, item)),
        model=item.values.get(model_field) if model_field else None,
    )


def _relative_why(program: Program, charge: Charge, quoter: _Quoter, kind: KindSpec) -> ChargeWhy:
    """A charge priced by relative rules: each factor's arithmetic, and every rule involved."""
    *factors, (base_where, _, base_rate) = charge.basis
    rates = [base_rate]
    for _, _, factor in reversed(factors):
        rates.insert(0, None if rates[0] is None or factor is None else EXACT.multiply(rates[0], factor))
    steps = []
    for position, (where, _, factor) in enumerate(factors):
        rule = quoter.relatives.get(where)
        what = f" ({rule.text})" if rule is not None else ""
        overlay = quoter.overlays.get(where)
        if overlay is not None:  # `overlay: rate 0.0024 = 0.003 × 0.8 (by -20%)`
            what = f" ({overlay.text})"
        rate, of = rates[position], rates[position + 1]
        if rate is not None and of is not None:  # the rate it is a factor of is known whenever the rate is
            said = f"rate {decimal_text(rate)} = {decimal_text(of)} × {decimal_text(factor or 0)}{what}"
            steps.append(("overlay: " if overlay is not None else "") + said)
    if base_where in quoter.overlays and base_rate is not None:
        steps.append(f"overlay: rate {decimal_text(base_rate)}, fixed ({base_where})")
    if charge.list_rule is not None and charge.list_rate is not None:
        steps.append(f"list rate {decimal_text(charge.list_rate)} ({charge.list_rule})")
    quotes = [
        quoter.statement(quoter.relatives[where].span) if where in quoter.relatives else quoter.overlay(quoter.overlays[where])
        for where, _, _ in factors if where in quoter.relatives or where in quoter.overlays
    ]
    base = quoter.by_place.get((base_where, base_rate))
    if base is None and base_where in quoter.overlays:
        quotes.append(quoter.overlay(quoter.overlays[base_where]))
    else:
        quotes.append(quoter.rule(base) if base is not None else Quote(base_where, ()))
    if charge.list_rule is not None:  # the list's own rules for the charge: its relative rules, and its base when another
        for where, _, _ in charge.list_basis[:-1]:
            if where in quoter.relatives:
                quote = quoter.statement(quoter.relatives[where].span)
                if quote not in quotes:
                    quotes.append(quote)
        listed = quoter.by_place.get((charge.list_basis[-1][0], charge.list_basis[-1][2])) if charge.list_basis else None
        if listed is not None and listed is not base:
            quotes.append(quoter.rule(listed))
    return ChargeWhy(charge, arithmetic(program, charge), _derivation(kind, base), quotes[0], tuple(steps), tuple(quotes[1:]))


def _period_place(charge: Charge, quoter: _Quoter, running: tuple[Decimal, Decimal] | None) -> str:
    """A charge a monthly table prices: the period it counts in and its place in the month's total."""
    rule = quoter.price_rule(charge)
    where = rule.where if rule is not None else charge.rule
    text = f"{_quantity(charge)}, counted in period {charge.period} ({charge.note}, {where})"
    if running is None or rule is None or rule.tiers is None:
        return text
    before, after = running
    reached = [
        tier.text for tier in rule.tiers.tiers
        if (tier.upper is None or before < tier.upper) and (after > tier.lower or tier is rule.tiers.tiers[0])
    ]
    return f"{text}: running total {decimal_text(before)} → {decimal_text(after)} (tiers {', '.join(reached)})"


def _refusal(problem: Problem) -> str:
    """A refusal as `eval` prints it after the item's label: `field f: error[CODE]: message`."""
    message = f"error[{problem.code}]: {problem.message}" if problem.code else problem.message
    return message if problem.field is None else f"field {problem.field}: {message}"


def arithmetic(program: Program, charge: Charge) -> str:
    """A charge's amount in words: `11000 tokens ÷ 1000 × 0.008 USD = 0.088 USD`."""
    currency = program.currency
    amount = f"{decimal_text(charge.amount)} {currency}"
    if charge.rate is None:
        if "/free[" in charge.rule_id:  # a `free` statement: one zero line for the item
            return f'no charge: "{charge.note}" = {amount}'
        quantity = _quantity(charge)
        if charge.note in (None, "free"):
            return f"{quantity}: free (the price table says so) = {amount}"
        return f'{quantity}: free, "{charge.note}" = {amount}'
    if charge.block:
        count = blocks(charge.quantity, charge.per)
        text = (
            f"ceil({_quantity(charge)} ÷ {decimal_text(charge.per)}) = {decimal_text(count)} blocks "
            f"× {decimal_text(charge.rate)} {currency}"
        )
        exact = EXACT.multiply(count, charge.rate)
    else:
        per = "" if charge.per == 1 else f" ÷ {decimal_text(charge.per)}"
        text = f"{_quantity(charge)}{per} × {decimal_text(charge.rate)} {currency}"
        exact = EXACT.divide(EXACT.multiply(charge.quantity, charge.rate), charge.per)
    if exact == charge.amount:
        return f"{text} = {amount}"
    rounding = next((r for r in program.rounding if r.target == "each charge"), None)
    if rounding is None:  # pragma: no cover - the interpreter rounds only as a rule says
        return f"{text} = {amount}"
    return (
        f"{text} = {decimal_text(exact)} {currency}, rounded to {amount} "
        f"({rounding.places} places, {rounding.mode}; {rounding.span.where})"
    )


def _quantity(charge: Charge) -> str:
    return decimal_text(charge.quantity) + (f" {charge.unit}" if charge.unit else "")


def _derivation(kind: KindSpec, rule: PriceRule | None) -> str | None:
    for derived in kind.derived:
        if rule is not None and derived.name == rule.quantity:
            return f"{derived.name} = {describe_expr(derived.expr)}"
    return None


class _Quoter:
    """Finds the rule-file lines behind a charge or a guard."""

    def __init__(self, program: Program):
        self.sources = program.sources
        self.rules = {(rule.id, rule.where): rule for rule in program.rules}
        # A base rule by its place and rate (a row holds several cells, and a line one row).
        self.by_place = {(rule.where, rule.rate): rule for rule in reversed(program.rules)}
        self.relatives = {rel.where: rel for rels in program.relatives.values() for rel in rels}
        self.frees: dict[str, FreeRule] = {free.span.where: free for frees in program.frees.values() for free in frees}
        self.overlays = {rule.where: rule for layer in program.layers for rule in layer.rules}
        # Each price cell's table and row, by the cell's place (spans are values).
        self.cells: dict[m.Span, tuple[m.PriceTable, tuple[m.Cell, ...]]] = {}
        for rule_file in (*program.files, *(f for layer in program.layers for f in layer.files)):
            for statement in rule_file.statements:
                if isinstance(statement, m.PriceTable):
                    for row in statement.rows:
                        for cell in row:
                            self.cells[cell.span] = (statement, row)

    def price_rule(self, charge: Charge) -> PriceRule | None:
        """The price rule behind a charge; None for a `free` statement's line."""
        return self.rules.get((charge.rule_id, charge.rule))

    def charge(self, charge: Charge) -> Quote:
        rule = self.price_rule(charge)
        if rule is None:
            free = self.frees.get(charge.rule)
            return self.statement(free.span) if free is not None else Quote(charge.rule, ())
        return self.rule(rule)

    def rule(self, rule: PriceRule) -> Quote:
        """The table's first line, its header row and the rule's row, the rule's cell marked."""
        if rule.tiers is not None:  # a monthly table's tier set: the table's first line and its tiers
            cells = [self.cells[tier.span] for tier in rule.tiers.tiers]
            table = cells[0][0]
            numbers = sorted({table.span.line, table.columns[0].span.line, *(row[0].span.line for _, row in cells)})
            return Quote(rule.where, self._lines(rule.span.path, numbers))
        return self._cell(rule)

    def _cell(self, rule: Any) -> Quote:
        """A table cell's rule (the list's or an overlay's): its table's lines, the cell marked."""
        table, row = self.cells[rule.span]
        numbers = sorted({table.span.line, table.columns[0].span.line, row[0].span.line})
        mark = (rule.span.column, rule.span.end_column) if rule.span.end_line == rule.span.line else None
        return Quote(rule.where, self._lines(rule.span.path, numbers), mark)

    def overlay(self, rule: Any) -> Quote:
        """An overlay rule: its table's lines with the cell marked, or its one line."""
        if rule.span in self.cells:  # a fixed rate: overlays hold no monthly tables (BR224)
            return self._cell(rule)
        span = rule.span
        return Quote(span.where, self._lines(span.path, (span.line,)))

    def statement(self, span: m.Span) -> Quote:
        # A statement's span ends where the next line starts, after its newlines.
        last = span.end_line - 1 if span.end_column <= 1 else span.end_line
        lines = list(self._lines(span.path, range(span.line, max(span.line, last) + 1)))
        while len(lines) > 1 and (not lines[-1][1].strip() or lines[-1][1].lstrip().startswith("#")):
            lines.pop()  # blank lines and comments after a statement: the next statement's
        return Quote(span.where, tuple(lines))

    def _lines(self, path: str, numbers: Iterable[int]) -> tuple[tuple[int, str], ...]:
        lines = self.sources.get(path, ())
        return tuple((n, lines[n - 1]) for n in numbers if 0 < n <= len(lines))


# Output -------------------------------------------------------------------------------


def render_text(explanation: Explanation) -> str:
    """The explanation for people: every item, its charges or its refusal, then the total."""
    currency = explanation.currency
    out: list[str] = []
    for item in explanation.items:
        document = f"{item.source}: " if item.source else ""
        if not item.refused:
            out.append(f"{document}item {item.label} ({item.kind}): {decimal_text(item.subtotal or 0)} {currency}")
            for why in item.charges:
                out.append(f"  {why.charge.what}: {why.arithmetic}")
                if why.derivation:
                    out.append(f"    where {why.derivation}")
                out.extend(f"    {step}" for step in why.steps)
                out.extend(_quote_lines(why.quote, "    "))
                for quote in why.involved:
                    out.extend(_quote_lines(quote, "    "))
            out.append("")
            continue
        out.append(f"{document}item {item.label} ({item.kind}): refused")
        for guard in item.guards:
            out.append(f"  refused: {guard.reason} — {guard.quote.where}")
            out.extend(_quote_lines(guard.quote, "    ", where=False))
        if not item.guards:
            out.extend(f"  refused: {problem}" for problem in item.problems)
        model = f" with model {item.model}" if item.model else ""
        if item.candidates:
            out.append(f"  price rules for {item.kind} usage{model}:")
            for candidate in item.candidates:
                rule = candidate.rule
                head = f"    {rule.where}  {rule.quantity} ({rate_text(rule, currency)}): "
                out.append(head + ("matches" if not candidate.unmet else "needs " + " and ".join(candidate.unmet)))
        else:
            out.append(f"  no price rule for {item.kind} usage{model}")
        out.append("")
    for period_why in explanation.periods:
        out.append(f"period {period_why.period.month}: {decimal_text(period_why.period.total)} {currency}")
        for line, text in period_why.lines:
            out.append(f"  {line.tier_set} {line.mode}, {line.tier}: {text} ({line.rule})")
        for true_up, text in period_why.true_ups:
            out.append(f"  {true_up.label}: {text} ({true_up.rule}: \"{true_up.reason}\")")
        out.append("")
    refused = explanation.refused
    if refused:
        out.append(f"{refused} of {len(explanation.items)} item{'s' if len(explanation.items) != 1 else ''} refused; nothing is priced")
    else:
        out.append(f"total: {decimal_text(explanation.total or 0)} {currency}")
    # Names, models and refusal reasons come from the usage: none of them may start a line.
    return "\n".join(map(visible, out)) + "\n"


def _quote_lines(quote: Quote, indent: str, where: bool = True) -> list[str]:
    out = [f"{indent}{quote.where}"] if where else []
    if not quote.lines:
        return out
    width = len(str(quote.lines[-1][0]))
    out.extend(f"{indent}{number:>{width}} | {text}" for number, text in quote.lines)
    if quote.mark is not None:
        start, end = quote.mark
        out.append(f"{indent}{' ' * width} | {' ' * (start - 1)}{'^' * max(1, end - start)}")
    return out


SCHEMA = "bedrock-rules/explain/1"  # bedrock_rules/schemas/explain.json


def to_data(explanation: Explanation) -> dict[str, Any]:
    """The explanation as JSON-ready data: keys in a fixed order, amounts as decimal strings."""
    currency = explanation.currency
    return {
        "schema": SCHEMA,
        "currency": currency,
        "total": None if explanation.total is None else decimal_text(explanation.total),
        "refused": explanation.refused,
        "items": [_item_data(item, currency) for item in explanation.items],
        **({"periods": [
            {
                **period_data(why.period),
                "arithmetic": [text for _, text in why.lines],
                "true_up_arithmetic": [text for _, text in why.true_ups],
            }
            for why in explanation.periods
        ]} if explanation.periods else {}),
    }


def _item_data(item: ItemWhy, currency: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "item": item.index,
        "name": item.name,
        **({"document": item.source} if item.source else {}),
        "kind": item.kind,
        "status": "refused" if item.refused else "priced",
    }
    if not item.refused:
        data["subtotal"] = decimal_text(item.subtotal or 0)
        data["charges"] = [
            {
                "id": why.charge.rule_id,
                "what": why.charge.what,
                "quantity": decimal_text(why.charge.quantity),
                "unit": why.charge.unit,
                "rate": None if why.charge.rate is None else decimal_text(why.charge.rate),
                "per": decimal_text(why.charge.per),
                "amount": None if why.charge.period is not None else decimal_text(why.charge.amount),
                "rule": why.charge.rule,
                **({"note": why.charge.note} if why.charge.note else {}),
                **({"period": why.charge.period} if why.charge.period is not None else {}),
                "arithmetic": why.arithmetic,
                **({"derivation": why.derivation} if why.derivation else {}),
                "source": _quote_data(why.quote),
                **({"steps": list(why.steps), "involved": [_quote_data(q) for q in why.involved]} if why.steps else {}),
            }
            for why in item.charges
        ]
        return data
    data["problems"] = list(item.problems)
    data["guards"] = [{"reason": g.reason, "rule": g.quote.where, "source": _quote_data(g.quote)} for g in item.guards]
    data["candidates"] = [
        {
            "id": c.rule.id,
            "rule": c.rule.where,
            "quantity": c.rule.quantity,
            "price": rate_text(c.rule, currency),
            "matches": not c.unmet,
            "unmet": list(c.unmet),
        }
        for c in item.candidates
    ]
    return data


def _quote_data(quote: Quote) -> list[dict[str, Any]]:
    return [{"line": number, "text": text} for number, text in quote.lines]


def dump(explanation: Explanation) -> str:
    """The explanation as JSON text, byte-identical for the same input, ending in a newline."""
    return encodable(json.dumps(to_data(explanation), indent=2, ensure_ascii=False)) + "\n"
