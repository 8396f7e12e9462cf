"""The packed sort key and the cut-off-only allocation agree with a plain lexicographic ranking.

Ranking packs the score and whole-number tie-break values into one uint64 per resident and,
when only the served are needed, looks at the residents around the cut-off alone (drawing the
lottery for those tied there). These tests hold both to the plain definition: sort by every key,
then by the lottery key where tied, then by id for display.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc._ranking import _by_group_then_key, _pack, lottery_key
from tests import oracle

SEED = "2026-packed-key"


def _policy(*, lottery: bool, tie: str, order: str = "desc") -> fa.Policy:
    chain = [f"{{by: {tie}, order: {order}}}"]
    if lottery:
        chain.append(f"{{lottery: {{seed: {SEED}}}}}")
    return fa.parse_policy(
        f"""
policy: {{id: packed, version: "1", title: Packed keys}}
attributes:
  id: {{type: str, role: id}}
  need: {{type: int, min: 0, max: 5}}
  days: {{type: int, min: -3, max: 3}}
  share: {{type: float, min: -2, max: 2}}
rules:
  priority:
    - {{id: need-points, points: "need * 2"}}
    - {{id: third, when: "need >= 3", points: "need / 3"}}
ranking: {{tie_break: [{", ".join(chain)}]}}
allocation: {{capacity: 1}}
"""
    )


residents_st = st.lists(
    st.fixed_dictionaries(
        {
            "need": st.integers(0, 5),
            "days": st.integers(-3, 3),
            "share": st.sampled_from([-2.0, -0.5, 0.0, 0.25, 1.0, 2.0]),
        }
    ),
    min_size=0,
    max_size=40,
)


def _plain_order(ev: fa.Evaluation) -> list[str]:
    """Eligible ids by every key, then the lottery key (if any), then id."""
    cp = ev.policy
    seed = cp.lottery_seed
    rows = [int(r) for r in np.flatnonzero(ev.eligible)]

    def key(r: int) -> tuple[Any, ...]:
        parts: list[Any] = [-int(ev.score_micro[r])]
        for j, tb in enumerate(cp._tie_breaks):
            if tb.kernel is not None:
                v = float(ev.tie_values[r, j])
                parts.append(-v if tb.descending else v)
        rid = str(ev.ids[r])
        parts.append(lottery_key(seed, rid) if seed else 0)
        parts.append(rid)
        return tuple(parts)

    return [str(ev.ids[r]) for r in sorted(rows, key=key)]


@given(
    records=residents_st,
    lottery=st.booleans(),
    tie=st.sampled_from(["days", "share"]),
    order=st.sampled_from(["asc", "desc"]),
    data=st.data(),
)
def test_ranking_and_cutoff_agree_with_a_plain_sort(
    records: list[dict[str, Any]], lottery: bool, tie: str, order: str, data: st.DataObject
) -> None:
    for i, r in enumerate(records):
        r["id"] = f"r{i:03d}"
    policy = _policy(lottery=lottery, tie=tie, order=order)
    ev = fa.evaluate(policy, records)
    ids = [r["id"] for r in records]
    # The oracle's ranks, computed one resident at a time.
    expected = [oracle.evaluate_one(policy, r) for r in records]
    ranks = oracle.rank_all(policy, ids, expected)
    assert {ids[i]: int(ev.ranking.rank[i]) for i in range(len(ids)) if ev.eligible[i]} == ranks
    assert [str(i) for i in ev.ranking.ids] == _plain_order(ev)

    k = data.draw(st.integers(0, len(records) + 1), label="capacity")
    fresh = fa.evaluate(policy, records)
    served = fresh.ranking.served(k)
    if fresh.ranking._sort_key().packed is not None:
        assert fresh.ranking._full is None  # the cut-off alone was looked at
    order_rows = ev.ranking.order
    if served is None:
        # Only without a lottery, and only when a tie straddles the cut-off.
        assert not lottery
        assert 0 < k < len(order_rows)
        assert ev.ranking.rank[order_rows[k]] == ev.ranking.rank[order_rows[k - 1]]
    else:
        note(f"k={k} served={sorted(fresh.ids[served])}")
        assert sorted(str(i) for i in fresh.ids[served]) == sorted(
            str(i) for i in ev.ids[order_rows[:k]]
        )


@pytest.mark.parametrize("lottery", [True, False])
def test_allocation_serves_the_top_of_the_whole_order(lottery: bool) -> None:
    rng = np.random.default_rng(7)
    records = [
        {
            "id": f"p{i}",
            "need": int(rng.integers(0, 6)),
            "days": int(rng.integers(-3, 4)),
            "share": 0.0,
        }
        for i in range(300)
    ]
    policy = _policy(lottery=lottery, tie="days")
    ev = fa.evaluate(policy, records)
    for capacity in (0, 1, 17, 150, 299, 300, 400):
        whole = fa.evaluate(policy, records)
        undecided = whole.ranking.served(capacity) is None
        if undecided:  # an undecided tie at the cut-off: refused, with or without the fast path
            assert not lottery
            with pytest.raises(fa.errors.AllocationError, match="tied at the cut-off"):
                fa.allocate(ev, capacity=capacity)
            continue
        alloc = fa.allocate(ev, capacity=capacity)
        top = whole.ranking.order[:capacity]
        assert set(np.flatnonzero(alloc.served)) == set(top.tolist())
        assert list(alloc.order) == list(whole.ranking.order)


def test_lottery_keys_are_drawn_only_for_the_tie_at_the_cutoff() -> None:
    # Everyone has the same score and tie-break value: one tie group of 200.
    records = [{"id": f"q{i}", "need": 1, "days": 0, "share": 0.0} for i in range(200)]
    policy = _policy(lottery=True, tie="days")
    ev = fa.evaluate(policy, records)
    served = ev.ranking.served(10)
    assert served is not None
    assert ev.ranking._full is None
    keys = sorted((lottery_key(SEED, f"q{i}"), f"q{i}") for i in range(200))
    assert sorted(str(i) for i in ev.ids[served]) == sorted(rid for _, rid in keys[:10])
    # With a score gap, a cut-off outside every tie draws nothing.
    records = [{"id": f"s{i}", "need": i % 6, "days": 0, "share": 0.0} for i in range(12)]
    ev = fa.evaluate(policy, records)
    # need 5 twice (s5, s11): the best two are decided before the lottery.
    assert sorted(str(i) for i in ev.ids[ev.ranking.served(2)]) == ["s11", "s5"]


@given(
    columns=st.lists(
        st.tuples(st.lists(st.integers(-(2**20), 2**20), min_size=6, max_size=6), st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_packed_keys_order_as_the_keys_do(columns: list[tuple[list[int], bool]]) -> None:
    cols = [(np.array(v, dtype=np.int64), desc) for v, desc in columns]
    idx = np.arange(6)
    packed = _pack(cols, idx)
    assert packed is not None  # at most 3 x 22 bits... or fewer: ranges are checked
    plain = [tuple((-int(c[i]) if d else int(c[i])) for c, d in cols) for i in range(6)]
    for a in range(6):
        for b in range(6):
            assert (packed[a] < packed[b]) == (plain[a] < plain[b])
            assert (packed[a] == packed[b]) == (plain[a] == plain[b])


def test_keys_that_do_not_fit_are_sorted_one_by_one() -> None:
    idx = np.arange(3)
    wide = np.array([-(2**62), 0, 2**62], dtype=np.int64)
    assert _pack([(wide, True), (wide, False)], idx) is None  # 63 + 63 bits
    assert _pack([(np.array([0.5, 1.0, 2.0]), False)], idx) is None  # not whole numbers
    got = _pack(
        [(np.array([3.0, -1.0, 3.0]), True), (np.array([-(2**63), 0, 2**63 - 1]), False)], idx
    )
    assert got is None  # 2 + 64 bits
    one = _pack([(np.array([2**63 - 1, -(2**63), 0], dtype=np.int64), False)], idx)
    assert one is not None
    assert list(np.argsort(one)) == [1, 2, 0]


@given(
    sizes=st.lists(st.integers(1, 5), min_size=0, max_size=30),
    keys=st.lists(st.integers(0, 2**64 - 1), min_size=150, max_size=150, unique=True),
)
def test_groups_then_keys_sort_as_a_lexicographic_sort(sizes: list[int], keys: list[int]) -> None:
    group = np.repeat(np.arange(1, len(sizes) + 1, dtype=np.int64) * 3, sizes)
    key = np.array(keys[: len(group)], dtype=np.uint64)
    got = _by_group_then_key(group, key)
    assert list(got) == list(np.lexsort((key, group)))


def test_lottery_keys_drawn_ahead_in_a_thread_are_the_keys_drawn_when_asked() -> None:
    # An audit draws every key in one thread while its allocation asks for some in another.
    import threading

    from fairalloc._ranking import LotteryKeys, lottery_keys

    ids = np.array([f"R{i:05d}" for i in range(50_000)], dtype=object)
    shared = LotteryKeys(ids)
    ahead = threading.Thread(target=shared.draw_all, args=("seed-1",), kwargs={"chunk": 997})
    ahead.start()
    rows = np.random.default_rng(5).permutation(len(ids))[:20_000].astype(np.intp)
    asked = shared.of("seed-1", rows)
    ahead.join()
    assert shared.known.all()
    assert np.array_equal(asked, lottery_keys("seed-1", ids[rows]))
    assert np.array_equal(shared.keys, lottery_keys("seed-1", ids))
