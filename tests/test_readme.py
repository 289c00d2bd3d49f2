"""The README's set-up commands and the bill it shows stay true."""

from __future__ import annotations

import csv
import re

from conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_exactly_two_set_up_commands_install_and_run():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2
    main_job, tests = commands
    assert "pip install ." in main_job and main_job.endswith("bedrock-rules eval examples/monthly.yaml")
    assert "pip install '.[test]'" in tests and tests.endswith("&& pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI runs the same two commands, once per supported Python, each in a fresh venv.
    assert re.search(r"^\s*pip install --quiet '\.\[test\]'$", ci, flags=re.M)
    assert re.search(r"^\s*pytest$", ci, flags=re.M)


def test_the_bill_the_readme_shows_is_the_bill_the_command_prints(monkeypatch):
    monkeypatch.chdir(ROOT)
    shown = README.split("The first command prints:", 1)[1].split("```\n", 2)[1]
    run = run_cli("eval", "examples/monthly.yaml")
    assert run.code == 0
    assert run.out == shown


def test_the_reconcile_example_is_what_the_command_prints(monkeypatch):
    shown = README.split("$ cd tests/reconcile && bedrock-rules reconcile --cur cur-july-2.csv july-2.jsonl\n", 1)[1].split("```\n", 1)[0]
    monkeypatch.chdir(ROOT / "tests" / "reconcile")
    run = run_cli("reconcile", "--cur", "cur-july-2.csv", "july-2.jsonl")
    assert run.code == 1
    assert run.out == shown


def test_the_focus_example_is_the_first_row_the_command_prints(monkeypatch):
    monkeypatch.chdir(ROOT)
    command = "bedrock-rules eval examples/monthly.yaml --format focus --period 2024-07 --billing-account 111122223333"
    assert f"$ {command}\n" in README
    run = run_cli(*command.split()[1:])
    header, first = run.out.splitlines()[:2]
    row = dict(zip(header.split(","), next(csv.reader([first])), strict=True))
    shown = README.split("The first row, one column a line:", 1)[1].split("```", 2)[1]
    for name, value in re.findall(r"(\w+): (.+?)(?:\s{2,}|$)", shown, flags=re.M):
        assert row[name] == value.strip(), name
