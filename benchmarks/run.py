"""Speed and memory of bedrock-rules, as ratios against baselines measured in the same run.

    python benchmarks/run.py            # 1,000,000 items and records (a few minutes)
    python benchmarks/run.py --quick    # 5,000 of each: checks the script, not the speed

1. In process: pricing N text usage items over every model and region the rules price
   for text, with `Ruleset.totals`, against a hand-written loop that looks the two
   rates (per 1,000 tokens, as the price page gives them) up in a dict and computes
   `(input x rate_in + output x rate_out) / 1000` in Decimal. Target: at least 50%.
   One item per call: `Ruleset.evaluate` of a one-item document, as an embedding program
   prices each response, against the same loop one item at a time. Target: at least 20%.
2. End to end: `bedrock-rules eval --input invocation-log` on an N-record log, against
   a loop that reads the lines, parses the JSON, looks the rates up and does the
   arithmetic. Target: 3 times its records per second; peak memory < 150 MB.
3. Start-up: the command on one small document against `python -c pass`.
   Target: under 150 ms more.

Inputs are generated here (fixed seed) into a private temporary folder, removed after.
Each timing is the best of a few runs, alternating engine and baseline.
"""

from __future__ import annotations

import argparse
import json
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
DAY = "2024-07-15"  # the bundled list is dated: items are priced on a day of July 2024, as the logs' records are


def text_combinations(rules: bedrock_rules.Ruleset) -> list[tuple[str, str, Decimal, Decimal]]:
    """(model ID, region, input rate, output rate) per 1,000 tokens, for every priced pair."""
    found = []
    compiled = rules.program
    for model, info in sorted(compiled.models.items()):
        model_id = info.aliases[0] if info.aliases else model
        for region in sorted(compiled.regions):
            probe = {"kind": "text", "at": DAY, "model": model_id, "region": region, "input_tokens": 1000, "output_tokens": 0}
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
        items.append({"kind": "text", "at": DAY, "model": model, "region": region,
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


def one_item(rules, combos, count: int, runs: int) -> dict:
    """`Ruleset.evaluate` called once per request with one item, as an embedding program
    prices each response, against the dict + Decimal loop doing the same one at a time."""
    rng = random.Random(SEED)
    documents = []
    for _ in range(count):
        model, region, _, _ = rng.choice(combos)
        documents.append({"usage": [{"kind": "text", "at": DAY, "model": model, "region": region,
                                     "input_tokens": rng.randrange(20000), "output_tokens": rng.randrange(4000)}]})
    rates = {(m, r): (i, o) for m, r, i, o in combos}

    def baseline():
        total = Decimal(0)
        for document in documents:
            item = document["usage"][0]
            rate_in, rate_out = rates[(item["model"], item["region"])]
            total += (item["input_tokens"] * rate_in + item["output_tokens"] * rate_out) / 1000
        return total

    def engine():
        evaluate = rules.evaluate
        total = Decimal(0)
        for document in documents:
            total += evaluate(document).total
        return total

    assert baseline() == engine(), "engine and baseline disagree"
    base_times, engine_times = [], []
    for _ in range(runs):
        base_times.append(best(1, baseline))
        engine_times.append(best(1, engine))
    base, eng = min(base_times), min(engine_times)
    return {"calls": count, "baseline_us": base / count * 1e6, "engine_us": eng / count * 1e6, "ratio": base / eng,
            "litellm": litellm_per_call(documents[:20_000], runs, base / count)}


def litellm_per_call(documents, runs: int, baseline_s: float) -> dict | None:
    """LiteLLM's `cost_per_token` (when installed), called per request on the same items
    as a program using it would: µs per call and the same ratio to the dict + Decimal loop.
    It answers in floats, by model ID alone (its own table, read from the package, not
    fetched), so only the calls of models it maps are timed, and its sums are not compared."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # its bundled table: no network in a benchmark
    try:
        import litellm
    except ImportError:
        return None
    calls = [(item["model"], item["input_tokens"], item["output_tokens"])
             for item in (document["usage"][0] for document in documents) if item["model"] in litellm.model_cost]
    if not calls:
        return None
    cost_per_token = litellm.cost_per_token

    def run():
        for model, tokens_in, tokens_out in calls:
            cost_per_token(model=model, prompt_tokens=tokens_in, completion_tokens=tokens_out)

    spent = min(best(1, run) for _ in range(runs)) / len(calls)
    return {"calls": len(calls), "us": spent * 1e6, "ratio": baseline_s / spent}


def write_log(path: Path, combos, count: int) -> None:
    rng = random.Random(SEED)
    operations = ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"]
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            model, region, _, _ = rng.choice(combos)
            second = n * 28 * 86400 // count  # in time order over four weeks of July 2024, as AWS writes a log
            record = {
                "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
                "timestamp": f"2024-07-{1 + second // 86400:02d}T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z",
                "accountId": "111122223333",
                "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/worker"},
                "region": region, "requestId": f"req-{n}", "operation": rng.choice(operations), "modelId": model,
                "input": {"inputContentType": "application/json", "inputTokenCount": rng.randrange(20000)},
                "output": {"outputContentType": "application/json", "outputTokenCount": rng.randrange(4000)},
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")  # compact, as AWS writes records


# The command, run so that it reports its own peak memory: VmHWM in /proc is the high-water
# mark of the process's own memory since it started (wait4's ru_maxrss starts a child at
# its parent's size, and this process holds DuckDB and the generated items).
_REPORTING = (
    "import atexit, sys\n"
    "def report():\n"
    "    try:\n"
    "        status = open('/proc/self/status').read()\n"
    "    except OSError:\n"
    "        return\n"
    "    sys.stderr.write(next(l for l in status.splitlines() if l.startswith('VmHWM')) + '\\n')\n"
    "atexit.register(report)\n"
    "from bedrock_rules.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def peak_rss(command: list[str]) -> tuple[float, int, str]:
    """Wall time, the command's own peak memory (bytes) and its stdout; `command` is the
    arguments of `bedrock-rules`."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _REPORTING, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate()
    elapsed = time.perf_counter() - start
    if child.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}: {err.decode()[-500:]}")
    found = [line for line in err.decode().splitlines() if line.startswith("VmHWM")]
    peak = int(found[-1].split()[1]) * 1024 if found else 0
    return elapsed, peak, out.decode()


def end_to_end(rules, combos, count: int, runs: int, folder: Path) -> dict:
    """The log path against loops that read, parse, look up and compute, in one run."""
    log = folder / f"invocations-{count}.jsonl"
    write_log(log, combos, count)
    rates = {(m, r): (i, o) for m, r, i, o in combos}

    def loop(loads, binary: bool):
        def run():
            total = Decimal(0)
            with log.open("rb" if binary else "r", **({} if binary else {"encoding": "utf-8"})) as lines:
                for line in lines:
                    record = loads(line)
                    rate_in, rate_out = rates[(record["modelId"], record["region"])]
                    total += (record["input"]["inputTokenCount"] * rate_in + record["output"]["outputTokenCount"] * rate_out) / 1000
            return total
        return run

    loops = {"stdlib": loop(json.loads, False)}
    try:
        import orjson
        loops["orjson"] = loop(orjson.loads, True)
    except ImportError:
        pass
    try:
        import msgspec
        loops["msgspec"] = loop(msgspec.json.Decoder().decode, True)
    except ImportError:
        pass

    def in_process():
        from bedrock_rules.bedrock import containers
        from bedrock_rules.bedrock.logs import LogReader, add_log
        accumulator = rules.accumulator()
        with containers.open_binary(str(log)) as raw:
            add_log(LogReader(rules.program, False), accumulator, raw)
        return accumulator.result().total

    duckdb_sql = None
    try:
        import duckdb

        def duckdb_sql():
            con = duckdb.connect()
            con.execute("SET threads = 1")
            rows = con.execute(
                "SELECT modelId, region, sum(input.inputTokenCount)::HUGEINT, sum(output.outputTokenCount)::HUGEINT "
                f"FROM read_json('{log}', format='newline_delimited', columns={{modelId: 'VARCHAR', region: 'VARCHAR', "
                "input: 'STRUCT(inputTokenCount BIGINT)', output: 'STRUCT(outputTokenCount BIGINT)'}) GROUP BY ALL"
            ).fetchall()
            con.close()
            total = Decimal(0)
            for model, region, tokens_in, tokens_out in rows:
                rate_in, rate_out = rates[(model, region)]
                total += (int(tokens_in) * rate_in + int(tokens_out) * rate_out) / 1000
            return total
    except ImportError:
        pass

    duckdb_engine = None
    if duckdb_sql:
        def duckdb_engine():  # eval --engine duckdb in process, on one thread like DuckDB's own aggregate above
            from bedrock_rules.bedrock import columnar
            return columnar.totals(rules, [str(log)], threads=1).total

    command = ["eval", "--input", "invocation-log", str(log), "--format", "json"]
    expected = loops["stdlib"]()
    times: dict[str, list[float]] = {
        name: [] for name in [*loops, "in process", "command", *(["duckdb", "duckdb engine"] if duckdb_sql else [])]
    }
    peaks = []
    for _ in range(runs):
        for name, work in loops.items():
            start = time.perf_counter()
            assert work() == expected, f"the {name} loop disagrees"
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        assert in_process() == expected, "the in-process log path and the baseline disagree"
        times["in process"].append(time.perf_counter() - start)
        elapsed, peak, out = peak_rss(command)
        assert Decimal(json.loads(out)["total"]) == expected, "the command and the baseline disagree"
        times["command"].append(elapsed)
        peaks.append(peak)
        if duckdb_sql:
            start = time.perf_counter()
            assert duckdb_sql() == expected, "DuckDB's aggregate and the baseline disagree"
            times["duckdb"].append(time.perf_counter() - start)
            start = time.perf_counter()
            assert duckdb_engine() == expected, "eval --engine duckdb and the baseline disagree"
            times["duckdb engine"].append(time.perf_counter() - start)
    base = min(times["stdlib"])
    return {
        "records": count,
        "log_mb": log.stat().st_size / 2**20,
        "baseline_per_s": count / base,
        "cli_per_s": count / min(times["command"]),
        "ratio": base / min(times["command"]),
        "speeds": {name: base / min(spent) for name, spent in times.items()},
        "peak_mb": max(peaks) / 2**20,
        # eval --engine duckdb's time over DuckDB's own read-and-aggregate of the same file (target <= 3)
        "duckdb_over_own": min(times["duckdb engine"]) / min(times["duckdb"]) if duckdb_sql else None,
    }


def start_up(folder: Path, runs: int) -> dict:
    doc = folder / "small.json"
    doc.write_text(json.dumps({"usage": [{"kind": "text", "at": DAY, "model": "anthropic.claude-v2:1", "region": "us-west-2",
                                          "input_tokens": 11000, "output_tokens": 4000}]}))
    script = shutil.which("bedrock-rules")
    command = [script] if script else [sys.executable, "-m", "bedrock_rules"]
    python = best(runs, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    cli = best(runs, lambda: subprocess.run([*command, "eval", str(doc)], check=True, stdout=subprocess.DEVNULL))
    return {"python_ms": python * 1000, "cli_ms": cli * 1000, "extra_ms": (cli - python) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 items and records, one run: a smoke test")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--log-counts", default="200000,2000000", help="records of each generated log, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    count, runs = (5_000, 1) if args.quick else (args.count, args.runs)
    log_counts = [5_000] if args.quick else [int(n) for n in args.log_counts.split(",")]

    rules = bedrock_rules.load()
    combos = text_combinations(rules)
    folder = Path(tempfile.mkdtemp(prefix="bedrock-rules-bench-"))
    try:
        # End to end first: a child's peak memory as Linux reports it starts from this
        # process's size when it was started, so measure while this process is small.
        logs = [end_to_end(rules, combos, n, runs, folder) for n in log_counts]
        inproc = in_process(rules, combos, count, runs)
        single = one_item(rules, combos, min(count, 200_000), runs)
        print(f"in process: {inproc['items']:,} text items over {len(combos)} model/region pairs")
        print(f"  baseline {inproc['baseline_per_s']:,.0f} items/s, engine {inproc['engine_per_s']:,.0f} items/s, "
              f"ratio {inproc['ratio']:.2f} (target >= 0.50)")
        print(f"one item per call: {single['calls']:,} calls of Ruleset.evaluate with one text item")
        print(f"  baseline {single['baseline_us']:.2f} us/call, engine {single['engine_us']:.2f} us/call, "
              f"ratio {single['ratio']:.3f} (target >= 0.20)")
        if single["litellm"]:
            print(f"  LiteLLM's cost_per_token (floats), {single['litellm']['calls']:,} of those calls (the models it maps): "
                  f"{single['litellm']['us']:.2f} us/call, ratio {single['litellm']['ratio']:.3f}")
        for e2e in logs:
            print(f"end to end: {e2e['records']:,}-record invocation log ({e2e['log_mb']:.0f} MB)")
            print(f"  baseline {e2e['baseline_per_s']:,.0f} records/s, command {e2e['cli_per_s']:,.0f} records/s, "
                  f"ratio {e2e['ratio']:.2f} (target >= 3.00); peak memory {e2e['peak_mb']:.0f} MB (target < 150)")
            print("  speed against the stdlib loop (read, json.loads, lookup, Decimal), same run: " + ", ".join(
                f"{name} {speed:.2f}x" for name, speed in e2e["speeds"].items()))
            if e2e["duckdb_over_own"] is not None:
                print(f"  eval --engine duckdb (1 thread) takes {e2e['duckdb_over_own']:.2f}x DuckDB's own read_json + GROUP BY "
                      "(target <= 3.00)")
        boot = start_up(folder, 10 if not args.quick else 3)
        print(f"start-up: python -c pass {boot['python_ms']:.0f} ms, eval of one small document "
              f"{boot['cli_ms']:.0f} ms: {boot['extra_ms']:.0f} ms more (target < 150)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
