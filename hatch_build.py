"""Build hook: ship the parser tables and the parsed bundled ruleset, so the command starts fast.

Building the LALR parser from `grammar/rules.lark` and parsing the bundled rule files
take longer than pricing a document. The wheel carries both prebuilt under
`bedrock_rules/prebuilt/`; `bedrock_rules/prebuilt.py` uses them only when they match
the installed grammar, rule files, model module and lark version, and parses from
source otherwise. Nothing is written at run time.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class PrebuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        sys.path.insert(0, self.root)
        try:
            from bedrock_rules import prebuilt
        finally:
            sys.path.remove(self.root)
        out = Path(tempfile.mkdtemp(prefix="bedrock-rules-build-"))
        for name, data in prebuilt.build(Path(self.root)).items():
            (out / name).write_bytes(data)
            build_data["force_include"][str(out / name)] = f"bedrock_rules/prebuilt/{name}"
