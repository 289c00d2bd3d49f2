"""`bedrock-rules pricelist check OFFER…`: the bundled rules against AWS Price List offer files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bedrock_rules.parser import parse
from conftest import ROOT, run_cli

FIXTURES = ROOT / "tests" / "pricelist"
FM_EAST = json.loads((FIXTURES / "fm-us-east-1.json").read_text(encoding="utf-8"))
BEDROCK_EAST = json.loads((FIXTURES / "bedrock-us-east-1.json").read_text(encoding="utf-8"))
HAIKU_IN, HAIKU_OUT = "XQ9Q5XG2HVDMTF2S", "NNM89KRFHHY9RWAT"  # Claude 3 Haiku, us-east-1


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def _only(offer: dict, skus: set[str]) -> dict:
    """The offer with only these SKUs, products and terms alike."""
    kept = copy.deepcopy(offer)
    kept["products"] = {k: v for k, v in kept["products"].items() if k in skus}
    kept["terms"]["OnDemand"] = {k: v for k, v in kept["terms"]["OnDemand"].items() if k in skus}
    return kept


def _dimension(offer: dict, sku: str) -> dict:
    (term,) = offer["terms"]["OnDemand"][sku].values()
    (dimension,) = term["priceDimensions"].values()
    return dimension


def _write(folder: Path, name: str, data: dict) -> str:
    (folder / name).write_text(json.dumps(data), encoding="utf-8")
    return str(folder / name)


def _check(*paths: str, rules: str | None = None) -> tuple[int, dict]:
    run = run_cli("pricelist", "check", *paths, "--format", "json", *(("--rules", rules) if rules else ()))
    assert run.err == ""
    return run.code, json.loads(run.out)


def test_the_fixture_offers_match_every_row_the_rules_cover(at_root):
    run = run_cli("pricelist", "check", *sorted(str(p.relative_to(ROOT)) for p in FIXTURES.glob("*.json")))
    assert run.code == 1  # the rules do not cover every SKU of the offers
    lines = run.out.splitlines()
    assert lines[:4] == [
        "tests/pricelist/bedrock-us-east-1.json: AmazonBedrock 20260707080509: 3 prices",
        "tests/pricelist/fm-us-east-1.json: AmazonBedrockFoundationModels 20260901183649: 4 prices",
        "tests/pricelist/fm-us-west-2.json: AmazonBedrockFoundationModels 20260930001912: 11 prices",
        "tests/pricelist/service-us-east-1.json: AmazonBedrockService 20260707080509: 1 price",
    ]
    assert lines[4] == "terms effective 2026-07-01, 2026-09-01: each compared with the rules in force on its term's date"
    # Every SKU a row maps is priced as the rules give it on its term's date: none differs.
    assert lines[-1] == "16 prices as the rules give them; 0 differs, 0 not priced, 0 ambiguous, 3 not covered, 14 no SKU"
    not_covered = [line.split()[3] for line in lines if line.startswith("not covered:")]
    # Provisioned throughput and two long-context SKUs: a pricelist row sets field values, and
    # the context a long-context rate needs is a sum.
    assert not_covered == ["USW2-MP:USW2_ProvisionedThroughput_1MonthCommit_ModelUnits_Usage-Units",
                           "USW2-MP:USW2_input_tokens_long_ctx_global_standard-Units",
                           "USE1-Claude4Sonnet-output-tokens-long-context-cross-region-global"]
    # GPT-6 Astra's 30-minute cache write matches; the reduced us-west-2 sample holds no SKU for
    # its other prices (its long-context rows included).
    astra = [line for line in lines if line.startswith("no SKU:") and line.endswith("of gpt-6-astra")]
    assert len(astra) == 7


def test_the_covered_rows_alone_report_nothing(in_tmp):
    fm = _write(in_tmp, "fm.json", _only(FM_EAST, {HAIKU_IN, HAIKU_OUT}))
    bedrock = _write(in_tmp, "bedrock.json", _only(BEDROCK_EAST, {"claude3haiku-in", "claude3haiku-out"}))
    code, report = _check(fm, bedrock)
    assert code == 0
    assert report["matched"] == 4 and report["findings"] == []
    assert report["effective"] == ["2026-07-01"]


def test_a_price_that_changed_is_reported_with_both_rates_and_the_rule(in_tmp):
    offer = _only(FM_EAST, {HAIKU_IN, HAIKU_OUT})
    _dimension(offer, HAIKU_IN)["pricePerUnit"]["USD"] = "0.3000000000"
    code, report = _check(_write(in_tmp, "fm.json", offer))
    assert code == 1
    (finding,) = report["findings"]
    assert finding["finding"] == "differs"
    assert (finding["sku"], finding["price"], finding["rules_price"], finding["unit"]) == (HAIKU_IN, "0.3", "0.25", "1M tokens")
    # 0.00025 per 1,000 tokens in the rules is 0.25 per 1,000,000 in the offer's unit.
    ruleset, name, number = finding["rule"].split(":")  # from the ruleset's root: bedrock:anthropic.rules:28
    line = (ROOT / "rulesets" / ruleset / name).read_text(encoding="utf-8").splitlines()[int(number) - 1]
    assert "claude-3-haiku" in line and "0.00025" in line
    assert finding["row"].startswith("bedrock:anthropic.rules:")
    assert report["matched"] == 1


def test_a_batch_sku_is_compared_with_the_batch_rule_in_force_on_its_date(in_tmp):
    offer = _only(FM_EAST, {HAIKU_IN})
    batch = copy.deepcopy(offer["products"][HAIKU_IN])
    batch["sku"] = "BATCHINPUT"
    batch["attributes"]["usagetype"] = "USE1-MP:USE1_MillionBatchInputTokens-Units"
    offer["products"]["BATCHINPUT"] = batch
    term = copy.deepcopy(offer["terms"]["OnDemand"][HAIKU_IN])
    offer["terms"]["OnDemand"]["BATCHINPUT"] = term
    # Half the on-demand price, effective 2026-07-01: batch at 0.5 x from 2025-07-20.
    _dimension(offer, "BATCHINPUT")["pricePerUnit"]["USD"] = "0.1250000000"
    run = run_cli("pricelist", "check", _write(in_tmp, "fm.json", offer))
    assert run.code == 1
    # The on-demand output rule of a model the offer covers, in a region it covers, has no SKU.
    assert "no SKU:" in run.out and "no SKU of the offers reaches text output_tokens of claude-3-haiku" in run.out
    assert run.out.endswith("2 prices as the rules give them; 0 differs, 0 not priced, 0 ambiguous, 0 not covered, 1 no SKU\n")
    # The same SKU effective before the page of 2025-07-20: the seed's batch at the on-demand price.
    for dimension_term in offer["terms"]["OnDemand"]["BATCHINPUT"].values():
        dimension_term["effectiveDate"] = "2025-07-01T00:00:00Z"
    run = run_cli("pricelist", "check", _write(in_tmp, "fm.json", offer))
    assert "differs:" in run.out and "BATCHINPUT USE1-MP:USE1_MillionBatchInputTokens-Units" in run.out
    assert "offer 0.125 per 1M tokens, rules 0.25 per 1M tokens (bedrock:anthropic.rules:" in run.out


def test_a_sku_in_a_region_the_rules_do_not_hold_is_not_priced(in_tmp):
    offer = _only(FM_EAST, {HAIKU_IN})
    offer["products"][HAIKU_IN]["attributes"]["regionCode"] = "us-east-2"
    code, report = _check(_write(in_tmp, "fm.json", offer))
    assert code == 1
    assert [(f["finding"], f["message"]) for f in report["findings"]] == [("not priced", "region us-east-2 is not in the rules")]


def test_a_unit_other_than_the_row_s_differs(in_tmp):
    offer = _only(FM_EAST, {HAIKU_IN})
    _dimension(offer, HAIKU_IN)["unit"] = "1K tokens"
    code, report = _check(_write(in_tmp, "fm.json", offer))
    assert code == 1
    assert report["findings"][0]["message"] == "its unit is '1K tokens'; the pricelist row says '1M tokens'"


def test_a_tier_of_a_tiered_price_is_not_covered(in_tmp):
    offer = _only(FM_EAST, {HAIKU_IN})
    _dimension(offer, HAIKU_IN)["endRange"] = "1000"
    code, report = _check(_write(in_tmp, "fm.json", offer))
    assert code == 1
    assert report["findings"][0]["finding"] == "not covered"
    assert report["findings"][0]["message"].startswith("a tier of a tiered price")


def test_get_products_output_reads_as_the_offer_file(in_tmp):
    offer = _only(FM_EAST, {HAIKU_IN, HAIKU_OUT})
    listed = {
        "FormatVersion": "aws_v1",
        "PriceList": [
            json.dumps({"product": product, "serviceCode": offer["offerCode"], "terms": {"OnDemand": offer["terms"]["OnDemand"][sku]}})
            for sku, product in offer["products"].items()
        ],
    }
    code, report = _check(_write(in_tmp, "listed.json", listed))
    assert code == 0 and report["matched"] == 2


def test_several_rows_matching_one_sku_are_reported(in_tmp):
    (in_tmp / "r.rules").write_text(
        "currency USD\nregion r1\nprovider p\n  model a\nend\n"
        "kind text\n  model: model\n  region: region\n  tokens: count = 0 unit tokens\nend\n"
        "prices text in any\n| model | tokens per 1000 |\n| a | 0.5 |\n"
        'pricelist text from O unit "1K tokens" per 1000\n'
        "| usagetype | model | quantity |\n"
        '| "R1-*" | a | tokens |\n'
        '| "*-tokens" | a | tokens |\n',
        encoding="utf-8",
    )
    attributes = {"usagetype": "R1-tokens", "regionCode": "r1"}
    offer = {"offerCode": "O", "version": "1", "products": {"S": {"sku": "S", "attributes": attributes}},
             "terms": {"OnDemand": {"S": {"S.T": {"effectiveDate": "2026-01-01T00:00:00Z", "priceDimensions": {
                 "S.T.R": {"unit": "1K tokens", "pricePerUnit": {"USD": "0.5000000000"}}}}}}}}
    run = run_cli("pricelist", "check", _write(in_tmp, "o.json", offer), "--rules", "r.rules")
    assert run.code == 1
    assert "ambiguous:  S R1-tokens (r1, effective 2026-01-01)  the pricelist rows at r.rules:16 and r.rules:17 all match it" in run.out
    offer["products"]["S"]["attributes"]["usagetype"] = "R1-other"
    run = run_cli("pricelist", "check", _write(in_tmp, "o.json", offer), "--rules", "r.rules")
    assert run.code == 0
    assert run.out.endswith("1 price as the rules give them; 0 differs, 0 not priced, 0 ambiguous, 0 not covered, 0 no SKU\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not an offer file: not JSON"),
        ('{"products": {}}', "not an offer file: expected offerCode, products and terms"),
        (
            json.dumps({
                "offerCode": "O", "products": {"S": {"attributes": {}}}, "terms": {"OnDemand": {"S": {"S.T": {"effectiveDate": "soon"}}}},
            }),
            "SKU S: effectiveDate 'soon' is not a date",
        ),
        (
            json.dumps({"offerCode": "O", "products": {"S": {"attributes": {}}}, "terms": {"OnDemand": {"S": {"S.T": {
                "effectiveDate": "2026-01-01T00:00:00Z", "priceDimensions": {"R": {"pricePerUnit": {"USD": 0.5}}}}}}}}),
            "SKU S: rate R: expected pricePerUnit USD as a decimal",
        ),
    ],
    ids=["not-json", "not-an-offer", "bad-date", "number-price"],
)
def test_a_file_that_is_not_an_offer_is_refused_naming_the_file_and_the_sku(text, message, in_tmp):
    (in_tmp / "offer.json").write_text(text, encoding="utf-8")
    run = run_cli("pricelist", "check", "offer.json")
    assert run.code == 2 and run.out == ""
    assert f"offer.json: {message}" in run.err


def test_the_readme_shows_what_the_check_prints(at_root):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ bedrock-rules pricelist check tests/pricelist/fm-us-east-1.json\n", 1)[1].split("```\n", 1)[0]
    run = run_cli("pricelist", "check", "tests/pricelist/fm-us-east-1.json")
    assert run.code == 0 and run.out == shown


def test_fmt_lays_out_a_pricelist_table_as_a_price_table_and_keeps_its_meaning(in_tmp):
    messy = (
        'pricelist text from AmazonBedrock unit "1K tokens" per 1000\n'
        '|usagetype|model|quantity|\n'
        '| "*-Claude3Haiku-input-tokens" |claude-3-haiku|   input_tokens|\n'
        '# a comment ends the table\n'
    )
    (in_tmp / "a.rules").write_text(messy, encoding="utf-8")
    run = run_cli("fmt", "a.rules")
    assert run.code == 0
    assert (in_tmp / "a.rules").read_text(encoding="utf-8") == (
        'pricelist text from AmazonBedrock unit "1K tokens" per 1000\n'
        "| usagetype                     | model          | quantity     |\n"
        "|-------------------------------|----------------|--------------|\n"
        '| "*-Claude3Haiku-input-tokens" | claude-3-haiku | input_tokens |\n'
        "# a comment ends the table\n"
    )
    # The model before and after: equal (spans take no part in equality).
    assert parse(messy, "a.rules") == parse((in_tmp / "a.rules").read_text(encoding="utf-8"), "a.rules")
    assert run_cli("fmt", "--check", "a.rules").code == 0


def test_a_row_s_value_for_a_list_field_is_that_list_of_one(in_tmp):
    (in_tmp / "r.rules").write_text(
        "currency USD\nregion r1\n"
        "kind guardrail\n  region: region\n  policies: list of content | topic = []\n  units: count = 0 unit units\nend\n"
        "prices guardrail in any\n| policies | units per 1000 |\n| content | 0.15 |\n| topic | 0.15 |\n"
        'pricelist guardrail from O unit "1K units" per 1000\n'
        "| usagetype | policies | quantity |\n"
        '| "*-ContentPolicyUnits" | content | units |\n'
        '| "*-TopicPolicyUnits" | topic | units |\n',
        encoding="utf-8",
    )
    def sku(name: str, usagetype: str, usd: str) -> tuple[dict, dict]:
        return (
            {"sku": name, "attributes": {"usagetype": usagetype, "regionCode": "r1"}},
            {f"{name}.T": {"effectiveDate": "2024-12-01T00:00:00Z", "priceDimensions": {
                f"{name}.T.R": {"unit": "1K units", "pricePerUnit": {"USD": usd}}}}},
        )
    skus = {"C": sku("C", "R1-ContentPolicyUnits", "0.1500000000"), "T": sku("T", "R1-TopicPolicyUnits", "0.7500000000")}
    offer = {"offerCode": "O", "version": "1", "products": {k: p for k, (p, _) in skus.items()},
             "terms": {"OnDemand": {k: t for k, (_, t) in skus.items()}}}
    code, report = _check(_write(in_tmp, "o.json", offer), rules="r.rules")
    assert code == 1 and report["matched"] == 1
    (finding,) = report["findings"]
    assert (finding["finding"], finding["sku"], finding["price"], finding["rules_price"]) == ("differs", "T", "0.75", "0.15")
