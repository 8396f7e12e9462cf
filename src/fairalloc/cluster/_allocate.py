"""Allocation over a Dask DataFrame: each partition evaluated alone, one decision on candidates.

Why this is exact
-----------------
Everything the engine computes for a resident (eligibility, score, tie-break values, reserve
eligibility and priority, lottery key and draw) depends on that resident's row alone. So each
partition is evaluated by the same compiled policy and the same engine, and the order of a
partition's residents in any of the mechanism's orders (the base order, and each reserve's own
order) is the global order restricted to that partition.

With ``T`` units in all, every resident a capacity mechanism serves is among the first ``T`` of
some order it is eligible under: the base order (open units), or the order of a reserve it is
eligible for. (In ``precedence`` mode a category's ``k`` units go to the first ``k`` of its
order among those not yet served, and at most ``T - k`` were served before it. In
``max_beneficiaries`` mode a resident passed over for reserve ``c`` means ``c`` stays full, so
no later ``c``-eligible resident gets a unit of it; anyone after the first ``T``
``c``-eligible residents finds ``c`` full or all ``T`` units given.) A resident first ``T`` in
the whole population is first ``T`` in its partition, so each partition sends up the keys of its
first ``T`` in each order (a few numbers per resident); the ``T``-th smallest of them is the
whole population's ``T``-th key in that order, and each partition then sends the rows whose key
is at most that one (about ``T`` in all per order, with everyone tied with the last). Leaving
out residents the mechanism never serves changes none of its choices (each choice depends only
on who was served before), so the ordinary one-process allocation, run on the candidates,
serves the same residents, in the same categories and order.

What depends on the whole population is counted per partition and added up: the number of
eligible residents, and each cut-off's position in the base order (the residents before it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy, compiled_for
from fairalloc._engine import evaluate
from fairalloc._evaluation import Evaluation
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import _sort_keys, lottery_keys
from fairalloc.allocation import Allocation, allocate
from fairalloc.allocation._capacity import base_order, category_sizes, reserve_order
from fairalloc.errors import ArgumentError, ArgumentTypeError
from fairalloc.policy._model import AllocationSpec, Policy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClusterAllocation", "allocate_on_cluster"]


@dataclass
class ClusterAllocation:
    """An allocation decided over a Dask DataFrame, equal to one process's.

    Attributes:
        allocation: The one-process allocation of the candidates (every resident who could be
            served, with the first of each order): its served residents, categories and order
            are the whole population's.
        residents: Residents in the whole population.
        eligible: Eligible residents in the whole population.
        positions: Each cut-off resident's position in the whole population's base order.
        partitions: Partitions evaluated.
    """

    allocation: Allocation
    residents: int
    eligible: int
    positions: dict[str, int]
    partitions: int
    _summary: dict[str, Any] = field(default_factory=dict, repr=False)

    def served_ids(self) -> list[str]:
        """Ids of the served residents, in the base order (as :meth:`Allocation.served_ids`)."""
        return self.allocation.served_ids()

    def categories(self) -> dict[str, str]:
        """The category each served resident was served in, by id."""
        a = self.allocation
        ids = a.evaluation.ids
        return {str(ids[r]): a.categories[int(a.category[r])] for r in np.flatnonzero(a.served)}

    def summary(self) -> dict[str, Any]:
        """:meth:`Allocation.summary` of the whole population (equal to one process's)."""
        copy: dict[str, Any] = json.loads(json.dumps(self._summary))
        return copy

    def to_json(self, *, indent: int | None = None) -> str:
        """The summary and the served residents (id and category, in the base order), as JSON."""
        doc = self.summary()
        cats = self.categories()
        doc["served_residents"] = [{"id": i, "category": cats[i]} for i in self.served_ids()]
        return json.dumps(doc, ensure_ascii=False, indent=indent)

    def __repr__(self) -> str:
        s = self._summary
        return (
            f"<ClusterAllocation: {s['served']} served of {self.eligible:,} eligible"
            f" ({self.residents:,} residents in {self.partitions} partitions)>"
        )


def allocate_on_cluster(
    policy: Policy | CompiledPolicy,
    data: Any,
    *,
    capacity: int | None = None,
    client: Any = None,
    as_of: dt.date | None = None,
) -> ClusterAllocation:
    """Allocate a population held as a Dask DataFrame, exactly as one process would.

    Args:
        policy: A policy (or compiled policy) allocating a number of units: by priority or
            lottery, with or without reserve categories (either mode).
        data: A ``dask.dataframe.DataFrame`` of residents (one column per attribute), or the
            path of a Parquet dataset.
        capacity: Units to allocate; by default the policy's ``allocation.capacity``.
        client: A ``distributed.Client``; by default the current one, else Dask's own local
            scheduler.
        as_of: The date whose parameter values apply.

    Returns:
        The :class:`ClusterAllocation`.

    Raises:
        MissingDependency: ``FA910`` without the ``dask`` extra.
        ArgumentError: ``FA626`` for a rotation, ``FA627`` for matching (see the message),
            ``FA628`` without a capacity, ``FA645`` for data that is not a Dask DataFrame.
    """
    dd = require("dask.dataframe", extra="dask", feature="cluster allocation")
    cp = policy if isinstance(policy, CompiledPolicy) else compiled_for(policy, as_of)
    spec = cp.policy.allocation
    _check_mechanism(spec)
    assert spec is not None
    units = capacity if capacity is not None else spec.capacity
    if units is None:
        raise ArgumentError(
            "FA628",
            "no capacity: give capacity= or `allocation.capacity`",
            argument="capacity",
        )
    if isinstance(data, str) or hasattr(data, "__fspath__"):
        data = dd.read_parquet(str(data))
    if not isinstance(data, dd.DataFrame):
        raise ArgumentTypeError(
            "FA645",
            f"data must be a dask DataFrame or a Parquet dataset's path, got {type(data).__name__}",
            argument="data",
            valid="a dask.dataframe.DataFrame, or the path of a Parquet dataset",
        )
    category_sizes(spec, units)  # reserves that exceed the capacity are refused here, once
    delayed = require("dask", extra="dask", feature="cluster allocation").delayed
    parts = data.to_delayed()
    compute = client.compute if client is not None else None
    # 1. each partition's first keys in each order; the whole population's limit in each.
    firsts = _gather([delayed(_first_keys, pure=True)(p, cp, units) for p in parts], compute)
    residents = sum(f[0] for f in firsts)
    eligible = sum(f[1] for f in firsts)
    limits = [_kth(units, [f[2][o] for f in firsts]) for o in range(len(spec.reserves) + 1)]
    # 2. the rows within a limit: every resident the mechanism could serve.
    candidates = _gather([delayed(_candidates, pure=True)(p, cp, limits) for p in parts], compute)
    import pandas as pd

    frame = pd.concat(candidates, ignore_index=True) if candidates else data._meta
    pool = Population.load(frame, cp.policy, source="candidates")
    alloc = allocate(cp, pool, capacity=units)
    cut = {c.category: c for c in alloc.cutoffs() if c.last_id is not None}
    queries = {
        cat: _base_key(alloc, alloc.evaluation.index_of(str(c.last_id))) for cat, c in cut.items()
    }
    counts = _gather(
        [delayed(_count_before, pure=True)(p, cp, queries) for p in parts], compute
    )
    positions = {cat: 1 + sum(c[cat] for c in counts) for cat in queries}
    summary = alloc.summary()
    summary["eligible"] = eligible
    for entry in summary["categories"]:
        if entry["category"] in positions:
            entry["position"] = positions[entry["category"]]
    return ClusterAllocation(alloc, residents, eligible, positions, len(parts), summary)


def _check_mechanism(spec: AllocationSpec | None) -> None:
    if spec is None:
        raise ArgumentError(
            "FA628", "the policy allocates nothing (no `allocation` section)", argument="policy"
        )
    if spec.rotation is not None:
        raise ArgumentError(
            "FA626",
            "a rotation round orders residents by what each was given in earlier rounds (the"
            " rotation state), which is not in the data; run rounds with fairalloc.run_round on"
            " one machine",
            argument="policy",
            valid="a capacity allocation: priority or lottery, with or without reserves",
        )
    if spec.matching is not None:
        raise ArgumentError(
            "FA627",
            "deferred-acceptance matching is not decided partition by partition: a resident"
            " turned away from a first choice may displace anyone at the next, so no bounded set"
            " of candidates per partition is known to contain every match; use fairalloc.match"
            " on one machine",
            argument="policy",
            valid="a capacity allocation: priority or lottery, with or without reserves",
        )


def _gather(tasks: list[Any], compute: Any) -> list[Any]:
    if compute is None:
        base = require("dask.base", extra="dask", feature="cluster allocation")
        return list(base.compute(*tasks))
    return [f.result() for f in compute(tasks)]


def _evaluated(frame: pd.DataFrame, cp: CompiledPolicy) -> Evaluation:
    return evaluate(cp, Population.load(frame, cp.policy, source="partition"))


def _orders(
    ev: Evaluation, spec: AllocationSpec
) -> list[tuple[npt.NDArray[np.intp], list[np.ndarray]]]:
    """Each order a unit can be given in: rows (first first) and their keys (lower first).

    The base order, then each reserve's own order among those eligible for it. Keys leave the
    id out: residents equal on every key are tied, and all of them go up together.
    """
    order, _, _ = base_order(ev, spec)
    out = [(order, _key_columns(ev, spec, order, with_id=False))]
    for c, reserve in enumerate(spec.reserves):
        own = reserve_order(ev, spec, c, order)
        own = own[ev.reserve_eligible[own, c]]
        cols = _key_columns(ev, spec, own, with_id=False)
        if reserve.priority is not None:
            cols = [-ev.reserve_priority[own, c], *cols]
        out.append((own, cols))
    return out


def _first_keys(
    frame: pd.DataFrame, cp: CompiledPolicy, units: int
) -> tuple[int, int, list[list[np.ndarray]]]:
    """Residents, eligible residents, and the keys of the first ``units`` in each order."""
    ev = _evaluated(frame, cp)
    spec = cp.policy.allocation
    assert spec is not None
    firsts = [[c[:units] for c in cols] for _, cols in _orders(ev, spec)]
    return ev.n, int(ev.eligible.sum()), firsts


def _kth(units: int, keys: list[list[np.ndarray]]) -> tuple[Any, ...] | None:
    """The ``units``-th smallest key over every partition's first keys; None: fewer than that."""
    cols = [np.concatenate(c) for c in zip(*keys, strict=True)]
    if not cols or len(cols[0]) <= units:
        return None
    if units == 0:
        return ()  # nobody
    at = int(np.lexsort(cols[::-1])[units - 1])
    return tuple(_plain(c[at]) for c in cols)


def _candidates(
    frame: pd.DataFrame, cp: CompiledPolicy, limits: list[tuple[Any, ...] | None]
) -> pd.DataFrame:
    """The partition's rows within the limit of some order: its candidates."""
    ev = _evaluated(frame, cp)
    spec = cp.policy.allocation
    assert spec is not None
    keep = np.zeros(ev.n, dtype=bool)
    for (rows, cols), limit in zip(_orders(ev, spec), limits, strict=True):
        if limit is None:  # fewer than the units in all: everyone in this order
            keep[rows] = True
        elif limit:
            # Ties with the limit go up too: the mechanism decides, or refuses, a tie that
            # straddles a cut-off.
            less, equal = _compare(cols, limit)
            keep[rows[less | equal]] = True
    return frame.iloc[np.flatnonzero(keep)]


def _compare(
    cols: list[np.ndarray], key: tuple[Any, ...]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which rows' keys are below ``key``, and which equal it (lexicographically)."""
    n = len(cols[0]) if cols else 0
    less = np.zeros(n, dtype=bool)
    equal = np.ones(n, dtype=bool)
    for col, v in zip(cols, key, strict=True):
        less |= equal & (col < v)
        equal &= col == v
    return less, equal


def _base_key(alloc: Allocation, row: int) -> tuple[Any, ...]:
    """Row ``row``'s key in the base order (lower first), comparable across partitions."""
    ev = alloc.evaluation
    spec = ev.policy.policy.allocation
    assert spec is not None
    return _keys_of(ev, spec, np.array([row], dtype=np.intp))[0]


def _keys_of(
    ev: Evaluation, spec: AllocationSpec, rows: npt.NDArray[np.intp]
) -> list[tuple[Any, ...]]:
    cols = _key_columns(ev, spec, rows, with_id=True)
    return [tuple(_plain(c[i]) for c in cols) for i in range(len(rows))]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _key_columns(
    ev: Evaluation, spec: AllocationSpec, rows: npt.NDArray[np.intp], *, with_id: bool
) -> list[np.ndarray]:
    """The base order's key, column by column (lower first).

    With ``with_id``, the id last: residents tied on everything else are listed by id.
    """
    if spec.mechanism == "priority":
        cols = _sort_keys(ev, rows)
        seed = ev.policy.lottery_seed
        if seed is not None:
            cols.append(lottery_keys(seed, ev.ids[rows]))
        return [*cols, ev.ids[rows].astype(str)] if with_id else cols
    assert spec.lottery is not None
    keys = lottery_keys(spec.lottery.seed, ev.ids[rows])
    if spec.lottery.weight is None:
        return [keys]
    from fairalloc.allocation._lottery import weighted_draws

    return [weighted_draws(keys, ev.lottery_weight[rows]), keys]


def _count_before(
    frame: pd.DataFrame, cp: CompiledPolicy, queries: dict[str, tuple[Any, ...]]
) -> dict[str, int]:
    """How many of the partition's eligible residents come before each query key."""
    ev = _evaluated(frame, cp)
    spec = cp.policy.allocation
    assert spec is not None
    cols = _key_columns(ev, spec, np.flatnonzero(ev.eligible), with_id=True)
    return {name: int(_compare(cols, key)[0].sum()) for name, key in queries.items()}
