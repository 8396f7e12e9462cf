# ruff: noqa: E501 -- one mechanism per line reads best as a table
"""The flip audit's served status under every capacity mechanism, against brute force.

For each resident and each other value of a protected attribute, the brute force re-allocates
the whole pool with only that resident changed; the flip audit must count exactly the same
served-status changes (it places each changed resident by the what-if allocation that
explanations use, or by binary search under plain priority).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.audit import flip_audit

ROOT = Path(__file__).resolve().parent.parent

HEAD = """
policy: {id: w, version: "1", title: W}
attributes:
  id: {type: str, role: id}
  group: {type: category, levels: [x, y, z], protected: true, ground: cultural background}
  need: {type: int, min: 0, max: 9}
  poor: {type: bool}
justified_uses:
  - {attribute: group, rule: bonus, why: test, source: "§1"}
RESERVE_USE
grounds_not_collected:
  age: n
  gender: n
  occupation: n
  economic status: n
  physical condition: n
rules:
  priority:
    - {id: base, points: need}
    - {id: bonus, when: "group == x", points: 2}
ranking: {tie_break: [{lottery: {seed: s}}]}
"""

MECHANISMS = {
    "priority": "allocation: {capacity: CAP}\n",
    "reserves in precedence": "allocation:\n  capacity: CAP\n  reserves:\n"
    "    - {id: r1, count: 2, eligible: 'group == y'}\n    - {id: r2, count: 1, eligible: poor}\n",
    "reserves for most beneficiaries": "allocation:\n  capacity: CAP\n  reserve_mode: max_beneficiaries\n"
    "  reserves:\n    - {id: r1, count: 2, eligible: 'group == y'}\n    - {id: r2, count: 1, eligible: poor}\n",
    "lottery": "allocation: {capacity: CAP, mechanism: lottery, lottery: {seed: t}}\n",
    "weighted lottery": "allocation: {capacity: CAP, mechanism: lottery, lottery: {seed: t, weight: '1 + need'}}\n",
}


def _brute(policy: fa.Policy, data: dict[str, Any], capacity: int, state: Any = None) -> dict[str, int]:
    """Served-status changes per value of `group`, re-allocating per changed resident."""
    served = _served_by(policy, data, state, capacity)
    out: dict[str, int] = {}
    for value in ("x", "y", "z"):
        changes = 0
        for k, rid in enumerate(data["id"]):
            if data["group"][k] == value:
                continue
            changed = {c: list(v) for c, v in data.items()}
            changed["group"][k] = value
            now = rid in _served_by(policy, changed, state, capacity)
            changes += now != (rid in served)
        out[value] = changes
    return out


def _served_by(policy: fa.Policy, data: dict[str, Any], state: Any, capacity: int) -> set[str]:
    """Who the public API serves: a capacity allocation, a rotation round, or a matching."""
    spec = policy.allocation
    if spec is not None and spec.rotation is not None:
        return set(fa.run_round(policy, data, state, capacity=capacity).served)
    if spec is not None and spec.matching is not None:
        return set(fa.match(policy, data).assignment())
    return {str(i) for i in fa.allocate(fa.evaluate(policy, data), capacity=capacity).served_ids()}


@st.composite
def _pools(draw: Any) -> tuple[dict[str, Any], int]:
    n = draw(st.integers(4, 14))
    groups = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=n, max_size=n))
    need = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    poor = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    data = {"id": [f"R{i:02d}" for i in range(n)], "group": groups, "need": need, "poor": poor}
    return data, draw(st.integers(3, max(3, n - 1)))


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
@settings(max_examples=25, deadline=None)
@given(pool=_pools())
def test_flip_served_changes_equal_brute_force(mechanism: str, pool: Any) -> None:
    data, capacity = pool
    use = '  - {attribute: group, reserve: r1, why: test, source: "§1"}'
    head = HEAD.replace("RESERVE_USE\n", use + "\n" if "reserves" in mechanism else "")
    policy = fa.parse_policy(head + MECHANISMS[mechanism].replace("CAP", str(capacity)), audit=True)
    flips = flip_audit(fa.evaluate(policy, data), capacity=capacity)
    assert flips.served_note is None
    got = {r.value: r.served_changes for r in flips.results if r.attribute == "group"}
    expected = _brute(policy, data, capacity)
    assert got == {v: c for v, c in expected.items() if v in got}
    # Values nobody could change to (everyone already has them) are compared over no one.
    assert all(np.isfinite(c) for c in got.values())


def test_above_the_what_if_limit_served_status_is_not_computed_and_the_audit_says_why() -> None:
    use = '  - {attribute: group, reserve: r1, why: test, source: "§1"}'
    head = HEAD.replace("RESERVE_USE\n", use + "\n")
    policy = fa.parse_policy(
        head + MECHANISMS["reserves in precedence"].replace("CAP", "4"), audit=True
    )
    data = {
        "id": [f"R{i:02d}" for i in range(12)],
        "group": ["x", "y", "z"] * 4,
        "need": [i % 10 for i in range(12)],
        "poor": [False, True] * 6,
    }
    flips = flip_audit(fa.evaluate(policy, data), capacity=4, what_if_limit=10)
    assert flips.capacity is None
    assert flips.served_note is not None
    assert "what_if_limit" in flips.served_note
    assert flip_audit(fa.evaluate(policy, data), capacity=4).served_note is None


# Rotation rounds and matching: the mechanism decides the whole pool at once, and the what-if
# re-runs it with the one resident changed. The brute force below is written independently:
# it rebuilds the data by hand and asks the public API.
ROTATION = "allocation:\n  rotation: {capacity: CAP, bands: need, served_go_last: GO_LAST, max_wait: 3}\n"
MATCHING = """attributes_more: {}
allocation:
  matching:
    preferences: [first, second]
    resources:
      - {id: a, capacity: CAP}
      - {id: b, capacity: 2, priority: "1 if poor else 0"}
"""


def _whole_pool_policy(mechanism: str, capacity: int, go_last: bool = True) -> fa.Policy:
    head = HEAD.replace("RESERVE_USE\n", "")
    if mechanism == "rotation":
        tail = ROTATION.replace("CAP", str(capacity)).replace("GO_LAST", str(go_last).lower())
    else:
        head = head.replace(
            "  poor: {type: bool}\n",
            "  poor: {type: bool}\n  first: {type: category, levels: [a, b]}\n"
            "  second: {type: category, levels: [a, b]}\n",
        )
        tail = MATCHING.replace("attributes_more: {}\n", "").replace("CAP", str(capacity))
    return fa.parse_policy(head + tail, audit=True)


def _with_choices(data: dict[str, Any], draw: Any) -> dict[str, Any]:
    n = len(data["id"])
    first = draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))
    return {**data, "first": first, "second": ["b" if f == "a" else "a" for f in first]}


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["rotation, served go last", "rotation, need first", "matching"])
@settings(max_examples=15, deadline=None)
@given(pool=_pools(), extra=st.data(), earlier_round=st.booleans())
def test_flip_served_changes_under_rotation_and_matching_equal_brute_force(
    mechanism: str, pool: Any, extra: Any, earlier_round: bool
) -> None:
    data, capacity = pool
    kind = mechanism.split(",")[0]
    policy = _whole_pool_policy(kind, capacity, go_last=mechanism.endswith("go last"))
    state = None
    if kind == "matching":
        data = _with_choices(data, extra.draw)
    elif earlier_round:
        # The audit of the next round, from the state a first round left (some served once).
        state = fa.run_round(policy, data, capacity=capacity).state
    flips = flip_audit(fa.evaluate(policy, data), state=state)
    assert flips.served_note is None
    got = {r.value: r.served_changes for r in flips.results if r.attribute == "group"}
    expected = _brute(policy, data, capacity, state)
    assert got == {v: c for v, c in expected.items() if v in got}
    assert got  # the bonus rule reads `group`: it is audited


def test_the_bundled_rotation_and_matching_examples_get_served_status() -> None:
    for example in ("activity-places", "facility-slots"):
        folder = ROOT / "examples" / example
        policy = fa.load_policy(folder / "policy.yaml", audit=True)
        flips = flip_audit(fa.evaluate(policy, folder / "residents.csv"))
        assert flips.served_note is None
        assert flips.capacity is not None
        assert all(r.served_changes is not None for r in flips.results)
