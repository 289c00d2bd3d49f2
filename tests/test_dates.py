"""Dates: `at` on usage items, `--at`, dated rules and versions, through the public API,
the command line and the log reader."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bedrock_rules
import bedrock_rules.cli
from bedrock_rules.bedrock.logs import totals_of_log
from bedrock_rules.fields import read_instant
from conftest import ROOT, run_cli

RULES = """\
currency USD
region us-west-2
provider anthropic
  model claude-2.1 "Claude 2.1" aka anthropic.claude-v2:1
end
kind text
  model: model
  region: region
  input_tokens: count = 0 unit tokens
  output_tokens: count = 0 unit tokens
end
prices text in any
| model      | input_tokens per 1000 | output_tokens per 1000 |
|------------|-----------------------|------------------------|
| claude-2.1 | 0.008                 | 0.024                  |
# The cut, from its first day on.
prices text in any from 2024-07-03
| model      | input_tokens per 1000 | output_tokens per 1000 |
|------------|-----------------------|------------------------|
| claude-2.1 | 0.004                 | 0.012                  |
example "before the cut" at 2024-07-02 expect 0.184
  item text
    model: claude-2.1
    region: us-west-2
    input_tokens: 11000
    output_tokens: 4000
end
example "after the cut" at 2024-07-03 expect 0.092
  item text
    model: claude-2.1
    region: us-west-2
    input_tokens: 11000
    output_tokens: 4000
end
"""

ITEM = {"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 11000, "output_tokens": 4000}


@pytest.fixture(autouse=True)
def _from_root(monkeypatch, request):
    if "in_tmp" not in request.fixturenames:
        monkeypatch.chdir(ROOT)


@pytest.fixture
def dated(in_tmp):
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(RULES, encoding="utf-8")
    return bedrock_rules.load(in_tmp / "rules")


def test_the_worked_examples_before_and_after_the_change_pass(dated, in_tmp):
    result = run_cli("test", "--rules", str(in_tmp / "rules"))
    assert result.code == 0, result.out
    assert result.out.endswith("2 passed, 0 failed\n")


def test_an_item_is_priced_by_the_version_of_its_day(dated):
    # 11000 / 1000 x 0.008 + 4000 / 1000 x 0.024 = 0.088 + 0.096 = 0.184 before;
    # 11000 / 1000 x 0.004 + 4000 / 1000 x 0.012 = 0.044 + 0.048 = 0.092 from 2024-07-03
    bill = dated.evaluate({"usage": [{**ITEM, "at": "2024-07-02T23:59:59Z"}, {**ITEM, "at": "2024-07-03"}]})
    assert [item.subtotal for item in bill.items] == [Decimal("0.184"), Decimal("0.092")]
    assert bill.items[0].charges[0].valid is None
    assert str(bill.items[1].charges[0].valid) == "from 2024-07-03"


def test_at_in_the_python_api_dates_only_the_undated_items(dated):
    document = {"usage": [ITEM, {**ITEM, "at": "2024-07-02"}]}
    for at in ("2024-07-03", datetime.date(2024, 7, 3), datetime.datetime(2024, 7, 3, 1, 0, tzinfo=datetime.timezone.utc)):
        bill = dated.evaluate(document, at=at)
        assert [item.subtotal for item in bill.items] == [Decimal("0.092"), Decimal("0.184")]
    with pytest.raises(bedrock_rules.UsageError) as refused:
        dated.evaluate(document)
    assert "give it `at:`" in refused.value.render() and "--at DATE" in refused.value.render()
    with pytest.raises(ValueError, match="a time needs a zone"):
        dated.evaluate(document, at=datetime.datetime(2024, 7, 3, 1, 0))


def test_eval_at_on_the_command_line(dated, in_tmp, capsys):
    (in_tmp / "u.json").write_text(json.dumps({"usage": [ITEM]}), encoding="utf-8")
    refused = run_cli("eval", "--rules", "rules", "u.json")
    assert refused.code == 2 and "error[BU205]" in refused.err and "rules/main.rules:20 from 2024-07-03" in refused.err
    priced = run_cli("eval", "--rules", "rules", "--at", "2024-07-03", "u.json")
    assert priced.code == 0, priced.err
    assert "rules/main.rules:20 (from 2024-07-03)" in priced.out and priced.out.endswith("total: 0.092 USD\n")
    with pytest.raises(SystemExit) as wrong:  # argparse's own refusal, exit 2
        bedrock_rules.cli.main(["eval", "--rules", "rules", "--at", "2024-07-32", "u.json"])
    assert wrong.value.code == 2 and "2024-07-32 is not a date: July 2024 has 31 days" in capsys.readouterr().err
    with pytest.raises(SystemExit) as wrong:
        bedrock_rules.cli.main(["eval", "--rules", "rules", "--at", "0000-01-01", "u.json"])
    assert wrong.value.code == 2 and "0000-01-01 is not a date: there is no year 0 (years start at 0001)" in capsys.readouterr().err


def test_the_bundled_ruleset_prices_by_date():
    """The bundled list holds the seed's prices from 2024-07-01: an undated item is refused, a dated one priced."""
    rules = bedrock_rules.load()
    with pytest.raises(bedrock_rules.UsageError) as caught:
        rules.evaluate({"usage": [ITEM]})
    assert "this item has no date" in caught.value.problems[0].message
    dated_bill = rules.evaluate({"usage": [{**ITEM, "at": "2024-07-02"}]})
    assert dated_bill.total == rules.evaluate({"usage": [ITEM]}, at="2024-07-02").total == Decimal("0.184")


def _record(timestamp: str | None) -> str:
    record = json.loads((ROOT / "tests" / "logs" / "mixed.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["modelId"] == "anthropic.claude-v2:1" and record["input"]["inputTokenCount"] == 11000
    if timestamp is None:
        del record["timestamp"]
    else:
        record["timestamp"] = timestamp
    return json.dumps(record)


def test_a_log_records_timestamp_is_its_items_at(dated):
    lines = [_record("2024-07-02T09:15:00Z"), _record("2024-07-03T00:00:01Z"), _record(None), _record("2024-07-03")]
    totals = totals_of_log(dated, lines)
    assert totals.total == Decimal("0.184") + Decimal("0.092") * 2
    assert totals.priced == 3
    assert [(m.reason, m.count) for m in totals.malformed] == [("no timestamp: the rules price by date", 1)]


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2100, 12, 31)),
       st.integers(0, 23), st.sampled_from(["Z", "+02:00", "-05:30"]))
def test_an_items_day_is_its_utc_day(day, hour, zone):
    text = f"{day.isoformat()}T{hour:02d}:00:00{zone}"
    instant = read_instant(text)
    expected = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    assert instant.day == expected.date()
    assert instant.text == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_diff_prices_every_item_at_two_dates_with_one_ruleset(dated, in_tmp):
    (in_tmp / "u.json").write_text(json.dumps({"usage": [ITEM, {**ITEM, "at": "2020-01-01"}]}), encoding="utf-8")
    result = run_cli("diff", "--at-before", "2024-07-02", "--at-after", "2024-07-03", "--rules", "rules", "u.json", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["dates"] == {"before": "2024-07-02", "after": "2024-07-03"}
    # both items (the own date is replaced) go from 0.184 to 0.092
    assert data["total"]["old"] == "0.368" and data["total"]["new"] == "0.184"
    text = run_cli("diff", "--at-before", "2024-07-02", "--at-after", "2024-07-03", "--rules", "rules", "u.json")
    assert text.out.startswith("each item priced at 2024-07-02 and at 2024-07-03\n")
    alone = run_cli("diff", "--at-before", "2024-07-02", "--rules", "rules", "u.json")
    assert alone.code == 2 and "--at-before and --at-after go together" in alone.err


RELATIVE = RULES.replace("end\nprices text in any\n", "  mode: on_demand | batch = on_demand\nend\nprices text in any\n", 1) + (
    "relative text mode = batch at 0.5 of on_demand\n"
)


@pytest.fixture
def relative(in_tmp):
    (in_tmp / "rel").mkdir()
    (in_tmp / "rel" / "main.rules").write_text(RELATIVE, encoding="utf-8")
    return bedrock_rules.load(in_tmp / "rel")


def test_explain_shows_a_relative_rates_arithmetic_and_both_rules(relative, in_tmp):
    (in_tmp / "u.json").write_text(json.dumps({"usage": [{**ITEM, "mode": "batch", "at": "2024-07-02"}]}), encoding="utf-8")
    result = run_cli("explain", "--rules", "rel", "u.json")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "  input_tokens: 11000 tokens ÷ 1000 × 0.004 USD = 0.044 USD" in lines
    assert "    rate 0.004 = 0.008 × 0.5 (mode = batch at 0.5 of on_demand)" in lines
    assert "    rate 0.012 = 0.024 × 0.5 (mode = batch at 0.5 of on_demand)" in lines
    assert "    36 | relative text mode = batch at 0.5 of on_demand" in lines
    assert "    16 | | claude-2.1 | 0.008                 | 0.024                  |" in lines


@settings(max_examples=40, deadline=None)
@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100"), places=4),
       st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10"), places=2),
       st.integers(0, 10**9))
def test_a_relative_price_is_the_hand_computed_product(rate, factor, tokens):
    rules = _load_relative(rate, factor)
    bill = rules.evaluate({"usage": [{"kind": "text", "model": "m", "region": "r", "mode": "batch", "input_tokens": tokens}]})
    charge = bill.items[0].charges[0]
    # by hand: tokens / 1000 x (rate x factor), exactly
    assert charge.rate == rate * factor
    assert charge.amount == Decimal(tokens) / 1000 * rate * factor
    assert [(where.rsplit("/", 1)[-1], number) for where, _, number in charge.basis] == [("main.rules:8", factor), ("main.rules:7", rate)]


def _load_relative(rate: Decimal, factor: Decimal) -> bedrock_rules.Ruleset:
    import tempfile
    from pathlib import Path

    text = (
        "currency USD\nregion r\nprovider p\n  model m\nend\n"
        "kind text\n  model: model\n  region: region\n  mode: on_demand | batch = on_demand\n"
        "  input_tokens: count = 0\n  output_tokens: count = 0\nend\n"
    )
    with tempfile.TemporaryDirectory(prefix="relative-") as folder:  # hypothesis calls it many times: none is left behind
        (Path(folder) / "kinds.rules").write_text(text, encoding="utf-8")
        (Path(folder) / "main.rules").write_text(
            "# prices\n\n\n\nprices text in any\n| model | input_tokens per 1000 | output_tokens per 1000 |\n"
            f"| m | {rate} | 1 |\nrelative text mode = batch at {factor} of on_demand\n",
            encoding="utf-8",
        )
        return bedrock_rules.load(folder)


def test_the_versions_example_ruleset_passes_its_worked_examples_and_check():
    tested = run_cli("test", "--rules", "examples/versions")
    assert tested.code == 0, tested.out
    assert tested.out.endswith("3 passed, 0 failed\n")
    checked = run_cli("check", "--rules", "examples/versions")
    assert checked.code == 0, checked.out
