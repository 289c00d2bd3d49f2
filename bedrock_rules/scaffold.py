"""`bedrock-rules init`: lay out an analyst's rules repository, ready for review in CI.

What it writes is what docs/ci.md describes: the rules (the bundled ruleset, copied, and
a file of the team's own beside it), a folder of usage documents with each one's stored
bill, the configuration that names the rules, and the GitHub Actions workflow of
docs/ci.md (check, fmt, test, snapshot, and the price diff posted on pull requests).
Nothing is overwritten: if any file it would write exists, it writes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from . import __version__
from .errors import Problem, UsageError
from .examples import run as run_examples
from .loader import BUNDLED_NAME, compile_sources, read_rules
from .resources import bundled_rules
from .ruleset import Ruleset
from .snapshots import bill_bytes, bill_path, write_atomically

RULES = "rules"
USAGE = "usage"


def template(*path: str, version: str = __version__) -> str:
    """A file of templates/, with `@VERSION@` read as this version. The texts about the
    bundled ruleset (its models, its usage) live there, as data, not in the engine's code."""
    text = resources.files("bedrock_rules").joinpath("templates", *path).read_text(encoding="utf-8")
    return text.replace("@VERSION@", version)


def workflow(version: str = __version__) -> str:
    """docs/ci.md's workflow (templates/prices.yml), installing this version's wheel."""
    return template("prices.yml", version=version)


def files(version: str = __version__) -> dict[str, str]:
    """The text files init writes, by path relative to the target folder (bills not included)."""
    return {
        "bedrock-rules.toml": template("init", "bedrock-rules.toml", version=version),
        f"{RULES}/team.rules": template("init", "team.rules", version=version),
        f"{USAGE}/monthly.yaml": template("init", "monthly.yaml", version=version),
        ".github/workflows/prices.yml": workflow(version),
    }


def init(target: Path) -> list[str]:
    """Scaffold a rules repository in `target` (made if missing); the paths written, in order.

    Raises UsageError, writing nothing, when any of those files exists already.
    """
    sources, _, unread = read_rules(bundled_rules(), BUNDLED_NAME)
    if unread:  # the installed package is damaged: say so rather than write a partial repository
        raise UsageError([Problem(d.message, source=d.span.path) for d in unread])
    texts: dict[str, str] = {f"{RULES}/{s.name}": s.text for s in sources}
    texts.update(files())
    bill_name = bill_path(Path(USAGE, "monthly.yaml")).as_posix()
    existing = [name for name in (*texts, bill_name) if (target / name).exists() or (target / name).is_symlink()]
    if existing:
        raise UsageError([Problem("exists already; init writes nothing over it", source=str(target / name)) for name in existing])
    # A file where a folder of the layout goes (the target itself, `rules`, `.github`): refused before anything is written.
    folders = dict.fromkeys(target / parent for name in (*texts, bill_name) for parent in reversed(Path(name).parents))
    blocked = [folder for folder in folders if folder.exists() and not folder.is_dir()]
    if blocked:
        raise UsageError([Problem("is not a folder; init lays out its files in a folder here", source=str(f)) for f in blocked])
    # The bill is priced before anything is written, by the rules as they will be in the
    # repository, named as CI names them (`rules/prices.rules`) from the folder's root.
    ruleset = Ruleset(compile_sources(
        [type(sources[0])(name, text) for name, text in texts.items() if name.startswith(f"{RULES}/")], RULES
    ))
    failing = [r.example.title for r in run_examples(ruleset) if not r.passed]
    if failing:  # a bug in the scaffold: never hand out a repository whose CI fails from the start
        raise RuntimeError(f"the scaffold's worked examples do not add up: {failing}")
    from .usage import read_document  # start-up time: only init prices a document while writing

    bill = ruleset.evaluate(read_document(texts[f"{USAGE}/monthly.yaml"], f"{USAGE}/monthly.yaml"))
    contents = {**{name: text.encode("utf-8") for name, text in _ordered(texts).items()}, bill_name: bill_bytes(bill)}
    # The folders init makes, outermost first: the target's missing parents too, then the layout's.
    missing = [folder for folder in (target, *target.parents) if not folder.exists()]
    made = [*reversed(missing), *(folder for folder in folders if not folder.exists() and folder not in missing)]
    written: list[str] = []
    path = target
    try:
        for name, data in contents.items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
            written.append(name)
    except OSError as error:  # a folder it may not write in, a full disk: what it wrote is taken back
        for name in written:
            (target / name).unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise UsageError([Problem(f"cannot write: {error.strerror or error}", source=str(error.filename or path))]) from None
    return written


def _ordered(texts: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(texts.items()))
