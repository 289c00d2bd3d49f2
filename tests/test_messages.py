"""Broken and hostile inputs through the command line: each one's exact message and exit status.

tests/messages/ holds the inputs: usage documents (`*.yaml`, `*.json`), priced with
`bedrock-rules eval` against the bundled rules, and self-contained rule files (`rule-*.rules`),
loaded and their worked examples run with `bedrock-rules test`. The commands run inside
that folder, so the paths in messages are the file names. Some files hold bytes an editor
would not keep (NUL, invalid UTF-8, a byte-order mark, CRLF): edit them with care.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, run_cli

FOLDER = ROOT / "tests" / "messages"
CASES = sorted(p for p in FOLDER.iterdir() if p.suffix in (".rules", ".yaml", ".json"))


def command(case) -> tuple[str, ...]:
    return ("test", "--rules", case.name) if case.suffix == ".rules" else ("eval", case.name)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_message(case, monkeypatch, text_snapshot):
    monkeypatch.chdir(FOLDER)
    run = run_cli(*command(case))
    assert run.out == "" or run.out.endswith("failed\n")  # nothing is priced; `test` counts its examples
    assert "internal error" not in run.err and "Traceback" not in run.err
    # 2: refused input; 1: rules that load but whose worked examples the rules refuse.
    assert run.code == 2 or (run.code == 1 and case.suffix == ".rules")
    assert f"$ bedrock-rules {' '.join(command(case))}\n{run.transcript()}" == text_snapshot


def test_there_are_at_least_40_distinct_inputs_of_both_sorts():
    assert len(CASES) >= 40
    assert len({c.stem for c in CASES}) == len(CASES)
    assert len([c for c in CASES if c.suffix == ".rules"]) >= 15
    assert len({(c.suffix, c.read_bytes()) for c in CASES}) == len(CASES)
