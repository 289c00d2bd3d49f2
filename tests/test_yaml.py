"""Usage documents in YAML are read with YAML 1.2 semantics, as JSON would read them."""

from __future__ import annotations

import json

from conftest import SEED_DAY, run_cli

ITEM = "  - kind: text\n    model: claude-2.1\n    region: us-east-1\n    input_tokens: 1000\n"


def test_no_off_yes_and_on_stay_names(in_tmp):
    # YAML 1.1 reads these as booleans, so an item named after a country code (NO, Norway) or a switch lost its name.
    names = ["no", "off", "yes", "on", "NO", "y"]
    text = "usage:\n" + "".join(f"{ITEM}    name: {name}\n" for name in names)
    (in_tmp / "usage.yaml").write_text(text, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", "json")
    assert (run.code, run.err) == (0, "")
    assert [item["name"] for item in json.loads(run.out)["items"]] == names


def test_only_true_and_false_are_flags(in_tmp):
    provisioned = (
        "  - kind: provisioned\n    model: claude-2.1\n    region: us-east-1\n    model_units: 1\n    hours: 1\n    commitment: 1_month\n"
    )
    text = "usage:\n" + "".join(f"{provisioned}    custom: {flag}\n" for flag in ("no", "off", "false", "False"))
    (in_tmp / "usage.yaml").write_text(text, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml")
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines() == [
        "usage refused: 2 problems, nothing was priced",
        '  item 1, field custom: error[BU106]: expected true or false, got "no"',
        '  item 2, field custom: error[BU106]: expected true or false, got "off"',
    ]


def test_yaml_1_1_octals_sexagesimals_and_hex_are_not_numbers(in_tmp):
    text = "usage:\n  - kind: text\n    model: claude-2.1\n    region: us-east-1\n    input_tokens: 0o10\n    output_tokens: 1:30\n"
    text += "  - kind: text\n    model: claude-2.1\n    region: us-east-1\n    input_tokens: 0x10\n    output_tokens: 1_000\n"
    (in_tmp / "usage.yaml").write_text(text, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml")
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines()[1:] == [
        '  item 1, field input_tokens: error[BU106]: expected a whole number ≥ 0, got "0o10"',
        '  item 1, field output_tokens: error[BU106]: expected a whole number ≥ 0, got "1:30"',
        '  item 2, field input_tokens: error[BU106]: expected a whole number ≥ 0, got "0x10"',
        '  item 2, field output_tokens: error[BU106]: expected a whole number ≥ 0, got "1_000"',
    ]


def test_a_leading_zero_is_a_decimal_number_as_in_yaml_1_2(in_tmp):
    # YAML 1.1 reads 010 as octal 8; YAML 1.2's core schema reads it as ten.
    (in_tmp / "usage.yaml").write_text(f"usage:\n{ITEM.replace('1000', '01000')}", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", "json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["items"][0]["charges"][0]["quantity"] == "1000"
