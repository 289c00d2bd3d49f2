"""`bedrock-rules diff OLD NEW USAGE…`: what a change of rules does to a corpus of usage documents."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..cli import EXIT_FAILED, EXIT_OK, percent
from ..differ import compare, dump, over_limit, render_markdown, render_table
from ..errors import Problem, UsageError
from ..ruleset import load
from ..usage import items_of, read_document
from .eval import read_text

HELP = "compare two rule folders over usage documents: changed charges, refusals and rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="folder of the rule files before the change")
    parser.add_argument("new", metavar="NEW", help="folder of the rule files after the change")
    parser.add_argument("usage", nargs="+", metavar="USAGE", help="JSON or YAML usage document; - reads stdin")
    parser.add_argument(
        "--format", choices=("table", "json", "markdown", "html"), default="table",
        help="table for people (default), json for machines, markdown for a pull-request comment, html for one page",
    )
    parser.add_argument(
        "--fail-above", type=percent, metavar="PERCENT",
        help="exit 1 when the total or any document changes by more than PERCENT, or a document is newly refused or priced",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    old, new = load(args.old), load(args.new)
    documents = []
    problems: list[Problem] = []
    for path in args.usage:
        source = "<stdin>" if path == "-" else path
        try:
            documents.append((source, items_of(read_document(read_text(path), source), source)))
        except UsageError as error:
            problems.extend(error.problems)
    if problems:  # a document that cannot be read is not a price change: refuse, as eval does
        raise UsageError(problems)
    diff = compare(old.program, new.program, documents)
    if args.format == "html":
        from ..report import render_diff  # start-up time: only the HTML page needs it

        out.write(render_diff(diff, args.old, args.new))
    else:
        renderers = {"table": render_table, "json": dump, "markdown": render_markdown}
        out.write(renderers[args.format](diff))
    if args.fail_above is not None:
        reasons = over_limit(diff, args.fail_above)
        if reasons:
            sys.stderr.write(f"more than {args.fail_above}% of change:\n" + "".join(f"  {r}\n" for r in reasons))
            return EXIT_FAILED
    return EXIT_OK
