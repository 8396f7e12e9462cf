"""Re-evaluating only the parts that read a changed attribute equals a full evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fairalloc as fa
from fairalloc._engine import TRACE_ARRAYS, evaluate_compiled, reevaluate_attribute

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*/policy.yaml"))


def _values(attr: fa.policy._model.Attribute, column: np.ndarray) -> list[object]:
    if attr.type in ("category", "ordinal"):
        return list(range(len(attr.levels or ())))
    if attr.type == "bool":
        return [False, True]
    if attr.values is not None:
        return list(attr.values)
    if attr.type == "date":
        return [column.min(), column.max()]
    lo = attr.min if attr.min is not None else column.min()
    hi = attr.max if attr.max is not None else column.max()
    return [lo, (lo + hi) / 2 if attr.type == "float" else int((lo + hi) // 2), hi]


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_attribute_and_value_equals_a_full_evaluation(path: Path) -> None:
    policy = fa.load_policy(path, audit=True)
    base = fa.evaluate(policy, path.parent / "residents.csv")
    pop = base.population
    assert pop is not None
    cp = base.policy
    checked = 0
    for name, attr in policy.attributes.items():
        if name == policy.id_attribute or name not in pop.columns:
            continue
        for value in _values(attr, pop.columns[name]):
            column = np.full(pop.n, value, dtype=pop.columns[name].dtype)
            changed = pop.replace(name, column)
            try:
                full = evaluate_compiled(cp, changed)
            except fa.errors.EvaluationError:
                with pytest.raises(fa.errors.EvaluationError):
                    reevaluate_attribute(base, changed, name)
                continue
            quick = reevaluate_attribute(base, changed, name)
            for array in TRACE_ARRAYS:
                a, b = getattr(full, array), getattr(quick, array)
                assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), (name, value, array)
            assert np.array_equal(full.eligible, quick.eligible)
            assert np.array_equal(full.score_micro, quick.score_micro)
            checked += 1
    assert checked > 0


def test_a_change_no_table_reads_keeps_the_tables_rows() -> None:
    # The elderly-care example grades ADL by a decision table; age is read by a rule alone, so
    # only eligibility runs again, and the table's rows are the base's own (not recomputed).
    path = ROOT / "examples" / "elderly-care" / "policy.yaml"
    policy = fa.load_policy(path, audit=True)
    base = fa.evaluate(policy, path.parent / "residents.csv")
    assert base.policy.tables
    pop = base.population
    assert pop is not None
    changed = pop.replace("age", np.full(pop.n, 90, dtype=pop.columns["age"].dtype))
    quick = reevaluate_attribute(base, changed, "age")
    assert np.shares_memory(quick.table_rows, base.table_rows)
    assert np.shares_memory(quick.score_micro, base.score_micro)
    assert not np.shares_memory(quick.eligibility, base.eligibility)
    full = evaluate_compiled(base.policy, changed)
    assert np.array_equal(full.eligible, quick.eligible)
    # A change that reaches the table (ADL score, read through `adl_grade`) is evaluated whole.
    adl = pop.replace("adl_score", np.full(pop.n, 40, dtype=pop.columns["adl_score"].dtype))
    again = reevaluate_attribute(base, adl, "adl_score")
    assert not np.shares_memory(again.table_rows, base.table_rows)
    assert np.array_equal(again.table_rows, evaluate_compiled(base.policy, adl).table_rows)
