"""`bedrock-rules pricelist check OFFER…`: the rules against AWS Price List offer files."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..bedrock.offers import OfferPrice, read_offer
from ..cli import EXIT_FAILED, EXIT_OK, rules_option
from ..errors import Problem, UsageError
from ..pricelist import check_offers, dump, render_text
from ..ruleset import load

HELP = "check the rules against AWS Price List offer files: prices that differ, SKUs not covered, rules without a SKU"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help=HELP, description=HELP)
    check.add_argument(
        "offers",
        nargs="+",
        metavar="OFFER",
        help="offer file (JSON) of AmazonBedrock, AmazonBedrockFoundationModels or AmazonBedrockService, "
        "or the output of `aws pricing get-products`",
    )
    rules_option(check)
    check.add_argument("--format", choices=("text", "json"), default="text", help="text for people (default), json for machines")


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.overlays:  # AWS publishes list prices: a customer's negotiated rates are not in its offer files
        sys.stderr.write("bedrock-rules pricelist: the list prices are compared; the overlays are not applied\n")
    rules = load(args.rules)
    prices: list[OfferPrice] = []
    problems: list[Problem] = []
    for path in args.offers:  # every file's problems at once
        try:
            prices.extend(read_offer(path))
        except UsageError as error:
            problems.extend(error.problems)
    if problems:
        raise UsageError(problems)
    if not prices:
        raise UsageError([Problem("the offer files hold no on-demand prices")])
    report = check_offers(rules, prices)
    out.write(dump(report) if args.format == "json" else render_text(report))
    return EXIT_FAILED if report.findings else EXIT_OK
