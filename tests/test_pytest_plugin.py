"""The pytest plugin: a team's own bill snapshots, run by pytest itself (pytester) in a folder of their own."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import pytest
import yaml  # noqa: F401  (see below)

from bedrock_rules import dump, load
from bedrock_rules.resources import bundled_rules
from bedrock_rules.usage import read_document
from conftest import FOLDER_PROBLEMS, ROOT, run_cli

pytest_plugins = ["pytester"]
# Imported here, not first inside a pytester run: pytester forgets the modules a run imported,
# and bedrock_rules.usage keeps a YAML loader built from the yaml module it first saw.

USAGE_DIR = ROOT / "tests" / "snapshot"
CLAUDE_21 = "| claude-2.1        | 0.008                 | 0.024                  |"

# The whole test file the README shows a team, word for word.
TEAM_TEST = '''
import pytest

import bedrock_rules
from bedrock_rules.pytest_plugin import usage_documents

rules = bedrock_rules.load("rules")


@pytest.mark.parametrize("document", usage_documents("usage"))
def test_bill(document, bill_snapshot):
    assert rules.evaluate(document) == bill_snapshot
'''


@pytest.fixture
def team(pytester: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    """A team's repository: a copy of the shipped rules in rules/, usage documents in usage/, the README's test file."""
    monkeypatch.delenv("CI", raising=False)  # pytest shortens explanations unless on CI: test what a developer sees
    shutil.copytree(bundled_rules(), pytester.path / "rules")
    shutil.copytree(USAGE_DIR, pytester.path / "usage")
    pytester.makepyfile(test_bills=TEAM_TEST)
    return pytester


def stored(team: pytest.Pytester, stem: str) -> Path:
    return team.path / "__snapshots__" / "test_bills" / f"test_bill[{stem}].json"


def raise_claude_21_input_rate(team: pytest.Pytester) -> None:
    path = team.path / "rules" / "anthropic.rules"
    text = path.read_text(encoding="utf-8")
    assert text.count(CLAUDE_21) == 1
    path.write_text(text.replace(CLAUDE_21, CLAUDE_21.replace("0.008 ", "0.0085")), encoding="utf-8")


def test_the_readme_shows_this_test_file_word_for_word():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```python\n{TEAM_TEST.lstrip()}```\n" in readme


def test_the_plugin_is_registered_by_the_package():
    plugins = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert plugins.get("bedrock_rules") == "bedrock_rules.pytest_plugin"


def test_write_pass_catch_a_price_change_and_accept_it(team):
    written = team.runpytest("--snapshot-update")
    written.assert_outcomes(passed=2)
    written.stdout.fnmatch_lines(["*2 snapshots generated*"])
    first = {stem: stored(team, stem).read_bytes() for stem in ("chat", "monthly")}

    team.runpytest().assert_outcomes(passed=2)

    raise_claude_21_input_rate(team)
    failed = team.runpytest()
    failed.assert_outcomes(failed=2)
    claude = "text/input_tokens?region in us-east-1, us-west-2; model = claude-2.1; from 2024-07-01?"  # `?`: fnmatch reads [ ] as a set
    failed.stdout.fnmatch_lines([
        f"*item 1 (nightly summaries) input_tokens: 0.088 -> 0.0935 ({claude})",
        "*    rate: 0.008 -> 0.0085",
        "*item 1 (nightly summaries) subtotal: 0.184 -> 0.1895 (+0.0055)",
        "*total: 29469.684 -> 29469.6895 USD (+0.0055)",
    ])
    failed.stdout.fnmatch_lines([f"*item 1 (assistant de café) input_tokens: 2 -> 2.125 ({claude})"])
    assert stored(team, "monthly").read_bytes() == first["monthly"], "a failing run must not touch the snapshot"

    accepted = team.runpytest("--snapshot-update")
    accepted.assert_outcomes(passed=2)
    accepted.stdout.fnmatch_lines(["*2 snapshots updated*"])
    assert b'"amount": "0.0935"' in stored(team, "monthly").read_bytes()
    team.runpytest().assert_outcomes(passed=2)


def test_the_full_diff_shows_the_json_lines_that_changed(team):
    team.runpytest("--snapshot-update").assert_outcomes(passed=2)
    raise_claude_21_input_rate(team)
    failed = team.runpytest("-vv", "-k", "monthly")
    failed.assert_outcomes(failed=1, deselected=1)
    failed.stdout.fnmatch_lines([
        "*--- stored bill",
        "*+++ bill now",
        '*-          "amount": "0.088",',  # a dated rule's charge goes on with its "valid" window
        '*+          "amount": "0.0935",',
    ])


def test_a_snapshot_is_the_cli_json_byte_for_byte_and_the_same_every_run(team, monkeypatch):
    team.runpytest("--snapshot-update").assert_outcomes(passed=2)
    first = {stem: stored(team, stem).read_bytes() for stem in ("chat", "monthly")}
    team.runpytest("--snapshot-update").assert_outcomes(passed=2)
    assert {stem: stored(team, stem).read_bytes() for stem in first} == first

    monkeypatch.chdir(team.path)  # rule paths in bills are relative to the working folder
    rules = load("rules")
    for stem, suffix in (("chat", ".json"), ("monthly", ".yaml")):
        path = team.path / "usage" / f"{stem}{suffix}"
        expected = dump(rules.evaluate(read_document(path.read_text(encoding="utf-8"), str(path))))
        assert first[stem] == expected.encode("utf-8")
    assert b"\r" not in first["chat"]
    assert "assistant de café".encode() in first["chat"]  # UTF-8, not \u escapes


def test_a_new_document_without_a_snapshot_fails_until_written(team):
    team.runpytest("--snapshot-update").assert_outcomes(passed=2)
    (team.path / "usage" / "images.yaml").write_text(
        "usage:\n  - {kind: image, model: sdxl-1.0, region: us-east-1, images: 3, width: 1024, height: 1024, steps: 30,\n"
        "     at: 2024-07-15}\n",
        encoding="utf-8",
    )
    failed = team.runpytest()
    failed.assert_outcomes(passed=2, failed=1)
    failed.stdout.fnmatch_lines(["*no stored bill yet: run pytest --snapshot-update to write it"])
    team.runpytest("--snapshot-update").assert_outcomes(passed=3)
    assert b'"amount": "0.12"' in stored(team, "images").read_bytes()


def test_an_unreadable_document_fails_the_collection_with_its_problem_and_no_traceback(team):
    (team.path / "usage" / "broken.yaml").write_text("usage:\n  - kind: text\n    input_tokens: [1\n", encoding="utf-8")
    (team.path / "usage" / "shapeless.json").write_text('{"items": []}\n', encoding="utf-8")
    result = team.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*usage refused: 3 problems, nothing was priced",
        "*usage/broken.yaml: error[[]BU002]: not valid YAML*",
        "*usage/shapeless.json: error[[]BU101]: unknown top-level key *items*",
        "*usage/shapeless.json: error[[]BU101]: no `usage` list*",
    ])
    assert "Traceback" not in result.stdout.str()


@FOLDER_PROBLEMS
def test_a_folder_that_would_test_nothing_or_clash_fails_the_collection(team, setup, message):
    setup(team.path)
    result = team.runpytest()
    result.assert_outcomes(errors=1)
    assert message in result.stdout.str()


def test_bill_snapshot_compares_bills_only(pytester):
    pytester.makepyfile(
        """
        def test_not_a_bill(bill_snapshot):
            assert {"total": "1"} == bill_snapshot
        """
    )
    result = pytester.runpytest("--snapshot-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TypeError: bill_snapshot compares bills, got dict*"])


def test_without_syrupy_the_fixture_says_how_to_install_it(pytester):
    pytester.makepyfile(
        nosyrupy="""
        import sys


        class NoSyrupy:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "syrupy":
                    raise ImportError(f"No module named {name!r}")


        sys.meta_path.insert(0, NoSyrupy())
        """,
        test_bill="""
        def test_bill(bill_snapshot):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "nosyrupy", "-p", "no:syrupy")
    result.assert_outcomes(errors=1)
    assert "No module named" not in result.stdout.str()
    assert "\nthe bill_snapshot fixture needs syrupy; install it with: pip install 'bedrock-rules[pytest]'\n" in result.stdout.str()


def test_a_document_the_rules_refuse_fails_with_the_reasons(team):
    shutil.copy(ROOT / "tests" / "diff" / "opus-east.yaml", team.path / "usage")
    result = team.runpytest("--snapshot-update")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "test_bills.py::test_bill[opus-east]: no bill to compare",
        "usage refused: 1 problem, nothing was priced",
        "  item 1 (opus east): error[[]BU201]: Claude 3 Opus is offered only in us-west-2 (rules/anthropic.rules:46)",
    ])
    assert "interpreter.py" not in result.stdout.str()
    assert not stored(team, "opus-east").exists()


def test_a_stored_bill_linked_out_of_its_folder_is_neither_read_nor_written_through(team):
    """`pytest --snapshot-update` replaces a link where a bill belongs; the file it led to stays as it was."""
    team.runpytest("--snapshot-update").assert_outcomes(passed=2)
    secret = team.path / "secrets.env"
    secret.write_text("API_KEY=hunter2\n", encoding="utf-8")
    path = stored(team, "chat")
    path.unlink()
    path.symlink_to(secret)

    checked = team.runpytest()
    checked.assert_outcomes(passed=1, failed=1)
    assert "hunter2" not in checked.stdout.str()

    team.runpytest("--snapshot-update").assert_outcomes(passed=2)
    assert secret.read_text(encoding="utf-8") == "API_KEY=hunter2\n"
    assert not path.is_symlink()
    team.runpytest().assert_outcomes(passed=2)


MONTHLY_TEST = '''
import pytest

import bedrock_rules
from bedrock_rules.pytest_plugin import usage_documents

rules = bedrock_rules.load("rules")


@pytest.mark.parametrize("document", usage_documents("usage", at="2026-03-05"))
def test_bill(document, bill_snapshot):
    assert rules.evaluate(document) == bill_snapshot
'''


def test_usage_documents_at_dates_undated_items_as_snapshot_at_does(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    shutil.copytree(ROOT / "examples" / "periods", pytester.path / "rules")
    (pytester.path / "usage").mkdir()
    (pytester.path / "usage" / "march.yaml").write_text(
        "usage:\n"
        "  - {kind: text, model: acme-micro, region: us-east-1, input_tokens: 800000000}\n"
        "  - {kind: text, model: acme-micro, region: us-east-1, input_tokens: 700000000, at: 2026-03-20}\n",
        encoding="utf-8",
    )
    # undated, the first item is in no month: the test fails with the refusal, naming --at
    pytester.makepyfile(test_bills=MONTHLY_TEST.replace(', at="2026-03-05"', ""))
    refused = pytester.runpytest("--snapshot-update")
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["*error?BU205?: text usage is priced per calendar month*--at DATE*"])
    # with at=, the item without a date is dated 2026-03-05; the other keeps its own
    pytester.makepyfile(test_bills=MONTHLY_TEST)
    pytester.runpytest("--snapshot-update").assert_outcomes(passed=1)
    written = (pytester.path / "__snapshots__" / "test_bills" / "test_bill[march].json").read_bytes()
    monkeypatch.chdir(pytester.path)  # rule paths in bills are relative to the working folder
    snapshot = run_cli("snapshot", "usage", "--rules", "rules", "--at", "2026-03-05", "--update")
    assert snapshot.code == 0, snapshot.err
    assert (pytester.path / "usage" / "march.bill.json").read_bytes() == written
    # 1500000000 tokens of March: 30 + 10 = 40 (examples/periods/prices.rules)
    assert b'"total": "40"' in written and b'"at": "2026-03-05"' in written and b'"at": "2026-03-20"' in written
    pytester.makepyfile(test_bills=MONTHLY_TEST.replace("2026-03-05", "2026-02-30"))
    wrong = pytester.runpytest()
    wrong.stdout.fnmatch_lines(["*usage_documents(at='2026-02-30'): 2026-02-30 is not a date: February 2026 has 28 days*"])
