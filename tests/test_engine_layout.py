"""How the engine lays out the trace: rule by rule, constant points filled when first read."""

from __future__ import annotations

import pickle

import numpy as np

import fairalloc as fa
from fairalloc._numeric import micro_scalar

POLICY = """
policy: {id: layout, version: "1", title: Layout}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 9}
  alone: {type: bool}
rules:
  eligibility: [{id: some-need, when: "need >= 1"}]
  priority:
    - {id: alone, when: alone, points: 20.3333333}
    - {id: need, points: "need / 3"}
    - {id: never, when: "need > 100", points: -7}
ranking: {tie_break: [{lottery: {seed: layout}}]}
"""


def _residents(n: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(3)
    return [
        {"id": f"x{i}", "need": int(rng.integers(0, 10)), "alone": bool(rng.random() < 0.4)}
        for i in range(n)
    ]


def test_each_rule_is_one_contiguous_column_and_constant_points_are_exact() -> None:
    policy = fa.parse_policy(POLICY)
    ev = fa.evaluate(policy, _residents(500), chunk_size=64)
    for arr in (ev.eligibility, ev.fired, ev.tie_values):
        assert arr.flags.f_contiguous
    score = ev.score_micro.copy()  # computed before any points are read
    points = ev.points
    assert points.flags.f_contiguous
    assert points[:, 0].flags.c_contiguous
    c_alone, c_never = 0, 2
    assert np.array_equal(points[:, c_alone], ev.fired[:, 0] * micro_scalar(20.3333333))
    assert not points[:, c_never].any()
    assert np.array_equal(points.sum(axis=1), score)
    assert ev.terms.shape == (500, 1)
    assert np.array_equal(ev.terms[:, 0], score)


def test_an_evaluation_pickles_with_its_points() -> None:
    ev = fa.evaluate(fa.parse_policy(POLICY), _residents(50))
    back = pickle.loads(pickle.dumps(ev))
    assert np.array_equal(back.points, ev.points)
    assert np.array_equal(back.score_micro, ev.score_micro)
    assert list(back.ranking.order) == list(ev.ranking.order)


def test_a_tie_break_on_a_column_is_that_column() -> None:
    policy = fa.parse_policy(
        POLICY.replace(
            "ranking: {tie_break: [{lottery: {seed: layout}}]}",
            "ranking: {tie_break: [{by: need, order: asc}, {by: need * 2}, {lottery: {seed: s}}]}",
        )
    )
    residents = _residents(300)
    ev = fa.evaluate(policy, residents, chunk_size=64)
    need = np.array([r["need"] for r in residents])
    assert ev.tie_key(0).dtype == np.int64  # sorted as the integers they are
    assert np.array_equal(ev.tie_key(0), need)
    values = ev.tie_values  # filled when read
    assert values.dtype == np.float64
    assert np.array_equal(values[:, 0], need.astype(np.float64))
    assert np.array_equal(values[:, 1], need * 2.0)
    back = pickle.loads(pickle.dumps(ev))
    assert np.array_equal(back.tie_values, values)
