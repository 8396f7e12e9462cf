"""Group statistics and the scale audit: who is selected, and how items score, by group.

The regulation forbids discrimination by age, gender, occupation, economic status, physical
condition or cultural background (§2.1.1), asks for published statistics with small groups
suppressed (§2.2.2), and for an audit (§4). This module measures outcomes by group:

* :func:`group_statistics`: the selection rate of every group of every protected attribute (and
  of every pair of them), with a Wilson score interval, its ratio to the best-served group with a
  Katz interval, the four-fifths flag, whether the ratio is compatible with parity, all
  optionally within need strata, and suppression of small cells for publication.
* :func:`scale_audit`: the mean points of every indicator by group within need strata, to find
  items that score groups differently for the same assessed need.

Groups:
    Levels of a category or ordinal attribute; ``false`` and ``true`` of a bool; numbers and
    dates binned into the quartiles of the residents compared (the eligible, for an allocation),
    each bin labelled by the smallest and largest value in it (``60–67``, or
    ``1950-01-03 – 1969-12-30`` for dates). Bins are ``[min, q1)``, ``[q1, q2)``, ``[q2, q3)``
    and ``[q3, max]``; equal quartiles merge bins. Groups with nobody in them are left out.

Counting is one pass: every resident's groups (and stratum) are combined into one integer code,
counted with :func:`numpy.bincount`, and each attribute's and each pair's table is a sum over
the axes of that joint table, so the cost does not grow with the number of groups (a very large
joint table falls back to one :func:`numpy.bincount` per attribute and pair).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._escape import markdown_code, markdown_text
from fairalloc._evaluation import Evaluation
from fairalloc._numeric import MICRO
from fairalloc._optional import require
from fairalloc._text import fixed
from fairalloc.allocation._result import Allocation
from fairalloc.audit._disclosure import Protection, protect
from fairalloc.errors import ArgumentError, ArgumentTypeError

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._compiler import ScaleNode
    from fairalloc._population import Population

__all__ = [
    "GroupStatistics",
    "ScaleAudit",
    "group_bins",
    "group_statistics",
    "pooled_group_statistics",
    "rate_ratio_interval",
    "scale_audit",
    "wilson_interval",
]

#: A ratio of selection rates below this is flagged (the four-fifths rule).
FOUR_FIFTHS = 0.8
#: The joint table of every attribute and stratum is used up to this many cells.
_JOINT_LIMIT = 1 << 22
_EPOCH = dt.date(1970, 1, 1)
_SMALL, _EXP_SEL, _EXP_NOT, _COMPLEMENT = 1, 2, 4, 8

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


# -- intervals ----------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ArgumentError(
            "FA600",
            f"confidence must be between 0 and 1, got {confidence}",
            argument="confidence",
            value=confidence,
        )
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _wilson(k: FloatArray, n: FloatArray, z: float) -> tuple[FloatArray, FloatArray]:
    """Wilson score bounds (vectorized); ``n`` must be positive."""
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    lo = np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    hi = np.where(k >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return lo, hi


def wilson_interval(selected: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``selected / n``.

    With ``p = k/n`` and ``z`` the normal quantile of the confidence level, the bounds are
    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``. Unlike the normal
    approximation it stays inside [0, 1] and behaves for small ``n`` and for ``k`` at 0 or ``n``.

    Args:
        selected: Residents selected (``k``).
        n: Residents in the group (must be positive).
        confidence: Confidence level, e.g. 0.95.

    Returns:
        The lower and upper bound.

    Raises:
        ValueError: if ``n`` is not positive, ``selected`` is outside ``[0, n]`` or the
            confidence is outside (0, 1).

    Examples:
        >>> lo, hi = wilson_interval(1, 5)
        >>> round(lo, 4), round(hi, 4)
        (0.0362, 0.6245)
    """
    if n <= 0 or not 0 <= selected <= n:
        raise ArgumentError(
            "FA600", f"need 0 <= selected <= n and n > 0, got {selected} of {n}", value=selected
        )
    lo, hi = _wilson(np.array([float(selected)]), np.array([float(n)]), _z(confidence))
    return float(lo[0]), float(hi[0])


def _katz(
    k1: FloatArray, n1: FloatArray, k2: FloatArray, n2: FloatArray, z: float
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Katz log bounds of ``(k1/n1) / (k2/n2)`` (vectorized); ``k2`` must be positive.

    A 2×2 table with an empty cell (nobody, or everybody, selected in the group; everybody in
    the reference group) gets 0.5 added to every cell first (Haldane–Anscombe): without it the
    interval is undefined at 0% and collapses to one point at 100%.
    """
    corrected = (k1 <= 0) | (k1 >= n1) | (k2 >= n2)
    a = np.where(corrected, k1 + 0.5, k1)
    na = np.where(corrected, n1 + 1.0, n1)
    b = np.where(corrected, k2 + 0.5, k2)
    nb = np.where(corrected, n2 + 1.0, n2)
    log_rr = np.log(a / na) - np.log(b / nb)
    se = np.sqrt(np.maximum(1.0 / a - 1.0 / na + 1.0 / b - 1.0 / nb, 0.0))
    lo = np.where(k1 <= 0, 0.0, np.exp(log_rr - z * se))
    hi = np.exp(log_rr + z * se)
    return lo, hi, corrected


def rate_ratio_interval(
    selected: int, n: int, ref_selected: int, ref_n: int, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """The ratio of two selection rates with its Katz log interval.

    The ratio is ``RR = (k1/n1) / (k2/n2)``; its interval is
    ``exp(log RR ± z·sqrt(1/k1 - 1/n1 + 1/k2 - 1/n2))`` (Katz et al., 1978). When the group
    has nobody selected (``k1 = 0``) the log is undefined: the ratio reported is the observed 0,
    the lower bound is 0, and the upper bound comes from the same formula after adding 0.5 to
    each cell of the 2×2 table (Haldane–Anscombe: ``k + 0.5`` of ``n + 1`` in both groups).
    When everybody is selected in either group (a rate of 100%) the formula's standard error is
    0 and the interval would collapse to the ratio itself; the same correction applies, so the
    interval keeps its width. Away from 0% and 100% the bounds are scipy's
    ``relative_risk(...).confidence_interval()`` (the same Katz formula; a test checks it).

    Args:
        selected: Residents selected in the group (``k1``).
        n: Residents in the group (``n1``, positive).
        ref_selected: Residents selected in the reference group (``k2``, positive).
        ref_n: Residents in the reference group (``n2``).
        confidence: Confidence level, e.g. 0.95.

    Returns:
        The ratio, its lower bound and its upper bound.

    Raises:
        ValueError: if a count is out of range or nobody in the reference group is selected
            (the ratio is then undefined).

    Examples:
        >>> rr, lo, hi = rate_ratio_interval(20, 100, 40, 100)
        >>> round(rr, 2), round(lo, 3), round(hi, 3)
        (0.5, 0.316, 0.792)
        >>> rr, lo, hi = rate_ratio_interval(2, 2, 2, 2)  # everybody selected in both
        >>> rr, round(lo, 2), round(hi, 2)
        (1.0, 0.49, 2.05)
    """
    if n <= 0 or ref_n <= 0 or not 0 <= selected <= n or not 0 <= ref_selected <= ref_n:
        raise ArgumentError("FA600", "counts must satisfy 0 <= selected <= n with n > 0")
    if ref_selected == 0:
        raise ArgumentError(
            "FA621",
            "nobody in the reference group is selected: the ratio is undefined",
            argument="ref_selected",
            value=0,
        )
    lo, hi, _ = _katz(
        np.array([float(selected)]),
        np.array([float(n)]),
        np.array([float(ref_selected)]),
        np.array([float(ref_n)]),
        _z(confidence),
    )
    return (selected / n) / (ref_selected / ref_n), float(lo[0]), float(hi[0])


# -- groups -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Coded:
    """One attribute's group of every resident compared, with the groups' labels."""

    name: str
    codes: npt.NDArray[np.intp]
    labels: tuple[str, ...]


def _population_of(evaluation: Evaluation) -> Population:
    pop = evaluation.population
    if pop is None:
        raise ArgumentError(
            "FA610", "the evaluation does not hold its residents (population is None)"
        )
    return pop


def _attribute_names(population: Population, attributes: Sequence[str] | None) -> list[str]:
    schema = population.schema
    if attributes is None:
        return list(schema.protected_attributes)
    if isinstance(attributes, str):
        attributes = [attributes]
    names = list(dict.fromkeys(attributes))
    for name in names:
        if name not in population.columns:
            known = ", ".join(c for c in population.columns)
            raise ArgumentError(
                "FA602",
                f"no attribute `{name}` to group by; attributes: {known}",
                argument="attributes",
                value=name,
                valid=known,
            )
    return names


def group_bins(population: Population, attributes: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Fixed group boundaries for the numeric and date attributes among ``attributes``.

    The quartiles of the whole population, as whole numbers for ``int`` and ``date``
    attributes. Passed to :func:`group_statistics` as ``bins``, they keep the groups the same
    across several statistics of the same residents (a sweep's points), where the quartiles of
    each point's eligible residents would move.
    """
    bins: dict[str, tuple[float, ...]] = {}
    for name in attributes:
        attr = population.schema.attributes[name]
        if attr.type not in ("int", "float", "date"):
            continue
        values = population.columns[name].astype(np.float64)
        present = values[~np.isnan(values)]
        if present.size == 0:
            continue
        edges = np.quantile(present, [0.25, 0.5, 0.75])
        if attr.type != "float":
            edges = np.ceil(edges)
        bins[name] = tuple(float(e) for e in np.unique(edges))
    return bins


def _code_attribute(
    population: Population,
    name: str,
    rows: BoolArray | None,
    edges: Sequence[float] | None = None,
) -> _Coded:
    """Group codes of ``name`` for the residents at ``rows`` (all if None).

    Numbers and dates fall into quartile groups of the residents compared, or into the groups
    that ``edges`` bound (a value equal to an edge starts the next group).
    """
    attr = population.schema.attributes[name]
    col = population.columns[name]
    if rows is not None:
        col = col[rows]
    if attr.type in ("category", "ordinal"):
        return _Coded(name, col.astype(np.intp), tuple(attr.levels or ()))
    if attr.type == "bool":
        return _Coded(name, col.astype(np.intp), ("false", "true"))
    if attr.type not in ("int", "float", "date"):
        raise ArgumentError(
            "FA603",
            f"cannot group by `{name}`: a {attr.type} attribute has no groups",
            argument="attributes",
            value=name,
        )
    values = col.astype(np.float64)
    missing = np.isnan(values)
    present = values[~missing]
    labels: list[str] = []
    if edges is not None:
        fixed = np.asarray(edges, dtype=np.float64)
        codes = np.searchsorted(fixed, values, side="right").astype(np.intp)
        labels = _edge_labels(attr.type, fixed)
    elif present.size == 0:
        return _Coded(name, np.zeros(len(values), dtype=np.intp), ("missing",))
    else:
        quartiles = np.unique(np.quantile(present, [0.25, 0.5, 0.75]))
        codes = np.searchsorted(quartiles, values, side="right").astype(np.intp)
        present_codes = codes[~missing] if missing.any() else codes
        for b in range(len(quartiles) + 1):
            in_bin = present[present_codes == b]
            labels.append(_range_label(attr.type, in_bin) if in_bin.size else f"bin {b + 1}")
    if missing.any():
        codes[missing] = len(labels)
        labels.append("missing")
    return _Coded(name, codes, tuple(labels))


def _edge_labels(kind: str, edges: FloatArray) -> list[str]:
    """Labels of the groups that ``edges`` bound: below the first, between, from the last."""
    if kind == "float":
        shown = [f"{e:g}" for e in edges]
        inner = [f"{a} to under {b}" for a, b in itertools.pairwise(shown)]
        return [f"under {shown[0]}", *inner, f"{shown[-1]} and over"]

    def at(x: float) -> str:
        return (_EPOCH + dt.timedelta(days=int(x))).isoformat() if kind == "date" else str(int(x))

    inner = [at(a) if b - a == 1 else f"{at(a)}–{at(b - 1)}" for a, b in itertools.pairwise(edges)]
    return [f"up to {at(edges[0] - 1)}", *inner, f"{at(edges[-1])} and over"]


def _range_label(kind: str, values: FloatArray) -> str:
    lo, hi = float(values.min()), float(values.max())
    if kind == "date":
        a = (_EPOCH + dt.timedelta(days=int(lo))).isoformat()
        b = (_EPOCH + dt.timedelta(days=int(hi))).isoformat()
        return a if a == b else f"{a} – {b}"
    a, b = (str(int(lo)), str(int(hi))) if kind == "int" else (f"{lo:g}", f"{hi:g}")
    return a if a == b else f"{a}–{b}"


def _graded_scale(evaluation: Evaluation, path: str) -> ScaleNode:
    graded = evaluation.policy.graded_scales
    for s in graded:
        if s.path == path:
            return s
    names = ", ".join(s.path for s in graded) or "none"
    raise ArgumentError(
        "FA608",
        f"`{path}` is not a graded scale; graded scales: {names}",
        argument="strata",
        value=path,
        valid=names,
    )


# -- counting -----------------------------------------------------------------------------------


def _tables(
    coded: list[_Coded],
    groupings: list[tuple[int, ...]],
    stratum: npt.NDArray[np.intp],
    n_strata: int,
    selected: BoolArray,
) -> dict[tuple[int, ...], tuple[IntArray, IntArray]]:
    """Residents and selected residents by stratum and group, for every grouping.

    Every resident's stratum and groups are combined into one mixed-radix code and counted
    once; each grouping's table is a sum of that joint table over the other attributes.
    """
    sizes = [len(c.labels) for c in coded]
    cells = n_strata * math.prod(sizes)
    out: dict[tuple[int, ...], tuple[IntArray, IntArray]] = {}
    if cells <= _JOINT_LIMIT:
        joint = stratum.astype(np.intp, copy=True)
        for c, size in zip(coded, sizes, strict=True):
            joint *= size
            joint += c.codes
        shape = (n_strata, *sizes)
        n_all = np.bincount(joint, minlength=cells).reshape(shape)
        k_all = np.bincount(joint[selected], minlength=cells).reshape(shape)
        for g in groupings:
            drop = tuple(1 + i for i in range(len(coded)) if i not in g)
            out[g] = (n_all.sum(axis=drop), k_all.sum(axis=drop))
        return out
    for g in groupings:
        code = stratum.astype(np.intp, copy=True)
        for i in g:
            code *= sizes[i]
            code += coded[i].codes
        shape = (n_strata, *(sizes[i] for i in g))
        m = math.prod(shape)
        out[g] = (
            np.bincount(code, minlength=m).reshape(shape),
            np.bincount(code[selected], minlength=m).reshape(shape),
        )
    return out


def _primary(
    n: IntArray, rate: FloatArray, min_group: int, min_expected: float
) -> npt.NDArray[np.int8]:
    """Reasons (bit flags) to suppress each cell; ``rate`` is its stratum's overall rate."""
    expected = n * rate
    reasons = np.zeros(n.shape, dtype=np.int8)
    reasons |= np.where(n < min_group, _SMALL, 0).astype(np.int8)
    reasons |= np.where(expected < min_expected, _EXP_SEL, 0).astype(np.int8)
    reasons |= np.where(n - expected < min_expected, _EXP_NOT, 0).astype(np.int8)
    return np.where(n > 0, reasons, 0).astype(np.int8)


def _complement(n: IntArray, suppressed: BoolArray, axis: int) -> BoolArray:
    """Cells to suppress so that no line along ``axis`` has exactly one suppressed cell.

    Index 0 along ``axis`` is the line's total; a line with one suppressed cell would reveal it
    by subtraction, so the smallest other cell (an inner one before the total) is suppressed too.
    """
    nm = np.moveaxis(n, axis, -1)
    sm = np.moveaxis(suppressed, axis, -1)
    nonzero = nm > 0
    need = (sm & nonzero).sum(axis=-1) == 1
    add = np.zeros(nm.shape, dtype=bool)
    if not need.any():
        return np.moveaxis(add, -1, axis)
    score = np.where(nonzero & ~sm, nm.astype(np.float64), np.inf)
    score[..., 0] += float(nm.max()) + 1.0
    pick = score.argmin(axis=-1)
    found = np.isfinite(np.take_along_axis(score, pick[..., None], axis=-1)[..., 0])
    np.put_along_axis(add, pick[..., None], (need & found)[..., None], axis=-1)
    return np.moveaxis(add, -1, axis)


class _Cells:
    """Counts and suppression of every published cell, with the totals they add up to.

    Strata are indexed with 0 for all residents, then one per stratum (only 0 without strata).
    """

    def __init__(
        self,
        tables: dict[tuple[int, ...], tuple[IntArray, IntArray]],
        *,
        stratified: bool,
        min_group: int,
        min_expected: float,
    ) -> None:
        self.n: dict[tuple[int, ...], IntArray] = {}
        self.k: dict[tuple[int, ...], IntArray] = {}
        for g, (n, k) in tables.items():
            if stratified:
                n = np.concatenate([n.sum(axis=0, keepdims=True), n])
                k = np.concatenate([k.sum(axis=0, keepdims=True), k])
            else:
                n, k = n.sum(axis=0, keepdims=True), k.sum(axis=0, keepdims=True)
            self.n[g], self.k[g] = n, k
        first = next(iter(self.n))
        self.total_n = self.n[first].reshape(len(self.n[first]), -1).sum(axis=1)
        self.total_k = self.k[first].reshape(len(self.k[first]), -1).sum(axis=1)
        self.overall_rate = np.divide(
            self.total_k,
            self.total_n,
            out=np.zeros(len(self.total_n)),
            where=self.total_n > 0,
        )
        self.stratified = stratified
        self.reasons: dict[tuple[int, ...], npt.NDArray[np.int8]] = {}
        for g, n in self.n.items():
            rate = self.overall_rate.reshape((-1,) + (1,) * (n.ndim - 1))
            self.reasons[g] = _primary(n, rate, min_group, min_expected)
        self.total_reasons = _primary(self.total_n, self.overall_rate, min_group, min_expected)

    def suppressed(self, g: tuple[int, ...]) -> BoolArray:
        return np.asarray(self.reasons[g] != 0, dtype=bool)

    def protect(self) -> None:
        """Secondary suppression until no suppressed cell can be found by subtraction.

        Each table is taken with its totals (the overall count of its stratum, the marginal
        counts of an intersection, the all-strata row), and every line of it along every axis
        must hold zero or at least two suppressed cells; shared totals carry the suppressions
        from one table to another, so the tables are swept until nothing changes.
        """
        changed = True
        while changed:
            changed = False
            for g in self.n:
                n_aug, s_aug = self._augmented(g)
                added = np.zeros(n_aug.shape, dtype=bool)
                axes = range(0 if self.stratified else 1, n_aug.ndim)
                grew = True
                while grew:
                    grew = False
                    for ax in axes:
                        more = _complement(n_aug, s_aug | added, ax)
                        if more.any():
                            added |= more
                            grew = True
                if added.any():
                    self._mark(g, added)
                    changed = True

    def _augmented(self, g: tuple[int, ...]) -> tuple[IntArray, BoolArray]:
        n = self.n[g]
        shape = (n.shape[0], *(s + 1 for s in n.shape[1:]))
        n_aug = np.zeros(shape, dtype=np.int64)
        s_aug = np.zeros(shape, dtype=bool)
        for sub, idx in self._parts(g):
            n_aug[idx] = self.n[sub] if sub else self.total_n
            s_aug[idx] = self.suppressed(sub) if sub else self.total_reasons != 0
        return n_aug, s_aug

    def _parts(self, g: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], tuple[Any, ...]]]:
        """Each sub-grouping of ``g`` (its totals) with its place in the augmented table."""
        if len(g) == 1:
            yield (), (slice(None), 0)
            yield g, (slice(None), slice(1, None))
            return
        a, b = g
        yield (), (slice(None), 0, 0)
        yield (a,), (slice(None), slice(1, None), 0)
        yield (b,), (slice(None), 0, slice(1, None))
        yield g, (slice(None), slice(1, None), slice(1, None))

    def _mark(self, g: tuple[int, ...], added: BoolArray) -> None:
        for sub, idx in self._parts(g):
            extra = added[idx]
            if not sub:
                self.total_reasons = np.where(
                    extra & (self.total_reasons == 0), _COMPLEMENT, self.total_reasons
                ).astype(np.int8)
            elif sub in self.reasons:
                r = self.reasons[sub]
                self.reasons[sub] = np.where(extra & (r == 0), _COMPLEMENT, r).astype(np.int8)


def _reason_texts(
    bits: int, n: int, expected: float, min_group: int, min_expected: float
) -> list[str]:
    out = []
    if bits & _SMALL:
        out.append(f"fewer than {min_group} residents")
    if bits & _EXP_SEL:
        out.append(f"expected selected {expected:.1f} < {min_expected:g}")
    if bits & _EXP_NOT:
        out.append(f"expected not selected {n - expected:.1f} < {min_expected:g}")
    if bits & _COMPLEMENT:
        out.append("complementary: protects another suppressed cell from subtraction")
    return out


# -- group statistics ---------------------------------------------------------------------------


_HIDDEN = (
    "n",
    "expected",
    "selected",
    "rate",
    "rate_low",
    "rate_high",
    "ratio",
    "ratio_low",
    "ratio_high",
    "four_fifths",
    "compatible_with_parity",
    "disparity",
    "continuity_corrected",
)


class GroupStatistics:
    """Selection rates by group, with intervals, ratios, flags and suppression.

    Build it with :func:`group_statistics`.

    Attributes:
        rows: One record (dict) per group, grouping and stratum with keys ``grouping``
            (``gender`` or ``gender × ethnicity``), ``attributes``, ``group`` (``female`` or
            ``female × han``), ``levels``, ``stratum`` (None for all residents compared),
            ``n``, ``selected``, ``rate``, ``rate_low``, ``rate_high`` (Wilson interval),
            ``expected`` (``n`` times the stratum's overall rate), ``reference`` (whether this
            is the best-served group), ``reference_group``, ``ratio``, ``ratio_low``,
            ``ratio_high`` (Katz interval; None for the reference group or when nobody in it is
            selected), ``continuity_corrected``, ``four_fifths`` (ratio below 0.8),
            ``compatible_with_parity`` (the ratio's interval includes 1), ``disparity``
            (below four-fifths and not compatible with parity), ``suppressed`` and
            ``suppression`` (the reasons, for publication).
        overall: One record per stratum (the first for all residents compared): ``n``,
            ``selected``, ``rate`` and its interval, and whether it is suppressed.
        outcome: What counts as selected: ``served`` (an allocation) or ``eligible``.
        base: Who is compared: ``eligible`` residents (an allocation) or ``all`` residents.
        strata: The graded scale whose grades are the strata, or None.
        confidence: The confidence level of the intervals.
        min_group: The smallest group published.
        min_expected: The smallest expected count of selected and of not selected published.
        four_fifths: The ratio below which a group's rate is flagged (0.8, the four-fifths rule).
    """

    def __init__(
        self,
        rows: list[dict[str, Any]],
        overall: list[dict[str, Any]],
        *,
        outcome: str,
        base: str,
        strata: str | None,
        confidence: float,
        min_group: int,
        min_expected: float,
        four_fifths: float = 0.8,
    ) -> None:
        self.four_fifths = four_fifths
        self.rows = rows
        self.overall = overall
        self.outcome = outcome
        self.base = base
        self.strata = strata
        self.confidence = confidence
        self.min_group = min_group
        self.min_expected = min_expected
        self._source: _Source | None = None
        self._publication: dict[str, Any] | None = None

    @property
    def disparities(self) -> list[dict[str, Any]]:
        """Rows below four-fifths whose interval excludes parity (within strata, if any)."""
        return [
            r
            for r in self.rows
            if r["disparity"] and (self.strata is None or r["stratum"] is not None)
        ]

    @property
    def ok(self) -> bool:
        """Whether no group is below four-fifths with an interval that excludes parity.

        With strata, only the comparisons within strata count: differences across need grades
        are what a needs-based policy is for.
        """
        return not self.disparities

    def headline(self, *, publication: bool = False) -> list[str]:
        """The summary sentences, counting exactly the rows the tables mark.

        Args:
            publication: Count only the published cells.

        Returns:
            One or two sentences.
        """
        if publication:
            pub = self.publication()
            flagged, near = pub["disparities"], pub["near"]
        else:
            flagged = self.disparities
            near = [
                r
                for r in self.rows
                if r["four_fifths"]
                and not r["disparity"]
                and (self.strata is None or r["stratum"] is not None)
            ]
        where = " within a grade" if self.strata else ""
        out = []
        if flagged:
            out.append(
                f"**{len(flagged)} group(s){where} below four-fifths with an interval that"
                " excludes parity.**"
            )
        else:
            out.append(
                f"No group{where} is below four-fifths with an interval that excludes parity."
            )
        if near:
            out.append(
                f"{len(near)} group(s){where} are below four-fifths but compatible with parity:"
                " the data cannot tell their rate from the best-served group's."
            )
        if self.strata:
            out.append(
                "Rows for all grades together compare residents of different need, which a"
                " needs-based policy serves differently by design; they are shown, not counted."
            )
        return out

    def publication(self) -> dict[str, Any]:
        """What is published (§2.2.2): cells suppressed so that none can be recovered.

        Primary cells (fewer than ``min_group`` residents, or fewer than ``min_expected``
        expected selected or not selected) and the secondary cells that protect them are
        suppressed: their size, selected count, rate, ratio, flags and reference are all left
        out, and the reason carries no value. Secondary suppression is audited against the
        linear program of every published number (see :mod:`fairalloc.audit._disclosure`),
        so it holds across all the tables together, totals and group sizes included. Flags and
        counts are those of the published cells only. Needs scipy (the ``publication`` extra).

        Returns:
            ``overall``, ``rows`` (as in :attr:`rows`, with hidden values None), ``disparities``
            and ``near`` (published rows below four-fifths, with and without an interval that
            excludes parity), and ``disclosure`` (method and counts of cells published,
            suppressed and pinned).
        """
        if self._publication is None:
            if self._source is None:
                rows, overall = list(self.rows), list(self.overall)
                counts = {"published": len(rows), "primary": 0, "secondary": 0, "pinned": 0}
            else:
                rows, overall, prot = self._source.publication(self)
                counts = {
                    "published": prot.published,
                    "primary": prot.primary,
                    "secondary": prot.secondary,
                    "pinned": prot.pinned,
                }
            hidden_refs = {
                (r["grouping"], r["stratum"]) for r in rows if r["reference"] and r["suppressed"]
            }
            out_rows = [_hide(r, (r["grouping"], r["stratum"]) in hidden_refs) for r in rows]
            counted = [
                r
                for r in out_rows
                if not r["suppressed"] and (self.strata is None or r["stratum"] is not None)
            ]
            self._publication = {
                "overall": [_hide(o, hide_reference=False) for o in overall],
                "rows": out_rows,
                "disparities": [r for r in counted if r["disparity"]],
                "near": [r for r in counted if r["four_fifths"] and not r["disparity"]],
                "disclosure": {
                    "method": "threshold rule with secondary cell suppression, audited by linear"
                    " programming over all published tables",
                    "cells_published": counts["published"],
                    "cells_suppressed": counts["primary"] + counts["secondary"],
                    "primary": counts["primary"],
                    "secondary": counts["secondary"],
                    "pinned": counts["pinned"],
                },
            }
        return self._publication

    def to_dict(self, *, publication: bool = False) -> dict[str, Any]:
        """The statistics as plain values.

        Args:
            publication: Only what :meth:`publication` publishes: suppressed cells hide their
                size, selected count, rate, ratio and flags (§2.2.2).
        """
        base = {
            "outcome": self.outcome,
            "base": self.base,
            "strata": self.strata,
            "confidence": self.confidence,
            "min_group": self.min_group,
            "min_expected": self.min_expected,
            "publication": publication,
        }
        if publication:
            pub = self.publication()
            return {
                **base,
                "ok": not pub["disparities"],
                "disclosure": pub["disclosure"],
                "overall": pub["overall"],
                "rows": pub["rows"],
            }
        return {**base, "ok": self.ok, "overall": list(self.overall), "rows": list(self.rows)}

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame (requires pandas)."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        return pd.DataFrame.from_records(self.rows)

    def to_markdown(self, *, publication: bool = False) -> str:
        """The statistics as Markdown: a summary, then one table per attribute and pair.

        Args:
            publication: Show ``suppressed`` and the reason instead of the selected count, rate
                and ratio of suppressed cells.
        """
        pct = round(self.confidence * 100)
        what = (
            "served among the eligible residents"
            if self.outcome == "served"
            else "eligible among all residents"
        )
        lines = ["## Group statistics", ""]
        lines.append(
            f"Selection rate: residents {what}, by group of each protected attribute"
            + (f", within the grades of `{self.strata}`" if self.strata else "")
            + f". Rates have {pct}% Wilson intervals; each group's rate is compared with the"
            f" best-served group's (ratio with a {pct}% Katz interval). A ratio below"
            f" {self.four_fifths:g} fails"
            " the four-fifths rule; when its interval includes 1 the difference is compatible"
            " with parity (chance alone could explain it)."
        )
        lines.append("")
        if publication:
            pub = self.publication()
            overall, all_rows = pub["overall"], pub["rows"]
        else:
            overall, all_rows = self.overall, self.rows
        for o in overall:
            where = (
                "All residents compared" if o["stratum"] is None else markdown_code(o["stratum"])
            )
            if o["suppressed"] and publication:
                lines.append(f"- {where}: suppressed.")
            else:
                lines.append(
                    f"- {where}: {o['selected']} of {o['n']} selected ({_pct(o['rate'])})."
                )
        lines.append("")
        lines += self.headline(publication=publication)
        if publication:
            d = self.publication()["disclosure"]
            lines.append(
                f"Cells with fewer than {self.min_group} residents, or fewer than"
                f" {self.min_expected:g} expected selected or not selected, are suppressed, with"
                " the cells needed so that no suppressed number can be worked out from all the"
                f" published tables together: {d['cells_published']} cells published,"
                f" {d['cells_suppressed']} suppressed. Suppressed cells are not assessed."
            )
        lines.append("")
        by_grouping: dict[str, list[dict[str, Any]]] = {}
        for r in all_rows:
            by_grouping.setdefault(r["grouping"], []).append(r)
        for name, rows in by_grouping.items():
            lines += [f"### {name}", ""]
            heads = ["group", "n", "selected", f"rate ({pct}% CI)", f"ratio ({pct}% CI)", "note"]
            if self.strata:
                heads.insert(0, self.strata)
            lines.append("| " + " | ".join(heads) + " |")
            lines.append("|" + "---|" * len(heads))
            for r in rows:
                cells = _markdown_cells(r, publication=publication)
                if self.strata:
                    cells.insert(
                        0, "all grades" if r["stratum"] is None else markdown_text(r["stratum"])
                    )
                    shown = not (publication and r["suppressed"])
                    if r["stratum"] is None and r["disparity"] and shown:
                        cells[-1] += " (across grades: for review, not counted)"
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def __repr__(self) -> str:
        groupings = len({r["grouping"] for r in self.rows})
        suppressed = sum(r["suppressed"] for r in self.rows)
        return (
            f"<GroupStatistics ({self.outcome} among {self.base}): {groupings} groupings,"
            f" {len(self.rows)} cells; disparities: {len(self.disparities)};"
            f" suppressed for publication: {suppressed}>"
        )


#: The one reason a published suppressed cell gives: it carries no value.
PUBLISHED_REASON = "suppressed to protect residents (§2.2.2)"


def _hide(row: dict[str, Any], hide_reference: bool) -> dict[str, Any]:  # noqa: FBT001
    out = dict(row)
    if row["suppressed"]:
        for key in _HIDDEN:
            if key in out:
                out[key] = None
        out["suppression"] = [PUBLISHED_REASON]
    else:
        out["suppression"] = []
    if hide_reference and "reference_group" in out:
        out["reference_group"] = None
    return out


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _cell(text: str) -> str:
    # Pipes not escaped yet (texts from the data are escaped whole by markdown_text).
    return re.sub(r"(?<!\\)\|", r"\\|", text)


def _markdown_cells(r: dict[str, Any], *, publication: bool) -> list[str]:
    hide = publication and r["suppressed"]
    if hide:
        return [markdown_text(r["group"]), "—", "—", "—", "—", PUBLISHED_REASON]
    rate = f"{_pct(r['rate'])} ({_pct(r['rate_low'])}–{_pct(r['rate_high'])})"
    if r["reference"]:
        ratio = "1" if r["ratio"] is not None else "—"
        note = "reference (best served)" + ("" if r["ratio"] is not None else "; no one selected")
    elif r["ratio"] is None and r["reference_group"] is None:
        ratio, note = "—", "reference group suppressed"
    elif r["ratio"] is None:
        ratio, note = "—", "no one selected in the reference group"
    else:
        ratio = f"{r['ratio']:.2f} ({r['ratio_low']:.2f}–{r['ratio_high']:.2f})"
        if r["disparity"]:
            note = "below four-fifths; interval excludes parity"
        elif r["four_fifths"]:
            note = "below four-fifths, but compatible with parity"
        else:
            note = ""
    if r["suppressed"] and not publication:
        note = "; ".join(
            x for x in (note, "suppressed in publication: " + "; ".join(r["suppression"])) if x
        )
    return [markdown_text(r["group"]), str(r["n"]), str(r["selected"]), rate, ratio, note]


def _outcome_of(result: Allocation | Evaluation) -> tuple[Evaluation, BoolArray, BoolArray, str]:
    if isinstance(result, Allocation):
        ev = result.evaluation
        return ev, np.asarray(ev.eligible, dtype=bool), np.asarray(result.served), "served"
    if isinstance(result, Evaluation):
        return result, np.ones(result.n, dtype=bool), np.asarray(result.eligible), "eligible"
    raise ArgumentTypeError(
        "FA640",
        f"give an Allocation or an Evaluation, not {type(result).__name__}",
        argument="result",
    )


def group_statistics(
    result: Allocation | Evaluation,
    *,
    attributes: Sequence[str] | None = None,
    strata: str | None = None,
    intersections: bool = True,
    confidence: float = 0.95,
    min_group: int = 10,
    min_expected: float = 5.0,
    bins: Mapping[str, Sequence[float]] | None = None,
    four_fifths: float = FOUR_FIFTHS,
) -> GroupStatistics:
    """Selection rates by group of the protected attributes, for the audit and for publication.

    For an :class:`~fairalloc.Allocation` the rate is served / eligible within each group (only
    the eligible are compared: eligibility is audited by passing the evaluation); for an
    :class:`~fairalloc.Evaluation` it is eligible / all residents.

    For every group: its size ``n``, the number selected ``k``, the rate with a Wilson score
    interval (see :func:`wilson_interval`), and the ratio of its rate to the best-served group's
    with a Katz log interval (see :func:`rate_ratio_interval`; a group with nobody selected
    gets a 0.5 continuity correction). The best-served group is the one with the highest rate
    among the groups published (not suppressed), so that a tiny group with a rate of 1 does not
    become everyone's yardstick; failing that, among the groups of at least ``min_group``.
    Being the largest of several rates, its rate is somewhat optimistic, so ratios lean low:
    read the interval. ``four_fifths`` flags a ratio below 0.8; ``compatible_with_parity`` says
    whether the ratio's interval includes 1, so a flag never comes without saying whether
    chance alone could explain it.

    Suppression (§2.2.2): a cell is suppressed when ``n < min_group``, when its expected number
    selected (``n`` times the overall rate of its stratum) is below ``min_expected``, or when its
    expected number not selected is. Cells that would reveal a suppressed cell by subtraction
    from a published total (the stratum's total, an attribute's count in an intersection table,
    the all-strata row) are suppressed as well ("complementary"), table by table until none
    would; this does not protect against every combination of several tables. Suppressed cells
    keep their numbers here; ``to_dict(publication=True)`` and ``to_markdown(publication=True)``
    hide them.

    Args:
        result: An allocation (outcome: served) or an evaluation (outcome: eligible).
        attributes: The attributes to group by; by default every protected attribute.
        strata: The path of a graded scale (e.g. ``need``): the same statistics are given
            within each of its grades, as well as for everyone compared.
        intersections: Also group by every pair of the attributes.
        confidence: Confidence level of the intervals.
        min_group: Cells with fewer residents are suppressed for publication.
        min_expected: Cells expecting fewer selected (or not selected) are suppressed.
        four_fifths: The ratio to the best-served group's rate below which a group is flagged
            (0.8, the four-fifths rule of adverse impact).
        bins: Fixed group boundaries of numeric and date attributes (see :func:`group_bins`);
            by default the quartiles of the residents compared.

    Returns:
        The :class:`GroupStatistics`.

    Raises:
        ValueError: for an unknown attribute or scale, a scale without grades, or an
            evaluation that does not hold its residents.
        TypeError: if ``result`` is neither an allocation nor an evaluation.
    """
    _z(confidence)  # a bad level fails before any counting
    ev, base, selected_all, outcome = _outcome_of(result)
    pop = _population_of(ev)
    names = _attribute_names(pop, attributes)
    rows_base: BoolArray | None = None if base.all() else base
    coded = [
        _code_attribute(pop, name, rows_base, None if bins is None else bins.get(name))
        for name in names
    ]
    selected = selected_all if rows_base is None else selected_all[rows_base]
    if strata is not None:
        scale = _graded_scale(ev, strata)
        grades = ev.grades[:, scale.grade_index]
        stratum = (grades if rows_base is None else grades[rows_base]).astype(np.intp)
        strata_labels: tuple[str, ...] = scale.grades
    else:
        stratum = np.zeros(len(selected), dtype=np.intp)
        strata_labels = ("all",)
    return _statistics(
        coded,
        stratum,
        strata_labels,
        selected,
        outcome=outcome,
        strata=strata,
        intersections=intersections,
        confidence=confidence,
        min_group=min_group,
        min_expected=min_expected,
        four_fifths=four_fifths,
    )


def pooled_group_statistics(
    allocations: Sequence[Allocation],
    *,
    strata: str | None = None,
    attributes: Sequence[str] | None = None,
    intersections: bool = False,
    confidence: float = 0.95,
    min_group: int = 10,
    min_expected: float = 5.0,
) -> GroupStatistics:
    """:func:`group_statistics` of the applications of several allocations together.

    Every eligible resident of every allocation is one application (a resident who applied in
    two rounds counts twice), served or not. Numbers and dates are grouped by the quartiles of
    all the applications (:func:`group_bins`), so the groups are the same in every round and
    their labels are bounds, not residents' values. The allocations must apply policies with
    the same attributes and, with ``strata``, the same graded scale.

    Args:
        allocations: The allocations (rounds) pooled.
        strata: A graded scale whose grades are the strata.
        attributes: The attributes to group by; by default every protected attribute.
        intersections: Also group by every pair of attributes.
        confidence: Confidence level of the intervals.
        min_group: Cells with fewer applications are suppressed for publication.
        min_expected: Cells expecting fewer selected (or not selected) are suppressed.

    Returns:
        The :class:`GroupStatistics` (outcome ``served``, base ``eligible``).
    """
    from fairalloc._population import Population

    if not allocations:
        raise ArgumentError("FA618", "no allocation to pool", argument="allocations")
    pops = []
    selected_parts = []
    grade_parts = []
    strata_labels: tuple[str, ...] = ("all",)
    for a in allocations:
        ev = a.evaluation
        pop = _population_of(ev)
        rows = np.asarray(ev.eligible, dtype=bool)
        pops.append((pop, rows))
        selected_parts.append(np.asarray(a.served, dtype=bool)[rows])
        if strata is not None:
            scale = _graded_scale(ev, strata)
            grade_parts.append(ev.grades[rows, scale.grade_index].astype(np.intp))
            strata_labels = scale.grades
    first = pops[0][0]
    names = _attribute_names(first, attributes)
    ids = np.concatenate(
        [
            np.array([f"{r}:{i}" for i in p.ids[rows]], dtype=object)
            for r, (p, rows) in enumerate(pops)
        ]
    )
    columns = {name: np.concatenate([p.columns[name][rows] for p, rows in pops]) for name in names}
    pooled = Population(ids, columns, first.schema)
    bins = group_bins(pooled, names)
    coded = [_code_attribute(pooled, name, None, bins.get(name)) for name in names]
    selected = np.concatenate(selected_parts)
    stratum = (
        np.concatenate(grade_parts) if strata is not None else np.zeros(len(ids), dtype=np.intp)
    )
    return _statistics(
        coded,
        stratum,
        strata_labels,
        selected,
        outcome="served",
        strata=strata,
        intersections=intersections,
        confidence=confidence,
        min_group=min_group,
        min_expected=min_expected,
    )


def _statistics(
    coded: list[_Coded],
    stratum: npt.NDArray[np.intp],
    strata_labels: tuple[str, ...],
    selected: BoolArray,
    *,
    outcome: str,
    strata: str | None,
    intersections: bool,
    confidence: float,
    min_group: int,
    min_expected: float,
    four_fifths: float = 0.8,
) -> GroupStatistics:
    groupings = groupings_of(len(coded), intersections=intersections)
    stat_kw = statistics_settings(
        outcome,
        strata=strata,
        confidence=confidence,
        min_group=min_group,
        min_expected=min_expected,
        four_fifths=four_fifths,
    )
    tables = _tables(coded, groupings, stratum, len(strata_labels), selected) if groupings else {}
    total = (len(selected), int(selected.sum()))
    return statistics_of_tables(coded, groupings, tables, strata_labels, stat_kw, total=total)


def statistics_settings(
    outcome: str,
    *,
    strata: str | None,
    confidence: float,
    min_group: int,
    min_expected: float,
    four_fifths: float,
) -> dict[str, Any]:
    """The settings a :class:`GroupStatistics` carries, for :func:`statistics_of_tables`."""
    return {
        "outcome": outcome,
        "base": "eligible" if outcome == "served" else "all",
        "strata": strata,
        "confidence": confidence,
        "min_group": min_group,
        "min_expected": min_expected,
        "four_fifths": four_fifths,
    }


def groupings_of(n_attributes: int, *, intersections: bool) -> list[tuple[int, ...]]:
    """Each attribute alone, then (with ``intersections``) every pair, as :func:`_tables` takes."""
    groupings: list[tuple[int, ...]] = [(i,) for i in range(n_attributes)]
    if intersections:
        groupings += [(i, j) for i in range(n_attributes) for j in range(i + 1, n_attributes)]
    return groupings


def statistics_of_tables(
    coded: list[_Coded],
    groupings: list[tuple[int, ...]],
    tables: dict[tuple[int, ...], tuple[IntArray, IntArray]],
    strata_labels: tuple[str, ...],
    stat_kw: dict[str, Any],
    *,
    total: tuple[int, int],
) -> GroupStatistics:
    """The statistics of count tables (residents and selected by stratum and group).

    Everything after counting reads only each attribute's name and group labels, so tables
    counted part by part and added up (a cluster's partitions) give the same statistics.
    ``total`` (residents compared, selected) is the whole when there is nothing to group by.
    """
    z = _z(stat_kw["confidence"])
    if not groupings:
        n_total, k_total = np.array([total[0]]), np.array([total[1]])
        overall = _overall(n_total, k_total, [None], np.zeros(1, dtype=np.int8), z, stat_kw)
        return GroupStatistics([], overall, **stat_kw)
    min_group, min_expected = stat_kw["min_group"], stat_kw["min_expected"]
    four_fifths = stat_kw["four_fifths"]
    stratified = stat_kw["strata"] is not None
    stratum_names: list[str | None] = [None, *strata_labels] if stratified else [None]
    cells = _Cells(tables, stratified=stratified, min_group=min_group, min_expected=min_expected)
    primary = (dict(cells.reasons), cells.total_reasons.copy())
    cells.protect()
    rows: list[dict[str, Any]] = []
    for g in groupings:
        rows += _grouping_rows(
            g, coded, cells, stratum_names, z, min_group, min_expected, four_fifths
        )
    overall = _overall(cells.total_n, cells.total_k, stratum_names, cells.total_reasons, z, stat_kw)
    stats = GroupStatistics(rows, overall, **stat_kw)
    stats._source = _Source(groupings, coded, cells, primary, stratum_names, z)
    return stats


@dataclass
class _Source:
    """What the publication view is rebuilt from, under audited disclosure control."""

    groupings: list[tuple[int, ...]]
    coded: list[_Coded]
    cells: _Cells
    primary: tuple[dict[tuple[int, ...], npt.NDArray[np.int8]], npt.NDArray[np.int8]]
    stratum_names: list[str | None]
    z: float

    def publication(
        self, stats: GroupStatistics
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Protection]:
        """Rows and overall records with the suppression :func:`protect` finds, and its counts."""
        c = self.cells
        reasons, total_reasons = self.primary
        protection = protect(
            c.n,
            c.k,
            c.total_n,
            c.total_k,
            {g: r != 0 for g, r in reasons.items()},
            total_reasons != 0,
            stratified=c.stratified,
        )
        pub = copy.copy(c)
        pub.reasons = {
            g: np.where(
                protection.suppressed[g], np.where(r != 0, r, _COMPLEMENT), 0
            ).astype(np.int8)
            for g, r in reasons.items()
        }
        pub.total_reasons = np.where(
            protection.total_suppressed,
            np.where(total_reasons != 0, total_reasons, _COMPLEMENT),
            0,
        ).astype(np.int8)
        rows: list[dict[str, Any]] = []
        for g in self.groupings:
            rows += _grouping_rows(
                g,
                self.coded,
                pub,
                self.stratum_names,
                self.z,
                stats.min_group,
                stats.min_expected,
                stats.four_fifths,
            )
        kw = {"min_group": stats.min_group, "min_expected": stats.min_expected}
        overall = _overall(c.total_n, c.total_k, self.stratum_names, pub.total_reasons, self.z, kw)
        return rows, overall, protection


def _overall(
    n: IntArray,
    k: IntArray,
    names: list[str | None],
    reasons: npt.NDArray[np.int8],
    z: float,
    kw: dict[str, Any],
) -> list[dict[str, Any]]:
    out = []
    nf = np.maximum(n.astype(np.float64), 1.0)
    lo, hi = _wilson(k.astype(np.float64), nf, z)
    for s, name in enumerate(names):
        ns, ks = int(n[s]), int(k[s])
        out.append(
            {
                "stratum": name,
                "n": ns,
                "selected": ks,
                "rate": ks / ns if ns else None,
                "rate_low": float(lo[s]) if ns else None,
                "rate_high": float(hi[s]) if ns else None,
                "suppressed": bool(reasons[s]),
                "suppression": _reason_texts(
                    int(reasons[s]), ns, float(ks), kw["min_group"], kw["min_expected"]
                ),
            }
        )
    return out


def _grouping_rows(
    g: tuple[int, ...],
    coded: list[_Coded],
    cells: _Cells,
    stratum_names: list[str | None],
    z: float,
    min_group: int,
    min_expected: float,
    four_fifths: float = FOUR_FIFTHS,
) -> list[dict[str, Any]]:
    """The records of one grouping: every stratum and every group with residents."""
    n3 = cells.n[g].reshape(len(stratum_names), -1)
    k3 = cells.k[g].reshape(len(stratum_names), -1)
    reasons = cells.reasons[g].reshape(len(stratum_names), -1)
    nf = n3.astype(np.float64)
    kf = k3.astype(np.float64)
    present = n3 > 0
    rate = np.divide(kf, nf, out=np.zeros_like(nf), where=present)
    rate_lo, rate_hi = _wilson(kf, np.maximum(nf, 1.0), z)
    # The reference: the best rate among published groups, else among groups of min_group.
    tier = np.where(reasons == 0, 2.0, np.where(n3 >= min_group, 1.0, 0.0))
    key = np.where(present, 2.0 * tier + rate, -np.inf)
    ref = key.argmax(axis=1)
    s_idx = np.arange(len(stratum_names))
    k_ref = kf[s_idx, ref][:, None]
    n_ref = np.maximum(nf[s_idx, ref][:, None], 1.0)
    ref_rate = rate[s_idx, ref][:, None]
    defined = (ref_rate > 0) & present
    ratio = np.divide(rate, ref_rate, out=np.full_like(rate, np.nan), where=defined)
    safe_k_ref = np.where(k_ref > 0, k_ref, 1.0)
    r_lo, r_hi, corrected = _katz(
        kf,
        np.maximum(nf, 1.0),
        np.broadcast_to(safe_k_ref, kf.shape),
        np.broadcast_to(n_ref, nf.shape),
        z,
    )
    expected = nf * cells.overall_rate[:, None]
    levels = [coded[i].labels for i in g]
    combos = [tuple(t) for t in np.ndindex(*(len(lv) for lv in levels))]
    grouping = " × ".join(coded[i].name for i in g)
    attrs = [coded[i].name for i in g]
    out = []
    for s, sname in enumerate(stratum_names):
        ref_label = " × ".join(levels[a][c] for a, c in enumerate(combos[int(ref[s])]))
        for j, combo in enumerate(combos):
            if not present[s, j]:
                continue
            labels = [levels[a][c] for a, c in enumerate(combo)]
            is_ref = j == int(ref[s])
            has_ratio = bool(defined[s, j]) and not is_ref
            rr = 1.0 if is_ref and defined[s, j] else (float(ratio[s, j]) if has_ratio else None)
            lo = float(r_lo[s, j]) if has_ratio else None
            hi = float(r_hi[s, j]) if has_ratio else None
            below = rr is not None and rr < four_fifths
            compatible = None if lo is None or hi is None else bool(lo <= 1.0 <= hi)
            bits = int(reasons[s, j])
            out.append(
                {
                    "grouping": grouping,
                    "attributes": list(attrs),
                    "group": " × ".join(labels),
                    "levels": labels,
                    "stratum": sname,
                    "n": int(n3[s, j]),
                    "selected": int(k3[s, j]),
                    "rate": float(rate[s, j]),
                    "rate_low": float(rate_lo[s, j]),
                    "rate_high": float(rate_hi[s, j]),
                    "expected": float(expected[s, j]),
                    "reference": is_ref,
                    "reference_group": ref_label,
                    "ratio": rr,
                    "ratio_low": lo,
                    "ratio_high": hi,
                    "continuity_corrected": bool(corrected[s, j]) and has_ratio,
                    "four_fifths": below,
                    "compatible_with_parity": compatible,
                    "disparity": below and compatible is False,
                    "suppressed": bits != 0,
                    "suppression": _reason_texts(
                        bits, int(n3[s, j]), float(expected[s, j]), min_group, min_expected
                    ),
                }
            )
    return out


# -- scale audit --------------------------------------------------------------------------------


class ScaleAudit:
    """Mean points of each indicator by group, within need strata; build with :func:`scale_audit`.

    Attributes:
        rows: One record per attribute, stratum, group and indicator: ``attribute``,
            ``stratum``, ``group``, ``indicator``, ``n``, ``mean`` (points), ``stratum_mean``,
            ``difference`` (group mean minus stratum mean), ``std`` (the indicator's standard
            deviation in the stratum), ``standardized`` (difference / std), ``z`` (the
            difference over its standard error), ``reads_attribute`` (the indicator reads the
            attribute itself, under a justified use) and ``flagged``.
        strata: The graded scale whose grades are the strata, or None (one stratum, ``all``).
        among: ``eligible`` or ``all`` residents.
        threshold: Flagged differences exceed this many standard deviations.
        min_group: Smaller groups are never flagged.
        confidence: Flagged differences are also beyond chance at this level.
    """

    def __init__(
        self,
        rows: list[dict[str, Any]],
        *,
        strata: str | None,
        among: str,
        threshold: float,
        min_group: int,
        confidence: float,
    ) -> None:
        self.rows = rows
        self.strata = strata
        self.among = among
        self.threshold = threshold
        self.min_group = min_group
        self.confidence = confidence

    @property
    def flags(self) -> list[str]:
        """One sentence per flagged difference."""
        return [_scale_message(r) for r in self.rows if r["flagged"]]

    @property
    def ok(self) -> bool:
        """Whether no indicator scores a group differently within a stratum."""
        return not any(r["flagged"] for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The audit as plain values."""
        return {
            "strata": self.strata,
            "among": self.among,
            "threshold": self.threshold,
            "min_group": self.min_group,
            "confidence": self.confidence,
            "ok": self.ok,
            "flags": self.flags,
            "rows": list(self.rows),
        }

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame (requires pandas)."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        return pd.DataFrame.from_records(self.rows)

    def to_markdown(self) -> str:
        """The audit as Markdown: the flags, then one table per attribute and stratum."""
        lines = ["## Scale audit", ""]
        within = f"within each grade of `{self.strata}`" if self.strata else "over all residents"
        lines.append(
            f"Mean points of each indicator by group, {within}, among {self.among} residents,"
            " with the difference from the stratum's mean. A difference is flagged when it"
            f" exceeds {self.threshold:g} standard deviations of the indicator in the stratum,"
            f" the group has at least {self.min_group} residents, and chance alone is unlikely"
            f" to explain it ({round(self.confidence * 100)}% level). Grades are coarse, so a"
            " flag may reflect a real difference in the kind of need; it calls for review."
        )
        lines.append("")
        flags = self.flags
        flagged = [r for r in self.rows if r["flagged"]]
        lines += (
            [f"- {_scale_message(r, markdown=True)}" for r in flagged]
            if flags
            else ["No indicator is flagged."]
        )
        lines.append("")
        indicators = list(dict.fromkeys(r["indicator"] for r in self.rows))
        tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in self.rows:
            tables.setdefault((r["attribute"], r["stratum"]), []).append(r)
        for (attr, stratum), rows in tables.items():
            title = (
                attr
                if self.strata is None
                else f"{attr}, `{self.strata}` {markdown_text(stratum)}"
            )
            lines += [f"### {title}", ""]
            lines.append("| group | n | " + " | ".join(f"`{i}`" for i in indicators) + " |")
            lines.append("|" + "---|" * (2 + len(indicators)))
            by_group: dict[str, dict[str, dict[str, Any]]] = {}
            for r in rows:
                by_group.setdefault(r["group"], {})[r["indicator"]] = r
            for group, recs in by_group.items():
                n = next(iter(recs.values()))["n"]
                vals = []
                for i in indicators:
                    rec = recs.get(i)
                    if rec is None:
                        vals.append("—")
                        continue
                    text = f"{fixed(rec['mean'])} ({fixed(rec['difference'], sign=True)})"
                    vals.append(f"**{text} flagged**" if rec["flagged"] else text)
                cells = [markdown_text(group), str(n), *vals]
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def __repr__(self) -> str:
        return (
            f"<ScaleAudit ({'by ' + self.strata if self.strata else 'unstratified'}):"
            f" {len(self.rows)} cells, {len(self.flags)} flagged>"
        )


def _scale_message(r: dict[str, Any], *, markdown: bool = False) -> str:
    stratum, group = r["stratum"], r["group"]
    if markdown:
        stratum_shown, group = markdown_code(stratum), markdown_text(group)
    else:
        stratum_shown = f"`{stratum}`"
    where = "Overall" if stratum == "all" else f"In grade {stratum_shown}"
    mean = "the mean" if r["stratum"] == "all" else "the grade's mean"
    more = "more" if r["difference"] > 0 else "fewer"
    return (
        f"{where}, indicator `{r['indicator']}` gives {r['attribute']} = {group}"
        f" {fixed(abs(r['difference']))} points {more} than {mean}"
        f" ({r['standardized']:+.2f} SD, n = {r['n']})"
    )


def scale_audit(
    evaluation: Evaluation | Allocation,
    *,
    strata: str | None = None,
    attributes: Sequence[str] | None = None,
    min_group: int = 10,
    threshold: float = 0.2,
    confidence: float = 0.95,
    among: str = "eligible",
) -> ScaleAudit:
    """Mean points of each indicator by group within need strata (differential item scoring).

    Residents with the same assessed need grade should get, on average, about the same points
    from each indicator whatever their gender or background; an item that gives one group more
    for the same grade may measure membership rather than need. For every indicator (criteria of
    kind ``indicator``), protected attribute, stratum and group: the group's mean points, the
    stratum's mean, their difference, and the difference in standard deviations of the
    indicator within the stratum.

    A difference is flagged when ``|difference| > threshold × std`` (0.2: Cohen's "small"
    effect), the group has at least ``min_group`` residents, and the difference exceeds
    ``z × std × sqrt(1/n_group - 1/n_stratum)`` (its standard error under no difference; the
    group is part of the stratum), so that small groups are not flagged on noise. An indicator
    that reads the attribute itself (a justified use, such as hardship points by hardship) scores
    its groups differently by design and is not flagged for it. Many cells
    are tested, so an occasional flag can still be chance; and a grade is a band of totals, so a
    flag may reflect a real difference in the kind of need (one group frailer, the other more
    isolated, for the same grade): flags call for review, not conclusions.

    Args:
        evaluation: The evaluation (or an allocation, whose evaluation is used).
        strata: The path of a graded scale; by default the first graded scale, if any (else one
            stratum, ``all``).
        attributes: The attributes to group by; by default every protected attribute.
        min_group: Groups smaller than this are never flagged.
        threshold: Flag differences above this many standard deviations.
        confidence: The level at which a flagged difference must be beyond chance.
        among: ``eligible`` (the residents the scale ranks) or ``all``.

    Returns:
        The :class:`ScaleAudit`.

    Raises:
        ValueError: for an unknown attribute, scale or ``among``.
    """
    ev = evaluation.evaluation if isinstance(evaluation, Allocation) else evaluation
    z = _z(confidence)
    if among not in ("eligible", "all"):
        raise ArgumentError(
            "FA606",
            f"among must be `eligible` or `all`, got {among!r}",
            argument="among",
            value=among,
            valid="eligible, all",
        )
    pop = _population_of(ev)
    names = _attribute_names(pop, attributes)
    rows_mask: BoolArray | None = (
        np.asarray(ev.eligible, dtype=bool) if among == "eligible" else None
    )
    if rows_mask is not None and rows_mask.all():
        rows_mask = None
    graded = ev.policy.graded_scales
    if strata is None and graded:
        strata = graded[0].path
    if strata is not None:
        scale = _graded_scale(ev, strata)
        col = ev.grades[:, scale.grade_index]
        stratum = (col if rows_mask is None else col[rows_mask]).astype(np.intp)
        labels: tuple[str, ...] = scale.grades
    else:
        stratum = np.zeros(ev.n if rows_mask is None else int(rows_mask.sum()), dtype=np.intp)
        labels = ("all",)
    ind = [j for j, c in enumerate(ev.policy.criteria) if c.kind == "indicator"]
    keys = [ev.policy.criteria[j].key for j in ind]
    audit_kw: dict[str, Any] = {
        "strata": strata,
        "among": among,
        "threshold": threshold,
        "min_group": min_group,
        "confidence": confidence,
    }
    if not ind or not names:
        return ScaleAudit([], **audit_kw)
    points = ev.points[:, ind] if rows_mask is None else ev.points[rows_mask][:, ind]
    values = points.astype(np.float64) / MICRO
    n_s = np.bincount(stratum, minlength=len(labels)).astype(np.float64)
    safe_ns = np.maximum(n_s, 1.0)
    s_mean = (
        np.stack(
            [
                np.bincount(stratum, weights=values[:, i], minlength=len(labels))
                for i in range(len(ind))
            ],
            axis=1,
        )
        / safe_ns[:, None]
    )
    centred = values - s_mean[stratum]
    s_std = np.sqrt(
        np.stack(
            [
                np.bincount(stratum, weights=centred[:, i] ** 2, minlength=len(labels))
                for i in range(len(ind))
            ],
            axis=1,
        )
        / safe_ns[:, None]
    )
    rows: list[dict[str, Any]] = []
    for name in names:
        c = _code_attribute(pop, name, rows_mask)
        size = len(c.labels)
        code = stratum * size + c.codes
        m = len(labels) * size
        n_g = np.bincount(code, minlength=m).reshape(len(labels), size).astype(np.float64)
        reads = [
            any(r.attribute == name for r in ev.policy.reads.get(f"indicator:{key}", ()))
            for key in keys
        ]
        for i, key in enumerate(keys):
            # Sums of centred values: the difference from the stratum's mean, without cancelling.
            d_sum = np.bincount(code, weights=centred[:, i], minlength=m).reshape(len(labels), size)
            for s, sname in enumerate(labels):
                for g, gname in enumerate(c.labels):
                    n = n_g[s, g]
                    if n == 0:
                        continue
                    diff = float(d_sum[s, g] / n)
                    sd = float(s_std[s, i])
                    se = sd * math.sqrt(max(1.0 / n - 1.0 / n_s[s], 0.0))
                    std_diff = diff / sd if sd > 0 else 0.0
                    zval = diff / se if se > 0 else 0.0
                    flagged = (
                        not reads[i]
                        and n >= min_group
                        and sd > 0
                        and abs(diff) > threshold * sd
                        and abs(zval) > z
                    )
                    rows.append(
                        {
                            "attribute": name,
                            "stratum": sname,
                            "group": gname,
                            "indicator": key,
                            "n": int(n),
                            "mean": float(s_mean[s, i]) + diff,
                            "stratum_mean": float(s_mean[s, i]),
                            "difference": diff,
                            "std": sd,
                            "standardized": std_diff,
                            "z": zval,
                            "reads_attribute": reads[i],
                            "flagged": bool(flagged),
                        }
                    )
    return ScaleAudit(rows, **audit_kw)
