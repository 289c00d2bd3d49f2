"""editors/bedrock-rules.tmLanguage.json: it loads, its regexes compile, and it scopes rule files right.

Editors run TextMate grammars with Oniguruma; the grammar keeps to the part of the regex
syntax Python's `re` shares with it, so the tests compile every pattern with `re` and run
a small TextMate tokenizer (match, begin/end, captures, includes) over real rule files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from bedrock_rules.resources import bundled_rules
from conftest import ROOT

GRAMMAR_PATH = ROOT / "editors" / "bedrock-rules.tmLanguage.json"
GRAMMAR = json.loads(GRAMMAR_PATH.read_text(encoding="utf-8"))


def _rules(node: Any) -> list[Mapping[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_rules(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_rules(value))
    return found


def test_the_grammar_names_its_language_and_files():
    assert GRAMMAR["scopeName"] == "source.bedrock-rules"
    assert GRAMMAR["fileTypes"] == ["rules"]
    names = [rule["name"] for rule in _rules(GRAMMAR) if isinstance(rule.get("name"), str)]
    assert names and all(name.endswith(".bedrock-rules") for name in names if name != "bedrock-rules")


def test_every_regex_compiles_and_every_include_resolves():
    regexes = [rule[key] for rule in _rules(GRAMMAR) for key in ("match", "begin", "end", "while") if key in rule]
    assert len(regexes) > 20
    for regex in regexes:
        re.compile(regex)
    includes = {rule["include"] for rule in _rules(GRAMMAR) if "include" in rule}
    for include in includes:
        assert include.startswith("#") and include[1:] in GRAMMAR["repository"], include


# A small TextMate tokenizer: enough of the semantics editors use to check the scopes --------


class Tokenizer:
    def __init__(self, grammar: Mapping[str, Any]):
        self.grammar = grammar
        self.compiled: dict[str, re.Pattern[str]] = {}

    def regex(self, text: str) -> re.Pattern[str]:
        if text not in self.compiled:
            self.compiled[text] = re.compile(text)
        return self.compiled[text]

    def expand(self, patterns: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        for pattern in patterns:
            if "include" in pattern:
                name = pattern["include"]
                target = self.grammar if name == "$self" else self.grammar["repository"][name[1:]]
                out.extend(self.expand([target]) if "patterns" not in target or "begin" in target or "match" in target
                           else self.expand(target["patterns"]))
            elif "match" in pattern or "begin" in pattern:
                out.append(pattern)
            else:
                out.extend(self.expand(pattern.get("patterns", [])))
        return out

    def lines(self, text: str) -> list[list[tuple[str, ...]]]:
        """Per line, the scopes of each character."""
        stack: list[tuple[Mapping[str, Any], tuple[str, ...]]] = [(self.grammar, (self.grammar["scopeName"],))]
        result = []
        for line in text.split("\n"):
            scopes: list[tuple[str, ...]] = [stack[-1][1]] * len(line)
            self._line(line, 0, len(line), stack, scopes)
            result.append(scopes)
        return result

    def _capture(self, line: str, match: re.Match[str], captures: Mapping[str, Any], base: tuple[str, ...], scopes) -> None:
        for group, capture in sorted(captures.items(), key=lambda kv: int(kv[0])):
            start, end = match.span(int(group))
            if start < 0:
                continue
            inner = base + ((capture["name"],) if "name" in capture else ())
            for i in range(start, end):
                scopes[i] = inner
            if "patterns" in capture:
                self._line(line, start, end, [({"patterns": capture["patterns"]}, inner)], scopes)

    def _line(self, line: str, pos: int, stop: int, stack, scopes) -> None:
        text = line[:stop]
        seen: set[tuple[int, int, int]] = set()
        while True:
            rule, base = stack[-1]
            best = None
            if "end" in rule and len(stack) > 1:  # the end wins a tie with the patterns inside
                found = self.regex(rule["end"]).search(text, pos)
                if found:
                    best = (found.start(), 0, "end", rule, found)
            for order, pattern in enumerate(self.expand(rule.get("patterns", [])), 1):
                found = self.regex(pattern.get("match") or pattern["begin"]).search(text, pos)
                if found and (best is None or (found.start(), order) < best[:2]):
                    best = (found.start(), order, "begin" if "begin" in pattern else "match", pattern, found)
            if best is None:
                return
            _, _, what, pattern, found = best
            if found.end() == found.start():  # zero width: the same match at the same depth twice would loop
                key = (found.start(), len(stack), id(pattern))
                if key in seen:
                    return
                seen.add(key)
            if what == "end":
                for i in range(found.start(), found.end()):
                    scopes[i] = base
                self._capture(line, found, pattern.get("endCaptures", pattern.get("captures", {})), base, scopes)
                stack.pop()
            else:
                inner = base + ((pattern["name"],) if "name" in pattern else ())
                for i in range(found.start(), found.end()):
                    scopes[i] = inner
                captures = pattern.get("captures", {}) if what == "match" else pattern.get("beginCaptures", pattern.get("captures", {}))
                self._capture(line, found, captures, inner, scopes)
                if what == "begin":
                    for i in range(found.end(), stop):
                        scopes[i] = inner
                    stack.append((pattern, inner))
            pos = found.end()


TOKENIZER = Tokenizer(GRAMMAR)


def scopes_at(text: str, line_number: int, snippet: str, nth: int = 0) -> tuple[str, ...]:
    """The scopes of the first character of the `nth` occurrence of `snippet` on a line (1-based)."""
    line = text.split("\n")[line_number - 1]
    at = -1
    for _ in range(nth + 1):
        at = line.index(snippet, at + 1)
    return TOKENIZER.lines(text)[line_number - 1][at]


SAMPLE = """\
# Anthropic on Amazon Bedrock.
currency USD
region us-east-1 "US East (N. Virginia)"
provider anthropic "Anthropic"
  model claude-2.1 "Claude 2.1" aka anthropic.claude-v2:1
end
kind text "Text"
  input_tokens: count = 0 unit tokens
  commitment: none | 1_month = none
end
offer claude-3-opus only in us-west-2
prices text in us-east-1, us-west-2
| model      | input_tokens per 1000 | mode = batch |
|------------|-----------------------|--------------|
| claude-2.1 | 0.008                 | free "promo" |
| claude-2.0 | -                     | <= 5         |
refuse provisioned when provider = anthropic and custom = true: "no # here"
example "7. Claude" expect 0.184
  item text
    model: anthropic.claude-v2:1
end"""


@pytest.mark.parametrize(
    ("line", "snippet", "scope"),
    [
        (1, "#", "comment.line.number-sign.bedrock-rules"),
        (1, "Bedrock", "comment.line.number-sign.bedrock-rules"),
        (2, "currency", "keyword.other.bedrock-rules"),
        (3, "us-east-1", "entity.name.constant.region.bedrock-rules"),
        (3, '"US East', "string.quoted.double.bedrock-rules"),
        (4, "provider", "keyword.control.block.bedrock-rules"),
        (4, "anthropic", "entity.name.type.bedrock-rules"),
        (5, "claude-2.1", "entity.name.function.model.bedrock-rules"),
        (5, "aka", "keyword.other.bedrock-rules"),
        (5, "anthropic.claude", "variable.other.bedrock-rules"),
        (6, "end", "keyword.control.end.bedrock-rules"),
        (8, "input_tokens", "variable.other.member.bedrock-rules"),
        (8, "=", "keyword.operator.bedrock-rules"),
        (8, "0", "constant.numeric.decimal.bedrock-rules"),
        (8, "unit", "keyword.other.bedrock-rules"),
        (9, "1_month", "variable.other.bedrock-rules"),
        (11, "only", "keyword.other.bedrock-rules"),
        (12, "prices", "keyword.control.prices.bedrock-rules"),
        (12, "text", "entity.name.type.bedrock-rules"),
        (12, "in", "keyword.other.bedrock-rules"),
        (13, "|", "punctuation.separator.table.bedrock-rules"),
        (13, "model", "entity.name.tag.column.bedrock-rules"),
        (13, "input_tokens", "entity.name.tag.column.bedrock-rules"),
        (13, "per", "keyword.other.bedrock-rules"),
        (13, "1000", "constant.numeric.decimal.bedrock-rules"),
        (13, "=", "keyword.operator.bedrock-rules"),
        (14, "|---", "punctuation.separator.table.rule.bedrock-rules"),
        (15, "claude-2.1", "meta.table.row.bedrock-rules"),
        (15, "0.008", "constant.numeric.decimal.bedrock-rules"),
        (15, "free", "constant.language.bedrock-rules"),
        (15, '"promo"', "string.quoted.double.bedrock-rules"),
        (16, "-   ", "constant.language.not-offered.bedrock-rules"),
        (16, "<=", "keyword.operator.bedrock-rules"),
        (17, "refuse", "keyword.other.bedrock-rules"),
        (17, '"no # here"', "string.quoted.double.bedrock-rules"),
        (18, "example", "keyword.control.block.bedrock-rules"),
        (18, "expect", "keyword.other.bedrock-rules"),
        (18, "0.184", "constant.numeric.decimal.bedrock-rules"),
        (19, "item", "keyword.other.item.bedrock-rules"),
        (20, "model", "variable.other.member.bedrock-rules"),
    ],
)
def test_a_sample_line_gets_its_scope(line, snippet, scope):
    assert scope in scopes_at(SAMPLE, line, snippet)


def test_an_overlay_file_is_scoped():
    text = 'overlay "Acme" until 2026-06-30\nadjust text by -20% when provider = anthropic\n'
    assert "keyword.other.bedrock-rules" in scopes_at(text, 1, "overlay")
    assert "string.quoted.double.bedrock-rules" in scopes_at(text, 1, '"Acme"')
    assert "keyword.other.bedrock-rules" in scopes_at(text, 2, "adjust")
    assert "keyword.other.bedrock-rules" in scopes_at(text, 2, "by")


def test_the_table_ends_where_its_rows_end():
    assert "meta.table.prices.bedrock-rules" in scopes_at(SAMPLE, 16, "claude-2.0")
    assert "meta.table.prices.bedrock-rules" not in scopes_at(SAMPLE, 17, "refuse")
    assert "entity.name.tag.column.bedrock-rules" not in scopes_at(SAMPLE, 15, "claude-2.1")  # a row is not a header
    assert "constant.numeric.decimal.bedrock-rules" not in scopes_at(SAMPLE, 12, "us-east-1")


@pytest.mark.parametrize("path", sorted(bundled_rules().glob("*.rules")), ids=lambda p: p.stem)
def test_every_bundled_rule_file_is_scoped(path):
    """Comments are comments, table lines are in a table, rates are numbers, and every
    `|` of a table is a table separator."""
    text = path.read_text(encoding="utf-8")
    for line, scopes in zip(text.split("\n"), TOKENIZER.lines(text), strict=True):
        if line.lstrip().startswith("#"):
            assert "comment.line.number-sign.bedrock-rules" in scopes[line.index("#")], line
        if line.lstrip().startswith("|"):
            for at, char in enumerate(line):
                assert "meta.table.prices.bedrock-rules" in scopes[at], line
                if char == "|" and "rule" not in ".".join(scopes[at]):
                    assert "punctuation.separator.table.bedrock-rules" in scopes[at], (line, at)
            for number in re.finditer(r"(?<=\| )\d+(\.\d+)?(?= )", line):
                assert "constant.numeric.decimal.bedrock-rules" in scopes[number.start()], line


def test_the_vscode_extension_contributes_the_grammar_and_the_server():
    folder = ROOT / "editors" / "vscode"
    manifest = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    [language] = manifest["contributes"]["languages"]
    assert language["extensions"] == [".rules"]
    [grammar] = manifest["contributes"]["grammars"]
    # The extension carries its own copy (an extension folder is installed on its own); the same bytes.
    assert (folder / grammar["path"]).read_bytes() == GRAMMAR_PATH.read_bytes()
    assert grammar["scopeName"] == GRAMMAR["scopeName"] and grammar["language"] == language["id"]
    assert manifest["contributes"]["configuration"]["properties"]["bedrock-rules.command"]["default"] == ["bedrock-rules", "lsp"]
    json.loads((folder / language["configuration"]).read_text(encoding="utf-8"))
    assert (folder / manifest["main"]).is_file()
