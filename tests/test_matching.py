"""Matching by resident-proposing deferred acceptance: concrete cases, properties, a reference."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc import MatchingResult, ResourceCutoff, match
from tests import oracle
from tests.strategies import residents

FACILITY = Path(__file__).resolve().parent.parent / "examples" / "facility-slots"

CLUBS = """
policy: {id: clubs, version: "1", title: Clubs}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 120}
  need: {type: int, min: 0, max: 10}
  member: {type: bool}
  c1: {type: category, levels: [gym, pool, chess, none]}
  c2: {type: category, levels: [gym, pool, chess, none]}
  c3: {type: category, levels: [gym, pool, chess, none]}
rules:
  priority: [{id: need-points, points: need}]
ranking: {tie_break: [{lottery: {seed: s1}}]}
allocation:
  matching:
    resources:
      - {id: gym, capacity: 1}
      - {id: pool, capacity: 2, priority: "1 if member else 0"}
      - {id: chess, capacity: 1, eligible: "age >= 60"}
    preferences: [c1, c2, c3]
    units_per_resident: UNITS
"""


def _clubs(units: int = 1, extra: str = "") -> fa.Policy:
    return fa.parse_policy(CLUBS.replace("UNITS", str(units)) + extra)


def _rec(rid: str, need: int, age: int, member: bool, *choices: str) -> dict[str, Any]:
    c = [*choices, "none", "none", "none"][:3]
    return {
        "id": rid,
        "need": need,
        "age": age,
        "member": member,
        "c1": c[0],
        "c2": c[1],
        "c3": c[2],
    }


# Priorities: gym by need (a b e c d f); pool members first (c d a b e f); chess: b c (age >= 60).
PEOPLE = [
    _rec("a", 9, 30, False, "gym", "pool"),
    _rec("b", 8, 70, False, "gym", "chess", "pool"),
    _rec("c", 5, 65, True, "chess", "gym"),
    _rec("d", 3, 20, True, "pool", "pool", "gym"),  # a repeat is skipped
    _rec("e", 7, 40, False, "pool", "none", "gym"),  # the list ends at `none`
    _rec("f", 1, 50, False, "chess", "pool"),  # may not hold chess
]


# -- concrete cases ---------------------------------------------------------------------------


def test_one_unit_each_concrete_outcome() -> None:
    m = match(_clubs(), PEOPLE)
    assert m.assignment() == {"a": ["gym"], "b": ["chess"], "d": ["pool"], "e": ["pool"]}
    assert m.proposals == 8  # a 1, b 2, c 2, d 1, e 1, f 1 (chess is not offered to f)
    assert [c.to_dict() for c in m.cutoffs()] == [
        {"resource": "gym", "capacity": 1, "used": 1, "left": 0, "demand": 4,
         "last_rank": 1, "last_id": "a"},
        {"resource": "pool", "capacity": 2, "used": 2, "left": 0, "demand": 5,
         "last_rank": 5, "last_id": "e"},
        {"resource": "chess", "capacity": 1, "used": 1, "left": 0, "demand": 2,
         "last_rank": 1, "last_id": "b"},
    ]  # fmt: skip
    recs = {r["id"]: r for r in m.to_dicts()}
    assert recs["b"]["choices"] == [2]
    assert recs["b"]["preferences"] == ["gym", "chess", "pool"]
    assert recs["d"]["preferences"] == ["pool", "gym"]
    assert recs["e"]["preferences"] == ["pool"]
    assert recs["f"]["priority_ranks"] == {"chess": None, "pool": 6}
    assert recs["c"]["priority_ranks"] == {"chess": 2, "gym": 4}
    assert recs["c"] == {
        "id": "c", "eligible": True, "score": 5.0, "preferences": ["chess", "gym"],
        "priority_ranks": {"chess": 2, "gym": 4}, "resources": [], "choices": [],
        "served": False,
    }  # fmt: skip
    assert m.holders("pool") == ["d", "e"]
    assert m.used() == [1, 2, 1]
    assert m.n_served == 4
    assert list(m.units) == [1, 1, 0, 1, 1, 0]


def test_two_units_each_concrete_outcome() -> None:
    m = match(_clubs(units=2), PEOPLE)
    # d displaces b from the pool (members first); b keeps chess, its list exhausted.
    assert m.assignment() == {"a": ["gym", "pool"], "b": ["chess"], "d": ["pool"]}
    assert m.proposals == 11
    recs = {r["id"]: r for r in m.to_dicts()}
    assert recs["a"]["choices"] == [1, 2]
    assert recs["b"]["choices"] == [2]
    assert [(c.resource, c.last_id, c.last_rank) for c in m.cutoffs()] == [
        ("gym", "a", 1),
        ("pool", "a", 3),
        ("chess", "b", 1),
    ]


def test_capacities_override() -> None:
    m = match(_clubs(), PEOPLE, capacities={"gym": 2})
    assert m.assignment() == {
        "a": ["gym"],
        "b": ["gym"],
        "c": ["chess"],
        "d": ["pool"],
        "e": ["pool"],
    }
    assert m.capacities == (2, 2, 1)
    closed = match(_clubs(), PEOPLE, capacities={"gym": 0, "pool": 0, "chess": 0})
    assert closed.assignment() == {}
    assert [c.last_id for c in closed.cutoffs()] == [None, None, None]
    assert closed.proposals == 11  # every acceptable entry is tried and rejected


def test_ineligible_residents_take_no_part() -> None:
    policy = fa.parse_policy(
        CLUBS.replace("UNITS", "1").replace(
            "rules:\n", 'rules:\n  eligibility: [{id: adult, when: "age >= 25"}]\n'
        )
    )
    m = match(policy, PEOPLE)
    # d (20) no longer takes the pool: f gets it after e.
    assert m.assignment() == {"a": ["gym"], "b": ["chess"], "e": ["pool"], "f": ["pool"]}
    rec = {r["id"]: r for r in m.to_dicts()}["d"]
    assert rec["eligible"] is False
    assert rec["priority_ranks"] == {"pool": None, "gym": None}


def test_equal_priority_goes_to_the_lottery() -> None:
    people = [_rec(f"t{i}", 4, 30, False, "gym") for i in range(6)]
    m = match(_clubs(), people)
    winner = min((f"t{i}" for i in range(6)), key=lambda r: fa.lottery_key("s1", r))
    assert m.assignment() == {winner: ["gym"]}
    other_seed = fa.parse_policy(CLUBS.replace("UNITS", "1").replace("seed: s1", "seed: s2"))
    winner2 = min((f"t{i}" for i in range(6)), key=lambda r: fa.lottery_key("s2", r))
    assert match(other_seed, people).assignment() == {winner2: ["gym"]}


def test_shared_lottery_decides_ties_left_by_the_ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    import fairalloc._ranking as ranking_module

    # A ranking whose own draw leaves everyone tied: the matching draws the shared lottery.
    monkeypatch.setattr(
        ranking_module, "lottery_keys", lambda seed, ids: np.zeros(len(list(ids)), np.uint64)
    )
    people = [_rec(f"t{i}", 4, 30, False, "gym") for i in range(5)]
    ev = fa.evaluate(_clubs(), people)
    assert set(ev.ranking.rank.tolist()) == {1}
    winner = min((f"t{i}" for i in range(5)), key=lambda r: fa.lottery_key("s1", r))
    assert match(ev).assignment() == {winner: ["gym"]}


def test_colliding_lottery_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import fairalloc._ranking as ranking_module
    import fairalloc.allocation._matching as matching_module

    def zeros(seed: str, ids: Any) -> np.ndarray:
        return np.zeros(len(list(ids)), np.uint64)

    monkeypatch.setattr(ranking_module, "lottery_keys", zeros)
    monkeypatch.setattr(matching_module, "lottery_keys", zeros)
    people = [_rec("x", 4, 30, False, "gym"), _rec("y", 4, 30, False, "gym")]
    with pytest.raises(ValueError, match="lottery keys"):
        match(_clubs(), people)


def test_matching_needs_a_published_lottery() -> None:
    no_lottery = fa.parse_policy(
        CLUBS.replace("UNITS", "1").replace(
            "ranking: {tie_break: [{lottery: {seed: s1}}]}", "ranking: {tie_break: [{by: age}]}"
        )
    )
    with pytest.raises(ValueError, match="published lottery"):
        match(no_lottery, PEOPLE)
    with pytest.raises(ValueError, match="published lottery"):
        match(fa.evaluate(no_lottery, PEOPLE))


def test_choices_may_not_decide_priority() -> None:
    with pytest.raises(fa.PolicyError) as info:
        fa.parse_policy(
            CLUBS.replace("UNITS", "1").replace(
                "priority: [{id: need-points, points: need}]",
                "priority: [{id: need-points, points: need},"
                ' {id: loyal, when: "c1 == gym", points: 5}]',
            )
        )
    assert [i.code for i in info.value.issues] == ["FA176"]
    assert "rule `loyal` reads the choice `c1`" in info.value.issues[0].message
    with pytest.raises(fa.PolicyError, match="resource `chess` reads the choice `c2`"):
        fa.parse_policy(
            CLUBS.replace("UNITS", "1")
            .replace("rules:", "derived: {keen: \"c2 != none\"}\nrules:")
            .replace("{id: chess, capacity: 1, eligible: \"age >= 60\"}",
                     "{id: chess, capacity: 1, eligible: \"age >= 60 and keen\"}")
        )  # fmt: skip


def test_misspelt_choice_levels_and_mixed_mechanisms_are_refused() -> None:
    text = CLUBS.replace("UNITS", "1")
    levels = re.search(r"levels: \[([^\]]*)\]", text)
    assert levels is not None
    with pytest.raises(fa.PolicyError) as info:
        fa.parse_policy(text.replace(levels.group(0), levels.group(0).replace("gym", "gmy", 1)))
    assert info.value.issues[0].code == "FA172"
    assert info.value.issues[0].hint == "did you mean `gym`?"
    with pytest.raises(fa.PolicyError, match="a matching stands alone"):
        fa.parse_policy(text.replace("matching:", "capacity: 3\n  matching:", 1))


def test_errors() -> None:
    plain = fa.parse_policy("""
policy: {id: p, version: "1", title: P}
attributes: {id: {type: str, role: id}}
ranking: {tie_break: [{lottery: {seed: s}}]}
allocation: {capacity: 2}
""")
    with pytest.raises(ValueError, match=r"no `allocation\.matching`"):
        match(plain, [{"id": "a"}])
    with pytest.raises(ValueError, match=r"no `allocation\.matching`"):
        match(fa.evaluate(plain, [{"id": "a"}]))
    policy = _clubs()
    with pytest.raises(ValueError, match="no resource `tennis`"):
        match(policy, PEOPLE, capacities={"tennis": 1})
    with pytest.raises(ValueError, match="at least 0"):
        match(policy, PEOPLE, capacities={"gym": -1})
    with pytest.raises(ValueError, match="whole number"):
        match(policy, PEOPLE, capacities={"gym": True})
    with pytest.raises(ValueError, match="whole number"):
        match(policy, PEOPLE, capacities={"gym": 1.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="give the residents"):
        match(policy)
    ev = fa.evaluate(policy, PEOPLE)
    with pytest.raises(TypeError, match="not with an evaluation"):
        match(ev, PEOPLE)
    with pytest.raises(TypeError, match="cannot match"):
        match("policy.yaml", PEOPLE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"use fairalloc\.match\(\)"):
        fa.allocate(policy, PEOPLE)
    ev.population = None
    with pytest.raises(ValueError, match="choices"):
        match(ev)


def test_sources_agree_and_numpy_capacities() -> None:
    policy = _clubs()
    a = match(policy, PEOPLE)
    b = match(fa.compile_policy(policy), PEOPLE)
    c = match(fa.evaluate(policy, PEOPLE), capacities={"gym": np.int64(1)})  # type: ignore[dict-item]
    assert a.to_json() == b.to_json() == c.to_json()


def test_no_residents() -> None:
    m = match(_clubs(), [])
    assert m.assignment() == {}
    assert m.proposals == 0
    assert m.to_dicts() == []
    assert m.used() == [0, 0, 0]


def test_conversions_and_display() -> None:
    m = match(_clubs(), PEOPLE)
    doc = json.loads(m.to_json())
    assert doc["policy"] == {"id": "clubs", "version": "1"}
    assert doc["mechanism"] == "deferred-acceptance"
    assert doc["lottery_seed"] == "s1"
    assert (doc["eligible"], doc["served"], doc["proposals"]) == (6, 4, 8)
    assert [r["id"] for r in doc["residents"]] == ["a", "b", "c", "d", "e", "f"]
    assert m.to_json(indent=2) != m.to_json()
    assert repr(m) == "<MatchingResult: 3 resources, 4 of 4 units given; 4 served of 6 eligible>"
    page = m._repr_html_()
    assert "<th scope='col'>cut-off rank</th>" in page
    assert "<td>pool</td><td>2</td><td>2</td><td>0</td><td>5</td><td>5</td><td>e</td>" in page
    df = m.to_pandas()
    assert list(df.index) == ["a", "b", "c", "d", "e", "f"]
    assert df["served"].tolist() == [True, True, False, True, True, False]
    assert df["choice"].tolist()[:2] == [1, 2]
    assert df["choice"].isna().tolist() == [False, False, True, False, False, True]
    assert df["resources"].tolist()[1] == ("chess",)
    assert df["holds.pool"].tolist() == [False, False, False, True, True, False]
    cut = m.cutoffs()[0]
    assert isinstance(cut, ResourceCutoff)
    assert cut.left == 0
    with pytest.raises(KeyError, match="no resource"):
        m.holders("tennis")


# -- the example ------------------------------------------------------------------------------


def test_facility_example() -> None:
    policy = fa.load_policy(FACILITY / "policy.yaml")
    m = match(policy, FACILITY / "residents.csv")
    assert isinstance(m, MatchingResult)
    assert m.used() == list(m.capacities) == [24, 24, 16, 12, 18, 10]
    assert (int(m.evaluation.eligible.sum()), m.n_served, m.proposals) == (137, 104, 188)
    ev = m.evaluation
    for rid in m.holders("seniors_gym_fri"):
        assert ev.population is not None
        assert ev.population.columns["age"][ev.index_of(rid)] >= 60
    club = m.holders("pingpong_thu_club")
    members = ev.population.columns["club_member"] if ev.population else None
    assert members is not None
    assert sum(bool(members[ev.index_of(r)]) for r in club) >= 1


# -- the reference and the properties ---------------------------------------------------------


class Ref:
    """The inputs of a matching read back in plain Python, and a slow reference DA."""

    def __init__(self, policy: fa.Policy, records: list[dict[str, Any]], m: MatchingResult):
        spec = policy.allocation.matching  # type: ignore[union-attr]
        assert spec is not None
        ev = m.evaluation
        self.k = spec.units_per_resident
        self.resources = [r.id for r in spec.resources]
        self.caps = dict(zip(self.resources, m.capacities, strict=True))
        seed = policy.ranking.tie_break[-1].lottery.seed  # type: ignore[union-attr]
        self.ids = [str(r[policy.id_attribute]) for r in records]
        self.prefs: dict[str, list[str]] = {}
        self.key: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.may: dict[tuple[str, str], bool] = {}
        self.eligible: dict[str, bool] = {}
        for rec in records:
            rid = str(rec[policy.id_attribute])
            row = ev.index_of(rid)
            listed: list[str] = []
            for name in spec.preferences:
                level = rec[name]
                if level not in self.resources:
                    break
                if level not in listed:
                    listed.append(level)
            self.prefs[rid] = listed
            self.eligible[rid] = bool(ev.eligible[row])
            for j, res in enumerate(self.resources):
                self.may[rid, res] = self.eligible[rid] and bool(ev.resource_eligible[row, j])
                self.key[rid, res] = (
                    -float(ev.resource_priority[row, j]),
                    -int(ev.score_micro[row]),
                    int(ev.ranking.rank[row]),
                    oracle.lottery_key(seed, rid),
                )

    def acceptable(self, rid: str) -> list[str]:
        return [r for r in self.prefs[rid] if self.may[rid, r]]

    def deferred_acceptance(self) -> tuple[dict[str, set[str]], int]:
        """Rounds of simultaneous proposals; every resource re-sorts all it holds each round."""
        holding: dict[str, set[str]] = {i: set() for i in self.ids}
        nxt = dict.fromkeys(self.ids, 0)
        admitted: dict[str, list[str]] = {r: [] for r in self.resources}
        proposals = 0
        while True:
            offers: dict[str, list[str]] = {r: [] for r in self.resources}
            for i in self.ids:
                mine = self.acceptable(i)
                while len(holding[i]) + sum(i in o for o in offers.values()) < self.k and nxt[
                    i
                ] < len(mine):
                    offers[mine[nxt[i]]].append(i)
                    nxt[i] += 1
                    proposals += 1
            if not any(offers.values()):
                break
            for r in self.resources:
                priority = {i: self.key[i, r] for i in admitted[r] + offers[r]}
                pool = sorted(priority, key=priority.__getitem__)
                keep, drop = pool[: self.caps[r]], pool[self.caps[r] :]
                admitted[r] = keep
                for i in keep:
                    holding[i].add(r)
                for i in drop:
                    holding[i].discard(r)
        return holding, proposals


def _held(ref: Ref, m: MatchingResult) -> dict[str, list[str]]:
    got = m.assignment()
    return {i: got.get(i, []) for i in ref.ids}


def _check_properties(ref: Ref, m: MatchingResult) -> None:
    held = _held(ref, m)
    holders = {r: [i for i in ref.ids if r in held[i]] for r in ref.resources}
    for r in ref.resources:
        assert len(holders[r]) <= ref.caps[r], f"{r} over capacity"
    for i in ref.ids:
        assert len(held[i]) <= ref.k
        assert len(set(held[i])) == len(held[i])
        assert held[i] == [r for r in ref.prefs[i] if r in held[i]], "held in preference order"
        for r in held[i]:
            assert ref.may[i, r], f"{i} may not hold {r}"
    for i in ref.ids:
        for r in ref.acceptable(i):
            if r in held[i]:
                continue
            pos = ref.prefs[i].index(r)
            wants = len(held[i]) < ref.k or any(ref.prefs[i].index(h) > pos for h in held[i])
            if not wants:
                continue
            # Non-wastefulness: a resource it wants has no free unit.
            assert len(holders[r]) == ref.caps[r], f"{r} wasted while {i} wants it"
            # Stability: and every holder has higher priority there.
            assert all(ref.key[j, r] < ref.key[i, r] for j in holders[r]), f"({i}, {r}) blocks"


@st.composite
def matching_policies(
    draw: st.DrawFn, *, max_resources: int = 4, max_capacity: int = 3, units: int | None = None
) -> fa.Policy:
    n_res = draw(st.integers(2, max_resources))
    n_pref = draw(st.integers(2, 3))
    ids = [f"r{i}" for i in range(n_res)]
    resources = []
    for rid in ids:
        res: dict[str, Any] = {"id": rid, "capacity": draw(st.integers(0, max_capacity))}
        when = draw(st.sampled_from([True, True, "age >= 60", "member", "need >= 2"]))
        if when is not True:
            res["eligible"] = when
        prio = draw(st.sampled_from([None, None, "need", "1 if member else 0", "age"]))
        if prio is not None:
            res["priority"] = prio
        resources.append(res)
    rules: dict[str, Any] = {"priority": [{"id": "p", "points": "need"}]}
    if draw(st.booleans()):
        rules["priority"].append({"id": "q", "when": "member", "points": 2})
    if draw(st.booleans()):
        rules["eligibility"] = [{"id": "adult", "when": "age >= 18"}]
    chain: list[dict[str, Any]] = []
    if draw(st.booleans()):
        chain.append({"by": "age", "order": draw(st.sampled_from(["asc", "desc"]))})
    chain.append({"lottery": {"seed": draw(st.sampled_from(["s1", "2026", "published"]))}})
    attributes: dict[str, Any] = {
        "id": {"type": "str", "role": "id"},
        "age": {"type": "int", "min": 0, "max": 100},
        "need": {"type": "int", "min": 0, "max": 3},
        "member": {"type": "bool"},
    }
    for j in range(n_pref):
        attributes[f"choice_{j + 1}"] = {"type": "category", "levels": [*ids, "none"]}
    doc = {
        "policy": {"id": "gen", "version": "1", "title": "generated"},
        "attributes": attributes,
        "rules": rules,
        "ranking": {"tie_break": chain},
        "allocation": {
            "matching": {
                "resources": resources,
                "preferences": [f"choice_{j + 1}" for j in range(n_pref)],
                "units_per_resident": units or draw(st.sampled_from([1, 1, 2])),
            }
        },
    }
    return fa.parse_policy(json.dumps(doc))  # JSON is YAML


@given(policy=matching_policies(), data=st.data())
def test_properties_and_reference_agree(policy: fa.Policy, data: st.DataObject) -> None:
    records = data.draw(residents(policy, max_size=14))
    note(json.dumps(records))
    m = match(policy, records)
    ref = Ref(policy, records, m)
    _check_properties(ref, m)
    holding, proposals = ref.deferred_acceptance()
    assert {i: sorted(h) for i, h in holding.items()} == {
        i: sorted(h) for i, h in _held(ref, m).items()
    }
    assert proposals == m.proposals
    # Determinism and anonymity: same inputs, any row order, identical bytes.
    assert match(policy, records).to_json() == m.to_json()
    shuffled = list(records)
    random.Random(data.draw(st.integers(0, 10**6))).shuffle(shuffled)
    assert match(policy, shuffled).to_json() == m.to_json()


@given(data=st.data())
def test_capacities_override_changes_only_capacities(data: st.DataObject) -> None:
    policy = data.draw(matching_policies())
    records = data.draw(residents(policy, max_size=10))
    spec = policy.allocation.matching  # type: ignore[union-attr]
    assert spec is not None
    caps = {r.id: data.draw(st.integers(0, 4)) for r in spec.resources}
    m = match(policy, records, capacities=caps)
    assert m.capacities == tuple(caps.values())
    ref = Ref(policy, records, m)
    _check_properties(ref, m)
    assert {i: sorted(h) for i, h in ref.deferred_acceptance()[0].items()} == {
        i: sorted(h) for i, h in _held(ref, m).items()
    }


def _lists(resources: list[str], longest: int) -> list[list[str]]:
    """Every ordered list of distinct resources up to ``longest`` long (the empty one too)."""
    return [list(p) for n in range(longest + 1) for p in itertools.permutations(resources, n)]


def _choice(m: MatchingResult, rid: str, truth: list[str]) -> int:
    """Position in the true list of what ``rid`` holds (len(truth) when nothing in it)."""
    held = m.assignment().get(rid, [])
    return min((truth.index(r) for r in held if r in truth), default=len(truth))


@given(policy=matching_policies(max_resources=3, max_capacity=2, units=1), data=st.data())
def test_no_resident_gains_by_misreporting(policy: fa.Policy, data: st.DataObject) -> None:
    records = data.draw(residents(policy, min_size=3, max_size=5))
    spec = policy.allocation.matching  # type: ignore[union-attr]
    assert spec is not None
    names = spec.preferences
    ids = [r.id for r in spec.resources]
    truthful = match(policy, fa.Population.from_records(records, policy))
    ref = Ref(policy, records, truthful)
    for i, rec in enumerate(records):
        rid = str(rec["id"])
        truth = ref.prefs[rid]
        honest = _choice(truthful, rid, truth)
        if honest == 0:
            continue  # its first choice already: nothing to gain
        for lie in _lists(ids, len(names)):
            if lie == truth:
                continue
            changed = dict(rec)
            changed.update(dict(zip(names, [*lie, *["none"] * len(names)], strict=False)))
            pop = fa.Population.from_records([*records[:i], changed, *records[i + 1 :]], policy)
            got = _choice(match(policy, pop), rid, truth)
            assert got >= honest, f"{rid} gains by reporting {lie} instead of {truth}"


def test_public_names_are_documented() -> None:
    import inspect

    assert inspect.getdoc(match)
    for cls in (MatchingResult, ResourceCutoff):
        assert inspect.getdoc(cls)
        for name, member in vars(cls).items():
            if name.startswith("_") or (not callable(member) and not isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"
