"""Fuzzing the rule-file loader and the usage reader, starting from mutated real files.

The only outcomes allowed: a bill (or totals), or `BedrockRulesError` - a `RuleFileError`
whose diagnostics sit inside the file, or a `UsageError` with problems. No other
exception, and no input may take more than BUDGET seconds.

Fast mode (the default, for CI) tries a few thousand inputs. Long mode tries more than
100,000: `BEDROCK_RULES_FUZZ=long python -m pytest -q -s tests/test_fuzz.py`. The seed is
fixed and printed; `BEDROCK_RULES_FUZZ_SEED=n` picks another.
"""

from __future__ import annotations

import io
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
from bedrock_rules.billstream import JsonBill, TableBill, price_documents
from bedrock_rules.compiler import compile_files
from bedrock_rules.errors import BedrockRulesError, RuleFileError, UsageError
from bedrock_rules.parser import parse
from bedrock_rules.ruleset import Ruleset
from bedrock_rules.totals import dump as dump_totals
from bedrock_rules.usage import items_of, read_document, stream_items
from conftest import ROOT

LONG = os.environ.get("BEDROCK_RULES_FUZZ") == "long"
SEED = int(os.environ.get("BEDROCK_RULES_FUZZ_SEED", "20240601"))
BUDGET = 2.0  # seconds per input
RULE_INPUTS = 25_000 if LONG else 400
USAGE_INPUTS = 100_000 if LONG else 1_000
STREAMED_INPUTS = 20_000 if LONG else 250

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
    """shared.rules and anthropic.rules, parsed once: a mutated provider file is compiled against
    them (shared.rules names the anthropic provider, which anthropic.rules declares)."""
    parsed = {}
    for name in ("shared.rules", "anthropic.rules"):
        text = (ROOT / "rulesets" / "bedrock" / name).read_text(encoding="utf-8")
        parsed[name] = (parse(text, name), text.splitlines())
    return parsed


def check_rule_file(name: str, text: str, shared) -> str:
    """Parse, compile with shared.rules, and price the file's own examples."""
    path = f"fuzz/{name}"
    try:
        rule_file = parse(text, path)
        # The compiler stage on its own: loading would re-read and re-parse the others per input.
        others = {other: parsed for other, parsed in shared.items() if other != name}
        files = [*(rule for rule, _ in others.values()), rule_file]
        compiled = compile_files(files, {path: text.splitlines(), **{other: lines for other, (_, lines) in others.items()}}, "fuzz")
    except RuleFileError as error:
        assert error.diagnostics
        lines = text.split("\n")
        for diagnostic in error.diagnostics:
            span = diagnostic.span
            assert span.path in (path, *shared, "fuzz"), diagnostic.render()
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


@pytest.mark.slow
def test_mutated_rule_files(shared, capsys):
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in RULE_FILES]
    outcomes = run_all(
        lambda name, text: check_rule_file(name, text, shared), mutants(texts, RULE_INPUTS, SEED), "rule files", capsys
    )
    assert outcomes["loaded"] and outcomes["refused"]  # the mutations reach both sides


# Usage documents ---------------------------------------------------------------


def streamed(rules: bedrock_rules.Ruleset, text: str, source: str) -> tuple[str, ...] | str:
    """What `eval` writes for one document, read item by item: its JSON and table bills, or its refusal."""
    json_bill, table = JsonBill(rules.currency), TableBill(rules.currency)

    class Both:  # one read of the document for both formats
        def add(self, item, values):
            json_bill.add(item, values)
            table.add(item, values)

        def finish(self, total, out):
            json_bill.finish(total, out)
            table.finish(total, out)

    out = io.StringIO()
    try:
        price_documents(rules.program, [(source, lambda: stream_items(text, source))], Both(), out)
    except UsageError as error:
        return error.render()
    return (out.getvalue(),)


def whole(rules: bedrock_rules.Ruleset, raw: list) -> tuple[str, ...] | str:
    """The same from the document read whole and every item held, as `eval` once did."""
    checked, problems = rules.check_items(raw, None)
    try:
        bill = rules.bill(checked, problems)
    except UsageError as error:
        return error.render()
    return (dump(bill) + render_table(bill),)


def check_streamed(name: str, text: str, rules: bedrock_rules.Ruleset) -> str:
    """A document read item by item gives the bytes, or the refusal, of the document read whole."""
    source = name if len(text) % 3 else "<stdin>"
    try:
        raw = items_of(read_document(text, source), source)
    except UsageError as error:
        assert streamed(rules, text, source) == error.render()
        return "unreadable"
    expected = whole(rules, raw)
    assert streamed(rules, text, source) == expected
    return "priced" if isinstance(expected, tuple) else "refused"


@pytest.mark.slow
def test_mutated_usage_documents_read_item_by_item_give_the_same_bytes(rules, capsys):
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in USAGE_FILES]
    inputs = mutants(texts, STREAMED_INPUTS, SEED + 1)
    outcomes = run_all(lambda name, text: check_streamed(name, text, rules), inputs, "usage documents item by item", capsys)
    assert outcomes["priced"] and outcomes["refused"] and outcomes["unreadable"]


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


@pytest.mark.slow
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


# Hypothesis targets: invocation-log records and rule text --------------------------
#
# Each runs a bounded number of examples (RULE_EXAMPLES, LOG_EXAMPLES: about 10 s and
# 5 s on two cores in CI; BEDROCK_RULES_FUZZ=long runs more, with a random seed). The
# invariant "no nonzero quantity disappears": for logs, every record is counted exactly
# once (priced, not priced, failed call or malformed), and every nonzero token count of
# a priced record reaches a charge of exactly that quantity; for rule text, every
# nonzero quantity a rule charges of an item that prices is charged, or the item is
# free by a `free` statement.

import copy  # noqa: E402 (the hypothesis targets' own imports, kept with them)
import functools  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bedrock_rules.bedrock.logs import totals_of_log  # noqa: E402
from bedrock_rules.fields import Instant, read_instant  # noqa: E402
from bedrock_rules.loader import RuleSource, compile_sources  # noqa: E402

RULE_EXAMPLES = 2_000 if LONG else 150
LOG_EXAMPLES = 8_000 if LONG else 300


def _fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, derandomize=not LONG, suppress_health_check=list(HealthCheck), database=None,
    )

LOGS = ROOT / "tests" / "logs"
# Records priced on their own, with their token counts where AWS writes them for InvokeModel.
def _records(path) -> list[dict]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # the fixture's own malformed lines
            continue
    return records


BASE_RECORDS = [
    r for r in _records(LOGS / "mixed.jsonl")
    if isinstance(r, dict) and isinstance(r.get("input"), dict) and "inputTokenCount" in r["input"] and "errorCode" not in r
    # Image calls are priced per image, their token counts 0 as AWS writes them; a nonzero
    # one is reported as not priced, which test_logs checks on its own.
    and not any(word in str(r.get("modelId")) for word in ("image", "stability."))
]
COUNTS = {  # where a count is written, and the quantity the rules charge it as
    ("input", "inputTokenCount"): "input_tokens",
    ("output", "outputTokenCount"): "output_tokens",
    ("input", "cacheReadInputTokenCount"): "cache_read_tokens",
    ("input", "cacheWriteInputTokenCount"): "cache_write_tokens",
}
FIELDS = [
    ("modelId",), ("region",), ("inferenceRegion",), ("operation",), ("errorCode",), ("requestMetadata",), ("identity",),
    ("timestamp",), ("schemaType",), ("input",), ("output",), *COUNTS,
]
GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**50), max_value=10**50), st.just(10**40), st.just(10**41),
    st.floats(allow_nan=False), st.text(max_size=20), st.just("\ud800"), st.just("12"), st.just([]), st.just({}),
    st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8),
)
MISSING = object()
VALUE = st.one_of(st.just(MISSING), GARBAGE, st.integers(min_value=0, max_value=10**12))


@st.composite
def log_records(draw) -> tuple[str, dict | None, bool]:
    """One record's line, the record it holds (None when the text was broken), and
    whether a key was given twice."""
    record = json.loads(json.dumps(draw(st.sampled_from(BASE_RECORDS))))
    for path in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        value = copy.deepcopy(draw(VALUE))  # st.just({}) is one object: shared, it could come to hold itself
        holder = record
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        if value is MISSING:
            holder.pop(path[-1], None)
        else:
            holder[path[-1]] = value
    line = json.dumps(record, default=str)
    twice = False
    how = draw(st.integers(min_value=0, max_value=9))
    if how == 0:  # a key given twice: the last would win silently
        key = draw(st.sampled_from(['"inputTokenCount": ', '"outputTokenCount": ', '"modelId": ', '"region": ']))
        if key in line:
            line = line.replace(key, f"{key}1, {key}", 1)
            twice = True
    elif how == 1:  # broken text
        line = line[: draw(st.integers(min_value=0, max_value=len(line)))] + draw(st.text(max_size=5))
        line = line.replace("\n", " ")
        try:
            whole = json.loads(line)
        except ValueError:
            return line, None, False
        # The cut fell where nothing was lost (or the text put back what it took): still a record.
        return line, whole if isinstance(whole, dict) else None, False
    return line, record, twice


def _count_of(record: dict, where: tuple[str, str]):
    holder = record.get(where[0])
    value = holder.get(where[1]) if isinstance(holder, dict) else None
    return value if type(value) is int else None


@pytest.mark.slow
@_fuzz_settings(LOG_EXAMPLES)
@given(st.lists(log_records(), min_size=1, max_size=5))
def test_fuzzed_log_records_lose_no_quantity(rules, records):
    lines = [line for line, _, _ in records]
    totals = totals_of_log(rules, lines)
    counted = totals.priced + sum(n for _, n in totals.failed_calls)
    counted += sum(u.count for u in totals.unpriced) + sum(u.count for u in totals.malformed)
    records_read = len([line for line in lines if line.strip()])  # a blank line is no record
    assert totals.read == records_read == counted  # every record counted exactly once
    dump_totals(totals)
    for line, record, twice in records:
        alone = totals_of_log(rules, [line])
        if alone.priced != 1:
            continue
        assert record is not None and not twice, line  # broken text or a key given twice is never priced
        for where, quantity in COUNTS.items():
            count = _count_of(record, where)
            charged = sum(t.quantity for t in alone.lines if t.what.split(" ")[0] == quantity)
            if count:  # a nonzero count of a priced record reaches a charge of exactly that quantity
                assert charged == count, (line, quantity, alone.lines)


# Dated rules: a copy of the shipped rules with one dated statement, so every record must
# carry a timestamp its items are priced by (the day `--group-by day` shows, in UTC).
STAMPS = st.sampled_from([
    "2024-07-02T09:15:00Z", "2024-07-02T23:30:00-05:00", "2024-07-03T00:30:00+14:00", "2024-07-02", "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "2024-13-45T00:00:00Z", "\uff12\uff10\uff12\uff14-07-02T00:00:00Z",
    "2024-07-02T09:15:00", "2024-07-0\u202e2", "garbage", "", "2024-07-02T09:15:00.123456789Z",
])


@functools.cache
def dated_rules() -> Ruleset:
    folder = Path(tempfile.mkdtemp(prefix="bedrock-rules-fuzz-dated-"))
    for path in (ROOT / "rulesets" / "bedrock").glob("*.rules"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "zz-dated.rules").write_text('refuse text when region = us-east-1 from 2999-01-01: "not priced yet"\n', encoding="utf-8")
    return bedrock_rules.load(folder)


@st.composite
def dated_log_records(draw) -> tuple[str, dict | None, bool]:
    line, record, twice = draw(log_records())
    if record is not None and not twice and draw(st.integers(0, 3)):  # most records: a timestamp of these
        record = {**record, "timestamp": draw(STAMPS)}
        line = json.dumps(record, default=str)
    return line, record, twice


@pytest.mark.slow
@_fuzz_settings(LOG_EXAMPLES // 2)
@given(st.lists(dated_log_records(), min_size=1, max_size=5))
def test_fuzzed_dated_log_records_lose_no_quantity_and_keep_their_utc_day(records):
    rules = dated_rules()
    lines = [line for line, _, _ in records]
    totals = totals_of_log(rules, lines, ("day",))
    counted = totals.priced + sum(n for _, n in totals.failed_calls)
    counted += sum(u.count for u in totals.unpriced) + sum(u.count for u in totals.malformed)
    assert totals.read == len([line for line in lines if line.strip()]) == counted
    dump_totals(totals)
    for line, record, twice in records:
        alone = totals_of_log(rules, [line], ("day",))
        if alone.priced != 1:
            continue
        assert record is not None and not twice, line
        stamp = record.get("timestamp")
        instant = read_instant(stamp) if type(stamp) is str else None
        assert isinstance(instant, Instant), line  # priced by dated rules: it had a date
        if alone.lines:
            assert {t.group for t in alone.lines} == {(instant.day.isoformat(),)}, line
        for where, quantity in COUNTS.items():
            count = _count_of(record, where)
            charged = sum(t.quantity for t in alone.lines if t.what.split(" ")[0] == quantity)
            if count:
                assert charged == count, (line, quantity, alone.lines)


def _shared_source() -> RuleSource:
    return RuleSource("shared.rules", (ROOT / "rulesets" / "bedrock" / "shared.rules").read_text(encoding="utf-8"))


SHIPPED_TEXTS = [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "rulesets" / "bedrock").glob("*.rules"))
                 if p.name != "shared.rules"]
INSERTS = st.one_of(
    st.sampled_from([
        "\u202e", "\u2066", "\u2069", "\u200b", "\ufeff", "\u0430", "\u03bf", "\u00e9", "|", "\n", '"', "#", "1e400",
        "9" * 200, "0." + "0" * 130 + "1", "ceil(", ")", " and ", " free ", " - ", "\r", "\x00",
    ]),
    st.text(max_size=8),
)


@st.composite
def rule_texts(draw) -> tuple[str, str]:
    name, text = draw(st.sampled_from(SHIPPED_TEXTS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        how = draw(st.integers(min_value=0, max_value=2))
        if how == 0:
            text = text[:at] + draw(INSERTS) + text[at:]
        elif how == 1:
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=40)):]
        else:
            lines = text.split("\n")
            i = at % max(1, len(lines))
            text = "\n".join(lines[: i + 1] + lines[i:])
    return name, text


@pytest.mark.slow
@_fuzz_settings(RULE_EXAMPLES)
@given(rule_texts())
def test_fuzzed_rule_text_is_refused_in_place_or_loses_no_quantity(named):
    name, text = named
    try:
        program = compile_sources([_shared_source(), RuleSource(name, text)], "rules")
    except RuleFileError as error:
        lines = {"shared.rules": None, name: text.split("\n")}
        for d in error.diagnostics:
            assert d.code.startswith("BR") and d.span.line >= 1 and d.span.column >= 1, d.render()
            if d.span.path == name:
                assert d.span.line <= len(lines[name]) + 1, d.render()
        return
    ruleset = Ruleset(program)
    items = [
        {"kind": "text", "model": model, "region": region, "input_tokens": 1000, "output_tokens": 10}
        for model in list(program.models)[:3] for region in list(program.regions)[:3]
    ]
    checked, problems = ruleset.check_items(items)
    for item in checked:
        try:
            bill = ruleset.bill([item])
        except UsageError as error:
            assert error.problems and error.render()
            continue
        (item_bill,) = bill.items
        if any(c.what == item.kind and c.rate is None for c in item_bill.charges):
            continue  # free by a `free` statement
        for quantity in program.quantities.get(item.kind, ()):
            value = item.values.get(quantity)
            if value:
                assert any(c.what.split(" ")[0] == quantity for c in item_bill.charges), (quantity, item_bill)


@pytest.mark.parametrize("value", [[], {"a": 1}, 5, True])
def test_an_inference_region_that_is_not_text_is_refused_not_an_internal_error(rules, value):
    """Found by the log target: `"inferenceRegion": []` was a TypeError (unhashable) in the reader."""
    record = dict(BASE_RECORDS[0], inferenceRegion=value)
    totals = totals_of_log(rules, [json.dumps(record)])
    assert (totals.read, totals.priced, len(totals.unpriced)) == (1, 0, 1)
    assert "inference_region" in totals.unpriced[0].reason
