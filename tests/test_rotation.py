"""Fair rotation (轮候): simulate() over rounds, its guarantees, determinism and errors."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc import Simulation, simulate
from fairalloc.cli import main
from tests import rotation_oracle
from tests.strategies import residents

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "activity-places"
SEED = "rotation-test-seed"


def _policy(
    rotation: dict[str, Any] | None,
    *,
    points: str = "need",
    eligibility: str | None = None,
    seed: str | None = SEED,
    attributes: dict[str, Any] | None = None,
    allocation: dict[str, Any] | None = None,
) -> fa.Policy:
    doc: dict[str, Any] = {
        "policy": {"id": "rot", "version": "1", "title": "rotation"},
        "attributes": attributes
        or {
            "id": {"type": "str", "role": "id"},
            "need": {"type": "int", "min": 0, "max": 10},
            "level": {"type": "ordinal", "levels": ["low", "mid", "high"]},
            "flag": {"type": "bool"},
            "wait": {"type": "int", "min": 0, "max": 40},
        },
        "rules": {
            "eligibility": [{"id": "e", "when": eligibility}] if eligibility else [],
            "priority": [{"id": "p", "points": points}],
        },
        "ranking": {"tie_break": [{"lottery": {"seed": seed}}] if seed else []},
    }
    if allocation is not None:
        doc["allocation"] = allocation
    elif rotation is not None:
        doc["allocation"] = {"rotation": rotation}
    return fa.Policy.model_validate(doc)


def _people(*rows: tuple[str, int], **extra: Any) -> list[dict[str, Any]]:
    base = {"level": "low", "flag": True, "wait": 0}
    return [{"id": rid, "need": need, **base, **extra} for rid, need in rows]


# -- concrete behaviour -------------------------------------------------------------------------


def test_rotation_serves_everyone_before_anyone_twice() -> None:
    policy = _policy({"capacity": 1})
    sim = simulate(policy, _people(("a", 3), ("b", 7), ("c", 5)), rounds=5)
    assert sim.served == [["b"], ["c"], ["a"], ["b"], ["c"]]
    assert sim.record("a") == {
        "id": "a",
        "arrived": 0,
        "departed": None,
        "eligible_rounds": 5,
        "times_served": 1,
        "rounds_served": [3],
        "first_served": 3,
        "waited_before_first": 2,
        "longest_wait": 2,
        "current_wait": 2,
    }
    assert sim.record("b")["longest_wait"] == 2  # between rounds 1 and 4
    assert sim.summary()["waiting_before_first_service"] == {
        "distribution": [
            {"rounds": 0, "residents": 1},
            {"rounds": 1, "residents": 1},
            {"rounds": 2, "residents": 1},
        ],
        "mean": 1.0,
        "median": 1.0,
        "max": 2,
    }


def test_without_served_go_last_the_score_decides_and_waiting_points_catch_up() -> None:
    people = _people(("a", 10), ("b", 7))
    plain = simulate(_policy({"capacity": 1, "served_go_last": False}), people, rounds=4)
    assert plain.served == [["a"]] * 4
    assert plain.record("b")["current_wait"] == 4
    assert plain.record("b")["first_served"] is None
    # b gains a point per round waited: 8, 9, then 10 = a's 10 and b has waited longer.
    catch_up = _policy({"capacity": 1, "served_go_last": False, "points_per_round": 1})
    sim = simulate(catch_up, people, rounds=6)
    assert sim.served == [["a"], ["a"], ["a"], ["b"], ["a"], ["a"]]
    assert sim.record("b")["waited_before_first"] == 3


def test_points_per_round_are_exact_micro_points() -> None:
    # In float64, 0.7 * 3 = 2.0999999999999996 < 2.1; in micro-points b's 3 rounds of 0.7 equal
    # a's 2.1 exactly, and b, who has waited longer, goes first in round 4.
    policy = _policy(
        {"capacity": 1, "served_go_last": False, "points_per_round": 0.7}, points="need * 0.7"
    )
    sim = simulate(policy, _people(("a", 3), ("b", 0)), rounds=5)
    assert sim.served == [["a"], ["a"], ["a"], ["b"], ["a"]]


def test_equal_residents_go_by_the_published_lottery() -> None:
    policy = _policy({"capacity": 1, "served_go_last": False, "points_per_round": 0.1})
    sim = simulate(policy, _people(("a", 2), ("b", 2)), rounds=2)
    first = min("ab", key=lambda i: fa.lottery_key(SEED, i))
    other = "b" if first == "a" else "a"
    assert sim.served == [[first], [other]]  # then the one who waited has 0.1 more


def test_max_wait_guarantees_a_place() -> None:
    people = _people(("a", 10), ("b", 1))
    sim = simulate(
        _policy({"capacity": 1, "served_go_last": False, "max_wait": 2}), people, rounds=7
    )
    assert sim.served == [["a"], ["a"], ["b"], ["a"], ["a"], ["b"], ["a"]]
    assert max(r["longest_wait"] for r in sim.to_dicts()) == 2


def test_bands_first_then_waiting_time_within_a_band() -> None:
    people = [
        {"id": "h1", "need": 0, "level": "high", "flag": True, "wait": 1},
        {"id": "h2", "need": 0, "level": "high", "flag": True, "wait": 9},
        {"id": "m1", "need": 0, "level": "mid", "flag": True, "wait": 30},
        {"id": "l1", "need": 0, "level": "low", "flag": True, "wait": 40},
        {"id": "l2", "need": 0, "level": "low", "flag": True, "wait": 20},
    ]
    policy = _policy({"capacity": 2, "bands": "level"}, points="wait")
    sim = simulate(policy, people, rounds=3)
    # High band first (longer wait first within it), then mid, then low by wait.
    assert sim.served == [["h2", "h1"], ["m1", "l1"], ["l2", "h2"]]


def test_accrual_changes_the_next_rounds_evaluation() -> None:
    people = [
        {"id": "a", "need": 0, "level": "low", "flag": True, "wait": 10},
        {"id": "b", "need": 0, "level": "low", "flag": True, "wait": 7},
    ]
    rotation = {"capacity": 1, "served_go_last": False}
    fixed = simulate(_policy(rotation, points="wait"), people, rounds=3)
    assert fixed.served == [["a"], ["a"], ["a"]]
    growing = simulate(
        _policy({**rotation, "accrue": {"wait": 5}}, points="wait"), people, rounds=3
    )
    # b: 7 -> 12 after round 1, beating a's 10; a then grows 10 -> 15 and goes in round 3.
    assert growing.served == [["a"], ["b"], ["a"]]
    final = growing.population
    waits = dict(zip(final.ids.tolist(), final.decode("wait").tolist(), strict=True))
    assert waits == {"a": 15, "b": 17}
    # Clipped to the attribute's declared max.
    longer = simulate(
        _policy({**rotation, "accrue": {"wait": 5}}, points="wait"), people, rounds=20
    )
    assert longer.population.columns["wait"].max() == 40.0
    assert longer.population.columns["wait"].dtype == np.int64  # integer columns stay integers


def test_accrual_can_make_residents_eligible() -> None:
    policy = _policy({"capacity": 1, "accrue": {"wait": 1}}, eligibility="wait >= 3")
    people = [
        {"id": "x", "need": 0, "level": "low", "flag": True, "wait": 1},
        {"id": "y", "need": 0, "level": "low", "flag": True, "wait": 3},
    ]
    sim = simulate(policy, people, rounds=4)
    assert sim.served == [["y"], ["y"], ["x"], ["x"]]
    assert sim.eligible == [1, 1, 2, 2]
    assert sim.record("x")["eligible_rounds"] == 2
    assert sim.record("y")["longest_wait"] == 2  # y waits rounds 3 and 4 while x goes first


def test_arrivals_and_departures() -> None:
    policy = _policy({"capacity": 1})
    sim = simulate(
        policy,
        _people(("a", 5), ("b", 4)),
        rounds=5,
        arrivals={2: _people(("c", 9)), 4: _people(("d", 1))},
        departures={3: ["b"]},
    )
    assert sim.served == [["a"], ["c"], ["c"], ["d"], ["a"]]
    assert sim.present == [2, 3, 2, 3, 3]
    assert sim.record("b") == {
        "id": "b",
        "arrived": 0,
        "departed": 3,
        "eligible_rounds": 2,
        "times_served": 0,
        "rounds_served": [],
        "first_served": None,
        "waited_before_first": None,
        "longest_wait": 2,
        "current_wait": 2,
    }
    assert sim.record("d")["arrived"] == 4
    assert sim.ids == ["a", "b", "c", "d"]
    assert sim.summary()["never_served_while_eligible"] == 1


def test_ties_on_the_whole_order_need_a_published_seed() -> None:
    policy = _policy({"capacity": 1}, seed=None)
    with pytest.raises(ValueError, match=r"round 1: residents '(a|b)' and '(a|b)' are tied"):
        simulate(policy, _people(("a", 3), ("b", 3)), rounds=1)
    # Ties inside the served group, or outside it, decide nothing and are allowed.
    sim = simulate(
        _policy({"capacity": 2}, seed=None), _people(("a", 3), ("b", 3), ("c", 1)), rounds=1
    )
    assert sim.served == [["a", "b"]]


def test_lottery_breaks_full_ties_never_the_id_or_row() -> None:
    ids = [f"r{i}" for i in range(12)]
    people = _people(*((i, 2) for i in ids))
    sim = simulate(_policy({"capacity": 3}), people, rounds=1)
    expected = sorted(ids, key=lambda i: fa.lottery_key(SEED, i))[:3]
    assert sim.served == [expected]
    assert expected != sorted(ids)[:3]


# -- the example --------------------------------------------------------------------------------


def test_example_policy_rotates_by_band_and_wait() -> None:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    pop = fa.Population.from_csv(EXAMPLE / "residents.csv", policy)
    ev = fa.evaluate(policy, pop)
    n = int(ev.eligible.sum())
    assert (pop.n, n) == (150, 130)
    cycle = math.ceil(n / 12)
    sim = simulate(policy, pop, rounds=cycle)
    assert [len(s) for s in sim.served] == [12] * cycle
    order = [i for s in sim.served for i in s][:n]  # the first cycle; then second services
    assert sorted(order) == sorted(str(i) for i in ev.ids[ev.eligible])
    band = ev.rotation_band
    bands = [band[ev.index_of(i)] for i in order]
    assert bands == sorted(bands, reverse=True)  # the first cycle goes band by band
    assert sim.summary()["longest_wait"] == cycle - 1


# -- properties ---------------------------------------------------------------------------------

ATTRS: dict[str, Any] = {
    "id": {"type": "str", "role": "id"},
    "need": {"type": "int", "min": 0, "max": 3},
    "level": {"type": "ordinal", "levels": ["low", "mid", "high"]},
    "flag": {"type": "bool"},
    "wait": {"type": "int", "min": 0, "max": 12},
}


@st.composite
def rotation_policies(
    draw: st.DrawFn,
    *,
    served_go_last: bool | None = None,
    max_wait: st.SearchStrategy[int | None] | None = None,
) -> fa.Policy:
    """Small policies with a rotation; eligibility never reads what accrues."""
    rotation: dict[str, Any] = {
        "capacity": draw(st.integers(1, 5)),
        "served_go_last": draw(st.booleans()) if served_go_last is None else served_go_last,
        "points_per_round": draw(st.sampled_from([0, 0.5, 1, 2.25])),
        "accrue": draw(st.sampled_from([{}, {"wait": 1}, {"wait": 3}])),
    }
    if draw(st.booleans()):
        rotation["bands"] = draw(st.sampled_from(["level", "need", "need + (1 if flag else 0)"]))
    wait_limit = draw(max_wait if max_wait is not None else st.none() | st.integers(1, 4))
    if wait_limit is not None:
        rotation["max_wait"] = wait_limit
    points = draw(
        st.sampled_from(["need", "need * 2 + wait", "wait", "0", "1.5 if level >= mid else 0"])
    )
    seed = draw(st.sampled_from([SEED, "另一个种子"]))
    return _policy(
        rotation,
        points=points,
        eligibility=draw(st.sampled_from([None, "flag", "need >= 1 or not flag"])),
        seed=seed,
        attributes=ATTRS,
    )


def _eligible_ids(policy: fa.Policy, people: list[dict[str, Any]]) -> set[str]:
    ev = fa.evaluate(policy, people)
    return {str(i) for i in ev.ids[ev.eligible]}


def _check_history(sim: Simulation) -> None:
    """What every simulation must satisfy, whatever the policy."""
    times: dict[str, list[int]] = {}
    for r, ids in enumerate(sim.served, start=1):
        assert len(ids) <= sim.capacity
        assert len(ids) == len(set(ids))
        assert len(ids) == min(sim.capacity, sim.eligible[r - 1])  # no place left unused
        for i in ids:
            times.setdefault(i, []).append(r)
    for rec in sim.to_dicts():
        assert rec["rounds_served"] == times.get(rec["id"], [])
        assert rec["times_served"] == len(rec["rounds_served"])
        assert rec["longest_wait"] >= rec["current_wait"]
        assert rec["eligible_rounds"] >= rec["times_served"]


@given(data=st.data())
def test_capacity_and_bookkeeping(data: st.DataObject) -> None:
    policy = data.draw(rotation_policies())
    people = data.draw(residents(policy, max_size=20))
    rounds = data.draw(st.integers(1, 8))
    sim = simulate(policy, people, rounds=rounds)
    _check_history(sim)
    eligible = _eligible_ids(policy, people)
    assert {i for s in sim.served for i in s} <= eligible
    assert sim.eligible == [len(eligible)] * rounds


@given(data=st.data())
def test_round_robin_serves_everyone_once_before_anyone_twice(data: st.DataObject) -> None:
    policy = data.draw(rotation_policies(served_go_last=True, max_wait=st.none()))
    people = data.draw(residents(policy, min_size=1, max_size=20))
    eligible = _eligible_ids(policy, people)
    capacity = policy.allocation.rotation.capacity  # type: ignore[union-attr]
    assert capacity is not None
    cycle = math.ceil(len(eligible) / capacity)
    sim = simulate(policy, people, rounds=2 * cycle + 1)
    sequence = [i for s in sim.served for i in s]
    note(f"sequence {sequence}")
    assert set(sequence[: len(eligible)]) == eligible  # the first len(eligible) are distinct
    for rid in eligible:
        assert sim.record(rid)["first_served"] <= cycle
        # The second service comes within two cycles: a round-robin.
        assert sim.record(rid)["times_served"] >= 2


@given(data=st.data())
def test_max_wait_holds_when_capacity_allows(data: st.DataObject) -> None:
    # Whatever the order of the other keys: served_go_last either way, bands, waiting points.
    max_wait = data.draw(st.integers(1, 4))
    policy = data.draw(rotation_policies(max_wait=st.just(max_wait)))
    people = data.draw(residents(policy, max_size=20))
    eligible = _eligible_ids(policy, people)
    least = max(1, math.ceil(len(eligible) / (max_wait + 1)))  # N <= C * (max_wait + 1)
    capacity = data.draw(st.integers(least, least + 3))
    sim = simulate(policy, people, rounds=data.draw(st.integers(1, 12)), capacity=capacity)
    _check_history(sim)
    assert all(int(w) <= max_wait for w in sim.longest_wait)


@given(data=st.data())
def test_deterministic_and_anonymous(data: st.DataObject) -> None:
    policy = data.draw(rotation_policies())
    people = data.draw(residents(policy, max_size=20))
    newcomers = data.draw(residents(policy, max_size=6))
    known = {p["id"] for p in people}
    newcomers = [p for p in newcomers if p["id"] not in known]
    rounds = data.draw(st.integers(2, 6))
    leave = data.draw(st.lists(st.sampled_from(sorted(known)), unique=True)) if known else []
    arrivals = {2: newcomers} if newcomers else {}
    departures = {rounds: leave}
    sim = simulate(policy, people, rounds=rounds, arrivals=arrivals, departures=departures)
    _check_history(sim)
    again = simulate(policy, people, rounds=rounds, arrivals=arrivals, departures=departures)
    assert again.to_json() == sim.to_json()
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    shuffled, shuffled_new, shuffled_leave = people[:], newcomers[:], leave[:]
    rnd.shuffle(shuffled)
    rnd.shuffle(shuffled_new)
    rnd.shuffle(shuffled_leave)
    other = simulate(
        policy,
        shuffled,
        rounds=rounds,
        arrivals={2: shuffled_new} if newcomers else {},
        departures={rounds: shuffled_leave},
    )
    assert other.to_json() == sim.to_json()
    for rec in sim.to_dicts():
        if rec["departed"] is not None:
            assert all(r < rec["departed"] for r in rec["rounds_served"])
        assert all(r >= max(rec["arrived"], 1) for r in rec["rounds_served"])


@pytest.mark.parametrize("served_go_last", [True, False])
@pytest.mark.parametrize("max_wait", [2, 3, 4, 5])
def test_thirty_residents_ten_places_keep_max_wait(served_go_last: bool, max_wait: int) -> None:
    # The case that once waited one round too long with the need order above the rotation:
    # 30 residents, 10 places a week, over 6 weeks (and longer), every bound from 2 to 5.
    people = _people(*((f"r{i:02d}", i % 11) for i in range(30)))
    policy = _policy({"capacity": 10, "served_go_last": served_go_last, "max_wait": max_wait})
    for weeks in (6, 6 * (max_wait + 1)):
        sim = simulate(policy, people, rounds=weeks)
        _check_history(sim)
        assert sim.summary()["longest_wait"] <= max_wait
        served, _ = rotation_oracle.simulate(policy, people, rounds=weeks, capacity=10)
        assert served == sim.served


@given(data=st.data())
def test_agrees_with_the_plain_python_rounds(data: st.DataObject) -> None:
    policy = data.draw(rotation_policies())
    people = data.draw(residents(policy, max_size=14))
    known = {p["id"] for p in people}
    newcomers = [p for p in data.draw(residents(policy, max_size=5)) if p["id"] not in known]
    rounds = data.draw(st.integers(1, 7))
    leave = data.draw(st.lists(st.sampled_from(sorted(known)), unique=True)) if known else []
    arrivals = {min(2, rounds): newcomers} if newcomers else {}
    departures = {rounds: leave} if leave else {}
    capacity = data.draw(st.integers(0, 5))
    sim = simulate(
        policy, people, rounds=rounds, capacity=capacity, arrivals=arrivals, departures=departures
    )
    served, book = rotation_oracle.simulate(
        policy, people, rounds=rounds, capacity=capacity, arrivals=arrivals, departures=departures
    )
    assert sim.served == served
    for rid, e in book.items():
        rec = sim.record(rid)
        assert (rec["times_served"], rec["rounds_served"], rec["current_wait"]) == (
            e.times_served,
            e.rounds_served,
            e.waiting,
        )
        assert (rec["longest_wait"], rec["eligible_rounds"], rec["arrived"]) == (
            e.longest,
            e.eligible_rounds,
            e.arrived,
        )
        assert rec["first_served"] == (e.first_served or None)


def _bound_can_hold(n: int, capacity: int, max_wait: int, rounds: int) -> bool:
    """By brute force: can ``n`` residents, all eligible throughout, be served ``capacity`` a
    round for ``rounds`` rounds so that nobody ever waits more than ``max_wait`` rounds?"""
    from functools import cache
    from itertools import combinations

    take = min(capacity, n)

    @cache
    def can(waits: tuple[int, ...], left: int) -> bool:
        if left == 0:
            return True
        for chosen in combinations(range(n), take):
            after = tuple(sorted(0 if i in chosen else w + 1 for i, w in enumerate(waits)))
            if max(after, default=0) <= max_wait and can(after, left - 1):
                return True
        return False

    return can((0,) * n, rounds)


@given(data=st.data())
def test_max_wait_holds_whenever_any_schedule_could_keep_it(data: st.DataObject) -> None:
    # Brute force over every schedule of small cases: where some schedule keeps the bound,
    # the rotation keeps it; and one exists exactly when N <= capacity * (max_wait + 1).
    max_wait = data.draw(st.integers(1, 3))
    policy = data.draw(rotation_policies(max_wait=st.just(max_wait)))
    people = data.draw(residents(policy, min_size=1, max_size=7))
    n = len(_eligible_ids(policy, people))
    capacity = data.draw(st.integers(1, 3))
    rounds = max_wait + 2
    possible = _bound_can_hold(n, capacity, max_wait, rounds)
    assert possible == (n <= capacity * (max_wait + 1))
    sim = simulate(policy, people, rounds=rounds, capacity=capacity)
    if possible:
        assert int(sim.longest_wait.max(initial=0)) <= max_wait


# -- results ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_sim() -> Simulation:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    return simulate(policy, EXAMPLE / "residents.csv", rounds=4)


def test_result_conversions(example_sim: Simulation, tmp_path: Path) -> None:
    sim = example_sim
    doc = json.loads(sim.to_json())
    assert doc["policy"] == {"id": "activity-places", "version": "2026.1"}
    assert doc["lottery_seed"] == "2026-activity-places-published-seed"
    assert doc["rotation"]["accrue"] == {"waiting_weeks": 1.0}
    assert [r["served"] for r in doc["rounds"]] == sim.served
    assert [r["id"] for r in doc["residents"]] == sorted(sim.ids)
    assert doc["summary"]["served_per_round"] == [12, 12, 12, 12]
    df = sim.to_pandas()
    assert df.index.name == "id"
    assert list(df.index) == sim.ids
    assert str(df["first_served"].dtype) == "Int64"
    assert int(df["times_served"].sum()) == 48
    path = tmp_path / "sim.csv"
    sim.to_csv(path)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 150
    served = [r for r in rows if r["rounds_served"]]
    assert len(served) == 48
    assert all(r["waited_before_first"] == str(int(r["first_served"]) - 1) for r in served)
    assert "activity-places" in repr(sim)
    assert "<table>" in sim._repr_html_()
    assert sim.served_in(1) == sim.served[0]
    with pytest.raises(IndexError):
        sim.served_in(5)
    with pytest.raises(KeyError, match="nobody"):
        sim.record("nobody")


def test_cli_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, data = str(EXAMPLE / "policy.yaml"), str(EXAMPLE / "residents.csv")
    out = tmp_path / "sim.json"
    assert main(["simulate", policy, data, "--rounds", "11", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "11 rounds, 12 per round" in text
    assert "longest wait: 10 rounds" in text
    assert "never served while eligible: 0" in text
    doc = json.loads(out.read_text())
    assert doc["summary"]["served_per_round"] == [12] * 11
    assert doc["summary"]["waiting_before_first_service"]["max"] == 10
    out_csv = tmp_path / "sim.csv"
    assert (
        main(["simulate", policy, data, "--rounds", "2", "--capacity", "5", "--out", str(out_csv)])
        == 0
    )
    with out_csv.open() as fh:
        assert sum(1 for r in csv.DictReader(fh) if r["times_served"] == "1") == 10
    no_rotation = tmp_path / "no-rotation.yaml"
    no_rotation.write_text((ROOT / "examples" / "elderly-care" / "policy.yaml").read_text())
    assert (
        main(
            [
                "simulate",
                str(no_rotation),
                str(ROOT / "examples" / "elderly-care" / "residents.csv"),
                "--rounds",
                "2",
            ]
        )
        == 1
    )
    assert "allocation.rotation" in capsys.readouterr().err


# -- errors -------------------------------------------------------------------------------------


def test_errors_name_what_is_wrong() -> None:
    people = _people(("a", 1), ("b", 2))
    with pytest.raises(ValueError, match=r"no `allocation` section.*allocation\.rotation"):
        simulate(_policy(None), people, rounds=1)
    with pytest.raises(ValueError, match=r"no `rotation` section"):
        simulate(_policy(None, allocation={"capacity": 2}), people, rounds=1)
    with pytest.raises(ValueError, match=r"no capacity"):
        simulate(_policy({"bands": "level"}), people, rounds=1)
    assert (
        simulate(
            _policy(None, allocation={"capacity": 1, "rotation": {}}), people, rounds=1
        ).capacity
        == 1
    )
    with pytest.raises(ValueError, match="capacity must be at least 0"):
        simulate(_policy({"capacity": 1}), people, rounds=1, capacity=-1)
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        simulate(_policy({"capacity": 1}), people, rounds=0)
    with pytest.raises(ValueError, match=r"arrivals for round 3, but the rounds run are 1 to 2"):
        simulate(_policy({"capacity": 1}), people, rounds=2, arrivals={3: _people(("c", 1))})
    with pytest.raises(ValueError, match=r"departures\[2\]: no resident has id 'zz'"):
        simulate(_policy({"capacity": 1}), people, rounds=2, departures={2: ["zz"]})
    with pytest.raises(ValueError, match=r"departures\[2\]: resident 'a' already left in round 1"):
        simulate(_policy({"capacity": 1}), people, rounds=2, departures={1: ["a"], 2: ["a"]})
    with pytest.raises(TypeError, match=r"departures\[1\] must be a collection of ids"):
        simulate(_policy({"capacity": 1}), people, rounds=2, departures={1: "a"})
    with pytest.raises(ValueError, match=r"arrivals\[2\]: resident 'b' is not new"):
        simulate(_policy({"capacity": 1}), people, rounds=2, arrivals={2: _people(("b", 5))})
    with pytest.raises(ValueError, match=r"arrivals\[2\]: resident 'a' is not new"):
        simulate(
            _policy({"capacity": 1}),
            people,
            rounds=2,
            departures={1: ["a"]},
            arrivals={2: _people(("a", 5))},
        )
    with pytest.raises(fa.PopulationError, match="the same id"):
        simulate(
            _policy({"capacity": 1}), people, rounds=2, arrivals={2: _people(("c", 5), ("c", 6))}
        )
    with pytest.raises(ValueError, match=r"accrue` names unknown attribute `weight`"):
        simulate(_policy({"capacity": 1, "accrue": {"weight": 1}}), people, rounds=1)
    with pytest.raises(ValueError, match=r"adds to `level`, whose type is ordinal"):
        simulate(_policy({"capacity": 1, "accrue": {"level": 1}}), people, rounds=1)
    with pytest.raises(ValueError, match=r"adds 0.5 to `wait` each round.*whole numbers"):
        simulate(_policy({"capacity": 1, "accrue": {"wait": 0.5}}), people, rounds=1)
    with pytest.raises(ValueError, match="reserves"):
        simulate(
            _policy(
                None,
                allocation={
                    "capacity": 2,
                    "rotation": {},
                    "reserves": [{"id": "r", "eligible": "flag", "count": 1}],
                },
            ),
            people,
            rounds=1,
        )
    with pytest.raises(ValueError, match="mechanism: lottery"):
        simulate(
            _policy(
                None,
                allocation={
                    "capacity": 2,
                    "rotation": {},
                    "mechanism": "lottery",
                    "lottery": {"seed": "s"},
                },
            ),
            people,
            rounds=1,
        )


def test_accrue_is_checked_when_the_policy_loads() -> None:
    import fairalloc as fa_

    text = """
policy: {id: r, version: "1", title: R}
attributes:
  id: {type: str, role: id}
  weeks: {type: int, min: 0}
  level: {type: ordinal, levels: [a, b]}
allocation:
  capacity: 1
  rotation: {accrue: {weeks: 0.5, level: 1, wekks: 1}}
"""
    with pytest.raises(fa_.PolicyError) as info:
        fa_.parse_policy(text, filename="r.yaml")
    messages = [i.message for i in info.value.issues]
    assert all(i.code == "FA175" for i in info.value.issues)
    assert any("cannot accrue 0.5" in m for m in messages)
    assert any("`level` is an ordinal" in m for m in messages)
    assert any("`wekks` is not an attribute" in m for m in messages)
