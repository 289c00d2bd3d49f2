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


def _canonical(saved: bytes) -> bytes:
    """Lark's saved parser with its LALR states and symbols numbered in one fixed order.

    Lark numbers them in the order it walks sets of objects hashed by identity, so two
    builds of the same grammar save different bytes; a wheel must not. Symbols are
    renumbered by name, states breadth-first from the start states, following their
    transitions in symbol order. The table is the same automaton, renamed.
    """
    whole = pickle.loads(saved)  # noqa: S301 - lark's own output, just made
    table = whole["data"]["parser"]["parser"]
    names = table["tokens"]  # number -> symbol name
    symbol = {old: new for new, old in enumerate(sorted(names, key=lambda n: names[n]))}
    order: dict[int, int] = {}
    queue = [table["start_states"][start] for start in sorted(table["start_states"])]
    while queue:
        state = queue.pop(0)
        if state in order:
            continue
        order[state] = len(order)
        for token in sorted(table["states"][state], key=symbol.__getitem__):
            action, argument = table["states"][state][token]
            if action == 0:  # a shift (or goto): its argument is the next state
                queue.append(argument)
    for state in sorted(set(table["states"]) - set(order)):  # none in an LALR table; kept, not dropped
        order[state] = len(order)
    table["tokens"] = {symbol[old]: name for old, name in sorted(names.items(), key=lambda pair: symbol[pair[0]])}
    table["states"] = {
        order[state]: {
            symbol[token]: (action, order[argument] if action == 0 else argument)
            for token, (action, argument) in sorted(actions.items(), key=lambda pair: symbol[pair[0]])
        }
        for state, actions in sorted(table["states"].items(), key=lambda pair: order[pair[0]])
    }
    for ends in ("start_states", "end_states"):
        table[ends] = {name: order[state] for name, state in sorted(table[ends].items())}
    return pickle.dumps(_fresh(whole, {}), protocol=4)


def _fresh(value: Any, strings: dict[str, str]) -> Any:
    """A copy sharing nothing but equal strings (one object each), so pickle's back-references fall the same way every build."""
    if isinstance(value, str):
        return strings.setdefault(value, value)
    if isinstance(value, dict):
        return {_fresh(key, strings): _fresh(item, strings) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_fresh(item, strings) for item in value)
    return value  # int, bool, None: lark's saved parser holds nothing else


def build(root: Path) -> dict[str, bytes]:
    """The artifacts for a wheel, from a source checkout (run by hatch_build.py)."""
    import lark

    from .parser import parse
    from .ruleset import BUNDLED_NAME

    grammar = (root / "grammar" / "rules.lark").read_text(encoding="utf-8")
    parser = lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)
    saved = io.BytesIO()
    parser.save(saved)
    tables = {"lark": lark.__version__, "grammar": _digest(grammar), "parser": _canonical(saved.getvalue())}
    files = {}
    for path in sorted((root / "rulesets" / "bedrock").glob("*.rules")):
        shown = f"{BUNDLED_NAME}/{path.name}"
        text = path.read_text(encoding="utf-8")
        files[shown] = (_digest(text), parse(text, shown))
    bundle = {"model": _model_digest(), "files": files}
    # A fixed protocol: the same objects give the same bytes whichever Python builds the wheel.
    return {TABLES: pickle.dumps(tables, protocol=4), BUNDLED: pickle.dumps(bundle, protocol=4)}


__all__ = ["build", "grammar_path", "parsed_files", "parser_tables"]
