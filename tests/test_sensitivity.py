"""Sensitivity to weights and weight margins (fairalloc.analysis._sensitivity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc._engine import reevaluate
from fairalloc._ranking import LotteryKeys
from fairalloc.analysis._sensitivity import (
    policy_weights,
    sensitivity,
    weight_margin,
    weight_variant,
    with_weights,
)
from fairalloc.analysis._sweep import rank_with
from tests.strategies import EXPR_SCHEMA, PARAMS, residents
from tests.test_sweep import _attempt, _boom, _disarmed, assert_identical

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"
POLICY = EXAMPLE / "policy.yaml"
DATA = EXAMPLE / "residents.csv"


def reweighed(policy: fa.Policy, weights: dict[str, float]) -> fa.Policy:
    """The policy with other weights, built from plain data (not by the module under test)."""
    doc = policy.model_dump(by_alias=True, exclude_none=True)
    terms = doc["score"].get("terms") or [
        {"of": name, "weight": 1.0}
        for name in [*doc["scales"], *(["priority"] if doc["rules"]["priority"] else [])]
    ]
    for path, value in weights.items():
        names = path.split(".")
        if len(names) == 1:
            for t in terms:
                if t["of"] == path:
                    t["weight"] = value
            doc["score"]["terms"] = terms
            continue
        node = doc["scales"][names[0]]
        for name in names[1:-1]:
            node = node["scales"][name]
        last = names[-1]
        if last in node.get("indicators", {}):
            node["indicators"][last]["weight"] = value
        else:
            node["scales"][last]["weight"] = value
    return fa.Policy.model_validate(doc)


EXAMPLE_WEIGHTS = [
    "need.health",
    "need.health.adl",
    "need.health.cognition",
    "need.family",
    "need.family.alone",
    "need.family.children",
    "need.family.informal_care",
    "need.economic",
    "need.economic.hardship",
    "need",
    "priority",
]

weight_values = st.one_of(
    st.integers(0, 3000).map(lambda v: v / 1000), st.floats(-5, 5, allow_nan=False)
)


def test_the_example_weights(policy: fa.Policy) -> None:
    assert list(policy_weights(policy)) == EXAMPLE_WEIGHTS
    assert set(policy_weights(policy).values()) == {1.0}


@given(
    weights=st.dictionaries(st.sampled_from(EXAMPLE_WEIGHTS), weight_values, max_size=5),
    chunk=st.sampled_from([9, 1 << 16]),
)
@pytest.mark.slow
def test_partial_evaluation_equals_full_on_the_example(
    policy: fa.Policy,
    population: fa.Population,
    base: fa.Evaluation,
    weights: dict[str, float],
    chunk: int,
) -> None:
    note(f"weights: {weights}")
    cp = weight_variant(base.policy, weights)
    changes = cp.changes_from(base.policy)
    assert changes is not None
    # A weight changes no rule: at most the points of indicators whose weight changed.
    assert all(p.startswith("indicator:") for p in changes.parts)
    partial = reevaluate(base, cp, chunk_size=chunk)
    rank_with(partial, LotteryKeys(population.ids))
    full = fa.evaluate(reweighed(policy, weights), population)
    assert_identical(partial, full)
    assert fa.allocate(partial).to_json() == fa.allocate(full).to_json()
    assert fa.evaluate(with_weights(policy, weights), population).to_json() == full.to_json()


def _scaled_policy(method: str, term_weights: list[float]) -> fa.Policy:
    return fa.Policy.model_validate(
        {
            "policy": {"id": "gen", "version": "1", "title": "generated"},
            "attributes": {k: dict(v) for k, v in EXPR_SCHEMA.items()},
            "parameters": dict(PARAMS),
            "scales": {
                "need": {
                    "grades": [{"min": 6, "grade": "high"}, {"grade": "low"}],
                    "indicators": {
                        "lvl": {"of": "lvl", "lookup": {"lo": 0, "mid": 2.5, "hi": 5}},
                        "a_band": {
                            "of": "a",
                            "bands": [{"below": -2, "points": 3}, {"points": 1}],
                        },
                    },
                    "scales": {
                        "sub": {
                            "weight": 0.5,
                            "indicators": {
                                "x": {"points": "x * k", "min_points": -1, "max_points": 4},
                                "flag": {"of": "flag", "lookup": {"true": 1.5, "false": 0}},
                            },
                        }
                    },
                },
                "other": {"indicators": {"b": {"points": "b + half"}}},
            },
            "rules": {"priority": [{"id": "p", "when": "b > 0", "points": "a / b"}]},
            "score": {
                "method": method,
                "terms": [
                    {"of": "need", "weight": term_weights[0]},
                    {"of": "priority", "weight": term_weights[1]},
                    {"of": "other", "weight": term_weights[2]},
                ],
            },
            "ranking": {"tie_break": [{"by": "x"}, {"lottery": {"seed": "s"}}]},
            "allocation": {"capacity": 4},
        }
    )


GENERATED_WEIGHTS = [
    "need.lvl",
    "need.a_band",
    "need.sub",
    "need.sub.x",
    "need.sub.flag",
    "other.b",
    "need",
    "priority",
    "other",
]


@given(
    method=st.sampled_from(["sum", "product", "tiers"]),
    weights=st.dictionaries(st.sampled_from(GENERATED_WEIGHTS), weight_values, max_size=4),
    data=st.data(),
)
def test_partial_evaluation_equals_full_on_generated_policies(
    method: str, weights: dict[str, float], data: st.DataObject
) -> None:
    terms = [1.0, 2.0, 1.0] if method != "tiers" else [1.0, 0.5, 3.0]
    policy = _scaled_policy(method, terms)
    if method == "product":
        weights = {
            k: float(max(1, min(8, round(abs(v))))) if "." not in k else v
            for k, v in weights.items()
        }
    if method == "tiers":
        weights = {k: abs(v) + 0.1 if "." not in k else v for k, v in weights.items()}
    note(f"weights: {weights}")
    records = data.draw(residents(policy, max_size=12))
    chunk = data.draw(st.integers(1, 13))
    try:
        base = fa.evaluate(policy, records, chunk_size=chunk)
    except fa.EvaluationError:
        return
    cp = weight_variant(base.policy, weights)
    full, full_error = _attempt(
        lambda: fa.evaluate(reweighed(policy, weights), records, chunk_size=chunk)
    )
    partial, partial_error = _attempt(lambda: reevaluate(base, cp, chunk_size=chunk))
    assert partial_error == full_error
    if full is None:
        return
    assert partial is not None
    assert base.population is not None
    rank_with(partial, LotteryKeys(base.population.ids))
    assert_identical(partial, full)


def test_a_weight_runs_only_its_indicator_again(base: fa.Evaluation) -> None:
    cp = weight_variant(base.policy, {"need.family.alone": 2.0, "need.health": 0.5})
    changes = cp.changes_from(base.policy)
    assert changes is not None
    assert changes.parts == {"indicator:need.family.alone"}
    assert changes.weights == {"need.family.alone", "need.health"}
    assert changes.scales
    assert changes.score
    _disarmed(cp, {"indicator:need.family.alone"})
    ev = reevaluate(base, cp)
    col = base.policy.criteria.index(
        next(c for c in base.policy.criteria if c.key == "need.family.alone")
    )
    assert np.array_equal(ev.points[:, col], base.points[:, col] * 2)
    cp = weight_variant(base.policy, {"priority": 3})
    changes = cp.changes_from(base.policy)
    assert changes is not None
    assert changes.parts == frozenset()
    _disarmed(cp, set())
    ev = reevaluate(base, cp)
    assert np.array_equal(ev.terms[:, 1], base.terms[:, 1] * 3)
    # A weight that changed but was not marked would be noticed: the kernel must run.
    cp = weight_variant(base.policy, {"need.health.adl": 0.5})
    _disarmed(cp, set())
    with pytest.raises(AssertionError, match="kernel"):
        reevaluate(base, cp)
    assert _boom is not None


def test_weights_are_checked(policy: fa.Policy) -> None:
    with pytest.raises(fa.PolicyError) as e:
        with_weights(policy, {"need.helth": 1.0})
    assert e.value.codes == ["FA202"]
    assert "did you mean `need.health`?" in str(e.value)
    for bad in (float("nan"), float("inf"), "2", True, None):
        with pytest.raises(fa.PolicyError) as e:
            with_weights(policy, {"need.health": bad})
        assert e.value.codes == ["FA112"]
    # Located in the weight's place: the indicator, the sub-scale, the score terms.
    spans = {}
    for name in ("need.health.adl", "need.family", "priority"):
        with pytest.raises(fa.PolicyError) as e:
            with_weights(policy, {name: float("nan")})
        spans[name] = e.value.issues[0].span
    text = POLICY.read_text().splitlines()
    assert text[spans["need.health.adl"].line - 2].strip() == "adl:"
    assert text[spans["need.family"].line - 2].strip() == "family:"
    assert text[spans["priority"].line - 2].strip() == "terms:"
    product = _scaled_policy("product", [1.0, 2.0, 1.0])
    with pytest.raises(fa.PolicyError) as e:
        with_weights(product, {"priority": 2.5})
    assert e.value.codes == ["FA113"]
    assert "whole numbers from 1 to 8" in str(e.value)
    assert with_weights(product, {"priority": 3}).score.terms is not None


# -- sensitivity --------------------------------------------------------------------------------


def test_random_samples_are_seeded_and_counted_right(
    policy: fa.Policy, population: fa.Population
) -> None:
    s = sensitivity(
        policy, population, ranges={"need.health": (0.5, 1.5), "priority": [0, 3]}, samples=12
    )
    assert s.varied == {"need.health": (0.5, 1.5), "priority": (0.0, 3.0)}
    assert len(s.samples) == 12
    assert all(0.5 <= w["need.health"] <= 1.5 and 0 <= w["priority"] <= 3 for w in s.samples)
    assert all(round(v, 4) == v for w in s.samples for v in w.values())
    counts = np.zeros(population.n, dtype=np.int64)
    for i, weights in enumerate(s.samples):
        alloc = fa.allocate(fa.evaluate(reweighed(policy, weights), population))
        counts += alloc.served
        assert s.served_per_sample[i] == alloc.n_served
        assert s.changed_per_sample[i] == int((alloc.served != s.base_served).sum())
    assert np.array_equal(s.counts, counts)
    assert np.array_equal(s.frequency, counts / 12)
    again = sensitivity(
        policy, population, ranges={"need.health": (0.5, 1.5), "priority": [0, 3]}, samples=12
    )
    assert again.to_json() == s.to_json()
    other = sensitivity(
        policy,
        population,
        ranges={"need.health": (0.5, 1.5), "priority": [0, 3]},
        samples=12,
        seed=1,
    )
    assert other.samples != s.samples


def test_relative_ranges_and_summary(policy: fa.Policy, population: fa.Population) -> None:
    s = sensitivity(policy, population, relative=0.25, samples=30, ranges={"need": (1, 2)})
    assert list(s.varied) == EXAMPLE_WEIGHTS
    assert s.varied["need.health.adl"] == (0.75, 1.25)
    assert s.varied["need"] == (1.0, 2.0)
    summary = s.summary()
    assert summary["always_served"] + summary["never_served"] + summary["unstable"] == 200
    assert summary["unstable"] == len(s.unstable_ids())
    assert summary["served"] == 40
    assert summary["served_now_but_not_always"] == int((s.base_served & (s.counts < 30)).sum())
    status = s.status()
    assert set(status[s.counts == 30]) <= {"always"}
    assert set(status[s.counts == 0]) <= {"never"}
    assert s.unstable_ids() == sorted(s.unstable_ids())
    doc = json.loads(s.to_json())
    listed = {r["id"] for r in doc["residents"]}
    assert listed == {str(i) for i in s.ids[(s.counts > 0) | s.base_served]}
    assert doc["seed"] == 0
    assert doc["summary"] == summary
    assert "Sensitivity of elderly-care-places to 11 weights over 30 samples" in repr(s)
    assert "<table>" in s._repr_html_()


def test_a_grid_of_weights(policy: fa.Policy, population: fa.Population) -> None:
    s = sensitivity(policy, population, grid={"need.family": [0.5, 1.5], "priority": [0, 1, 2]})
    assert len(s.samples) == 6
    assert s.samples[1] == {"need.family": 0.5, "priority": 1.0}
    assert s.seed is None
    for i in (0, 5):
        alloc = fa.allocate(fa.evaluate(reweighed(policy, s.samples[i]), population))
        assert s.changed_per_sample[i] == int((alloc.served != s.base_served).sum())


def test_tables(policy: fa.Policy, population: fa.Population) -> None:
    pytest.importorskip("pandas")
    s = sensitivity(policy, population, relative=0.1, samples=5)
    df = s.to_pandas()
    assert list(df.columns) == ["served_now", "served_in", "frequency", "status"]
    assert list(df.index) == sorted(df.index)
    assert len(df) == 200
    samples = s.samples_to_pandas()
    assert list(samples.columns) == [*EXAMPLE_WEIGHTS, "served", "changed"]
    assert len(samples) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to vary"),
        ({"relative": -0.1}, "relative"),
        ({"ranges": {"need": (2, 1)}}, "low <= high"),
        ({"ranges": {"need": (1,)}}, "low, high"),
        ({"ranges": {"need": (1, 2)}, "samples": 0}, "samples"),
        ({"grid": {"need": [1]}, "relative": 0.1}, "not both"),
        ({"grid": {}}, "no weight"),
        ({"grid": {"need": []}}, "no values"),
        ({"grid": {"need": 1}}, "as a list"),
    ],
)
def test_malformed_variations(
    policy: fa.Policy, population: fa.Population, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sensitivity(policy, population, **kwargs)


def test_sensitivity_needs_an_allocation(tmp_path: Path) -> None:
    text = POLICY.read_text()
    text = text[: text.index("\nallocation:")] + "\n"
    start = text.index("  - attribute: hardship\n    reserve:")
    text = text[:start] + text[text.index("\nparameters:", start) + 1 :]
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ValueError, match="allocation"):
        sensitivity(fa.load_policy(tmp_path / "p.yaml"), DATA, relative=0.1)


# -- margins ------------------------------------------------------------------------------------


def _served(
    policy: fa.Policy, population: fa.Population, row: int, weights: dict[str, float]
) -> bool:
    ev = fa.evaluate(reweighed(policy, weights), population)
    return bool(fa.allocate(ev).served[row])


def test_margins_hold_when_run_in_full(policy: fa.Policy, population: fa.Population) -> None:
    s = sensitivity(policy, population, relative=0.3, samples=40)
    unstable = s.unstable_ids()
    assert unstable
    served_now = next(i for i in unstable if s.base_served[population.ids == i][0])
    waiting = next(i for i in unstable if not s.base_served[population.ids == i][0])
    found = 0
    for rid in (served_now, waiting):
        row = int(np.flatnonzero(population.ids == rid)[0])
        margins = s.weight_margin(rid, decimals=3, steps=10)
        assert [m.weight for m in margins] == EXAMPLE_WEIGHTS
        for m in margins:
            assert m.resident == rid
            assert m.served == bool(s.base_served[row])
            assert m.searched == (0.0, 2.0)
            for value, nearer in ((m.lower, 0.001), (m.upper, -0.001)):
                if value is None:
                    continue
                found += 1
                # The stated change holds through the public, full path...
                flipped = _served(policy, population, row, {m.weight: value})
                assert flipped != m.served, f"{rid}: {m.weight} = {value}"
                # ...and one unit of the last decimal nearer to the current value, it does not.
                closer = round(value + nearer, 3)
                if closer != m.base:
                    assert _served(policy, population, row, {m.weight: closer}) == m.served
            if m.nearest is not None:
                assert m.change == pytest.approx(m.nearest - m.base)
                assert m.to_dict()["change"] == m.change
    assert found >= 2


def test_weight_margin_function(policy: fa.Policy, population: fa.Population) -> None:
    margins = weight_margin(policy, population, "R0000001", weights=["need"], decimals=2)
    assert len(margins) == 1
    m = margins[0]
    assert m.weight == "need"
    if m.lower is not None:
        row = int(np.flatnonzero(population.ids == "R0000001")[0])
        assert _served(policy, population, row, {"need": m.lower}) != m.served
    with pytest.raises(KeyError):
        weight_margin(policy, population, "nobody")
    with pytest.raises(fa.PolicyError):
        weight_margin(policy, population, "R0000001", weights=["needs"])
    with pytest.raises(ValueError, match="within"):
        weight_margin(policy, population, "R0000001", within=0)


def test_a_weight_of_zero_is_searched_upwards(policy: fa.Policy, population: fa.Population) -> None:
    zero = with_weights(policy, {"priority": 0})
    margins = weight_margin(zero, population, "R0000004", weights=["priority"], decimals=2)
    assert margins[0].searched == (0.0, 1.0)
    assert margins[0].lower is None


def test_the_documented_example(policy: fa.Policy, population: fa.Population) -> None:
    sens = sensitivity(policy, population, relative=0.2, samples=200, seed=0)
    assert repr(sens) == (
        "<Sensitivity of elderly-care-places to 11 weights over 200 samples: 31 always served,"
        " 23 unstable, 146 never served>"
    )
    assert sens.summary() == {
        "samples": 200,
        "residents": 200,
        "capacity": 40,
        "served": 40,
        "always_served": 31,
        "never_served": 146,
        "unstable": 23,
        "unstable_served_now": 9,
        "unstable_not_served_now": 14,
        "served_now_but_not_always": 9,
        "changed_per_sample": {"mean": 3.16, "max": 10},
    }
    margins = sens.weight_margin(
        "R0000001", ["need.health", "need.family", "need.economic", "priority"]
    )
    assert [(m.weight, m.lower, m.upper, m.change) for m in margins] == [
        ("need.health", None, 1.3892, 0.3892),
        ("need.family", 0.5042, None, -0.4958),
        ("need.economic", 0.4822, None, -0.5178),
        ("priority", None, None, None),
    ]
    row = int(np.flatnonzero(population.ids == "R0000001")[0])
    assert not _served(policy, population, row, {"need.health": 1.3892})
    assert _served(policy, population, row, {"need.health": 1.3891})


def test_relative_ranges_keep_tier_weights_positive() -> None:
    from fairalloc.analysis._sensitivity import _ranges

    policy = fa.parse_policy(
        """
policy: {id: t, version: "1", title: T}
attributes:
  id: {type: str, role: id}
  a: {type: int, min: 0, max: 10}
  b: {type: int, min: 0, max: 10}
scales:
  one: {indicators: {x: {points: a}}}
  two: {indicators: {y: {points: b}}}
score: {method: tiers, terms: [{of: one, weight: 0.001}, {of: two}]}
allocation: {capacity: 1}
"""
    )
    ranges = _ranges(fa.compile_policy(policy), None, 1.0)
    assert ranges["one"][0] > 0
    assert ranges["two"][0] > 0
    assert all(lo <= hi for lo, hi in ranges.values())
