"""`bedrock_rules.spark.price_logs` in Spark's local mode gives the totals `eval` gives, byte for byte.

Marked `spark` (extra `spark`, a Java runtime): the default test command leaves these out,
CI runs them in a step of their own (`pytest -m spark`). One local[2] session serves every
test: starting one takes 20-30 s on two cores.
"""

from __future__ import annotations

import gzip
import os
import sys

import pytest
import s3server
from test_log_paths import generated_log

import bedrock_rules
from bedrock_rules.totals import dump
from conftest import run_cli

pytestmark = pytest.mark.spark

pyspark = pytest.importorskip("pyspark")  # the `spark` extra: installed in CI's spark step


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    rules = bedrock_rules.load()
    lines = generated_log(rules, count=600, seed=13).split(b"\n")
    folder = tmp_path_factory.mktemp("spark") / "logs"
    folder.mkdir()
    parts = {"a.jsonl": lines[:150], "b.jsonl.gz": lines[150:400], "c.jsonl": lines[400:]}
    for name, part in parts.items():
        data = b"\n".join(part) + b"\n"
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return folder


@pytest.fixture(scope="module")
def spark(logs):
    # Objects for the S3 test; the server's address must be in the environment before the
    # JVM starts, so that the executors' Python workers inherit it.
    objects = {f"{s3server.PREFIX}/02/09/{p.name}": p.read_bytes() for p in sorted(logs.iterdir())}
    with s3server.serving("spark-logs", objects):
        os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors run this interpreter, with bedrock-rules
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master("local[2]").appName("bedrock-rules-tests")
            .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
            .config("spark.driver.memory", "1g").getOrCreate()
        )
        try:
            yield session
        finally:
            session.stop()


@pytest.mark.parametrize("group_by", [(), ("model", "region"), ("day", "tag:team")])
def test_spark_gives_the_totals_eval_gives(spark, logs, group_by):
    from bedrock_rules.spark import price_logs

    totals = price_logs(spark, [str(logs)], bedrock_rules.load(), group_by=group_by, partitions=3)
    expected = run_cli("eval", "--input", "invocation-log", str(logs), "--format", "json",
                       *(["--group-by", ",".join(group_by)] if group_by else []))
    assert dump(totals) == expected.out
    assert totals.priced > 400 and totals.malformed  # priced, and the odd lines counted as eval counts them


def test_spark_reads_s3_paths_on_the_executors(spark, logs):
    from bedrock_rules.spark import price_logs

    totals = price_logs(spark, "s3://spark-logs/AWSLogs/", group_by=("model",))
    expected = run_cli("eval", "--input", "invocation-log", str(logs), "--format", "json", "--group-by", "model")
    local = str(logs) + "/"
    remote = f"s3://spark-logs/{s3server.PREFIX}/02/09/"
    assert dump(totals) == expected.out.replace(local, remote)
