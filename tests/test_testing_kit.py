"""fairalloc.testing: strategies, property checks and their counterexamples."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.testing import (
    PROFILES,
    PROPERTIES,
    PropertyFailure,
    attribute_values,
    check_allocation,
    check_anonymity,
    check_determinism,
    check_equal_treatment,
    check_need_monotonicity,
    check_protected_invariance,
    plan_checks,
    populations,
    resident,
    residents,
)

ROOT = Path(__file__).resolve().parent.parent
ELDERLY = ROOT / "examples" / "elderly-care" / "policy.yaml"
UNFAIR = ROOT / "examples" / "elderly-care" / "unfair-policy.yaml"
SLOTS = ROOT / "examples" / "facility-slots" / "policy.yaml"
ACTIVITY = ROOT / "examples" / "activity-places" / "policy.yaml"

#: Enough examples to find the crafted faults below, few enough to stay quick.
FEW = settings(max_examples=30, database=None, derandomize=True)

#: Every attribute type, bound and missing-value rule, with an int id.
ALL_TYPES = fa.parse_policy(
    """
policy: {id: all-types, version: "1", title: All types}
attributes:
  number: {type: int, role: id}
  age: {type: int, min: 18, max: 30}
  debt: {type: int, max: -5}
  hours: {type: float, min: 0.25, max: 2.5}
  anything: {type: float}
  flag: {type: bool}
  level: {type: ordinal, levels: [low, mid, high]}
  colour: {type: category, levels: [red, green], missing: default, default: green}
  since: {type: date, min: 2020-02-01, max: 2020-03-31}
  born: {type: date}
rules:
  priority: [{id: base, points: "1"}]
ranking: {tie_break: [{lottery: {seed: s}}]}
"""
)


def _check_record(policy: fa.Policy, record: dict[str, Any]) -> None:
    assert list(record) == list(policy.attributes)
    for name, attr in policy.attributes.items():
        v = record[name]
        if attr.role == "id" or (v is None and attr.missing == "default"):
            continue
        if attr.type in ("category", "ordinal"):
            assert v in (attr.levels or [])
        elif attr.type == "bool":
            assert isinstance(v, bool)
        elif attr.type == "date":
            assert isinstance(v, dt.date)
            assert attr.min is None or v >= attr.min
            assert attr.max is None or v <= attr.max
        else:
            assert isinstance(v, int if attr.type == "int" else float)
            assert attr.min is None or v >= attr.min
            assert attr.max is None or v <= attr.max


# -- strategies -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ELDERLY, SLOTS, ACTIVITY, UNFAIR], ids=lambda p: p.parent.name)
def test_residents_are_valid_for_the_example_schemas(path: Path) -> None:
    policy = fa.load_policy(path, audit=True)

    @settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
    @given(records=residents(path, max_size=15))
    def valid(records: list[dict[str, Any]]) -> None:
        population = fa.Population.from_records(records, policy)  # raises if any is invalid
        assert population.n == len(records)
        assert len({r[policy.id_attribute] for r in records}) == len(records)
        for record in records:
            _check_record(policy, record)
        fa.evaluate(fa.compile_policy(policy, audit=True), population)

    valid()


@given(records=residents(ALL_TYPES, min_size=2, max_size=12))
def test_residents_respect_every_type_bound_and_missing_rule(records: list[dict[str, Any]]) -> None:
    assert 2 <= len(records) <= 12
    assert all(isinstance(r["number"], int) for r in records)
    for record in records:
        _check_record(ALL_TYPES, record)
    population = fa.Population.from_records(records, ALL_TYPES)
    filled = population.filled.get("colour", np.zeros(population.n, dtype=bool))
    assert [r["colour"] is None for r in records] == filled.tolist()


@given(population=populations(ELDERLY, min_size=1, max_size=5), one=resident(ELDERLY))
@pytest.mark.slow
def test_populations_and_single_residents(population: fa.Population, one: dict[str, Any]) -> None:
    assert 1 <= population.n <= 5
    assert isinstance(one["resident_id"], str)
    assert fa.evaluate(fa.load_policy(ELDERLY), [one]).n == 1


@pytest.mark.slow
def test_residents_shrink_to_what_a_person_writes_first() -> None:
    from hypothesis import find

    policy = fa.load_policy(ELDERLY)
    quiet = settings(database=None, phases=[Phase.generate, Phase.shrink])
    smallest = find(residents(policy, min_size=2), lambda rs: True, settings=quiet)
    assert sorted(r["resident_id"] for r in smallest) == ["r1", "r2"]
    first = smallest[0]
    assert first["age"] == 0
    assert first["gender"] == "female"  # the first level
    assert first["cognition"] == "intact"
    assert first["lives_alone"] is False
    assert first["carer_hours"] == 0.0
    assert first["moved_in"] == dt.date(2000, 1, 1)
    # Bounds away from zero shrink to the nearest bound.
    lowest = find(residents(ALL_TYPES, min_size=1), lambda rs: True, settings=quiet)[0]
    assert (lowest["age"], lowest["debt"], lowest["hours"]) == (18, -5, 0.25)
    assert lowest["since"] == dt.date(2020, 2, 1)


@given(records=residents(ELDERLY, max_size=8, values={"age": st.integers(59, 61)}))
def test_values_replace_the_schema_for_some_attributes(records: list[dict[str, Any]]) -> None:
    assert all(59 <= r["age"] <= 61 for r in records)


def test_strategies_refuse_unknown_attributes_and_ids() -> None:
    with pytest.raises(ValueError, match="unknown attributes nope"):
        residents(ELDERLY, values={"nope": st.just(1)})
    with pytest.raises(ValueError, match="ids are drawn"):
        residents(ELDERLY, values={"resident_id": st.just("x")})
    with pytest.raises(ValueError, match="ids are drawn"):
        attribute_values(fa.load_policy(ELDERLY).attributes["resident_id"])
    with pytest.raises(ValueError, match="min_size"):
        residents(ELDERLY, min_size=3, max_size=2)


# -- every property holds on the fair examples ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path"),
    list(itertools.product(PROPERTIES, [ELDERLY, SLOTS])),
    ids=lambda v: v if isinstance(v, str) else v.parent.name,
)
@pytest.mark.slow
def test_every_property_holds_on_the_examples(name: str, path: Path) -> None:
    PROPERTIES[name](path)


@pytest.mark.slow
def test_the_unfair_policy_fails_only_its_occupation_invariance() -> None:
    with pytest.raises(PropertyFailure) as info:
        check_protected_invariance(UNFAIR, settings=FEW)
    failure = info.value
    assert failure.property == "occupation-invariance"
    assert failure.parts == ("rule:civil-servant-bonus",)
    assert len(failure.residents) == 1
    record = failure.residents[0]
    assert record["resident_id"] == "r1"
    assert record["occupation"] in ("retired", "civil_servant")
    text = str(failure)
    assert text.startswith("property 'occupation-invariance': resident r1 is treated differently")
    assert "priority rule `civil-servant-bonus` (" in text
    assert "unfair-policy.yaml:" in text
    assert "points 0 -> 5" in text or "points 5 -> 0" in text
    assert "`occupation` has no justified use" in text
    assert "FA300" in text  # the static check that agrees
    assert "  resident: {'resident_id': 'r1', 'age': 0," in text
    # The other protected attributes are read only where justified (the `district` proxy is
    # not protected: no invariance can see it).
    check_protected_invariance(
        UNFAIR, attributes=["age", "gender", "hardship", "ethnicity"], settings=FEW
    )
    for name in ("need-monotonicity", "equal-treatment", "anonymity", "determinism"):
        PROPERTIES[name](UNFAIR, settings=FEW)
    check_allocation(UNFAIR, settings=FEW)  # measured: audit-only policies allocate nothing


def test_failure_is_an_assertion_error_with_a_clean_traceback() -> None:
    with pytest.raises(AssertionError) as info:
        check_protected_invariance(UNFAIR, attributes=["occupation"], settings=FEW, seed=1)
    assert isinstance(info.value, PropertyFailure)
    assert info.value.__cause__ is None
    assert not getattr(info.value, "__notes__", None)


# -- crafted faults ---------------------------------------------------------------------------

CRAFTED = """
policy: {id: crafted, version: "1", title: Crafted}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 120, protected: true}
  adl: {type: int, min: 0, max: 100, need: lower}
  cognition: {type: ordinal, levels: [intact, mild, severe], need: higher}
  hours: {type: float, min: 0, max: 40, need: lower}
justified_uses:
  - {attribute: age, rule: old-enough, why: the statute, source: "§1"}
rules:
  eligibility:
    - {id: old-enough, when: "age >= 60"}
RULES
ranking: {tie_break: [{lottery: {seed: s}}]}
allocation: {capacity: 2}
"""


def crafted(rules: str) -> fa.Policy:
    return fa.parse_policy(CRAFTED.replace("RULES", rules), audit=True)


def test_need_monotonicity_names_the_indicator_whose_points_fall() -> None:
    policy = crafted("  priority:\n    - {id: independence, points: 'adl / 10'}\n")
    with pytest.raises(PropertyFailure) as info:
        check_need_monotonicity(policy, settings=FEW)
    text = str(info.value)
    assert text.startswith(
        "property 'need-monotonicity': resident r1 scores lower when its need attribute `adl`"
        " (need: lower: less means more need) goes from 1 to 0:"
    )
    assert "priority rule `independence` (<string>:" in text
    assert "points 0.1 -> 0" in text
    assert info.value.parts == ("rule:independence",)


@pytest.mark.slow
def test_need_monotonicity_names_the_rule_that_now_fails() -> None:
    policy = crafted("    - {id: not-too-frail, when: 'cognition != severe'}\n")
    with pytest.raises(PropertyFailure) as info:
        check_need_monotonicity(policy, settings=FEW)
    text = str(info.value)
    assert "becomes ineligible when its need attribute `cognition`" in text
    assert "goes from 'mild' to 'severe'" in text
    assert "eligibility rule `not-too-frail`" in text
    assert "holds -> fails" in text
    assert info.value.residents[0]["age"] == 60  # the smallest eligible age
    assert info.value.parts == ("rule:not-too-frail",)


def test_need_monotonicity_on_floats() -> None:
    policy = crafted("  priority:\n    - {id: carer-points, points: 'min(hours, 10)'}\n")
    with pytest.raises(PropertyFailure, match=r"`hours` \(need: lower") as info:
        check_need_monotonicity(policy, settings=FEW)
    assert info.value.parts == ("rule:carer-points",)


def test_invariance_allows_justified_parts_only() -> None:
    policy = crafted(
        "  priority:\n    - {id: seniority, when: 'age >= 80', points: 3}\n"
        "    - {id: effort, points: 'hours / 40'}\n"
    )
    with pytest.raises(PropertyFailure) as info:
        check_protected_invariance(policy, settings=FEW)
    text = str(info.value)
    assert "property 'age-invariance'" in text
    assert "priority rule `seniority`" in text
    assert "eligibility rule `old-enough`" not in text  # justified: may change
    assert "`age` is justified only for rule `old-enough`; every other part must ignore it" in text
    assert info.value.parts == ("rule:seniority",)
    # Without the unjustified rule, changing the age may change eligibility, nothing else.
    check_protected_invariance(crafted("  priority: [{id: effort, points: 'hours'}]\n"))


def test_a_resident_the_policy_cannot_evaluate_is_a_counterexample() -> None:
    policy = crafted("  priority:\n    - {id: ratio, points: '10 / adl'}\n")
    with pytest.raises(PropertyFailure) as info:
        check_determinism(policy, settings=FEW)
    text = str(info.value)
    assert "resident r1 cannot be evaluated" in text
    assert "undefined" in text
    assert info.value.residents[0]["adl"] == 0


@pytest.mark.slow
def test_equal_treatment_and_anonymity_catch_an_engine_that_reads_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluate = fa.evaluate

    def reads_ids(*args: Any, **kwargs: Any) -> fa.Evaluation:
        ev = evaluate(*args, **kwargs)
        ev.score_micro[ev.ids.astype(str) == "r1"] += 1_000_000
        return ev

    monkeypatch.setattr(fa, "evaluate", reads_ids)
    with pytest.raises(PropertyFailure) as info:
        check_equal_treatment(ELDERLY, settings=FEW)
    text = str(info.value)
    assert "residents r1 and r2 have the same attributes but are treated differently" in text
    assert "score: 1 -> 0" in text or "score:" in text
    with pytest.raises(PropertyFailure, match="ids renamed") as info:
        check_anonymity(ELDERLY, settings=FEW)


@pytest.mark.slow
def test_anonymity_catches_an_engine_that_reads_row_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluate = fa.evaluate

    def reads_rows(*args: Any, **kwargs: Any) -> fa.Evaluation:
        ev = evaluate(*args, **kwargs)
        if ev.n:
            ev.score_micro[0] += 1_000_000
        return ev

    monkeypatch.setattr(fa, "evaluate", reads_rows)
    with pytest.raises(PropertyFailure) as info:
        check_anonymity(SLOTS, settings=FEW)
    assert "the evaluation changes when only the order of the rows changes" in str(info.value)
    assert len(info.value.residents) == 2


def test_determinism_catches_a_run_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate = fa.evaluate
    calls = itertools.count()

    def flaky(*args: Any, **kwargs: Any) -> fa.Evaluation:
        ev = evaluate(*args, **kwargs)
        if next(calls) % 2:
            ev.score_micro += 1
        return ev

    monkeypatch.setattr(fa, "evaluate", flaky)
    with pytest.raises(PropertyFailure) as info:
        check_determinism(ELDERLY, settings=FEW)
    assert "the evaluation differs between two runs on the same residents" in str(info.value)
    assert "`residents`[0]" in str(info.value)


@pytest.mark.slow
def test_allocation_catches_a_wasted_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    from fairalloc.testing import _properties

    allocate = _properties.allocate_evaluation

    def wasteful(*args: Any, **kwargs: Any) -> fa.Allocation:
        a = allocate(*args, **kwargs)
        served = np.flatnonzero(a.served)
        if len(served):
            a.category[served[-1]] = -1
            a.served[served[-1]] = False
        return a

    monkeypatch.setattr(_properties, "allocate_evaluation", wasteful)
    with pytest.raises(PropertyFailure) as info:
        check_allocation(ELDERLY, settings=FEW)
    text = str(info.value)
    assert text.startswith("property 'allocation': resident r1 waits while")
    assert "units are left unused (capacity" in text
    assert len(info.value.residents) == 1


@pytest.mark.slow
def test_allocation_catches_a_blocking_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    match = fa.match

    def unstable(*args: Any, **kwargs: Any) -> fa.MatchingResult:
        m = match(*args, **kwargs)
        m.held[:] = False
        m.units[:] = 0
        m.served[:] = False
        return m

    monkeypatch.setattr(fa, "match", unstable)
    with pytest.raises(PropertyFailure) as info:
        check_allocation(SLOTS, settings=FEW)
    text = str(info.value)
    assert "block the matching" in text
    assert "which has a free unit" in text
    assert info.value.parts[0].startswith("resource:")


# -- plans, registry, profiles ----------------------------------------------------------------


def test_plan_checks_splits_invariance_by_attribute_and_says_what_does_not_apply() -> None:
    names = [c.name for c in plan_checks(ELDERLY)]
    assert names == [
        "age-invariance",
        "gender-invariance",
        "occupation-invariance",
        "ethnicity-invariance",
        "hardship-invariance",
        "disability-invariance",
        "need-monotonicity",
        "equal-treatment",
        "anonymity",
        "determinism",
        "allocation",
    ]
    assert all(c.skip is None for c in plan_checks(ELDERLY))
    slots = {c.name: c for c in plan_checks(SLOTS)}
    assert slots["need-monotonicity"].skip == "no attribute declares `need` with an order"
    assert slots["age-invariance"].line == next(
        k for k, line in enumerate(SLOTS.read_text().splitlines(), 1) if line.startswith("  age:")
    )
    kept = plan_checks(ELDERLY, ["occupation-invariance", "determinism"])
    assert [c.name for c in kept] == ["occupation-invariance", "determinism"]
    with pytest.raises(ValueError, match="unknown property `fairness`"):
        plan_checks(ELDERLY, ["fairness"])


def test_registry_and_profiles() -> None:
    assert list(PROPERTIES) == [
        "protected-invariance",
        "need-monotonicity",
        "equal-treatment",
        "anonymity",
        "determinism",
        "allocation",
    ]
    assert PROFILES["quick"].max_examples < PROFILES["ci"].max_examples
    assert PROFILES["ci"].derandomize
    assert PROFILES["thorough"].max_examples == 1000
    with pytest.raises(ValueError, match="not a protected attribute"):
        check_protected_invariance(ELDERLY, attributes=["adl_score"])
    with pytest.raises(ValueError, match="declares no `need`"):
        check_need_monotonicity(ELDERLY, attributes=["age"])


def test_importing_without_hypothesis_says_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "hypothesis"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError('No module named hypothesis', name='hypothesis')\n"
    )
    code = (
        "import fairalloc as fa, sys\n"
        f"policy = fa.load_policy({str(ELDERLY)!r})\n"
        f"fa.allocate(policy, {str(ELDERLY.parent / 'residents.csv')!r})\n"
        "assert 'fairalloc.testing' not in sys.modules  # the library never imports it\n"
        "import fairalloc.testing  # imports (the pytest plugin's parent) without the extra\n"
        "try:\n"
        "    from fairalloc.testing import residents\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert "pip install 'fairalloc[testing]'" in out.stdout
