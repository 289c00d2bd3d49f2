"""`bedrock-rules prices MODEL`: every rate of a model, each with the rule that sets it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import ROOT, run_cli


@pytest.fixture
def at_root(monkeypatch):
    """Run from the checkout's root, so rule paths in the output are the same everywhere."""
    monkeypatch.chdir(ROOT)


def _rates(*args: str) -> dict:
    run = run_cli("prices", *args, "--format", "json")
    assert run.code == 0, run.err
    return json.loads(run.out)


def _where(text: str, after: str = "") -> str:
    """`bedrock:anthropic.rules:N` of the first line holding `text` (after the line holding `after`)."""
    lines = (ROOT / "rulesets/bedrock/anthropic.rules").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    number = next(i for i, line in enumerate(lines) if i >= start and text in line) + 1
    return f"bedrock:anthropic.rules:{number}"


def _line(where: str) -> str:
    ruleset, name, number = where.split(":")  # cited from the ruleset's root: `bedrock:anthropic.rules:28`
    assert ruleset == "bedrock", where
    return (ROOT / "rulesets" / ruleset / name).read_text(encoding="utf-8").splitlines()[int(number) - 1]


def test_the_table_lists_each_rate_with_its_rule(at_root):
    run = run_cli("prices", "claude-2.1")
    assert run.code == 0 and run.err == ""
    lines = run.out.splitlines()
    assert lines[0] == "Claude 2.1 (claude-2.1, anthropic): 22 rates"
    assert lines[1].split() == ["kind", "quantity", "price", "when", "rule"]
    rows = [line.split("  ") for line in lines[3:]]
    cells = [[cell.strip() for cell in row if cell.strip()] for row in rows if len(row) > 4]
    frankfurt = _where("| claude-2.0, claude-2.1", after="prices text in eu-central-1")
    assert ["text", "input_tokens", "0.008 USD per 1000", "region in eu-central-1", f"{frankfurt} (from 2024-07-01)"] in cells
    assert [
        "provisioned", "model_hours", "63 USD each", "region in us-east-1, us-west-2 and commitment = 1_month",
        f"{_where('| claude-2.0, claude-2.1', after='prices provisioned in us-east-1, us-west-2')} (from 2024-07-01)",
    ] in cells


def test_every_rate_cites_the_row_that_sets_it(at_root):
    found = _rates("claude-3-haiku")
    assert found["title"] == "Claude 3 Haiku" and found["provider"] == "anthropic"
    assert found["rates"], "Claude 3 Haiku has prices"
    for rate in found["rates"]:
        line = _line(rate["rule"])
        assert line.startswith("|") and "claude-3-haiku" in line
        if rate["rate"] is not None:
            assert rate["rate"] in line.replace(" ", "").split("|")


def test_a_rate_is_what_eval_charges(at_root):
    """The listed rate of a region, applied by eval to that quantity, gives the same amount."""
    found = _rates("anthropic.claude-instant-v1", "--region", "ap-northeast-1")
    rate = next(r for r in found["rates"] if r["kind"] == "text" and r["quantity"] == "output_tokens")
    assert rate["when"] == [] and rate["rate"] == "0.0024" and rate["per"] == "1000"
    usage = {"usage": [{"kind": "text", "model": "claude-instant", "region": "ap-northeast-1", "output_tokens": 1000, "at": "2024-07-15"}]}
    run = run_cli("eval", "-", "--format", "json", stdin=json.dumps(usage))
    assert run.code == 0
    charge = next(c for c in json.loads(run.out)["items"][0]["charges"] if c["id"] == rate["id"])
    assert Decimal(charge["amount"]) == Decimal(rate["rate"])


def test_a_region_keeps_only_its_rates_and_settles_its_conditions(at_root):
    everywhere = _rates("claude-3-haiku")
    frankfurt = _rates("claude-3-haiku", "--region", "eu-central-1")
    assert len(frankfurt["rates"]) < len(everywhere["rates"])
    assert {r["rule"] for r in frankfurt["rates"]} == {_where("| claude-3-haiku", after="prices text in eu-central-1")}
    assert all(r["when"] == [] for r in frankfurt["rates"])
    assert any("region in" in " ".join(r["when"]) for r in everywhere["rates"])
    assert _rates("claude-3-haiku", "--region", "ap-northeast-1")["rates"] == []


def test_refusals_of_the_model_are_listed_with_their_conditions(at_root):
    run = run_cli("prices", "claude-3-opus")
    assert "refused:\n" in run.out
    assert (
        "  text, embedding, image, provisioned, training, storage when region not in us-west-2: "
        f"Claude 3 Opus is offered only in us-west-2 — {_where('offer claude-3-opus only in us-west-2')}"
    ) in run.out
    # In us-west-2 the offer line no longer refuses; elsewhere it always does.
    west = _rates("claude-3-opus", "--region", "us-west-2")
    assert not any("offered only" in r["reason"] for r in west["refusals"])
    east = _rates("claude-3-opus", "--region", "us-east-1")
    offer = next(r for r in east["refusals"] if "offered only" in r["reason"])
    assert offer["when"] == []


def test_a_profile_id_prices_at_the_scope_its_prefix_names(at_root):
    found = _rates("global.anthropic.claude-3-haiku-20240307-v1:0", "--region", "us-east-1")
    assert found["model"] == "claude-3-haiku" and found["scope"] == "global"
    assert [r["rate"] for r in found["rates"][:2]] == ["0.00025", "0.00125"]
    geo = _rates("eu.anthropic.claude-3-haiku-20240307-v1:0")
    assert geo["scope"] == "geographic" and geo["geography"] == "eu"
    assert run_cli("prices", "us.anthropic.claude-3-haiku-20240307-v1:0").out.startswith(
        "Claude 3 Haiku (claude-3-haiku, anthropic), geography us, scope geographic: "
    )


def test_a_rule_for_every_model_of_a_provider_is_listed_for_each(in_tmp):
    (in_tmp / "rules.rules").write_text(
        "currency USD\nregion r1\n"
        "provider p\n  model a\n  model b\nend\nprovider q\n  model c\nend\n"
        "kind text\n  model: model\n  region: region\n  tokens: count = 0 unit tokens\nend\n"
        "prices text in any when provider = p\n| tokens per 1000 |\n| 0.5 |\n"
        "prices text in any\n| model | tokens per 1000 |\n| a | 0.25 |\n",
        encoding="utf-8",
    )
    found = _rates("b", "--rules", "rules.rules")
    assert [(r["rate"], r["when"], r["rule"]) for r in found["rates"]] == [("0.5", [], "rules.rules:17")]
    assert [r["rate"] for r in _rates("a", "--rules", "rules.rules")["rates"]] == ["0.25", "0.5"]
    assert _rates("c", "--rules", "rules.rules")["rates"] == []
    assert run_cli("prices", "c", "--rules", "rules.rules").out == "c (c, q): 0 rates\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("claude-3-haku",), "bedrock-rules prices: unknown model 'claude-3-haku' (did you mean 'claude-3-haiku'?)\n"),
        (("claude-3-haiku", "--region", "us-east-9"), "bedrock-rules prices: --region: unknown region 'us-east-9'"),
    ],
    ids=["model", "region"],
)
def test_what_the_rules_do_not_name_is_refused(args, message, at_root):
    run = run_cli("prices", *args)
    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith(message)


def test_the_readme_shows_what_the_command_prints(at_root):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ bedrock-rules prices claude-3-opus --region us-west-2 --at 2025-11-15\n", 1)[1].split("```\n", 1)[0]
    assert run_cli("prices", "claude-3-opus", "--region", "us-west-2", "--at", "2025-11-15").out == shown


def test_a_region_the_model_is_not_offered_in_says_no_rate_is_charged(at_root):
    run = run_cli("prices", "claude-3-opus", "--region", "us-east-1", "--at", "2025-11-15")
    assert run.code == 0, run.err
    first = run.out.splitlines()[0]
    assert first == (
        "Claude 3 Opus (claude-3-opus, anthropic) in us-east-1, on 2025-11-15: 5 rates, none charged: every usage is refused (below)"
    )
    assert "Claude 3 Opus is offered only in us-west-2" in run.out
    offered = run_cli("prices", "claude-3-opus", "--region", "us-west-2", "--at", "2025-11-15").out.splitlines()[0]
    assert offered.endswith(": 5 rates")


def test_a_model_refused_only_before_its_launch_day_is_not_said_to_charge_nothing(at_root):
    # Asked with no day, a launch day (an offer's window) refuses some days only: the rates
    # are charged from that day on, and the first line does not say that none is.
    run = run_cli("prices", "claude-sonnet-4.5", "--region", "us-east-1")
    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == "Claude Sonnet 4.5 (claude-sonnet-4.5, anthropic) in us-east-1: 4 rates"
    assert "Claude Sonnet 4.5 is offered from 2025-09-29" in run.out
    # With no day and no region, a region it is not offered in still says so for that region.
    run = run_cli("prices", "claude-3-opus", "--region", "us-east-1")
    assert run.out.splitlines()[0].endswith(": 5 rates, none charged: every usage is refused (below)")
