"""Matching residents to several resources by their ranked choices (deferred acceptance).

A policy's ``allocation.matching`` lists resources (activity sessions, facility slots), each
with a capacity, who may hold it (``eligible``) and its own priority (``priority``), and names
the category attributes that hold each resident's choices, first choice first.

**Preference lists.** A resident's list is the levels of its preference attributes in order,
keeping resource ids, skipping a resource already listed, and stopping at the first level that
is not a resource id (``none``). Positions in this list are the choice numbers reported
(1 = first choice).

**Choices are only preferences.** No rule, tie-break or resource of the policy may read the
preference attributes: priorities that depend on how a resident ranks the resources (a bonus
for a first choice) would reward misreporting.

**Who takes part.** Only eligible residents (:attr:`Evaluation.eligible`) take part; a resource
accepts only residents for whom its ``eligible`` condition holds.

**Priority of a resource over its applicants** (strict, highest first):

1. the resource's ``priority`` value, highest first (0 for everyone when it has none);
2. the policy's score, highest first;
3. the position in the policy's ranking (its tie-break chain and its published-seed lottery);
4. one lottery shared by every resource: the published lottery key of (seed, id) with the seed
   of the policy's ranking lottery, lowest first.

A matching therefore needs the policy's ranking to end with a published lottery: neither ids
nor row order may decide between residents. Each resident's priority rank at a resource is its
position in that order among all residents who take part and may hold the resource (1 = first).

**Mechanism.** Resident-proposing deferred acceptance (Gale and Shapley, 1962): each resident
proposes down its list until it holds ``units_per_resident`` distinct resources or its list is
exhausted; a resource holds the best applicants up to its capacity and rejects the rest, and a
rejected (or displaced) resident proposes to its next choice. The result is the
resident-optimal stable matching: it respects eligibility and capacities, wastes no unit
anybody wants, leaves no resident and resource that would both rather be matched to each other
(no blocking pair) and, with one unit per resident, no resident can get a better choice by
misreporting its preferences (Dubins and Freedman, 1981; Roth, 1982). The outcome does not
depend on the order in which proposals are processed, nor on the order of the input rows.
"""

from __future__ import annotations

import heapq
import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._escape import html_text
from fairalloc._evaluation import Evaluation
from fairalloc._explainable import Explainable
from fairalloc._html import table as html_table
from fairalloc._numeric import MICRO
from fairalloc._optional import require
from fairalloc._ranking import lottery_keys
from fairalloc.errors import AllocationError, AllocationReason, ArgumentError, ArgumentTypeError
from fairalloc.policy._model import Matching, Policy

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._population import Population

__all__ = ["MatchingResult", "ResourceCutoff", "match"]

_NO_LOTTERY = (
    "a matching needs a published lottery to break ties between residents: end"
    " `ranking.tie_break` with `{lottery: {seed: ...}}` (neither ids nor row order may decide)"
)


def match(
    source: Evaluation | Policy | CompiledPolicy,
    residents: Any = None,
    *,
    capacities: Mapping[str, int] | None = None,
) -> MatchingResult:
    """Match residents to the policy's resources by resident-proposing deferred acceptance.

    Args:
        source: An :class:`~fairalloc.Evaluation`, or a policy (then ``residents`` is evaluated
            first with :func:`fairalloc.evaluate`).
        residents: The residents, when ``source`` is a policy (anything
            :func:`fairalloc.evaluate` accepts).
        capacities: Units of some resources, by resource id, instead of the policy's (the usual
            what-if); the others keep the policy's capacity.

    Returns:
        The :class:`MatchingResult`: what each resident holds and each resource's cut-off.

    Raises:
        ValueError: if the policy has no ``allocation.matching``, if its ranking does not end
            with a published lottery, if any of its rules, tie-breaks or resources reads the
            preference attributes, or if ``capacities`` names an unknown resource or gives a
            negative number.
        TypeError: if ``residents`` is missing with a policy, or given with an evaluation.

    Examples:
        >>> import fairalloc as fa
        >>> from fairalloc import match
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   need: {type: int, min: 0, max: 10}
        ...   first: {type: category, levels: [gym, pool, none]}
        ... rules:
        ...   priority: [{id: need-points, points: "need"}]
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation:
        ...   matching:
        ...     resources: [{id: gym, capacity: 1}, {id: pool, capacity: 1}]
        ...     preferences: [first]
        ... ''')
        >>> result = match(policy, [{"id": "a", "need": 3, "first": "gym"},
        ...                         {"id": "b", "need": 7, "first": "gym"}])
        >>> result.assignment()
        {'b': ['gym']}
    """
    if isinstance(source, Evaluation):
        if residents is not None:
            raise ArgumentTypeError(
                "FA641",
                "residents are given with a policy, not with an evaluation",
                argument="residents",
            )
        evaluation = source
    elif isinstance(source, Policy | CompiledPolicy):
        doc = source.policy if isinstance(source, CompiledPolicy) else source
        _capacities(_matching_of(doc), capacities)  # fail before evaluating
        if not doc.ranking.tie_break or doc.ranking.tie_break[-1].lottery is None:
            raise AllocationError("FA659", AllocationReason.NO_LOTTERY, _NO_LOTTERY)
        if residents is None:
            raise ArgumentTypeError("FA642", "give the residents to match", argument="residents")
        evaluation = evaluate(source, residents)
    else:
        raise ArgumentTypeError(
            "FA640",
            f"cannot match from {type(source).__name__}: give an Evaluation or a policy",
            argument="source",
        )
    cp = evaluation.policy
    cp.refuse_if_audit_only("match")
    spec = _matching_of(cp.policy)
    seed = cp.lottery_seed
    if seed is None:
        raise AllocationError("FA659", AllocationReason.NO_LOTTERY, _NO_LOTTERY)
    population = evaluation.population
    if population is None:
        raise ArgumentError(
            "FA610",
            "the evaluation does not hold the residents' data (their choices): evaluate with"
            " fairalloc.evaluate",
            argument="source",
        )
    caps = _capacities(spec, capacities)
    prefs = _preference_lists(spec, population)
    base = _base_order(evaluation, seed)
    ranks = _priority_ranks(evaluation, spec, prefs, base)
    held, proposals = _deferred_acceptance(prefs, ranks, caps, spec.units_per_resident)
    return MatchingResult(
        evaluation,
        tuple(r.id for r in spec.resources),
        caps,
        spec.units_per_resident,
        prefs,
        ranks,
        held,
        proposals,
        seed,
    )


# -- inputs -----------------------------------------------------------------------------------


def _matching_of(doc: Policy) -> Matching:
    if doc.allocation is None or doc.allocation.matching is None:
        raise AllocationError(
            "FA650",
            AllocationReason.NO_SECTION,
            "the policy has no `allocation.matching` section (resources to match)",
        )
    return doc.allocation.matching


def _capacities(spec: Matching, override: Mapping[str, int] | None) -> tuple[int, ...]:
    caps = {r.id: r.capacity for r in spec.resources}
    for rid, units in (override or {}).items():
        if rid not in caps:
            raise ArgumentError(
                "FA609",
                f"capacities: no resource `{rid}`; resources: {', '.join(caps)}",
                argument="capacities",
                value=rid,
                valid=", ".join(caps),
            )
        if isinstance(units, bool) or not isinstance(units, numbers.Integral):
            raise ArgumentError(
                "FA601",
                f"capacities: `{rid}` needs a whole number of units, got {units!r}",
                argument=f"capacities[{rid}]",
                value=units,
            )
        if units < 0:
            raise ArgumentError(
                "FA601",
                f"capacities: `{rid}` needs at least 0 units, got {units}",
                argument=f"capacities[{rid}]",
                value=units,
            )
        caps[rid] = int(units)
    return tuple(caps.values())


def _preference_lists(spec: Matching, population: Population) -> npt.NDArray[np.int32]:
    """``[n, preferences]`` resource indices of each resident's list, first choice first.

    Repeats are skipped, the list stops at the first level that is not a resource, and unused
    places at the end hold -1.
    """
    index = {r.id: j for j, r in enumerate(spec.resources)}
    n, m = population.n, len(spec.preferences)
    lists = np.full((n, m), -1, dtype=np.int32)
    for j, name in enumerate(spec.preferences):
        levels = population.schema.attributes[name].levels or []
        lut = np.array([index.get(level, -1) for level in levels], dtype=np.int32)
        lists[:, j] = lut[population.columns[name].astype(np.intp)]
    listed = np.logical_and.accumulate(lists >= 0, axis=1)
    for j in range(1, m):
        repeat = (lists[:, :j] == lists[:, j : j + 1]).any(axis=1)
        listed[:, j] &= ~repeat
    # Move the kept entries to the front, in order (a stable sort of "not kept").
    order = np.argsort(~listed, axis=1, kind="stable")
    lists = np.take_along_axis(lists, order, axis=1)
    listed = np.take_along_axis(listed, order, axis=1)
    lists[~listed] = -1
    return lists


def _base_order(ev: Evaluation, seed: str) -> npt.NDArray[np.intp]:
    """Rows of the eligible residents by score, ranking position and the shared lottery.

    Raises:
        ValueError: if two residents tie on all of these (their lottery keys collide).
    """
    rows = np.flatnonzero(ev.eligible)
    score = -ev.score_micro[rows]
    position = ev.ranking.rank[rows]
    order = np.lexsort((position, score))
    same = _ties(order, score, position)
    if same.any():
        # The lottery is drawn for residents tied on everything before it.
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        draw = np.zeros(len(rows), dtype=np.uint64)
        draw[order[tied]] = lottery_keys(seed, ev.id_column[rows[order[tied]]])
        order = np.lexsort((draw, position, score))
        same = _ties(order, score, position, draw)
        if same.any():
            k = int(np.flatnonzero(same)[0])
            pair = ", ".join(str(ev.id_column[rows[order[i]]]) for i in (k, k + 1))
            raise AllocationError(
                "FA658",
                AllocationReason.UNDECIDED_TIE,
                f"residents {pair} tie on score, ranking and their lottery keys: the published"
                " lottery cannot order them; choose another seed",
                ids=(str(ev.id_column[rows[order[i]]]) for i in (k, k + 1)),
            )
    return rows[order]


def _ties(order: npt.NDArray[np.intp], *keys: np.ndarray) -> npt.NDArray[np.bool_]:
    same = np.ones(max(len(order) - 1, 0), dtype=bool)
    for k in keys:
        s = k[order]
        same &= s[1:] == s[:-1]
    return same


def _priority_ranks(
    ev: Evaluation, spec: Matching, lists: npt.NDArray[np.int32], base: npt.NDArray[np.intp]
) -> npt.NDArray[np.int64]:
    """``[n, preferences]`` each resident's priority rank at each listed resource (1 = first).

    0 where the resident does not take part or may not hold the resource.
    """
    n, m = lists.shape
    ranks = np.zeros((n, m), dtype=np.int64)
    flat_lists = lists.ravel()
    flat_ranks = ranks.ravel()
    entries = np.flatnonzero(flat_lists >= 0)
    by_resource = entries[np.argsort(flat_lists[entries], kind="stable")]
    bounds = np.searchsorted(flat_lists[by_resource], np.arange(len(spec.resources) + 1))
    eligible_for = ev.resource_eligible[base]
    rank_of = np.zeros(n, dtype=np.int64)
    for r, resource in enumerate(spec.resources):
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        if lo == hi:
            continue  # nobody listed it
        rows = base[eligible_for[:, r]]
        if resource.priority is not None:
            # Its own priority first (highest first); the base order within equal values.
            rows = rows[np.argsort(-ev.resource_priority[rows, r] + 0.0, kind="stable")]
        rank_of[:] = 0
        rank_of[rows] = np.arange(1, len(rows) + 1)
        mine = by_resource[lo:hi]
        flat_ranks[mine] = rank_of[mine // m]
    return ranks


# -- deferred acceptance ----------------------------------------------------------------------


def _deferred_acceptance(
    lists: npt.NDArray[np.int32],
    ranks: npt.NDArray[np.int64],
    capacities: tuple[int, ...],
    units: int,
) -> tuple[npt.NDArray[np.bool_], int]:
    """Run resident-proposing deferred acceptance.

    Returns ``held [n, preferences]`` and the number of proposals made. Each resource keeps a
    heap of its admitted applicants with the worst on top, as negated codes
    ``rank << shift | t`` (``t``: the applicant's index among those taking part).
    """
    n, m = lists.shape
    acceptable = ranks > 0
    takers = np.flatnonzero(acceptable.any(axis=1))
    held = np.zeros((n, m), dtype=bool)
    if len(takers) == 0:
        return held, 0
    shift = max(1, len(takers).bit_length())
    mask = (1 << shift) - 1
    ok = acceptable[takers]
    front = np.argsort(~ok, axis=1, kind="stable")
    lengths = ok.sum(axis=1).tolist()
    res = np.take_along_axis(lists[takers], front, axis=1).tolist()
    code_arr = (np.take_along_axis(ranks[takers], front, axis=1) << shift) | np.arange(
        len(takers), dtype=np.int64
    )[:, None]
    codes = code_arr.tolist()
    heaps: list[list[int]] = [[] for _ in capacities]
    caps = list(capacities)
    nxt = [0] * len(takers)
    count = [0] * len(takers)
    proposals = 0
    push, swap = heapq.heappush, heapq.heapreplace
    waiting = list(range(len(takers) - 1, -1, -1))  # popped from the end: first row first
    while waiting:
        t = waiting.pop()
        p, h, stop = nxt[t], count[t], lengths[t]
        mine, my_codes = res[t], codes[t]
        while h < units and p < stop:
            r = mine[p]
            c = my_codes[p]
            p += 1
            proposals += 1
            heap = heaps[r]
            if len(heap) < caps[r]:
                push(heap, -c)
                h += 1
            elif heap and -heap[0] > c:
                out = (-swap(heap, -c)) & mask
                h += 1
                count[out] -= 1
                waiting.append(out)
        nxt[t], count[t] = p, h
    # Who holds what, as positions in the residents' lists.
    pair_t: list[int] = []
    pair_r: list[int] = []
    for r, heap in enumerate(heaps):
        pair_t.extend((-c) & mask for c in heap)
        pair_r.extend([r] * len(heap))
    n_res = len(capacities)
    got = takers[np.asarray(pair_t, dtype=np.intp)] * n_res + np.asarray(pair_r, dtype=np.intp)
    listed = np.where(lists >= 0, np.arange(n, dtype=np.intp)[:, None] * n_res + lists, -1)
    held = np.isin(listed, got) & acceptable
    return held, proposals


# -- the result -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceCutoff:
    """A resource's outcome: units, demand and the lowest-priority resident it admitted.

    Attributes:
        resource: The resource id.
        capacity: Units of the resource.
        used: Units given.
        demand: Residents taking part who listed it and may hold it.
        last_rank: The priority rank at this resource of the last admitted (the
            lowest-priority resident holding it); None if nobody holds it.
        last_id: That resident's id.
    """

    resource: str
    capacity: int
    used: int
    demand: int
    last_rank: int | None
    last_id: str | None

    @property
    def left(self) -> int:
        """Units not given."""
        return self.capacity - self.used

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "resource": self.resource,
            "capacity": self.capacity,
            "used": self.used,
            "left": self.left,
            "demand": self.demand,
            "last_rank": self.last_rank,
            "last_id": self.last_id,
        }


class MatchingResult(Explainable):
    """What each resident holds after deferred acceptance, and each resource's cut-off.

    Arrays have one row per resident, in the population's order; exports sort residents by id,
    so the same residents give byte-identical output whatever order they came in.

    Attributes:
        evaluation: The evaluation matched from.
        resources: Resource ids, in the policy's order.
        capacities: Units of each resource (after any ``capacities`` given to :func:`match`).
        units_per_resident: The most resources one resident may hold.
        preferences: ``[n, p]`` each resident's list as resource indices, first choice first
            (-1 after its end).
        priority_rank: ``[n, p]`` the resident's priority rank at each listed resource
            (1 = first); 0 where it does not take part or may not hold that resource.
        held: ``[n, p]`` whether the resident holds each listed resource.
        units: ``[n]`` resources held.
        served: ``[n]`` whether the resident holds at least one resource.
        proposals: Proposals made during deferred acceptance.
        lottery_seed: The published seed of the shared lottery.
    """

    def __init__(
        self,
        evaluation: Evaluation,
        resources: tuple[str, ...],
        capacities: tuple[int, ...],
        units_per_resident: int,
        preferences: npt.NDArray[np.int32],
        priority_rank: npt.NDArray[np.int64],
        held: npt.NDArray[np.bool_],
        proposals: int,
        lottery_seed: str,
    ) -> None:
        self.evaluation = evaluation
        self.resources = resources
        self.capacities = capacities
        self.units_per_resident = units_per_resident
        self.preferences = preferences
        self.priority_rank = priority_rank
        self.held = held
        self.units = held.sum(axis=1)
        self.served = self.units > 0
        self.proposals = proposals
        self.lottery_seed = lottery_seed
        m = held.shape[1]
        flat = np.flatnonzero(held.ravel())
        res = preferences.ravel()[flat]
        rank = priority_rank.ravel()[flat]
        order = np.lexsort((rank, res))
        self._holder_rows = flat[order] // max(m, 1)
        self._holder_ranks = rank[order]
        self._bounds = np.searchsorted(res[order], np.arange(len(resources) + 1))
        acceptable = priority_rank > 0
        self._demand = np.bincount(preferences[acceptable], minlength=len(resources))

    # -- summaries ---------------------------------------------------------------------
    @property
    def n_served(self) -> int:
        """Number of residents holding at least one resource."""
        return int(self.served.sum())

    def _index(self, resource: str) -> int:
        try:
            return self.resources.index(resource)
        except ValueError:
            raise KeyError(
                f"no resource {resource!r}; resources: {', '.join(self.resources)}"
            ) from None

    def holders(self, resource: str) -> list[str]:
        """Ids of the residents holding ``resource``, by their priority there (first first).

        Raises:
            KeyError: if there is no such resource.
        """
        r = self._index(resource)
        rows = self._holder_rows[self._bounds[r] : self._bounds[r + 1]]
        return [str(i) for i in self.evaluation.id_column[rows]]

    def used(self) -> list[int]:
        """Units given of each resource."""
        return [int(b) for b in np.diff(self._bounds)]

    def cutoffs(self) -> list[ResourceCutoff]:
        """Each resource's capacity, use, demand and lowest-priority admitted resident."""
        out = []
        for r, rid in enumerate(self.resources):
            lo, hi = int(self._bounds[r]), int(self._bounds[r + 1])
            last = hi - 1
            out.append(
                ResourceCutoff(
                    rid,
                    self.capacities[r],
                    hi - lo,
                    int(self._demand[r]),
                    int(self._holder_ranks[last]) if hi > lo else None,
                    str(self.evaluation.id_column[self._holder_rows[last]]) if hi > lo else None,
                )
            )
        return out

    def assignment(self) -> dict[str, list[str]]:
        """The resources each served resident holds (preference order), by id (sorted)."""
        return {
            str(self.evaluation.id_column[r]): self._held_ids(int(r))
            for r in self.evaluation.canonical_order()
            if self.served[r]
        }

    def _held_ids(self, row: int) -> list[str]:
        return [
            self.resources[int(self.preferences[row, j])] for j in np.flatnonzero(self.held[row])
        ]

    # -- conversions -------------------------------------------------------------------
    def record(self, row: int) -> dict[str, Any]:
        """The outcome of the resident at ``row``, as plain values.

        Keys: ``id``, ``eligible``, ``score``, ``preferences`` (its list of resource ids),
        ``priority_ranks`` (its rank at each listed resource; None where it may not hold it or
        does not take part), ``resources`` (held, in preference order), ``choices`` (their
        choice numbers, 1 = first choice) and ``served``.
        """
        return self._records(np.array([row], dtype=np.intp))[0]

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per resident (see :meth:`record`), sorted by id."""
        return self._records(self.evaluation.canonical_order())

    def _records(self, rows: npt.NDArray[np.intp]) -> list[dict[str, Any]]:
        ev = self.evaluation
        names = self.resources
        out = []
        for rid, eligible, score, prefs, ranks, held in zip(
            ev.id_column[rows].tolist(),
            ev.eligible[rows].tolist(),
            ev.score_micro[rows].tolist(),
            self.preferences[rows].tolist(),
            self.priority_rank[rows].tolist(),
            self.held[rows].tolist(),
            strict=True,
        ):
            listed = [names[r] for r in prefs if r >= 0]
            choices = [j + 1 for j, h in enumerate(held) if h]
            out.append(
                {
                    "id": str(rid),
                    "eligible": eligible,
                    "score": score / MICRO,
                    "preferences": listed,
                    "priority_ranks": {
                        name: (k or None) for name, k in zip(listed, ranks, strict=False)
                    },
                    "resources": [listed[c - 1] for c in choices],
                    "choices": choices,
                    "served": bool(choices),
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """The matching's figures: policy, seed, residents served and each resource's cut-off."""
        cp = self.evaluation.policy
        meta = cp.policy.policy
        return {
            "policy": {"id": meta.id, "version": meta.version},
            "as_of": cp.as_of.isoformat() if cp.as_of else None,
            "mechanism": "deferred-acceptance",
            "lottery_seed": self.lottery_seed,
            "units_per_resident": self.units_per_resident,
            "eligible": int(self.evaluation.eligible.sum()),
            "served": self.n_served,
            "proposals": self.proposals,
            "resources": [c.to_dict() for c in self.cutoffs()],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The summary and every resident's outcome (sorted by id), as JSON."""
        doc = self.summary()
        doc["residents"] = self.to_dicts()
        return json.dumps(doc, ensure_ascii=False, indent=indent)

    def to_pandas(self) -> pd.DataFrame:
        """One row per resident (indexed by id, population order) with its outcome.

        Columns: ``eligible``, ``served``, ``units``, ``choice`` (the best choice number
        obtained; missing if none), ``resources`` (tuple of ids held, preference order), and one
        boolean column ``holds.<resource>`` per resource.
        """
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        ev = self.evaluation
        n = self.held.shape[0]
        holds = np.zeros((n, len(self.resources)), dtype=bool)
        rows, cols = np.nonzero(self.held)
        holds[rows, self.preferences[rows, cols]] = True
        best = self.held.argmax(axis=1).astype(np.int64) + 1 if self.held.size else np.zeros(n)
        cols_out: dict[str, Any] = {
            "eligible": ev.eligible,
            "served": self.served,
            "units": self.units.astype(np.int64),
            "choice": pd.arrays.IntegerArray(
                np.asarray(best, dtype=np.int64), np.asarray(~self.served, dtype=bool)
            ),
            "resources": [tuple(self._held_ids(r)) for r in range(n)],
        }
        for j, rid in enumerate(self.resources):
            cols_out[f"holds.{rid}"] = holds[:, j]
        df = pd.DataFrame(cols_out, index=pd.Index(ev.ids.astype(str), name="id"))
        return df

    def __repr__(self) -> str:
        return (
            f"<MatchingResult: {len(self.resources)} resources, {sum(self.used())} of"
            f" {sum(self.capacities)} units given; {self.n_served} served of"
            f" {int(self.evaluation.eligible.sum())} eligible>"
        )

    def _repr_html_(self) -> str:
        heads = ("resource", "units", "given", "left", "demand", "cut-off rank", "last admitted")
        rows = (
            (
                c.resource,
                c.capacity,
                c.used,
                c.left,
                c.demand,
                "—" if c.last_rank is None else c.last_rank,
                c.last_id or "—",
            )
            for c in self.cutoffs()
        )
        return f"<p>{html_text(repr(self))}</p>" + html_table(heads, rows)
