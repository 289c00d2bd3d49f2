"""Reading the prebuilt parser tables and parsed bundled rules a wheel ships (hatch_build.py builds them).

Each artifact records what it was built from (lark's version, the grammar's and rule
files' hashes, the model module's hash); a mismatch means "parse from source", never
a wrong result. The files are read only from inside the installed package: nothing
here reads a path a user or another process can choose, and nothing is written.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

from . import model
from .resources import package_file

TABLES = "rules.lark.tables"
BUNDLED = "bundled-ruleset.parsed"


def digest(text: str) -> str:
    """The fingerprint an artifact records of the text it was built from."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_digest() -> str:
    """The fingerprint of the syntax tree's definition: a parse pickled under another is not used."""
    return digest(Path(model.__file__).read_text(encoding="utf-8"))


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
    if not tables or tables.get("lark") != lark_version or tables.get("grammar") != digest(grammar):
        return None
    return tables["parser"]


def parsed_files(shown_texts: dict[str, str]) -> dict[str, model.RuleFile]:
    """The bundled rule files already parsed, for those whose text matches the build's."""
    bundle = _read(BUNDLED)
    if not bundle or bundle.get("model") != model_digest():
        return {}
    built = bundle["files"]
    return {
        shown: built[shown][1]
        for shown, text in shown_texts.items()
        if shown in built and built[shown][0] == digest(text)
    }
