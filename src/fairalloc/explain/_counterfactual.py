"""Counterfactuals: the smallest change of a changeable attribute that changes an outcome.

Only attributes the policy marks ``changeable`` (time on a waiting list, an assessment item)
are varied, never a protected one, and one at a time. For each, the candidate values are
evaluated by the engine itself (one small evaluation: the resident repeated with each value),
so that points, eligibility, tie-break values and allocation inputs come from the one
semantics. Everybody else keeps their data and their place.

Whether a candidate is served follows from the mechanism with one resident added to the
others' allocation (the "world without the resident", allocated once):

* in ``precedence`` reserve mode, categories take residents in turn; a resident added to the
  others is served in the first category (in processing order) it is eligible for and either
  finds a free unit in or precedes that category's last served resident in the category's
  order; categories before it are unchanged, since it displaced nobody there. When the resident
  would tie with a category's last served resident on every key, the mechanism is re-run;
* in ``max_beneficiaries`` mode, reserved units go greedily in base order along a transversal
  matroid: a resident placed at p gets one if and only if it can join the residents the others'
  allocation matched before p, and otherwise is served if fewer residents without a reserved
  unit come before it than there are open units. Being served only improves with a better
  place, so for each pattern of reserve eligibility the last place still served is found by
  bisection.

Every reported counterfactual is then re-run through the mechanism on the whole population with
the resident's changed data, including the refusal to decide a tie at a cut-off that a ranking
without a lottery may meet, and reported only if the outcome holds (``verified``). Without an
allocation, a rank is verified by counting, over everybody else, who ranks before the changed
resident.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

import fairalloc._engine as _engine
from fairalloc._population import Population
from fairalloc._ranking import _sort_keys, lottery_key
from fairalloc.allocation._capacity import (
    _augment,
    _refuse_ties_at_cutoffs,
    assign_categories,
    category_sizes,
)
from fairalloc.allocation._lottery import draw_key
from fairalloc.errors import AllocationError, ArgumentError, EvaluationError
from fairalloc.explain._facts import Counterfactual, Value

if TYPE_CHECKING:
    from fairalloc._evaluation import Evaluation
    from fairalloc.allocation import Allocation
    from fairalloc.allocation._state import RotationState
    from fairalloc.policy._model import Attribute

__all__ = ["DEFAULT_MAX_CANDIDATES", "changeable_attributes", "search", "written_value"]

#: The most values tried per attribute and direction (numbers with a wider range are sampled:
#: every value near the resident's, then wider and wider steps, and the gap before the first
#: value that changes the outcome is searched value by value).
DEFAULT_MAX_CANDIDATES = 4096

#: Steps of the grid tried for decimal attributes, before the boundary is narrowed down.
FLOAT_STEPS = 1024

Key = tuple[Any, ...]
Notes = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class _Candidate:
    attribute: str
    code: Any  # encoded value
    value: Value  # as people write it
    delta: float | None
    distance: float  # for ordering: in units of the attribute's range


def changeable_attributes(ev: Evaluation) -> list[str]:
    """The attributes a counterfactual may vary: changeable, not protected, read by a part."""
    cp = ev.policy
    doc = cp.policy
    return [
        name
        for name, attr in doc.attributes.items()
        if attr.changeable
        and not attr.protected
        and attr.role != "id"
        and attr.type != "str"
        and cp.readers_of(name)
    ]


def search(
    ev: Evaluation,
    row: int,
    allocation: Allocation | None,
    *,
    target_rank: int | None = None,
    attributes: Sequence[str] | None = None,
    limit: int = 5,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> tuple[str | None, list[Counterfactual], Notes]:
    """The smallest changes of changeable attributes that change ``row``'s outcome.

    Args:
        ev: The evaluation (holding its population).
        row: The resident's row.
        allocation: The allocation, whose served status is the outcome; without one the outcome
            is eligibility, or being ranked within ``target_rank``.
        target_rank: Without an allocation: the rank to reach (or to fall beyond).
        attributes: The attributes to vary (default: every changeable one); only changeable,
            unprotected attributes are accepted.
        limit: The most counterfactuals returned (nearest first; one per attribute and
            direction).
        max_candidates: The most values tried per attribute and direction before sampling.

    Returns:
        The target (``served``, ``not_served``, ``eligible``, ``ineligible``, ``rank <= N``,
        ``rank > N``), the counterfactuals, and notes (message code, parameters).

    Raises:
        ValueError: for an unknown, protected or unchangeable attribute, or ``target_rank``
            with an allocation.
    """
    pop = ev.population
    notes: Notes = []
    if allocation is not None and target_rank is not None:
        raise ArgumentError(
            "FA617",
            "target_rank applies to a ranking alone; with an allocation the outcome is being"
            " served",
            argument="target_rank",
            value=target_rank,
        )
    if pop is None:  # pragma: no cover - evaluations made by the engine hold their population
        raise ArgumentError("FA610", "this evaluation does not hold its residents")
    doc = ev.policy.policy
    allowed = changeable_attributes(ev)
    names = allowed if attributes is None else list(attributes)
    for name in names:
        attr = doc.attributes.get(name)
        if attr is None or name == doc.id_attribute:
            raise ArgumentError(
                "FA602",
                f"no attribute `{name}` to vary; attributes: {', '.join(doc.attributes)}",
                argument="attributes",
                value=name,
                valid=", ".join(doc.attributes),
            )
        if attr.protected:
            raise ArgumentError(
                "FA604",
                f"`{name}` is protected: counterfactuals never suggest changing a protected"
                " attribute",
                argument="attributes",
                value=name,
            )
        if name not in allowed:
            raise ArgumentError(
                "FA604",
                f"`{name}` is not marked `changeable: true` in the policy (or nothing reads"
                f" it); attributes that may vary: {', '.join(allowed) or 'none'}",
                argument="attributes",
                value=name,
                valid=", ".join(allowed),
            )
    if not names:
        notes.append(("cf_none_given" if attributes is not None else "cf_none_changeable", {}))
        return None, [], notes
    world = _World(ev, row, allocation, target_rank)
    found: list[tuple[_Candidate, Counterfactual]] = []
    sampled = False
    for name in names:
        attr = doc.attributes[name]
        for direction in (-1, 1):
            cands, was_sampled = _candidates(pop, row, name, attr, direction, max_candidates)
            sampled |= was_sampled
            hit = world.first_change(cands, attr, max_candidates)
            if hit is not None:
                found.append(hit)
    found.sort(key=lambda h: (h[0].distance, h[0].attribute, str(h[0].value)))
    out = [cf for _, cf in found[:limit]]
    if not out:
        code = "cf_none_found_sampled" if sampled else "cf_none_found"
        notes.append((code, {"attributes": names}))
    return world.target, out, notes


class _World:
    """Everybody but the resident, prepared to place one changed copy of the resident."""

    def __init__(
        self, ev: Evaluation, row: int, allocation: Allocation | None, target_rank: int | None
    ) -> None:
        self.ev = ev
        self.row = row
        self.alloc = allocation
        cp = ev.policy
        self.seed = cp.lottery_seed
        self.rid = str(ev.id_column[row])
        ranking = ev.ranking
        self.order = ranking.order
        self.pos = int(np.flatnonzero(self.order == row)[0]) if ev.eligible[row] else -1
        self.target_rank = target_rank
        self.target: str
        self.before: str
        self._all: list[np.ndarray] | None = None
        if allocation is not None:
            served = bool(allocation.served[row])
            self.before = "served" if served else ("waiting" if ev.eligible[row] else "ineligible")
            self.target = "not_served" if served else "served"
            self._prepare_allocation(allocation)
        elif target_rank is not None:
            rank = int(ranking.rank[row])
            within = 0 < rank <= target_rank
            self.before = "within" if within else ("beyond" if rank else "ineligible")
            self.target = f"rank > {target_rank}" if within else f"rank <= {target_rank}"
        else:
            self.before = "eligible" if ev.eligible[row] else "ineligible"
            self.target = "ineligible" if ev.eligible[row] else "eligible"

    # -- the ranking's keys -------------------------------------------------------------------
    def rank_key(self, e: Evaluation, r: int) -> Key:
        """The ranking's sort key of row ``r`` of ``e`` (lower sorts first; equal: tied)."""
        keys = tuple(k[0].item() for k in _sort_keys(e, np.array([r], dtype=np.intp)))
        if self.seed is not None:
            keys = (*keys, lottery_key(self.seed, str(e.ids[r])))
        return keys

    def order_key(self, e: Evaluation, r: int) -> Key:
        """:meth:`rank_key` then the id: the ranking's listing order, ties included."""
        return (*self.rank_key(e, r), str(e.ids[r]))

    def new_rank(self, evc: Evaluation, k: int) -> int:
        """The rank the changed resident would have among everybody else (by bisection)."""
        key = self.rank_key(evc, k)
        order = self.order
        before = bisect.bisect_left(
            range(len(order)), key, key=lambda p: self.rank_key(self.ev, int(order[p]))
        )
        if 0 <= self.pos < before:
            before -= 1  # the resident's own original entry
        return 1 + before

    def counted_rank(self, evc: Evaluation, k: int) -> int:
        """The same rank counted over everybody else at once (an independent check)."""
        ev = self.ev
        idx = np.flatnonzero(ev.eligible)
        idx = idx[idx != self.row]
        if self._all is None:
            self._all = _sort_keys(ev, idx)
        mine = [c[0] for c in _sort_keys(evc, np.array([k], dtype=np.intp))]
        less = np.zeros(len(idx), dtype=bool)
        equal = np.ones(len(idx), dtype=bool)
        for column, v in zip(self._all, mine, strict=True):
            less |= equal & (column < v)
            equal &= column == v
        before = int(less.sum())
        if self.seed is not None and equal.any():
            own = lottery_key(self.seed, self.rid)
            before += sum(
                lottery_key(self.seed, str(i)) < own for i in ev.id_column[idx[equal]].tolist()
            )
        return 1 + before

    # -- the mechanism ------------------------------------------------------------------------
    def _prepare_allocation(self, alloc: Allocation) -> None:
        ev = self.ev
        spec = ev.policy.policy.allocation
        assert spec is not None
        self.spec = spec
        self.cats = category_sizes(spec, alloc.capacity)
        self.refuses_ties = spec.mechanism == "priority" and self.seed is None
        # The base order of everybody else, and the others' allocation without the resident.
        self.base = alloc.order[alloc.order != self.row]
        self.base_pos = np.full(ev.n, -1, dtype=np.int64)
        self.base_pos[self.base] = np.arange(len(self.base))
        self.category_wo, _, _ = assign_categories(ev, spec, self.cats, self.base)
        self.by_threshold = spec.reserve_mode == "max_beneficiaries" and bool(spec.reserves)
        self._thresholds: dict[bytes, int] = {}
        if self.by_threshold:
            self._prepare_thresholds()
        else:
            self._marginals()

    def base_key(self, e: Evaluation, r: int) -> Key:
        """Row ``r`` of ``e``'s key in the mechanism's base order (lower first)."""
        if self.spec.mechanism == "priority":
            return self.order_key(e, r)
        assert self.spec.lottery is not None
        weight = float(e.lottery_weight[r]) if self.spec.lottery.weight is not None else None
        return draw_key(self.spec.lottery.seed, str(e.ids[r]), weight)

    def _insert_at(self, key: Key) -> int:
        base = self.base
        return bisect.bisect_left(
            range(len(base)), key, key=lambda p: self.base_key(self.ev, int(base[p]))
        )

    def _marginals(self) -> None:
        """Per category, in processing order: free units, and the last served's key."""
        spec = self.spec
        cats = self.cats
        category = self.category_wo
        in_base = category[self.base]
        self.steps: list[tuple[int, int, Key | None]] = []  # (category, free, marginal key)
        for cid in spec.precedence or cats.ids:
            c = cats.ids.index(cid)
            rows = self.base[in_base == c]
            if c == cats.open:
                # Open-phase rows come first in the base order; reverted units follow.
                rows = rows[: cats.sizes[c]]
            self.steps.append((c, cats.sizes[c] - len(rows), self._last_in_own_order(c, rows)))
        if spec.unused_reserved == "open":
            spare = sum(cats.sizes[c] - int((in_base == c).sum()) for c in range(cats.open))
            revert_rows = self.base[in_base == cats.open][cats.sizes[cats.open] :]
            last = self._last_in_own_order(cats.open, revert_rows)
            # -1 marks the step that gives unused reserved units to the open category.
            self.steps.append((-1, spare - len(revert_rows), last))

    def _own_key(self, c: int, prio: float, base: Key) -> Key:
        reserve = self.spec.reserves[c] if 0 <= c < self.cats.open else None
        if reserve is not None and reserve.priority is not None:
            return (-prio, *base)
        return base

    def _last_in_own_order(self, c: int, rows: npt.NDArray[np.intp]) -> Key | None:
        if not len(rows):
            return None
        ev = self.ev
        is_reserve = 0 <= c < self.cats.open
        if is_reserve and self.spec.reserves[c].priority is not None:
            prio = ev.reserve_priority[rows, c]
            last = int(rows[np.lexsort((self.base_pos[rows], -prio))[-1]])
        else:
            last = int(rows[np.argmax(self.base_pos[rows])])
        p = float(ev.reserve_priority[last, c]) if is_reserve else 0.0
        return self._own_key(c, p, self.base_key(ev, last))

    def _predict(self, evc: Evaluation, k: int) -> bool | None:
        """Served, from the others' cut-offs; None when a tie needs the mechanism re-run."""
        base = self.base_key(evc, k)
        tie = self.refuses_ties
        for c, free, last in self.steps:
            is_reserve = 0 <= c < self.cats.open
            if is_reserve and not evc.reserve_eligible[k, c]:
                continue
            if free > 0:
                return True
            if last is None:
                continue
            cc = c if c >= 0 else self.cats.open
            prio = float(evc.reserve_priority[k, cc]) if is_reserve else 0.0
            mine = self._own_key(cc, prio, base)
            # Without a lottery, equal keys (the id aside) are a tie the mechanism may refuse
            # to decide: leave it to a re-run.
            if tie and mine[:-1] == last[:-1]:
                return None
            if mine < last:
                return True
        return False

    def _decide(self, evc: Evaluation, k: int, at: int) -> bool | None:
        """Re-run the mechanism with the changed resident at place ``at`` of the base order.

        Returns whether it is served, or None if the mechanism refuses to decide a tie.
        """
        order = np.insert(self.base, at, self.row)
        patched = _Patched(self.ev, self.row, evc, k)
        view = cast("Evaluation", patched)
        category, _, _ = assign_categories(view, self.spec, self.cats, order)
        if self.refuses_ties:
            rank = self.ev.ranking.rank.copy()
            rank[self.row] = -1  # tied with nobody, unless its key equals a neighbour's
            key = self.rank_key(evc, k)
            for p in (at, at - 1):
                if 0 <= p < len(self.base) and self.rank_key(self.ev, int(self.base[p])) == key:
                    rank[self.row] = rank[self.base[p]]
            patched.ranking = SimpleNamespace(rank=rank)
            try:
                _refuse_ties_at_cutoffs(view, self.spec, self.cats, order, category)
            except AllocationError:
                return None
        return bool(category[self.row] >= 0)

    def _prepare_thresholds(self) -> None:
        """The others' reserve matching, in base order, and the open units' last place."""
        cats = self.cats
        reserves = cats.open
        cat = self.category_wo[self.base]
        matched = (cat >= 0) & (cat < reserves)
        self.matched_pos = np.flatnonzero(matched)
        self.matched_rows = self.base[matched]
        spare = sum(cats.sizes[:reserves]) - len(self.matched_rows)
        open_units = cats.sizes[reserves] + (spare if self.spec.unused_reserved == "open" else 0)
        places = np.arange(len(self.base) + 1)
        # Residents before place p who hold no reserved unit: open units go to them first.
        unreserved_before = places - np.searchsorted(self.matched_pos, places)
        self.open_last = int(np.searchsorted(unreserved_before, open_units, side="left")) - 1

    def _reserve_at(self, p: int, eligible: npt.NDArray[np.bool_]) -> bool:
        """Whether the resident, placed at ``p``, gets a reserved unit.

        Reserved units go greedily in base order along a transversal matroid: a resident gets
        one if and only if it can join the residents matched before it, whatever units they
        hold; residents not matched there were independent of the resident's arrival.
        """
        reserves = self.cats.open
        sizes = list(self.cats.sizes[:reserves])
        holders: list[list[int]] = [[] for _ in range(reserves)]
        elig = self.ev.reserve_eligible
        before = self.matched_rows[: int(np.searchsorted(self.matched_pos, p))]
        for r in before.tolist():
            _augment(r, [c for c in range(reserves) if elig[r, c]], holders, sizes, elig)
        mine = [c for c in range(reserves) if eligible[c]]
        return bool(mine) and _augment(self.row, mine, holders, sizes, elig)

    def _threshold(self, evc: Evaluation, k: int) -> int:
        """The last place in the base order at which this reserve eligibility is served.

        Returns -1 if it is served nowhere; being served only improves with a better place.
        """
        pattern = evc.reserve_eligible[k].tobytes()
        cached = self._thresholds.get(pattern)
        if cached is not None:
            return cached
        eligible = evc.reserve_eligible[k].copy()
        last = self.open_last
        lo, hi = last + 1, len(self.base)  # is some place after the open units' last served?
        if lo <= hi and self._reserve_at(lo, eligible):
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._reserve_at(mid, eligible):
                    lo = mid
                else:
                    hi = mid - 1
            last = lo
        self._thresholds[pattern] = last
        return last

    def served(self, evc: Evaluation, k: int, *, exact: bool = False) -> bool | None:
        """Whether the changed resident (row ``k`` of ``evc``) would be served.

        Returns None when the mechanism would refuse to decide a tie.
        """
        if not evc.eligible[k]:
            return False
        at = -1
        if exact or self.by_threshold:
            at = self._insert_at(self.base_key(evc, k))
        if exact:
            return self._decide(evc, k, at)
        if self.by_threshold:
            served = at <= self._threshold(evc, k)
            # Places beyond bisection's reach (a tie refused) are settled by a re-run.
            return self._decide(evc, k, at) if self.refuses_ties else served
        predicted = self._predict(evc, k)
        if predicted is None:
            return self._decide(evc, k, self._insert_at(self.base_key(evc, k)))
        return predicted

    # -- outcomes -----------------------------------------------------------------------------
    def outcome(self, evc: Evaluation, k: int, *, exact: bool = False) -> str | None:
        """The changed resident's outcome, in the vocabulary of :attr:`before`."""
        if not evc.eligible[k]:
            return "ineligible"
        if self.alloc is not None:
            served = self.served(evc, k, exact=exact)
            if served is None:
                return None
            return "served" if served else "waiting"
        if self.target_rank is not None:
            rank = self.counted_rank(evc, k) if exact else self.new_rank(evc, k)
            return "within" if rank <= self.target_rank else "beyond"
        return "eligible"

    def changed(self, after: str | None) -> bool:
        """Whether ``after`` is the outcome the target asks for."""
        if after is None:
            return False
        if self.alloc is not None:
            return (after == "served") != (self.before == "served")
        if self.target_rank is not None:
            return (after == "within") != (self.before == "within")
        return after != self.before

    def first_change(
        self, cands: list[_Candidate], attr: Attribute, limit: int
    ) -> tuple[_Candidate, Counterfactual] | None:
        """The nearest candidate whose outcome differs (verified by an exact re-run)."""
        if not cands:
            return None
        got = self._evaluate(cands)
        if got is None:
            return None
        evc, kept = got
        # Candidates with the same trace give the same outcome: decide each distinct one once.
        seen: dict[bytes, str | None] = {}
        signature = _signatures(evc)
        previous: _Candidate | None = None
        for k, i in enumerate(kept):
            cand = cands[i]
            sig = signature[k]
            if sig not in seen:
                seen[sig] = self.outcome(evc, k)
            if not self.changed(seen[sig]):
                previous = cand
                continue
            # Values skipped between the last one tried and this one may change it sooner.
            nearer = self._between(previous, cand, attr, limit)
            if nearer is not None:
                return nearer
            hit = self._counterfactual(evc, k, cand)
            if hit is not None:
                return hit
            previous = cand
        return None

    def _between(
        self, previous: _Candidate | None, cand: _Candidate, attr: Attribute, limit: int
    ) -> tuple[_Candidate, Counterfactual] | None:
        if attr.values is not None:
            return None  # only the allowed values are candidates, and all of them were tried
        pop = self.ev.population
        assert pop is not None
        column = pop.columns[cand.attribute]
        here = float(column[self.row])
        lo, hi = _bounds(attr, column)
        span = hi - lo
        start = here if previous is None else float(previous.code)
        end = float(cand.code)
        if attr.type in ("int", "date"):
            between = _whole_between(start, end)
            gap = [_candidate(attr, cand.attribute, here, v, span) for v in between]
            if not gap:
                return None
            if len(gap) > limit:
                step = len(gap) / limit
                picked = sorted({min(len(gap) - 1, math.floor(j * step)) for j in range(limit)})
                picked = sorted(set(picked) | {len(gap) - 1})
                sampled = [gap[j] for j in picked]
                return self.first_change(sampled, attr, limit)  # refines its own gaps
            return self.first_change(gap, attr, limit)
        if attr.type == "float":
            return self._narrow(start, end, attr, cand.attribute, here, span)
        return None

    def _narrow(
        self, start: float, end: float, attr: Attribute, name: str, here: float, span: float
    ) -> tuple[_Candidate, Counterfactual] | None:
        """Bisect between a decimal value that keeps the outcome and one that changes it."""
        keep, change = start, end
        for _ in range(48):
            mid = (keep + change) / 2
            if mid in (keep, change):
                break
            got = self._evaluate([_candidate(attr, name, here, mid, span)])
            if got is None:
                break
            if self.changed(self.outcome(got[0], 0)):
                change = mid
            else:
                keep = mid
        # The shortest decimal past the boundary that still changes the outcome.
        side = 1.0 if change > keep else -1.0
        tried: list[float] = []
        for digits in range(7):
            v = round(change, digits)
            if (v - keep) * side > 0 and (change - v) * side >= 0 and v not in tried:
                tried.append(v)
        tried.append(change)
        for v in tried:
            cand = _candidate(attr, name, here, v, span)
            got = self._evaluate([cand])
            if got is not None and self.changed(self.outcome(got[0], 0)):
                hit = self._counterfactual(got[0], 0, cand)
                if hit is not None:
                    return hit
        return None

    def _counterfactual(
        self, evc: Evaluation, k: int, cand: _Candidate
    ) -> tuple[_Candidate, Counterfactual] | None:
        after = self.outcome(evc, k, exact=True)  # the re-run that verifies it
        if not self.changed(after):
            return None
        assert after is not None
        rank = self.counted_rank(evc, k) if evc.eligible[k] else None
        attr = self.ev.policy.policy.attributes[cand.attribute]
        pop = self.ev.population
        assert pop is not None
        return cand, Counterfactual(
            attribute=cand.attribute,
            title=attr.title,
            unit=attr.unit,
            before=written_value(attr, pop.columns[cand.attribute][self.row]),
            after=cand.value,
            delta=cand.delta,
            outcome_before=self.before,
            outcome_after=after,
            rank_after=rank,
            score_after_micro=int(evc.score_micro[k]),
            verified=True,
        )

    def _evaluate(self, cands: list[_Candidate]) -> tuple[Evaluation, list[int]] | None:
        """The engine's evaluation of the candidates that can be evaluated, and their indexes."""
        pop = self.ev.population
        assert pop is not None
        name = cands[0].attribute
        cp = self.ev.policy
        try:
            small = _repeat(pop, self.row, name, [c.code for c in cands])
            return _engine.evaluate_compiled(cp, small), list(range(len(cands)))
        except EvaluationError:
            # Some values make a rule undefined: leave those out, one by one.
            kept = []
            for i, c in enumerate(cands):
                try:
                    _engine.evaluate_compiled(cp, _repeat(pop, self.row, name, [c.code]))
                    kept.append(i)
                except EvaluationError:
                    continue
            if not kept:
                return None
            small = _repeat(pop, self.row, name, [cands[i].code for i in kept])
            return _engine.evaluate_compiled(cp, small), kept


class _Rerun:
    """The what-if of the mechanisms that decide the whole pool at once: rotation, matching.

    "The same pool with one resident changed" is answered by running the mechanism again on
    everybody, only that resident's attribute changed (a rotation round from the same state,
    deferred acceptance over the same resources): exact and pool-aware, at the cost of one run
    of the mechanism per question. The audit asks it only for residents whose evaluation the
    change touches, and only up to its ``what_if_limit``.

    Args:
        ev: The evaluation of the pool as it is (it must hold its residents).
        capacity: Residents served by a rotation round (the policy's by default); not used by
            matching, whose resources carry their own capacities.
        state: Where a rotation stands (``None``: its first round).
    """

    def __init__(
        self, ev: Evaluation, *, capacity: int | None = None, state: RotationState | None = None
    ) -> None:
        spec = ev.policy.policy.allocation
        whole = spec is not None and (spec.rotation is not None or spec.matching is not None)
        if ev.population is None or spec is None or not whole:
            raise ArgumentError(
                "FA610",
                "a re-run what-if needs a rotation or matching policy and the residents",
                argument="ev",
            )
        self.ev = ev
        self.population: Population = ev.population
        self.spec = spec
        self.capacity = capacity
        self.state = state
        self.ids = [str(i) for i in self.population.ids.tolist()]
        self.served = self._served(self.population)

    def reads(self, name: str) -> bool:
        """Whether the mechanism itself (not the evaluation) reads attribute ``name``.

        A rotation accrues some attributes round by round, and matching reads residents'
        preferences: a change of those may change the outcome with no change to the
        evaluation, so every resident must be re-run for them.
        """
        if self.spec.rotation is not None:
            return name in self.spec.rotation.accrue
        assert self.spec.matching is not None
        return name in self.spec.matching.preferences

    def _served(self, population: Population) -> npt.NDArray[np.bool_]:
        if self.spec.rotation is not None:
            from fairalloc.allocation._rotation import run_round

            done = run_round(self.ev.policy, population, self.state, capacity=self.capacity)
            who = set(done.served)
        else:
            from fairalloc.allocation._matching import match

            who = set(match(self.ev.policy, population).assignment())
        return np.array([i in who for i in self.ids], dtype=bool)

    def served_if(self, row: int, name: str, code: Any) -> bool:
        """Whether resident ``row`` is served with ``name`` set to ``code``, all else unchanged."""
        column = self.population.columns[name].copy()
        column[row] = code
        return bool(self._served(self.population.replace(name, column))[row])


class _Patched:
    """An evaluation's allocation inputs with one resident's row replaced (for re-running)."""

    def __init__(self, ev: Evaluation, row: int, evc: Evaluation, k: int) -> None:
        self.n = ev.n
        self.policy = ev.policy
        self.id_column = ev.id_column
        self.eligible = ev.eligible.copy()
        self.eligible[row] = evc.eligible[k]
        self.reserve_eligible = ev.reserve_eligible.copy()
        self.reserve_eligible[row] = evc.reserve_eligible[k]
        self.reserve_priority = ev.reserve_priority.copy()
        self.reserve_priority[row] = evc.reserve_priority[k]
        self.ranking: Any = None

    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """The evaluation's ids (``str``), one per row."""
        return self.id_column.objects


def _signatures(evc: Evaluation) -> list[bytes]:
    """One byte string per row: everything the ranking and the mechanism read."""
    parts = [
        evc.eligible[:, None].astype(np.int64),
        evc.score_micro[:, None],
        evc.terms,
        np.ascontiguousarray(evc.tie_values).view(np.int64),
        evc.reserve_eligible.astype(np.int64),
        np.ascontiguousarray(evc.reserve_priority).view(np.int64),
        np.ascontiguousarray(evc.lottery_weight[:, None]).view(np.int64),
    ]
    blob = np.ascontiguousarray(np.concatenate(parts, axis=1))
    return [bytes(r) for r in blob]


def _repeat(pop: Population, row: int, name: str, codes: list[Any]) -> Population:
    """The resident at ``row`` once per code, with ``name`` set to each code."""
    k = len(codes)
    cols = {c: np.repeat(v[row : row + 1], k) for c, v in pop.columns.items()}
    cols[name] = np.asarray(codes, dtype=pop.columns[name].dtype)
    ids = np.repeat(pop.ids[row : row + 1], k)
    return Population(ids, cols, pop.schema, source=pop.source)


def written_value(attr: Attribute, code: Any) -> Value:
    """An encoded value as people write it."""
    if attr.type in ("category", "ordinal"):
        return str((attr.levels or [])[int(code)])
    if attr.type == "bool":
        return bool(code)
    if attr.type == "date":
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(code))).isoformat()
    if attr.type == "int":
        return int(code)
    if attr.type == "float":
        f = float(code)
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    return str(code)


def _candidate(attr: Attribute, name: str, here: float, v: float, span: float) -> _Candidate:
    """A number or date ``v`` of ``name`` as a candidate.

    ``here`` is the resident's value and ``span`` the width of the attribute's range: distances
    are fractions of it.
    """
    code: Any = int(v) if attr.type in ("int", "date") else float(v)
    distance = abs(v - here) / max(span, 1e-12)
    return _Candidate(name, code, written_value(attr, code), float(v - here), distance)


def _candidates(
    pop: Population, row: int, name: str, attr: Attribute, direction: int, limit: int
) -> tuple[list[_Candidate], bool]:
    """Values of ``name`` to try, nearest first, above (``direction`` 1) or below the current.

    Returns:
        The candidates, and whether they are a sample of the values in range.
    """
    col = pop.columns[name]
    cur = col[row]
    if attr.type == "bool":
        if (direction > 0) != bool(cur):
            other = not bool(cur)
            return [_Candidate(name, other, other, None, 1.0)], False
        return [], False
    if attr.type in ("category", "ordinal"):
        levels = attr.levels or []
        here = int(cur)
        steps = range(here + 1, len(levels)) if direction > 0 else range(here - 1, -1, -1)
        return [
            _Candidate(name, code, levels[code], None, abs(code - here) / max(len(levels) - 1, 1))
            for code in steps
        ], False
    if attr.values is not None and attr.type in ("int", "float"):
        # Only the allowed values (an item scored 0, 5 or 10), nearest first.
        c = float(cur)
        allowed = sorted({float(v) for v in attr.values})
        beyond = [v for v in allowed if (v > c if direction > 0 else v < c)]
        beyond.sort(key=lambda v: abs(v - c))
        span = (allowed[-1] - allowed[0]) or 1.0
        return [_candidate(attr, name, c, v, span) for v in beyond[:limit]], False
    lo, hi = _bounds(attr, col)
    c = float(cur)
    end = hi if direction > 0 else lo
    if attr.type in ("int", "date"):
        count = int(abs(end - c))
        if count <= 0:
            return [], False
        offsets = _offsets(count, limit)
        values = [c + direction * o for o in offsets]
        sampled = len(offsets) < count
    else:
        width = abs(end - c)
        if width <= 0:
            return [], False
        grid = np.linspace(0.0, width, min(limit, FLOAT_STEPS) + 1)[1:]
        values = [c + direction * float(s) for s in grid]
        sampled = True
    span = hi - lo
    return [_candidate(attr, name, c, v, span) for v in values], sampled


def _whole_between(start: float, end: float) -> list[float]:
    """Whole numbers strictly between ``start`` and ``end``, nearest ``start`` first."""
    if end > start:
        return [float(v) for v in range(int(start) + 1, int(end))]
    return [float(v) for v in range(int(start) - 1, int(end), -1)]


def _offsets(count: int, limit: int) -> list[int]:
    """1..count, or when that is too many: every value near, then wider and wider steps."""
    if count <= limit:
        return list(range(1, count + 1))
    near = limit // 2
    out = list(range(1, near + 1))
    rest = limit - near
    ratio = (count / near) ** (1.0 / rest)
    x = float(near)
    for _ in range(rest):
        x *= ratio
        v = min(count, max(out[-1] + 1, math.floor(x)))
        if v > out[-1]:
            out.append(v)
    if out[-1] != count:
        out.append(count)
    return out


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, dt.date):
        return float((v - dt.date(1970, 1, 1)).days)
    return float(v)


def _declared(attr: Attribute) -> tuple[float | None, float | None]:
    return _num(attr.min), _num(attr.max)


def _bounds(attr: Attribute, col: np.ndarray) -> tuple[float, float]:
    """The declared range of a number or date (the population's where none is declared)."""
    lo, hi = _declared(attr)
    if lo is None or hi is None:
        finite = col[np.isfinite(col)] if col.dtype.kind == "f" else col
        if lo is None:
            lo = float(finite.min()) if len(finite) else 0.0
        if hi is None:
            hi = float(finite.max()) if len(finite) else 0.0
    return lo, hi
