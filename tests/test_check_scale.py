"""`check` on a table of 1,000 rows: overlaps are found by sorting and bucketing, not by trying every pair.

(How long it takes is measured in benchmarks/check_rows.py, as ratios; here, what it finds.)
"""

from __future__ import annotations

from conftest import run_cli

ROWS = 1000


def big_table(extra: str = "") -> str:
    models = "".join(f"  model m{i:04d}\n" for i in range(ROWS))
    rows = "".join(f"| m{i:04d} | 0.{i + 1:04d} | 0.{i + 2:04d} |\n" for i in range(ROWS))
    return (
        "currency USD\nregion r1\nregion r2\nprovider p\n" + models + "end\n"
        "kind text\n  model: model\n  region: region\n  input_tokens: count = 0 unit tokens\n"
        "  output_tokens: count = 0 unit tokens\nend\n"
        "prices text in r1, r2\n| model | input_tokens per 1000 | output_tokens per 1000 |\n"
        "|---|---|---|\n" + rows + extra
    )


def write(folder, text: str) -> str:
    folder.mkdir()
    (folder / "main.rules").write_text(text, encoding="utf-8")
    return folder.name


def test_a_clean_table_of_a_thousand_rows_is_clean(in_tmp):
    run = run_cli("check", "--rules", write(in_tmp / "clean", big_table()))
    assert (run.code, run.out) == (0, "clean: no problems found\n")


def test_the_two_overlaps_in_a_thousand_rows_are_found(in_tmp):
    # A second table prices m0500 and m0999 in r2 again: two overlaps, each with its usage.
    extra = "prices text in r2\n| model | input_tokens per 1000 |\n|---|---|\n| m0500, m0999 | 0.5 |\n"
    run = run_cli("check", "--rules", write(in_tmp / "overlap", big_table(extra)))
    assert run.code == 1
    # Lines: 1 currency, 2 regions, 1 provider, 1,000 models, 1 end, 6 kind lines, 3 table head.
    first_row = 1 + 2 + 1 + ROWS + 1 + 6 + 3 + 1
    extra_row = first_row + ROWS + 3
    found = [line for line in run.out.splitlines() if "error[" in line or "example:" in line]
    assert found == [
        f"overlap/main.rules:{extra_row}:18: error[BR301]: this rule and the one at overlap/main.rules:{first_row + 500} "
        "both price `input_tokens` for the same `text` usage",
        "  example: {kind: text, model: m0500, region: r2}",
        f"overlap/main.rules:{extra_row}:18: error[BR301]: this rule and the one at overlap/main.rules:{first_row + 999} "
        "both price `input_tokens` for the same `text` usage",
        "  example: {kind: text, model: m0999, region: r2}",
    ]
    assert run.out.endswith("overlap: 2 problems\n")


def test_the_searches_grow_with_the_rows_not_their_pairs(in_tmp, monkeypatch):
    # No timing: the number of searches for a usage two rules both price, and of rule pairs
    # looked at, is counted. Trying every pair (as `check` once did, 300 s for 1,000 rows)
    # would make four times the rows sixteen times the pairs.
    from bedrock_rules import checker

    counts = {"pairs": 0, "searches": 0}
    real_pairs, real_find = checker._candidate_pairs, checker._Search.find

    def pairs(*args, **kwargs):
        for pair in real_pairs(*args, **kwargs):
            counts["pairs"] += 1
            yield pair

    def find(self, *args, **kwargs):
        counts["searches"] += 1
        return real_find(self, *args, **kwargs)

    monkeypatch.setattr(checker, "_candidate_pairs", pairs)
    monkeypatch.setattr(checker._Search, "find", find)
    seen = []
    for rows, name in ((250, "small"), (1000, "large")):
        counts.update(pairs=0, searches=0)
        models = "".join(f"  model m{i:04d}\n" for i in range(rows))
        table = "".join(f"| m{i:04d} | 0.{i + 1:04d} | 0.{i + 2:04d} |\n" for i in range(rows))
        text = big_table().replace(big_table().split("provider p\n")[1].split("end\n")[0], models, 1)
        text = text[: text.index("|---|---|---|\n") + len("|---|---|---|\n")] + table
        assert run_cli("check", "--rules", write(in_tmp / name, text)).code == 0
        seen.append(dict(counts))
    small, large = seen
    assert large["pairs"] == small["pairs"] == 0  # rows of distinct models are never even a candidate pair
    assert 0 < small["searches"] and large["searches"] <= 4 * small["searches"], seen  # one search per row and column
