"""`bedrock-rules check [--rules DIR]`: static analysis of rule files, no usage needed."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..checker import check, to_github, to_json
from ..cli import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, rules_option
from ..display import visible_lines

HELP = "check rule files for errors, overlapping or unreachable rules, gaps between tiers and broken examples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rules_option(parser)
    parser.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text for people (default), json for machines, github for GitHub Actions annotations",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    report = check(args.rules, args.overlays)
    findings = report.findings
    if args.format == "json":
        out.write(to_json(findings))
    elif args.format == "github":
        out.write(to_github(findings))
    else:
        # A rule file's bidi or control characters are shown as escapes, so a quoted
        # source line reads the way the engine reads it.
        out.write("".join(f"{visible_lines(finding.render())}\n\n" for finding in findings))
        count = f"{len(findings)} problem{'s' if len(findings) != 1 else ''}"
        if not report.loaded:
            out.write(f"{report.root}: {count}; the rules cannot be loaded, so nothing else was checked\n")
        else:
            out.write(f"{report.root}: {count if findings else 'no problems found'}\n")
    if not report.loaded:
        return EXIT_REFUSED
    return EXIT_FAILED if findings else EXIT_OK
