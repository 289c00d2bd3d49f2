"""Where the grammar and the bundled ruleset live, in a wheel and in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _find(name: str) -> Path:
    # A wheel carries copies inside the package (see pyproject.toml's force-include);
    # an editable install or a checkout reads the top-level folders. The package is
    # always installed as files (never zipped), so a path beside this module is enough:
    # importlib.resources would cost start-up time for nothing.
    packaged = _PACKAGE / name
    if packaged.exists():
        return packaged
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
