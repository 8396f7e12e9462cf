"""The counterfactual flip audit over a Dask DataFrame, equal to one process's.

:meth:`ClusterAllocation.flip_audit <fairalloc.cluster.ClusterAllocation.flip_audit>` asks,
for each protected attribute and each alternative value, what changing only one resident's
value would change: eligibility, score, parts of the policy, allocation inputs, rank and
served status (see :mod:`fairalloc.audit._flip` for why one evaluation per value is exact).

Why this is exact
-----------------
Everything but rank and served status is the resident's own row (:meth:`Shape.changes`), so
each partition compares its residents, with the same code, and the counts add up.

A rank is ``1 +`` the number of *other* originally eligible residents whose key is smaller:
a count over the whole population. So the audit first gathers every originally eligible
resident's sort key (the ranking's columns, the lottery key, the id: a few numbers each, no
other data) and builds the one-process key index over them, in the ranking's order. Each
partition then sends up only the residents whose rank may change (eligible after the change,
and not eligible before or with another key), with their old and new keys, and the client
places them by the one-process binary search; under plain priority, served after the change
means fewer than the capacity before the new key, from the same count. The first residents
listed (by id) are each partition's first, and the client keeps the first of those.

The numeric alternatives (the population's quartiles, and its smallest and largest values
where the schema declares none) come from each partition's distinct values and their counts,
added up: the same values as one process's.

Under reserve categories or a lottery mechanism, served status places each changed resident
by the what-if allocation, a pass over the pool per resident; one process does it only for a
pool within ``what_if_limit`` residents, and so does the cluster, by gathering that pool to
the client and auditing it there.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._arrays import distinct
from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate, reevaluate_attribute
from fairalloc._numeric import MICRO
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import _sort_keys, lottery_keys
from fairalloc.audit._flip import (
    AffectedResident,
    FlipAudit,
    FlipResult,
    Shape,
    _alternatives,
    _attributes_to_audit,
    _code,
    _KeyIndex,
    _searchsorted,
    _served_capacity,
    assemble,
    audited,
    check_max_listed,
    flip_audit,
    what_if_note,
)
from fairalloc.audit._static import static_proof
from fairalloc.cluster._allocate import _evaluated, _gather
from fairalloc.errors import EvaluationError

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._evaluation import Evaluation
    from fairalloc.cluster._allocate import ClusterAllocation

__all__ = ["flip_audit_on_cluster"]

_NUMERIC = ("int", "float", "date")


def flip_audit_on_cluster(
    result: ClusterAllocation,
    *,
    attributes: Sequence[str] | None = None,
    max_listed: int = 20,
    check_independent: bool = False,
    what_if_limit: int = 2_000,
) -> FlipAudit:
    """:func:`fairalloc.audit.flip_audit` of a cluster allocation's residents, over the cluster.

    Equal (as :meth:`FlipAudit.to_dict`) to ``flip_audit(evaluation, capacity=C)`` of the
    whole population in one process, ``C`` being the allocation's capacity. Arguments as there.
    """
    parts, cp, compute = result._source
    check_max_listed(max_listed)
    delayed = require("dask", extra="dask", feature="cluster flip audit").delayed
    names = _attributes_to_audit(cp, attributes)
    proof = static_proof(cp)
    units, served_note = _served_capacity(cp, result.allocation.capacity)
    spec = cp.policy.allocation
    assert spec is not None
    if units is not None and (spec.reserves or spec.mechanism != "priority"):
        if result.residents > what_if_limit:
            units, served_note = None, what_if_note(result.residents, what_if_limit, rerun=False)
        else:  # a small pool: every resident to the client, audited there by the same code
            import pandas as pd

            frames = _gather(parts, compute)
            pool = Population.load(pd.concat(frames, ignore_index=True), cp.policy)
            return flip_audit(
                evaluate(cp, pool),
                capacity=units,
                attributes=names,
                max_listed=max_listed,
                check_independent=check_independent,
                what_if_limit=what_if_limit,
            )
    evaluated = [n for n in names if audited(cp, n, check_independent=check_independent)]
    numeric = [n for n in evaluated if cp.policy.attributes[n].type in _NUMERIC]
    firsts = _gather([delayed(_keys_part, pure=True)(p, cp, numeric) for p in parts], compute)
    index = _GlobalKeys.of(cp, firsts)
    part_names = Shape.of(cp).parts
    alternatives = {}
    for name in evaluated:
        attr = cp.policy.attributes[name]
        column = np.zeros(0)
        if name in numeric:
            values = np.concatenate([f.distinct[name][0] for f in firsts])
            counts = np.concatenate([f.distinct[name][1] for f in firsts])
            column = np.repeat(values, counts)  # every resident's value, in another order
        alternatives[name] = _alternatives(attr, column)
    served = delayed(frozenset(result.served_ids()) if units is not None else frozenset())
    found = _gather(
        [delayed(_flip_part, pure=True)(p, cp, alternatives, served, max_listed) for p in parts],
        compute,
    )

    def flips(name: str, allowed: set[str]) -> list[FlipResult]:
        return [
            _combine(
                name,
                label,
                [f[name][k] for f in found],
                index,
                part_names,
                units,
                allowed,
                max_listed,
            )
            for k, (_, label) in enumerate(alternatives[name])
        ]

    return assemble(
        cp,
        proof,
        names,
        n=result.residents,
        units=units,
        served_note=served_note,
        check_independent=check_independent,
        flips=flips,
    )


# -- the whole population's keys ------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    """One partition's originally eligible residents' keys, and its numeric values."""

    columns: list[np.ndarray]
    lottery: npt.NDArray[np.uint64] | None
    ids: npt.NDArray[np.str_]
    distinct: dict[str, tuple[np.ndarray, np.ndarray]]


def _keys_part(frame: pd.DataFrame, cp: CompiledPolicy, numeric: list[str]) -> _Keys:
    ev = _evaluated(frame, cp)
    assert ev.population is not None
    rows = np.flatnonzero(ev.eligible)
    seed = cp.lottery_seed
    return _Keys(
        columns=_sort_keys(ev, rows),
        lottery=lottery_keys(seed, ev.id_column[rows]) if seed is not None else None,
        ids=np.asarray(ev.id_column[rows], dtype=object).astype(str),
        distinct={n: np.unique(ev.population.columns[n], return_counts=True) for n in numeric},
    )


@dataclass(frozen=True)
class _GlobalKeys:
    """The one-process key index over every originally eligible resident, in ranking order."""

    index: _KeyIndex
    ids: npt.NDArray[np.str_]  # in the ranking's order
    lottery_values: npt.NDArray[np.uint64] | None

    @classmethod
    def of(cls, cp: CompiledPolicy, parts: list[_Keys]) -> _GlobalKeys:
        width = len(parts[0].columns) if parts else 0
        columns = [
            np.concatenate([p.columns[j] for p in parts]) if parts else np.zeros(0)
            for j in range(width)
        ]
        ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, dtype=str)
        lottery = None
        if cp.lottery_seed is not None:
            lottery = (
                np.concatenate([p.lottery for p in parts if p.lottery is not None])
                if parts
                else np.zeros(0, dtype=np.uint64)
            )
        # The ranking's order: its keys, the lottery key, then the id.
        order = np.lexsort([ids, *([lottery] if lottery is not None else []), *columns[::-1]])
        last = None
        values = None
        if lottery is not None:
            values = distinct(lottery)
            last = (_code(values, lottery[order]), 2 * len(values) + 2)
        index = _KeyIndex([c[order] for c in columns], last, len(order))
        return cls(index, ids[order], values)

    def encode(
        self, columns: list[np.ndarray], lottery: npt.NDArray[np.uint64] | None
    ) -> npt.NDArray[np.int64]:
        """The index codes of other keys."""
        last = None
        if self.lottery_values is not None:
            assert lottery is not None
            last = _code(self.lottery_values, lottery)
        return self.index.encode(columns, last)

    def rank(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Rank (1 = best) of residents whose original key has ``codes``."""
        return 1 + _searchsorted(self.index.codes, codes, "left").astype(np.int64)

    def placed(
        self,
        codes: npt.NDArray[np.int64],
        ids: npt.NDArray[np.str_],
        own: npt.NDArray[np.int64],
        was: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Rank and listing position of residents changed alone, each to its new key ``codes``.

        ``own``: each one's original code, where ``was`` (originally eligible): its own
        original entry is left out of the count, as in one process.
        """
        sorted_codes = self.index.codes
        lo = _searchsorted(sorted_codes, codes, "left").astype(np.int64)
        hi = _searchsorted(sorted_codes, codes, "right").astype(np.int64)
        less = lo - (was & (own < codes))
        ties = hi - lo - (was & (own == codes))
        before = less.copy()
        for k in np.flatnonzero(ties > 0).tolist():
            # Tied on the whole chain: those the listing puts first are those with smaller ids.
            group = self.ids[lo[k] : hi[k]]
            before[k] += int(np.searchsorted(group, ids[k], side="left"))
        return 1 + less, before


# -- one partition's comparisons --------------------------------------------------------------


@dataclass(frozen=True)
class _Residents:
    """Some compared residents of one partition, with what the client needs to place them."""

    ids: npt.NDArray[np.str_]
    e0: npt.NDArray[np.bool_]
    e1: npt.NDArray[np.bool_]
    s0: npt.NDArray[np.int64]
    s1: npt.NDArray[np.int64]
    local: npt.NDArray[np.bool_]  # affected by a change of their own row
    by_part: npt.NDArray[np.bool_]  # [k, parts]
    served0: npt.NDArray[np.bool_]
    old: list[np.ndarray]  # original sort key columns
    new: list[np.ndarray]  # the changed ones
    lottery: npt.NDArray[np.uint64] | None

    def take(self, k: npt.NDArray[np.intp]) -> _Residents:
        return _Residents(
            self.ids[k],
            self.e0[k],
            self.e1[k],
            self.s0[k],
            self.s1[k],
            self.local[k],
            self.by_part[k],
            self.served0[k],
            [c[k] for c in self.old],
            [c[k] for c in self.new],
            self.lottery[k] if self.lottery is not None else None,
        )


@dataclass(frozen=True)
class _Compared:
    """One partition's comparisons for one value of one attribute."""

    n_compared: int
    eligibility: int
    score: int
    alloc: int
    rank: int  # rank changes found without the client: eligible before, not after
    served: int  # served changes found so: served before, not eligible after
    affected: int  # residents affected among those the client need not place
    parts: npt.NDArray[np.bool_]
    placed: _Residents | None  # residents the client places (their rank may change)
    listed: _Residents | None  # the first others affected, by id
    error: str | None = None


def _flip_part(
    frame: pd.DataFrame,
    cp: CompiledPolicy,
    alternatives: dict[str, list[tuple[Any, str]]],
    served: frozenset[str],
    max_listed: int,
) -> dict[str, list[_Compared]]:
    ev = _evaluated(frame, cp)
    pop = ev.population
    assert pop is not None
    shape = Shape.of(cp)
    ids = np.asarray(ev.id_column.objects, dtype=object).astype(str)
    served_now = np.array([i in served for i in ids.tolist()], dtype=bool)
    seed = cp.lottery_seed
    out: dict[str, list[_Compared]] = {}
    for name, values in alternatives.items():
        column = pop.columns[name]
        mine = []
        for code, _ in values:
            rows = np.flatnonzero(column != code)
            if not len(rows):
                mine.append(
                    _Compared(0, 0, 0, 0, 0, 0, 0, np.zeros(len(shape.parts), bool), None, None)
                )
                continue
            try:
                ev2 = reevaluate_attribute(
                    ev, pop.replace(name, np.full(pop.n, code, dtype=column.dtype)), name
                )
            except EvaluationError as e:
                mine.append(
                    _Compared(
                        len(rows),
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        np.zeros(len(shape.parts), bool),
                        None,
                        None,
                        str(e),
                    )
                )
                continue
            mine.append(_compare(ev, ev2, shape, rows, ids, served_now, seed, max_listed))
        out[name] = mine
    return out


def _compare(
    ev: Evaluation,
    ev2: Evaluation,
    shape: Shape,
    rows: npt.NDArray[np.intp],
    ids: npt.NDArray[np.str_],
    served_now: npt.NDArray[np.bool_],
    seed: str | None,
    max_listed: int,
) -> _Compared:
    c = shape.changes(ev, ev2, rows)
    same = c.e0 & c.e1 & ~c.key
    need = c.e1 & ~same  # eligible after, with a new place in the order
    local = (c.e0 != c.e1) | c.score | c.alloc
    served0 = served_now[rows]
    # Not eligible after: rank 0 and not served; the same key: the same rank and place.
    rank_local = c.e0 & ~c.e1
    served_local = served0 & ~c.e1
    other = ~need
    by_part = (
        np.stack([c.by_part[p] for p in shape.parts], axis=1)
        if shape.parts
        else np.zeros((len(rows), 0), dtype=bool)
    )
    lottery = lottery_keys(seed, ev.id_column[rows]) if seed is not None else None
    every = _Residents(
        ids[rows],
        c.e0,
        c.e1,
        c.s0,
        c.s1,
        local,
        by_part,
        served0,
        _sort_keys(ev, rows),
        _sort_keys(ev2, rows),
        lottery,
    )
    affected_other = other & (local | rank_local | served_local)
    hits = np.flatnonzero(affected_other)
    first = heapq.nsmallest(max_listed, hits.tolist(), key=lambda h: every.ids[h])
    return _Compared(
        n_compared=len(rows),
        eligibility=int((c.e0 != c.e1).sum()),
        score=int(c.score.sum()),
        alloc=int(c.alloc.sum()),
        rank=int((rank_local & other).sum()),
        served=int((served_local & other).sum()),
        affected=int(affected_other.sum()),
        parts=np.asarray(by_part.any(axis=0), dtype=bool),
        placed=every.take(np.flatnonzero(need)),
        listed=every.take(np.array(first, dtype=np.intp)),
    )


# -- the client's combination -----------------------------------------------------------------


def _combine(
    name: str,
    label: str,
    found: list[_Compared],
    keys: _GlobalKeys,
    names: list[str],
    units: int | None,
    allowed: set[str],
    max_listed: int,
) -> FlipResult:
    n_compared = sum(f.n_compared for f in found)
    errors = [f.error for f in found if f.error is not None]
    if errors:
        return FlipResult(name, label, n_compared, error=errors[0])
    placed = _concat([f.placed for f in found if f.placed is not None])
    rank_changes = sum(f.rank for f in found)
    served_changes = sum(f.served for f in found)
    affected = sum(f.affected for f in found)
    extra: list[tuple[str, AffectedResident, npt.NDArray[np.bool_]]] = []
    if placed is not None and len(placed.ids):
        own = keys.encode(placed.old, placed.lottery)
        new = keys.encode(placed.new, placed.lottery)
        rank0 = np.where(placed.e0, keys.rank(own), 0)
        rank1, pos1 = keys.placed(new, placed.ids, own, placed.e0)
        rank_changed = rank0 != rank1
        served1 = placed.e1 & (pos1 >= 0) & (pos1 < (units or 0))
        served_changed = (
            placed.served0 != served1 if units is not None else np.zeros(len(rank0), bool)
        )
        hit = placed.local | rank_changed | served_changed
        rank_changes += int(rank_changed.sum())
        served_changes += int(served_changed.sum())
        affected += int(hit.sum())
        for k in np.flatnonzero(hit).tolist():
            extra.append(
                (
                    str(placed.ids[k]),
                    _resident(
                        placed,
                        k,
                        (int(rank0[k]), int(rank1[k])),
                        served1=bool(served1[k]),
                        units=units,
                    ),
                    placed.by_part[k],
                )
            )
    for f in found:
        others = f.listed
        if others is None or not len(others.ids):
            continue
        own = keys.encode(others.old, others.lottery)
        rank0 = np.where(others.e0, keys.rank(own), 0)
        for k in range(len(others.ids)):
            # Not placed: eligible after with the same key (the same rank), or not eligible.
            r1 = int(rank0[k]) if others.e1[k] else 0
            s1 = bool(others.served0[k]) if others.e1[k] else False
            extra.append(
                (
                    str(others.ids[k]),
                    _resident(others, k, (int(rank0[k]), r1), served1=s1, units=units),
                    others.by_part[k],
                )
            )
    changed = np.zeros(len(names), dtype=bool)
    for f in found:
        changed |= f.parts
    parts = tuple(p for p, on in zip(names, changed.tolist(), strict=True) if on)
    first = heapq.nsmallest(max_listed, extra, key=lambda e: e[0])
    listed = tuple(
        AffectedResident(
            id=r.id,
            parts=tuple(p for p, on in zip(names, flags.tolist(), strict=True) if on),
            eligible=r.eligible,
            score=r.score,
            rank=r.rank,
            served=r.served,
        )
        for _, r, flags in first
    )
    return FlipResult(
        attribute=name,
        value=label,
        n_compared=n_compared,
        eligibility_changes=sum(f.eligibility for f in found),
        score_changes=sum(f.score for f in found),
        rank_changes=rank_changes,
        served_changes=served_changes if units is not None else None,
        allocation_changes=sum(f.alloc for f in found),
        affected=affected,
        parts=parts,
        unjustified_parts=tuple(p for p in parts if p not in allowed),
        listed=listed,
    )


def _concat(found: list[_Residents]) -> _Residents | None:
    """The residents of every partition, in partition order."""
    if not found:
        return None
    lottery = [f.lottery for f in found]
    return _Residents(
        np.concatenate([f.ids for f in found]),
        np.concatenate([f.e0 for f in found]),
        np.concatenate([f.e1 for f in found]),
        np.concatenate([f.s0 for f in found]),
        np.concatenate([f.s1 for f in found]),
        np.concatenate([f.local for f in found]),
        np.concatenate([f.by_part for f in found]),
        np.concatenate([f.served0 for f in found]),
        [np.concatenate(c) for c in zip(*(f.old for f in found), strict=True)],
        [np.concatenate(c) for c in zip(*(f.new for f in found), strict=True)],
        None if lottery[0] is None else np.concatenate([x for x in lottery if x is not None]),
    )


def _resident(
    res: _Residents, k: int, rank: tuple[int, int], *, served1: bool, units: int | None
) -> AffectedResident:
    """Resident ``k`` as one process lists it (parts filled in by the caller)."""
    return AffectedResident(
        id=str(res.ids[k]),
        parts=(),
        eligible=(bool(res.e0[k]), bool(res.e1[k])),
        score=(int(res.s0[k]) / MICRO, int(res.s1[k]) / MICRO),
        rank=rank,
        served=(bool(res.served0[k]), served1) if units is not None else None,
    )
