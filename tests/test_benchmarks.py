"""The benchmark script runs and prints its ratios (its figures are read by people, not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` leaves these out; CI runs them once


def test_the_benchmark_runs_in_quick_mode():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"in process: 5,000 text items over \d+ model/region pairs", done.stdout)
    assert re.search(r"engine [\d,]+ items/s, ratio \d+\.\d\d", done.stdout)
    assert re.search(r"engine \d+\.\d\d us/call, ratio \d+\.\d{3} \(target >= 0.20\)", done.stdout)
    assert re.search(r"command [\d,]+ records/s, ratio \d+\.\d\d \(target >= 3.00\); peak memory \d+ MB", done.stdout)
    assert re.search(r"start-up: python -c pass \d+ ms, eval of one small document \d+ ms", done.stdout)


def test_the_memory_benchmark_runs_in_quick_mode():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--quick"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"json: 2,000 items, [\d.]+ MB", done.stdout)
    assert len(re.findall(r"--format (table|json|csv) +peak +[\d.]+ MiB \(one item: [\d.]+ MiB\), [\d,]+ bytes per item", done.stdout)) == 6
