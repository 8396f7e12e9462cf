"""Statistical disclosure control of published group statistics: cell suppression, audited.

The method is the one national statistics offices use for linked frequency tables (Hundepool et
al., *Statistical Disclosure Control*, Wiley 2012, ch. 4-5; the τ-ARGUS manual, "secondary cell
suppression" and "audit"): a **threshold rule** marks the primary cells (too few residents, or
too few expected selected or not selected), then **secondary suppression** adds cells until an
attacker who knows every published number, and that all tables add up, can no longer pin any
suppressed value. The check is exact for that attacker: the linear program of everything
published (each suppressed size and selected count a variable, bounded by 0 and the number of
residents compared, selected at most size, every table's lines summing to their published or
suppressed totals) is solved for the smallest and largest value of each suppressed size,
selected count and not-selected count (Fischetti & Salazar-González, *Models and algorithms for
optimizing cell suppression in tabular data with linear constraints*, JASA 95, 2000). A value
whose range is narrower than one resident is pinned, and the cheapest published neighbour of
that cell in one of its lines (the fewest residents) is suppressed as well, until none is.

The overall total of the residents compared and of those selected is never suppressed: the
report states both. Empty groups are not published and count as known zeros.

The linear programs are solved with HiGHS through :func:`scipy.optimize.linprog` (the
``publication`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fairalloc._optional import require

__all__ = ["Protection", "protect"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: A suppressed value whose feasible range is narrower than this is pinned (one resident).
_MIN_RANGE = 1.0 - 1e-6
_RANDOM_DIRECTIONS = 4
_HULL_DIRECTIONS = 3


@dataclass(frozen=True)
class Protection:
    """The outcome of disclosure control.

    Attributes:
        suppressed: The suppressed cells of each grouping (same keys and shapes as the input).
        total_suppressed: Suppressed stratum totals (index 0, all strata, never is).
        primary: Cells suppressed by the threshold rule.
        secondary: Cells suppressed so that no primary one can be recovered.
        published: Cells published (with residents in them).
        pinned: Suppressed values the attacker could still pin (0 unless the published totals
            alone decide them, e.g. when nobody or everybody was selected).
    """

    suppressed: dict[tuple[int, ...], BoolArray]
    total_suppressed: BoolArray
    primary: int
    secondary: int
    published: int
    pinned: int


class _Layout:
    """Every published cell as one flat index, and the lines they add up along."""

    def __init__(
        self,
        n: dict[tuple[int, ...], IntArray],
        total_n: IntArray,
        *,
        stratified: bool,
    ) -> None:
        n_strata = len(total_n)
        self.offsets: dict[tuple[int, ...], int] = {}
        pos = n_strata
        for g, arr in n.items():
            self.offsets[g] = pos
            pos += arr.size
        self.size = pos
        self.shapes = {g: arr.shape for g, arr in n.items()}
        lines: list[list[tuple[int, int]]] = []
        ids: dict[tuple[int, ...], npt.NDArray[np.int64]] = {
            g: self.offsets[g] + np.arange(arr.size).reshape(arr.shape) for g, arr in n.items()
        }
        totals = np.arange(n_strata)
        for g, arr_ids in ids.items():
            if len(g) == 1:
                for s in range(n_strata):
                    lines.append([(int(totals[s]), -1), *((int(i), 1) for i in arr_ids[s])])
            else:
                a, b = g
                dims: tuple[int, ...] = tuple(arr_ids.shape)
                for s in range(n_strata):
                    for ja in range(dims[1]):
                        members = [(int(i), 1) for i in arr_ids[s, ja, :]]
                        lines.append([(int(ids[(a,)][s, ja]), -1), *members])
                    for jb in range(dims[2]):
                        members = [(int(i), 1) for i in arr_ids[s, :, jb]]
                        lines.append([(int(ids[(b,)][s, jb]), -1), *members])
            if stratified:
                flat = arr_ids.reshape(n_strata, -1)
                for j in range(flat.shape[1]):
                    inner = ((int(flat[s, j]), 1) for s in range(1, n_strata))
                    lines.append([(int(flat[0, j]), -1), *inner])
        if stratified:
            lines.append([(0, -1), *((s, 1) for s in range(1, n_strata))])
        self.lines = lines
        self.member_of: list[list[int]] = [[] for _ in range(self.size)]
        for li, line in enumerate(lines):
            for i, _ in line:
                self.member_of[i].append(li)

    def flat(self, per_group: dict[tuple[int, ...], Any], totals: Any) -> npt.NDArray[Any]:
        parts = [np.asarray(totals).ravel()]
        parts += [np.asarray(per_group[g]).ravel() for g in self.offsets]
        return np.concatenate(parts)

    def unflat(
        self, flat: BoolArray, n_strata: int
    ) -> tuple[dict[tuple[int, ...], BoolArray], BoolArray]:
        out = {
            g: flat[off : off + int(np.prod(self.shapes[g]))].reshape(self.shapes[g])
            for g, off in self.offsets.items()
        }
        return out, flat[:n_strata]


def feasible_ranges(
    lines: list[list[tuple[int, int]]],
    n: IntArray,
    k: IntArray,
    hidden: BoolArray,
    *,
    only: npt.NDArray[np.intp] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The attacker's range of every hidden size, selected and not-selected count.

    Args:
        lines: Each line's cells with coefficients; every line sums to zero.
        n: True sizes of every cell (the published ones are what the attacker knows).
        k: True selected counts.
        hidden: Which cells are suppressed.
        only: Check only these hidden cells (indices into the flat cells); all by default.

    Returns:
        For every cell, the width (max - min) of the feasible range of its size, selected and
        not-selected counts, as an array of shape (cells, 3); and the known-true point's values.
        Published cells have width 0.
    """
    optimize = require("scipy.optimize", extra="publication", feature="disclosure control")
    from scipy import sparse

    var = np.full(len(n), -1, dtype=np.intp)
    hid = np.flatnonzero(hidden)
    var[hid] = np.arange(len(hid))
    m = len(hid)
    width = np.zeros((len(n), 3))
    if m == 0:
        return width, np.zeros((len(n), 3))
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs_n: list[float] = []
    rhs_k: list[float] = []
    r = 0
    for line in lines:
        if not any(hidden[i] for i, _ in line):
            continue
        bn = bk = 0.0
        for i, coef in line:
            if hidden[i]:
                rows.append(r)
                cols.append(int(var[i]))
                vals.append(float(coef))
            else:
                bn -= coef * float(n[i])
                bk -= coef * float(k[i])
        rhs_n.append(bn)
        rhs_k.append(bk)
        r += 1
    a_line = sparse.csr_matrix((vals, (rows, cols)), shape=(r, m))
    # Variables: sizes of the hidden cells, then their selected counts.
    a_eq = sparse.block_diag([a_line, a_line], format="csr")
    b_eq = np.array(rhs_n + rhs_k)
    eye = sparse.identity(m, format="csr")
    a_ub = sparse.hstack([-eye, eye], format="csr")  # selected <= size
    b_ub = np.zeros(m)
    n_max = float(n[0])
    k_max = float(k[0])
    bounds = [(0.0, n_max)] * m + [(0.0, k_max)] * m
    x0 = np.concatenate([n[hid], k[hid]]).astype(np.float64)

    def values(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.stack([x[:m], x[m:], x[:m] - x[m:]], axis=1)

    def solve(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
        res = optimize.linprog(
            c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs"
        )
        return None if res.status != 0 else np.asarray(res.x, dtype=np.float64)

    base = values(x0)
    points = [x0]
    rng = np.random.default_rng(20260101)
    for _ in range(_RANDOM_DIRECTIONS):
        direction = rng.standard_normal(2 * m)
        for sign in (1.0, -1.0):
            x = solve(sign * direction)
            if x is not None:
                points.append(x)
    # The affine hull of the attacker's polytope: the equalities, and the inequalities that are
    # tight at every feasible point (implicit equalities). A value is pinned exactly when its
    # coefficients lie in the row space of both.
    g_ub = sparse.vstack([-sparse.identity(2 * m), sparse.identity(2 * m), a_ub], format="csr")
    h_ub = np.concatenate([np.zeros(2 * m), [n_max] * m, [k_max] * m, b_ub])
    pts = np.stack(points, axis=1)
    loose = ((h_ub[:, None] - g_ub @ pts) > 1e-7).any(axis=1)
    candidates = np.flatnonzero(~loose)
    while candidates.size:
        t_rows = g_ub[candidates]
        nt = len(candidates)
        a_t = sparse.hstack([t_rows, sparse.identity(nt)], format="csr")
        res = optimize.linprog(
            np.concatenate([np.zeros(2 * m), -np.ones(nt)]),
            A_ub=sparse.vstack(
                [a_t, sparse.hstack([a_ub, sparse.csr_matrix((m, nt))])], format="csr"
            ),
            b_ub=np.concatenate([h_ub[candidates], b_ub]),
            A_eq=sparse.hstack([a_eq, sparse.csr_matrix((a_eq.shape[0], nt))], format="csr"),
            b_eq=b_eq,
            bounds=bounds + [(0.0, 1.0)] * nt,
            method="highs",
        )
        if res.status != 0:
            break
        t = np.asarray(res.x[2 * m :])
        points.append(np.asarray(res.x[: 2 * m]))
        if not (t > 1e-7).any():
            break
        candidates = candidates[t <= 1e-7]
    # Inequalities tight at every feasible point: bounds fix their variable, and selected
    # equal to size ties two. The rest of the hull is the null space of the equalities.
    fixed_cols = np.zeros(2 * m, dtype=bool)
    tied = []
    for row in candidates:
        if row < 4 * m:
            fixed_cols[row % (2 * m)] = True
        else:
            tied.append(row - 4 * m)
    free = np.flatnonzero(~fixed_cols)
    hull = sparse.vstack([a_eq, a_ub[tied]], format="csr")[:, free]
    # Random directions projected onto the null space of the hull's equalities (least squares
    # residuals): a value moves on the hull exactly when some direction moves it.
    null = np.zeros((2 * m, _HULL_DIRECTIONS))
    if free.size:
        from scipy.sparse.linalg import lsqr

        for d in range(_HULL_DIRECTIONS):
            g = rng.standard_normal(free.size)
            y = lsqr(hull.T, g, atol=1e-14, btol=1e-14, iter_lim=20 * free.size)[0]
            null[free, d] = g - hull.T @ y
    n_move = np.abs(null[:m]).max(axis=1, initial=0.0)
    k_move = np.abs(null[m:]).max(axis=1, initial=0.0)
    nk_move = np.abs(null[:m] - null[m:]).max(axis=1, initial=0.0)
    movable = np.stack([n_move, k_move, nk_move], axis=1) > 1e-6
    seen = np.stack([values(x) for x in points])
    lo = np.minimum(seen.min(axis=0), base)
    hi = np.maximum(seen.max(axis=0), base)
    targets = np.arange(m) if only is None else var[only][var[only] >= 0]
    for t_i in targets:
        for q in range(3):
            if not movable[t_i, q] or hi[t_i, q] - lo[t_i, q] >= _MIN_RANGE:
                continue
            objective = np.zeros(2 * m)
            if q == 0:
                objective[t_i] = 1.0
            elif q == 1:
                objective[m + t_i] = 1.0
            else:
                objective[t_i], objective[m + t_i] = 1.0, -1.0
            for sign in (1.0, -1.0):
                x = solve(sign * objective)
                if x is not None:
                    v = values(x)
                    lo, hi = np.minimum(lo, v), np.maximum(hi, v)
    hi = np.where(movable, hi, lo)
    width[hid] = hi - lo
    point = np.zeros((len(n), 3))
    point[hid] = base
    return width, point


def protect(
    n: dict[tuple[int, ...], IntArray],
    k: dict[tuple[int, ...], IntArray],
    total_n: IntArray,
    total_k: IntArray,
    primary: dict[tuple[int, ...], BoolArray],
    total_primary: BoolArray,
    *,
    stratified: bool,
) -> Protection:
    """Suppress cells until no suppressed value can be pinned from everything published.

    Args:
        n: Residents of every grouping's cells, shape (strata, groups...) with index 0 of the
            strata axis for all strata together (the only one when not stratified).
        k: Selected residents, same shapes.
        total_n: Residents compared, per stratum (0: all).
        total_k: Selected, per stratum.
        primary: Cells the threshold rule suppresses.
        total_primary: Stratum totals the threshold rule suppresses.
        stratified: Whether the strata axis has strata after the all-strata index.

    Returns:
        The :class:`Protection`.
    """
    layout = _Layout(n, total_n, stratified=stratified)
    n_flat = layout.flat(n, total_n).astype(np.int64)
    k_flat = layout.flat(k, total_k).astype(np.int64)
    prim = layout.flat(primary, total_primary).astype(bool)
    present = n_flat > 0
    prim &= present
    prim[0] = False  # the residents compared and selected are stated by the report
    hidden = prim.copy()
    fixed = ~present
    fixed[0] = True
    pinned_left = 0
    check: npt.NDArray[np.intp] | None = None
    while True:
        width, _ = feasible_ranges(layout.lines, n_flat, k_flat, hidden, only=check)
        pinned = np.flatnonzero(hidden & (width.min(axis=1) < _MIN_RANGE))
        if check is not None:
            pinned = np.intersect1d(pinned, check)
        if pinned.size == 0:
            break
        added: set[int] = set()
        stuck = 0
        for i in pinned:
            pick = _neighbour(layout, int(i), hidden | fixed, n_flat)
            if pick is None:
                stuck += 1
            else:
                added.add(pick)
        if not added:
            pinned_left = stuck
            break
        for a in added:
            hidden[a] = True
        # Re-check every hidden cell: a new suppression can only widen ranges, so cells already
        # safe stay safe, but the new ones must be checked too.
        check = None
    supp, total_supp = layout.unflat(hidden, len(total_n))
    return Protection(
        suppressed=supp,
        total_suppressed=total_supp,
        primary=int(prim.sum()),
        secondary=int((hidden & ~prim).sum()),
        published=int((present & ~hidden).sum()),
        pinned=pinned_left,
    )


def _neighbour(layout: _Layout, i: int, unavailable: BoolArray, n: IntArray) -> int | None:
    """The published cell with the fewest residents sharing a line with cell ``i``."""
    best: tuple[int, int] | None = None
    for li in layout.member_of[i]:
        for j, _ in layout.lines[li]:
            if j == i or unavailable[j]:
                continue
            key = (int(n[j]), j)
            if best is None or key < best:
                best = key
    if best is not None:
        return best[1]
    # Every neighbour is suppressed already: widen through them to their lines.
    seen = {i}
    frontier = [i]
    while frontier:
        nxt: list[int] = []
        for c in frontier:
            for li in layout.member_of[c]:
                for j, _ in layout.lines[li]:
                    if j in seen:
                        continue
                    seen.add(j)
                    if unavailable[j]:
                        if j != 0:
                            nxt.append(j)
                        continue
                    key = (int(n[j]), j)
                    if best is None or key < best:
                        best = key
        if best is not None:
            return best[1]
        frontier = nxt
    return None
