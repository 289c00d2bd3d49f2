"""Broken rule files: each problem named by code, place, sentence, source line and caret.

Every file in tests/rule_errors/ is a small self-contained ruleset whose first line says
which codes loading it must report, in order: `# expect: BR100 — why`.
"""

from __future__ import annotations

import re
import shutil

import pytest

import bedrock_rules
from bedrock_rules.errors import RuleFileError
from bedrock_rules.parser import build_strict
from conftest import ROOT, run_cli

CASES = sorted((ROOT / "tests" / "rule_errors").glob("*.rules"))


def _expected_codes(case) -> list[str]:
    first = case.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"# expect: ((?:BR\d{3} ?)+)", first)
    assert match, f"{case.name} must start with `# expect: BR… — why`"
    return match.group(1).split()


def _load_error(source, in_tmp) -> RuleFileError:
    shutil.copy(source, in_tmp / source.name)
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load(source.name)
    return caught.value


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_rule_error(case, in_tmp, text_snapshot):
    error = _load_error(case, in_tmp)
    assert [d.code for d in error.diagnostics] == _expected_codes(case)
    for diagnostic in error.diagnostics:
        assert diagnostic.span.path == case.name
        assert diagnostic.span.line >= 1 and diagnostic.span.column >= 1
        head, line, caret = diagnostic.render().split("\n")
        assert head.startswith(f"{case.name}:{diagnostic.span.line}:{diagnostic.span.column}: error[{diagnostic.code}]: ")
        assert line == "  " + case.read_text(encoding="utf-8").splitlines()[diagnostic.span.line - 1]
        assert caret.strip(" ") and set(caret.strip(" ")) == {"^"}
        assert caret.index("^") == diagnostic.span.column + 1
    assert error.render() == text_snapshot


def test_the_code_of_each_file_name_is_the_code_it_reports():
    for case in CASES:
        if case.stem.startswith("br"):
            assert _expected_codes(case) == [case.stem[:5].upper()], case.name


def test_a_broken_folder_through_the_cli(in_tmp):
    """Syntax problems of every file at once; names are resolved only when all files parse."""
    folder = in_tmp / "rules"
    folder.mkdir()
    for case in CASES:
        if case.stem.startswith(("br100", "br110")):
            shutil.copy(case, folder / case.name)
    run = run_cli("eval", "-", "--rules", "rules", stdin="usage: []\n")
    assert run.code == 2
    assert run.out == ""
    assert "Traceback" not in run.err
    heads = [line for line in run.err.splitlines() if not line.startswith(" ")]
    assert heads == [
        "rules/br100-syntax-error-mid-line.rules:26:23: error[BR100]: unexpected `us-west-2`; expected `in`",
        "rules/br110-keyword-as-a-name.rules:18:3: error[BR110]: `free` is a keyword and cannot name a field",
    ]


def test_the_test_command_refuses_a_broken_folder_too(in_tmp):
    shutil.copy(CASES[0], in_tmp / CASES[0].name)
    run = run_cli("test", "--rules", CASES[0].name)
    assert run.code == 2
    assert run.err.startswith(f"{CASES[0].name}:26:23: error[BR100]: ")


def test_an_empty_folder_has_no_rule_files(in_tmp):
    (in_tmp / "empty").mkdir()
    run = run_cli("eval", "-", "--rules", "empty", stdin="usage: []\n")
    assert (run.code, run.err) == (2, "empty:1:1: error[BR002]: no rule files (*.rules) here\n")


def test_the_grammar_builds_in_lark_strict_mode():
    # Strict mode raises on any shift/reduce conflict or terminal collision.
    parser = build_strict()
    assert parser.options.parser == "lalr"


# Known engine defects, kept as strict expected failures so a fix is noticed.


def test_an_unknown_name_is_pointed_at(in_tmp):
    error = _load_error(ROOT / "tests" / "rule_errors" / "br200-unknown-model.rules", in_tmp)
    (diagnostic,) = error.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column) == (26, 7)
    assert diagnostic.render().endswith("\n        ^^^^^^^^^^")


def test_an_unknown_key_column_is_reported_once(in_tmp):
    text = (ROOT / "tests" / "rule_errors" / "br200-unknown-field.rules").read_text(encoding="utf-8")
    text = text.replace(" when modle = batch", "").replace("| model ", "| modle ")
    (in_tmp / "one.rules").write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load("one.rules")
    assert [(d.code, d.span.line) for d in caught.value.diagnostics] == [("BR200", 21)]


def test_a_byte_order_mark_at_the_start_of_a_file_is_not_part_of_the_rules(in_tmp):
    text = (ROOT / "tests" / "rule_errors" / "br200-unknown-model.rules").read_text(encoding="utf-8")
    fixed = text.replace("claude-2.2", "claude-2.1")
    (in_tmp / "one.rules").write_text("\ufeff" + fixed, encoding="utf-8")
    bedrock_rules.load("one.rules")  # loads, as without the mark


def test_a_name_glued_to_its_colon_gets_a_hint(in_tmp):
    (in_tmp / "one.rules").write_text("currency USD\nregion r1\nkind text\n  region:region\nend\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        bedrock_rules.load("one.rules")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "BR100"
    assert diagnostic.message.endswith("`region:region` reads as one name: put a space after the `:`")
