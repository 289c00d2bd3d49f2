"""`bedrock-rules eval USAGE…`: price usage documents and print the bill."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..bill import dump, render_table
from ..cli import EXIT_OK, rules_option
from ..errors import Problem, UsageError
from ..interpreter import evaluate_items
from ..ruleset import load
from ..usage import Item, check_items, items_of, read_document

HELP = "price usage documents and print the bill"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("usage", nargs="+", metavar="USAGE", help="JSON or YAML usage document; - reads stdin")
    rules_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="table for people (default), json for machines")


def read_text(path: str) -> str:
    """A usage document's text; `-` reads standard input."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError([Problem(f"cannot read usage document: {reason}", source=path)]) from None


def read_items(compiled, paths: list[str]) -> tuple[list[Item], list[Problem]]:
    """Every item of every document, checked; one document's items are named by position alone."""
    several = len(paths) > 1
    items: list[Item] = []
    problems: list[Problem] = []
    for path in paths:
        source = "<stdin>" if path == "-" else path
        try:
            raw = items_of(read_document(read_text(path), source), source)
        except UsageError as error:
            problems.extend(error.problems)
            continue
        checked, bad = check_items(compiled, raw, source if several else None)
        items.extend(checked)
        problems.extend(bad)
    return items, problems


def run(args: argparse.Namespace, out: TextIO) -> int:
    rules = load(args.rules)
    items, problems = read_items(rules.compiled, args.usage)
    bill = evaluate_items(rules.compiled, items, problems)
    out.write(dump(bill) if args.format == "json" else render_table(bill))
    return EXIT_OK



