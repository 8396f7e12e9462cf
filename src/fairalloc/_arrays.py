"""Array helpers the engine and the audits share."""

from __future__ import annotations

import numpy as np

__all__ = ["distinct"]


def distinct(x: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D array: :func:`numpy.unique` of it, by one sort.

    NumPy 2 finds the distinct values of an integer array through a hash table, which is about
    ten times slower than one sort when most values differ (lottery keys, combined sort codes):
    0.45 s against 0.04 s for 733,000 keys. NaNs count as one value, and ``-0.0`` and ``0.0``
    as one, as :func:`numpy.unique` has them.

    Examples:
        >>> distinct(np.array([3, 1, 3, 2])).tolist()
        [1, 2, 3]
        >>> distinct(np.array([np.nan, 1.0, np.nan])).tolist()
        [1.0, nan]
    """
    s = np.sort(x, axis=None)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    if s.dtype.kind in "fc":
        nan = np.isnan(s)
        if nan.any():  # sorted last: keep the first of them only
            keep &= ~nan
            keep[int(np.argmax(nan))] = True
    return s[keep]
