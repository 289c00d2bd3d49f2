"""The `bedrock-rules` command line.

Exit status: 0 done, 1 internal error (or failures, for `test`), 2 refused input.
Bad input never shows a traceback: rule-file and usage errors print their messages.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import attrs

from .bill import decimal_text, dump, render_table
from .errors import BedrockRulesError, Problem, UsageError
from .examples import run as run_examples
from .interpreter import evaluate_items
from .ruleset import Ruleset, load
from .usage import check_items, items_of, read_document

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError([Problem(f"cannot read usage document: {reason}", source=path)]) from None


def _rules(args: argparse.Namespace) -> Ruleset:
    return load(args.rules)


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    rules = _rules(args)
    several = len(args.usage) > 1
    items: list = []
    problems: list[Problem] = []

    for path in args.usage:
        source = "<stdin>" if path == "-" else path
        try:
            raw = items_of(read_document(_read(path), source), source)
        except UsageError as error:
            problems.extend(error.problems)
            continue
        checked, bad = check_items(rules.compiled, raw, source)
        if not several:  # one document: items are named by position alone
            checked = [attrs.evolve(i, source=None) for i in checked]
            bad = [attrs.evolve(p, source=None) for p in bad]
        items.extend(checked)
        problems.extend(bad)
    bill = evaluate_items(rules.compiled, items, problems)
    out.write(dump(bill) if args.format == "json" else render_table(bill))
    return EXIT_OK


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    results = run_examples(_rules(args))
    failed = 0
    for result in results:
        where = result.example.span.where
        if result.passed:
            out.write(f"PASS  {where}  {result.example.title}\n")
            continue
        failed += 1
        out.write(f"FAIL  {where}  {result.example.title}\n")
        if result.error:
            out.write("".join(f"      {line}\n" for line in result.error.splitlines()))
        else:
            out.write(
                f"      expected {decimal_text(result.example.expect)}, "
                f"got {decimal_text(result.actual)}\n"
            )
    out.write(f"{len(results) - failed} passed, {failed} failed\n")
    return EXIT_FAILED if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bedrock-rules",
        description="Price usage documents against declarative pricing rules, exactly.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def rules_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--rules",
            metavar="DIR",
            help="folder of rule files (default: the bundled Amazon Bedrock ruleset)",
        )

    evaluate = commands.add_parser("eval", help="price usage documents and print the bill")
    evaluate.add_argument("usage", nargs="+", metavar="USAGE", help="JSON or YAML usage document; - reads stdin")
    rules_option(evaluate)
    evaluate.add_argument("--format", choices=("table", "json"), default="table")
    evaluate.set_defaults(run=cmd_eval)

    test = commands.add_parser("test", help="run the worked examples written in the rule files")
    test.add_argument("rules", nargs="?", metavar="DIR", help="folder of rule files (default: bundled)")
    test.set_defaults(run=cmd_test)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    try:
        return run(args, sys.stdout)
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
