"""Fair rotation (§2.1.1, 轮候): a waiting list served over successive rounds.

:func:`simulate` runs a policy's ``allocation.rotation`` for a number of rounds (weeks, months).
Each round:

1. residents leave (``departures``) and join (``arrivals``);
2. the policy is evaluated over the residents present, by :func:`fairalloc.evaluate` (rules are
   never applied anywhere else);
3. the eligible residents are ordered by, in sequence:

   * guaranteed first: with ``max_wait``, the fewest of the most urgent residents (least
     rounds left before their wait would exceed ``max_wait``; the other keys below among
     equals) that must be served now so that every later round can still keep the bound with
     the same capacity (earliest deadline first); residents who have waited ``max_wait``
     rounds are always among them. Whenever ``N <= capacity * (max_wait + 1)`` residents stay
     eligible, nobody waits more than ``max_wait`` rounds, whatever the order of the other keys;
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._escape import csv_text, html_text
from fairalloc._explainable import Explainable
from fairalloc._html import table as html_table
from fairalloc._ids import IdColumn, Ids
from fairalloc._io import atomic_write
from fairalloc._numeric import micro_scalar
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import lottery_keys
from fairalloc.allocation._state import ResidentState, RotationState
from fairalloc.errors import (
    AllocationError,
    AllocationReason,
    ArgumentError,
    ArgumentTypeError,
    RotationStateError,
)
from fairalloc.policy._model import AllocationSpec, Policy, Rotation

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._evaluation import Evaluation

__all__ = ["Round", "Simulation", "run_round", "simulate"]

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
    state: RotationState | None = None,
) -> Simulation:
    """Serve the policy's rotation (``allocation.rotation``) for ``rounds`` rounds.

    See the module documentation for the order within a round and what changes between rounds.
    With ``state`` (a :class:`RotationState` from an earlier run), the rounds continue from it:
    rounds ``state.round + 1`` to ``state.round + rounds`` are run, ``residents`` are those
    present before the first of them, and the result's :attr:`Simulation.state` is where the
    rotation then stands. Running rounds one at a time this way gives the same rounds, records
    and state as running them at once.

    Args:
        policy: A policy from :func:`fairalloc.load_policy` (or a compiled one) with an
            ``allocation.rotation`` section.
        residents: The residents at the start: a :class:`~fairalloc.Population` or anything
            :meth:`Population.load <fairalloc.Population.load>` accepts. With ``state``, the
            residents present before the next round: ids the state holds as present and not
            given here leave before it, ids it does not hold arrive before it, and for the
            others the attributes the rotation accrues are taken from the state.
        rounds: Rounds to run (at least 1).
        capacity: Residents served per round; by default ``allocation.rotation.capacity``, else
            ``allocation.capacity``.
        arrivals: Residents joining before a round, by round number (1 to ``rounds``, or with
            ``state``, ``state.round + 1`` to ``state.round + rounds``): anything
            :meth:`Population.load <fairalloc.Population.load>` accepts. Their ids must be new.
        departures: Ids of residents leaving before a round, by round number; departures are
            applied before that round's arrivals.
        state: Where an earlier run left the rotation (default: nothing run yet).

    Returns:
        The :class:`Simulation`: who was served in each round, and every resident's waits.

    Raises:
        ValueError: if the policy has no rotation, no capacity is known, a round number is out of
            range, an ``accrue`` entry does not fit its attribute, a departing id is not present,
            an arriving id is not new, or residents still tied after the whole order straddle the
            capacity and the policy publishes no lottery seed.
        PopulationError: if residents do not fit the policy's attribute schema.
        EvaluationError: if a rule cannot be applied to some residents in some round.
        RotationStateError: ``FA781`` if ``state`` is another policy's rotation, ``FA782`` if
            a resident given left the rotation in an earlier round (ids are never reused).

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
    start = 0 if state is None else _check_state(state, model)
    joining = _schedule("arrivals", arrivals, start, rounds)
    leaving = {
        r: _departing_ids(r, ids)
        for r, ids in _schedule("departures", departures, start, rounds).items()
    }
    accrue = _accruals(model, rotation)
    bonus = bonus_of(rotation, start + rounds)
    seed = _ranking_seed(model)

    population = _load(residents, model, "residents")
    ledger = _Ledger(seed)
    if state is None:
        rows = ledger.add(population.ids, 0)  # ledger entry of each population row
    else:
        population, rows = _resume(ledger, state, population, accrue)
    served_by_round: list[list[str]] = []
    eligible_by_round: list[int] = []
    present_by_round: list[int] = []
    for r in range(start + 1, start + rounds + 1):
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
        served_by_round.append([str(i) for i in population.id_column[served_rows]])
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
        first_round=start + 1,
        state=ledger.to_state(
            model, start + rounds, rows, {name: population.columns[name] for name in accrue}
        ),
    )


def run_round(
    policy: Policy | CompiledPolicy,
    residents: Population | Any,
    state: RotationState | None = None,
    *,
    capacity: int | None = None,
) -> Round:
    """Run the next round of the policy's rotation from where ``state`` left it.

    The residents given are those present for this round (for instance this week's file):
    ids the state holds as present and not given have left, ids it does not hold have arrived
    (they start with no services and no wait), and for the others the attributes the rotation
    accrues are taken from the state. Running rounds one by one, each from the state the one
    before returned, gives exactly the rounds of :func:`simulate` over as many rounds with the
    same arrivals and departures.

    Args:
        policy: A policy with an ``allocation.rotation`` section (or a compiled one).
        residents: The residents present for this round: a :class:`~fairalloc.Population` or
            anything :meth:`Population.load <fairalloc.Population.load>` accepts.
        state: Where the rotation stands (``Round.state`` or ``Simulation.state`` of the round
            before, or :meth:`RotationState.from_json`); ``None`` before the first round.
        capacity: Residents served this round; by default the policy's.

    Returns:
        The :class:`Round`: who is served, and the state the next round starts from.

    Raises:
        RotationStateError: ``FA781`` if ``state`` is another policy's rotation, ``FA782`` if a
            resident given left the rotation in an earlier round.
        ValueError: as :func:`simulate`.

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
        >>> week1 = fa.run_round(policy, [{"id": "a", "need": 3}, {"id": "b", "need": 7}])
        >>> week1.served
        ['b']
        >>> week2 = fa.run_round(
        ...     policy, [{"id": "a", "need": 3}, {"id": "c", "need": 5}], week1.state
        ... )
        >>> week2.round, week2.served, week2.state.get("b").departed
        (2, ['c'], 2)
    """
    sim = simulate(policy, residents, rounds=1, capacity=capacity, state=state)
    return Round(sim)


class Round:
    """One round of a rotation run by :func:`run_round`.

    Attributes:
        round: The round's number (1 for the first).
        served: The ids served, in the order served.
        eligible: The number of eligible residents.
        present: The number of residents present.
        state: Where the rotation stands after this round: what the next round starts from.
        simulation: The round as a one-round :class:`Simulation` (records, explanations).
        population: The residents after the round, with the accrued attributes as they stand.
    """

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.round = simulation.first_round
        self.served = list(simulation.served[0])
        self.eligible = simulation.eligible[0]
        self.present = simulation.present[0]
        self.state = simulation.state
        self.population = simulation.population

    def to_dict(self) -> dict[str, Any]:
        """The round as plain values: number, served, counts and the state's digest."""
        return round_dict(
            self.round,
            self.simulation.capacity,
            self.present,
            self.eligible,
            self.served,
            self.state,
        )

    def __repr__(self) -> str:
        return (
            f"<Round {self.round}: {len(self.served)} served of {self.eligible} eligible,"
            f" state {self.state.digest()[:12]}>"
        )


def round_dict(
    number: int,
    capacity: int,
    present: int,
    eligible: int,
    served: list[str],
    state: RotationState,
) -> dict[str, Any]:
    """A round as plain values: its policy, number, capacity, counts, served, state digest.

    The state is that of the policy (and version) that ran the round.
    """
    return {
        "policy": {"id": state.policy_id, "version": state.policy_version},
        "round": number,
        "capacity": capacity,
        "present": present,
        "eligible": eligible,
        "served": list(served),
        "state_digest": state.digest(),
    }


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


def _schedule(
    what: str, given: Mapping[int, Any] | None, start: int, rounds: int
) -> dict[int, Any]:
    if given is None:
        return {}
    out: dict[int, Any] = {}
    for r, v in given.items():
        if isinstance(r, bool) or not isinstance(r, int | np.integer):
            raise ArgumentTypeError(
                "FA643", f"{what} are keyed by round number, got {r!r}", argument=what, value=r
            )
        if not start + 1 <= int(r) <= start + rounds:
            raise ArgumentError(
                "FA614",
                f"{what} for round {r}, but the rounds run are {start + 1} to {start + rounds}",
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


def bonus_of(rotation: Rotation, last_round: int) -> int:
    """``points_per_round`` in micro-points, checked to add up exactly until ``last_round``.

    Raises:
        AllocationError: ``FA660`` if a wait of ``last_round`` rounds would add more than
            fairalloc can add exactly.
    """
    bonus = micro_scalar(rotation.points_per_round)
    if bonus * last_round > _MAX_BONUS:
        raise AllocationError(
            "FA660",
            AllocationReason.SCORE_OUT_OF_RANGE,
            f"points_per_round {rotation.points_per_round} over {last_round} rounds exceeds the"
            " largest score fairalloc can add exactly",
        )
    return bonus


def _ranking_seed(model: Policy) -> str | None:
    chain = model.ranking.tie_break
    last = chain[-1].lottery if chain else None
    return last.seed if last is not None else None


def _check_state(state: RotationState, model: Policy) -> int:
    if not isinstance(state, RotationState):
        raise RotationStateError(
            "FA783", f"state must be a RotationState, got {type(state).__name__}", where="state"
        )
    if state.policy_id != model.policy.id:
        raise RotationStateError(
            "FA781",
            f"the state is of the rotation of policy {state.policy_id!r}, not of"
            f" {model.policy.id!r}",
            where="policy.id",
        )
    return state.round


def _resume(
    ledger: _Ledger,
    state: RotationState,
    population: Population,
    accrue: Mapping[str, tuple[float, float, float]],
) -> tuple[Population, npt.NDArray[np.intp]]:
    """Fill ``ledger`` from ``state``; the present residents' rows and their ledger entries.

    Residents the state holds as present and ``population`` lacks leave before the next round;
    residents it does not hold arrive before it; for the others, accrued values come from the
    state.
    """
    ledger.restore(state)
    carried = Carried.of(ledger, state, accrue)
    rows = enter(ledger, population.id_column, state.round + 1)
    return carried.restore(population), rows


def enter(ledger: _Ledger, ids: Ids, nxt: int) -> npt.NDArray[np.intp]:
    """Who is present before round ``nxt``: the ledger entries of ``ids``, in their order.

    Residents the ledger holds as present and not among ``ids`` leave; ids it does not hold
    arrive (new entries).

    Raises:
        RotationStateError: ``FA782`` if one of ``ids`` left the rotation in an earlier round.
    """
    given = [str(i) for i in ids]
    for rid in given:
        e = ledger.index.get(rid)
        if e is not None and ledger.departed[e]:
            raise RotationStateError(
                "FA782",
                f"resident {rid!r} left the rotation before round {int(ledger.departed[e])};"
                " ids are unique for the whole rotation",
            )
    here = set(given)
    gone = [e for rid, e in ledger.index.items() if not ledger.departed[e] and rid not in here]
    if gone:
        ledger.leave(np.array(sorted(gone), dtype=np.intp), nxt)
    known = np.array([rid in ledger.index for rid in given], dtype=bool)
    new = np.flatnonzero(~known)
    rows = np.empty(len(given), dtype=np.intp)
    rows[known] = [ledger.index[rid] for rid, k in zip(given, known, strict=True) if k]
    rows[new] = ledger.add(np.array([given[k] for k in new.tolist()], dtype=object), nxt)
    return rows


@dataclass(frozen=True)
class Carried:
    """What a round reads of the state for the residents it holds, found by id.

    The ledger's records as columns, in id order (a restored ledger's order): a worker that
    holds a part of the residents looks its ids up here, as one process does in the ledger.

    Attributes:
        ids: Every id the state holds, sorted (code-point order).
        departed: The round before which each left (0: present).
        waiting: Rounds waited since the last service.
        times_served: Times served.
        accrued: Per accrued attribute, each resident's value as the state keeps it, and
            whether it keeps one (only present residents have them).
    """

    ids: npt.NDArray[np.str_]
    departed: npt.NDArray[np.int64]
    waiting: npt.NDArray[np.int64]
    times_served: npt.NDArray[np.int64]
    accrued: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]

    @classmethod
    def of(
        cls,
        ledger: _Ledger,
        state: RotationState | None,
        accrue: Mapping[str, tuple[float, float, float]],
    ) -> Carried:
        """The columns of ``ledger`` just restored from ``state`` (empty for ``None``)."""
        records = state.residents if state is not None else ()
        if [r.id for r in records] != ledger.ids:
            raise AssertionError("the ledger is not the state's, restored")
        accrued = {}
        for name in accrue:
            has = np.fromiter((name in r.accrued for r in records), bool, len(records))
            values = np.fromiter(
                (r.accrued.get(name, 0.0) for r in records), np.float64, len(records)
            )
            accrued[name] = (values, has)
        return cls(
            np.array(ledger.ids, dtype=str),
            ledger.departed.copy(),
            ledger.waiting.copy(),
            ledger.times_served.copy(),
            accrued,
        )

    def find(self, ids: Ids) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Each id's position among :attr:`ids`, and whether the state holds it."""
        text = np.asarray(ids.objects if isinstance(ids, IdColumn) else ids, dtype=object).astype(
            str
        )
        if len(self.ids) == 0:
            return np.zeros(len(text), dtype=np.intp), np.zeros(len(text), dtype=bool)
        at = np.minimum(np.searchsorted(self.ids, text), len(self.ids) - 1)
        return at, self.ids[at] == text

    def standing(self, ids: Ids) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Rounds waited and times served of each of ``ids`` (0 and 0 for an id not held)."""
        at, known = self.find(ids)
        if len(self.ids) == 0:
            return np.zeros(len(at), dtype=np.int64), np.zeros(len(at), dtype=np.int64)
        zero = np.int64(0)
        return np.where(known, self.waiting[at], zero), np.where(known, self.times_served[at], zero)

    def restore(self, population: Population) -> Population:
        """``population`` with each accrued attribute as the state keeps it, where it does."""
        if not self.accrued or len(self.ids) == 0:
            return population
        at, known = self.find(population.id_column)
        for name, (values, has) in self.accrued.items():
            keep = known & has[at]
            if keep.any():
                col = population.columns[name].copy()
                col[keep] = values[at[keep]]
                population = population.replace(name, col)
        return population


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
    *,
    due: int | None = None,
) -> npt.NDArray[np.intp]:
    """Positions in ``eligible``, first served first (see the module documentation).

    ``due`` is how many of the most urgent must be served now (with ``max_wait``); by default
    it is counted among ``eligible``. A cluster counts it over the whole population and gives
    it here, with only the candidates in ``eligible``.
    """
    entries = rows[eligible]
    waited = ledger.waiting[entries]
    drawn = ledger.key[entries] if ledger.seed is not None else None
    keys, last = order_keys(
        ev, eligible, waited, ledger.times_served[entries], drawn, rotation, bonus
    )
    guaranteed = np.zeros(len(entries), dtype=bool)
    urgency = np.zeros(0, dtype=np.intp)
    if rotation.max_wait is not None:
        slack = np.int64(rotation.max_wait) - waited  # rounds each may still wait
        if due is None:
            due = due_now(slack_counts(slack, rotation.max_wait), units)
        urgency = np.lexsort([last, *keys[::-1], slack])
        guaranteed[urgency[:due]] = True
    due = due or 0
    order = np.lexsort([last, *keys[::-1], ~guaranteed])
    if ledger.seed is None:
        _refuse_undecided(ev, eligible, keys, order, urgency, due, units, r)
    return order


def order_keys(
    ev: Evaluation,
    eligible: npt.NDArray[np.intp],
    waited: npt.NDArray[np.int64],
    times_served: npt.NDArray[np.int64],
    drawn: npt.NDArray[np.uint64] | None,
    rotation: Rotation,
    bonus: int,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The order's keys of the ``eligible`` rows (lower first), the guarantee aside.

    The keys, most significant first, and the last key that lists residents the keys leave
    tied: the published lottery key of each (``drawn``), or without a lottery (``None``) the
    id, which only lists residents in a stable order (a tie it would decide across the
    capacity is refused). Each resident's keys are its own: the ranking's rank orders the
    residents of any part of the population as it orders them in the whole.
    """
    keys: list[np.ndarray] = []
    if rotation.served_go_last:
        keys.append(times_served)
    if rotation.bands is not None:
        keys.append(-ev.rotation_band[eligible] + 0.0)
    keys.append(-(ev.score_micro[eligible] + np.int64(bonus) * waited))
    keys.append(-waited)
    keys.append(ev.ranking.rank[eligible])
    return keys, drawn if drawn is not None else ev.id_column[eligible].astype(str)


def slack_counts(slack: npt.NDArray[np.int64], max_wait: int) -> npt.NDArray[np.int64]:
    """How many residents have each slack from 0 to ``max_wait`` (below 0 counted as 0).

    ``slack`` is, per eligible resident, how many rounds they may still wait (0: this round is
    their last, below 0: already beyond the bound). Counts of parts of the population add up
    to the whole population's.
    """
    return np.bincount(np.clip(slack, 0, max_wait), minlength=max_wait + 1).astype(np.int64)


def due_now(counts: npt.NDArray[np.int64], units: int) -> int:
    """How many of the most urgent residents must be served now to keep ``max_wait``.

    ``counts`` are :func:`slack_counts` of the eligible residents. A resident with slack ``s``
    must be served within the next ``s + 1`` rounds, so after this round, for every horizon
    ``h`` from 1 to ``max_wait``, those not served now with slack at most ``h`` must fit in
    ``units * h`` places (the served start again with a slack of ``max_wait``). Serving the
    ``m`` most urgent (earliest deadline first) meets every horizon exactly when ``m`` is at
    least ``count(slack <= h) - units * h`` for every ``h`` from 0. This returns that least
    ``m`` (never below 0), at most ``units``. When ``N <= units * (max_wait + 1)`` residents
    stay eligible the least ``m`` never exceeds ``units`` and nobody waits beyond ``max_wait``.
    """
    within = np.cumsum(counts)  # within[h]: residents with slack <= h
    need = within - np.int64(units) * np.arange(len(counts), dtype=np.int64)
    return min(max(0, int(need.max())), units)


def _refuse_undecided(
    ev: Evaluation,
    eligible: npt.NDArray[np.intp],
    keys: list[np.ndarray],
    order: npt.NDArray[np.intp],
    urgency: npt.NDArray[np.intp],
    due: int,
    units: int,
    r: int,
) -> None:
    """Without a published lottery, refuse a tie that would decide who is served.

    Two places can split residents the policy cannot tell apart: the capacity, and (with
    ``max_wait``) the last of the residents guaranteed a place this round, when the next one
    in urgency, tied with them, is not served.
    """

    def tied(a: int, b: int) -> bool:
        return all(k[a] == k[b] for k in keys)

    pairs: list[tuple[int, int]] = []
    if 0 < units < len(order):
        pairs.append((int(order[units - 1]), int(order[units])))
    if 0 < due < len(urgency):
        position = np.empty(len(order), dtype=np.intp)
        position[order] = np.arange(len(order))
        a, b = int(urgency[due - 1]), int(urgency[due])
        if position[b] >= units:
            pairs.append((a, b))
    for a, b in pairs:
        if tied(a, b):
            ids = ev.id_column[eligible]
            raise AllocationError(
                "FA657",
                AllocationReason.UNDECIDED_TIE,
                f"round {r}: residents {ids[a]!r} and {ids[b]!r} are tied on the whole order at"
                f" the capacity ({units}), and the policy publishes no lottery seed to decide;"
                " end `ranking.tie_break` with `{lottery: {seed: ...}}`",
                ids=(ids[a], ids[b]),
            )


def _accrue(
    population: Population,
    served_rows: npt.NDArray[np.intp],
    accrue: Mapping[str, tuple[float, float, float]],
) -> Population:
    not_served = np.ones(population.n, dtype=bool)
    not_served[served_rows] = False
    for name, grow in accrue.items():
        population = population.replace(name, accrued(population.columns[name], not_served, grow))
    return population


def accrued(
    values: npt.NDArray[np.float64],
    not_served: npt.NDArray[np.bool_],
    grow: tuple[float, float, float],
) -> npt.NDArray[np.float64]:
    """An accrued attribute after a round: ``per_round`` more for the residents not served.

    ``grow`` is ``(per_round, lowest, highest)``; the value stays within the bounds.
    """
    per_round, lo, hi = grow
    return np.where(not_served, np.clip(values + per_round, lo, hi), values)


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

    def restore(self, state: RotationState) -> None:
        """Take every resident's record from ``state`` (the ledger must be empty)."""
        records = state.residents
        self.add(np.array([r.id for r in records], dtype=object), 0)

        def column(values: Iterable[int]) -> npt.NDArray[np.int64]:
            return np.fromiter(values, dtype=np.int64, count=len(records))

        self.arrived = column(r.arrived for r in records)
        self.departed = column(r.departed for r in records)
        self.times_served = column(r.times_served for r in records)
        self.waiting = column(r.current_wait for r in records)
        self.first_served = column(r.first_served for r in records)
        self.waited_first = column(r.waited_first for r in records)
        self.longest = column(r.longest_wait for r in records)
        self.eligible_rounds = column(r.eligible_rounds for r in records)
        self.rounds_served = [list(r.rounds_served) for r in records]

    def to_state(
        self,
        model: Policy,
        round_number: int,
        rows: npt.NDArray[np.intp],
        values: Mapping[str, np.ndarray],
    ) -> RotationState:
        """The state after round ``round_number``.

        ``rows`` are the present residents' entries, and ``values`` each accrued attribute's
        values of the same residents.
        """
        accrued: dict[int, dict[str, float]] = {int(e): {} for e in rows}
        for name, column in values.items():
            for e, v in zip(rows.tolist(), column.tolist(), strict=True):
                accrued[e][name] = float(v)
        records = [
            ResidentState(
                id=rid,
                arrived=int(self.arrived[e]),
                departed=int(self.departed[e]),
                times_served=int(self.times_served[e]),
                rounds_served=tuple(self.rounds_served[e]),
                waited_first=int(self.waited_first[e]),
                longest_wait=int(self.longest[e]),
                current_wait=int(self.waiting[e]),
                eligible_rounds=int(self.eligible_rounds[e]),
                accrued=accrued.get(e, {}),
            )
            for e, rid in enumerate(self.ids)
        ]
        records.sort(key=lambda r: r.id)
        return RotationState(model.policy.id, model.policy.version, round_number, tuple(records))


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
        rounds: Rounds run (in this run).
        first_round: The number of the first round run (1, or after a ``state``, the round
            after it).
        served: For each round run (the first at index 0), the ids served, in the order served.
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
        state: Where the rotation stands after the last round: what the next round starts from
            (:func:`run_round` or ``simulate(..., state=)``).
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
        first_round: int = 1,
        state: RotationState | None = None,
    ) -> None:
        self.policy = policy
        self.first_round = first_round
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
        self.state = (
            state
            if state is not None
            else RotationState(policy.policy.policy.id, policy.policy.policy.version)
        )

    # -- views -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def served_in(self, round_number: int) -> list[str]:
        """The ids served in round ``round_number``, in the order served.

        Raises:
            IndexError: if no such round was run.
        """
        first, last = self.first_round, self.first_round + self.rounds - 1
        if not first <= round_number <= last:
            raise IndexError(f"round {round_number} was not run (rounds {first} to {last})")
        return list(self.served[round_number - first])

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
            "first_round": self.first_round,
            "state_digest": self.state.digest(),
            "rounds": [
                {
                    "round": self.first_round + r,
                    "eligible": self.eligible[r],
                    "served": self.served[r],
                }
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
            (self.first_round + r, self.eligible[r], len(self.served[r]), _shorten(self.served[r]))
            for r in range(min(limit, self.rounds))
        )
        more = self.rounds - limit
        foot = f"<p>… and {more} more rounds</p>" if more > 0 else ""
        per_round = html_table(("round", "eligible", "served", "ids"), rows) + foot
        return head + table + per_round


def _shorten(ids: list[str], k: int = 8) -> str:
    return ", ".join(ids[:k]) + (f", … (+{len(ids) - k})" if len(ids) > k else "")
