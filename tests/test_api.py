"""The Python API: load once, evaluate many; frozen bills; typed errors that carry their places."""

from __future__ import annotations

import importlib.resources
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import attrs
import pytest

import bedrock_rules
from bedrock_rules import BedrockRulesError, Bill, Problem, RuleFileError, UsageError
from conftest import SEED_DAY

TEXT = {"kind": "text", "model": "claude-2.1", "region": "us-west-2", "input_tokens": 11000, "output_tokens": 4000}


def _documents() -> list[dict]:
    """Many small documents, each priced differently."""
    docs = []
    for n in range(1, 41):
        docs.append({"usage": [
            {**TEXT, "input_tokens": 1000 * n},
            {"kind": "image", "model": "sdxl-0.8", "region": "us-east-1", "width": 500 + n, "height": 512, "steps": 40 + n},
            {"kind": "guardrail", "region": "eu-west-3", "policies": ["pii_filter", "word_filter"], "texts": [{"characters": 250 * n}]},
            {"kind": "provisioned", "model": "command", "region": "us-east-1", "model_units": 1, "commitment": "none", "hours": n},
        ]})
    return docs


def test_load_once_evaluate_many(rules):
    first = rules.evaluate({"usage": [TEXT]}, at=SEED_DAY)
    assert first.total == Decimal("0.184")
    assert isinstance(first.total, Decimal)
    assert rules.evaluate({"usage": [{**TEXT, "input_tokens": 0}]}, at=SEED_DAY).total == Decimal("0.096")
    assert rules.evaluate({"usage": [TEXT]}, at=SEED_DAY) == first
    assert rules.currency == "USD"
    assert "guardrail" in rules.kinds


def test_the_same_rules_loaded_again_share_their_program_and_an_edit_is_compiled_anew(tmp_path):
    """Loading rules compiled before in the process (a command run many times) reuses their
    program; a file changed by one character is compiled again and prices with the change."""
    folder = tmp_path / "rules"
    folder.mkdir()
    text = (
        "currency USD\nregion r1 \"Region one\"\nkind call \"Calls\"\n  region: region\n  calls: count = 0\nend\n"
        "prices call in r1\n| calls per 1 |\n|-------------|\n| 0.25        |\n"
    )
    (folder / "main.rules").write_text(text, encoding="utf-8")
    first, again = bedrock_rules.load(folder), bedrock_rules.load(folder)
    assert again.program is first.program
    (folder / "main.rules").write_text(text.replace("0.25 ", "0.35 "), encoding="utf-8")
    changed = bedrock_rules.load(folder)
    assert changed.program is not first.program
    document = {"usage": [{"kind": "call", "region": "r1", "calls": 4}]}
    assert [str(rules.evaluate(document).total) for rules in (first, changed)] == ["1.00", "1.40"]


def test_dump_is_the_json_the_cli_prints(rules):
    bill = rules.evaluate({"usage": [TEXT]}, at=SEED_DAY)
    assert bedrock_rules.dump(bill).startswith('{\n  "schema": "bedrock-rules/bill/2",\n  "currency": "USD",\n  "total": "0.184",\n')


def test_bills_are_frozen(rules):
    bill = rules.evaluate({"usage": [TEXT]}, at=SEED_DAY)
    item = bill.items[0]
    charge = item.charges[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bill.total = Decimal(0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.subtotal = Decimal(0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        charge.amount = Decimal(0)
    assert isinstance(bill.items, tuple)
    assert isinstance(item.charges, tuple)
    assert hash(bill) == hash(rules.evaluate({"usage": [TEXT]}, at=SEED_DAY))


def test_a_charge_says_what_priced_it(rules):
    (charge, _) = rules.evaluate({"usage": [TEXT]}, at=SEED_DAY).items[0].charges
    assert (charge.what, charge.quantity, charge.unit) == ("input_tokens", 11000, "tokens")
    assert (charge.rate, charge.per, charge.amount) == (Decimal("0.008"), Decimal(1000), Decimal("0.088"))
    assert charge.rule == "bedrock:anthropic.rules:77"


def test_usage_error_problems_name_item_and_field(rules):
    document = {"usage": [
        {**TEXT, "name": "half", "input_tokens": Decimal("12.5")},
        {"kind": "text", "model": "claude-3-opus", "region": "us-east-1"},
        {"kind": "agent", "colour": "blue"},
    ]}
    with pytest.raises(UsageError) as caught:
        rules.evaluate(document, at=SEED_DAY)
    assert caught.value.problems == (
        Problem("expected a whole number ≥ 0, got 12.5", item=1, item_name="half", field="input_tokens", code="BU106"),
        Problem("Claude 3 Opus is offered only in us-west-2 (bedrock:anthropic.rules:46)", item=2, code="BU201"),
        Problem("unknown field (fields: region)", item=3, field="colour", code="BU104"),
    )
    assert isinstance(caught.value, BedrockRulesError)
    assert str(caught.value).startswith(
        "usage refused: 3 problems, nothing was priced\n  item 1 (half), field input_tokens: error[BU106]: "
    )


def test_usage_error_for_a_document_of_the_wrong_shape(rules):
    with pytest.raises(UsageError) as caught:
        rules.evaluate({"items": []}, source="doc.yaml", at=SEED_DAY)
    assert [(p.source, p.item, p.field) for p in caught.value.problems] == [("doc.yaml", None, None), ("doc.yaml", None, None)]


def test_evaluate_text_reads_yaml_exactly(rules):
    bill = rules.evaluate_text("usage:\n  - kind: human_evaluation\n    tasks: 3\n", at=SEED_DAY)
    assert bill.total == Decimal("0.63")
    with pytest.raises(UsageError) as caught:
        rules.evaluate_text('{"usage": [{"kind": "human_evaluation", "tasks": 0.1}]}', source="x.json", at=SEED_DAY)
    assert caught.value.problems[0].field == "tasks"


def test_evaluate_items_takes_any_iterable(rules):
    generated = ({**TEXT, "input_tokens": 1000 * n, "output_tokens": 0} for n in range(1, 4))
    bill = rules.evaluate_items(generated, at=SEED_DAY)
    assert [item.index for item in bill.items] == [1, 2, 3]
    assert bill.total == Decimal("0.048")
    assert rules.evaluate_items(iter(()), at=SEED_DAY) == Bill("USD", (), Decimal(0))


def test_one_ruleset_from_eight_threads_gives_the_same_bills(rules):
    documents = _documents()
    alone = [rules.evaluate(doc, at=SEED_DAY) for doc in documents]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda doc: rules.evaluate(doc, at=SEED_DAY), documents * 4))
    assert together == alone * 4
    assert [bedrock_rules.dump(b) for b in together] == [bedrock_rules.dump(b) for b in alone * 4]


def test_refusals_from_eight_threads_are_the_same(rules):
    bad = {"usage": [{"kind": "text", "model": "claude-3-opus", "region": "us-east-1"}, {"kind": "agent", "x": 1}]}

    def problems(_):
        with pytest.raises(UsageError) as caught:
            rules.evaluate(bad, at=SEED_DAY)
        return caught.value.problems

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(problems, range(32)))
    assert len({r for r in results}) == 1


BROKEN = """\
currency USD
region home
kind text
  model: model
  region: regoin
end
provider acme
  model widget
  model widget
end
"""


def test_rule_file_error_carries_code_and_span(tmp_path):
    (tmp_path / "broken.rules").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load(tmp_path)
    found = [(d.code, d.span.line, d.span.column) for d in caught.value.diagnostics]
    assert ("BR200", 5, 11) in found
    assert ("BR201", 9, 3) in found
    first = caught.value.diagnostics[0]
    assert first.span.path.endswith("broken.rules")
    assert isinstance(caught.value, BedrockRulesError)
    assert str(caught.value) == caught.value.render()


def test_rule_file_syntax_error_carries_its_place(tmp_path):
    (tmp_path / "bad.rules").write_text("currency USD\nregion us-east-1 \"a\" extra\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load(tmp_path / "bad.rules")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "BR100"
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 22)


def test_load_of_a_missing_folder(tmp_path):
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load(tmp_path / "nowhere")
    assert [d.code for d in caught.value.diagnostics] == ["BR001"]


def test_py_typed_ships():
    marker = importlib.resources.files("bedrock_rules") / "py.typed"
    assert marker.is_file()


def test_public_names():
    assert set(bedrock_rules.__all__) >= {"load", "Ruleset", "Bill", "ItemBill", "Charge", "dump", "UsageError", "RuleFileError"}


def test_checked_usage_values_are_plain_text_not_the_rules_names(rules):
    """Names in the rules carry their spans; the values a usage gets from them are plain str,
    which the pricer's fast paths rely on (they check `type(v) is str`)."""
    (item,), problems = rules.check_items([{"kind": "text", "model": "anthropic.claude-v2:1", "region": "us-east-1"}])
    assert problems == []
    assert {name: type(value) for name, value in item.values.items() if isinstance(value, str)} == {
        "model": str, "region": str, "provider": str, "mode": str, "scope": str, "service_tier": str, "latency": str,
    }
