"""One loaded ruleset, many threads at once: the same bills, refusals and totals as one thread.

A `Ruleset` is immutable. `Ruleset.totals` builds its own `Pricer` per call; a `Pricer`
caches plans in plain dicts, which two threads may fill at once: they store equal values
for equal keys, so sharing one is safe too, and tested here.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bedrock_rules import examples
from bedrock_rules.bill import dump
from bedrock_rules.errors import UsageError
from bedrock_rules.interpreter import Pricer
from bedrock_rules.totals import dump as dump_totals
from conftest import ROOT, SEED_DAY

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` leaves these out; CI runs them once

THREADS = 16
PER_THREAD = 80


def _read(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@pytest.fixture(scope="module")
def documents(rules) -> list[dict]:
    """The golden corpus and the worked examples: priced and refused documents alike."""
    corpus = [_read(p) for p in sorted((ROOT / "tests" / "cases").glob("*.*"))]
    found = corpus + [examples.document(e) for e in rules.examples]
    # The bundled list prices by date: an undated item (the seed's cases) is dated on a day of
    # the seed's prices, as the corpus tests date it, so that it is priced, not refused for its date.
    for document in found:
        for item in document.get("usage") or ():
            if isinstance(item, dict) and "at" not in item:
                item["at"] = SEED_DAY
    return found


@pytest.fixture(autouse=True)
def switch_often():
    """Threads switch every 10 microseconds (not 5 ms), so that they really interleave inside the engine."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def in_threads(work: Callable[[int], list]) -> list[list]:
    """work(thread number) in THREADS threads started together; their results, in thread order."""
    start = threading.Barrier(THREADS)
    results: list = [None] * THREADS
    failures: list[BaseException] = []

    def run(number: int) -> None:
        start.wait()
        try:
            results[number] = work(number)
        except BaseException as error:  # reported below, in the main thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return results


def outcome(rules, document: dict) -> str:
    try:
        return dump(rules.evaluate(document))
    except UsageError as error:
        return error.render()


def test_many_threads_evaluating_one_ruleset_get_the_bills_one_thread_gets(rules, documents):
    plans = [random.Random(n).choices(range(len(documents)), k=PER_THREAD) for n in range(THREADS)]
    expected = {i: outcome(rules, documents[i]) for i in set().union(*plans)}
    assert any(text.startswith("usage refused") for text in expected.values())
    assert any(text.startswith("{") for text in expected.values())
    results = in_threads(lambda n: [outcome(rules, documents[i]) for i in plans[n]])
    for plan, result in zip(plans, results, strict=True):
        assert result == [expected[i] for i in plan]


def _stream(documents: list[dict], seed: int, k: int = 600) -> list:
    items = [item for document in documents for item in document["usage"]]
    return random.Random(seed).choices(items, k=k)


def test_totals_streams_in_threads_sum_what_one_thread_sums(rules, documents):
    streams = [_stream(documents, n % 4) for n in range(THREADS)]  # four threads on each stream
    expected = [dump_totals(rules.totals(s, group_by=("kind",))) for s in streams[:4]]
    assert all('"unpriced": [\n' in e and '"unpriced": []' not in e for e in expected)  # refusals are counted too
    results = in_threads(lambda n: dump_totals(rules.totals(streams[n], group_by=("kind",))))
    assert results == [expected[n % 4] for n in range(THREADS)]


def test_one_pricer_shared_by_many_threads_prices_as_one_thread(rules, documents):
    stream = _stream(documents, 99, 300)
    expected = [Pricer(rules.program).price(item) for item in stream]
    shared = Pricer(rules.program)

    def work(number: int) -> list:
        order = list(range(len(stream)))
        random.Random(number).shuffle(order)  # threads fill the plan caches in different orders
        found = {}
        for index in order:
            shared.fast(stream[index])
            found[index] = shared.price(stream[index])
        return [found[i] for i in range(len(stream))]

    for result in in_threads(work):
        assert result == expected
