"""`bedrock-rules diff`: what a change of rules does to a corpus of usage documents."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_rules.cli import main
from bedrock_rules.resources import bundled_rules
from bedrock_rules.usage import read_document
from conftest import ROOT, run_cli

DIFF_DIR = ROOT / "tests" / "diff"
CASES_DIR = ROOT / "tests" / "cases"
CLAUDE_21 = "| claude-2.1        | 0.008                 | 0.024                  |"
CHANGED_ID = "text/input_tokens[region in us-east-1, us-west-2; model = claude-2.1; from 2024-07-01]"
# The documents of the snapshots, as given on the command line in the work folder.
DOCUMENTS = ["examples/monthly.yaml", *(f"tests/diff/{p.name}" for p in sorted(DIFF_DIR.iterdir()))]


@pytest.fixture
def work(in_tmp) -> Path:
    """A work folder with the shipped ruleset as old/ and new/, and the documents at their usual paths."""
    for name in ("old", "new"):
        shutil.copytree(bundled_rules(), in_tmp / name)
    shutil.copytree(DIFF_DIR, in_tmp / "tests" / "diff")
    (in_tmp / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "monthly.yaml", in_tmp / "examples")
    return in_tmp


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def one_price_changed(work: Path) -> None:
    """Claude 2.1's input tokens in us-east-1 and us-west-2: 0.008 -> 0.009 USD per 1000."""
    edit(work / "new" / "anthropic.rules", CLAUDE_21, CLAUDE_21.replace("0.008", "0.009"))


def refusals_changed(work: Path) -> None:
    """Claude Instant's text row removed (chat.yaml is newly refused); Opus offered in us-east-1 too (newly priced)."""
    row = next(line for line in (work / "new" / "anthropic.rules").read_text(encoding="utf-8").splitlines(True)
               if line.startswith("| claude-instant    | 0.0008 "))
    edit(work / "new" / "anthropic.rules", row, "")
    edit(work / "new" / "anthropic.rules", "offer claude-3-opus only in us-west-2", "offer claude-3-opus only in us-east-1, us-west-2")


def test_one_changed_price_is_reported_exactly_over_the_corpus(work, rules):
    """The required check: one price changed in a copy gives exactly that rule change and these deltas."""
    one_price_changed(work)
    cases = sorted(p for p in CASES_DIR.glob("*") if p.suffix in (".yaml", ".json")) if CASES_DIR.is_dir() else []
    corpus = [work / d for d in DOCUMENTS] + cases
    run = run_cli("diff", "old", "new", *map(str, corpus), "--format", "json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["rules"] == [
        {
            "change": "changed",
            "id": CHANGED_ID,
            "old": {"price": "0.008 USD per 1000", "rule": "old/anthropic.rules:77"},
            "new": {"price": "0.009 USD per 1000", "rule": "new/anthropic.rules:77"},
        }
    ]
    assert data["statements"] == []

    # Every charge the old rule priced rises by its quantity x 0.001 / 1000; nothing else moves.
    expected_total = Decimal(0)
    for path, document in zip(corpus, data["documents"], strict=True):
        assert document["document"] == str(path)
        raw = read_document(path.read_text(encoding="utf-8"), path.name)
        try:
            bill = rules.evaluate(raw)
        except Exception:  # refused under the old rules, and so under the new: the change touches no refusal
            assert document["status"] == "refused"
            assert document["new"]["problems"] and document["charges"] == []
            continue
        expected = [
            {
                "item": item.index,
                # A charge's id in a diff narrows the rule's region list to the item's region.
                # (and, as diffs match charges, leaves out the version's `from`).
                "id": CHANGED_ID.replace("region in us-east-1, us-west-2", f"region = {raw['usage'][item.index - 1]['region']}")
                .replace("; from 2024-07-01", ""),
                "old": charge.amount,
                "new": charge.amount + charge.quantity * Decimal("0.001") / 1000,
            }
            for item in bill.items
            for charge in item.charges
            if charge.rule_id == CHANGED_ID and charge.quantity != 0  # no tokens, no change
        ]
        got = [
            {"item": c["item"], "id": c["id"], "old": Decimal(c["old"]), "new": Decimal(c["new"])}
            for c in document["charges"]
        ]
        assert got == expected, path.name
        delta = sum((e["new"] - e["old"] for e in expected), Decimal(0))
        assert Decimal(document["delta"]) == delta
        assert Decimal(document["new"]["total"]) - Decimal(document["old"]["total"]) == delta
        assert document["status"] == ("changed" if expected else "unchanged")
        assert document["unchanged_charges"] == sum(len(i.charges) for i in bill.items) - len(expected)
        expected_total += delta
    assert Decimal(data["total"]["delta"]) == expected_total

    # The same, by hand, for the documents written for this test.
    deltas = {Path(d["document"]).name: d["delta"] for d in data["documents"]}
    assert Decimal(deltas["monthly.yaml"]) == Decimal("0.011")  # 11,000 tokens
    assert Decimal(deltas["chat.yaml"]) == Decimal("0.25")  # 250,000 tokens in us-east-1; Tokyo's table is another rule
    assert Decimal(deltas["batch.json"]) == Decimal("1")  # 1,000,000 batch tokens in us-west-2
    assert Decimal(deltas["reserved.yaml"]) == Decimal(0)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_one_price_changed(fmt, work, text_snapshot):
    one_price_changed(work)
    run = run_cli("diff", "old", "new", *DOCUMENTS, "--format", fmt)
    assert run.code == 0
    assert run.err == ""
    assert run.transcript() == text_snapshot


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_newly_refused_and_newly_priced_documents_fail_the_gate(fmt, work, text_snapshot):
    refusals_changed(work)
    run = run_cli("diff", "old", "new", *DOCUMENTS, "--format", fmt, "--fail-above", "5")
    assert run.code == 1
    assert run.err == (
        "more than 5% of change:\n"
        "  tests/diff/chat.yaml is newly refused\n"
        "  tests/diff/opus-east.yaml is newly priced\n"
    )
    assert run.transcript() == text_snapshot


def test_newly_refused_shows_the_reason(work):
    refusals_changed(work)
    data = json.loads(run_cli("diff", "old", "new", "tests/diff/chat.yaml", "tests/diff/opus-east.yaml", "--format", "json").out)
    chat, opus = data["documents"]
    assert (chat["status"], chat["old"]["total"], chat["new"]["total"]) == ("newly refused", "6.324", None)
    assert chat["new"]["problems"] == [
        "item 3 (triage): error[BU202]: no rule prices text usage with model claude-instant, region us-west-2, mode on_demand, "
        "scope in_region, service_tier standard, latency standard; "
        "the closest rule (new/anthropic.rules:89) needs region in ap-northeast-1 (region is us-west-2)"
    ]
    assert (opus["status"], opus["old"]["total"], opus["new"]["total"]) == ("newly priced", None, "0.675")
    assert opus["old"]["problems"] == [
        "item 1 (opus east): error[BU201]: Claude 3 Opus is offered only in us-west-2 (old/anthropic.rules:46)"
    ]
    removed = [(r["change"], r["id"]) for r in data["rules"]]
    assert removed == [
        ("removed", "text/input_tokens[region in us-east-1, us-west-2; model = claude-instant; from 2024-07-01]"),
        ("removed", "text/output_tokens[region in us-east-1, us-west-2; model = claude-instant; from 2024-07-01]"),
        ("removed", "text/cache_read_tokens[region in us-east-1, us-west-2; model = claude-instant; from 2024-07-01]"),
        ("removed", "text/cache_write_tokens[region in us-east-1, us-west-2; model = claude-instant; from 2024-07-01]"),
        ("removed", "text/cache_write_1h_tokens[region in us-east-1, us-west-2; model = claude-instant; from 2024-07-01]"),
    ]
    assert [(s["change"], s["reason"]) for s in data["statements"]] == [
        ("removed", "Claude 3 Opus is offered only in us-west-2"),
        ("added", "Claude 3 Opus is offered only in us-east-1, us-west-2"),
    ]
    # Documents whose status changed take no part in the overall total.
    assert data["total"] == {"documents": 0, "old": "0", "new": "0", "delta": "0", "percent": "0.00"}


@pytest.mark.parametrize(("limit", "code"), [("12.5", 0), ("12.49", 1), ("0", 1), ("100", 0)])
def test_fail_above_compares_the_exact_percent(limit, code, work):
    """1,000 Claude 2.1 input tokens: 0.008 -> 0.009 USD is +12.5% exactly, for the document and the total."""
    one_price_changed(work)
    (work / "small.yaml").write_text(
        "usage:\n  - {kind: text, model: claude-2.1, region: us-east-1, input_tokens: 1000, at: 2024-07-15}\n", encoding="utf-8"
    )
    run = run_cli("diff", "old", "new", "small.yaml", "--fail-above", limit)
    assert run.code == code
    assert "small.yaml: 0.008 -> 0.009 USD, +0.001 (+12.50%)" in run.out
    if code:
        assert run.err == (
            f"more than {limit}% of change:\n"
            "  the total changes by +0.001 (+12.50%)\n"
            "  small.yaml changes by +0.001 (+12.50%)\n"
        )
    else:
        assert run.err == ""


def test_the_same_rules_change_nothing(work):
    run = run_cli("diff", "old", "new", *DOCUMENTS, "--fail-above", "0")
    assert run.code == 0
    assert run.out.startswith("0 rules changed, 0 added, 0 removed; 0 of 6 documents changed, 0 newly refused, 0 newly priced\n")
    assert "examples/monthly.yaml: 29469.684 -> 29469.684 USD, unchanged (8 charges)" in run.out


def test_moving_a_rule_to_another_line_changes_nothing(work):
    comment = "# On-demand and batch (the page gave batch no price of its own), USD per 1,000 tokens.\n"
    edit(work / "new" / "anthropic.rules", comment, "# On-demand and batch,\n# USD per 1,000 tokens.\n\n")
    data = json.loads(run_cli("diff", "old", "new", *DOCUMENTS, "--format", "json").out)
    assert data["rules"] == [] and data["statements"] == []
    assert {d["status"] for d in data["documents"]} == {"unchanged", "refused"}


def test_unreadable_documents_are_refused_with_every_problem(work):
    (work / "bad.json").write_text('{"usage": [', encoding="utf-8")
    run = run_cli("diff", "old", "new", "bad.json", "missing.yaml", "examples/monthly.yaml")
    assert run.code == 2
    assert run.out == ""
    assert run.err == (
        "usage refused: 2 problems, nothing was priced\n"
        "  bad.json: error[BU002]: not valid JSON: Expecting value at line 1, column 12\n"
        "  missing.yaml: error[BU001]: cannot read usage document: No such file or directory\n"
    )


def test_an_unreadable_rule_folder_is_refused(work):
    edit(work / "new" / "anthropic.rules", "offer claude-3-opus only", "offer claude-3-opuss only")
    run = run_cli("diff", "old", "new", "examples/monthly.yaml")
    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith("new/anthropic.rules:46:7: error[BR200]: unknown model `claude-3-opuss`")


@pytest.mark.parametrize("limit", ["-1", "five", "NaN"])
def test_fail_above_needs_a_percent(limit, work, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["diff", "old", "new", "examples/monthly.yaml", "--fail-above", limit])
    assert exit_.value.code == 2
    assert "--fail-above: expected a percent" in capsys.readouterr().err


def test_a_region_added_to_a_table_changes_no_charge(tmp_path, monkeypatch):
    import shutil

    for name in ("old", "new"):
        shutil.copytree(ROOT / "rulesets" / "bedrock", tmp_path / name)
    new = tmp_path / "new"
    table = "prices text in eu-west-2, sa-east-1, ca-central-1, ap-south-1, ap-southeast-2, eu-west-3 from 2024-07-01\n"
    text = (new / "anthropic.rules").read_text(encoding="utf-8")
    assert table in text
    (new / "anthropic.rules").write_text(text.replace(table, table.replace(" from", ", eu-central-1 from")), encoding="utf-8")
    usage = tmp_path / "usage.yaml"
    usage.write_text(
        "usage:\n  - {kind: text, model: claude-3-sonnet, region: eu-west-2, input_tokens: 1000, output_tokens: 10, at: 2024-07-15}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    run = run_cli("diff", "old", "new", "usage.yaml", "--format", "json")
    data = json.loads(run.out)
    assert {rule["change"] for rule in data["rules"]} == {"added", "removed"}  # the table's rules are new rules
    (document,) = data["documents"]
    assert (document["status"], document["charges"], document["delta"]) == ("unchanged", [], "0")


def test_documents_whose_totals_no_exact_sum_holds_are_refused_not_an_internal_error(in_tmp):
    # Each document's total is exact; their sum would need more digits than exact arithmetic holds.
    (in_tmp / "rules").mkdir()
    (in_tmp / "rules" / "p.rules").write_text(
        'currency USD\nregion r1 "R1"\nprovider p "P"\n  model m "M"\nend\n'
        'kind text "T"\n  model: model\n  region: region\n  tokens: count = 0 unit tokens\n  dec: decimal = 0 unit things\nend\n'
        "prices text in any\n| model | tokens per 1 | dec per 1 |\n|-------|--------------|-----------|\n"
        f"| m     | 1{'0' * 80}   | 0.{'0' * 38}1   |\n",
        encoding="utf-8",
    )
    (in_tmp / "big.yaml").write_text(f"usage:\n - {{kind: text, model: m, region: r1, tokens: 1{'0' * 39}}}\n", encoding="utf-8")
    (in_tmp / "small.yaml").write_text(f"usage:\n - {{kind: text, model: m, region: r1, dec: 0.{'0' * 36}1}}\n", encoding="utf-8")
    for document in ("big.yaml", "small.yaml"):
        assert run_cli("eval", document, "--rules", "rules").code == 0
    for fmt in ("table", "json", "markdown"):
        run = run_cli("diff", "rules", "rules", "big.yaml", "small.yaml", "--format", fmt)
        assert (run.code, run.out) == (2, "")
        assert run.err.endswith("error[BU204]: the total of the documents cannot be computed exactly\n")
