"""`bedrock-rules eval USAGE…`: price usage documents or invocation logs and print the bill."""

from __future__ import annotations

import argparse
import functools
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TextIO

from .. import limits
from ..bill import Bill, ItemBill, PeriodBill, decimal_text
from ..billstream import JsonBill, Problems, Sink, TableBill, TotalsOf, price_documents
from ..cli import EXIT_OK, EXIT_UNPRICED, at_option, group_keys, rules_option
from ..errors import Problem, UsageError, did_you_mean
from ..fields import Instant
from ..overlays import overlays_of
from ..ruleset import Ruleset, load
from ..totals import Totals, render_csv, where
from ..totals import dump as dump_totals
from ..totals import render_table as table
from ..usage import Item, items_of, read_document, stream_items

HELP = "price usage documents or invocation logs and print the bill"
HTML_GROUPS = ("model", "region", "day")  # what the HTML page of invocation logs always groups by


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("usage", nargs="+", metavar="USAGE", help="usage document or log file; - reads stdin")
    rules_option(parser)
    at_option(parser)
    parser.add_argument(
        "--input",
        choices=("usage", "invocation-log"),
        default="usage",
        help="usage: JSON or YAML usage documents (default); invocation-log: Bedrock model invocation logs "
        "(JSON lines, plain or .gz, JSON arrays, Logs Insights CSV or JSON exports, or folders of them)",
    )
    parser.add_argument(
        "--profiles",
        metavar="FILE",
        help="invocation logs: application inference profiles to their models (JSON or YAML: the output of "
        "`aws bedrock get-inference-profile`, or {profile ARN or ID: model ID})",
    )
    parser.add_argument(
        "--format", choices=("table", "json", "csv", "focus", "html"), default="table",
        help="table for people (default), json or csv for machines, focus for FinOps tools (FOCUS 1.2 rows, CSV or --output FILE), "
        "html for one self-contained page with charts",
    )
    parser.add_argument(
        "--period", metavar="YYYY-MM", type=_month,
        help="focus: the month of the usage items that carry no date (charge and billing period); a dated item (at) "
        "and an invocation log's records are charged over their own day, and with --period every day must fall in that month",
    )
    parser.add_argument("--billing-account", metavar="ID", help="focus: BillingAccountId of every row (the payer account)")
    parser.add_argument(
        "--output", metavar="FILE",
        help="focus: write the rows to FILE instead of stdout; FILE.parquet writes Parquet (needs bedrock-rules[parquet])",
    )
    parser.add_argument(
        "--group-by",
        metavar="KEYS",
        type=group_keys,
        default=(),
        help="subtotals per group: model, region, day, identity, operation, kind, tag:KEY (logs), or any usage field",
    )
    parser.add_argument(
        "--engine", choices=("default", "duckdb"), default="default",
        help="invocation logs: duckdb sums JSON Lines (plain or .gz) and Parquet with DuckDB, and the engine prices the sums "
        "(the same totals; needs bedrock-rules[duckdb])",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="invocation logs: refuse the whole input (exit 2) when any record cannot be priced, instead of exit 3",
    )


def _month(text: str):
    from ..focus import Period  # start-up time: only FOCUS output needs it

    try:
        return Period.month(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def read_text(path: str) -> str:
    """A usage document's text; `-` reads standard input.

    At most one character past the size limit is read, so an oversized input is refused
    without being held in memory whole.
    """
    limit = limits.MAX_DOCUMENT_CHARS
    try:
        if path == "-":
            text = sys.stdin.read(limit + 1)
        else:
            with open(path, encoding="utf-8") as document:
                text = document.read(limit + 1)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError([Problem(f"cannot read usage document: {reason}", source=path, code="BU001")]) from None
    if len(text) > limit:
        message = limits.exceeded("document too large", f"more than {limit:,} characters", f"{limit:,} characters (50 MiB)")
        raise UsageError([Problem(message, source="<stdin>" if path == "-" else path, code="BU003")])
    return text


def read_items(rules: Ruleset, paths: list[str], at: Instant | None = None) -> tuple[list[Item], list[Problem]]:
    """Every item of every document, checked; one document's items are named by position alone."""
    several = len(paths) > 1
    items: list[Item] = []
    problems: list[Problem] = []
    for path in paths:
        source = "<stdin>" if path == "-" else path
        try:
            raw = items_of(read_document(read_text(path), source), source)
        except UsageError as error:
            problems.extend(error.problems)
            continue
        checked, bad = rules.check_items(raw, source if several else None, at=at)
        items.extend(checked)
        problems.extend(bad)
    return items, problems


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.usage.count("-") > 1:  # the second read of standard input would find it empty
        raise UsageError([Problem("- (standard input) is given more than once; it can be read once")])
    rules = load(args.rules, args.overlays)
    if args.format == "focus":
        _check_focus_options(args)
    elif args.period is not None or args.billing_account is not None or args.output is not None:
        raise UsageError([Problem("--period, --billing-account and --output apply to --format focus only")])
    if args.input == "invocation-log":
        return _run_logs(rules, args, out)
    if args.engine != "default":
        raise UsageError([Problem("--engine applies to --input invocation-log only")])
    if args.group_by:
        fields = rules.item_fields
        unknown = [key for key in args.group_by if key not in fields]
        if unknown:
            hints = "".join(did_you_mean(key, fields) for key in unknown[:1])
            raise UsageError([Problem(f"cannot group usage documents by {unknown[0]!r}{hints}; use kind, name or a field of a kind")])
    if args.format in ("table", "json", "csv") or (args.format == "focus" and not (args.output or "").endswith(".parquet")):
        return _stream_bill(rules, args, out)
    items, problems = read_items(rules, args.usage, args.at)
    bill = rules.bill(items, problems)
    if args.format == "focus":
        from ..bedrock.focus import charges_of_bill  # start-up time: only FOCUS output needs it

        return _write_focus(charges_of_bill(items, bill, args.period), rules.currency, args, out)
    if args.format == "html":  # itemized, with --group-by's fields as more columns and charts
        from ..report import render_bill  # start-up time: only the HTML page needs it

        out.write(render_bill(bill, [item.values for item in items], _sources(args.usage), args.group_by))
        return EXIT_OK
    raise AssertionError(f"no writer for --format {args.format}")


def _stream_bill(rules: Ruleset, args: argparse.Namespace, out: TextIO) -> int:
    """The bill or totals of usage documents, each item read, priced and written before the next
    (memory does not grow with the items); nothing is written when any item is refused."""
    sink: Sink
    if args.format == "focus":
        sink = _FocusRows(rules.currency, args)
    elif args.group_by or args.format == "csv":
        sink = TotalsOf(rules.accumulator(args.group_by), lambda totals, to: _write_totals(totals, args.format, to, "item"))
    elif args.format == "json":
        sink = JsonBill(rules.currency, overlays_of(rules.program))
    else:
        sink = TableBill(rules.currency, overlays_of(rules.program))
    documents = [(_sources([path])[0], functools.partial(_document_items, path)) for path in args.usage]
    price_documents(rules.program, documents, sink, out, several=len(args.usage) > 1, at=args.at)
    return EXIT_OK


class _FocusRows:
    """FOCUS rows as CSV, an item's rows written as it is priced (Parquet needs every row at once).

    A row that cannot be written (no exact PricingQuantity) refuses the whole output, as
    it does when the rows are made at once, with every such problem."""

    def __init__(self, currency: str, args: argparse.Namespace):
        import tempfile  # start-up time: only FOCUS output needs it

        from ..bedrock.focus import PROVIDER, charges_of_bill  # start-up time: as above
        from ..focus import render_csv, rows  # start-up time: as above

        self._charges, self._rows, self._csv, self._provider = charges_of_bill, rows, render_csv, PROVIDER
        self.currency = currency
        self.args = args
        self.rows = tempfile.SpooledTemporaryFile(1 << 20, mode="w+", encoding="utf-8", newline="")
        self.count = 0
        self.problems = Problems()

    def add(self, item: ItemBill, values: Mapping[str, Any]) -> None:
        checked = Item(item.index, item.name, item.kind, values, item.source)
        try:  # an item out of its period, or a row with no exact quantity: every such problem, then refused
            charges = self._charges([checked], Bill(self.currency, (item,), item.subtotal), self.args.period)
            table = self._rows(charges, self._provider, self.currency, self.args.billing_account)
        except UsageError as error:
            self.problems.extend(error.problems)
            return
        text = self._csv(table)
        self.rows.write(text[text.index("\n") + 1 :])  # without the header
        self.count += len(table)

    def add_periods(self, periods: tuple[PeriodBill, ...]) -> None:
        from ..bedrock.focus import PERIODS_REFUSAL  # start-up time: only FOCUS output needs it

        raise UsageError([PERIODS_REFUSAL])

    def finish(self, total: Decimal, out: TextIO) -> None:
        if self.problems.count:
            raise UsageError(self.problems.listed())
        self.rows.seek(0)
        if self.args.output is None:
            _copy_into(out, self._csv([]), self.rows)
            return
        try:
            with open(self.args.output, "w", encoding="utf-8", newline="") as file:
                _copy_into(file, self._csv([]), self.rows)
        except OSError as error:
            raise UsageError([Problem(f"cannot write: {error.strerror or error}", source=self.args.output)]) from None
        sys.stderr.write(f"{self.count} FOCUS row{'s' if self.count != 1 else ''} written to {self.args.output}\n")


def _copy_into(out: TextIO, head: str, rest: Any) -> None:
    out.write(head)
    while chunk := rest.read(1 << 16):
        out.write(chunk)


def _document_items(path: str) -> Iterator[Any]:
    source = "<stdin>" if path == "-" else path
    return stream_items(read_text(path), source)


def _run_logs(rules: Ruleset, args: argparse.Namespace, out: TextIO) -> int:
    from ..bedrock.logs import check_groups  # start-up time: only logs need the log reader
    from ..bedrock.profiles import load_profiles  # start-up time: as above

    if args.format == "focus":
        from ..bedrock.focus import LOG_GROUPS  # start-up time: only FOCUS output needs it

        args.group_by = LOG_GROUPS
    check_groups(args.group_by)
    group_by = args.group_by
    if args.format == "html":  # the page charts cost by model, region and day
        group_by = (*group_by, *(key for key in HTML_GROUPS if key not in group_by))
    profiles = load_profiles(args.profiles) if args.profiles else None
    if args.engine == "duckdb":
        totals = _duckdb_totals(rules, args.usage, group_by, profiles)
    else:
        totals = _default_totals(rules, args.usage, group_by, profiles)
    if args.strict and not totals.complete:
        raise UsageError([
            Problem(f"{u.reason} ({u.count} record{'s' if u.count != 1 else ''}: {where(u)})")
            for u in (*totals.malformed, *totals.unpriced)
        ])
    if args.format == "focus":
        from ..bedrock.focus import charges_of_totals  # start-up time: only FOCUS output needs it

        status = _write_focus(charges_of_totals(totals, args.period), rules.currency, args, out)
        if not totals.complete:
            sys.stderr.write(f"{sum(u.count for u in (*totals.unpriced, *totals.malformed))} records could not be priced "
                             "and have no FOCUS row; eval without --format focus lists them\n")
    elif args.format == "html":
        from ..report import render_totals  # start-up time: only the HTML page needs it

        out.write(render_totals(totals, "line", _sources(args.usage)))
        status = EXIT_OK
    else:
        status = _write_totals(totals, args.format, out, "line")
    return status if totals.complete else EXIT_UNPRICED


def _default_totals(rules: Ruleset, paths: list[str], group_by, profiles):
    from ..bedrock import containers, remote  # start-up time: only logs need the log reader
    from ..bedrock.logs import LogReader, add_log, needs_attributes, read_file  # start-up time: as above

    reader = LogReader(rules.program, needs_attributes(group_by), profiles)
    accumulator = rules.accumulator(group_by)
    progress = _Progress(rules.currency) if sys.stderr.isatty() else None
    files = [found for path in paths for found in remote.files_of(path)]
    for label, path in files:
        try:
            raw = remote.open_binary(path)
        except OSError as error:
            raise UsageError([Problem(containers.unreadable(error), source=path)]) from None
        if len(files) > 1:
            accumulator.source = label  # add_records ends with no batch held
        with raw:
            try:
                if progress is None:
                    add_log(reader, accumulator, raw)  # the usual records summed per shape, priced once
                else:
                    accumulator.add_records(progress.follow(read_file(reader, raw), accumulator))
            except (OSError, EOFError, zlib.error) as error:  # a truncated or corrupt .gz
                raise UsageError([Problem(containers.unreadable(error), source=label)]) from None
    if progress is not None:
        progress.done()
    return accumulator.result()


def _duckdb_totals(rules: Ruleset, paths: list[str], group_by, profiles):
    try:
        import duckdb  # noqa: F401  # optional dependency: the `duckdb` extra

        from ..bedrock import columnar  # start-up time: only --engine duckdb needs it
    except ImportError:
        raise UsageError([Problem("--engine duckdb needs DuckDB: pip install 'bedrock-rules[duckdb]'")]) from None
    return columnar.totals(rules, paths, group_by, profiles)


def _check_focus_options(args: argparse.Namespace) -> None:
    problems = []
    if args.group_by:
        problems.append(Problem("--group-by does not apply to --format focus: FOCUS has one row per charge"))
    if not args.billing_account:
        problems.append(Problem("FOCUS rows need a BillingAccountId: pass --billing-account ID (the payer account), "
                                "or set billing-account in [defaults.eval] of bedrock-rules.toml"))
    if args.output and args.output.endswith(".parquet"):
        try:
            import pyarrow  # noqa: F401  # optional dependency: the `parquet` extra
        except ImportError:
            problems.append(Problem("writing Parquet needs pyarrow: pip install 'bedrock-rules[parquet]'"))
    if problems:
        raise UsageError(problems)


def _write_focus(charges, currency: str, args: argparse.Namespace, out: TextIO) -> int:
    from ..bedrock.focus import PROVIDER  # start-up time: only FOCUS output needs it
    from ..focus import render_csv, rows, write_parquet  # start-up time: as above

    table = rows(charges, PROVIDER, currency, args.billing_account)
    if args.output is None:
        out.write(render_csv(table))
        return EXIT_OK
    try:
        if args.output.endswith(".parquet"):
            write_parquet(table, args.output)
        else:
            with open(args.output, "w", encoding="utf-8", newline="") as file:
                file.write(render_csv(table))
    except OSError as error:
        raise UsageError([Problem(f"cannot write: {error.strerror or error}", source=args.output)]) from None
    sys.stderr.write(f"{len(table)} FOCUS row{'s' if len(table) != 1 else ''} written to {args.output}\n")
    return EXIT_OK


def _sources(paths: list[str]) -> list[str]:
    return ["<stdin>" if path == "-" else path for path in paths]


def _write_totals(totals: Totals, fmt: str, out: TextIO, place: str) -> int:
    writers: dict[str, Callable[[Totals, str], str]] = {"json": dump_totals, "csv": lambda t, p: render_csv(t), "table": table}
    out.write(writers[fmt](totals, place))
    return EXIT_OK


class _Progress:
    """A one-line progress report on a terminal's stderr, at most five times a second."""

    INTERVAL = 0.2  # seconds between reports

    def __init__(self, currency: str):
        self.currency = currency
        self.seen = 0
        self.start = self.last = time.monotonic()

    def follow(self, records, accumulator):
        """The records, reporting progress as they pass."""
        for record in records:
            yield record
            self.seen += 1
            self.tick(accumulator)

    def tick(self, accumulator) -> None:
        now = time.monotonic()
        if now - self.last < self.INTERVAL:
            return
        self.last = now
        rate = self.seen / max(now - self.start, 1e-9)
        # The running total trails the records by the items still held in batches.
        sys.stderr.write(
            f"\r{self.seen:,} records, {rate:,.0f} records/s, running total "
            f"{decimal_text(accumulator.total)} {self.currency}\x1b[K"
        )
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
