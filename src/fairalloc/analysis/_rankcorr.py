"""Rank correlation with ties handled exactly: Spearman's rho and Kendall's tau-b.

Used by :func:`fairalloc.compare` on the residents eligible under both policies; both run in
O(n log n) so that they scale to whole cities.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fairalloc.errors import ArgumentError

__all__ = [
    "canonical_pairs",
    "kendall_of_pairs",
    "kendall_tau_b",
    "spearman_of_pairs",
    "spearman_rho",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def spearman_rho(x: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """Spearman's rank correlation of two equally long samples, with ties averaged.

    Each sample is replaced by its ranks (tied values share the mean of the ranks they span) and
    the Pearson correlation of the ranks is returned. The sums run over the pairs sorted by
    ``(x, y)``, so the result does not depend on the order the pairs come in.

    Args:
        x: The first sample (numbers).
        y: The second sample, paired with ``x``.

    Returns:
        rho in [-1, 1], or None with fewer than two pairs or when a sample is constant.

    Raises:
        ValueError: if the samples differ in length.

    Examples:
        >>> spearman_rho([1, 2, 3, 4], [10, 20, 30, 40])
        1.0
        >>> spearman_rho([1, 2, 3, 4], [1, 3, 2, 4])
        0.8
    """
    return spearman_of_pairs(*canonical_pairs(x, y))


def spearman_of_pairs(xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> float | None:
    """Spearman's rho of pairs sorted by ``(x, y)``."""
    n = len(xs)
    if n < 2:
        return None
    rx, ry = _average_ranks(xs), _average_ranks(ys)
    centre = (n + 1) / 2.0  # the mean of 1..n, kept by averaging ties
    dx, dy = rx - centre, ry - centre
    sxx, syy = float(np.dot(dx, dx)), float(np.dot(dy, dy))
    if sxx == 0.0 or syy == 0.0:
        return None
    rho = float(np.dot(dx, dy)) / np.sqrt(sxx * syy)
    return float(min(1.0, max(-1.0, rho)))


def kendall_tau_b(x: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """Kendall's tau-b of two equally long samples, exact, in O(n log n) vectorized steps.

    ``tau_b = (C - D) / sqrt((P - Tx) (P - Ty))`` with ``P = n(n-1)/2`` pairs, ``C`` and ``D``
    concordant and discordant pairs, ``Tx`` and ``Ty`` the pairs tied in ``x`` and in ``y``
    (Knight's method: sort by ``x`` then ``y``; discordant pairs are the inversions of ``y``,
    counted bit by bit of its dense rank with cumulative sums).

    Args:
        x: The first sample (numbers).
        y: The second sample, paired with ``x``.

    Returns:
        tau-b in [-1, 1], or None with fewer than two pairs or when a sample is constant.

    Raises:
        ValueError: if the samples differ in length.

    Examples:
        >>> kendall_tau_b([1, 2, 3], [1, 2, 3])
        1.0
        >>> round(kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]), 4)
        0.6667
    """
    return kendall_of_pairs(*canonical_pairs(x, y))


def kendall_of_pairs(xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> float | None:
    """Kendall's tau-b of pairs sorted by ``(x, y)``."""
    n = len(xs)
    if n < 2:
        return None
    pairs = n * (n - 1) // 2
    tied_x = _tied_pairs(xs)
    tied_y = _tied_pairs(np.sort(ys, kind="stable"))
    same = np.concatenate(([True], (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])))
    tied_xy = _run_pairs(same)
    if tied_x == pairs or tied_y == pairs:
        return None
    dense = np.unique(ys, return_inverse=True)[1].astype(np.int64).ravel()
    discordant = _inversions(dense)
    numerator = pairs - tied_x - tied_y + tied_xy - 2 * discordant
    tau = numerator / np.sqrt(float(pairs - tied_x) * float(pairs - tied_y))
    return float(min(1.0, max(-1.0, tau)))


def canonical_pairs(
    x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ArgumentError("FA613", f"the samples differ in length: {len(xa)} and {len(ya)}")
    order = np.lexsort((ya, xa))
    return xa[order], ya[order]


def _average_ranks(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(v, kind="stable")
    s = v[order]
    new = np.concatenate(([True], s[1:] != s[:-1]))
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(s)))
    group = np.cumsum(new) - 1
    mean_rank = starts + (counts + 1) / 2.0
    out = np.empty(len(v), dtype=np.float64)
    out[order] = mean_rank[group]
    return out


def _run_pairs(new: BoolArray) -> int:
    """Pairs within runs, where ``new`` marks the first element of each run."""
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(new))).astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _tied_pairs(sorted_values: npt.NDArray[np.float64]) -> int:
    s = sorted_values
    return _run_pairs(np.concatenate(([True], s[1:] != s[:-1])))


def _inversions(v: IntArray) -> int:
    """Pairs ``i < j`` with ``v[i] > v[j]`` of non-negative integers, one pass per bit.

    At each bit, from the highest, residents are grouped by their higher bits (a stable
    partition so far); within a group, every element with the bit clear is inverted with each
    earlier element that has it set. Then each group is split, stably, into clear and set.
    """
    n = len(v)
    if n < 2:
        return 0
    cur = v.copy()
    total = 0
    positions = np.arange(n, dtype=np.int64)
    for bit in range(int(cur.max()).bit_length() - 1, -1, -1):
        b = (cur >> bit) & 1
        high = cur >> (bit + 1)
        new = np.concatenate(([True], high[1:] != high[:-1]))
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], n)
        group = np.cumsum(new) - 1
        g_start = starts[group]
        ones = np.concatenate(([0], np.cumsum(b)))  # ones in [0, i)
        ones_before = ones[:-1] - ones[g_start]
        clear = b == 0
        total += int(ones_before[clear].sum())
        zeros_in_group = (ends - starts) - (ones[ends] - ones[starts])
        zeros_before = (positions - g_start) - ones_before
        target = np.where(
            clear, g_start + zeros_before, g_start + zeros_in_group[group] + ones_before
        )
        nxt = np.empty_like(cur)
        nxt[target] = cur
        cur = nxt
    return total
