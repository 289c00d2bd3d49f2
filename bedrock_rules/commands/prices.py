"""`bedrock-rules prices MODEL`: every rate the rules give a model, each with its rule."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..bedrock.fields import profile_model
from ..cli import EXIT_OK, EXIT_REFUSED, instant, rules_option
from ..rates import UnknownName, dump, model_rates, render_text
from ..ruleset import load

HELP = "list every rate that applies to a model, with the rule that sets it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a model as the rules name it (its name or an `aka` alias) or as the invocation logs name it "
        "(a cross-region inference profile id settles the scope its prefix names)",
    )
    parser.add_argument("--region", metavar="REGION", help="only the rates of this region")
    parser.add_argument(
        "--at", metavar="DATE", type=instant,
        help="only the rates in force on this day (2025-11-15); without it every version is listed with its dates",
    )
    rules_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="table for people (default), json for machines")


def run(args: argparse.Namespace, out: TextIO) -> int:
    rules = load(args.rules, args.overlays)
    model = args.model
    known: dict[str, str] = {}
    if model not in rules.program.aliases:
        model, known = profile_model(model)
    try:
        found = model_rates(rules.program, model, args.region, known, None if args.at is None else args.at.day)
    except UnknownName as error:
        for problem in error.problems:
            sys.stderr.write(f"bedrock-rules prices: {problem}\n")
        return EXIT_REFUSED
    out.write(dump(found) if args.format == "json" else render_text(found))
    return EXIT_OK

