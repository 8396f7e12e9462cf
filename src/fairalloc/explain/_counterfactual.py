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
  order; categories before it are unchanged, since it displaced nobody there;
* in ``max_beneficiaries`` mode, the same allocation is re-run with the resident inserted at
  its place in the base order.

Every reported counterfactual is then re-run through the mechanism on the whole population with
the resident's changed data, and reported only if the outcome holds (``verified``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

import fairalloc._engine as _engine
from fairalloc._population import Population
from fairalloc._ranking import _sort_keys, lottery_key
from fairalloc.allocation._capacity import assign_categories, category_sizes
from fairalloc.allocation._lottery import weighted_draws
from fairalloc.errors import EvaluationError
from fairalloc.explain._facts import Counterfactual, Value

if TYPE_CHECKING:
    from fairalloc._evaluation import Evaluation
    from fairalloc.allocation import Allocation
    from fairalloc.policy._model import Attribute

__all__ = ["DEFAULT_MAX_CANDIDATES", "search"]

#: The most values tried per attribute and direction (numbers with a wider range are sampled:
#: every value near the resident's, then wider and wider steps).
DEFAULT_MAX_CANDIDATES = 4096

Key = tuple[Any, ...]


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
) -> tuple[str | None, list[Counterfactual], list[tuple[str, dict[str, Any]]]]:
    """The smallest changes of changeable attributes that change ``row``'s outcome.

    Args:
        ev: The evaluation (holding its population).
        row: The resident's row.
        allocation: The allocation, whose served status is the outcome; without one the outcome
            is eligibility, or being ranked within ``target_rank``.
        target_rank: Without an allocation: the rank to reach (or to fall beyond).
        attributes: The attributes to vary (default: every changeable one); protected
            attributes are refused.
        limit: The most counterfactuals returned (nearest first; one per attribute and
            direction).
        max_candidates: The most values tried per attribute and direction.

    Returns:
        The target (``served``, ``not_served``, ``eligible``, ``rank <= N``, ``rank > N``),
        the counterfactuals, and notes (message code, parameters) for the renderers.
    """
    pop = ev.population
    notes: list[tuple[str, dict[str, Any]]] = []
    if pop is None:
        return None, [], [("cf_no_population", {})]
    doc = ev.policy.policy
    names = changeable_attributes(ev) if attributes is None else list(attributes)
    for name in names:
        attr = doc.attributes.get(name)
        if attr is None or name == doc.id_attribute:
            raise ValueError(
                f"no attribute `{name}` to vary; attributes: {', '.join(doc.attributes)}"
            )
        if attr.protected:
            raise ValueError(
                f"`{name}` is protected: counterfactuals never suggest changing a protected"
                " attribute"
            )
    if not names:
        notes.append(("cf_none_changeable", {}))
        return None, [], notes
    world = _World(ev, row, allocation, target_rank)
    if world.target is None:
        notes.append(("cf_no_target", {}))
        return None, [], notes
    found: list[tuple[_Candidate, Counterfactual]] = []
    for name in names:
        attr = doc.attributes[name]
        for direction in (-1, 1):
            cands = _candidates(pop, row, name, attr, direction, max_candidates)
            hit = world.first_change(cands)
            if hit is not None:
                found.append(hit)
    found.sort(key=lambda h: (h[0].distance, h[0].attribute, str(h[0].value)))
    out = [cf for _, cf in found[:limit]]
    if not out:
        notes.append(("cf_none_found", {"attributes": names}))
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
        self.rid = str(ev.ids[row])
        ranking = ev.ranking
        self.order = ranking.order
        self.pos = int(np.flatnonzero(self.order == row)[0]) if ev.eligible[row] else -1
        self.target_rank = target_rank
        self.target: str | None
        self.before: str
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

    # -- keys ------------------------------------------------------------------------------
    def rank_key(self, e: Evaluation, r: int) -> Key:
        """The ranking's sort key of row ``r`` of ``e`` (lower sorts first)."""
        keys = tuple(k[0].item() for k in _sort_keys(e, np.array([r], dtype=np.intp)))
        if self.seed is not None:
            keys = (*keys, lottery_key(self.seed, str(e.ids[r])))
        return keys

    def _others_before(
        self, key: Key, order: npt.NDArray[np.intp], key_of: Callable[[int], Key]
    ) -> int:
        """How many residents of ``order`` other than the resident sort strictly before ``key``."""
        # bisect over the order (sorted by key_of), skipping nothing: subtract the resident after.
        n = bisect.bisect_left(range(len(order)), key, key=lambda p: key_of(int(order[p])))
        if 0 <= self.pos < n and order is self.order:
            n -= 1
        return n

    def new_rank(self, evc: Evaluation, k: int) -> int:
        """The rank the changed resident would have among everybody else."""
        key = self.rank_key(evc, k)
        return 1 + self._others_before(key, self.order, lambda r: self.rank_key(self.ev, r))

    # -- allocation ------------------------------------------------------------------------
    def _prepare_allocation(self, alloc: Allocation) -> None:
        ev = self.ev
        spec = ev.policy.policy.allocation
        assert spec is not None
        self.spec = spec
        self.cats = category_sizes(spec, alloc.capacity)
        # The base order of everybody else, and the others' allocation without the resident.
        self.base = alloc.order[alloc.order != self.row]
        self.base_pos = np.full(ev.n, -1, dtype=np.int64)
        self.base_pos[self.base] = np.arange(len(self.base))
        self.category_wo, _, self.reverted_wo = assign_categories(ev, spec, self.cats, self.base)
        self.exact_only = spec.reserve_mode == "max_beneficiaries" and bool(spec.reserves)
        if not self.exact_only:
            self._marginals()

    def base_key(self, r: int, weight: float | None = None) -> Key:
        """Row ``r``'s key in the mechanism's base order (lower first)."""
        ev = self.ev
        alloc = self.alloc
        assert alloc is not None
        if self.spec.mechanism == "priority":
            return self.rank_key(ev, r)
        assert self.spec.lottery is not None
        seed = self.spec.lottery.seed
        key = lottery_key(seed, str(ev.ids[r]))
        if self.spec.lottery.weight is None:
            return (key,)
        w = float(ev.lottery_weight[r]) if weight is None else weight
        draw = float(weighted_draws(np.array([key], dtype=np.uint64), np.array([w]))[0])
        return (draw, key)

    def _marginals(self) -> None:
        """Per category, in processing order: free units, and the last served's key."""
        ev = self.ev
        spec = self.spec
        cats = self.cats
        sequence = list(spec.precedence or cats.ids)
        self.steps: list[tuple[int, int, Key | None]] = []  # (category, free, marginal key)
        category = self.category_wo
        for cid in sequence:
            c = cats.ids.index(cid)
            rows = self.base[category[self.base] == c]
            if c == cats.open:
                # Open-phase rows come first in the base order; reverted units follow.
                size = cats.sizes[c]
                rows = rows[:size]
            free = cats.sizes[c] - len(rows)
            last = self._last_in_own_order(c, rows)
            self.steps.append((c, free, last))
        if spec.unused_reserved == "open":
            spare = sum(
                cats.sizes[c] - int((category[self.base] == c).sum()) for c in range(cats.open)
            )
            open_rows = self.base[category[self.base] == cats.open]
            revert_rows = open_rows[cats.sizes[cats.open] :]
            last = self._last_in_own_order(cats.open, revert_rows)
            # -1 marks the step that gives unused reserved units to the open category.
            self.steps.append((-1, spare - len(revert_rows), last))
        del ev

    def _own_key(self, c: int, r: int, prio: float | None = None, base: Key | None = None) -> Key:
        reserve = self.spec.reserves[c] if 0 <= c < self.cats.open else None
        b = self.base_key(r) if base is None else base
        if reserve is not None and reserve.priority is not None:
            p = float(self.ev.reserve_priority[r, c]) if prio is None else prio
            return (-p, *b)
        return b

    def _last_in_own_order(self, c: int, rows: npt.NDArray[np.intp]) -> Key | None:
        if not len(rows):
            return None
        if 0 <= c < self.cats.open and self.spec.reserves[c].priority is not None:
            prio = self.ev.reserve_priority[rows, c]
            pos = self.base_pos[rows]
            last = rows[np.lexsort((pos, -prio))[-1]]
        else:
            last = rows[np.argmax(self.base_pos[rows])]
        return self._own_key(c if c >= 0 else self.cats.open, int(last))

    def predict_served(self, evc: Evaluation, k: int) -> bool | None:
        """Whether the changed resident (row ``k`` of ``evc``) would be served; None: a tie."""
        if not evc.eligible[k]:
            return False
        if self.exact_only:
            return self.exact_served(evc, k)
        w = float(evc.lottery_weight[k]) if self.spec.mechanism == "lottery" else None
        base = self._candidate_base_key(evc, k, w)
        for c, free, last in self.steps:
            if c >= 0 and c != self.cats.open and not evc.reserve_eligible[k, c]:
                continue
            if free > 0:
                return True
            if last is None:
                continue
            cc = c if c >= 0 else self.cats.open
            prio = float(evc.reserve_priority[k, cc]) if cc != self.cats.open else None
            mine = self._own_key(cc, self.row, prio, base)
            if mine < last:
                return True
            if mine == last:
                return None
        return False

    def _candidate_base_key(self, evc: Evaluation, k: int, weight: float | None) -> Key:
        if self.spec.mechanism == "priority":
            return self.rank_key(evc, k)
        return self.base_key(self.row, weight)

    def exact_served(self, evc: Evaluation, k: int) -> bool:
        """Re-run the mechanism with the changed resident at its place in the base order."""
        ev = self.ev
        if not evc.eligible[k]:
            return False
        w = float(evc.lottery_weight[k]) if self.spec.mechanism == "lottery" else None
        key = self._candidate_base_key(evc, k, w)
        at = bisect.bisect_left(
            range(len(self.base)), key, key=lambda p: self.base_key(int(self.base[p]))
        )
        order = np.insert(self.base, at, self.row)
        patched = _Patched(ev, self.row, evc, k)
        category, _, _ = assign_categories(cast("Evaluation", patched), self.spec, self.cats, order)
        return bool(category[self.row] >= 0)

    # -- outcomes --------------------------------------------------------------------------
    def outcome(self, evc: Evaluation, k: int, *, exact: bool = False) -> str | None:
        """The changed resident's outcome, in the vocabulary of :attr:`before`."""
        if self.alloc is not None:
            if not evc.eligible[k]:
                return "ineligible"
            served = self.exact_served(evc, k) if exact else self.predict_served(evc, k)
            if served is None:
                return None
            return "served" if served else "waiting"
        if self.target_rank is not None:
            if not evc.eligible[k]:
                return "ineligible"
            return "within" if self.new_rank(evc, k) <= self.target_rank else "beyond"
        return "eligible" if evc.eligible[k] else "ineligible"

    def changed(self, after: str | None) -> bool:
        """Whether ``after`` is the outcome the target asks for."""
        if after is None:
            return False
        if self.alloc is not None:
            return (after == "served") != (self.before == "served")
        if self.target_rank is not None:
            return (after == "within") != (self.before == "within")
        return after != self.before

    def first_change(self, cands: list[_Candidate]) -> tuple[_Candidate, Counterfactual] | None:
        """The nearest candidate whose outcome differs (verified by an exact re-run)."""
        if not cands:
            return None
        evc = self._evaluate(cands)
        if evc is None:
            return None
        evc_ev, kept = evc
        # Candidates with the same trace give the same outcome: decide each distinct one once.
        seen: dict[bytes, str | None] = {}
        signature = _signatures(evc_ev)
        for k, cand in zip(kept, (cands[i] for i in kept), strict=True):
            sig = signature[k]
            if sig not in seen:
                seen[sig] = self.outcome(evc_ev, k)
            after = seen[sig]
            if not self.changed(after):
                continue
            assert after is not None
            verified = self._verify(evc_ev, k, after)
            if not verified:
                continue
            rank = self.new_rank(evc_ev, k) if evc_ev.eligible[k] else None
            attr = self.ev.policy.policy.attributes[cand.attribute]
            return cand, Counterfactual(
                attribute=cand.attribute,
                title=attr.title,
                unit=attr.unit,
                before=_written(self.ev.population, cand.attribute, self.row),
                after=cand.value,
                delta=cand.delta,
                outcome_before=self.before,
                outcome_after=after,
                rank_after=rank,
                score_after_micro=int(evc_ev.score_micro[k]),
                verified=True,
            )
        return None

    def _verify(self, evc: Evaluation, k: int, after: str) -> bool:
        if self.alloc is None:
            return self.outcome(evc, k) == after
        return self.outcome(evc, k, exact=True) == after

    def _evaluate(self, cands: list[_Candidate]) -> tuple[Evaluation, list[int]] | None:
        pop = self.ev.population
        assert pop is not None
        name = cands[0].attribute
        small = _repeat(pop, self.row, name, [c.code for c in cands])
        try:
            return _engine.evaluate_compiled(self.ev.policy, small), list(range(len(cands)))
        except EvaluationError:
            # Some values make a rule undefined: leave those out, one by one.
            kept = []
            for i, c in enumerate(cands):
                try:
                    _engine.evaluate_compiled(
                        self.ev.policy, _repeat(pop, self.row, name, [c.code])
                    )
                    kept.append(i)
                except EvaluationError:
                    continue
            if not kept:
                return None
            small = _repeat(pop, self.row, name, [cands[i].code for i in kept])
            return _engine.evaluate_compiled(self.ev.policy, small), list(range(len(kept)))


class _Patched:
    """An evaluation's allocation inputs with one resident's row replaced (for re-running)."""

    def __init__(self, ev: Evaluation, row: int, evc: Evaluation, k: int) -> None:
        self.n = ev.n
        self.policy = ev.policy
        self.ids = ev.ids
        self.eligible = ev.eligible.copy()
        self.eligible[row] = evc.eligible[k]
        self.reserve_eligible = ev.reserve_eligible.copy()
        self.reserve_eligible[row] = evc.reserve_eligible[k]
        self.reserve_priority = ev.reserve_priority.copy()
        self.reserve_priority[row] = evc.reserve_priority[k]


def _signatures(evc: Evaluation) -> list[bytes]:
    """One byte string per row: everything the ranking and the mechanism read."""
    parts = [
        evc.eligible[:, None].astype(np.int64),
        evc.score_micro[:, None],
        evc.terms,
        evc.tie_values.view(np.int64),
        evc.reserve_eligible.astype(np.int64),
        evc.reserve_priority.view(np.int64),
        evc.lottery_weight[:, None].view(np.int64),
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


def _written(pop: Population | None, name: str, row: int) -> Value:
    assert pop is not None
    return written_value(pop.schema.attributes[name], pop.columns[name][row])


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


def _candidates(
    pop: Population, row: int, name: str, attr: Attribute, direction: int, limit: int
) -> list[_Candidate]:
    """Values of ``name`` to try, nearest first, above (``direction`` 1) or below the current."""
    col = pop.columns[name]
    cur = col[row]
    if attr.type == "bool":
        if (direction > 0) != bool(cur):
            other = not bool(cur)
            return [_Candidate(name, other, other, None, 1.0)]
        return []
    if attr.type in ("category", "ordinal"):
        levels = attr.levels or []
        here = int(cur)
        steps = range(here + 1, len(levels)) if direction > 0 else range(here - 1, -1, -1)
        return [
            _Candidate(name, code, levels[code], None, abs(code - here) / max(len(levels) - 1, 1))
            for code in steps
        ]
    lo, hi = _bounds(attr, col)
    c = float(cur)
    span = max(hi - lo, 1e-12)
    if attr.type in ("int", "date"):
        end = hi if direction > 0 else lo
        count = int(abs(end - c))
        if count <= 0:
            return []
        offsets = _offsets(count, limit)
        values = [c + direction * o for o in offsets]
    else:
        end = hi if direction > 0 else lo
        width = abs(end - c)
        if width <= 0:
            return []
        grid = np.linspace(0.0, width, min(limit, 1024) + 1)[1:]
        values = [c + direction * float(s) for s in grid]
    out = []
    for v in values:
        if attr.type == "int":
            code: Any = int(v)
            value: Value = int(v)
        elif attr.type == "date":
            code = int(v)
            value = written_value(attr, code)
        else:
            code = float(v)
            value = written_value(attr, code)
        out.append(_Candidate(name, code, value, float(v - c), abs(v - c) / span))
    return out


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


def _bounds(attr: Attribute, col: np.ndarray) -> tuple[float, float]:
    """The declared range of a number or date (the population's where none is declared)."""

    def num(v: Any) -> float | None:
        if v is None:
            return None
        if isinstance(v, dt.date):
            return float((v - dt.date(1970, 1, 1)).days)
        return float(v)

    lo, hi = num(attr.min), num(attr.max)
    if lo is None or hi is None:
        finite = col[np.isfinite(col)] if col.dtype.kind == "f" else col
        if lo is None:
            lo = float(finite.min()) if len(finite) else 0.0
        if hi is None:
            hi = float(finite.max()) if len(finite) else 0.0
    return lo, hi
