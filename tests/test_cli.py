"""The command line as a user meets it: `bedrock-rules eval` formats, inputs, rulesets, exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SEED_DAY, run_cli

USAGE = """\
usage:
  - name: nightly summaries
    kind: text
    model: anthropic.claude-v2:1
    region: us-west-2
    mode: batch
    input_tokens: 11000
    output_tokens: 4000
  - name: product shots
    kind: image
    model: sdxl-1.0
    region: us-east-1
    images: 3
    width: 1024
    height: 768
    steps: 30
  - name: assistant
    kind: agent
"""

TINY_RULES = """\
# A ruleset of one file: a currency, a region, a model, a kind and a table.
currency EUR

region home "Home"

provider acme "Acme"
  model widget "Widget" aka acme.widget-v1
end

kind text "Text"
  model: model
  region: region
  input_tokens: count = 0 unit tokens
end

prices text in any
| model  | input_tokens per 1000 |
|--------|-----------------------|
| widget | 0.5                   |
"""


def test_eval_prints_a_table_by_default(in_tmp, text_snapshot):
    (in_tmp / "usage.yaml").write_text(USAGE, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml")
    assert run.code == 0
    assert run.err == ""
    assert run.out.endswith("total: 0.304 USD\n")
    assert run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", "table") == run
    assert run.out == text_snapshot


def test_eval_prints_json_for_machines(in_tmp, json_snapshot):
    (in_tmp / "usage.yaml").write_text(USAGE, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", "json")
    assert run.code == 0
    bill = json.loads(run.out)
    assert list(bill) == ["schema", "currency", "total", "items"]
    assert bill["total"] == "0.304"
    assert [item["name"] for item in bill["items"]] == ["nightly summaries", "product shots", "assistant"]
    assert run.out == json_snapshot


def test_dash_reads_stdin(in_tmp):
    (in_tmp / "usage.yaml").write_text(USAGE, encoding="utf-8")
    from_file = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", "json")
    from_stdin = run_cli("eval", "--at", SEED_DAY, "-", "--format", "json", stdin=USAGE)
    assert from_stdin.code == 0
    assert from_stdin.out == from_file.out


def test_stdin_json_and_its_problems_name_stdin(in_tmp):
    run = run_cli("eval", "--at", SEED_DAY, "-", "x.yaml", stdin='{"usage": [{"kind": "agent", "colour": 1}]}')
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines() == [
        "usage refused: 2 problems, nothing was priced",
        "  <stdin>, item 1, field colour: error[BU104]: unknown field (fields: region)",
        "  x.yaml: error[BU001]: cannot read usage document: No such file or directory",
    ]


def test_several_documents_in_one_run(in_tmp, json_snapshot):
    (in_tmp / "a.yaml").write_text(USAGE, encoding="utf-8")
    (in_tmp / "b.json").write_text('{"usage": [{"kind": "human_evaluation", "tasks": 2}]}', encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "a.yaml", "b.json", "--format", "json")
    assert run.code == 0
    bill = json.loads(run.out)
    assert [(i["document"], i["item"], i["kind"]) for i in bill["items"]] == [
        ("a.yaml", 1, "text"),
        ("a.yaml", 2, "image"),
        ("a.yaml", 3, "agent"),
        ("b.json", 1, "human_evaluation"),
    ]
    assert bill["total"] == "0.724"
    assert run.out == json_snapshot


def test_one_document_has_no_document_key(in_tmp):
    (in_tmp / "a.yaml").write_text(USAGE, encoding="utf-8")
    bill = json.loads(run_cli("eval", "--at", SEED_DAY, "a.yaml", "--format", "json").out)
    assert all("document" not in item for item in bill["items"])


def test_rules_option_reads_another_ruleset(tmp_path, in_tmp):
    rules = tmp_path / "tiny"
    rules.mkdir()
    (rules / "tiny.rules").write_text(TINY_RULES, encoding="utf-8")
    usage = "usage:\n  - kind: text\n    model: acme.widget-v1\n    region: home\n    input_tokens: 3000\n"
    (in_tmp / "usage.yaml").write_text(usage, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--rules", "tiny", "--format", "json")
    assert run.code == 0, run.err
    bill = json.loads(run.out)
    assert (bill["currency"], bill["total"]) == ("EUR", "1.5")
    assert bill["items"][0]["charges"][0]["id"] == "text/input_tokens[model = widget]"
    table = run_cli("eval", "usage.yaml", "--rules", "tiny")
    assert "tiny/tiny.rules:19" in table.out


def test_rules_option_refuses_names_of_another_ruleset(tmp_path, in_tmp):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "tiny.rules").write_text(TINY_RULES, encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "-", "--rules", "tiny", stdin="usage:\n  - kind: agent\n")
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines()[1] == "  item 1, field kind: error[BU103]: unknown kind \"agent\"; expected one of text"


def test_rules_option_with_a_missing_folder(in_tmp):
    run = run_cli("eval", "--at", SEED_DAY, "-", "--rules", "nowhere", stdin="usage: []\n")
    assert (run.code, run.out) == (2, "")
    assert run.err == "nowhere:1:1: error[BR001]: no such rule file or folder\n"


def test_output_is_byte_identical_on_reruns(in_tmp):
    (in_tmp / "usage.yaml").write_text(USAGE, encoding="utf-8")
    for output in ("json", "table"):
        first = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", output)
        second = run_cli("eval", "--at", SEED_DAY, "usage.yaml", "--format", output)
        assert first.out.encode() == second.out.encode()


def test_missing_usage_file_is_refused(in_tmp):
    run = run_cli("eval", "--at", SEED_DAY, "missing.yaml")
    assert run.code == 2
    assert run.out == ""
    assert run.err == (
        "usage refused: 1 problem, nothing was priced\n"
        "  missing.yaml: error[BU001]: cannot read usage document: No such file or directory\n"
    )


def test_empty_usage_list_is_an_empty_bill(in_tmp):
    run = run_cli("eval", "--at", SEED_DAY, "-", "--format", "json", stdin="usage: []\n")
    assert run.code == 0
    assert json.loads(run.out) == {"schema": "bedrock-rules/bill/2", "currency": "USD", "total": "0", "items": []}


def test_python_dash_m_runs_the_same_command(tmp_path):
    usage = tmp_path / "usage.yaml"
    usage.write_text(USAGE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bedrock_rules", "eval", "--at", SEED_DAY, str(usage), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "ruleset: bedrock (bundled)\n")
    assert done.stdout == run_cli("eval", "--at", SEED_DAY, str(usage), "--format", "json").out


def test_bad_option_values_are_refused_with_usage_errors(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    from bedrock_rules.cli import main

    for args, message in (
        (["test", "--min-coverage", "abc"], "expected a percent such as 5 or 0.5, got 'abc'"),
        (["test", "--min-coverage", "nan"], "expected a percent of 0 or more, got 'nan'"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
    run = run_cli("eval", "--at", SEED_DAY, "examples/monthly.yaml", "--group-by", "modle")
    assert run.code == 2 and run.out == ""
    assert "cannot group usage documents by 'modle' (did you mean 'model'?)" in run.err


def test_grouping_usage_documents_by_a_list_field_names_the_group_by_its_values(monkeypatch):
    monkeypatch.chdir(ROOT)
    run = run_cli("eval", "--at", SEED_DAY, "examples/monthly.yaml", "--group-by", "policies")
    assert run.code == 0
    assert "content_filter, denied_topic, word_filter  text_units (content_filter)" in run.out
    assert run.out.endswith("total: 29469.684 USD\nitems: 5 read, 5 priced\n")


@pytest.mark.parametrize(("args", "said"), [
    (["eval", "examples/monthly.yaml", "--group-by", "model,region,model"], "argument --group-by: model given twice"),
    (["test", "--min-coverage", "150"], "argument --min-coverage: expected a percent from 0 to 100, got '150'"),
])
def test_an_option_value_that_cannot_mean_anything_is_refused(args, said, monkeypatch, capsys):
    from bedrock_rules.cli import main

    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as stopped:  # argparse's own refusal: status 2
        main(args)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith(f"error: {said}\n")


def test_standard_input_named_twice_is_refused_not_read_empty(in_tmp):
    run = run_cli("eval", "-", "-", stdin='{"usage": []}')
    assert (run.code, run.out) == (2, "")
    assert run.err.endswith("- (standard input) is given more than once; it can be read once\n")
