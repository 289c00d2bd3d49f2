"""The pytest plugin bedrock-rules installs: snapshot bills as the CLI's JSON, one file per usage document.

    from bedrock_rules.pytest_plugin import usage_documents

    @pytest.mark.parametrize("document", usage_documents("usage"))
    def test_bill(document, bill_snapshot):
        assert rules.evaluate(document) == bill_snapshot

`pytest --snapshot-update` writes or accepts the snapshots. The plugin is registered
whenever bedrock-rules is installed, so it imports syrupy only when a test asks for
`bill_snapshot`: teams that do not snapshot bills need not install it.
"""

from __future__ import annotations

import datetime
import functools
from pathlib import Path
from typing import Any

import pytest

from .bill import Bill
from .errors import BedrockRulesError, Problem, UsageError
from .fields import read_instant
from .snapshots import bill_bytes, changes, documents_of, outside, read_usage, unified, write_atomically

INSTALL = "pip install 'bedrock-rules[pytest]'"


def usage_documents(folder: str | Path, at: str | datetime.date | None = None) -> list[Any]:
    """One `pytest.param` per usage document in `folder` (*.json, *.yml, *.yaml, not *.bill.json).

    Each value is the document as read (ready for `Ruleset.evaluate`), its id the file's
    stem, so each bill's snapshot is named after its document. A missing or empty
    folder, or a document that cannot be read, fails the collection with the reasons:
    a parametrization over nothing would pass without testing anything.

    `at` (`"2026-03-05"`, a date, or a time with its zone) dates the items that have no
    `at:` of their own, as `bedrock-rules snapshot --at` does: the same bills, byte for byte.
    """
    day = None
    if at is not None:
        read = read_instant(at.isoformat() if isinstance(at, datetime.date) else str(at))
        if isinstance(read, str):
            pytest.fail(f"usage_documents(at={at!r}): {read}", pytrace=False)
        day = read.text
    try:
        paths = documents_of(folder)
    except UsageError as error:
        pytest.fail(error.render(), pytrace=False)
    params = []
    problems: list[Problem] = []
    for path in paths:
        try:
            params.append(pytest.param(_dated(read_usage(path), day), id=path.stem))
        except UsageError as error:
            problems.extend(error.problems)
    if problems:
        pytest.fail(UsageError(problems).render(), pytrace=False)
    return params


def _dated(document: Any, day: str | None) -> Any:
    """The document with `at: day` on each item that has none (items that are not objects are left for the
    engine to refuse, with its own message)."""
    if day is None or not isinstance(document, dict) or not isinstance(document.get("usage"), list):
        return document
    usage = [{**item, "at": day} if isinstance(item, dict) and "at" not in item else item for item in document["usage"]]
    return {**document, "usage": usage}


@pytest.fixture
def bill_snapshot(request: pytest.FixtureRequest) -> Any:
    """A syrupy snapshot of a bill: `assert rules.evaluate(document) == bill_snapshot`.

    Stored as `__snapshots__/<test module>/<test>[<id>].json`, byte for byte what
    `bedrock-rules eval --format json` prints; a failure names each changed charge with
    its old and new amount, then shows the JSON diff.
    """
    try:
        import syrupy  # noqa: F401  # optional dependency: the `pytest` extra

        installed = True
    except ImportError:
        installed = False
    if not installed:  # failing outside the `except` keeps ImportError's own text out of the report
        pytest.fail(f"the bill_snapshot fixture needs syrupy; install it with: {INSTALL}", pytrace=False)
    return request.getfixturevalue("snapshot").use_extension(_extension())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A bill test whose document the rules refuse fails with the refusal's reasons, not a traceback into the engine."""
    outcome = yield
    report = outcome.get_result()
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, BedrockRulesError) and "bill_snapshot" in getattr(item, "fixturenames", ()):
        report.longrepr = f"{item.nodeid}: no bill to compare\n{error.render()}"


@functools.cache
def _extension() -> type:
    """The syrupy extension, defined on first use so that importing this plugin never imports syrupy."""
    from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode  # optional dependency

    class BillSnapshotExtension(SingleFileSnapshotExtension):
        """One bill per file, as the CLI's JSON bytes."""

        # Bytes, not text: syrupy's text mode would write `\r\n` on Windows.
        _write_mode = WriteMode.BINARY
        file_extension = "json"

        def serialize(self, data: Any, **kwargs: Any) -> bytes:
            if not isinstance(data, Bill):
                raise TypeError(
                    f"bill_snapshot compares bills, got {type(data).__name__}: "
                    "assert rules.evaluate(document) == bill_snapshot"
                )
            return bill_bytes(data)

        @classmethod
        def write_snapshot_collection(cls, *, snapshot_collection: Any, **kwargs: Any) -> None:
            # By atomic rename, like `bedrock-rules snapshot --update`: a link where the
            # bill belongs is replaced, never written through to a file elsewhere.
            data = next(iter(snapshot_collection)).data
            if not isinstance(data, bytes):
                raise TypeError(f"a stored bill is bytes, got {type(data).__name__}")
            path = Path(snapshot_collection.location)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)

        def read_snapshot_data_from_location(self, *, snapshot_location: str, **kwargs: Any) -> Any:
            path = Path(snapshot_location)
            if outside(path.parent, path) is not None:  # a link out of the folder, or not a file: not read
                return None
            return super().read_snapshot_data_from_location(snapshot_location=snapshot_location, **kwargs)

        def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Any:
            if not snapshot_data:
                yield "no stored bill yet: run pytest --snapshot-update to write it"
                return
            # The charges first: pytest shortens long explanations to their first lines.
            yield from changes(snapshot_data, serialized_data)
            yield ""
            yield from unified(snapshot_data, serialized_data, "stored bill", "bill now")

    return BillSnapshotExtension
