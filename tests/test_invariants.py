"""Properties every bill of the shipped ruleset keeps, over generated usage documents.

Items are generated from the ruleset's own kinds, models and regions: every text and
embedding model in every region the rules price it in, and every item of the worked
examples and of the golden corpus that prices on its own; hypothesis then varies their
quantities (up to 10^30) and their mode, names them, and puts several in one document.

Which charges are linear: every charge of the shipped rules is quantity x rate / per
(no rule file asks for rounding), so each is linear in its quantity. A derived quantity
is not always linear in its inputs (`ceil(characters / 1000) * count`, `model_units *
hours`); doubling doubles it when exactly one factor of each product is doubled, and a
guardrail's text count rather than its characters. DOUBLED says which fields, per kind.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bedrock_rules
from bedrock_rules import examples
from bedrock_rules.bill import dump
from bedrock_rules.errors import UsageError
from bedrock_rules.semantics import EXACT, fields_of
from conftest import ROOT, SEED_DAY

RULES = bedrock_rules.load()
COMPILED = RULES.program

# Per kind, the count fields that doubling doubles; each charge of the kind doubles with them.
DOUBLED = {
    "text": ("input_tokens", "output_tokens"),
    "embedding": ("input_tokens",),
    "image": ("images",),
    "provisioned": ("hours",),  # model_hours = model_units * hours
    "training": ("tokens", "steps"),  # tokens_trained = tokens * epochs, images_seen = steps * batch_size
    "storage": ("months",),  # model_months = months * custom_models
    "human_evaluation": ("tasks", "prompts"),  # human_tasks = tasks + prompts * workers_per_prompt
    "guardrail": (  # text_units = sum(ceil(characters / 1000) * count for each texts); or AWS's units
        "texts[].count", "content_policy_units", "topic_policy_units", "word_policy_units",
        "sensitive_information_policy_units", "sensitive_information_policy_free_units",
    ),
    "agent": (),
    "knowledge_base": (),
    "custom_import": ("copies",),  # cmu_minutes = copies * cmus_per_copy * ceil(minutes / 5) * 5
    "custom_import_storage": ("months",),  # cmu_months = cmus * months
}
MODES = ("on_demand", "batch")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exactly():
    """The engine's context for the test's own arithmetic: Python's default rounds past 28 digits."""
    return decimal.localcontext(EXACT)


def _prices(item: dict) -> bool:
    try:
        RULES.evaluate({"usage": [item]}, at=SEED_DAY)
    except UsageError:
        return False
    return True


def _read(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _templates() -> list[dict]:
    """Items that price on their own, from the rules' kinds, models and regions, examples and corpus."""
    found = []
    for kind in ("text", "embedding"):
        for model in sorted(COMPILED.by_model.get(kind, {})):
            for region in COMPILED.regions:
                tokens = {"input_tokens": 1000, **({"output_tokens": 1000} if kind == "text" else {})}
                found.append({"kind": kind, "model": model, "region": region, **tokens})
    for example in COMPILED.examples:
        found.extend(examples.document(example)["usage"])
    for path in sorted((ROOT / "tests" / "cases").glob("*.*")):
        found.extend(_read(path)["usage"])
    for item in found:  # defaults written out, so that doubling doubles them too (`images` is 1 when absent)
        fields = COMPILED.kinds[item["kind"]].field_map
        for name in DOUBLED[item["kind"]]:
            if name in fields and name not in item and fields[name].has_default:
                item[name] = fields[name].default
    # The invariants below are the seed's (its items priced at SEED_DAY): an item dated by its
    # example or case belongs to the later list, where batch is half the on-demand price.
    found = [item for item in found if "at" not in item]
    unique = {json.dumps(item, sort_keys=True, default=str): item for item in found}
    return [
        {k: v for k, v in item.items() if k != "name"}
        for item in unique.values()
        if isinstance(item, dict) and _prices(item) and _prices(_scaled(item, lambda v: v * 10**24))
    ]


def _scaled(item: dict, change) -> dict:
    """The item with every DOUBLED field it holds replaced by change(value)."""
    new = copy.deepcopy(item)
    for field in DOUBLED[item["kind"]]:
        if field == "texts[].count":
            for text in new.get("texts", []):
                text["count"] = change(text.get("count", 1))
        elif field in new:
            new[field] = change(new[field])
    return new


TEMPLATES = _templates()


@st.composite
def items(draw) -> dict:
    """A template with new counts; a count that is 0 stays 0 (`tasks = 0 or prompts = 0` is a rule)."""
    item = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    counts = st.one_of(st.integers(0, 10**6), st.integers(0, 10**30))
    for field in DOUBLED[item["kind"]]:
        if field == "texts[].count":
            for text in item.get("texts", []):
                text["count"] = draw(counts) if text.get("count", 1) else 0
        elif item.get(field):
            item[field] = draw(counts)
    if "mode" in {f.name for f in COMPILED.kinds[item["kind"]].fields}:
        item["mode"] = draw(st.sampled_from(MODES))
    return item


@st.composite
def documents(draw) -> dict:
    usage = draw(st.lists(items(), min_size=1, max_size=8))
    for number, item in enumerate(usage, 1):
        item["name"] = f"n{number}"
    return {"usage": usage}


def _amounts(bill) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
    return {item.name: [(c.rule_id, c.quantity, c.amount) for c in item.charges] for item in bill.items}


# Kinds the seed's page did not price: no item of theirs prices at SEED_DAY.
NOT_IN_THE_SEED = {"custom_import", "custom_import_storage"}  # priced from 2025-07-20


def test_the_templates_cover_every_kind_and_many_models():
    assert {t["kind"] for t in TEMPLATES} == set(COMPILED.kinds) - NOT_IN_THE_SEED
    assert set(COMPILED.kinds) == set(DOUBLED)
    for example in COMPILED.examples:  # the examples of those kinds are dated after the seed's day
        for item in examples.document(example)["usage"]:
            if item["kind"] in NOT_IN_THE_SEED:
                assert not _prices({k: v for k, v in item.items() if k != "at"}), item
    assert len({t.get("model") for t in TEMPLATES}) > 40
    assert {t.get("region") for t in TEMPLATES} - {None} == set(COMPILED.regions)


def test_every_charge_is_quantity_times_rate_per_unit():
    """What makes the charges linear: no rounding, and amount = quantity x rate / per."""
    assert COMPILED.rounding == ()
    bill = RULES.evaluate({"usage": TEMPLATES}, at=SEED_DAY)
    for item in bill.items:
        for charge in item.charges:
            rate = charge.rate if charge.rate is not None else 0
            with exactly():
                assert charge.amount == Decimal(charge.quantity) * rate / charge.per, charge


@SETTINGS
@given(documents())
def test_a_document_costs_the_sum_of_its_items(document):
    bill = RULES.evaluate(document, at=SEED_DAY)
    alone = [RULES.evaluate({"usage": [item]}, at=SEED_DAY) for item in document["usage"]]
    with exactly():
        assert bill.total == sum((b.total for b in alone), Decimal(0))
    assert [i.subtotal for i in bill.items] == [b.total for b in alone]
    assert _amounts(bill) == {k: v for b in alone for k, v in _amounts(b).items()}


@SETTINGS
@given(documents(), st.randoms(use_true_random=False))
def test_the_order_of_items_changes_no_amount(document, random):
    shuffled = {"usage": list(document["usage"])}
    random.shuffle(shuffled["usage"])
    bill, again = RULES.evaluate(document, at=SEED_DAY), RULES.evaluate(shuffled, at=SEED_DAY)
    assert bill.total == again.total
    assert _amounts(bill) == _amounts(again)


def test_no_rule_of_the_seed_reads_the_mode():
    """So batch costs what on-demand costs on the seed's days, for every kind with a mode
    (the later list prices batch at half, from the page of 2025-07-20)."""
    day = datetime.date.fromisoformat(SEED_DAY)
    with_mode = {name for name, kind in COMPILED.kinds.items() if "mode" in {f.name for f in kind.fields}}
    assert with_mode == {"text", "embedding", "image"}
    read = set()
    for rule in COMPILED.rules:
        if rule.window is None or rule.window.contains(day):
            for condition in rule.conditions:
                read |= fields_of(condition)
    for relatives in COMPILED.relatives.values():
        for relative in relatives:
            if relative.window is None or relative.window.contains(day):
                read |= {relative.field} if relative.field else set()
    for frees in COMPILED.frees.values():
        for free in frees:
            for condition in free.conditions:
                read |= fields_of(condition)
    # Guards are left out: the later list refuses batch for models the seed does not know
    # (sold after the seed's days); that the seed's items bill batch as on-demand is
    # test_batch_costs_what_on_demand_costs.
    assert "mode" not in read


@SETTINGS
@given(documents())
def test_batch_costs_what_on_demand_costs(document):
    def with_mode(mode):
        return {"usage": [{**i, "mode": mode} if "mode" in i else i for i in document["usage"]]}

    batch, on_demand = RULES.evaluate(with_mode("batch"), at=SEED_DAY), RULES.evaluate(with_mode("on_demand"), at=SEED_DAY)
    assert sum("mode" in i for i in document["usage"]) == 0 or batch.items
    assert dump(batch) == dump(on_demand)


@SETTINGS
@given(documents())
def test_doubling_every_count_doubles_every_charge(document):
    bill = RULES.evaluate(document, at=SEED_DAY)
    doubled = RULES.evaluate({"usage": [_scaled(i, lambda v: 2 * v) for i in document["usage"]]}, at=SEED_DAY)
    with exactly():
        assert doubled.total == 2 * bill.total
    for item, twice in zip(bill.items, doubled.items, strict=True):
        assert [c.rule_id for c in twice.charges] == [c.rule_id for c in item.charges]
        for charge, charge_twice in zip(item.charges, twice.charges, strict=True):
            with exactly():
                assert charge_twice.amount == 2 * charge.amount
            if charge.rate is not None:  # a free line counts the item once, whatever its size
                assert charge_twice.quantity == 2 * charge.quantity


@SETTINGS
@given(documents())
def test_the_json_amounts_add_up_exactly(document):
    data = json.loads(dump(RULES.evaluate(document, at=SEED_DAY)), parse_float=Decimal)
    with exactly():
        _adds_up(data)


def _adds_up(data):
    for item in data["items"]:
        assert sum((Decimal(c["amount"]) for c in item["charges"]), Decimal(0)) == Decimal(item["subtotal"])
    assert sum((Decimal(i["subtotal"]) for i in data["items"]), Decimal(0)) == Decimal(data["total"])


@SETTINGS
@given(documents())
def test_the_same_document_gives_the_same_bytes(document):
    text = json.dumps(document)
    assert dump(RULES.evaluate_text(text, "a.json", at=SEED_DAY)) == dump(RULES.evaluate_text(text, "a.json", at=SEED_DAY))
    assert dump(RULES.evaluate(document, at=SEED_DAY)) == dump(RULES.evaluate(json.loads(text), at=SEED_DAY))


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_the_cli_prints_the_same_bytes_twice(fmt, in_tmp):
    (in_tmp / "usage.json").write_text(json.dumps({"usage": TEMPLATES[:50]}), encoding="utf-8")
    from conftest import run_cli

    first = run_cli("eval", "--at", SEED_DAY, "usage.json", "--format", fmt)
    second = run_cli("eval", "--at", SEED_DAY, "usage.json", "--format", fmt)
    assert first.code == 0 and first == second
