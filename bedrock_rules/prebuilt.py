"""Prebuilt parser tables and parsed bundled rules, shipped in the wheel (see hatch_build.py).

Each artifact records what it was built from (lark's version, the grammar's and rule
files' hashes, the model module's hash); a mismatch means "parse from source", never
a wrong result. The files are read only from inside the installed package: nothing
here reads a path a user or another process can choose, and nothing is written.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

from . import model
from .resources import grammar_path, package_file

TABLES = "rules.lark.tables"
BUNDLED = "bundled-ruleset.parsed"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _model_digest() -> str:
    return _digest(Path(model.__file__).read_text(encoding="utf-8"))


def _read(name: str) -> dict[str, Any] | None:
    path = package_file(f"prebuilt/{name}")
    if path is None:
        return None
    try:
        return pickle.loads(path.read_bytes())  # noqa: S301 - written by our build, inside our package
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def parser_tables(grammar: str, lark_version: str) -> bytes | None:
    """Lark's saved parser for this grammar, when the wheel's tables fit it."""
    tables = _read(TABLES)
    if not tables or tables.get("lark") != lark_version or tables.get("grammar") != _digest(grammar):
        return None
    return tables["parser"]


def parsed_files(shown_texts: dict[str, str]) -> dict[str, model.RuleFile]:
    """The bundled rule files already parsed, for those whose text matches the build's."""
    bundle = _read(BUNDLED)
    if not bundle or bundle.get("model") != _model_digest():
        return {}
    built = bundle["files"]
    return {
        shown: built[shown][1]
        for shown, text in shown_texts.items()
        if shown in built and built[shown][0] == _digest(text)
    }


def build(root: Path) -> dict[str, bytes]:
    """The artifacts for a wheel, from a source checkout (run by hatch_build.py)."""
    import lark

    from .parser import parse
    from .ruleset import BUNDLED_NAME

    grammar = (root / "grammar" / "rules.lark").read_text(encoding="utf-8")
    parser = lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)
    saved = io.BytesIO()
    parser.save(saved)
    tables = {"lark": lark.__version__, "grammar": _digest(grammar), "parser": saved.getvalue()}
    files = {}
    for path in sorted((root / "rulesets" / "bedrock").glob("*.rules")):
        shown = f"{BUNDLED_NAME}/{path.name}"
        text = path.read_text(encoding="utf-8")
        files[shown] = (_digest(text), parse(text, shown))
    bundle = {"model": _model_digest(), "files": files}
    return {TABLES: pickle.dumps(tables), BUNDLED: pickle.dumps(bundle)}


__all__ = ["build", "grammar_path", "parsed_files", "parser_tables"]
