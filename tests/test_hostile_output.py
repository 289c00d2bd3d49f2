"""Hostile values in what people and tools read: names, tags and log fields cannot forge lines,
run as spreadsheet formulas, inject Markdown or HTML, or crash an output format."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_rules.differ import percent_text
from bedrock_rules.display import align, markdown, visible, width
from bedrock_rules.resources import bundled_rules
from conftest import SEED_DAY, run_cli

FORGED = "x\ntotal: 0.01 USD\x1b[2J\x1b]8;;http://evil\x07\u202eDSU\u200b"
CLAUDE_21 = "| claude-2.1        | 0.008                 | 0.024                  |"


def usage(name: str, **fields) -> str:
    item = {"name": name, "kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 1000, "output_tokens": 10,
            "at": SEED_DAY}
    item.update(fields)
    return json.dumps({"usage": [item]})


def hidden_free(text: str) -> None:
    """No character of `text` but the newline can move the cursor, reorder text or fail to encode."""
    text.encode("utf-8")  # what writing to a UTF-8 stdout does: a lone surrogate would raise
    assert not [c for c in text if c != "\n" and not c.isprintable()], text


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


# Every format survives a lone surrogate -------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--format", "table"), ("--format", "json"), ("--format", "csv"),
        ("--group-by", "name"), ("--group-by", "name", "--format", "json"), ("--group-by", "name", "--format", "csv"),
    ],
    ids=lambda a: " ".join(a),
)
def test_a_lone_surrogate_in_a_name_is_shown_in_every_eval_format(args, in_tmp):
    (in_tmp / "u.json").write_text('{"usage": [{"name": "a\\ud800b", "kind": "text", "model": "claude-2.1", '
                                   '"region": "us-east-1", "input_tokens": 1000}]}', encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "u.json", *args)
    assert run.code == 0, run.err
    run.out.encode("utf-8")
    if "json" in args:
        data = json.loads(run.out)
        names = data["items"][0]["name"] if "items" in data else data["groups"][0]["group"]["name"]
        assert names == "a\ud800b"  # the same string, escaped as JSON escapes it
    elif "table" in args or "--group-by" in args:  # the CSV of a bill has no name column
        assert "a\\ud800b" in run.out


def test_a_lone_surrogate_reaches_a_real_utf8_stdout_without_a_crash(tmp_path):
    (tmp_path / "u.json").write_text('{"usage": [{"name": "\\udfff", "kind": "text", "model": "claude-2.1", '
                                     '"region": "us-east-1", "input_tokens": 1000}]}', encoding="utf-8")
    for args in (["--format", "table"], ["--format", "json"], ["--format", "csv", "--group-by", "name"]):
        done = subprocess.run(
            [sys.executable, "-m", "bedrock_rules", "eval", "u.json", "--at", SEED_DAY, *args],
            cwd=tmp_path, capture_output=True, env={"PYTHONIOENCODING": "utf-8", "PATH": ""}, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert b"internal error" not in done.stderr
        assert b"\\udfff" in done.stdout


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_lone_surrogate_in_explain(fmt, in_tmp):
    (in_tmp / "u.json").write_text('{"usage": [{"name": "\\ud800", "kind": "text", "model": "claude-2.1", '
                                   '"region": "us-east-1", "input_tokens": 1000}]}', encoding="utf-8")
    run = run_cli("explain", "--at", SEED_DAY, "u.json", "--format", fmt)
    assert run.code == 0, run.err
    run.out.encode("utf-8")


# Forged lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("--group-by", "name"), ("--group-by", "kind,name")], ids=["bill", "by-name", "by-kind-name"])
def test_a_name_cannot_forge_a_total_line_in_the_table(args, in_tmp):
    (in_tmp / "u.json").write_text(usage(FORGED), encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "u.json", *args)
    assert run.code == 0, run.err
    hidden_free(run.out)
    assert [line for line in run.out.splitlines() if line.startswith("total:")] == ["total: 0.00824 USD"]
    assert "x\\ntotal: 0.01 USD\\x1b[2J\\x1b]8;;http://evil\\x07\\u202eDSU\\u200b" in run.out


def test_a_name_cannot_forge_lines_in_explain(in_tmp):
    (in_tmp / "u.json").write_text(usage(FORGED), encoding="utf-8")
    run = run_cli("explain", "--at", SEED_DAY, "u.json")
    hidden_free(run.out)
    assert [line for line in run.out.splitlines() if line.startswith("total:")] == ["total: 0.00824 USD"]


@pytest.mark.parametrize("command", ["eval", "explain"])
def test_a_refused_name_cannot_forge_lines_in_the_refusal(command, in_tmp):
    (in_tmp / "u.json").write_text(usage(FORGED, model="no-such\n\x1b[31mmodel"), encoding="utf-8")
    run = run_cli(command, "u.json")
    assert run.code == 2
    hidden_free(run.err)
    assert run.err.splitlines() == [
        "usage refused: 1 problem, nothing was priced",
        '  item 1 (x\\ntotal: 0.01 USD\\x1b[2J\\x1b]8;;http://evil\\x07\\u202eDSU\\u200b), field model: '
        'error[BU106]: unknown model "no-such\\n\\u001b[31mmodel"',
    ]


def test_log_values_cannot_forge_lines_in_the_totals(in_tmp):
    lines = [
        log_record(),
        log_record(errorCode="ThrottlingException\ntotal: 0.00 USD\x1b[8m"),
        log_record(operation="Invoke\r\nrecords: 9 read\u2028", modelId="anthropic.claude-v2:1"),
        log_record(modelId="evil\n\x1b[2Kmodel"),
    ]
    (in_tmp / "log.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "log.jsonl", "--input", "invocation-log", "--group-by", "operation,model")
    hidden_free(run.out)
    assert [line for line in run.out.splitlines() if line.startswith("total:")] == ["total: 0.01648 USD"]
    assert [line for line in run.out.splitlines() if line.startswith("records:")] == [
        "records: 4 read, 2 priced, 1 failed calls (not charged), 1 not priced, 0 malformed"
    ]
    assert "ThrottlingException\\ntotal: 0.00 USD\\x1b[8m" in run.out
    assert "Invoke\\r\\nrecords: 9 read\\u2028" in run.out


def test_tags_cannot_forge_lines_either(in_tmp):
    (in_tmp / "log.jsonl").write_text(log_record(requestMetadata={"team": "a\nb\x9bc"}) + "\n", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "log.jsonl", "--input", "invocation-log", "--group-by", "tag:team")
    hidden_free(run.out)
    assert "a\\nb\\x9bc" in run.out


# CSV formulas ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-1+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(name, in_tmp):
    (in_tmp / "u.json").write_text(usage(name), encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "u.json", "--format", "csv", "--group-by", "name")
    rows = list(csv.reader(io.StringIO(run.out, newline="")))
    assert rows[1][0] == "'" + visible(name)  # a tab or CR shown as \\t, \\r
    # The numbers are untouched: amounts and quantities stay numbers.
    assert rows[1][rows[0].index("amount")] == "0.008"
    assert rows[1][rows[0].index("quantity")] == "1000"


def test_csv_log_tags_and_identities_are_neutralised(in_tmp):
    record = log_record(requestMetadata={"team": "=cmd|' /C calc'!A0"}, identity={"arn": "@evil"})
    (in_tmp / "log.jsonl").write_text(record + "\n", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "log.jsonl", "--input", "invocation-log", "--group-by", "tag:team,identity", "--format", "csv")
    rows = list(csv.reader(io.StringIO(run.out, newline="")))
    assert rows[1][:2] == ["'=cmd|' /C calc'!A0", "'@evil"]


def test_a_plain_negative_number_in_csv_is_a_number_not_a_formula():
    from bedrock_rules.display import csv_cell

    assert csv_cell("-0.5") == "-0.5"
    assert csv_cell("-0.5+A1") == "'-0.5+A1"


# Markdown for pull-request comments -------------------------------------------------------


@pytest.fixture
def work(in_tmp) -> Path:
    for name in ("old", "new"):
        shutil.copytree(bundled_rules(), in_tmp / name)
    path = in_tmp / "new" / "anthropic.rules"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(CLAUDE_21, CLAUDE_21.replace("0.008 ", "0.009 ")), encoding="utf-8")
    return in_tmp


MARKDOWN_ATTACKS = "# Approved\n</details><img src=x onerror=alert(1)>![t](http://evil/t.png)[click](http://evil) *b* _i_ `c` | @team &amp;"


def test_markdown_diff_escapes_names_file_names_and_refusals(work):
    (work / "a`b<!--|.yaml").write_text(usage(MARKDOWN_ATTACKS), encoding="utf-8")
    (work / "r.yaml").write_text(usage("r", model=MARKDOWN_ATTACKS), encoding="utf-8")
    run = run_cli("diff", "old", "new", "a`b<!--|.yaml", "r.yaml", "--format", "markdown")
    out = run.out
    hidden_free(out)
    assert out.count("</details>") == 1 and out.rstrip().endswith("</details>")
    assert "<img" not in out and "![t](" not in out and "[click](" not in out
    assert not [line for line in out.splitlines() if line.lstrip().startswith("#") and not line.startswith("#### ")]
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "\\# Approved\\\\n" in out  # shown as `# Approved\\n`, no heading
    # Every table row keeps its cells: escaped `|` does not split a cell.
    for line in out.splitlines():
        if line.startswith("| `"):
            assert line.replace("\\|", "").count("|") in (8, 7)


def test_markdown_escaping_keeps_the_text_readable():
    assert markdown("a|b") == "a\\|b"
    assert markdown("<x & y>") == "&lt;x &amp; y&gt;"
    assert markdown("line\nnext") == "line\\\\nnext"  # the newline is shown as \n, its backslash escaped


# Wide characters and the one aligner --------------------------------------------------------


def test_wide_characters_are_aligned_in_the_table(in_tmp):
    (in_tmp / "u.json").write_text(
        json.dumps({"usage": [
            json.loads(usage("東京のチャット"))["usage"][0],
            json.loads(usage("plain"))["usage"][0],
            json.loads(usage("e\u0301te\u0301"))["usage"][0],
        ]}),
        encoding="utf-8",
    )
    run = run_cli("eval", "--at", SEED_DAY, "u.json")
    rows = [line for line in run.out.splitlines() if "input_tokens" in line]
    assert len(rows) == 3
    starts = {width(line[: line.index("input_tokens")]) for line in rows}
    assert len(starts) == 1, run.out


def test_align_pads_by_display_width():
    assert align([("名前", "1"), ("ab", "10")], right={1}) == ["名前   1", "ab    10"]
    assert visible("ok") == "ok"
    assert visible("\ud800\u202e\x00\U000e0041") == "\\ud800\\u202e\\x00\\U000e0041"


# Percentages tell the truth ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [("100000", "100000.001", "+<0.01%"), ("100000", "99999.999", "-<0.01%"), ("100", "100", "0.00%"), ("8", "9", "+12.50%")],
)
def test_a_real_change_never_shows_as_zero_percent(old, new, shown):
    assert percent_text(Decimal(old), Decimal(new)) == shown


def test_a_tiny_change_in_the_diff_table_is_not_zero_percent(work):
    # 1 input token more expensive (+0.000001) beside 10^9 output tokens (24,000 USD): a real change.
    (work / "big.yaml").write_text(usage("big", input_tokens=1, output_tokens=10**9), encoding="utf-8")
    run = run_cli("diff", "old", "new", "big.yaml")
    assert "+0.00%" not in run.out
    assert "+12.50%" in run.out


def test_the_coverage_gate_compares_exactly(monkeypatch, in_tmp):
    """1,999 of 2,000 rules covered is 99.95%: below 100, and never printed as 100%."""
    import bedrock_rules.commands.test as command

    monkeypatch.setattr(command, "priced_rules", lambda rules: [object()] * 2000)
    monkeypatch.setattr(command, "uncovered", lambda rules, results: [_Rule()])
    run = run_cli("test", "--min-coverage", "100")
    assert run.code == 1, run.out
    assert "coverage: 1999 of 2000 price rules exercised by examples (99.95%)" in run.out
    assert "coverage 99.95% is below the minimum of 100%" in run.out
    assert "100.0%" not in run.out


class _Rule:
    where = "x.rules:1"
    id = "x"


def test_a_coverage_cut_short_says_so(monkeypatch, in_tmp):
    import bedrock_rules.commands.test as command

    monkeypatch.setattr(command, "priced_rules", lambda rules: [object()] * 3)
    monkeypatch.setattr(command, "uncovered", lambda rules, results: [_Rule()])
    run = run_cli("test", "--min-coverage", "66.66")
    assert "(66.66…%)" in run.out
    assert run.code == 0


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_a_lone_surrogate_and_a_forged_line_in_every_diff_format(fmt, work):
    (work / "u.json").write_text(
        '{"usage": [{"name": "a\\ud800\\ntotal of the 1 document: 0 -> 0", "kind": "text", "model": "claude-2.1", '
        '"region": "us-east-1", "input_tokens": 1000, "at": "2024-07-15"}]}',
        encoding="utf-8",
    )
    run = run_cli("diff", "old", "new", "u.json", "--format", fmt)
    assert run.code == 0, run.err
    if fmt == "json":
        assert json.loads(run.out)["documents"][0]["charges"][0]["name"] == "a\ud800\ntotal of the 1 document: 0 -> 0"
        run.out.encode("utf-8")
    else:
        hidden_free(run.out)
        assert not [line for line in run.out.splitlines() if line.startswith("total of the 1 document:")]


def test_check_shows_control_and_bidi_characters_of_a_rule_file_as_escapes(tmp_path):
    (tmp_path / "bad.rules").write_text("this is not\x1b[2J rules \u202e text\n", encoding="utf-8")
    run = run_cli("check", "--rules", str(tmp_path))
    assert run.code == 2
    hidden_free(run.out)
    assert "  this is not\\x1b[2J rules \\u202e text\n" in run.out


def test_strict_refusal_of_a_log_shows_its_values_as_escapes(in_tmp):
    (in_tmp / "log.jsonl").write_text(log_record(modelId="evil\n\x1b[2Kmodel") + "\n", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "log.jsonl", "--input", "invocation-log", "--strict")
    assert run.code == 2
    hidden_free(run.err)
    assert len(run.err.splitlines()) == 2, run.err


def test_an_unknown_field_name_cannot_forge_a_line_of_the_refusal(in_tmp):
    (in_tmp / "u.json").write_text(
        '{"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 1, "x\\ny\\u001b": 1}]}',
        encoding="utf-8",
    )
    run = run_cli("eval", "--at", SEED_DAY, "u.json")
    assert run.code == 2
    hidden_free(run.err)
    assert len(run.err.splitlines()) == 2, run.err


def test_a_file_name_cannot_forge_a_line_of_the_fail_above_reasons(work):
    name = "u\nthe total changes by +0 (0.00%)\x1b[8m.yaml"
    (work / name).write_text(usage("n"), encoding="utf-8")
    run = run_cli("diff", "old", "new", name, "--fail-above", "1")
    assert run.code == 1
    hidden_free(run.out + run.err)
    assert run.err.splitlines() == [
        "more than 1% of change:",
        "  the total changes by +0.001 (+12.14%)",
        "  u\\nthe total changes by +0 (0.00%)\\x1b[8m.yaml changes by +0.001 (+12.14%)",
    ]


def test_one_long_name_cannot_widen_every_row_of_a_table(in_tmp):
    # Every row is padded to its column's widest cell: a 100,000-character name among 300
    # items made a 30 MB table of a 30 KB document (50 MiB would make terabytes). A cell is
    # cut at 500 characters, saying how long it was; JSON and CSV keep the name whole.
    long_name = "n" * 100_000
    items = [json.loads(usage(long_name))["usage"][0]] + [json.loads(usage(f"call {n}"))["usage"][0] for n in range(300)]
    (in_tmp / "usage.json").write_text(json.dumps({"usage": items}), encoding="utf-8")
    table = run_cli("eval", "usage.json")
    assert table.code == 0
    assert max(width(line) for line in table.out.splitlines()) < 700
    assert f"1 {'n' * 498}… (100,009 characters)  input_tokens" in table.out
    assert json.loads(run_cli("eval", "usage.json", "--format", "json").out)["items"][0]["name"] == long_name
    assert align([["a" * 600, "b"]]) == [f"{'a' * 500}… (600 characters)  b"]
