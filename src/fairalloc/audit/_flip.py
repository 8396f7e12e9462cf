"""Counterfactual flip audit: would changing one protected attribute change a resident's outcome?

For each protected attribute (or each attribute asked for) and each alternative value, the audit
asks, for every resident whose value differs: if only this resident's value were changed, would
their eligibility, score, rank or served status change? The alternatives are every other level
of a category or ordinal, the other value of a true/false attribute, and, for numbers and
dates, the attribute's declared ``min`` and ``max`` (the population's smallest and largest
values where none is declared) and the population's quartiles (the lower middle value, so
always a value some resident has). Attributes the static proof shows nothing reads are
reported as independent without evaluating anything (see :mod:`fairalloc.audit._static`).

Why one evaluation per (attribute, value) is exact, not an approximation
--------------------------------------------------------------------------

The audit never re-evaluates the policy once per resident. It changes the attribute for all
residents at once (:meth:`Population.replace`), evaluates that population once with
:func:`fairalloc.evaluate`, and compares each resident's trace with the original:

1. **Eligibility, score, points, tie-break values and allocation inputs.** The engine computes
   each resident's row from that resident's own data only (an invariant of the engine, tested
   against an independent oracle; no score method is relative to the pool). So resident ``i``'s
   row in the changed evaluation is exactly the row ``i`` would get if only ``i`` had been
   changed: the other residents' changes cannot reach it.
2. **Rank.** Under a change to ``i`` alone, every other resident keeps their original sort key
   (score, then each tie-break value, then the lottery key, which depends only on the seed and
   the resident's id and so never changes). Ranks are "1 + the number of eligible residents
   whose key is strictly smaller" (residents still tied after the whole chain share a rank), so
   ``i``'s new rank is ``1 + `` the number of *other* originally eligible residents whose
   original key is smaller than ``i``'s new key. The original keys are sorted once (they are
   the ranking's own keys, in its order) and each new key is placed by binary search
   (:func:`numpy.searchsorted`), leaving ``i``'s own original entry out. Keys of several
   columns are compared as one integer: each column's values are replaced by their position
   among the original values (``2r + 1`` for a value equal to the ``r``-th distinct original
   value, ``2r`` for one falling just before it), which preserves order and equality exactly,
   and the positions are combined column by column.
3. **Served status** (an allocation with a capacity, a rotation round or a matching). Under
   reserve categories (either mode) or a lottery mechanism, each resident whose eligibility,
   sort key or allocation inputs changed is placed among everybody else, unchanged, by the
   what-if allocation explanations use (exact, the same code); the others keep their status.
   Under rotation (the next round, from ``state``) and deferred-acceptance matching, which
   decide the whole pool at once, the same what-if re-runs the mechanism on the whole pool with
   only that resident changed (for every resident when the changed attribute is one the
   mechanism reads itself: an accrued attribute or a preference). Under plain priority it is
   faster: the priority mechanism serves the first ``C`` eligible residents of the ranking's
   order. ``i`` is served after the change exactly when fewer than ``C`` *other* residents come
   before ``i``'s new key in that order: the others' relative order is unchanged, and whether
   ``i`` itself was among the first ``C`` before does not enter, because ``i`` is left out of
   the count. Residents still tied after the whole chain (possible only without a lottery) are
   listed in the ranking's order by id; where such a tie straddles the cut-off, the allocation
   itself refuses to decide, and the audit uses that listing order.

The counts are therefore the same as a full re-evaluation and re-allocation for each resident
in turn (a test checks this on a small population), at the cost of one evaluation per
(attribute, value) and one binary search per changed resident.

Which parts of the policy made a difference is read off the two evaluations' trace arrays (the
verdict of every eligibility and exclusion rule, the micro-points of every indicator and
priority rule, tie-break values, reserve and resource conditions and priorities, lottery
weights and rotation bands); nothing is recomputed outside the engine.

Examples:
    >>> import fairalloc as fa
    >>> from fairalloc.audit._flip import flip_audit
    >>> policy = fa.parse_policy('''
    ... policy: {id: demo, version: "1", title: Demo}
    ... attributes:
    ...   id: {type: str, role: id}
    ...   need: {type: int, min: 0, max: 10}
    ...   gender: {type: category, levels: [f, m], protected: true}
    ... rules:
    ...   priority: [{id: need-points, points: "need"}]
    ... ranking: {tie_break: [{lottery: {seed: s}}]}
    ... allocation: {capacity: 1}
    ... ''')
    >>> audit = flip_audit(policy, [{"id": "a", "need": 3, "gender": "f"},
    ...                             {"id": "b", "need": 7, "gender": "m"}])
    >>> audit.independent, audit.ok
    (['gender'], True)
"""

from __future__ import annotations

import datetime as dt
import heapq
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fairalloc._arrays import distinct
from fairalloc._compiler import CompiledPolicy, TraceColumn, compiled_for
from fairalloc._engine import evaluate, reevaluate_attribute
from fairalloc._evaluation import Evaluation
from fairalloc._numeric import MICRO
from fairalloc._population import Population
from fairalloc._ranking import LotteryKeys, _sort_keys
from fairalloc.allocation import Allocation, allocate_evaluation
from fairalloc.allocation._state import RotationState
from fairalloc.audit._static import StaticProof, _cell, part_label, static_proof
from fairalloc.errors import AllocationError, ArgumentError, ArgumentTypeError, EvaluationError
from fairalloc.explain._counterfactual import _Rerun, _World
from fairalloc.policy._model import Attribute, Policy

__all__ = ["AffectedResident", "AttributeFlips", "FlipAudit", "FlipResult", "flip_audit"]

Status = Literal["independent", "justified", "violation", "unprotected"]

_EPOCH = dt.date(1970, 1, 1)
#: Above this many affected residents, the first ones by id are found through one sort of all
#: ids (kept for the whole audit) rather than by a heap over the affected ones.
_HEAP_LIMIT = 50_000


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffectedResident:
    """One resident whose outcome changed when only their attribute was changed.

    Attributes:
        id: The resident's id.
        parts: The parts whose verdict or points changed for this resident (e.g.
            ``rule:aged-60-plus``), in the order of the policy.
        eligible: Eligibility before and after the change.
        score: Score before and after, in points.
        rank: Rank before and after (0 = not eligible).
        served: Served status before and after (None when not computed).
    """

    id: str
    parts: tuple[str, ...]
    eligible: tuple[bool, bool]
    score: tuple[float, float]
    rank: tuple[int, int]
    served: tuple[bool, bool] | None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "id": self.id,
            "parts": list(self.parts),
            "eligible": list(self.eligible),
            "score": list(self.score),
            "rank": list(self.rank),
            "served": list(self.served) if self.served is not None else None,
        }


@dataclass(frozen=True, slots=True)
class FlipResult:
    """What changing one attribute to one value, for one resident at a time, changed.

    Attributes:
        attribute: The attribute changed.
        value: The value it was changed to, as written in data (level, true/false, number,
            ISO date).
        n_compared: Residents whose value differed (residents who already had it are not
            compared; they are not in any rate's denominator).
        eligibility_changes: Residents whose eligibility changed.
        score_changes: Residents whose score changed (for ``tiers``: any tier's value).
        rank_changes: Residents whose rank changed (including becoming or ceasing to be
            eligible).
        served_changes: Residents whose served status changed (None when not computed).
        allocation_changes: Residents for whom an input of the allocation mechanism changed
            (a reserve's or resource's condition or priority, a lottery weight, a rotation
            band): the mechanism may then serve them differently.
        affected: Residents with any of the changes above.
        parts: Every part whose verdict or points changed for some compared resident.
        unjustified_parts: Those of :attr:`parts` that no justified use allows to read the
            attribute (empty for attributes that are not protected).
        listed: The first affected residents by id, with the parts responsible.
        error: Why the changed population could not be evaluated (then nothing is counted).
    """

    attribute: str
    value: str
    n_compared: int
    eligibility_changes: int = 0
    score_changes: int = 0
    rank_changes: int = 0
    served_changes: int | None = None
    allocation_changes: int = 0
    affected: int = 0
    parts: tuple[str, ...] = ()
    unjustified_parts: tuple[str, ...] = ()
    listed: tuple[AffectedResident, ...] = ()
    error: str | None = None

    def _rate(self, count: int) -> float:
        return count / self.n_compared if self.n_compared else 0.0

    @property
    def eligibility_rate(self) -> float:
        """Share of compared residents whose eligibility changed."""
        return self._rate(self.eligibility_changes)

    @property
    def score_rate(self) -> float:
        """Share of compared residents whose score changed."""
        return self._rate(self.score_changes)

    @property
    def rank_rate(self) -> float:
        """Share of compared residents whose rank changed."""
        return self._rate(self.rank_changes)

    @property
    def served_rate(self) -> float | None:
        """Share of compared residents whose served status changed (None if not computed)."""
        return None if self.served_changes is None else self._rate(self.served_changes)

    @property
    def affected_rate(self) -> float:
        """Share of compared residents with any change."""
        return self._rate(self.affected)

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "attribute": self.attribute,
            "value": self.value,
            "n_compared": self.n_compared,
            "eligibility_changes": self.eligibility_changes,
            "eligibility_rate": self.eligibility_rate,
            "score_changes": self.score_changes,
            "score_rate": self.score_rate,
            "rank_changes": self.rank_changes,
            "rank_rate": self.rank_rate,
            "served_changes": self.served_changes,
            "served_rate": self.served_rate,
            "allocation_changes": self.allocation_changes,
            "affected": self.affected,
            "affected_rate": self.affected_rate,
            "parts": list(self.parts),
            "unjustified_parts": list(self.unjustified_parts),
            "listed": [r.to_dict() for r in self.listed],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class AttributeFlips:
    """The flip audit of one attribute: its status and its results over all values tried.

    Attributes:
        attribute: The attribute.
        status: From the static proof: ``independent``, ``justified`` or ``violation``; or
            ``unprotected`` for an attribute that is not protected but read.
        evaluated: Whether changed populations were evaluated (False for attributes proven
            independent, unless asked to check them).
        values: The values tried.
        n_compared: Comparisons made, over all values (a resident counts once per value).
        eligibility_changes: Eligibility changes, over all values.
        score_changes: Score changes, over all values.
        rank_changes: Rank changes, over all values.
        served_changes: Served-status changes over all values (None when not computed).
        allocation_changes: Changes of allocation inputs, over all values.
        affected: Comparisons with any change, over all values.
        max_affected_rate: The largest share of affected residents for one value.
        parts: Every part responsible for some change.
        unjustified_parts: Those of :attr:`parts` without a justified use for the attribute.
    """

    attribute: str
    status: Status
    evaluated: bool
    values: tuple[str, ...] = ()
    n_compared: int = 0
    eligibility_changes: int = 0
    score_changes: int = 0
    rank_changes: int = 0
    served_changes: int | None = None
    allocation_changes: int = 0
    affected: int = 0
    max_affected_rate: float = 0.0
    parts: tuple[str, ...] = ()
    unjustified_parts: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        """The finding in one sentence."""
        if not self.evaluated:
            return "proven independent: nothing reads it"
        if not self.affected:
            return "no outcome changed"
        who = ", ".join(part_label(p) for p in self.parts)
        if self.unjustified_parts:
            bad = ", ".join(part_label(p) for p in self.unjustified_parts)
            return f"outcomes change through {who}; without a justified use: {bad}"
        return f"outcomes change through {who}"

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "attribute": self.attribute,
            "status": self.status,
            "evaluated": self.evaluated,
            "values": list(self.values),
            "n_compared": self.n_compared,
            "eligibility_changes": self.eligibility_changes,
            "score_changes": self.score_changes,
            "rank_changes": self.rank_changes,
            "served_changes": self.served_changes,
            "allocation_changes": self.allocation_changes,
            "affected": self.affected,
            "max_affected_rate": self.max_affected_rate,
            "parts": list(self.parts),
            "unjustified_parts": list(self.unjustified_parts),
            "note": self.note,
        }


@dataclass(frozen=True)
class FlipAudit:
    """The counterfactual flip audit of a policy over a population.

    Attributes:
        policy_id: The policy's id.
        policy_version: The policy's version.
        n: Residents in the population.
        capacity: Units allocated for served status (None when served status is not
            computed).
        served_note: Why served status was not computed (None when it was).
        proof: The static proof the audit started from.
        attributes: One summary per attribute audited, in order.
        results: One result per (attribute, value) evaluated.
    """

    policy_id: str
    policy_version: str
    n: int
    capacity: int | None
    served_note: str | None
    proof: StaticProof
    attributes: list[AttributeFlips]
    results: list[FlipResult] = field(default_factory=list)

    @property
    def independent(self) -> list[str]:
        """The attributes proven independent by the static proof (evaluated only if asked)."""
        return [a.attribute for a in self.attributes if a.status == "independent"]

    @property
    def changed(self) -> list[str]:
        """The attributes whose change changed some resident's outcome."""
        return [a.attribute for a in self.attributes if a.affected]

    @property
    def ok(self) -> bool:
        """Whether no outcome changed through a part without a justified use."""
        return not any(a.unjustified_parts for a in self.attributes)

    def attribute(self, name: str) -> AttributeFlips:
        """The summary of attribute ``name``.

        Raises:
            KeyError: if ``name`` was not audited.
        """
        for a in self.attributes:
            if a.attribute == name:
                return a
        raise KeyError(f"`{name}` was not audited")

    def results_for(self, attribute: str) -> list[FlipResult]:
        """The results of ``attribute``, one per value tried."""
        return [r for r in self.results if r.attribute == attribute]

    def result(self, attribute: str, value: str) -> FlipResult:
        """The result of changing ``attribute`` to ``value`` (as written in data).

        Raises:
            KeyError: if that value was not tried.
        """
        for r in self.results:
            if r.attribute == attribute and r.value == value:
                return r
        tried = ", ".join(r.value for r in self.results_for(attribute)) or "none"
        raise KeyError(f"`{attribute}` = {value!r} was not tried (tried: {tried})")

    def to_dict(self) -> dict[str, Any]:
        """As plain values (the JSON layout of the audit report's section)."""
        return {
            "policy": {"id": self.policy_id, "version": self.policy_version},
            "residents": self.n,
            "capacity": self.capacity,
            "served_note": self.served_note,
            "ok": self.ok,
            "independent": self.independent,
            "attributes": [a.to_dict() for a in self.attributes],
            "results": [r.to_dict() for r in self.results],
        }

    def to_markdown(self) -> str:
        """A readable section: per attribute, per value, and the first affected residents.

        The last table names, for each listed resident, the parts responsible for the change.
        """
        served = (
            f"served status under priority allocation of {self.capacity} units"
            if self.served_note is None
            else f"served status not computed: {self.served_note}"
        )
        lines = [
            "## Counterfactual flip audit",
            "",
            f"Policy `{self.policy_id}` version {_cell(self.policy_version)}, {self.n:,}"
            f" residents; {served}. Each attribute was changed for one resident at a time (all"
            " else equal, for them and for everybody else), to every other level of a category,"
            " ordinal or true/false attribute, or to the declared minimum and maximum and the"
            " population's quartiles of a number or date. Counted: residents whose eligibility,"
            " score, rank or served status changed; rates are over the residents whose value"
            " differed. Exact: one evaluation per value, no sampling.",
            "",
            "| attribute | status | values tried | compared | eligibility | score | rank"
            " | served | finding |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for a in self.attributes:
            if not a.evaluated:
                lines.append(
                    f"| `{a.attribute}` | {a.status} | — | — | — | — | — | — | {_cell(a.note)} |"
                )
                continue
            status = "**violation**" if a.status == "violation" else a.status
            finding = f"**{_cell(a.note)}**" if a.unjustified_parts else _cell(a.note)
            lines.append(
                f"| `{a.attribute}` | {status} | {_cell(', '.join(a.values))} | {a.n_compared:,}"
                f" | {_count(a.eligibility_changes, a.n_compared)}"
                f" | {_count(a.score_changes, a.n_compared)}"
                f" | {_count(a.rank_changes, a.n_compared)}"
                f" | {_count(a.served_changes, a.n_compared)} | {finding} |"
            )
        if self.results:
            lines += [
                "",
                "### Changes by value",
                "",
                "| attribute | value | compared | eligibility | score | rank | served"
                " | allocation inputs | parts |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for r in self.results:
                parts = (
                    f"error: {_cell(r.error)}"
                    if r.error
                    else (", ".join(part_label(p) for p in r.parts) or "—")
                )
                lines.append(
                    f"| `{r.attribute}` | {_cell(r.value)} | {r.n_compared:,}"
                    f" | {_count(r.eligibility_changes, r.n_compared)}"
                    f" | {_count(r.score_changes, r.n_compared)}"
                    f" | {_count(r.rank_changes, r.n_compared)}"
                    f" | {_count(r.served_changes, r.n_compared)}"
                    f" | {_count(r.allocation_changes, r.n_compared)} | {parts} |"
                )
        listed = [(r, x) for r in self.results for x in r.listed]
        if listed:
            lines += [
                "",
                "### Affected residents",
                "",
                "The first affected residents by id for each value, with the parts whose verdict"
                " or points changed.",
                "",
                "| attribute | value | resident | eligible | score | rank | served | parts |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r, x in listed:
                lines.append(
                    f"| `{r.attribute}` | {_cell(r.value)} | {_cell(x.id)}"
                    f" | {_yes(x.eligible[0])} → {_yes(x.eligible[1])}"
                    f" | {x.score[0]:g} → {x.score[1]:g}"
                    f" | {x.rank[0] or '—'} → {x.rank[1] or '—'}"
                    f" | {_yes(x.served[0]) + ' → ' + _yes(x.served[1]) if x.served else '—'}"
                    f" | {', '.join(part_label(p) for p in x.parts) or '—'} |"
                )
        lines.append("")
        if self.ok:
            lines.append("**Result:** no outcome changes through a part without a justified use.")
        else:
            lines.append("**Result:** outcomes change through parts without a justified use:")
            lines.append("")
            lines.extend(
                f"- `{a.attribute}`: "
                + ", ".join(part_label(p) for p in a.unjustified_parts)
                + f" (up to {a.max_affected_rate:.1%} of residents affected by one change)"
                for a in self.attributes
                if a.unjustified_parts
            )
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        changed = ", ".join(self.changed) or "none"
        return (
            f"<FlipAudit of {self.policy_id} v{self.policy_version}: {self.n} residents,"
            f" {len(self.attributes)} attributes ({len(self.independent)} independent);"
            f" outcomes change with: {changed}; {'ok' if self.ok else 'unjustified changes'}>"
        )


def _count(count: int | None, n: int) -> str:
    if count is None:
        return "—"
    if not count:
        return "0"
    return f"{count:,} ({count / n:.1%})" if n else f"{count:,}"


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


# -- the audit --------------------------------------------------------------------------------


def flip_audit(
    source: Evaluation | Policy | CompiledPolicy,
    residents: Population | Any = None,
    *,
    capacity: int | None = None,
    attributes: Sequence[str] | None = None,
    max_listed: int = 20,
    check_independent: bool = False,
    what_if_limit: int = 2_000,
    state: RotationState | None = None,
    workers: int = 1,
) -> FlipAudit:
    """Audit whether changing a protected attribute changes residents' outcomes.

    For each attribute and each alternative value, every resident whose value differs is
    compared with the same resident, changed alone: eligibility, score, rank and (with a
    capacity, a rotation or a matching) served status.
    Alternatives: every other level of a category or ordinal; the other value of a true/false
    attribute; for a number or date, its declared ``min`` and ``max`` (the population's
    smallest and largest values where none is declared) and the population's quartiles (each
    the lower middle value, so a value some resident has). See the module documentation for
    why one evaluation per (attribute, value) gives the exact per-resident answer. Attributes
    the static proof shows nothing reads are reported as independent without evaluation. Score
    changes count for every compared resident, eligible or not; rank 0 means not eligible.

    Args:
        source: An :class:`~fairalloc.Evaluation` (which holds its residents), or a policy or
            compiled policy with ``residents``. A policy is compiled for audit
            (``fa.compile_policy(policy, audit=True)``), so that policies reading protected
            attributes without a justified use can be measured.
        residents: The residents, when ``source`` is a policy (anything
            :func:`fairalloc.evaluate` accepts).
        capacity: Units allocated, for served status; by default the policy's
            ``allocation.capacity``.
        attributes: The attributes to audit, in order; by default every protected attribute,
            in the order of the schema. Attributes that are not protected may be given too.
        max_listed: How many affected residents to list per value (the first by id).
        what_if_limit: Under reserve categories or a lottery mechanism, served status places
            each changed resident in the pool by the what-if allocation, which costs a pass
            over the pool per resident (under rotation or matching, a run of the mechanism);
            above this many residents it is not computed (the audit says so) unless the limit
            is raised.
        check_independent: Also evaluate the attributes the static proof shows nothing reads
            (they must show no change at all: a check of the proof itself).
        state: For a rotation, where it stands (:attr:`Round.state
            <fairalloc.Round.state>`): served status is that of the next round from it (its
            first round by default).
        workers: Threads comparing values at once (the values are independent; NumPy works
            outside Python's lock, so two cores nearly halve a large audit). The result is the
            same whatever the number. Under rotation, matching or a what-if allocation values
            are compared one at a time.

    Returns:
        The :class:`FlipAudit`.

    Raises:
        TypeError: if ``residents`` is missing with a policy, or given with an evaluation.
        ValueError: if an attribute is unknown or is the id, or the evaluation does not hold
            its residents.
    """
    ev = _evaluation_of(source, residents)
    if ev.population is None:
        raise ArgumentError(
            "FA610",
            "this evaluation does not hold its residents; give the policy and the residents",
            argument="source",
        )
    check_max_listed(max_listed)
    if workers < 1:
        raise ArgumentError(
            "FA600", f"workers must be at least 1, got {workers}", argument="workers", value=workers
        )
    threads = (
        ThreadPoolExecutor(workers, thread_name_prefix="fairalloc-flip") if workers > 1 else None
    )
    with threads if threads is not None else nullcontext() as pool:
        return _flip_audit(
            ev,
            capacity,
            attributes,
            max_listed=max_listed,
            check_independent=check_independent,
            what_if_limit=what_if_limit,
            state=state,
            pool=pool,
        )


def run_flip_audit(
    ev: Evaluation, capacity: int | None, pool: Executor | None, keys: LotteryKeys | None
) -> FlipAudit:
    """``flip_audit(ev, capacity=capacity)``, its values compared in ``pool`` (the audit's own).

    ``ev`` holds its residents; ``keys``, the lottery keys of its residents the audit shares.
    """
    return _flip_audit(
        ev,
        capacity,
        None,
        max_listed=20,
        check_independent=False,
        what_if_limit=2_000,
        state=None,
        pool=pool,
        keys=keys,
    )


def _flip_audit(
    ev: Evaluation,
    capacity: int | None,
    attributes: Sequence[str] | None,
    *,
    max_listed: int,
    check_independent: bool,
    what_if_limit: int,
    state: RotationState | None,
    pool: Executor | None,
    keys: LotteryKeys | None = None,
) -> FlipAudit:
    """:func:`flip_audit` of an evaluation holding its residents; values compared in ``pool``."""
    cp = ev.policy
    pop = ev.population
    assert pop is not None
    proof = static_proof(cp)
    names = _attributes_to_audit(cp, attributes)
    units, served_note = _served_capacity(cp, capacity)
    spec = cp.policy.allocation
    rerun = spec is not None and (spec.rotation is not None or spec.matching is not None)
    placed = spec is not None and (bool(spec.reserves) or spec.mechanism != "priority" or rerun)
    if units is not None and placed and pop.n > what_if_limit:
        units, served_note = None, what_if_note(pop.n, what_if_limit, rerun=rerun)
    base = _Baseline(ev, units, state, keys)

    def one(name: str, code: Any, label: str, allowed: set[str]) -> FlipResult:
        assert pop is not None
        column = pop.columns[name]
        rows = np.flatnonzero(column != code)
        if not len(rows):
            return FlipResult(name, label, 0, served_changes=0 if units is not None else None)
        values = np.full(pop.n, code, dtype=column.dtype)
        try:
            # Only the parts that read the attribute run again; the rest is the base's.
            ev2 = reevaluate_attribute(ev, pop.replace(name, values), name)
        except EvaluationError as e:
            return FlipResult(name, label, len(rows), error=str(e))
        return base.compare(ev2, name, label, rows, allowed, max_listed)

    # With a pool, every value of every audited attribute is handed out at once, and each
    # attribute's results are collected in order: the same audit as one value at a time.
    pending: dict[str, list[Future[FlipResult]]] = {}
    if pool is not None and base.rerun is None and base.alloc is None:
        for name in names:
            _, allowed = status_of(cp, proof, name)
            if audited(cp, name, check_independent=check_independent):
                alternatives = _alternatives(cp.policy.attributes[name], pop.columns[name])
                pending[name] = [
                    pool.submit(one, name, code, label, allowed) for code, label in alternatives
                ]

    def flips(name: str, allowed: set[str]) -> list[FlipResult]:
        assert pop is not None
        if name in pending:
            return [f.result() for f in pending.pop(name)]
        alternatives = _alternatives(cp.policy.attributes[name], pop.columns[name])
        return [one(name, code, label, allowed) for code, label in alternatives]

    return assemble(
        cp,
        proof,
        names,
        n=pop.n,
        units=units,
        served_note=served_note,
        check_independent=check_independent,
        flips=flips,
    )


def check_max_listed(max_listed: int) -> None:
    """Refuse a negative ``max_listed`` (``FA600``)."""
    if max_listed < 0:
        raise ArgumentError(
            "FA600",
            f"max_listed must be at least 0, got {max_listed}",
            argument="max_listed",
            value=max_listed,
        )


def audited(cp: CompiledPolicy, name: str, *, check_independent: bool) -> bool:
    """Whether ``name`` is evaluated: something reads it, or the proof itself is checked."""
    return check_independent or bool(cp.readers_of(name))


def assemble(
    cp: CompiledPolicy,
    proof: StaticProof,
    names: list[str],
    *,
    n: int,
    units: int | None,
    served_note: str | None,
    check_independent: bool,
    flips: Callable[[str, set[str]], list[FlipResult]],
) -> FlipAudit:
    """The audit of ``names``: ``flips(name, allowed)`` gives an audited attribute's results.

    Attributes nothing reads (unless ``check_independent``) are reported from the static
    proof without evaluating anything.
    """
    summaries: list[AttributeFlips] = []
    results: list[FlipResult] = []
    for name in names:
        status, allowed = status_of(cp, proof, name)
        if not audited(cp, name, check_independent=check_independent):
            summaries.append(AttributeFlips(name, status, evaluated=False))
            continue
        mine = flips(name, allowed)
        results.extend(mine)
        summaries.append(_summary(name, status, mine, served=units is not None))
    meta = cp.policy.policy
    return FlipAudit(
        policy_id=meta.id,
        policy_version=meta.version,
        n=n,
        capacity=units,
        served_note=served_note,
        proof=proof,
        attributes=summaries,
        results=results,
    )


def status_of(cp: CompiledPolicy, proof: StaticProof, name: str) -> tuple[Status, set[str]]:
    """An attribute's status, and the parts allowed to read it (by a justified use)."""
    attr = cp.policy.attributes[name]
    if attr.protected:
        record = proof.attribute(name)
        return record.status, set(record.justified_parts)
    readers = cp.readers_of(name)
    return ("unprotected" if readers else "independent"), set(readers)


def what_if_note(n: int, what_if_limit: int, *, rerun: bool) -> str:
    """Why served status is not computed for a pool above ``what_if_limit`` residents."""
    how = (
        "under rotation or matching the mechanism is re-run for each changed resident"
        if rerun
        else "under reserve categories or a lottery each changed resident is placed in the"
        " pool one by one"
    )
    return f"{how}, and the pool has {n:,} residents (more than what_if_limit = {what_if_limit:,})"


def _evaluation_of(
    source: Evaluation | Policy | CompiledPolicy, residents: Population | Any
) -> Evaluation:
    if isinstance(source, Evaluation):
        if residents is not None:
            raise ArgumentTypeError(
                "FA641",
                "residents are given with a policy, not with an evaluation",
                argument="residents",
            )
        return source
    if residents is None:
        raise ArgumentTypeError("FA642", "give the residents to audit", argument="residents")
    cp = source if isinstance(source, CompiledPolicy) else compiled_for(source, audit=True)
    return evaluate(cp, residents)


def _attributes_to_audit(cp: CompiledPolicy, attributes: Sequence[str] | None) -> list[str]:
    p = cp.policy
    if attributes is None:
        return list(p.protected_attributes)
    if isinstance(attributes, str):
        raise ArgumentTypeError(
            "FA643",
            "give a list of attribute names, not one string",
            argument="attributes",
            value=attributes,
        )
    out: list[str] = []
    for name in attributes:
        if name not in p.attributes:
            known = ", ".join(a for a in p.attributes if a != p.id_attribute)
            raise ArgumentError(
                "FA602",
                f"unknown attribute `{name}`; attributes: {known}",
                argument="attributes",
                value=name,
                valid=known,
            )
        if name == p.id_attribute:
            raise ArgumentError(
                "FA603",
                f"`{name}` is the id, which no rule may read",
                argument="attributes",
                value=name,
            )
        if name not in out:
            out.append(name)
    return out


def _served_capacity(cp: CompiledPolicy, capacity: int | None) -> tuple[int | None, str | None]:
    """The capacity for served status, or None and the reason it is not computed."""
    spec = cp.policy.allocation
    if capacity is not None and capacity < 0:
        raise ArgumentError(
            "FA601",
            f"capacity must be at least 0, got {capacity}",
            argument="capacity",
            value=capacity,
        )
    if spec is not None and spec.matching is not None:
        # Each resource has its own capacity; served means holding a unit of any of them.
        return sum(r.capacity for r in spec.matching.resources), None
    if spec is not None and spec.rotation is not None:
        from fairalloc.allocation._rotation import _capacity_of

        try:  # the round's own rule: capacity=, else the rotation's, else the allocation's
            return _capacity_of(spec, spec.rotation, capacity), None
        except AllocationError:
            return None, "no capacity (give capacity= or `allocation.rotation.capacity`)"
    units = capacity if capacity is not None else (spec.capacity if spec is not None else None)
    if units is None:
        return None, "no capacity (give capacity= or `allocation.capacity`)"
    return units, None


def _alternatives(attr: Attribute, column: np.ndarray) -> list[tuple[Any, str]]:
    """The encoded values to try, with how they are written in data."""
    if attr.type in ("category", "ordinal"):
        return [(k, level) for k, level in enumerate(attr.levels or ())]
    if attr.type == "bool":
        return [(False, "false"), (True, "true")]
    lo: float | None
    hi: float | None
    if attr.type == "date":
        lo = float((attr.min - _EPOCH).days) if isinstance(attr.min, dt.date) else None
        hi = float((attr.max - _EPOCH).days) if isinstance(attr.max, dt.date) else None
    else:
        lo = float(attr.min) if isinstance(attr.min, int | float) else None
        hi = float(attr.max) if isinstance(attr.max, int | float) else None
    found: list[Any] = []
    if len(column):
        found = np.quantile(column, [0.25, 0.5, 0.75], method="lower").tolist()
        lo = float(column.min()) if lo is None else lo
        hi = float(column.max()) if hi is None else hi
    values = sorted({v for v in (lo, hi, *found) if v is not None})
    return [(v, _written(attr, v)) for v in values]


def _written(attr: Attribute, value: Any) -> str:
    if attr.type == "date":
        return (_EPOCH + dt.timedelta(days=int(value))).isoformat()
    if attr.type == "int":
        return str(int(value))
    return str(float(value))


def _summary(
    name: str, status: Status, results: list[FlipResult], *, served: bool
) -> AttributeFlips:
    parts = tuple(dict.fromkeys(p for r in results for p in r.parts))
    bad = tuple(dict.fromkeys(p for r in results for p in r.unjustified_parts))
    return AttributeFlips(
        attribute=name,
        status=status,
        evaluated=True,
        values=tuple(r.value for r in results),
        n_compared=sum(r.n_compared for r in results),
        eligibility_changes=sum(r.eligibility_changes for r in results),
        score_changes=sum(r.score_changes for r in results),
        rank_changes=sum(r.rank_changes for r in results),
        served_changes=sum(r.served_changes or 0 for r in results) if served else None,
        allocation_changes=sum(r.allocation_changes for r in results),
        affected=sum(r.affected for r in results),
        max_affected_rate=max((r.affected_rate for r in results), default=0.0),
        parts=parts,
        unjustified_parts=bad,
    )


# -- comparing with the original --------------------------------------------------------------


def _trace_columns(cp: CompiledPolicy) -> list[TraceColumn]:
    # In the order of the policy's parts, as the static proof lists them.
    place = {part: i for i, part in enumerate(cp.reads)}
    return sorted(cp.trace_columns(), key=lambda t: place.get(t.part, len(place)))


@dataclass(frozen=True)
class Changes:
    """What changing one attribute changed, for each compared resident (its own row only).

    Attributes:
        e0: Eligible before.
        e1: Eligible after.
        s0: Score before, in micro-points.
        s1: Score after.
        score: Whether the score changed (for ``tiers``: any tier).
        key: Whether the sort key changed (the score, or a tie-break value).
        by_part: Per part of the policy, whether its verdict or points changed.
        alloc: Whether an input of the allocation mechanism changed.
    """

    e0: npt.NDArray[np.bool_]
    e1: npt.NDArray[np.bool_]
    s0: npt.NDArray[np.int64]
    s1: npt.NDArray[np.int64]
    score: npt.NDArray[np.bool_]
    key: npt.NDArray[np.bool_]
    by_part: dict[str, npt.NDArray[np.bool_]]
    alloc: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Shape:
    """What the comparison of two evaluations of a policy reads: its trace, parts and keys."""

    trace: list[TraceColumn]
    parts: list[str]
    tiers: bool
    tie_columns: list[int]

    @classmethod
    def of(cls, cp: CompiledPolicy) -> Shape:
        """The shape of ``cp``'s evaluations."""
        trace = _trace_columns(cp)
        return cls(
            trace=trace,
            parts=list(dict.fromkeys(t.part for t in trace)),
            tiers=cp.policy.score.method == "tiers",
            tie_columns=[j for j, t in enumerate(cp._tie_breaks) if t.kernel is not None],
        )

    def changes(self, ev: Evaluation, ev2: Evaluation, rows: npt.NDArray[np.intp]) -> Changes:
        """Compare ``rows`` of ``ev2`` (changed) with ``ev``: each resident's own row only.

        Eligibility, score, points and tie-break values depend on the resident's own data,
        so this part of the comparison is the same in any part of the population.
        """
        e0, e1 = ev.eligible[rows], ev2.eligible[rows]
        s0, s1 = ev.score_micro[rows], ev2.score_micro[rows]
        score_changed = s0 != s1
        if self.tiers:
            score_changed |= (ev.terms[rows] != ev2.terms[rows]).any(axis=1)
        # The sort key is the score (for tiers: every tier), then each tie-break value.
        key_changed = score_changed.copy()
        for j in self.tie_columns:
            key_changed |= (ev.tie_values[:, j] != ev2.tie_values[:, j])[rows]
        # Which parts changed, from the trace arrays.
        by_part = {p: np.zeros(len(rows), dtype=bool) for p in self.parts}
        alloc = np.zeros(len(rows), dtype=bool)
        for t in self.trace:
            a0, a1 = t.values(ev), t.values(ev2)
            if _same_memory(a0, a1):
                continue  # a part not run again shares the base's array: nothing changed
            # Compare whole columns (contiguous reads), then pick the compared rows.
            diff = (a0 != a1)[rows]
            by_part[t.part] |= diff
            if t.allocation:
                alloc |= diff
        return Changes(e0, e1, s0, s1, score_changed, key_changed, by_part, alloc)


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are views of the same values (same start, shape and strides)."""
    return bool(
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )


class _Baseline:
    """The original evaluation, ranking and allocation, prepared for many comparisons."""

    def __init__(
        self,
        ev: Evaluation,
        units: int | None,
        state: RotationState | None = None,
        keys: LotteryKeys | None = None,
    ) -> None:
        self.ev = ev
        self.units = units
        #: Values may be compared in several threads: what they work out once and keep (keys,
        #: codes, id ranks) is worked out under this lock.
        self._lock = threading.RLock()
        cp = ev.policy
        ranking = ev.ranking
        self.order = ranking.order
        self.rank = ranking.rank
        n = ev.n
        self.pos = np.full(n, -1, dtype=np.int64)
        self.pos[self.order] = np.arange(len(self.order), dtype=np.int64)
        self.served = (
            (self.pos >= 0) & (self.pos < units) if units is not None else np.zeros(n, dtype=bool)
        )
        spec = cp.policy.allocation
        #: Under reserve categories or a lottery mechanism, who is served is not a place in the
        #: ranking: each changed resident is placed by the what-if allocation explanations use
        #: ("the same pool with one resident changed", exact), from this allocation.
        self.alloc: Allocation | None = None
        #: Under rotation or matching the mechanism is re-run whole for each changed resident,
        #: by the what-if explanations use.
        self.rerun: _Rerun | None = None
        if units is not None and spec is not None and (spec.rotation or spec.matching):
            self.rerun = _Rerun(ev, capacity=units if spec.rotation else None, state=state)
            self.served = self.rerun.served.copy()
        elif (
            units is not None
            and spec is not None
            and (spec.reserves or spec.mechanism != "priority")
        ):
            self.alloc = allocate_evaluation(ev, capacity=units, measure_only=True)
            self.served = np.asarray(self.alloc.served, dtype=bool).copy()
        self.shape = Shape.of(cp)
        self.parts = self.shape.parts
        self.seed = cp.lottery_seed
        last: tuple[npt.NDArray[np.int64], int] | None = None
        if self.seed is not None:
            #: The residents' lottery keys: the audit's shared table, or the ranking's own.
            self._drawn = keys if keys is not None else LotteryKeys.drawn_by(ranking, self.seed)
            drawn = self._keys(self.order)
            self._lottery_values = distinct(drawn)
            self._lottery_code = np.full(n, -1, dtype=np.int64)
            self._lottery_code[self.order] = _code(self._lottery_values, drawn)
            last = (self._lottery_code[self.order], 2 * len(self._lottery_values) + 2)
        self.index = _KeyIndex(_sort_keys(ev, self.order), last, len(self.order))
        self._id_rank: npt.NDArray[np.int64] | None = None
        self._packed: npt.NDArray[np.int64] | None = None
        self._prefix: npt.NDArray[np.int64] | None = None
        self._placed: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    # -- keys ----------------------------------------------------------------------------
    def _original_prefix(self) -> npt.NDArray[np.int64]:
        """Every resident's original sort key as :meth:`_KeyIndex.prefix` codes (computed once)."""
        with self._lock:
            if self._prefix is None:
                n = self.ev.n
                self._prefix = self.index.prefix(_sort_keys(self.ev, np.arange(n)), n)
            return self._prefix

    def _original_place(
        self, rows: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The codes of ``rows``' original keys and where they fall among the index's codes.

        Worked out once for each resident and kept: the same for every value audited.
        """
        with self._lock:
            if self._placed is None:
                n = self.ev.n
                self._placed = (np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64))
            codes, lo = self._placed
            todo = rows[lo[rows] < 0]
            if len(todo):
                last = self._lottery_codes(todo) if self.seed is not None else None
                mine = self.index.complete(self._original_prefix()[todo], last)
                codes[todo] = mine
                lo[todo] = _searchsorted(self.index.codes, mine, "left")
            return codes[rows], lo[rows]

    def _keys(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64]:
        """The lottery keys of ``rows``, drawing (once) those not known yet."""
        assert self.seed is not None
        return self._drawn.of(self.seed, rows)

    def _lottery_codes(self, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
        """The lottery keys of ``rows`` coded among the original keys (coded once, kept)."""
        with self._lock:
            codes = self._lottery_code[rows]
            new = codes < 0
            if new.any():
                todo = rows[new]
                codes[new] = self._lottery_code[todo] = _code(
                    self._lottery_values, self._keys(todo)
                )
            return codes

    def id_rank(self) -> npt.NDArray[np.int64]:
        """Each resident's position in id order (computed once)."""
        with self._lock:
            if self._id_rank is None:
                n = self.ev.n
                order = self.ev.id_column.sort_order()  # often already in id order
                rank = np.empty(n, dtype=np.int64)
                rank[order] = np.arange(n, dtype=np.int64)
                self._id_rank = rank
            return self._id_rank

    def _before_in_group(
        self, rows: npt.NDArray[np.intp], lo: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.int64]:
        """Residents with the same key as ``rows``' new keys that the listing puts first (by id)."""
        width = self.ev.n + 1
        with self._lock:
            if self._packed is None:
                codes = self.index.codes
                starts = np.searchsorted(codes, codes, side="left").astype(np.int64)
                self._packed = starts * width + self.id_rank()[self.order]
        packed = lo.astype(np.int64) * width + self.id_rank()[rows]
        return np.searchsorted(self._packed, packed, side="left").astype(np.int64) - lo

    def _what_if(
        self, ev2: Evaluation, rows: npt.NDArray[np.intp], changed: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_]:
        """Served status of each of ``rows`` with only that resident changed (as in ``ev2``).

        A resident whose eligibility, sort key and allocation inputs are unchanged is served as
        before; every other one is placed among everybody else, unchanged, by the what-if
        allocation that explanations use (exact; a tie the mechanism would refuse keeps the
        status as it was).
        """
        assert self.alloc is not None
        served1 = self.served[rows].copy()
        for k in np.flatnonzero(changed).tolist():
            r = int(rows[k])
            if not ev2.eligible[r]:
                served1[k] = False
                continue
            world = _World(self.ev, r, self.alloc, None)
            got = world.served(ev2, r, exact=True)
            if got is not None:
                served1[k] = got
        return served1

    # -- one changed population ------------------------------------------------------------
    def compare(
        self,
        ev2: Evaluation,
        attribute: str,
        value: str,
        rows: npt.NDArray[np.intp],
        allowed: set[str],
        max_listed: int,
    ) -> FlipResult:
        """Compare each of ``rows`` in ``ev2`` (changed) with the original."""
        ev = self.ev
        c = self.shape.changes(ev, ev2, rows)
        e0, e1, s0, s1 = c.e0, c.e1, c.s0, c.s1
        score_changed, key_changed, by_part, alloc = c.score, c.key, c.by_part, c.alloc
        rank1, pos1 = self._new_positions(ev2, rows, e0 & e1 & ~key_changed, e1, key_changed)
        rank0 = self.rank[rows]
        rank_changed = rank0 != rank1
        served0 = self.served[rows]
        # Only a resident whose eligibility, sort key or allocation inputs changed can be
        # served otherwise (under rotation or matching, also any change the mechanism reads).
        touched = (e0 != e1) | key_changed | alloc
        if self.rerun is not None:
            if self.rerun.reads(attribute):
                touched[:] = True
            served1 = served0.copy()
            assert ev2.population is not None
            codes = ev2.population.columns[attribute]
            for k in np.flatnonzero(touched).tolist():
                r = int(rows[k])
                served1[k] = self.rerun.served_if(r, attribute, codes[r])
        elif self.alloc is not None:
            served1 = self._what_if(ev2, rows, touched)
        else:
            served1 = e1 & (pos1 >= 0) & (pos1 < (self.units or 0))
        served_changed = served0 != served1 if self.units is not None else np.zeros_like(e0)
        affected = (e0 != e1) | score_changed | rank_changed | served_changed | alloc
        parts = tuple(p for p in self.parts if by_part[p].any())
        listed = self._listed(rows, affected, max_listed)
        residents = []
        for k in listed:
            r = int(rows[k])
            residents.append(
                AffectedResident(
                    id=str(ev.id_column[r]),
                    parts=tuple(p for p in parts if by_part[p][k]),
                    eligible=(bool(e0[k]), bool(e1[k])),
                    score=(int(s0[k]) / MICRO, int(s1[k]) / MICRO),
                    rank=(int(rank0[k]), int(rank1[k])),
                    served=(bool(served0[k]), bool(served1[k])) if self.units is not None else None,
                )
            )
        return FlipResult(
            attribute=attribute,
            value=value,
            n_compared=len(rows),
            eligibility_changes=int((e0 != e1).sum()),
            score_changes=int(score_changed.sum()),
            rank_changes=int(rank_changed.sum()),
            served_changes=int(served_changed.sum()) if self.units is not None else None,
            allocation_changes=int(alloc.sum()),
            affected=int(affected.sum()),
            parts=parts,
            unjustified_parts=tuple(p for p in parts if p not in allowed),
            listed=tuple(residents),
        )

    def _new_positions(
        self,
        ev2: Evaluation,
        rows: npt.NDArray[np.intp],
        same: npt.NDArray[np.bool_],
        e1: npt.NDArray[np.bool_],
        key_changed: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Rank (0: not eligible) and 0-based listing position (-1) of each of ``rows``.

        Each resident is changed alone: everybody else keeps their original key. ``same``:
        eligible before and after, with the same key; ``e1``: eligible after; ``key_changed``:
        the sort key (score, tie-break values) differs.
        """
        rank = np.zeros(len(rows), dtype=np.int64)
        pos = np.full(len(rows), -1, dtype=np.int64)
        # Same key, same others: same rank and position.
        rank[same] = self.rank[rows[same]]
        pos[same] = self.pos[rows[same]]
        need = e1 & ~same
        if not need.any():
            return rank, pos
        q = rows[need]
        sorted_codes = self.index.codes
        codes = np.empty(len(q), dtype=np.int64)
        lo = np.empty(len(q), dtype=np.int64)
        moved = key_changed[need]
        if not moved.all():
            # A key that did not change (eligibility did) is placed once for every value.
            codes[~moved], lo[~moved] = self._original_place(q[~moved])
        if moved.any():
            qm = q[moved]
            last = self._lottery_codes(qm) if self.seed is not None else None
            new = self.index.complete(self.index.prefix(_sort_keys(ev2, qm), len(qm)), last)
            codes[moved] = new
            lo[moved] = _searchsorted(sorted_codes, new, "left")
        hi = lo.copy()
        if len(sorted_codes):
            # Equal keys (ties on the whole chain) are rare with a lottery: search only for them.
            hit = (lo < len(sorted_codes)) & (
                sorted_codes[np.minimum(lo, len(sorted_codes) - 1)] == codes
            )
            if hit.any():
                hi[hit] = _searchsorted(sorted_codes, codes[hit], "right")
        own = self.pos[q]
        was = own >= 0
        own_code = np.where(was, sorted_codes[np.maximum(own, 0)] if len(sorted_codes) else 0, 0)
        # Leave the resident's own original entry out of the count.
        less = lo - (was & (own_code < codes))
        ties = hi - lo - (was & (own_code == codes))
        before = less.astype(np.int64)
        tied = ties > 0
        if tied.any():
            before[tied] += self._before_in_group(q[tied], lo[tied])
        rank[need] = 1 + less
        pos[need] = before
        return rank, pos

    def _listed(
        self, rows: npt.NDArray[np.intp], affected: npt.NDArray[np.bool_], k: int
    ) -> list[int]:
        """Indexes into ``rows`` of the first ``k`` affected residents by id, in id order."""
        hits = np.flatnonzero(affected)
        if not len(hits) or k == 0:
            return []
        ids = self.ev.ids
        if len(hits) <= _HEAP_LIMIT:
            return heapq.nsmallest(k, hits.tolist(), key=lambda h: str(ids[rows[h]]))
        ranks = self.id_rank()[rows[hits]]
        first = np.argpartition(ranks, min(k, len(hits) - 1))[:k]
        return [int(h) for h in hits[first[np.argsort(ranks[first])]]]


@dataclass(frozen=True, slots=True)
class _Step:
    kind: Literal["values", "dense", "coded"]
    values: np.ndarray | None
    radix: int


class _KeyIndex:
    """Multi-column sort keys as one int64 per resident, order and equality preserved exactly.

    Built from the original eligible residents' keys in the ranking's order; :meth:`encode`
    maps any other keys to integers that compare with :attr:`codes` as the keys would.
    """

    _LIMIT = 1 << 62

    def __init__(
        self,
        columns: list[np.ndarray],
        last: tuple[npt.NDArray[np.int64], int] | None,
        m: int,
    ) -> None:
        self.steps: list[_Step] = []
        acc = np.zeros(m, dtype=np.int64)
        bound = 1  # acc < bound
        specs: list[tuple[np.ndarray | None, npt.NDArray[np.int64] | None, int]] = []
        for column in columns:
            distinct_values = distinct(column)
            specs.append((distinct_values, None, 2 * len(distinct_values) + 2))
        if last is not None:
            specs.append((None, last[0], last[1]))
        col = 0
        for values, coded, radix in specs:
            if bound * radix >= self._LIMIT:
                dense = distinct(acc)
                self.steps.append(_Step("dense", dense, 0))
                acc = _code(dense, acc)
                bound = 2 * len(dense) + 2
            if bound * radix >= self._LIMIT:  # pragma: no cover - beyond 2**30 residents
                raise OverflowError("too many distinct sort keys to index")
            if values is not None:
                self.steps.append(_Step("values", values, radix))
                acc = acc * radix + _code(values, columns[col])
                col += 1
            else:
                assert coded is not None
                self.steps.append(_Step("coded", None, radix))
                acc = acc * radix + coded
            bound *= radix
        if len(acc) > 1 and bool((acc[1:] < acc[:-1]).any()):
            # The ranking's order is sorted by these keys; anything else is a bug to report.
            raise AssertionError("the ranking's order disagrees with its sort keys")
        #: The original residents' codes, in the ranking's order (non-decreasing).
        self.codes = acc

    def encode(
        self, columns: list[np.ndarray], last: npt.NDArray[np.int64] | None
    ) -> npt.NDArray[np.int64]:
        """Codes of other keys (same columns; ``last``: precomputed codes of the last one)."""
        n = len(columns[0]) if columns else (len(last) if last is not None else 0)
        return self.complete(self.prefix(columns, n), last)

    def prefix(self, columns: list[np.ndarray], n: int) -> npt.NDArray[np.int64]:
        """The codes of ``columns`` alone, before the last key's (see :meth:`complete`)."""
        acc = np.zeros(n, dtype=np.int64)
        col = 0
        for step in self.steps:
            if step.kind == "dense":
                assert step.values is not None
                acc = _code(step.values, acc)
            elif step.kind == "values":
                assert step.values is not None
                acc = acc * step.radix + _code(step.values, columns[col])
                col += 1
            else:  # the last key's step is the last step
                break
        return acc

    def complete(
        self, prefix: npt.NDArray[np.int64], last: npt.NDArray[np.int64] | None
    ) -> npt.NDArray[np.int64]:
        """Codes from :meth:`prefix` codes and the last key's codes (when it has a step)."""
        if not self.steps or self.steps[-1].kind != "coded":
            return prefix
        assert last is not None
        return prefix * self.steps[-1].radix + last


def _code(values: np.ndarray, x: np.ndarray) -> npt.NDArray[np.int64]:
    """Order-preserving integer codes of ``x`` relative to sorted distinct ``values``.

    ``2r + 1`` where ``x`` equals the ``r``-th value, ``2r`` where it falls just before it: the
    codes compare with each other exactly as the values do.
    """
    r = _searchsorted(values, x, "left").astype(np.int64)
    if not len(values):
        return np.zeros(len(x), dtype=np.int64)
    exact = values[np.minimum(r, len(values) - 1)] == x
    return np.asarray(2 * r + exact, dtype=np.int64)


#: Above this many needles and values, needles are sorted before a binary search: the searches
#: then walk the values in order, which is several times faster than random probes.
_SORT_NEEDLES = 1 << 16


def _searchsorted(
    values: np.ndarray, x: np.ndarray, side: Literal["left", "right"]
) -> npt.NDArray[np.intp]:
    """:func:`numpy.searchsorted`, the same result, faster for many needles in a long array."""
    if len(x) < _SORT_NEEDLES or len(values) < _SORT_NEEDLES:
        return np.searchsorted(values, x, side=side)
    order = np.argsort(x, kind="stable")
    out = np.empty(len(x), dtype=np.intp)
    out[order] = np.searchsorted(values, x[order], side=side)
    return out
