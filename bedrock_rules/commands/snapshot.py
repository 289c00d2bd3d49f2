"""`bedrock-rules snapshot USAGE_DIR`: check each usage document's bill against its `.bill.json`, or write it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

import attrs

from ..bill import Bill
from ..cli import EXIT_FAILED, EXIT_OK, at_option, rules_option
from ..errors import Problem, UsageError
from ..ruleset import load
from ..snapshots import (
    BILL_SUFFIX,
    USAGE_SUFFIXES,
    bill_bytes,
    bill_path,
    changes,
    documents_of,
    is_usage_document,
    outside,
    read_usage,
    unified,
    write_atomically,
)

HELP = "compare each usage document's bill with the .bill.json beside it, or write it (--update)"

DESCRIPTION = f"""\
{HELP}.

Every usage document in USAGE_DIR (*.json, *.yaml, *.yml, not *{BILL_SUFFIX}; subfolders
are not searched) is priced and its bill, exactly as `eval --format json` prints it,
is compared byte for byte with the bill stored beside it (name.yaml -> name{BILL_SUFFIX}).

exit status:
  0  every bill matches (or, with --update, the stored bills were brought up to date)
  1  a bill changed, a document has no stored bill yet, or a stored bill has no
     document (an orphan); each is listed, a change charge by charge with a diff
  2  unreadable input: rule files that cannot be loaded, a usage document that cannot
     be read, or one the rules refuse (a refused document has no bill to store), or a
     document or stored bill that is a link out of USAGE_DIR or not a regular file;
     nothing is compared or written

Bills are written by atomic rename inside USAGE_DIR, never through a link.
Rule paths in bills are relative to the working folder, as `eval` prints them: run
snapshot from the same folder (the repository root) every time.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("usage_dir", metavar="USAGE_DIR", help="folder of usage documents and their stored bills")
    rules_option(parser)
    at_option(parser)
    parser.add_argument(
        "--update",
        action="store_true",
        help=f"accept the bills as they are now: write new and changed {BILL_SUFFIX} files, remove orphaned ones",
    )


@attrs.frozen
class _Priced:
    usage: Path
    bill: Bill

    @property
    def stored(self) -> Path:
        return bill_path(self.usage)


def run(args: argparse.Namespace, out: TextIO) -> int:
    folder = Path(args.usage_dir)
    documents = documents_of(args.usage_dir)
    # Stored bills that lead out of the folder are neither read nor written (exit 2, nothing done).
    refused = [p for path in [*map(bill_path, documents), *folder.glob(f"*{BILL_SUFFIX}")] if (p := outside(folder, path))]
    if refused:
        raise UsageError(list(dict.fromkeys(refused)))
    rules = load(args.rules, args.overlays)
    priced = _price_all(rules, documents, args.at)

    counts = {"matched": 0, "changed": 0, "new": 0, "orphaned": 0}
    for document in priced:
        now = bill_bytes(document.bill)
        stored = _read(document.stored) if document.stored.exists() else None
        if stored == now:
            counts["matched"] += 1
            continue
        if args.update:
            _write(document.stored, now)  # bytes, so `\n` line endings on every platform
        if stored is None:
            counts["new"] += 1
            if args.update:
                out.write(f"wrote    {document.stored}\n")
            else:
                out.write(f"new      {document.usage}: no stored bill {document.stored}\n")
        else:
            counts["changed"] += 1
            out.write(f"{'updated ' if args.update else 'changed '} {document.stored}\n")
            if not args.update:
                out.write("".join(f"  {line}\n" for line in changes(stored, now)))
                out.write("".join(f"  {line}\n" for line in unified(stored, now, str(document.stored), f"{document.stored} (now)")))
    for orphan in _orphans(folder):
        counts["orphaned"] += 1
        if args.update:
            try:
                orphan.unlink()
            except OSError as error:
                raise UsageError([Problem(f"cannot remove the stored bill: {error.strerror or error}", source=str(orphan))]) from None
            out.write(f"removed  {orphan}\n")
        else:
            out.write(f"orphan   {orphan}: no usage document {orphan.name[: -len(BILL_SUFFIX)]}.json, .yaml or .yml\n")

    done = {"new": "written", "changed": "updated", "orphaned": "removed"} if args.update else {}
    summary = ", ".join(f"{n} {done.get(what, what)}" for what, n in counts.items() if n or what == "matched")
    out.write(f"{args.usage_dir}: {len(priced)} document{'s' if len(priced) != 1 else ''}; {summary}\n")
    if args.update or (counts["matched"] == len(priced) and not counts["orphaned"]):
        return EXIT_OK
    out.write(f"to accept the bills as they are now: bedrock-rules snapshot {_command_args(args)} --update\n")
    return EXIT_FAILED


def _price_all(rules, documents: list[Path], at=None) -> list[_Priced]:
    """Every document's bill, or every problem of every document (exit 2, nothing written)."""
    priced: list[_Priced] = []
    problems: list[Problem] = []
    for path in documents:
        source = str(path)
        try:
            # Priced without a source, so the bill is what `eval` prints for this one document.
            priced.append(_Priced(path, rules.evaluate(read_usage(path), at=at)))
        except UsageError as error:
            problems.extend(p if p.source else attrs.evolve(p, source=source) for p in error.problems)
    if problems:
        raise UsageError(problems)
    return priced


def _orphans(folder: Path) -> list[Path]:
    """Stored bills whose usage document is gone."""
    return sorted(
        (
            path
            for path in folder.glob(f"*{BILL_SUFFIX}")
            if not any(is_usage_document(path.with_name(path.name[: -len(BILL_SUFFIX)] + s)) for s in USAGE_SUFFIXES)
        ),
        key=lambda p: p.name,
    )


def _command_args(args: argparse.Namespace) -> str:
    overlays = "".join(f" --overlay {path}" for path in args.overlays or ())
    return args.usage_dir + (f" --rules {args.rules}" if args.rules else "") + overlays + (f" --at {args.at}" if args.at else "")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError([Problem(f"cannot read the stored bill: {error.strerror or error}", source=str(path))]) from None


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data)
    except OSError as error:
        raise UsageError([Problem(f"cannot write the stored bill: {error.strerror or error}", source=str(path))]) from None
