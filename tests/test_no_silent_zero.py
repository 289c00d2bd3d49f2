"""No silent zero: a nonzero quantity is charged, freed or refused, and the tools say where the rules leave one out.

One test per way the rules used to lose money without a word (issue: "every priced dimension is
read, and every nonzero quantity is charged or refused"); each checks what a user sees.
"""

from __future__ import annotations

import json
from pathlib import Path

import bedrock_rules
from conftest import run_cli

KIND = """currency USD
region r1
region r2
provider p
  model a
  model b
end
kind job
  model: model
  region: region
  x: count = 0 unit things
  y: count = 0 unit things
end
"""


def write(folder: Path, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.rules").write_text(text, encoding="utf-8")
    return folder.name  # the tests run in the folder's parent: messages name it as written


def usage(path: Path, *items: dict) -> str:
    path.write_text(json.dumps({"usage": list(items)}), encoding="utf-8")
    return str(path)


# 1. A quantity the rules declare but no rule charges ----------------------------------


def test_cache_tokens_no_table_prices_refuse_the_item(in_tmp):
    # The shipped `text` kind with its cache counts, and a table that prices input and output only.
    rules = write(in_tmp / "rules", """currency USD
region us-east-1
provider anthropic
  model claude-2.1
end
kind text
  model: model
  region: region
  input_tokens: count = 0 unit tokens
  output_tokens: count = 0 unit tokens
  cache_read_tokens: count = 0 unit tokens
end
prices text in us-east-1
| model      | input_tokens per 1000 | output_tokens per 1000 |
|------------|-----------------------|------------------------|
| claude-2.1 | 0.008                 | 0.024                  |
""")
    doc = usage(in_tmp / "u.json", {"kind": "text", "model": "claude-2.1", "region": "us-east-1",
                                     "input_tokens": 1000, "cache_read_tokens": 1000000})
    run = run_cli("eval", doc, "--rules", rules)
    assert run.code == 2, run.out
    assert run.out == ""
    assert (
        "item 1, field cache_read_tokens: error[BU202]: no rule prices cache_read_tokens (1000000) for text usage "
        "with model claude-2.1, region us-east-1; the rules that match (rules/main.rules:16) do not charge it"
    ) in run.err
    # The same item without cache reads is priced: 1000 / 1000 x 0.008
    doc = usage(in_tmp / "v.json", {"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 1000})
    run = run_cli("eval", doc, "--rules", rules, "--format", "json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["total"] == "0.008"
    # `check` says which quantity no rule charges, where it is declared.
    run = run_cli("check", rules)
    assert run.code == 1
    assert "rules/main.rules:11:3: error[BR308]: `cache_read_tokens` of `text` is a billable quantity no rule charges" in run.out


def test_the_totals_path_refuses_what_evaluate_refuses(in_tmp):
    rules = write(in_tmp / "rules", KIND + "prices job in any\n| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n")
    ruleset = bedrock_rules.load(rules)
    items = [{"kind": "job", "model": "a", "region": "r1", "x": 3}] * 50 + [
        {"kind": "job", "model": "a", "region": "r1", "x": 1, "y": 2}
    ]
    totals = ruleset.totals(items)
    assert totals.total == 150  # the 50 items of x 3, batched; the item with y 2 is not priced
    assert totals.priced == 50
    assert [(u.count, u.places) for u in totals.unpriced] == [(1, (51,))]
    assert "no rule prices y (2) for job usage with model a, region r1" in totals.unpriced[0].reason


def test_check_names_a_model_region_that_neither_charges_frees_nor_refuses_a_quantity(in_tmp):
    rules = write(in_tmp / "rules", KIND + """prices job in any
| model | x per 1 | y per 1 |
|-------|---------|---------|
| a     | 1       | 2       |
prices job in any
| model | x per 1 |
|-------|---------|
| b     | 1       |
""")
    run = run_cli("check", rules)
    assert run.code == 1
    assert "error[BR309]: `y` of `job` is charged for model a but not for model b" in run.out
    assert "example: {kind: job, model: b, region: r1, y: 1}" in run.out


# 6. The `check` gap between tables split by `when` -------------------------------------


def test_check_finds_the_gap_between_tables_split_by_when(in_tmp):
    split = KIND.replace("  y: count = 0 unit things\n", "") + """prices job in any when x < 10
| model | x per 1 |
|-------|---------|
| a, b  | 1       |
prices job in any when x > 10
| model | x per 1 |
|-------|---------|
| a, b  | 2       |
"""
    run = run_cli("check", write(in_tmp / "gap", split))
    assert run.code == 1
    assert "gap/main.rules:17:24: error[BR302]: gap between tiers: no row prices x 10" in run.out
    assert "example: {kind: job, model: a, region: r1, x: 10}" in run.out
    run = run_cli("check", write(in_tmp / "closed", split.replace("when x > 10", "when x >= 10")))
    assert (run.code, run.out) == (0, "closed: no problems found\n")


# 7. `diff`: a charge whose price and quantity did not change is not a change ---------------


def test_diff_does_not_report_a_charge_whose_price_did_not_change(in_tmp):
    old = KIND.replace("  y: count = 0 unit things\n", "  mode: on_demand | batch = on_demand\n") + (
        "prices job in any\n| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n"
    )
    # The table gains a `mode` column for a new batch price; on-demand stays at 1.
    new = old.replace(
        "| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n",
        "| model | mode      | x per 1 |\n|-------|-----------|---------|\n| a     | on_demand | 1       |\n"
        "| a     | batch     | 0.5     |\n",
    )
    doc = usage(in_tmp / "u.json", {"kind": "job", "model": "a", "region": "r1", "x": 4})
    run = run_cli("diff", write(in_tmp / "old", old), write(in_tmp / "new", new), "u.json")
    assert run.code == 0, run.err
    assert "0 of 1 document changed" in run.out
    assert "u.json: 4 -> 4 USD, unchanged (1 charges)" in run.out
    assert "-100.00%" not in run.out
    # A batch item is priced differently: that is a change, and shown as one.
    usage(in_tmp / "u.json", {"kind": "job", "model": "a", "region": "r1", "x": 4, "mode": "batch"})
    run = run_cli("diff", "old", "new", doc)
    assert "1 of 1 document changed" in run.out
    assert "4 -> 2 USD" in run.out


# 5. A new region does not join tables silently ---------------------------------------------


def test_a_table_that_does_not_say_where_it_applies_is_refused(in_tmp):
    rules = write(in_tmp / "rules", KIND + "prices job\n| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n")
    doc = usage(in_tmp / "u.json", {"kind": "job", "model": "a", "region": "r1", "x": 4})
    run = run_cli("eval", doc, "--rules", rules)
    assert run.code == 2
    assert "rules/main.rules:14:1: error[BR220]: this table does not say where it applies: add `in REGION, …` or `in any`" in run.err


def test_diff_lists_what_a_new_region_picks_up(in_tmp):
    old = KIND + (
        "prices job in any\n| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n"
        "prices job in r1, r2\n| model | x per 1 |\n|-------|---------|\n| b     | 2       |\n"
    )
    new = old.replace("region r2\n", "region r2\nregion r3\n")
    usage(in_tmp / "u.json", {"kind": "job", "model": "a", "region": "r1", "x": 4})
    run = run_cli("diff", write(in_tmp / "old", old), write(in_tmp / "new", new), "u.json")
    assert run.code == 0, run.err
    assert run.out.splitlines()[1] == "new region r3: priced by the `in any` tables at new/main.rules:15"
    run = run_cli("diff", "old", "new", "u.json", "--format", "json")
    assert json.loads(run.out)["new_regions"] == [{"region": "r3", "tables": ["new/main.rules:15"]}]


def test_fmt_keeps_in_any(in_tmp):
    rules = in_tmp / "f.rules"
    rules.write_text(KIND + "prices   job   in   any   when x > 1\n| model | x per 1 |\n|---|---|\n| a | 1 |\n", encoding="utf-8")
    assert run_cli("fmt", "f.rules").code == 0
    text = rules.read_text(encoding="utf-8")
    assert "\nprices job in any when x > 1\n| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n" in text
    assert run_cli("fmt", "--check", "f.rules").code == 0
    assert bedrock_rules.load(str(rules)).program.rules[0].id == "job/x[x > 1; model = a]"


def test_check_names_a_region_only_in_any_tables_price(in_tmp):
    rules = KIND.replace("region r2\n", "region r2\nregion r3\n").replace("  y: count = 0 unit things\n", "") + (
        "prices job in any\n| model | x per 1 |\n|-------|---------|\n| a     | 1       |\n"
        "prices job in r1, r2\n| model | x per 1 |\n|-------|---------|\n| b     | 2       |\n"
    )
    run = run_cli("check", write(in_tmp / "rules", rules))
    assert run.code == 1
    assert run.out.splitlines()[0] == (
        "rules/main.rules:4:1: error[BR310]: region r3 is named by no rule: the `in any` tables (rules/main.rules:14) "
        "price there, and no table that lists its regions does; list it where it is sold, or leave it out"
    )
    run = run_cli("check", write(in_tmp / "fixed", rules.replace("in r1, r2\n", "in r1, r2, r3\n")))
    assert (run.code, run.out) == (0, "fixed: no problems found\n")
