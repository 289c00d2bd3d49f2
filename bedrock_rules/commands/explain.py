"""`bedrock-rules explain USAGE…`: each charge's rule and arithmetic, each refusal's reasons."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..cli import EXIT_OK, EXIT_REFUSED, at_option, rules_option
from ..explainer import dump, explain, render_text
from ..ruleset import load
from .eval import read_items

HELP = "explain a bill: the rule text and arithmetic behind each charge, and why refused items are refused"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("usage", nargs="+", metavar="USAGE", help="JSON or YAML usage document; - reads stdin")
    rules_option(parser)
    at_option(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text for people (default), json for machines")


def run(args: argparse.Namespace, out: TextIO) -> int:
    rules = load(args.rules, args.overlays)
    items, problems = read_items(rules, args.usage, args.at)
    if problems:  # a document or a field that cannot be read: refused as `eval` refuses it, every problem at once
        rules.bill(items, problems)
    explanation = explain(rules.program, items)
    out.write(dump(explanation) if args.format == "json" else render_text(explanation))
    return EXIT_REFUSED if explanation.refused else EXIT_OK
