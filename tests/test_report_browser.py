"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright.

The page loads with no console error, the numbers it shows are the JSON bill's, and the
filter and the column sorting work. Outside CI these tests are skipped when Playwright or
Chromium is missing (`pip install '.[browser]'`, `apt-get install chromium`); in CI
(`CI=true`) a missing browser fails them instead, so they can never pass by not running.
"""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

import bedrock_rules
from bedrock_rules.display import visible
from bedrock_rules.resources import bundled_rules
from conftest import ROOT, run_cli

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("BEDROCK_RULES_CHROMIUM", "/usr/bin/chromium")
# As root, without a sandbox; with no background networking (this machine has no network to reach).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install '.[browser]')"
    if not Path(CHROMIUM).is_file():
        return f"no browser at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}: CI runs the browser tests, it must not skip them")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A persistent context in a new empty folder: a fresh profile, nothing from an earlier run.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        yield context
        context.close()


class Opened:
    """A report open in a tab, with everything the browser said about it."""

    def __init__(self, context, html: str, folder: Path):
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        path = folder / "report.html"
        path.write_text(html, encoding="utf-8")
        self.page = page = context.new_page()
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: self.requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")

    def column(self, title: str) -> list[str]:
        """The text of one column of the itemized table, in the rows shown, top to bottom."""
        return self.page.evaluate(
            """title => {
                const table = document.querySelector('table.sortable');
                const titles = Array.from(table.tHead.rows[0].cells).map(c => c.textContent);
                const at = titles.indexOf(title);
                if (at < 0) throw new Error('no column ' + title + ' in ' + titles);
                return Array.from(table.tBodies[0].rows).filter(r => !r.hidden).map(r => r.cells[at].textContent);
            }""",
            title,
        )

    def footer(self) -> str:
        return self.page.inner_text("table.sortable tfoot")

    def filter(self, text: str) -> None:
        self.page.fill("input.filter", text)

    def sort(self, title: str) -> None:
        self.page.click(f"table.sortable thead button:text-is('{title}')")

    def close(self) -> None:
        assert not self.problems, self.problems
        assert not self.dialogs, self.dialogs
        assert all(url.startswith("file://") for url in self.requests), self.requests  # loaded nothing else
        self.page.close()


@pytest.fixture
def open_report(browser, tmp_path):
    opened: list[Opened] = []

    def open_(html: str) -> Opened:
        folder = tmp_path / f"page{len(opened)}"
        folder.mkdir()
        opened.append(Opened(browser, html, folder))
        return opened[-1]

    yield open_
    for report in opened:
        report.close()  # no console error, no dialog, no load from anywhere, whatever the test did


def monthly(in_tmp: Path) -> tuple[str, dict]:
    shutil.copy(ROOT / "examples" / "monthly.yaml", in_tmp)
    page = run_cli("eval", "monthly.yaml", "--format", "html")
    assert page.code == 0, page.err
    return page.out, json.loads(run_cli("eval", "monthly.yaml", "--format", "json").out)


def test_a_bill_shows_the_json_bills_numbers(open_report, in_tmp):
    html, bill = monthly(in_tmp)
    report = open_report(html)
    charges = [c for item in bill["items"] for c in item["charges"]]
    assert report.column("amount") == [c["amount"] for c in charges]
    assert report.column("quantity") == [c["quantity"] for c in charges]
    # The JSON bill names rules by id alone; the page, for people, cites them by file and line.
    cited = [c.rule for item in bedrock_rules.load().evaluate_text((in_tmp / "monthly.yaml").read_text()).items for c in item.charges]
    assert report.column("rule") == cited
    assert all(rule.startswith("bedrock:") for rule in cited)
    assert report.page.inner_text(".totals .figure:first-child dd") == f"{bill['total']} {bill['currency']}"
    assert report.footer() == f"8 of 8 rows shown, amounting to {bill['total']} USD"
    assert report.page.locator("figure.chart svg").count() == 2  # by model, by region


def test_typing_in_the_filter_hides_rows_and_sums_the_rest_exactly(open_report, in_tmp):
    html, bill = monthly(in_tmp)
    report = open_report(html)
    document = yaml.safe_load((in_tmp / "monthly.yaml").read_text(encoding="utf-8"))["usage"]
    west = [c for item, used in zip(bill["items"], document, strict=True) if used["region"] == "us-west-2" for c in item["charges"]]
    report.filter("us-west-2")
    assert report.column("amount") == [c["amount"] for c in west]
    expected = sum(Decimal(c["amount"]) for c in west)
    assert report.footer() == f"{len(west)} of 8 rows shown, amounting to {expected} USD"
    report.filter("US-EAST-1 text_units")  # every word, in any case
    assert report.column("charge") == ["text_units (content_filter)", "text_units (denied_topic)", "text_units (word_filter)"]
    assert report.footer() == "3 of 8 rows shown, amounting to 5.25 USD"
    report.filter("no such thing")
    assert report.column("amount") == []
    assert report.footer() == "0 of 8 rows shown, amounting to 0 USD"
    report.filter("")
    assert len(report.column("amount")) == 8


def test_clicking_a_column_sorts_by_its_exact_value(open_report, in_tmp):
    html, bill = monthly(in_tmp)
    report = open_report(html)
    amounts = [c["amount"] for item in bill["items"] for c in item["charges"]]
    report.sort("amount")
    assert report.column("amount") == sorted(amounts, key=Decimal)
    assert report.page.get_attribute("th:has(button:text-is('amount'))", "aria-sort") == "ascending"
    report.sort("amount")
    assert report.column("amount") == sorted(amounts, key=Decimal, reverse=True)
    report.sort("model")
    models = report.column("model")
    assert models == sorted(models)
    report.filter("us-east-1")
    report.sort("quantity")  # sorting keeps the filter
    assert report.column("quantity") == ["40", "3000", "3000", "3000", "2500000"]


def test_logs_show_the_totals_json_and_what_was_not_priced(open_report, in_tmp):
    logs = str(ROOT / "tests" / "logs" / "mixed.jsonl")
    page = run_cli("eval", "--input", "invocation-log", logs, "--format", "html")
    totals = json.loads(run_cli("eval", "--input", "invocation-log", logs, "--format", "json", "--group-by", "model,region,day").out)
    report = open_report(page.out)
    lines = [c for group in totals["groups"] for c in group["charges"]]
    assert report.column("amount") == [c["amount"] for c in lines]
    assert report.column("day") == [g["group"]["day"] for g in totals["groups"] for _ in g["charges"]]
    assert report.page.inner_text(".totals .figure:first-child dd") == f"{totals['total']} USD"
    reasons = report.page.locator("#unpriced td.reason").all_inner_texts()
    # The page cites rules by `file:line` for people, the JSON by id: the same reasons otherwise.
    assert [r.split(" (")[0] for r in reasons] == [u["reason"].split(" (")[0] for u in totals["unpriced"]]
    assert "Claude 3 Opus is offered only in us-west-2 (bedrock:anthropic.rules:46)" in reasons
    assert report.page.locator("figure.chart").count() == 4  # model, region, day, and the line over time
    assert report.page.locator("figure.chart polyline").count() == 1


def test_a_diff_shows_before_and_after_as_the_json_diff(open_report, in_tmp):
    for name in ("old", "new"):
        shutil.copytree(bundled_rules(), in_tmp / name)
    rules = in_tmp / "new" / "anthropic.rules"
    row = "| claude-2.1        | 0.008                 | 0.024                  |"
    rules.write_text(rules.read_text(encoding="utf-8").replace(row, row.replace("0.024", "0.03")), encoding="utf-8")
    shutil.copy(ROOT / "examples" / "monthly.yaml", in_tmp)
    shutil.copy(ROOT / "tests" / "diff" / "batch.json", in_tmp)
    args = ("diff", "old", "new", "monthly.yaml", "batch.json")
    report = open_report(run_cli(*args, "--format", "html").out)
    data = json.loads(run_cli(*args, "--format", "json").out)
    changes = [c for d in data["documents"] for c in d["charges"]]
    assert report.column("before") == [c["old"] for c in changes]
    assert report.column("after") == [c["new"] for c in changes]
    assert report.column("delta") == ["+" + c["delta"] for c in changes]
    report.sort("delta")
    assert report.column("delta") == sorted(("+" + c["delta"] for c in changes), key=Decimal)
    assert report.page.inner_text("#summary .figure:nth-child(2) dd") == f"{data['total']['new']} USD"


def test_hostile_names_stay_text_in_the_browser(open_report, in_tmp):
    names = [
        "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</details></td></tr></table><b>x</b>",
        "</script><script>alert(2)</script>", "a\u202eDSU 10.0\u202c b", "x\u2028y", "\ud800",
    ]
    items = [{"name": n, "kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 1000, "at": "2024-07-15"}
             for n in names]
    (in_tmp / "u.json").write_text(json.dumps({"usage": items}), encoding="utf-8")
    report = open_report(run_cli("eval", "u.json", "--format", "html", "--group-by", "name").out)
    bill = json.loads(run_cli("eval", "u.json", "--format", "json").out)
    assert report.page.locator("img, b, table table").count() == 0
    assert report.column("name") == [visible(item["name"]) for item in bill["items"] for _ in item["charges"]]
    assert [item["name"] for item in bill["items"]] == names
    data = report.page.evaluate("JSON.parse(document.getElementById('bill-json').textContent)")
    assert [i["name"] for i in data["items"]] == names  # the embedded JSON reads back as the exact values
    report.filter("<img")
    assert set(report.column("name")) == {names[1]}


def test_printed_the_page_has_no_controls_and_every_row(open_report, in_tmp):
    html, _ = monthly(in_tmp)
    report = open_report(html)
    report.filter("claude")
    report.page.emulate_media(media="print")
    assert report.page.is_hidden("input.filter")
    assert report.page.evaluate("getComputedStyle(document.querySelector('thead')).display") == "table-header-group"
    pdf = report.page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
