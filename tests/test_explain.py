"""`bedrock-rules explain`: the rule text and arithmetic behind each charge, and why refused items are refused."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import ROOT, SEED_DAY, run_cli

DIFF_DIR = ROOT / "tests" / "diff"
CASES_DIR = ROOT / "tests" / "cases"
DOCUMENTS = sorted([ROOT / "examples" / "monthly.yaml", *DIFF_DIR.glob("*.yaml"), *DIFF_DIR.glob("*.json")])
CASES = sorted(p for p in CASES_DIR.glob("*") if p.suffix in (".yaml", ".json")) if CASES_DIR.is_dir() else []
CORPUS = DOCUMENTS + CASES


@pytest.fixture
def at_root(monkeypatch):
    """Run from the checkout's root, so the paths in the output are the same everywhere."""
    monkeypatch.chdir(ROOT)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("document", ["examples/monthly.yaml", "tests/diff/refused.yaml"], ids=["monthly", "refused"])
def test_explain(document, fmt, at_root, text_snapshot):
    run = run_cli("explain", "--at", SEED_DAY, document, "--format", fmt)
    assert run.code == (2 if "refused" in document else 0)
    assert run.err == ""
    assert run.transcript() == text_snapshot


def test_several_documents_name_each_item_s_document(at_root, text_snapshot):
    run = run_cli("explain", "--at", SEED_DAY, "tests/diff/chat.yaml", "tests/diff/opus-east.yaml")
    assert run.code == 2
    assert "tests/diff/chat.yaml: item 1 support assistant (text): 3.92 USD" in run.out
    assert "tests/diff/opus-east.yaml: item 1 opus east (text): refused" in run.out
    assert run.out.endswith("1 of 5 items refused; nothing is priced\n")
    assert run.transcript() == text_snapshot


@pytest.mark.parametrize(
    "text",
    ['{"usage": [', '{"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokenz": 5}]}', "usage: 3\n"],
    ids=["bad-json", "unknown-field", "not-a-list"],
)
def test_a_document_that_cannot_be_read_is_refused_as_eval_refuses_it(text, in_tmp):
    path = in_tmp / ("usage.json" if text.startswith("{") else "usage.yaml")
    path.write_text(text, encoding="utf-8")
    explained, evaluated = run_cli("explain", "--at", SEED_DAY, path.name), run_cli("eval", "--at", SEED_DAY, path.name)
    assert explained.code == evaluated.code == 2
    assert explained.out == ""
    assert explained.err == evaluated.err
    assert explained.err.startswith("usage refused: 1 problem, nothing was priced\n")


@pytest.mark.parametrize("case", CORPUS, ids=[p.stem for p in CORPUS])
def test_explain_agrees_with_eval(case, at_root):
    """Every charge eval prints is explained with its own amount; every refusal eval gives is given."""
    evaluated = run_cli("eval", "--at", SEED_DAY, _relative(case), "--format", "json")
    explained = run_cli("explain", "--at", SEED_DAY, _relative(case), "--format", "json")
    assert "Traceback" not in explained.err
    if explained.out == "":  # a field or a document eval refuses before pricing: the same messages
        assert (explained.code, explained.err) == (2, evaluated.err)
        return
    data = json.loads(explained.out)
    if evaluated.code == 0:
        assert explained.code == 0
        bill = json.loads(evaluated.out)
        assert data["total"] == bill["total"]
        for mine, theirs in zip(data["items"], bill["items"], strict=True):
            assert mine["subtotal"] == theirs["subtotal"]
            assert [c["amount"] for c in mine["charges"]] == [c["amount"] for c in theirs["charges"]]
            for charge in mine["charges"]:
                assert charge["arithmetic"].endswith(f"= {charge['amount']} USD"), charge["arithmetic"]
                assert int(charge["rule"].rsplit(":", 1)[1]) in [line["line"] for line in charge["source"]]
    else:
        assert explained.code == 2
        assert data["total"] is None
        refusals = [line.strip() for line in evaluated.err.splitlines()[1:]]
        given = []
        for item in data["items"]:
            if item["status"] == "refused":
                label = f"item {item['item']}" + (f" ({item['name']})" if item["name"] else "")
                given.extend(f"{label}{', ' if p.startswith('field ') else ': '}{p}" for p in item["problems"])
                assert item["guards"] or item["problems"]
        assert sorted(given) == sorted(refusals)


def test_the_arithmetic_in_words(rules, at_root):
    data = json.loads(run_cli("explain", "--at", SEED_DAY, "examples/monthly.yaml", "--format", "json").out)
    words = {(item["item"], c["what"]): c["arithmetic"] for item in data["items"] for c in item["charges"]}
    assert words[1, "input_tokens"] == "11000 tokens ÷ 1000 × 0.008 USD = 0.088 USD"
    assert words[5, "model_hours"] == "744 model unit hours × 39.6 USD = 29462.4 USD"
    assert words[4, "text_units (word_filter)"] == "3000 text units: free (the price table says so) = 0 USD"
    assert Decimal(data["total"]) == rules.evaluate_text((ROOT / "examples" / "monthly.yaml").read_text(), "monthly.yaml").total


def test_a_refused_item_names_each_guard_and_each_unmet_condition(at_root):
    data = json.loads(run_cli("explain", "--at", SEED_DAY, "tests/diff/refused.yaml", "--format", "json").out)
    opus, image, embedding, agent = data["items"]
    assert [(g["reason"], g["rule"]) for g in opus["guards"]] == [
        ("Claude 3 Opus is offered only in us-west-2", "bedrock:anthropic.rules:46")
    ]
    assert opus["guards"][0]["source"] == [{"line": 46, "text": "offer claude-3-opus only in us-west-2"}]
    assert [c["unmet"] for c in image["candidates"]] == [
        ["longest_side <= 1024 (longest_side is 2048)"],
        ["longest_side <= 1024 (longest_side is 2048)", "steps > 50 (steps is 30)"],
    ]
    assert [(c["quantity"], c["matches"], c["price"]) for c in embedding["candidates"]] == [
        ("input_tokens", True, "0.0001 USD per 1000"),
        ("output_tokens", True, 'not offered: "not applicable"'),
    ]
    assert agent["status"] == "priced"
    assert agent["charges"][0]["arithmetic"].startswith('no charge: "no extra charge')


RULES_WITH_ROUNDING = """\
currency USD
round each charge to 2 places half_up

region r1 "Region one"
region r2 "Region two"

provider acme "Acme"
  model small "Small"
end

kind text "Text"
  model: model
  region: region
  input_tokens: count = 0 unit tokens
  output_tokens: count = 0 unit tokens
end

prices text in r1
| model | input_tokens per 1000 | output_tokens per 1000 |
|-------|-----------------------|------------------------|
| small | 0.0015                | -                      |
"""


def test_a_rounded_charge_shows_the_exact_amount_and_the_rounding(in_tmp, text_snapshot):
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "acme.rules").write_text(RULES_WITH_ROUNDING, encoding="utf-8")
    (in_tmp / "usage.yaml").write_text(
        "usage:\n"
        "  - {kind: text, model: small, region: r1, input_tokens: 333000}\n"
        "  - {kind: text, model: small, region: r2, input_tokens: 10}\n"
        "  - {kind: text, model: small, region: r1, output_tokens: 10}\n",
        encoding="utf-8",
    )
    run = run_cli("explain", "--at", SEED_DAY, "usage.yaml", "--rules", "rules")
    assert run.code == 2
    assert "333000 tokens ÷ 1000 × 0.0015 USD = 0.4995 USD, rounded to 0.5 USD (2 places, half_up; rules/acme.rules:2)" in run.out
    assert "needs region in r1 (region is r2)" in run.out
    assert run.transcript() == text_snapshot
