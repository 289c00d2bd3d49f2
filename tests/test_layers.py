"""Imports point down: each module of the package imports only modules of the stages below it.

The stages follow the data: values, the language, reading and compiling rules, pricing,
the loader, the public `Ruleset`, Bedrock's own formats, the tools, the command line.
Every import counts, the ones inside functions too; an import inside a function is
allowed only to save start-up time or to load an optional dependency, and says which
in a comment on its line. lark is imported by the parser alone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = "bedrock_rules"

# Bottom to top. A module may import the modules listed before it, never one after it.
# Within a stage the order is the data's too (errors quote spans of the model, …).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("values", ("display", "model", "errors", "limits", "resources", "files", "bill")),
    ("language", ("fields", "semantics", "program")),
    ("rule text", ("prebuilt", "parsecache", "lookalike", "parser", "compiler", "overlays", "formatter")),
    ("pricing", ("usage", "periods", "reads", "interpreter", "totals", "focus", "billstream")),
    ("loading", ("loader",)),
    ("public API", ("ruleset", "__init__")),
    # Bedrock's own formats, on top of the engine: nothing below names a Bedrock field.
    ("bedrock formats", ("bedrock",)),
    ("tools", (
        "examples", "snapshots", "explainer", "rates", "pricelist", "differ", "checker", "report", "scaffold", "lsp", "spark",
        "pytest_plugin",
    )),
    ("command line", ("config", "cli", "commands", "__main__")),
)
ORDER = [name for _, names in STAGES for name in names]

# The comment an import inside a function carries, saying why it is not at the top.
REASONS = ("start-up time", "optional dependency")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts)


def slot(module: str) -> int | None:
    """A package module's place in ORDER: `bedrock_rules.commands.eval` is `commands`'."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    name = parts[1] if len(parts) > 1 else "__init__"
    return ORDER.index(name) if name in ORDER else -1


def imports(module: str, source: str) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, at top level) for every import of a module's source."""
    tree = ast.parse(source)
    package = module.split(".") if module.endswith("__init__") else module.split(".")[:-1]
    if module.endswith("__init__"):
        package = package[:-1]
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if node.module:
                yield target, node.lineno, id(node) in top
            else:  # `from . import model`: the submodules themselves
                for alias in node.names:
                    yield f"{target}.{alias.name}", node.lineno, id(node) in top


def violations(sources: Mapping[str, str]) -> list[str]:
    """Every import that breaks the layering, in `module:line: why` form."""
    found = []
    for module, source in sorted(sources.items()):
        lines = source.splitlines()
        here = slot(module)
        if here == -1:
            found.append(f"{module}: not placed in a stage of STAGES")
            continue
        for target, line, at_top in imports(module, source):
            comment = lines[line - 1].partition("#")[2]
            if not at_top and not any(reason in comment for reason in REASONS):
                found.append(f"{module}:{line}: import of {target} inside a function without a comment saying why "
                             f"({' or '.join(REASONS)})")
            if (target == "lark" or target.startswith("lark.")) and module != f"{PACKAGE}.parser":
                found.append(f"{module}:{line}: imports lark; only {PACKAGE}.parser does")
            there = slot(target)
            if there is None or there == -1 or target == module:
                continue
            if there > here or (there == here and not _same_slot_ok(module, target)):
                found.append(f"{module}:{line}: imports {target}, a stage above it")
    return found


def _same_slot_ok(module: str, target: str) -> bool:
    """Within one slot (a subpackage), a module may import its package's other modules,
    but the package's `__init__` stays out of it."""
    return target.count(".") >= 2 and module.count(".") >= 2 and target != module


def package_sources() -> dict[str, str]:
    return {
        module_name(path): path.read_text(encoding="utf-8")
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
    }


def test_imports_point_down():
    assert violations(package_sources()) == []


def test_every_module_is_in_a_stage():
    unplaced = [m for m in package_sources() if slot(m) == -1]
    assert unplaced == []


@pytest.mark.parametrize(
    "module, source, expected",
    [
        # a back-import at the top: the program (language) importing the interpreter (pricing)
        ("bedrock_rules.program", "from .interpreter import Pricer\n",
         ["bedrock_rules.program:1: imports bedrock_rules.interpreter, a stage above it"]),
        # hidden inside a function, with a comment: still a back-import
        ("bedrock_rules.compiler", "def f():\n    from .usage import convert  # start-up time\n",
         ["bedrock_rules.compiler:2: imports bedrock_rules.usage, a stage above it"]),
        # inside a function without a reason
        ("bedrock_rules.ruleset", "def f():\n    from .totals import Accumulator\n",
         ["bedrock_rules.ruleset:2: import of bedrock_rules.totals inside a function without a comment saying why "
          "(start-up time or optional dependency)"]),
        # `from . import x` names the submodule
        ("bedrock_rules.model", "from . import checker\n",
         ["bedrock_rules.model:1: imports bedrock_rules.checker, a stage above it"]),
        # lark outside the parser, even where the stage would allow it
        ("bedrock_rules.loader", "import lark\n", ["bedrock_rules.loader:1: imports lark; only bedrock_rules.parser does"]),
        ("bedrock_rules.commands.eval", "from ..checker import check\nfrom ..cli import EXIT_OK\n", []),
        # the command line imports its commands by name at run time; a static import would be a cycle
        ("bedrock_rules.cli", "from .commands import eval\n",
         ["bedrock_rules.cli:1: imports bedrock_rules.commands, a stage above it"]),
        ("bedrock_rules.checker", "from .commands import eval\n",
         ["bedrock_rules.checker:1: imports bedrock_rules.commands, a stage above it"]),
        ("bedrock_rules.newthing", "", ["bedrock_rules.newthing: not placed in a stage of STAGES"]),
    ],
    ids=["top-level", "in-function", "no-reason", "from-dot", "lark", "commands-ok", "cli-to-command", "tool-to-command", "unplaced"],
)
def test_the_check_catches(module, source, expected):
    assert violations({module: source}) == expected


def test_only_the_parser_imports_lark():
    importers = sorted(
        module for module, source in package_sources().items()
        if any(t == "lark" or t.startswith("lark.") for t, _, _ in imports(module, source))
    )
    assert importers == [f"{PACKAGE}.parser"]


def test_only_the_loader_looks_for_rule_files():
    """Rule files are found (and so opened) by the loader alone: no other module globs `*.rules`."""
    finders = sorted(
        module for module, source in package_sources().items()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("glob", "rglob")
        and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).endswith(".rules")
    )
    assert finders == [f"{PACKAGE}.loader", f"{PACKAGE}.loader"]  # a folder to load, and a folder to format


def test_no_module_names_a_provider_of_the_bundled_ruleset(rules):
    """Providers live in the rule files: no module, the Bedrock part's included, names one (its
    comments describe a log record's shapes, not whose model writes them). `Amazon Bedrock`, the
    service, is not a provider's name."""
    titles = sorted({provider.title for provider in rules.program.providers.values() if provider.title}, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, titles)) + r")(?!\w)(?! Bedrock)")
    found = [
        f"{module}:{number}: {match.group(1)}"
        for module, source in package_sources().items()
        for number, line in enumerate(source.splitlines(), 1)
        for match in pattern.finditer(line)
    ]
    assert titles and found == []


def test_only_the_bedrock_part_names_a_bundled_model(rules):
    """The engine, the tools and the command line know pricing, not Bedrock: no module outside
    bedrock_rules/bedrock/ names a model of the bundled ruleset (its examples live in templates/)."""
    spellings = {spelling for name, model in rules.program.models.items() for spelling in (name, *model.aliases)}
    names = {s for s in spellings if any(c.isdigit() or c in ".-" for c in s)}  # not `command`, a plain word
    pattern = re.compile(r"(?<![\w.:-])(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")(?![\w.:-]*\w)")
    found = [
        f"{module}:{number}: {match.group(1)}"
        for module, source in package_sources().items()
        if not module.startswith(f"{PACKAGE}.bedrock.")
        for number, line in enumerate(source.splitlines(), 1)
        for match in pattern.finditer(line)
    ]
    assert found == []
