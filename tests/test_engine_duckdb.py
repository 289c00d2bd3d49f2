"""`eval --engine duckdb` gives the bill the default path gives, byte for byte, on the same log.

The generated log of test_log_paths (the shapes of tests/logs, many model/region pairs,
and lines each decoder sees differently), plus records aimed at DuckDB's leniency: counts
written `"12"`, `true`, `1.6`, `1e3`, `-5` or past 2**64, trailing commas, `nan` and `inf`,
a duplicate key deep in a body, failed calls, unknown models, a refusal quoting a count,
and a refused service tier. Each output (json, csv, table; several groupings; plain, gzip,
Parquet) must be the same bytes with the same exit status, and the run must really have
summed records in SQL (not left every line to the reader).
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

import pytest
from test_log_paths import generated_log
from test_log_sums import long_context_log

import bedrock_rules
from bedrock_rules.bedrock import columnar
from bedrock_rules.totals import dump
from conftest import log_path_cases, run_cli

duckdb = pytest.importorskip("duckdb")  # the `duckdb` extra, in the test extra: present wherever the suite runs


def _model_of(rules: bedrock_rules.Ruleset, kind: str) -> str:
    model = sorted(rules.program.by_model[kind])[0]
    aliases = rules.program.models[model].aliases
    return aliases[0] if aliases else model


def _traps(rules: bedrock_rules.Ruleset) -> list[bytes]:
    text = _model_of(rules, "text")
    embedding = _model_of(rules, "embedding")

    def record(counts: str, model: str = text, extra: str = "") -> bytes:
        return (f'{{"modelId":"{model}","region":"us-east-1"{extra},"input":{{"inputTokenCount":{counts}}},'
                f'"output":{{"outputTokenCount":7}}}}').encode()

    return [
        record('"12"'), record("true"), record("1.6"), record("1e3"), record("-5"), record("18446744073709551616"),
        record("-0"), record("012"), record("12,"), record("nan"), record("inf"), record("Infinity"), record("12 "),
        record("3", extra=',"input":{"inputTokenCount":3}'),  # a duplicate key at the top
        record("4", extra=',"x":{"y":[{"a":1,"a":2}]}'),  # a duplicate key deep inside
        record("5", extra=',"errorCode":"ThrottlingException"'),
        record("6", model="acme.unknown-model-v1"),
        record("7", model=f"us.{text}"),
        record("8", extra=',"serviceTier":"priority"'),
        record("9", model=embedding),
        (f'{{"modelId":"{embedding}","region":"us-east-1","input":{{"inputTokenCount":9,"cacheReadInputTokenCount":4}},'
         '"output":{"outputTokenCount":0}}').encode(),  # a refusal that quotes the count
        (f'{{"modelId":"{text}","region":"us-east-1","input":{{"inputTokenCount":1}},'
         '"output":{"outputBodyJson":{"usage":{"outputTokens":5}}}}').encode(),  # a count found in the body
        (f'{{"modelId":"{text}","region":"us-east-1","input":[],"output":{{"outputTokenCount":1}}}}').encode(),
        (f'{{"modelId":"{text}","region":"us-east-1","input":{{"inputTokenCount":1}}}}').encode(),  # no output count
        b'{"region":"us-east-1","input":{"inputTokenCount":1},"output":{"outputTokenCount":1}}',  # no modelId
        # Lines DuckDB reads once when they are usual, each unusual in one way:
        record("5", extra=',"requestMetadata":{"team":"a","team":"b"}'),  # a key twice in the pairs
        record("5,\"inputTokenCount\":6"),  # a key twice in a nested object
        record("5", extra=',"modelId":"' + text + '"'),  # the model twice, the same
        record("5", extra=',"identity":"arn"'),  # text where an object belongs
        record("5", extra=',"identity":{}'),
        record("5", extra=',"identity":[{"arn":"a"}]'),
        record("5", extra=',"requestMetadata":{"team":1}'),
        record("5", extra=',"operation":"Conv\\u0065rse"'),  # an escape: DuckDB gives the text shorter
        record("5", extra=',"region":"us-east-1"'),
        record("5", extra=', "schemaType":"ModelInvocationLog"'),  # a space
        record("5", extra=',"timestamp":"2024-07-01T23:30:00-05:00"'),  # on 2024-07-02 in UTC
        (f'{{"output":{{"outputTokenCount":7}},"input":{{"inputTokenCount":5}},"region":"us-east-1","modelId":"{text}"}}').encode(),
    ]


def _log(rules: bedrock_rules.Ruleset) -> bytes:
    lines = generated_log(rules, count=900, seed=5).replace(b'"us-west-2\xff"', b'"us-west-2"').split(b"\n")
    rng = random.Random(3)
    for line in _traps(rules) * 3:
        lines.insert(rng.randrange(1, len(lines) - 1), line)
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    rules = bedrock_rules.load()
    folder = tmp_path_factory.mktemp("duckdb")
    data = _log(rules)
    files = {
        "plain": folder / "log.jsonl",
        "gz": folder / "log.jsonl.gz",
        "unreadable": folder / "bad-bytes.jsonl",  # not UTF-8: DuckDB cannot read it, the reader reads it whole
        "crlf": folder / "crlf.jsonl",  # numbered differently by DuckDB: read whole when places are needed
    }
    files["plain"].write_bytes(data)
    files["gz"].write_bytes(gzip.compress(data))
    files["unreadable"].write_bytes(generated_log(rules, count=200, seed=9))
    files["crlf"].write_bytes(data.replace(b"\n", b"\r\n"))
    return files


def _both(*args: str):
    default = run_cli("eval", "--input", "invocation-log", *args)
    summed = run_cli("eval", "--input", "invocation-log", "--engine", "duckdb", *args)
    return default, summed


CASES = log_path_cases((None, "model,region", "day,tag:team", "identity,operation", "region,kind"), ("json", "csv", "table"))


@pytest.mark.parametrize(("group_by", "container", "fmt"), CASES)
def test_duckdb_gives_the_default_bill(logs, container, fmt, group_by):
    args = [str(logs[container]), "--format", fmt, *(["--group-by", group_by] if group_by else [])]
    default, summed = _both(*args)
    assert (summed.code, summed.out, summed.err) == (default.code, default.out, default.err)
    assert default.code == 3  # the odd lines are reported, not priced
    if fmt == "json":
        counts = json.loads(default.out)["counts"]
        assert counts["priced"] > 600 and counts["malformed"] >= 20 and counts["unpriced"] >= 10 and counts["failed_calls"] >= 3


@pytest.mark.parametrize("group_by", [(), ("model", "region"), ("day", "tag:team")])
def test_most_records_are_summed_in_sql_and_the_odd_ones_read_by_the_reader(logs, group_by):
    rules = bedrock_rules.load()
    stats = columnar.Stats()
    totals = columnar.totals(rules, [str(logs["plain"])], group_by, stats=stats)
    assert stats.whole_files == []
    assert stats.summed > 600 and stats.groups < stats.summed * (0.8 if group_by else 0.25)  # summed, not one group per record
    assert stats.usual > 300  # most read once, by DuckDB's read_json
    assert 50 < stats.by_line < 300  # the traps and the generated odd lines, each read by the reader
    assert totals.read == stats.summed + stats.by_line


def test_a_long_context_model_is_read_line_by_line_beside_summed_groups(tmp_path):
    """The records of a model whose rate depends on each request's size are not summed in
    SQL (above and below the threshold in one file); the other models' records are."""
    data, short = long_context_log()
    log = tmp_path / "long.jsonl"
    log.write_bytes(data)
    default, summed = _both(str(log), "--format", "json", "--group-by", "model")
    assert (summed.code, summed.out, summed.err) == (default.code, default.out, default.err)
    assert default.code == 0
    stats = columnar.Stats()
    columnar.totals(bedrock_rules.load(), [str(log)], ("model",), stats=stats)
    assert (stats.summed, stats.by_line) == (short, 300 - short)
    assert stats.groups < short / 4  # per model and window, not per instant


@pytest.mark.parametrize("name", ["unreadable", "crlf"])
def test_files_duckdb_reads_differently_are_read_whole_by_the_reader(logs, name):
    rules = bedrock_rules.load()
    stats = columnar.Stats()
    got = dump(columnar.totals(rules, [str(logs[name])], ("model",), stats=stats))
    assert stats.whole_files == [str(logs[name])]
    default, _ = _both(str(logs[name]), "--format", "json", "--group-by", "model")
    assert got == default.out


def test_a_folder_of_logs_is_the_same_bill(logs, tmp_path):
    for name in ("plain", "gz", "crlf"):
        (tmp_path / logs[name].name).write_bytes(logs[name].read_bytes())
    default, summed = _both(str(tmp_path), "--format", "json", "--group-by", "model")
    assert (summed.code, summed.out) == (default.code, default.out)
    assert str(tmp_path / "log.jsonl") in summed.out  # reasons name their file when there are several


def test_parquet_rows_are_priced_like_the_lines_they_came_from(logs, tmp_path):
    """A Parquet file of well-formed records (a NULL is an absent field) gives the bill of its JSON Lines."""
    rules = bedrock_rules.load()
    good = []
    for line in logs["plain"].read_bytes().split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        if isinstance(record, dict) and text.encode("utf-8", "replace").decode("utf-8") == text and text.count("{") < 50:
            good.append(text)
    source = tmp_path / "good.jsonl"
    source.write_text("\n".join(good) + "\n", encoding="utf-8")
    parquet = tmp_path / "good.parquet"
    connection = duckdb.connect()
    connection.execute(f"COPY (SELECT * FROM read_json_auto('{source}', union_by_name=true)) TO '{parquet}' (FORMAT parquet)")
    connection.close()
    stats = columnar.Stats()
    got = columnar.totals(rules, [str(parquet)], ("model", "region"), stats=stats)
    want = json.loads(_both(str(source), "--format", "json", "--group-by", "model,region")[0].out)
    assert stats.summed > 600
    data = json.loads(dump(got))
    assert (data["total"], data["groups"], data["counts"]) == (want["total"], want["groups"], want["counts"])


def test_the_engine_option_applies_to_logs_only(tmp_path):
    document = tmp_path / "usage.json"
    document.write_text('{"usage": []}')
    result = run_cli("eval", str(document), "--engine", "duckdb")
    assert result.code == 2
    assert "--engine applies to --input invocation-log only" in result.err


def test_without_duckdb_the_engine_option_says_how_to_get_it(logs, monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if the extra were not installed
    result = run_cli("eval", "--input", "invocation-log", "--engine", "duckdb", str(logs["plain"]))
    assert result.code == 2
    assert "pip install 'bedrock-rules[duckdb]'" in result.err


@pytest.mark.parametrize("kept", [10, 700, 4000])
def test_a_gzip_file_cut_short_is_refused_as_the_default_path_refuses_it(logs, tmp_path, kept):
    # A partial download: the stream ends inside its first block (10, 700 bytes) or later.
    cut = tmp_path / "calls.jsonl.gz"
    cut.write_bytes(logs["gz"].read_bytes()[:kept])
    default, summed = _both(str(cut), "--format", "json")
    assert (summed.code, summed.out, summed.err) == (default.code, default.out, default.err)
    assert default.code == 2
    assert f"{cut}: cannot read invocation log: Compressed file ended before the end-of-stream marker was reached" in default.err


def test_records_refused_for_their_day_are_one_reason_on_both_paths(tmp_path):
    # Llama 3.1 70B has no price before 2025-07-20: 500 calls on 10 September 2024, each at its own second.
    log = tmp_path / "calls.jsonl"
    log.write_text("".join(json.dumps({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": f"2024-09-10T10:{n // 60:02d}:{n % 60:02d}Z",
        "accountId": "111122223333", "region": "us-west-2", "requestId": f"req-{n}", "operation": "Converse",
        "modelId": "meta.llama3-1-70b-instruct-v1:0",
        "input": {"inputContentType": "application/json", "inputTokenCount": 100},
        "output": {"outputContentType": "application/json", "outputTokenCount": 10},
    }, separators=(",", ":")) + "\n" for n in range(500)), encoding="utf-8")
    default, summed = _both(str(log), "--format", "json")
    assert (summed.code, summed.out, summed.err) == (default.code, default.out, default.err)
    [unpriced] = json.loads(default.out)["unpriced"]
    assert unpriced["count"] == 500 and unpriced["reason"].endswith("this item is dated 2024-09-10")


def test_a_broken_parquet_file_is_refused_by_name(tmp_path):
    broken = tmp_path / "calls.parquet"
    broken.write_bytes(b"PAR1 not really")
    result = run_cli("eval", "--input", "invocation-log", "--engine", "duckdb", str(broken))
    assert result.code == 2
    assert f"{broken}: cannot read Parquet file" in result.err


def _dated_records(count: int) -> list[dict]:
    rng = random.Random(11)
    return [{
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        # Both sides of the rules' cut (2024-07-03), and a second that is not on the minute.
        "timestamp": f"2024-07-{1 + n % 5:02d}T{n % 24:02d}:15:{n % 60:02d}Z", "accountId": "111122223333",
        "region": "us-west-2", "requestId": f"req-{n}", "operation": "Converse", "modelId": "anthropic.claude-v2:1",
        "input": {"inputTokenCount": rng.randrange(20000)}, "output": {"outputTokenCount": rng.randrange(4000)},
    } for n in range(count)]


@pytest.mark.parametrize("group_by", [None, "day", "model,region"])
def test_parquet_under_dated_rules_is_priced_by_each_record_instant(tmp_path, group_by):
    """A Parquet file written by DuckDB from the JSON Lines with `timestamp` a TIMESTAMP WITH
    TIME ZONE, not text (the type DuckDB 2.0's inference gives `2024-07-01T00:15:00Z`; 1.5's
    gives a plain TIMESTAMP, whose zone is not known: see the next test), gives the bill of the
    JSON Lines under dated rules, whatever the session's time zone."""
    from test_dates import RULES as DATED_RULES

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "dated.rules").write_text(DATED_RULES, encoding="utf-8")
    source = tmp_path / "calls.jsonl"
    source.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in _dated_records(300)), encoding="utf-8")
    parquet = tmp_path / "calls.parquet"
    connection = duckdb.connect()
    # Every column's type is named, so the file is the same whichever DuckDB writes it.
    columns = {
        "schemaType": "VARCHAR", "schemaVersion": "VARCHAR", "timestamp": "TIMESTAMPTZ", "accountId": "VARCHAR",
        "region": "VARCHAR", "requestId": "VARCHAR", "operation": "VARCHAR", "modelId": "VARCHAR",
        "input": "STRUCT(inputTokenCount BIGINT)", "output": "STRUCT(outputTokenCount BIGINT)",
    }
    connection.execute(f"COPY (SELECT * FROM read_json('{source}', columns={columns})) TO '{parquet}' (FORMAT parquet)")
    assert connection.execute(f"SELECT typeof(timestamp) FROM '{parquet}' LIMIT 1").fetchone() == ("TIMESTAMP WITH TIME ZONE",)
    connection.close()
    grouping = ["--group-by", group_by] if group_by else []
    default = run_cli("eval", "--rules", str(rules_dir), "--input", "invocation-log", str(source), "--format", "json", *grouping)
    summed = run_cli("eval", "--rules", str(rules_dir), "--input", "invocation-log", "--engine", "duckdb", str(parquet),
                     "--format", "json", *grouping)
    assert default.code == 0 and json.loads(default.out)["counts"]["priced"] == 300
    assert (summed.code, summed.out.replace(str(parquet), str(source))) == (default.code, default.out)
    rates = {charge["rate"] for group in json.loads(summed.out)["groups"] for charge in group["charges"]}
    assert {"0.008", "0.004"} <= rates  # both sides of the cut


def test_a_parquet_time_without_a_zone_is_refused_as_its_text_would_be(tmp_path):
    """pyarrow writes `2024-07-02T09:15:00Z` as a timestamp with no zone: the record's instant
    is not known, and the bill says so as it does for a record whose text has no zone."""
    from test_dates import RULES as DATED_RULES

    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "dated.rules").write_text(DATED_RULES, encoding="utf-8")
    records = _dated_records(20)
    parquet = tmp_path / "calls.parquet"
    stamps = [r["timestamp"] for r in records]
    table = pyarrow.table({
        "timestamp": pyarrow.array([s.removesuffix("Z") for s in stamps]).cast(pyarrow.timestamp("s")),
        "region": [r["region"] for r in records], "modelId": [r["modelId"] for r in records],
        "input": [r["input"] for r in records], "output": [r["output"] for r in records],
    })
    pq.write_table(table, parquet)
    source = tmp_path / "calls.jsonl"
    source.write_text("".join(json.dumps({**r, "timestamp": r["timestamp"].removesuffix("Z")}) + "\n" for r in records))
    args = ["eval", "--rules", str(rules_dir), "--input", "invocation-log", "--format", "json"]
    default = run_cli(*args, str(source))
    summed = run_cli(*args, "--engine", "duckdb", str(parquet))
    assert json.loads(default.out)["counts"]["malformed"] == 20
    assert "a time needs a zone" in default.out
    assert (summed.code, summed.out.replace(str(parquet), str(source))) == (default.code, default.out)


def test_dated_rules_are_summed_per_day_and_give_the_default_bill(tmp_path):
    """Under dated rules, records are summed per day (the windows of dated rules are days),
    and the odd timestamps (another zone, no zone, no such date, none) are read as the
    default path reads them."""
    from test_dates import RULES as DATED_RULES

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "dated.rules").write_text(DATED_RULES, encoding="utf-8")
    records = _dated_records(400)
    for n, stamp in enumerate(["2024-07-02T23:30:00-05:00", "2024-07-02T10:00:00", "2024-02-30T10:00:00Z", None,
                               "2024-07-02", "2024-07-03T10:00:00.5Z", 20240702]):
        records[n * 7]["timestamp"] = stamp
        if stamp is None:
            del records[n * 7]["timestamp"]
    log = tmp_path / "calls.jsonl"
    log.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records), encoding="utf-8")
    for grouping in ([], ["--group-by", "day"], ["--group-by", "model,region"]):
        args = ["eval", "--rules", str(rules_dir), "--input", "invocation-log", str(log), "--format", "json", *grouping]
        default = run_cli(*args)
        summed = run_cli(*args, "--engine", "duckdb")
        assert (summed.code, summed.out) == (default.code, default.out)
        assert json.loads(default.out)["counts"]["malformed"] == 4  # no zone, no such date, none, not text
    stats = columnar.Stats()
    columnar.totals(bedrock_rules.load(rules_dir), [str(log)], stats=stats)
    assert stats.summed > 380 and stats.usual > 380 and stats.groups < 20  # per day, not per record


def test_a_line_duckdb_splits_in_two_leaves_the_usual_lines_unread_by_read_json(tmp_path):
    """A carriage return inside a record is a line end to DuckDB's line reader, not to its
    read_json: the two no longer see the same lines, and the file is read the checked way."""
    rules = bedrock_rules.load()
    text = _model_of(rules, "text")
    # With a timestamp: the bundled rules date their prices.
    lines = [f'{{"timestamp":"2024-07-02T09:15:00Z","modelId":"{text}","region":"us-east-1","input":{{"inputTokenCount":{n}}},'
             f'"output":{{"outputTokenCount":7}}}}' for n in range(1, 40)]
    lines[5] = lines[5].replace('"output"', '\r"output"')
    log = tmp_path / "cr.jsonl"
    log.write_bytes(("\n".join(lines) + "\n").encode())
    stats = columnar.Stats()
    got = dump(columnar.totals(rules, [str(log)], ("model",), stats=stats))
    assert stats.usual == 0
    default, _ = _both(str(log), "--format", "json", "--group-by", "model")
    assert json.loads(default.out)["counts"]["priced"] == 39
    assert got == default.out
