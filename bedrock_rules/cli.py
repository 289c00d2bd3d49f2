"""The `bedrock-rules` command line: one module per command under `commands/`.

Exit status (README "Errors and exit status" lists the same):

- 0: done, nothing to report.
- 1: findings or failures: `check` and `pricelist check` findings, `test` failures, `fmt --check` changes,
  `diff --fail-above` exceeded, `snapshot` differences, `reconcile` differences.
- 2: refused input: rule files, usage documents or options; nothing is priced.
- 3: `eval` of invocation logs held records the rules cannot price (unless --strict).
- 70: an internal error, a bug in bedrock-rules (EX_SOFTWARE of sysexits.h).
- 130: interrupted (Ctrl-C); what the command would have printed is not written.

Bad input never shows a traceback: rule-file and usage errors print their messages.
A command's standard output is held until it is complete, so an interrupted or failed
run never leaves part of a bill that could be taken for the whole.
"""

from __future__ import annotations

import argparse
import decimal
import errno
import importlib
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from decimal import Decimal

from . import __version__
from .config import Config, ConfigError, choose_overlays, choose_rules, find_config, regular_profiles
from .display import visible_lines
from .errors import BedrockRulesError
from .fields import Instant, read_instant

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNPRICED = 0, 1, 2, 3
EXIT_INTERNAL = 70  # EX_SOFTWARE: a CI gate must not read a bug as "findings"
EXIT_OUTPUT = 74  # EX_IOERR: the output could not be written (a full disk, a closed standard output)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
# A percent's decimal exponent stays within this, so exact products of it never overflow.
MAX_PERCENT_EXPONENT = 1_000_000

# Each command's module provides HELP, add_arguments(parser) and run(args, out) -> status.
COMMANDS = ("eval", "test", "explain", "prices", "pricelist", "diff", "check", "fmt", "snapshot", "reconcile", "init", "lsp")


def build_parser(only: str | None = None, config: Config | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that command's module is imported (start-up time).

    A configuration's `[defaults.COMMAND]` become that command's defaults, checked as the
    command line would check them.
    """
    parser = argparse.ArgumentParser(
        prog="bedrock-rules",
        description="Price usage documents against declarative pricing rules, exactly.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            commands.add_parser(name)
            continue
        module = importlib.import_module(f"bedrock_rules.commands.{name}")
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
        if config is not None:
            _set_defaults(sub, name, config)
    if config is not None:
        unknown = sorted(set(config.defaults) - set(COMMANDS))
        if unknown:
            raise ConfigError(f"[defaults.{unknown[0]}]: no such command; the commands are {', '.join(COMMANDS)}", config.shown)
    return parser


# Options that make a command write files: `snapshot --update` rewrites the stored bills
# it would compare (a CI gate that always passes), `eval --output` writes where it names.
_WRITES = ("update", "output")


def _set_defaults(sub: argparse.ArgumentParser, command: str, config: Config) -> None:
    """One command's defaults from the configuration, each converted and checked as its option is."""
    options = {o[2:]: a for a in sub._actions for o in a.option_strings if o.startswith("--")}
    given = config.defaults.get(command, {})
    values = {}
    for key, value in given.items():
        where = f"[defaults.{command}] {key}"
        action = options.get(key)
        if action is None or key in ("help", "rules", "overlay"):
            known = ", ".join(sorted(k for k in options if k not in ("help", "rules", "overlay", *_WRITES)))
            raise ConfigError(f"{where}: {command} has no option --{key} to default (its options: {known})", config.shown)
        if key in _WRITES:
            raise ConfigError(
                f"{where}: --{key} writes files, so it is given on the command line only; a configuration "
                "cannot make a command write (or a check pass by rewriting what it checks)", config.shown,
            )
        if action.nargs == 0:  # a flag such as --strict
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false", config.shown)
        else:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: expected a string, as it would be written after --{key}", config.shown)
            try:
                value = action.type(value) if callable(action.type) else value
            except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
                raise ConfigError(f"{where}: {error}", config.shown) from None
            if action.choices is not None and value not in action.choices:
                raise ConfigError(f"{where}: expected one of {', '.join(map(str, action.choices))}, got {value!r}", config.shown)
        values[action.dest] = value
    sub.set_defaults(**values)


def coverage_percent(text: str) -> Decimal:
    """An argparse type: a share of the price rules, from 0 to 100 percent."""
    value = percent(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percent from 0 to 100, got {_cut(text)}")
    return value


def group_keys(text: str) -> tuple[str, ...]:
    """An argparse type: `--group-by` keys, comma-separated, each once."""
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} given twice")
    return keys


def percent(text: str) -> Decimal:
    """An argparse type: a percentage of 0 or more, as an exact decimal."""
    try:
        value = Decimal(text)
    except decimal.InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a percent such as 5 or 0.5, got {_cut(text)}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a percent of 0 or more, got {_cut(text)}")
    if value and abs(value.adjusted()) > MAX_PERCENT_EXPONENT:
        raise argparse.ArgumentTypeError(
            f"expected a percent between 1E-{MAX_PERCENT_EXPONENT} and 1E+{MAX_PERCENT_EXPONENT}, got {_cut(text)}"
        )
    return value


def _cut(text: str, limit: int = 40) -> str:
    """An argument as a message shows it: quoted, and cut when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text):,} characters)"


def instant(text: str) -> Instant:
    """An argparse type: a date (2024-12-05) or a time with its zone, as usage `at:` takes it."""
    read = read_instant(text)
    if isinstance(read, str):
        raise argparse.ArgumentTypeError(read)
    return read


def at_option(parser: argparse.ArgumentParser) -> None:
    """`--at DATE`, shared by the commands that price usage."""
    parser.add_argument(
        "--at",
        metavar="DATE",
        type=instant,
        help="price items that carry no `at:` of their own at this date (2024-12-05 or 2024-12-05T10:00:00Z); "
        "an item's own `at:` always wins",
    )


def rules_option(parser: argparse.ArgumentParser) -> None:
    """`--rules DIR`, shared by the commands that read one ruleset."""
    parser.add_argument(
        "--rules",
        metavar="DIR",
        help="folder of rule files (default: `rules` of bedrock-rules.toml or [tool.bedrock-rules], "
        "else the bundled Amazon Bedrock ruleset)",
    )
    overlay_option(parser)


def overlay_option(parser: argparse.ArgumentParser) -> None:
    """`--overlay PATH` (repeatable): a customer's rates layered on the ruleset, in the order given."""
    parser.add_argument(
        "--overlay",
        dest="overlays",
        metavar="PATH",
        action="append",
        help="an overlay file, or a folder of them, layered on the rules (repeat for several, applied in order; "
        "default: `overlays` of bedrock-rules.toml or [tool.bedrock-rules])",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is returned, never raised (argparse's own errors exit 2)."""
    output = _Output()
    if sys.stderr is None:  # started with its standard error closed: what it would say is not read
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the life of the process
    try:
        return _main(argv, output)
    except KeyboardInterrupt:
        said = "the output above is incomplete" if output.started else "nothing was written"
        sys.stderr.write(f"bedrock-rules: interrupted; {said}\n")
        return EXIT_INTERRUPTED


class _Output:
    """A command's standard output, held until the command is done.

    Held in memory while small and in a temporary file past `SPOOL` characters: the bill
    of a million items is hundreds of megabytes of text, which memory need not hold.
    """

    SPOOL = 1 << 22  # characters

    def __init__(self) -> None:
        self.held = tempfile.SpooledTemporaryFile(self.SPOOL, mode="w+", encoding="utf-8", errors="surrogatepass", newline="")
        self.started = False

    def write(self) -> None:
        if sys.stdout is None:  # started with its standard output closed
            raise OSError(errno.EBADF, "standard output is closed")
        self.started = True
        self.held.seek(0)
        while True:
            chunk = self.held.read(1 << 16)
            if not chunk:
                break
            sys.stdout.write(chunk)
        sys.stdout.flush()


def _main(argv: Sequence[str] | None, output: _Output) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first not in COMMANDS:  # --version, --help or a mistake: argparse answers, no configuration needed
        build_parser().parse_args(argv)
    # Held until the command is done: on Ctrl-C or an internal error nothing half-written is shown.
    try:
        args = _arguments(argv, first)
        status = args.run(args, output.held)
    except BedrockRulesError as error:
        written = _written(output)  # what a command reported before the refusal (snapshot's matched documents) stays
        sys.stderr.write(visible_lines(error.render()) + "\n")  # a rule line quoted as written: its controls as escapes
        return EXIT_REFUSED if written is None else written
    except Exception as error:  # a bug in bedrock-rules, not in the input
        if os.environ.get("BEDROCK_RULES_DEBUG"):
            raise
        sys.stderr.write(
            f"bedrock-rules: internal error: {type(error).__name__}: {error}\n"
            "(set BEDROCK_RULES_DEBUG=1 for the traceback)\n"
        )
        return EXIT_INTERNAL
    written = _written(output)
    return status if written is None else written


def _written(output: _Output) -> int | None:
    """Write the command's output; None once written, else the status that says it could not be."""
    try:
        output.write()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        _stdout_to_devnull()
    except OSError as error:  # a full disk, a closed standard output: the output is not there to be taken for whole
        sys.stderr.write(f"bedrock-rules: cannot write the output: {error.strerror or error}\n")
        _stdout_to_devnull()
        return EXIT_OUTPUT
    return None


def _arguments(argv: list[str], command: str | None) -> argparse.Namespace:
    """The command line with the project configuration's choices filled in.

    The ruleset a command uses is said on stderr, so the bill on stdout stays as it was.
    """
    config = find_config()
    args = build_parser(command, config).parse_args(argv)
    if hasattr(args, "overlays"):
        args.overlays = choose_overlays(args.overlays, config)
    said = "; overlays: " + ", ".join(args.overlays) if getattr(args, "overlays", None) else ""
    if hasattr(args, "rules"):
        choice = choose_rules(args.rules, config, overlays=getattr(args, "overlays", None) or ())
        args.rules = choice.path
        sys.stderr.write(choice.describe() + said + "\n")
    if config is not None and config.profiles is not None and getattr(args, "profiles", "") is None:
        args.profiles = regular_profiles(config)
    return args


def _stdout_to_devnull() -> None:
    """After a closed pipe, so the interpreter's own flush at exit has nowhere to fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # not a real file (tests capture it), or none
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
