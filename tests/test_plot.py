"""Figures for analysts (fairalloc.plot): what is drawn is what the results hold."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

import fairalloc as fa  # noqa: E402
from fairalloc import plot  # noqa: E402
from fairalloc.audit import group_statistics  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"


@pytest.fixture(scope="module")
def allocation() -> fa.Allocation:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    return fa.allocate(policy, EXAMPLE / "residents.csv")


def _bars(fig: Figure) -> tuple[list[str], list[float], list[Any]]:
    ax = fig.axes[0]
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return labels, [p.get_width() for p in bars.patches], list(bars.patches)


# -- score_breakdown -----------------------------------------------------------------------------


def test_breakdown_bars_are_the_points_totals_and_score(allocation: fa.Allocation) -> None:
    ev = allocation.evaluation
    rid = allocation.served_ids()[0]
    rec = ev.record(ev.index_of(rid))
    fig = plot.score_breakdown(ev, rid)
    labels, widths, patches = _bars(fig)
    drawn = dict(zip(labels, widths, strict=True))
    for key, points in rec["points"].items():
        assert drawn[key] == pytest.approx(points, abs=1e-9)
    for path, total in rec["scales"].items():
        assert drawn[f"{path}: total"] == pytest.approx(total, abs=1e-9)
    assert drawn["priority: total"] == pytest.approx(rec["points"]["priority.waiting-time"])
    assert labels[-1] == "score"
    assert widths[-1] == pytest.approx(rec["score"], abs=1e-9)
    # The example's terms have weight 1: the term totals add up to the score.
    assert drawn["need: total"] + drawn["priority: total"] == pytest.approx(rec["score"])
    # Order: each scale's indicators come before its total; the score is last.
    assert labels.index("need.health.adl") < labels.index("need.health: total")
    assert labels.index("need.health: total") < labels.index("need: total")
    # Totals are hatched, indicator points are not.
    hatches = {lbl: p.get_hatch() for lbl, p in zip(labels, patches, strict=True)}
    assert hatches["need: total"]
    assert not hatches["need.health.adl"]
    # Every bar carries its value as text, and the title gives the score as a sum of terms.
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {plot._num(w) for w in widths} <= texts
    title = fig.axes[0].get_title(loc="left")
    assert f"{rid}: score {plot._num(rec['score'])}" in title
    assert f"need {plot._num(rec['scales']['need'])} + priority" in title


def test_breakdown_of_an_allocation_is_that_of_its_evaluation(allocation: fa.Allocation) -> None:
    rid = allocation.served_ids()[3]
    a = _bars(plot.score_breakdown(allocation, rid))
    b = _bars(plot.score_breakdown(allocation.evaluation, rid))
    assert a[:2] == b[:2]


def test_breakdown_says_why_a_resident_is_not_eligible(allocation: fa.Allocation) -> None:
    ev = allocation.evaluation
    row = int(np.flatnonzero(~ev.eligibility[:, 0])[0])
    title = plot.score_breakdown(ev, str(ev.ids[row])).axes[0].get_title(loc="left")
    assert "not eligible: fails `aged-60-plus`" in title


WEIGHTED = """
policy: {id: weighted, version: "1", title: Weighted}
attributes:
  id: {type: str, role: id}
  a: {type: int, min: 0, max: 10}
  b: {type: int, min: 0, max: 10}
scales:
  need:
    scales:
      body: {weight: 0.5, indicators: {a: {points: "a"}}}
      home: {indicators: {b: {points: "b * 2"}}}
rules:
  priority: [{id: p, points: "a + b"}]
score:
  method: METHOD
  terms: [{of: need, weight: 2}, {of: priority}]
"""


def test_breakdown_shows_weights_and_the_weighted_terms() -> None:
    policy = fa.parse_policy(WEIGHTED.replace("METHOD", "sum"))
    ev = fa.evaluate(policy, [{"id": "r1", "a": 4, "b": 3}])
    labels, widths, _ = _bars(plot.score_breakdown(ev, "r1"))
    drawn = dict(zip(labels, widths, strict=True))
    assert drawn["need.body.a"] == 4
    assert drawn["need.body: total (× 0.5 in need)"] == 4
    assert drawn["need: total"] == 2 + 6
    assert drawn["need × 2 in the score"] == 16
    assert drawn["priority: total"] == 7
    assert drawn["score"] == 16 + 7


@pytest.mark.parametrize(
    ("method", "score_label", "formula"),
    [("product", "score", "need 8^2 × priority 7"), ("tiers", "score (first tier)", "tiers:")],
)
def test_breakdown_of_other_score_methods(method: str, score_label: str, formula: str) -> None:
    policy = fa.parse_policy(WEIGHTED.replace("METHOD", method))
    ev = fa.evaluate(policy, [{"id": "r1", "a": 4, "b": 3}])
    fig = plot.score_breakdown(ev, "r1")
    labels, widths, _ = _bars(fig)
    assert labels[-1] == score_label
    assert widths[-1] == pytest.approx(float(ev.score[0]))
    assert formula in fig.axes[0].get_title(loc="left")
    if method == "product":  # weights are exponents there, not a weighted term
        assert "need × 2 in the score" not in labels


def test_breakdown_of_an_unknown_resident(allocation: fa.Allocation) -> None:
    with pytest.raises(KeyError, match="nobody"):
        plot.score_breakdown(allocation, "nobody")
    with pytest.raises(TypeError, match="Evaluation or an Allocation"):
        plot.score_breakdown("result", "R0000001")  # type: ignore[arg-type]


# -- score_distribution --------------------------------------------------------------------------


def _cutoff_lines(fig: Figure) -> dict[str, float]:
    return {
        ln.get_label(): float(np.asarray(ln.get_xdata())[0])
        for ln in fig.axes[0].lines
        if isinstance(ln, Line2D) and str(ln.get_label()).startswith("cut-off")
    }


def test_distribution_counts_and_cutoff_lines(allocation: fa.Allocation) -> None:
    ev = allocation.evaluation
    fig = plot.score_distribution(allocation)
    ax = fig.axes[0]
    served, waiting = (c for c in ax.containers if isinstance(c, BarContainer))
    n_served = sum(p.get_height() for p in served.patches)
    n_waiting = sum(p.get_height() for p in waiting.patches)
    assert n_served == allocation.n_served
    assert n_served + n_waiting == int(ev.eligible.sum())
    assert served.patches[0].get_label() == f"served ({allocation.n_served})"
    assert all(p.get_hatch() for p in waiting.patches)
    # One line per category, at its cut-off score, labelled with category, score and resident.
    lines = _cutoff_lines(fig)
    cutoffs = allocation.cutoffs()
    assert len(lines) == len(cutoffs) == 2
    for c in cutoffs:
        assert c.score is not None
        assert lines[f"cut-off {c.category}: {plot._num(c.score)} ({c.last_id})"] == c.score
    styles = {ln.get_linestyle() for ln in ax.lines}
    assert len(styles) == 2  # told apart without colour
    assert {c.category for c in cutoffs} <= {t.get_text() for t in ax.texts}
    (legend,) = fig.legends  # under the figure, hiding no bar
    assert [t.get_text() for t in legend.get_texts()][:2] == [
        f"served ({allocation.n_served})",
        f"not served ({int(ev.eligible.sum()) - allocation.n_served})",
    ]
    assert len(legend.get_texts()) == 4


def test_distribution_of_an_evaluation_and_bins(allocation: fa.Allocation) -> None:
    ev = allocation.evaluation
    fig = plot.score_distribution(ev, bins=7)
    (bars,) = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars.patches) == 7
    counts, _ = np.histogram(ev.score[ev.eligible], bins=7)
    assert [p.get_height() for p in bars.patches] == counts.tolist()
    assert not _cutoff_lines(fig)


def test_distribution_of_a_lottery_has_no_cutoff_lines() -> None:
    policy = fa.parse_policy(
        """
policy: {id: draw, version: "1", title: Draw}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 10}
rules:
  priority: [{id: n, points: need}]
allocation: {mechanism: lottery, capacity: 2, lottery: {seed: s}}
"""
    )
    allocation = fa.allocate(policy, [{"id": f"r{i}", "need": i} for i in range(6)])
    assert allocation.mechanism == "lottery"
    fig = plot.score_distribution(allocation)
    assert not _cutoff_lines(fig)
    served = next(c for c in fig.axes[0].containers if isinstance(c, BarContainer))
    assert sum(p.get_height() for p in served.patches) == 2


def test_distribution_when_nobody_is_eligible(allocation: fa.Allocation) -> None:
    ev = allocation.evaluation
    assert ev.population is not None
    young = ev.population.replace("age", np.full(ev.n, 30.0))
    nobody = fa.evaluate(ev.policy, young)
    assert not nobody.eligible.any()
    fig = plot.score_distribution(nobody)
    assert "nobody is eligible" in {t.get_text() for t in fig.axes[0].texts}


# -- selection_rates -----------------------------------------------------------------------------


def _errorbars(fig: Figure) -> dict[str, ErrorbarContainer]:
    return {
        str(c.get_label()): c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)
    }


def _drawn_rows(fig: Figure) -> dict[float, tuple[float, float, float, str]]:
    """Every point drawn: its y, then (rate, interval low, interval high, legend label)."""
    out = {}
    for label, c in _errorbars(fig).items():
        data_line, _, (segments,) = c.lines
        xs, ys = data_line.get_data()
        for x, y, seg in zip(xs, ys, segments.get_segments(), strict=True):
            assert seg[0][1] == seg[1][1] == y
            out[float(y)] = (float(x), float(seg[0][0]), float(seg[1][0]), label)
    return out


def test_selection_rates_intervals_and_marks(allocation: fa.Allocation) -> None:
    stats = group_statistics(allocation, intersections=False)
    fig = plot.selection_rates(stats)
    ax = fig.axes[0]
    drawn = _drawn_rows(fig)
    rows = [r for r in stats.rows if r["stratum"] is None]
    assert len(drawn) == len(rows)
    ticks = {
        float(y): t.get_text() for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    }
    marks = {label: c.lines[0].get_marker() for label, c in _errorbars(fig).items()}
    assert len(set(marks.values())) == len(marks)  # shapes, not colour alone
    by_label = {f"{r['group']} (n={r['n']})": r for r in rows}
    seen = set()
    for y, (rate, low, high, label) in drawn.items():
        tick = ticks[y].rstrip("*")
        r = by_label[tick]
        assert ticks[y].endswith("*") == r["suppressed"]
        assert rate == pytest.approx(r["rate"])
        assert low == pytest.approx(r["rate_low"])
        assert high == pytest.approx(r["rate_high"])
        if r["reference"]:
            assert label == "best-served group (reference)"
        elif r["disparity"]:
            assert label == "below four-fifths, interval excludes parity"
        seen.add(tick)
    assert seen == set(by_label)
    # Headings name the groupings; the overall rate and four-fifths are marked and labelled.
    assert {"age", "gender", "hardship"} <= set(ticks.values())
    overall = stats.overall[0]["rate"]
    assert any(
        ln.get_label() == f"overall rate {overall * 100:.1f}%"
        and np.asarray(ln.get_xdata())[0] == overall
        for ln in ax.lines
    )
    age_ref = next(r for r in rows if r["grouping"] == "age" and r["reference"])
    fifths = [c for c in ax.collections if c.get_label() == "four-fifths of the best-served rate"]
    assert fifths
    segments = [s for c in ax.collections for s in getattr(c, "get_segments", list)()]
    assert any(s[0][0] == pytest.approx(0.8 * age_ref["rate"]) for s in segments)
    assert "95% Wilson interval" in ax.get_xlabel()


def test_selection_rates_for_publication_hide_suppressed_cells(allocation: fa.Allocation) -> None:
    stats = group_statistics(allocation, intersections=False)
    fig = plot.selection_rates(stats, publication=True)
    drawn = _drawn_rows(fig)
    rows = [r for r in stats.rows if r["stratum"] is None]
    suppressed = sum(r["suppressed"] for r in rows)
    assert 0 < suppressed < len(rows)
    assert len(drawn) == len(rows) - suppressed
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("suppressed") == suppressed


def test_selection_rates_within_a_stratum_and_chosen_groupings(allocation: fa.Allocation) -> None:
    stats = group_statistics(allocation, strata="need")
    fig = plot.selection_rates(stats, stratum="moderate", groupings=["gender × hardship"])
    ax = fig.axes[0]
    rows = [
        r for r in stats.rows if r["stratum"] == "moderate" and r["grouping"] == "gender × hardship"
    ]
    assert len(_drawn_rows(fig)) == len(rows)
    assert "moderate" in ax.get_title(loc="left")
    with pytest.raises(ValueError, match="no stratum 'extreme'"):
        plot.selection_rates(stats, stratum="extreme")
    with pytest.raises(ValueError, match="no grouping 'religion'"):
        plot.selection_rates(stats, groupings="religion")


# -- figures and axes ----------------------------------------------------------------------------


def test_draws_on_given_axes_and_never_on_pyplot(allocation: fa.Allocation) -> None:
    plt.close("all")
    stats = group_statistics(allocation, intersections=False)
    fig = plot.selection_rates(stats)
    plot.score_distribution(allocation)
    plot.score_breakdown(allocation, allocation.served_ids()[0])
    assert plt.get_fignums() == []  # no global pyplot state
    own = Figure()
    left, right = own.subplots(1, 2)
    assert plot.score_distribution(allocation, ax=right) is own
    assert right.containers
    assert not left.containers
    sub = Figure().subfigures(1, 2)[1]
    ax = sub.add_subplot()
    assert plot.score_breakdown(allocation, allocation.served_ids()[0], ax=ax) is sub.figure
    assert fig is not own


def test_without_matplotlib_the_error_says_what_to_install(
    allocation: fa.Allocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'fairalloc\[plot\]'"):
        plot.score_distribution(allocation)


# -- sweep_curves --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capacity_sweep() -> Any:
    from fairalloc.analysis._sweep import sweep

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    return sweep(policy, EXAMPLE / "residents.csv", {"capacity": [20, 40, 60]})


def _line(ax: Any, label: str) -> Line2D:
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line


def test_sweep_curves_metric_and_rates_per_group(capacity_sweep: Any) -> None:
    s = capacity_sweep
    fig = plot.sweep_curves(s, grouping="hardship")
    top, bottom = fig.axes
    served = _line(top, "residents served")
    assert list(served.get_xdata()) == [20, 40, 60]
    assert list(served.get_ydata()) == [p.served for p in s.points]
    base = _line(top, "policy as it is: capacity=40")
    assert list(base.get_xdata()) == [40, 40]
    assert top.get_ylabel() == "residents served"
    assert bottom.get_xlabel() == "capacity (units)"
    rows = [
        {r["group"]: r for r in p.group_rows() if r["grouping"] == "hardship"} for p in s.points
    ]
    bars = {str(c.get_label()): c for c in bottom.containers if isinstance(c, ErrorbarContainer)}
    assert set(bars) == {"none", "low_income", "dibao", "tekun"}
    for group, c in bars.items():
        data_line, _, (segments,) = c.lines
        xs, ys = data_line.get_data()
        assert list(ys) == pytest.approx([r[group]["rate"] for r in rows])
        assert list(xs) == pytest.approx([20, 40, 60], abs=0.05 * 40)  # drawn a little apart
        for seg, r in zip(segments.get_segments(), (r[group] for r in rows), strict=True):
            assert sorted([seg[0][1], seg[1][1]]) == pytest.approx([r["rate_low"], r["rate_high"]])
    fifths = _line(bottom, "four-fifths of the best-served rate")
    refs = [next(r["rate"] for r in by.values() if r["reference"]) for by in rows]
    assert list(fifths.get_ydata()) == pytest.approx([0.8 * r for r in refs])
    # Ringed exactly where a hardship group is flagged (with the graded ADL index, `none`).
    ringed = [ln for ln in bottom.lines if ln.get_label().startswith("below four-fifths")]
    flagged_hardship = [
        r["rate"]
        for p in s.points
        for r in p.group_rows()
        if r["grouping"] == "hardship" and r["disparity"]
    ]
    assert sorted(y for ln in ringed for y in ln.get_ydata()) == pytest.approx(
        sorted(flagged_hardship)
    )
    # By age, some groups are below four-fifths with intervals that exclude parity: ringed.
    by_age = plot.sweep_curves(s, metric=None, grouping="age").axes[0]
    flagged = [
        r["rate"]
        for p in s.points
        for r in p.group_rows()
        if r["grouping"] == "age" and r["disparity"]
    ]
    assert flagged
    square = _line(by_age, "below four-fifths, interval excludes parity")
    assert sorted(square.get_ydata()) == pytest.approx(sorted(flagged))
    assert "hardship" in bottom.get_title(loc="left")


def test_sweep_curves_cutoffs_and_ratios(capacity_sweep: Any) -> None:
    s = capacity_sweep
    top = plot.sweep_curves(s, metric="cutoffs").axes[0]
    for category in ("special-hardship", "open"):
        line = _line(top, f"cut-off {category}")
        want = [next(c["score"] for c in p.cutoffs if c["category"] == category) for p in s.points]
        assert list(line.get_ydata()) == pytest.approx(want)
    assert len({ln.get_linestyle() for ln in top.lines if ln.get_label().startswith("cut")}) == 2
    ratio = plot.sweep_curves(s, metric="min_ratio").axes[0]
    assert list(_line(ratio, "four-fifths").get_ydata()) == [0.8, 0.8]
    with pytest.raises(ValueError, match="unknown metric 'median'"):
        plot.sweep_curves(s, metric="median")
    with pytest.raises(ValueError, match="no grouping 'religion'"):
        plot.sweep_curves(s, grouping="religion")


def test_sweep_curves_of_two_keys() -> None:
    from fairalloc.analysis._sweep import sweep

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    s = sweep(policy, EXAMPLE / "residents.csv", {"min_age": [60, 70], "capacity": [30, 40]})
    (only,) = plot.sweep_curves(s, metric="eligible").axes  # the metric alone, one curve each
    for capacity in (30, 40):
        line = _line(only, f"capacity={capacity}")
        want = [p.eligible for p in s.points if p.values["capacity"] == capacity]
        assert list(line.get_xdata()) == [60, 70]
        assert list(line.get_ydata()) == want
    with pytest.raises(ValueError, match="fix one with at="):
        plot.sweep_curves(s, metric=None)
    top, bottom = plot.sweep_curves(s, at={"capacity": 40}).axes
    held = [p.served for p in s.points if p.values["capacity"] == 40]
    assert list(_line(top, "residents served").get_ydata()) == held
    assert "(capacity=40)" in top.get_title(loc="left")
    assert any(isinstance(c, ErrorbarContainer) for c in bottom.containers)
    with pytest.raises(ValueError, match="not a value of the sweep"):
        plot.sweep_curves(s, at={"capacity": 50})
    with pytest.raises(ValueError, match="`age` is not swept"):
        plot.sweep_curves(s, at={"age": 50})


def test_sweep_curves_of_values_that_are_not_numbers() -> None:
    from fairalloc.analysis._sweep import sweep

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    values = ["2020-01-01", "2025-12-31"]
    s = sweep(policy, EXAMPLE / "residents.csv", {"residence_cutoff": values})
    own = Figure()
    ax = own.add_subplot()
    assert plot.sweep_curves(s, metric=None, ax=ax) is own
    assert [t.get_text() for t in ax.get_xticklabels()] == values
    base = _line(ax, "policy as it is: residence_cutoff=2025-12-31")
    assert list(base.get_xdata()) == [1, 1]  # the policy's own value is the second
    with pytest.raises(TypeError, match="give 2 axes"):
        plot.sweep_curves(s, ax=ax)


# -- comparison_groups ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparison() -> Any:
    from fairalloc.analysis import compare

    text = (EXAMPLE / "policy.yaml").read_text(encoding="utf-8")
    assert "share: 0.25" in text
    wider = fa.parse_policy(text.replace("share: 0.25", "share: 0.5"))
    return compare(fa.load_policy(EXAMPLE / "policy.yaml"), wider, EXAMPLE / "residents.csv")


def test_comparison_groups_counts_winners_and_losers(comparison: Any) -> None:
    c = comparison
    assert c.newly_served
    assert c.losing_place
    fig = plot.comparison_groups(c, attribute="hardship")
    ax = fig.axes[0]
    won, gone = (b for b in ax.containers if isinstance(b, BarContainer))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.load(EXAMPLE / "residents.csv", policy)
    level = dict(zip(population.ids, population.decode("hardship"), strict=True))
    levels = ["none", "low_income", "dibao", "tekun"]
    size = {lv: sum(1 for v in level.values() if v == lv) for lv in levels}
    assert labels == [f"{lv} (n={size[lv]})" for lv in levels]
    newly = [sum(level[i] == lv for i in c.newly_served) for lv in levels]
    losing = [sum(level[i] == lv for i in c.losing_place) for lv in levels]
    assert [p.get_width() for p in won.patches] == newly
    assert [-p.get_width() for p in gone.patches] == losing  # drawn to the left
    assert all(p.get_hatch() for p in gone.patches)
    assert newly[2] > 0  # the wider hardship reserve serves more dibao households
    assert losing[0] > 0
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        f"newly served ({len(c.newly_served)})",
        f"losing their place ({len(c.losing_place)})",
    ]
    texts = {t.get_text() for t in ax.texts}
    assert {str(v) for v in newly + losing if v} <= texts
    assert "by hardship" in ax.get_title(loc="left")


def test_comparison_groups_defaults_and_errors(comparison: Any) -> None:
    ax = plot.comparison_groups(comparison).axes[0]
    assert "by age" in ax.get_title(loc="left")  # the first protected attribute compared
    # Numbers are grouped into quartiles of the residents compared: every resident counted once.
    sizes = [int(t.get_text().rsplit("n=", 1)[1].rstrip(")")) for t in ax.get_yticklabels()]
    assert sum(sizes) == comparison.n
    with pytest.raises(ValueError, match="no attribute `religion`"):
        plot.comparison_groups(comparison, attribute="religion")
    from fairalloc.analysis import compare

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    unserved = compare(policy, policy, EXAMPLE / "residents.csv", served=False)
    with pytest.raises(ValueError, match="did not compare who is served"):
        plot.comparison_groups(unserved)


def test_sweep_curves_run_in_value_order_and_match_numbers_by_value() -> None:
    from fairalloc.analysis._sweep import sweep

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    s = sweep(policy, EXAMPLE / "residents.csv", {"min_age": [75, 60, 70], "capacity": [30, 40]})
    (only,) = plot.sweep_curves(s, metric="eligible").axes
    line = _line(only, "capacity=30")
    assert list(line.get_xdata()) == [60, 70, 75]
    by_age = {p.values["min_age"]: p.eligible for p in s.points if p.values["capacity"] == 30}
    assert list(line.get_ydata()) == [by_age[60], by_age[70], by_age[75]]
    top, _ = plot.sweep_curves(s, at={"capacity": 40.0}).axes  # 40.0 is the grid's 40
    assert "(capacity=40)" in top.get_title(loc="left")


def test_figures_show_themselves_as_png_in_a_notebook() -> None:
    pytest.importorskip("matplotlib")
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    allocation = fa.allocate(policy, EXAMPLE / "residents.csv")
    png = plot.score_distribution(allocation)._repr_png_()  # type: ignore[attr-defined]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_every_figure_is_in_the_gallery_titled_and_labelled() -> None:
    pytest.importorskip("matplotlib")
    import importlib.util
    import inspect

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_gallery", root / "docs" / "gen_gallery.py")
    assert spec is not None
    assert spec.loader is not None
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    drawn = gallery.figures()
    public = {n for n, f in inspect.getmembers(plot, inspect.isfunction) if n in plot.__all__}
    assert set(drawn) == public
    page = (root / "docs" / "gallery.md").read_text(encoding="utf-8")
    for name, fig in drawn.items():
        assert f"(gallery/{name}.png)" in page
        assert (root / "docs" / "gallery" / f"{name}.png").is_file()
        shown = [ax for ax in fig.axes if ax.get_visible() and ax.has_data()]
        assert all(ax.get_ylabel() for ax in shown), name
        assert shown[-1].get_xlabel(), name  # panels over one x axis label the lowest
        assert any(ax.get_title(loc="left") for ax in fig.axes), name
