"""`bedrock-rules diff OLD NEW USAGE…`: what a change of rules does to a corpus of usage documents."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..cli import EXIT_FAILED, EXIT_OK, instant, overlay_option, percent
from ..config import choose_rules, find_config
from ..differ import compare, dump, over_limit, render_markdown, render_table
from ..errors import Problem, UsageError
from ..ruleset import load
from ..usage import items_of, read_document
from .eval import read_text

HELP = "compare two rule folders (or one ruleset at two dates) over usage documents: changed charges, refusals and rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="OLD NEW USAGE",
        help="the rule folders before and after the change, then JSON or YAML usage documents (- reads stdin); "
        "with --at-before and --at-after, usage documents only",
    )
    parser.add_argument(
        "--rules", dest="dated_rules", metavar="DIR",
        help="with --at-before/--at-after: the ruleset (default: the project configuration's, else the bundled one)",
    )
    overlay_option(parser)
    parser.add_argument("--at-before", type=instant, metavar="DATE", help="price every item at this date, then at --at-after's")
    parser.add_argument("--at-after", type=instant, metavar="DATE", help="the second date (see --at-before)")
    parser.add_argument(
        "--format", choices=("table", "json", "markdown", "html"), default="table",
        help="table for people (default), json for machines, markdown for a pull-request comment, html for one page",
    )
    parser.add_argument(
        "--fail-above", type=percent, metavar="PERCENT",
        help="exit 1 when the total or any document changes by more than PERCENT, or a document is newly refused or priced",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    dates = None
    if (args.at_before is None) != (args.at_after is None):
        raise UsageError([Problem("--at-before and --at-after go together: the two dates every item is priced at")])
    if args.at_before is not None:
        choice = choose_rules(args.dated_rules, find_config(), overlays=args.overlays or ())
        sys.stderr.write(choice.describe() + ("; overlays: " + ", ".join(args.overlays) if args.overlays else "") + "\n")
        old = new = load(choice.path, args.overlays)
        usage = args.paths
        dates = (str(args.at_before), str(args.at_after))
        shown = tuple(f"{choice.path or 'bundled ruleset'} at {date}" for date in dates)
    else:
        if args.dated_rules is not None or len(args.paths) < 3:
            raise UsageError([Problem(
                "diff takes OLD NEW USAGE… (two rule folders, then usage documents), "
                "or --at-before DATE --at-after DATE [--rules DIR] USAGE…"
            )])
        # Said like every command's ruleset: diff is given its two rulesets and chooses none.
        said = "; overlays: " + ", ".join(args.overlays) if args.overlays else ""
        sys.stderr.write(f"ruleset: {args.paths[0]} (old), {args.paths[1]} (new){said}\n")
        old, new = load(args.paths[0], args.overlays), load(args.paths[1], args.overlays)
        usage = args.paths[2:]
        shown = (args.paths[0], args.paths[1])
    documents = []
    problems: list[Problem] = []
    for path in usage:
        source = "<stdin>" if path == "-" else path
        try:
            documents.append((source, items_of(read_document(read_text(path), source), source)))
        except UsageError as error:
            problems.extend(error.problems)
    if problems:  # a document that cannot be read is not a price change: refuse, as eval does
        raise UsageError(problems)
    diff = compare(old.program, new.program, documents, dates)
    if args.format == "html":
        from ..report import render_diff  # start-up time: only the HTML page needs it

        out.write(render_diff(diff, *shown))
    else:
        renderers = {"table": render_table, "json": dump, "markdown": render_markdown}
        out.write(renderers[args.format](diff))
    if args.fail_above is not None:
        reasons = over_limit(diff, args.fail_above)
        if reasons:
            sys.stderr.write(f"more than {args.fail_above}% of change:\n" + "".join(f"  {r}\n" for r in reasons))
            return EXIT_FAILED
    return EXIT_OK
