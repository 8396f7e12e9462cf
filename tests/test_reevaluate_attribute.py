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
