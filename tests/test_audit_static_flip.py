"""The static proof and the counterfactual flip audit (§2.1.1 protected attributes)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc.audit._flip import FlipAudit, FlipResult, flip_audit
from fairalloc.audit._static import StaticProof, static_proof

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"
POLICY_TEXT = (EXAMPLE / "policy.yaml").read_text(encoding="utf-8")
RESIDENTS = EXAMPLE / "residents.csv"
INDEPENDENT = ["gender", "occupation", "ethnicity", "disability"]

BONUS = """    - id: civil-servant-bonus
      when: "occupation == civil_servant"
      points: 10
"""


def _generate(n: int, seed: int) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("elderly_generate", EXAMPLE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    columns: dict[str, Any] = module.generate(n, seed)
    return columns


def _with_priority_rule(text: str, rule: str) -> str:
    anchor = "  priority:\n"
    assert anchor in text
    return text.replace(anchor, anchor + rule, 1)


def _without_reserves(text: str) -> str:
    """The example policy with no reserve category (so served status is pure priority)."""
    use = re.search(r"  - attribute: hardship\n    reserve: special-hardship\n(?:    .*\n)+", text)
    reserves = re.search(r"  reserves:\n(?:    .*\n|      .*\n)+", text)
    assert use is not None
    assert reserves is not None
    return text.replace(use.group(0), "").replace(reserves.group(0), "")


@pytest.fixture(scope="module")
def unfair() -> fa.Policy:
    return fa.parse_policy(_with_priority_rule(POLICY_TEXT, BONUS), audit=True)


@pytest.fixture(scope="module")
def fair_audit(policy: fa.Policy) -> FlipAudit:
    return flip_audit(policy, RESIDENTS, check_independent=True)


# -- static proof -----------------------------------------------------------------------------


def test_static_proof_of_the_example(policy: fa.Policy) -> None:
    proof = static_proof(policy)
    assert proof.ok
    assert [a.attribute for a in proof.attributes] == [
        "age",
        "gender",
        "occupation",
        "ethnicity",
        "hardship",
        "disability",
    ]
    assert proof.independent == INDEPENDENT
    for name in INDEPENDENT:
        rec = proof.attribute(name)
        assert rec.status == "independent"
        assert rec.reads == ()
        assert rec.message == "proven independent: nothing reads it"

    age = proof.attribute("age")
    assert age.status == "justified"
    assert [(r.part, r.path, r.justified) for r in age.reads] == [
        ("rule:aged-60-plus", fa.ReadPath("age"), True)
    ]
    assert age.reads[0].source == "§2.3.3"
    assert "aged 60 and over" in (age.reads[0].why or "")

    hardship = proof.attribute("hardship")
    assert hardship.status == "justified"
    assert hardship.ground == "economic status"
    assert hardship.justified_parts == (
        "indicator:need.economic.hardship",
        "reserve:special-hardship",
    )
    assert {r.source for r in hardship.reads} == {"§2.3.3", "§2.1.1"}

    # Every part's reads, with paths through derived values; parameters read nothing.
    assert proof.parts["rule:waiting-time"] == (fa.ReadPath("waiting_days", ("months_waited",)),)
    assert proof.parts["rule:aged-60-plus"] == (fa.ReadPath("age"),)
    assert proof.attributes_read_by("tie_break:0") == ["waiting_days"]
    assert set(proof.parts) == set(fa.compile_policy(policy).reads)


def test_static_proof_renders(policy: fa.Policy) -> None:
    proof = static_proof(policy)
    doc = json.loads(json.dumps(proof.to_dict()))
    assert doc["ok"] is True
    assert [a["status"] for a in doc["attributes"]] == [
        "justified",
        "independent",
        "independent",
        "independent",
        "justified",
        "independent",
    ]
    assert doc["parts"]["rule:waiting-time"][0]["via"] == ["months_waited"]
    md = proof.to_markdown()
    _check_tables(md)
    assert md.startswith("## Static proof")
    assert "| attribute | status | read by | justification / source |" in md
    assert "| `gender` (gender) | independent | — | proven independent: nothing reads it |" in md
    assert "rule `aged-60-plus` -> `age`" in md
    assert "(§2.3.3)" in md
    assert "**Result:** no protected attribute is read without a justified use." in md
    assert repr(proof) == (
        "<StaticProof of elderly-care-places v2026.1: ok (4 independent, 2 justified)>"
    )


def test_static_proof_catches_an_unjustified_rule(unfair: fa.Policy) -> None:
    proof = static_proof(unfair)
    assert not proof.ok
    occupation = proof.attribute("occupation")
    assert occupation.status == "violation"
    (bad,) = proof.violations
    assert (bad.part, bad.path, bad.justified) == (
        "rule:civil-servant-bonus",
        fa.ReadPath("occupation"),
        False,
    )
    assert str(bad) == "rule `civil-servant-bonus` -> `occupation`"
    assert bad.where.startswith("<string>:")
    # The rest of the proof is unchanged by one bad rule.
    assert proof.attribute("age").status == "justified"
    assert proof.independent == ["gender", "ethnicity", "disability"]
    md = proof.to_markdown()
    assert "| `occupation` (occupation) | **violation** |" in md
    assert "**no justified use** for rule `civil-servant-bonus`" in md
    assert "1 read(s) of protected attributes without a justified use" in md
    # A compiled policy gives the same proof as the policy.
    compiled = fa.compile_policy(unfair, audit=True)
    assert static_proof(compiled).to_dict() == proof.to_dict()
    assert len(compiled.violations) == len(proof.violations)


DERIVED = """
policy: {id: derived, version: "1", title: Derived}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 10}
  age: {type: int, min: 0, max: 120, protected: true}
  hardship: {type: ordinal, levels: [none, low, high], protected: true}
  disability: {type: bool, protected: true}
derived:
  senior: "age >= 80"
  frail_senior: "senior and need >= 5"
  poor: "hardship >= high"
rules:
  priority:
    - {id: need-points, points: "need"}
    - {id: frail-senior-bonus, when: frail_senior, points: 3}
ranking:
  tie_break:
    - {by: "1 if poor else 0", order: desc}
    - {lottery: {seed: derived-seed}}
allocation: {capacity: 3}
"""


def _derived_population() -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    return [
        {
            "id": f"D{i:02d}",
            "need": int(rng.integers(0, 11)),
            "age": int(rng.integers(60, 100)),
            "hardship": ["none", "low", "high"][int(rng.integers(0, 3))],
            "disability": bool(rng.integers(0, 2)),
        }
        for i in range(25)
    ]


def test_protected_attributes_read_through_derived_values() -> None:
    policy = fa.parse_policy(DERIVED, audit=True)
    proof = static_proof(policy)
    age = proof.attribute("age")
    assert age.status == "violation"
    assert [(r.part, r.path) for r in age.reads] == [
        ("rule:frail-senior-bonus", fa.ReadPath("age", ("frail_senior", "senior")))
    ]
    assert str(age.reads[0]) == (
        "rule `frail-senior-bonus` -> derived `frail_senior` -> derived `senior` -> `age`"
    )
    hardship = proof.attribute("hardship")
    assert [(r.part, r.path) for r in hardship.reads] == [
        ("tie_break:0", fa.ReadPath("hardship", ("poor",)))
    ]
    assert proof.attribute("disability").status == "independent"

    audit = flip_audit(policy, _derived_population(), max_listed=50)
    assert audit.independent == ["disability"]
    age_flips = audit.attribute("age")
    assert age_flips.score_changes > 0
    assert age_flips.parts == ("rule:frail-senior-bonus",)
    assert age_flips.unjustified_parts == ("rule:frail-senior-bonus",)
    for r in audit.results_for("age"):
        for x in r.listed:
            assert x.parts == ("rule:frail-senior-bonus",)
            assert x.score[0] != x.score[1]
    # The tie-break changes ranks, never scores.
    hardship_flips = audit.attribute("hardship")
    assert hardship_flips.score_changes == 0
    assert hardship_flips.rank_changes > 0
    assert hardship_flips.parts == ("tie_break:0",)
    assert not audit.ok


# -- flip audit -------------------------------------------------------------------------------


def test_flip_audit_of_the_example(policy: fa.Policy) -> None:
    audit = flip_audit(policy, RESIDENTS)
    assert audit.ok
    assert audit.independent == INDEPENDENT
    assert audit.changed == ["age", "hardship"]
    for name in INDEPENDENT:
        summary = audit.attribute(name)
        assert not summary.evaluated
        assert summary.note == "proven independent: nothing reads it"
        assert audit.results_for(name) == []
    # Reserves: served status comes from the what-if allocation (see test_flip_what_if.py).
    assert audit.capacity == 40
    assert audit.served_note is None
    assert audit.attribute("hardship").served_changes > 0  # through the justified reserve

    age = audit.attribute("age")
    assert age.status == "justified"
    ages = fa.Population.load(RESIDENTS, policy).columns["age"]
    quartiles = np.quantile(ages, [0.25, 0.5, 0.75], method="lower")
    assert age.values == tuple(str(int(v)) for v in sorted({0, 130, *quartiles}))
    assert age.parts == ("rule:aged-60-plus",)
    assert age.unjustified_parts == ()
    assert age.score_changes == 0
    over_60 = int((ages >= 60).sum())
    zero = audit.result("age", "0")
    assert zero.n_compared == int((ages != 0).sum())
    # Everyone eligible at their own age loses eligibility at age 0, and only through the rule.
    ev = fa.evaluate(policy, RESIDENTS)
    assert zero.eligibility_changes == int(ev.eligible.sum()) <= over_60
    assert zero.rank_changes == zero.eligibility_changes

    hardship = audit.attribute("hardship")
    assert hardship.values == ("none", "low_income", "dibao", "tekun")
    assert hardship.parts == ("indicator:need.economic.hardship", "reserve:special-hardship")
    assert hardship.eligibility_changes == 0
    tekun = audit.result("hardship", "tekun")
    assert tekun.score_changes == tekun.n_compared > 0
    assert tekun.allocation_changes > 0  # the reserve's condition


def test_fair_policy_shows_no_flip_without_justified_use(fair_audit: FlipAudit) -> None:
    # Evaluated anyway (check_independent): the proof holds on the data, for every value.
    assert fair_audit.ok
    for name in INDEPENDENT:
        summary = fair_audit.attribute(name)
        assert summary.evaluated
        assert summary.status == "independent"
        assert summary.n_compared > 0
        assert summary.affected == 0
        assert summary.parts == ()
        assert summary.note == "no outcome changed"
        results = fair_audit.results_for(name)
        assert results
        for r in results:
            assert (r.eligibility_changes, r.score_changes, r.rank_changes) == (0, 0, 0)
            assert (r.allocation_changes, r.affected, r.listed) == (0, 0, ())
    gender = fair_audit.results_for("gender")
    assert [r.value for r in gender] == ["female", "male", "other", "undisclosed"]
    assert [r.value for r in fair_audit.results_for("disability")] == ["false", "true"]


def test_flip_audit_catches_the_unfair_rule(unfair: fa.Policy) -> None:
    audit = flip_audit(unfair, RESIDENTS, max_listed=5)
    assert not audit.ok
    occupation = audit.attribute("occupation")
    assert occupation.status == "violation"
    assert occupation.parts == ("rule:civil-servant-bonus",)
    assert occupation.unjustified_parts == ("rule:civil-servant-bonus",)
    to_cs = audit.result("occupation", "civil_servant")
    assert to_cs.score_rate == 1.0
    assert to_cs.rank_rate > 0
    assert to_cs.eligibility_changes == 0
    assert len(to_cs.listed) == 5
    ids = [x.id for x in to_cs.listed]
    assert ids == sorted(ids)
    for x in to_cs.listed:
        assert x.parts == ("rule:civil-servant-bonus",)
        assert x.score[1] == pytest.approx(x.score[0] + 10)
    # Changing a civil servant to anything else takes the points away.
    to_farmer = audit.result("occupation", "farmer")
    pop = fa.Population.load(RESIDENTS, unfair)
    civil = (unfair.attributes["occupation"].levels or []).index("civil_servant")
    assert to_farmer.score_changes == int((pop.columns["occupation"] == civil).sum()) > 0
    # Age and hardship keep their justified uses; the other attributes are untouched.
    assert audit.attribute("age").unjustified_parts == ()
    assert audit.independent == ["gender", "ethnicity", "disability"]
    md = audit.to_markdown()
    assert "**Result:** outcomes change through parts without a justified use:" in md
    assert "- `occupation`: rule `civil-servant-bonus`" in md
    assert "| `occupation` | civil_servant |" in md


def _changed_alone(pop: fa.Population, column: str, row: int, code: Any) -> fa.Population:
    values = pop.columns[column].copy()
    values[row] = code
    return pop.replace(column, values)


def _served(ev: fa.Evaluation, row: int, capacity: int) -> bool:
    """Served by a full re-allocation; where it refuses a tie at the cut-off (no lottery),
    by the ranking's listing order, as the audit documents."""
    listed = bool(ev.eligible[row]) and int(np.flatnonzero(ev.ranking.order == row)[0]) < capacity
    try:
        allocation = fa.allocate(ev, capacity=capacity)
    except ValueError as e:
        if "tied at the cut-off" not in str(e):
            raise
        return listed
    assert bool(allocation.served[row]) == listed
    return listed


def _score(ev: fa.Evaluation, row: int) -> tuple[int, ...]:
    """The score; for ``tiers``, every tier's value."""
    if ev.policy.policy.score.method == "tiers":
        return tuple(int(t) for t in ev.terms[row])
    return (int(ev.score_micro[row]),)


def _brute_force(
    policy: fa.Policy, pop: fa.Population, audit: FlipAudit, capacity: int | None
) -> int:
    """Re-evaluate and re-allocate once per resident and value; compare with the audit."""
    ev = fa.evaluate(policy, pop)
    checked = 0
    for result in audit.results:
        attr = policy.attributes[result.attribute]
        code: Any
        if attr.type in ("category", "ordinal"):
            code = (attr.levels or []).index(result.value)
        elif attr.type == "bool":
            code = result.value == "true"
        elif attr.type == "date":
            code = (dt.date.fromisoformat(result.value) - dt.date(1970, 1, 1)).days
        else:
            code = float(result.value)
        column = pop.columns[result.attribute]
        counts = dict.fromkeys(("eligibility", "score", "rank", "served", "affected"), 0)
        expected: dict[str, tuple[Any, ...]] = {}
        for row in np.flatnonzero(column != code):
            ev2 = fa.evaluate(policy, _changed_alone(pop, result.attribute, int(row), code))
            e = (bool(ev.eligible[row]), bool(ev2.eligible[row]))
            s = (_score(ev, int(row)), _score(ev2, int(row)))
            r = (int(ev.ranking.rank[row]), int(ev2.ranking.rank[row]))
            served = None
            if capacity is not None:
                served = (_served(ev, int(row), capacity), _served(ev2, int(row), capacity))
            flags = {
                "eligibility": e[0] != e[1],
                "score": s[0] != s[1],
                "rank": r[0] != r[1],
                "served": served is not None and served[0] != served[1],
            }
            for k, v in flags.items():
                counts[k] += v
            if any(flags.values()):
                counts["affected"] += 1
                expected[str(ev.ids[row])] = (e, r, served)
            checked += 1
        assert result.eligibility_changes == counts["eligibility"], result
        assert result.score_changes == counts["score"], result
        assert result.rank_changes == counts["rank"], result
        if capacity is not None:
            assert result.served_changes == counts["served"], result
        assert result.affected == counts["affected"], result
        listed = {x.id: (x.eligible, x.rank, x.served) for x in result.listed}
        assert listed == expected, result
    return checked


def test_vectorized_rank_and_served_equal_a_full_reallocation_per_resident() -> None:
    policy = fa.parse_policy(_without_reserves(POLICY_TEXT))
    assert policy.allocation is not None
    assert not policy.allocation.reserves
    pop = fa.Population.from_columns(_generate(30, 11), policy)
    for capacity in (8, 1, 29):
        audit = flip_audit(policy, pop, capacity=capacity, max_listed=30)
        assert audit.capacity == capacity
        assert audit.served_note is None
        assert audit.attribute("age").served_changes
        if capacity == 8:
            assert audit.attribute("hardship").served_changes
        assert _brute_force(policy, pop, audit, capacity) > 200


TIES = """
policy: {id: ties, version: "1", title: Ties}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 3}
  band: {type: ordinal, levels: [a, b, c], protected: true}
  member: {type: bool, protected: true}
justified_uses:
  - {attribute: band, rule: band-points, why: test, source: test}
  - {attribute: member, rule: member-only, why: test, source: test}
rules:
  eligibility:
    - {id: member-only, when: "member or need >= 2"}
  priority:
    - {id: need-points, points: "need"}
    - {id: band-points, when: "band >= b", points: 1}
"""


@pytest.mark.parametrize("lottery", [False, True])
def test_heavy_ties_with_and_without_lottery_equal_brute_force(lottery: bool) -> None:
    text = (
        TIES
        + (
            "ranking: {tie_break: [{lottery: {seed: tie-seed}}]}\n"
            if lottery
            else "ranking: {tie_break: [{by: need, order: desc}]}\n"
        )
        + "allocation: {capacity: 10}\n"
    )
    policy = fa.parse_policy(text)
    rng = np.random.default_rng(3)
    records = [
        {
            "id": f"T{i:02d}",
            "need": int(rng.integers(0, 4)),
            "band": ["a", "b", "c"][int(rng.integers(0, 3))],
            "member": bool(rng.integers(0, 2)),
        }
        for i in range(30)
    ][::-1]  # ids not in row order
    pop = fa.Population.from_records(records, policy)
    audit = flip_audit(policy, pop, max_listed=30)
    assert audit.capacity == 10
    assert audit.attribute("band").rank_changes > 0
    assert audit.attribute("band").served_changes
    assert audit.attribute("member").eligibility_changes > 0
    assert _brute_force(policy, pop, audit, 10) > 50
    # Without a capacity, served status is not computed.
    no_capacity = fa.parse_policy(text.replace("allocation: {capacity: 10}\n", ""))
    bare = flip_audit(no_capacity, pop, max_listed=30)
    assert bare.served_note == "no capacity (give capacity= or `allocation.capacity`)"
    assert bare.attribute("band").served_changes is None
    assert _brute_force(no_capacity, pop, bare, None) > 50


def test_served_status_with_ties_in_the_listing_order() -> None:
    """Without a lottery, residents tied on everything are listed by id; served follows."""
    text = TIES + "ranking: {tie_break: []}\nallocation: {capacity: 4}\n"
    policy = fa.parse_policy(text)
    records = [
        {"id": "A", "need": 3, "band": "a", "member": True},
        {"id": "B", "need": 3, "band": "a", "member": True},
        {"id": "C", "need": 2, "band": "b", "member": True},
        {"id": "D", "need": 2, "band": "a", "member": True},
        {"id": "E", "need": 1, "band": "a", "member": True},
        {"id": "F", "need": 0, "band": "b", "member": True},
    ]
    audit = flip_audit(policy, records, max_listed=10)
    # Scores A 3, B 3, C 3, D 2, E 1, F 1: capacity 4 serves A, B, C (tied, listed by id), D.
    # D at band b scores 3: tied with A, B and C for rank 1, listed after them, still served.
    d = next(x for x in audit.result("band", "b").listed if x.id == "D")
    assert (d.rank, d.served) == ((4, 1), (True, True))
    # E at band b scores 2: shares rank 4 with D, listed after D by id: not served. (The
    # allocation itself would refuse this tie at the cut-off; the audit uses the listing.)
    e = next(x for x in audit.result("band", "b").listed if x.id == "E")
    assert (e.rank, e.served) == ((5, 4), (False, False))
    a = next(x for x in audit.result("band", "b").listed if x.id == "A")
    assert (a.rank, a.served, a.score) == ((1, 1), (True, True), (3.0, 4.0))
    # F (band b) at band c keeps its point: nothing changes.
    assert "F" not in {x.id for x in audit.result("band", "c").listed}


def test_served_status_under_priority_allocation_on_the_example_without_reserves() -> None:
    policy = fa.parse_policy(_without_reserves(POLICY_TEXT))
    audit = flip_audit(policy, RESIDENTS, capacity=40, max_listed=3)
    assert audit.capacity == 40
    hardship = audit.result("hardship", "tekun")
    assert hardship.served_changes is not None
    assert hardship.served_changes > 0
    assert all(x.served is not None for x in hardship.listed)
    # Without a capacity argument the policy's own (40) applies.
    assert flip_audit(policy, RESIDENTS, attributes=["hardship"]).capacity == 40


def test_numbers_dates_and_unprotected_attributes(policy: fa.Policy) -> None:
    audit = flip_audit(policy, RESIDENTS, attributes=["moved_in", "waiting_days", "gender"])
    assert [a.attribute for a in audit.attributes] == ["moved_in", "waiting_days", "gender"]
    moved = audit.attribute("moved_in")
    assert moved.status == "unprotected"
    # Declared min 1900-01-01, no declared max: the latest date in the data; then quartiles.
    assert moved.values[0] == "1900-01-01"
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in moved.values)
    assert list(moved.values) == sorted(moved.values)
    assert moved.parts == ("rule:registered-resident",)
    assert moved.unjustified_parts == ()  # not protected: no justification needed
    waiting = audit.attribute("waiting_days")
    assert waiting.parts == ("rule:waiting-time", "tie_break:0")
    assert waiting.values[0] == "0"
    assert waiting.values[-1] == "3650"
    assert audit.attribute("gender").status == "independent"
    assert audit.ok


def test_an_evaluation_is_audited_as_its_policy_and_residents(policy: fa.Policy) -> None:
    ev = fa.evaluate(policy, RESIDENTS)
    a = flip_audit(ev, attributes=["hardship"], max_listed=4)
    b = flip_audit(policy, RESIDENTS, attributes=["hardship"], max_listed=4)
    assert a.to_dict() == b.to_dict()


def test_deterministic_whatever_the_row_order(policy: fa.Policy) -> None:
    pop = fa.Population.load(RESIDENTS, policy)
    shuffled = pop.take(np.random.default_rng(1).permutation(pop.n))
    a = flip_audit(policy, pop, max_listed=7)
    b = flip_audit(policy, shuffled, max_listed=7)
    assert a.to_dict() == b.to_dict()
    assert a.to_markdown() == b.to_markdown()
    assert flip_audit(policy, shuffled, max_listed=7, workers=3).to_dict() == a.to_dict()


def test_values_compared_in_threads_give_the_same_audit() -> None:
    # Enough residents, with a lottery and a bonus some values change, that several threads
    # fill the baseline's keys, codes and id ranks at once; and, without reserves, served
    # status placed by rank (compared in threads too).
    text = _with_priority_rule(_without_reserves(POLICY_TEXT), BONUS)
    policy = fa.parse_policy(text, audit=True)
    pop = fa.Population.from_columns(_generate(20_000, 5), policy)
    pop = pop.take(np.random.default_rng(2).permutation(pop.n))
    alone = flip_audit(policy, pop, capacity=500, attributes=["age", "hardship", "occupation"])
    assert alone.attribute("occupation").served_changes
    for workers in (2, 4):
        threaded = flip_audit(
            policy,
            pop,
            capacity=500,
            attributes=["age", "hardship", "occupation"],
            workers=workers,
        )
        assert threaded.to_dict() == alone.to_dict()


def test_rendering(fair_audit: FlipAudit, unfair: fa.Policy) -> None:
    doc = json.loads(json.dumps(fair_audit.to_dict()))
    assert doc["ok"] is True
    assert doc["independent"] == INDEPENDENT
    assert doc["served_note"] is None
    first = doc["results"][0]
    assert first["attribute"] == "age"
    assert first["value"] == "0"
    assert first["eligibility_rate"] == pytest.approx(
        first["eligibility_changes"] / first["n_compared"]
    )
    md = fair_audit.to_markdown()
    assert md.startswith("## Counterfactual flip audit")
    assert "| `gender` | independent | female, male, other, undisclosed |" in md
    assert "### Changes by value" in md
    assert "### Affected residents" in md
    assert "**Result:** no outcome changes through a part without a justified use." in md
    _check_tables(md)
    assert repr(fair_audit).startswith("<FlipAudit of elderly-care-places v2026.1: 200 residents")
    bad = flip_audit(unfair, RESIDENTS, attributes=["occupation"], max_listed=0)
    assert bad.result("occupation", "civil_servant").listed == ()
    assert repr(bad).endswith("outcomes change with: occupation; unjustified changes>")
    assert "FlipResult" in repr(bad.results[0])


def _check_tables(md: str) -> None:
    """Every row of every table has as many cells as its header."""
    width = 0
    for line in md.splitlines():
        if not line.startswith("|"):
            width = 0
        elif not width:
            width = line.count("|")
        else:
            assert line.count("|") == width, line


def test_an_alternative_that_cannot_be_evaluated_is_reported() -> None:
    text = """
policy: {id: div, version: "1", title: Div}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 120, protected: true}
justified_uses:
  - {attribute: age, rule: inverse-age, why: test, source: test}
rules:
  priority: [{id: inverse-age, points: "100 / age"}]
"""
    policy = fa.parse_policy(text)
    audit = flip_audit(policy, [{"id": "a", "age": 50}, {"id": "b", "age": 70}])
    zero = audit.result("age", "0")
    assert zero.error is not None
    assert "undefined" in zero.error
    assert zero.n_compared == 2
    assert zero.affected == 0
    assert audit.result("age", "120").score_changes == 2
    assert "error:" in audit.to_markdown()


def test_argument_errors(policy: fa.Policy) -> None:
    ev = fa.evaluate(policy, RESIDENTS)
    with pytest.raises(TypeError, match="give the residents"):
        flip_audit(policy)
    with pytest.raises(TypeError, match="not with an evaluation"):
        flip_audit(ev, RESIDENTS)
    with pytest.raises(ValueError, match="unknown attribute `sex`"):
        flip_audit(ev, attributes=["sex"])
    with pytest.raises(ValueError, match="is the id"):
        flip_audit(ev, attributes=["resident_id"])
    with pytest.raises(TypeError, match="not one string"):
        flip_audit(ev, attributes="age")
    with pytest.raises(ValueError, match="max_listed"):
        flip_audit(ev, max_listed=-1)
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        flip_audit(ev, workers=0)
    with pytest.raises(KeyError, match="was not tried"):
        flip_audit(ev, attributes=["hardship"]).result("hardship", "rich")
    with pytest.raises(KeyError, match="not a protected attribute"):
        static_proof(policy).attribute("waiting_days")


def test_types_are_exported_for_the_report() -> None:
    assert isinstance(static_proof(fa.load_policy(EXAMPLE / "policy.yaml")), StaticProof)
    assert FlipResult("x", "1", 0).affected_rate == 0.0
    assert FlipResult("x", "1", 0).served_rate is None


METHODS = """
policy: {id: methods, version: "1", title: Methods}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 3}
  band: {type: ordinal, levels: [a, b, c], protected: true}
  member: {type: bool, protected: true}
  born: {type: date, min: 1920-01-01, max: 2020-12-31, protected: true}
  weight: {type: float, min: 0, max: 5, protected: true}
parameters:
  cut: 1950-01-01
justified_uses:
  - {attribute: band, scale: s, why: test, source: test}
  - {attribute: member, rule: member-only, why: test, source: test}
  - {attribute: born, rule: born-points, why: test, source: test}
  - {attribute: weight, tie_break: 0, why: test, source: test}
scales:
  s: {indicators: {b: {of: band, lookup: {a: 1, b: 2, c: 3}}}}
  r: {indicators: {n: {points: "need + 1"}}}
rules:
  eligibility:
    - {id: member-only, when: "member or need >= 2"}
  priority:
    - {id: born-points, when: "born < cut", points: 1}
    - {id: base, points: 1}
ranking: {tie_break: [{by: weight, order: asc}, {lottery: {seed: methods}}]}
allocation: {capacity: 7}
"""


@pytest.mark.parametrize("method", ["sum", "product", "tiers"])
def test_score_methods_dates_and_floats_equal_brute_force(method: str) -> None:
    text = (
        METHODS + f"score: {{method: {method}, terms: [{{of: s}}, {{of: r}}, {{of: priority}}]}}\n"
    )
    policy = fa.parse_policy(text)
    rng = np.random.default_rng(9)
    records = [
        {
            "id": f"X{i:02d}",
            "need": int(rng.integers(0, 4)),
            "band": "abc"[int(rng.integers(0, 3))],
            "member": bool(rng.integers(0, 2)),
            "born": f"{int(rng.integers(1930, 1970))}-01-01",
            "weight": float(rng.integers(0, 3)),
        }
        for i in range(25)
    ]
    pop = fa.Population.from_records(records, policy)
    audit = flip_audit(policy, pop, max_listed=30)
    assert audit.attribute("born").values[:1] == ("1920-01-01",)
    assert audit.attribute("weight").values[-1] == "5.0"
    assert audit.attribute("weight").parts == ("tie_break:0",)
    assert audit.attribute("born").parts == ("rule:born-points",)
    assert audit.ok
    assert _brute_force(policy, pop, audit, 7) > 200
