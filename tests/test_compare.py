"""Comparing two policies on one population: exact figures, properties, errors, the command."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import fairalloc as fa
from fairalloc.analysis import (
    ComparisonError,
    compare,
    kendall_tau_b,
    spearman_rho,
)
from fairalloc.cli import main
from tests.strategies import residents

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"

BASE = """
policy: {id: t, version: "1", title: T}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 130, protected: true}
  need: {type: int, min: 0, max: 10}
  alone: {type: bool}
  gender: {type: category, levels: [f, m], protected: true}
justified_uses:
  - {attribute: age, rule: old-enough, why: The service is for older residents., source: "§1"}
parameters: {min_age: 60, bonus: 2}
scales:
  care:
    indicators:
      level: {points: "need"}
    scales:
      family:
        weight: FAMILY_WEIGHT
        indicators:
          alone: {of: alone, lookup: {true: 3, false: 0}}
rules:
  eligibility: [{id: old-enough, when: "age >= min_age"}]
  priority: [{id: bonus-alone, when: alone, points: bonus}]
score:
  method: METHOD
  terms: [{of: care}, {of: priority, weight: PRIORITY_WEIGHT}]
ranking: {tie_break: [{lottery: {seed: published}}]}
allocation: {capacity: 2}
"""


def policy(
    *,
    min_age: int = 60,
    bonus: float = 2,
    family_weight: float = 1,
    priority_weight: float = 1,
    method: str = "sum",
    version: str = "1",
) -> fa.Policy:
    text = (
        BASE.replace("FAMILY_WEIGHT", str(family_weight))
        .replace("PRIORITY_WEIGHT", str(priority_weight))
        .replace("METHOD", method)
        .replace("min_age: 60", f"min_age: {min_age}")
        .replace("bonus: 2", f"bonus: {bonus}")
        .replace('version: "1"', f'version: "{version}"')
    )
    return fa.parse_policy(text)


PEOPLE = [
    {"id": "a", "age": 70, "need": 5, "alone": False, "gender": "f"},
    {"id": "b", "age": 65, "need": 4, "alone": True, "gender": "m"},
    {"id": "c", "age": 80, "need": 6, "alone": False, "gender": "m"},
    {"id": "d", "age": 62, "need": 2, "alone": True, "gender": "f"},
    {"id": "e", "age": 55, "need": 9, "alone": False, "gender": "f"},
    {"id": "f", "age": 90, "need": 1, "alone": False, "gender": "m"},
]

OLD = policy()
NEW = policy(min_age=64, bonus=5, version="2")


# -- exact figures on a hand-made case ---------------------------------------------------------


def test_eligibility_service_and_cutoffs_exactly() -> None:
    # Before: eligible a b c d f; scores b 9, d 7, c 6, a 5, f 1; two places: b, d.
    # After: d (62) is below 64; scores b 12, c 6, a 5, f 1; places: b, c.
    c = compare(OLD, NEW, PEOPLE)
    assert c.n == 6
    assert c.newly_eligible == []
    assert c.newly_ineligible == ["d"]
    assert c.newly_served == ["c"]
    assert c.losing_place == ["d"]
    e = c.eligibility_summary()
    assert (e["eligible_both"], e["newly_ineligible"], e["ineligible_both"]) == (4, 1, 1)
    assert e["newly_ineligible_by_rule"] == {"fails old-enough": 1}
    s = c.served_summary()
    assert s is not None
    assert s["served_both"] == 1
    assert s["losing_place_no_longer_eligible"] == 1
    assert s["losing_place_below_cutoff"] == 0
    assert s["newly_served_above_cutoff"] == 1
    (open_,) = c.cutoff_changes
    assert open_.category == "open"
    assert open_.before is not None
    assert open_.after is not None
    assert (open_.before.last_id, open_.before.score) == ("d", 7.0)
    assert (open_.after.last_id, open_.after.score) == ("c", 6.0)
    assert open_.changed
    assert c.changed


def test_ranks_and_scores_exactly() -> None:
    c = compare(OLD, NEW, PEOPLE)
    r = c.rank_summary()
    # Eligible under both: a 4 -> 3, b 1 -> 1, c 3 -> 2, f 5 -> 4.
    assert (r["compared"], r["unchanged"], r["moved_up"], r["moved_down"]) == (4, 1, 3, 0)
    assert r["largest_up"] == 1
    assert r["spearman_rho"] == pytest.approx(1.0)
    assert r["kendall_tau_b"] == pytest.approx(1.0)
    assert [m.id for m in c.movers] == ["a", "c", "f"]
    assert (c.movers[0].rank_before, c.movers[0].rank_after, c.movers[0].shift) == (4, 3, 1)
    changes = {cc.criterion: cc for cc in c.criterion_changes}
    assert set(changes) == {"care.level", "care.family.alone", "priority.bonus-alone"}
    bonus = changes["priority.bonus-alone"]
    assert bonus.status == "changed"
    assert bonus.residents_changed == 2  # b and d live alone
    assert (bonus.smallest, bonus.largest, bonus.mean_change) == (0.0, 3.0, 1.0)
    assert bonus.causes == ("parameter `bonus` in force: 2 → 5",)
    assert changes["care.level"].status == "unchanged"
    assert changes["care.level"].causes == ()
    delta = dict(zip(c.ids, c.score_delta_micro, strict=True))
    assert delta == {"a": 0, "b": 3_000_000, "c": 0, "d": 3_000_000, "e": 0, "f": 0}


def test_group_rates_before_and_after() -> None:
    c = compare(OLD, NEW, PEOPLE, group_by="gender")
    rows = {(r["group"], r["stratum"]): r for r in c.group_rows()}
    # Served among the eligible: f: a, d before (d served); a after (not served).
    f, m = rows[("f", None)], rows[("m", None)]
    assert (f["n_before"], f["selected_before"], f["n_after"], f["selected_after"]) == (2, 1, 1, 0)
    assert (m["n_before"], m["selected_before"], m["n_after"], m["selected_after"]) == (3, 1, 3, 2)
    assert f["rate_change"] == pytest.approx(-0.5)
    assert m["rate_change"] == pytest.approx(2 / 3 - 1 / 3)
    assert m["ratio_after"] == 1.0
    assert f["ratio_after"] == 0.0


def test_weighted_scales_split_exactly_with_rounding() -> None:
    old = policy(family_weight=1.3, priority_weight=0.7)
    new = policy(family_weight=1.7, priority_weight=0.3, bonus=2.345678)
    c = compare(old, new, PEOPLE)
    assert c.additive
    total = c.criterion_delta_micro.sum(axis=1)
    assert (total == c.score_delta_micro).all()
    alone = c.criteria.index("care.family.alone")
    b = list(c.ids).index("b")
    assert c.criterion_delta_micro[b, alone] == 1_200_000  # 3 x (1.7 - 1.3)
    causes = {cc.criterion: cc.causes for cc in c.criterion_changes}
    assert causes["care.family.alone"] == ("scale `care.family`: weight 1.3 → 1.7",)
    assert set(causes["priority.bonus-alone"]) == {
        "score term `priority`: weight 0.7 → 0.3",
        "parameter `bonus` in force: 2 → 2.345678",
    }


def test_product_scores_report_points_not_contributions() -> None:
    c = compare(policy(method="product"), policy(method="product", bonus=4), PEOPLE)
    assert not c.additive
    j = c.criteria.index("priority.bonus-alone")
    assert sorted(c.criterion_delta_micro[:, j].tolist()) == [0, 0, 0, 0, 2_000_000, 2_000_000]
    assert "need not add up" in c.to_markdown()


def test_criteria_only_in_one_policy_are_added_or_removed() -> None:
    text = BASE.replace("FAMILY_WEIGHT", "1").replace("PRIORITY_WEIGHT", "1")
    text = text.replace("METHOD", "sum")
    old = fa.parse_policy(text)
    new = fa.parse_policy(
        text.replace(
            '      level: {points: "need"}',
            '      level: {points: "need"}\n      extra: {points: "1 if need > 4 else 0"}',
        )
        .replace("  priority: [{id: bonus-alone, when: alone, points: bonus}]", "  priority: []")
        .replace("  terms: [{of: care}, {of: priority, weight: 1}]", "  terms: [{of: care}]")
    )
    c = compare(old, new, PEOPLE)
    status = {cc.criterion: cc.status for cc in c.criterion_changes}
    assert status["care.extra"] == "added"
    assert status["priority.bonus-alone"] == "removed"
    assert (c.criterion_delta_micro.sum(axis=1) == c.score_delta_micro).all()
    extra = next(cc for cc in c.criterion_changes if cc.criterion == "care.extra")
    assert extra.residents_changed == 3  # a, c and e have need above 4
    assert extra.causes == ("indicator `care.extra`: added (points: `1 if need > 4 else 0`)",)


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=25)
@given(residents(OLD, min_size=1, max_size=25))
def test_a_policy_compared_with_itself_changes_nothing(people: list[dict[str, Any]]) -> None:
    c = compare(OLD, OLD, people)
    assert not c.changed
    assert c.diff.empty
    assert c.newly_eligible == c.newly_ineligible == c.newly_served == c.losing_place == []
    assert all(cc.residents_changed == 0 for cc in c.criterion_changes)
    r = c.rank_summary()
    assert r["unchanged"] == r["compared"]
    assert r["spearman_rho"] in (1.0, None)
    assert r["kendall_tau_b"] in (1.0, None)
    assert not any(cc.changed for cc in c.cutoff_changes)
    assert all(g["rate_change"] in (0.0, None) for g in c.group_rows())


WEIGHTED_OLD = policy(family_weight=1.3, priority_weight=0.7)
WEIGHTED_NEW = policy(min_age=64, bonus=2.5, family_weight=0.9, priority_weight=1.4, version="2")


@settings(max_examples=25)
@given(residents(WEIGHTED_OLD, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_the_json_does_not_depend_on_row_order(
    people: list[dict[str, Any]], rnd: random.Random
) -> None:
    shuffled = list(people)
    rnd.shuffle(shuffled)
    one = compare(WEIGHTED_OLD, WEIGHTED_NEW, people, group_by=["gender", "age"])
    two = compare(WEIGHTED_OLD, WEIGHTED_NEW, shuffled, group_by=["gender", "age"])
    assert one.to_json() == two.to_json()
    assert one.to_markdown() == two.to_markdown()


@settings(max_examples=25)
@given(residents(WEIGHTED_OLD, min_size=1, max_size=25))
def test_criterion_changes_add_up_to_the_score_change(people: list[dict[str, Any]]) -> None:
    c = compare(WEIGHTED_OLD, WEIGHTED_NEW, people)
    assert (c.criterion_delta_micro.sum(axis=1) == c.score_delta_micro).all()
    before = fa.evaluate(WEIGHTED_OLD, people)
    after = fa.evaluate(WEIGHTED_NEW, people)
    for i, rid in enumerate(c.ids):
        expect = after.score_micro[after.index_of(rid)] - before.score_micro[before.index_of(rid)]
        assert c.score_delta_micro[i] == expect


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=0, max_size=40))
def test_rank_correlations_match_scipy(pairs: list[tuple[int, int]]) -> None:
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    rho, tau = spearman_rho(x, y), kendall_tau_b(x, y)
    if len(set(x)) < 2 or len(set(y)) < 2:
        assert rho is None
        assert tau is None
        return
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert tau == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_rank_correlations_of_large_samples_match_scipy() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2000, 20_000)
    y = x + rng.integers(-300, 300, 20_000)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau_b(x, -y) == pytest.approx(stats.kendalltau(x, -y).statistic, abs=1e-12)


# -- populations -------------------------------------------------------------------------------


def test_residents_are_matched_by_id_not_by_row() -> None:
    before = fa.evaluate(OLD, PEOPLE)
    # Another population: rows reversed, `a` missing and `z` new.
    others = [
        *reversed(PEOPLE[1:]),
        {"id": "z", "age": 99, "need": 10, "alone": True, "gender": "m"},
    ]
    after = fa.evaluate(NEW, others)
    c = compare(before, after, group_by=[])
    assert (c.only_before, c.only_after) == (["a"], ["z"])
    assert c.n == 5
    same = compare(OLD, NEW, PEOPLE[1:], group_by=[])
    assert c.newly_ineligible == same.newly_ineligible == ["d"]
    got = dict(zip(c.ids, c.score_delta_micro, strict=True))
    assert got == dict(zip(same.ids, same.score_delta_micro, strict=True))
    # Both policies allocate: each evaluation is allocated by its own policy (z takes a place).
    assert c.losing_place == ["d"]
    assert c.newly_served == []
    assert c.to_dict()["residents"] == {"in_both": 5, "only_before": ["a"], "only_after": ["z"]}


def test_allocations_are_compared_as_given() -> None:
    a = fa.allocate(OLD, PEOPLE)
    b = fa.allocate(NEW, PEOPLE, capacity=1)
    c = compare(a, b, group_by=[])
    s = c.served_summary()
    assert s is not None
    assert (s["capacity_before"], s["capacity_after"]) == (2, 1)
    assert c.losing_place == ["d"]
    assert c.newly_served == []


def test_schemas_may_differ() -> None:
    text = BASE.replace("FAMILY_WEIGHT", "1").replace("PRIORITY_WEIGHT", "1")
    text = text.replace("METHOD", "sum")
    old = fa.parse_policy(text)
    new = fa.parse_policy(
        text.replace(
            "  gender: {type: category, levels: [f, m], protected: true}",
            "  gender: {type: category, levels: [f, m], protected: true}\n  carer: {type: bool}",
        ).replace(
            '      level: {points: "need"}',
            '      level: {points: "need"}\n      carer: {of: carer, lookup: {true: 0, false: 4}}',
        )
    )
    people = [{**p, "carer": p["id"] in ("a", "b")} for p in PEOPLE]
    c = compare(old, new, people, group_by=[])
    carer = next(cc for cc in c.criterion_changes if cc.criterion == "care.carer")
    assert carer.status == "added"
    assert carer.residents_changed == 4
    # Residents already validated against the first policy lack the new column.
    population = fa.Population.from_records(people, old)
    with pytest.raises(ComparisonError, match=r"(?s)after policy .*missing column"):
        compare(old, new, population)
    # With the column, a population of the first schema is loaded again for the second.
    wide = fa.Population.from_records(people, new)
    assert (
        compare(new, old, wide, group_by=[]).to_json()
        == compare(new, old, people, group_by=[]).to_json()
    )


# -- errors ------------------------------------------------------------------------------------


def test_ids_of_different_types_are_refused() -> None:
    other = fa.parse_policy(
        BASE.replace("id: {type: str, role: id}", "id: {type: int, role: id}")
        .replace("FAMILY_WEIGHT", "1")
        .replace("PRIORITY_WEIGHT", "1")
        .replace("METHOD", "sum")
    )
    with pytest.raises(ComparisonError, match=r"different types.*`id` \(str\).*`id` \(int\)"):
        compare(OLD, other, PEOPLE)


def test_populations_without_common_residents_are_refused() -> None:
    before = fa.evaluate(OLD, PEOPLE[:3])
    after = fa.evaluate(NEW, PEOPLE[3:])
    with pytest.raises(ComparisonError, match=r"no resident is in both.*ids such as 'a', 'b', 'c'"):
        compare(before, after)
    with pytest.raises(ComparisonError, match="no resident is in both"):
        compare(OLD, NEW, [])


def test_served_status_of_a_policy_without_allocation() -> None:
    text = BASE.replace("FAMILY_WEIGHT", "1").replace("PRIORITY_WEIGHT", "1")
    bare = fa.parse_policy(text.replace("METHOD", "sum").replace("allocation: {capacity: 2}", ""))
    with pytest.raises(ComparisonError, match=r"after policy \(t v1\) has no `allocation` section"):
        compare(OLD, bare, PEOPLE, capacity=3)
    with pytest.raises(ComparisonError, match="served=False"):
        compare(OLD, bare, PEOPLE, served=True)
    c = compare(OLD, bare, PEOPLE)
    assert not c.served_compared
    assert c.to_dict()["served"] is None
    assert any("has no `allocation` section" in n for n in c.notes)
    with pytest.raises(fa.ArgumentError, match=r"FA617 .*drop served=False"):
        compare(OLD, NEW, PEOPLE, capacity=3, served=False)


def test_a_policy_loaded_for_audit_only_is_compared_without_allocating() -> None:
    text = BASE.replace("FAMILY_WEIGHT", "1").replace("PRIORITY_WEIGHT", "1")
    text = text.replace("METHOD", "sum").replace(
        "  priority: [{id: bonus-alone, when: alone, points: bonus}]",
        "  priority: [{id: bonus-alone, when: alone, points: bonus},"
        ' {id: men-first, when: "gender == m", points: 1}]',
    )
    unfair = fa.parse_policy(text, audit=True)
    c = compare(OLD, unfair, iter(PEOPLE))
    assert not c.served_compared
    assert any("loaded for audit only" in n for n in c.notes)
    men = next(cc for cc in c.criterion_changes if cc.criterion == "priority.men-first")
    assert (men.status, men.residents_changed) == ("added", 3)
    with pytest.raises(ComparisonError, match=r"after policy \(t v1\) was loaded for audit only"):
        compare(OLD, unfair, PEOPLE, served=True)


def test_unknown_groups_and_strata_are_refused() -> None:
    with pytest.raises(
        fa.ArgumentError, match=r"FA603 cannot group by `district`.*age, need, alone, gender"
    ):
        compare(OLD, NEW, PEOPLE, group_by=["district"])
    with pytest.raises(fa.ArgumentError, match="FA608 `care` is not a graded scale of the before"):
        compare(OLD, NEW, PEOPLE, strata="care")


def test_residents_are_needed_with_policies() -> None:
    with pytest.raises(TypeError, match="give the residents"):
        compare(OLD, NEW)
    ev = fa.evaluate(OLD, PEOPLE)
    with pytest.raises(TypeError, match="not with evaluations"):
        compare(ev, ev, PEOPLE)


# -- exports -----------------------------------------------------------------------------------


def test_to_pandas_has_one_row_per_resident() -> None:
    c = compare(OLD, NEW, PEOPLE)
    df = c.to_pandas()
    assert list(df.index) == ["a", "b", "c", "d", "e", "f"]
    assert df.loc["d", "eligible_before"]
    assert not df.loc["d", "eligible_after"]
    assert df.loc["d", "rank_before"] == 2
    assert df.loc["d", "rank_after"] is df.loc["e", "rank_after"]  # both missing (pd.NA)
    assert df.loc["a", "rank_shift"] == 1
    assert df.loc["b", "delta.priority.bonus-alone"] == 3.0
    assert df.loc["b", "score_change"] == 3.0
    assert bool(df.loc["c", "served_after"])
    assert not bool(df.loc["c", "served_before"])


def test_reports_say_the_same_in_every_format() -> None:
    c = compare(OLD, NEW, PEOPLE, group_by="gender")
    md = c.to_markdown()
    text = c.to_text()
    html = c._repr_html_()
    for fragment in ("Newly ineligible: d.", "Losing their place: d.", "Newly served: c."):
        assert fragment in md
        assert fragment in text
        assert fragment in html
    assert "| priority.bonus-alone | changed | 2 | +1 | 0 | +3 |" in md
    assert "parameter `min_age`: value 60 → 64; read by rule `old-enough`" in md
    assert "<th scope='col'>rate before</th>" in html
    assert "<script" not in html
    assert repr(c) == (
        "<Comparison t v1 → t v2 on 6 residents: 0 newly eligible, 1 newly ineligible,"
        " 1 newly served, 1 losing their place, 3 moved in rank>"
    )
    data = json.loads(c.to_json())
    assert data["eligibility"]["newly_ineligible_ids"] == ["d"]
    assert data["served"]["losing_place_ids"] == ["d"]
    assert data["ranks"]["largest_movers"][0]["id"] == "a"


def test_html_escapes_values() -> None:
    people = [{**p, "id": f"<b>{p['id']}</b>"} for p in PEOPLE]
    html = compare(OLD, NEW, people)._repr_html_()
    assert "<b>d</b>" not in html
    assert "&lt;b&gt;d&lt;/b&gt;" in html


# -- end to end on the bundled example ---------------------------------------------------------


def example_variant(**parameters: Any) -> fa.Policy:
    doc = yaml.safe_load((EXAMPLE / "policy.yaml").read_text(encoding="utf-8"))
    for name, value in parameters.items():
        doc["parameters"][name]["value"] = value
    doc["scales"]["need"]["scales"]["family"]["indicators"]["alone"]["weight"] = 1.5
    doc["policy"]["version"] = "2026.2"
    return fa.Policy.model_validate(doc)


def test_elderly_care_example_end_to_end() -> None:
    old = fa.load_policy(EXAMPLE / "policy.yaml")
    new = example_variant(min_age=65)
    c = compare(old, new, EXAMPLE / "residents.csv")
    before = fa.allocate(old, EXAMPLE / "residents.csv")
    after = fa.allocate(new, EXAMPLE / "residents.csv")
    ev = before.evaluation
    ages = ev.population.columns["age"] if ev.population is not None else None
    assert ages is not None
    expect = sorted(str(i) for i in ev.ids[ev.eligible & (ages < 65)])
    assert c.newly_ineligible == expect
    assert c.newly_eligible == []
    assert c.losing_place == sorted(set(before.served_ids()) - set(after.served_ids()))
    assert c.newly_served == sorted(set(after.served_ids()) - set(before.served_ids()))
    assert (c.criterion_delta_micro.sum(axis=1) == c.score_delta_micro).all()
    alone = next(cc for cc in c.criterion_changes if cc.criterion == "need.family.alone")
    assert alone.causes == ("indicator `need.family.alone`: weight 1 → 1.5",)
    assert alone.largest == 5.0
    unchanged = [cc for cc in c.criterion_changes if cc.criterion != "need.family.alone"]
    assert all(cc.residents_changed == 0 for cc in unchanged)
    assert [ch.item for ch in c.diff.changes if ch.affects_outcomes] == [
        "min_age",
        "need.family.alone",
    ]
    assert c.groups_before is not None
    assert c.groups_before.strata == "need"
    md = c.to_markdown()
    for heading in ("## Eligibility", "## Who is served", "### Cut-offs", "## Ranks", "## Groups"):
        assert heading in md


# -- the command -------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    try:
        return main(["diff", *argv])
    except SystemExit as e:  # argparse's usage errors
        return int(e.code or 0)


def write_variant(tmp_path: Path) -> Path:
    text = (EXAMPLE / "policy.yaml").read_text(encoding="utf-8")
    changed = text.replace("min_age: {value: 60,", "min_age: {value: 65,")
    assert changed != text
    path = tmp_path / "policy-65.yaml"
    path.write_text(changed, encoding="utf-8")
    return path


def test_command_diffs_policy_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = EXAMPLE / "policy.yaml"
    assert run([str(policy), str(policy)]) == 0
    assert "say the same" in capsys.readouterr().out
    assert run([str(policy), str(write_variant(tmp_path)), "--format", "md"]) == 1
    out = capsys.readouterr().out
    assert "- parameter `min_age`: value 60 → 65; read by rule `aged-60-plus`" in out
    assert "## Eligibility" not in out  # no data: the structural diff only


def test_command_compares_outcomes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        str(EXAMPLE / "policy.yaml"),
        str(write_variant(tmp_path)),
        str(EXAMPLE / "residents.csv"),
    ]
    assert run([*args, "--format", "json", "--group-by", "gender", "--top", "3"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["eligibility"]["newly_ineligible"] == len(
        data["eligibility"]["newly_ineligible_ids"]
    )
    assert data["eligibility"]["newly_ineligible"] > 0
    assert {r["grouping"] for r in data["groups"]["rows"]} == {"gender"}
    assert len(data["ranks"]["largest_movers"]) == 3
    assert run([*args, "--capacity", "20"]) == 1
    out = capsys.readouterr().out
    assert "Who is served\n-------------" in out
    assert "capacity      20     20" in out
    out_file = tmp_path / "report.md"
    assert run([*args, "--format", "md", "--out", str(out_file)]) == 1
    assert out_file.read_text(encoding="utf-8").startswith("# Comparison: elderly-care-places")


def test_command_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(EXAMPLE / "policy.yaml")
    assert run([policy, str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "residents.csv"
    bad.write_text("resident_id,age\nR1,70\n", encoding="utf-8")
    assert run([policy, policy, str(bad)]) == 1
    err = capsys.readouterr().err
    assert "do not fit the attributes of the before policy" in err
    assert run([policy, policy, str(EXAMPLE / "residents.csv"), "--group-by", "shoe_size"]) == 2
    assert "cannot group by `shoe_size`" in capsys.readouterr().err


def test_review_only_ids_sorted_and_rotation_refused() -> None:
    import random

    text = """
policy: {id: demo, version: "1", title: Demo}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 130}
  need: {type: int, min: 0, max: 10}
parameters: {min_age: 60}
rules:
  eligibility: [{id: old-enough, when: "age >= min_age"}]
  priority: [{id: need-points, points: "need"}]
ranking: {tie_break: [{lottery: {seed: published}}]}
allocation: {capacity: 3}
"""
    a = fa.parse_policy(text)
    b = fa.parse_policy(text.replace("{min_age: 60}", "{min_age: 65}"))
    rng = random.Random(5)
    recs = [
        {"id": f"r{i:03d}", "age": rng.randint(50, 90), "need": rng.randint(0, 10)}
        for i in range(40)
    ]
    first, second = recs[:30], recs[10:]
    c1 = fa.compare(fa.evaluate(a, first), fa.evaluate(b, second), group_by="age")
    shuffled1, shuffled2 = first[:], second[:]
    rng.shuffle(shuffled1)
    rng.shuffle(shuffled2)
    c2 = fa.compare(fa.evaluate(a, shuffled1), fa.evaluate(b, shuffled2), group_by="age")
    assert c1.only_before == sorted(c1.only_before)
    assert c1.to_json() == c2.to_json()
    assert any("Group statistics count each population as a whole" in n for n in c1.notes)
    rot_a = fa.parse_policy(
        text.replace(
            "allocation: {capacity: 3}", "allocation: {capacity: 3, rotation: {capacity: 2}}"
        )
    )
    rot_b = fa.parse_policy(
        text.replace(
            "allocation: {capacity: 3}", "allocation: {capacity: 3, rotation: {capacity: 2}}"
        ).replace("{min_age: 60}", "{min_age: 65}")
    )
    c3 = fa.compare(rot_a, rot_b, recs)
    assert not c3.served_compared
