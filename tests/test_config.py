"""Which ruleset a command uses: --rules, the project configuration found walking up, or the bundled one."""

from __future__ import annotations

import json
import shutil

import pytest

from bedrock_rules.cli import main
from conftest import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "monthly.yaml"
BUNDLED = "ruleset: bedrock (bundled)"


@pytest.fixture
def project(in_tmp):
    """An analyst's repository: its own rules in rules/, a usage document, a subfolder to work in."""
    shutil.copytree(ROOT / "rulesets" / "bedrock", in_tmp / "rules")
    shutil.copy(EXAMPLE, in_tmp / "monthly.yaml")
    (in_tmp / "reports" / "2026").mkdir(parents=True)
    return in_tmp


@pytest.mark.parametrize("command", [("check",), ("test",), ("eval", "monthly.yaml"), ("explain", "monthly.yaml")])
def test_a_folder_with_rule_files_and_no_choice_is_refused(project, command):
    run = run_cli(*command)
    assert run.code == 2
    assert run.out == ""
    assert run.err == (
        "bedrock-rules: rules/ holds rule files (ai21.rules, amazon.rules, anthropic.rules, …) but no ruleset was "
        "chosen, so the bundled Amazon Bedrock ruleset is not used silently: pass --rules rules to use them, or "
        'write rules = "rules" (or rules = "bundled" for the shipped ruleset) in bedrock-rules.toml or in '
        "[tool.bedrock-rules] of pyproject.toml\n"
    )


def test_rule_files_in_the_folder_itself_are_named_too(in_tmp):
    shutil.copy(ROOT / "rulesets" / "bedrock" / "shared.rules", in_tmp)
    run = run_cli("check")
    assert run.code == 2
    assert "this folder holds rule files (shared.rules)" in run.err and "pass --rules . to use them" in run.err


def test_rules_option_chooses_and_is_said(project):
    run = run_cli("check", "--rules", "rules")
    assert (run.code, run.ruleset, run.out) == (0, "ruleset: rules (--rules)", "rules: no problems found\n")


def test_a_folder_without_rule_files_uses_the_bundled_ruleset_and_says_so(in_tmp):
    run = run_cli("eval", str(EXAMPLE), "--format", "json")
    assert (run.code, run.ruleset, run.err) == (0, BUNDLED, "")
    assert json.loads(run.out)["total"] == "29469.684"


def test_the_configuration_is_found_walking_up_and_its_paths_are_its_own(project, monkeypatch):
    (project / "bedrock-rules.toml").write_text('rules = "rules"\n', encoding="utf-8")
    monkeypatch.chdir(project / "reports" / "2026")
    run = run_cli("eval", "../../monthly.yaml")
    assert run.code == 0
    assert run.ruleset == f"ruleset: ../../rules (from {project / 'bedrock-rules.toml'})"
    assert "../../rules/anthropic.rules:77" in run.out  # bills cite the rules as --rules ../../rules would


def test_pyproject_table_counts_and_a_pyproject_without_it_is_passed_over(project, monkeypatch):
    (project / "pyproject.toml").write_text('[tool.bedrock-rules]\nrules = "bundled"\n', encoding="utf-8")
    (project / "reports" / "pyproject.toml").write_text('[project]\nname = "reports"\n', encoding="utf-8")
    monkeypatch.chdir(project / "reports")
    run = run_cli("check")
    assert run.code == 0
    assert run.ruleset == f"ruleset: bedrock (bundled, from {project / 'pyproject.toml'} [tool.bedrock-rules])"


def test_in_one_folder_bedrock_rules_toml_wins_over_pyproject(project):
    (project / "pyproject.toml").write_text('[tool.bedrock-rules]\nrules = "bundled"\n', encoding="utf-8")
    (project / "bedrock-rules.toml").write_text('rules = "rules"\n', encoding="utf-8")
    assert run_cli("check").ruleset == f"ruleset: rules (from {project / 'bedrock-rules.toml'})"


def test_the_nearest_configuration_wins(project, monkeypatch):
    (project / "bedrock-rules.toml").write_text('rules = "rules"\n', encoding="utf-8")
    (project / "reports" / "bedrock-rules.toml").write_text('rules = "bundled"\n', encoding="utf-8")
    monkeypatch.chdir(project / "reports" / "2026")
    assert run_cli("check").ruleset.startswith("ruleset: bedrock (bundled, from ")


def test_rules_option_wins_over_the_configuration(project):
    (project / "bedrock-rules.toml").write_text('rules = "bundled"\n', encoding="utf-8")
    run = run_cli("eval", "monthly.yaml", "--rules", "rules")
    assert (run.code, run.ruleset) == (0, "ruleset: rules (--rules)")
    assert "rules/anthropic.rules:77" in run.out and "bedrock:" not in run.out


def test_a_configuration_without_rules_in_a_folder_of_rule_files_is_refused_too(project):
    (project / "bedrock-rules.toml").write_text('[defaults.eval]\nformat = "json"\n', encoding="utf-8")
    run = run_cli("eval", "monthly.yaml")
    assert run.code == 2
    assert f"no ruleset was chosen and {project / 'bedrock-rules.toml'} names no rules" in run.err


def test_defaults_are_options_a_project_always_passes(project):
    (project / "bedrock-rules.toml").write_text(
        'rules = "rules"\n[defaults.eval]\nformat = "json"\n[defaults.test]\ncoverage = true\n', encoding="utf-8"
    )
    run = run_cli("eval", "monthly.yaml")
    assert json.loads(run.out)["total"] == "29469.684"
    assert run_cli("eval", "monthly.yaml", "--format", "table").out.startswith("item")  # the command line still wins
    assert "coverage: " in run_cli("test").out


def test_group_by_default_is_read_as_the_option_reads_it(project):
    text = 'rules = "rules"\n[defaults.eval]\ngroup-by = "kind, model"\nformat = "csv"\n'
    (project / "bedrock-rules.toml").write_text(text, encoding="utf-8")
    run = run_cli("eval", "monthly.yaml")
    assert run.code == 0
    assert run.out.splitlines()[0].startswith("kind,model,")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rules = "rules"\n[defaults.eval]\nformat = "xml"\n', "format: expected one of table, json, csv, focus, html, got 'xml'"),
        ('rules = "rules"\n[defaults.eval]\nstrict = "yes"\n', "[defaults.eval] strict: expected true or false"),
        ('rules = "rules"\n[defaults.eval]\nformat = 3\n', "[defaults.eval] format: expected a string, as it would be written after"),
        ('rules = "rules"\n[defaults.eval]\nrules = "x"\n', "[defaults.eval] rules: eval has no option --rules to default"),
        ('rules = "rules"\n[defaults.test]\nmin-coverage = "abc"\n', "min-coverage: expected a percent such as 5 or 0.5, got 'abc'"),
        ('rules = "rules"\n[defaults.evaluate]\nformat = "json"\n', "[defaults.evaluate]: no such command; the commands are eval, test"),
        ('rules = "rules"\ndefaults = 1\n', "defaults must hold one table per command, such as [defaults.eval]"),
        ('rule = "rules"\n', "unknown key 'rule'; the keys are rules, overlays, profiles, defaults"),
        ("rules = 5\n", 'rules must be a folder name, or "bundled" for the shipped ruleset'),
        ('rules = "rules"\noverlays = ["acme.rules"]\n', "acme.rules:1:1: error[BR001]: no such rule file or folder"),
        ('rules = "rules"\noverlays = "acme.rules"\n', "overlays must be a list of file names"),
        ('rules = "rules"\nprofiles = []\n', "profiles must be a file name"),
        ('rules = "rules\n', "not valid TOML: "),
    ],
    ids=["bad-choice", "flag-not-bool", "not-text", "rules-in-defaults", "bad-percent", "unknown-command",
         "defaults-not-tables", "unknown-key", "rules-not-text", "overlay-missing", "overlays-not-list", "profiles-not-text", "bad-toml"],
)
def test_a_configuration_that_cannot_be_used_is_refused_with_its_file(project, text, message):
    (project / "bedrock-rules.toml").write_text(text, encoding="utf-8")
    run = run_cli("eval", "monthly.yaml") if "defaults.test" not in text else run_cli("test")
    assert run.code == 2
    assert run.out == ""
    if "overlays = [" in text:  # the configuration is sound; the overlay file it names is missing
        assert run.err == message + "\n"
        return
    assert run.err.startswith(f"{project / 'bedrock-rules.toml'}: ")
    assert message in run.err


def test_configured_overlays_price_at_the_negotiated_rates(project):
    """`overlays = [...]` layers the files on the configured rules; `--overlay` replaces the list."""
    shutil.copy(ROOT / "examples" / "overlays" / "acme.rules", project / "acme.rules")
    (project / "bedrock-rules.toml").write_text('rules = "rules"\noverlays = ["acme.rules"]\n', encoding="utf-8")
    (project / "sonnet.yaml").write_text(
        "usage:\n  - kind: text\n    model: claude-3.5-sonnet\n    region: us-east-1\n    at: 2026-03-15\n"
        "    input_tokens: 10000\n    output_tokens: 2000\n",
        encoding="utf-8",
    )
    run = run_cli("eval", "sonnet.yaml", "--format", "json")
    assert run.code == 0, run.err
    assert run.ruleset == f"ruleset: rules (from {project / 'bedrock-rules.toml'}); overlays: acme.rules"
    bill = json.loads(run.out)
    assert bill["total"] == "0.048"
    assert [c["list_rate"] for c in bill["items"][0]["charges"]] == ["0.003", "0.015"]
    tests = run_cli("test")
    assert tests.code == 0
    assert "PASS  acme.rules:17  Acme in March 2026" in tests.out


def test_configured_profiles_reach_the_log_reader(project, monkeypatch):
    (project / "profiles.yaml").write_text("a1b2c3d4e5f6: anthropic.claude-3-haiku-20240307-v1:0\n", encoding="utf-8")
    log = str(ROOT / "tests" / "logs" / "guarded.jsonl")
    (project / "bedrock-rules.toml").write_text('rules = "bundled"\n', encoding="utf-8")
    before = run_cli("eval", "--input", "invocation-log", log, "--format", "json")
    without, without_code = json.loads(before.out), before.code
    (project / "bedrock-rules.toml").write_text('rules = "bundled"\nprofiles = "profiles.yaml"\n', encoding="utf-8")
    monkeypatch.chdir(project / "reports")  # the profiles file is found beside the configuration, not here
    run = run_cli("eval", "--input", "invocation-log", log, "--format", "json")
    data = json.loads(run.out)
    assert run.code == without_code == 3, run.err  # the log holds calls no rule prices either way
    assert data["counts"]["priced"] == without["counts"]["priced"] + 1
    assert not any("application inference profile" in u["reason"] for u in data["unpriced"])
    assert any("application inference profile" in u["reason"] for u in without["unpriced"])


def test_a_missing_configured_folder_is_a_rules_error(project):
    (project / "bedrock-rules.toml").write_text('rules = "nowhere"\n', encoding="utf-8")
    run = run_cli("check")
    assert run.code == 2 and run.ruleset == f"ruleset: nowhere (from {project / 'bedrock-rules.toml'})"


@pytest.mark.parametrize("command", ["check", "test"])
def test_check_and_test_name_the_rules_one_way(in_tmp, command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "rules"])
    assert stop.value.code == 2
    assert "unrecognized arguments: rules" in capsys.readouterr().err


def test_version_and_help_need_no_configuration(project):
    (project / "bedrock-rules.toml").write_text("broken = [\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        run_cli("--version")
    assert stop.value.code == 0


def test_diff_says_the_two_rulesets_it_compares(in_tmp):
    shutil.copytree(ROOT / "rulesets" / "bedrock", in_tmp / "old")
    shutil.copytree(ROOT / "rulesets" / "bedrock", in_tmp / "new")
    run = run_cli("diff", "old", "new", str(EXAMPLE))
    assert (run.code, run.ruleset) == (0, "ruleset: old (old), new (new)")


def test_fmt_without_a_path_formats_the_configured_rules(project, monkeypatch):
    (project / "bedrock-rules.toml").write_text('rules = "rules"\n', encoding="utf-8")
    mistral = project / "rules" / "mistral.rules"
    mistral.write_text(mistral.read_text(encoding="utf-8").replace("provider mistral", "provider   mistral"), encoding="utf-8")
    monkeypatch.chdir(project / "reports" / "2026")
    run = run_cli("fmt", "--check")
    assert run.code == 1, run.err
    assert run.ruleset == f"ruleset: ../../rules (from {project / 'bedrock-rules.toml'})"
    assert run.out.startswith("--- ../../rules/mistral.rules\n")
    assert run_cli("fmt").out == "../../rules/mistral.rules\n"
    assert run_cli("fmt", "--check").code == 0


def test_fmt_without_a_configuration_formats_the_current_folder(in_tmp):
    (in_tmp / "a.rules").write_text("currency   USD\n", encoding="utf-8")
    run = run_cli("fmt")
    assert (run.code, run.out, run.ruleset, run.err) == (0, "a.rules\n", "", "")


# A configuration someone else wrote (a cloned repository) --------------------------------


@pytest.mark.parametrize("what", ["fifo", "folder", "dangling-link", "device-link", "loop"])
def test_a_configuration_that_is_not_a_regular_file_is_refused_not_passed_over(project, what, monkeypatch):
    import os

    (project / "bedrock-rules.toml").write_text('rules = "rules"\n', encoding="utf-8")  # the one further up
    (project / "reports" / "2026" / "usage.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    here = project / "reports" / "2026"
    target = here / "bedrock-rules.toml"
    if what == "fifo":
        os.mkfifo(target)
    elif what == "folder":
        target.mkdir()
    elif what == "dangling-link":
        target.symlink_to(here / "missing.toml")
    elif what == "device-link":
        target.symlink_to("/dev/zero")
    else:
        target.symlink_to(target)
    monkeypatch.chdir(here)
    run = run_cli("eval", "usage.yaml")  # a FIFO read would hang: it is never opened for reading in blocking mode
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith(f"{target}: ")
    assert "not a regular file" in run.err or "cannot read" in run.err


def test_a_configuration_past_a_mebibyte_is_refused(project):
    (project / "bedrock-rules.toml").write_text('rules = "rules"\n' + "# padding\n" * 120_000, encoding="utf-8")
    run = run_cli("eval", "monthly.yaml")
    assert run.code == 2 and "too large: more than 1,048,576 bytes" in run.err


def test_configured_profiles_that_are_a_fifo_are_refused_not_read(project):
    import os

    os.mkfifo(project / "profiles.yaml")
    (project / "bedrock-rules.toml").write_text('rules = "bundled"\nprofiles = "profiles.yaml"\n', encoding="utf-8")
    run = run_cli("eval", "--input", "invocation-log", str(ROOT / "tests" / "logs" / "mixed.jsonl"))
    assert (run.code, run.out) == (2, "")
    assert f"profiles: {project / 'profiles.yaml'} is not a regular file" in run.err


@pytest.mark.parametrize(("command", "text"), [
    ("snapshot", "[defaults.snapshot]\nupdate = true\n"),
    ("eval", '[defaults.eval]\nformat = "focus"\noutput = "../../.bashrc"\n'),
])
def test_a_configuration_cannot_make_a_command_write(project, command, text):
    (project / "bedrock-rules.toml").write_text('rules = "rules"\n' + text, encoding="utf-8")
    run = run_cli(command, "monthly.yaml")
    assert (run.code, run.out) == (2, "")
    assert "writes files, so it is given on the command line only" in run.err


def test_configured_rules_that_are_a_fifo_are_refused_not_read(project):
    import os

    os.mkfifo(project / "prices.rules")
    (project / "bedrock-rules.toml").write_text('rules = "prices.rules"\n', encoding="utf-8")
    run = run_cli("eval", "monthly.yaml")  # reading it would hang
    assert (run.code, run.out) == (2, "")
    assert "prices.rules:1:1: error[BR004]: not a regular file: a FIFO (named pipe)" in run.err


def test_configured_rules_through_a_link_out_of_the_project_are_named_on_stderr(project, tmp_path_factory):
    # The configuration's owner chooses the folder, as --rules would; the command says which it used.
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    shutil.copytree(ROOT / "rulesets" / "bedrock", elsewhere / "rules")
    (project / "linked").symlink_to(elsewhere / "rules")
    (project / "bedrock-rules.toml").write_text('rules = "linked"\n', encoding="utf-8")
    run = run_cli("eval", "monthly.yaml")
    assert run.code == 0
    assert run.ruleset == f"ruleset: linked (from {project / 'bedrock-rules.toml'})"
