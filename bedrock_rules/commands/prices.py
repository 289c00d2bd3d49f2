"""`bedrock-rules prices MODEL`: every rate the rules give a model, each with its rule."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..bedrock.fields import profile_model
from ..cli import EXIT_OK, EXIT_REFUSED, rules_option
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
    parser.add_argument("--at", metavar="DATE", help="the rates in force on a date (YYYY-MM-DD)")
    rules_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table", help="table for people (default), json for machines")


def run(args: argparse.Namespace, out: TextIO) -> int:
    rules = load(args.rules, args.overlays)
    if args.at is not None:
        # The language holds one price per rule, with no date: a date could not change the answer,
        # and answering as if it did would present undated prices as the ones in force then.
        sys.stderr.write(
            f"bedrock-rules prices: --at {args.at}: these rules hold no dated prices; "
            "leave out --at for the only prices they give\n"
        )
        return EXIT_REFUSED
    model = args.model
    known: dict[str, str] = {}
    if model not in rules.program.aliases:
        model, known = profile_model(model)
    try:
        found = model_rates(rules.program, model, args.region, known)
    except UnknownName as error:
        for problem in error.problems:
            sys.stderr.write(f"bedrock-rules prices: {problem}\n")
        return EXIT_REFUSED
    out.write(dump(found) if args.format == "json" else render_text(found))
    return EXIT_OK

