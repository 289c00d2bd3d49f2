"""Dates under hostile input: `at` on items, `--at`, dated rules, log timestamps, FOCUS periods.

Each of these was found by trying it: digits of other scripts read as a date (or a price)
but shown as written, a log timestamp in another zone grouped under a day its pricing
did not use, and a last day of the calendar that stopped the FOCUS writer with an
internal error.
"""

from __future__ import annotations

import json

import pytest
from test_dates import ITEM, RULES, _record

import bedrock_rules
from bedrock_rules.bedrock.logs import totals_of_log
from bedrock_rules.cli import main
from bedrock_rules.errors import RuleFileError
from conftest import ROOT, run_cli

FULL_WIDTH = "\uff12\uff10\uff12\uff14-07-03"  # ２０２４-07-03
ARABIC_INDIC = "\u0662\u0660\u0662\u0664-07-03"  # ٢٠٢٤-07-03


def _option_refused(capsys, *args: str) -> str:
    """An option argparse refuses: exit 2 and its message, never an internal error."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    said = capsys.readouterr()
    assert (done.value.code, said.out) == (2, "")
    return said.err


@pytest.fixture
def dated(in_tmp):
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(RULES, encoding="utf-8")
    return bedrock_rules.load(in_tmp / "rules")


@pytest.mark.parametrize("at", [FULL_WIDTH, ARABIC_INDIC, "2024-07-0\u0663", "2024-07-03T10:00:00+0\uff15:00"])
def test_a_date_in_digits_of_another_script_is_refused(dated, in_tmp, at, capsys):
    (in_tmp / "usage.json").write_text(json.dumps({"usage": [{**ITEM, "at": at}]}), encoding="utf-8")
    run = run_cli("eval", "usage.json", "--rules", "rules")
    assert (run.code, run.out) == (2, "")
    assert "item 1, field at: error[BU108]:" in run.err and "is not a date" in run.err
    assert "is not a date" in _option_refused(capsys, "eval", "usage.json", "--rules", "rules", "--at", at)


@pytest.mark.parametrize(("at", "day"), [
    ("2024-07-02T23:30:00-05:00", "2024-07-03"),  # 04:30 UTC on the 3rd: the new price
    ("2024-07-03T00:30:00+14:00", "2024-07-02"),  # 10:30 UTC on the 2nd: the old one
    ("2024-07-03T00:00:00.999999999999999999999999+00:00", "2024-07-03"),
])
def test_a_time_in_another_zone_is_priced_by_its_utc_day(dated, at, day):
    bill = dated.evaluate({"usage": [{**ITEM, "at": at}]})
    assert bill.items[0].at.startswith(day)
    assert str(bill.total) == ("0.092" if day == "2024-07-03" else "0.184")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-02-30",
                                "2024-07-03T24:00:00Z", "2024-07-03T10:00:00", "+2024-07-03", "99999-07-03", "2024-07-03\n"])
def test_dates_past_the_calendar_or_without_a_zone_are_refused_everywhere(dated, in_tmp, at, capsys):
    (in_tmp / "usage.json").write_text(json.dumps({"usage": [{**ITEM, "at": at}]}), encoding="utf-8")
    run = run_cli("eval", "usage.json", "--rules", "rules")
    assert (run.code, run.out) == (2, "") and "field at: error[BU108]" in run.err
    assert "argument --at: " in _option_refused(capsys, "eval", "usage.json", "--rules", "rules", "--at", at)
    (in_tmp / "bedrock-rules.toml").write_text(f'rules = "rules"\n[defaults.eval]\nat = {json.dumps(at)}\n', encoding="utf-8")
    configured = run_cli("eval", "usage.json")
    assert configured.code == 2 and configured.err.startswith(f"{in_tmp / 'bedrock-rules.toml'}: [defaults.eval] at: ")


@pytest.mark.parametrize("number", ["1\u0665", "0.0\u0660125", "0.00\uff11"])
def test_a_rule_number_in_digits_of_another_script_is_refused_at_its_place(in_tmp, number):
    # `1٥` is 15 and looks like 10; `0.0٠125` reads like a typo of 0.00125 and is 0.00125.
    text = RULES.replace("| claude-2.1 | 0.008 ", f"| claude-2.1 | {number} ", 1)
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(in_tmp / "rules")
    (diagnostic,) = refused.value.diagnostics
    column = text.splitlines()[14].index(number) + 1 + next(i for i, c in enumerate(number) if not c.isascii())
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("BR102", 15, column)


def test_a_rule_window_in_digits_of_another_script_is_refused(in_tmp):
    text = RULES.replace("from 2024-07-03", f"from {FULL_WIDTH}")
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(in_tmp / "rules")
    assert [d.span.line for d in refused.value.diagnostics] == [17]


def test_a_log_timestamp_in_another_zone_is_grouped_by_the_day_it_is_priced_on(dated):
    lines = [_record("2024-07-02T23:30:00-05:00"), _record("2024-07-02T09:15:00Z")]
    totals = totals_of_log(dated, lines, ("day",))
    assert [(line.group, str(line.amount)) for line in totals.lines if line.what == "input_tokens"] == [
        (("2024-07-02",), "0.088"), (("2024-07-03",), "0.044"),
    ]


GARBAGE_STAMPS = ["garbage", "2024-13-45T00:00:00Z", 12345, None, "9999-12-31T23:59:59Z", "\uff12\uff10\uff12\uff14-07-02T00:00:00Z",
                  "2024-07-0\u202e2T00:00:00Z", {"a": 1}]


def test_garbage_log_timestamps_never_crash_and_are_never_a_focus_period(in_tmp):
    record = json.loads((ROOT / "tests" / "logs" / "mixed.jsonl").read_text(encoding="utf-8").splitlines()[0])
    lines = [json.dumps({**record, "timestamp": stamp}) for stamp in GARBAGE_STAMPS]
    (in_tmp / "logs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Rules that do not price by date (the bundled list does, and refuses such records as
    # undated): what is left to see is the day grouping and FOCUS's period.
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "undated.rules").write_text(RULES.split("# The cut")[0], encoding="utf-8")
    grouped = run_cli("eval", "--input", "invocation-log", "logs.jsonl", "--group-by", "day", "--rules", "rules")
    assert grouped.code == 0 and "records: 8 read, 8 priced" in grouped.out
    assert "\u202e" not in grouped.out and "\\u202e" in grouped.out
    focus = run_cli("eval", "--input", "invocation-log", "logs.jsonl", "--format", "focus", "--billing-account", "1",
                    "--rules", "rules")
    assert (focus.code, focus.out) == (2, "")  # no FOCUS row dated by garbage, and no internal error
    assert "internal error" not in focus.err
    assert "have no timestamp to date the charge by (9999-12-31)" in focus.err
