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
from typing import Any

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
        from bedrock_rules.loader import BUNDLED_NAME, named_file
        from bedrock_rules.parser import parse
    finally:
        sys.path.remove(str(root))
    grammar = (root / "grammar" / "rules.lark").read_text(encoding="utf-8")
    parser = lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)
    saved = io.BytesIO()
    parser.save(saved)
    tables = {"lark": lark.__version__, "grammar": prebuilt.digest(grammar), "parser": _canonical(saved.getvalue())}
    files = {}
    for path in sorted((root / "rulesets" / "bedrock").glob("*.rules")):
        shown = named_file(BUNDLED_NAME, path.name)
        text = path.read_text(encoding="utf-8")
        files[shown] = (prebuilt.digest(text), parse(text, shown))
    bundle = {"model": prebuilt.model_digest(), "files": files}
    # A fixed protocol: the same objects give the same bytes whichever Python builds the wheel.
    return {prebuilt.TABLES: pickle.dumps(tables, protocol=4), prebuilt.BUNDLED: pickle.dumps(bundle, protocol=4)}


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
