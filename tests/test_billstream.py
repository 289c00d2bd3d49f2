"""`eval` of a large usage document: each item read, priced and written before the next.

Memory per item is bounded (what stays is the running total, the problems a refusal
lists and the columns' widths), the output is byte for byte the bill of the document
read whole, and a problem in the last item still refuses the whole input: nothing of the
bill is written.
"""

from __future__ import annotations

import io
import json
import os
import tracemalloc

import pytest

import bedrock_rules
from bedrock_rules import limits
from bedrock_rules.bill import dump, render_table
from bedrock_rules.billstream import JsonBill, TableBill, price_documents
from bedrock_rules.errors import UsageError
from bedrock_rules.usage import items_of, read_document, stream_items
from conftest import SEED_DAY, run_cli

PAIRS = [("anthropic.claude-3-haiku-20240307-v1:0", "us-east-1"), ("anthropic.claude-v2:1", "us-west-2"),
         ("cohere.command-r-v1:0", "us-east-1")]


def _items(count: int, start: int = 0) -> list[dict]:
    return [
        {"name": f"call {n}", "kind": "text", "at": SEED_DAY, "model": PAIRS[n % 3][0], "region": PAIRS[n % 3][1],
         "input_tokens": 1000 + n, "output_tokens": 7 * n}
        for n in range(start, start + count)
    ]


def _yaml(items: list[dict]) -> str:
    lines = ["usage:"]
    for item in items:
        lines.extend(f"{'  - ' if n == 0 else '    '}{key}: {value}" for n, (key, value) in enumerate(item.items()))
    return "\n".join(lines) + "\n"


def _whole(rules, paths: list[str], fmt: str) -> tuple[int, str, str]:
    """What `eval` wrote when it held every item: read whole, checked, billed."""
    several = len(paths) > 1
    checked, problems = [], []
    for path in paths:
        text = open(path, encoding="utf-8").read()
        try:
            raw = items_of(read_document(text, path), path)
        except UsageError as error:
            problems.extend(error.problems)
            continue
        good, bad = rules.check_items(raw, path if several else None)
        checked.extend(good)
        problems.extend(bad)
    try:
        bill = rules.bill(checked, problems)
    except UsageError as error:
        return 2, "", error.render() + "\n"
    return 0, dump(bill) if fmt == "json" else render_table(bill), ""


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_bill_read_item_by_item_is_the_bill_of_the_document_read_whole(in_tmp, rules, suffix, fmt):
    items = _items(300)
    items[5]["name"] = "=cmd|' /C calc'!A0\n\x1b[2Jtotal: 0.01 USD \ud800"  # escapes and surrogates as in the whole bill
    items[6]["name"] = "東京 wide"
    path = in_tmp / f"usage{suffix}"
    text = json.dumps({"usage": items}, indent=1) if suffix == ".json" else _yaml(items[:5] + items[7:])
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    if suffix == ".yaml":
        items = items[:5] + items[7:]
    run = run_cli("eval", str(path), "--format", fmt)
    expected = _whole(rules, [str(path)], fmt)
    assert (run.code, run.out, run.err) == expected
    assert run.code == 0 and "call 299" in run.out


def test_an_empty_usage_list_is_a_bill_of_nothing(in_tmp, rules):
    (in_tmp / "empty.json").write_text('{"usage": []}', encoding="utf-8")
    for fmt in ("json", "table"):
        run = run_cli("eval", "empty.json", "--format", fmt)
        assert (run.code, run.out) == _whole(rules, ["empty.json"], fmt)[:2]


def test_a_problem_in_the_last_item_refuses_the_whole_input_and_writes_nothing(in_tmp):
    items = [*_items(2000), {"kind": "text", "model": "no-such-model", "region": "us-east-1", "input_tokens": 1}]
    (in_tmp / "usage.json").write_text(json.dumps({"usage": items}), encoding="utf-8")
    for fmt in ("json", "table", "csv"):
        run = run_cli("eval", "usage.json", "--format", fmt)
        assert (run.code, run.out) == (2, "")
        assert run.err.startswith("usage refused: 1 problem, nothing was priced\n  item 2001, field model: error[BU")


def test_a_document_broken_after_its_items_is_refused_for_that_alone(in_tmp, rules):
    # The items were read and priced before the broken end was met: only the syntax error is shown, as when read whole.
    text = json.dumps({"usage": _items(500)})[:-1] + ',"usage": []}'
    (in_tmp / "usage.json").write_text(text, encoding="utf-8")
    run = run_cli("eval", "usage.json")
    assert (run.code, run.out, run.err) == _whole(rules, ["usage.json"], "table")
    assert "appears twice" in run.err
    (in_tmp / "cut.json").write_text(text[:-30], encoding="utf-8")
    run = run_cli("eval", "cut.json")
    assert (run.code, run.out, run.err) == _whole(rules, ["cut.json"], "table")
    assert "not valid JSON" in run.err


def test_thousands_of_problems_are_listed_as_when_read_whole(in_tmp, rules):
    bad = [{**item, "region": "mars-1"} for item in _items(1500)]
    (in_tmp / "b.json").write_text(json.dumps({"usage": _items(3) + bad}), encoding="utf-8")
    (in_tmp / "a.yaml").write_text(_yaml([{**item, "input_tokens": -1} for item in _items(4)]), encoding="utf-8")
    (in_tmp / "c.json").write_text("{usage: oops", encoding="utf-8")
    paths = ["b.json", "c.json", "a.yaml", "b.json"]  # listed by document name, then item, as when read whole
    run = run_cli("eval", *paths)
    assert (run.code, run.out, run.err) == _whole(rules, paths, "table")
    assert run.err.startswith("usage refused: 1001 problems, nothing was priced\n  a.yaml, item 1")
    assert run.err.endswith("  … and 2,005 more problems\n")


def test_an_anchor_given_twice_across_items_is_refused_as_when_read_whole(in_tmp, rules):
    text = _yaml(_items(3)).replace("  - name: call 0", "  - name: &a call 0").replace("  - name: call 2", "  - name: &a call 2")
    (in_tmp / "usage.yaml").write_text(text, encoding="utf-8")
    run = run_cli("eval", "usage.yaml")
    assert (run.code, run.out, run.err) == _whole(rules, ["usage.yaml"], "table")
    assert "second occurrence at line 16" in run.err  # item 3 starts on line 16 (7 lines an item with its at:)


def test_other_keys_beside_usage_are_refused_as_when_read_whole(in_tmp, rules):
    for name, text in [
        ("first.json", json.dumps({"note": 1, "usage": _items(2)})),
        ("after.yaml", _yaml(_items(2)) + "note: 1\n"),
        ("list.json", json.dumps(_items(2))),
        ("two.yaml", _yaml(_items(2)) + "---\n" + _yaml(_items(1))),
    ]:
        (in_tmp / name).write_text(text, encoding="utf-8")
        run = run_cli("eval", name)
        assert run.code == 2
        assert (run.code, run.out, run.err) == _whole(rules, [name], "table"), name


def test_more_items_than_the_limit_are_counted_not_priced(in_tmp, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ITEMS", 10)
    (in_tmp / "usage.json").write_text(json.dumps({"usage": _items(25)}), encoding="utf-8")
    run = run_cli("eval", "usage.json", "--format", "json")
    assert (run.code, run.out) == (2, "")
    assert "too many items: 25 items; the limit is 10 items per document" in run.err


def _traced_peak(rules, text: str, sink) -> int:
    """Peak memory (bytes) Python allocates pricing and writing a document already in memory."""
    with open(os.devnull, "w", encoding="utf-8") as out:
        tracemalloc.start()
        try:
            price_documents(rules.program, [("usage.json", lambda: stream_items(text, "usage.json"))], sink, out)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("writer", [JsonBill, TableBill])
def test_memory_per_item_is_bounded(rules, monkeypatch, writer):
    # Held whole, every item costs its checked values, its bill and its output: about 8 KB.
    # Read item by item, ten times the items costs less than 200 bytes more per item
    # (the written bill waits in a temporary file, in memory only while small).
    monkeypatch.setattr("bedrock_rules.billstream.SPOOL", 1 << 12)
    monkeypatch.setattr("bedrock_rules.display.Aligner.SPOOL", 1 << 12)
    small = json.dumps({"usage": _items(300)})
    large = json.dumps({"usage": _items(3000)})
    grown = _traced_peak(rules, large, writer(rules.currency)) - _traced_peak(rules, small, writer(rules.currency))
    assert grown < 200 * 2700, f"{grown:,} bytes more for 2,700 more items"


@pytest.mark.slow
def test_the_bill_waits_in_a_file_not_in_memory(rules, monkeypatch):
    # Past the spool's size, the written items are in a temporary file; the JSON's total comes first, so they wait.
    monkeypatch.setattr("bedrock_rules.billstream.SPOOL", 1 << 10)
    bill = rules.evaluate({"usage": _items(50)})
    sink = JsonBill(rules.currency)
    for item in bill.items:
        sink.add(item, {})
    assert sink._items._rolled
    out = io.StringIO()
    sink.finish(bill.total, out)
    assert out.getvalue() == dump(bill)


def test_several_documents_dated_by_at_and_by_their_items_read_as_when_whole(in_tmp):
    from test_dates import ITEM, RULES

    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(RULES, encoding="utf-8")
    dated = bedrock_rules.load(in_tmp / "rules")
    (in_tmp / "june.json").write_text(json.dumps({"usage": [ITEM, {**ITEM, "at": "2024-07-03T00:30:00+01:00"}]}), encoding="utf-8")
    (in_tmp / "july.yaml").write_text(_yaml([{**ITEM, "at": "2024-07-03"}, ITEM]), encoding="utf-8")
    paths = ["june.json", "july.yaml"]
    for fmt in ("json", "table"):
        run = run_cli("eval", *paths, "--rules", "rules", "--at", "2024-07-02", "--format", fmt)
        checked, problems = [], []
        for path in paths:
            raw = items_of(read_document((in_tmp / path).read_text(encoding="utf-8"), path), path)
            good, bad = dated.check_items(raw, path, at="2024-07-02")
            checked.extend(good)
            problems.extend(bad)
        bill = dated.bill(checked, problems)
        assert (run.code, run.out) == (0, dump(bill) if fmt == "json" else render_table(bill))
    assert str(bill.total) == "0.644"  # 0.184 + 0.184 (the 2nd: 23:30 UTC on the 2nd) + 0.092 + 0.184
    refused = run_cli("eval", *paths, "--rules", "rules")  # undated items, dated rules: every one listed, nothing written
    assert (refused.code, refused.out) == (2, "")
    assert refused.err.startswith("usage refused: 2 problems, nothing was priced\n  july.yaml, item 2")


_I = "{kind: text, model: anthropic.claude-v2:1, region: us-east-1, input_tokens: 5}"
SHAPES = {
    "flow.yaml": f"usage: [{_I}, {_I}]\n",
    "markers.yaml": f"%YAML 1.2\n---\n# c\nusage:\n  - {_I}\n  - &x {_I}\n...\n",
    "tagged.yaml": f"!!map\nusage:\n  - {_I}\n",
    "seq-tag.yaml": f"usage: !!seq\n  - {_I}\n",
    "anchored.yaml": f"&top\nusage:\n  - {_I}\n",
    "alias.yaml": f"usage:\n  - &a {_I}\n  - *a\n",
    "quoted-key.yaml": f"'usage':\n  - {_I}\n",
    "complex-key.yaml": f"? usage\n: - {_I}\n",
    "two-documents.yaml": f"usage:\n  - {_I}\n---\nusage: []\n",
    "deep.yaml": "usage:\n  - " + "[" * 31 + "]" * 31 + "\n",
    "deep-enough.yaml": "usage:\n  - " + "[" * 30 + "]" * 30 + "\n",
    "deep.json": '{"usage": [' + "[" * 31 + "]" * 31 + "]}",
    "deep-enough.json": '{"usage": [' + "[" * 30 + "]" * 30 + "]}",
    "empty.yaml": "",
    "null-usage.yaml": "usage:\n",
    "bom.json": '\ufeff{"usage": []}',
    "spaces.json": ' \n {"usage" :[ ] } \n',
    "escaped-key.json": '{"us\\u0061ge": []}',
    "trailing.json": '{"usage": []} x',
    "nan.json": '{"usage": [NaN]}',
    "duplicate.json": '{"usage": [{"kind":"text","kind":"text"}]}',
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_of_document_reads_item_by_item_as_whole(name, rules):
    # The item-by-item reader takes a plain `usage` list itself and hands every other shape
    # (tags, anchors, other keys, broken text, limits) to the whole-document reader.
    from test_fuzz import streamed, whole

    text = SHAPES[name]
    try:
        expected = whole(rules, items_of(read_document(text, name), name))
    except UsageError as error:
        expected = error.render()
    assert streamed(rules, text, name) == expected


def test_focus_rows_are_written_item_by_item_as_when_whole(in_tmp, rules):
    from bedrock_rules.bedrock.focus import PROVIDER, charges_of_bill
    from bedrock_rules.focus import Period, render_csv, rows

    (in_tmp / "a.json").write_text(json.dumps({"usage": _items(40)}), encoding="utf-8")
    (in_tmp / "b.yaml").write_text(_yaml(_items(5, start=100)), encoding="utf-8")
    paths = ["a.json", "b.yaml"]
    checked = []
    for path in paths:
        good, bad = rules.check_items(items_of(read_document((in_tmp / path).read_text(encoding="utf-8"), path), path), path)
        assert not bad
        checked.extend(good)
    bill = rules.bill(checked)
    expected = render_csv(rows(charges_of_bill(checked, bill, Period.month("2024-07")), PROVIDER, rules.currency, "1234"))
    options = ("--format", "focus", "--period", "2024-07", "--billing-account", "1234")
    run = run_cli("eval", *paths, *options)
    assert (run.code, run.out) == (0, expected)
    written = run_cli("eval", *paths, *options, "--output", "rows.csv")
    assert (written.code, written.out, written.err) == (0, "", f"{expected.count(chr(10)) - 1} FOCUS rows written to rows.csv\n")
    assert (in_tmp / "rows.csv").read_text(encoding="utf-8") == expected
