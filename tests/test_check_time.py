"""`check` on dates and derived prices: a gap in time between versions (BR317), a monthly
table's version that cuts a month (BR316), a relative rule whose base prices nothing or is
priced in monthly tiers (BR318), a monthly minimum that splits a tier set (BR314). Each example a
finding shows goes wrong as it says."""

from __future__ import annotations

import json

import pytest
import yaml

from bedrock_rules.checker import check, inline
from conftest import run_cli

HEAD = """\
currency USD
region r1
provider p
  model a "Model A"
end
kind text
  model: model
  region: region
  mode: on_demand | batch = on_demand
  input_tokens: count = 0 unit tokens
end
"""


def _folder(in_tmp, text: str) -> str:
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "main.rules").write_text(HEAD + text, encoding="utf-8")
    return "rules"


GAP = """\
prices text in any until 2025-06-30
| model | input_tokens per 1000 |
|-------|-----------------------|
| a     | 0.004                 |
prices text in any from 2025-07-15
| model | input_tokens per 1000 |
|-------|-----------------------|
| a     | 0.003                 |
"""


def test_a_gap_in_time_is_reported_with_a_usage_dated_on_its_first_day(in_tmp):
    folder = _folder(in_tmp, GAP)
    (finding,) = check(folder).findings
    assert (finding.code, finding.span.line, [s.line for s in finding.related]) == ("BR317", 15, [19])
    assert finding.message == (
        "no rule prices input_tokens of this usage from 2025-07-01 until 2025-07-14: this rule ends 2025-06-30 and the "
        "next version (rules/main.rules:19) starts 2025-07-15; close the gap, or refuse those days with a dated `refuse`"
    )
    # the example is refused on that day, and priced the day before and the day the next version starts
    item = yaml.safe_load(inline(finding.example))
    assert item["at"] == "2025-07-01"
    (in_tmp / "u.yaml").write_text(yaml.safe_dump({"usage": [item]}), encoding="utf-8")
    refused = run_cli("eval", "--rules", folder, "u.yaml")
    assert refused.code == 2 and "error[BU202]: no rule prices text usage" in refused.err
    for day in ("2025-06-30", "2025-07-15"):
        (in_tmp / "u.yaml").write_text(yaml.safe_dump({"usage": [{**item, "at": day}]}), encoding="utf-8")
        assert run_cli("eval", "--rules", folder, "u.yaml").code == 0


def test_abutting_versions_and_a_dated_refusal_leave_no_gap(in_tmp):
    abutting = GAP.replace("from 2025-07-15", "from 2025-07-01")
    assert check(_folder(in_tmp, abutting)).findings == ()
    (in_tmp / "refused").mkdir()
    refused = GAP + 'refuse text when model = a from 2025-07-01 until 2025-07-14: "not sold during the migration"\n'
    (in_tmp / "refused" / "main.rules").write_text(HEAD + refused, encoding="utf-8")
    assert [f.code for f in check("refused").findings] == []


def test_a_monthly_version_that_starts_mid_month_is_reported(in_tmp):
    text = """\
prices text in any monthly graduated
| model | input_tokens | input_tokens per 1000 |
|-------|--------------|-----------------------|
| a     | <= 1000      | 0.004                 |
| a     | > 1000       | 0.002                 |
prices text in any monthly graduated from 2026-03-15
| model | input_tokens | input_tokens per 1000 |
|-------|--------------|-----------------------|
| a     | <= 1000      | 0.003                 |
| a     | > 1000       | 0.001                 |
"""
    run = run_cli("check", "--rules", _folder(in_tmp, text), "--format", "json")
    assert run.code == 1
    (finding,) = json.loads(run.out)["findings"]
    assert (finding["code"], finding["line"]) == ("BR316", 17)
    assert finding["message"].startswith("this monthly table's window (from 2026-03-15) cuts a month at 2026-03-15")


def test_a_relative_rule_on_a_monthly_base_is_reported_and_refused(in_tmp):
    text = """\
prices text in any when mode = on_demand monthly graduated
| model | input_tokens | input_tokens per 1000 |
|-------|--------------|-----------------------|
| a     | <= 1000      | 0.004                 |
| a     | > 1000       | 0.002                 |
relative text mode = batch at 0.5 of on_demand
"""
    folder = _folder(in_tmp, text)
    (finding,) = check(folder).findings
    assert (finding.code, finding.span.line, [s.line for s in finding.related]) == ("BR318", 17, [12])
    assert finding.message == (
        "the base of this relative rule (mode = on_demand) is priced in monthly tiers at rules/main.rules:12: "
        "a relative price needs a per-unit base rate"
    )
    usage = {"usage": [{"kind": "text", "model": "a", "region": "r1", "mode": "batch", "input_tokens": 10, "at": "2026-03-01"}]}
    (in_tmp / "u.json").write_text(json.dumps(usage), encoding="utf-8")
    refused = run_cli("eval", "--rules", folder, "u.json")
    assert refused.code == 2
    assert "mode = batch at 0.5 of on_demand (rules/main.rules:17) needs a per-unit base rate" in refused.err


def test_a_relative_rule_whose_base_no_rule_prices_is_reported(in_tmp):
    text = """\
prices text in any when mode = batch
| model | input_tokens per 1000 |
|-------|-----------------------|
| a     | 0.002                 |
relative text mode = on_demand at 2 of batch
"""
    # on-demand at twice the batch price: batch is priced, so the rule prices something
    assert check(_folder(in_tmp, text)).findings == ()
    # batch at half of on-demand, which no rule prices: the rule prices nothing (and the batch table shadows it)
    (in_tmp / "rev").mkdir()
    reverse = text.replace("relative text mode = on_demand at 2 of batch", "relative text mode = batch at 0.5 of on_demand")
    (in_tmp / "rev" / "main.rules").write_text(HEAD + reverse, encoding="utf-8")
    findings = {f.code: f for f in check("rev").findings}
    assert sorted(findings) == ["BR312", "BR318"]
    assert findings["BR318"].message == (
        "no rule prices the base of this relative rule (mode = on_demand) for any usage it applies to, so it prices nothing"
    )


def test_a_minimum_that_splits_a_tier_set_is_reported_and_its_month_refused(in_tmp):
    text = """\
prices text in any monthly graduated
| model | input_tokens | input_tokens per 1000 |
|-------|--------------|-----------------------|
| a     | <= 1000      | 0.004                 |
| a     | > 1000       | 0.002                 |
minimum 1 monthly for text when mode = batch: "batch commits to 1 USD a month"
"""
    folder = _folder(in_tmp, text)
    (finding,) = check(folder).findings
    assert (finding.code, finding.span.line, [s.line for s in finding.related]) == ("BR314", 17, [12])
    assert inline(finding.example) == "{kind: text, model: a, region: r1, mode: batch}"
    assert "and not the rest (such as {kind: text, model: a, region: r1}): a month with both is refused" in finding.message
    both = [
        {"kind": "text", "model": "a", "region": "r1", "mode": "batch", "input_tokens": 10, "at": "2026-03-01"},
        {"kind": "text", "model": "a", "region": "r1", "input_tokens": 10, "at": "2026-03-02"},
    ]
    (in_tmp / "u.json").write_text(json.dumps({"usage": both}), encoding="utf-8")
    refused = run_cli("eval", "--rules", folder, "u.json")
    assert refused.code == 2 and "error[BU207]: period 2026-03: the tier set input_tokens (a)" in refused.err
    # scoped by the tier set's own key (the model), the minimum holds whole tier sets: no finding
    (in_tmp / "whole").mkdir()
    (in_tmp / "whole" / "main.rules").write_text(HEAD + text.replace("when mode = batch", "when model = a"), encoding="utf-8")
    assert check("whole").findings == ()


RIVALS = """\
prices text in any
| model | input_tokens per 1000 |
|-------|-----------------------|
| a     | 0.004                 |
relative text mode = batch at 0.5 of on_demand until 2025-12-31
"""


@pytest.mark.parametrize(("second", "found"), [
    ("relative text mode = batch at 0.4 of on_demand when model = a", True),  # both on 2025 days
    ("relative text mode = batch at 0.4 of on_demand from 2026-01-01", False),  # the next version
    ("relative text mode = batch at 0.4 of on_demand from 2025-06-01", False),  # a later version, from its day
    ("relative text mode = batch at 0.4 of on_demand from 2026-01-01 when model = a", False),  # never on one day
])
def test_two_relative_rules_for_one_case_are_reported_unless_one_replaces_the_other(in_tmp, second, found):
    folder = _folder(in_tmp, RIVALS + second + "\n")
    rivals = [f for f in check(folder).findings if f.code == "BR319"]
    assert bool(rivals) == found, [f.render() for f in check(folder).findings]
    if found:
        (finding,) = rivals
        assert (finding.span.line, [s.line for s in finding.related]) == (17, [16])
        assert finding.message.startswith("this relative rule and the one at rules/main.rules:16 both price mode = batch")
        usage = {"usage": [{"kind": "text", "model": "a", "region": "r1", "mode": "batch", "input_tokens": 10, "at": "2025-03-01"}]}
        (in_tmp / "u.json").write_text(json.dumps(usage), encoding="utf-8")
        refused = run_cli("eval", "--rules", folder, "u.json")
        assert refused.code == 2 and "the ruleset is ambiguous" in refused.err


def test_a_later_version_of_a_relative_rule_may_change_its_base_and_is_no_rival(in_tmp):
    # Batch at half of on-demand in 2025, at a quarter of priority from 2026: eval takes the later
    # `from` on its days, so check must not call the pair ambiguous.
    (in_tmp / "rules").mkdir()
    head = HEAD.replace("on_demand | batch = on_demand", "on_demand | batch | priority = on_demand")
    (in_tmp / "rules" / "main.rules").write_text(head + """\
prices text in any
| model | mode      | input_tokens per 1000 |
|-------|-----------|-----------------------|
| a     | on_demand | 0.004                 |
| a     | priority  | 0.008                 |
relative text mode = batch at 0.5 of on_demand from 2025-01-01
relative text mode = batch at 0.25 of priority from 2026-01-01
""", encoding="utf-8")
    assert [f.code for f in check("rules").findings] == []
    usage = {"usage": [{"kind": "text", "model": "a", "region": "r1", "mode": "batch", "input_tokens": 1000, "at": day}
                       for day in ("2025-03-01", "2026-03-01")]}
    (in_tmp / "u.json").write_text(json.dumps(usage), encoding="utf-8")
    priced = run_cli("eval", "--rules", "rules", "u.json", "--format", "json")
    assert priced.code == 0, priced.err
    assert [item["subtotal"] for item in json.loads(priced.out)["items"]] == ["0.002", "0.002"]
