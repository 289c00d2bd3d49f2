"""Many generated one-item documents, billed the quick way and the slow way: the same bills.

`Ruleset.evaluate` prices a document from the kept bill lines of each item's deciding
fields (`interpreter.Pricer.bill`) when it can, and through `check_items` and
`price_item` otherwise. A seeded generator makes items from the rules' own models,
regions and choices, with ordinary counts and with every kind of wrong value (a negative
or huge count, a string, a bool, a float, an unknown key, a wrong name, a bad date), one
at a time and several to a document; each is priced both ways, and the bills must be
equal field for field (`repr`, so the same Decimal digits) with the same JSON bytes, and
a refused document refused with the same problems. Under dated rules the items carry
`at` and take the quick way too, dates on each side of every window's edge.
"""

from __future__ import annotations

import copy
import datetime
import pickle
import random
import weakref
from decimal import Decimal

import attrs
import pytest
from test_fast_paths import assert_same, slow_bill

import bedrock_rules
from bedrock_rules.fields import Instant, read_instant
from bedrock_rules.interpreter import Batch, Pricer, window_bounds
from bedrock_rules.totals import dump

SEED = 20261202
BUNDLED = bedrock_rules.load()

# Dated rules: versions of one table, a model offered from a day, a region closed for a
# month, a free month, a choice with a default, an optional count, and a few days priced
# per 3 (not a finite rate per unit: the slow way, always).
DATED = """\
currency USD
region r1
region r2
provider p
  model a "Model A"
  model b "Model B"
end
kind text
  model: model
  region: region
  mode: on_demand | batch = on_demand
  input_tokens: count = 0 unit tokens
  output_tokens: count = 0 unit tokens
  cache_tokens: count optional unit tokens
end
offer a from 2025-09-29
refuse text when region = r2 from 2026-01-01 until 2026-01-31: "r2 is closed in January"
free text when model = b from 2025-06-01 until 2025-06-30: "Free in June"
prices text in any
| model | mode      | input_tokens per 1000 | output_tokens per 1000 |
|-------|-----------|-----------------------|------------------------|
| a, b  | on_demand | 0.5                   | 1.5                    |
| a, b  | batch     | 0.25                  | 0.75                   |
prices text in any from 2025-12-01
| model | mode      | input_tokens per 1000 | output_tokens per 1000 | cache_tokens per 1000 |
|-------|-----------|-----------------------|------------------------|-----------------------|
| a     | on_demand | 0.4                   | 1.2                    | 0.01                  |
prices text in r1 when model = b and mode = batch from 2025-06-15 until 2025-06-20
| cache_tokens per 3 |
|--------------------|
| 0.01               |
"""

# Values that are not what a field takes, or take another way through the checks.
ODD_VALUES = [-1, 10**41, 10**4000, "12", True, 1.5, None, [], {}, "mars-east-1", 7]


PRICED_AT = "2026-10-01T08:00:00Z"  # a day of the bundled list's current prices


def priced_pairs() -> list[tuple[str, str]]:
    """The (model ID, region) pairs the bundled rules price text in on PRICED_AT."""
    program = BUNDLED.program
    pairs = []
    for info in program.models.values():
        for region in sorted(program.regions):
            pair = (info.aliases[0] if info.aliases else info.name, region)
            try:
                item = {"kind": "text", "model": pair[0], "region": region, "at": PRICED_AT, "input_tokens": 1, "output_tokens": 1}
                BUNDLED.evaluate({"usage": [item]})
            except bedrock_rules.UsageError:
                continue
            pairs.append(pair)
    return sorted(pairs)


def bundled_items(rng: random.Random, count: int) -> list[dict]:
    """Text items over the bundled models and regions (mostly pairs the rules price); one in
    four changed in one field."""
    program = BUNDLED.program
    pairs = priced_pairs()
    models = sorted({model for model, _ in pairs})
    regions = sorted(program.regions)
    fields = [spec.name for spec in program.kinds["text"].fields]
    items = []
    for _ in range(count):
        model, region = rng.choice(pairs) if rng.random() < 0.9 else (rng.choice(models), rng.choice(regions))
        item: dict = {"kind": "text", "model": model, "region": region}
        for name, given in (("input_tokens", 0.9), ("output_tokens", 0.9), ("cache_read_tokens", 0.1), ("cache_write_tokens", 0.1)):
            if rng.random() < given:  # cache tokens: refused where a model has no cache price
                item[name] = rng.choice([0, 1, rng.randrange(10**6), rng.randrange(10**30)])
        if rng.random() < 0.2:
            item["mode"] = rng.choice(["on_demand", "batch", "flex"])
        if rng.random() < 0.2:
            item["name"] = rng.choice(["a", "", "résumé"])
        # The bundled list is dated: most items carry a day of the seed's list or the current one.
        if rng.random() < 0.9:
            item["at"] = rng.choice([PRICED_AT, "2026-10-01", "2026-11-30T23:59:59+02:00", "2026-11-30T23:59:59Z", "2024-07-15"])
        elif rng.random() < 0.5:
            item["at"] = rng.choice(["2025-02-30", "yesterday"])
        if rng.random() < 0.25:
            item[rng.choice([*fields, "name", "at", "kind", "surprise"])] = rng.choice(ODD_VALUES)
        items.append(item)
    return items


def dated_items(rng: random.Random, count: int, edges: list[datetime.date]) -> list[dict]:
    """Items under DATED, dated on each side of every window's edge and far from them."""
    days = [edge + datetime.timedelta(days=delta) for edge in edges for delta in (-1, 0, 1)]
    days += [datetime.date(2020, 1, 1), datetime.date(2030, 1, 1)]
    items = []
    for _ in range(count):
        day = rng.choice(days)
        at = rng.choice([day.isoformat(), f"{day.isoformat()}T23:30:00-02:00", f"{day.isoformat()}T00:10:00Z"])
        item: dict = {"kind": "text", "model": rng.choice("ab"), "region": rng.choice(["r1", "r2"]), "at": at}
        for name, given in (("input_tokens", 0.9), ("output_tokens", 0.9), ("cache_tokens", 0.15)):
            if rng.random() < given:
                item[name] = rng.choice([0, 1, 7, rng.randrange(10**6)])
        if rng.random() < 0.3:
            item["mode"] = rng.choice(["on_demand", "batch"])
        if rng.random() < 0.05:
            del item["at"]
        if rng.random() < 0.2:
            key = rng.choice(["model", "region", "mode", "input_tokens", "cache_tokens", "name", "at", "other"])
            item[key] = rng.choice([*ODD_VALUES, "2025-13-01", "2025-12-01T10:00:00"])
        items.append(item)
    return items


def check_both_ways(rules: bedrock_rules.Ruleset, items: list[dict], rng: random.Random) -> int:
    """Each item alone, then a few at a time, priced both ways; how many alone went the quick way."""
    quick = 0
    pricer = rules._shared_pricer()
    for item in items:
        assert_same(rules, {"usage": [item]})
        quick += pricer.bill([item]) is not None
    for _ in range(len(items) // 4):
        assert_same(rules, {"usage": rng.sample(items, rng.randrange(2, 5))})
    return quick


def test_bundled_items_are_billed_the_same_both_ways():
    rng = random.Random(SEED)
    items = bundled_items(rng, 1500)
    quick = check_both_ways(BUNDLED, items, rng)
    # The comparison is worth something only if many items take the quick way (and some do not).
    assert len(items) / 4 < quick < len(items)


@pytest.fixture(scope="module")
def dated(tmp_path_factory) -> bedrock_rules.Ruleset:
    folder = tmp_path_factory.mktemp("dated")
    (folder / "main.rules").write_text(DATED, encoding="utf-8")
    return bedrock_rules.load(folder)


def test_dated_items_are_billed_the_same_both_ways(dated):
    rng = random.Random(SEED)
    edges = window_bounds(dated.program)
    assert len(edges) == 8  # where windows open, and the days after they close
    items = dated_items(rng, 1500, edges)
    quick = check_both_ways(dated, items, rng)
    assert len(items) / 4 < quick < len(items)


def test_a_dated_item_takes_the_quick_way_and_its_day_decides(dated):
    pricer = dated._shared_pricer()
    item = {"kind": "text", "model": "a", "region": "r1", "input_tokens": 1000, "output_tokens": 1000}
    before = pricer.bill([{**item, "at": "2025-11-30T23:59:59Z"}])
    after = pricer.bill([{**item, "at": "2025-12-01T01:00:00+02:00"}])  # 2025-11-30 in UTC
    later = pricer.bill([{**item, "at": "2025-12-01"}])
    assert before is not None and after is not None and later is not None
    assert [str(bill.total) for bill in (before, after, later)] == ["2.0", "2.0", "1.6"]
    assert later.items[0].charges[0].valid is not None and before.items[0].charges[0].valid is None
    assert pricer.bill([item]) is None  # no date under dated rules: the slow way refuses it


def test_a_time_in_utc_reads_as_the_same_time_at_zone_plus_zero():
    """`Z` is read without a conversion (the quick way's dates are mostly UTC log times);
    `+00:00` goes through it: the same day and the same text, however the time is written."""
    rng = random.Random(SEED)
    for _ in range(3000):
        year = rng.choice([1000, 1999, 2024, 2025, 9999, rng.randrange(1000, 10000)])
        text = f"{year:04d}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        text += rng.choice(["", f":{rng.randrange(60):02d}", f":{rng.randrange(60):02d}.{rng.randrange(10**6)}"])
        fast, converted = read_instant(text + "Z"), read_instant(text + "+00:00")
        assert isinstance(fast, Instant) and isinstance(converted, Instant)
        assert (fast.day, fast.text) == (converted.day, converted.text)
    for wrong in ("2025-02-29T10:00Z", "2025-01-01T24:00Z", "2025-01-01T10:60Z", "0999-01-01T10:00:00Z"):
        assert str(read_instant(wrong)) == str(read_instant(wrong[:-1] + "+00:00")).replace("+00:00", "Z")


def test_a_quick_bill_is_frozen_equal_hashable_and_pickles_like_one_attrs_makes():
    item = {
        "kind": "text", "model": "anthropic.claude-v2:1", "region": "us-west-2", "input_tokens": 11000, "output_tokens": 40,
        "at": "2024-07-15",
    }
    quick = BUNDLED._shared_pricer().one(item)
    assert quick is not None
    slow = slow_bill(BUNDLED, {"usage": [item]})
    assert quick == slow and hash(quick) == hash(slow) and repr(quick) == repr(slow)
    assert type(quick) is type(slow) and type(quick.items[0].charges[0]) is type(slow.items[0].charges[0])
    assert pickle.loads(pickle.dumps(quick)) == slow
    assert copy.deepcopy(quick) == slow
    assert weakref.ref(quick)() is quick
    for value, field in ((quick, "total"), (quick.items[0], "subtotal"), (quick.items[0].charges[0], "amount")):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(value, field, 0)
    assert attrs.evolve(quick.items[0].charges[0], note="n").note == "n"


def _totals_item_by_item(rules: bedrock_rules.Ruleset, items: list[dict]) -> str:
    accumulator = rules.accumulator()
    for position, item in enumerate(items, 1):
        accumulator.add_item(item, position)  # no batches: each item checked and priced alone
    return dump(accumulator.result())


@pytest.mark.parametrize("which", ["bundled", "dated"])
def test_totals_of_dated_items_are_summed_in_batches_as_item_by_item(which, tmp_path, monkeypatch):
    """`Ruleset.totals` sums dated items per deciding fields and span of days between
    window edges (a batch), and prices each batch once: the same totals, reasons and
    places as pricing every item alone, on items of every kind the generators make (under
    DATED with its cache count given a default: a kind with an optional count never batches)."""
    rng = random.Random(SEED + 1)
    if which == "bundled":
        rules, items = BUNDLED, bundled_items(rng, 3000)
    else:
        (tmp_path / "main.rules").write_text(
            DATED.replace("cache_tokens: count optional unit tokens", "cache_tokens: count = 0 unit tokens"), encoding="utf-8"
        )
        rules = bedrock_rules.load(tmp_path)
        items = dated_items(rng, 3000, window_bounds(rules.program))
    summed = []
    original = Batch.sums

    def spy(self, rows):
        found = original(self, rows)
        summed.append(len(rows) if found is not None else 0)
        return found

    monkeypatch.setattr(Batch, "sums", spy)
    try:
        batched = dump(rules.totals(items))
    except bedrock_rules.UsageError as error:  # a total past exact arithmetic: both ways refuse it alike
        batched = str(error)
    monkeypatch.undo()
    try:
        alone = _totals_item_by_item(rules, items)
    except bedrock_rules.UsageError as error:
        alone = str(error)
    assert batched == alone
    # Any unusual item sends its whole batch item by item; the usual ones alone are mostly summed.
    assert sum(summed) > 0
    usual = [item for item in items if _usual(item)]
    summed.clear()
    monkeypatch.setattr(Batch, "sums", spy)
    assert dump(rules.totals(usual)) == _totals_item_by_item(rules, usual)
    assert len(usual) > 500 and sum(summed) > len(usual) / 2


def _usual(item: dict) -> bool:
    """An item with no odd value: a day's text, a model and region, counts of tokens, no cache count."""
    return (
        set(item) <= {"kind", "model", "region", "mode", "at", "input_tokens", "output_tokens"}
        and type(item.get("at")) is str and isinstance(read_instant(item["at"]), Instant)
        and all(type(item.get(name, 0)) is int and 0 <= item.get(name, 0) < 10**18 for name in ("input_tokens", "output_tokens"))
        and item.get("mode", "on_demand") in ("on_demand", "batch")
        and type(item["model"]) is str and type(item["region"]) is str
    )


def test_a_dated_plan_is_worked_out_once_per_deciding_values_and_span_of_days(monkeypatch):
    """Totals of the same dated items again (a program pricing stream after stream) work no
    plan out again: plans are kept per deciding values and span of days, as one-item bills are."""
    rules = bedrock_rules.load()
    items = [
        {"kind": "text", "model": model, "region": region, "at": at, "input_tokens": 10, "output_tokens": 2}
        for model, region in priced_pairs()[:20] for at in (PRICED_AT, "2026-10-02", "2024-07-15")
    ]
    worked = []
    original = Pricer._plan

    def spy(self, kind_name, values):
        worked.append(kind_name)
        return original(self, kind_name, values)

    monkeypatch.setattr(Pricer, "_plan", spy)
    first = dump(rules.totals(items))
    count = len(worked)
    assert dump(rules.totals(items)) == first
    assert len(worked) == count  # none worked out again


def test_totals_of_items_dated_by_date_objects_price_each_at_its_own_day():
    """A program may date items with `datetime.date` rather than text: such items are not
    batched by the span of days their text falls in; each is priced at its own day."""
    rules = bedrock_rules.load()
    base = {"kind": "text", "model": "claude-3.5-sonnet", "region": "us-east-1", "mode": "batch", "input_tokens": 10**6}
    days = [datetime.date(2024, 7, 15), datetime.date(2026, 3, 15)] * 30  # batch at the on-demand rate, then at half of it
    items = [{**base, "at": day} for day in days]
    expected = sum(rules.evaluate({"usage": [item]}).total for item in items)
    assert rules.totals(items).total == expected == 30 * (3 + Decimal("1.5"))
