"""The files invocation logs come in, as a stream of decoded records with their places.

S3 delivery writes JSON Lines (gzipped, LF or CRLF); CloudWatch Logs Insights exports
are CSV with a `@message` column, the JSON of GetQueryResults, or a JSON array of
objects with `@message`; people also save a record pretty-printed or an array of
records, often with a UTF-8 BOM. Every container is read in bounded memory: JSON Lines
one capped line at a time, JSON documents with `raw_decode` over a window that holds
at most one record (`limits.MAX_LOG_RECORD_BYTES`) and the next chunk.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
import queue
import re
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import attrs

from .. import limits
from ..errors import Problem, UsageError

BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20  # bytes read at a time when a JSON document is parsed incrementally
_SKIP = 1 << 16  # bytes read at a time while skipping the rest of an over-long line
_RESULTS = re.compile(r'\{\s*"results"\s*:\s*\[')
_RESULTS_BYTES = re.compile(_RESULTS.pattern.encode())


@attrs.frozen
class Malformed:
    """A place in a file that holds no record: the reason why."""

    reason: str


class DuplicateKey(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object with each key once: a record that names a field twice is ambiguous."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise DuplicateKey(f"duplicate key {twice!r}")
    return value


DECODER = json.JSONDecoder(parse_float=Decimal, object_pairs_hook=_unique)
_LENIENT = json.JSONDecoder(parse_float=Decimal)  # only to step over a record already refused
_WHITESPACE = re.compile(r"[ \t\r\n]*")


def decode(text: str) -> Any:
    """One JSON value filling `text` (surrounding whitespace allowed); raises ValueError."""
    value, end = DECODER.raw_decode(text, _WHITESPACE.match(text).end())  # type: ignore[union-attr]
    if end != len(text) and not text[end:].isspace():
        raise json.JSONDecodeError("Extra data", text, end)
    return value


class _Quick:
    """msgspec's decoder where it gives exactly what `decode` gives; else `decode` decides.

    A line is taken from msgspec only when msgspec's own encoding of what it read is the
    line itself: then the text held no duplicate key (`decode` refuses those; msgspec
    keeps the last), every number was written the way its value is (floats become
    Decimal from their text, as `parse_float=Decimal` makes them), and it is valid UTF-8
    with standard escapes. Anything else (spaced JSON, `1e5`, a lone surrogate, a
    duplicate key, bad bytes, deep nesting) goes to `decode`, which gives the value or
    the exact reason it is malformed. AWS writes its records compact, so they pass.
    """

    TRIES = 64  # lines that all fail the check before a file is read the standard way only

    def __init__(self) -> None:
        import msgspec  # start-up time: only JSON lines need it (absent, the standard library reads them)

        self.decoder = msgspec.json.Decoder(float_hook=Decimal)
        self.encode = msgspec.json.Encoder(decimal_format="number").encode
        self.errors = (msgspec.DecodeError, ValueError, RecursionError)
        self.passed = 0
        self.failed = 0

    def __call__(self, line: bytes) -> Any:
        """The record of a line, or _STANDARD when `decode` must read it."""
        body = line.strip(b" \t\r\n")  # JSON's whitespace only: `decode` refuses a form feed
        if not body or (len(body) > 2 * _QUICK_DEPTH and body.count(b"{") + body.count(b"[") > _QUICK_DEPTH):
            # Possibly deep (a shorter line cannot nest that far): the standard limits apply.
            return _STANDARD
        try:
            value = self.decoder.decode(body)
        except self.errors:
            return _STANDARD
        if self.encode(value) != body:
            self.failed += 1
            return _STANDARD
        self.passed += 1
        return value

    def worth_it(self) -> bool:
        return self.passed > 0 or self.failed < self.TRIES


_STANDARD = object()
_QUICK_DEPTH = 400  # brackets in a line (strings included) past which the standard decoder reads it


def quick_decoder() -> _Quick | None:
    """A new quick decoder for one file, or None when msgspec is not installed or not wanted."""
    if os.environ.get("BEDROCK_RULES_JSON") == "stdlib":
        return None
    try:
        return _Quick()
    except ImportError:
        return None


def problem(error: Exception) -> str:
    """A decoding error as a malformed-record reason."""
    if isinstance(error, DuplicateKey):
        return f"duplicate key in the record: {str(error).removeprefix('duplicate key ')}"
    if isinstance(error, RecursionError):
        return "not a log record: nested too deeply"
    # The decoder's message without its position (`Unterminated string starting at`): records
    # malformed alike are counted as one reason, each under its line.
    detail = error.msg.removesuffix(" at").removesuffix(" starting") if isinstance(error, json.JSONDecodeError) else str(error)
    return f"not valid JSON: {detail}"


def unreadable(error: BaseException) -> str:
    """Why a log file cannot be read (an OSError's own words, a gzip stream's error), as a problem says it."""
    return f"cannot read invocation log: {getattr(error, 'strerror', None) or error}"


def too_long() -> str:
    cap = limits.MAX_LOG_RECORD_BYTES
    return limits.exceeded("record too long", f"more than {cap:,} bytes", f"{cap:,} bytes (16 MiB) per record")


def open_binary(path: str) -> IO[bytes]:
    """A log file (or stdin for `-`) as bytes; gzip is recognised by its magic number."""
    if path == "-":
        raw: IO[bytes] = sys.stdin.buffer
        if not hasattr(raw, "peek"):
            raw = io.BufferedReader(raw)  # type: ignore[arg-type, type-var]
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`
    if raw.peek(2)[:2] == b"\x1f\x8b":  # type: ignore[attr-defined]
        return io.BufferedReader(_Inflating(gzip.GzipFile(fileobj=raw), raw), CHUNK)
    return raw


class _Inflating(io.RawIOBase):
    """A gzip stream decompressed on a thread of its own, a few chunks ahead of the reader.

    zlib lets go of the GIL while it inflates, so decompressing and parsing overlap. The
    thread runs GzipFile itself: a corrupt or truncated file raises the same error, in
    the reader, after the data that came before it. At most AHEAD chunks wait.
    """

    AHEAD = 4  # pieces waiting: enough to keep both threads busy
    PIECE = 1 << 18  # bytes inflated at a time: the pieces waiting hold at most 1 MiB

    def __init__(self, packed: gzip.GzipFile, raw: IO[bytes]):
        super().__init__()
        self._packed = packed
        self._raw = raw
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(self.AHEAD)
        self._stop = threading.Event()
        self._left = b""
        self._at = 0  # how much of `_left` was read: sliced, a chunk would be copied each time
        self._done = False
        self._thread = threading.Thread(target=self._inflate, name="bedrock-rules-gunzip", daemon=True)
        self._thread.start()

    def _inflate(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._packed.read(self.PIECE)
                self._put(chunk)
                if not chunk:
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the reader, which raises it
            self._put(error)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._at >= len(self._left):
            if self._done:
                return 0
            item = self._chunks.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:
                self._done = True
                return 0
            self._left, self._at = item, 0
        size = min(len(buffer), len(self._left) - self._at)
        buffer[:size] = memoryview(self._left)[self._at:self._at + size]
        self._at += size
        return size

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            self._thread.join()
            self._packed.close()
            self._raw.close()
        super().close()


def files_of(path: str) -> list[tuple[str, str]]:
    """(label, path) of every log a path names: a folder gives its files, recursively, sorted."""
    if path == "-":
        return [("<stdin>", "-")]
    folder = Path(path)
    if not folder.is_dir():
        return [(path, path)]
    found: list[Path] = []
    unreadable: list[OSError] = []  # a folder that cannot be listed: its logs are not left out unsaid
    for top, folders, files in os.walk(folder, onerror=unreadable.append):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += (Path(top, name) for name in files if not name.startswith(".") and Path(top, name).is_file())
    if unreadable:
        raise UsageError([
            Problem(f"cannot read invocation log folder: {error.strerror or error}", source=str(error.filename or path))
            for error in unreadable
        ])
    return [(str(p), str(p)) for p in sorted(found)]


def container(raw: IO[bytes]) -> str:
    """What a file holds, from its start: "document" (pretty-printed records, arrays,
    exports' JSON), "csv" (a Logs Insights export) or "lines" (JSON Lines)."""
    head = raw.peek(CHUNK)[:CHUNK]  # type: ignore[attr-defined]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # saved by an editor or a shell as UTF-16: no record could be read
        raise OSError(errno.EILSEQ, "the file is UTF-16 text; invocation logs are UTF-8, as AWS writes them")
    start = head[len(BOM):] if head.startswith(BOM) else head
    first = start.lstrip()[:CHUNK].split(b"\n", 1)[0].strip()
    if first.startswith(b"[") or first == b"{" or _RESULTS_BYTES.match(first):  # GetQueryResults, indented or on one line
        return "document"
    if first.lstrip(b'"').startswith(b"@") and (b"@message" in first or b"," in first):  # a header: @timestamp,@message,…
        return "csv"
    return "lines"


def records(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(line where it starts, decoded record or Malformed) for every record of a file."""
    found = container(raw)
    if found == "document":
        yield from _document(raw)
    elif found == "csv":
        yield from _insights_csv(raw)
    else:
        yield from _json_lines(raw)


def form(raw: IO[bytes]) -> str:
    """Which container a file is, from its first line: `document` (pretty-printed records,
    arrays, GetQueryResults JSON), `insights-csv` or `json-lines` (as `records` reads it)."""
    return _FORMS[container(raw)]


_FORMS = {"document": "document", "csv": "insights-csv", "lines": "json-lines"}


def unpack(raw: IO[bytes]) -> IO[bytes]:
    """A stream with `peek`, inflated (on a thread of its own) when it is gzip."""
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)  # type: ignore[arg-type, type-var]
    if raw.peek(2)[:2] == b"\x1f\x8b":  # type: ignore[attr-defined]
        return io.BufferedReader(_Inflating(gzip.GzipFile(fileobj=raw), raw), CHUNK)
    return raw


def decode_line(line: bytes, first: bool = False) -> Any:
    """One line of JSON Lines as `records` reads it: the record, Malformed, or None for a
    blank line. `first`: the file's first line, where a BOM is dropped."""
    if first and line.startswith(BOM):
        line = line[len(BOM):]
    if len(line) > limits.MAX_LOG_RECORD_BYTES:
        return Malformed(too_long())
    text = line.decode("utf-8", "replace")
    if not text or text.isspace():
        return None
    try:
        return decode(text)
    except (ValueError, RecursionError) as error:
        return Malformed(problem(error))


def lines(raw: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines of at most MAX_LOG_RECORD_BYTES; a longer one is None, skipped unread."""
    cap = limits.MAX_LOG_RECORD_BYTES
    readline = raw.readline
    number = 0
    while True:
        line = readline(cap + 1)
        if not line:
            return
        number += 1
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM):]
        if len(line) > cap and not (len(line) == cap + 1 and line.endswith(b"\n")):
            while line and not line.endswith(b"\n"):
                line = readline(_SKIP)
            yield number, None
            continue
        yield number, line


def _json_lines(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    reading = LineDecoder()
    for number, line in lines(raw):
        if line is None:
            yield number, Malformed(too_long())
            continue
        value = reading(line)
        if value is not BLANK:
            yield number, value


BLANK = object()  # a line holding no record


class LineDecoder:
    """One file's JSON lines as records (or Malformed), BLANK for an empty line."""

    def __init__(self) -> None:
        self.quick = quick_decoder()

    def __call__(self, line: bytes) -> Any:
        quick = self.quick
        if quick is not None:
            value = quick(line)
            if value is not _STANDARD:
                return value
            if not quick.worth_it():  # spaced JSON: every line would be read twice
                self.quick = None
        # Without its line break, as a line of a block is split: a string left open at the end
        # of the line is "unterminated" either way, not a control character (the break).
        text = (line[:-1] if line.endswith(b"\n") else line).decode("utf-8", "replace")
        if not text or text.isspace():
            return BLANK
        try:
            return decode(text)
        except (ValueError, RecursionError) as error:
            return Malformed(problem(error))


def _insights_csv(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """A Logs Insights CSV export: the record is the JSON text of the `@message` column."""
    # The csv module's cell limit (128 KiB) is process-wide; a record may be up to the log limit.
    csv.field_size_limit(max(csv.field_size_limit(), limits.MAX_LOG_RECORD_BYTES))
    column: int | None = None
    for number, line in lines(raw):
        if line is None:
            yield number, Malformed(too_long())
            continue
        text = line.decode("utf-8", "replace")
        if not text.strip():
            continue
        row = next(csv.reader([text]), [])
        if column is None:
            column = row.index("@message") if "@message" in row else -1
            continue
        if column < 0:  # the query kept some fields only: the record is not in the export
            yield number, Malformed("no @message column in this Logs Insights export: the query must keep @message, the whole record")
            continue
        if len(row) <= column:
            yield number, Malformed("no @message column in this row")
            continue
        yield number, _message(row[column])


def _message(text: str) -> Any:
    try:
        return decode(text)
    except (ValueError, RecursionError) as error:
        return Malformed(problem(error))


def _element(value: Any) -> Any:
    """A record from an element of an export: itself, its `@message`, or a GetQueryResults row."""
    if type(value) is dict and type(value.get("@message")) is str:
        return _message(value["@message"])
    if type(value) is dict and type(value.get("@message")) is dict:  # saved with the record as an object, not its text
        return value["@message"]
    if type(value) is list and all(type(cell) is dict and "field" in cell for cell in value):
        message = next((cell.get("value") for cell in value if cell.get("field") == "@message"), None)
        if type(message) is str:
            return _message(message)
        return Malformed("no @message field in this result row")
    return value


class _Invalid(Exception):
    pass


class _Window:
    """A JSON text read in chunks: at most one value (capped) and a chunk are held."""

    def __init__(self, raw: IO[bytes]):
        self.text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        self.buf = ""
        self.pos = 0
        self.consumed_lines = 1
        self.eof = False

    def more(self, size: int = CHUNK) -> bool:
        if self.eof:
            return False
        chunk = self.text.read(size)
        if not chunk:
            self.eof = True
            return False
        self.consumed_lines += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def line(self) -> int:
        return self.consumed_lines + self.buf.count("\n", 0, self.pos)

    def peek(self) -> str | None:
        """The next character that is not whitespace, or None at the end."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def value(self, decoder: json.JSONDecoder = DECODER) -> Any:
        """The JSON value at the position; more is read until it is whole or too long."""
        cap = limits.MAX_LOG_RECORD_BYTES
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except DuplicateKey:
                self.value(_LENIENT)  # past the refused value, so the next one can be read
                raise
            except (ValueError, RecursionError) as error:
                held = len(self.buf) - self.pos
                if held > cap:
                    raise _Invalid(too_long()) from None
                if not self.more(max(CHUNK, held)):
                    raise _Invalid(problem(error)) from None
                continue
            self.pos = end
            return value

    def starts(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        if len(self.buf) - self.pos < 64:
            self.more()
        return pattern.match(self.buf, self.pos)


def _document(raw: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Pretty-printed records, arrays of records or of exports' rows, GetQueryResults JSON."""
    window = _Window(raw)
    try:
        while (char := window.peek()) is not None:
            if char == "[":
                window.pos += 1
                yield from _array(window)
            elif char == "{" and (match := window.starts(_RESULTS)):
                window.pos = match.end()
                yield from _array(window)
                _rest_of_object(window)
            else:
                line = window.line()
                try:
                    yield line, _element(window.value())
                except DuplicateKey as error:
                    yield line, Malformed(problem(error))
    except _Invalid as error:
        yield window.line(), Malformed(f"{error}; the rest of the file cannot be read")


def _array(window: _Window) -> Iterator[tuple[int, Any]]:
    """The elements of an array whose `[` was just read."""
    if window.peek() == "]":
        window.pos += 1
        return
    while True:
        window.peek()
        line = window.line()
        try:
            yield line, _element(window.value())
        except DuplicateKey as error:
            yield line, Malformed(problem(error))
        char = window.peek()
        window.pos += 1
        if char == "]":
            return
        if char != ",":
            raise _Invalid("not valid JSON: expected ',' or ']' between records")


def _rest_of_object(window: _Window) -> None:
    """The keys after `results` in a GetQueryResults object (statistics, status): skipped."""
    while True:
        char = window.peek()
        window.pos += 1
        if char == "}":
            return
        if char != ",":
            raise _Invalid("not valid JSON: expected ',' or '}'")
        window.peek()
        window.value()
        if window.peek() != ":":
            raise _Invalid("not valid JSON: expected ':'")
        window.pos += 1
        window.peek()
        window.value()
