"""The `bedrock-rules` command line: one module per command under `commands/`.

Exit status: 0 done, 1 findings or failures (or an internal error), 2 refused input,
3 an invocation log held records the rules cannot price (`eval`, unless --strict).
Bad input never shows a traceback: rule-file and usage errors print their messages.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import os
import sys
from collections.abc import Sequence
from decimal import Decimal

from .errors import BedrockRulesError

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNPRICED = 0, 1, 2, 3

# Each command's module provides HELP, add_arguments(parser) and run(args, out) -> status.
COMMANDS = ("eval", "test", "explain", "diff", "check", "fmt", "snapshot")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that command's module is imported (start-up time)."""
    parser = argparse.ArgumentParser(
        prog="bedrock-rules",
        description="Price usage documents against declarative pricing rules, exactly.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            commands.add_parser(name)
            continue
        module = importlib.import_module(f"bedrock_rules.commands.{name}")
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def percent(text: str) -> Decimal:
    """An argparse type: a percentage of 0 or more, as an exact decimal."""
    try:
        value = Decimal(text)
    except decimal.InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a percent such as 5 or 0.5, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a percent of 0 or more, got {text!r}")
    return value


def rules_option(parser: argparse.ArgumentParser) -> None:
    """`--rules DIR`, shared by the commands that read one ruleset."""
    parser.add_argument(
        "--rules",
        metavar="DIR",
        help="folder of rule files (default: the bundled Amazon Bedrock ruleset)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(first if first in COMMANDS else None).parse_args(argv)
    try:
        return args.run(args, sys.stdout)
    except BedrockRulesError as error:
        sys.stderr.write(error.render() + "\n")
        return EXIT_REFUSED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug in bedrock-rules, not in the input
        if os.environ.get("BEDROCK_RULES_DEBUG"):
            raise
        sys.stderr.write(
            f"bedrock-rules: internal error: {type(error).__name__}: {error}\n"
            "(set BEDROCK_RULES_DEBUG=1 for the traceback)\n"
        )
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
