"""Where the grammar and the bundled ruleset live, in a wheel and in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _find(name: str) -> Path:
    # A wheel carries copies inside the package (see pyproject.toml's force-include);
    # an editable install or a checkout reads the top-level folders.
    packaged = resources.files(__package__).joinpath(name)
    if packaged.is_dir() or packaged.is_file():
        return Path(str(packaged))
    return _CHECKOUT / name


def grammar_path() -> Path:
    return _find("grammar") / "rules.lark"


def bundled_rules() -> Path:
    """The folder of the shipped Amazon Bedrock ruleset."""
    return _find("rulesets") / "bedrock"


def package_file(name: str) -> Path | None:
    """A file installed inside the package (never the checkout), or None."""
    path = _PACKAGE / name
    return path if path.is_file() else None
