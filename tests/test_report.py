"""`eval --format html` and `diff --format html`: one self-contained page, every value escaped.

What the page does in a browser (numbers, filtering, sorting) is tested in test_report_browser.py;
here, its text as the HTML parser reads it: which elements it has, what they say, what it loads.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bedrock_rules.resources import bundled_rules
from conftest import ROOT, SEED_DAY, run_cli

HOSTILE = [
    "<script>alert(1)</script>",
    "</details><h1>total: 0.01 USD</h1>",
    '"><img src=x onerror=alert(1)>',
    "</script><script>alert(2)</script>",
    "a\u202eDSU 10.0\u202c b",  # a bidi override: shows reversed unless made visible
    "line\u2028separator\u2029paragraph",
    "<!-- comment --> & &amp; <![CDATA[x]]>",
]
# The elements a report is made of: anything else in a page came from a value.
ELEMENTS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "ul", "li", "bdi", "main", "section",
    "dl", "div", "dt", "dd", "p", "figure", "figcaption", "svg", "g", "text", "rect", "line", "polyline", "circle",
    "label", "input", "span", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "button", "code", "script",
}


class Page(HTMLParser):
    """A page as the HTML parser reads it: its elements, its text, its scripts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        else:
            self.text.append(data)

    def handle_comment(self, data):
        raise AssertionError(f"a comment in the page: {data!r}")

    def unknown_decl(self, data):
        raise AssertionError(f"a declaration in the page: {data!r}")

    @property
    def words(self) -> str:
        return "".join(self.text)

    def data(self):
        [(_, text)] = [(a, t) for a, t in self.scripts if a.get("type") == "application/json"]
        return json.loads(text)


def safe(page_text: str) -> Page:
    """The page parsed, after checking nothing in it runs, loads or hides but what the report made."""
    page_text.encode("utf-8")  # a lone surrogate would fail here, as on a real stdout
    assert not [c for c in page_text if c not in "\n" and not c.isprintable()], "a hidden character in the page"
    page = Page(page_text)
    unexpected = {tag for tag, _ in page.tags} - ELEMENTS
    assert not unexpected, unexpected
    handlers = [(tag, name) for tag, attrs in page.tags for name in attrs if name.startswith("on")]
    assert not handlers, handlers
    assert [a.get("type") for a, _ in page.scripts] == ["application/json", None]
    for tag, attrs in page.tags:  # nothing is loaded from anywhere: no src, no href, no url()
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)
    assert "url(" not in page_text and "@import" not in page_text
    return page


def usage(*names: str, **fields) -> str:
    items = []
    for name in names:
        item = {"name": name, "kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 1000, "output_tokens": 10,
                "at": SEED_DAY}
        item.update(fields)
        items.append(item)
    return json.dumps({"usage": items})


def test_the_page_of_a_bill_holds_its_json_and_shows_its_numbers(in_tmp):
    shutil.copy(ROOT / "examples" / "monthly.yaml", in_tmp)
    run = run_cli("eval", "--at", SEED_DAY, "monthly.yaml", "--format", "html")
    assert run.code == 0, run.err
    page = safe(run.out)
    bill = json.loads(run_cli("eval", "--at", SEED_DAY, "monthly.yaml", "--format", "json").out)
    assert page.data() == bill
    assert "29469.684 USD" in page.words
    amounts = [c["amount"] for item in bill["items"] for c in item["charges"]]
    shown = [attrs["data-amount"] for tag, attrs in page.tags if tag == "tr" and "data-amount" in attrs]
    assert shown == amounts
    assert "8 of 8 rows shown, amounting to 29469.684 USD" in page.words
    # Charts by model and region (usage items carry no day), and every rule cited.
    assert [w for w in ("Cost by model", "Cost by region", "Cost by day") if w in page.words] == ["Cost by model", "Cost by region"]
    assert "bedrock:anthropic.rules:105" in page.words
    assert "Every item was priced." in page.words


def test_the_page_loads_nothing_and_runs_only_its_own_script(in_tmp):
    """The policy allows this page's style and script by hash, and no other load of any kind."""
    import base64
    import hashlib

    shutil.copy(ROOT / "examples" / "monthly.yaml", in_tmp)
    page = safe(run_cli("eval", "--at", SEED_DAY, "monthly.yaml", "--format", "html").out)
    [policy] = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert policy.startswith("default-src 'none';")
    [(_, script)] = [(a, t) for a, t in page.scripts if a.get("type") is None]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


@pytest.mark.parametrize("args", [(), ("--group-by", "name")], ids=["itemized", "grouped-by-name"])
def test_hostile_names_are_text_in_the_page(args, in_tmp):
    (in_tmp / "u.json").write_text(usage(*HOSTILE), encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "u.json", "--format", "html", *args)
    assert run.code == 0, run.err
    page = safe(run.out)
    words = page.words
    for name in HOSTILE[:4]:
        assert name in words  # shown as it is, as text
    assert "a\\u202eDSU 10.0\\u202c b" in words  # the override is shown, not obeyed
    assert "line\\u2028separator\\u2029paragraph" in words
    assert "<!-- comment --> & &amp; <![CDATA[x]]>" in words
    assert [item["name"] for item in page.data()["items"]] == HOSTILE  # the JSON keeps the values exactly
    if args:
        assert "Cost by name" in words


def test_a_lone_surrogate_in_a_name_is_shown_not_a_crash(in_tmp):
    (in_tmp / "u.json").write_text('{"usage": [{"name": "a\\ud800b", "kind": "text", "model": "claude-2.1", '
                                   '"region": "us-east-1", "input_tokens": 1000}]}', encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "u.json", "--format", "html", "--group-by", "name")
    assert run.code == 0, run.err
    page = safe(run.out)
    assert "a\\ud800b" in page.words
    assert page.data()["items"][0]["name"] == "a\ud800b"


def log_record(**changes) -> str:
    record = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2024-07-02T09:15:00Z",
        "accountId": "111122223333", "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/worker"},
        "region": "us-west-2", "requestId": "0d6c1b1e-2f7a-4c55-9a61-2b1f3c8f0a11", "operation": "InvokeModel",
        "modelId": "anthropic.claude-v2:1",
        "input": {"inputContentType": "application/json", "inputTokenCount": 1000},
        "output": {"outputContentType": "application/json", "outputTokenCount": 10},
    }
    record.update(changes)
    return json.dumps(record)


def test_the_page_of_invocation_logs_charts_model_region_and_day(in_tmp):
    run = run_cli("eval", "--at", SEED_DAY, "--input", "invocation-log", str(ROOT / "tests" / "logs" / "mixed.jsonl"), "--format", "html")
    assert run.code == 3, run.err  # some records cannot be priced: the page says so, and so does the status
    page = safe(run.out)
    totals = json.loads(run_cli(
        "eval", "--input", "invocation-log", str(ROOT / "tests" / "logs" / "mixed.jsonl"), "--format", "json",
        "--group-by", "model,region,day",
    ).out)
    assert page.data() == totals
    words = page.words
    for caption in ("Cost by model", "Cost by region", "Cost by day", "Cost over time"):
        assert caption in words
    assert "Incomplete: 5 records could not be priced; the total covers the 7 records priced." in words
    for entry in totals["unpriced"] + totals["malformed"]:
        assert entry["reason"].split(" (")[0] in words
    # The page is for people: its reasons cite rules by `file:line` (the JSON by id)
    assert "Claude 3 Opus is offered only in us-west-2 (bedrock:anthropic.rules:46)" in words
    assert "ThrottlingException" in words
    dots = [a for t, a in page.tags if t == "circle"]
    assert len(dots) == 2  # one per day of the line over time


def test_the_day_line_is_drawn_only_for_days_in_date_order(in_tmp):
    days = ["2024-07-03T10:00:00Z", "2024-07-01T10:00:00Z", "2024-07-02T10:00:00Z", "2024-07-03T11:00:00Z"]
    (in_tmp / "calls.jsonl").write_text("".join(log_record(timestamp=d) + "\n" for d in days), encoding="utf-8")
    page = safe(run_cli("eval", "--at", SEED_DAY, "--input", "invocation-log", "calls.jsonl", "--format", "html").out)
    bars = page.text[page.text.index("Cost by day (USD)"):page.text.index("Cost over time (USD)")]
    line = page.text[page.text.index("Cost over time (USD)"):page.text.index("Itemized bill")]
    assert [t for t in bars if len(t) == 10] == ["2024-07-03", "2024-07-01", "2024-07-02"]  # bars: largest first
    assert [t for t in line if len(t) == 10] == ["2024-07-01", "2024-07-02", "2024-07-03"]  # the line: date order
    (in_tmp / "one.jsonl").write_text(log_record() + "\n", encoding="utf-8")
    one = safe(run_cli("eval", "--at", SEED_DAY, "--input", "invocation-log", "one.jsonl", "--format", "html").out)
    assert "Cost by day" in one.words and "Cost over time" not in one.words  # one day is a bar, not a line


def test_hostile_log_values_are_text_in_the_page(in_tmp):
    records = [
        log_record(requestMetadata={"team": HOSTILE[0]}),
        log_record(modelId=HOSTILE[2]),
        log_record(errorCode=HOSTILE[3]),
        log_record(region=HOSTILE[4]),
    ]
    (in_tmp / "calls.jsonl").write_text("\n".join(records) + "\n", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "--input", "invocation-log", "calls.jsonl", "--format", "html", "--group-by", "tag:team")
    assert run.code == 3, run.err
    page = safe(run.out)
    words = page.words
    assert HOSTILE[0] in words  # the tag, as a column and a chart
    assert f"unknown model {HOSTILE[2]!r}" in words
    assert HOSTILE[3] in words
    assert "a\\u202eDSU 10.0\\u202c b" in words


@pytest.fixture
def work(in_tmp) -> Path:
    for name in ("old", "new"):
        shutil.copytree(bundled_rules(), in_tmp / name)
    text = (in_tmp / "new" / "anthropic.rules").read_text(encoding="utf-8")
    row = "| claude-2.1        | 0.008                 | 0.024                  |"
    assert text.count(row) == 1
    (in_tmp / "new" / "anthropic.rules").write_text(text.replace(row, row.replace("0.008", "0.009")), encoding="utf-8")
    return in_tmp


def test_the_page_of_a_diff_shows_each_changed_charge_before_and_after(work):
    shutil.copy(ROOT / "examples" / "monthly.yaml", work)
    (work / "refused.yaml").write_text(usage("opus", model="claude-3-opus"), encoding="utf-8")
    run = run_cli("diff", "old", "new", "monthly.yaml", "refused.yaml", "--format", "html")
    assert run.code == 0, run.err
    page = safe(run.out)
    data = json.loads(run_cli("diff", "old", "new", "monthly.yaml", "refused.yaml", "--format", "json").out)
    assert page.data() == data
    [change] = data["documents"][0]["charges"]
    cells = [t.strip() for t in page.text if t.strip()]
    at = cells.index("1 nightly summaries")
    assert cells[at:at + 7] == ["1 nightly summaries", "text", "input_tokens", "0.088", "0.099", "+0.011", "+12.50%"]
    assert (change["old"], change["new"], change["delta"]) == ("0.088", "0.099", "0.011")
    words = page.words
    assert "29469.684 USD" in words and "29469.695 USD" in words and "+0.011 USD (+<0.01%)" in words
    assert "Claude 3 Opus is offered only in us-west-2" in words  # the refusal, with its reason
    assert "old/anthropic.rules:77" in words and "new/anthropic.rules:77" in words  # the rule change, cited


def test_hostile_file_names_in_a_diff_are_text(work):
    name = '"><img src=x onerror=alert(1)>\u202e.yaml'
    (work / name).write_text(usage("a"), encoding="utf-8")
    (work / "<script>alert(1)<").mkdir()
    (work / "<script>alert(1)<" / "x.yaml").write_text(usage("opus", model="claude-3-opus"), encoding="utf-8")
    run = run_cli("diff", "old", "new", name, "<script>alert(1)</x.yaml", "--format", "html")
    assert run.code == 0, run.err
    words = safe(run.out).words
    assert '"><img src=x onerror=alert(1)>\\u202e.yaml' in words
    assert "<script>alert(1)</x.yaml" in words


def test_chart_geometry_survives_amounts_of_any_size(in_tmp):
    """Bars are drawn in proportion, however large or small the amounts; no amount is rounded in text."""
    from bedrock_rules.report import _bar_chart

    huge, tiny = Decimal("1E+400"), Decimal("1E-400")
    svg = _bar_chart("Cost", [("big", huge), ("small", tiny), ("none", Decimal(0))], "USD")
    assert 'width="420"' in svg and 'width="0"' in svg
    assert "1" + "0" * 400 in svg and "0." + "0" * 399 + "1" in svg
