"""`bedrock-rules check`: problems planted in copies of the shipped ruleset are caught, with their code and a usage that shows them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from bedrock_rules.checker import Finding, check, inline, to_github
from bedrock_rules.model import Span
from bedrock_rules.resources import bundled_rules
from conftest import ROOT, run_cli

CASES = sorted((Path(__file__).parent / "check").glob("*.yaml"))


def plant(folder: Path, case: Path) -> dict:
    """Copy the shipped ruleset to `folder/bedrock` and make the one edit the case describes."""
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    shutil.copytree(bundled_rules(), folder / "bedrock")
    target = folder / "bedrock" / spec["file"]
    text = target.read_text(encoding="utf-8")
    assert text.count(spec["replace"]) == 1, f"{case.name}: the text to replace is not in {spec['file']} exactly once"
    target.write_text(text.replace(spec["replace"], spec["with"]), encoding="utf-8")
    return spec


def test_the_shipped_ruleset_is_clean(text_snapshot):
    run = run_cli("check")
    assert run.code == 0
    assert run.transcript() == text_snapshot


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_the_shipped_ruleset_is_clean_in_every_format(fmt):
    run = run_cli("check", "--format", fmt)
    clean = '{\n  "schema": "bedrock-rules/findings/1",\n  "findings": []\n}\n'
    assert (run.code, run.out, run.err) == (0, clean if fmt == "json" else "", "")


@pytest.fixture(scope="module", params=CASES, ids=lambda p: p.stem)
def case(request) -> Path:
    """A planted case, as a module-scoped parameter: pytest runs the tests of one case one
    after the other, so the rules planted alike are compiled and analysed once (the loader
    and the checker keep the last few), not once per test."""
    return request.param


def test_a_planted_problem_is_caught_with_its_code_and_example(case, in_tmp):
    spec = plant(in_tmp, case)
    report = check("bedrock")
    assert report.loaded == (spec["exit"] == 1)
    planted = [f for f in report.findings if f.code == spec["code"] and spec["message"] in f.message]
    assert len(planted) >= 1, "\n\n".join(f.render() for f in report.findings)
    finding = planted[0]
    assert finding.span.path == f"bedrock/{spec['file']}"
    if spec["example"] is None:
        assert finding.example is None
    else:
        assert inline(finding.example) == spec["example"]


@pytest.mark.parametrize("case", [c for c in CASES if "refused" in c.read_text()], ids=lambda p: p.stem)
def test_the_example_a_finding_shows_is_a_usage_that_goes_wrong(case, in_tmp):
    spec = plant(in_tmp, case)
    finding = next(f for f in check("bedrock").findings if f.code == spec["code"] and spec["message"] in f.message)
    (in_tmp / "usage.yaml").write_text(f"usage:\n  - {inline(finding.example)}\n", encoding="utf-8")
    # The bundled list prices by date: the example is priced on a day of the seed's prices.
    run = run_cli("eval", "usage.yaml", "--rules", "bedrock", "--at", "2024-07-15")
    assert run.code == 2
    assert spec["refused"] in run.err


def test_check_output_as_text(case, in_tmp, text_snapshot):
    spec = plant(in_tmp, case)
    run = run_cli("check", "--rules", "bedrock")
    assert run.code == spec["exit"]
    assert run.transcript() == text_snapshot


@pytest.mark.parametrize("fmt", ["json", "github"])
@pytest.mark.parametrize("case", ["overlap", "unreachable-guard", "misspelled"])
def test_check_output_for_machines(case, fmt, in_tmp, text_snapshot):
    spec = plant(in_tmp, Path(__file__).parent / "check" / f"{case}.yaml")
    run = run_cli("check", "--rules", "bedrock", "--format", fmt)
    assert run.code == spec["exit"]
    assert run.transcript() == text_snapshot


def test_a_missing_folder_cannot_be_checked(in_tmp):
    run = run_cli("check", "--rules", "nowhere")
    assert run.code == 2
    assert run.out.startswith("nowhere:1:1: error[BR001]: no such rule file or folder\n")


def test_github_annotations_escape_what_workflow_commands_reserve():
    finding = Finding(
        "BR301",
        "100% sure\r\nsecond line",
        Span("a,b:c.rules", 3, 5, 3, 9),
        example=(("kind", "text"), ("model", "x")),
        related=(Span("a,b:c.rules", 1, 2),),
    )
    assert to_github([finding]) == (
        "::error file=a%2Cb%3Ac.rules,line=3,col=5,endLine=3,endColumn=9,title=BR301::"
        "100%25 sure%0D%0Asecond line%0Aexample: {kind: text, model: x}%0Asee: a,b:c.rules:1:2\n"
    )


# docs/errors.md: every code, with a wrong and a fixed snippet that really do what it says.

ERRORS_MD = ROOT / "docs" / "errors.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def _doc_sections() -> dict[str, list[tuple[str, str]]]:
    text = ERRORS_MD.read_text(encoding="utf-8").partition("\n## Usage documents")[0]  # BU codes: test_usage_errors.py
    parts = re.split(r"^### (BR\d+)", text, flags=re.M)
    return {code: _BLOCK.findall(body) for code, body in zip(parts[1::2], parts[2::2], strict=True)}


def _prelude() -> str:
    before = re.split(r"^## ", ERRORS_MD.read_text(encoding="utf-8"), maxsplit=1, flags=re.M)[0]
    return next(body for lang, body in _BLOCK.findall(before) if lang == "rules")


def _check_snippet(folder: Path, snippet: str):
    folder.mkdir()
    (folder / "prelude.rules").write_text(_prelude(), encoding="utf-8")
    (folder / "zz.rules").write_text(snippet, encoding="utf-8")
    return check(folder.name)


def test_every_code_the_engine_gives_is_documented():
    given = set()
    for path in (ROOT / "bedrock_rules").glob("*.py"):
        given |= set(re.findall(r'"(BR\d{3})"', path.read_text(encoding="utf-8")))
    assert given and given <= set(_doc_sections())


@pytest.mark.parametrize("code", [c for c, blocks in _doc_sections().items() if [b for b in blocks if b[0] == "rules"]])
def test_the_documented_snippets_do_what_they_say(code, in_tmp, monkeypatch):
    blocks = _doc_sections()[code]
    wrong, fixed = (body for lang, body in blocks if lang == "rules")
    report = _check_snippet(in_tmp / "wrong", wrong)
    assert code in {f.code for f in report.findings}, "\n".join(f.render() for f in report.findings)
    for output in (body for lang, body in blocks if lang == "text" and body.startswith("zz.rules")):
        monkeypatch.chdir(in_tmp / "wrong")  # so the output names the file as the document does
        assert "\n".join(f.render() for f in check(".").findings) + "\n" == output
        monkeypatch.chdir(in_tmp)
    report = _check_snippet(in_tmp / "fixed", fixed)
    assert report.loaded and report.findings == (), "\n".join(f.render() for f in report.findings)
