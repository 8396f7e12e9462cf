"""Allocation with capacity: priority, lotteries, reserves; properties and a reference."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from tests.strategies import residents

BASE: dict[str, Any] = {
    "policy": {"id": "alloc", "version": "1", "title": "A"},
    "attributes": {
        "id": {"type": "str", "role": "id"},
        "need": {"type": "int", "min": 0, "max": 5},
        "poor": {"type": "bool"},
        "carer": {"type": "bool"},
        "district": {"type": "category", "levels": ["n", "s"]},
        "tries": {"type": "int", "min": 0, "max": 3},
    },
    "rules": {
        "eligibility": [{"id": "some-need", "when": "need >= 1"}],
        "priority": [{"id": "need", "points": "need"}],
    },
    "ranking": {"tie_break": [{"lottery": {"seed": "published"}}]},
}


def make(allocation: dict[str, Any]) -> fa.Policy:
    doc = {**BASE, "allocation": allocation}
    return fa.Policy.model_validate(doc)


RESERVES = [
    {"id": "poor", "eligible": "poor", "count": 2},
    {"id": "carer", "eligible": "carer", "count": 1},
    {"id": "south", "eligible": "district == s", "share": 0.2},
]


def key(seed: str, rid: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(rid.encode(), key=seed.encode(), digest_size=8).digest(), "big"
    )


def reference(
    records: list[dict[str, Any]],
    capacity: int,
    reserves: list[dict[str, Any]],
    precedence: list[str] | None,
    unused: str,
) -> dict[str, str]:
    """Plain-Python precedence processing of reserves, for the base policy above."""
    eligible = [r for r in records if r["need"] >= 1]
    eligible.sort(key=lambda r: (-r["need"], key("published", r["id"])))
    holds = {
        "poor": lambda r: r["poor"],
        "carer": lambda r: r["carer"],
        "south": lambda r: r["district"] == "s",
        "open": lambda r: True,
    }
    sizes = {}
    for res in reserves:
        sizes[res["id"]] = res.get("count", math.floor(res.get("share", 0) * capacity + 1e-9))
    sizes["open"] = capacity - sum(sizes.values())
    served: dict[str, str] = {}
    left = dict(sizes)
    for cat in precedence or [*[r["id"] for r in reserves], "open"]:
        for r in eligible:
            if left[cat] == 0:
                break
            if r["id"] not in served and holds[cat](r):
                served[r["id"]] = cat
                left[cat] -= 1
    spare = sum(v for k, v in left.items() if k != "open")
    if unused == "open":
        for r in eligible:
            if spare == 0:
                break
            if r["id"] not in served:
                served[r["id"]] = "open"
                spare -= 1
    return served


def outcome(a: fa.Allocation) -> dict[str, str]:
    return {str(a.evaluation.ids[i]): a.categories[c] for i, c in enumerate(a.category) if c >= 0}


@given(
    data=st.data(),
    capacity=st.integers(0, 12),
    reserves=st.lists(st.sampled_from(RESERVES), unique_by=lambda r: r["id"], max_size=3),
    unused=st.sampled_from(["open", "lapse"]),
)
def test_precedence_reserves_match_reference_and_properties(
    data: st.DataObject, capacity: int, reserves: list[dict[str, Any]], unused: str
) -> None:
    if (
        sum(r.get("count", 0) for r in reserves)
        + sum(math.floor(r.get("share", 0) * capacity + 1e-9) for r in reserves)
        > capacity
    ):
        reserves = []
    ids = [r["id"] for r in reserves]
    precedence = data.draw(st.one_of(st.none(), st.permutations([*ids, "open"]).map(list)))
    spec: dict[str, Any] = {"capacity": capacity, "reserves": reserves, "unused_reserved": unused}
    if precedence is not None:
        spec["precedence"] = precedence
    policy = make(spec)
    records = data.draw(residents(policy, max_size=20))
    a = fa.allocate(policy, records)
    got = outcome(a)
    assert got == reference(records, capacity, reserves, precedence, unused)
    _check_properties(a, records, unused)
    _check_respects_priorities(a)


def _check_properties(a: fa.Allocation, records: list[dict[str, Any]], unused: str) -> None:
    ev = a.evaluation
    used = a.used()
    # Capacity, per category and in all; nobody twice (one category per row by construction).
    assert all(u <= s for u, s in zip(used[:-1], a.sizes[:-1], strict=True))
    assert used[-1] <= a.sizes[-1] + a.reverted
    assert a.reverted == 0 or unused == "open"
    assert a.n_served <= a.capacity
    # Eligibility compliance.
    assert not (a.served & ~ev.eligible).any()
    for c in range(len(a.categories) - 1):
        assert ev.reserve_eligible[a.category == c, c].all()
    # Non-wastefulness.
    waiting = ev.eligible & ~a.served
    if waiting.any():
        # Every unit is given but lapsed reserved ones, and those only lapse when nobody
        # eligible for them waits.
        assert a.n_served == a.capacity - int(a.lapsed.sum())
        assert a.lapsed.sum() == 0 or unused == "lapse"
        for c in range(len(a.categories) - 1):
            if used[c] < a.sizes[c]:
                assert not (waiting & ev.reserve_eligible[:, c]).any()


def _check_respects_priorities(a: fa.Allocation) -> None:
    """Within each category nobody waiting who is eligible for it comes before someone it
    served (these reserves have no order of their own, so the base order is theirs)."""
    ev = a.evaluation
    waiting = ev.eligible & ~a.served
    for c in range(len(a.categories)):
        served = a.category == c
        if not served.any():
            continue
        elig_c = ev.reserve_eligible[:, c] if c < len(a.categories) - 1 else ev.eligible
        last = a.position[served].max()
        assert not (waiting & elig_c & (a.position < last)).any()


@given(data=st.data(), capacity=st.integers(0, 10))
def test_max_beneficiaries_never_serves_fewer_reserved_than_any_order(
    data: st.DataObject, capacity: int
) -> None:
    reserves = [
        {"id": "poor", "eligible": "poor", "count": min(2, capacity)},
        {"id": "carer", "eligible": "carer", "count": min(1, max(capacity - 2, 0))},
    ]
    policy_max = make(
        {"capacity": capacity, "reserves": reserves, "reserve_mode": "max_beneficiaries"}
    )
    records = data.draw(residents(policy_max, max_size=15))
    best = fa.allocate(policy_max, records)
    n_reserved = int(((best.category >= 0) & (best.category < 2)).sum())
    for order in itertools.permutations(["poor", "carer", "open"]):
        other = fa.allocate(
            make({"capacity": capacity, "reserves": reserves, "precedence": list(order)}), records
        )
        note(f"{order}: {outcome(other)}")
        assert n_reserved >= int(((other.category >= 0) & (other.category < 2)).sum())
    _check_properties(best, records, "open")
    # The reserved units went to a maximum matching chosen greedily in the base order.
    assert best.n_served == min(capacity, int(best.evaluation.eligible.sum()))


def test_max_beneficiaries_moves_residents_between_categories() -> None:
    # a is eligible for both reserves and comes first; b only for `poor`. Precedence
    # processing gives a the `poor` unit and b nothing reserved; a maximum matching puts a on
    # `carer` so that b gets `poor`.
    records = [
        {"id": "a", "need": 5, "poor": True, "carer": True, "district": "n", "tries": 0},
        {"id": "b", "need": 3, "poor": True, "carer": False, "district": "n", "tries": 0},
        {"id": "c", "need": 4, "poor": False, "carer": False, "district": "n", "tries": 0},
    ]
    reserves = [
        {"id": "poor", "eligible": "poor", "count": 1},
        {"id": "carer", "eligible": "carer", "count": 1},
    ]
    seq = fa.allocate(make({"capacity": 2, "reserves": reserves}), records)
    assert outcome(seq) == {"a": "poor", "c": "open"}
    best = fa.allocate(
        make({"capacity": 2, "reserves": reserves, "reserve_mode": "max_beneficiaries"}), records
    )
    assert outcome(best) == {"a": "carer", "b": "poor"}


def test_reserve_with_its_own_priority() -> None:
    records = [
        {
            "id": f"r{i}",
            "need": 1 + i % 5,
            "poor": True,
            "carer": False,
            "district": "n",
            "tries": i % 4,
        }
        for i in range(12)
    ]
    policy = make(
        {
            "capacity": 3,
            "reserves": [{"id": "poor", "eligible": "poor", "count": 2, "priority": "tries"}],
        }
    )
    a = fa.allocate(policy, records)
    poor = [str(a.evaluation.ids[i]) for i in np.flatnonzero(a.category == 0)]
    assert sorted(poor) == ["r3", "r7"]  # tries == 3: r3, r7, r11; best need first
    assert a.cutoffs()[0].category == "poor"


def test_capacity_and_cutoffs_on_example() -> None:
    policy = fa.load_policy("examples/elderly-care/policy.yaml")
    a = fa.allocate(policy, "examples/elderly-care/residents.csv")
    assert a.capacity == 40
    assert a.n_served == 40
    cut = {c.category: c for c in a.cutoffs()}
    assert cut["special-hardship"].size == 10
    assert cut["open"].size == 30
    # The open cut-off is the 40th in rank order: reserves took theirs from anywhere in it.
    assert cut["open"].position == 40
    last_score = cut["open"].score
    assert last_score is not None
    ev = a.evaluation
    assert (ev.score[a.served & (a.category == 1)] >= last_score).all()
    smaller = fa.allocate(ev, capacity=8)
    assert smaller.sizes == (2, 6)
    assert "cut-off score" in a._repr_html_()
    assert a.to_json() == fa.allocate(ev).to_json()


@given(data=st.data(), capacity=st.integers(2, 15))
def test_anonymity_and_determinism(data: st.DataObject, capacity: int) -> None:
    policy = make(
        {
            "capacity": capacity,
            "reserves": [RESERVES[0]],
            "mechanism": "lottery",
            "lottery": {"seed": "s", "weight": "1 + tries"},
        }
    )
    records = data.draw(residents(policy, max_size=25))
    a = fa.allocate(policy, records)
    shuffled = list(records)
    random.Random(data.draw(st.integers(0, 99))).shuffle(shuffled)
    b = fa.allocate(policy, shuffled)
    assert a.to_json() == b.to_json()
    assert sorted(a.served_ids()) == sorted(b.served_ids())


def test_plain_lottery_serves_lowest_published_keys() -> None:
    policy = make({"capacity": 5, "mechanism": "lottery", "lottery": {"seed": "2026-draw"}})
    records = [
        {"id": f"p{i}", "need": 1, "poor": False, "carer": False, "district": "n", "tries": 0}
        for i in range(30)
    ]
    a = fa.allocate(policy, records)
    expected = sorted((key("2026-draw", r["id"]), r["id"]) for r in records)[:5]
    assert a.served_ids() == [rid for _, rid in expected]
    rec = a.record(a.evaluation.index_of(expected[0][1]))
    assert rec["lottery_key"] == f"{expected[0][0]:016x}"


def test_weighted_lottery_draws_are_recomputable_and_favour_weight() -> None:
    policy = make(
        {"capacity": 300, "mechanism": "lottery", "lottery": {"seed": "w", "weight": "1 + tries"}}
    )
    rng = np.random.default_rng(3)
    records = [
        {
            "id": f"p{i}",
            "need": 1,
            "poor": False,
            "carer": False,
            "district": "n",
            "tries": int(rng.integers(0, 4)),
        }
        for i in range(3000)
    ]
    a = fa.allocate(policy, records)
    ev = a.evaluation
    for i in (0, 17, 2999):
        w = 1 + records[i]["tries"]
        draw = -math.log(((key("w", records[i]["id"]) >> 12) + 0.5) / 2**52) / w
        assert a.lottery_draw is not None
        assert a.lottery_draw[i] == pytest.approx(draw, rel=1e-12)
    tries = np.array([r["tries"] for r in records])
    rate = [a.served[tries == t].mean() for t in range(4)]
    assert rate[0] < rate[1] < rate[2] < rate[3]
    assert (ev.lottery_weight == 1 + tries).all()


def test_invalid_allocation_sections() -> None:
    with pytest.raises(ValueError, match="needs `lottery"):
        make({"capacity": 1, "mechanism": "lottery"})
    with pytest.raises(ValueError, match="more than the capacity"):
        make({"capacity": 2, "reserves": [{"id": "poor", "eligible": "poor", "count": 3}]})
    with pytest.raises(ValueError, match="every reserve id and `open`"):
        make({"capacity": 2, "reserves": [RESERVES[0]], "precedence": ["poor"]})
    with pytest.raises(ValueError, match="own `priority` would be ignored"):
        make(
            {
                "capacity": 2,
                "reserve_mode": "max_beneficiaries",
                "reserves": [{"id": "poor", "eligible": "poor", "count": 1, "priority": "tries"}],
            }
        )
    with pytest.raises(ValueError, match="exactly one of `count` and `share`"):
        make({"capacity": 2, "reserves": [{"id": "x", "eligible": "poor"}]})
    with pytest.raises(ValueError, match="no `allocation` section"):
        fa.allocate(fa.evaluate(fa.Policy.model_validate(BASE), []))


def test_protected_reads_in_reserves_need_justification() -> None:
    doc = {
        **BASE,
        "allocation": {
            "capacity": 2,
            "reserves": [{"id": "women", "eligible": "sex == f", "count": 1}],
        },
    }
    doc["attributes"] = {
        **BASE["attributes"],
        "sex": {"type": "category", "levels": ["f", "m"], "protected": True},
    }
    policy = fa.Policy.model_validate(doc)
    with pytest.raises(fa.FairnessViolation, match="reserve `women` reads protected attribute"):
        fa.compile_policy(policy)
    doc["justified_uses"] = [{"attribute": "sex", "reserve": "women", "why": "w", "source": "s"}]
    fa.compile_policy(fa.Policy.model_validate(doc))


def test_a_tie_at_the_cutoff_without_lottery_is_refused() -> None:
    doc = {**BASE, "ranking": {"tie_break": []}, "allocation": {"capacity": 1}}
    policy = fa.Policy.model_validate(doc)
    records = [
        {"id": rid, "need": 2, "poor": False, "carer": False, "district": "n", "tries": 0}
        for rid in ("aa", "zz")
    ]
    with pytest.raises(ValueError, match="tied at the cut-off of `open`"):
        fa.allocate(policy, records)
    # A tie that does not straddle the cut-off is fine.
    records[1]["need"] = 1
    assert fa.allocate(policy, records).served_ids() == ["aa"]


def test_policy_copies_do_not_reuse_compiled_rules() -> None:
    policy = fa.Policy.model_validate({**BASE, "allocation": {"capacity": 1}})
    records = [{"id": "a", "need": 3, "poor": False, "carer": False, "district": "n", "tries": 0}]
    assert fa.evaluate(policy, records).score[0] == 3
    changed = policy.model_copy(
        update={
            "rules": fa.Policy.model_validate(
                {**BASE, "rules": {"priority": [{"id": "need", "points": "need * 100"}]}}
            ).rules
        }
    )
    assert fa.evaluate(changed, records).score[0] == 300


def test_weighted_draws_never_reach_zero_at_the_top_key() -> None:
    from fairalloc.allocation._lottery import weighted_draws

    keys = np.array([2**64 - 1, 0], dtype=np.uint64)
    draws = weighted_draws(keys, np.array([1.0, 1.0]))
    assert (draws > 0).all()
    assert draws[0] < draws[1]


def test_a_policy_loaded_for_audit_only_evaluates_but_never_allocates() -> None:
    doc = {**BASE, "allocation": {"capacity": 1}}
    doc["attributes"] = {
        **BASE["attributes"],
        "sex": {"type": "category", "levels": ["f", "m"], "protected": True},
    }
    doc["rules"] = {
        **BASE["rules"],
        "priority": [
            {"id": "need", "points": "need"},
            {"id": "men", "when": "sex == m", "points": 5},
        ],
    }
    unfair = fa.Policy.model_validate(doc)
    with pytest.raises(fa.FairnessViolation):
        fa.compile_policy(unfair)
    cp = fa.compile_policy(unfair, audit=True)
    assert [v.code for v in cp.violations] == ["FA300"]
    records = [
        {
            "id": "a",
            "need": 2,
            "poor": False,
            "carer": False,
            "district": "n",
            "tries": 0,
            "sex": "m",
        }
    ]
    ev = fa.evaluate(cp, records)
    assert ev.score[0] == 7
    with pytest.raises(fa.FairnessViolation, match="loaded for audit only, so it cannot allocate"):
        fa.allocate(ev)
