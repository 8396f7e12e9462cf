"""Proxies judged by what they do to protected groups' outcomes (permutation effect)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc.allocation import allocate_evaluation
from fairalloc.audit import audit
from fairalloc.audit._outcome import outcome_proxies

ROOT = Path(__file__).resolve().parent.parent
N = 2000

HEAD = """
policy: {id: px, version: "1", title: Proxy}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 100, need: higher}
  ethnicity: {type: category, levels: [han, hui], protected: true, ground: cultural background}
  gender: {type: category, levels: [female, male], protected: true, ground: gender}
  district: {type: category, levels: [a, b]}
  is_female: {type: bool%s}
  f1: {type: bool}
  f2: {type: bool}
grounds_not_collected:
  age: not asked
  occupation: not asked
  economic status: not asked
  physical condition: not asked
scales:
  s: {indicators: {n: {points: "need / 10"}}}
ranking: {tie_break: [{lottery: {seed: published}}]}
"""


def _residents(track: float, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    ethnicity = rng.integers(0, 2, N)
    district = np.where(rng.random(N) < track, ethnicity, 1 - ethnicity)
    f1 = rng.integers(0, 2, N).astype(bool)
    f2 = rng.integers(0, 2, N).astype(bool)
    gender = np.where(f1 ^ f2, "female", "male")
    return {
        "id": [f"P{i:05d}" for i in range(N)],
        "need": rng.integers(0, 101, N).tolist(),
        "ethnicity": np.array(["han", "hui"])[ethnicity].tolist(),
        "gender": gender.tolist(),
        "district": np.array(["a", "b"])[district].tolist(),
        "is_female": (gender == "female").tolist(),
        "f1": f1.tolist(),
        "f2": f2.tolist(),
    }


def _check(extra: str, residents: dict[str, Any], need: str = "") -> Any:
    if "allocation:" not in extra:
        extra += f"allocation: {{capacity: {N // 5}}}\n"
    policy = fa.parse_policy(HEAD % need + extra, audit=True)
    ev = fa.evaluate(policy, residents)
    return outcome_proxies(allocate_evaluation(ev, capacity=N // 5, measure_only=True))


def _row(report: Any, attrs: list[str], protected: str) -> dict[str, Any]:
    return next(r for r in report.rows if r["attributes"] == attrs and r["protected"] == protected)


@pytest.mark.slow
@pytest.mark.parametrize("track", [0.82, 0.91])
def test_district_points_that_track_ethnicity_are_flagged(track: float) -> None:
    report = _check(
        "rules: {priority: [{id: district-a, when: 'district == a', points: 10}]}\n",
        _residents(track),
    )
    row = _row(report, ["district"], "ethnicity")
    assert row["association"] >= 0.6
    assert row["flagged"]
    assert not report.ok


@pytest.mark.slow
def test_a_district_that_decides_a_reserve_is_flagged() -> None:
    # Three quarters of the places reserved for district a, where half the residents live: the
    # reserve binds (a district's share of the top fifth by need would be half), and it
    # moves places from one ethnic group to the other. No points depend on the district.
    extra = (
        "allocation:\n  capacity: 400\n  reserves:\n"
        "    - {id: district-a, share: 0.75, eligible: 'district == a'}\n"
    )
    report = _check(extra, _residents(0.82))
    row = _row(report, ["district"], "ethnicity")
    assert row["flagged"]
    assert row["parts"] == ["reserve:district-a"] or "reserve" in " ".join(row["parts"])


@pytest.mark.slow
def test_a_flag_that_is_gender_is_flagged_and_declared_need_is_reported_not_skipped() -> None:
    rules = "rules: {priority: [{id: women-first, when: is_female, points: 5}]}\n"
    plain = _check(rules, _residents(0.5))
    assert _row(plain, ["is_female"], "gender")["flagged"]
    as_need = _check(rules, _residents(0.5), need=", need: higher")
    row = _row(as_need, ["is_female"], "gender")
    assert not row["flagged"]
    assert row["for_review"]
    assert row["need"] == {"is_female": "higher"}
    assert as_need.ok
    assert "for review: declared need measure" in as_need.to_markdown()


@pytest.mark.slow
def test_two_flags_whose_xor_is_gender_are_flagged_as_a_pair() -> None:
    extra = (
        "derived: {either: 'f1 != f2'}\n"
        "rules: {priority: [{id: odd-one, when: either, points: 10}]}\n"
    )
    report = _check(extra, _residents(0.5))
    assert not any(r["attributes"] in (["f1"], ["f2"]) for r in report.rows)  # V 0 alone
    row = _row(report, ["f1", "f2"], "gender")
    assert row["association"] > 0.9
    assert row["flagged"]


@pytest.mark.slow
def test_an_attribute_unrelated_to_outcomes_is_not_flagged() -> None:
    # District tracks ethnicity but the policy reads it only where it changes nothing.
    report = _check(
        "rules: {priority: [{id: district-a, when: 'district == a', points: 0}]}\n",
        _residents(0.91),
    )
    assert report.ok


def test_the_fair_example_passes_and_the_audit_reports_the_section() -> None:
    policy = fa.load_policy(ROOT / "examples" / "elderly-care" / "policy.yaml", audit=True)
    report = audit(policy, ROOT / "examples" / "elderly-care" / "residents.csv")
    section = dict(report.sections)["proxy outcomes"]
    assert section.ok
    assert report.ok
    assert any(r["for_review"] for r in section.rows)  # adl_score, a declared need, is shown
    again = audit(policy, ROOT / "examples" / "elderly-care" / "residents.csv")
    assert dict(again.sections)["proxy outcomes"].to_dict() == section.to_dict()


def test_counting_protected_groups_jointly_gives_the_tables_counted_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The screen counts each candidate against every protected attribute's groups at once; a
    # policy whose joint groups are too many counts them one protected attribute at a time.
    # Both must give the same associations, candidates and report.
    from fairalloc.audit import _outcome

    policy = fa.load_policy(ROOT / "examples" / "elderly-care" / "policy.yaml", audit=True)
    ev = fa.evaluate(policy, ROOT / "examples" / "elderly-care" / "residents.csv")
    alloc = allocate_evaluation(ev, capacity=40, measure_only=True)
    joint = outcome_proxies(alloc, association=0.05)
    monkeypatch.setattr(_outcome._Association, "_GROUPS", 0)
    apart = outcome_proxies(alloc, association=0.05)
    assert joint.rows  # the low threshold examines candidates, single and paired
    assert any(len(r["attributes"]) == 2 for r in joint.rows)
    assert joint.to_dict() == apart.to_dict()
