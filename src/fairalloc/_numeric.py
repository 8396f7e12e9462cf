"""Exact points arithmetic.

Points are kept as whole numbers of *micro-points* (millionths of a point) in int64. Every
indicator's contribution, every priority rule's points and every weighted term is rounded once,
half up, to a micro-point::

    micro(x) = floor(x * 1_000_000 + 0.5)

and totals are sums of these integers. Integer addition is exact and does not depend on the
order of the terms, so a total never differs by float noise between two residents with the same
parts, and the parts shown in an explanation always add up to the score used for ranking.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_POINTS", "MAX_TOTAL", "MICRO", "from_micro", "micro", "micro_scalar"]

#: Micro-points per point.
MICRO = 1_000_000
#: The largest magnitude of points one part (an indicator, a priority rule) may have.
MAX_POINTS = 1e9
#: The largest magnitude of a total, a weighted total or a score: 10**18 micro-points, inside
#: int64 (about 9.2 * 10**18), and sums of parts below it cannot wrap around.
MAX_TOTAL = 1e12


def micro(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Round float points to int64 micro-points, half up (the caller checks the range)."""
    if not isinstance(x, np.ndarray) or x.ndim == 0:
        return np.floor(x * float(MICRO) + 0.5).astype(np.int64)
    y = np.multiply(x, float(MICRO), dtype=np.float64)  # the same operations, in one buffer
    y += 0.5
    np.floor(y, out=y)
    return y.astype(np.int64)


def micro_scalar(x: float) -> int:
    """:func:`micro` for one Python float, with the same float operations."""
    return math.floor(x * float(MICRO) + 0.5)


def from_micro(m: npt.NDArray[np.int64] | int) -> npt.NDArray[np.float64] | float:
    """Micro-points back to points (exact for totals below 2**53 micro-points)."""
    if isinstance(m, int):
        return m / MICRO
    return m.astype(np.float64) / MICRO
