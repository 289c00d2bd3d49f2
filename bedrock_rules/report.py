"""The bill, log totals or a price diff as one self-contained HTML page, for people and for print.

The page loads nothing: its style, its charts (inline SVG drawn here) and its small script
(sorting and filtering the itemized table) are inside it, and its Content-Security-Policy
forbids any other load, so it works offline and leaks nothing when opened. Every value
written by someone else (item names, tags, log fields, reasons, file names) goes through
`_text`: control and format characters (bidi overrides, newlines, lone surrogates) become
visible escapes, then HTML special characters become references. The JSON of the same
bill travels inside the page in a `<script type="application/json">`, with `<`, `>`, `&`
and the line separators escaped, so no value can close the element. Only the hashed
script runs (CSP `script-src 'sha256-…'`): even a value that slipped through could not.

Amounts are exact decimals as `eval --format json` writes them; chart geometry is
computed with Decimal too (pixels to two places), so no float touches money.
"""

from __future__ import annotations

import base64
import decimal
import hashlib
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from .bill import Bill, decimal_text, rate_text
from .bill import to_data as bill_data
from .differ import Diff, percent_text, signed
from .differ import to_data as diff_data
from .display import visible
from .model import as_tuple
from .semantics import exact_sum
from .totals import Totals, group_text, where
from .totals import to_data as totals_data

CHART_DIMENSIONS = ("model", "region", "day")  # drawn when the bill has values for them
_NONE = "(none)"


def _text(value: object) -> str:
    """Any value as HTML text or attribute: hidden characters made visible, then escaped."""
    return html.escape(visible(str(value)), quote=True)


def _script_json(data: Any) -> str:
    """JSON that cannot end its <script> element: `<`, `>`, `&` escaped, and (ensure_ascii)
    U+2028, U+2029 and lone surrogates as `\\uXXXX`."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# The itemized table ------------------------------------------------------------------------


@attrs.frozen
class Column:
    title: str
    number: bool = False  # exact decimal: sorted by value, aligned right
    short: bool = False  # names and dates, kept on one line (`2024-07-02`, `us-west-2`)


@attrs.frozen
class Row:
    cells: tuple[str, ...] = attrs.field(converter=as_tuple)
    amount: Decimal
    dimensions: Mapping[str, str] = attrs.field(factory=dict)  # chart values: model, region, day…
    rule: str = ""
    rule_id: str = ""


def _table(
    table_id: str, columns: Sequence[Column], rows: Sequence[Row], amount_column: int, currency: str, summed: str = "amounting to"
) -> str:
    """A sortable, filterable table; the footer tells how many rows are shown and the sum of their amounts."""
    head = "".join(
        f'<th scope="col"{" class=num" if c.number else ""} aria-sort="none">'
        f'<button type="button" data-column="{i}">{_text(c.title)}</button></th>'
        for i, c in enumerate(columns)
    )
    body = []
    for row in rows:
        cells = []
        for column, cell in zip(columns, row.cells, strict=True):
            if column.number:
                cells.append(f'<td class="num" data-value="{_text(cell)}">{_text(cell)}</td>')
            else:
                cells.append(f'<td class="short">{_text(cell)}</td>' if column.short else f"<td>{_text(cell)}</td>")
        body.append(f'<tr data-amount="{decimal_text(row.amount)}">{"".join(cells)}</tr>')
    total = _sum(row.amount for row in rows)
    count = len(rows)
    return (
        f'<div class="controls"><label>Filter <input type="search" class="filter" data-table="{table_id}" '
        f'placeholder="model, region, charge, rule…" autocomplete="off"></label></div>\n'
        f'<div class="scroll"><table id="{table_id}" class="sortable" data-amount-column="{amount_column}">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        f'<tfoot><tr><td colspan="{len(columns)}" class="shown" data-currency="{_text(currency)}">'
        f'<span class="shown-rows">{count}</span> of {count} row{"s" if count != 1 else ""} shown, '
        f'{summed} <span class="shown-amount">{decimal_text(total)}</span> {_text(currency)}</td></tr></tfoot>\n'
        "</table></div>"
    )


def _sum(amounts: Iterable[Decimal]) -> Decimal:
    return exact_sum(amounts)  # the default context would round past 28 digits


# Charts ------------------------------------------------------------------------------------

_BAR_WIDTH = Decimal(420)  # pixels for the largest bar
_LABEL_WIDTH = 220
_ROW = 24
_MAX_LABEL = 30  # characters of a label drawn; the whole name is in the bar's tooltip


def _by(rows: Sequence[Row], dimension: str) -> list[tuple[str, Decimal]]:
    """Amounts summed per value of `dimension`, largest first (ties by name)."""
    sums: dict[str, list[Decimal]] = {}
    for row in rows:
        sums.setdefault(row.dimensions.get(dimension, _NONE), []).append(row.amount)
    totals = [(name, _sum(amounts)) for name, amounts in sums.items()]
    return sorted(totals, key=lambda pair: (-pair[1], pair[0]))


# Pixels only: rounding is harmless here, and no amount of any size may raise.
_GEOMETRY = decimal.Context(prec=28, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])


def _scale(amount: Decimal, largest: Decimal, length: Decimal) -> Decimal:
    """`amount`'s share of `largest`, in pixels of `length` (0 to `length`)."""
    if not largest:
        return Decimal(0)
    share = _GEOMETRY.divide(_GEOMETRY.multiply(_GEOMETRY.abs(amount), length), largest)
    return min(max(share, Decimal(0)), length)


def _px(value: Decimal) -> str:
    return decimal_text(_GEOMETRY.quantize(value, Decimal("0.01")))


def _label(name: str) -> str:
    shown = visible(name)
    return shown if len(shown) <= _MAX_LABEL else shown[: _MAX_LABEL - 1] + "…"


def _bar_chart(title: str, pairs: Sequence[tuple[str, Decimal]], currency: str) -> str:
    """Horizontal bars, one per name, with the exact amount written beside each."""
    largest = max((abs(amount) for _, amount in pairs), default=Decimal(0))
    height = _ROW * len(pairs) + 8
    width = _LABEL_WIDTH + int(_BAR_WIDTH) + 160
    parts = [
        f'<figure class="chart"><figcaption>{_text(title)}</figcaption>'
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_text(title)}</title>'
    ]
    for position, (name, amount) in enumerate(pairs):
        y = 4 + position * _ROW
        length = _scale(amount, largest, _BAR_WIDTH)
        css = "bar neg" if amount < 0 else "bar"
        parts.append(
            f'<g class="{css}"><title>{_text(name)}: {decimal_text(amount)} {_text(currency)}</title>'
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">{html.escape(_label(name))}</text>'
            f'<rect x="{_LABEL_WIDTH}" y="{y + 3}" width="{_px(length)}" height="{_ROW - 6}"></rect>'
            f'<text class="value" x="{_px(_LABEL_WIDTH + length + 6)}" y="{y + 16}">{decimal_text(amount)}</text></g>'
        )
    parts.append("</svg></figure>")
    return "".join(parts)


def _line_chart(title: str, pairs: Sequence[tuple[str, Decimal]], currency: str) -> str:
    """The cost of each day, in date order, as a line from day to day with a dot and a tooltip per day."""
    width, height, left, right, bottom, top = 760, 200, 90, 60, 36, 12
    plot_w, plot_h = Decimal(width - left - right), Decimal(height - bottom - top)
    peak = max((abs(amount) for _, amount in pairs), default=Decimal(0))
    step = _GEOMETRY.divide(plot_w, max(len(pairs) - 1, 1))
    coords = [
        (left + step * i, top + plot_h - _scale(amount, peak, plot_h), day, amount) for i, (day, amount) in enumerate(pairs)
    ]
    line = " ".join(f"{_px(x)},{_px(y)}" for x, y, _, _ in coords)
    base = top + plot_h
    parts = [
        f'<figure class="chart"><figcaption>{_text(title)}</figcaption>'
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_text(title)}</title>'
        f'<line class="grid" x1="{left}" y1="{top}" x2="{width - right}" y2="{top}"></line>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - right}" y2="{base}"></line>'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{base}"></line>'
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{decimal_text(peak)}</text>'
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>'
        f'<polyline class="line" points="{line}"></polyline>'
    ]
    label_every = max(1, -(-len(coords) // 8))  # at most about eight dates under the axis
    for i, (x, y, day, amount) in enumerate(coords):
        parts.append(
            f'<circle class="dot" cx="{_px(x)}" cy="{_px(y)}" r="3.5"><title>{_text(day)}: {decimal_text(amount)} '
            f"{_text(currency)}</title></circle>"
        )
        if i % label_every == 0 or i == len(coords) - 1:
            parts.append(f'<text x="{_px(x)}" y="{base + 20}" text-anchor="middle">{_text(_label(day))}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def _charts(rows: Sequence[Row], dimensions: Sequence[str], currency: str) -> str:
    """A bar chart per dimension the rows have values for; for days, the running total as a line too."""
    figures = []
    for dimension in dimensions:
        pairs = _by(rows, dimension)
        if not pairs or all(name == _NONE for name, _ in pairs):
            continue
        figures.append(_bar_chart(f"Cost by {dimension} ({currency})", pairs, currency))
        if dimension == "day":
            dated = sorted((day, amount) for day, amount in pairs if day != _NONE)
            if len(dated) >= 2:
                figures.append(_line_chart(f"Cost over time ({currency})", dated, currency))
    if not figures:
        return ""
    return '<section id="charts"><h2>Charts</h2>\n' + "\n".join(figures) + "\n</section>"


# Rule citations ----------------------------------------------------------------------------


def _citations(rows: Sequence[Row], currency: str) -> str:
    """Each rule the bill cites, with what it charged: where to look when an amount surprises."""
    cited: dict[tuple[str, str], list[Decimal]] = {}
    for row in rows:
        cited.setdefault((row.rule, row.rule_id), []).append(row.amount)
    if not cited:
        return ""
    lines = "\n".join(
        f"<tr><td><code>{_text(rule)}</code></td><td><code>{_text(rule_id)}</code></td>"
        f'<td class="num">{len(amounts)}</td><td class="num">{decimal_text(_sum(amounts))}</td></tr>'
        for (rule, rule_id), amounts in sorted(cited.items(), key=_citation_order)
    )
    return (
        '<section id="rules"><h2>Rules cited</h2>\n'
        f'<table class="plain"><thead><tr><th scope="col">rule</th><th scope="col">id</th>'
        f'<th scope="col" class="num">lines</th><th scope="col" class="num">amount ({_text(currency)})</th></tr></thead>\n'
        f"<tbody>\n{lines}\n</tbody></table></section>"
    )


def _citation_order(entry: tuple[tuple[str, str], Any]) -> tuple[str, int, str]:
    """By file, then line as a number (`x.rules:7` before `x.rules:11`), then id."""
    (rule, rule_id), _ = entry
    path, _, line = rule.rpartition(":")
    return (path, int(line), rule_id) if line.isdigit() else (rule, 0, rule_id)


# Pages -------------------------------------------------------------------------------------


def _quantity(quantity: Decimal | int, unit: str | None) -> str:
    return decimal_text(quantity) + (f" {unit}" if unit else "")


def _dimensions(values: Mapping[str, Any], keys: Iterable[str]) -> dict[str, str]:
    return {key: group_text(values.get(key)) for key in keys}


def render_bill(bill: Bill, values: Sequence[Mapping[str, Any]], sources: Sequence[str] = (), columns: Sequence[str] = ()) -> str:
    """The page of a bill of usage documents; `values` are the items' checked fields, in
    the bill's order, `columns` more fields to show and chart (`--group-by`)."""
    extra = [c for c in columns if c not in ("kind", "model", "region")]
    dimensions = [*CHART_DIMENSIONS, *(c for c in extra if c not in CHART_DIMENSIONS)]
    head = [
        Column("item"), Column("kind", short=True), Column("model", short=True), Column("region", short=True),
        *(Column(c, short=True) for c in extra), Column("charge", short=True), Column("quantity", number=True),
        Column("rate"), Column("amount", number=True), Column("rule"),
    ]
    rows = []
    for item, checked in zip(bill.items, values, strict=True):
        fields = {"kind": item.kind, "name": item.name, **checked}  # as --group-by names them
        shown = _dimensions(fields, ("model", "region", *extra))
        for charge in item.charges:
            rows.append(Row(
                (item.label, item.kind, shown["model"], shown["region"], *(shown[c] for c in extra), charge.what,
                 decimal_text(charge.quantity), rate_text(charge, bill.currency), decimal_text(charge.amount), charge.rule),
                charge.amount,
                _dimensions(fields, dimensions),
                charge.rule,
                charge.rule_id,
            ))
    items = len(bill.items)
    summary = [
        ("total", f"{decimal_text(bill.total)} {bill.currency}"),
        ("items", f"{items} priced"),
        ("charges", str(sum(len(item.charges) for item in bill.items))),
    ]
    body = "\n".join([
        _summary(summary, "Every item was priced.", complete=True),
        _charts(rows, dimensions, bill.currency),
        '<section id="bill"><h2>Itemized bill</h2>',
        _table("bill-table", head, rows, len(head) - 2, bill.currency),
        "</section>",
        _citations(rows, bill.currency),
    ])
    return _page("Bill", sources, body, bill_data(bill))


def render_totals(totals: Totals, place: str = "line", sources: Sequence[str] = ()) -> str:
    """The page of streamed totals (invocation logs, or usage grouped by `--group-by`):
    lines per group and rule, what could not be priced with its reasons, failed calls."""
    groups = list(totals.group_by)
    head = [
        *(Column(g, short=True) for g in groups), Column("charge", short=True), Column("quantity", number=True), Column("rate"),
        Column("amount", number=True), Column("calls" if place == "line" else "items", number=True), Column("rule"),
    ]
    rows = [
        Row(
            (*line.group, line.what, decimal_text(line.quantity), rate_text(line, totals.currency), decimal_text(line.amount),
             str(line.items), line.rule),
            line.amount,
            dict(zip(groups, line.group, strict=True)),
            line.rule,
            line.rule_id,
        )
        for line in totals.lines
    ]
    unpriced = sum(u.count for u in totals.unpriced)
    malformed = sum(u.count for u in totals.malformed)
    failed = sum(count for _, count in totals.failed_calls)
    noun = "records" if place == "line" else "items"
    summary = [
        ("total", f"{decimal_text(totals.total)} {totals.currency}"),
        (noun, f"{totals.read} read, {totals.priced} priced"),
    ]
    if place == "line":
        summary.append(("failed calls", f"{failed} (not charged)"))
    summary.extend([("not priced", str(unpriced)), ("malformed", str(malformed))])
    if totals.complete:
        verdict = f"Every {noun[:-1]} read was priced" + (" (failed calls are not charged)." if failed else ".")
    else:
        verdict = (
            f"Incomplete: {unpriced + malformed} {noun} could not be priced; the total covers the "
            f"{totals.priced} {noun} priced. See “Not priced” below."
        )
    dimensions = [*(d for d in CHART_DIMENSIONS if d in groups), *(g for g in groups if g not in CHART_DIMENSIONS)]
    body = "\n".join([
        _summary(summary, verdict, totals.complete),
        _charts(rows, dimensions, totals.currency),
        '<section id="bill"><h2>Itemized bill</h2>',
        _table("bill-table", head, rows, len(groups) + 3, totals.currency),
        "</section>",
        _not_priced(totals, place),
        _citations(rows, totals.currency),
    ])
    return _page("Bill of invocation logs" if place == "line" else "Bill", sources, body, totals_data(totals, place))


def _not_priced(totals: Totals, place: str) -> str:
    sections = []
    for title, css, entries in (("Not priced", "unpriced", totals.unpriced), ("Malformed", "malformed", totals.malformed)):
        if not entries:
            continue
        lines = "\n".join(
            f'<tr><td class="num">{u.count}</td><td class="reason"><bdi>{_text(u.reason)}</bdi></td>'
            f"<td>{_text(where(u, place))}</td></tr>"
            for u in entries
        )
        sections.append(
            f'<section id="{css}" class="problems"><h2>{title}</h2>\n'
            f'<table class="plain"><thead><tr><th scope="col" class="num">count</th><th scope="col">reason</th>'
            f'<th scope="col">where</th></tr></thead>\n<tbody>\n{lines}\n</tbody></table></section>'
        )
    if totals.failed_calls:
        lines = "\n".join(
            f'<tr><td class="num">{count}</td><td><code>{_text(code)}</code></td></tr>' for code, count in totals.failed_calls
        )
        sections.append(
            '<section id="failed"><h2>Failed calls (not charged)</h2>\n'
            '<table class="plain"><thead><tr><th scope="col" class="num">count</th><th scope="col">error code</th></tr></thead>\n'
            f"<tbody>\n{lines}\n</tbody></table></section>"
        )
    return "\n".join(sections)


def render_diff(diff: Diff, old: str = "", new: str = "") -> str:
    """The page of a price change: totals before and after, a chart per document, the rule
    changes, every changed charge with before and after, and the refusals."""
    currency = diff.currency
    compared = len(diff.compared)
    summary = [
        ("old total", f"{decimal_text(diff.old_total)} {currency}"),
        ("new total", f"{decimal_text(diff.new_total)} {currency}"),
        ("change", f"{signed(diff.delta)} {currency} ({percent_text(diff.old_total, diff.new_total)})"),
        ("documents", f"{compared} priced under both, {diff.count('changed')} changed, "
                      f"{diff.count('newly refused')} newly refused, {diff.count('newly priced')} newly priced"),
    ]
    verdict = "No price changed." if not diff.delta and not any(d.changes for d in diff.documents) else (
        "Totals cover the documents priced under both rulesets; percents are of the old amount."
    )
    if diff.old_currency != currency:
        verdict += f" The currency changes from {diff.old_currency} to {currency}."
    complete = all(d.status in ("changed", "unchanged") for d in diff.documents)
    head = [
        Column("document"), Column("item"), Column("kind", short=True), Column("charge", short=True), Column("before", number=True),
        Column("after", number=True), Column("delta", number=True), Column("percent"),
    ]
    rows = [
        Row(
            (d.source, c.label, c.kind, c.what, "" if c.old is None else decimal_text(c.old),
             "" if c.new is None else decimal_text(c.new), signed(c.delta), percent_text(c.old, c.new)),
            c.delta,
        )
        for d in diff.documents
        for c in d.changes
    ]
    parts = [_summary(summary, verdict, complete), _diff_chart(diff), _documents(diff)]
    if diff.rules or diff.statements:
        parts.append(_rule_changes(diff))
    parts.extend([
        '<section id="charges"><h2>Changed charges</h2>',
        _table("bill-table", head, rows, 6, currency, "their deltas adding up to"),
        f"<p>{sum(d.unchanged for d in diff.documents)} charges unchanged.</p></section>",
        _refusals(diff),
    ])
    sources = [f"before: {old}", f"after: {new}"] if old or new else []
    return _page("Price change", sources, "\n".join(parts), diff_data(diff))


def _diff_chart(diff: Diff) -> str:
    """Per document priced under both, its total before and after, as paired bars."""
    documents = diff.compared
    if not documents:
        return ""
    largest = max(max(abs(d.old.total or Decimal(0)), abs(d.new.total or Decimal(0))) for d in documents)
    width, pair = _LABEL_WIDTH + int(_BAR_WIDTH) + 200, 36
    height = pair * len(documents) + 30
    parts = [
        '<section id="charts"><h2>Charts</h2><figure class="chart">'
        f"<figcaption>Total per document, before and after ({_text(diff.currency)})</figcaption>"
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        "<title>Total per document, before and after</title>"
        f'<g class="legend"><rect class="before" x="{_LABEL_WIDTH}" y="4" width="12" height="12"></rect>'
        f'<text x="{_LABEL_WIDTH + 16}" y="15">before</text>'
        f'<rect class="after" x="{_LABEL_WIDTH + 80}" y="4" width="12" height="12"></rect>'
        f'<text x="{_LABEL_WIDTH + 96}" y="15">after</text></g>'
    ]
    for position, d in enumerate(documents):
        y = 26 + position * pair
        parts.append(
            f'<g><title>{_text(d.source)}: {decimal_text(d.old.total or Decimal(0))} → {decimal_text(d.new.total or Decimal(0))}</title>'
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 20}" text-anchor="end">{html.escape(_label(d.source))}</text>'
        )
        for offset, css, amount in ((0, "before", d.old.total or Decimal(0)), (16, "after", d.new.total or Decimal(0))):
            length = _scale(amount, largest, _BAR_WIDTH)
            parts.append(
                f'<rect class="{css}" x="{_LABEL_WIDTH}" y="{y + offset + 2}" width="{_px(length)}" height="14"></rect>'
                f'<text class="value" x="{_px(_LABEL_WIDTH + length + 6)}" y="{y + offset + 13}">{decimal_text(amount)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg></figure></section>")
    return "".join(parts)


def _documents(diff: Diff) -> str:
    """Each document's status and totals, as the pull-request comment lists them."""

    def total(amount: Decimal | None) -> str:
        return "refused" if amount is None else decimal_text(amount)

    lines = "\n".join(
        f"<tr><td><code>{_text(d.source)}</code></td><td>{d.status}</td><td class=num>{total(d.old.total)}</td>"
        f"<td class=num>{total(d.new.total)}</td><td class=num>{'' if d.delta is None else signed(d.delta)}</td>"
        f"<td class=num>{'' if d.delta is None else percent_text(d.old.total, d.new.total)}</td></tr>"
        for d in diff.documents
    )
    return (
        '<section id="documents"><h2>Documents</h2>\n<table class="plain"><thead><tr><th scope="col">document</th>'
        '<th scope="col">status</th><th scope="col" class="num">before</th><th scope="col" class="num">after</th>'
        '<th scope="col" class="num">delta</th><th scope="col" class="num">percent</th></tr></thead>\n'
        f"<tbody>\n{lines}\n</tbody></table></section>"
    )


def _rule_changes(diff: Diff) -> str:
    def price(rule: Any) -> str:
        return "-" if rule is None else f"{rate_text(rule, diff.currency)} ({rule.where})"

    lines = [
        f"<tr><td>{r.change}</td><td><code>{_text(r.id)}</code></td><td>{_text(price(r.old))}</td><td>{_text(price(r.new))}</td></tr>"
        for r in diff.rules
    ]
    for s in diff.statements:
        said = f"“{visible(s.reason)}” ({visible(s.where)})"
        old, new = (said, "-") if s.change == "removed" else ("-", said)
        lines.append(f"<tr><td>{s.change}</td><td>{_text(s.title)}</td><td>{html.escape(old)}</td><td>{html.escape(new)}</td></tr>")
    return (
        '<section id="rule-changes"><h2>Rules changed</h2>\n<table class="plain"><thead><tr><th scope="col">change</th>'
        '<th scope="col">rule</th><th scope="col">before</th><th scope="col">after</th></tr></thead>\n<tbody>\n'
        + "\n".join(lines) + "\n</tbody></table></section>"
    )


def _refusals(diff: Diff) -> str:
    entries = []
    for d in diff.documents:
        if d.status not in ("newly refused", "newly priced", "refused"):
            continue
        problems = d.old.problems if d.status == "newly priced" else d.new.problems
        which = {"newly priced": "was refused before, priced now", "refused": "refused before and after"}.get(d.status, "newly refused")
        reasons = "".join(f"<li><bdi>{_text(p.render())}</bdi></li>" for p in problems)
        entries.append(f"<li><code>{_text(d.source)}</code> {which}:<ul>{reasons}</ul></li>")
    if not entries:
        return ""
    return '<section id="unpriced" class="problems"><h2>Not priced</h2>\n<ul>' + "".join(entries) + "</ul></section>"


def _summary(pairs: Sequence[tuple[str, str]], verdict: str, complete: bool) -> str:
    cells = "".join(f'<div class="figure"><dt>{_text(k)}</dt><dd>{_text(v)}</dd></div>' for k, v in pairs)
    css = "verdict" if complete else "verdict incomplete"
    return f'<section id="summary"><dl class="totals">{cells}</dl><p class="{css}">{_text(verdict)}</p></section>'


_STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #5b6470; --rule: #d0d7de; --bar: #2f6fb0; --after: #d9822b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--rule); }
.sources { color: var(--muted); margin: 0; padding: 0; list-style: none; }
.totals { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 8px; }
.figure { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.figure dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.figure dd { margin: 2px 0 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.verdict { margin: 4px 0; } .verdict.incomplete { color: #9a3412; font-weight: 600; }
.chart { margin: 8px 0 16px; } .chart figcaption { font-weight: 600; margin-bottom: 4px; }
.chart svg { max-width: 100%; height: auto; font-size: 12px; }
.chart text { fill: var(--ink); } .chart .value { fill: var(--muted); font-variant-numeric: tabular-nums; }
.bar rect, rect.before { fill: var(--bar); } .bar.neg rect { fill: #b91c1c; } rect.after { fill: var(--after); }
.line { fill: none; stroke: var(--bar); stroke-width: 2; } .dot { fill: var(--bar); } .axis { stroke: var(--muted); }
.grid { stroke: var(--rule); stroke-dasharray: 3 3; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th.num, td.num { text-align: right; white-space: nowrap; }
thead th { background: #f6f8fa; } td.short { white-space: nowrap; } .scroll { overflow-x: auto; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; color: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; } th[aria-sort="descending"] button::after { content: " \\25BC"; }
tfoot td { color: var(--muted); border-bottom: 0; }
tr[hidden] { display: none; }
.controls { margin: 4px 0 8px; } .controls input { font: inherit; padding: 4px 8px; width: 22em; }
code { font-size: 12px; } td { overflow-wrap: break-word; }
table.plain { width: auto; min-width: 50%; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  .controls, th button::after { display: none; }
  th button { cursor: auto; }
  thead { display: table-header-group; } thead th { background: none; } .scroll { overflow: visible; }
  tr, .figure, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  .chart svg { max-width: 100%; }
  a { color: inherit; text-decoration: none; }
}
"""

# Sorting and filtering. Amounts compare and add up exactly: decimal strings become
# BigInt counts of the smallest unit any of them has, never floating-point numbers.
_SCRIPT = """
"use strict";
(function () {
  function scaled(text, places) {
    var negative = text.charAt(0) === "-", digits = negative ? text.slice(1) : text;
    var parts = digits.split("."), fraction = (parts[1] || "");
    while (fraction.length < places) fraction += "0";
    var value = BigInt(parts[0] + fraction);
    return negative ? -value : value;
  }
  function places(texts) {
    var most = 0;
    texts.forEach(function (t) { var i = t.indexOf("."); if (i >= 0) most = Math.max(most, t.length - i - 1); });
    return most;
  }
  function decimalText(value, places) {
    var negative = value < 0n, digits = (negative ? -value : value).toString();
    if (places > 0) {
      while (digits.length <= places) digits = "0" + digits;
      digits = digits.slice(0, digits.length - places) + "." + digits.slice(digits.length - places);
      digits = digits.replace(/0+$/, "").replace(/\\.$/, "");
    }
    return (negative && digits !== "0" ? "-" : "") + digits;
  }
  function isNumber(text) { return /^[-+]?[0-9]+(\\.[0-9]+)?$/.test(text); }
  function compareCells(a, b, numeric) {
    if (numeric) {
      var aNum = isNumber(a), bNum = isNumber(b);
      if (aNum && bNum) {
        var p = places([a.replace("+", ""), b.replace("+", "")]);
        var x = scaled(a.replace("+", ""), p), y = scaled(b.replace("+", ""), p);
        return x < y ? -1 : x > y ? 1 : 0;
      }
      if (aNum !== bNum) return aNum ? 1 : -1;  // empty cells first when ascending
    }
    return a.localeCompare(b, undefined, {numeric: true});
  }
  function refresh(table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var shown = rows.filter(function (row) { return !row.hidden; });
    var amounts = shown.map(function (row) { return row.getAttribute("data-amount") || "0"; });
    var p = places(amounts), sum = 0n;
    amounts.forEach(function (a) { sum += scaled(a, p); });
    table.querySelector(".shown-rows").textContent = String(shown.length);
    table.querySelector(".shown-amount").textContent = decimalText(sum, p);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, column) {
      th.querySelector("button").addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        var numeric = th.classList.contains("num");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var a = r.cells[column], b = s.cells[column];
          var x = a.getAttribute("data-value"), y = b.getAttribute("data-value");
          var order = compareCells(x === null ? a.textContent : x, y === null ? b.textContent : y, numeric);
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        Array.prototype.forEach.call(headers, function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.filter"), function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
      });
      refresh(table);
    });
  });
})();
"""


def _hash(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")


def _page(title: str, sources: Sequence[str], body: str, data: Any) -> str:
    """The whole page. The policy lets in this page's own style and script, by hash, and nothing else."""
    policy = (
        f"default-src 'none'; style-src '{_hash(_STYLE)}'; script-src '{_hash(_SCRIPT)}'; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    listed = "".join(f"<li><bdi>{_text(source)}</bdi></li>" for source in sources)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="bedrock-rules">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>{_text(title)}</h1>" + (f'<ul class="sources">{listed}</ul>' if listed else "") + "</header>\n"
        f"<main>\n{body}\n</main>\n"
        f'<script type="application/json" id="bill-json">{_script_json(data)}</script>\n'
        f"<script>{_SCRIPT}</script>\n"
        "</body>\n</html>\n"
    )
