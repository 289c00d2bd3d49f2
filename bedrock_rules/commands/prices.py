"""`bedrock-rules prices MODEL`: every rate the rules give a model, each with its rule."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..bedrock.fields import GEOGRAPHIES, GLOBAL_PREFIX
from ..cli import EXIT_OK, EXIT_REFUSED, rules_option
from ..rates import UnknownName, dump, model_rates, render_text
from ..ruleset import load

HELP = "list every rate that applies to a model, with the rule that sets it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a model as the rules or the logs name it: claude-3-haiku, anthropic.claude-3-haiku-20240307-v1:0, "
        "or a cross-region profile id (us.…, global.…), which settles the scope it names",
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
    model, known = args.model, {}
    if model not in rules.program.aliases:
        model, known = _profile(model)
    try:
        found = model_rates(rules.program, model, args.region, known)
    except UnknownName as error:
        for problem in error.problems:
            sys.stderr.write(f"bedrock-rules prices: {problem}\n")
        return EXIT_REFUSED
    out.write(dump(found) if args.format == "json" else render_text(found))
    return EXIT_OK


def _profile(model_id: str) -> tuple[str, dict[str, str]]:
    """A cross-region profile id as the model id and the scope its prefix names, as the log reader reads it."""
    prefix, dot, rest = model_id.partition(".")
    if dot and prefix == GLOBAL_PREFIX:
        return rest, {"scope": "global"}
    if dot and prefix in GEOGRAPHIES:
        return rest, {"scope": "geographic", "geography": prefix}
    return model_id, {}
