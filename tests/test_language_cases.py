"""The language suite: every case in tests/language/*.yaml, run through the public API alone.

A case is data, the way OPA and HCL test their languages: a small rule text (one or more
files), then either the rule-file errors loading it gives, or usage documents with the
bill or the refusal each gets. A new construct of the language is a new file. The format
is described in tests/language/README.md.

The cases use only `bedrock_rules.load`, `Ruleset.evaluate`, `dump`, and the errors'
`.diagnostics` and `.problems`, so they hold whatever the modules behind them become.
The coverage tests below read the grammar with lark itself (the engine's parser is not
public) to check that every rule of the grammar is exercised by some case.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from lark import Lark, Token, Tree
from lark.exceptions import LarkError

import bedrock_rules

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "language"
GRAMMAR = ROOT / "grammar" / "rules.lark"
CASE_FILES = sorted(CASES.glob("*.yaml"))
CASE_KEYS = {"covers", "rules", "overlays", "errors", "usages", "xfail"}
USAGE_KEYS = {"usage", "total", "charges", "periods", "bill", "refused"}


class CaseLoader(yaml.SafeLoader):
    """YAML with its non-whole numbers read as exact decimals, as usage documents are read."""


CaseLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node).replace("_", ""))
)


def read_case(path: Path) -> dict[str, Any]:
    case = yaml.load(path.read_text(encoding="utf-8"), Loader=CaseLoader)  # noqa: S506 (a safe loader)
    assert isinstance(case, dict), f"{path.name}: a case is a mapping"
    assert set(case) <= CASE_KEYS, f"{path.name}: unknown keys {sorted(set(case) - CASE_KEYS)}"
    assert isinstance(case.get("rules"), dict), f"{path.name}: `rules` maps file names to rule text"
    assert ("errors" in case) != ("usages" in case), f"{path.name}: a case expects `errors` or `usages`, not both"
    # A case about text that does not parse covers no grammar rule: it says so with `covers: []`.
    assert isinstance(case.get("covers"), list), f"{path.name}: say which grammar rules it covers (`covers: [...]`)"
    assert case["covers"] or "errors" in case, f"{path.name}: a priced case covers some grammar rule"
    return case


def write_rules(folder: Path, rules: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in rules.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def load_case(case: dict[str, Any], tmp_path: Path) -> tuple[Path, list[Path]]:
    """The case's rule folder, and its overlay files (`overlays:`, one layer each, in order)."""
    folder = write_rules(tmp_path / "rules", case["rules"])
    overlays = []
    if case.get("overlays"):
        layers = write_rules(tmp_path / "overlays", case["overlays"])
        overlays = [layers / name for name in case["overlays"]]
    return folder, overlays


def relative_rules(data: Any, folder: Path) -> Any:
    """The bill's JSON with rule places relative to the rule folder, as a case writes them."""
    if isinstance(data, str):  # places in the rules and in the overlays, both relative to their folder
        return data.replace(f"{folder}/", "").replace(f"{folder.parent / 'overlays'}/", "")
    if isinstance(data, dict):
        return {k: relative_rules(v, folder) for k, v in data.items()}
    if isinstance(data, list):
        return [relative_rules(v, folder) for v in data]
    return data


def check_errors(case: dict[str, Any], folder: Path, overlays: list[Path] | None = None) -> None:
    with pytest.raises(bedrock_rules.RuleFileError) as caught:
        bedrock_rules.load(folder, overlays=overlays or [])
    got = caught.value.diagnostics
    want = case["errors"]
    rendered = caught.value.render()
    assert [d.code for d in got] == [w["code"] for w in want], rendered
    for diagnostic, expected in zip(got, want, strict=True):
        if "file" in expected:
            assert Path(diagnostic.span.path).name == expected["file"], rendered
        if "line" in expected:
            assert diagnostic.span.line == expected["line"], rendered
        if "column" in expected:
            assert diagnostic.span.column == expected["column"], rendered
        message = relative_rules(diagnostic.message, folder)
        if "message" in expected:
            assert message == expected["message"], rendered
        if "message_has" in expected:
            assert expected["message_has"] in message, rendered


def check_refusal(
    rules: bedrock_rules.Ruleset, usage: dict[str, Any], want: list[dict[str, Any]], folder: Path
) -> None:
    with pytest.raises(bedrock_rules.UsageError) as caught:
        rules.evaluate({"usage": usage["usage"]})
    got = caught.value.problems
    rendered = caught.value.render()
    assert len(got) == len(want), rendered
    for problem, expected in zip(got, want, strict=True):
        assert problem.item == expected.get("item"), rendered
        assert problem.field == expected.get("field"), rendered
        message = relative_rules(problem.message, folder)
        if "message" in expected:
            assert message == expected["message"], rendered
        if "message_has" in expected:
            assert expected["message_has"] in message, rendered


def check_bill(rules: bedrock_rules.Ruleset, usage: dict[str, Any], folder: Path) -> None:
    bill = rules.evaluate({"usage": usage["usage"]})
    data = relative_rules(json.loads(bedrock_rules.dump(bill)), folder)
    if "bill" in usage:
        assert data == usage["bill"]
    if "total" in usage:
        assert Decimal(data["total"]) == Decimal(str(usage["total"])), data
    if "charges" in usage:
        # [item, what, quantity, amount], and the free line's note when there is one
        # a charge a monthly table prices has no amount of its own: `→ 2026-03`, its period
        got = [
            [item["item"], c["what"], Decimal(c["quantity"]), _amount(c), *([c["note"]] if "note" in c else [])]
            for item in data["items"]
            for c in item["charges"]
        ]
        want = [[w[0], w[1], Decimal(str(w[2])), _wanted(w[3]), *w[4:]] for w in usage["charges"]]
        assert got == want, json.dumps(data, indent=2)
    if "periods" in usage:
        # [month, tier, quantity, amount] per tier line; [month, "true-up", charged, amount] per true-up
        got = [
            [period["month"], line["tier"], Decimal(line["quantity"]), Decimal(line["amount"])]
            for period in data.get("periods", [])
            for line in period["lines"]
        ] + [
            [period["month"], "true-up", Decimal(t["charged"]), Decimal(t["amount"])]
            for period in data.get("periods", [])
            for t in period["true_ups"]
        ]
        want = [[w[0], w[1], Decimal(str(w[2])), Decimal(str(w[3]))] for w in usage["periods"]]
        assert got == want, json.dumps(data, indent=2)


def _amount(charge: dict[str, Any]) -> Any:
    return Decimal(charge["amount"]) if charge["amount"] is not None else f"→ {charge['period']}"


def _wanted(amount: Any) -> Any:
    return amount if isinstance(amount, str) and amount.startswith("→") else Decimal(str(amount))


def case_params() -> list[Any]:
    """One test per file; a case the engine is known to get wrong says why (`xfail: …`)."""
    params = []
    for path in CASE_FILES:
        reason = yaml.safe_load(path.read_text(encoding="utf-8")).get("xfail")
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("path", case_params())
def test_case(path: Path, tmp_path: Path) -> None:
    case = read_case(path)
    folder, overlays = load_case(case, tmp_path)
    if "errors" in case:
        check_errors(case, folder, overlays)
        return
    rules = bedrock_rules.load(folder, overlays=overlays)
    assert case["usages"], f"{path.name}: give at least one usage"
    for usage in case["usages"]:
        assert set(usage) <= USAGE_KEYS, f"{path.name}: unknown keys {sorted(set(usage) - USAGE_KEYS)}"
        if "refused" in usage:
            assert not {"total", "charges", "bill"} & set(usage), f"{path.name}: a refused usage has no bill"
            check_refusal(rules, usage, usage["refused"], folder)
        else:
            assert {"total", "charges", "bill"} & set(usage), f"{path.name}: say what the bill is"
            check_bill(rules, usage, folder)


# Coverage ----------------------------------------------------------------------


@cache
def grammar_parser() -> Lark:
    # keep_all_tokens keeps the parentheses, so `( condition )` and `( expr )` show as the
    # `atom_condition` and `factor` nodes instead of melting into what they enclose.
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", keep_all_tokens=True)


@cache
def wrapper_names() -> frozenset[str]:
    """Names that also wrap a single subtree when the construct is absent (`any_of` of one `all_of`)."""
    single, longer = set(), set()
    for rule in grammar_parser().rules:
        name = str(rule.alias or rule.origin.name)
        if len(rule.expansion) == 1 and not rule.expansion[0].is_term:
            single.add(name)
        elif len(rule.expansion) > 1:
            longer.add(name)
    return frozenset(single & longer)


def grammar_rule_names() -> set[str]:
    """Every tree a rule text can hold: each rule, each alias, and the parenthesised forms."""
    names = set()
    for rule in grammar_parser().rules:
        name = str(rule.origin.name)
        if name.startswith("_") or name == "start":
            continue
        if rule.alias:
            names.add(str(rule.alias))
        elif not (rule.options.expand1 and len(rule.expansion) == 1):
            names.add(name)
    return names


def trees_in(text: str) -> tuple[set[str], set[Token]]:
    """The rule names a text really uses, and its tokens."""
    names, tokens = set(), set()
    wrappers = wrapper_names()
    for tree in grammar_parser().parse(text).iter_subtrees():
        single_tree = len(tree.children) == 1 and isinstance(tree.children[0], Tree)
        if not (tree.data in wrappers and single_tree):
            names.add(str(tree.data))
        tokens.update(c for c in tree.children if isinstance(c, Token))
    names.discard("start")
    return names, tokens


@cache
def parsed_cases() -> dict[str, tuple[list[str], set[str], set[Token]]]:
    """Per case: what it says it covers, what its parsable rule files use, and their tokens."""
    result = {}
    for path in CASE_FILES:
        case = read_case(path)
        names: set[str] = set()
        tokens: set[Token] = set()
        for text in [*case["rules"].values(), *(case.get("overlays") or {}).values()]:
            try:
                used, seen = trees_in(text)
            except LarkError:  # a case about a syntax error: its file does not parse, by design
                continue
            names |= used
            tokens |= seen
        result[path.stem] = (list(case["covers"]), names, tokens)
    return result


def test_case_names_are_unique_and_every_case_says_what_it_covers() -> None:
    assert CASE_FILES, "no language cases found"
    known = grammar_rule_names()
    for stem, (covers, used, _) in parsed_cases().items():
        unknown = set(covers) - known
        assert not unknown, f"{stem}: covers names that are not grammar rules: {sorted(unknown)}"
        missing = set(covers) - used
        assert not missing, f"{stem}: says it covers {sorted(missing)}, but its rule text does not use them"


@cache
def known_wrong() -> frozenset[str]:
    return frozenset(p.stem for p in CASE_FILES if "xfail" in read_case(p))


def coverage(without: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Each grammar rule and the cases that cover it (leaving out the cases named in `without`).

    A case the engine is known to get wrong (`xfail`) proves nothing, so it covers nothing.
    """
    table: dict[str, list[str]] = {name: [] for name in sorted(grammar_rule_names())}
    for stem, (covers, _, _) in parsed_cases().items():
        if stem in without or stem in known_wrong():
            continue
        for name in covers:
            table.setdefault(name, []).append(stem)
    return table


def test_every_grammar_rule_is_covered_by_a_case() -> None:
    uncovered = [name for name, stems in coverage().items() if not stems]
    assert not uncovered, f"grammar rules no case in tests/language covers: {uncovered}"


def test_the_coverage_check_names_a_rule_whose_only_case_is_gone() -> None:
    # The check above must be able to fail: drop the one case covering some rule and it shows.
    only = {name: stems[0] for name, stems in coverage().items() if len(stems) == 1}
    assert only, "every grammar rule is covered twice or more; pick another way to test the check"
    name, stem = sorted(only.items())[0]
    assert coverage(without=frozenset({stem}))[name] == []


def literal_alternatives() -> dict[str, list[str]]:
    """Terminals written as a choice of literals (`COMPARE: "<=" | ">=" | …`) and their choices."""
    table = {}
    for line in GRAMMAR.read_text(encoding="utf-8").splitlines():
        found = re.fullmatch(r'([A-Z_]+)\s*:\s*("[^"]*"(?:\s*\|\s*"[^"]*")+)\s*', line)
        if found:
            table[found[1]] = re.findall(r'"([^"]*)"', found[2])
    return table


def test_every_choice_of_a_terminal_is_covered_by_a_case() -> None:
    choices = literal_alternatives()
    assert {"COMPARE", "ADD", "MUL", "ROUND_TARGET", "NOT_OFFERED"} <= set(choices)
    seen = set()
    for stem, (_, _, tokens) in parsed_cases().items():
        if stem in known_wrong():
            continue
        seen |= {(t.type, re.sub(r"\s+", " ", str(t))) for t in tokens}
    missing = [f"{name} {text!r}" for name, texts in choices.items() for text in texts if (name, text) not in seen]
    assert not missing, f"terminal choices no case uses: {missing}"


def documented_functions() -> list[str]:
    """The functions README's language tour lists for derived quantities."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = next(line for line in readme.splitlines() if line.startswith("Derived quantities may use"))
    return re.findall(r"`([a-z]+)`", sentence)


def test_every_documented_function_is_called_by_a_case() -> None:
    functions = documented_functions()
    assert {"ceil", "floor", "max", "min"} <= set(functions)
    called = set()
    for path in CASE_FILES:
        if path.stem in known_wrong():
            continue
        for text in read_case(path)["rules"].values():
            try:
                trees = grammar_parser().parse(text).find_data("call")
            except LarkError:  # a case about a syntax error
                continue
            called |= {str(tree.children[0]) for tree in trees}
    assert set(functions) <= called, f"functions no case calls: {sorted(set(functions) - called)}"
