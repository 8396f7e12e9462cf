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
the whole population is first ``T`` in its partition (and everyone tied with a resident first
``T`` is tied with the partition's ``T``-th). Each partition sends up every ``T/256``-th key of
its first ``T`` in each order; each such key vouches for that many residents at or below it, so
the first key, in key order, below which ``T`` residents are vouched for is no smaller than the
whole population's ``T``-th key in that order: the limit. Each partition then sends the rows of
its first ``T`` (with ties) within the limit (with ties): at most ``T`` plus ``T/256`` per
partition, per order. Leaving out residents the mechanism never serves changes none of its
choices (each choice depends only on who was served before), so the ordinary one-process
allocation, run on the candidates, serves the same residents, in the same categories and order.

What depends on the whole population is counted per partition and added up: the number of
eligible residents, and each cut-off's position in the base order (the residents before it).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
from fairalloc.audit._groups import _Coded
from fairalloc.errors import ArgumentError, ArgumentTypeError
from fairalloc.policy._model import AllocationSpec, Policy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from fairalloc.audit._flip import FlipAudit
    from fairalloc.audit._groups import GroupStatistics

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
    _source: tuple[Any, ...] = field(default=(), repr=False)  # (parts, policy, compute)

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
        return copy.deepcopy(self._summary)

    def to_json(self, *, indent: int | None = None) -> str:
        """The summary and the served residents (id and category, in the base order), as JSON."""
        doc = self.summary()
        cats = self.categories()
        doc["served_residents"] = [{"id": i, "category": cats[i]} for i in self.served_ids()]
        return json.dumps(doc, ensure_ascii=False, indent=indent)

    def to_parquet(self, path: str | os.PathLike[str]) -> list[Path]:
        """Write every resident's outcome as a Parquet dataset: one process's result table.

        The folder ``path`` gets ``part-00000.parquet``, ``part-00001.parquet`` and so on, about
        a partition's worth of residents each; read in the order of their names, they are
        :meth:`Allocation.to_parquet`'s table row for row: the eligible in the base order with
        their position in the whole population, then the others by id, with the same columns
        (id, eligible, served, category, position, score, and the lottery key and draw under a
        lottery). The workers write the parts (and, meanwhile, one file per partition in the
        folder), so ``path`` must be on storage that every worker and the client reach: any
        folder on one machine, a shared disk on a cluster. The folder is replaced only when
        complete.

        Returns:
            The parts written, in order.

        Raises:
            ArgumentError: ``FA629`` if ``path`` holds something other than a result dataset,
                or its folder does not exist.
        """
        from fairalloc.cluster._outcomes import write_outcomes

        return write_outcomes(self, path)

    def export_explanations(
        self,
        path: str | os.PathLike[str],
        *,
        format: Literal["jsonl", "csv"] = "jsonl",
        escape_formulas: bool = True,
    ) -> list[Path]:
        """Write every resident's explanation facts, as :func:`fairalloc.export_explanations`.

        The folder ``path`` gets ``part-00000.jsonl`` (or ``.csv``) and so on; read in the
        order of their names, the parts are one process's export line for line (in CSV each
        part starts with the header): residents by id, with their rank, ties, position,
        category and margin in the whole population. Like :meth:`to_parquet`, ``path`` must
        be on storage that every worker and the client reach; an earlier export at ``path``
        is replaced when the new one is complete.

        Returns:
            The parts written, in order.

        Raises:
            ArgumentError: ``FA629`` for a ``path`` that holds something else, ``FA606`` for
                another format.
        """
        from fairalloc.cluster._explain import write_explanations

        return write_explanations(self, path, format=format, escape_formulas=escape_formulas)

    def group_statistics(
        self,
        *,
        strata: str | None = None,
        intersections: bool = True,
        confidence: float = 0.95,
        min_group: int = 10,
        min_expected: float = 5.0,
        four_fifths: float = 0.8,
    ) -> GroupStatistics:
        """:func:`fairalloc.audit.group_statistics` of the whole population, over the cluster.

        Each partition counts its eligible residents and those served, by stratum and group;
        the counts are added up and the statistics made from them, equal to one process's
        (numbers and dates are grouped by the quartiles of all the eligible residents, found
        from each partition's distinct values and their counts). Arguments as there.
        """
        from fairalloc.audit._groups import (
            groupings_of,
            statistics_of_tables,
            statistics_settings,
        )

        parts, cp, compute = self._source
        delayed = require("dask", extra="dask", feature="cluster statistics").delayed
        names = list(cp.policy.protected_attributes)
        kinds = {n: cp.policy.attributes[n].type for n in names}
        numeric = [n for n in names if kinds[n] in ("int", "float", "date")]
        counted = _gather([delayed(_distinct, pure=True)(p, cp, numeric) for p in parts], compute)
        quartiles = {}
        for name in numeric:
            values = np.concatenate([c[name][0] for c in counted])
            counts = np.concatenate([c[name][1] for c in counted])
            if len(values):
                # Every eligible resident's value (in another order: quantiles do not mind),
                # so the quartiles are those of one process, to the bit.
                whole = np.repeat(values, counts)
                quartiles[name] = np.unique(np.quantile(whole, [0.25, 0.5, 0.75]))
        served = delayed(frozenset(self.served_ids()), pure=True)
        groupings = groupings_of(len(names), intersections=intersections)
        found = _gather(
            [
                delayed(_group_tables, pure=True)(
                    p, cp, served, names, quartiles, strata, groupings
                )
                for p in parts
            ],
            compute,
        )
        tables = {
            g: (sum(f[0][g][0] for f in found), sum(f[0][g][1] for f in found)) for g in groupings
        }
        for i, name in enumerate(names):
            # The "missing" group of a number or date exists only if some value is missing.
            if name in quartiles and not any(f[1][name][1] for f in found):
                keep = len(quartiles[name]) + 1
                for g in groupings:
                    if i in g:
                        cut = [slice(None)] * (len(g) + 1)
                        cut[1 + g.index(i)] = slice(0, keep)
                        n, k = tables[g]
                        tables[g] = (n[tuple(cut)], k[tuple(cut)])
        coded = [
            _Coded(n, np.zeros(0, dtype=np.intp), _labels(n, kinds[n], cp, quartiles, found))
            for n in names
        ]
        strata_labels = found[0][2] if found else ("all",)
        stat_kw = statistics_settings(
            "served",
            strata=strata,
            confidence=confidence,
            min_group=min_group,
            min_expected=min_expected,
            four_fifths=four_fifths,
        )
        total = (self.eligible, len(self.served_ids()))
        return statistics_of_tables(coded, groupings, tables, strata_labels, stat_kw, total=total)

    def flip_audit(
        self,
        *,
        attributes: Sequence[str] | None = None,
        max_listed: int = 20,
        check_independent: bool = False,
        what_if_limit: int = 2_000,
    ) -> FlipAudit:
        """:func:`fairalloc.audit.flip_audit` of the whole population, over the cluster.

        Equal (as JSON) to ``flip_audit(evaluation, capacity=C)`` in one process, ``C`` being
        this allocation's capacity: each partition compares its own residents changed alone,
        and the client places those whose rank may change among every originally eligible
        resident's key (:mod:`fairalloc.cluster._flip` gives the argument). Arguments as
        there.
        """
        from fairalloc.cluster._flip import flip_audit_on_cluster

        return flip_audit_on_cluster(
            self,
            attributes=attributes,
            max_listed=max_listed,
            check_independent=check_independent,
            what_if_limit=what_if_limit,
        )

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
    data = dask_frame(data)
    category_sizes(spec, units)  # reserves that exceed the capacity are refused here, once
    delayed = require("dask", extra="dask", feature="cluster allocation").delayed
    parts = data.to_delayed()
    compute = client.compute if client is not None else None
    # 1. each partition's first keys in each order; the whole population's limit in each.
    step = _step(units)
    firsts = _gather([delayed(_first_keys, pure=True)(p, cp, units, step) for p in parts], compute)
    residents = sum(f[0] for f in firsts)
    eligible = sum(f[1] for f in firsts)
    limits = [_limit(units, step, [f[2][o] for f in firsts]) for o in range(len(spec.reserves) + 1)]
    # 2. the rows within a limit: every resident the mechanism could serve.
    candidates = _gather(
        [delayed(_candidates, pure=True)(p, cp, units, limits) for p in parts], compute
    )
    import pandas as pd

    frame = pd.concat(candidates, ignore_index=True) if candidates else data._meta
    pool = Population.load(frame, cp.policy, source="candidates")
    alloc = allocate(cp, pool, capacity=units)
    cut = {c.category: c for c in alloc.cutoffs() if c.last_id is not None}
    queries = {
        cat: _base_key(alloc, alloc.evaluation.index_of(str(c.last_id))) for cat, c in cut.items()
    }
    counts = _gather([delayed(_count_before, pure=True)(p, cp, queries) for p in parts], compute)
    positions = {cat: 1 + sum(c[cat] for c in counts) for cat in queries}
    summary = alloc.summary()
    summary["eligible"] = eligible
    for entry in summary["categories"]:
        if entry["category"] in positions:
            entry["position"] = positions[entry["category"]]
    source = (parts, cp, compute)
    return ClusterAllocation(alloc, residents, eligible, positions, len(parts), summary, source)


def dask_frame(data: Any) -> Any:
    """``data`` as a Dask DataFrame: one already, or the path of a Parquet dataset.

    Raises:
        ArgumentTypeError: ``FA645`` for anything else.
    """
    dd = require("dask.dataframe", extra="dask", feature="cluster allocation")
    if isinstance(data, str) or hasattr(data, "__fspath__"):
        data = dd.read_parquet(str(data))
    if not isinstance(data, dd.DataFrame):
        raise ArgumentTypeError(
            "FA645",
            f"data must be a dask DataFrame or a Parquet dataset's path, got {type(data).__name__}",
            argument="data",
            valid="a dask.dataframe.DataFrame, or the path of a Parquet dataset",
        )
    return data


def _distinct(
    frame: pd.DataFrame, cp: CompiledPolicy, names: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each numeric attribute's distinct values among the eligible, with their counts."""
    ev = _evaluated(frame, cp)
    assert ev.population is not None
    out = {}
    for name in names:
        values = ev.population.columns[name][ev.eligible].astype(np.float64)
        out[name] = np.unique(values[~np.isnan(values)], return_counts=True)
    return out


def _group_tables(
    frame: pd.DataFrame,
    cp: CompiledPolicy,
    served: frozenset[str],
    names: list[str],
    quartiles: dict[str, np.ndarray],
    strata: str | None,
    groupings: list[tuple[int, ...]],
) -> tuple[dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]], dict[str, Any], tuple[str, ...]]:
    """A partition's counts by stratum and group, and what the numeric groups' labels need.

    The groups are those :func:`~fairalloc.audit.group_statistics` makes in one process; the
    second item gives, per numeric attribute, the smallest and largest value in each quartile
    group and whether any value is missing.
    """
    from fairalloc.audit._groups import _code_attribute, _Coded, _graded_scale, _tables

    ev = _evaluated(frame, cp)
    pop = ev.population
    assert pop is not None
    base = np.asarray(ev.eligible, dtype=bool)
    selected = np.array([str(i) in served for i in ev.id_column[base]], dtype=bool)
    # Groups as the audit codes them, numbers bounded by the whole population's quartiles.
    edges = {name: q.tolist() for name, q in quartiles.items()}
    coded = [_code_attribute(pop, name, base, edges.get(name)) for name in names]
    extent: dict[str, Any] = {}
    for name, c in zip(names, coded, strict=True):
        if cp.policy.attributes[name].type in ("int", "float", "date"):
            values = pop.columns[name][base].astype(np.float64)
            missing = np.isnan(values)
            bins = {}
            for b in np.unique(c.codes[~missing]).tolist():
                in_bin = values[~missing & (c.codes == b)]
                bins[b] = (float(in_bin.min()), float(in_bin.max()))
            extent[name] = (bins, bool(missing.any()))
    sized = [_Coded(c.name, c.codes, ("",) * _group_count(c.name, cp, quartiles)) for c in coded]
    if strata is not None:
        scale = _graded_scale(ev, strata)
        stratum = ev.grades[base, scale.grade_index].astype(np.intp)
        labels: tuple[str, ...] = scale.grades
    else:
        stratum = np.zeros(int(base.sum()), dtype=np.intp)
        labels = ("all",)
    return _tables(sized, groupings, stratum, len(labels), selected), extent, labels


def _group_count(name: str, cp: CompiledPolicy, quartiles: dict[str, np.ndarray]) -> int:
    """How many groups an attribute has (the missing group counted when it may occur)."""
    attr = cp.policy.attributes[name]
    if attr.type in ("category", "ordinal"):
        return len(attr.levels or ())
    if attr.type == "bool":
        return 2
    if name not in quartiles:
        return 1
    return len(quartiles[name]) + 2  # the quartile groups, and "missing" (counted 0 if none)


def _labels(
    name: str, kind: str, cp: CompiledPolicy, quartiles: dict[str, np.ndarray], found: list[Any]
) -> tuple[str, ...]:
    """The group labels of one attribute, as one process writes them."""
    from fairalloc.audit._groups import _range_label

    attr = cp.policy.attributes[name]
    if kind in ("category", "ordinal"):
        return tuple(attr.levels or ())
    if kind == "bool":
        return ("false", "true")
    if name not in quartiles:
        return ("missing",)
    edges = quartiles[name]
    labels = []
    for b in range(len(edges) + 1):
        seen = [f[1][name][0][b] for f in found if b in f[1][name][0]]
        if seen:
            lo, hi = min(s[0] for s in seen), max(s[1] for s in seen)
            labels.append(_range_label(kind, np.array([lo, hi])))
        else:
            labels.append(f"bin {b + 1}")
    if any(f[1][name][1] for f in found):
        labels.append("missing")
    return tuple(labels)


def _check_mechanism(spec: AllocationSpec | None) -> None:
    if spec is None:
        raise ArgumentError(
            "FA628", "the policy allocates nothing (no `allocation` section)", argument="policy"
        )
    if spec.rotation is not None:
        raise ArgumentError(
            "FA626",
            "a rotation is served in rounds, each ordering residents by what they were given in"
            " earlier rounds (the rotation state); run a round with"
            " fairalloc.cluster.run_round_on_cluster (or fairalloc.run_round on one machine)",
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
    order, keys, draws = base_order(ev, spec)
    out = [(order, _key_columns(ev, spec, order, (keys, draws), with_id=False))]
    for c, reserve in enumerate(spec.reserves):
        own = reserve_order(ev, spec, c, order)
        own = own[ev.reserve_eligible[own, c]]
        cols = _key_columns(ev, spec, own, (keys, draws), with_id=False)
        if reserve.priority is not None:
            cols = [-ev.reserve_priority[own, c], *cols]
        out.append((own, cols))
    return out


#: About how many keys of each order a partition sends up: every ``units // _SAMPLES``-th of its
#: first ``units``. More: a tighter limit (fewer extra candidates); fewer: less for the client.
_SAMPLES = 256


def _step(units: int) -> int:
    return max(1, units // _SAMPLES)


def _first_keys(
    frame: pd.DataFrame, cp: CompiledPolicy, units: int, step: int
) -> tuple[int, int, list[list[np.ndarray]]]:
    """Residents, eligible residents, and every ``step``-th key of the first ``units``, per order.

    Key ``j`` sent (counting from 1) is the partition's ``j * step``-th in that order: at least
    ``j * step`` of its residents have a key no greater. (``step`` is chosen once, by the client.)
    """
    ev = _evaluated(frame, cp)
    spec = cp.policy.allocation
    assert spec is not None
    firsts = [[c[step - 1 : units : step] for c in cols] for _, cols in _orders(ev, spec)]
    return ev.n, int(ev.eligible.sum()), firsts


def _limit(units: int, step: int, keys: list[list[np.ndarray]]) -> tuple[Any, ...] | None:
    """A key no smaller than the whole population's ``units``-th in one order.

    Each sampled key vouches for ``step`` residents of its partition at or below it, so the
    first sampled key (in key order) that ``units`` residents are vouched for at or below is
    such a key. None when the samples do not reach ``units``: then every partition's first
    ``units`` are few in all, and they are the candidates.
    """
    if units == 0:
        return ()  # nobody
    cols = [np.concatenate(c) for c in zip(*keys, strict=True)]
    if not cols or len(cols[0]) * step < units:
        return None
    at = int(np.lexsort(cols[::-1])[-(-units // step) - 1])
    return tuple(_plain(c[at]) for c in cols)


def _candidates(
    frame: pd.DataFrame, cp: CompiledPolicy, units: int, limits: list[tuple[Any, ...] | None]
) -> pd.DataFrame:
    """The partition's candidates: in some order, among its first ``units`` and within the limit.

    Ties with the partition's ``units``-th, and with the limit, go up too: the mechanism
    decides, or refuses, a tie that straddles a cut-off.
    """
    ev = _evaluated(frame, cp)
    spec = cp.policy.allocation
    assert spec is not None
    keep = np.zeros(ev.n, dtype=bool)
    for (rows, cols), limit in zip(_orders(ev, spec), limits, strict=True):
        if limit == ():
            continue
        within = np.ones(len(rows), dtype=bool)
        if len(rows) > units:  # nobody after the partition's own units-th can be served
            less, equal = _compare(cols, tuple(_plain(c[units - 1]) for c in cols))
            within = less | equal
        if limit is not None:
            less, equal = _compare(cols, limit)
            within &= less | equal
        keep[rows[within]] = True
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
    drawn = (alloc.lottery_key, alloc.lottery_draw)
    cols = _key_columns(ev, spec, np.array([row], dtype=np.intp), drawn, with_id=True)
    return tuple(_plain(c[0]) for c in cols)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


#: The lottery keys and draws of a lottery mechanism (None, None under priority).
Drawn = tuple[npt.NDArray[np.uint64] | None, npt.NDArray[np.float64] | None]


def _key_columns(
    ev: Evaluation,
    spec: AllocationSpec,
    rows: npt.NDArray[np.intp],
    drawn: Drawn,
    *,
    with_id: bool,
) -> list[np.ndarray]:
    """The base order's key of ``rows``, column by column (lower first).

    The ranking's own sort keys and lottery keys under ``priority``; under a lottery, the keys
    and draws the mechanism drew (``drawn``, from :func:`base_order`), in the order it sorts
    them. With ``with_id``, the id last: residents tied on everything else are listed by id.
    """
    if spec.mechanism == "priority":
        cols = ranking_columns(ev, rows)
        return [*cols, ev.id_column[rows].astype(str)] if with_id else cols
    keys, draws = drawn
    assert spec.lottery is not None
    assert keys is not None
    assert draws is not None
    return [keys[rows]] if spec.lottery.weight is None else [draws[rows], keys[rows]]


def ranking_columns(ev: Evaluation, rows: npt.NDArray[np.intp]) -> list[np.ndarray]:
    """The ranking's key of ``rows``, column by column: its sort keys, then its lottery keys."""
    cols = _sort_keys(ev, rows)
    seed = ev.policy.lottery_seed
    if seed is not None:
        cols.append(lottery_keys(seed, ev.id_column[rows]))
    return cols


def _count_before(
    frame: pd.DataFrame, cp: CompiledPolicy, queries: dict[str, tuple[Any, ...]]
) -> dict[str, int]:
    """How many of the partition's eligible residents come before each query key."""
    ev = _evaluated(frame, cp)
    spec = cp.policy.allocation
    assert spec is not None
    _, keys, draws = base_order(ev, spec)
    cols = _key_columns(ev, spec, np.flatnonzero(ev.eligible), (keys, draws), with_id=True)
    return {name: int(_compare(cols, key)[0].sum()) for name, key in queries.items()}
