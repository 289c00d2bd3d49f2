"""`bedrock-rules test [--rules DIR]`: run the worked examples written in the rule files."""

from __future__ import annotations

import argparse
from decimal import Decimal
from fractions import Fraction
from typing import TextIO, cast

from ..bill import decimal_text
from ..cli import EXIT_FAILED, EXIT_OK, at_option, coverage_percent, rules_option
from ..display import share_text
from ..examples import ExampleResult, priced_rules, uncovered
from ..examples import run as run_examples
from ..ruleset import load

HELP = "run the worked examples written in the rule files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules_option(parser)
    parser.add_argument("--coverage", action="store_true", help="list the price rules no example exercises")
    at_option(parser)
    parser.add_argument(
        "--min-coverage",
        type=coverage_percent,
        metavar="PERCENT",
        help="fail when examples exercise less than PERCENT of the price rules",
    )


def _failure(result: ExampleResult) -> str:
    if result.error:
        return "".join(f"      {line}\n" for line in result.error.splitlines())
    actual = cast(Decimal, result.actual)  # no error: the example was priced
    lines = [f"      expected {decimal_text(result.example.expect)}, got {decimal_text(actual)}\n"]
    assert result.bill is not None
    for item in result.bill.items:
        for charge in item.charges:
            lines.append(f"      item {item.label}: {charge.what} = {decimal_text(charge.amount)}  ({charge.rule})\n")
    return "".join(lines)


def run(args: argparse.Namespace, out: TextIO) -> int:
    rules = load(args.rules, args.overlays)
    results = run_examples(rules, args.at)
    failed = 0
    for result in results:
        where = result.example.span.where
        if result.passed:
            out.write(f"PASS  {where}  {result.example.title}\n")
            continue
        failed += 1
        out.write(f"FAIL  {where}  {result.example.title}\n{_failure(result)}")
    status = EXIT_FAILED if failed else EXIT_OK
    if args.coverage or args.min_coverage is not None:
        missing = uncovered(rules, results)
        total = len(priced_rules(rules))
        covered = total - len(missing)
        # Compared exactly (covered / total against PERCENT / 100, as fractions), and shown
        # cut, never rounded up: 1,999 of 2,000 is 99.95%, below 100 and never printed as 100.
        shown = share_text(covered, total)
        if args.coverage:
            for rule in missing:
                out.write(f"NOT COVERED  {rule.where}  {rule.id}\n")
        out.write(f"coverage: {covered} of {total} price rules exercised by examples ({shown}%)\n")
        if args.min_coverage is not None and total and Fraction(100 * covered, total) < Fraction(args.min_coverage):
            out.write(f"coverage {shown}% is below the minimum of {args.min_coverage}%\n")
            status = EXIT_FAILED
    out.write(f"{len(results) - failed} passed, {failed} failed\n")
    return status
