"""Parameter sweeps (fairalloc.analysis._sweep) and the engine's partial re-evaluation."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc._engine import TRACE_ARRAYS, reevaluate
from fairalloc._ranking import LotteryKeys, rank
from fairalloc.analysis import _sweep
from fairalloc.analysis._sweep import (
    parameter_variant,
    rank_with,
    sweep,
    with_parameters,
)
from fairalloc.audit import group_statistics
from fairalloc.audit._groups import group_bins
from fairalloc.cli import main
from fairalloc.cli._sweep import parse_param
from fairalloc.errors import EvaluationError
from tests.strategies import EXPR_SCHEMA, PARAMS, bool_expr, num_expr, residents

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"
POLICY = EXAMPLE / "policy.yaml"
DATA = EXAMPLE / "residents.csv"


def document_with(policy: fa.Policy, parameters: dict[str, Any]) -> fa.Policy:
    """The policy with other parameter values, built from plain data (not by the sweep)."""
    doc = policy.model_dump(by_alias=True, exclude_none=True)
    for name, value in parameters.items():
        doc["parameters"][name] = {"value": value}
    return fa.Policy.model_validate(doc)


def assert_identical(partial: fa.Evaluation, full: fa.Evaluation) -> None:
    """Every array of the trace and of the ranking, byte for byte, and every export."""
    for name in (*TRACE_ARRAYS, "eligible", "exclusion"):
        a, b = getattr(partial, name), getattr(full, name)
        assert a.dtype == b.dtype, name
        assert a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name
    ra, rb = partial.ranking, full.ranking
    for name in ("order", "rank", "tied", "lottery", "lottery_used"):
        assert getattr(ra, name).tobytes() == getattr(rb, name).tobytes(), name
    assert partial.to_json() == full.to_json()
    assert ra.to_json() == rb.to_json()


# -- the engine's partial path ------------------------------------------------------------------

example_values = st.fixed_dictionaries(
    {},
    optional={
        "min_age": st.integers(0, 130),
        "waiting_points_per_month": st.integers(0, 400).map(lambda v: v / 100),
        "waiting_cap_points": st.one_of(st.integers(0, 30), st.floats(0, 30)),
        "residence_cutoff": st.dates(dt.date(1950, 1, 1), dt.date(2027, 1, 1)),
    },
)


@given(values=example_values, chunk=st.sampled_from([7, 64, 1 << 16]))
@pytest.mark.slow
def test_partial_evaluation_equals_full_on_the_example(
    policy: fa.Policy,
    population: fa.Population,
    base: fa.Evaluation,
    values: dict[str, Any],
    chunk: int,
) -> None:
    note(f"values: {values}")
    cp = parameter_variant(base.policy, values)
    partial = reevaluate(base, cp, chunk_size=chunk)
    rank_with(partial, LotteryKeys(population.ids))
    full = fa.evaluate(document_with(policy, values), population)
    assert_identical(partial, full)
    a = fa.allocate(partial)
    b = fa.allocate(full)
    assert a.to_json() == b.to_json()
    # The public helper gives the same policy, evaluated as of the same date.
    variant = fa.evaluate(with_parameters(policy, values), population)
    assert json.loads(variant.to_json())["residents"] == json.loads(full.to_json())["residents"]
    expected = f"{policy.policy.version}+" if values else policy.policy.version
    assert variant.policy.policy.policy.version.startswith(expected)


def _generated(when: str, points: str, indicator: str, reserve: str) -> fa.Policy:
    return fa.Policy.model_validate(
        {
            "policy": {"id": "gen", "version": "1", "title": "generated"},
            "attributes": {k: dict(v) for k, v in EXPR_SCHEMA.items()},
            "parameters": dict(PARAMS),
            "derived": {"scaled": "x * half + k", "ratio": "a / b"},
            "scales": {
                "need": {
                    "indicators": {
                        "formula": {"points": indicator, "min_points": -50, "max_points": 50},
                        "band": {
                            "of": "scaled",
                            "bands": [{"max": 0, "points": 1}, {"points": 2}],
                        },
                    }
                }
            },
            "rules": {
                "eligibility": [{"id": "cond", "when": when}],
                "exclusions": [{"id": "out", "when": "a == k + 10", "reason": "r"}],
                "priority": [
                    {"id": "p", "points": points},
                    {"id": "q", "when": "b > 0", "points": "ratio * 2"},
                ],
            },
            "ranking": {
                "tie_break": [{"by": "scaled", "order": "asc"}, {"lottery": {"seed": "s"}}]
            },
            "allocation": {
                "capacity": 3,
                "reserves": [{"id": "r", "count": 1, "eligible": reserve}],
            },
        }
    )


@given(
    when=bool_expr(),
    points=num_expr(),
    indicator=num_expr(),
    reserve=bool_expr(),
    values=st.fixed_dictionaries(
        {},
        optional={
            "k": st.one_of(st.integers(-3, 3), st.floats(-4, 4, allow_nan=False)),
            "half": st.sampled_from([0.0, 0.5, -1.25, 3.0, 1e300]),
            "colours": st.lists(st.sampled_from(["red", "green", "blue"]), unique=True),
        },
    ),
    data=st.data(),
)
def test_partial_evaluation_equals_full_on_generated_policies(
    when: str,
    points: str,
    indicator: str,
    reserve: str,
    values: dict[str, Any],
    data: st.DataObject,
) -> None:
    policy = _generated(when, points, indicator, reserve)
    note(f"when: {when}\npoints: {points}\nindicator: {indicator}\nreserve: {reserve}")
    note(f"values: {values}")
    records = data.draw(residents(policy, max_size=12))
    chunk = data.draw(st.integers(1, 13))
    try:
        base = fa.evaluate(policy, records, chunk_size=chunk)
    except EvaluationError:
        event("the policy is undefined for some resident before the change")
        return  # nothing to start from
    full, full_error = _attempt(
        lambda: fa.evaluate(document_with(policy, values), records, chunk_size=chunk)
    )
    partial, partial_error = _attempt(
        lambda: reevaluate(base, parameter_variant(base.policy, values), chunk_size=chunk)
    )
    assert partial_error == full_error
    if full is None or partial is None:
        event("undefined after the change, in both paths")
        return
    event("evaluated after the change")
    assert base.population is not None
    rank_with(partial, LotteryKeys(base.population.ids))
    assert_identical(partial, full)
    assert fa.allocate(partial).to_json() == fa.allocate(full).to_json()


def _attempt(fn: Any) -> tuple[Any, str | None]:
    try:
        return fn(), None
    except EvaluationError as e:
        return None, str(e)


def _boom(*_: object) -> Any:
    raise AssertionError("a kernel that reads nothing changed was run again")


def _disarmed(cp: fa.CompiledPolicy, keep: set[str]) -> None:
    """Replace every kernel of ``cp`` whose part is not in ``keep`` with one that fails."""
    for ind in cp._indicators:
        if f"indicator:{cp.criteria[ind.criterion].key}" not in keep:
            ind.source = _boom
    for rules in (cp._eligibility, cp._exclusions):
        rules[:] = [
            r if f"rule:{r.id}" in keep else dataclasses.replace(r, cond=_boom) for r in rules
        ]
    cp._priority[:] = [
        p
        if "rule:" + cp.criteria[p.criterion].key.removeprefix("priority.") in keep
        else dataclasses.replace(p, when=_boom, points=_boom)
        for p in cp._priority
    ]
    cp._tie_breaks[:] = [
        t if f"tie_break:{j}" in keep or t.kernel is None else dataclasses.replace(t, kernel=_boom)
        for j, t in enumerate(cp._tie_breaks)
    ]
    cp._reserves[:] = [
        r if f"reserve:{r.id}" in keep else dataclasses.replace(r, cond=_boom, value=_boom)
        for r in cp._reserves
    ]


def test_only_the_parts_reading_a_parameter_run_again(base: fa.Evaluation) -> None:
    cp = parameter_variant(base.policy, {"min_age": 70})
    changes = cp.changes_from(base.policy)
    assert changes is not None
    assert changes.parts == {"rule:aged-60-plus"}
    assert not changes.scales
    assert not changes.score
    _disarmed(cp, {"rule:aged-60-plus"})
    ev = reevaluate(base, cp, chunk_size=50)
    assert int(ev.eligible.sum()) < int(base.eligible.sum())
    # What nothing changed is shared with the base evaluation, read-only; the rest is new.
    assert np.shares_memory(ev.points, base.points)
    assert not ev.points.flags.writeable
    assert base.points.flags.writeable
    assert not np.shares_memory(ev.eligibility, base.eligibility)
    assert ev.eligibility.flags.writeable
    # Priority points change the score, not the scales.
    changes = parameter_variant(base.policy, {"waiting_cap_points": 3}).changes_from(base.policy)
    assert changes is not None
    assert (changes.parts, changes.scales, changes.score) == ({"rule:waiting-time"}, False, True)
    # The same disarmed kernels fail when their part must run: the check can fail.
    cp = parameter_variant(base.policy, {"waiting_points_per_month": 0.75})
    _disarmed(cp, set())
    with pytest.raises(AssertionError, match="kernel"):
        reevaluate(base, cp)


def test_parameters_are_followed_through_derived_values() -> None:
    policy = _generated("a > -5", "x + a", "x", "flag")
    cp = fa.compile_policy(policy)
    assert sorted(cp.parameter_readers("half")) == [
        "derived:scaled",
        "indicator:need.band",
        "tie_break:0",
    ]
    assert "rule:out" in cp.parameter_readers("k")
    assert cp.parameter_readers("colours") == []


def test_a_change_beyond_values_is_evaluated_in_full(
    policy: fa.Policy, population: fa.Population, base: fa.Evaluation
) -> None:
    doc = policy.model_dump(by_alias=True, exclude_none=True)
    doc["rules"]["eligibility"][0]["when"] = "age >= min_age + 5"
    other = fa.compile_policy(fa.Policy.model_validate(doc))
    assert other.changes_from(base.policy) is None
    ev = reevaluate(base, other)
    assert ev.to_json() == fa.evaluate(other, population).to_json()
    same = parameter_variant(base.policy, {"min_age": 60})
    changes = same.changes_from(base.policy)
    assert changes is not None
    assert changes.empty
    assert reevaluate(base, same).to_json() == base.to_json()


def test_reevaluate_needs_the_residents(base: fa.Evaluation) -> None:
    bare = fa.Evaluation(base.policy, base.ids, base.n)
    with pytest.raises(ValueError, match="residents"):
        reevaluate(bare, base.policy)
    with pytest.raises(ValueError, match="chunk_size"):
        reevaluate(base, base.policy, chunk_size=0)


def test_progress_is_reported(base: fa.Evaluation) -> None:
    done: list[int] = []
    reevaluate(
        base, parameter_variant(base.policy, {"min_age": 61}), chunk_size=64, progress=done.append
    )
    assert sum(done) == base.n
    assert len(done) == -(-base.n // 64)


# -- sweeps -------------------------------------------------------------------------------------


def _full_point(policy: fa.Policy, population: fa.Population, values: dict[str, Any]) -> Any:
    params = {k: v for k, v in values.items() if k != "capacity"}
    ev = fa.evaluate(document_with(policy, params), population)
    return ev, fa.allocate(ev, capacity=values.get("capacity"))


def test_one_parameter_matches_full_evaluations(
    policy: fa.Policy, population: fa.Population
) -> None:
    values = [55, 60, 72, 130]
    s = sweep(policy, population, {"min_age": values}, keep_served=True)
    assert s.keys == ("min_age",)
    assert [p.values for p in s.points] == [{"min_age": v} for v in values]
    assert s.recomputed == {"min_age": ["rule:aged-60-plus"]}
    assert s.base_values == {"min_age": 60}
    assert s.served is not None
    for i, (p, v) in enumerate(zip(s.points, values, strict=True)):
        ev, alloc = _full_point(policy, population, {"min_age": v})
        assert p.eligible == int(ev.eligible.sum())
        assert p.served == alloc.n_served
        assert p.capacity == 40
        assert p.residents == population.n
        assert p.recomputed == (() if v == 60 else ("rule:aged-60-plus",))
        assert [c["score"] for c in p.cutoffs] == [c.score for c in alloc.cutoffs()]
        assert [c["category"] for c in p.cutoffs] == ["special-hardship", "open"]
        scores = ev.score[ev.eligible]
        if len(scores):
            assert p.mean_score == pytest.approx(float(scores.mean()), abs=1e-9)
            assert p.median_score == float(np.median(ev.score_micro[ev.eligible])) / 1e6
        else:
            assert p.mean_score is None
            assert p.median_score is None
        expected = group_statistics(alloc, intersections=False, bins=_bins(alloc))
        assert p.groups.to_dict() == expected.to_dict()
        published = [
            r["ratio"]
            for r in expected.rows
            if r["ratio"] is not None and not r["suppressed"] and r["stratum"] is None
        ]
        assert p.min_ratio == (min(published) if published else None)
        assert p.four_fifths == [
            f"{r['grouping']}={r['group']}" for r in expected.rows if r["four_fifths"]
        ]
        assert np.array_equal(s.served[i], alloc.served)
    # Nobody is 130 or older in the example: nobody eligible, nobody served.
    assert s.points[-1].eligible == 0
    assert s.points[-1].served == 0
    assert s.points[-1].cutoffs[1]["score"] is None


def test_two_parameters_form_a_full_grid(policy: fa.Policy, population: fa.Population) -> None:
    grid = {"waiting_points_per_month": [0.0, 2.0], "waiting_cap_points": [0, 5, 40]}
    s = sweep(policy, population, grid, group_by=["gender"])
    assert len(s) == 6
    assert [tuple(p.values.values()) for p in s.points] == [
        (0.0, 0),
        (0.0, 5),
        (0.0, 40),
        (2.0, 0),
        (2.0, 5),
        (2.0, 40),
    ]
    for p in s.points:
        _, alloc = _full_point(policy, population, p.values)
        assert [c["score"] for c in p.cutoffs] == [c.score for c in alloc.cutoffs()]
        assert (
            p.groups.to_dict()
            == group_statistics(
                alloc, attributes=["gender"], intersections=False, bins=_bins(alloc)
            ).to_dict()
        )
        assert {r["grouping"] for r in p.groups.rows} == {"gender"}
        assert p.recomputed == ("rule:waiting-time",)
    # Without waiting points (and with a cap of 0) the priority term adds nothing.
    assert s.points[0].mean_score == s.points[1].mean_score == s.points[3].mean_score


def test_capacity_sweeps_reallocate_without_evaluating(
    policy: fa.Policy, population: fa.Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sweep, "reevaluate", _boom)
    s = sweep(policy, population, {"capacity": [0, 8, 40, 200]})
    assert s.recomputed == {"capacity": []}
    assert [p.served for p in s.points] == [0, 8, 40, 144]
    assert [p.capacity for p in s.points] == [0, 8, 40, 200]
    assert len({p.eligible for p in s.points}) == 1
    for p in s.points:
        _, alloc = _full_point(policy, population, p.values)
        assert (
            p.groups.to_dict()
            == group_statistics(alloc, intersections=False, bins=_bins(alloc)).to_dict()
        )
        assert [c["used"] for c in p.cutoffs] == alloc.used()


def test_parameter_by_capacity_grid(policy: fa.Policy, population: fa.Population) -> None:
    s = sweep(policy, population, {"capacity": [10, 30], "min_age": [60, 75]}, keep_served=True)
    assert [tuple(p.values.values()) for p in s.points] == [(10, 60), (10, 75), (30, 60), (30, 75)]
    assert s.served is not None
    for i, p in enumerate(s.points):
        _, alloc = _full_point(policy, population, p.values)
        assert p.served == alloc.n_served
        assert np.array_equal(s.served[i], alloc.served)


def test_baseline_is_the_policy_as_it_is(policy: fa.Policy, population: fa.Population) -> None:
    s = sweep(policy, population, {"min_age": [60]}, capacity=25)
    alloc = fa.allocate(fa.evaluate(policy, population), capacity=25)
    assert s.baseline.served == 25
    assert s.baseline.values == {}
    assert s.baseline.to_dict()["cutoffs"] == s.points[0].to_dict()["cutoffs"]
    assert (
        s.baseline.groups.to_dict()
        == group_statistics(alloc, intersections=False, bins=_bins(alloc)).to_dict()
    )


def test_without_an_allocation_the_outcome_is_eligibility(tmp_path: Path) -> None:
    text = POLICY.read_text()
    text = text[: text.index("\nallocation:")] + "\n"
    start = text.index("  - attribute: hardship\n    reserve:")
    text = text[:start] + text[text.index("\nparameters:", start) + 1 :]
    (tmp_path / "p.yaml").write_text(text)
    policy = fa.load_policy(tmp_path / "p.yaml")
    s = sweep(policy, DATA, {"min_age": [60, 80]}, keep_served=True)
    for i, p in enumerate(s.points):
        ev = fa.evaluate(document_with(policy, p.values), DATA)
        assert p.served is None
        assert p.capacity is None
        assert p.cutoffs == ()
        assert p.groups.outcome == "eligible"
        assert s.served is not None
        assert np.array_equal(s.served[i], ev.eligible)
    with pytest.raises(ValueError, match="no `allocation` section"):
        sweep(policy, DATA, {"capacity": [3]})
    with pytest.raises(ValueError, match="no `allocation` section"):
        sweep(policy, DATA, {"min_age": [60]}, capacity=3)


def test_outputs_are_deterministic_in_any_row_order(
    policy: fa.Policy, population: fa.Population
) -> None:
    perm = np.random.default_rng(3).permutation(population.n)
    grid = {"min_age": [60, 70], "waiting_cap_points": [6, 12]}
    a = sweep(policy, population, grid, intersections=True)
    b = sweep(policy, population.take(perm), grid, intersections=True)
    assert a.to_json() == b.to_json()
    doc = json.loads(a.to_json(indent=1))
    assert doc["keys"] == ["min_age", "waiting_cap_points"]
    assert doc["base_values"] == {"min_age": 60, "waiting_cap_points": 12}
    assert doc["as_of"] == "2026-01-01"
    assert len(doc["points"]) == 4
    assert any(" × " in g["grouping"] for g in doc["points"][0]["groups"])
    assert "last_id" not in doc["points"][0]["cutoffs"][0]


def test_dates_and_lists_as_values(policy: fa.Policy, population: fa.Population) -> None:
    cutoffs = [dt.date(2000, 1, 1), "2020-06-30"]
    s = sweep(policy, population, {"residence_cutoff": cutoffs})
    for p in s.points:
        ev, _ = _full_point(policy, population, p.values)
        assert p.eligible == int(ev.eligible.sum())
    assert json.loads(s.to_json())["grid"] == {"residence_cutoff": ["2000-01-01", "2020-06-30"]}


def test_tables_and_views(policy: fa.Policy, population: fa.Population) -> None:
    pd = pytest.importorskip("pandas")
    s = sweep(policy, population, {"min_age": [60, 65], "capacity": [20, 40]}, keep_served=True)
    df = s.to_pandas()
    assert len(df) == 4
    for col in (
        "min_age",
        "capacity",
        "eligible",
        "served",
        "mean_score",
        "median_score",
        "cutoff.open",
        "cutoff.special-hardship",
        "min_ratio",
        "four_fifths",
        "disparities",
        "rate.gender=female",
        "ratio.gender=female",
    ):
        assert col in df.columns, col
    assert list(df["capacity"]) == [20, 40, 20, 40]
    long = s.groups_to_pandas()
    assert set(long["grouping"]) == set(policy.protected_attributes)
    assert {"min_age", "capacity", "group", "rate", "ratio", "four_fifths"} <= set(long.columns)
    served = s.served_to_pandas()
    assert served.shape == (population.n, 4)
    assert list(served.index) == sorted(served.index)
    assert served.columns[0] == "min_age=60, capacity=20"
    assert isinstance(served, pd.DataFrame)
    text = repr(s)
    assert text.startswith("<Sweep of elderly-care-places over min_age (2 values) × capacity")
    assert "served 20–40" in text
    page = s._repr_html_()
    assert page.startswith("<table>")
    assert "cutoff.open" in page
    no_served = sweep(policy, population, {"min_age": [60]})
    with pytest.raises(ValueError, match="keep_served"):
        no_served.served_to_pandas()


def test_values_are_checked_as_in_a_policy_file(
    policy: fa.Policy, population: fa.Population
) -> None:
    with pytest.raises(fa.PolicyError) as e:
        sweep(policy, population, {"min_ag": [1]})
    assert e.value.codes == ["FA202"]
    assert "did you mean `min_age`?" in str(e.value)
    with pytest.raises(fa.PolicyError) as e:
        sweep(policy, population, {"min_age": [60, "abc"]})
    assert e.value.codes == ["FA203"]
    assert "with min_age = 'abc': parameter `min_age` is text 'abc'" in str(e.value)
    with pytest.raises(fa.PolicyError) as e:
        sweep(policy, population, {"min_age": [{"a": 1}]})
    assert e.value.codes == ["FA112"]
    with pytest.raises(fa.PolicyError):
        with_parameters(policy, {"residence_cutoff": 3})
    # numpy values are plain numbers.
    s = sweep(policy, population, {"min_age": np.arange(60, 62)})
    assert [p.values["min_age"] for p in s.points] == [60, 61]
    assert type(s.points[0].values["min_age"]) is int


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({}, "one or two keys"),
        ({"min_age": [60], "waiting_cap_points": [1], "capacity": [1]}, "one or two keys"),
        ({"min_age": []}, "no values"),
        ({"min_age": 60}, "as a list"),
        ({"min_age": "60"}, "as a list"),
        ({"capacity": [-1]}, "at least 0"),
        ({"capacity": [2.5]}, "whole number"),
        ({"capacity": [1], "allocation.capacity": [2]}, "given twice"),
    ],
)
def test_malformed_grids(
    policy: fa.Policy, population: fa.Population, grid: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sweep(policy, population, grid)


def test_an_undefined_value_names_the_point(population: fa.Population) -> None:
    text = POLICY.read_text().replace(
        'points: "min(months_waited * waiting_points_per_month, waiting_cap_points)"',
        'points: "min(months_waited / waiting_points_per_month, waiting_cap_points)"',
    )
    policy = fa.parse_policy(text, filename=str(POLICY))
    with pytest.raises(EvaluationError) as e:
        sweep(policy, population, {"waiting_points_per_month": [1.0, 0.0]})
    assert "at the sweep's point waiting_points_per_month = 0.0" in e.value.__notes__


def test_a_parameter_named_capacity(policy: fa.Policy, population: fa.Population) -> None:
    doc = policy.model_dump(by_alias=True, exclude_none=True)
    doc["parameters"]["capacity"] = {"value": 60}
    doc["rules"]["eligibility"][0]["when"] = "age >= capacity"
    named = fa.Policy.model_validate(doc)
    s = sweep(named, population, {"capacity": [60, 80], "allocation.capacity": [5]})
    assert s.keys == ("capacity", "allocation.capacity")
    assert s.recomputed == {"capacity": ["rule:aged-60-plus"], "allocation.capacity": []}
    assert [p.served for p in s.points] == [5, 5]
    assert s.points[0].eligible > s.points[1].eligible
    assert s.capacity_key == "allocation.capacity"
    df = s.to_pandas()
    assert list(df["capacity"]) == [60, 80]
    assert list(df["allocation.capacity"]) == [5, 5]


def test_rank_with_cached_keys_equals_rank(policy: fa.Policy, tmp_path: Path) -> None:
    # Every resident twice (under a second id), so that the lottery has ties to break.
    lines = DATA.read_text(encoding="utf-8").splitlines()
    twins = [line.replace(",", "-twin,", 1) for line in lines[1:]]
    doubled = tmp_path / "twice.csv"
    doubled.write_text("\n".join([*lines, *twins]) + "\n", encoding="utf-8")
    base = fa.evaluate(policy, fa.Population.from_csv(doubled, policy))
    assert base.population is not None
    keys = LotteryKeys(base.population.ids)
    for values in ({}, {"min_age": 75}, {"waiting_points_per_month": 0.0}):
        ev = reevaluate(base, parameter_variant(base.policy, values))
        fresh = rank(ev)
        cached = rank_with(ev, keys)
        assert ev.ranking is cached
        for name in ("order", "rank", "tied", "lottery", "lottery_used"):
            assert np.array_equal(getattr(fresh, name), getattr(cached, name)), name
    assert keys.known.sum() > 0
    assert not keys.known.all()


def _bins(alloc: fa.Allocation) -> dict[str, tuple[float, ...]]:
    """The fixed groups a sweep uses: the whole population's quartiles."""
    population = alloc.evaluation.population
    assert population is not None
    return group_bins(population, population.schema.protected_attributes)


# -- command line -------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    try:
        return main(["sweep", *argv])
    except SystemExit as e:  # argparse's usage errors
        return int(e.code or 0)


def test_cli_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "sweep.json"
    status = _cli(
        [
            str(POLICY),
            str(DATA),
            "--param",
            "min_age=60,70",
            "--param",
            "capacity=20,40",
            "--group-by",
            "gender",
            "--out",
            str(out_json),
        ]
    )
    assert status == 0
    text = capsys.readouterr().out
    assert "sweep of min_age × capacity" in text
    assert "min_age (now 60): evaluated again: rule:aged-60-plus" in text
    assert "capacity (now 40): evaluated again: nothing (allocation only)" in text
    assert f"wrote 4 points to {out_json}" in text
    doc = json.loads(out_json.read_text())
    assert [p["values"] for p in doc["points"]] == [
        {"min_age": 60, "capacity": 20},
        {"min_age": 60, "capacity": 40},
        {"min_age": 70, "capacity": 20},
        {"min_age": 70, "capacity": 40},
    ]
    assert _cli([str(POLICY), str(DATA), "--param", "min_age=60", "--strata", "need"]) == 0
    assert "min_age (now 60)" in capsys.readouterr().out
    out_csv = tmp_path / "sweep.csv"
    assert (
        _cli(
            [
                str(POLICY),
                str(DATA),
                "--param",
                "residence_cutoff=2000-01-01,2025-12-31",
                "--out",
                str(out_csv),
            ]
        )
        == 0
    )
    with open(out_csv, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["residence_cutoff"] for r in rows] == ["2000-01-01", "2025-12-31"]
    assert "rate.gender=female" in rows[0]


def test_cli_sweep_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli([str(POLICY), str(DATA), "--param", "min_age"]) == 2
    assert "NAME=V1,V2" in capsys.readouterr().err
    assert _cli([str(POLICY), str(DATA), "--param", "capacity=-3"]) == 2
    assert "at least 0" in capsys.readouterr().err
    assert _cli([str(POLICY), str(DATA), "--param", "min_ag=1"]) == 1
    assert "min_age" in capsys.readouterr().err  # the likely intended name
    out = tmp_path / "x.txt"
    assert _cli([str(POLICY), str(DATA), "--param", "min_age=60", "--out", str(out)]) == 2
    assert "*.json or *.csv" in capsys.readouterr().err
    assert not out.exists()


def test_parse_param_reads_values_as_a_policy_file_does() -> None:
    assert parse_param("min_age=60,65") == ("min_age", [60, 65])
    assert parse_param("x = 0.5, true, 2025-12-31, dibao") == (
        "x",
        [0.5, True, dt.date(2025, 12, 31), "dibao"],
    )
    with pytest.raises(argparse.ArgumentTypeError, match="empty"):
        parse_param("x=1,,2")


def test_the_documented_example_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(POLICY.parent.parent.parent)
    doc = (POLICY.parent.parent.parent / "docs" / "sweeps.md").read_text(encoding="utf-8")
    rel_policy, rel_data = (
        "examples/elderly-care/policy.yaml",
        "examples/elderly-care/residents.csv",
    )
    assert _cli([rel_policy, rel_data, "--param", "min_age=60,65,70,75"]) == 0
    assert capsys.readouterr().out in doc
    argv = ["--param", "waiting_points_per_month=0.25,0.5,1", "--param", "capacity=30,40"]
    argv += ["--group-by", "gender", "--group-by", "hardship"]
    assert _cli([rel_policy, rel_data, *argv]) == 0
    table = capsys.readouterr().out.splitlines()[3:]
    assert "\n".join(table) in doc


def test_dates_from_numpy_and_pandas_are_days() -> None:
    import datetime as dt

    from fairalloc.analysis._sweep import plain_value

    assert plain_value(np.datetime64("2000-01-01T00:00:00.000000000")) == dt.date(2000, 1, 1)
    assert plain_value(np.array(["2000-01-01"], dtype="datetime64[ns]")) == [dt.date(2000, 1, 1)]
    assert plain_value(dt.datetime(2000, 1, 1)) == dt.date(2000, 1, 1)
    assert plain_value(np.int64(3)) == 3
