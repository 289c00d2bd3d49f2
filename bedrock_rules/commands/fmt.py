"""`bedrock-rules fmt [--check] [PATH…]`: rewrite rule files in the canonical layout."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import TextIO

from ..cli import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from ..config import find_config
from ..errors import RuleFileError
from ..formatter import format_text
from ..loader import read_rule_text, rule_files_in, write_rule_text

HELP = "rewrite rule files in the canonical layout (--check: only show the diff)"
STDIN = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="rule file, or folder of *.rules files (default: the rules the project configuration names, "
        "else the current folder); - reads stdin and writes stdout",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; print a diff for each file that would change, exit 1 if any")


def run(args: argparse.Namespace, out: TextIO) -> int:
    files, refused = rule_files_in(args.paths or _default_paths())
    changed = False
    for path in files:
        try:
            old = sys.stdin.read() if path == STDIN else read_rule_text(path)
        except (OSError, UnicodeDecodeError) as error:
            refused.append(f"{path}: cannot read: {getattr(error, 'strerror', None) or error}")
            continue
        except RuleFileError as error:
            refused.append(error.render())
            continue
        shown = "<stdin>" if path == STDIN else path
        try:
            new = format_text(old, shown)
        except RuleFileError as error:
            refused.append(error.render())
            continue
        if args.check:
            if new != old:
                changed = True
                out.write(_diff(old, new, shown))
        elif path == STDIN:
            out.write(new)
        elif new != old:
            try:
                write_rule_text(path, new)
            except OSError as error:  # a read-only file or folder, a full disk: the file stays as it was
                refused.append(f"{path}: cannot write: {error.strerror or error}")
                continue
            out.write(f"{path}\n")
    for message in refused:
        sys.stderr.write(message + "\n")
    if refused:
        return EXIT_REFUSED
    return EXIT_FAILED if changed else EXIT_OK


def _default_paths() -> list[str]:
    """With no PATH: the rules folder the project configuration names (said on stderr, as the
    other commands say their ruleset), else the current folder."""
    config = find_config()
    if config is None or config.rules is None:
        return ["."]
    folder = os.path.relpath(config.rules, Path.cwd())
    sys.stderr.write(f"ruleset: {folder} (from {config.shown})\n")
    return [folder]


def _diff(old: str, new: str, path: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), path, f"{path} (formatted)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
