"""The JSON outputs name their schema version, and the JSON Schema files shipped in the package describe them.

conftest.run_cli validates every JSON output the tests produce through the command line;
this module checks the schema files themselves, the stored snapshots, the Python API's
dumps and the bills `snapshot --update` writes.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil

import jsonschema
import pytest

import bedrock_rules
from bedrock_rules import bill, checker, differ, explainer, pricelist, rates, totals
from bedrock_rules.bedrock.logs import totals_of_log
from conftest import ROOT, SEED_DAY, run_cli, validate_json

# Bills and totals name rules by their stable ids alone since version 2.
VERSIONS = {"bill": 2, "totals": 2}
SCHEMAS = {
    "bill": bill.SCHEMA, "totals": totals.SCHEMA, "diff": differ.SCHEMA, "explain": explainer.SCHEMA, "findings": checker.SCHEMA,
    "prices": rates.SCHEMA, "pricelist": pricelist.SCHEMA,
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_schema_ships_in_the_package_and_names_its_version(name):
    # Read through the installed package, as a user's tool would find it (CI installs the wheel).
    text = (importlib.resources.files("bedrock_rules") / "schemas" / f"{name}.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"] == {"const": SCHEMAS[name]}
    assert SCHEMAS[name] == f"bedrock-rules/{name}/{VERSIONS.get(name, 1)}"
    assert "schema" in schema["required"]


def test_the_package_ships_exactly_these_schemas():
    shipped = sorted(p.name for p in (importlib.resources.files("bedrock_rules") / "schemas").iterdir() if p.name.endswith(".json"))
    assert shipped == sorted(f"{name}.json" for name in SCHEMAS)


STORED = sorted(p for p in (ROOT / "tests" / "__snapshots__").rglob("*.json"))


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_stored_json_snapshots_match_their_schema(path):
    validate_json(path.read_text(encoding="utf-8"))


def test_the_python_api_dumps_match_the_schemas(rules):
    usage = {"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 11000}]}
    validate_json(bedrock_rules.dump(rules.evaluate(usage, at=SEED_DAY)))
    log = (ROOT / "tests" / "logs" / "mixed.jsonl").read_text(encoding="utf-8").splitlines()
    validate_json(totals.dump(totals_of_log(rules, log, ["model"])))


def test_bills_written_by_snapshot_update_match_the_schema(in_tmp):
    shutil.copytree(ROOT / "tests" / "snapshot", in_tmp / "usage")
    run = run_cli("snapshot", "--at", SEED_DAY, "usage", "--update")
    assert run.code == 0, run.err
    written = sorted((in_tmp / "usage").glob("*.bill.json"))
    assert written
    for path in written:
        assert validate_json(path.read_text(encoding="utf-8"))["schema"] == "bedrock-rules/bill/2"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda b: b.update(total=29469.684), "29469.684 is not of type 'string'"),
        (lambda b: b.update(total="2.9E+4"), "does not match"),
        (lambda b: b.update(schema="bedrock-rules/bill/1"), "'bedrock-rules/bill/2' was expected"),
        (lambda b: b["items"][0]["charges"][0].pop("id"), "'id' is a required property"),
        (lambda b: b["items"][0]["charges"][0].update(rule="a.rules:3"), "Additional properties are not allowed"),
        (lambda b: b.update(extra=1), "Additional properties are not allowed"),
    ],
    ids=["float", "exponent", "other-version", "no-id", "file-and-line", "unknown-key"],
)
def test_the_bill_schema_refuses_what_a_bill_never_holds(rules, change, complaint):
    item = {"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 1}
    data = json.loads(bedrock_rules.dump(rules.evaluate({"usage": [item]}, at=SEED_DAY)))
    change(data)
    with pytest.raises(AssertionError, match=complaint):
        validate_json(json.dumps(data))


@pytest.mark.parametrize(
    ("args", "change", "complaint"),
    [
        (("prices", "claude-2.1"), lambda d: d["rates"][0].pop("id"), "'id' is a required property"),
        (("prices", "claude-2.1"), lambda d: d.update(rates={}), "is not of type 'array'"),
        (("prices", "claude-2.1"), lambda d: d.update({"Scope": "global"}), "does not match"),
        (("pricelist", "check", str(ROOT / "tests" / "pricelist" / "fm-us-east-1.json")),
         lambda d: d["counts"].pop("differs"), "'differs' is a required property"),
        (("pricelist", "check", str(ROOT / "tests" / "pricelist" / "fm-us-east-1.json")),
         lambda d: d.update(matched="4"), "is not of type 'integer'"),
    ],
    ids=["prices-no-id", "prices-rates-not-a-list", "prices-unknown-key", "pricelist-no-count", "pricelist-matched-as-text"],
)
def test_the_prices_and_pricelist_schemas_refuse_what_the_commands_never_print(args, change, complaint):
    run = run_cli(*args, "--format", "json")
    data = json.loads(run.out)
    assert data["schema"] == f"bedrock-rules/{args[0]}/1"
    change(data)
    with pytest.raises(AssertionError, match=complaint):
        validate_json(json.dumps(data))
