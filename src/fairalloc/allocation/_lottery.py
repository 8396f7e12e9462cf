"""Published-seed lotteries, plain and weighted.

Each resident's draw comes from the published seed and the resident's id alone, through keyed
BLAKE2b (see :func:`fairalloc.lottery_key`), so it depends on neither row positions nor the
process. A plain lottery serves the lowest keys first. A weighted lottery (weight ``w > 0``,
e.g. extra chances after repeated failures) orders residents by::

    u = ((key >> 12) + 0.5) / 2**52   # uniform on (0, 1), from the top 52 bits of the key
    draw = -log(u) / w                # exponential with rate w; lowest draw first

which is the Efraimidis-Spirakis method: the resident drawn first is resident ``i`` with
probability ``w_i / sum(w)``, and the whole order is a weighted draw without replacement. Anyone
can recompute every draw with ``hashlib`` and ``math``::

    import hashlib, math
    key = int.from_bytes(hashlib.blake2b(resident_id.encode(), key=seed.encode(),
                                         digest_size=8).digest(), "big")
    draw = -math.log(((key >> 12) + 0.5) / 2**52) / weight
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fairalloc._ranking import lottery_key, lottery_keys

__all__ = ["draw_key", "lottery_order", "weighted_draws"]


def weighted_draws(
    keys: npt.NDArray[np.uint64], weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The draw of each resident (lowest first) from its key and weight."""
    return -np.log(_uniform(keys)) / weights


def _uniform(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    # The top 52 bits fit a float64 exactly, so u never rounds to 1 (whose log would be 0).
    return ((keys >> np.uint64(12)).astype(np.float64) + 0.5) / 2.0**52


def draw_key(seed: str, resident_id: str, weight: float | None) -> tuple[float, int] | tuple[int]:
    """One resident's place in a lottery's order, as :func:`lottery_order` sorts (lower first).

    ``(key,)`` for a plain lottery (``weight`` None), ``(draw, key)`` for a weighted one.
    """
    key = lottery_key(seed, resident_id)
    if weight is None:
        return (key,)
    draw = weighted_draws(np.array([key], dtype=np.uint64), np.array([weight], dtype=np.float64))
    return (float(draw[0]), key)


def lottery_order(
    seed: str, ids: npt.NDArray[np.object_], weights: npt.NDArray[np.float64] | None
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64], npt.NDArray[np.float64]]:
    """Order residents by a published-seed lottery.

    Returns:
        The positions in draw order, each resident's key and each resident's draw.
    """
    keys = lottery_keys(seed, ids)
    if weights is None:
        draws = _uniform(keys)
        # Sorting by key itself is exact; the draw is shown for explanation only.
        return np.argsort(keys, kind="stable"), keys, draws
    draws = weighted_draws(keys, weights)
    # Equal draws need equal keys and weights: the key decides, never the row.
    return np.lexsort((keys, draws)), keys, draws
