"""Build hook: ship the parser tables and the parsed bundled ruleset, so the command starts fast.

Building the LALR parser from `grammar/rules.lark` and parsing the bundled rule files
take longer than pricing a document. The wheel carries both prebuilt under
`bedrock_rules/prebuilt/`; `bedrock_rules/prebuilt.py` uses them only when they match
the installed grammar, rule files, model module and lark version, and parses from
source otherwise. Nothing is written at run time.
"""

from __future__ import annotations

import io
import pickle
import sys
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class PrebuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        out = Path(tempfile.mkdtemp(prefix="bedrock-rules-build-"))
        for name, data in build(Path(self.root)).items():
            (out / name).write_bytes(data)
            build_data["force_include"][str(out / name)] = f"bedrock_rules/prebuilt/{name}"


def build(root: Path) -> dict[str, bytes]:
    """The artifacts for a wheel, from a source checkout: file name to bytes."""
    sys.path.insert(0, str(root))
    try:
        import lark

        from bedrock_rules import prebuilt
        from bedrock_rules.loader import BUNDLED_NAME
        from bedrock_rules.parser import parse
    finally:
        sys.path.remove(str(root))
    grammar = (root / "grammar" / "rules.lark").read_text(encoding="utf-8")
    parser = lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)
    saved = io.BytesIO()
    parser.save(saved)
    tables = {"lark": lark.__version__, "grammar": prebuilt.digest(grammar), "parser": saved.getvalue()}
    files = {}
    for path in sorted((root / "rulesets" / "bedrock").glob("*.rules")):
        shown = f"{BUNDLED_NAME}/{path.name}"
        text = path.read_text(encoding="utf-8")
        files[shown] = (prebuilt.digest(text), parse(text, shown))
    bundle = {"model": prebuilt.model_digest(), "files": files}
    return {prebuilt.TABLES: pickle.dumps(tables), prebuilt.BUNDLED: pickle.dumps(bundle)}
