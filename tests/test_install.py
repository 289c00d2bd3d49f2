"""The installed command works from any folder, with the grammar and rules it ships."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import ROOT


def test_console_script_prices_the_bundled_example_from_another_folder(tmp_path):
    script = shutil.which("bedrock-rules")
    assert script is not None, "bedrock-rules is not installed on PATH"
    shutil.copy(ROOT / "examples" / "monthly.yaml", tmp_path / "monthly.yaml")
    done = subprocess.run(
        [script, "eval", "monthly.yaml", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    bill = json.loads(done.stdout)
    assert bill["total"] == "29469.684"
    assert bill["items"][0]["charges"][0]["id"] == "text/input_tokens[region in us-east-1, us-west-2; model = claude-2.1; from 2024-07-01]"
    # The table cites the rule from the ruleset's root, the same installed or in a checkout.
    table = subprocess.run([script, "eval", "monthly.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert "bedrock:anthropic.rules:77" in table.stdout.splitlines()[2], table.stdout


def test_python_dash_m_runs_the_same_command(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bedrock_rules", "eval", "-", "--format", "json"],
        input='{"usage": [{"kind": "text", "model": "ai21.j2-mid-v1", "region": "us-east-1",'
        ' "input_tokens": 10000, "output_tokens": 2000, "at": "2024-07-15"}]}',
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == "0.15"
