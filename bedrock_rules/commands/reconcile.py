"""`bedrock-rules reconcile --cur FILE… LOGS…`: the bill of invocation logs against AWS's CUR 2.0 or FOCUS export."""

from __future__ import annotations

import argparse
import zlib
from decimal import Decimal
from typing import TextIO

from ..cli import EXIT_FAILED, EXIT_OK, rules_option
from ..errors import Problem, UsageError
from ..ruleset import load

HELP = "compare the bill of invocation logs with AWS's billing export (CUR 2.0 or FOCUS), per day, region, model and dimension"


def _tolerance(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"expected an amount such as 0.000001, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected an amount of 0 or more, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOGS", help="invocation log files or folders of the same period")
    parser.add_argument(
        "--cur", action="append", required=True, metavar="FILE",
        help="a CUR 2.0 or FOCUS export (CSV, or Parquet with bedrock-rules[parquet]); repeat for several files",
    )
    rules_option(parser)
    parser.add_argument("--profiles", metavar="FILE", help="application inference profiles to their models (as eval reads them)")
    parser.add_argument(
        "--tolerance", type=_tolerance, default=Decimal("0.000001"), metavar="AMOUNT",
        help="largest cost difference per line taken as equal (default 0.000001), for AWS's binary-double costs",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..bedrock import containers  # start-up time: only logs need the log reader
    from ..bedrock.logs import LogReader, read_file  # start-up time: as above
    from ..bedrock.profiles import load_profiles  # start-up time: as above
    from ..bedrock.reconcile import read_exports, reconcile, render_text  # start-up time: as above

    rules = load(args.rules, args.overlays)
    exports = read_exports(args.cur)
    reader = LogReader(rules.program, True, load_profiles(args.profiles) if args.profiles else None)
    accumulator = rules.accumulator(("day", "region", "model"))
    for label, path in [found for given in args.logs for found in containers.files_of(given)]:
        try:
            raw = containers.open_binary(path)
        except OSError as error:
            raise UsageError([Problem(containers.unreadable(error), source=path)]) from None
        with raw:
            try:
                accumulator.add_records(read_file(reader, raw))
            except (OSError, EOFError, zlib.error) as error:
                raise UsageError([Problem(containers.unreadable(error), source=label)]) from None
    result = reconcile(rules.program, exports, accumulator.result(), args.tolerance)
    out.write(render_text(result, rules.currency))
    return EXIT_OK if result.clean else EXIT_FAILED
