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
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .bill import Bill, decimal_text, dump
from .errors import Problem, UsageError
from .semantics import EXACT
from .usage import items_of, read_document

USAGE_SUFFIXES = (".json", ".yaml", ".yml")
BILL_SUFFIX = ".bill.json"
# A charge's fields other than its amount, in the order a change of them is listed.
_CHARGE_FIELDS = ("quantity", "unit", "rate", "per", "rule", "what", "note")


def bill_bytes(bill: Bill) -> bytes:
    """A bill as stored in a snapshot: exactly `bedrock-rules eval --format json`, encoded UTF-8."""
    return dump(bill).encode("utf-8")


def is_usage_document(path: Path) -> bool:
    return path.is_file() and path.suffix in USAGE_SUFFIXES and not path.name.endswith(BILL_SUFFIX)


def usage_paths(folder: Path) -> list[Path]:
    """The usage documents of a folder (not its subfolders), by name."""
    return sorted((p for p in folder.iterdir() if is_usage_document(p)), key=lambda p: p.name)


def documents_of(folder: str | Path) -> list[Path]:
    """The usage documents to snapshot; UsageError for a folder that would test nothing or clash."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError([Problem("no such folder of usage documents", source=str(folder), code="BU001")])
    paths = usage_paths(root)
    if not paths:
        raise UsageError([Problem("no usage documents (*.json, *.yaml, *.yml) in this folder", source=str(folder), code="BU001")])
    clashes = same_stem(paths)
    if clashes:
        raise UsageError([Problem(clash, source=str(folder), code="BU001") for clash in clashes])
    return paths


def read_usage(path: Path) -> Any:
    """A usage document as read, its shape checked (no rules needed); UsageError naming the file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError([Problem(f"cannot read usage document: {reason}", source=source, code="BU001")]) from None
    document = read_document(text, source)
    items_of(document, source)
    return document


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

    `item 1 (nightly summaries) input_tokens: 0.088 -> 0.0935 (rules/text.rules:28)`,
    then an indented line for each other field of the charge that changed.
    """
    try:
        before, after = _data(old), _data(new)
    except ValueError:
        return ["the stored bill is not a bill in JSON; see the text diff"]
    return list(_bill_changes(before, after))


def unified(old: bytes | str, new: bytes | str, old_name: str, new_name: str) -> list[str]:
    """A unified diff of two JSON texts, lines without their line endings."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(_text(old).splitlines(True), _text(new).splitlines(True), old_name, new_name)
    ]


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _data(data: bytes | str) -> dict[str, Any]:
    value = json.loads(_text(data))
    if not isinstance(value, dict) or not isinstance(value.get("items"), list):
        raise ValueError("not a bill")
    return value


def _bill_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    if old.get("currency") != new.get("currency"):
        yield f"currency: {old.get('currency')} -> {new.get('currency')}"
    old_items = {item.get("item"): item for item in old["items"] if isinstance(item, dict)}
    new_items = {item.get("item"): item for item in new["items"] if isinstance(item, dict)}
    for position in [*new_items, *(p for p in old_items if p not in new_items)]:
        before, after = old_items.get(position), new_items.get(position)
        if before is not None and after is not None and before.get("kind") == after.get("kind"):
            yield from _item_changes(before, after)
            continue
        # An item of another kind at the same position is another item, not an edited one.
        if before is not None:
            yield f"{_label(before)}: item gone (was {before.get('subtotal')}, {before.get('kind')})"
        if after is not None:
            yield f"{_label(after)}: new item, {after.get('subtotal')} ({after.get('kind')})"
    if old.get("total") != new.get("total"):
        yield f"total: {old.get('total')} -> {new.get('total')} {new.get('currency')}{_delta(old.get('total'), new.get('total'))}"


def _item_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    label = _label(new)
    for field in ("name", "document"):
        if old.get(field) != new.get(field):
            yield f"{label} {field}: {old.get(field)} -> {new.get(field)}"
    before, after = _charges(old), _charges(new)
    for key in [*after, *(k for k in before if k not in after)]:
        yield from _charge_changes(label, before.get(key), after.get(key))
    if old.get("subtotal") != new.get("subtotal"):
        yield f"{label} subtotal: {old.get('subtotal')} -> {new.get('subtotal')}{_delta(old.get('subtotal'), new.get('subtotal'))}"


def _charges(item: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    # Two charges of one item can share an id (two `free` lines): number them.
    seen: Counter[str] = Counter()
    keyed = {}
    for charge in item.get("charges") or []:
        if isinstance(charge, dict):
            seen[charge.get("id")] += 1
            keyed[charge.get("id"), seen[charge.get("id")]] = charge
    return keyed


def _charge_changes(label: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Iterator[str]:
    if old is None:
        yield f"{label} {new.get('what')}: new charge, {new.get('amount')} ({new.get('rule')})"
        return
    if new is None:
        yield f"{label} {old.get('what')}: charge gone (was {old.get('amount')}, {old.get('rule')})"
        return
    fields = [f for f in _CHARGE_FIELDS if old.get(f) != new.get(f)]
    if old.get("amount") != new.get("amount"):
        yield f"{label} {new.get('what')}: {old.get('amount')} -> {new.get('amount')} ({new.get('rule')})"
    elif fields:
        yield f"{label} {new.get('what')}: {new.get('amount')}, amount unchanged ({new.get('rule')})"
    for field in fields:
        yield f"    {field}: {old.get(field)} -> {new.get(field)}"


def _label(item: dict[str, Any]) -> str:
    name = item.get("name")
    return f"item {item.get('item')}" + (f" ({name})" if name else "")


def _delta(old: Any, new: Any) -> str:
    try:
        delta = EXACT.subtract(Decimal(new), Decimal(old))
    except (TypeError, InvalidOperation):
        return ""
    return f" ({'+' if delta >= 0 else ''}{decimal_text(delta)})"
