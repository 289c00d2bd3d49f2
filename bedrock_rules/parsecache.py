"""Parsed rule files kept between runs, so a large ruleset loads fast the second time.

An entry is keyed by everything its parse depends on: the file's text and shown name
(spans carry it), the grammar, the parser's and the syntax tree's code, lark's version
and this format's. It lives in the user's own cache folder (`$XDG_CACHE_HOME` or
`~/.cache`, then `bedrock-rules/parsed`), made with mode 0700, never in a shared or
predictable place such as /tmp. An entry is read only when the folder and the file
belong to the user and no one else can write them, and when its checksum and key
match; anything else (corrupt, truncated, foreign, older) is ignored and the file is
parsed again. Caching never changes a result: a miss parses, as without a cache.
`BEDROCK_RULES_CACHE=off` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import tempfile
from functools import cache
from pathlib import Path

from . import model
from .resources import grammar_path

VERSION = b"bedrock-rules parse cache 1\n"
_DIGEST = 32  # bytes of sha256


@cache
def _code_key() -> bytes:
    """What every parse depends on besides its text: grammar, parser and model code, lark."""
    from importlib.metadata import version  # start-up time: needed only when a file is parsed

    parts = [VERSION, version("lark").encode()]
    for name in ("parser.py", "lookalike.py", "model.py", "limits.py", "errors.py", "fields.py"):  # the parser and what it imports
        parts.append(Path(model.__file__).with_name(name).read_bytes())
    parts.append(grammar_path().read_bytes())
    return hashlib.sha256(b"\0".join(hashlib.sha256(p).digest() for p in parts)).digest()


def folder() -> Path | None:
    """The user's cache folder for parses, made private if new; None when it cannot be trusted."""
    if os.environ.get("BEDROCK_RULES_CACHE") == "off" or not hasattr(os, "getuid"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    if not os.path.isabs(base):  # the XDG rule: a relative path is ignored
        base = str(Path.home() / ".cache")
    place = Path(base) / "bedrock-rules" / "parsed"
    try:
        place.mkdir(mode=0o700, parents=True, exist_ok=True)
        return place if _private(os.lstat(place), directory=True) else None
    except OSError:
        return None


def _private(info: os.stat_result, directory: bool) -> bool:
    """Owned by this user, of the expected type (not a link), writable by no one else."""
    kind = stat.S_ISDIR if directory else stat.S_ISREG
    return kind(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def key(text: str, shown: str) -> str:
    entry = hashlib.sha256(_code_key() + shown.encode("utf-8", "surrogatepass") + b"\0" + text.encode("utf-8", "surrogatepass"))
    return entry.hexdigest()


def load(text: str, shown: str) -> model.RuleFile | None:
    """The cached parse of a rule file's text, or None."""
    place = folder()
    if place is None:
        return None
    name = key(text, shown)
    path = place / f"{name}.parsed"
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            if not _private(os.fstat(handle.fileno()), directory=False):
                return None
            data = handle.read()
    except OSError:
        return None
    head = VERSION + bytes.fromhex(name)
    if not data.startswith(head) or len(data) < len(head) + _DIGEST:
        return None
    checksum, payload = data[len(head):len(head) + _DIGEST], data[len(head) + _DIGEST:]
    if hashlib.sha256(head + payload).digest() != checksum:
        return None
    try:
        value = pickle.loads(payload)  # noqa: S301 - our own entry: private folder, our key, checksum verified
    except Exception:  # noqa: BLE001 - any unreadable entry is a miss
        return None
    return value if isinstance(value, model.RuleFile) else None


def store(text: str, shown: str, parsed: model.RuleFile) -> None:
    """Keep a parse for next time; a cache that cannot be written is simply not used."""
    place = folder()
    if place is None:
        return
    name = key(text, shown)
    head = VERSION + bytes.fromhex(name)
    try:
        payload = pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return
    data = head + hashlib.sha256(head + payload).digest() + payload
    try:
        descriptor, temporary = tempfile.mkstemp(dir=place, prefix=".tmp-", suffix=".parsed")  # mode 0600
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, place / f"{name}.parsed")  # whole or not at all, for a reader at the same time
    except OSError:
        try:
            os.unlink(temporary)
        except (OSError, UnboundLocalError):
            pass
