"""The quick ways of reading a log give the bill the standard way gives, byte for byte.

A generated log holds the shapes of tests/logs (compact as AWS writes them, and as
people re-save them, spaced), many model/region combinations, and lines each decoder
sees differently: duplicate keys, numbers written as `1e3` or `12.0`, counts as text,
lone surrogates, bad bytes, NaN, deep nesting, a BOM. Every output is produced with
msgspec and with the standard library's decoder alone (BEDROCK_RULES_JSON=stdlib),
plain and gzipped, and must be the same bytes with the same exit status.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

import bedrock_rules
from bedrock_rules.bedrock import containers
from bedrock_rules.bedrock.logs import totals_of_log
from bedrock_rules.totals import Accumulator, dump
from conftest import ROOT, SEED_DAY, log_path_cases, run_cli

LOGS = ROOT / "tests" / "logs"


def _fixture_records() -> list[dict]:
    records = []
    for name in ("mixed.jsonl", "guarded.jsonl"):
        for line in (LOGS / name).read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def _priced_pairs(rules: bedrock_rules.Ruleset) -> list[tuple[str, str]]:
    pairs = []
    for model, info in sorted(rules.program.by_model.get("text", {}).items()):
        model_id = rules.program.models[model].aliases[0] if rules.program.models[model].aliases else model
        del info
        for region in sorted(rules.program.regions):
            probe = {"kind": "text", "model": model_id, "region": region, "input_tokens": 1, "output_tokens": 1}
            try:
                rules.evaluate({"usage": [probe]}, at=SEED_DAY)  # the generated records are of July 2024
            except bedrock_rules.UsageError:
                continue
            pairs.append((model_id, region))
    return pairs


def generated_log(rules: bedrock_rules.Ruleset, count: int = 600, seed: int = 11) -> bytes:
    rng = random.Random(seed)
    pairs = _priced_pairs(rules)
    fixtures = _fixture_records()
    lines: list[bytes] = ["\ufeff".encode() + json.dumps(fixtures[0], separators=(",", ":")).encode()]
    for n in range(count):
        shape = rng.random()
        if shape < 0.3:
            record = dict(rng.choice(fixtures))
        else:
            model, region = rng.choice(pairs)
            record = {
                "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": f"2024-07-{1 + n % 28:02d}T09:15:00Z",
                "accountId": "111122223333", "identity": {"arn": f"arn:aws:sts::111122223333:assumed-role/app/w{n % 3}"},
                "region": region, "requestId": f"req-{n}", "operation": "InvokeModel", "modelId": model,
                "requestMetadata": {"team": f"t{n % 4}"},
                "input": {"inputContentType": "application/json", "inputTokenCount": rng.randrange(20000)},
                "output": {"outputContentType": "application/json", "outputTokenCount": rng.randrange(4000)},
            }
        spaced = rng.random() < 0.1
        text = json.dumps(record, separators=(", ", ": ") if spaced else (",", ":"), ensure_ascii=rng.random() < 0.5)
        lines.append(text.encode())
    odd = [
        b'{"modelId":"a","modelId":"b","region":"us-east-1","input":{"inputTokenCount":1},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":1e3},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":12.0},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":"12"},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":true},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":-0},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":123456789012345678901234567890123456789012},'
        b'"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1\\ud800","region":"us-west-2","input":{"inputTokenCount":1},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2\xff","input":{"inputTokenCount":1},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":NaN},"output":{"outputTokenCount":1}}',
        b'{"modelId":"anthropic.claude-v2:1","region":"us-west-2","input":{"inputTokenCount":1},"output":{"outputTokenCount":1}}\x0c',
        b'{"a":' * 600 + b"1" + b"}" * 600,
        b"[1,2,3]",
        b'"text"',
        b"{not json}",
        b"",
        b"   ",
    ]
    for line in odd:
        lines.insert(rng.randrange(1, len(lines)), line)
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def log_files(tmp_path_factory, ) -> dict[str, Path]:
    rules = bedrock_rules.load()
    folder = tmp_path_factory.mktemp("logs")
    data = generated_log(rules)
    plain = folder / "generated.jsonl"
    plain.write_bytes(data)
    packed = folder / "generated.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    return {"plain": plain, "gz": packed}


CASES = log_path_cases((None, "model,region", "day,tag:team", "region,kind"), ("json", "csv", "table"))


@pytest.mark.parametrize(("group_by", "container", "fmt"), CASES)
def test_msgspec_and_the_standard_decoder_give_the_same_bill(log_files, container, fmt, group_by, monkeypatch):
    args = ["eval", "--input", "invocation-log", str(log_files[container]), "--format", fmt]
    if group_by:
        args += ["--group-by", group_by]
    quick = run_cli(*args)
    monkeypatch.setenv("BEDROCK_RULES_JSON", "stdlib")
    standard = run_cli(*args)
    assert (quick.code, quick.out, quick.err) == (standard.code, standard.out, standard.err)
    assert quick.code == 3  # the odd lines are reported, not priced
    if fmt == "json":
        counts = json.loads(quick.out)["counts"]
        assert counts["priced"] > 400 and counts["malformed"] >= 5 and counts["unpriced"] >= 5


def test_the_quick_decoder_takes_compact_lines_and_leaves_the_rest(log_files):
    quick = containers.quick_decoder()
    assert quick is not None
    line = b'{"modelId":"m","input":{"inputTokenCount":1},"latency":1.50}\n'
    assert quick(line) == {"modelId": "m", "input": {"inputTokenCount": 1}, "latency": containers.Decimal("1.50")}
    for other in (b'{"a": 1}', b'{"a":1,"a":2}', b'{"a":1e3}', b'{"a":"\\ud800"}', b'{"a":NaN}', b"{\"a\":1}\x0c"):
        assert quick(other) is containers._STANDARD


def test_many_combinations_are_summed_the_same_with_few_items_held(log_files, monkeypatch):
    rules = bedrock_rules.load()
    lines = log_files["plain"].read_bytes().decode("utf-8", "replace").splitlines()
    expected = dump(totals_of_log(rules, lines, group_by=["model", "region"]))
    monkeypatch.setattr(Accumulator, "MAX_HELD", 3)
    assert dump(totals_of_log(rules, lines, group_by=["model", "region"])) == expected
