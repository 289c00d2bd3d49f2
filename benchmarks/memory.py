"""Peak memory of `bedrock-rules eval` on large usage documents, per item.

    python benchmarks/memory.py                    # 140,000 items (JSON, indented: 24 MB); 20,000 items (YAML)
    python benchmarks/memory.py --count 380000 --compact    # as many as 50 MiB holds (JSON, compact, no names)
    python benchmarks/memory.py --quick            # 2,000 items: checks the script

Each document is generated (fixed seed) into a private temporary folder: text items over
every model and region the bundled rules price for text, with a name, written as people
write them (indented). The command runs in a child that reports its own peak (VmHWM of
/proc/self/status at exit), for each output format; the figure per item is the peak less
the peak on a one-item document, divided by the items. Nothing here is timed against a
target: memory only.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import bedrock_rules

SEED = 20240702
DAY = "2024-07-15"  # the bundled list is dated: items are priced on a day of July 2024, as the logs' records are

# The command, reporting its own high-water mark at exit (a child's ru_maxrss would start at this process's size).
_REPORTING = (
    "import atexit, sys\n"
    "def report():\n"
    "    status = open('/proc/self/status').read()\n"
    "    sys.stderr.write(next(l for l in status.splitlines() if l.startswith('VmHWM')) + '\\n')\n"
    "atexit.register(report)\n"
    "from bedrock_rules.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def text_pairs(rules: bedrock_rules.Ruleset) -> list[tuple[str, str]]:
    """(model ID, region) of every pair the rules price text usage for."""
    found = []
    for model, info in sorted(rules.program.models.items()):
        model_id = info.aliases[0] if info.aliases else model
        for region in sorted(rules.program.regions):
            probe = {"kind": "text", "at": DAY, "model": model_id, "region": region, "input_tokens": 1, "output_tokens": 1}
            try:
                rules.evaluate({"usage": [probe]})
            except bedrock_rules.UsageError:
                continue
            found.append((model_id, region))
    return found


def write_document(path: Path, pairs: list[tuple[str, str]], count: int, compact: bool = False) -> None:
    rng = random.Random(SEED)
    items = []
    for number in range(count):
        model, region = rng.choice(pairs)
        items.append({**({} if compact else {"name": f"call {number}"}), "kind": "text", "at": DAY, "model": model, "region": region,
                      "input_tokens": rng.randrange(20000), "output_tokens": rng.randrange(4000)})
    if path.suffix == ".json":
        text = json.dumps({"usage": items}, separators=(",", ":")) if compact else json.dumps({"usage": items}, indent=1)
        path.write_text(text, encoding="utf-8")
    else:
        lines = ["usage:"]
        for item in items:
            lines.extend(f"{'  - ' if n == 0 else '    '}{key}: {value}" for n, (key, value) in enumerate(item.items()))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def peak(args: list[str]) -> tuple[int, int]:
    """The command's own peak memory (bytes) and the bytes it wrote."""
    child = subprocess.run([sys.executable, "-c", _REPORTING, *args], capture_output=True, check=False)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {child.returncode}: {child.stderr.decode()[-500:]}")
    found = [line for line in child.stderr.decode().splitlines() if line.startswith("VmHWM")]
    return int(found[-1].split()[1]) * 1024, len(child.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=140_000, help="items of the JSON document")
    parser.add_argument("--yaml-count", type=int, default=20_000, help="items of the YAML document (YAML reads slowly)")
    parser.add_argument("--compact", action="store_true", help="JSON without spaces or names, so the most items fit in 50 MiB")
    parser.add_argument("--quick", action="store_true", help="2,000 items of each")
    options = parser.parse_args()
    counts = {".json": options.count, ".yaml": options.yaml_count}
    if options.quick:
        counts = {".json": 2_000, ".yaml": 2_000}
    pairs = text_pairs(bedrock_rules.load())
    with tempfile.TemporaryDirectory(prefix="bedrock-rules-memory-") as folder:
        for suffix, count in counts.items():
            one, document = Path(folder) / f"one{suffix}", Path(folder) / f"usage-{count}{suffix}"
            write_document(one, pairs, 1)
            write_document(document, pairs, count, options.compact)
            size = document.stat().st_size
            print(f"{suffix[1:]}: {count:,} items, {size / 1e6:.1f} MB")
            for fmt in ("table", "json", "csv"):
                base, _ = peak(["eval", str(one), "--format", fmt])
                top, written = peak(["eval", str(document), "--format", fmt])
                per_item = max(top - base, 0) / count
                print(f"  --format {fmt:5}  peak {top / 2**20:7.1f} MiB (one item: {base / 2**20:.1f} MiB), "
                      f"{per_item:,.0f} bytes per item; wrote {written / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
