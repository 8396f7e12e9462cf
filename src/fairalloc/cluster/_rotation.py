"""A rotation round over a Dask DataFrame: each partition sends up its first, one decision.

:func:`run_round_on_cluster` runs the next round of a policy's ``allocation.rotation`` (轮候)
over residents held as a Dask DataFrame, and returns the round and the state the next one
starts from, equal to :func:`fairalloc.run_round`'s on the same residents and state.

Why this is exact
-----------------
A round orders the eligible residents by keys that are each resident's own: times served,
need band, effective score and rounds waited (from the resident's row and the state's record
of that id), the ranking's rank (which orders any part of the population as it orders the
whole) and the published lottery key of (seed, id), or without a lottery the id. So each
partition is evaluated alone, by the same compiled policy and engine, with the accrued
attributes the state keeps, and its residents' order is the whole order restricted to it.

With ``max_wait``, the residents guaranteed a place are the ``due`` most urgent (fewest
rounds of slack, then the same keys), where ``due`` is counted from how many residents have
each slack: each partition counts its own and the counts add up. ``due`` is at most the
capacity ``C``; the guaranteed are then served first, the others in key order.

Every resident served is among the first ``C`` of its partition in one of two orders: the
guaranteed in the urgency order, the others in key order (at most ``C - 1`` residents come
before one of them in key order: the guaranteed and the others served before it). So each
partition sends up its first ``C + 1`` in each order (one more, so that a tie at the capacity
or at the last guaranteed place is seen and refused, as one process refuses it), and the
one-process order, run on those candidates with the whole population's ``due``, serves the
same residents in the same order.

What the next round needs of every resident (present or not, eligible or not, accrued
values) is sent up too: ids, eligibility and the accrued attributes, a few numbers each. The
new state is made from them by the one-process bookkeeping, so it is the same, byte for byte.
The state is held by the client: every resident who ever took part has a record, as in one
process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy, compiled_for
from fairalloc._engine import evaluate
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import lottery_keys
from fairalloc.allocation._rotation import (
    Carried,
    _accruals,
    _capacity_of,
    _check_state,
    _Ledger,
    _order,
    _ranking_seed,
    _rotation_of,
    accrued,
    bonus_of,
    due_now,
    enter,
    order_keys,
    round_dict,
    slack_counts,
)
from fairalloc.allocation._state import RotationState
from fairalloc.cluster._allocate import _gather, dask_frame
from fairalloc.errors import PopulationError, PopulationIssue
from fairalloc.policy._model import Policy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClusterRound", "run_round_on_cluster"]


@dataclass(frozen=True)
class ClusterRound:
    """One round of a rotation run over a Dask DataFrame, equal to :func:`fairalloc.run_round`.

    Attributes:
        round: The round's number (1 for the first).
        served: The ids served, in the order served.
        eligible: The number of eligible residents.
        present: The number of residents present.
        capacity: Residents served per round (at most).
        state: Where the rotation stands after this round: what the next round starts from,
            on a cluster or on one machine.
        partitions: Partitions evaluated.
        candidates: Residents the partitions sent up for the decision.
    """

    round: int
    served: list[str]
    eligible: int
    present: int
    capacity: int
    state: RotationState
    partitions: int
    candidates: int

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`Round.to_dict <fairalloc.Round.to_dict>`: number, served, counts, digest."""
        return round_dict(
            self.round, self.capacity, self.present, self.eligible, self.served, self.state
        )

    def __repr__(self) -> str:
        return (
            f"<ClusterRound {self.round}: {len(self.served)} served of {self.eligible:,}"
            f" eligible ({self.present:,} present in {self.partitions} partitions),"
            f" state {self.state.digest()[:12]}>"
        )


def run_round_on_cluster(
    policy: Policy | CompiledPolicy,
    data: Any,
    state: RotationState | None = None,
    *,
    capacity: int | None = None,
    client: Any = None,
    as_of: dt.date | None = None,
) -> ClusterRound:
    """Run the next round of the policy's rotation over a Dask DataFrame, as one process would.

    The residents given are those present for this round, as for :func:`fairalloc.run_round`:
    ids the state holds as present and not given have left, ids it does not hold arrive.
    Running rounds one by one, each from the state the one before returned, gives exactly the
    rounds of :func:`fairalloc.simulate`; a round may run on a cluster and the next on one
    machine, or the other way round.

    Args:
        policy: A policy (or compiled policy) with an ``allocation.rotation`` section.
        data: A ``dask.dataframe.DataFrame`` of the residents present (one column per
            attribute), or the path of a Parquet dataset.
        state: Where the rotation stands (``.state`` of the round before, or
            :meth:`RotationState.from_json`); ``None`` before the first round.
        capacity: Residents served this round; by default the policy's.
        client: A ``distributed.Client``; by default the current one, else Dask's own local
            scheduler.
        as_of: The date whose parameter values apply.

    Returns:
        The :class:`ClusterRound`: who is served, and the state the next round starts from.

    Raises:
        MissingDependency: ``FA910`` without the ``dask`` extra.
        ArgumentTypeError: ``FA645`` for data that is not a Dask DataFrame.
        PopulationError: ``FA506`` for an id in more than one row (across partitions too), and
            as :func:`fairalloc.run_round` for residents that do not fit the schema.
        RotationStateError: ``FA781`` for another policy's state, ``FA782`` for a resident who
            left the rotation in an earlier round.
        AllocationError: as :func:`fairalloc.run_round` (no rotation, no capacity, an undecided
            tie at the capacity).
    """
    cp = policy if isinstance(policy, CompiledPolicy) else compiled_for(policy, as_of)
    model = cp.policy
    spec, rotation = _rotation_of(model)
    units = _capacity_of(spec, rotation, capacity)
    start = 0 if state is None else _check_state(state, model)
    r = start + 1
    bonus = bonus_of(rotation, r)
    accrue = _accruals(model, rotation)
    cp.refuse_if_audit_only("simulate rounds")
    data = dask_frame(data)
    ledger = _Ledger(_ranking_seed(model))
    if state is not None:
        ledger.restore(state)
    carried = Carried.of(ledger, state, accrue)
    delayed = require("dask", extra="dask", feature="cluster rotation").delayed
    parts = data.to_delayed()
    compute = client.compute if client is not None else None
    # One copy of the state's columns on every worker, sent once (not inside the task graph).
    held = (
        client.scatter(carried, broadcast=True, hash=False)
        if client is not None
        else delayed(carried, pure=True)
    )
    found = _gather(
        [delayed(_round_part, pure=True)(p, cp, held, units, bonus) for p in parts], compute
    )
    # Who is present, who is eligible and the accrued values: every resident, in partition order.
    ids = np.concatenate([f.ids for f in found]) if found else np.zeros(0, dtype=object)
    _refuse_repeated_ids(ids, model.id_attribute)
    rows = enter(ledger, ids, r) if state is not None else ledger.add(ids, 0)
    eligible = np.concatenate([f.eligible for f in found]) if found else np.zeros(0, bool)
    values = {
        name: np.concatenate([f.accrued[name] for f in found]) if found else np.zeros(0)
        for name in accrue
    }
    due = None
    if rotation.max_wait is not None:
        counts = np.zeros(rotation.max_wait + 1, dtype=np.int64)
        for f in found:
            counts += f.slack
        due = due_now(counts, units)
    # The decision, by the one-process order, on the candidates.
    import pandas as pd

    frame = pd.concat([f.candidates for f in found], ignore_index=True) if found else data._meta
    pool = carried.restore(Population.load(frame, model, source="candidates"))
    ev = evaluate(cp, pool)
    pool_rows = np.array([ledger.index[str(i)] for i in pool.ids], dtype=np.intp)
    pool_eligible = np.flatnonzero(ev.eligible)
    order = _order(ev, pool_eligible, ledger, pool_rows, rotation, bonus, units, r, due=due)
    chosen = pool_eligible[order[:units]]
    served = [str(i) for i in pool.id_column[chosen]]
    # The bookkeeping of one process, on every resident.
    entries = pool_rows[chosen]
    position = np.full(len(ledger.ids), -1, dtype=np.intp)
    position[rows] = np.arange(len(rows))
    not_served = np.ones(len(rows), dtype=bool)
    not_served[position[entries]] = False
    ledger.serve(entries, r)
    ledger.wait(rows[eligible & not_served])
    ledger.eligible_rounds[rows[eligible]] += 1
    values = {name: accrued(v, not_served, accrue[name]) for name, v in values.items()}
    ledger.close(rows)
    return ClusterRound(
        round=r,
        served=served,
        eligible=int(eligible.sum()),
        present=len(rows),
        capacity=units,
        state=ledger.to_state(model, r, rows, values),
        partitions=len(parts),
        candidates=pool.n,
    )


@dataclass(frozen=True)
class _Part:
    """What one partition sends up for a round."""

    ids: npt.NDArray[np.object_]
    eligible: npt.NDArray[np.bool_]
    accrued: dict[str, np.ndarray]
    slack: npt.NDArray[np.int64]
    candidates: pd.DataFrame


def _round_part(
    frame: pd.DataFrame, cp: CompiledPolicy, carried: Carried, units: int, bonus: int
) -> _Part:
    """Evaluate one partition; its residents' facts, and its first ``units + 1`` in each order."""
    model = cp.policy
    _, rotation = _rotation_of(model)
    pop = carried.restore(Population.load(frame, model, source="partition"))
    ev = evaluate(cp, pop)
    eligible = np.flatnonzero(ev.eligible)
    waited, times = carried.standing(pop.id_column.select(eligible))
    seed = _ranking_seed(model)
    drawn = lottery_keys(seed, ev.id_column[eligible]) if seed is not None else None
    keys, last = order_keys(ev, eligible, waited, times, drawn, rotation, bonus)
    pick = np.lexsort([last, *keys[::-1]])[: units + 1]
    slack = np.zeros(0, dtype=np.int64)
    if rotation.max_wait is not None:
        left = np.int64(rotation.max_wait) - waited
        slack = slack_counts(left, rotation.max_wait)
        pick = np.union1d(pick, np.lexsort([last, *keys[::-1], left])[: units + 1])
    accrue = _accruals(model, rotation)
    return _Part(
        ids=pop.id_column.objects,
        eligible=np.asarray(ev.eligible, dtype=bool),
        accrued={name: pop.columns[name] for name in accrue},
        slack=slack,
        candidates=frame.iloc[np.sort(eligible[pick])],
    )


def _refuse_repeated_ids(ids: npt.NDArray[np.object_], name: str) -> None:
    """Refuse an id given in more than one row (each partition checks only its own rows)."""
    text = ids.astype(str)
    order = np.argsort(text, kind="stable")
    same = np.flatnonzero(text[order][1:] == text[order][:-1])
    if len(same) == 0:
        return
    repeated = sorted(set(text[order][same].tolist()))
    raise PopulationError(
        [
            PopulationIssue(
                "FA506",
                name,
                "the same id for several residents (in more than one partition)",
                ids=tuple(repeated[:10]),
                valid="one row per resident",
                count=len(repeated),
            )
        ],
        source="partitions",
    )
