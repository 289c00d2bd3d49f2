"""`bedrock-rules init`: a fresh folder becomes a rules repository whose CI passes from the start."""

from __future__ import annotations

import shlex
import sys

import pytest
import yaml

from bedrock_rules import __version__
from conftest import ROOT, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None


def ci_commands(repo) -> list[list[str]]:
    """The bedrock-rules commands of the generated workflow's `rules` job, as a shell would split them."""
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "prices.yml").read_text(encoding="utf-8"))
    commands = []
    for step in workflow["jobs"]["rules"]["steps"]:
        line = step.get("run", "")
        if line.startswith("bedrock-rules "):
            commands.append(shlex.split(line, comments=True))
    return commands


@pytest.fixture
def repo(in_tmp):
    run = run_cli("init", "repo")
    assert run.code == 0, run.err
    assert "wrote repo/bedrock-rules.toml" in run.out and "wrote repo/usage/monthly.bill.json" in run.out
    return in_tmp / "repo"


def test_the_generated_ci_commands_pass_in_the_new_repository(repo, monkeypatch):
    monkeypatch.chdir(repo)
    commands = ci_commands(repo)
    assert [c[1] for c in commands] == ["check", "fmt", "test", "snapshot"]
    for command in commands:
        run = run_cli(*command[1:])
        assert run.code == 0, (command, run.out, run.err)


def test_the_stored_bill_is_the_rules_bill_so_a_price_change_fails_ci(repo, monkeypatch):
    monkeypatch.chdir(repo)
    stored = (repo / "usage" / "monthly.bill.json").read_text(encoding="utf-8")
    priced = run_cli("eval", "usage/monthly.yaml", "--rules", "rules", "--format", "json")
    assert priced.code == 0 and priced.out == stored
    # Rules named by their ids: the stored bill holds no `file:line`, which a comment would move.
    assert '"id": "text/input_tokens[' in stored and ".rules:" not in stored
    rules = repo / "rules" / "anthropic.rules"
    row = "| claude-2.1        | 0.008                 | 0.024                  |"
    text = rules.read_text(encoding="utf-8")
    assert text.count(row) == 1
    rules.write_text(text.replace(row, row.replace("0.008", "0.009")), encoding="utf-8")
    [snapshot] = [c for c in ci_commands(repo) if c[1] == "snapshot"]
    assert run_cli(*snapshot[1:]).code == 1


def test_the_repository_holds_the_rules_the_configuration_and_docs_ci_workflow(repo):
    rules = sorted(p.name for p in (repo / "rules").glob("*.rules"))
    bundled = sorted(p.name for p in (ROOT / "rulesets" / "bedrock").glob("*.rules"))
    assert rules == sorted([*bundled, "team.rules"])
    for name in bundled:  # the bundled ruleset, copied as it is, and extended by team.rules
        assert (repo / "rules" / name).read_bytes() == (ROOT / "rulesets" / "bedrock" / name).read_bytes()
    assert "example " in (repo / "rules" / "team.rules").read_text(encoding="utf-8")
    if tomllib is not None:
        config = tomllib.loads((repo / "bedrock-rules.toml").read_text(encoding="utf-8"))
        assert config == {"rules": "rules", "overlays": []}
    docs = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    assert (repo / ".github" / "workflows" / "prices.yml").read_text(encoding="utf-8") == docs.replace(
        "bedrock_rules-0.1.0-py3-none-any.whl", f"bedrock_rules-{__version__}-py3-none-any.whl"
    )
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "prices.yml").read_text(encoding="utf-8"))
    assert "price-diff" in workflow["jobs"]  # the diff posted on pull requests


def test_init_writes_nothing_over_existing_files(repo, in_tmp):
    (repo / "usage" / "monthly.yaml").write_text("usage: []\n", encoding="utf-8")
    (repo / "rules" / "team.rules").unlink()
    run = run_cli("init", "repo")
    assert run.code == 2
    assert "repo/bedrock-rules.toml: exists already; init writes nothing over it" in run.err
    assert "repo/usage/monthly.yaml: exists already" in run.err
    assert not (repo / "rules" / "team.rules").exists()  # not even the files that were missing
    assert (repo / "usage" / "monthly.yaml").read_text(encoding="utf-8") == "usage: []\n"
    assert run.out == ""


def test_init_in_the_current_folder(in_tmp):
    run = run_cli("init")
    assert run.code == 0, run.err
    assert "wrote bedrock-rules.toml\n" in run.out
    assert (in_tmp / "usage" / "monthly.bill.json").is_file()


def test_a_file_where_a_folder_of_the_layout_goes_is_refused_before_anything_is_written(in_tmp):
    (in_tmp / "notes.txt").write_text("x", encoding="utf-8")
    run = run_cli("init", "notes.txt")
    assert (run.code, run.out) == (2, "")
    assert "notes.txt: is not a folder; init lays out its files in a folder here" in run.err
    (in_tmp / "repo").mkdir()
    (in_tmp / "repo" / "rules").write_text("x", encoding="utf-8")
    run = run_cli("init", "repo")
    assert (run.code, run.out) == (2, "")
    assert "rules: is not a folder; init lays out its files in a folder here" in run.err
    assert sorted(p.name for p in (in_tmp / "repo").iterdir()) == ["rules"]


def test_a_write_that_fails_midway_takes_back_what_was_written(in_tmp, monkeypatch):
    from bedrock_rules import scaffold

    real = scaffold.write_atomically
    calls = []

    def disk_fills(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(scaffold, "write_atomically", disk_fills)
    run = run_cli("init", "work/repo")  # `work` does not exist either: init makes it
    assert (run.code, run.out) == (2, "")
    assert f"{calls[-1]}: cannot write: No space left on device" in run.err
    assert list(in_tmp.iterdir()) == []  # its files and every folder it made, gone: init can be run again
    monkeypatch.setattr(scaffold, "write_atomically", real)
    assert run_cli("init", "work/repo").code == 0


def test_a_failed_write_names_the_file_it_was_writing(in_tmp, monkeypatch):
    from bedrock_rules import scaffold

    def no_room(path, data):
        raise OSError(27, "File too large")  # as write() raises it: no file name of its own

    monkeypatch.setattr(scaffold, "write_atomically", no_room)
    run = run_cli("init", "repo")
    assert run.code == 2
    assert "repo/.github/workflows/prices.yml: cannot write: File too large" in run.err
