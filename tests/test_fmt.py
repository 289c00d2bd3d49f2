"""`bedrock-rules fmt`: one canonical layout, meaning and comments unchanged, idempotent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_rules.formatter import format_text
from bedrock_rules.parser import parse
from bedrock_rules.resources import bundled_rules
from conftest import run_cli

CASES = Path(__file__).parent / "fmt"
BEFORE = sorted(CASES.glob("*.before.rules"))
SHIPPED = sorted(bundled_rules().glob("*.rules"))


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _after(before: Path) -> Path:
    return before.with_name(before.name.replace(".before.", ".after."))


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


# Fixtures: before -> after ---------------------------------------------------


@pytest.mark.parametrize("before", BEFORE, ids=[_stem(p) for p in BEFORE])
def test_fixture_is_formatted_as_written(before):
    assert format_text(_read(before), before.name) == _read(_after(before))


@pytest.mark.parametrize("before", BEFORE, ids=[_stem(p) for p in BEFORE])
def test_formatted_fixture_is_canonical(before):
    after = _read(_after(before))
    assert format_text(after, before.name) == after


def test_windows_line_endings_become_newlines():
    assert format_text("currency USD\r\n\r\n\r\nregion a  # east\r\n", "crlf.rules") == "currency USD\n\nregion a  # east\n"


def test_an_empty_file_stays_empty():
    assert format_text("\n\n  \n", "empty.rules") == ""


# Properties: idempotent, the model unchanged ----------------------------------


def assert_formats_faithfully(text: str, path: str = "x.rules") -> str:
    once = format_text(text, path)
    assert format_text(once, path) == once
    assert parse(once, path).statements == parse(text, path).statements
    assert once == "" or (once.endswith("\n") and not once.endswith("\n\n"))
    assert "\n\n\n" not in once
    assert all(line == line.rstrip() for line in once.splitlines())
    return once


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_rule_file_formats_faithfully(path):
    assert_formats_faithfully(_read(path), path.name)


KEYWORDLESS_IDS = ["text", "image", "model", "region", "tokens", "hours", "alpha", "beta_2", "x1", "units"]
VALUES = ["us-east-1", "anthropic.claude-v2:1", "claude-2.1", "m1", "sdxl-1.0", "1_month", "eu_west", "USD"]
NUMBERS = ["0", "1", "0.008", "44.00", "1000", "744"]
STRINGS = ['"A"', '"Claude 2 #1"', '"not | applicable"', '"Embed – English"', '""', '"x: y, z"']
COMMENTS = ["# note", "#x", "# a | b |", '# "quoted"', "#", "# trailing  "]

ids = st.sampled_from(KEYWORDLESS_IDS)
words = st.sampled_from(VALUES)
numbers = st.sampled_from(NUMBERS)
strings = st.sampled_from(STRINGS)


def _list(element, separator=",", min_size=1):
    """`a, b, c` as tokens; `element` draws one token or a list of them."""
    parts = st.lists(element.map(lambda x: x if isinstance(x, list) else [x]), min_size=min_size, max_size=3)
    return parts.map(lambda items: [t for i, x in enumerate(items) for t in ([separator] if i else []) + x])


values = st.recursive(
    st.one_of(words.map(lambda w: [w]), numbers.map(lambda n: [n]), strings.map(lambda s: [s])),
    lambda inner: st.one_of(
        _list(inner, min_size=0).map(lambda items: ["[", *items, "]"]),
        _list(st.tuples(ids, inner).map(lambda p: [p[0], ":", *p[1]]), min_size=0).map(lambda pairs: ["{", *pairs, "}"]),
    ),
    max_leaves=4,
)

expressions = st.recursive(
    st.one_of(numbers.map(lambda n: [n]), ids.map(lambda w: [w])),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: [*t[0], t[1], *t[2]]),
        st.tuples(st.sampled_from(["max", "min", "ceil"]), _list(inner)).map(lambda t: [t[0], "(", *t[1], ")"]),
        st.tuples(inner, ids).map(lambda t: ["sum", "(", *t[0], "for", "each", t[1], ")"]),
        inner.map(lambda e: ["(", *e, ")"]),
    ),
    max_leaves=4,
)

atoms = st.one_of(
    st.tuples(ids, st.sampled_from(["=", "!="]), values).map(lambda t: [t[0], t[1], *t[2]]),
    st.tuples(ids, _list(words)).map(lambda t: [t[0], "in", *t[1]]),
    st.tuples(ids, _list(words)).map(lambda t: [t[0], "not", "in", *t[1]]),
    st.tuples(ids, values).map(lambda t: [t[0], "contains", *t[1]]),
    st.tuples(expressions, st.sampled_from(["<", "<=", ">", ">="]), expressions).map(lambda t: [*t[0], t[1], *t[2]]),
)
conditions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: [*t[0], t[1], *t[2]]),
        inner.map(lambda c: ["not", "(", *c, ")"]),
        inner.map(lambda c: ["(", *c, ")"]),
    ),
    max_leaves=3,
)
kinds = st.one_of(st.just(["any"]), _list(ids))


def _maybe(strategy):
    return st.one_of(st.just([]), strategy)


header_cells = st.one_of(
    ids.map(lambda w: [w]),
    st.tuples(ids, numbers).map(lambda t: [t[0], "per", t[1]]),
    conditions,
)
row_cells = st.one_of(
    _list(words),
    st.tuples(st.sampled_from(["<", "<=", ">", ">="]), numbers).map(list),
    st.just(["any"]),
    numbers.map(lambda n: [n]),
    st.just(["free"]),
    strings.map(lambda s: ["free", s]),
    st.sampled_from([["-"], ["—"], ['"not applicable"']]),
)


@st.composite
def tables(draw):
    """A `prices` line and its table: ragged spacing, with or without a |---| line."""
    head = ["prices", draw(ids)]
    head += draw(_maybe(_list(words).map(lambda r: ["in", *r])))
    head += draw(_maybe(conditions.map(lambda c: ["when", *c])))
    head += draw(_maybe(st.tuples(ids, _maybe(numbers.map(lambda n: ["per", n]))).map(lambda t: ["charging", t[0], *t[1]])))
    columns = draw(st.integers(1, 4))
    lines = [head, _row(draw(st.lists(header_cells, min_size=columns, max_size=columns)))]
    if draw(st.booleans()):
        colon = st.sampled_from(["", ":"])
        dashes = draw(st.lists(st.tuples(colon, st.integers(3, 8), colon), min_size=1, max_size=5))
        lines.append(["|" + "|".join(left + "-" * n + right for left, n, right in dashes) + "|"])
    for _ in range(draw(st.integers(0, 3))):
        lines.append(_row(draw(st.lists(row_cells, min_size=columns, max_size=columns))))
    return lines


def _row(cells):
    return ["|", *[t for cell in cells for t in [*cell, "|"]]]


@st.composite
def blocks(draw):
    """A provider, kind, record or example: a header, member lines, `end`."""
    which = draw(st.sampled_from(["provider", "kind", "record", "example"]))
    if which == "example":
        lines = [["example", draw(strings), "expect", draw(numbers)]]
        for _ in range(draw(st.integers(1, 2))):
            lines.append(["item", draw(ids), *draw(_maybe(strings.map(lambda s: [s])))])
            lines += draw(st.lists(st.tuples(ids, values).map(lambda t: [t[0], ":", *t[1]]), max_size=3))
        return [*lines, ["end"]]
    lines = [[which, draw(ids), *draw(_maybe(strings.map(lambda s: [s])))]]
    if which == "provider":
        member = st.tuples(words, _maybe(strings.map(lambda s: [s])), _maybe(_list(words).map(lambda a: ["aka", *a]))).map(
            lambda t: ["model", t[0], *t[1], *t[2]]
        )
    else:
        types = st.one_of(_list(ids, "|"), ids.map(lambda w: ["list", "of", w]))
        field = st.tuples(
            ids,
            types,
            _maybe(values.map(lambda v: ["=", *v])),
            st.sampled_from([[], ["optional"]]),
            _maybe(st.one_of(words, strings).map(lambda u: ["unit", u])),
        ).map(lambda t: [t[0], ":", *t[1], *t[2], *t[3], *t[4]])
        derived = st.tuples(ids, expressions, _maybe(words.map(lambda u: ["unit", u]))).map(lambda t: [t[0], "=", *t[1], *t[2]])
        member = field if which == "record" else st.one_of(field, derived)
    return [*lines, *draw(st.lists(member, max_size=4)), ["end"]]


one_liners = st.one_of(
    st.just([["currency", "USD"]]),
    st.sampled_from([["round", "each charge", "to", "2", "places", "half_up"]]).map(lambda t: [t]),
    st.tuples(words, _maybe(strings.map(lambda s: [s]))).map(lambda t: [["region", t[0], *t[1]]]),
    st.tuples(_list(words), _list(words)).map(lambda t: [["offer", *t[0], "only", "in", *t[1]]]),
    st.tuples(kinds, conditions, strings).map(lambda t: [["refuse", *t[0], "when", *t[1], ":", t[2]]]),
    st.tuples(_list(ids), conditions, _maybe(conditions.map(lambda c: ["when", *c])), strings).map(
        lambda t: [["require", *t[0], *t[1], *t[2], ":", t[3]]]
    ),
    st.tuples(kinds, _maybe(conditions.map(lambda c: ["when", *c])), strings).map(lambda t: [["free", *t[0], *t[1], ":", t[2]]]),
)


def _wordish(token: str) -> bool:
    return token[0].isalnum() or token[0] in '_"'


def _may_touch(left: str, right: str) -> bool:
    """Whether two tokens may be written with no space between them and still lex apart."""
    if _wordish(left) and _wordish(right):
        return False
    if {"-", "—", "+"} & {left, right} or left == ":" or left.startswith("|-") or right.startswith("|-"):
        return False
    return not (left in ("<", ">", "!", "=") and right.startswith("="))


@st.composite
def messy_lines(draw, tokens):
    """One statement line written carelessly: any indent, any gaps, maybe a comment."""
    gap = st.sampled_from([" ", "  ", "\t", "   "])
    text = draw(st.sampled_from(["", " ", "  ", "\t", "      "]))
    for index, token in enumerate(tokens):
        if index:
            text += draw(st.sampled_from(["", " "])) if _may_touch(tokens[index - 1], token) else draw(gap)
        text += token
    if draw(st.integers(0, 4)) == 0:
        text += draw(st.sampled_from(["", " ", "  "])) + draw(st.sampled_from(COMMENTS))
    return text + draw(st.sampled_from(["", "", " ", "\t"]))


@st.composite
def rule_files(draw):
    """Valid rule text in a careless layout: statements, blank lines and comments anywhere."""
    statements = draw(st.lists(st.one_of(one_liners, blocks(), tables()), max_size=6))
    out: list[str] = []
    for statement in statements:
        for tokens in statement:
            for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
                out.append(draw(st.sampled_from(["", "  ", "\t"]) | st.sampled_from(COMMENTS)))
            out.append(draw(messy_lines(tokens)))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return ending.join(out) + draw(st.sampled_from(["", ending, ending * 3]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_files())
def test_generated_rule_file_formats_faithfully(text):
    assert_formats_faithfully(text)


# The command -------------------------------------------------------------------


@pytest.fixture
def messy(in_tmp):
    """A rule file that is not in the canonical layout, in an empty folder."""
    shutil.copy(CASES / "tables.before.rules", in_tmp / "prices.rules")
    return in_tmp / "prices.rules"


def test_check_prints_the_diff_and_changes_nothing(messy, text_snapshot):
    before = _read(messy)
    run = run_cli("fmt", "--check", "prices.rules")
    assert run.code == 1
    assert _read(messy) == before
    assert run.transcript() == text_snapshot


def test_fmt_rewrites_the_file_and_then_check_passes(messy):
    run = run_cli("fmt", "prices.rules")
    assert (run.code, run.out, run.err) == (0, "prices.rules\n", "")
    assert _read(messy) == _read(CASES / "tables.after.rules")
    assert run_cli("fmt", "--check", "prices.rules") == run_cli("fmt", "prices.rules")
    assert run_cli("fmt", "--check", "prices.rules").transcript() == "exit 0\n--- stdout\n--- stderr\n"


def test_fmt_without_a_path_formats_the_current_folder(messy, in_tmp):
    shutil.copy(_after(CASES / "blocks.before.rules"), in_tmp / "blocks.rules")
    (in_tmp / "notes.txt").write_text("not a rule file |  x |\n", encoding="utf-8")
    run = run_cli("fmt")
    assert (run.code, run.out, run.err) == (0, "prices.rules\n", "")
    assert run_cli("fmt", "--check").code == 0
    assert run_cli("fmt", "--check", ".").code == 0


def test_a_folder_path_means_its_rule_files(messy, in_tmp):
    (in_tmp / "sub").mkdir()
    shutil.copy(messy, in_tmp / "sub" / "a.rules")
    shutil.copy(messy, in_tmp / "sub" / "b.rules")
    run = run_cli("fmt", "sub")
    assert (run.code, run.out) == (0, "sub/a.rules\nsub/b.rules\n")
    assert _read(messy) != _read(in_tmp / "sub" / "a.rules")


def test_stdin_is_formatted_to_stdout(in_tmp):
    run = run_cli("fmt", "-", stdin="region   a  \"A\"\nregion bbb\n\n\n")
    assert (run.code, run.out, run.err) == (0, 'region a   "A"\nregion bbb\n', "")


def test_check_on_stdin_prints_the_diff(in_tmp, text_snapshot):
    run = run_cli("fmt", "--check", "-", stdin="currency   USD")
    assert run.code == 1
    assert run.transcript() == text_snapshot


def test_a_file_that_does_not_parse_is_refused_and_left_alone(messy, in_tmp, text_snapshot):
    broken = "prices text in any\n| model | input_tokens per 1000 |\n| claude-2.1 | 0.008\nregion   us-east-1 us-west-2\n"
    (in_tmp / "broken.rules").write_text(broken, encoding="utf-8")
    run = run_cli("fmt", "broken.rules", "prices.rules")
    assert run.code == 2
    assert _read(in_tmp / "broken.rules") == broken
    assert _read(messy) == _read(CASES / "tables.after.rules")  # the good file is still formatted
    assert run.transcript() == text_snapshot


def test_check_reports_unparseable_files_with_exit_2(messy, in_tmp):
    (in_tmp / "broken.rules").write_text("region\n", encoding="utf-8")
    run = run_cli("fmt", "--check", ".")
    assert run.code == 2
    assert run.out.startswith("--- prices.rules\n+++ prices.rules (formatted)\n")
    assert run.err.startswith("broken.rules:1:7: error[BR100]: unexpected end of line")


def test_missing_paths_and_empty_folders_are_refused(in_tmp):
    (in_tmp / "empty").mkdir()
    run = run_cli("fmt", "--check", "nowhere.rules", "empty")
    assert run.code == 2
    assert run.err == "empty: no *.rules files in this folder\nnowhere.rules: cannot read: No such file or directory\n"


def test_the_shipped_ruleset_is_canonical():
    run = run_cli("fmt", "--check", str(bundled_rules()))
    assert (run.code, run.out, run.err) == (0, "", "")


def test_a_byte_order_mark_stays_in_front_and_the_file_is_formatted(in_tmp):
    (in_tmp / "bom.rules").write_bytes("\ufeffcurrency   USD\nregion r1 \"R1\"\n".encode())
    run = run_cli("fmt", "bom.rules")
    assert (run.code, run.out) == (0, "bom.rules\n")
    assert (in_tmp / "bom.rules").read_bytes() == "\ufeffcurrency USD\nregion r1 \"R1\"\n".encode()
    assert run_cli("fmt", "--check", "bom.rules").code == 0


def test_a_file_that_cannot_be_rewritten_is_named_and_left_as_it_was(in_tmp, monkeypatch):
    messy = "currency   USD\nregion r1 \"R1\"\n"
    (in_tmp / "a.rules").write_text(messy, encoding="utf-8")
    (in_tmp / "b.rules").write_text(messy, encoding="utf-8")

    def full_disk(source, target):
        if str(target).endswith("a.rules"):
            raise OSError(28, "No space left on device")
        return replace(source, target)

    import os
    replace = os.replace
    monkeypatch.setattr(os, "replace", full_disk)
    run = run_cli("fmt", ".")
    assert run.code == 2
    assert run.out == "b.rules\n"  # the other file is formatted
    assert run.err == "a.rules: cannot write: No space left on device\n"
    assert (in_tmp / "a.rules").read_text(encoding="utf-8") == messy
    assert sorted(p.name for p in in_tmp.iterdir()) == ["a.rules", "b.rules"]  # no half-written file left beside it


def test_a_linked_rule_file_is_formatted_where_it_is_and_stays_linked(in_tmp):
    (in_tmp / "shared").mkdir()
    (in_tmp / "shared" / "real.rules").write_text("currency   USD\n", encoding="utf-8")
    (in_tmp / "link.rules").symlink_to(in_tmp / "shared" / "real.rules")
    assert run_cli("fmt", "link.rules").code == 0
    assert (in_tmp / "link.rules").is_symlink()
    assert (in_tmp / "shared" / "real.rules").read_text(encoding="utf-8") == "currency USD\n"


def test_what_check_refuses_in_a_folder_fmt_names_too(in_tmp):
    # A link that leads nowhere, a link loop and a FIFO: skipped before, so fmt said nothing of them.
    (in_tmp / "a.rules").write_text("currency   USD\n", encoding="utf-8")
    (in_tmp / "b.rules").symlink_to("nowhere.rules")
    (in_tmp / "c.rules").symlink_to("c.rules")
    os.mkfifo(in_tmp / "d.rules")
    run = run_cli("fmt", "--check", ".")
    assert run.code == 2
    assert run.err.splitlines() == [
        "b.rules: cannot read: No such file or directory",
        "c.rules: cannot read: Too many levels of symbolic links",
        "d.rules:1:1: error[BR004]: not a regular file: a FIFO (named pipe); rule files are read only from regular files",
    ]
    assert "a.rules (formatted)" in run.out  # the readable file is still checked
