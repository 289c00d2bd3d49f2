"""Totals summed in parts and merged (as Spark's executors and driver do) are the totals of one pass.

`Accumulator.partial()` is what a worker hands back; `Accumulator.merge` adds it. Merged
in the order the files were read, the result is byte for byte the one accumulator's,
reasons, places and counts included; the parts travel pickled, as Spark sends them.
"""

from __future__ import annotations

import pickle

import pytest
from test_log_paths import generated_log

import bedrock_rules
from bedrock_rules.bedrock import containers
from bedrock_rules.bedrock.logs import LogReader, needs_attributes, read_file
from bedrock_rules.totals import dump


@pytest.mark.parametrize("group_by", [(), ("model", "region"), ("day", "tag:team")])
def test_merged_parts_are_the_totals_of_one_pass(tmp_path, group_by):
    rules = bedrock_rules.load()
    lines = generated_log(rules, count=400, seed=17).split(b"\n")
    files = []
    for index, part in enumerate((lines[:90], lines[90:300], lines[300:])):
        path = tmp_path / f"part-{index}.jsonl"
        path.write_bytes(b"\n".join(part) + b"\n")
        files.append(str(path))

    def read(accumulator, paths):
        reader = LogReader(rules.program, needs_attributes(group_by))
        for path in paths:
            accumulator.source = path
            with containers.open_binary(path) as raw:
                accumulator.add_records(read_file(reader, raw))
        return accumulator

    whole = read(rules.accumulator(group_by), files).result()
    merged = rules.accumulator(group_by)
    for path in files:
        merged.merge(pickle.loads(pickle.dumps(read(rules.accumulator(group_by), [path]).partial())))
    result = merged.result()
    assert dump(result) == dump(whole)
    assert result.priced > 200 and result.malformed and result.unpriced
