"""`bedrock-rules init [DIR]`: scaffold an analyst's rules repository, with its CI workflow."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from ..cli import EXIT_OK
from ..scaffold import init

HELP = "scaffold a rules repository: the rules, a usage folder with its stored bill, the configuration and a CI workflow"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", default=".", metavar="DIR", help="folder to lay out (default: the current folder)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    written = init(Path(args.target))
    out.write("".join(f"wrote {args.target.rstrip('/')}/{name}\n" if args.target != "." else f"wrote {name}\n" for name in written))
    out.write(
        "\nNext: commit these files. The workflow (.github/workflows/prices.yml, explained in\n"
        "docs/ci.md of bedrock-rules) installs bedrock-rules from a wheel kept in tools/: build\n"
        "one with `pip wheel --no-deps . -w tools` in a checkout of bedrock-rules, or edit that\n"
        "step. Its `rules` job runs check, fmt --check, test and snapshot from this folder.\n"
    )
    return EXIT_OK
