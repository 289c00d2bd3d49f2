"""A wheel built twice from the same source has the same bytes: its prebuilt artifacts do too.

.ci/run builds the whole wheel twice and compares the two files' hashes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT

# The build hook is a file beside pyproject.toml, not part of the package.
_LOAD_HOOK = (
    "import importlib.util, pathlib; "
    "spec = importlib.util.spec_from_file_location('hatch_build', pathlib.Path(sys.argv[1]) / 'hatch_build.py'); "
    "hook = importlib.util.module_from_spec(spec); spec.loader.exec_module(hook)"
)
DIGESTS = (
    f"import hashlib, pathlib, sys; {_LOAD_HOOK}; "
    "print({k: hashlib.sha256(v).hexdigest() for k, v in sorted(hook.build(pathlib.Path(sys.argv[1])).items())})"
)


def _hook():
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def _digests(seed: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", DIGESTS, str(ROOT)],
        env={"PYTHONHASHSEED": seed, "PATH": ""}, capture_output=True, text=True, check=True,
    )
    return done.stdout


@pytest.mark.slow
def test_prebuilt_artifacts_are_the_same_bytes_in_every_build():
    # Lark numbers its parser states in the order it walks sets hashed by identity or by
    # string hash, which change from process to process; both are fixed before saving.
    hook = _hook()
    first = hook.build(ROOT)
    assert hook.build(ROOT) == first
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(first.items())}
    assert _digests("1") == _digests("2") == f"{digests}\n"


def test_the_prebuilt_parse_is_keyed_as_the_loader_names_the_bundled_files():
    """An installed wheel uses the parse it ships only when the names match (`bedrock:anthropic.rules`)."""
    import pickle

    from bedrock_rules import prebuilt
    from bedrock_rules.loader import BUNDLED_NAME, read_rules
    from bedrock_rules.resources import bundled_rules

    bundle = pickle.loads(_hook().build(ROOT)[prebuilt.BUNDLED])  # noqa: S301 (built here, from this checkout)
    sources, _, _ = read_rules(bundled_rules(), BUNDLED_NAME)
    assert sorted(bundle["files"]) == sorted(s.shown for s in sources)
    assert all(name.startswith("bedrock:") for name in bundle["files"])
