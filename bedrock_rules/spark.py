"""Invocation logs priced on a Spark cluster: `price_logs(spark, paths, rules, group_by=…)`.

Bedrock delivers a month of logs as many gzipped JSON Lines files under `s3://…/AWSLogs/`.
gzip cannot be split, so the unit of work is a file. The driver lists the files; each
executor reads its files with the project's own reader (the same record semantics,
refusals and line numbers as `eval --input invocation-log`) into a running total of
integer quantities per (group, rule), with what it could not price counted per reason;
the driver merges those partial totals in file order and prices them once, with exact
decimals (`Accumulator.merge`, `Accumulator.result`). No price is computed in Spark
SQL, whose decimal arithmetic drops places. The totals are the ones `eval` prints for
the same files, byte for byte.

Needs the `spark` extra (pyspark 3.5 or later, a Java runtime) on the driver, and
bedrock-rules installed on the executors (`s3` extra for `s3://` paths).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .bedrock import containers, remote
from .bedrock.logs import LogReader, check_groups, needs_attributes, read_file
from .errors import Problem, UsageError
from .ruleset import Ruleset, load
from .totals import Totals


def price_logs(
    spark: Any, paths: str | Sequence[str], rules: Ruleset | None = None, group_by: Sequence[str] = (),
    profiles: Mapping[str, str] | None = None, partitions: int | None = None,
) -> Totals:
    """The totals of every invocation log under `paths`, read on the cluster, priced on the driver.

    `spark`: a SparkSession (or SparkContext). `paths`: files, folders or URLs (`s3://bucket/AWSLogs/…`,
    globs allowed). `rules`: a loaded Ruleset (the bundled rules when None). `group_by`:
    as `eval --group-by` (model, region, day, identity, operation, kind, tag:KEY).
    `partitions`: how many tasks share the files (Spark's default parallelism when None).
    """
    rules = rules if rules is not None else load()
    group_by = tuple(group_by)
    check_groups(group_by)
    files = [found for path in ([paths] if isinstance(paths, str) else paths) for found in remote.files_of(path)]
    accumulator = rules.accumulator(group_by)
    if not files:
        return accumulator.result()
    context = getattr(spark, "sparkContext", spark)
    slices = max(1, min(len(files), partitions or context.defaultParallelism))
    several = len(files) > 1
    profiles = dict(profiles or {})

    def task(part: Iterable[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        yield _price_files(rules, list(part), group_by, profiles, several)

    # parallelize keeps the files' order across partitions, and collect returns them in it.
    partials = context.parallelize(files, slices).mapPartitions(task).collect()
    problems = [Problem(message, source=source) for partial in partials for message, source in partial["problems"]]
    if problems:
        raise UsageError(problems)
    for partial in partials:
        accumulator.merge(partial)
    return accumulator.result()


def _price_files(
    rules: Ruleset, files: list[tuple[str, str]], group_by: tuple[str, ...], profiles: Mapping[str, str], several: bool,
) -> dict[str, Any]:
    """On an executor: the partial totals of some files, read by the project's reader."""
    import zlib  # start-up time: only a task needs it

    reader = LogReader(rules.program, needs_attributes(group_by), profiles)
    accumulator = rules.accumulator(group_by)
    problems: list[tuple[str, str]] = []
    for label, path in files:
        if several:
            accumulator.source = label
        try:
            with remote.open_binary(path) as raw:
                accumulator.add_records(read_file(reader, raw))
        except UsageError as error:
            problems.extend((problem.message, problem.source or label) for problem in error.problems)
        except (OSError, EOFError, zlib.error) as error:  # unreadable, or a truncated or corrupt .gz
            problems.append((containers.unreadable(error), label))
    return {**accumulator.partial(), "problems": problems}
