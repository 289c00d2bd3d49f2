"""Invocation logs summed by DuckDB and priced by the engine: `eval --engine duckdb`.

DuckDB reads the lines (JSON Lines, plain or gzipped, or the rows of a Parquet file)
and, for every record whose fields it can read exactly as the project's reader reads
them, groups the records by the fields that decide how they are priced and sums their
token counts as integers. Each group then goes through the project's own reader once,
as one record holding its fields and the summed counts, and the engine prices it
(`Accumulator.add_summed`). Nothing is priced or divided in SQL.

DuckDB is lenient where the reader is strict: it casts (`"12"` to 12, `true` to 1,
`1.6` to 2), takes one of two duplicate keys, reads `NaN`, `inf` and trailing commas,
and turns a large integer into a float. So no value is cast in SQL. A usual line (the
keys AWS writes for a call without bodies, see `_FAST`) is read once, by DuckDB's
read_json beside the line itself: it is taken when its values are of their types and
make up the whole line, byte for byte (a key given twice, an unknown key, a trailing
comma, an escape or a space makes the line longer than what DuckDB read). Any other
line is judged field by field: every field is
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
import re
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
    usual: int = 0  # of the summed records, those DuckDB read once (see _FAST)
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
    # A count given as part of another (Source.part_of): the reader checks each record's pair.
    *(path for source in TOKEN_FIELDS if source.part_of for path in map(_table_path, source.paths) if path),
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
    day: int | None  # the position of `timestamp` in `values` (grouped by day, or under dated rules)
    tags: bool  # grouped by request metadata: the object is part of the key
    parquet: bool
    fast: str | None = None  # JSON Lines: DuckDB's read_json of the same file (see _fast_source)

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

    def judged(self, source: str, numbered: bool = False) -> str:
        """SQL naming `judged`: per line `line`, `blank`, `clean`, the key columns and counts `c0`…
        (and its number `n` when `numbered`).

        A usual line (see _FAST) is read once, by DuckDB's read_json. Any other is parsed three
        times: its fields (as JSON text, by json_transform), the JSON types of its containers,
        and every object's keys."""
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
                value = _day(value)
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
        number = "row_number() OVER () AS n, " if numbered else ""
        if self.fast is None:
            fast = ""
            src = f"src AS (SELECT {number}line, false AS t1, true AS paired FROM {source}),"
            override = ""
        else:
            # What read_json gives of a line is made narrow before it is put beside the line: whether its
            # values are of their types, the length of the line they make, and the key columns.
            ok, size = _usual()
            usual = ", ".join([f"{ok} AS u_ok", f"{size} AS u_size", '"modelId" AS u_model',
                               *(f"{value} AS u_{column}" for column, value in self._usual_columns())])
            # The usual lines: each line beside DuckDB's reading of it (read_json skips blank lines).
            fast = f"""
                lines AS (SELECT * FROM (SELECT {number}line FROM {source}) WHERE NOT ({_BLANK})),
                joined AS (SELECT * FROM (SELECT true AS l, * FROM lines) POSITIONAL JOIN (SELECT true AS j, {usual} FROM {self.fast})),
            """
            src = ("src AS (SELECT *, coalesce(l AND j AND u_ok AND strlen(line) = u_size "
                   """AND contains(line, '"modelId":' || u_model), false) AS t1, coalesce(l AND j, false) AS paired FROM joined),""")
            # A usual line's key columns are DuckDB's reading of it: the checked way's are not computed.
            columns = [f"CASE WHEN t1 THEN u_{name} ELSE {value} END AS {name}"
                       for value, name in (text.rsplit(" AS ", 1) for text in columns)]
            override = ""
        return f"""
            {fast}{src}
            parsed AS (
                SELECT *, CASE WHEN t1 THEN NULL ELSE try(json_transform(line, {_quote(_structure(extracted))})) END AS s,
                    CASE WHEN t1 THEN NULL ELSE try(json_type(line, {_paths([p for p, _ in typed])})) END AS y,
                    CASE WHEN t1 THEN NULL ELSE try(json_keys('[' || line || ']', '$..*')) END AS k,
                    CASE WHEN t1 THEN false ELSE {_BLANK} END AS blank
                FROM src
            ),
            columns AS (SELECT *, {", ".join(columns)} FROM parsed),
            judged AS (SELECT *{override}, CASE WHEN t1 THEN true ELSE NOT blank AND coalesce({clean}, false) END AS clean FROM columns)
        """

    def _usual_columns(self) -> list[tuple[str, str]]:
        """The key columns and counts of a usual line, from DuckDB's reading of it (`f`)."""
        found = []
        for index, path in enumerate(self.values):
            value = _leaf(path)
            if index == self.day and value != "NULL":
                value = _day(value)
            found.append((f"v{index}", value))
        found += [(f"c{index}", _leaf(path)) for index, path in enumerate(COUNTS)]
        present = {path: f"{_ref(path)} IS NOT NULL" for path in CONTAINERS}
        kinds = [f"CASE WHEN {present[path]} THEN 'OBJECT' ELSE '-' END" if _ref(path) else "'-'" for path in CONTAINERS]
        found.append(("tk", f"concat_ws(',', {', '.join(kinds)})"))
        bits = " + ".join(f"CASE WHEN {_leaf(path)} IS NULL THEN 0 ELSE {1 << index} END"
                          for index, path in enumerate(COUNTS) if _leaf(path) != "NULL")
        found.append(("pm", bits))
        found.append(("tags", _leaf("requestMetadata") if self.tags else "NULL::VARCHAR"))
        return found


# (Most lines start with `{`: the pattern is tried only on those that start with a space.)
_BLANK = "line IS NULL OR strlen(line) = 0 OR (ascii(line) IN (32, 9, 13, 10) AND regexp_full_match(line, '[ \\t\\r\\n]*'))"

# The usual record, read once by DuckDB's read_json: these keys and no other, each once, each
# value of its type (text, a count, an object of these, requestMetadata's pairs of text). Every
# value is read as its JSON text; a line is taken as usual only when its length is exactly that
# of its keys and values so read. DuckDB keeps one of a key given twice, ignores keys it was
# not asked for, takes a trailing comma and writes text back without its escapes (`\/` as `/`):
# each of these makes the line longer than what DuckDB read, never shorter, so the line is left
# to the checks below. (As the quick way of the default path, bodies, guardrails and images are
# never usual.)
_TEXT, _COUNT, _PAIRS = "text", "count", "pairs"
_FAST: dict[str, Any] = {
    "schemaType": _TEXT, "schemaVersion": _TEXT, "timestamp": _TEXT, "accountId": _TEXT, "identity": {"arn": _TEXT},
    "region": _TEXT, "requestId": _TEXT, "operation": _TEXT, "modelId": _TEXT,
    "input": {"inputContentType": _TEXT, "inputTokenCount": _COUNT, "cacheReadInputTokenCount": _COUNT,
              "cacheWriteInputTokenCount": _COUNT},
    "output": {"outputContentType": _TEXT, "outputTokenCount": _COUNT},
    "errorCode": _TEXT, "inferenceRegion": _TEXT, "serviceTier": _TEXT, "performanceConfig": {"latency": _TEXT},
    "requestMetadata": _PAIRS,
}


def _ref(path: str) -> str | None:
    """A record path as a column of DuckDB's reading of a usual line, None when a usual line lacks it."""
    node: Any = _FAST
    for key in path.split("."):
        if type(node) is not dict or key not in node:
            return None
        node = node[key]
    top, *inner = path.split(".")
    return f'"{top}"' + "".join(f"[{_quote(key)}]" for key in inner)


def _leaf(path: str) -> str:
    return _ref(path) or "NULL"


def _usual() -> tuple[str, str]:
    """SQL over DuckDB's reading of a line: whether its values are those of a usual line
    (see _FAST), and the length of the line they make."""
    checks: list[str] = []

    def size(node: dict[str, Any], ref: str | None) -> str:
        terms, members = [], []
        for key, kind in node.items():
            field = f"{ref}[{_quote(key)}]" if ref else f'"{key}"'
            members.append(f"{field} IS NOT NULL")
            if type(kind) is dict:
                value = size(kind, field)
            else:
                value = f"strlen({field})"
                if kind == _TEXT:
                    checks.append(f"{field} IS NULL OR starts_with({field}, '\"')")
                elif kind == _COUNT:
                    checks.append(f"{field} IS NULL OR {_WHOLE.format(field, 'UBIGINT')}")
                else:  # pairs of text, each key once
                    checks.append(f"{field} IS NULL OR (regexp_full_match({field}, {_quote(_STRINGS)}) "
                                  f"AND list_unique(json_keys({field})) = len(json_keys({field})))")
            # `"key":` and the value, and a comma (the braces of an object take the place of its last)
            terms.append(f"CASE WHEN {field} IS NULL THEN 0 ELSE {len(key.encode()) + 4} + {value} END")
        # An object holds one of its keys at least: DuckDB reads text, a number or a list where
        # an object is expected as an object with no key, and `{}` is left to the checks below.
        checks.append(f"{ref or 'false'} IS NULL OR {' OR '.join(members)}")
        return f"({' + '.join(terms)} + 1)"

    whole = size(_FAST, None)
    return " AND ".join(f"({check})" for check in ['"modelId" IS NOT NULL', *checks]), whole


def _fast_source(path: str, packed: bool) -> str:
    """DuckDB's read_json of a JSON Lines file: one row per line that is not blank, each
    field of _FAST as its JSON text (a line it cannot read: a row of NULLs)."""
    def kind(node: Any) -> str:
        if type(node) is dict:
            return "STRUCT(" + ", ".join(f'"{key}" {kind(value)}' for key, value in node.items()) + ")"
        return "JSON"
    columns = "{" + ", ".join(f"{_quote(key)}: {_quote(kind(value))}" for key, value in _FAST.items()) + "}"
    return (f"read_json({_quote(path)}, format='newline_delimited', records=true, columns={columns}, ignore_errors=true, "
            f"maximum_object_size={limits.MAX_LOG_RECORD_BYTES + 16}, compression={_quote('gzip' if packed else 'uncompressed')})")


# A timestamp as AWS writes it (UTC), as JSON text: its day is its first ten characters.
_STAMP = '"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?Z"'


def _day(value: str) -> str:
    """A timestamp's part of a group's key: its day, for a timestamp written as AWS writes it
    (every record of a day is read and priced alike, by the reader's `day` and by dated
    rules, whose windows are days); any other (a zone other than UTC, whose day in UTC is not
    the one it reads; not a time; not text) is its own group, read as it is."""
    return f"CASE WHEN regexp_full_match({value}, {_quote(_STAMP)}) THEN to_json(substr({value}, 2, 10)) ELSE {value} END"


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
            try:
                head = raw.peek(4)[:4]  # type: ignore[attr-defined]
                parquet = head == b"PAR1"
                form = "parquet" if parquet else containers.form(raw)
            except (OSError, EOFError, zlib.error):  # a .gz cut short or corrupt within its first lines: the reader says what
                form = None
        if form not in ("parquet", "json-lines"):
            self.whole(label, path)
            return
        packed = not parquet and remote.is_gzip(path)
        plan = self.plan(parquet)
        try:
            source = _source(path, parquet, packed, self.stamp_type(path) if parquet else None)
            try:
                self.price(attrs.evolve(plan, fast=None if parquet else _fast_source(path, packed)), source, path)
            except _Unpaired:  # DuckDB's two readers did not see the same lines: every line the checked way
                self.price(plan, source, path)
        except self.errors as error:  # not UTF-8, a line longer than DuckDB takes, a broken .gz: the reader says what
            if parquet:  # which the reader cannot: it reads JSON
                raise UsageError([Problem(f"cannot read Parquet file: {str(error).splitlines()[0]}", source=label)]) from None
            self.whole(label, path)
        except _Whole:
            self.whole(label, path)

    def stamp_type(self, path: str) -> str | None:
        """The type of a Parquet file's `timestamp` column, when it has one."""
        rows = self.connection.execute(f"SELECT column_type FROM (DESCRIBE SELECT * FROM read_parquet({_quote(path)})) "
                                       "WHERE column_name = 'timestamp'").fetchall()
        return rows[0][0] if rows else None

    def plan(self, parquet: bool) -> _Plan:
        values = list(VALUES)
        typed: list[tuple[str, tuple[str, ...]]] = []
        dated = bool(self.reader.compiled.dated_kinds)
        if dated or "day" in self.group_by:
            values.append("timestamp")  # dated rules price by the day: it is part of the key
        if "identity" in self.group_by:
            values.append("identity.arn")
            typed.append(("identity", ("OBJECT", "NULL") if parquet else ("OBJECT",)))
        if "operation" in self.group_by:
            values.append("operation")
        tags = any(key.startswith("tag:") for key in self.group_by)
        day = values.index("timestamp") if "timestamp" in values else None
        return _Plan(tuple(values), tuple(typed), day, tags, parquet)

    def price(self, plan: _Plan, source: str, path: str) -> None:
        key = plan.key
        sums = ", ".join(f"sum(TRY_CAST(c{i} AS UBIGINT))::HUGEINT" for i in range(len(COUNTS)))
        rows = self.connection.execute(f"""
            WITH {plan.judged(source)},
            keyed AS (
                SELECT clean, {", ".join(f"CASE WHEN clean THEN {column} END AS {column}" for column in key)},
                       {", ".join(f"CASE WHEN clean THEN c{i} END AS c{i}" for i in range(len(COUNTS)))}, line, paired, t1
                FROM judged WHERE NOT blank OR NOT paired
            )
            SELECT CASE WHEN clean THEN {plan.key_text()} END, [{", ".join(f"v{i}" for i in range(len(plan.values)))}],
                   tk, pm, tags,
                   count(*), {sums}, max(strlen(line)), count(*) FILTER (WHERE t1), bool_and(paired)
            FROM keyed GROUP BY clean, {", ".join(key)}
        """).fetchall()
        if not all(row[-1] for row in rows):
            raise _Unpaired
        usual = {row[0]: row[-2] for row in rows}
        rows = [row[:-2] for row in rows]
        if any(row[-1] is not None and row[-1] > limits.MAX_LOG_RECORD_BYTES - 2 for row in rows):
            raise _Whole  # the reader decides where a line that long ends
        unclean = sum(row[5] for row in rows if row[0] is None)
        merged, rows = self.merged(plan, rows)
        outcomes = {row[0]: (row, self.outcome(plan, row)) for row in rows if row[0] is not None}
        # Groups whose places are shown (a refusal), and groups whose records are read one by one.
        placed = [key for key, (_, outcome) in outcomes.items() if outcome is not None and outcome[0] not in ("item", "failed")]
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
            self.stats.usual += sum(usual[member] for member in key) if type(key) is tuple else usual[key]
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

    def merged(self, plan: _Plan, rows: list[tuple]) -> tuple[list[tuple[tuple[str, ...], tuple]], list[tuple]]:
        """Under dated rules, the groups (one per instant) that differ only in an instant
        between the same two window edges (`logs.window_bounds`) summed as one, when the
        sum is priced as an item: each is priced alike. The other groups are kept as they are.

        Returns the summed groups (the keys of the groups each sums, with its outcome), and the groups kept."""
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
        merged: list[tuple[tuple[str, ...], tuple]] = []
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
                merged.append((tuple(member[0] for member in group), (row, outcome)))
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
        # Under dated rules too: the item's `at` is the group's day, for which its plan holds.
        found = self.accumulator.sum_plan(item)
        if found is None:
            return None  # not priced alike whatever its counts (a rule reads a request's size, rounding): by line
        refusal = found[1].refusal
        if refusal is not None:
            return ("unpriced", refusal)
        return ("item", item, entry.attributes)

    def numbered(self, plan: _Plan, source: str, placed: list[str], by_line: list[str]) -> tuple[dict, list]:
        """The first places of the `placed` groups, and the lines to read one by one (with their numbers)."""
        keys = [*placed, *by_line]
        first_by_line = len(placed) + 1
        rows = self.connection.execute(f"""
            WITH {plan.judged(source, numbered=True)},
            keyed AS (
                SELECT coalesce(CASE WHEN clean THEN map_extract_value(MAP($keys::VARCHAR[], $ids::INTEGER[]), {plan.key_text()}) END, 0)
                       AS g, blank, clean, line, n
                FROM judged
            ),
            numbered AS (
                SELECT n, g,
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
                raise UsageError([Problem(containers.unreadable(error), source=label)]) from None


_DAY = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _segment(text: str | None, bounds: list[Any]) -> int | None:
    """Which span between the window edges a timestamp's JSON text is in: a group's key holds
    the day of one AWS writes (UTC, `Z`; see `_day`), or a day as a record wrote it. None for
    any other (a zone other than UTC, not a time)."""
    try:
        stamp = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if type(stamp) is not str or not (_DAY.fullmatch(stamp) or STAMP.match(stamp)):
        return None
    instant = read_instant(stamp[:10])
    return bisect.bisect_right(bounds, instant.day) if isinstance(instant, Instant) else None


def _opened(path: str, label: str) -> IO[bytes]:
    try:
        return remote.open_binary(path)
    except OSError as error:
        raise UsageError([Problem(containers.unreadable(error), source=label)]) from None


class _Whole(Exception):
    """This file is read by the project's reader whole."""


class _Unpaired(Exception):
    """read_json did not give one row per line that is not blank: the file is read without it."""


def _source(path: str, parquet: bool, packed: bool, stamp: str | None = None) -> str:
    """The DuckDB table function that gives a file's lines (a Parquet file's rows, as JSON).

    A Parquet `timestamp` column of a timestamp type (as DuckDB or pyarrow write the
    records' text when they infer types) is written back as the text a record holds:
    `2024-07-02T09:15:00Z` for an instant (TIMESTAMP WITH TIME ZONE, whatever the
    session's time zone), and without the `Z` for a time with no zone (a plain TIMESTAMP),
    which the reader refuses as it refuses that text: nothing is assumed about its zone."""
    if parquet:
        rows = f"read_parquet({_quote(path)})"
        if stamp in _STAMP_TYPES:
            instant = "make_timestamp(epoch_us(\"timestamp\"))" if stamp == "TIMESTAMP WITH TIME ZONE" else 'CAST("timestamp" AS TIMESTAMP)'
            fraction = f"rtrim(strftime({instant}, '.%f'), '0')"
            text = (f"strftime({instant}, '%Y-%m-%dT%H:%M:%S') || CASE WHEN {fraction} = '.' THEN '' ELSE {fraction} END"
                    + (" || 'Z'" if stamp == "TIMESTAMP WITH TIME ZONE" else ""))
            rows = f'(SELECT * REPLACE ({text} AS "timestamp") FROM {rows})'
        return f"(SELECT to_json(r) AS line FROM {rows} r)"
    return (
        f"read_csv({_quote(path)}, columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='', escape='', header=false, "
        f"auto_detect=false, strict_mode=false, max_line_size={limits.MAX_LOG_RECORD_BYTES + 16}, "
        f"compression={_quote('gzip' if packed else 'none')})"
    )


# Timestamp types DuckDB reads from Parquet: TIMESTAMP_NS and the like are plain TIMESTAMPs of other units.
_STAMP_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")


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
