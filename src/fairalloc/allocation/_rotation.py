"""Fair rotation (§2.1.1, 轮候): a waiting list served over successive rounds.

:func:`simulate` runs a policy's ``allocation.rotation`` for a number of rounds (weeks, months).
Each round:

1. residents leave (``departures``) and join (``arrivals``);
2. the policy is evaluated over the residents present, by :func:`fairalloc.evaluate` (rules are
   never applied anywhere else);
3. the eligible residents are ordered by, in sequence:

   * guaranteed first: with ``max_wait``, those who have waited at least ``max_wait`` rounds;
   * times served, fewest first (with ``served_go_last``, the default);
   * need band, highest first (with ``bands``);
   * effective score, highest first: the score plus ``points_per_round`` for every round waited,
     in exact micro-points (``score_micro + micro(points_per_round) * rounds_waited``; with
     ``score: {method: tiers}``, the first tier, the later tiers deciding through the ranking);
   * rounds waited, most first;
   * the policy's ranking (score, tie-break chain, published-seed lottery), and for residents
     whom the ranking leaves tied, the published lottery key of (seed, id);

4. the first ``capacity`` of that order are served;
5. those served have their wait reset and their count of services increased; the eligible not
   served wait one round more; every resident not served has each ``accrue`` attribute increased
   by its amount per round (kept within the attribute's declared ``min`` and ``max``), which the
   next round's evaluation reads.

A *wait* counts rounds in which the resident was eligible and not served: rounds in which a
resident is not eligible (or not present) do not count. Neither row order nor the value of an id
ever decides who is served: if residents still tied after the whole order straddle the capacity
and the policy publishes no lottery seed, :func:`simulate` raises instead of choosing.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._escape import csv_text, html_text
from fairalloc._explainable import Explainable
from fairalloc._html import table as html_table
from fairalloc._io import atomic_write
from fairalloc._numeric import micro_scalar
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import lottery_keys
from fairalloc.errors import AllocationError, AllocationReason, ArgumentError, ArgumentTypeError
from fairalloc.policy._model import AllocationSpec, Policy, Rotation

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._evaluation import Evaluation

__all__ = ["Simulation", "simulate"]

#: The largest effective score bonus, in micro-points: with scores below 10**18 micro-points
#: (see :mod:`fairalloc._numeric`), sums stay inside int64.
_MAX_BONUS = 8 * 10**18


def simulate(
    policy: Policy | CompiledPolicy,
    residents: Population | Any,
    *,
    rounds: int,
    capacity: int | None = None,
    arrivals: Mapping[int, Any] | None = None,
    departures: Mapping[int, Iterable[str]] | None = None,
) -> Simulation:
    """Serve the policy's rotation (``allocation.rotation``) for ``rounds`` rounds.

    See the module documentation for the order within a round and what changes between rounds.

    Args:
        policy: A policy from :func:`fairalloc.load_policy` (or a compiled one) with an
            ``allocation.rotation`` section.
        residents: The residents at the start: a :class:`~fairalloc.Population` or anything
            :meth:`Population.load <fairalloc.Population.load>` accepts.
        rounds: Rounds to run (at least 1).
        capacity: Residents served per round; by default ``allocation.rotation.capacity``, else
            ``allocation.capacity``.
        arrivals: Residents joining before a round, by round (1 to ``rounds``): anything
            :meth:`Population.load <fairalloc.Population.load>` accepts. Their ids must be new.
        departures: Ids of residents leaving before a round, by round; departures are applied
            before that round's arrivals.

    Returns:
        The :class:`Simulation`: who was served in each round, and every resident's waits.

    Raises:
        ValueError: if the policy has no rotation, no capacity is known, a round number is out of
            range, an ``accrue`` entry does not fit its attribute, a departing id is not present,
            an arriving id is not new, or residents still tied after the whole order straddle the
            capacity and the policy publishes no lottery seed.
        PopulationError: if residents do not fit the policy's attribute schema.
        EvaluationError: if a rule cannot be applied to some residents in some round.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   need: {type: int, min: 0, max: 10}
        ... rules:
        ...   priority: [{id: need-points, points: "need"}]
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {rotation: {capacity: 1}}
        ... ''')
        >>> people = [{"id": "a", "need": 3}, {"id": "b", "need": 7}, {"id": "c", "need": 5}]
        >>> from fairalloc import simulate
        >>> simulate(policy, people, rounds=4).served
        [['b'], ['c'], ['a'], ['b']]
    """
    model = policy.policy if isinstance(policy, CompiledPolicy) else policy
    spec, rotation = _rotation_of(model)
    units = _capacity_of(spec, rotation, capacity)
    if isinstance(rounds, bool) or not isinstance(rounds, int):
        raise ArgumentTypeError(
            "FA643", f"rounds must be a whole number, got {rounds!r}", argument="rounds"
        )
    if rounds < 1:
        raise ArgumentError(
            "FA600", f"rounds must be at least 1, got {rounds}", argument="rounds", value=rounds
        )
    joining = _schedule("arrivals", arrivals, rounds)
    leaving = {
        r: _departing_ids(r, ids) for r, ids in _schedule("departures", departures, rounds).items()
    }
    accrue = _accruals(model, rotation)
    bonus = micro_scalar(rotation.points_per_round)
    if bonus * rounds > _MAX_BONUS:
        raise AllocationError(
            "FA660",
            AllocationReason.SCORE_OUT_OF_RANGE,
            f"points_per_round {rotation.points_per_round} over {rounds} rounds exceeds the"
            " largest score fairalloc can add exactly",
        )
    seed = _ranking_seed(model)

    population = _load(residents, model, "residents")
    ledger = _Ledger(seed)
    rows = ledger.add(population.ids, 0)  # ledger entry of each population row
    served_by_round: list[list[str]] = []
    eligible_by_round: list[int] = []
    present_by_round: list[int] = []
    for r in range(1, rounds + 1):
        if r in leaving:
            population, rows = _depart(population, rows, ledger, leaving[r], r)
        if r in joining:
            newcomers = _load(joining[r], model, f"arrivals[{r}]")
            rows = np.concatenate([rows, ledger.add(newcomers.ids, r)])
            population = _concat(population, newcomers)
        ev = evaluate(policy, population)
        ev.policy.refuse_if_audit_only("simulate rounds")
        eligible = np.flatnonzero(ev.eligible)
        order = _order(ev, eligible, ledger, rows, rotation, bonus, units, r)
        served_rows = eligible[order[:units]]
        waiting_rows = eligible[order[units:]]
        served_by_round.append([str(i) for i in population.ids[served_rows]])
        eligible_by_round.append(len(eligible))
        present_by_round.append(population.n)
        ledger.serve(rows[served_rows], r)
        ledger.wait(rows[waiting_rows])
        ledger.eligible_rounds[rows[eligible]] += 1
        if accrue:
            population = _accrue(population, served_rows, accrue)
    ledger.close(rows)
    cp = ev.policy
    return Simulation(
        policy=cp,
        rotation=rotation,
        capacity=units,
        served=served_by_round,
        eligible=eligible_by_round,
        present=present_by_round,
        ledger=ledger,
        population=population,
    )


# -- checks -------------------------------------------------------------------------------------


def _rotation_of(model: Policy) -> tuple[AllocationSpec, Rotation]:
    spec = model.allocation
    if spec is None:
        raise AllocationError(
            "FA650",
            AllocationReason.NO_SECTION,
            "the policy has no `allocation` section; a simulation needs `allocation.rotation`",
        )
    if spec.rotation is None:
        raise AllocationError(
            "FA650",
            AllocationReason.NO_SECTION,
            "the policy's allocation has no `rotation` section; a simulation needs"
            " `allocation.rotation`",
        )
    if spec.matching is not None:
        raise AllocationError(
            "FA652",
            AllocationReason.OTHER_MECHANISM,
            "`allocation.matching` and `allocation.rotation` cannot be simulated together",
        )
    if spec.reserves:
        raise AllocationError(
            "FA652",
            AllocationReason.OTHER_MECHANISM,
            "`allocation.reserves` are not applied by a rotation; remove them or allocate each"
            " round with fairalloc.allocate()",
        )
    if spec.mechanism != "priority":
        raise AllocationError(
            "FA652",
            AllocationReason.OTHER_MECHANISM,
            f"a rotation orders residents by the policy's ranking; `mechanism: {spec.mechanism}`"
            " is not supported with `allocation.rotation`",
        )
    return spec, spec.rotation


def _capacity_of(spec: AllocationSpec, rotation: Rotation, capacity: int | None) -> int:
    if capacity is not None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise ArgumentTypeError(
                "FA643", f"capacity must be a whole number, got {capacity!r}", argument="capacity"
            )
        if capacity < 0:
            raise ArgumentError(
                "FA601",
                f"capacity must be at least 0, got {capacity}",
                argument="capacity",
                value=capacity,
            )
        return capacity
    if rotation.capacity is not None:
        return rotation.capacity
    if spec.capacity is not None:
        return spec.capacity
    raise AllocationError(
        "FA654",
        AllocationReason.NO_CAPACITY,
        "no capacity: give capacity=, `allocation.rotation.capacity` or `allocation.capacity`",
    )


def _schedule(what: str, given: Mapping[int, Any] | None, rounds: int) -> dict[int, Any]:
    if given is None:
        return {}
    out: dict[int, Any] = {}
    for r, v in given.items():
        if isinstance(r, bool) or not isinstance(r, int | np.integer):
            raise ArgumentTypeError(
                "FA643", f"{what} are keyed by round number, got {r!r}", argument=what, value=r
            )
        if not 1 <= int(r) <= rounds:
            raise ArgumentError(
                "FA614",
                f"{what} for round {r}, but the rounds run are 1 to {rounds}",
                argument=what,
                value=r,
            )
        out[int(r)] = v
    return out


def _departing_ids(r: int, ids: Iterable[str]) -> list[str]:
    if isinstance(ids, str | bytes):
        raise ArgumentTypeError(
            "FA643",
            f"departures[{r}] must be a collection of ids, not the string {ids!r}",
            argument=f"departures[{r}]",
        )
    out = [str(i) for i in ids]
    seen: set[str] = set()
    for i in out:
        if i in seen:
            raise ArgumentError(
                "FA614",
                f"departures[{r}] lists resident {i!r} twice",
                argument=f"departures[{r}]",
                value=i,
            )
        seen.add(i)
    return out


def _accruals(model: Policy, rotation: Rotation) -> dict[str, tuple[float, float, float]]:
    """``{attribute: (per_round, lowest, highest)}``, checked against the attribute schema."""
    out: dict[str, tuple[float, float, float]] = {}
    for name, per_round in rotation.accrue.items():
        attr = model.attributes.get(name)
        if attr is None:
            raise AllocationError(
                "FA653",
                AllocationReason.INVALID_SECTION,
                f"`allocation.rotation.accrue` names unknown attribute `{name}`; attributes: "
                + ", ".join(model.attributes),
            )
        if attr.type not in ("int", "float") or attr.role == "id":
            raise AllocationError(
                "FA653",
                AllocationReason.INVALID_SECTION,
                f"`allocation.rotation.accrue` adds to `{name}`, whose type is {attr.type};"
                " only int and float attributes can accrue",
            )
        if attr.type == "int" and float(per_round) != int(per_round):
            raise AllocationError(
                "FA653",
                AllocationReason.INVALID_SECTION,
                f"`allocation.rotation.accrue` adds {per_round} to `{name}` each round, but"
                f" `{name}` holds whole numbers",
            )
        lo = float(attr.min) if isinstance(attr.min, int | float) else -np.inf
        hi = float(attr.max) if isinstance(attr.max, int | float) else np.inf
        out[name] = (float(per_round), lo, hi)
    return out


def _ranking_seed(model: Policy) -> str | None:
    chain = model.ranking.tie_break
    last = chain[-1].lottery if chain else None
    return last.seed if last is not None else None


# -- rounds -------------------------------------------------------------------------------------


def _load(data: Any, model: Policy, what: str) -> Population:
    source = str(data) if isinstance(data, str | os.PathLike) else what
    return Population.load(data, model, source=source)


def _concat(a: Population, b: Population) -> Population:
    if set(a.columns) != set(b.columns):
        raise ArgumentError(
            "FA614",
            "arriving residents have other columns than those present: "
            + ", ".join(sorted(set(a.columns) ^ set(b.columns))),
            argument="arrivals",
        )
    filled = {
        k: np.concatenate(
            [a.filled.get(k, np.zeros(a.n, dtype=bool)), b.filled.get(k, np.zeros(b.n, dtype=bool))]
        )
        for k in {*a.filled, *b.filled}
    }
    return Population(
        np.concatenate([a.ids, b.ids]),
        {k: np.concatenate([v, b.columns[k]]) for k, v in a.columns.items()},
        a.schema,
        filled=filled,
        source=a.source,
        ignored_columns=a.ignored_columns,
    )


def _depart(
    population: Population,
    rows: npt.NDArray[np.intp],
    ledger: _Ledger,
    ids: list[str],
    r: int,
) -> tuple[Population, npt.NDArray[np.intp]]:
    where = np.full(len(ledger.ids), -1, dtype=np.intp)
    where[rows] = np.arange(len(rows))
    gone = np.empty(len(ids), dtype=np.intp)
    for k, rid in enumerate(ids):
        entry = ledger.index.get(rid)
        if entry is None:
            raise ArgumentError(
                "FA614",
                f"departures[{r}]: no resident has id {rid!r}",
                argument=f"departures[{r}]",
                value=rid,
            )
        if where[entry] < 0:
            raise ArgumentError(
                "FA614",
                f"departures[{r}]: resident {rid!r} already left in round"
                f" {int(ledger.departed[entry])}",
                argument=f"departures[{r}]",
                value=rid,
            )
        gone[k] = where[entry]
    ledger.leave(rows[gone], r)
    keep = np.ones(population.n, dtype=bool)
    keep[gone] = False
    kept = np.flatnonzero(keep)
    return population.take(kept), rows[kept]


def _order(
    ev: Evaluation,
    eligible: npt.NDArray[np.intp],
    ledger: _Ledger,
    rows: npt.NDArray[np.intp],
    rotation: Rotation,
    bonus: int,
    units: int,
    r: int,
) -> npt.NDArray[np.intp]:
    """Positions in ``eligible``, first served first (see the module documentation)."""
    entries = rows[eligible]
    waited = ledger.waiting[entries]
    keys: list[np.ndarray] = []  # most significant first
    if rotation.max_wait is not None:
        keys.append(waited < rotation.max_wait)  # False (guaranteed) sorts first
    if rotation.served_go_last:
        keys.append(ledger.times_served[entries])
    if rotation.bands is not None:
        keys.append(-ev.rotation_band[eligible] + 0.0)
    keys.append(-(ev.score_micro[eligible] + np.int64(bonus) * waited))
    keys.append(-waited)
    keys.append(ev.ranking.rank[eligible])
    if ledger.seed is not None:
        keys.append(ledger.key[entries])
        return np.lexsort(keys[::-1])
    # No published lottery: a tie across the capacity cannot be decided, and ties inside or
    # outside the served group are listed by id only for a stable display.
    order = np.lexsort([ev.ids[eligible].astype(str), *keys[::-1]])
    if 0 < units < len(order):
        a, b = order[units - 1], order[units]
        if all(k[a] == k[b] for k in keys):
            ids = ev.ids[eligible]
            raise AllocationError(
                "FA657",
                AllocationReason.UNDECIDED_TIE,
                f"round {r}: residents {ids[a]!r} and {ids[b]!r} are tied on the whole order at"
                f" the capacity ({units}), and the policy publishes no lottery seed to decide;"
                " end `ranking.tie_break` with `{lottery: {seed: ...}}`",
                ids=(ids[a], ids[b]),
            )
    return order


def _accrue(
    population: Population,
    served_rows: npt.NDArray[np.intp],
    accrue: Mapping[str, tuple[float, float, float]],
) -> Population:
    not_served = np.ones(population.n, dtype=bool)
    not_served[served_rows] = False
    for name, (per_round, lo, hi) in accrue.items():
        col = population.columns[name]
        grown = np.clip(col + per_round, lo, hi)
        population = population.replace(name, np.where(not_served, grown, col))
    return population


class _Ledger:
    """Per-resident state and history, one entry per resident who ever took part."""

    def __init__(self, seed: str | None) -> None:
        self.seed = seed
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.arrived = np.zeros(0, dtype=np.int64)
        self.departed = np.zeros(0, dtype=np.int64)  # 0: still present
        self.times_served = np.zeros(0, dtype=np.int64)
        self.waiting = np.zeros(0, dtype=np.int64)  # rounds waited since last served
        self.first_served = np.zeros(0, dtype=np.int64)  # 0: never
        self.waited_first = np.zeros(0, dtype=np.int64)  # -1: never served
        self.longest = np.zeros(0, dtype=np.int64)
        self.eligible_rounds = np.zeros(0, dtype=np.int64)
        self.key = np.zeros(0, dtype=np.uint64)
        self.rounds_served: list[list[int]] = []

    def add(self, ids: npt.NDArray[np.object_], r: int) -> npt.NDArray[np.intp]:
        """New entries for ``ids`` (arrived before round ``r``; 0 at the start)."""
        new = [str(i) for i in ids]
        for rid in new:
            if rid in self.index:
                e = self.index[rid]
                when = (
                    "present from the start"
                    if self.arrived[e] == 0
                    else (f"arrived in round {int(self.arrived[e])}")
                )
                raise ArgumentError(
                    "FA614",
                    f"arrivals[{r}]: resident {rid!r} is not new ({when}); ids are unique for the"
                    " whole simulation",
                    argument=f"arrivals[{r}]",
                    value=rid,
                )
        start, k = len(self.ids), len(new)
        self.ids.extend(new)
        self.index.update(zip(new, range(start, start + k), strict=True))
        zeros = np.zeros(k, dtype=np.int64)
        self.arrived = np.concatenate([self.arrived, np.full(k, r, dtype=np.int64)])
        self.departed = np.concatenate([self.departed, zeros])
        self.times_served = np.concatenate([self.times_served, zeros])
        self.waiting = np.concatenate([self.waiting, zeros])
        self.first_served = np.concatenate([self.first_served, zeros])
        self.waited_first = np.concatenate([self.waited_first, zeros - 1])
        self.longest = np.concatenate([self.longest, zeros])
        self.eligible_rounds = np.concatenate([self.eligible_rounds, zeros])
        keys = lottery_keys(self.seed, new) if self.seed is not None else np.zeros(k, np.uint64)
        self.key = np.concatenate([self.key, keys])
        self.rounds_served.extend([] for _ in range(k))
        return np.arange(start, start + k, dtype=np.intp)

    def serve(self, entries: npt.NDArray[np.intp], r: int) -> None:
        """Record the service of ``entries`` in round ``r``."""
        first = entries[self.times_served[entries] == 0]
        self.first_served[first] = r
        self.waited_first[first] = self.waiting[first]
        self.longest[entries] = np.maximum(self.longest[entries], self.waiting[entries])
        self.times_served[entries] += 1
        self.waiting[entries] = 0
        for e in entries.tolist():
            self.rounds_served[e].append(r)

    def wait(self, entries: npt.NDArray[np.intp]) -> None:
        """``entries`` were eligible and not served: one more round waited."""
        self.waiting[entries] += 1

    def leave(self, entries: npt.NDArray[np.intp], r: int) -> None:
        """``entries`` leave before round ``r``; a wait in progress counts as it stands."""
        self.departed[entries] = r
        self.close(entries)

    def close(self, entries: npt.NDArray[np.intp]) -> None:
        """Count the waits in progress of ``entries`` (at departure or at the end)."""
        self.longest[entries] = np.maximum(self.longest[entries], self.waiting[entries])


# -- the result ---------------------------------------------------------------------------------


class Simulation(Explainable):
    """The outcome of :func:`simulate`: who was served in each round, and every resident's waits.

    A *wait* counts rounds in which a resident was eligible and not served. Per-resident arrays
    follow :attr:`ids`, which is sorted, so that the same inputs give the same result whatever
    order the residents came in.

    Attributes:
        policy: The compiled policy that was applied.
        rotation: The policy's ``allocation.rotation`` section.
        capacity: Residents served per round (at most).
        rounds: Rounds run.
        served: For each round (the first at index 0), the ids served, in the order served.
        eligible: For each round, the number of eligible residents.
        present: For each round, the number of residents present.
        population: The residents after the last round: departures removed, arrivals added,
            ``accrue`` attributes as they stand.
        lottery_seed: The published seed whose keys break ties the ranking leaves, if any.
        ids: Every resident who took part, sorted.
        arrived: Round before which each resident arrived (0: present from the start).
        departed: Round before which each resident left (0: still present at the end).
        times_served: Times each resident was served.
        rounds_served: The rounds in which each resident was served.
        first_served: The first round each resident was served (0: never).
        waited_first: Rounds waited before the first service (-1: never served).
        longest_wait: Each resident's longest wait: before a service, or still in progress at
            the end (or at departure).
        current_wait: Each resident's wait in progress at the end (or at departure).
        eligible_rounds: Rounds in which each resident was eligible.
    """

    def __init__(
        self,
        *,
        policy: CompiledPolicy,
        rotation: Rotation,
        capacity: int,
        served: list[list[str]],
        eligible: list[int],
        present: list[int],
        ledger: _Ledger,
        population: Population,
    ) -> None:
        self.policy = policy
        self.rotation = rotation
        self.capacity = capacity
        self.rounds = len(served)
        self.served = served
        self.eligible = eligible
        self.present = present
        self.population = population
        self.lottery_seed = ledger.seed
        by_id = np.argsort(np.array(ledger.ids, dtype=str), kind="stable")
        self.ids: list[str] = [ledger.ids[i] for i in by_id]
        self.arrived = ledger.arrived[by_id]
        self.departed = ledger.departed[by_id]
        self.times_served = ledger.times_served[by_id]
        self.rounds_served: list[list[int]] = [ledger.rounds_served[i] for i in by_id]
        self.first_served = ledger.first_served[by_id]
        self.waited_first = ledger.waited_first[by_id]
        self.longest_wait = ledger.longest[by_id]
        self.current_wait = ledger.waiting[by_id]
        self.eligible_rounds = ledger.eligible_rounds[by_id]
        self._index = {rid: i for i, rid in enumerate(self.ids)}

    # -- views -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def served_in(self, round_number: int) -> list[str]:
        """The ids served in round ``round_number`` (from 1), in the order served.

        Raises:
            IndexError: if no such round was run.
        """
        if not 1 <= round_number <= self.rounds:
            raise IndexError(f"round {round_number} was not run (rounds 1 to {self.rounds})")
        return list(self.served[round_number - 1])

    def record(self, resident_id: str) -> dict[str, Any]:
        """One resident's history as plain values.

        Raises:
            KeyError: if no resident with that id took part.
        """
        try:
            i = self._index[str(resident_id)]
        except KeyError:
            raise KeyError(f"no resident with id {resident_id!r}") from None
        return self._record(i)

    def _record(self, i: int) -> dict[str, Any]:
        first = int(self.first_served[i])
        waited_first = int(self.waited_first[i])
        departed = int(self.departed[i])
        return {
            "id": self.ids[i],
            "arrived": int(self.arrived[i]),
            "departed": departed or None,
            "eligible_rounds": int(self.eligible_rounds[i]),
            "times_served": int(self.times_served[i]),
            "rounds_served": list(self.rounds_served[i]),
            "first_served": first or None,
            "waited_before_first": waited_first if waited_first >= 0 else None,
            "longest_wait": int(self.longest_wait[i]),
            "current_wait": int(self.current_wait[i]),
        }

    def waiting_times(self) -> dict[int, int]:
        """How many residents waited each number of rounds before their first service."""
        waited = self.waited_first[self.waited_first >= 0]
        counts = np.bincount(waited) if len(waited) else np.zeros(0, dtype=np.int64)
        return {k: int(c) for k, c in enumerate(counts) if c}

    def summary(self) -> dict[str, Any]:
        """The simulation's figures: served per round, waits, and who was never served."""
        meta = self.policy.policy.policy
        waited = self.waited_first[self.waited_first >= 0].tolist()
        never = self.times_served == 0
        return {
            "policy": {"id": meta.id, "version": meta.version},
            "rounds": self.rounds,
            "capacity": self.capacity,
            "residents": len(self.ids),
            "served_per_round": [len(s) for s in self.served],
            "eligible_per_round": list(self.eligible),
            "present_per_round": list(self.present),
            "services": int(self.times_served.sum()),
            "served_at_least_once": int((~never).sum()),
            "never_served": int(never.sum()),
            "never_served_while_eligible": int((never & (self.eligible_rounds > 0)).sum()),
            "longest_wait": int(self.longest_wait.max()) if len(self.ids) else 0,
            "waiting_before_first_service": {
                "distribution": [
                    {"rounds": k, "residents": c} for k, c in self.waiting_times().items()
                ],
                "mean": statistics.fmean(waited) if waited else None,
                "median": float(statistics.median(waited)) if waited else None,
                "max": max(waited) if waited else None,
            },
        }

    # -- conversions -----------------------------------------------------------------------
    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per resident who took part (see :meth:`record`), sorted by id."""
        return [self._record(i) for i in range(len(self.ids))]

    def to_json(self, *, indent: int | None = None) -> str:
        """The whole simulation as JSON: settings, summary, every round and every resident.

        The same policy and inputs give byte-identical output whatever the residents' order.
        """
        cp = self.policy
        doc = {
            "policy": self.summary()["policy"],
            "as_of": cp.as_of.isoformat() if cp.as_of else None,
            "rotation": self.rotation.model_dump(
                mode="json",
                include={"bands", "points_per_round", "max_wait", "accrue", "served_go_last"},
            ),
            "capacity": self.capacity,
            "tie_break": cp.tie_break_labels,
            "lottery_seed": self.lottery_seed,
            "summary": {k: v for k, v in self.summary().items() if k != "policy"},
            "rounds": [
                {"round": r + 1, "eligible": self.eligible[r], "served": self.served[r]}
                for r in range(self.rounds)
            ],
            "residents": self.to_dicts(),
        }
        return json.dumps(doc, ensure_ascii=False, indent=indent)

    def to_csv(self, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> None:
        """Write one row per resident (sorted by id); rounds served are separated by spaces.

        The file is replaced atomically. Ids that a spreadsheet would run as a formula get a
        leading ``'`` unless ``escape_formulas`` is false (for programs that read the file).
        """
        heads = [
            "id",
            "arrived",
            "departed",
            "eligible_rounds",
            "times_served",
            "rounds_served",
            "first_served",
            "waited_before_first",
            "longest_wait",
            "current_wait",
        ]
        with atomic_write(path) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(heads)
            for rec in self.to_dicts():
                rec["rounds_served"] = " ".join(str(r) for r in rec["rounds_served"])
                if escape_formulas:
                    rec["id"] = csv_text(str(rec["id"]))
                w.writerow(["" if rec[h] is None else rec[h] for h in heads])

    def to_pandas(self) -> pd.DataFrame:
        """One row per resident, indexed by id (sorted), with the columns of :meth:`record`.

        Rounds not applicable (never served, never left) are missing values (``<NA>``).
        """
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        def optional(values: npt.NDArray[np.int64], none: int) -> Any:
            return pd.arrays.IntegerArray(values.copy(), values == none)

        served = np.empty(len(self.ids), dtype=object)
        served[:] = self.rounds_served
        df = pd.DataFrame(
            {
                "arrived": self.arrived,
                "departed": optional(self.departed, 0),
                "eligible_rounds": self.eligible_rounds,
                "times_served": self.times_served,
                "rounds_served": served,
                "first_served": optional(self.first_served, 0),
                "waited_before_first": optional(self.waited_first, -1),
                "longest_wait": self.longest_wait,
                "current_wait": self.current_wait,
            },
            index=pd.Index(self.ids, name="id", dtype=object),
        )
        return df

    # -- display ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        meta = self.policy.policy.policy
        return (
            f"<Simulation of {meta.id} v{meta.version}: {self.rounds} rounds of"
            f" {self.capacity}, {int(self.times_served.sum())} services to"
            f" {int((self.times_served > 0).sum())} of {len(self.ids)} residents,"
            f" longest wait {int(self.longest_wait.max()) if len(self.ids) else 0} rounds>"
        )

    def _repr_html_(self, limit: int = 20) -> str:
        s = self.summary()
        w = s["waiting_before_first_service"]
        facts = [
            ("rounds", s["rounds"]),
            ("capacity per round", s["capacity"]),
            ("residents", s["residents"]),
            ("served at least once", s["served_at_least_once"]),
            ("never served (while eligible)", s["never_served_while_eligible"]),
            ("longest wait (rounds)", s["longest_wait"]),
            ("mean wait before first service", "—" if w["mean"] is None else f"{w['mean']:.2f}"),
            ("median wait before first service", "—" if w["median"] is None else w["median"]),
        ]
        head = f"<p>{html_text(repr(self))}</p>"
        table = (
            "<table><tbody>"
            + "".join(
                f"<tr><th scope='row'>{html_text(k)}</th><td>{html_text(v)}</td></tr>"
                for k, v in facts
            )
            + "</tbody></table>"
        )
        rows = (
            (r + 1, self.eligible[r], len(self.served[r]), _shorten(self.served[r]))
            for r in range(min(limit, self.rounds))
        )
        more = self.rounds - limit
        foot = f"<p>… and {more} more rounds</p>" if more > 0 else ""
        per_round = html_table(("round", "eligible", "served", "ids"), rows) + foot
        return head + table + per_round


def _shorten(ids: list[str], k: int = 8) -> str:
    return ", ".join(ids[:k]) + (f", … (+{len(ids) - k})" if len(ids) > k else "")
