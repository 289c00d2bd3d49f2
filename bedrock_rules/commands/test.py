"""`bedrock-rules test [DIR]`: run the worked examples written in the rule files."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..bill import decimal_text
from ..cli import EXIT_FAILED, EXIT_OK
from ..examples import run as run_examples
from ..ruleset import load

HELP = "run the worked examples written in the rule files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rules", nargs="?", metavar="DIR", help="folder of rule files (default: the bundled ruleset)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    results = run_examples(load(args.rules))
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
            out.write(f"      expected {decimal_text(result.example.expect)}, got {decimal_text(result.actual)}\n")
    out.write(f"{len(results) - failed} passed, {failed} failed\n")
    return EXIT_FAILED if failed else EXIT_OK
