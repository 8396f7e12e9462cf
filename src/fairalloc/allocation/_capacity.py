"""Allocation of a number of units: by priority or lottery, with reserve categories.

The base order of the eligible residents is the policy's ranking (``mechanism: priority``) or a
published-seed lottery (``mechanism: lottery``). Reserve categories set units aside:

* ``reserve_mode: precedence``: categories are processed in ``precedence`` order (by default
  the reserves as listed, then ``open``); each takes, from the residents not yet served, those
  eligible for it in its own order (its ``priority``, highest first, then the base order) up
  to its size. The open category takes anyone eligible, in the base order.
* ``reserve_mode: max_beneficiaries``: first, reserved units go to as many reserve-eligible
  residents as a maximum matching allows, choosing them greedily in the base order (a
  transversal matroid, so the greedy choice is both maximal and priority-respecting and does
  not depend on any order of the categories); then the open units go in the base order.

Reserved units left because too few residents are eligible go to the open category, in the base
order (``unused_reserved: open``, the default) or stay unused (``lapse``). Three properties
hold (Pathak, Sönmez, Ünver and Yenmez, 2020), and are tested: eligibility compliance (a unit of
a category goes only to someone eligible for it), non-wastefulness (no unit stays unused while
someone eligible for it waits, except lapsed reserved units) and respect of priorities (within a
category, nobody unserved who is eligible for it comes before someone it served).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fairalloc._evaluation import Evaluation
from fairalloc.allocation._lottery import lottery_order
from fairalloc.errors import AllocationError, AllocationReason
from fairalloc.policy._model import AllocationSpec

__all__ = [
    "Categories",
    "allocate_units",
    "assign_categories",
    "base_order",
    "category_sizes",
    "reserve_order",
]


@dataclass(frozen=True, slots=True)
class Categories:
    """The categories of an allocation: reserves in policy order, then ``open``.

    Attributes:
        ids: Category ids; the last is ``open``.
        sizes: Units of each category (open: the capacity less the reserves).
    """

    ids: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def open(self) -> int:
        """Index of the open category."""
        return len(self.ids) - 1


def category_sizes(spec: AllocationSpec, capacity: int) -> Categories:
    """Units of each category; shares are rounded down, the remainder stays open."""
    sizes = []
    for r in spec.reserves:
        size = r.count if r.count is not None else math.floor((r.share or 0.0) * capacity + 1e-9)
        sizes.append(size)
    if sum(sizes) > capacity:
        raise AllocationError(
            "FA655",
            AllocationReason.RESERVES_EXCEED_CAPACITY,
            f"the reserves ({sum(sizes)} units) exceed the capacity {capacity}",
        )
    return Categories((*(r.id for r in spec.reserves), "open"), (*sizes, capacity - sum(sizes)))


@dataclass(slots=True)
class UnitsResult:
    """What :func:`allocate_units` decided (arrays over all residents)."""

    base_order: npt.NDArray[np.intp] | None  # None: the ranking's order, when read
    category: npt.NDArray[np.int16]
    lottery_key: npt.NDArray[np.uint64] | None
    lottery_draw: npt.NDArray[np.float64] | None
    lapsed: npt.NDArray[np.int64]
    reverted: int


def base_order(
    ev: Evaluation, spec: AllocationSpec
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64] | None, npt.NDArray[np.float64] | None]:
    """Eligible residents' rows in the mechanism's order, with lottery keys and draws if any."""
    if spec.mechanism == "priority":
        return ev.ranking.order, None, None
    assert spec.lottery is not None
    rows = np.flatnonzero(ev.eligible)
    weights = ev.lottery_weight[rows] if spec.lottery.weight is not None else None
    order, keys, draws = lottery_order(spec.lottery.seed, ev.id_column[rows], weights)
    key_all = np.zeros(ev.n, dtype=np.uint64)
    draw_all = np.full(ev.n, np.nan)
    key_all[rows] = keys
    draw_all[rows] = draws
    return rows[order], key_all, draw_all


def allocate_units(ev: Evaluation, spec: AllocationSpec, capacity: int) -> UnitsResult:
    """Decide who is served, and in which category; see the module's documentation."""
    cats = category_sizes(spec, capacity)
    if spec.mechanism == "priority" and not spec.reserves:
        # Everyone competes for the open units alone: the best `capacity` are served, and
        # only who that is needs working out (the whole order waits until it is read).
        served = ev.ranking.served(capacity)
        if served is not None:
            category = np.full(ev.n, -1, dtype=np.int16)
            category[served] = cats.open
            lapsed = np.zeros(len(cats.ids), dtype=np.int64)
            return UnitsResult(None, category, None, None, lapsed, 0)
    order, keys, draws = base_order(ev, spec)
    category, lapsed, reverted = assign_categories(ev, spec, cats, order)
    if spec.mechanism == "priority" and ev.policy.lottery_seed is None:
        _refuse_ties_at_cutoffs(ev, spec, cats, order, category)
    return UnitsResult(order, category, keys, draws, lapsed, reverted)


def assign_categories(
    ev: Evaluation, spec: AllocationSpec, cats: Categories, order: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64], int]:
    """Serve the residents of ``order`` (the base order) category by category.

    Reads only the reserve eligibility and priorities of ``ev``; what-if studies pass another
    base order (one resident moved) to see what the same mechanism would have done.

    Returns:
        Each resident's category (-1: not served), the units lapsed per category, and the
        reserved units given in the open category.
    """
    category = np.full(ev.n, -1, dtype=np.int16)
    if spec.reserve_mode == "max_beneficiaries" and spec.reserves:
        left = _max_beneficiaries(ev, cats, order, category)
    else:
        left = _by_precedence(ev, spec, cats, order, category)
    lapsed = np.zeros(len(cats.ids), dtype=np.int64)
    spare = sum(left[:-1])
    reverted = 0
    if spare and spec.unused_reserved == "open":
        reverted = spare - _take(order, category, cats.open, spare, eligible=None)
    elif spare:
        lapsed[:-1] = left[:-1]
    return category, lapsed, reverted


def _refuse_ties_at_cutoffs(
    ev: Evaluation,
    spec: AllocationSpec,
    cats: Categories,
    order: npt.NDArray[np.intp],
    category: npt.NDArray[np.int16],
) -> None:
    """Refuse to decide a tie that straddles a category's cut-off.

    Without a lottery, residents still tied after the whole chain share a rank; across a
    cut-off only row order or ids could decide between them, which they never may.
    """
    rank = ev.ranking.rank
    for c, cid in enumerate(cats.ids):
        served = category[order] == c
        if not served.any():
            continue
        elig = ev.eligible if c == cats.open else ev.reserve_eligible[:, c]
        last = order[np.flatnonzero(served)[-1]]
        waiting = order[(category[order] < 0) & elig[order]]
        same = rank[waiting] == rank[last]
        if c != cats.open and spec.reserves[c].priority is not None:
            same &= ev.reserve_priority[waiting, c] == ev.reserve_priority[last, c]
        if same.any():
            other = waiting[np.flatnonzero(same)[0]]
            ids = (ev.id_column[last], ev.id_column[other])
            raise AllocationError(
                "FA656",
                AllocationReason.UNDECIDED_TIE,
                f"residents {ids[0]} and {ids[1]} are tied at the cut-off of"
                f" `{cid}` (same score and tie-break values), and the ranking has no lottery"
                " to decide between them: add {lottery: {seed: ...}} to ranking.tie_break",
                ids=ids,
            )


def _take(
    order: npt.NDArray[np.intp],
    category: npt.NDArray[np.int16],
    cat: int,
    units: int,
    eligible: npt.NDArray[np.bool_] | None,
) -> int:
    """Serve up to ``units`` of the unserved in ``order`` (eligible ones); returns units left."""
    if units <= 0:
        return units
    candidates = order[category[order] < 0]
    if eligible is not None:
        candidates = candidates[eligible[candidates]]
    chosen = candidates[:units]
    category[chosen] = cat
    return units - len(chosen)


def reserve_order(
    ev: Evaluation, spec: AllocationSpec, c: int, order: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """The rows of ``order`` in the order reserve ``c`` takes them.

    The reserve's own priority first (highest first), then ``order`` (the base order); without a
    priority, ``order`` itself.
    """
    if spec.reserves[c].priority is None:
        return order
    prio = ev.reserve_priority[order, c]
    return order[np.lexsort((np.arange(len(order)), -prio))]


def _by_precedence(
    ev: Evaluation,
    spec: AllocationSpec,
    cats: Categories,
    order: npt.NDArray[np.intp],
    category: npt.NDArray[np.int16],
) -> list[int]:
    left = list(cats.sizes)
    sequence = spec.precedence or list(cats.ids)
    for cid in sequence:
        c = cats.ids.index(cid)
        if c == cats.open:
            left[c] = _take(order, category, c, left[c], eligible=None)
            continue
        own = reserve_order(ev, spec, c, order)
        left[c] = _take(own, category, c, left[c], eligible=ev.reserve_eligible[:, c])
    return left


def _max_beneficiaries(
    ev: Evaluation, cats: Categories, order: npt.NDArray[np.intp], category: npt.NDArray[np.int16]
) -> list[int]:
    reserves = len(cats.ids) - 1
    sizes = list(cats.sizes[:-1])
    elig = ev.reserve_eligible
    holders: list[list[int]] = [[] for _ in range(reserves)]  # rows matched to each reserve
    free = sum(sizes)
    # Only residents eligible for some reserve can take a reserved unit: walk just those.
    candidates = order[elig[order, :reserves].any(axis=1)] if reserves else order[:0]
    for row in candidates:
        if free == 0:
            break
        cats_of = [c for c in range(reserves) if elig[row, c]]
        if _augment(int(row), cats_of, holders, sizes, elig):
            free -= 1
    for c, rows in enumerate(holders):
        category[rows] = c
    left = [sizes[c] - len(holders[c]) for c in range(reserves)]
    left.append(_take(order, category, cats.open, cats.sizes[-1], eligible=None))
    return left


def _augment(
    row: int,
    cats_of: list[int],
    holders: list[list[int]],
    sizes: list[int],
    elig: npt.NDArray[np.bool_],
) -> bool:
    """Add ``row`` to the matching of residents to reserve units, moving others if need be.

    A breadth-first search over categories for an augmenting path: a category with a free
    unit, reached through residents who can move to another category they are eligible for.
    """
    parent: dict[int, tuple[int, int] | None] = dict.fromkeys(cats_of)
    queue = list(cats_of)
    while queue:
        c = queue.pop(0)
        if len(holders[c]) < sizes[c]:
            # The path of categories from the free one back to one of the row's own.
            path = [c]
            step = parent[c]
            while step is not None:
                path.append(step[0])
                step = parent[step[0]]
            incoming = row
            # path: [free category, ..., first category]; residents shift one step each.
            for i in range(len(path) - 1, 0, -1):
                here, there = path[i], path[i - 1]
                moved = parent[there][1]  # type: ignore[index]
                holders[here].remove(moved)
                holders[here].append(incoming)
                incoming = moved
            holders[path[0]].append(incoming)
            return True
        for other in holders[c]:
            for c2 in (int(k) for k in np.flatnonzero(elig[other])):
                if c2 < len(sizes) and c2 not in parent:
                    parent[c2] = (c, other)
                    queue.append(c2)
    return False
