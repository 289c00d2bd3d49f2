"""What a change of rules does to a corpus of usage documents: per charge, per document, overall.

Charges are matched by their rule's stable id and their item's position, never by
display text, so moving a rule to another line changes nothing and rewording a
condition shows as one charge gone and one new. Amounts and deltas are exact;
percents are of the old amount, rounded half up to 2 places for display only (a
real change too small to show reads `+<0.01%`, never `+0.00%`): the
`--fail-above` gate compares exactly.
"""

from __future__ import annotations

import decimal
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import attrs

from . import model as m
from .bill import Bill, Charge, decimal_text, item_label
from .display import align, encodable, markdown, markdown_code, visible
from .errors import Problem, UsageError
from .explainer import rate_text
from .interpreter import evaluate_items
from .program import PriceRule, Program
from .semantics import EXACT, describe, exact_sum
from .usage import check_items

PERCENT_NOTE = "percents are of the old amount, rounded half up to 2 places; +<0.01% is a change too small to show"
_PERCENT = decimal.Context(prec=60, rounding=ROUND_HALF_UP)


@attrs.frozen
class Outcome:
    """A document under one ruleset: its bill, or the problems that refuse it."""

    bill: Bill | None
    problems: tuple[Problem, ...] = ()
    # (item, charge position) -> what the charge is for that item (see _charge_keys)
    keys: Mapping[tuple[int, int], str] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def total(self) -> Decimal | None:
        return None if self.bill is None else self.bill.total


@attrs.frozen
class ChargeChange:
    """One charge whose amount differs; `old` or `new` is None when that bill has no such charge."""

    item: int
    item_name: str | None
    kind: str
    id: str
    what: str
    old: Decimal | None
    new: Decimal | None

    @property
    def delta(self) -> Decimal:
        return EXACT.subtract(self.new or Decimal(0), self.old or Decimal(0))

    @property
    def label(self) -> str:
        if self.item == 0:  # a period line (a month's tier or true-up): no item of its own
            return self.item_name or ""
        return item_label(self.item, self.item_name)


@attrs.frozen
class DocumentDiff:
    source: str
    old: Outcome
    new: Outcome
    changes: tuple[ChargeChange, ...] = ()
    unchanged: int = 0  # charges with the same amount under both rulesets

    @property
    def status(self) -> str:
        """`changed`, `unchanged`, `newly refused`, `newly priced` or `refused` (under both)."""
        if self.old.bill is None:
            return "refused" if self.new.bill is None else "newly priced"
        if self.new.bill is None:
            return "newly refused"
        return "changed" if self.changes or self.old.total != self.new.total else "unchanged"

    @property
    def delta(self) -> Decimal | None:
        if self.old.total is None or self.new.total is None:
            return None
        return EXACT.subtract(self.new.total, self.old.total)


@attrs.frozen
class RuleChange:
    """A price rule (one table cell) added, removed or changed, by its stable id."""

    change: str  # added | removed | changed
    id: str
    old: PriceRule | None
    new: PriceRule | None


@attrs.frozen
class StatementChange:
    """A refusal (`offer`, `refuse`, `require`) or `free` statement added or removed, by reason."""

    change: str  # added | removed
    statement: str  # refusal | free
    reason: str
    kinds: tuple[str, ...]
    where: str

    @property
    def title(self) -> str:
        return f"{self.statement} for {', '.join(self.kinds)}"


@attrs.frozen
class Diff:
    old_currency: str
    currency: str
    rules: tuple[RuleChange, ...]
    statements: tuple[StatementChange, ...]
    documents: tuple[DocumentDiff, ...]
    # Regions the new rules declare and the old did not, each with the `in any` tables that price there.
    new_regions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dates: tuple[str, str] | None = None  # one ruleset, every item priced at each date

    @property
    def compared(self) -> tuple[DocumentDiff, ...]:
        """The documents priced under both rulesets: the overall total is theirs."""
        return tuple(d for d in self.documents if d.old.bill is not None and d.new.bill is not None)

    @property
    def old_total(self) -> Decimal:
        return exact_sum(cast(Decimal, d.old.total) for d in self.compared)  # priced: a total

    @property
    def new_total(self) -> Decimal:
        return exact_sum(cast(Decimal, d.new.total) for d in self.compared)

    @property
    def delta(self) -> Decimal:
        return EXACT.subtract(self.new_total, self.old_total)

    def count(self, status: str) -> int:
        return sum(1 for d in self.documents if d.status == status)


# Comparing -----------------------------------------------------------------------------


def outcome(compiled: Program, raw_items: Sequence[Any], at: str | None = None) -> Outcome:
    """Price a document's items as `eval` would: every item, or the problems that refuse it.

    `at` replaces every item's own date (the diff of one ruleset between two dates)."""
    if at is not None:
        raw_items = [{**raw, "at": at} if isinstance(raw, Mapping) else raw for raw in raw_items]
    items, problems = check_items(compiled, raw_items)
    try:
        bill = evaluate_items(compiled, items, problems)
    except UsageError as error:
        return Outcome(None, error.problems)
    return Outcome(bill, (), _charge_keys(compiled, bill, {item.index: item.values for item in items}))


def _charge_keys(compiled: Program, bill: Bill, values: Mapping[int, Mapping[str, Any]]) -> dict[tuple[int, int], str]:
    """Per (item, charge position), what the charge is for this item: its rule's id with
    each list of values (`region in a, b`, `model in x, y`) narrowed to the item's own.

    So a region added to a table, or a row split in two, changes no charge of an item
    whose price stays the same; a changed price or a different rule still shows."""
    rules = {rule.id: rule for rule in compiled.rules}
    keys = {}
    for item in bill.items:
        own = values.get(item.index, {})
        for position, charge in enumerate(item.charges):
            # An overlay's charge is the list's charge at another rate: matched by the list's id.
            rule = rules.get(charge.list_id or charge.rule_id)
            if rule is None:  # a `free` statement's line: its id is already its own
                keys[item.index, position] = charge.rule_id
                continue
            parts = [
                f"{cond.field} = {own[cond.field]}"
                if isinstance(cond, m.Member) and not cond.negated and isinstance(own.get(cond.field), str)
                else describe(cond)
                for cond in rule.conditions
            ]
            keys[item.index, position] = f"{rule.kind}/{rule.quantity}[" + "; ".join(parts) + "]"
    return keys


def compare(
    old: Program, new: Program, documents: Sequence[tuple[str, Sequence[Any]]], dates: tuple[str, str] | None = None
) -> Diff:
    """Compare two rulesets over documents given as (name, raw items); or, with `dates`,
    one ruleset (old and new the same) with every item priced at each of the two dates."""
    diffs = []
    before_at, after_at = dates or (None, None)
    for source, raw_items in documents:
        before, after = outcome(old, raw_items, before_at), outcome(new, raw_items, after_at)
        if before.bill is None or after.bill is None:
            diffs.append(DocumentDiff(source, before, after))
            continue
        changes, unchanged = _charge_changes(before, after)
        diffs.append(DocumentDiff(source, before, after, tuple(changes), unchanged))
    rules, statements = compare_rules(old, new)
    diff = Diff(old.currency, new.currency, rules, statements, tuple(diffs), new_regions(old, new), dates)
    try:
        diff.delta  # noqa: B018 - the documents' totals, each exact, summed: refused when no exact context holds them
    except decimal.DecimalException:
        raise UsageError([Problem("the total of the documents cannot be computed exactly", code="BU204")]) from None
    return diff


def new_regions(old: Program, new: Program) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """What each region new to the rules picks up: the `in any` tables, which price there without naming it."""
    anywhere = tuple(
        table.span.where
        for rule_file in new.files for table in rule_file.statements
        if isinstance(table, m.PriceTable) and table.any_region
    )
    return tuple((region, anywhere) for region in new.regions if region not in old.regions)


def _region_lines(diff: Diff) -> list[str]:
    lines = []
    for region, tables in diff.new_regions:
        picked = f"priced by the `in any` tables at {', '.join(tables)}" if tables else "no `in any` table prices there"
        lines.append(f"new region {region}: {picked}")
    return lines


def _charge_changes(old: Outcome, new: Outcome) -> tuple[list[ChargeChange], int]:
    def keyed(priced: Outcome) -> dict[tuple[int, str, int], tuple[Any, Charge, str]]:
        # Two charges of one item can share a key (two `free` lines): number them.
        assert priced.bill is not None
        seen: Counter[tuple[int, str]] = Counter()
        found = {}
        for item in priced.bill.items:
            for position, charge in enumerate(item.charges):
                key = priced.keys.get((item.index, position), charge.rule_id)
                seen[item.index, key] += 1
                found[item.index, key, seen[item.index, key]] = (item, charge, key)
        return found

    before, after = keyed(old), keyed(new)
    unchanged = _same_charges(before, after)
    changes: list[ChargeChange] = []
    for key in [*before, *(k for k in after if k not in before)]:
        old_charge = before.get(key, (None, None))[1]
        new_charge = after.get(key, (None, None))[1]
        item, charge, charge_key = before.get(key) or after[key]
        old_amount = None if old_charge is None else old_charge.amount
        new_amount = None if new_charge is None else new_charge.amount
        if old_amount is not None and old_amount == new_amount:
            unchanged += 1
            continue
        changes.append(ChargeChange(item.index, item.name, item.kind, charge_key, charge.what, old_amount, new_amount))
    changes.sort(key=lambda c: c.item)
    assert old.bill is not None and new.bill is not None
    period_changes, period_unchanged = _period_changes(old.bill, new.bill)
    return changes + period_changes, unchanged + period_unchanged


def _period_changes(old: Bill, new: Bill) -> tuple[list[ChargeChange], int]:
    """Each month's tier lines and true-ups that differ, as charges of no item (item 0, named by the month)."""
    def lines(bill: Bill) -> dict[tuple[str, str, str], Decimal]:
        found = {}
        for period in bill.periods:
            for line in period.lines:
                found[period.month, line.rule_id, f"{line.tier_set} {line.tier}"] = line.amount
            for true_up in period.true_ups:
                found[period.month, true_up.rule_id, f"true-up of {true_up.label}"] = true_up.amount
        return found

    before, after = lines(old), lines(new)
    changes, unchanged = [], 0
    for key in [*before, *(k for k in after if k not in before)]:
        month, rule_id, what = key
        if before.get(key) is not None and before.get(key) == after.get(key):
            unchanged += 1
            continue
        changes.append(ChargeChange(0, f"period {month}", "period", rule_id, what, before.get(key), after.get(key)))
    return changes, unchanged


def _same_charges(before: dict[tuple, tuple[Any, Charge, str]], after: dict[tuple, tuple[Any, Charge, str]]) -> int:
    """Drop the charges whose key changed but not what the item pays: same item, quantity,
    amount charged, rate and amount. A table that gains a condition column (`mode`) gives
    its rules new ids; a charge priced the same is the same charge, not one removed and
    one added. Returns how many pairs were dropped."""
    def what(entry: tuple[Any, Charge, str]) -> tuple[Any, ...]:
        item, charge, _ = entry
        return item.index, charge.what, charge.quantity, charge.rate, charge.per, charge.amount, charge.note

    waiting: dict[tuple[Any, ...], list[tuple]] = {}
    for key in [k for k in after if k not in before]:
        waiting.setdefault(what(after[key]), []).append(key)
    paired = 0
    for key in [k for k in before if k not in after]:
        candidates = waiting.get(what(before[key]))
        if candidates:
            del after[candidates.pop(0)]
            del before[key]
            paired += 1
    return paired


def compare_rules(old: Program, new: Program) -> tuple[tuple[RuleChange, ...], tuple[StatementChange, ...]]:
    """Price rules added, removed or changed (by id), and refusal and free statements added or removed."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    rules = []
    for rule_id, rule in before.items():
        if rule_id not in after:
            rules.append(RuleChange("removed", rule_id, rule, None))
        elif _price(rule) != _price(after[rule_id]):
            rules.append(RuleChange("changed", rule_id, rule, after[rule_id]))
    rules.extend(RuleChange("added", rule_id, None, rule) for rule_id, rule in after.items() if rule_id not in before)
    statements = [
        *_statement_changes("refusal", _statements(old.guards), _statements(new.guards)),
        *_statement_changes("free", _statements(old.frees), _statements(new.frees)),
    ]
    return tuple(rules), tuple(statements)


def _price(rule: PriceRule) -> tuple[Any, ...]:
    return rule.rate, rule.per, rule.free, rule.refusal, rule.block, rule.tiers


def _statements(by_kind: Any) -> dict[tuple[str, str], str]:
    """(reason, kind) to where, for guards or frees."""
    return {(s.reason, kind): s.span.where for kind, found in by_kind.items() for s in found}


def _statement_changes(statement: str, old: dict[tuple[str, str], str], new: dict[tuple[str, str], str]) -> list[StatementChange]:
    # One statement applies to many kinds (`offer` to every kind with a model): one line for all.
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for change, here, there in (("removed", old, new), ("added", new, old)):
        for (reason, kind), where in here.items():
            if (reason, kind) not in there:
                grouped.setdefault((change, reason, where), []).append(kind)
    return [StatementChange(change, statement, reason, tuple(kinds), where) for (change, reason, where), kinds in grouped.items()]


# The gate ------------------------------------------------------------------------------


def over_limit(diff: Diff, limit: Decimal) -> list[str]:
    """Why the diff exceeds `limit` percent (exactly compared); empty when it does not.

    A document newly refused or newly priced exceeds any limit: its change has no percent.
    """
    reasons = []
    if _exceeds(diff.old_total, diff.new_total, limit):
        reasons.append(f"the total changes by {_change(diff.old_total, diff.new_total)}")
    for document in diff.documents:
        if document.status in ("newly refused", "newly priced"):
            reasons.append(f"{visible(document.source)} is {document.status}")
        elif document.delta is not None and _exceeds(document.old.total, document.new.total, limit):
            reasons.append(f"{visible(document.source)} changes by {_change(document.old.total, document.new.total)}")
    return reasons


def _exceeds(old: Decimal | None, new: Decimal | None, limit: Decimal) -> bool:
    if old is None or new is None:
        return False
    delta = EXACT.subtract(new, old)
    # Precision for every digit of both factors: a limit of any length is compared exactly.
    exact = EXACT.copy()
    exact.prec = max(EXACT.prec, len(limit.as_tuple().digits) + len(old.as_tuple().digits) + 3)
    return exact.multiply(abs(delta), 100) > exact.multiply(limit, abs(old))


def percent(old: Decimal | None, new: Decimal | None) -> Decimal | None:
    """The change in percent of the old amount, to 2 places; None when there is no old amount. A missing amount is 0."""
    before, after = old or Decimal(0), new or Decimal(0)
    if before == 0:
        return Decimal("0.00") if after == 0 else None
    return _PERCENT.divide(_PERCENT.multiply(EXACT.subtract(after, before), 100), before).quantize(Decimal("0.01"), ROUND_HALF_UP)


def percent_text(old: Decimal | None, new: Decimal | None) -> str:
    """`+12.50%`; `+<0.01%` for a real change too small to show; `n/a` when there is no old amount."""
    value = percent(old, new)
    if value is None:
        return "n/a"
    before, after = old or Decimal(0), new or Decimal(0)
    if value == 0 and after != before:  # rounded to nothing, but not nothing: never `+0.00%`
        return f"{'+' if after > before else '-'}<0.01%"
    return f"{'+' if after > before else ''}{value}%"


def _percent_data(old: Decimal | None, new: Decimal | None) -> str | None:
    value = percent(old, new)
    return None if value is None else str(value)


def signed(amount: Decimal) -> str:
    return ("+" if amount > 0 else "") + decimal_text(amount)


def _amount(amount: Decimal | None) -> str:
    return "-" if amount is None else decimal_text(amount)


def _change(old: Decimal | None, new: Decimal | None) -> str:
    delta = EXACT.subtract(new or Decimal(0), old or Decimal(0))
    return f"{signed(delta)} ({percent_text(old, new)})"


# Output --------------------------------------------------------------------------------


def _rule_price(rule: PriceRule | None, currency: str) -> str:
    return "-" if rule is None else f"{rate_text(rule, currency)} ({rule.where})"


def _statement_sides(statement: StatementChange) -> tuple[str, str]:
    said = f'"{statement.reason}" ({statement.where})'
    return (said, "-") if statement.change == "removed" else ("-", said)


def _problem_lines(problems: Sequence[Problem]) -> list[str]:
    return [p.render() for p in problems]


def _shown_problems(problems: Sequence[Problem]) -> list[str]:
    """Refusals for people: a name or value in them cannot start a line of its own."""
    return [f"  {visible(line)}" for line in _problem_lines(problems)]


def _summary(diff: Diff) -> str:
    counts = Counter(r.change for r in diff.rules)
    statements = len(diff.statements)
    return (
        f"{counts['changed']} rule{'s' if counts['changed'] != 1 else ''} changed, {counts['added']} added, "
        f"{counts['removed']} removed"
        + (f", {statements} refusal or free statement{'s' if statements != 1 else ''} added or removed" if statements else "")
        + f"; {diff.count('changed')} of {len(diff.documents)} "
        f"document{'s' if len(diff.documents) != 1 else ''} changed, "
        f"{diff.count('newly refused')} newly refused, {diff.count('newly priced')} newly priced"
    )


def render_table(diff: Diff) -> str:
    """The diff for people: rule changes, then each document's changed charges, then the total."""
    currency = diff.currency
    out = [_summary(diff)]
    if diff.dates is not None:
        out.insert(0, f"each item priced at {diff.dates[0]} and at {diff.dates[1]}")
    if diff.old_currency != diff.currency:
        out.append(f"the currency changes from {diff.old_currency} to {diff.currency}")
    out.extend(visible(line) for line in _region_lines(diff))
    if diff.rules or diff.statements:
        rows: list[tuple[str, ...]] = [("change", "rule", "old", "new")]
        rows.extend((r.change, r.id, _rule_price(r.old, currency), _rule_price(r.new, currency)) for r in diff.rules)
        rows.extend((st.change, st.title, *_statement_sides(st)) for st in diff.statements)
        out.extend(["", *align(rows, set(), "")])
    for document in diff.documents:
        out.append("")
        status = document.status
        if status in ("changed", "unchanged"):
            head = f"{visible(document.source)}: {_amount(document.old.total)} -> {_amount(document.new.total)} {currency}"
            if status == "unchanged":
                out.append(f"{head}, unchanged ({document.unchanged} charges)")
                continue
            out.append(f"{head}, {_change(document.old.total, document.new.total)}")
            rows = [("item", "charge", "old", "new", "delta", "percent")]
            rows.extend(
                (c.label, c.what, _amount(c.old), _amount(c.new), signed(c.delta), percent_text(c.old, c.new)) for c in document.changes
            )
            out.extend(align(rows, {2, 3, 4, 5}, "  "))
            out.append(f"  {document.unchanged} charge{'s' if document.unchanged != 1 else ''} unchanged")
        elif status == "newly refused":
            out.append(f"{visible(document.source)}: newly refused (was {_amount(document.old.total)} {currency}):")
            out.extend(_shown_problems(document.new.problems))
        elif status == "newly priced":
            out.append(f"{visible(document.source)}: newly priced at {_amount(document.new.total)} {currency}; it was refused:")
            out.extend(_shown_problems(document.old.problems))
        else:
            out.append(f"{visible(document.source)}: refused under both rulesets:")
            out.extend(_shown_problems(document.new.problems))
    compared = len(diff.compared)
    out.extend([
        "",
        f"total of the {compared} document{'s' if compared != 1 else ''} priced under both: "
        f"{decimal_text(diff.old_total)} -> {decimal_text(diff.new_total)} {currency}, {_change(diff.old_total, diff.new_total)}",
        f"({PERCENT_NOTE})",
    ])
    return "\n".join(out) + "\n"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def render_markdown(diff: Diff) -> str:
    """The diff as a pull-request comment: a summary line, the changed documents, then details."""
    currency = diff.currency
    compared = len(diff.compared)
    out = [
        f"**Price change: {signed(diff.delta)} {currency} ({percent_text(diff.old_total, diff.new_total)})** "
        f"over the {compared} document{'s' if compared != 1 else ''} priced under both rulesets "
        f"({decimal_text(diff.old_total)} → {decimal_text(diff.new_total)} {currency}). {_sentence(_summary(diff))}",
    ]
    changed = [d for d in diff.documents if d.status not in ("unchanged", "refused")]
    if changed:
        out.extend(["", "| document | status | old | new | delta | percent |", "| --- | --- | ---: | ---: | ---: | ---: |"])
        for d in changed:
            delta = "" if d.delta is None else signed(d.delta)
            percent = "" if d.delta is None else percent_text(d.old.total, d.new.total)
            old = "refused" if d.old.total is None else decimal_text(d.old.total)
            new = "refused" if d.new.total is None else decimal_text(d.new.total)
            out.append(f"| {markdown_code(d.source)} | {d.status} | {old} | {new} | {delta} | {percent} |")
    out.extend(["", "<details><summary>Details</summary>", ""])
    if diff.old_currency != diff.currency:
        out.extend([f"The currency changes from {diff.old_currency} to {diff.currency}.", ""])
    if diff.new_regions:
        out.extend(["#### New regions", "", *(f"- {markdown(line)}" for line in _region_lines(diff)), ""])
    if diff.rules or diff.statements:
        out.extend(["#### Rules", "", "| change | rule | old | new |", "| --- | --- | --- | --- |"])
        for r in diff.rules:
            old, new = markdown(_rule_price(r.old, currency)), markdown(_rule_price(r.new, currency))
            out.append(f"| {r.change} | {markdown_code(r.id)} | {old} | {new} |")
        for st in diff.statements:
            old, new = _statement_sides(st)
            out.append(f"| {st.change} | {markdown(st.title)} | {markdown(old)} | {markdown(new)} |")
        out.append("")
    charges = [(d, c) for d in diff.documents for c in d.changes]
    if charges:
        out.extend([
            "#### Charges", "",
            "| document | item | charge | old | new | delta | percent |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        ])
        for d, c in charges:
            out.append(
                f"| {markdown_code(d.source)} | {markdown(c.label)} | {markdown(c.what)} | {_amount(c.old)} | {_amount(c.new)} | "
                f"{signed(c.delta)} | {percent_text(c.old, c.new)} |"
            )
        unchanged = sum(d.unchanged for d in diff.documents)
        out.extend(["", f"{unchanged} charge{'s' if unchanged != 1 else ''} unchanged.", ""])
    refusals = [d for d in diff.documents if d.status in ("newly refused", "newly priced", "refused")]
    if refusals:
        out.extend(["#### Refusals", ""])
        for d in refusals:
            problems = d.new.problems if d.status != "newly priced" else d.old.problems
            which = {"newly priced": "was refused", "refused": "refused under both"}.get(d.status, "newly refused")
            out.extend(f"- {markdown_code(d.source)} {which}: {markdown(line)}" for line in _problem_lines(problems))
        out.append("")
    out.extend([_sentence(PERCENT_NOTE), "", "</details>"])
    return "\n".join(out) + "\n"


SCHEMA = "bedrock-rules/diff/1"  # bedrock_rules/schemas/diff.json


def to_data(diff: Diff) -> dict[str, Any]:
    """The diff as JSON-ready data: keys in a fixed order, amounts as exact decimal strings."""
    currency = diff.currency

    def rule(r: PriceRule | None) -> dict[str, Any] | None:
        return None if r is None else {"price": rate_text(r, currency), "rule": r.where}

    def side(o: Outcome) -> dict[str, Any]:
        return {"total": None if o.total is None else decimal_text(o.total), "problems": _problem_lines(o.problems)}

    return {
        "schema": SCHEMA,
        "currency": currency,
        "old_currency": diff.old_currency,
        **({"dates": {"before": diff.dates[0], "after": diff.dates[1]}} if diff.dates is not None else {}),
        "total": {
            "documents": len(diff.compared),
            "old": decimal_text(diff.old_total),
            "new": decimal_text(diff.new_total),
            "delta": decimal_text(diff.delta),
            "percent": _percent_data(diff.old_total, diff.new_total),
        },
        "rules": [{"change": r.change, "id": r.id, "old": rule(r.old), "new": rule(r.new)} for r in diff.rules],
        "statements": [
            {"change": s.change, "statement": s.statement, "reason": s.reason, "kinds": list(s.kinds), "rule": s.where}
            for s in diff.statements
        ],
        "new_regions": [{"region": region, "tables": list(tables)} for region, tables in diff.new_regions],
        "documents": [
            {
                "document": d.source,
                "status": d.status,
                "old": side(d.old),
                "new": side(d.new),
                "delta": None if d.delta is None else decimal_text(d.delta),
                "percent": None if d.delta is None else _percent_data(d.old.total, d.new.total),
                "unchanged_charges": d.unchanged,
                "charges": [
                    {
                        "item": c.item,
                        "name": c.item_name,
                        "kind": c.kind,
                        "id": c.id,
                        "what": c.what,
                        "old": None if c.old is None else decimal_text(c.old),
                        "new": None if c.new is None else decimal_text(c.new),
                        "delta": decimal_text(c.delta),
                        "percent": _percent_data(c.old, c.new),
                    }
                    for c in d.changes
                ],
            }
            for d in diff.documents
        ],
        "note": "amounts are exact; percents are of the old amount, rounded half up to 2 places",
    }


def dump(diff: Diff) -> str:
    """The diff as JSON text, byte-identical for the same input, ending in a newline."""
    return encodable(json.dumps(to_data(diff), indent=2, ensure_ascii=False)) + "\n"
