"""docs/ci.md's price-diff step, run as written, with a stand-in for the `gh` command.

The step must edit its own marked comment (never another), post nothing when nothing
changed, and show the diff when something did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

MARKER = "<!-- bedrock-rules price diff -->"
STEP = "Comment the price change on the pull request"

# Records each call; answers the comment listing by running the step's jq filter on $GH_COMMENTS.
FAKE_GH = """#!/usr/bin/env bash
set -eu
printf '%s\\n' "$*" >> "$GH_LOG"
if [ "$1 $2" = "api --paginate" ] && [ "$4" = --jq ]; then
  jq -r "$5" "$GH_COMMENTS"
elif [ "$1 $2 $3" = "api --method PATCH" ]; then
  cp "${6#body=@}" "$GH_OUT/patched-${4##*/}.md"
elif [ "$1 $2" = "pr comment" ] && [ "$4" = --body-file ]; then
  cp "$5" "$GH_OUT/new.md"
else
  echo "unexpected gh call: $*" >&2; exit 9
fi
"""


def _step_script() -> str:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    workflow = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    steps = yaml.safe_load(workflow)["jobs"]["price-diff"]["steps"]
    (step,) = [s for s in steps if s.get("name") == STEP]
    return step["run"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def pull_request(tmp_path):
    """A repository laid out as docs/ci.md says, with the base branch committed."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "rulesets" / "bedrock", repo / "rules")
    (repo / "usage").mkdir()
    shutil.copy(ROOT / "examples" / "monthly.yaml", repo / "usage" / "monthly.yaml")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "gh").write_text(FAKE_GH, encoding="utf-8")
    (tools / "gh").chmod(0o755)
    (tmp_path / "out").mkdir()
    return repo


def _run(repo: Path, comments: list[dict]) -> tuple[subprocess.CompletedProcess, list[str], dict[str, str]]:
    root = repo.parent
    (root / "comments.json").write_text(json.dumps(comments), encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{root / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "BASE": _git(repo, "rev-parse", "HEAD"),
        "PR": "7",
        "GITHUB_REPOSITORY": "prices/team",
        "GH_LOG": str(root / "gh.log"),
        "GH_COMMENTS": str(root / "comments.json"),
        "GH_OUT": str(root / "out"),
    }
    done = subprocess.run(["bash", "-e", "-c", _step_script()], cwd=repo, env=env, capture_output=True, text=True, check=False)
    log = (root / "gh.log").read_text(encoding="utf-8").splitlines() if (root / "gh.log").exists() else []
    posted = {path.name: path.read_text(encoding="utf-8") for path in sorted((root / "out").iterdir())}
    return done, log, posted


def _raise_a_price(repo: Path) -> None:
    rules = repo / "rules" / "anthropic.rules"
    rules.write_text(rules.read_text(encoding="utf-8").replace("0.008", "0.0085"), encoding="utf-8")


OTHERS = [
    {"id": 11, "user": {"login": "reviewer"}, "body": f"{MARKER}\nquoting the bot"},
    {"id": 12, "user": {"login": "github-actions[bot]"}, "body": "another workflow's comment"},
]
OURS = {"id": 13, "user": {"login": "github-actions[bot]"}, "body": f"{MARKER}\n**Price change: …**"}


def test_a_price_change_is_posted_once_with_the_marker_and_the_diff(pull_request):
    _raise_a_price(pull_request)
    done, log, posted = _run(pull_request, OTHERS)
    assert done.returncode == 0, done.stderr
    assert list(posted) == ["new.md"]
    body = posted["new.md"]
    assert body.startswith(f"{MARKER}\n**Price change: +0.0055 USD")
    assert "| `usage/monthly.yaml` | changed | 29469.684 | 29469.6895 | +0.0055 |" in body
    assert log[-1] == "pr comment 7 --body-file comment.md"


def test_a_later_push_edits_its_own_comment_and_no_one_elses(pull_request):
    _raise_a_price(pull_request)
    done, log, posted = _run(pull_request, [*OTHERS, OURS])
    assert done.returncode == 0, done.stderr
    assert list(posted) == ["patched-13.md"]
    assert posted["patched-13.md"].startswith(f"{MARKER}\n**Price change: +0.0055 USD")
    assert log[-1] == "api --method PATCH repos/prices/team/issues/comments/13 -F body=@comment.md"


def test_nothing_changed_posts_nothing(pull_request):
    done, log, posted = _run(pull_request, OTHERS)
    assert done.returncode == 0, done.stderr
    assert posted == {}
    assert [call.split()[:2] for call in log] == [["api", "--paginate"]]  # it looked, and said nothing


def test_nothing_changed_any_more_says_so_in_the_earlier_comment(pull_request):
    done, log, posted = _run(pull_request, [OURS, *OTHERS])
    assert done.returncode == 0, done.stderr
    assert posted == {"patched-13.md": f"{MARKER}\nNo price change: the rules and every bill are as on the base branch.\n"}


def test_the_gate_fails_the_step_after_commenting(pull_request):
    rules = pull_request / "rules" / "anthropic.rules"
    rules.write_text(rules.read_text(encoding="utf-8").replace("39.6", "60"), encoding="utf-8")
    done, log, posted = _run(pull_request, [])
    assert done.returncode == 1
    assert list(posted) == ["new.md"]
    assert "more than 5% of change" in done.stderr


def test_unreadable_rules_fail_without_a_comment(pull_request):
    rules = pull_request / "rules" / "anthropic.rules"
    rules.write_text(rules.read_text(encoding="utf-8").replace("offer claude-3-opus only", "offer claude-3-opuss only"), encoding="utf-8")
    done, log, posted = _run(pull_request, [OURS])
    assert done.returncode == 2
    assert (log, posted) == ([], {})
