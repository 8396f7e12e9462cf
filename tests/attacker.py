"""An attacker of published group statistics, written from the published document alone.

It reads what ``GroupStatistics.to_dict(publication=True)`` (or an audit's or period report's
JSON) publishes, writes every relation a reader knows holds between the numbers (each table's
groups add up to its stratum's total, each pair table's rows and columns add up to the single
attribute tables, the strata add up to the all-grades rows, groups left out are empty), makes
every hidden size and selected count a variable (0 <= selected <= size <= residents compared),
and solves the linear program with HiGHS for the smallest and largest value of every hidden
size, selected and not-selected count. A value whose range is narrower than one resident is
recovered.

Exact, and quick: feasible points found by random objectives prove most ranges wide at once
(each point is checked against every constraint); every value they do not prove wide gets its
own two linear programs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linprog


@dataclass
class Attack:
    published: int
    suppressed: int
    recovered: list[tuple[str, str, str | None, str]]  # grouping, group, stratum, quantity
    lps: int


def _key(row: dict[str, Any]) -> tuple[str, str, str | None]:
    return (row["grouping"], row["group"], row["stratum"])


def attack(published: dict[str, Any], *, sizes_published: bool = False) -> Attack:
    """Recover what can be recovered from one published group-statistics document.

    Args:
        published: The publication's dict (``rows`` and ``overall``).
        sizes_published: The sizes of suppressed cells are public (an older layout): take them
            from ``n`` of every row instead of treating them as unknown.
    """
    rows = published["rows"]
    overall = {o["stratum"]: o for o in published["overall"]}
    strata = [s for s in overall if s is not None]
    cells: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for r in rows:
        cells[_key(r)] = r
    for s, o in overall.items():
        cells[("", "", s)] = o
    hidden = [k for k, c in cells.items() if c["selected"] is None]
    var = {k: i for i, k in enumerate(hidden)}
    m = len(hidden)

    def n_known(c: dict[str, Any]) -> bool:
        return c["n"] is not None or sizes_published

    # Lines: lists of (cell key or None for a known zero, coefficient).
    lines: list[list[tuple[tuple[str, str, str | None], int]]] = []
    groupings: dict[str, list[str]] = {}
    for r in rows:
        groupings.setdefault(r["grouping"], r["attributes"])
    stratum_names: list[str | None] = [None, *strata]
    for grouping, attrs in groupings.items():
        for s in stratum_names:
            members = [k for k in cells if k[0] == grouping and k[2] == s]
            if len(attrs) == 1:
                lines.append([(("", "", s), -1), *((k, 1) for k in members)])
            else:
                for pos, attr in enumerate(attrs):
                    levels = {cells[k]["levels"][pos] for k in members}
                    for level in levels:
                        inner = [k for k in members if cells[k]["levels"][pos] == level]
                        lines.append([((attr, level, s), -1), *((k, 1) for k in inner)])
                    # Single cells with residents but no pair cell: none can exist.
        if strata:
            groups = {k[1] for k in cells if k[0] == grouping}
            for group in groups:
                parts = [(grouping, group, s) for s in strata if (grouping, group, s) in cells]
                whole = (grouping, group, None)
                lines.append([(whole, -1), *((k, 1) for k in parts)])
    if strata:
        lines.append([(("", "", None), -1), *((("", "", s), 1) for s in strata)])

    n_all = overall[None]["n"]
    k_all = overall[None]["selected"]
    assert n_all is not None, "the overall totals are stated"
    assert k_all is not None, "the overall totals are stated"
    # Variables: hidden sizes (m), hidden selected (m). A missing cell is a known zero.
    eq_rows: list[int] = []
    eq_cols: list[int] = []
    eq_vals: list[float] = []
    b_n: list[float] = []
    b_k: list[float] = []
    r_i = 0
    for line in lines:
        bn = bk = 0.0
        touched = False
        for key, coef in line:
            c = cells.get(key)
            if c is None:
                continue  # an empty group: zero
            if key in var:
                touched = True
                eq_rows.append(r_i)
                eq_cols.append(var[key])
                eq_vals.append(coef)
                if n_known(c):
                    bn -= coef * c["n"]  # size known: move it to the right-hand side
            else:
                bn -= coef * c["n"]
                bk -= coef * c["selected"]
        if touched:
            b_n.append(bn)
            b_k.append(bk)
            r_i += 1
    a_line = sparse.csr_matrix((eq_vals, (eq_rows, eq_cols)), shape=(r_i, m))
    size_known = np.array([n_known(cells[k]) for k in hidden], dtype=bool)
    size_value = np.array([cells[k]["n"] if n_known(cells[k]) else 0 for k in hidden], dtype=float)
    if sizes_published:
        # Sizes are constants: only the selected counts are unknown; the size block vanishes.
        a_eq = sparse.block_diag([sparse.csr_matrix((0, m)), a_line], format="csr")
        b_eq = np.array(b_k)
    else:
        a_eq = sparse.block_diag([a_line, a_line], format="csr")
        b_eq = np.array(b_n + b_k)
    eye = sparse.identity(m, format="csr")
    a_ub = sparse.hstack([-eye, eye], format="csr")
    bounds = [
        (v, v) if known else (0.0, float(n_all))
        for known, v in zip(size_known, size_value, strict=True)
    ] + [(0.0, float(k_all))] * m

    lps = 0

    def solve(c: np.ndarray) -> np.ndarray | None:
        nonlocal lps
        lps += 1
        res = linprog(
            c, A_ub=a_ub, b_ub=np.zeros(m), A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs"
        )
        if res.status != 0:
            return None
        x = np.asarray(res.x)
        assert np.abs(a_eq @ x - b_eq).max(initial=0.0) < 1e-6
        return x

    def values(x: np.ndarray) -> np.ndarray:
        return np.stack([x[:m], x[m:], x[:m] - x[m:]], axis=1)

    lo = np.full((m, 3), np.inf)
    hi = np.full((m, 3), -np.inf)
    rng = np.random.default_rng(1)
    for _ in range(6):
        c = rng.standard_normal(2 * m)
        for sign in (1.0, -1.0):
            x = solve(sign * c)
            assert x is not None, "the published tables are consistent"
            v = values(x)
            lo, hi = np.minimum(lo, v), np.maximum(hi, v)
    recovered = []
    quantities = ("size", "selected", "not selected")
    for t, key in enumerate(hidden):
        for q in range(3):
            if hi[t, q] - lo[t, q] >= 1.0 - 1e-6:
                continue
            if q == 0 and size_known[t]:
                continue  # public
            c = np.zeros(2 * m)
            if q == 0:
                c[t] = 1.0
            elif q == 1:
                c[m + t] = 1.0
            else:
                c[t], c[m + t] = 1.0, -1.0
            for sign in (1.0, -1.0):
                x = solve(sign * c)
                assert x is not None
                v = values(x)
                lo, hi = np.minimum(lo, v), np.maximum(hi, v)
            if hi[t, q] - lo[t, q] < 1.0 - 1e-6:
                recovered.append((*key, quantities[q]))
    return Attack(published=len(cells) - m, suppressed=m, recovered=recovered, lps=lps)
