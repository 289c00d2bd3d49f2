"""A wheel built twice from the same source has the same bytes: its prebuilt artifacts do too.

.ci/run builds the whole wheel twice and compares the two files' hashes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

from bedrock_rules import prebuilt
from conftest import ROOT

DIGESTS = (
    "import hashlib, pathlib, sys; from bedrock_rules import prebuilt; "
    "print({k: hashlib.sha256(v).hexdigest() for k, v in sorted(prebuilt.build(pathlib.Path(sys.argv[1])).items())})"
)


def _digests(seed: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", DIGESTS, str(ROOT)],
        env={"PYTHONHASHSEED": seed, "PATH": ""}, capture_output=True, text=True, check=True,
    )
    return done.stdout


def test_prebuilt_artifacts_are_the_same_bytes_in_every_build():
    # Lark numbers its parser states in the order it walks sets hashed by identity or by
    # string hash, which change from process to process; both are fixed before saving.
    first = prebuilt.build(ROOT)
    assert prebuilt.build(ROOT) == first
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(first.items())}
    assert _digests("1") == _digests("2") == f"{digests}\n"
