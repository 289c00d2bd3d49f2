"""Bill snapshots: the usage documents of a folder, their bills' bytes, and what changed, charge by charge.

Shared by `bedrock-rules snapshot` and the pytest plugin, so both store the same bytes
(the CLI's JSON from `bill.dump`, UTF-8, `\\n` line endings on every platform) and
explain a change the same way. Changes are computed from the stored JSON, not from a
Bill, so a snapshot edited by hand or written by an older version is still explained.
Charges are matched by item position and the rule's stable id, as `diff` does.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from . import limits
from .bill import Bill, decimal_text, dump
from .display import clip, visible
from .errors import Problem, UsageError
from .files import write_atomically as write_atomically  # where the tools that write bills find it
from .semantics import EXACT
from .usage import items_of, read_document

USAGE_SUFFIXES = (".json", ".yaml", ".yml")
BILL_SUFFIX = ".bill.json"
# A charge's fields other than its amount, in the order a change of them is listed.
# Not its id, which keys it, nor the `rule` of a bill stored by a version before ids alone named rules.
_CHARGE_FIELDS = ("quantity", "unit", "rate", "per", "what", "note")
MAX_DIFF_LINES = 1_000  # lines of a unified diff shown; past them, a count


def bill_bytes(bill: Bill) -> bytes:
    """A bill as stored in a snapshot: exactly `bedrock-rules eval --format json`, encoded UTF-8."""
    return dump(bill).encode("utf-8")


def is_usage_document(path: Path) -> bool:
    """A usage document's name, and not a folder (a FIFO or a device is listed, to be refused by `outside`)."""
    named = path.suffix in USAGE_SUFFIXES and not path.name.endswith(BILL_SUFFIX)
    return named and os.path.lexists(path) and not path.is_dir()


def usage_paths(folder: Path) -> list[Path]:
    """The usage documents of a folder (not its subfolders), by name."""
    return sorted((p for p in folder.iterdir() if is_usage_document(p)), key=lambda p: p.name)


def documents_of(folder: str | Path) -> list[Path]:
    """The usage documents to snapshot; UsageError for a folder that would test nothing or clash."""
    root = Path(folder)
    if not root.is_dir():
        what = "is a file: snapshot takes a folder of usage documents" if root.exists() else "no such folder of usage documents"
        raise UsageError([Problem(what, source=str(folder), code="BU001")])
    paths = usage_paths(root)
    if not paths:
        raise UsageError([Problem("no usage documents (*.json, *.yaml, *.yml) in this folder", source=str(folder), code="BU001")])
    problems = [Problem(clash, source=str(folder), code="BU001") for clash in same_stem(paths)]
    problems.extend(problem for path in paths if (problem := outside(root, path)) is not None)
    if problems:
        raise UsageError(problems)
    return paths


def outside(folder: Path, path: Path) -> Problem | None:
    """Why `path`, an entry of `folder`, is not read or written: a link leading out of the
    folder (or in a loop), or, when it exists, anything but a regular file; None when it is fine.

    A link out of the folder would let `snapshot` print another file's content in a diff
    or a refusal, or `--update` overwrite it; a FIFO or a device would hang the read.
    """
    name = folder.name or str(folder)
    if path.is_symlink():
        try:
            target = path.resolve(strict=False)
            inside = target.is_relative_to(folder.resolve(strict=True))
        except (OSError, RuntimeError):  # a loop of links
            inside = False
        if not inside:
            return Problem(f"a link to a file outside {name}; links out of the folder are not followed", source=str(path), code="BU001")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:  # a stored bill not written yet (or a link to nothing inside the folder)
        return None
    except OSError as error:
        return Problem(f"cannot read: {error.strerror or error}", source=str(path), code="BU001")
    if not stat.S_ISREG(mode):
        return Problem("not a regular file; only files are read and written", source=str(path), code="BU001")
    return None


def read_usage(path: Path) -> Any:
    """A usage document as read, its shape checked (no rules needed); UsageError naming the file."""
    source = str(path)
    limit = limits.MAX_DOCUMENT_CHARS
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read(limit + 1)  # an oversized document is refused without being held whole
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError([Problem(f"cannot read usage document: {clip(reason)}", source=source, code="BU001")]) from None
    too_large = limits.document_size(text)
    if too_large is not None:
        message = too_large.replace(f"{len(text):,} characters", f"more than {limit:,} characters")
        raise UsageError([Problem(message, source=source, code="BU003")])
    try:
        document = read_document(text, source)
        items_of(document, source)
    except UsageError as error:  # a parser's message may quote the text: at most a capped part of it
        raise UsageError([_capped(p) for p in error.problems]) from None
    return document


def _capped(problem: Problem) -> Problem:
    return attrs.evolve(problem, message=clip(problem.message))


def bill_path(usage: Path) -> Path:
    """Where a usage document's bill is stored: `name.yaml` -> `name.bill.json`, beside it."""
    return usage.with_name(usage.stem + BILL_SUFFIX)


def same_stem(paths: list[Path]) -> list[str]:
    """Documents that would share one bill (`a.json` and `a.yaml`), as sentences."""
    by_stem: dict[str, list[str]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path.name)
    return [
        f"{' and '.join(names)} would share one bill ({stem}{BILL_SUFFIX}); rename one"
        for stem, names in by_stem.items()
        if len(names) > 1
    ]


# Explaining a change --------------------------------------------------------------------


def changes(old: bytes | str, new: bytes | str) -> list[str]:
    """What differs between a stored bill and a new one, one line per charge, item and total.

    `item 1 (nightly summaries) input_tokens: 0.088 -> 0.0935 (text/input_tokens[model = a])`,
    then an indented line for each other field of the charge that changed.
    """
    try:
        before, after = _data(old), _data(new)
    except ValueError:
        return ["the stored bill is not a bill in JSON; see the text diff"]
    return list(_bill_changes(before, after))


def unified(old: bytes | str, new: bytes | str, old_name: str, new_name: str) -> list[str]:
    """A unified diff of two JSON texts, lines without their line endings."""
    lines = [
        clip(visible(line.rstrip("\n")))
        for line in difflib.unified_diff(_text(old).splitlines(True), _text(new).splitlines(True), old_name, new_name)
    ]
    if len(lines) > MAX_DIFF_LINES:
        lines[MAX_DIFF_LINES:] = [f"… {len(lines) - MAX_DIFF_LINES:,} more lines of diff"]
    return lines


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _data(data: bytes | str) -> dict[str, Any]:
    value = json.loads(_text(data))
    if not isinstance(value, dict) or not isinstance(value.get("items"), list):
        raise ValueError("not a bill")
    return value


def _bill_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    if old.get("currency") != new.get("currency"):
        yield f"currency: {_shown(old.get('currency'))} -> {_shown(new.get('currency'))}"
    old_items = {item.get("item"): item for item in old["items"] if isinstance(item, dict)}
    new_items = {item.get("item"): item for item in new["items"] if isinstance(item, dict)}
    for position in [*new_items, *(p for p in old_items if p not in new_items)]:
        before, after = old_items.get(position), new_items.get(position)
        if before is not None and after is not None and before.get("kind") == after.get("kind"):
            yield from _item_changes(before, after)
            continue
        # An item of another kind at the same position is another item, not an edited one.
        if before is not None:
            yield f"{_label(before)}: item gone (was {_shown(before.get('subtotal'))}, {_shown(before.get('kind'))})"
        if after is not None:
            yield f"{_label(after)}: new item, {_shown(after.get('subtotal'))} ({_shown(after.get('kind'))})"
    yield from _period_changes(old, new)
    if old.get("total") != new.get("total"):
        change = f"{_shown(old.get('total'))} -> {_shown(new.get('total'))} {_shown(new.get('currency'))}"
        yield f"total: {change}{_delta(old.get('total'), new.get('total'))}"


def _period_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    """A month's tier lines and true-ups whose amount changed: `period 2026-03 input_tokens (a) > 1000: 10 -> 12.5`."""
    def lines(bill: dict[str, Any]) -> dict[tuple[Any, ...], Any]:
        found: dict[tuple[Any, ...], Any] = {}
        for period in bill.get("periods") or []:
            if not isinstance(period, dict):
                continue
            for line in period.get("lines") or []:
                if isinstance(line, dict):
                    found[period.get("month"), f"{line.get('tier_set')} {line.get('tier')}"] = line.get("amount")
            for true_up in period.get("true_ups") or []:
                if isinstance(true_up, dict):
                    found[period.get("month"), f"true-up of {true_up.get('scope')}"] = true_up.get("amount")
        return found

    before, after = lines(old), lines(new)
    for key in [*after, *(k for k in before if k not in after)]:
        if before.get(key) != after.get(key):
            month, what = key
            yield f"period {_shown(month)} {_shown(what)}: {_shown(before.get(key, '-'))} -> {_shown(after.get(key, '-'))}"


def _item_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    label = _label(new)
    for field in ("name", "document"):
        if old.get(field) != new.get(field):
            yield f"{label} {field}: {_shown(old.get(field))} -> {_shown(new.get(field))}"
    before, after = _charges(old), _charges(new)
    for key in [*after, *(k for k in before if k not in after)]:
        yield from _charge_changes(label, before.get(key), after.get(key))
    if old.get("subtotal") != new.get("subtotal"):
        change = f"{_shown(old.get('subtotal'))} -> {_shown(new.get('subtotal'))}"
        yield f"{label} subtotal: {change}{_delta(old.get('subtotal'), new.get('subtotal'))}"


def _charges(item: dict[str, Any]) -> dict[tuple[Any, int], dict[str, Any]]:
    # Two charges of one item can share an id (two `free` lines): number them.
    seen: Counter[Any] = Counter()
    keyed: dict[tuple[Any, int], dict[str, Any]] = {}
    for charge in item.get("charges") or []:
        if isinstance(charge, dict):
            seen[charge.get("id")] += 1
            keyed[charge.get("id"), seen[charge.get("id")]] = charge
    return keyed


def _charge_changes(label: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Iterator[str]:
    if old is None:
        assert new is not None  # a charge is in one bill at least
        yield f"{label} {_shown(new.get('what'))}: new charge, {_shown(new.get('amount'))} ({_cited(new)})"
        return
    if new is None:
        yield f"{label} {_shown(old.get('what'))}: charge gone (was {_shown(old.get('amount'))}, {_cited(old)})"
        return
    fields = [f for f in _CHARGE_FIELDS if old.get(f) != new.get(f)]
    if old.get("amount") != new.get("amount"):
        yield f"{label} {_shown(new.get('what'))}: {_shown(old.get('amount'))} -> {_shown(new.get('amount'))} ({_cited(new)})"
    elif fields:
        yield f"{label} {_shown(new.get('what'))}: {_shown(new.get('amount'))}, amount unchanged ({_cited(new)})"
    for field in fields:
        yield f"    {field}: {_shown(old.get(field))} -> {_shown(new.get(field))}"


def _cited(charge: dict[str, Any]) -> str:
    """The rule a stored charge names: its stable id."""
    return _shown(charge.get("id"))


def _label(item: dict[str, Any]) -> str:
    name = item.get("name")
    return f"item {_shown(item.get('item'))}" + (f" ({_shown(name)})" if name else "")


def _delta(old: Any, new: Any) -> str:
    try:
        delta = EXACT.subtract(Decimal(new), Decimal(old))
    except (TypeError, ArithmeticError):  # not numbers, or more digits than exact arithmetic holds
        return ""
    return f" ({'+' if delta >= 0 else ''}{clip(decimal_text(delta))})"


def _shown(value: Any) -> str:
    """A value read from a stored bill, as a message shows it: escaped and capped."""
    return clip(visible(str(value)))
