"""How `bedrock-rules check` scales with the rows of one table.

    python benchmarks/check_rows.py            # 250, 500 and 1,000 rows
    python benchmarks/check_rows.py 1000       # one size

A generated ruleset: N models, one text table with one row per model and two price
columns. Prints seconds per size and the ratio to the smallest size; near-linear
analysis keeps the ratio close to the ratio of the sizes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bedrock_rules.checker import check


def ruleset(folder: Path, rows: int) -> int:
    models = "".join(f"  model m{i:04d}\n" for i in range(rows))
    table = "".join(f"| m{i:04d}   | 0.{i + 1:04d}                | 0.{i + 2:04d}                 |\n" for i in range(rows))
    text = (
        "currency USD\nregion r1\nregion r2\nprovider p\n" + models + "end\n"
        "kind text\n  model: model\n  region: region\n  input_tokens: count = 0 unit tokens\n"
        "  output_tokens: count = 0 unit tokens\nend\n"
        "prices text in r1, r2\n| model   | input_tokens per 1000 | output_tokens per 1000 |\n"
        "|---------|-----------------------|------------------------|\n" + table
    )
    (folder / "main.rules").write_text(text, encoding="utf-8")
    return len(table.encode())


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [250, 500, 1000]
    first = None
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            size = ruleset(Path(tmp), rows)
            start = time.perf_counter()
            report = check(tmp)
            seconds = time.perf_counter() - start
        first = first or (rows, seconds)
        ratio = seconds / first[1]
        print(f"{rows} rows ({size // 1000} KB table): {seconds:.2f} s, {len(report.findings)} findings, "
              f"x{ratio:.1f} the time of {first[0]} rows")


if __name__ == "__main__":
    main()
