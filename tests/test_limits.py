"""Limits on what the engine reads: each refusal names the limit and the value, exit 2.

The limits live in bedrock_rules/limits.py; docs/reliability.md lists them.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import bedrock_rules
from bedrock_rules import limits
from bedrock_rules.errors import RuleFileError, UsageError
from bedrock_rules.usage import read_document
from conftest import SEED_DAY, run_cli

TEXT = {"kind": "text", "model": "claude-2.1", "region": "us-east-1"}


def refusal(call) -> list[str]:
    with pytest.raises(UsageError) as caught:
        call()
    return [p.render() for p in caught.value.problems]


def rule_error(path) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load(path)
    return [d.render().split("\n")[0] for d in caught.value.diagnostics]


# Usage documents ------------------------------------------------------------------


def test_a_document_over_50_mib_is_refused_before_it_is_parsed(rules):
    text = "#" * limits.MAX_DOCUMENT_CHARS + "\n"
    assert refusal(lambda: rules.evaluate_text(text, "big.yaml", at=SEED_DAY)) == [
        "big.yaml: error[BU003]: document too large: 52,428,801 characters; the limit is 52,428,800 characters (50 MiB)"
    ]


@pytest.mark.slow
def test_a_document_of_50_mib_is_read(rules):
    padding = " " * (limits.MAX_DOCUMENT_CHARS - 40)
    text = '{"usage": [{"kind": "agent"}]}' + padding
    assert len(text) <= limits.MAX_DOCUMENT_CHARS
    assert rules.evaluate_text(text, "big.json", at=SEED_DAY).total == 0


@pytest.mark.slow
def test_more_than_a_million_items_are_refused_and_totals_streams_them(rules):
    agent = {"kind": "agent"}
    assert refusal(lambda: rules.evaluate({"usage": [agent] * 1_000_001}, at=SEED_DAY)) == [
        "error[BU003]: too many items: 1,000,001 items; the limit is 1,000,000 items per document; price longer streams with Ruleset.totals"
    ]
    totals = rules.totals(agent for _ in range(1_000_001))
    assert (totals.read, totals.priced, totals.total) == (1_000_001, 1_000_001, 0)


@pytest.mark.parametrize("name", ["deep.json", "deep.yaml"])
def test_nesting_deeper_than_32_levels_is_refused(name):
    nested = read_document("[" * 32 + "]" * 32, name)
    for _ in range(31):
        (nested,) = nested
    assert nested == []
    problem = "nested too deeply: more than 32 levels of lists and objects; the limit is 32 levels"
    where = "" if name.endswith(".json") else " at line 1, column 33"
    # YAML's reader reports a limit as the place where the YAML stops being readable
    prefix = "error[BU003]: " if name.endswith(".json") else "error[BU002]: not valid YAML: "
    assert refusal(lambda: read_document("[" * 33 + "]" * 33, name)) == [f"{name}: {prefix}{problem}{where}"]
    # What would exhaust the parsers' recursion is refused the same way, quickly.
    assert len(refusal(lambda: read_document("[" * 200_000 + "]" * 200_000, name))) == 1


def test_brackets_inside_json_strings_are_not_nesting():
    document = read_document(json.dumps({"usage": [{"kind": "agent", "name": "[" * 100 + "{" * 100}]}), "x.json")
    assert document["usage"][0]["name"].startswith("[[[")


def test_ten_to_the_thirty_tokens_price_exactly(in_tmp):
    (in_tmp / "usage.json").write_text(json.dumps({"usage": [{**TEXT, "input_tokens": 10**30, "output_tokens": 10**30 + 1}]}))
    run = run_cli("eval", "--at", SEED_DAY, "usage.json", "--format", "json")
    assert run.code == 0, run.err
    charges = json.loads(run.out)["items"][0]["charges"]
    # 0.008 and 0.024 USD per 1000 tokens: not one digit rounded away.
    assert [c["amount"] for c in charges] == ["8000000000000000000000000", "24000000000000000000000000.000024"]
    assert json.loads(run.out)["total"] == "32000000000000000000000000.000024"


def test_forty_digits_are_the_most_a_number_may_have(rules):
    most = 10**40 - 1
    bill = rules.evaluate({"usage": [{**TEXT, "input_tokens": most}]}, at=SEED_DAY)
    assert bill.total == Decimal("79999999999999999999999999999999999.999992")  # 0.008 USD per 1000 tokens
    assert refusal(lambda: rules.evaluate({"usage": [{**TEXT, "input_tokens": most + 1}]}, at=SEED_DAY)) == [
        "item 1, field input_tokens: error[BU003]: number too large: 41 digits; the limit is 40 digits"
    ]
    assert refusal(lambda: rules.evaluate({"usage": [{**TEXT, "input_tokens": 10**5000}]}, at=SEED_DAY)) == [
        "item 1, field input_tokens: error[BU003]: number too large: more than 40 digits; the limit is 40 digits"
    ]


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("x.json", '{"usage": [{"kind": "agent", "region": ' + "9" * 200 + "}]}",
         "x.json: error[BU003]: number too large: 200 characters long; the limit is 40 digits"),
        ("x.json", '{"usage": [{"kind": "agent", "region": 1e9999999999999999999}]}',
         "x.json: error[BU003]: number too large: '1e9999999999999999999'; the limit is 40 digits"),
        ("x.yaml", "usage:\n  - kind: agent\n    region: " + "9" * 200 + "\n",
         "x.yaml: error[BU002]: not valid YAML: number too large: 200 characters long; the limit is 40 digits at line 3, column 13"),
        ("x.yaml", "usage:\n  - kind: agent\n    region: 1.0e+9999999999999999999\n",
         "x.yaml: error[BU002]: not valid YAML: number too large: '1.0e+9999999999999999999'; the limit is 40 digits at line 3, column 13"),
    ],
    ids=["json-long-literal", "json-huge-exponent", "yaml-long-literal", "yaml-huge-exponent"],
)
def test_numbers_no_converter_should_see_are_refused_when_read(name, text, problem):
    assert refusal(lambda: read_document(text, name)) == [problem]


def test_what_exact_arithmetic_cannot_hold_is_refused_clearly(in_tmp):
    """Four 40-digit factors make 160 digits; the exact context holds 120: a clear refusal, never a rounded bill."""
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "big.rules").write_text(
        "currency USD\nkind product\n  a: count\n  b: count\n  c: count\n  d: count\n  abcd = a * b * c * d\nend\n"
        "prices product\n| abcd per 1 |\n|------------|\n| 0.5        |\n"
    )
    factor = "9" * 40
    (in_tmp / "usage.yaml").write_text(f"usage:\n  - {{kind: product, a: {factor}, b: {factor}, c: {factor}, d: {factor}}}\n")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--rules", "rules")
    assert (run.code, run.out) == (2, "")
    assert run.err == (
        "usage refused: 1 problem, nothing was priced\n"
        "  item 1, field abcd: error[BU204]: the amount cannot be computed exactly at the rate of rules/big.rules:12\n"
    )
    (in_tmp / "usage.yaml").write_text(f"usage:\n  - {{kind: product, a: {factor}, b: {factor}, c: 2, d: 2}}\n")
    assert run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--rules", "rules").code == 0


@pytest.mark.parametrize("value", ["true", "false"])
def test_booleans_are_not_counts(value, rules):
    for text, name in ((json.dumps({"usage": [{**TEXT, "input_tokens": value == "true"}]}), "x.json"),
                       (f"usage:\n  - {{kind: text, model: claude-2.1, region: us-east-1, input_tokens: {value}}}\n", "x.yaml")):
        assert refusal(lambda text=text, name=name: rules.evaluate_text(text, name, at=SEED_DAY)) == [
            f"{name}, item 1, field input_tokens: error[BU106]: expected a whole number ≥ 0, got {value}"
        ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"usage": [], "usage": []}', "not valid JSON: the key 'usage' appears twice in one object"),
        ('{"usage": [{"kind": "text", "input_tokens": NaN}]}', "not valid JSON: NaN is not a number a usage can hold"),
        ('{"usage": [{"kind": "text", "input_tokens": Infinity}]}', "not valid JSON: Infinity is not a number a usage can hold"),
        ('{"usage": [{"kind": "text", "input_tokens": -Infinity}]}', "not valid JSON: -Infinity is not a number a usage can hold"),
    ],
    ids=["duplicate-keys", "nan", "infinity", "minus-infinity"],
)
def test_json_duplicate_keys_nan_and_infinity_are_refused(text, problem):
    assert refusal(lambda: read_document(text, "x.json")) == [f"x.json: error[BU002]: {problem}"]


# YAML safety ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    ["!!python/object/apply:os.system", "!!python/object/new:pathlib.Path", "!!python/name:os.system", "!!python/module:os"],
)
def test_yaml_constructs_no_objects(tag, in_tmp):
    text = f"usage:\n  - kind: agent\n    region: {tag} [touch owned]\n"
    problems = refusal(lambda: read_document(text, "x.yaml"))
    assert problems[0].startswith(
        f"x.yaml: error[BU002]: not valid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:{tag[2:]}"
    )
    assert not (in_tmp / "owned").exists()


BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_billion_laughs_fails_at_the_first_alias(rules):
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BILLION_LAUGHS + "usage: *i\n"
    assert refusal(lambda: rules.evaluate_text(text, "lol.yaml", at=SEED_DAY)) == [
        "lol.yaml: error[BU002]: not valid YAML: aliases (*name) are not accepted in usage documents; "
        "write the value out at line 2, column 8"
    ]


def test_even_one_alias_is_refused_and_an_anchor_alone_is_harmless(rules):
    aliased = "usage:\n  - &first {kind: agent}\n  - *first\n"
    assert refusal(lambda: rules.evaluate_text(aliased, "x.yaml", at=SEED_DAY)) == [
        "x.yaml: error[BU002]: not valid YAML: aliases (*name) are not accepted in usage documents; write the value out at line 3, column 5"
    ]
    assert rules.evaluate_text("usage:\n  - &first {kind: agent}\n", "x.yaml", at=SEED_DAY).total == 0


# Rule files ----------------------------------------------------------------------


def test_a_rule_file_over_5_mib_is_refused_unread(in_tmp):
    head = "currency USD\n"
    (in_tmp / "big.rules").write_text(head + "#" * (limits.MAX_RULE_FILE_BYTES - len(head)) + "\n")
    assert rule_error("big.rules") == [
        "big.rules:1:1: error[BR003]: rule file too large: 5,242,881 bytes; the limit is 5,242,880 bytes (5 MiB)"
    ]
    (in_tmp / "big.rules").write_text(head + "#" * (limits.MAX_RULE_FILE_BYTES - len(head) - 1) + "\n")
    assert bedrock_rules.load("big.rules").currency == "USD"


def test_fmt_leaves_a_rule_file_over_5_mib_alone_as_loading_refuses_it(in_tmp):
    text = "currency USD\n" + "#" * limits.MAX_RULE_FILE_BYTES + "\n"
    (in_tmp / "big.rules").write_text(text)
    run = run_cli("fmt", "big.rules")
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith("big.rules:1:1: error[BR003]: rule file too large: ")
    assert (in_tmp / "big.rules").read_text() == text


def test_more_than_1000_rule_files_are_refused(in_tmp):
    folder = in_tmp / "many"
    folder.mkdir()
    for number in range(1001):
        (folder / f"{number:04}.rules").write_text("currency USD\n")
    assert rule_error("many") == ["many:1:1: error[BR003]: too many rule files: 1,001; the limit is 1,000 files"]
    (folder / "0000.rules").unlink()
    assert bedrock_rules.load("many").currency == "USD"


def _sum_of(terms: int) -> str:
    return "currency USD\nkind k\n  a: count\n  b = " + " + ".join(["a"] * terms) + "\nend\n"


def test_statements_nested_past_100_levels_are_refused(in_tmp):
    (in_tmp / "deep.rules").write_text(_sum_of(90))
    assert bedrock_rules.load("deep.rules").kinds == ("k",)
    (in_tmp / "deep.rules").write_text(_sum_of(200))
    assert rule_error("deep.rules") == [
        "deep.rules:4:7: error[BR003]: nested too deeply: more than 100 levels of conditions, expressions or values; "
        "the limit is 100 levels; split the statement"
    ]
    (in_tmp / "deep.rules").write_text("currency USD\nrefuse any when " + "(" * 500 + "a = 1" + ")" * 500 + ': "x"\n')
    assert rule_error("deep.rules")[0].startswith("deep.rules:2:")


def test_at_most_100_syntax_errors_are_reported_per_file(in_tmp):
    (in_tmp / "bad.rules").write_text("currency USD USD\n" * 150)
    errors = rule_error("bad.rules")
    assert len(errors) == 101 and all("error[BR100]" in e for e in errors[:100])
    assert errors[100] == (
        "bad.rules:101:1: error[BR003]: too many syntax errors: more than 100; the limit is 100 per file; the rest of the file is not read"
    )


def test_the_cli_refuses_past_a_limit_with_status_2(in_tmp):
    run = run_cli("eval", "--at", SEED_DAY, "-", stdin="[" * 40 + "]" * 40)
    assert (run.code, run.out, run.err) == (
        2,
        "",
        "usage refused: 1 problem, nothing was priced\n"
        "  <stdin>: error[BU003]: nested too deeply: more than 32 levels of lists and objects; the limit is 32 levels\n",
    )


def test_a_ruleset_that_rounds_prices_amounts_past_28_digits(in_tmp):
    """Rounding once used Python's default context (28 digits) and failed on large amounts."""
    (in_tmp / "round.rules").write_text(
        "currency USD\nround each charge to 2 places half_up\nround the total to 20 places up\n"
        "kind k\n  tokens: count\nend\nprices k\n| tokens per 1000 |\n|-----------------|\n| 0.5             |\n"
    )
    bill = bedrock_rules.load("round.rules").evaluate({"usage": [{"kind": "k", "tokens": 10**35 + 10}]}, at=SEED_DAY)
    assert bill.total == Decimal("50000000000000000000000000000000.01")
    (in_tmp / "round.rules").write_text("currency USD\nround each charge to 21 places half_up\n")
    assert rule_error("round.rules") == ["round.rules:2:22: error[BR003]: rounding too fine: 21 places; the limit is 20 places"]


def test_the_command_reads_no_more_of_a_huge_document_than_the_limit(tmp_path):
    from conftest import run_cli

    big = tmp_path / "big.yaml"
    with big.open("w", encoding="utf-8") as out:
        out.write("#" * (limits.MAX_DOCUMENT_CHARS + 1000))
    run = run_cli("eval", "--at", SEED_DAY, str(big))
    assert run.code == 2
    assert run.err.endswith(
        "big.yaml: error[BU003]: document too large: more than 52,428,800 characters; the limit is 52,428,800 characters (50 MiB)\n"
    )


# Listed problems: at most 1,000 a refusal, then a count of the rest -----------------


def test_an_item_with_thousands_of_unknown_fields_lists_a_thousand_and_counts_the_rest(in_tmp):
    """4.8M unknown keys took 6.7 GB and printed 1 GB of messages; now the first 1,000 and a count."""
    fields = ", ".join(f'"x{i}": 1' for i in range(2_500))
    (in_tmp / "u.json").write_text(
        '{"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", ' + fields + "}]}", encoding="utf-8"
    )
    run = run_cli("eval", "--at", SEED_DAY, "u.json")
    assert (run.code, run.out) == (2, "")
    lines = run.err.splitlines()
    assert lines[0] == "usage refused: 1001 problems, nothing was priced"
    assert len(lines) == 1 + 1_000 + 1
    assert lines[1].startswith("  item 1, field x0: error[BU104]: unknown field")
    assert lines[1_000].startswith("  item 1, field x999: error[BU104]: unknown field")
    assert lines[-1] == "  item 1: error[BU104]: … and 1,500 more unknown fields"


def test_a_refusal_lists_a_thousand_problems_then_says_how_many_more(rules):
    items = [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": -1}] * 1_500
    with pytest.raises(UsageError) as refused:
        rules.evaluate({"usage": items}, at=SEED_DAY)
    problems = refused.value.problems
    assert len(problems) == 1_001
    assert [p.item for p in problems[:1_000]] == list(range(1, 1_001))
    assert problems[-1].message == "… and 500 more problems"
    assert refused.value.render().splitlines()[-1] == "  … and 500 more problems"


def test_a_thousand_and_one_problems_are_all_listed_rather_than_one_counted(rules):
    items = [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": -1}] * 1_001
    with pytest.raises(UsageError) as refused:
        rules.evaluate({"usage": items}, at=SEED_DAY)
    assert len(refused.value.problems) == 1_001
    assert "more problems" not in refused.value.render()


@pytest.mark.parametrize(("value", "said"), [
    (Decimal("1E+45"), "number too large: 46 digits; the limit is 40 digits"),
    (Decimal("-1E+45"), "number too large: 46 digits; the limit is 40 digits"),
    (Decimal("0.1E-99"), "number too small: 101 digits; the limit is 40 digits"),  # 0.000…1, written out in full
    (Decimal("1.5E-45"), "number too small: 47 digits; the limit is 40 digits"),
])
def test_a_number_past_the_digits_is_called_too_large_or_too_small_as_it_is(value, said):
    assert limits.number(value) == said
