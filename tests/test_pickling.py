"""A loaded Ruleset can be pickled, so it can be handed to a process pool or to Spark executors.

The copy is compiled again from the parsed rule files it carries, and prices exactly as
the original: the same bills, byte for byte, and the same refusals.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

import bedrock_rules
from bedrock_rules.bill import dump
from bedrock_rules.errors import UsageError
from bedrock_rules.totals import dump as dump_totals
from bedrock_rules.usage import read_document
from conftest import ROOT, SEED_DAY

DOCUMENTS = sorted(p for p in (ROOT / "tests" / "cases").glob("*.yaml"))


def _documents():
    documents = []
    for path in DOCUMENTS:
        try:
            documents.append(read_document(path.read_text(encoding="utf-8"), path.name))
        except UsageError:
            continue
    return documents


def _outcome(rules, document):
    try:
        return dump(rules.evaluate(document, at=SEED_DAY))
    except UsageError as error:
        return error.render()


def test_a_pickled_ruleset_prices_as_the_original(rules):
    copy = pickle.loads(pickle.dumps(rules))
    assert copy is not rules
    assert copy.program.files == rules.program.files
    assert copy.sources == rules.sources
    documents = _documents()
    assert len(documents) > 20
    assert [_outcome(copy, d) for d in documents] == [_outcome(rules, d) for d in documents]


def test_a_ruleset_loaded_from_a_folder_pickles_with_its_file_names(tmp_path, monkeypatch):
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in (ROOT / "rulesets" / "bedrock").glob("*.rules"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    rules = bedrock_rules.load("rules")
    copy = pickle.loads(pickle.dumps(rules))
    document = _documents()[0]
    assert dump(copy.evaluate(document, at=SEED_DAY)) == dump(rules.evaluate(document, at=SEED_DAY))
    assert "rules/" in dump(copy.evaluate(document, at=SEED_DAY))  # bills name the rule files as the original's do


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_documents_priced_in_a_process_pool_give_the_same_bills(rules, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    documents = _documents()
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        # the ruleset goes to the workers pickled, with every chunk of tasks (spawn: nothing is
        # inherited; a chunk pickles it once)
        bills = list(pool.map(_outcome, [rules] * len(documents), documents, chunksize=8))
        items = [item for d in documents for item in d["usage"]]
        totals = pool.submit(rules.totals, items, ("kind",)).result()
    assert bills == [_outcome(rules, d) for d in documents]
    assert dump_totals(totals) == dump_totals(rules.totals(items, ("kind",)))
