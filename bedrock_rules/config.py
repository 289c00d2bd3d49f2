"""Project configuration: which ruleset a command uses, and the options a project always passes.

A configuration is `bedrock-rules.toml`, or the `[tool.bedrock-rules]` table of a
`pyproject.toml`, found by walking up from the working folder as ruff and pytest find
theirs: the nearest folder holding either wins, and in a folder holding both,
`bedrock-rules.toml` wins (a `pyproject.toml` without the table does not count).

    rules = "rules"                 # folder, relative to the configuration file; "bundled" for the shipped list
    overlays = []                   # overlay files over the rules, relative to the file
    profiles = "profiles.yaml"      # application inference profiles, for invocation logs
    [defaults.eval]                 # any long option of a command, by its name
    group-by = "model,region"
    format = "json"

The ruleset a command uses is chosen in this order: `--rules`, then the configuration,
then the bundled ruleset. The last is refused in a folder that holds rule files of its
own: pricing an analyst's folder with a list nobody there edited would look like success.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .errors import BedrockRulesError
from .loader import BUNDLED_NAME, rule_paths
from .model import as_tuple

if sys.version_info >= (3, 11):
    import tomllib  # the standard library's; on 3.10 the optional dependency tomli, the same parser
else:  # pragma: no cover
    import tomli as tomllib  # optional dependency: installed on Python 3.10 only


CONFIG_FILE = "bedrock-rules.toml"
PYPROJECT = "pyproject.toml"
BUNDLED = "bundled"  # `rules = "bundled"`: the shipped Amazon Bedrock ruleset
KEYS = ("rules", "overlays", "profiles", "defaults")


class ConfigError(BedrockRulesError):
    """A configuration that cannot be used, or no way to know which ruleset was meant (exit 2)."""

    def __init__(self, message: str, source: Path | str | None = None):
        self.message = message
        self.source = str(source) if source is not None else None
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.source}: {self.message}" if self.source else f"bedrock-rules: {self.message}"


@attrs.frozen
class Config:
    """A project's configuration, its paths resolved against the folder of the file that holds it."""

    path: Path
    rules: Path | None = None  # None: not set; see `bundled`
    bundled: bool = False
    overlays: tuple[Path, ...] = attrs.field(default=(), converter=as_tuple)
    profiles: Path | None = None
    defaults: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    @property
    def shown(self) -> str:
        """How messages name the file: `[tool.bedrock-rules]` of a pyproject.toml says so."""
        return f"{self.path} [tool.bedrock-rules]" if self.path.name == PYPROJECT else str(self.path)


@attrs.frozen
class RulesChoice:
    """The ruleset a command uses (`path` None: the bundled one) and how it was chosen."""

    path: str | None
    how: str

    def describe(self) -> str:
        return f"ruleset: {self.path or BUNDLED_NAME} ({self.how})"


def find_config(start: Path | None = None) -> Config | None:
    """The nearest configuration at or above `start` (default: the working folder), or None."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        own = candidate / CONFIG_FILE
        if _present(own):
            return _parse(own, _read_toml(own))
        pyproject = candidate / PYPROJECT
        if _present(pyproject):
            table = _read_toml(pyproject).get("tool", {}).get("bedrock-rules")
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigError("[tool.bedrock-rules] must be a table", pyproject)
                return _parse(pyproject, table)
    return None


def choose_rules(
    option: str | None, config: Config | None, cwd: Path | None = None, overlays: Sequence[str] = ()
) -> RulesChoice:
    """`--rules`, else the configuration, else the bundled ruleset unless the folder has rule files
    (other than the `overlays` given: an overlay file beside the usage is not a ruleset)."""
    if option is not None:
        return RulesChoice(option, "--rules")
    if config is not None and config.bundled:
        return RulesChoice(None, f"bundled, from {config.shown}")
    folder = cwd or Path.cwd()
    if config is not None and config.rules is not None:
        return RulesChoice(_relative(config.rules, folder), f"from {config.shown}")
    layered = {Path(path).resolve() for path in overlays}
    own = [p for p in _rule_files(folder) if p.resolve() not in layered] or _rule_files(folder / "rules")
    if own:
        where = "this folder" if own[0].parent == folder else "rules/"
        names = ", ".join(p.name for p in own[:3]) + (", …" if len(own) > 3 else "")
        told = "" if config is None else f" and {config.shown} names no rules"
        raise ConfigError(
            f"{where} holds rule files ({names}) but no ruleset was chosen{told}, so the bundled "
            "Amazon Bedrock ruleset is not used silently: pass --rules "
            f"{'.' if where == 'this folder' else 'rules'} to use them, or write rules = "
            f"\"{'.' if where == 'this folder' else 'rules'}\" (or rules = \"bundled\" for the shipped ruleset) "
            f"in {CONFIG_FILE} or in [tool.bedrock-rules] of {PYPROJECT}"
        )
    return RulesChoice(None, "bundled")


def choose_overlays(option: list[str] | None, config: Config | None, cwd: Path | None = None) -> list[str]:
    """`--overlay` when given (the command line replaces the configuration's list), else `overlays` of the configuration."""
    if option is not None:
        return list(option)
    if config is None:
        return []
    folder = cwd or Path.cwd()
    return [_relative(path, folder) for path in config.overlays]


def _relative(path: Path, folder: Path) -> str:
    """A configured folder as bills cite it: relative to the working folder, as `--rules` would be written."""
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive (Windows)
        return str(path)


def _rule_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    try:
        return [p for p in rule_paths(folder) if p.is_file()]
    except OSError:
        return []


def _present(path: Path) -> bool:
    """Whether a configuration stands here: a file, or anything else by that name (a FIFO,
    a device, a folder, a dangling or looping link), which is refused, not passed over for
    one further up."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


# A configuration is a few lines; past this it is not one (a link to /dev/zero, a log renamed).
MAX_CONFIG_BYTES = 1 << 20


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # Text, not a binary file: tomli before 1.2 reads only text.
        return tomllib.loads(_read_regular(path).decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text: {error.reason}", path) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", path) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", path) from None


def _read_regular(path: Path) -> bytes:
    """A configuration's bytes: a regular file only, opened without blocking (a FIFO cannot
    hang the command), at most MAX_CONFIG_BYTES."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("not a regular file; a configuration is read only from a regular file", path)
        data = os.read(descriptor, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"too large: more than {MAX_CONFIG_BYTES:,} bytes; a configuration is a few lines", path)
    return data


def regular_profiles(config: Config) -> str:
    """The configured profiles file, refused unless it is a regular file: a project's
    configuration cannot make the command read a FIFO (hang) or a device."""
    assert config.profiles is not None
    try:
        info = os.stat(config.profiles)
    except OSError:
        return str(config.profiles)  # missing: the log reader says it cannot read it, naming it
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"profiles: {config.profiles} is not a regular file", config.shown)
    return str(config.profiles)


def _parse(path: Path, table: Mapping[str, Any]) -> Config:
    """A configuration's keys checked, every problem at once, paths resolved against its folder."""
    problems: list[str] = []
    base = path.parent
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        problems.append(f"unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")

    rules = bundled = None
    raw = table.get("rules")
    if raw is not None:
        if not isinstance(raw, str) or not raw:
            problems.append(f'rules must be a folder name, or "{BUNDLED}" for the shipped ruleset')
        elif raw == BUNDLED:
            bundled = True
        else:
            rules = base / raw

    overlays: list[Path] = []
    raw = table.get("overlays", [])
    if not isinstance(raw, list) or not all(isinstance(o, str) and o for o in raw):
        problems.append("overlays must be a list of file names")
    else:
        overlays = [base / o for o in raw]

    profiles = None
    raw = table.get("profiles")
    if raw is not None:
        if not isinstance(raw, str) or not raw:
            problems.append("profiles must be a file name")
        else:
            profiles = base / raw

    defaults: dict[str, dict[str, Any]] = {}
    raw = table.get("defaults", {})
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        problems.append("defaults must hold one table per command, such as [defaults.eval]")
    else:
        defaults = {command: dict(options) for command, options in raw.items()}

    if problems:
        raise ConfigError("; ".join(problems), path if path.name != PYPROJECT else f"{path} [tool.bedrock-rules]")
    return Config(path, rules, bool(bundled), overlays, profiles, defaults)
