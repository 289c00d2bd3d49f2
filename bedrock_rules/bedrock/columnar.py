"""Invocation logs summed by DuckDB and priced by the engine: `eval --engine duckdb`.

DuckDB reads the lines (JSON Lines, plain or gzipped, or the rows of a Parquet file)
and, for every record whose fields it can read exactly as the project's reader reads
them, groups the records by the fields that decide how they are priced and sums their
token counts as integers. Each group then goes through the project's own reader once,
as one record holding its fields and the summed counts, and the engine prices it
(`Accumulator.add_summed`). Nothing is priced or divided in SQL.

DuckDB is lenient where the reader is strict: it casts (`"12"` to 12, `true` to 1,
`1.6` to 2), takes one of two duplicate keys, reads `NaN`, `inf` and trailing commas,
and turns a large integer into a float. So no value is cast in SQL: every field is
taken as JSON text and kept only when its text is one the reader reads the same way
(a string, `true`, `false`, `null`, or a whole number written plainly; a count, a whole
number from 0 to 2**64 - 1, summed as HUGEINT). Any other
record (a count written `12.0` or `"12"`, a duplicate key anywhere, a trailing comma,
deep nesting, a guardrail trace, a streamed response, an image call), and every record
of a group whose outcome depends on more than the summed counts (a refusal quoting a
count, a kind with a derived quantity or a date, rules that round each charge), is
read line by line by the project's reader, so it is priced, refused or counted as
malformed exactly as `eval` without `--engine` does. A file DuckDB cannot read as
UTF-8 lines, or that is not JSON Lines (an array, a Logs Insights export), is read by
the project's reader whole.
"""

from __future__ import annotations

import bisect
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import attrs

from .. import limits
from ..errors import Problem, UsageError
from ..fields import Instant, read_instant
from ..ruleset import Ruleset
from ..totals import Accumulator, Totals
from . import containers, remote
from .fields import BODY, EVENTS, REQUEST, TOKEN_FIELDS, Source
from .logs import STAMP, LogReader, check_groups, needs_attributes, read_file, window_bounds

# The places kept for a group's records that are refused (as the accumulator keeps them).
_PLACES = 5


@attrs.define
class Stats:
    """How a run was split: records summed in SQL, records read line by line, files read whole."""

    summed: int = 0
    groups: int = 0
    by_line: int = 0
    whole_files: list[str] = attrs.field(factory=list)


def _json_path(path: str) -> str:
    """A field-table path (`input.inputTokenCount`, `output.outputBodyJson.usage.x`) as a DuckDB JSON path."""
    keys = path.split(".")
    return "$" + "".join(f'."{key}"' for key in keys)


def _table_path(path: str) -> str | None:
    """A field-table path as a record path, None for a stream's events (read line by line)."""
    if path.startswith(EVENTS):
        return None
    for prefix, record_path in ((BODY, "output.outputBodyJson"), (REQUEST, "input.inputBodyJson")):
        if path.startswith(prefix + "."):
            return record_path + path[len(prefix):]
    return path


def _counts_and_values(sources: Iterable[Source]) -> tuple[list[str], list[str]]:
    counts: list[str] = []
    values: list[str] = []
    for source in sources:
        for path in source.paths:
            record_path = _table_path(path)
            if record_path is not None:
                (counts if source.neutral == 0 else values).append(record_path)
    return counts, values


COUNTS, TABLE_VALUES = _counts_and_values(TOKEN_FIELDS)
# Fields the reader reads besides the table: the call, its outcome, and the guardrail
# markers of a response (a guardrail's action or stop reason is a value; its traces,
# with the unit counts, are objects, and send the record to the reader line by line).
VALUES = [
    "modelId", "region", "errorCode", "input.inputBodyS3Path", "output.outputBodyJson.stopReason",
    "output.outputBodyJson.amazon-bedrock-guardrailAction", *TABLE_VALUES,
]
# Objects: each must be an object, or absent (or null, for a body).
CONTAINERS = {"input": False, "output": False, "input.inputBodyJson": True, "output.outputBodyJson": True}
# What makes a record an image call or a guarded one, or holds a guardrail's units: must be absent.
ABSENT = [
    "input.inputBodyJson.imageGenerationConfig", "input.inputBodyJson.taskType", "input.inputBodyJson.text_prompts",
    "output.outputImageWidth", "output.outputImageHeight",
    "output.outputBodyJson.trace", "output.outputBodyJson.amazon-bedrock-trace", "output.outputBodyJson.metadata",
]
_STRINGS = r'\{("([^"\\]|\\.)*":"([^"\\]|\\.)*"(,"([^"\\]|\\.)*":"([^"\\]|\\.)*")*)?\}'  # requestMetadata: text pairs


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _paths(paths: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(_json_path(p) if p else "$") for p in paths) + "]"


def _structure(paths: Sequence[str]) -> str:
    """A json_transform structure that gives each path's JSON text (nothing is cast)."""
    root: dict[str, Any] = {}
    for path in paths:
        *outer, last = path.split(".")
        node = root
        for key in outer:
            node = node.setdefault(key, {})
        node[last] = "JSON"
    return json.dumps(root)


def _field(path: str) -> str:
    return "s" + "".join(f"[{_quote(key)}]" for key in path.split("."))


# The JSON types a value the reader reads as DuckDB does may have: text, true, false, null.
_PLAIN = "left({0}, 1) = '\"' OR {0} IN ('true', 'false', 'null')"
# A whole number written the one way its value is written (no sign on 0, no exponent, no point).
_WHOLE = "{0} = CAST(TRY_CAST({0} AS {1}) AS VARCHAR)"


@attrs.frozen
class _Plan:
    """What is read from each line of one run, and the SQL that judges a line."""

    values: tuple[str, ...]  # record paths whose JSON text is part of the group key
    typed: tuple[tuple[str, tuple[str, ...]], ...]  # more paths and the JSON types each may have
    day: int | None  # the position of `timestamp` in `values` when grouped by its day
    tags: bool  # grouped by request metadata: the object is part of the key
    parquet: bool

    @property
    def key(self) -> list[str]:
        """The columns of a group's key."""
        return [
            *(f"v{i}" for i in range(len(self.values))), "tk", "pm", "tags",
        ]

    def key_text(self) -> str:
        """A group's key as one text (JSON text holds no raw control character)."""
        parts = [f"coalesce(CAST({column} AS VARCHAR), chr(2))" for column in self.key]
        return f"concat_ws(chr(1), {', '.join(parts)})"

    def judged(self, source: str) -> str:
        """SQL naming `judged`: per line `line`, `blank`, `clean`, the key columns and counts `c0`….

        A line is parsed three times: its fields (as JSON text, by json_transform), the
        JSON types of its containers, and every object's keys."""
        nulls = "nullif({}, 'null')" if self.parquet else "{}"  # Parquet: NULL is absent
        extracted = [*self.values, *COUNTS, *(["requestMetadata"] if self.tags else [])]
        typed = [
            ("", ("OBJECT",)),
            *((path, ("OBJECT", "NULL") if nullable else ("OBJECT",)) for path, nullable in CONTAINERS.items()),
            *((path, ()) for path in ABSENT),
            *self.typed,
        ]
        columns = []
        checks = ["s IS NOT NULL AND y IS NOT NULL AND k IS NOT NULL"]
        for index, path in enumerate(self.values):
            value = nulls.format(_field(path))
            # CASE, not OR: the cast runs only for the values that are not plainly text or absent.
            checks.append(f"CASE WHEN v{index} IS NULL OR left(v{index}, 1) = '\"' THEN true "
                          f"ELSE v{index} IN ('true', 'false', 'null') OR {_WHOLE.format(f'v{index}', 'HUGEINT')} END")
            if index == self.day:
                # Grouped by day, a timestamp counts by its first 10 characters, as the reader's
                # `day` takes them (one that is not text is its own group).
                value = f"CASE WHEN left({value}, 1) = '\"' THEN to_json(left(json_extract_string({value}, '$'), 10)) ELSE {value} END"
            columns.append(f"{value} AS v{index}")
        for index, path in enumerate(COUNTS):
            columns.append(f"{nulls.format(_field(path))} AS c{index}")
            # Counts: whole numbers >= 0 below 2**64, summed as HUGEINT.
            checks.append(f"CASE WHEN c{index} IS NULL THEN true ELSE {_WHOLE.format(f'c{index}', 'UBIGINT')} END")
        for index, (path, allowed) in enumerate(typed, 1):
            if not allowed:
                checks.append(f"coalesce(y[{index}], 'NULL') = 'NULL'" if self.parquet else f"y[{index}] IS NULL")
            elif path:
                checks.append(f"coalesce(y[{index}], {_quote(allowed[0])}) IN ({', '.join(map(_quote, allowed))})")
            else:
                checks.append(f"y[{index}] = {_quote(allowed[0])}")
        kinds = []
        for index in range(len(CONTAINERS)):
            kind = f"y[{index + 2}]"
            if self.parquet:
                kind = f"nullif({kind}, 'NULL')"
            kinds.append(f"coalesce({kind}, '-')")
        columns.append(f"concat_ws(',', {', '.join(kinds)}) AS tk")
        bits = " + ".join(f"CASE WHEN c{index} IS NULL THEN 0 ELSE {1 << index} END" for index in range(len(COUNTS)))
        columns.append(f"{bits} AS pm")
        if self.tags:
            columns.append(f"{nulls.format(_field('requestMetadata'))} AS tags")
            checks.append(f"tags IS NULL OR regexp_full_match(tags, {_quote(_STRINGS)})")
        else:
            columns.append("NULL::VARCHAR AS tags")
        checks += [
            # A duplicate key anywhere: the reader refuses the record, DuckDB keeps one of them.
            # Most records name each key once in all their objects: only the others are looked at object by object.
            "CASE WHEN list_unique(flatten(k)) = len(flatten(k)) THEN true "
            "ELSE NOT list_bool_or(list_transform(k, lambda x: len(x) <> len(list_distinct(x)))) END",
            # What DuckDB's JSON reader takes and the reader does not: a trailing comma, nan, inf
            # (each pattern starts with a literal character, which keeps the scan fast).
            *(f"NOT regexp_matches(line, {_quote(pattern)})" for pattern in _LENIENT),
            # Deep nesting, where the reader stops (a line shorter than this cannot nest that far).
            "strlen(line) <= 800 OR strlen(line) - strlen(replace(replace(line, '{', ''), '[', '')) <= 400",
        ]
        clean = " AND ".join(f"({check})" for check in checks)
        return f"""
            src AS (SELECT line FROM {source}),
            parsed AS (
                SELECT line, try(json_transform(line, {_quote(_structure(extracted))})) AS s,
                    try(json_type(line, {_paths([p for p, _ in typed])})) AS y,
                    try(json_keys('[' || line || ']', '$..*')) AS k,
                    line IS NULL OR regexp_full_match(line, '[ \\t\\r\\n]*') AS blank
                FROM src
            ),
            columns AS (SELECT *, {", ".join(columns)} FROM parsed),
            judged AS (SELECT *, NOT blank AND coalesce({clean}, false) AS clean FROM columns)
        """


_WS = "[ \t\r\n]*"
_LENIENT = (f",{_WS}[\\]}}]", *(f"{lead}{_WS}[-+]?[nNiI][aAnN]" for lead in (":", ",", "\\[")))


def totals(
    rules: Ruleset, paths: Sequence[str], group_by: Sequence[str] = (), profiles: Mapping[str, str] | None = None,
    threads: int | None = None, stats: Stats | None = None,
) -> Totals:
    """The totals `eval --input invocation-log` gives for `paths`, summed by DuckDB.

    `paths` are files or folders (local, or `s3://` with the `s3` extra); `stats`, when
    given, is filled in with how the records were read.
    """
    import duckdb  # optional dependency: the `duckdb` extra

    check_groups(group_by)
    stats = stats if stats is not None else Stats()
    reader = LogReader(rules.program, needs_attributes(group_by), profiles)
    accumulator = rules.accumulator(tuple(group_by))
    files = [found for path in paths for found in remote.files_of(path)]
    connection = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        remote.register(connection, [path for _, path in files])
        for label, path in files:
            if len(files) > 1:
                accumulator.source = label
            run = _Run(connection, duckdb.Error, reader, accumulator, tuple(group_by), stats)
            run.file(label, path)
    finally:
        connection.close()
    return accumulator.result()


@attrs.define
class _Run:
    connection: Any
    errors: Any
    reader: LogReader
    accumulator: Accumulator
    group_by: tuple[str, ...]
    stats: Stats

    def file(self, label: str, path: str) -> None:
        if path == "-":  # standard input: read once, by the reader
            self.whole(label, path)
            return
        with _opened(path, label) as raw:
            head = raw.peek(4)[:4]  # type: ignore[attr-defined]
            parquet = head == b"PAR1"
            form = "parquet" if parquet else containers.form(raw)
        if form not in ("parquet", "json-lines"):
            self.whole(label, path)
            return
        plan = self.plan(parquet)
        source = _source(path, parquet, not parquet and remote.is_gzip(path))
        try:
            self.price(plan, source, path)
        except self.errors as error:  # not UTF-8, a line longer than DuckDB takes, a broken .gz: the reader says what
            if parquet:  # which the reader cannot: it reads JSON
                raise UsageError([Problem(f"cannot read Parquet file: {str(error).splitlines()[0]}", source=label)]) from None
            self.whole(label, path)
        except _Whole:
            self.whole(label, path)

    def plan(self, parquet: bool) -> _Plan:
        values = list(VALUES)
        typed: list[tuple[str, tuple[str, ...]]] = []
        dated = bool(self.reader.compiled.dated_kinds)
        if dated or "day" in self.group_by:
            values.append("timestamp")  # dated rules price by the instant: it is part of the key
        if "identity" in self.group_by:
            values.append("identity.arn")
            typed.append(("identity", ("OBJECT", "NULL") if parquet else ("OBJECT",)))
        if "operation" in self.group_by:
            values.append("operation")
        tags = any(key.startswith("tag:") for key in self.group_by)
        day = values.index("timestamp") if "day" in self.group_by and not dated else None
        return _Plan(tuple(values), tuple(typed), day, tags, parquet)

    def price(self, plan: _Plan, source: str, path: str) -> None:
        key = plan.key
        sums = ", ".join(f"sum(TRY_CAST(c{i} AS UBIGINT))::HUGEINT" for i in range(len(COUNTS)))
        rows = self.connection.execute(f"""
            WITH {plan.judged(source)},
            keyed AS (
                SELECT clean, {", ".join(f"CASE WHEN clean THEN {column} END AS {column}" for column in key)},
                       {", ".join(f"CASE WHEN clean THEN c{i} END AS c{i}" for i in range(len(COUNTS)))}, line
                FROM judged WHERE NOT blank
            )
            SELECT CASE WHEN clean THEN {plan.key_text()} END, [{", ".join(f"v{i}" for i in range(len(plan.values)))}],
                   tk, pm, tags,
                   count(*), {sums}, max(strlen(line))
            FROM keyed GROUP BY clean, {", ".join(key)}
        """).fetchall()
        if any(row[-1] is not None and row[-1] > limits.MAX_LOG_RECORD_BYTES - 2 for row in rows):
            raise _Whole  # the reader decides where a line that long ends
        unclean = sum(row[5] for row in rows if row[0] is None)
        merged, rows = self.merged(plan, rows)
        outcomes = {row[0]: (row, self.outcome(plan, row)) for row in rows if row[0] is not None}
        # Groups whose places are shown (a refusal), and groups whose records are read one by one.
        placed = [key for key, (_, outcome) in outcomes.items() if outcome is not None and outcome[0] != "item" and outcome[0] != "failed"]
        by_line = [key for key, (_, outcome) in outcomes.items() if outcome is None]
        places: dict[str, list[int]] = {}
        lines: list[tuple[int, str]] = []
        if placed or by_line or unclean:
            if not plan.parquet and not _numbered_alike(path):
                raise _Whole
            places, lines = self.numbered(plan, source, placed, by_line)
        for key, (row, outcome) in [*outcomes.items(), *merged]:
            if outcome is None:
                continue
            count = row[5]
            if outcome[0] == "item":
                self.accumulator.add_summed(outcome[1], count, (), outcome[2])
            else:
                self.accumulator.add_counted(outcome[0], outcome[1], count, places.get(str(key), []))
            self.stats.summed += count
            self.stats.groups += 1
        for number, text in lines:
            decoded = containers.decode_line(text.encode("utf-8"), first=number == 1)
            if decoded is None:
                continue
            self.stats.by_line += 1
            if type(decoded) is containers.Malformed:
                self.accumulator.add_counted("malformed", decoded.reason, 1, (number,))
                continue
            if plan.parquet:
                decoded = _without_nulls(decoded)
            self.accumulator.add_record(self.reader.entry(decoded, number))

    def merged(self, plan: _Plan, rows: list[tuple]) -> tuple[list[tuple[None, tuple]], list[tuple]]:
        """Under dated rules, the groups (one per instant) that differ only in an instant
        between the same two window edges (`logs.window_bounds`) summed as one, when the
        sum is priced as an item: each is priced alike. The other groups are kept as they are.

        Returns the summed groups with their outcome, and the groups kept."""
        if not self.reader.compiled.dated_kinds or "day" in self.group_by:
            return [], rows
        stamp = plan.values.index("timestamp")
        bounds = window_bounds(self.reader.compiled)
        segments: dict[str | None, int | None] = {}
        together: dict[tuple, list[tuple]] = {}
        for index, row in enumerate(rows):
            text = row[1][stamp] if row[0] is not None else None
            if text not in segments:
                segments[text] = _segment(text, bounds)
            segment = segments[text]
            values = tuple(row[1])
            key = (values[:stamp], values[stamp + 1:], segment, *row[2:5]) if segment is not None else (index,)
            together.setdefault(key, []).append(row)
        merged: list[tuple[None, tuple]] = []
        kept: list[tuple] = []
        for group in together.values():
            if len(group) == 1:
                kept.extend(group)
                continue
            sums = [
                None if all(row[6 + index] is None for row in group) else sum(row[6 + index] or 0 for row in group)
                for index in range(len(COUNTS))
            ]
            row = (None, group[0][1], *group[0][2:5], sum(row[5] for row in group), *sums, max(row[-1] or 0 for row in group))
            outcome = self.outcome(plan, row)
            if outcome is not None and outcome[0] == "item":
                merged.append((None, (row, outcome)))
            else:  # a refusal can quote its item's instant: each instant on its own
                kept.extend(group)
        return merged, kept

    def outcome(self, plan: _Plan, row: tuple) -> tuple | None:
        """How every record of a group is counted, or None when they must be read one by one.

        The group's record is read twice, with its summed counts and with counts of 0: a
        group whose outcome changes with its counts (beyond the counts its item carries)
        may hold records the reader treats differently.
        """
        _, values, kinds, mask, tags, _, *rest = row
        types = kinds.split(",")
        present = [bool(mask >> index & 1) for index in range(len(COUNTS))]
        summed = [int(total) if total is not None else 0 for total in rest[:len(COUNTS)]]
        with_sums = self.reader.entry(_record(plan, values, types, present, summed, tags))
        with_zeros = self.reader.entry(_record(plan, values, types, present, [0] * len(COUNTS), tags))
        if _shape(with_sums) != _shape(with_zeros):
            return None
        entry = with_sums
        if entry.malformed is not None:
            return ("malformed", entry.malformed)
        if entry.unpriced is not None:
            return ("unpriced", entry.unpriced) if not entry.items else None
        if entry.error_code is not None:
            return ("failed", entry.error_code) if not entry.items else None
        if len(entry.items) != 1:
            return None
        item = entry.items[0]
        found = self.accumulator.sum_plan(item)
        if found is None:
            return None  # not linear in its counts (a derived quantity, a date, rounding): by line
        refusal = found[1].refusal
        if refusal is not None:
            return ("unpriced", refusal)
        return ("item", item, entry.attributes)

    def numbered(self, plan: _Plan, source: str, placed: list[str], by_line: list[str]) -> tuple[dict, list]:
        """The first places of the `placed` groups, and the lines to read one by one (with their numbers)."""
        keys = [*placed, *by_line]
        first_by_line = len(placed) + 1
        rows = self.connection.execute(f"""
            WITH {plan.judged(source)},
            keyed AS (
                SELECT coalesce(CASE WHEN clean THEN map_extract_value(MAP($keys::VARCHAR[], $ids::INTEGER[]), {plan.key_text()}) END, 0)
                       AS g, blank, clean, line
                FROM judged
            ),
            numbered AS (
                SELECT row_number() OVER () AS n, g,
                       CASE WHEN NOT blank AND (NOT clean OR g >= {first_by_line}) THEN line END AS text
                FROM keyed
            )
            SELECT g, min(n, {_PLACES}), NULL FROM numbered WHERE g BETWEEN 1 AND {first_by_line - 1} GROUP BY g
            UNION ALL
            SELECT 0, [n], text FROM numbered WHERE text IS NOT NULL
        """, {"keys": keys, "ids": list(range(1, len(keys) + 1))}).fetchall()
        places = {placed[g - 1]: sorted(found) for g, found, _ in rows if g}
        lines = sorted((found[0], text) for g, found, text in rows if not g)
        return places, lines

    def whole(self, label: str, path: str) -> None:
        """A file the project's reader reads, all of it."""
        self.stats.whole_files.append(label)
        with _opened(path, label) as raw:
            try:
                self.accumulator.add_records(read_file(self.reader, raw))
            except (OSError, EOFError, zlib.error) as error:  # a truncated or corrupt .gz
                raise UsageError([Problem(f"cannot read invocation log: {error}", source=label)]) from None


def _segment(text: str | None, bounds: list[Any]) -> int | None:
    """Which span between the window edges a timestamp's JSON text is in; None when it is
    not one AWS writes (UTC, `Z`), whose day its first ten characters say."""
    try:
        stamp = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if type(stamp) is not str or not STAMP.match(stamp):
        return None
    instant = read_instant(stamp[:10])
    return bisect.bisect_right(bounds, instant.day) if isinstance(instant, Instant) else None


def _opened(path: str, label: str) -> IO[bytes]:
    try:
        return remote.open_binary(path)
    except OSError as error:
        raise UsageError([Problem(f"cannot read invocation log: {error.strerror or error}", source=label)]) from None


class _Whole(Exception):
    """This file is read by the project's reader whole."""


def _source(path: str, parquet: bool, packed: bool) -> str:
    """The DuckDB table function that gives a file's lines (a Parquet file's rows, as JSON)."""
    if parquet:
        return f"(SELECT to_json(r) AS line FROM read_parquet({_quote(path)}) r)"
    return (
        f"read_csv({_quote(path)}, columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='', escape='', header=false, "
        f"auto_detect=false, strict_mode=false, max_line_size={limits.MAX_LOG_RECORD_BYTES + 16}, "
        f"compression={_quote('gzip' if packed else 'none')})"
    )


def _numbered_alike(path: str) -> bool:
    """Whether DuckDB numbers the file's lines as the reader does: a file with a carriage
    return anywhere (CRLF lines, a stray one) is left to the reader."""
    with remote.open_binary(path) as raw:
        while chunk := raw.read(containers.CHUNK):
            if b"\r" in chunk:
                return False
    return True


def _set(record: dict[str, Any], path: str, value: Any) -> None:
    *outer, last = path.split(".")
    for key in outer:
        record = record.setdefault(key, {})
    record[last] = value


def _record(plan: _Plan, values: Sequence[str | None], types: Sequence[str | None], present: Sequence[bool],
            counts: Sequence[int], tags: str | None) -> dict[str, Any]:
    """A group's record: the fields the reader reads, as the group's records hold them, and `counts`."""
    record: dict[str, Any] = {}
    for path, kind in zip(CONTAINERS, types, strict=True):
        if kind == "OBJECT":
            _set(record, path, {})
        elif kind == "NULL":
            _set(record, path, None)
    for path, text in zip(plan.values, values, strict=True):
        if text is not None:
            _set(record, path, containers.decode(text))
    for path, here, count in zip(COUNTS, present, counts, strict=True):
        if here:
            _set(record, path, count)
    if tags is not None:
        record["requestMetadata"] = containers.decode(tags)
    return record


def _shape(entry: Any) -> tuple:
    """An entry without its counts."""
    items = tuple(tuple(sorted((k, repr(v)) for k, v in item.items() if k not in _COUNT_FIELDS)) for item in entry.items)
    return entry.malformed, entry.unpriced, entry.error_code, tuple(sorted(entry.attributes.items())), items


_COUNT_FIELDS = frozenset(source.usage_field for source in TOKEN_FIELDS if source.neutral == 0)


def _without_nulls(value: Any) -> Any:
    """A Parquet row's record: a NULL field is an absent one."""
    if type(value) is dict:
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if type(value) is list:
        return [_without_nulls(v) for v in value]
    return value
