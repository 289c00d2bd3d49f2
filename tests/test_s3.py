"""Invocation logs read from S3 (through fsspec/s3fs) give the bill the same files give on disk.

The logs sit on a local S3-compatible server (moto's, started here) in the layout Bedrock
writes: `AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{YYYY}/{MM}/{DD}/{HH}/*.json.gz`.
"""

from __future__ import annotations

import gzip

import pytest
import s3server
from test_log_paths import generated_log

import bedrock_rules
from conftest import run_cli

pytest.importorskip("s3fs")  # the `s3` extra, in the test extra: present wherever the suite runs
pytest.importorskip("moto")

BUCKET = "bedrock-logs"


@pytest.fixture(scope="module")
def s3_logs(tmp_path_factory):
    """(the logs' S3 URL, the same files in a local folder) while the server runs."""
    rules = bedrock_rules.load()
    lines = generated_log(rules, count=300, seed=21).replace(b'"us-west-2\xff"', b'"us-west-2"').split(b"\n")
    local = tmp_path_factory.mktemp("s3") / "AWSLogs"
    objects = {}
    for hour, part in enumerate((lines[:100], lines[100:220], lines[220:])):
        key = f"{s3server.PREFIX}/02/{9 + hour:02d}/111122223333_BedrockModelInvocationLogs_{hour}.json.gz"
        objects[key] = gzip.compress(b"\n".join(part) + b"\n")
        path = local.parent / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(objects[key])
    with s3server.serving(BUCKET, objects):
        yield f"s3://{BUCKET}/AWSLogs/", local


@pytest.mark.parametrize("engine", ["default", "duckdb"])
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_logs_on_s3_give_the_bill_of_the_same_files_on_disk(s3_logs, engine, fmt):
    url, local = s3_logs
    if engine == "duckdb":
        pytest.importorskip("duckdb")
    remote = run_cli("eval", "--input", "invocation-log", url, "--engine", engine, "--format", fmt, "--group-by", "model,day")
    on_disk = run_cli("eval", "--input", "invocation-log", str(local) + "/", "--format", fmt, "--group-by", "model,day")
    assert remote.code == on_disk.code == 3  # the generated odd lines are reported
    # Reasons name their file (there are three): its URL, or its path on disk.
    assert remote.out == on_disk.out.replace(str(local.parent) + "/", f"s3://{BUCKET}/")
    assert remote.err == on_disk.err
    assert f"s3://{BUCKET}/{s3server.PREFIX}/02/10/" in remote.out


def test_a_glob_names_the_hourly_files(s3_logs):
    url, local = s3_logs
    glob = f"s3://{BUCKET}/AWSLogs/*/BedrockModelInvocationLogs/us-east-1/2024/07/02/1*/*.json.gz"
    result = run_cli("eval", "--input", "invocation-log", glob, "--format", "json")
    hours = [str(p) for p in sorted(local.rglob("*.json.gz")) if "/02/1" in str(p)]
    on_disk = run_cli("eval", "--input", "invocation-log", *hours, "--format", "json")
    assert result.out == on_disk.out.replace(str(local.parent) + "/", f"s3://{BUCKET}/")
    assert '"read": 0' not in result.out


def test_a_prefix_with_no_logs_is_refused(s3_logs):
    result = run_cli("eval", "--input", "invocation-log", f"s3://{BUCKET}/AWSLogs/nothing-here/")
    assert result.code == 2
    assert "no invocation log found" in result.err


def test_duckdb_sums_the_objects_it_reads_through_fsspec(s3_logs):
    columnar = pytest.importorskip("bedrock_rules.bedrock.columnar")
    url, _ = s3_logs
    stats = columnar.Stats()
    totals = columnar.totals(bedrock_rules.load(), [url], ("model",), stats=stats)
    assert stats.whole_files == [] and stats.summed > 200
    assert totals.read == stats.summed + stats.by_line
