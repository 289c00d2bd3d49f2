"""The golden corpus: every usage document in tests/cases/ and what a user sees for it.

A file whose name starts with `refused-` must be refused (exit 2, nothing on stdout);
every other file must be priced (exit 0), and its JSON amounts must add up exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_rules.model import Equals
from bedrock_rules.semantics import conjuncts
from bedrock_rules.usage import read_document
from conftest import ROOT, run_cli

CASES_DIR = ROOT / "tests" / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
PRICED = [p for p in CASES if not p.stem.startswith("refused-")]
REFUSED = [p for p in CASES if p.stem.startswith("refused-")]


@pytest.fixture
def at_root(monkeypatch):
    """Run from the checkout's root, so the paths in messages are the same everywhere."""
    monkeypatch.chdir(ROOT)


# The corpus is the seed's usage: undated items are priced on a day of the seed's prices
# (an item's own `at:` wins, as cases of the later list say).
SEED_DAY = "2024-07-15"


def _eval(case: Path):
    return run_cli("eval", case.relative_to(ROOT).as_posix(), "--format", "json", "--at", SEED_DAY)


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_case(case, at_root, text_snapshot):
    run = _eval(case)
    if case.stem.startswith("refused-"):
        assert run.code == 2, run.transcript()
        assert run.out == ""
        assert run.err.startswith("usage refused: ")
    else:
        assert run.code == 0, run.err
        assert run.err == ""
    assert run.transcript() == text_snapshot


@pytest.mark.parametrize("case", PRICED, ids=[p.stem for p in PRICED])
def test_amounts_add_up_exactly(case, at_root):
    bill = json.loads(_eval(case).out, parse_float=Decimal)
    assert bill["currency"] == "USD"
    subtotals = []
    for item in bill["items"]:
        assert item["charges"], f"item {item['item']} has no charge line"
        amounts = [Decimal(c["amount"]) for c in item["charges"]]
        assert sum(amounts, Decimal(0)) == Decimal(item["subtotal"])
        for charge in item["charges"]:
            if charge["rate"] is not None:
                expected = Decimal(charge["quantity"]) * Decimal(charge["rate"]) / Decimal(charge["per"])
                assert Decimal(charge["amount"]) == expected, charge["id"]
        subtotals.append(Decimal(item["subtotal"]))
    assert sum(subtotals, Decimal(0)) == Decimal(bill["total"])
    assert "e" not in bill["total"].lower()


# Coverage of the corpus: what the source names, the corpus prices or refuses.


def _items(cases):
    for case in cases:
        yield from read_document(case.read_text(encoding="utf-8"), case.name)["usage"]


def _seen(rules, cases, field):
    seen = {item[field] for item in _items(cases) if field in item}
    return {rules.program.aliases.get(v, v) for v in seen} if field == "model" else seen


def test_priced_cases_cover_every_kind_region_and_model(rules):
    assert _seen(rules, PRICED, "kind") == set(rules.kinds)
    assert _seen(rules, PRICED, "region") == set(rules.program.regions)
    # Every model some rule gives a rate (a model declared only to be refused with a reason has none).
    program = rules.program
    priced = {name for by_model in program.by_model.values() for name, rs in by_model.items() if any(r.rate for r in rs)}
    for unindexed in program.unindexed.values():  # `prices … when model = x` tables
        for rule in unindexed:
            if rule.rate:
                priced |= {c.value.text for c in conjuncts(rule.conditions) if isinstance(c, Equals) and c.field == "model"}
    assert _seen(rules, PRICED, "model") == priced
    assert _seen(rules, PRICED, "mode") == {"on_demand", "batch"}
    assert _seen(rules, PRICED, "commitment") == {"none", "1_month", "6_months"}
    assert _seen(rules, PRICED, "custom") == {True, False}
    assert _seen(rules, PRICED, "quality") == {"standard"}


def test_priced_cases_use_every_price_rule_with_a_rate(rules, at_root):
    cited = set()
    for case in PRICED:
        bill = json.loads(_eval(case).out)
        cited |= {charge["id"] for item in bill["items"] for charge in item["charges"]}
    # Every row of rates is used by some case (a row's cells share its line).
    where = {rule.id: rule.where for rule in rules.program.rules}
    rated = {rule.where for rule in rules.program.rules if rule.refusal is None}
    cited = {where[rule_id] for rule_id in cited if rule_id in where}
    assert rated - cited == set()


def test_refused_cases_reach_every_offer_refuse_require_and_refusal_cell(rules, at_root):
    errors = "".join(_eval(case).err for case in REFUSED)
    compiled = rules.program
    guards = {g.span.where for guards in compiled.guards.values() for g in guards}
    cells = {rule.where for rule in compiled.rules if rule.refusal is not None}
    assert guards and cells
    assert {where for where in guards | cells if f"({where})" not in errors} == set()


@pytest.mark.parametrize(
    ("width", "height", "steps", "tier"),
    [(512, 512, 50, "0.018"), (512, 512, 51, "0.036"), (513, 512, 50, "0.036"), (512, 513, 51, "0.072")],
)
def test_sdxl_08_boundaries(rules, width, height, steps, tier):
    item = {"kind": "image", "model": "sdxl-0.8", "region": "us-east-1", "width": width, "height": height, "steps": steps}
    assert rules.evaluate({"usage": [item]}, at=SEED_DAY).total == Decimal(tier)


@pytest.mark.parametrize(("characters", "units"), [(1, 1), (1000, 1), (1001, 2), (5600, 6), (6000, 6), (6001, 7)])
def test_guardrail_text_units_per_text(rules, characters, units):
    item = {"kind": "guardrail", "region": "us-east-1", "policies": ["denied_topic"], "texts": [{"characters": characters}]}
    (charge,) = rules.evaluate({"usage": [item]}, at=SEED_DAY).items[0].charges
    assert charge.quantity == units
