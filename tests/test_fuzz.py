"""Fuzzing the rule-file loader and the usage reader, starting from mutated real files.

The only outcomes allowed: a bill (or totals), or `BedrockRulesError` - a `RuleFileError`
whose diagnostics sit inside the file, or a `UsageError` with problems. No other
exception, and no input may take more than BUDGET seconds.

Fast mode (the default, for CI) tries a few thousand inputs. Long mode tries more than
100,000: `BEDROCK_RULES_FUZZ=long python -m pytest -q -s tests/test_fuzz.py`. The seed is
fixed and printed; `BEDROCK_RULES_FUZZ_SEED=n` picks another.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections import Counter

import pytest

import bedrock_rules
from bedrock_rules import examples
from bedrock_rules.bill import dump, render_table
from bedrock_rules.compiler import compile_files
from bedrock_rules.errors import BedrockRulesError, RuleFileError, UsageError
from bedrock_rules.parser import parse
from bedrock_rules.ruleset import Ruleset
from bedrock_rules.totals import dump as dump_totals
from bedrock_rules.usage import items_of, read_document
from conftest import ROOT

LONG = os.environ.get("BEDROCK_RULES_FUZZ") == "long"
SEED = int(os.environ.get("BEDROCK_RULES_FUZZ_SEED", "20240601"))
BUDGET = 2.0  # seconds per input
RULE_INPUTS = 25_000 if LONG else 800
USAGE_INPUTS = 100_000 if LONG else 2_000

RULE_FILES = sorted((ROOT / "rulesets" / "bedrock").glob("*.rules")) + sorted((ROOT / "tests" / "rule_errors").glob("*.rules"))
USAGE_FILES = [
    ROOT / "examples" / "monthly.yaml",
    *sorted((ROOT / "tests" / "cases").glob("*.*")),
    *sorted((ROOT / "tests" / "diff").glob("*.*")),
]

# Characters that mean something to one of the grammars, and a few that mean trouble.
ALPHABET = list("|#\":-_.,=<>!*/+()[]{}&*?'%@`~0123456789abcz \t\n\r") + [
    "\x00", "\x0c", "\u2028", "\u00e9", "\u2014", "\ufeff", "\U0001f600",
]
EXTREMES = ["0", "-1", "1e400", "1.0e+999999999999999999999", "9" * 45, "9" * 5000, "0." + "0" * 60 + "1", "1_000", ".nan", "true"]
TOKEN = re.compile(r"\w+|[^\w\s]|\s+")


class Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise Hang


# Mutations ------------------------------------------------------------------


def _chars(text: str, rnd: random.Random) -> str:
    if not text:
        return rnd.choice(ALPHABET)
    at = rnd.randrange(len(text))
    how = rnd.randrange(4)
    if how == 0:
        return text[:at] + text[at + 1 :]
    if how == 1:
        return text[:at] + rnd.choice(ALPHABET) + text[at:]
    if how == 2:
        return text[:at] + rnd.choice(ALPHABET) + text[at + 1 :]
    end = min(len(text), at + rnd.randrange(1, 40))
    return text[:end] + text[at:end] * rnd.randrange(1, 4) + text[end:]


def _bytes(text: str, rnd: random.Random) -> str:
    data = bytearray(text.encode("utf-8"))
    if not data:
        return text
    for _ in range(rnd.randrange(1, 4)):
        data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
    return data.decode("utf-8", errors="replace")


def _lines(text: str, rnd: random.Random) -> str:
    lines = text.split("\n")
    if len(lines) < 2:
        return text
    a, b = rnd.randrange(len(lines)), rnd.randrange(len(lines))
    how = rnd.randrange(4)
    if how == 0:
        del lines[a]
    elif how == 1:
        lines.insert(b, lines[a])
    elif how == 2:
        lines[a], lines[b] = lines[b], lines[a]
    else:
        lines[a] = lines[a].strip() if rnd.random() < 0.5 else "  " + lines[a]
    return "\n".join(lines)


def _tokens(text: str, rnd: random.Random) -> str:
    tokens = TOKEN.findall(text)
    if len(tokens) < 2:
        return text
    a, b = rnd.randrange(len(tokens)), rnd.randrange(len(tokens))
    how = rnd.randrange(4)
    if how == 0:
        tokens[a], tokens[b] = tokens[b], tokens[a]
    elif how == 1:
        tokens[a] = tokens[b]
    elif how == 2:
        del tokens[a]
    else:
        numbers = [i for i, tok in enumerate(tokens) if tok.isdigit()]
        tokens[rnd.choice(numbers) if numbers else a] = rnd.choice(EXTREMES)
    return "".join(tokens)


MUTATIONS = (_chars, _bytes, _lines, _tokens)


def mutants(texts: list[tuple[str, str]], count: int, seed: int):
    """`count` (name, mutated text) pairs, each 1 to 4 mutations of a real file (most just one)."""
    rnd = random.Random(seed)
    for _ in range(count):
        name, text = rnd.choice(texts)
        for _ in range(rnd.choice((1, 1, 1, 2, 2, 3, 4))):
            text = rnd.choice(MUTATIONS)(text, rnd)
        yield name, text


def run_all(target, inputs, report: str | None, capsys) -> Counter:
    """Run every input under the time budget; fail with the input that broke a rule. Prints the counts under `report`."""
    outcomes: Counter = Counter()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()
    try:
        for number, (name, text) in enumerate(inputs, 1):
            signal.setitimer(signal.ITIMER_REAL, BUDGET)
            try:
                outcomes[target(name, text)] += 1
            except Hang:
                pytest.fail(f"input {number} (from {name}, seed {SEED}) took more than {BUDGET} s:\n{text!r}")
            except BedrockRulesError as error:
                pytest.fail(f"input {number} (from {name}, seed {SEED}): an error escaped unchecked: {error!r}\n{text!r}")
            except Exception as error:  # the point: anything else is a bug
                raise AssertionError(f"input {number} (from {name}, seed {SEED}) crashed:\n{text!r}") from error
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    if report is None:
        return outcomes
    with capsys.disabled():
        seconds = time.perf_counter() - start
        shown = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))
        print(f"\nfuzz {report}: {sum(outcomes.values())} inputs in {seconds:.1f} s, seed {SEED} ({shown})")
    return outcomes


# Rule files -----------------------------------------------------------------


@pytest.fixture(scope="module")
def shared():
    """shared.rules, parsed once: a mutated provider file is compiled against it."""
    path = ROOT / "rulesets" / "bedrock" / "shared.rules"
    text = path.read_text(encoding="utf-8")
    return parse(text, "shared.rules"), text.splitlines()


def check_rule_file(name: str, text: str, shared) -> str:
    """Parse, compile with shared.rules, and price the file's own examples."""
    path = f"fuzz/{name}"
    try:
        rule_file = parse(text, path)
        files = [rule_file] if name == "shared.rules" else [shared[0], rule_file]
        # The compiler stage on its own: loading would re-read and re-parse shared.rules per input.
        compiled = compile_files(files, {path: text.splitlines(), "shared.rules": shared[1]}, "fuzz")
    except RuleFileError as error:
        assert error.diagnostics
        lines = text.split("\n")
        for diagnostic in error.diagnostics:
            span = diagnostic.span
            assert span.path in (path, "shared.rules", "fuzz"), diagnostic.render()
            assert span.line >= 1 and span.column >= 1, diagnostic.render()
            if span.path == path:
                assert span.line <= len(lines) + 1, diagnostic.render()
            diagnostic.render()
        return "refused"
    results = examples.run(Ruleset(compiled))
    for result in results:
        if result.bill is not None:
            dump(result.bill)
            render_table(result.bill)
    return "loaded"


def test_mutated_rule_files(shared, capsys):
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in RULE_FILES]
    outcomes = run_all(
        lambda name, text: check_rule_file(name, text, shared), mutants(texts, RULE_INPUTS, SEED), "rule files", capsys
    )
    assert outcomes["loaded"] and outcomes["refused"]  # the mutations reach both sides


# Usage documents ---------------------------------------------------------------


def check_usage(name: str, text: str, rules: bedrock_rules.Ruleset) -> str:
    """Read and price a document, and stream its items through totals."""
    source = name if len(text) % 3 else "<stdin>"  # sometimes the reader has to guess JSON or YAML
    try:
        document = read_document(text, source)
        raw = items_of(document, source)
    except UsageError as error:
        assert error.problems and error.render()
        return "unreadable"
    totals = rules.totals(raw)
    dump_totals(totals)
    try:
        bill = rules.evaluate(document, source)
    except UsageError as error:
        assert error.problems and error.render()
        assert not totals.complete or not raw  # what evaluate refuses, totals does not price
        return "refused"
    assert totals.total == bill.total and totals.complete
    dump(bill)
    render_table(bill)
    return "priced"


def test_mutated_usage_documents(rules, capsys):
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in USAGE_FILES]
    outcomes = run_all(lambda name, text: check_usage(name, text, rules), mutants(texts, USAGE_INPUTS, SEED), "usage documents", capsys)
    assert outcomes["priced"] and outcomes["refused"] and outcomes["unreadable"]


# Every input that once crashed or hung, kept as it was found --------------------

RULE_REGRESSIONS = {
    "bare-carriage-returns": "currency USD\rregion x\r",  # IndexError: lines counted differently from lark
    "nested-conditions": "refuse k when " + "(" * 3000 + "a = 1" + ")" * 3000 + ': "x"\n',  # RecursionError
    "nested-negations": "refuse k when " + "not " * 3000 + 'a = 1: "x"\n',
    "long-sum": "kind k\n  a: count\n  b = " + " + ".join(["a"] * 3000) + "\nend\n",
    "nested-lists-in-an-example": 'example "x" expect 1\n  item k\n    a: ' + "[" * 3000 + "]" * 3000 + "\nend\n",
    "a-syntax-error-on-every-line": "currency USD USD\n" * 20_000,  # quadratic: minutes
}

USAGE_REGRESSIONS = {
    "yaml-5000-digit-integer": ("x.yaml", "usage:\n  - kind: agent\n    region: " + "9" * 5000 + "\n"),  # ValueError
    "json-deep-lists": ("x.json", "[" * 100_000 + "]" * 100_000),  # RecursionError
    "yaml-deep-lists": ("x.yaml", "[" * 100_000 + "]" * 100_000),  # RecursionError, after seconds
    "json-huge-exponent": ("x.json", '{"usage": [{"kind": "agent", "region": 1e9999999999999999999}]}'),  # InvalidOperation
    "totals-list-for-a-model": ("x.yaml", "usage:\n  - {kind: text, model: [claude-2.1], region: us-east-1}\n"),  # TypeError
    "totals-items-that-are-not-objects": ("x.yaml", "usage: [5, null, [1], {kind: {a: 1}}]\n"),  # AttributeError
    # Found by the long run: a YAML explicit key (`?`) that is a mapping (TypeError: unhashable).
    "yaml-mapping-as-a-key": (
        "opus-east.yaml",
        "# Claude 3 O%us is offered only in us-west-2 under the shipped rules: refused here.\nusage:\n  - name: opus east\n"
        "    kinind: text\n    model: claude-3-opus\n    region: us-east-1\n?   input_tokens: 20000\n    output_tokens: 5000\n",
    ),
}


@pytest.mark.parametrize("name", RULE_REGRESSIONS)
def test_rule_file_regression(name, shared, capsys):
    assert run_all(lambda n, text: check_rule_file(n, text, shared), [("x.rules", RULE_REGRESSIONS[name])], None, capsys)


@pytest.mark.parametrize("name", USAGE_REGRESSIONS)
def test_usage_regression(name, rules, capsys):
    assert run_all(lambda n, text: check_usage(n, text, rules), [USAGE_REGRESSIONS[name]], None, capsys)


def test_huge_counts_in_a_stream_are_refused_not_printed_as_a_crash(rules):
    """The totals fast path once summed a 5,000-digit count and failed when printing it."""
    item = {"kind": "text", "model": "claude-2.1", "region": "us-east-1", "input_tokens": 10**5000}
    totals = rules.totals([item] * 3)
    assert [(u.reason, u.count) for u in totals.unpriced] == [
        ("field input_tokens: number too large: more than 40 digits; the limit is 40 digits", 3)
    ]
    assert dump_totals(totals)


def test_the_corpora_are_there():
    assert len(RULE_FILES) > 15 and len(USAGE_FILES) > 40
    assert {p.suffix for p in USAGE_FILES} == {".yaml", ".json"}


def test_mutations_are_reproducible():
    texts = [("a.yaml", "usage:\n  - kind: agent\n")]
    assert list(mutants(texts, 50, 7)) == list(mutants(texts, 50, 7))
    assert list(mutants(texts, 50, 7)) != list(mutants(texts, 50, 8))
