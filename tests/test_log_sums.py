"""Records summed per shape (`bedrock.logs.add_log`) give the bill the standard way gives.

The standard way reads every record into a usage item and prices it; the summing way
adds the integer counts of the usual records per shape and prices each shape once.
Both run on the same generated, real-shaped log (records compact as AWS writes them,
with the odd ones a log can hold: a key named twice, `null`, counts as text or past 64
bits, nonzero counts the rules do not price, failed calls, unknown models and regions,
CRLF, blank lines, bodies, guardrails, images), with and without `--group-by`, under
undated and dated rules, and must give the same bytes and exit status.
"""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from test_dates import RULES as DATED_RULES

import bedrock_rules
from bedrock_rules.bedrock import containers
from bedrock_rules.bedrock.logs import LogReader, add_log, needs_attributes
from bedrock_rules.totals import Accumulator
from conftest import ROOT, log_path_cases, run_cli

LOGS = ROOT / "tests" / "logs"


def _record(n: int, model: str, region: str, rng: random.Random, day: str | None = None) -> dict:
    record = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": day or f"2024-07-{1 + n % 5:02d}T{n % 24:02d}:15:00Z", "accountId": "111122223333",
        "identity": {"arn": f"arn:aws:sts::111122223333:assumed-role/app/w{n % 3}"},
        "region": region, "requestId": f"req-{n}", "operation": rng.choice(["InvokeModel", "Converse"]), "modelId": model,
        "input": {"inputContentType": "application/json", "inputTokenCount": rng.randrange(20000)},
        "output": {"outputContentType": "application/json", "outputTokenCount": rng.randrange(4000)},
    }
    if n % 7 == 0:
        record["requestMetadata"] = {"team": f"t{n % 2}", "app": "chat"}
    return record


def _odd(model: str, region: str) -> list[bytes]:
    """Bodiless records the summing way must leave to the standard way, or sum alike."""
    head = f'{{"timestamp":"2024-07-02T10:00:00Z","region":"{region}","modelId":"{model}"'
    counts = '"input":{"inputTokenCount":5},"output":{"outputTokenCount":7}'
    return [line.encode() for line in (
        head + ',"modelId":"' + model + '",' + counts + "}",  # a key twice
        head + ',"identity":{"arn":"a","arn":"b"},' + counts + "}",  # a key twice, nested
        head + ',"errorCode":null,' + counts + "}",
        head + ',"input":{"inputTokenCount":"5"},"output":{"outputTokenCount":7}}',
        head + ',"input":{"inputTokenCount":99999999999999999999},"output":{"outputTokenCount":7}}',
        head + ',"input":{"inputTokenCount":-1},"output":{"outputTokenCount":7}}',
        head + ',"input":{"inputTokenCount":5,"cacheReadInputTokenCount":300},"output":{"outputTokenCount":7}}',
        head + ',"input":{"inputTokenCount":5,"cacheReadInputTokenCount":0},"output":{"outputTokenCount":7}}',
        head + ',"input":{"inputTokenCount":5},"output":{}}',  # no output count
        head + ',"input":{"inputTokenCount":5}}',  # no output at all
        head + ',"errorCode":"ThrottlingException",' + counts + "}",
        head + ',"errorCode":"ThrottlingException","input":{},"output":{}}',
        head + ',"serviceTier":"priority",' + counts + "}",
        head + ',"serviceTier":"default",' + counts + "}",
        head + ',"performanceConfig":{"latency":"optimized"},' + counts + "}",
        head + ',"inferenceRegion":"us-east-1",' + counts + "}",
        head + ',"inferenceRegion":"mars-1",' + counts + "}",
        head + ',"requestMetadata":{"team":"t0","team":"t1"},' + counts + "}",
        head + ',"requestMetadata":{"team":"caf\\u00e9"},' + counts + "}",
        head + ',"newField":1,' + counts + "}",  # a key the summing way does not know
        head + ", " + counts + "}",  # spaced
        head + "," + counts + "}\r",  # CRLF
        f'{{"timestamp":"2024-07-02T10:00:00Z","region":"mars-1","modelId":"{model}",{counts}}}',
        f'{{"timestamp":"2024-07-02T10:00:00Z","region":"{region}","modelId":"acme.superlm-v9",{counts}}}',
        f'{{"timestamp":"2024-07-02T10:00:00Z","region":"{region}",{counts}}}',  # no modelId
        f'{{"timestamp":"2024-07-02T10:00:00+02:00","region":"{region}","modelId":"{model}",{counts}}}',
        f'{{"timestamp":"2024-02-30T10:00:00Z","region":"{region}","modelId":"{model}",{counts}}}',
        f'{{"region":"{region}","modelId":"{model}",{counts}}}',  # no timestamp
        b"".decode(), "   ", "{not json}", "[1,2]",
    )]


def _log(rules: bedrock_rules.Ruleset, pairs: list[tuple[str, str]], count: int, seed: int, days: list[str] | None = None) -> bytes:
    rng = random.Random(seed)
    fixtures = [
        line.encode() for name in ("mixed.jsonl", "guarded.jsonl")
        for line in (LOGS / name).read_text(encoding="utf-8").splitlines()
    ]
    lines = []
    for n in range(count):
        model, region = rng.choice(pairs)
        day = rng.choice(days) if days else None
        lines.append(json.dumps(_record(n, model, region, rng, day), separators=(",", ":")).encode())
    for line in [*fixtures, *_odd(*pairs[0])]:
        lines.insert(rng.randrange(len(lines)), line)
    return containers.BOM + b"\n".join(lines) + b"\n"


def _pairs(rules: bedrock_rules.Ruleset) -> list[tuple[str, str]]:
    found = []
    for model, info in sorted(rules.program.models.items()):
        model_id = info.aliases[0] if info.aliases else model
        for region in sorted(rules.program.regions):
            probe = {"kind": "text", "model": model_id, "region": region, "input_tokens": 1, "output_tokens": 1, "at": "2024-07-02"}
            try:
                rules.evaluate({"usage": [probe]})
            except bedrock_rules.UsageError:
                continue
            found.append((model_id, region))
    return found


@pytest.fixture(scope="module")
def bundled_log(tmp_path_factory) -> dict[str, Path]:
    rules = bedrock_rules.load()
    folder = tmp_path_factory.mktemp("sums")
    data = _log(rules, _pairs(rules), 1500, seed=5)
    plain = folder / "log.jsonl"
    plain.write_bytes(data)
    packed = folder / "log.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    return {"plain": plain, "gz": packed}


@pytest.fixture(scope="module")
def dated(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dated")
    (folder / "rules").mkdir()
    (folder / "rules" / "dated.rules").write_text(DATED_RULES, encoding="utf-8")
    rules = bedrock_rules.load(folder / "rules")
    days = [f"2024-07-0{d}T{h:02d}:00:00Z" for d in (1, 2, 3, 4) for h in (0, 13, 23)]
    log = folder / "dated.jsonl"
    log.write_bytes(_log(rules, _pairs(rules), 400, seed=9, days=days))
    return {"rules": folder / "rules", "log": log}


def _both(args: list[str], monkeypatch) -> tuple:
    summed = run_cli(*args)
    monkeypatch.setenv("BEDROCK_RULES_JSON", "stdlib")  # no msgspec: every record the standard way
    standard = run_cli(*args)
    monkeypatch.delenv("BEDROCK_RULES_JSON")
    assert (summed.code, summed.out, summed.err) == (standard.code, standard.out, standard.err)
    return summed, standard


CASES = log_path_cases((None, "model,region", "day,identity", "tag:team,operation", "kind"), ("json", "table"))


@pytest.mark.parametrize(("group_by", "container", "fmt"), CASES)
def test_summed_and_standard_bills_are_the_same(bundled_log, container, fmt, group_by, monkeypatch):
    args = ["eval", "--input", "invocation-log", str(bundled_log[container]), "--format", fmt]
    if group_by:
        args += ["--group-by", group_by]
    summed, _ = _both(args, monkeypatch)
    assert summed.code == 3  # the odd records are reported, not priced
    if fmt == "json":
        counts = json.loads(summed.out)["counts"]
        assert counts["priced"] > 1400 and counts["failed_calls"] >= 2
        assert counts["unpriced"] >= 8 and counts["malformed"] >= 4


@pytest.mark.parametrize("group_by", [None, "day", "model,region"])
def test_dated_rules_are_summed_per_window_and_priced_by_date(dated, group_by, monkeypatch):
    args = ["eval", "--rules", str(dated["rules"]), "--input", "invocation-log", str(dated["log"]), "--format", "json"]
    if group_by:
        args += ["--group-by", group_by]
    summed, _ = _both(args, monkeypatch)
    # Each priced record, priced on its own at its date through the public API, adds up to the same total.
    rules = bedrock_rules.load(dated["rules"])
    reader = LogReader(rules.program, False)
    expected = Decimal(0)
    for number, line in enumerate(dated["log"].read_bytes().removeprefix(containers.BOM).splitlines(), 1):
        try:
            record = containers.decode(line.decode("utf-8"))
        except ValueError:
            continue
        entry = reader.entry(record, number)
        if entry.malformed or entry.unpriced or entry.error_code:
            continue
        try:
            expected += rules.evaluate_items(entry.items).total
        except bedrock_rules.UsageError:  # refused: not priced, and not in the total
            continue
    data = json.loads(summed.out)
    assert Decimal(data["total"]) == expected
    rates = {charge["rate"] for group in data["groups"] for charge in group["charges"]}
    assert {"0.008", "0.004"} <= rates  # both versions priced: before and from 2024-07-03


def _summed_records(rules: bedrock_rules.Ruleset, path: Path, group_by: tuple[str, ...], monkeypatch) -> tuple[int, str]:
    """Records the summing way priced itself, and the totals, in process."""
    summed = []
    original = Accumulator.add_sums

    def spy(self, group, kind, plan, sums, count):
        summed.append(count)
        return original(self, group, kind, plan, sums, count)

    monkeypatch.setattr(Accumulator, "add_sums", spy)
    accumulator = rules.accumulator(group_by)
    with containers.open_binary(str(path)) as raw:
        add_log(LogReader(rules.program, needs_attributes(group_by)), accumulator, raw)
    from bedrock_rules.totals import dump
    return sum(summed), dump(accumulator.result())


def test_the_usual_records_are_summed_not_read_one_by_one(bundled_log, dated, monkeypatch):
    rules = bedrock_rules.load()
    count, _ = _summed_records(rules, bundled_log["gz"], ("day",), monkeypatch)
    assert count >= 1400  # of the 1,500 generated calls; the fixtures and odd records go the standard way
    count, _ = _summed_records(bedrock_rules.load(dated["rules"]), dated["log"], (), monkeypatch)
    assert count >= 350


def test_a_long_context_tier_is_priced_record_by_record(tmp_path, monkeypatch):
    """A price that depends on a request's own size cannot be summed first: such records are
    priced one by one, and the bill is the same as the standard way's."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    text = DATED_RULES.split("prices text in any\n")[0] + (
        "prices text in any when input_tokens <= 10000\n"
        "| model      | input_tokens per 1000 | output_tokens per 1000 |\n"
        "|------------|-----------------------|------------------------|\n"
        "| claude-2.1 | 0.008                 | 0.024                  |\n"
        "prices text in any when input_tokens > 10000\n"
        "| model      | input_tokens per 1000 | output_tokens per 1000 |\n"
        "|------------|-----------------------|------------------------|\n"
        "| claude-2.1 | 0.016                 | 0.048                  |\n"
    )
    (rules_dir / "tiers.rules").write_text(text, encoding="utf-8")
    rules = bedrock_rules.load(rules_dir)
    log = tmp_path / "log.jsonl"
    log.write_bytes(_log(rules, [("anthropic.claude-v2:1", "us-west-2")], 200, seed=3))
    args = ["eval", "--rules", str(rules_dir), "--input", "invocation-log", str(log), "--format", "json"]
    summed, _ = _both(args, monkeypatch)
    rates = {charge["rate"] for group in json.loads(summed.out)["groups"] for charge in group["charges"]}
    assert {"0.008", "0.016"} <= rates
    count, _ = _summed_records(rules, log, (), monkeypatch)
    assert count == 0


# Claude Sonnet 4.5 has a long-context rate (above 200K input tokens, cached ones
# counted); Claude Haiku 4.5 and Nova Micro have none.
LONG = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
SHORT = ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "amazon.nova-micro-v1:0")


def long_context_log(count: int = 300, seed: int = 7) -> tuple[bytes, int]:
    """Real-shaped records of 2025-11 under the bundled list: Sonnet 4.5 calls below, at and
    above 200K input tokens (some only with their cache reads and writes), beside calls of
    models without a long-context rate; and how many of those there are."""
    rng = random.Random(seed)
    lines = []
    short = 0
    sizes = [199_999, 200_000, 200_001, 120_000, 180_000, 250_000, 5_000]
    for n in range(count):
        model = LONG if n % 2 else SHORT[n % 4 // 2]
        record = _record(n, model, "us-east-1", rng, f"2025-11-{1 + n % 9:02d}T{n % 24:02d}:15:00Z")
        if model == LONG:
            size = rng.choice(sizes)
            cached = rng.randrange(size + 1) if n % 3 else 0
            written = rng.randrange(size - cached + 1) if n % 5 == 0 else 0
            record["input"] = {
                "inputContentType": "application/json", "inputTokenCount": size - cached - written,
                "cacheReadInputTokenCount": cached, "cacheWriteInputTokenCount": written,
            }
        else:
            short += 1
        lines.append(json.dumps(record, separators=(",", ":")).encode())
    return b"\n".join(lines) + b"\n", short


def test_a_long_context_model_is_priced_record_by_record_beside_summed_ones(tmp_path, monkeypatch):
    """A rate chosen by a request's own size (`context_tokens`) is not summed across
    records: the long-context model's records, above and below the threshold in one
    log, are priced one by one; the other models' records are still summed. The bill is
    the standard way's, and each record priced on its own adds up to its total."""
    rules = bedrock_rules.load()
    data, short = long_context_log()
    log = tmp_path / "long.jsonl"
    log.write_bytes(data)
    args = ["eval", "--input", "invocation-log", str(log), "--format", "json", "--group-by", "model"]
    summed, _ = _both(args, monkeypatch)
    assert summed.code == 0
    result = json.loads(summed.out)
    assert result["counts"]["priced"] == 300
    sonnet = [group for group in result["groups"] if group["group"]["model"] == "claude-sonnet-4.5"]
    rates = {charge["rate"] for group in sonnet for charge in group["charges"] if charge["what"] == "input_tokens"}
    assert len(rates) == 2  # up to 200K input tokens and above: both in the one log
    reader = LogReader(rules.program, False)
    expected = Decimal(0)
    for number, line in enumerate(data.splitlines(), 1):
        expected += rules.evaluate_items(reader.entry(json.loads(line), number).items).total
    assert Decimal(result["total"]) == expected
    count, _ = _summed_records(rules, log, ("model",), monkeypatch)
    assert count == short  # every record of the models without a long-context rate, and no other


def _whole_blocks_log(rules: bedrock_rules.Ruleset, count: int, seed: int) -> bytes:
    """More than three reading blocks of usual records (every key known, every value of
    its type), in the order AWS writes them (time ordered), with what still sends a
    record the standard way: cache counts on some records of a model (where the model
    does not price them, a count that must be 0), failed calls (some without their
    output), a day the calendar lacks, a day before the list, a spaced line, and a line
    holding two records joined by a comma (a block read as one array must not take it
    for two lines)."""
    rng = random.Random(seed)
    pairs = _pairs(rules)[:40]
    lines = []
    for n in range(count):
        model, region = rng.choice(pairs)
        day = f"2024-07-{1 + n * 20 // count:02d}T{n % 24:02d}:{n % 60:02d}:{n * 7 % 60:02d}Z"
        record = _record(n, model, region, rng, day)
        if n % 11 == 0:
            record["input"]["cacheReadInputTokenCount"] = rng.randrange(3) * 500
        if n % 13 == 0:
            record["errorCode"] = "ThrottlingException"
        if n % 97 == 0:  # a failed call that wrote no output: read the standard way
            record["errorCode"] = "ValidationException"
            del record["output"]
        if n == count // 3:
            record["timestamp"] = "2024-02-30T10:00:00Z"
        if n == count // 2:
            record["timestamp"] = "2023-12-31T23:59:59Z"
        lines.append(json.dumps(record, separators=(",", ":")).encode())
    lines[count // 4] = lines[count // 4] + b"," + lines[count // 4 + 1]
    lines[count * 3 // 4] = lines[count * 3 // 4].replace(b'","', b'", "', 1)  # spaced: msgspec does not take it
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("group_by", [None, "day,identity", "tag:team,operation"])
def test_blocks_of_usual_records_are_summed_as_the_standard_way_prices_them(tmp_path, group_by, monkeypatch):
    rules = bedrock_rules.load()
    log = tmp_path / "blocks.jsonl"
    log.write_bytes(_whole_blocks_log(rules, 9000, seed=11))
    assert log.stat().st_size > 3 * (1 << 20)
    args = ["eval", "--input", "invocation-log", str(log), "--format", "json", *(["--group-by", group_by] if group_by else [])]
    summed, _ = _both(args, monkeypatch)
    assert summed.code == 3  # the day the calendar lacks, the day before the list, the line of two records
    counts = json.loads(summed.out)["counts"]
    assert counts["malformed"] == 2 and counts["unpriced"] >= 1 and counts["failed_calls"] >= 600 and counts["priced"] >= 7000
    count, _ = _summed_records(rules, log, tuple(group_by.split(",")) if group_by else (), monkeypatch)
    assert count >= 7000
