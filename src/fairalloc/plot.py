"""Figures for policy analysts: one resident's score, the score distribution, selection rates.

Needs matplotlib (``pip install 'fairalloc[plot]'``), imported only when a figure is drawn, so
``import fairalloc`` never needs it. Every function draws on the ``ax`` given, or on a new
:class:`matplotlib.figure.Figure` of its own, and returns the figure: nothing is shown and no
global pyplot state is used, so a figure can be adjusted, saved (``fig.savefig("rates.png")``)
or shown in a notebook, where a returned figure displays itself.

Nothing is computed again: the figures read the arrays of an :class:`~fairalloc.Evaluation`,
the cut-offs of an :class:`~fairalloc.Allocation` and the rows of the audit's
:class:`~fairalloc.audit.GroupStatistics`. Marks differ by shape, line style or hatching as
well as by colour, and every one is labelled, so that no meaning rests on colour alone.

Examples:
    >>> import fairalloc as fa
    >>> from fairalloc import plot
    >>> policy = fa.parse_policy('''
    ... policy: {id: demo, version: "1", title: Demo}
    ... attributes:
    ...   id: {type: str, role: id}
    ...   need: {type: int, min: 0, max: 10}
    ... rules:
    ...   priority: [{id: need-points, points: "need * 2"}]
    ... ''')
    >>> result = fa.evaluate(policy, [{"id": "a", "need": 3}, {"id": "b", "need": 7}])
    >>> fig = plot.score_breakdown(result, "b")
    >>> [label.get_text() for label in fig.axes[0].get_yticklabels()]
    ['priority.need-points', 'priority: total', 'score']
    >>> fig.savefig("breakdown.png")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from fairalloc._escape import plot_text
from fairalloc._evaluation import Evaluation
from fairalloc._numeric import MICRO
from fairalloc._optional import require
from fairalloc._text import number
from fairalloc.allocation._result import Allocation
from fairalloc.errors import ArgumentError, ArgumentTypeError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fairalloc._compiler import ScaleNode
    from fairalloc.analysis._compare import Comparison
    from fairalloc.analysis._sweep import Sweep, SweepPoint
    from fairalloc.audit._groups import GroupStatistics

__all__ = [
    "comparison_groups",
    "score_breakdown",
    "score_distribution",
    "selection_rates",
    "sweep_curves",
]

#: Line styles of successive cut-offs, so that they differ without colour.
_LINE_STYLES = ("solid", "dashed", "dashdot", "dotted")


def _require_matplotlib() -> None:
    require("matplotlib", extra="plot", feature="fairalloc.plot")


@functools.cache
def _figure_class() -> type[Figure]:
    """A matplotlib ``Figure`` that shows itself in Jupyter, with or without pyplot."""
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        """A figure whose notebook display is its PNG image (pyplot's inline backend not needed)."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100)
            return buffer.getvalue()

    return ShownFigure


def _canvas(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: the ``ax`` given, or a new figure of ``size`` inches."""
    _require_matplotlib()
    from matplotlib.figure import Figure

    if ax is None:
        fig = _figure_class()(figsize=size, layout="constrained")
        return fig, fig.add_subplot()
    root: Any = ax.figure
    while not isinstance(root, Figure):  # axes of a subfigure: draw there, return the figure
        root = root.figure
    return root, ax


def _colours() -> list[str]:
    import matplotlib as mpl

    return list(mpl.rcParams["axes.prop_cycle"].by_key()["color"])


def _legend(fig: Figure, ax: Axes, *, own: bool) -> None:
    """The legend of ``ax``: under the figure when the figure is ours, else where it fits."""
    if own:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", fontsize="small")
    else:
        ax.legend(loc="best", fontsize="small")


def _num(value: float) -> str:
    """A number as the command line prints it: up to six decimals, no trailing zeros."""
    return number(value)


def _evaluation_of(result: Evaluation | Allocation) -> Evaluation:
    if isinstance(result, Allocation):
        return result.evaluation
    if isinstance(result, Evaluation):
        return result
    raise ArgumentTypeError(
        "FA640", f"give an Evaluation or an Allocation, not {type(result).__name__}"
    )


# -- one resident's score ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Part:
    label: str
    points: float
    kind: Literal["criterion", "total", "term", "score"]
    term: int  # index of the score term it belongs to (-1 for the score)


def _scale_parts(ev: Evaluation, row: int, node: ScaleNode, term: int, parent: str) -> list[_Part]:
    """A scale's indicators, then its sub-scales, then its total (depth first)."""
    out = [
        _Part(ev.criteria[j], int(ev.points[row, j]) / MICRO, "criterion", term)
        for j in node.indicators
    ]
    for child in node.children:
        out += _scale_parts(ev, row, child, term, node.path)
    weight = f" (× {_num(node.weight)} in {parent})" if parent and node.weight != 1.0 else ""
    total = int(ev.scale_totals[row, node.index]) / MICRO
    out.append(_Part(f"{node.path}: total{weight}", total, "total", term))
    return out


def _breakdown(ev: Evaluation, row: int) -> list[_Part]:
    """Every part of one resident's score, in the order drawn (top to bottom)."""
    cp = ev.policy
    method = cp.policy.score.method
    nodes = {s.path: s for top in cp.scales for s in top.walk()}
    priority = [j for j, c in enumerate(cp.criteria) if c.kind == "priority"]
    parts: list[_Part] = []
    for t, (name, weight) in enumerate(cp.score_terms):
        if name == "priority":
            parts += [
                _Part(ev.criteria[j], int(ev.points[row, j]) / MICRO, "criterion", t)
                for j in priority
            ]
            total = sum(int(ev.points[row, j]) for j in priority) / MICRO
            parts.append(_Part("priority: total", total, "total", t))
        else:
            parts += _scale_parts(ev, row, nodes[name], t, "")
        if weight != 1.0 and method != "product":
            term = int(ev.terms[row, t]) / MICRO
            parts.append(_Part(f"{name} × {_num(weight)} in the score", term, "term", t))
    label = "score (first tier)" if method == "tiers" else "score"
    parts.append(_Part(label, int(ev.score_micro[row]) / MICRO, "score", -1))
    return parts


def _score_formula(ev: Evaluation, row: int) -> str:
    cp = ev.policy
    method = cp.policy.score.method
    terms = [
        (name, weight, int(ev.terms[row, t]) / MICRO)
        for t, (name, weight) in enumerate(cp.score_terms)
    ]
    if not terms:
        return "no score terms"
    if method == "sum":
        return " + ".join(f"{name} {_num(v)}" for name, _, v in terms)
    if method == "product":
        return " × ".join(
            f"{name} {_num(v)}" + (f"^{_num(w)}" if w != 1.0 else "") for name, w, v in terms
        )
    return "tiers: " + ", then ".join(f"{name} {_num(v)}" for name, _, v in terms)


def score_breakdown(
    result: Evaluation | Allocation, resident_id: str, *, ax: Axes | None = None
) -> Figure:
    """One resident's score, part by part: every indicator and priority rule, and the totals.

    One horizontal bar per part, top to bottom in the order of the score's terms: each
    indicator's points (weighted), then each scale's total (hatched, after its indicators and
    sub-scales), the priority rules' points and their total, a term's weighted value when its
    weight is not 1, and last the score (dark). Every bar is labelled with its points. The
    values are read from the evaluation, so they are exactly the ones the ranking used: with
    ``score: {method: sum}`` the term totals add up to the score, as the title spells out.

    Args:
        result: An evaluation, or an allocation (its evaluation is used).
        resident_id: The resident's id.
        ax: Axes to draw on; by default a new figure.

    Returns:
        The figure drawn on.

    Raises:
        KeyError: if no resident has that id.
        TypeError: if ``result`` is neither an evaluation nor an allocation.
        MissingDependency: if matplotlib is not installed.
    """
    ev = _evaluation_of(result)
    row = ev.index_of(resident_id)
    parts = _breakdown(ev, row)
    fig, ax = _canvas(ax, (7.0, 1.2 + 0.32 * len(parts)))
    colours = _colours()
    y = np.arange(len(parts))
    bars = ax.barh(y, [p.points for p in parts], height=0.7)
    for bar, part in zip(bars, parts, strict=True):
        colour = "0.2" if part.kind == "score" else colours[part.term % len(colours)]
        if part.kind in ("total", "term"):
            bar.set_facecolor("white")
            bar.set_edgecolor(colour)
            bar.set_hatch("///" if part.kind == "total" else "xxx")
        else:
            bar.set_color(colour)
    ax.bar_label(bars, labels=[_num(p.points) for p in parts], padding=3, fontsize="small")
    ax.set_yticks(y, labels=[p.label for p in parts])
    for tick, part in zip(ax.get_yticklabels(), parts, strict=True):
        if part.kind != "criterion":
            tick.set_fontweight("bold")
    ax.invert_yaxis()
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.margins(x=0.2)
    ax.set_xlabel("points")
    ax.set_ylabel("part of the score")
    rec = ev.record(row)
    status = ""
    if not rec["eligible"]:
        why = [f"fails `{r}`" for r in rec["failed_eligibility"]]
        why += [f"excluded by `{rec['exclusion']}`"] if rec["exclusion"] else []
        status = " (not eligible: " + ", ".join(why) + ")"
    ax.set_title(
        f"{plot_text(rec['id'])}: score {_num(rec['score'])}{status}\n"
        f"= {_score_formula(ev, row)}",
        loc="left",
        fontsize="medium",
    )
    return fig


# -- the distribution of scores ------------------------------------------------------------------


def score_distribution(
    result: Evaluation | Allocation,
    *,
    ax: Axes | None = None,
    bins: int | str | Sequence[float] = "auto",
) -> Figure:
    """A histogram of the eligible residents' scores, with the allocation's cut-offs.

    For an allocation, the bars are split into residents served (solid) and not served
    (hatched), and each category's cut-off score (:meth:`~fairalloc.Allocation.cutoffs`: the
    score of its last resident served) is a vertical line, each in its own line style, labelled
    with the category, the score and the resident. A lottery's draw does not follow the score,
    so a lottery allocation has no cut-off lines. For an evaluation, the histogram alone.

    Args:
        result: An evaluation, or an allocation.
        ax: Axes to draw on; by default a new figure.
        bins: As for :func:`numpy.histogram_bin_edges`: a number of bins, a rule such as
            ``"auto"``, or the bin edges.

    Returns:
        The figure drawn on.

    Raises:
        TypeError: if ``result`` is neither an evaluation nor an allocation.
        MissingDependency: if matplotlib is not installed.
    """
    ev = _evaluation_of(result)
    own = ax is None
    fig, ax = _canvas(ax, (7.0, 4.5))
    eligible = np.asarray(ev.eligible, dtype=bool)
    scores = ev.score[eligible]
    what = "score (first tier)" if ev.policy.policy.score.method == "tiers" else "score"
    ax.set_xlabel(what)
    ax.set_ylabel("residents")
    meta = ev.policy.policy.policy
    ax.set_title(
        f"Scores of the eligible residents: {meta.id} v{plot_text(meta.version)}", loc="left"
    )
    if len(scores) == 0:
        ax.text(0.5, 0.5, "nobody is eligible", transform=ax.transAxes, ha="center")
        return fig
    edges = np.histogram_bin_edges(scores, bins=bins).tolist()
    colour = _colours()[0]
    if isinstance(result, Allocation):
        served = np.asarray(result.served, dtype=bool)[eligible]
        _, _, patches = ax.hist(
            [scores[served], scores[~served]],
            bins=edges,
            stacked=True,
            color=[colour, "white"],
            edgecolor=colour,
            label=[f"served ({int(served.sum())})", f"not served ({int((~served).sum())})"],
        )
        waiting: Any = patches[1]  # type: ignore[index]
        for patch in waiting:
            patch.set_hatch("///")
        if result.mechanism != "lottery":
            _cutoff_lines(ax, result)
    else:
        ax.hist(scores, bins=edges, color=colour, label=f"eligible ({len(scores)})")
    _legend(fig, ax, own=own)
    return fig


def _cutoff_lines(ax: Axes, allocation: Allocation) -> None:
    cutoffs = [c for c in allocation.cutoffs() if c.score is not None]
    for i, c in enumerate(cutoffs):
        assert c.score is not None
        style = _LINE_STYLES[i % len(_LINE_STYLES)]
        ax.axvline(
            c.score,
            color="0.1",
            linestyle=style,
            linewidth=1.5,
            label=f"cut-off {c.category}: {_num(c.score)} ({plot_text(c.last_id)})",
        )
        ax.annotate(
            c.category,
            xy=(c.score, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-3, -4),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="top",
            fontsize="small",
        )


# -- selection rates by group --------------------------------------------------------------------

#: How each group is marked: (label, marker), in the order of the legend.
_MARKS = {
    "reference": ("best-served group (reference)", "D"),
    "disparity": ("below four-fifths, interval excludes parity", "X"),
    "four_fifths": ("below four-fifths, compatible with parity", "v"),
    "plain": ("other groups", "o"),
}


def _mark_of(row: dict[str, Any]) -> str:
    if row["reference"]:
        return "reference"
    if row["disparity"]:
        return "disparity"
    if row["four_fifths"]:
        return "four_fifths"
    return "plain"


def _rate_rows(
    stats: GroupStatistics, groupings: str | Sequence[str] | None, stratum: str | None
) -> list[dict[str, Any]]:
    strata = [o["stratum"] for o in stats.overall]
    if stratum not in strata:
        known = ", ".join(repr(s) for s in strata)
        raise ArgumentError(
            "FA605",
            f"no stratum {stratum!r} in these statistics; known: {known}",
            argument="stratum",
            value=stratum,
            valid=known,
        )
    present = list(dict.fromkeys(r["grouping"] for r in stats.rows))
    if groupings is None:
        wanted = [g for g in present if " × " not in g]
    else:
        wanted = [groupings] if isinstance(groupings, str) else list(groupings)
        unknown = [g for g in wanted if g not in present]
        if unknown:
            raise ArgumentError(
                "FA605",
                f"no grouping {unknown[0]!r}; known: {', '.join(present)}",
                argument="groupings",
                value=unknown[0],
                valid=", ".join(present),
            )
    rows = [r for g in wanted for r in stats.rows if r["grouping"] == g and r["stratum"] == stratum]
    if not rows:
        raise ArgumentError("FA618", "no groups to show")
    return rows


def _group_label(row: dict[str, Any], *, publication: bool) -> str:
    mark = "*" if row["suppressed"] and not publication else ""
    return f"{row['group']} (n={row['n']}){mark}"


def selection_rates(
    stats: GroupStatistics,
    *,
    ax: Axes | None = None,
    groupings: str | Sequence[str] | None = None,
    stratum: str | None = None,
    publication: bool = False,
) -> Figure:
    """Selection rates by group with their Wilson intervals, from the audit's group statistics.

    One row per group: the rate as a point and its Wilson interval as an error bar. The
    marker's shape says how the group compares with the best-served group of its grouping:
    a diamond for that group, a cross for a rate below four-fifths of it whose ratio interval
    excludes parity, a triangle for one below four-fifths but compatible with parity, a circle
    otherwise. A dashed line marks the overall rate and a dotted segment beside each grouping
    four-fifths of its best-served rate. Row labels give the group and its size.

    Args:
        stats: The result of :func:`fairalloc.audit.group_statistics`.
        ax: Axes to draw on; by default a new figure.
        groupings: The groupings to show, by name (``gender``, ``gender × ethnicity``); by
            default every single attribute.
        stratum: A grade of the statistics' strata, to show the rates within it; by default
            all residents compared.
        publication: Leave out the rates of cells suppressed for publication (§2.2.2),
            showing "suppressed" instead.

    Returns:
        The figure drawn on.

    Raises:
        ValueError: for an unknown grouping or stratum, or when there is no group to show.
        MissingDependency: if matplotlib is not installed.
    """
    rows = _rate_rows(stats, groupings, stratum)
    # Rows top to bottom, each grouping under a heading row of its own.
    ys: list[float] = []
    heads: list[tuple[float, str]] = []
    blocks: dict[str, list[float]] = {}
    y = 0.0
    for i, r in enumerate(rows):
        if i == 0 or r["grouping"] != rows[i - 1]["grouping"]:
            y += 0.4 if i else 0.0
            heads.append((y, r["grouping"]))
            y += 1.0
        ys.append(y)
        blocks.setdefault(r["grouping"], []).append(y)
        y += 1.0
    labels = [_group_label(r, publication=publication) for r in rows]
    width = 5.0 + 0.07 * max(len(t) for t in [*labels, *(h for _, h in heads)])
    own = ax is None
    fig, ax = _canvas(ax, (width, 2.4 + 0.28 * (len(rows) + len(heads))))
    from matplotlib.ticker import PercentFormatter

    colours = _colours()
    hidden = [publication and r["suppressed"] for r in rows]
    for m, (key, (label, marker)) in enumerate(_MARKS.items()):
        idx = [i for i, r in enumerate(rows) if not hidden[i] and _mark_of(r) == key]
        if not idx:
            continue
        rate = np.array([rows[i]["rate"] for i in idx], dtype=np.float64)
        low = np.array([rows[i]["rate_low"] for i in idx], dtype=np.float64)
        high = np.array([rows[i]["rate_high"] for i in idx], dtype=np.float64)
        ax.errorbar(
            rate,
            [ys[i] for i in idx],
            xerr=np.vstack([rate - low, high - rate]),
            fmt=marker,
            markersize=7,
            capsize=3,
            color=colours[m % len(colours)],
            label=label,
        )
    for i in range(len(rows)):
        if hidden[i]:
            ax.text(0.01, ys[i], "suppressed", va="center", fontsize="small", style="italic")
    overall = next(o for o in stats.overall if o["stratum"] == stratum)
    if overall["rate"] is not None and not (publication and overall["suppressed"]):
        ax.axvline(
            overall["rate"],
            color="0.3",
            linestyle="dashed",
            linewidth=1.0,
            label=f"overall rate {overall['rate'] * 100:.1f}%",
        )
    first = True
    for name, block in blocks.items():
        ref = next((r for r in rows if r["grouping"] == name and r["reference"]), None)
        if ref is None or (publication and ref["suppressed"]) or not ref["rate"]:
            continue
        ax.vlines(
            0.8 * ref["rate"],
            block[0] - 0.4,
            block[-1] + 0.4,
            colors="0.3",
            linestyles="dotted",
            label="four-fifths of the best-served rate" if first else "_nolegend_",
        )
        first = False
    ticks = sorted(
        [
            *((y, t, False) for y, t in zip(ys, labels, strict=True)),
            *((y, h, True) for y, h in heads),
        ]
    )
    ax.set_yticks([t[0] for t in ticks], labels=[t[1] for t in ticks])
    for tick, (_, _, heading) in zip(ax.get_yticklabels(), ticks, strict=True):
        if heading:
            tick.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    selected = "served among the eligible" if stats.outcome == "served" else "eligible"
    where = "all residents compared" if stratum is None else f"`{stats.strata}` grade {stratum}"
    pct = round(stats.confidence * 100)
    note = (
        "\n* suppressed in publication (§2.2.2)"
        if not publication and any(r["suppressed"] for r in rows)
        else ""
    )
    ax.set_xlabel(f"selection rate ({selected}),\n{pct}% Wilson interval{note}")
    ax.set_ylabel("group (residents compared)")
    ax.set_title(f"Selection rates by group: {where}", loc="left", fontsize="medium")
    _legend(fig, ax, own=own)
    return fig


# -- sweeps --------------------------------------------------------------------------------------

#: What :func:`sweep_curves` can draw above the selection rates, and the axis label of each.
SWEEP_METRICS = {
    "served": "residents served",
    "eligible": "residents eligible",
    "mean_score": "mean score of the eligible",
    "median_score": "median score of the eligible",
    "min_ratio": "lowest ratio to the best-served group",
    "cutoffs": "cut-off score",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
#: How far apart the groups' rates at one swept value are drawn, as a share of the x range.
DODGE = 0.012


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class _Curves:
    """The points of a sweep to draw, along one key, in lines along a second key if any."""

    key: str
    values: list[Any]
    positions: list[float]
    numeric: bool
    lines: list[tuple[str, list[SweepPoint | None]]]  # (label, one point per value)
    base: float | None
    fixed: dict[str, Any]  # keys held, at their values in the grid


def _same(a: Any, b: Any) -> bool:
    """Grid values are the same: numbers by value (60 is 60.0), anything else as shown."""
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return _shown(a) == _shown(b)


def _curves(sweep: Sweep, at: Mapping[str, Any] | None) -> _Curves:
    fixed = dict(at or {})
    for key, value in fixed.items():
        if key not in sweep.keys:
            raise ArgumentError(
                "FA607",
                f"`{key}` is not swept; swept: {', '.join(sweep.keys)}",
                argument="at",
                value=key,
                valid=", ".join(sweep.keys),
            )
        match = next((v for v in sweep.grid[key] if _same(v, value)), None)
        if match is None:
            raise ArgumentError(
                "FA607",
                f"{key}={_shown(value)} is not a value of the sweep",
                argument=f"at[{key}]",
                value=value,
            )
        fixed[key] = match
    free = [k for k in sweep.keys if k not in fixed]
    if not free:
        raise ArgumentError(
            "FA607", "`at` fixes every swept key: leave one to draw along", argument="at"
        )
    key, other = free[0], (free[1] if len(free) > 1 else None)
    values = list(sweep.grid[key])
    numeric = all(_is_number(v) for v in values)
    if numeric:  # a line drawn in grid order would double back on itself
        values.sort(key=float)
    positions = [float(v) for v in values] if numeric else [float(i) for i in range(len(values))]

    def point(where: dict[str, Any]) -> SweepPoint | None:
        want = {k: _shown(v) for k, v in where.items()}
        for p in sweep.points:
            if all(_shown(p.values[k]) == v for k, v in want.items()):
                return p
        return None

    seconds = [None] if other is None else list(sweep.grid[other])
    lines = []
    for second in seconds:
        extra = {} if other is None else {other: second}
        label = "" if other is None else f"{other}={_shown(second)}"
        lines.append((label, [point({**fixed, **extra, key: v}) for v in values]))
    base_value = sweep.base_values.get(key)
    base: float | None = None
    if numeric:
        if isinstance(base_value, int | float) and not isinstance(base_value, bool):
            base = float(base_value)
    else:
        shown = [_shown(v) for v in values]
        if _shown(base_value) in shown:
            base = float(shown.index(_shown(base_value)))
    return _Curves(key, values, positions, numeric, lines, base, fixed)


def _sweep_axes(ax: Axes | Sequence[Axes] | None, *, panels: int) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig, first = _canvas(None, (7.5, 3.4 * panels + 2.0))
        if panels == 1:
            return fig, [first]
        fig.delaxes(first)
        top, bottom = fig.subplots(2, 1, sharex=True)
        return fig, [top, bottom]
    given = [ax] if not isinstance(ax, Sequence) else list(ax)
    if len(given) != panels:
        raise ArgumentTypeError(
            "FA644",
            f"give {panels} axes ({'metric, rates' if panels == 2 else 'rates'}), not {len(given)}",
            argument="ax",
        )
    fig, _ = _canvas(given[0], (0.0, 0.0))
    return fig, given


def _x_axis(ax: Axes, curves: _Curves, *, label: bool) -> None:
    if not curves.numeric:
        ax.set_xticks(curves.positions, labels=[_shown(v) for v in curves.values])
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in curves.values):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # ages, counts: no 62.5
    if curves.base is not None:
        value = _num(curves.base) if curves.numeric else _shown(curves.values[int(curves.base)])
        ax.axvline(
            curves.base,
            color="0.8",
            linewidth=6.0,
            zorder=0,
            label=f"policy as it is: {curves.key}={value}",
        )
    if label:
        unit = " (units)" if curves.key in ("capacity", "allocation.capacity") else ""
        ax.set_xlabel(f"{curves.key}{unit}")


def _metric_panel(ax: Axes, curves: _Curves, metric: str) -> None:
    colours = _colours()
    series: list[tuple[str, list[float]]] = []
    for label, points in curves.lines:
        if metric == "cutoffs":
            categories = list(
                dict.fromkeys(c["category"] for p in points if p is not None for c in p.cutoffs)
            )
            for category in categories:
                ys = [
                    next(
                        (
                            float(c["score"])
                            for c in p.cutoffs
                            if c["category"] == category and c["score"] is not None
                        ),
                        np.nan,
                    )
                    if p is not None
                    else np.nan
                    for p in points
                ]
                name = f"cut-off {category}" + (f", {label}" if label else "")
                series.append((name, ys))
        else:
            ys = [
                np.nan if p is None or getattr(p, metric) is None else float(getattr(p, metric))
                for p in points
            ]
            series.append((label or SWEEP_METRICS[metric], ys))
    if metric == "served" and all(np.isnan(v) for _, ys in series for v in ys):
        raise ArgumentError(
            "FA618",
            "the sweep has no allocation: nobody is served; try metric='eligible'",
            argument="metric",
            value=metric,
        )
    for i, (name, ys) in enumerate(series):
        ax.plot(
            curves.positions,
            ys,
            marker=_MARKERS[i % len(_MARKERS)],
            linestyle=_LINE_STYLES[i % len(_LINE_STYLES)],
            color=colours[i % len(colours)],
            label=name,
        )
    if metric == "min_ratio":
        ax.axhline(0.8, color="0.3", linestyle="dashed", linewidth=1.0, label="four-fifths")
    ax.set_ylabel(SWEEP_METRICS[metric])


def _rates_panel(ax: Axes, curves: _Curves, grouping: str | None) -> str:
    if len(curves.lines) != 1:
        raise ArgumentError(
            "FA607",
            "the sweep varies two keys: fix one with at={...} to draw the selection rates",
            argument="at",
        )
    _, points = curves.lines[0]
    present = [p for p in points if p is not None]
    groupings = list(dict.fromkeys(r["grouping"] for p in present for r in p.group_rows()))
    if not groupings:
        raise ArgumentError("FA618", "the sweep compared no groups")
    name = grouping if grouping is not None else groupings[0]
    if name not in groupings:
        raise ArgumentError(
            "FA605",
            f"no grouping {name!r}; known: {', '.join(groupings)}",
            argument="grouping",
            value=name,
            valid=", ".join(groupings),
        )
    rows = [
        {r["group"]: r for r in p.group_rows() if r["grouping"] == name} if p else {}
        for p in points
    ]
    groups = list(dict.fromkeys(g for by_group in rows for g in by_group))
    colours = _colours()
    span = (max(curves.positions) - min(curves.positions)) or 1.0
    for i, group in enumerate(groups):
        # Each group a little to the side, so that intervals at one value do not hide each other.
        shift = (i - (len(groups) - 1) / 2) * DODGE * span
        got = [by_group.get(group) for by_group in rows]
        rate = np.array([np.nan if r is None else r["rate"] for r in got], dtype=np.float64)
        low = np.array([np.nan if r is None else r["rate_low"] for r in got], dtype=np.float64)
        high = np.array([np.nan if r is None else r["rate_high"] for r in got], dtype=np.float64)
        ax.errorbar(
            [x + shift for x in curves.positions],
            rate,
            yerr=np.vstack([rate - low, high - rate]),
            fmt=_MARKERS[i % len(_MARKERS)],
            linestyle=_LINE_STYLES[i % len(_LINE_STYLES)],
            color=colours[i % len(colours)],
            capsize=3,
            label=group,
        )
    fifths = [
        next((0.8 * r["rate"] for r in by_group.values() if r["reference"]), np.nan)
        for by_group in rows
    ]
    ax.plot(
        curves.positions,
        fifths,
        color="0.3",
        linestyle="dotted",
        label="four-fifths of the best-served rate",
    )
    flagged = [
        (x + (groups.index(g) - (len(groups) - 1) / 2) * DODGE * span, r["rate"])
        for x, by_group in zip(curves.positions, rows, strict=True)
        for g, r in by_group.items()
        if r["disparity"]
    ]
    if flagged:
        ax.plot(
            [x for x, _ in flagged],
            [y for _, y in flagged],
            linestyle="none",
            marker="s",
            markersize=13,
            markerfacecolor="none",
            markeredgecolor="black",
            label="below four-fifths, interval excludes parity",
        )
    from matplotlib.ticker import PercentFormatter

    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    outcome = present[0].groups.outcome if present else "served"
    what = "served among the eligible" if outcome == "served" else "eligible"
    pct = round(present[0].groups.confidence * 100) if present else 95
    ax.set_ylabel("selection rate")
    ax.set_title(
        f"Selection rates ({what}) by {name}, with {pct}% Wilson intervals",
        loc="left",
        fontsize="medium",
    )
    return name


def sweep_curves(
    sweep: Sweep,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    metric: str | None = "served",
    grouping: str | None = None,
    at: Mapping[str, Any] | None = None,
) -> Figure:
    """How a sweep's outcome moves with the swept value: a metric, and selection rates by group.

    Two panels over the swept values (the first swept key not fixed by ``at``): above, the
    ``metric``; below, the selection rate of each group of one grouping with its Wilson
    interval (the groups drawn slightly apart, by :data:`DODGE` of the x range, so that their
    intervals stay visible), a dotted line at four-fifths of the best-served group's rate, and
    an open square around each rate below four-fifths whose interval excludes parity. A wide
    grey line marks the policy's own value. Curves differ by marker and line style as well as
    colour.

    A sweep over two keys draws the metric alone, as one curve per value of the second key;
    fix one of the keys with ``at`` to draw the selection rates too.

    Args:
        sweep: The result of :func:`fairalloc.analysis.sweep`.
        ax: The axes to draw on, one per panel drawn (metric, then rates); by default a new
            figure.
        metric: One of ``served``, ``eligible``, ``mean_score``, ``median_score``,
            ``min_ratio`` (with a line at 0.8) or ``cutoffs`` (each category's cut-off score);
            None for the selection rates alone.
        grouping: The grouping whose rates are drawn (``gender``; see
            :func:`fairalloc.audit.group_statistics`); by default the first.
        at: Values of swept keys to hold fixed, e.g. ``{"capacity": 40}``.

    Returns:
        The figure drawn on.

    Raises:
        ValueError: for an unknown metric, grouping or key, a value the sweep does not have,
            ``served`` without an allocation, or rates of a two-key sweep without ``at``.
        TypeError: if the number of axes given does not match the panels.
        MissingDependency: if matplotlib is not installed.
    """
    if metric is not None and metric not in SWEEP_METRICS:
        raise ArgumentError(
            "FA606",
            f"unknown metric {metric!r}; one of: {', '.join(SWEEP_METRICS)}",
            argument="metric",
            value=metric,
            valid=", ".join(SWEEP_METRICS),
        )
    curves = _curves(sweep, at)
    rates = metric is None or len(curves.lines) == 1
    own = ax is None
    fig, axes = _sweep_axes(ax, panels=2 if metric is not None and rates else 1)
    if metric is not None:
        _metric_panel(axes[0], curves, metric)
        _x_axis(axes[0], curves, label=not rates)
        held = ", ".join(f"{k}={_shown(v)}" for k, v in curves.fixed.items())
        axes[0].set_title(
            f"{sweep.policy_id} v{plot_text(sweep.policy_version)}:"
            f" {SWEEP_METRICS[metric]} by {curves.key}"
            + (f" ({held})" if held else ""),
            loc="left",
            fontsize="medium",
        )
        if rates:
            axes[0].legend(loc="best", fontsize="small")
        else:
            _legend(fig, axes[0], own=own)
        axes[0].tick_params(axis="x", labelbottom=True)
    if rates:
        _rates_panel(axes[-1], curves, grouping)
        _x_axis(axes[-1], curves, label=True)
        _legend(fig, axes[-1], own=own)
    return fig


# -- comparisons ---------------------------------------------------------------------------------


def _comparison_groups(
    comparison: Comparison, attribute: str | None
) -> tuple[str, tuple[str, ...], npt.NDArray[np.intp]]:
    """The attribute grouped by, its groups' labels, and each compared resident's group."""
    from fairalloc.audit._groups import _code_attribute

    # The residents as the second policy read them, in the order of ``comparison.ids``.
    side = comparison._sides[1]
    rows = comparison._rows[1]
    population = side.evaluation.population
    if population is None:
        raise ArgumentError("FA610", "the comparison's evaluation does not hold its residents")
    if attribute is None:
        single = [r["grouping"] for r in comparison.group_rows() if " × " not in r["grouping"]]
        protected = [*single, *population.schema.protected_attributes]
        if not protected:
            raise ArgumentError(
                "FA618", "no protected attribute to group by: give attribute=", argument="attribute"
            )
        attribute = protected[0]
    if attribute not in population.columns:
        known = ", ".join(population.columns)
        raise ArgumentError(
            "FA602",
            f"no attribute `{attribute}` to group by; attributes: {known}",
            argument="attribute",
            value=attribute,
            valid=known,
        )
    coded = _code_attribute(population.take(rows), attribute, None)
    return attribute, coded.labels, coded.codes


def comparison_groups(
    comparison: Comparison, *, attribute: str | None = None, ax: Axes | None = None
) -> Figure:
    """Winners and losers of a policy change, by group: who is newly served, who loses a place.

    One row per group of ``attribute``: a solid bar to the right counts the residents of the
    group served under the second policy only, a hatched bar to the left those served under the
    first only, each labelled with its count; the row label gives the group and its size.
    Groups are the levels of a category, ordinal or true/false attribute, or the quartiles of a
    number or date among all the residents compared (binned as in
    :func:`fairalloc.audit.group_statistics`); the values are those the second policy read.

    Args:
        comparison: The result of :func:`fairalloc.analysis.compare`, with served status
            compared (both policies allocate, or a capacity was given).
        attribute: The attribute to group by; by default the first the comparison grouped by
            (its protected attributes), else the first protected attribute.
        ax: Axes to draw on; by default a new figure.

    Returns:
        The figure drawn on.

    Raises:
        ValueError: if served status was not compared, or for an unknown attribute.
        MissingDependency: if matplotlib is not installed.
    """
    before, after = comparison.served_before, comparison.served_after
    if before is None or after is None:
        raise ArgumentError(
            "FA618",
            "the comparison did not compare who is served: give both policies an allocation,"
            " or compare with capacity=",
        )
    name, labels, codes = _comparison_groups(comparison, attribute)
    k = len(labels)
    size = np.bincount(codes, minlength=k)
    gained = np.bincount(codes[~before & after], minlength=k)
    lost = np.bincount(codes[before & ~after], minlength=k)
    keep = np.flatnonzero(size > 0)
    own = ax is None
    fig, ax = _canvas(ax, (7.5, 2.2 + 0.35 * len(keep)))
    y = np.arange(len(keep))
    colour = _colours()[0]
    won = ax.barh(y, gained[keep], color=colour, label=f"newly served ({int(gained.sum())})")
    gone = ax.barh(
        y,
        -lost[keep],
        color="white",
        edgecolor=colour,
        hatch="///",
        label=f"losing their place ({int(lost.sum())})",
    )
    ax.bar_label(won, labels=[str(int(v)) if v else "" for v in gained[keep]], padding=3)
    ax.bar_label(gone, labels=[str(int(v)) if v else "" for v in lost[keep]], padding=3)
    ax.set_yticks(y, labels=[f"{labels[g]} (n={int(size[g])})" for g in keep])
    ax.invert_yaxis()
    ax.axvline(0.0, color="0.2", linewidth=0.8)
    reach = max(1, int(gained.max(initial=0)), int(lost.max(initial=0)))
    ax.set_xlim(-reach * 1.3, reach * 1.3)
    ax.xaxis.set_major_formatter(_unsigned_ticks())
    ax.set_xlabel("residents: losing their place ← | → newly served")
    ax.set_ylabel(f"{name} (residents compared)")
    ax.set_title(
        f"Who gains and who loses a place, by {name}\n{comparison.before} → {comparison.after}",
        loc="left",
        fontsize="medium",
    )
    _legend(fig, ax, own=own)
    return fig


def _unsigned_ticks() -> Any:
    """Tick labels without sign: counts run both ways from zero."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: f"{abs(x):g}")
