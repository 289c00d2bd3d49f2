"""Speed and memory of bedrock-rules, as ratios against baselines measured in the same run.

    python benchmarks/run.py            # 1,000,000 items and records (a few minutes)
    python benchmarks/run.py --quick    # 20,000 of each: checks the script, not the speed

1. In process: pricing N text usage items over every model and region the rules price
   for text, with `Ruleset.totals`, against a hand-written loop that looks the two
   rates (per 1,000 tokens, as the price page gives them) up in a dict and computes
   `(input x rate_in + output x rate_out) / 1000` in Decimal. Target: at least 50%.
2. End to end: `bedrock-rules eval --input invocation-log` on an N-record log, against
   a loop that reads the lines, parses the JSON, looks the rates up and does the
   arithmetic. Target: at least 50% of its records per second; peak memory < 150 MB.
3. Start-up: the command on one small document against `python -c pass`.
   Target: under 150 ms more.

Inputs are generated here (fixed seed) into a private temporary folder, removed after.
Each timing is the best of a few runs, alternating engine and baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import bedrock_rules

SEED = 20240702


def text_combinations(rules: bedrock_rules.Ruleset) -> list[tuple[str, str, Decimal, Decimal]]:
    """(model ID, region, input rate, output rate) per 1,000 tokens, for every priced pair."""
    found = []
    compiled = rules.program
    for model, info in sorted(compiled.models.items()):
        model_id = info.aliases[0] if info.aliases else model
        for region in sorted(compiled.regions):
            probe = {"kind": "text", "model": model_id, "region": region, "input_tokens": 1000, "output_tokens": 0}
            try:
                rate_in = rules.evaluate({"usage": [probe]}).total
                rate_out = rules.evaluate({"usage": [{**probe, "input_tokens": 0, "output_tokens": 1000}]}).total
            except bedrock_rules.UsageError:
                continue
            found.append((model_id, region, rate_in, rate_out))
    return found


def best(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def in_process(rules, combos, count: int, runs: int) -> dict:
    rng = random.Random(SEED)
    items = []
    for _ in range(count):
        model, region, _, _ = rng.choice(combos)
        items.append({"kind": "text", "model": model, "region": region,
                      "input_tokens": rng.randrange(20000), "output_tokens": rng.randrange(4000)})
    rates = {(m, r): (i, o) for m, r, i, o in combos}

    def baseline():
        total = Decimal(0)
        for item in items:
            rate_in, rate_out = rates[(item["model"], item["region"])]
            total += (item["input_tokens"] * rate_in + item["output_tokens"] * rate_out) / 1000
        return total

    def engine():
        return rules.totals(items).total

    assert baseline() == engine(), "engine and baseline disagree"
    base_times, engine_times = [], []
    for _ in range(runs):
        base_times.append(best(1, baseline))
        engine_times.append(best(1, engine))
    base, eng = min(base_times), min(engine_times)
    return {"items": count, "baseline_per_s": count / base, "engine_per_s": count / eng, "ratio": base / eng}


def write_log(path: Path, combos, count: int) -> None:
    rng = random.Random(SEED)
    operations = ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"]
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            model, region, _, _ = rng.choice(combos)
            record = {
                "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
                "timestamp": f"2024-07-{1 + n % 28:02d}T09:15:00Z", "accountId": "111122223333",
                "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/worker"},
                "region": region, "requestId": f"req-{n}", "operation": rng.choice(operations), "modelId": model,
                "input": {"inputContentType": "application/json", "inputTokenCount": rng.randrange(20000)},
                "output": {"outputContentType": "application/json", "outputTokenCount": rng.randrange(4000)},
            }
            out.write(json.dumps(record) + "\n")


def peak_rss(command: list[str]) -> tuple[float, int, str]:
    """Wall time, the child's own peak memory (bytes, from wait4) and its stdout."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return elapsed, usage.ru_maxrss * 1024, out.decode()


def end_to_end(combos, count: int, runs: int, folder: Path) -> dict:
    log = folder / "invocations.jsonl"
    write_log(log, combos, count)
    rates = {(m, r): (i, o) for m, r, i, o in combos}

    def baseline():
        total = Decimal(0)
        with log.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                rate_in, rate_out = rates[(record["modelId"], record["region"])]
                total += (record["input"]["inputTokenCount"] * rate_in + record["output"]["outputTokenCount"] * rate_out) / 1000
        return total

    command = [sys.executable, "-m", "bedrock_rules", "eval", "--input", "invocation-log", str(log), "--format", "json"]
    expected = baseline()
    base_times, cli_times, peaks = [], [], []
    for _ in range(runs):
        base_times.append(best(1, baseline))
        elapsed, peak, out = peak_rss(command)
        assert Decimal(json.loads(out)["total"]) == expected, "the command and the baseline disagree"
        cli_times.append(elapsed)
        peaks.append(peak)
    base, cli = min(base_times), min(cli_times)
    return {
        "records": count,
        "baseline_per_s": count / base,
        "cli_per_s": count / cli,
        "ratio": base / cli,
        "peak_mb": max(peaks) / 2**20,
        "log_mb": log.stat().st_size / 2**20,
    }


def start_up(folder: Path, runs: int) -> dict:
    doc = folder / "small.json"
    doc.write_text(json.dumps({"usage": [{"kind": "text", "model": "anthropic.claude-v2:1", "region": "us-west-2",
                                          "input_tokens": 11000, "output_tokens": 4000}]}))
    script = shutil.which("bedrock-rules")
    command = [script] if script else [sys.executable, "-m", "bedrock_rules"]
    python = best(runs, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    cli = best(runs, lambda: subprocess.run([*command, "eval", str(doc)], check=True, stdout=subprocess.DEVNULL))
    return {"python_ms": python * 1000, "cli_ms": cli * 1000, "extra_ms": (cli - python) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 items and records, one run: a smoke test")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    count, runs = (20_000, 1) if args.quick else (args.count, args.runs)

    rules = bedrock_rules.load()
    combos = text_combinations(rules)
    folder = Path(tempfile.mkdtemp(prefix="bedrock-rules-bench-"))
    try:
        # End to end first: a child's peak memory as Linux reports it starts from this
        # process's size when it was started, so measure while this process is small.
        e2e = end_to_end(combos, count, runs, folder)
        inproc = in_process(rules, combos, count, runs)
        print(f"in process: {inproc['items']:,} text items over {len(combos)} model/region pairs")
        print(f"  baseline {inproc['baseline_per_s']:,.0f} items/s, engine {inproc['engine_per_s']:,.0f} items/s, "
              f"ratio {inproc['ratio']:.2f} (target >= 0.50)")
        print(f"end to end: {e2e['records']:,}-record invocation log ({e2e['log_mb']:.0f} MB)")
        print(f"  baseline {e2e['baseline_per_s']:,.0f} records/s, command {e2e['cli_per_s']:,.0f} records/s, "
              f"ratio {e2e['ratio']:.2f} (target >= 0.50); peak memory {e2e['peak_mb']:.0f} MB (target < 150)")
        boot = start_up(folder, 10 if not args.quick else 3)
        print(f"start-up: python -c pass {boot['python_ms']:.0f} ms, eval of one small document "
              f"{boot['cli_ms']:.0f} ms: {boot['extra_ms']:.0f} ms more (target < 150)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
