"""`bedrock-rules lsp`: the language server for rule files, speaking LSP over stdin and stdout."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..cli import EXIT_OK
from ..errors import Problem, UsageError

HELP = "run the language server for rule files (LSP over stdio; needs the extra `lsp`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true", help="speak over stdin and stdout (the default and only way; editors pass it)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from ..lsp import main  # optional dependency: pygls, with the extra `lsp`
    except ImportError as error:
        raise UsageError([Problem(f"the language server needs pygls ({error}): pip install 'bedrock-rules[lsp]'")]) from None
    main()
    return EXIT_OK
