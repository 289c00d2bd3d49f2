"""Exit statuses a script or CI gate can tell apart, Ctrl-C, and the version."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from pathlib import Path

import pytest

import bedrock_rules
from conftest import ROOT, SEED_DAY, run_cli

READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())


def test_an_internal_error_has_its_own_status(in_tmp, monkeypatch):
    # A bug must not read as "findings" (1) or "refused input" (2) to a CI gate.
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("bedrock_rules.billstream.price_item", broken)
    (in_tmp / "usage.yaml").write_text("usage:\n  - kind: text\n    model: claude-2.1\n    region: us-east-1\n", encoding="utf-8")
    run = run_cli("eval", "--at", SEED_DAY, "usage.yaml")
    assert run.code == 70
    assert run.out == ""
    assert run.err == "bedrock-rules: internal error: RuntimeError: a bug\n(set BEDROCK_RULES_DEBUG=1 for the traceback)\n"


def test_nothing_is_printed_when_an_internal_error_comes_after_the_bill(monkeypatch):
    # The bill is held until the command is done, so a failure after it leaves no bill that looks whole.
    from bedrock_rules.commands import eval as eval_command

    real_run = eval_command.run

    def run_then_fail(args, out):
        real_run(args, out)
        raise RuntimeError("after the bill")

    monkeypatch.setattr(eval_command, "run", run_then_fail)
    run = run_cli("eval", "--at", SEED_DAY, str(ROOT / "examples" / "monthly.yaml"))
    assert (run.code, run.out) == (70, "")
    assert run.err.startswith("bedrock-rules: internal error: RuntimeError: after the bill\n")


def test_the_statuses_are_distinct():
    from bedrock_rules import cli

    statuses = [
        cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_REFUSED, cli.EXIT_UNPRICED, cli.EXIT_INTERNAL, cli.EXIT_OUTPUT, cli.EXIT_INTERRUPTED,
    ]
    assert statuses == [0, 1, 2, 3, 70, 74, 130]


def _cli(*args: str, **streams) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bedrock_rules", *args], cwd=ROOT, timeout=120, **streams)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["eval", "examples/monthly.yaml"], ["check"], ["prices", "claude-2.1"]])
def test_output_that_cannot_be_written_says_so_with_its_own_status(args):
    # A full disk: the output is not there, so the status must not say it is (0) or blame the input (2).
    with open("/dev/full", "w") as full:
        run = _cli(*args, stdout=full, stderr=subprocess.PIPE, text=True)
    assert run.returncode == 74
    assert run.stderr.endswith("bedrock-rules: cannot write the output: No space left on device\n")
    assert "Traceback" not in run.stderr


def test_a_closed_standard_output_or_error_is_no_traceback():
    closed_out = _cli("eval", "examples/monthly.yaml", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                      preexec_fn=lambda: os.close(1))
    assert (closed_out.returncode, closed_out.stderr.splitlines()[-1]) == (
        74, "bedrock-rules: cannot write the output: standard output is closed"
    )
    closed_err = _cli("eval", "examples/monthly.yaml", stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(2))
    assert closed_err.returncode == 0  # nobody reads what it says; the bill is written all the same
    assert closed_err.stdout.splitlines()[-1] == "total: 29469.684 USD"


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        bedrock_rules.cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"bedrock-rules {bedrock_rules.__version__}\n"


def test_the_version_is_the_installed_distributions():
    from importlib.metadata import version

    assert bedrock_rules.__version__ == version("bedrock-rules")


LOG_RECORD = (ROOT / "tests" / "logs" / "mixed.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[0]


@pytest.mark.skipif(READ_SYSCALL is None or not Path("/proc/self/syscall").exists(), reason="needs Linux's /proc/PID/syscall")
@pytest.mark.parametrize(
    ("args", "sent"),
    [
        (["eval", "--at", SEED_DAY, "-"], "usage:\n  - kind: text\n    model: claude-2.1\n"),
        (["eval", "--at", SEED_DAY, "--input", "invocation-log", "-"], LOG_RECORD * 3),
    ],
    ids=["usage", "invocation-log"],
)
def test_ctrl_c_prints_one_line_exits_130_and_no_bill(args, sent, tmp_path):
    command = subprocess.Popen(
        [sys.executable, "-m", "bedrock_rules", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        command.stdin.write(sent)
        command.stdin.flush()
        # Wait until the command is blocked reading the rest of its standard input (fd 0).
        deadline = time.monotonic() + 120
        while Path(f"/proc/{command.pid}/syscall").read_text().split()[:2] != [READ_SYSCALL, "0x0"]:
            assert command.poll() is None and time.monotonic() < deadline, command.stderr.read()
            time.sleep(0.02)
        command.send_signal(signal.SIGINT)
        out, err = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 130
    assert out == ""
    assert err == "ruleset: bedrock (bundled)\nbedrock-rules: interrupted; nothing was written\n"


@pytest.fixture
def price_change(tmp_path, monkeypatch):
    """old/ and new/ rulesets where one rate rises by 6.25 %, and a document it changes."""
    import shutil

    for name in ("old", "new"):
        shutil.copytree(ROOT / "rulesets" / "bedrock", tmp_path / name)
    rules = tmp_path / "new" / "anthropic.rules"
    rules.write_text(rules.read_text(encoding="utf-8").replace("0.008", "0.0085"), encoding="utf-8")
    shutil.copy(ROOT / "examples" / "monthly.yaml", tmp_path / "monthly.yaml")
    monkeypatch.chdir(tmp_path)


with localcontext() as _context:
    _context.prec = 300
    _CHANGE = Decimal("0.55") / Decimal("29469.684")
    _BELOW, _ABOVE = (_CHANGE.quantize(Decimal("1e-200"), rounding) for rounding in (ROUND_DOWN, ROUND_UP))


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ("1e-100000", 1),
        ("0." + "0" * 200 + "1", 1),
        ("1" * 50, 0),
        ("1" * 200, 0),
        # The total's change, 0.0055 of 29469.684 (0.0000186632472882...%), to 200 places: just below, just above.
        (str(_BELOW), 1),
        (str(_ABOVE), 0),
    ],
    ids=["tiny-exponent", "200-places", "50-digits", "200-digits", "long-below", "long-above"],
)
def test_fail_above_takes_a_percent_of_any_length_exactly(limit, code, price_change):
    run = run_cli("diff", "old", "new", "monthly.yaml", "--fail-above", limit)
    assert run.code == code, run.err
    assert "internal error" not in run.err


@pytest.mark.parametrize("limit", ["1e1000001", "1e-1000001", "1e999999999999999999"])
def test_fail_above_refuses_a_percent_no_amount_can_be_compared_with(limit, price_change, capsys):
    with pytest.raises(SystemExit) as done:
        bedrock_rules.cli.main(["diff", "old", "new", "monthly.yaml", "--fail-above", limit])
    assert done.value.code == 2
    assert "--fail-above: expected a percent between 1E-1000000 and 1E+1000000" in capsys.readouterr().err
