"""Real rotation rounds: a state carried from round to round, and run_round() from it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc import RotationState, RotationStateError, run_round, simulate
from tests.strategies import residents
from tests.test_rotation import _people, _policy, rotation_policies


@st.composite
def schedules(
    draw: st.DrawFn, policy: fa.Policy
) -> tuple[list[dict[str, Any]], int, dict[int, list[dict[str, Any]]], dict[int, list[str]]]:
    """Residents at the start, rounds, arrivals and departures by round (from round 2: to
    arrive or leave before round 1 is to be there at the start, or not)."""
    people = draw(residents(policy, max_size=12))
    rounds = draw(st.integers(1, 6))
    known = {p["id"] for p in people}
    arrivals: dict[int, list[dict[str, Any]]] = {}
    departures: dict[int, list[str]] = {}
    present = sorted(known)
    for r in range(1, rounds + 1):
        if r > 1 and present and draw(st.booleans()):
            leave = draw(st.lists(st.sampled_from(present), unique=True, max_size=3))
            if leave:
                departures[r] = leave
                present = [i for i in present if i not in leave]
        if r > 1 and draw(st.booleans()):  # arriving before round 1 is being there at the start
            new = [p for p in draw(residents(policy, max_size=3)) if p["id"] not in known]
            if new:
                arrivals[r] = new
                known |= {p["id"] for p in new}
                present += [p["id"] for p in new]
    return people, rounds, arrivals, departures


@given(data=st.data())
def test_rounds_one_by_one_equal_simulate(data: st.DataObject) -> None:
    policy = data.draw(rotation_policies())  # served_go_last either way, max_wait, accrue, bands
    people, rounds, arrivals, departures = data.draw(schedules(policy))
    capacity = data.draw(st.none() | st.integers(0, 4))
    sim = simulate(
        policy,
        people,
        rounds=rounds,
        capacity=capacity,
        arrivals=arrivals,
        departures=departures,
    )
    # Each week, the office's file: the residents present, with their rows as first given
    # (the accrued attributes come from the state), in any order.
    rows = {p["id"]: p for p in people}
    present = [p["id"] for p in people]
    state: RotationState | None = None
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    for r in range(1, rounds + 1):
        present = [i for i in present if i not in departures.get(r, [])]
        for p in arrivals.get(r, []):
            rows[p["id"]] = p
            present.append(p["id"])
        week = [rows[i] for i in present]
        rnd.shuffle(week)
        one = run_round(policy, week, state, capacity=capacity)
        note(f"round {r}: {one.served}")
        assert one.round == r
        assert one.served == sim.served[r - 1]
        assert one.eligible == sim.eligible[r - 1]
        # Stored and read back between rounds, as a log or a file would.
        state = RotationState.from_json(one.state.to_json())
        assert state == one.state
    assert state is not None
    assert state.to_json() == sim.state.to_json()
    assert state.digest() == sim.state.digest()
    # The records agree with the simulation's.
    for rec in sim.to_dicts():
        kept = state.get(rec["id"])
        assert kept is not None
        got = kept.to_dict()
        assert {k: got[k] for k in rec if k != "id"} == {k: v for k, v in rec.items() if k != "id"}
    # And two runs, the second from the first's state, equal one run.
    if rounds >= 2:
        cut = data.draw(st.integers(1, rounds - 1))
        first = simulate(
            policy,
            people,
            rounds=cut,
            capacity=capacity,
            arrivals={r: a for r, a in arrivals.items() if r <= cut},
            departures={r: d for r, d in departures.items() if r <= cut},
        )
        second = simulate(
            policy,
            first.population,
            rounds=rounds - cut,
            capacity=capacity,
            arrivals={r: a for r, a in arrivals.items() if r > cut},
            departures={r: d for r, d in departures.items() if r > cut},
            state=first.state,
        )
        assert first.served + second.served == sim.served
        assert second.first_round == cut + 1
        assert second.state.to_json() == sim.state.to_json()
        assert second.served_in(rounds) == sim.served[-1]


def test_a_week_at_a_time_with_arrivals_departures_and_accrual() -> None:
    policy = _policy({"capacity": 1, "accrue": {"wait": 2}, "served_go_last": False}, points="wait")
    week1 = run_round(policy, _people(("a", 1), ("b", 1), wait=0))
    assert week1.round == 1
    assert len(week1.served) == 1
    waited = week1.state.get("b" if week1.served == ["a"] else "a")
    assert waited is not None
    assert (waited.current_wait, waited.accrued) == (1, {"wait": 2.0})
    # Week 2: b's row in the file still says wait 0; the state's accrued 2 counts.
    week2 = run_round(policy, _people(("a", 1), ("b", 1), ("c", 1), wait=1), week1.state)
    assert week2.served == [waited.id]  # 2 beats the newcomer's 1 and the served one's 0
    c = week2.state.get("c")
    assert c is not None
    assert (c.arrived, c.current_wait, c.accrued) == (2, 1, {"wait": 3.0})
    # Week 3: a leaves (not in the file).
    week3 = run_round(policy, _people(("b", 1), ("c", 1)), week2.state)
    gone = week3.state.get("a")
    assert gone is not None
    assert (gone.departed, gone.accrued) == (3, {})
    assert week3.state.present() == ["b", "c"]
    doc = json.loads(week3.state.to_json())
    assert doc["schema"] == "fairalloc.rotation-state/1"
    assert doc["round"] == 3
    assert [r["id"] for r in doc["residents"]] == ["a", "b", "c"]
    assert week3.to_dict()["state_digest"] == week3.state.digest()
    assert "Round 3" in repr(week3)


def test_state_json_is_canonical() -> None:
    policy = _policy({"capacity": 2, "accrue": {"wait": 1}})
    sim = simulate(policy, _people(("x", 2), ("y", 3), ("z", 1)), rounds=3)
    text = sim.state.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    shuffled = json.loads(text)
    shuffled["residents"].reverse()
    again = RotationState.from_json(json.dumps(shuffled, indent=2))
    assert again.to_json() == text
    assert again.digest() == sim.state.digest()
    assert len(again.digest()) == 64


def _bad(doc: dict[str, Any]) -> RotationStateError:
    with pytest.raises(RotationStateError) as info:
        RotationState.from_dict(doc)
    assert info.value.code == "FA780"
    return info.value


def test_a_state_that_contradicts_itself_is_refused_with_its_place() -> None:
    policy = _policy({"capacity": 1})
    good = json.loads(simulate(policy, _people(("x", 2), ("y", 3)), rounds=2).state.to_json())
    with pytest.raises(RotationStateError) as info:
        RotationState.from_json("{not json")
    assert info.value.code == "FA780"

    def changed(**kw: Any) -> dict[str, Any]:
        doc = json.loads(json.dumps(good))
        doc["residents"][0].update(kw)
        return doc

    assert _bad(changed(times_served=5)).where == "residents[0].times_served"
    assert _bad(changed(times_served=True)).where == "residents[0].times_served"
    assert _bad(changed(rounds_served=[7], first_served=7)).where == "residents[0].rounds_served"
    assert _bad(changed(first_served=9)).where == "residents[0]"
    assert _bad(changed(colour="red")).where == "residents[0].colour"
    assert _bad(changed(departed=9)).where == "residents[0].departed"
    assert _bad({**good, "schema": "other/1"}).where == "schema"
    assert _bad({**good, "residents": [good["residents"][0]] * 2}).where == "residents[1].id"


def test_a_state_runs_only_its_own_policy_and_ids_are_never_reused() -> None:
    policy = _policy({"capacity": 1})
    week1 = run_round(policy, _people(("x", 2), ("y", 3)))
    week2 = run_round(policy, _people(("x", 2)), week1.state)
    other = fa.Policy.model_validate(
        {
            **policy.model_dump(mode="json", exclude_none=True),
            "policy": {"id": "other", "version": "1", "title": "o"},
        }
    )
    with pytest.raises(RotationStateError) as info:
        run_round(other, _people(("x", 2)), week2.state)
    assert info.value.code == "FA781"
    with pytest.raises(RotationStateError) as info:
        run_round(policy, _people(("x", 2), ("y", 3)), week2.state)
    assert info.value.code == "FA782"
    assert "'y' left the rotation before round 2" in str(info.value)
    with pytest.raises(ValueError, match="the rounds run are 3 to 4"):
        simulate(policy, _people(("x", 2)), rounds=2, state=week2.state, departures={2: ["x"]})
