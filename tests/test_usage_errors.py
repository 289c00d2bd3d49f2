"""Bad usage documents: every problem at once, naming the item and the field; exit 2, no bill."""

from __future__ import annotations

import re

import pytest
import yaml

import bedrock_rules
from conftest import ROOT, SEED_DAY, run_cli

TEXT_ITEM = "  - kind: text\n    model: claude-2.1\n    region: us-east-1\n"

# Each case: the file name (its extension chooses JSON or YAML) and the document's text.
CASES = {
    "counts-refuse-decimals-text-flags-and-negatives": (
        "usage.yaml",
        "usage:\n"
        f"{TEXT_ITEM}    input_tokens: 12.5\n    output_tokens: abc\n"
        f"{TEXT_ITEM}    input_tokens: true\n    output_tokens: -1\n",
    ),
    "counts-refuse-quoted-numbers-and-exponents": (
        "usage.json",
        '{"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": "1000", "output_tokens": 1e3}]}',
    ),
    "unknown-fields-with-did-you-mean": (
        "usage.yaml",
        f"usage:\n{TEXT_ITEM}    input_tokns: 5\n    colour: red\n",
    ),
    "unknown-missing-and-misspelled-kinds": (
        "usage.yaml",
        "usage:\n  - kind: txt\n  - kind: spreadsheet\n  - model: claude-2.1\n  - kind: 5\n",
    ),
    "missing-required-fields": (
        "usage.yaml",
        "usage:\n  - name: reserved\n    kind: provisioned\n    model: claude-2.1\n",
    ),
    "unknown-model-and-region-values": (
        "usage.yaml",
        "usage:\n  - kind: text\n    model: claude-2.2\n    region: us-east1\n  - kind: text\n    model: [claude-2.1]\n    region: 5\n",
    ),
    "choices-and-flags": (
        "usage.yaml",
        f"usage:\n{TEXT_ITEM}    mode: streaming\n"
        "  - kind: provisioned\n    model: claude-2.1\n    region: us-east-1\n    model_units: 1\n"
        "    commitment: 1month\n    hours: 1\n    custom: 'yes'\n",
    ),
    "guardrail-lists-and-records-of-the-wrong-shape": (
        "usage.yaml",
        "usage:\n"
        "  - kind: guardrail\n    region: us-east-1\n    policies: content_filter\n    texts: {characters: 5}\n"
        "  - kind: guardrail\n    region: us-east-1\n    policies: [content_filtr]\n    texts: [5]\n"
        "  - kind: guardrail\n    region: us-east-1\n    policies: [pii_filter]\n    texts: [{characters: 5, colour: 1}]\n"
        "  - kind: guardrail\n    region: us-east-1\n    policies: [pii_filter]\n    texts: [{count: 3}]\n"
        "  - kind: guardrail\n    region: us-east-1\n    policies: [pii_filter]\n    texts: [{characters: 10}, {characters: 1.5}]\n",
    ),
    "items-that-are-not-mappings-and-names-that-are-not-text": (
        "usage.yaml",
        "usage:\n  - 5\n  - [kind, agent]\n  - kind: agent\n    name: 7\n",
    ),
    "document-is-a-list-not-a-mapping": ("usage.yaml", "- kind: agent\n"),
    "document-is-empty": ("usage.yaml", ""),
    "document-without-usage-list": ("usage.yaml", "items:\n  - kind: agent\n"),
    "usage-is-not-a-list": ("usage.json", '{"usage": {"kind": "agent"}}'),
    "unknown-top-level-key": ("usage.yaml", "usage:\n  - kind: agent\ncurrency: EUR\n"),
    "invalid-json-with-line-and-column": ("usage.json", '{"usage": [\n  {"kind": "agent",}\n]}\n'),
    "invalid-yaml-with-line-and-column": ("usage.yaml", "usage:\n  - kind: agent\n   region: us-east-1\n"),
    "yaml-tab-indentation": ("usage.yaml", "usage:\n\t- kind: agent\n"),
    "json-duplicate-keys": ("usage.json", '{"usage": [{"kind": "agent", "kind": "knowledge_base"}]}'),
    "yaml-duplicate-keys": ("usage.yaml", "usage:\n  - kind: agent\n    kind: knowledge_base\n"),
    "json-nan-refused": (
        "usage.json",
        '{"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": NaN}]}',
    ),
    "json-infinity-refused": (
        "usage.json",
        '{"usage": [{"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": -Infinity}]}',
    ),
    "yaml-nan-and-infinity-refused": ("usage.yaml", f"usage:\n{TEXT_ITEM}    input_tokens: .nan\n    output_tokens: .inf\n"),
    "several-problems-in-one-document": (
        "usage.yaml",
        "usage:\n"
        "  - name: opus east\n    kind: text\n    model: claude-3-opus\n    region: us-east-1\n"
        "  - name: half a token\n    kind: text\n    model: claude-2.1\n    region: us-east-1\n    input_tokens: 12.5\n"
        "  - name: typo\n    kind: image\n    modle: sdxl-1.0\n    region: us-east-1\n    width: 1\n    height: 1\n"
        "  - name: fine\n    kind: agent\n"
        "  - name: not a kind\n    kind: spreadsheet\n",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_usage_error(name, in_tmp, text_snapshot):
    filename, text = CASES[name]
    (in_tmp / filename).write_text(text, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, filename)
    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith("usage refused: ")
    assert "Traceback" not in run.err
    assert run.transcript() == text_snapshot
    # The messages do not depend on the format asked for, and JSON prints nothing either.
    assert run_cli("eval", "--at", SEED_DAY, filename, "--format", "json") == run


def _refusal(filename: str, text: str, tmp) -> list[str]:
    (tmp / filename).write_text(text, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, filename)
    assert (run.code, run.out) == (2, "")
    return run.err.splitlines()


def test_counts_are_whole_numbers_at_least_zero(in_tmp):
    _, text = CASES["counts-refuse-decimals-text-flags-and-negatives"]
    assert _refusal("usage.yaml", text, in_tmp) == [
        "usage refused: 4 problems, nothing was priced",
        "  item 1, field input_tokens: error[BU106]: expected a whole number ≥ 0, got 12.5",
        '  item 1, field output_tokens: error[BU106]: expected a whole number ≥ 0, got "abc"',
        "  item 2, field input_tokens: error[BU106]: expected a whole number ≥ 0, got true",
        "  item 2, field output_tokens: error[BU106]: expected a whole number ≥ 0, got -1",
    ]


def test_every_problem_is_reported_at_once_in_item_order(in_tmp):
    _, text = CASES["several-problems-in-one-document"]
    lines = _refusal("usage.yaml", text, in_tmp)
    assert lines[0] == "usage refused: 5 problems, nothing was priced"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  item 1 (opus east)",
        "  item 2 (half a token), field input_tokens",
        "  item 3 (typo), field modle",
        "  item 3 (typo), field model",
        "  item 5 (not a kind), field kind",
    ]
    assert lines[3] == "  item 3 (typo), field modle: error[BU104]: unknown field (did you mean 'model'?)"


def test_invalid_yaml_names_line_and_column(in_tmp):
    _, text = CASES["invalid-yaml-with-line-and-column"]
    (problem,) = _refusal("usage.yaml", text, in_tmp)[1:]
    assert problem.startswith("  usage.yaml: error[BU002]: not valid YAML: ")
    assert problem.endswith(" at line 3, column 4")


def test_invalid_json_names_line_and_column(in_tmp):
    _, text = CASES["invalid-json-with-line-and-column"]
    assert _refusal("usage.json", text, in_tmp)[1] == (
        "  usage.json: error[BU002]: not valid JSON: a comma before the closing '}' at line 2, column 19"
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"usage": [{"kind": "agent"} ,\n ]}', "a comma before the closing ']' at line 1, column 30"),
        ('{"usage": [],}', "a comma before the closing '}' at line 1, column 13"),
        ('{"usage": [,]}', "a comma before the closing ']' at line 1, column 12"),
        ("{'usage': []}", "Expecting property name enclosed in double quotes at line 1, column 2"),
    ],
)
def test_json_errors_read_the_same_on_every_python(text, said, in_tmp):
    """Python 3.13 words a trailing comma differently from 3.10-3.12; the refusal does not change."""
    assert _refusal("usage.json", text, in_tmp)[1] == f"  usage.json: error[BU002]: not valid JSON: {said}"


def test_json_duplicate_keys_and_nan(in_tmp):
    assert _refusal("usage.json", CASES["json-duplicate-keys"][1], in_tmp)[1] == (
        "  usage.json: error[BU002]: not valid JSON: the key 'kind' appears twice in one object"
    )
    assert _refusal("usage.json", CASES["json-nan-refused"][1], in_tmp)[1] == (
        "  usage.json: error[BU002]: not valid JSON: NaN is not a number a usage can hold"
    )


def test_a_refused_item_refuses_the_whole_document(in_tmp):
    text = f"usage:\n{TEXT_ITEM}    input_tokens: 1000\n  - kind: agent\n    colour: blue\n"
    assert _refusal("usage.yaml", text, in_tmp) == [
        "usage refused: 1 problem, nothing was priced",
        "  item 2, field colour: error[BU104]: unknown field (fields: region)",
    ]


def test_problems_of_several_documents_name_their_document(in_tmp):
    (in_tmp / "a.yaml").write_text("usage:\n  - kind: agent\n    colour: blue\n", encoding="utf-8")
    (in_tmp / "b.json").write_text('{"usage": [{"kind": "agent"}], "extra": 1}', encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "a.yaml", "b.json")
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines() == [
        "usage refused: 2 problems, nothing was priced",
        "  a.yaml, item 1, field colour: error[BU104]: unknown field (fields: region)",
        '  b.json: error[BU101]: unknown top-level key "extra"; a usage document holds `usage`',
    ]


def test_yaml_numbers_are_read_as_json_would_read_them(rules):
    """YAML 1.1 reads `1:30` as 90, `0x10` as 16, `010` as 8 and `1_000` as 1000: no guessing here."""
    text = (
        "usage:\n"
        "  - {kind: provisioned, model: command, region: us-east-1, model_units: 1, commitment: 1_month, hours: 1:30}\n"
        "  - {kind: text, model: command, region: us-east-1, input_tokens: 0x10, output_tokens: 1_000}\n"
    )
    with pytest.raises(bedrock_rules.UsageError) as caught:
        rules.evaluate_text(text, "odd.yaml", at=SEED_DAY)
    assert [p.render() for p in caught.value.problems] == [
        'odd.yaml, item 1, field hours: error[BU106]: expected a whole number ≥ 0, got "1:30"',
        'odd.yaml, item 2, field input_tokens: error[BU106]: expected a whole number ≥ 0, got "0x10"',
        'odd.yaml, item 2, field output_tokens: error[BU106]: expected a whole number ≥ 0, got "1_000"',
    ]
    bill = rules.evaluate_text("usage:\n  - {kind: text, model: command, region: us-east-1, input_tokens: 010}\n", "ten.yaml", at=SEED_DAY)
    assert bill.items[0].charges[0].quantity == 10


# docs/errors.md: every usage code, with a wrong and a fixed document that really do what it says.

ERRORS_MD = ROOT / "docs" / "errors.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def _usage_docs() -> tuple[str, str, dict[str, list[tuple[str, str]]]]:
    """The rules the snippets are priced by, the intro's example output, and each code's blocks."""
    text = ERRORS_MD.read_text(encoding="utf-8")
    rule_codes, _, usage_codes = text.partition("\n## Usage documents")
    prelude = next(body for lang, body in _BLOCK.findall(rule_codes.split("\n## ", 1)[0]) if lang == "rules")
    intro, *parts = re.split(r"^### (BU\d+)", usage_codes, flags=re.M)
    table = next(body for lang, body in _BLOCK.findall(intro) if lang == "rules")
    example = next(body for lang, body in _BLOCK.findall(intro) if lang == "text")
    sections = {code: _BLOCK.findall(body) for code, body in zip(parts[0::2], parts[1::2], strict=True)}
    return prelude + "\n" + table, example, sections


@pytest.fixture
def doc_rules(in_tmp):
    (in_tmp / "prelude.rules").write_text(_usage_docs()[0], encoding="utf-8")
    return bedrock_rules.load("prelude.rules")


def test_every_usage_code_the_engine_gives_is_documented_and_every_documented_one_given():
    given = set()
    for path in (ROOT / "bedrock_rules").rglob("*.py"):
        given |= set(re.findall(r'"(BU\d{3})"', path.read_text(encoding="utf-8")))
    assert given == set(_usage_docs()[2])


@pytest.mark.parametrize("code", [c for c, blocks in _usage_docs()[2].items() if any(lang == "yaml" for lang, _ in blocks)])
def test_the_documented_usage_snippets_do_what_they_say(code, doc_rules):
    wrong, fixed = (body for lang, body in _usage_docs()[2][code] if lang == "yaml")
    with pytest.raises(bedrock_rules.UsageError) as caught:
        doc_rules.evaluate_text(wrong, "usage.yaml", at=SEED_DAY)
    assert code in {p.code for p in caught.value.problems}, caught.value.render()
    assert doc_rules.evaluate_text(fixed, "usage.yaml", at=SEED_DAY).total > 0


def test_the_documented_refusal_is_what_the_engine_prints(doc_rules):
    wrong = next(body for lang, body in _usage_docs()[2]["BU106"] if lang == "yaml")
    with pytest.raises(bedrock_rules.UsageError) as caught:
        doc_rules.evaluate(yaml.safe_load(wrong), at=SEED_DAY)
    assert caught.value.render() + "\n" == _usage_docs()[1]
