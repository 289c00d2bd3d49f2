"""Trojan source: rule text that reads one way in an editor or a review and charges another.

Format characters (Unicode category Cf: bidi controls, zero-width characters) are
refused anywhere in a rule file (BR005), names mixing Latin with another script are
refused (BR112), and two names of one file that look alike are refused (BR113), each at
its file, line and column, by `eval` and `check` alike.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest

import bedrock_rules
from bedrock_rules.errors import RuleFileError
from conftest import run_cli

RLE = "\u202b"  # RIGHT-TO-LEFT EMBEDDING

# The attack: a price table whose header puts a reason column before the rates, and a
# right-to-left embedding, unterminated, inside the quoted reason. From that character
# to the end of the line, an editor lays the cells out right to left (numbers keep their
# digits' order), so the row shows `0.00025` under input and `0.00125` under output,
# while the engine reads input 0.00125 and output 0.00025: every input token at five
# times its price, in a file that looks right.
SWAPPED = """currency USD
region us-east-1
provider anthropic
  model claude-3-haiku
end
kind text
  model: model
  region: region
  input_tokens: count = 0 unit tokens
  output_tokens: count = 0 unit tokens
  cache_read_tokens: count = 0 unit tokens
end
prices text in us-east-1
| model          | cache_read_tokens per 1000 | input_tokens per 1000 | output_tokens per 1000 |
|----------------|----------------------------|-----------------------|------------------------|
| claude-3-haiku | "not in the price list{rle}" | 0.00125 | 0.00025 |
"""
USAGE = {"usage": [{"kind": "text", "model": "claude-3-haiku", "region": "us-east-1", "input_tokens": 1000}]}


def _folder(tmp_path, text: str, name: str = "rules"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "prices.rules").write_text(text, encoding="utf-8")
    return folder


def test_without_the_control_character_the_table_prices_as_written(tmp_path):
    """The control case: the same table with nothing hidden loads and charges input at 0.00125."""
    rules = bedrock_rules.load(_folder(tmp_path, SWAPPED.format(rle="")))
    assert rules.evaluate(USAGE).total == Decimal("0.00125")


def test_a_bidi_embedding_in_a_quoted_cell_is_refused_at_its_place(tmp_path, monkeypatch):
    _folder(tmp_path, SWAPPED.format(rle=RLE))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load("rules")
    column = SWAPPED.splitlines()[15].index("{rle}") + 1
    assert [(d.code, str(d.span)) for d in refused.value.diagnostics] == [("BR005", f"rules/prices.rules:16:{column}")]
    assert "U+202B (RIGHT-TO-LEFT EMBEDDING)" in refused.value.diagnostics[0].message
    (tmp_path / "usage.json").write_text('{"usage": [{"kind": "text", "model": "claude-3-haiku", "region": "us-east-1"}]}')
    run = run_cli("eval", "usage.json", "--rules", "rules")
    assert (run.code, run.out) == (2, "")
    assert f"rules/prices.rules:16:{column}: error[BR005]" in run.err
    assert RLE not in run.err
    assert '"not in the price list\\u202b"' in run.err  # shown as an escape, not re-applied to the terminal
    check = run_cli("check", "--rules", "rules")
    assert check.code == 2
    assert f"rules/prices.rules:16:{column}: error[BR005]" in check.out


CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))] + [
    "\u200b", "\u200d", "\u200e", "\u200f", "\u061c", "\u00ad", "\u2060", "\ufeff", "\U000e0041",
]


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["quoted", "comment", "title"])
def test_every_format_character_is_refused_wherever_it_stands(char, where, tmp_path):
    assert unicodedata.category(char) == "Cf"
    text = SWAPPED.format(rle="")
    if where == "quoted":
        text = text.replace('"not in the price list"', f'"not in{char} the price list"')
    elif where == "comment":
        text = text.replace("prices text in us-east-1\n", f"# input first{char}, then output\nprices text in us-east-1\n")
    else:
        text = text.replace("region us-east-1\n", f'region us-east-1 "US East{char}"\n')
    assert char in text
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(_folder(tmp_path, text))
    (diagnostic,) = refused.value.diagnostics
    line = next(n for n, shown in enumerate(text.splitlines(), 1) if char in shown)
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("BR005", line, text.splitlines()[line - 1].index(char) + 1)


def test_a_format_character_does_not_hide_the_files_other_problems(tmp_path):
    text = SWAPPED.format(rle=RLE) + "offer claude-3-haiku only us-east-1\n"
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(_folder(tmp_path, text))
    assert [(d.code, d.span.line) for d in refused.value.diagnostics] == [("BR005", 16), ("BR100", 17)]


def test_a_byte_order_mark_at_the_start_is_still_allowed(tmp_path):
    rules = bedrock_rules.load(_folder(tmp_path, "\ufeff" + SWAPPED.format(rle="")))
    assert rules.evaluate(USAGE).total == Decimal("0.00125")


HOMOGLYPH = "claude-3-h\u0430iku"  # a Cyrillic а (U+0430)


def test_a_homoglyph_model_name_is_refused(tmp_path):
    """Two rows that look identical: the second, with a Cyrillic а, would price a model of its own."""
    text = SWAPPED.format(rle="").replace("  model claude-3-haiku\n", f"  model claude-3-haiku\n  model {HOMOGLYPH}\n")
    text += f"| {HOMOGLYPH} | \"not in the price list\" | 0.00025 | 0.00125 |\n"
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(_folder(tmp_path, text))
    assert [(d.code, d.span.line, d.span.column) for d in refused.value.diagnostics] == [("BR112", 5, 9), ("BR112", 18, 3)]
    assert "U+0430 CYRILLIC SMALL LETTER A" in refused.value.diagnostics[0].message


@pytest.mark.parametrize(
    ("name", "script"),
    [("claude-3-h\u0430iku", "CYRILLIC"), ("us-\u0435ast-1", "CYRILLIC"), ("sdxl-1.\u03bf", "GREEK"), ("cl\uff41ude-3", "FULLWIDTH"),
     ("us-east-\u0661", "ARABIC-INDIC")],
)
def test_names_mixing_scripts_are_refused_in_every_place(name, script, tmp_path):
    text = SWAPPED.format(rle="").replace("region us-east-1\n", f"region us-east-1\nregion {name}\n")
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(_folder(tmp_path, text))
    (diagnostic,) = refused.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("BR112", 3, 8)
    assert script in diagnostic.message


def test_names_that_look_alike_are_refused(tmp_path):
    text = SWAPPED.format(rle="").replace("  model claude-3-haiku\n", "  model claude-3-haiku\n  model claude-3-h\u00e1iku\n")
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load(_folder(tmp_path, text))
    assert [(d.code, d.span.line) for d in refused.value.diagnostics] == [("BR113", 5)]
    assert "looks like `claude-3-haiku` (line 4)" in refused.value.diagnostics[0].message


def test_accented_latin_names_alone_are_allowed(tmp_path):
    text = SWAPPED.format(rle="").replace("claude-3-haiku", "claude-3-h\u00e1iku")
    rules = bedrock_rules.load(_folder(tmp_path, text))
    assert rules.evaluate({"usage": [{**USAGE["usage"][0], "model": "claude-3-h\u00e1iku"}]}).total == Decimal("0.00125")


# Across files, and through kept parses --------------------------------------------

OTHER_FILE = """prices text in us-east-1
| model           | input_tokens per 1000 | output_tokens per 1000 |
|-----------------|-----------------------|------------------------|
| {name} | 0.00025               | 0.00125                |
"""


def _two_files(tmp_path, first: str, second: str):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.rules").write_text(first, encoding="utf-8")
    (folder / "b.rules").write_text(second, encoding="utf-8")
    return folder


def test_names_that_look_alike_in_two_files_are_refused(tmp_path, monkeypatch):
    """`claude-3-háiku` in one file and `claude-3-haiku` in another: two models to the engine, one to a reviewer."""
    lookalike = "claude-3-h\u00e1iku"
    first = SWAPPED.format(rle="").replace("  model claude-3-haiku\n", f"  model claude-3-haiku\n  model {lookalike}\n", 1)
    first = first[: first.index("prices text")]  # a.rules declares both; b.rules prices one of them
    monkeypatch.chdir(tmp_path)
    _two_files(tmp_path, first.replace(f"  model {lookalike}\n", ""), OTHER_FILE.format(name="claude-3-haiku "))
    assert bedrock_rules.load("rules").evaluate(USAGE).total == Decimal("0.00025")  # the control: one spelling
    (tmp_path / "rules" / "b.rules").write_text(OTHER_FILE.format(name=lookalike + " "), encoding="utf-8")
    (tmp_path / "rules" / "a.rules").write_text(first, encoding="utf-8")
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load("rules")
    found = [(d.code, str(d.span)) for d in refused.value.diagnostics]
    assert found == [("BR113", "rules/a.rules:5:9"), ("BR113", "rules/b.rules:4:3")]
    message = next(d.message for d in refused.value.diagnostics if d.span.path == "rules/b.rules")
    assert message == f"the name `{lookalike}` looks like `claude-3-haiku` (rules/a.rules:4); write one name one way"
    run = run_cli("check", "--rules", "rules")
    assert run.code == 2 and "rules/b.rules:4:3: error[BR113]" in run.out


def test_names_of_two_files_differing_only_in_case_are_two_names(tmp_path):
    folder = _two_files(tmp_path, SWAPPED.format(rle=""), "region US-EAST-2\n")
    assert bedrock_rules.load(folder).evaluate(USAGE).total == Decimal("0.00125")


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BEDROCK_RULES_CACHE", raising=False)


def test_a_kept_parse_of_text_with_a_format_character_is_refused(tmp_path, private_cache, monkeypatch):
    """A parse cache entry (or a wheel's prebuilt parse) that claims to be the parse of text holding a
    bidi control is refused at the character, as the parser refuses it: no path accepts rule text unchecked."""
    from bedrock_rules import loader, parsecache, parser

    clean, attack = SWAPPED.format(rle=""), SWAPPED.format(rle=RLE)
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path, attack)
    shown = "rules/prices.rules"
    parsecache.store(attack, shown, parser.parse(clean, shown))  # an entry written by someone else under the attack's key
    assert parsecache.load(attack, shown) is not None
    monkeypatch.setattr(parser, "parse", lambda text, path: pytest.fail("the kept parse was not used"))
    column = SWAPPED.splitlines()[15].index("{rle}") + 1
    with pytest.raises(RuleFileError) as refused:
        bedrock_rules.load("rules")
    assert [(d.code, str(d.span)) for d in refused.value.diagnostics] == [("BR005", f"rules/prices.rules:16:{column}")]
    # The same through the wheel's prebuilt parses, taken before the cache.
    kept = parsecache.load(attack, shown)
    monkeypatch.setattr(loader, "parsed_files", lambda texts: {name: kept for name in texts})
    with pytest.raises(RuleFileError) as refused:
        loader.compile_sources([loader.RuleSource(shown, attack)], "rules", prebuilt=True)
    assert [d.code for d in refused.value.diagnostics] == ["BR005"]
