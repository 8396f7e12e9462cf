"""Group statistics, proxy detection and the scale audit (fairalloc.audit._groups / _proxy)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc.audit import _groups
from fairalloc.audit._groups import (
    group_statistics,
    rate_ratio_interval,
    scale_audit,
    wilson_interval,
)
from fairalloc.audit._proxy import correlation_ratio, cramers_v, proxy_check

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"
Z95 = 1.959963984540054


# -- intervals ----------------------------------------------------------------------------------


def test_wilson_interval_hand_computed() -> None:
    # k=1, n=5: centre (0.2 + z²/10) / (1 + z²/5), half-width z·sqrt(0.032 + z²/100) / (1 + z²/5)
    lo, hi = wilson_interval(1, 5)
    assert lo == pytest.approx(0.036224, abs=1e-6)
    assert hi == pytest.approx(0.624465, abs=1e-6)
    # k=50, n=100: centred on 0.5, half-width z·sqrt(0.0025 + z²/40000) / (1 + z²/100)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.403832, abs=1e-6)
    assert hi == pytest.approx(0.596168, abs=1e-6)
    # k=0: the lower bound is 0, the upper z²/(n + z²)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(Z95**2 / (10 + Z95**2), abs=1e-12)
    # k=n mirrors k=0
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0
    assert lo == pytest.approx(1 - Z95**2 / (10 + Z95**2), abs=1e-12)


def test_wilson_interval_other_confidence_and_errors() -> None:
    lo90, hi90 = wilson_interval(50, 100, confidence=0.90)
    lo95, hi95 = wilson_interval(50, 100)
    assert lo95 < lo90 < 0.5 < hi90 < hi95
    with pytest.raises(ValueError, match="selected"):
        wilson_interval(6, 5)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 5, confidence=1.0)


def test_rate_ratio_katz_interval() -> None:
    # 20/100 against 40/100: RR 0.5, SE(log RR) = sqrt(1/20 - 1/100 + 1/40 - 1/100)
    rr, lo, hi = rate_ratio_interval(20, 100, 40, 100)
    se = math.sqrt(1 / 20 - 1 / 100 + 1 / 40 - 1 / 100)
    assert rr == 0.5
    assert lo == pytest.approx(0.5 * math.exp(-Z95 * se), rel=1e-12)
    assert hi == pytest.approx(0.5 * math.exp(Z95 * se), rel=1e-12)
    assert (round(lo, 4), round(hi, 4)) == (0.3158, 0.7918)


def test_rate_ratio_zero_uses_continuity_correction() -> None:
    # Nobody selected: ratio 0, lower bound 0, upper bound with 0.5 added to every cell.
    rr, lo, hi = rate_ratio_interval(0, 10, 10, 20)
    corrected = (0.5 / 11) / (10.5 / 21)
    se = math.sqrt(1 / 0.5 - 1 / 11 + 1 / 10.5 - 1 / 21)
    assert (rr, lo) == (0.0, 0.0)
    assert hi == pytest.approx(corrected * math.exp(Z95 * se), rel=1e-12)
    assert hi == pytest.approx(1.41023, abs=1e-5)
    with pytest.raises(ValueError, match="undefined"):
        rate_ratio_interval(1, 10, 0, 10)


def test_rate_ratio_intervals_keep_their_width_at_100_percent() -> None:
    # Everybody selected in both groups: the plain Katz SE is 0, so the interval would be
    # "1.00 (1.00-1.00)"; with 0.5 added to every cell it is wide, as two residents warrant.
    rr, lo, hi = rate_ratio_interval(2, 2, 2, 2)
    se = math.sqrt(1 / 2.5 - 1 / 3 + 1 / 2.5 - 1 / 3)
    assert rr == 1.0
    assert (lo, hi) == pytest.approx((math.exp(-Z95 * se), math.exp(Z95 * se)), rel=1e-12)
    assert hi - lo > 1.0
    # Everybody in the group, some in the reference: corrected too, and contains the ratio.
    rr, lo, hi = rate_ratio_interval(10, 10, 5, 10)
    corrected = (10.5 / 11) / (5.5 / 11)
    se = math.sqrt(1 / 10.5 - 1 / 11 + 1 / 5.5 - 1 / 11)
    assert rr == 2.0
    assert lo == pytest.approx(corrected * math.exp(-Z95 * se), rel=1e-12)
    assert lo < rr < hi
    # Everybody in the reference group.
    rr, lo, hi = rate_ratio_interval(3, 10, 10, 10)
    assert lo < rr < hi


def test_rate_ratio_intervals_match_scipy_away_from_the_bounds() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k1, n1, k2, n2 in [(20, 100, 40, 100), (1, 9, 8, 9), (37, 50, 12, 61), (5, 7, 3, 200)]:
        ci = stats.contingency.relative_risk(k1, n1, k2, n2).confidence_interval(0.95)
        _, lo, hi = rate_ratio_interval(k1, n1, k2, n2)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_intervals_match_scipy_where_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    ci = stats.binomtest(7, 23).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(7, 23) == pytest.approx((ci.low, ci.high), abs=1e-9)


# -- populations for group statistics -----------------------------------------------------------

GROUP_POLICY = """
policy: {id: groups, version: "1", title: Groups}
attributes:
  id: {type: str, role: id}
  gender: {type: category, levels: [a, b, c], protected: true, ground: gender}
  region: {type: category, levels: [east, west], protected: true, ground: cultural background}
  age: {type: int, min: 0, max: 130, protected: true, ground: age}
  level: {type: int, min: 0, max: 10}
  passes: {type: bool}
scales:
  need:
    indicators:
      level: {points: "level"}
    grades:
      - {min: 5, grade: high}
      - {grade: low}
rules:
  eligibility:
    - {id: passes-test, when: passes}
ranking: {tie_break: [{lottery: {seed: published}}]}
"""


def _residents(groups: list[tuple[dict[str, Any], int, int]]) -> list[dict[str, Any]]:
    """Residents from (attributes, how many, how many pass) triples."""
    out: list[dict[str, Any]] = []
    for attrs, n, k in groups:
        for i in range(n):
            rec = {"id": f"r{len(out)}", "region": "east", "age": 70, "level": 1, **attrs}
            rec["passes"] = i < k
            out.append(rec)
    return out


def _evaluate(records: list[dict[str, Any]], policy: str = GROUP_POLICY) -> fa.Evaluation:
    return fa.evaluate(fa.parse_policy(policy), records)


def _rows(
    stats: _groups.GroupStatistics, grouping: str, stratum: str | None = None
) -> dict[str, dict[str, Any]]:
    return {
        r["group"]: r for r in stats.rows if r["grouping"] == grouping and r["stratum"] == stratum
    }


def test_rates_ratios_four_fifths_and_parity() -> None:
    ev = _evaluate(
        _residents(
            [({"gender": "a"}, 100, 50), ({"gender": "b"}, 100, 20), ({"gender": "c"}, 20, 7)]
        )
    )
    stats = group_statistics(ev, attributes=["gender"])
    rows = _rows(stats, "gender")
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert (a["n"], a["selected"], a["rate"]) == (100, 50, 0.5)
    assert (a["rate_low"], a["rate_high"]) == pytest.approx((0.403832, 0.596168), abs=1e-6)
    assert a["reference"]
    assert a["ratio"] == 1.0
    assert a["ratio_low"] is None
    assert b["reference_group"] == "a"
    # b: 0.2 / 0.5, clearly below parity
    assert b["ratio"] == pytest.approx(0.4)
    assert (b["ratio_low"], b["ratio_high"]) == pytest.approx((0.258063, 0.620004), abs=1e-6)
    assert b["four_fifths"]
    assert b["compatible_with_parity"] is False
    assert b["disparity"]
    # c: 0.35 / 0.5 fails four-fifths, but its interval includes 1
    assert c["ratio"] == pytest.approx(0.7)
    assert (c["ratio_low"], c["ratio_high"]) == pytest.approx((0.373341, 1.312471), abs=1e-6)
    assert c["four_fifths"]
    assert c["compatible_with_parity"] is True
    assert not c["disparity"]
    assert not any(r["suppressed"] for r in stats.rows)
    assert not stats.ok
    assert stats.disparities == [b]
    md = stats.to_markdown()
    assert "below four-fifths; interval excludes parity" in md
    assert "below four-fifths, but compatible with parity" in md
    assert "| b | 100 | 20 | 20.0% (13.3%–28.9%) | 0.40 (0.26–0.62) |" in md
    assert stats.overall[0]["selected"] == 77
    assert stats.overall[0]["n"] == 220
    assert "disparities: 1;" in repr(stats)


def test_issue_example_small_cell_is_suppressed() -> None:
    # 2% served overall; a cell of 5 with 1 served must not be published.
    ev = _evaluate(_residents([({"gender": "a"}, 995, 19), ({"gender": "b"}, 5, 1)]))
    stats = group_statistics(ev, attributes=["gender"])
    assert stats.overall[0]["rate"] == pytest.approx(0.02)
    small, big = _rows(stats, "gender")["b"], _rows(stats, "gender")["a"]
    assert small["suppressed"]
    assert small["expected"] == pytest.approx(0.1)
    assert small["suppression"] == [
        "fewer than 10 residents",
        "expected selected 0.1 < 5",
        "expected not selected 4.9 < 5",
    ]
    # The large cell alone would give the small one away by subtraction from the total.
    assert big["suppressed"]
    assert big["suppression"] == [
        "complementary: protects another suppressed cell from subtraction"
    ]
    # Internally the numbers stay ...
    assert (small["selected"], small["rate"]) == (1, 0.2)
    # ... and publication hides them (size included), with a reason that carries no value.
    published = stats.to_dict(publication=True)
    pub = {r["group"]: r for r in published["rows"]}
    for key in ("n", "expected", "selected", "rate", "rate_low", "ratio", "four_fifths"):
        assert pub["b"][key] is None
        assert pub["a"][key] is None
    assert pub["b"]["suppression"] == pub["a"]["suppression"] == [
        "suppressed to protect residents (§2.2.2)"
    ]
    assert published["disclosure"]["cells_suppressed"] == 2
    assert published["disclosure"]["secondary"] == 1
    md = stats.to_markdown(publication=True)
    line = next(x for x in md.splitlines() if x.startswith("| b |"))
    assert line == "| b | — | — | — | — | suppressed to protect residents (§2.2.2) |"
    assert "0.1" not in md
    assert "4.9" not in md
    assert "20.0%" not in md
    assert "suppressed in publication" in stats.to_markdown()
    assert "20.0%" in stats.to_markdown()


def test_suppression_by_expected_not_selected_and_thresholds() -> None:
    # Overall rate 0.9: a cell of 40 expects only 4 not selected.
    ev = _evaluate(_residents([({"gender": "a"}, 400, 360), ({"gender": "b"}, 40, 36)]))
    rows = _rows(group_statistics(ev, attributes=["gender"]), "gender")
    assert rows["b"]["suppression"][0] == "expected not selected 4.0 < 5"
    relaxed = group_statistics(ev, attributes=["gender"], min_expected=4.0)
    assert not any(r["suppressed"] for r in relaxed.rows)


def test_strata_compare_within_need_grade() -> None:
    # Selection follows need alone, but group a has more residents in high need.
    ev = _evaluate(
        _residents(
            [
                ({"gender": "a", "level": 8}, 80, 60),
                ({"gender": "b", "level": 8}, 20, 15),
                ({"gender": "a", "level": 2}, 20, 5),
                ({"gender": "b", "level": 2}, 80, 20),
            ]
        )
    )
    plain = group_statistics(ev, attributes=["gender"])
    assert _rows(plain, "gender")["b"]["ratio"] == pytest.approx(35 / 65)
    assert not plain.ok
    stats = group_statistics(ev, attributes=["gender"], strata="need")
    assert [o["stratum"] for o in stats.overall] == [None, "high", "low"]
    high, low = _rows(stats, "gender", "high"), _rows(stats, "gender", "low")
    assert (high["a"]["n"], high["a"]["selected"], high["b"]["rate"]) == (80, 60, 0.75)
    assert (low["b"]["n"], low["b"]["selected"], low["a"]["rate"]) == (80, 20, 0.25)
    assert high["b"]["ratio"] == pytest.approx(1.0)
    assert high["b"]["compatible_with_parity"] is True
    # The all-strata rows are still there, flagged, but the verdict is within strata.
    assert _rows(stats, "gender", None)["b"]["disparity"]
    assert stats.ok
    assert "| high | b | 20 | 15 |" in stats.to_markdown()
    with pytest.raises(ValueError, match="graded scale"):
        group_statistics(ev, strata="nope")


def test_intersections_and_number_quartiles() -> None:
    rng = np.random.default_rng(5)
    records = [
        {
            "id": f"r{i}",
            "gender": ["a", "b", "c"][int(rng.integers(3))],
            "region": ["east", "west"][int(rng.integers(2))],
            "age": int(1 + i % 8),
            "level": 1,
            "passes": bool(rng.random() < 0.5),
        }
        for i in range(400)
    ]
    ev = _evaluate(records)
    stats = group_statistics(ev)
    groupings = list(dict.fromkeys(r["grouping"] for r in stats.rows))
    assert groupings == [
        "gender",
        "region",
        "age",
        "gender × region",
        "gender × age",
        "region × age",
    ]
    # Ages 1..8: quartiles 2.75, 4.5 and 6.25, labelled by the values in each bin.
    assert list(_rows(stats, "age")) == ["1–2", "3–4", "5–6", "7–8"]
    assert [r["n"] for r in _rows(stats, "age").values()] == [100] * 4
    # Each intersection cell counts exactly its residents.
    counts = Counter((r["gender"], r["region"]) for r in records)
    served = Counter((r["gender"], r["region"]) for r in records if r["passes"])
    cells = _rows(stats, "gender × region")
    for (g, reg), n in counts.items():
        row = cells[f"{g} × {reg}"]
        assert (row["n"], row["selected"]) == (n, served[(g, reg)])
        assert row["levels"] == [g, reg]
    best = max(cells.values(), key=lambda r: r["rate"])
    assert best["reference"]
    without = group_statistics(ev, intersections=False)
    assert {r["grouping"] for r in without.rows} == {"gender", "region", "age"}


def test_joint_table_and_per_grouping_counts_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    records = _residents(
        [
            ({"gender": "a", "region": "west", "level": 7}, 30, 12),
            ({"gender": "b", "age": 40}, 25, 20),
            ({"gender": "c", "region": "west", "age": 90, "level": 9}, 12, 3),
        ]
    )
    ev = _evaluate(records)
    joint = group_statistics(ev, strata="need")
    monkeypatch.setattr(_groups, "_JOINT_LIMIT", 0)
    separate = group_statistics(ev, strata="need")
    assert separate.rows == joint.rows


def test_allocation_rates_among_eligible() -> None:
    ev = fa.evaluate(fa.load_policy(EXAMPLE / "policy.yaml"), EXAMPLE / "residents.csv")
    alloc = fa.allocate(ev)
    stats = group_statistics(alloc, strata="need")
    assert stats.outcome == "served"
    assert stats.base == "eligible"
    assert stats.overall[0]["n"] == int(ev.eligible.sum())
    assert stats.overall[0]["selected"] == alloc.n_served == 40
    gender = _rows(stats, "gender")
    assert sum(r["n"] for r in gender.values()) == stats.overall[0]["n"]
    assert sum(r["selected"] for r in gender.values()) == 40
    pop = ev.population
    assert pop is not None
    female = pop.columns["gender"] == 0
    assert gender["female"]["n"] == int((female & ev.eligible).sum())
    assert gender["female"]["selected"] == int((female & alloc.served).sum())
    # Within need grades nobody is below four-fifths with an interval excluding parity.
    assert stats.ok
    published = stats.to_dict(publication=True)
    assert all(r["rate"] is None for r in published["rows"] if r["suppressed"])
    assert all(r["rate"] is not None for r in published["rows"] if not r["suppressed"])
    mild = next(o for o in published["overall"] if o["stratum"] == "mild")
    assert mild["suppressed"]
    assert mild["selected"] is None
    assert mild["n"] is None
    assert "ratio" not in mild
    # No table has exactly one suppressed cell among its groups and its total (the preview).
    for overall in stats.overall:
        stratum = overall["stratum"]
        for name in ("gender", "hardship", "ethnicity"):
            hidden = [r for r in _rows(stats, name, stratum).values() if r["suppressed"]]
            assert len(hidden) + overall["suppressed"] != 1
    evaluation_stats = group_statistics(ev, attributes=["gender"], intersections=False)
    assert evaluation_stats.outcome == "eligible"
    assert evaluation_stats.overall[0]["n"] == ev.n
    pd = pytest.importorskip("pandas")
    df = stats.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == len(stats.rows)


# -- proxy detection ----------------------------------------------------------------------------


def _plain_cramers_v(xs: list[int], ys: list[int]) -> float:
    n = len(xs)
    rows, cols = sorted(set(xs)), sorted(set(ys))
    count: dict[tuple[int, int], int] = {}
    for x, y in zip(xs, ys, strict=True):
        count[(x, y)] = count.get((x, y), 0) + 1
    chi2 = 0.0
    for x in rows:
        for y in cols:
            expected = xs.count(x) * ys.count(y) / n
            chi2 += (count.get((x, y), 0) - expected) ** 2 / expected
    r, k = len(rows), len(cols)
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    rc = r - (r - 1) ** 2 / (n - 1)
    kc = k - (k - 1) ** 2 / (n - 1)
    return math.sqrt(phi2 / min(kc - 1, rc - 1))


def _plain_eta(codes: list[int], values: list[float]) -> float:
    mean = sum(values) / len(values)
    groups: dict[int, list[float]] = {}
    for c, v in zip(codes, values, strict=True):
        groups.setdefault(c, []).append(v)
    between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups.values())
    total = sum((v - mean) ** 2 for v in values)
    return math.sqrt(between / total)


def test_association_measures_match_plain_python() -> None:
    rng = np.random.default_rng(11)
    xs = rng.integers(0, 3, 300)
    ys = np.where(rng.random(300) < 0.4, xs, rng.integers(0, 4, 300))
    table = np.zeros((3, 4), dtype=int)
    np.add.at(table, (xs, ys), 1)
    assert cramers_v(table) == pytest.approx(_plain_cramers_v(xs.tolist(), ys.tolist()), rel=1e-12)
    values = rng.normal(size=300) + xs
    assert correlation_ratio(xs, values) == pytest.approx(
        _plain_eta(xs.tolist(), values.tolist()), rel=1e-12
    )
    # Independent attributes: the bias correction brings V to 0 rather than about 0.1.
    assert cramers_v([[25, 25], [25, 25]]) == 0.0
    assert cramers_v([[10, 0, 5]]) == 0.0
    assert correlation_ratio([0, 1, 2], [3.0, 3.0, 3.0]) == 0.0


DISTRICT_POLICY = """
policy: {id: districts, version: "1", title: District points}
attributes:
  id: {type: str, role: id}
  ethnicity: {type: category, levels: [x, y], protected: true, ground: cultural background}
  age: {type: int, min: 0, max: 130, protected: true, ground: age}
  district: {type: category, levels: [north, south]}
  adl: {type: int, min: 0, max: 20, need: lower}
  income: {type: float, min: 0}
  registered: {type: bool}
scales:
  need:
    indicators:
      adl: {points: "20 - adl"}
      area: {of: district, lookup: {north: 10, south: 0}}
rules:
  eligibility:
    - {id: registered, when: registered}
ranking: {tie_break: [{lottery: {seed: published}}]}
"""


def _district_population(n: int = 2000) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    eth = rng.random(n) < 0.3
    north = np.where(eth, rng.random(n) < 0.9, rng.random(n) < 0.1)
    age = rng.integers(60, 95, n)
    return [
        {
            "id": f"r{i}",
            "ethnicity": "x" if eth[i] else "y",
            "age": int(age[i]),
            "district": "north" if north[i] else "south",
            "adl": int(rng.integers(0, 21)),
            "income": float(rng.gamma(2.0, 1000.0)),
            "registered": True,
        }
        for i in range(n)
    ]


def test_district_is_flagged_as_proxy_for_ethnicity() -> None:
    records = _district_population()
    ev = _evaluate(records, DISTRICT_POLICY)
    report = proxy_check(ev)
    assert not report.ok
    pair = next(
        p for p in report.pairs if (p["attribute"], p["protected"]) == ("district", "ethnicity")
    )
    assert pair["flagged"]
    assert pair["measure"] == "Cramér's V"
    xs = [int(r["ethnicity"] == "y") for r in records]
    ys = [int(r["district"] == "south") for r in records]
    assert pair["association"] == pytest.approx(_plain_cramers_v(xs, ys), rel=1e-12)
    assert pair["association"] > 0.7
    # Influence: variance of the district points over variance of the score.
    area = np.array([10.0 if r["district"] == "north" else 0.0 for r in records])
    score = area + np.array([20.0 - r["adl"] for r in records])
    assert pair["influence"] == pytest.approx(area.var() / score.var(), rel=1e-9)
    assert pair["criteria"] == ["need.area"]
    assert report.flags == [pair["message"]]
    assert pair["message"] == (
        f"district acts as a proxy for ethnicity (Cramér's V {pair['association']:.2f})"
        f" and contributes {pair['influence']:.0%} of score variance"
    )
    # The other pairs: registered decides eligibility but is constant; adl is unrelated.
    registered = next(p for p in report.pairs if p["attribute"] == "registered")
    assert registered["eligibility_rules"] == ["registered"]
    assert registered["association"] == 0.0
    assert not registered["flagged"]
    adl_age = next(p for p in report.pairs if (p["attribute"], p["protected"]) == ("adl", "age"))
    assert adl_age["measure"] == "|Pearson r|"
    assert adl_age["association"] < 0.1
    assert "**district acts as a proxy for ethnicity" in report.to_markdown()
    assert "Pearson r (absolute)" in report.to_markdown()
    # A higher threshold lets it pass; a tiny influence threshold changes nothing here.
    assert proxy_check(ev, association_threshold=0.95).ok


def test_proxy_deciding_eligibility_is_flagged_without_points() -> None:
    policy = DISTRICT_POLICY.replace(
        "    - {id: registered, when: registered}",
        '    - {id: registered, when: registered}\n    - {id: in-north, when: "district == north"}',
    ).replace("      area: {of: district, lookup: {north: 10, south: 0}}\n", "")
    ev = _evaluate(_district_population(), policy)
    pair = next(
        p
        for p in proxy_check(ev).pairs
        if (p["attribute"], p["protected"]) == ("district", "ethnicity")
    )
    assert pair["influence"] == 0.0
    assert pair["eligibility_rules"] == ["in-north"]
    assert pair["flagged"]
    assert pair["message"].endswith("decides eligibility (rule `in-north`)")


def test_fair_example_has_no_flagged_proxy() -> None:
    # Thresholds: association 0.3 (a "medium" association on Cohen's scale) and 5% of score
    # variance. The only strong associations in the example are need measures declared in the
    # schema (daily living and cognition with age), which the policy must allocate by.
    ev = fa.evaluate(fa.load_policy(EXAMPLE / "policy.yaml"), EXAMPLE / "residents.csv")
    report = proxy_check(ev)
    assert report.ok
    assert report.flags == []
    attributes = {p["attribute"] for p in report.pairs}
    assert attributes == {
        "adl_score",
        "cognition",
        "lives_alone",
        "children_nearby",
        "carer_hours",
        "moved_in",
        "holds_place",
        "waiting_days",
    }
    assert not {p["protected"] for p in report.pairs} - {
        "age",
        "gender",
        "occupation",
        "ethnicity",
        "hardship",
        "disability",
    }
    # Attributes that are not need measures stay far below the threshold.
    assert max(p["association"] for p in report.pairs if p["need"] is None) < 0.3
    exempt = {(p["attribute"], p["protected"]) for p in report.pairs if p["exempt"]}
    assert ("adl_score", "age") in exempt
    strict = proxy_check(ev, exempt_need=False)
    assert not strict.ok
    assert any(f.startswith("adl_score acts as a proxy for age") for f in strict.flags)
    assert "No proxy is flagged." in report.to_markdown()


# -- scale audit --------------------------------------------------------------------------------

SCALE_POLICY = """
policy: {id: items, version: "1", title: Items}
attributes:
  id: {type: str, role: id}
  ethnicity: {type: category, levels: [x, y], protected: true, ground: cultural background}
  adl: {type: int, min: 0, max: 19}
  club: {type: bool}
scales:
  need:
    indicators:
      adl: {points: "adl"}
      club: {of: club, lookup: {true: 5, false: 0}}
    grades:
      - {min: 15, grade: high}
      - {grade: low}
ranking: {tie_break: [{lottery: {seed: published}}]}
"""


def test_scale_audit_flags_item_scoring_a_group_higher_within_grade() -> None:
    # Everyone in x is a club member (5 points), nobody in y; adl 0..19 twice in each group.
    records = [
        {"id": f"{g}{i}", "ethnicity": g, "adl": i % 20, "club": g == "x"}
        for g in ("x", "y")
        for i in range(40)
    ]
    ev = _evaluate(records, SCALE_POLICY)
    audit = scale_audit(ev)
    assert audit.strata == "need"
    rows = {
        (r["stratum"], r["group"], r["indicator"]): r
        for r in audit.rows
        if r["attribute"] == "ethnicity"
    }
    # High grade (total >= 15): x with adl >= 10 (20 residents), y with adl >= 15 (10).
    x_club = rows[("high", "x", "need.club")]
    assert (x_club["n"], rows[("high", "y", "need.club")]["n"]) == (20, 10)
    assert x_club["mean"] == pytest.approx(5.0)
    assert x_club["stratum_mean"] == pytest.approx(5 * 20 / 30)
    assert x_club["difference"] == pytest.approx(5 / 3)
    assert x_club["std"] == pytest.approx(5 * math.sqrt(2 / 9))
    assert x_club["standardized"] == pytest.approx((5 / 3) / (5 * math.sqrt(2 / 9)))
    assert x_club["flagged"]
    assert not x_club["reads_attribute"]
    assert rows[("high", "y", "need.club")]["difference"] == pytest.approx(-10 / 3)
    assert not audit.ok
    assert any(
        f.startswith("In grade `high`, indicator `need.club` gives ethnicity = x 1.67 points more")
        for f in audit.flags
    )
    md = audit.to_markdown()
    assert "**5.00 (+1.67) flagged**" in md
    assert audit.to_dict()["flags"] == audit.flags


def test_scale_audit_small_groups_and_own_reads_are_not_flagged() -> None:
    records = [
        {"id": f"{g}{i}", "ethnicity": g, "adl": i % 20, "club": g == "x"}
        for g, n in (("x", 6), ("y", 60))
        for i in range(n)
    ]
    ev = _evaluate(records, SCALE_POLICY)
    audit = scale_audit(ev, min_group=10)
    assert not any(r["flagged"] for r in audit.rows if r["group"] == "x")
    # The example's hardship points read hardship itself (a justified use): never flagged.
    ex = fa.evaluate(fa.load_policy(EXAMPLE / "policy.yaml"), EXAMPLE / "residents.csv")
    ex_audit = scale_audit(ex)
    own = [
        r
        for r in ex_audit.rows
        if r["attribute"] == "hardship" and r["indicator"] == "need.economic.hardship"
    ]
    assert own
    assert all(r["reads_attribute"] and not r["flagged"] for r in own)
    unstratified = scale_audit(ev, attributes=["ethnicity"], among="all")
    assert {r["stratum"] for r in unstratified.rows} == {"high", "low"}
