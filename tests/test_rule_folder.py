"""A rules folder holding things that are not rule files: FIFOs, devices, link loops.

Run through the CLI in a child process with a timeout, so a regression (a read that
blocks on a FIFO, or reads /dev/zero until memory runs out) fails instead of hanging.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev/zero are POSIX")

SHIPPED = sorted((ROOT / "rulesets" / "bedrock").glob("*.rules"))
USAGE = ROOT / "examples" / "monthly.yaml"


def _folder(tmp_path, name, make):
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in SHIPPED:
        shutil.copy(path, folder / path.name)
    make(folder / name)
    return folder


def _cli(tmp_path, *args):
    # 60 s: far above what loading takes, far below a hang
    done = subprocess.run(
        [sys.executable, "-m", "bedrock_rules", *args], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.returncode, done.stdout, done.stderr


CASES = {
    "fifo": (lambda path: os.mkfifo(path), "BR004", "not a regular file: a FIFO (named pipe)"),
    "dev-zero": (lambda path: path.symlink_to("/dev/zero"), "BR004", "not a regular file: a character device"),
    "folder": (lambda path: path.mkdir(), "BR004", "not a regular file: a folder"),
    "link-loop": (lambda path: path.symlink_to(path.name), "BR001", "cannot read rule file: Too many levels of symbolic links"),
}


@pytest.mark.parametrize("command", ["check", "eval"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_what_is_not_a_regular_file_is_refused_with_its_code(case, command, tmp_path):
    make, code, message = CASES[case]
    _folder(tmp_path, "zz.rules", make)
    args = ["check", "--rules", "rules"] if command == "check" else ["eval", str(USAGE), "--rules", "rules"]
    status, out, err = _cli(tmp_path, *args)
    shown = out + err  # `check` reports on standard output, `eval` refuses on standard error
    assert status == 2, shown
    assert f"rules/zz.rules:1:1: error[{code}]: {message}" in shown
    assert "Traceback" not in shown
    if command == "eval":
        assert out == ""  # no bill


def test_a_fifo_given_by_name_is_refused_not_opened_for_a_blocking_read(tmp_path):
    os.mkfifo(tmp_path / "prices.rules")
    status, out, err = _cli(tmp_path, "check", "--rules", "prices.rules")
    assert status == 2
    assert "prices.rules:1:1: error[BR004]: not a regular file: a FIFO (named pipe)" in out + err


def test_fmt_refuses_a_fifo_too(tmp_path):
    os.mkfifo(tmp_path / "prices.rules")
    status, out, err = _cli(tmp_path, "fmt", "--check", "prices.rules")
    assert status == 2, out + err
    assert "not a regular file" in out + err
    assert "Traceback" not in out + err


def test_a_link_to_a_regular_file_is_still_read(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in SHIPPED:
        (folder / path.name).symlink_to(path)
    status, _, err = _cli(tmp_path, "check", "--rules", "rules")
    assert status == 0, err


def test_at_most_the_limit_plus_one_byte_is_read(tmp_path, monkeypatch):
    from bedrock_rules import limits, loader

    monkeypatch.setattr(limits, "MAX_RULE_FILE_BYTES", 1000)
    path = tmp_path / "big.rules"
    path.write_bytes(b"# " + b"x" * 5000 + b"\n")
    reads = []
    real_read = os.read
    monkeypatch.setattr(loader.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(loader.RuleFileError) as raised:
        loader.read_rule_text(str(path))
    assert raised.value.diagnostics[0].code == "BR003"
    assert sum(reads) <= 1001


def test_a_rules_folder_that_cannot_be_listed_says_so_not_that_it_is_empty(tmp_path, monkeypatch):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.rules").write_text("currency USD\n", encoding="utf-8")
    listing = os.listdir

    def refused(path=".", *rest):
        if str(path) == str(tmp_path / "rules"):
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path, *rest)

    monkeypatch.setattr(os, "listdir", refused)
    run = run_cli("check", "--rules", str(tmp_path / "rules"))
    assert run.code == 2
    assert f"{tmp_path / 'rules'}:1:1: error[BR001]: cannot read this folder: Permission denied" in run.out + run.err
