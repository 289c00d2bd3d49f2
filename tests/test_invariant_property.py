"""The engine's invariant, over generated rule sets and usage: no nonzero billable quantity disappears from a bill.

Each generated ruleset has one kind with billable quantities (counts with a unit, and a
derived quantity whose input is therefore not billable), a plain number without a unit,
and per model at most one table charging some of the quantities with a rate, `free`, a
reason or `-`. The expectation is worked out here from the generated table alone, not
from the engine: a nonzero billable quantity is charged (its amount exact), freed, or the
item is refused naming it and its amount. `evaluate` and `totals` (whose repeated items
take the batched path) must both say so.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bedrock_rules
from bedrock_rules.errors import UsageError

MODELS = ("a", "b", "c")
REGIONS = ("r1", "r2")
BILLABLE = ("q0", "q1", "q2", "d")  # d = q3 * 2: q3 is its input, not billable itself
CELLS = st.one_of(
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(50), places=3).map(lambda r: ("rate", r)),
    st.just(("free", None)),
    st.just(("reason", None)),
    st.just(("-", None)),
)


@st.composite
def rulesets(draw):
    """{model: (regions or None for `in any`, {quantity: cell})} for the models that have a table."""
    tables = {}
    for model in MODELS:
        if not draw(st.booleans()):
            continue
        regions = draw(st.sampled_from([("r1",), ("r2",), ("r1", "r2")]))
        columns = draw(st.lists(st.sampled_from(BILLABLE), min_size=1, max_size=4, unique=True))
        tables[model] = (regions, {q: draw(CELLS) for q in columns})
    return tables


def rule_text(tables) -> str:
    lines = ["currency USD", *(f"region {r}" for r in REGIONS), "provider p"]
    lines += [f"  model {m}" for m in MODELS] + ["end", "kind job", "  model: model", "  region: region"]
    lines += [f"  {q}: count = 0 unit things" for q in ("q0", "q1", "q2", "q3")]
    lines += ["  size: count = 0", "  d = q3 * 2 unit things", "end"]
    for model, (regions, cells) in tables.items():
        lines.append(f"prices job in {', '.join(regions)}")
        lines.append("| model | " + " | ".join(f"{q} per 1" for q in cells) + " |")
        lines.append("|---" * (len(cells) + 1) + "|")
        shown = {"rate": lambda r: str(r), "free": lambda r: "free", "reason": lambda r: '"not sold"', "-": lambda r: "-"}
        lines.append(f"| {model} | " + " | ".join(shown[kind](rate) for kind, rate in cells.values()) + " |")
    return "\n".join(lines) + "\n"


ITEMS = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS),
    "region": st.sampled_from(REGIONS),
    **{q: st.one_of(st.just(0), st.integers(1, 10**6)) for q in ("q0", "q1", "q2", "q3", "size")},
})


def expected(tables, item):
    """("priced", total) or ("refused", quantity or None, amount) from the generated table alone."""
    values = {**item, "d": 2 * item["q3"]}
    table = tables.get(item["model"])
    if table is None or item["region"] not in table[0]:
        return ("refused", None, None)
    regions, cells = table
    total = Decimal(0)
    for q in BILLABLE:
        if values[q] == 0:
            continue
        kind, rate = cells.get(q, (None, None))
        if kind not in ("rate", "free"):
            return ("refused", q, values[q])
        total += values[q] * rate if kind == "rate" else 0
    return ("priced", total)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tables=rulesets(), item=ITEMS)
def test_no_nonzero_billable_quantity_disappears(tables, item, tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("rules")
    (folder / "main.rules").write_text(rule_text(tables), encoding="utf-8")
    rules = bedrock_rules.load(folder)
    raw = {"kind": "job", **item}
    want = expected(tables, item)
    values = {**item, "d": 2 * item["q3"]}

    try:
        bill = rules.evaluate({"usage": [raw]})
    except UsageError as error:
        error_problems = error.problems
        assert want[0] == "refused", f"refused, but every nonzero quantity is charged or free: {error}"
        if want[1] is not None:
            # Some nonzero quantity has no rate here: the refusal names such quantities and the
            # rule; one no rule mentions also its amount (a reason cell gives its own reason).
            named = [p for p in error.problems if p.field in BILLABLE]
            assert named, error
            assert all(values[p.field] != 0 for p in named), error
            for p in named:
                assert "main.rules:" in p.message, p.message
                if p.code == "BU202":
                    assert f"no rule prices {p.field} ({values[p.field]})" in p.message
        bill = None
    else:
        assert want[0] == "priced", f"priced {bill.total}, but {want[1]} ({want[2]}) has no rate"
        assert bill.total == want[1]
        charged = {c.what: c for c in bill.items[0].charges}
        for q in BILLABLE:
            if values[q] != 0:
                assert q in charged and charged[q].quantity == values[q]

    # The totals path, batched: the same item many times, and once more with a name.
    totals = rules.totals([raw] * 40 + [{**raw, "name": "last"}])
    if bill is None:
        assert totals.priced == 0 and sum(u.count for u in totals.unpriced) == 41
        assert {u.reason for u in totals.unpriced} == {"; ".join(
            f"field {p.field}: {p.message}" if p.field else p.message for p in error_problems
        )}
    else:
        assert (totals.priced, totals.unpriced) == (41, ())
        assert totals.total == 41 * bill.total
