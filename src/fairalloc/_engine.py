"""The engine: one vectorized pass of a compiled policy over a population.

:func:`evaluate` runs every rule and indicator over whole columns, a chunk of residents at a
time so that memory stays bounded, and keeps the full trace (which rules held, the points of
every indicator and priority rule, scale totals, grades, score terms) for explanations and
audits. It is the only evaluator of rule semantics in the library.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import BandTable, Changes, CompiledPolicy, ScaleNode, compiled_for
from fairalloc._evaluation import Evaluation
from fairalloc._ids import Ids
from fairalloc._numeric import MAX_POINTS, MAX_TOTAL, MICRO, micro, micro_scalar
from fairalloc._tables import TableCode
from fairalloc.errors import MAX_LISTED, ArgumentError, EvaluationError
from fairalloc.expr._numpy import Frame

if TYPE_CHECKING:
    from fairalloc._population import Population
    from fairalloc.policy._model import Policy

__all__ = [
    "DEFAULT_CHUNK",
    "TRACE_ARRAYS",
    "band_index",
    "compiled_of",
    "derived_values",
    "evaluate",
    "evaluate_compiled",
    "indicator_inputs",
    "reevaluate",
    "reevaluate_attribute",
    "table_inputs",
]

#: Residents per chunk: large enough that numpy's per-call overhead vanishes, small enough
#: that a chunk's temporaries stay in cache-friendly, bounded memory.
DEFAULT_CHUNK = 1 << 16

Progress = Callable[[int], None]


def evaluate(
    policy: Policy | CompiledPolicy,
    residents: Population | Any,
    *,
    as_of: dt.date | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> Evaluation:
    """Apply ``policy`` to every resident: eligibility, exclusions, points, scales, score.

    Args:
        policy: A policy from :func:`load_policy` (or a compiled one).
        residents: A :class:`Population`, or anything :meth:`Population.load` accepts: a CSV
            path, a pandas/polars DataFrame, an Arrow table, a mapping of columns, records
            (dicts) or pydantic models.
        as_of: The date whose parameter values apply (see :func:`compile_policy`); only for
            an uncompiled policy.
        chunk_size: Residents evaluated at a time; bounds the memory of temporaries.
        progress: Called with the number of residents done after each chunk.

    Returns:
        The :class:`Evaluation`, whose ``ranking`` orders the eligible residents.

    Raises:
        PopulationError: if the residents do not fit the policy's attribute schema.
        EvaluationError: if a rule cannot be applied to some residents.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   need: {type: int, min: 0, max: 10}
        ... rules:
        ...   priority: [{id: need-points, points: "need * 2"}]
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... ''')
        >>> result = fa.evaluate(policy, [{"id": "a", "need": 3}, {"id": "b", "need": 7}])
        >>> result.ranking.top(2)
        ['b', 'a']
    """
    from fairalloc._population import Population  # deferred: it is only needed here

    compiled = compiled_of(policy, as_of)
    population = Population.of(residents, compiled.policy)
    return evaluate_compiled(compiled, population, chunk_size=chunk_size, progress=progress)


def compiled_of(policy: Policy | CompiledPolicy, as_of: dt.date | None) -> CompiledPolicy:
    """The compiled policy :func:`evaluate` uses for ``policy`` and ``as_of``."""
    if isinstance(policy, CompiledPolicy):
        if as_of is not None and as_of != policy.as_of:
            raise ArgumentError(
                "FA611",
                "as_of applies when compiling; compile the policy with it",
                argument="as_of",
                value=as_of,
            )
        return policy
    return compiled_for(policy, as_of)


#: The arrays of an evaluation's trace that the engine fills (the rest derive from them).
TRACE_ARRAYS = (
    "eligibility",
    "exclusions",
    "fired",
    "points",
    "scale_totals",
    "grades",
    "terms",
    "score_micro",
    "tie_values",
    "reserve_eligible",
    "reserve_priority",
    "resource_eligible",
    "resource_priority",
    "lottery_weight",
    "rotation_band",
    "table_rows",
)


def evaluate_compiled(
    cp: CompiledPolicy,
    population: Population,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate ``cp`` over ``population``; see :func:`fairalloc.evaluate`."""
    if chunk_size < 1:
        raise ArgumentError(
            "FA600", f"chunk_size must be at least 1, got {chunk_size}", argument="chunk_size"
        )
    _check_schema(cp, population)
    n = population.n
    out = Evaluation.allocate_arrays(cp, population.id_column, n)
    out.population = population
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        _evaluate_chunk(cp, population, out, start, stop)
        if progress is not None:
            progress(stop - start)
    out.finish()
    return out


def reevaluate(
    base: Evaluation,
    cp: CompiledPolicy,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate ``cp`` over the residents of ``base``, computing again only what changed.

    ``cp`` is typically ``base.policy`` compiled again with other parameter values or weights
    (see :meth:`CompiledPolicy.changes_from`). Then only the parts that read a changed
    parameter, directly or through derived values, and the indicators whose weight changed run
    their kernels again, with the same code as a full evaluation; every other column of the
    trace is taken from ``base``; scale totals and grades are computed again when an indicator's
    points or a sub-scale's weight changed, score terms and the score when any points or
    weights changed. The result is the same, array for array and error for error, as
    ``evaluate_compiled(cp, base.population)``, which is what runs when ``cp`` differs from
    ``base.policy`` in anything else.

    The arrays nothing changed are read-only views of ``base``'s, not copies.

    Raises:
        ValueError: if ``base`` does not hold its residents.
        EvaluationError: if a part computed again cannot be applied to some residents.
    """
    population = base.population
    if population is None:
        raise ArgumentError("FA610", "the evaluation does not hold its residents", argument="base")
    if chunk_size < 1:
        raise ArgumentError(
            "FA600", f"chunk_size must be at least 1, got {chunk_size}", argument="chunk_size"
        )
    changes = cp.changes_from(base.policy)
    if changes is None:
        return evaluate_compiled(cp, population, chunk_size=chunk_size, progress=progress)
    return _recompute(base, cp, population, changes, chunk_size, progress)


def reevaluate_attribute(
    base: Evaluation, population: Population, attribute: str, *, chunk_size: int = DEFAULT_CHUNK
) -> Evaluation:
    """Evaluate ``base.policy`` again after one column changed, computing only what reads it.

    ``population`` differs from ``base``'s residents in the column ``attribute`` only. The parts
    that read the attribute, directly or through derived values, run their kernels again with
    the same code as a full evaluation; scale totals, grades and the score follow when an
    indicator or a priority rule is among them; every other array is a read-only view of
    ``base``'s. A change that reaches a decision table or a grade table is evaluated in full;
    tables it does not reach keep ``base``'s rows. The result is the same, array for array, as
    ``evaluate_compiled(base.policy, population)`` (a test checks it).

    Raises:
        ArgumentError: ``FA610`` if ``base`` does not hold its residents.
    """
    cp = base.policy
    if base.population is None:
        raise ArgumentError("FA610", "the evaluation does not hold its residents", argument="base")
    readers = cp.readers_of(attribute)
    parts = set(readers)
    for paths in readers.values():
        for r in paths:
            parts |= {f"derived:{d}" for d in r.via}
    known = ("rule", "indicator", "tie_break", "reserve", "resource", "allocation", "derived")
    # A decision table the change reaches (through the part it belongs to) is evaluated in
    # full; tables the change does not reach keep their rows, as every other unread part does.
    tabled = any(t.part in parts for t in cp.tables)
    if tabled or any(p.split(":", 1)[0] not in known for p in parts):
        return evaluate_compiled(cp, population, chunk_size=chunk_size)
    scales = any(p.startswith("indicator:") for p in parts)
    if scales:
        parts |= cp.scale_readers
    priority = any(p.removeprefix("rule:") in cp.priority_ids for p in parts)
    changes = Changes(frozenset(), frozenset(), frozenset(parts), scales, scales or priority)
    return _recompute(base, cp, population, changes, chunk_size, None)


def _recompute(
    base: Evaluation,
    cp: CompiledPolicy,
    population: Population,
    changes: Changes,
    chunk_size: int,
    progress: Progress | None,
) -> Evaluation:
    """``cp`` over ``population``: the parts in ``changes`` computed, the rest taken from base."""
    n = population.n
    out = Evaluation.allocate_arrays(cp, population.id_column, n)
    out.population = population
    written = _written(cp, changes)
    for name in TRACE_ARRAYS:
        if name in written:
            setattr(out, name, getattr(base, name).copy(order="K"))
        else:
            shared = getattr(base, name).view()
            shared.flags.writeable = False
            setattr(out, name, shared)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        if written:
            _evaluate_chunk(cp, population, out, start, stop, changes)
        if progress is not None:
            progress(stop - start)
    out.finish()
    return out


def _written(cp: CompiledPolicy, changes: Changes) -> set[str]:
    """The arrays of the trace that the parts in ``changes`` write."""
    out: set[str] = set()
    exclusions = set(cp.exclusion_ids)
    priority = set(cp.priority_ids)
    for part in changes.parts:
        kind, name = part.split(":", 1)
        if kind == "rule":
            out |= (
                {"fired", "points"}
                if name in priority
                else {"exclusions"}
                if name in exclusions
                else {"eligibility"}
            )
        elif kind == "indicator":
            out.add("points")
        elif kind == "tie_break":
            out.add("tie_values")
        elif kind in ("reserve", "resource"):
            out |= {f"{kind}_eligible", f"{kind}_priority"}
        elif kind == "allocation":
            out.add("lottery_weight" if name == "lottery-weight" else "rotation_band")
    if any(t.part in changes.parts for t in cp.tables):
        out.add("table_rows")
    if changes.scales:
        out |= {"scale_totals", "grades"}
    if changes.score:
        out |= {"terms", "score_micro"}
    return out


def _check_schema(cp: CompiledPolicy, population: Population) -> None:
    missing = [
        a
        for a in cp.policy.attributes
        if a != cp.policy.id_attribute and a not in population.columns
    ]
    if missing:
        raise ArgumentError(
            "FA612",
            "the population was validated against another schema: it lacks "
            + ", ".join(missing)
            + "; load it with this policy",
            argument="population",
        )


def _evaluate_chunk(
    cp: CompiledPolicy,
    pop: Population,
    out: Evaluation,
    start: int,
    stop: int,
    changes: Changes | None = None,
) -> None:
    """Evaluate one chunk: every part, or with ``changes`` only the parts that changed."""
    sl = slice(start, stop)
    n = stop - start
    ids = pop.id_column[sl]
    redo = None if changes is None else changes.parts
    chunk = _Chunk(cp, {k: v[sl] for k, v in pop.columns.items()}, ids, out, sl, redo)
    frame = chunk.frame
    with np.errstate(all="ignore"):
        for table in cp.tables:
            if redo is None or table.part in redo:
                out.table_rows[sl, table.index] = chunk.rows(table)
        for j, rule in enumerate(cp._eligibility):
            if redo is None or f"rule:{rule.id}" in redo:
                out.eligibility[sl, j] = _condition(rule.cond(frame), n, rule.where, ids, rule.id)
        for j, rule in enumerate(cp._exclusions):
            if redo is None or f"rule:{rule.id}" in redo:
                out.exclusions[sl, j] = _condition(rule.cond(frame), n, rule.where, ids, rule.id)
        for ind in cp._indicators:
            crit = cp.criteria[ind.criterion]
            if redo is not None and f"indicator:{crit.key}" not in redo:
                continue
            out.point_columns()[sl, ind.criterion] = chunk.points(ind.criterion)
        for j, pr in enumerate(cp._priority):
            if redo is not None and _priority_part(cp, pr.criterion) not in redo:
                continue
            fired = _condition(pr.when(frame), n, pr.where, ids, "when")
            out.fired[sl, j] = fired
            pts = out.point_columns()[sl, pr.criterion]
            m = _priority_points(pr.points(frame), fired, n, pr, ids, pts)
            if m is not None:
                out.constant_points(pr.criterion, j, m)
        if changes is None or changes.scales:
            for top in cp.scales:
                for node in top.walk():
                    out.scale_totals[sl, node.index] = chunk.total(node)
                    if node.grades:
                        out.grades[sl, node.grade_index] = chunk.grade(node)
        if changes is None or changes.score:
            _score(cp, out, sl, ids)
        _allocation_inputs(cp, out, frame, sl, n, ids, redo)
        for j, tb in enumerate(cp._tie_breaks):
            if redo is not None and f"tie_break:{j}" not in redo:
                continue
            if tb.column is not None and out.population is not None:
                out.column_tie(j, tb.column)  # the column is the value: nothing to copy now
            elif tb.kernel is not None:
                vals = _full(tb.kernel(frame), n)
                _check_defined(np.isnan(vals), tb.where, ids, "the tie-break value is undefined")
                out.tie_value_columns()[sl, j] = vals


class _Chunk:
    """A chunk of residents being evaluated, with every scale value computed once, on demand.

    Indicators, totals and grades may read each other's grades and totals (the compiler has
    refused cycles), so they are computed in the order their reads require: the first read of
    a value computes it (and what it needs) and keeps it. The frame's values ``@grade:PATH`` and
    ``@total:PATH`` are those reads, as expressions see them.
    """

    def __init__(
        self,
        cp: CompiledPolicy,
        columns: dict[str, np.ndarray],
        ids: Ids,
        out: Evaluation | None = None,
        sl: slice | None = None,
        redo: frozenset[str] | None = None,
    ) -> None:
        self.cp, self.ids, self.out, self.sl, self.redo = cp, ids, out, sl, redo
        self.n = len(ids)
        self._points: dict[int, npt.NDArray[np.int64]] = {}
        self._totals: dict[str, npt.NDArray[np.int64]] = {}
        self._grades: dict[str, npt.NDArray[np.int64]] = {}
        self._nodes = {node.path: node for top in cp.scales for node in top.walk()}
        self._by_criterion = {ind.criterion: ind for ind in cp._indicators}
        derived: dict[str, Any] = dict(cp._derived)
        if cp.reads_scales:
            for path, node in self._nodes.items():
                derived[f"@total:{path}"] = ("num", self._total_reader(node))
                if node.grades:
                    derived[f"@grade:{path}"] = ("num", self._grade_reader(node))
        self.frame = Frame(self.n, columns, derived)

    def _total_reader(self, node: ScaleNode) -> Callable[[Frame], npt.NDArray[np.float64]]:
        return lambda _f: self.total(node).astype(np.float64) / MICRO

    def _grade_reader(self, node: ScaleNode) -> Callable[[Frame], npt.NDArray[np.float64]]:
        return lambda _f: self.grade(node).astype(np.float64)

    def rows(self, table: TableCode) -> npt.NDArray[np.int64]:
        """The row of ``table`` that applies to each resident; an error where none does."""
        rows = np.asarray(self.frame.value_of(f"@row:{table.index}"), dtype=np.int64)
        _check_defined(rows == -1, table.where, self.ids, "no row of the table matches")
        _check_defined(rows == -2, table.where, self.ids, "two rows of a `unique` table match")
        return rows

    def points(self, criterion: int) -> npt.NDArray[np.int64]:
        """An indicator's weighted micro-points."""
        got = self._points.get(criterion)
        if got is not None:
            return got
        crit = self.cp.criteria[criterion]
        if (
            self.redo is not None
            and self.out is not None
            and f"indicator:{crit.key}" not in self.redo
        ):
            got = self.out.point_columns()[self.sl, criterion]
        else:
            ind = self._by_criterion[criterion]
            if ind.table is not None:
                self.rows(ind.table)
            pts = _indicator_points(ind, self.frame, self.n, self.ids)
            got = _to_micro(pts * crit.weight if crit.weight != 1.0 else pts, ind.where, self.ids)
        self._points[criterion] = got
        return got

    def total(self, node: ScaleNode) -> npt.NDArray[np.int64]:
        """A scale's total in micro-points."""
        got = self._totals.get(node.path)
        if got is not None:
            return got
        doc = ("scales", *node.path.replace(".", ".scales.").split("."))
        where = self.cp.span(doc)
        t = np.zeros(self.n, dtype=np.int64)
        for k in node.indicators:
            t = t + self.points(k)
        for child in node.children:
            t = t + _weighted(self.total(child), child.weight, where, self.ids)
        _check_total(t, where, self.ids)
        self._totals[node.path] = t
        return t

    def grade(self, node: ScaleNode) -> npt.NDArray[np.int64]:
        """The index of a scale's grade."""
        got = self._grades.get(node.path)
        if got is not None:
            return got
        if node.decision is not None:
            table = node.decision
            got = table.outputs[self.rows(table)].astype(np.int64)
        else:
            assert node.grade_table is not None
            doc = ("scales", *node.path.replace(".", ".scales.").split("."), "grades")
            g = _bands(self.total(node).astype(np.float64) / MICRO, node.grade_table)
            _check_defined(
                np.isnan(g),
                self.cp.span(doc),
                self.ids,
                f"the total of `{node.path}` falls in no grade",
            )
            got = g.astype(np.int64)
        self._grades[node.path] = got
        return got


def _priority_points(
    value: npt.NDArray[np.float64] | float,
    fired: npt.NDArray[np.bool_],
    n: int,
    pr: Any,
    ids: Ids,
    out: npt.NDArray[np.int64],
) -> int | None:
    """A priority rule's micro-points into ``out``: its points where it fired, 0 elsewhere.

    Constant points are rounded once and not written: the constant in micro-points is
    returned, and the points are the fired flags times it in int64, which is exactly
    ``micro(where(fired, points, 0))`` (``micro(0.0)`` is 0) without a float pass.
    """
    if not isinstance(value, np.ndarray) or value.shape != (n,):
        c = float(value)
        if abs(c) <= MAX_POINTS:
            return micro_scalar(c)
        if not fired.any():
            return 0  # never fires here; where it does, the points are refused
    pts = np.where(fired, _full(value, n), 0.0)
    out[...] = _to_micro(pts, pr.where, ids)
    return None


def _priority_part(cp: CompiledPolicy, criterion: int) -> str:
    return "rule:" + cp.criteria[criterion].key.removeprefix("priority.")


def _full(v: npt.NDArray[np.float64] | float, n: int) -> npt.NDArray[np.float64]:
    if isinstance(v, np.ndarray) and v.shape == (n,):
        return v.astype(np.float64, copy=False)
    return np.full(n, float(v), dtype=np.float64)


def _condition(
    result: tuple[object, object], n: int, where: str, ids: Ids, what: str
) -> npt.NDArray[np.bool_]:
    val, inv = result
    if inv is not None:
        _check_defined(
            np.broadcast_to(np.asarray(inv, dtype=bool), (n,)),
            where,
            ids,
            f"condition `{what}` is undefined (a division by zero or an overflow on the way)",
        )
    arr = np.asarray(val, dtype=bool)
    return arr if arr.shape == (n,) else np.broadcast_to(arr, (n,))


def _check_defined(bad: npt.NDArray[np.bool_], where: str, ids: Ids, message: str) -> None:
    if bad.any():
        rows = np.flatnonzero(bad)
        raise EvaluationError(message, where, [str(i) for i in ids[rows[:MAX_LISTED]]], len(rows))


def _to_micro(
    pts: npt.NDArray[np.float64], where: str, ids: Ids, limit: float = MAX_POINTS
) -> npt.NDArray[np.int64]:
    # Two reductions check the range (NaN fails the comparison too); the exact cause and the
    # residents are worked out only when something is wrong.
    if len(pts) and not (-limit <= pts.min() and pts.max() <= limit):
        bad = ~(np.abs(pts) <= limit)
        undefined = np.isnan(pts)
        msg = (
            "points are undefined (a division by zero or an overflow on the way)"
            if undefined.any()
            else f"points are beyond ±{limit:g}"
        )
        _check_defined(undefined if undefined.any() else bad, where, ids, msg)
    return micro(pts)


def band_index(x: npt.NDArray[np.float64], table: BandTable) -> npt.NDArray[np.int64]:
    """The index of the first band (or grade) whose bounds hold for each x; -1 where none does."""
    out = np.full(x.shape, -1, dtype=np.int64)
    for k in range(len(table) - 1, -1, -1):
        lo, hi = table.lower[k], table.upper[k]
        ok = (x > lo) if table.lower_strict[k] else (x >= lo)
        ok &= (x < hi) if table.upper_strict[k] else (x <= hi)
        out[ok] = k
    return out


def _bands(x: npt.NDArray[np.float64], table: BandTable) -> npt.NDArray[np.float64]:
    """The value of the first band that holds for each x; NaN where none does."""
    k = band_index(x, table)
    return np.where(k >= 0, table.values[np.maximum(k, 0)], np.nan)


class IndicatorInputs(NamedTuple):
    """What each indicator read for some residents (one row each, one column per indicator).

    Attributes:
        values: The value read (for a formula indicator: the formula's points).
        bands: The index of its band, the level code for a lookup, or -1 for a formula.
        capped: Whether ``min_points``/``max_points`` changed its points.
    """

    values: npt.NDArray[np.float64]
    bands: npt.NDArray[np.int64]
    capped: npt.NDArray[np.bool_]


def indicator_inputs(
    cp: CompiledPolicy, population: Population, rows: npt.NDArray[np.intp]
) -> IndicatorInputs:
    """What each indicator (in ``cp._indicators`` order) read for ``rows``, as the engine read it.

    For residents the engine has evaluated; explanations show these inputs beside the points.
    """
    k = len(rows)
    ids = population.id_column[rows]
    frame = _Chunk(cp, {c: v[rows] for c, v in population.columns.items()}, ids).frame
    shape = (k, len(cp._indicators))
    out = IndicatorInputs(
        np.zeros(shape, dtype=np.float64),
        np.full(shape, -1, dtype=np.int64),
        np.zeros(shape, dtype=bool),
    )
    with np.errstate(all="ignore"):
        for i, ind in enumerate(cp._indicators):
            x = _full(ind.source(frame), k)
            out.values[:, i] = x
            if ind.bands is not None:
                out.bands[:, i] = band_index(x, ind.bands)
            elif ind.lookup is not None or ind.table is not None:
                out.bands[:, i] = np.where(np.isnan(x), -1, x).astype(np.int64)
            raw = _uncapped_points(ind, frame, k, ids)
            out.capped[:, i] = _capped(ind, raw) != raw
    return out


def derived_values(evaluation: Evaluation, row: int, names: list[str]) -> dict[str, object]:
    """The derived values ``names`` of the resident at ``row``, as written in a policy.

    Levels by name, conditions as true/false, dates as dates, numbers as floats; a name that is
    not a derived value is left out.
    """
    cp, pop = evaluation.policy, evaluation.population
    assert pop is not None, "evaluations made by the engine hold their population"
    rows = np.array([row], dtype=np.intp)
    chunk = _Chunk(cp, {c: v[rows] for c, v in pop.columns.items()}, pop.id_column[rows])
    out: dict[str, object] = {}
    with np.errstate(all="ignore"):
        for name in names:
            typ = cp.derived_types.get(name)
            if typ is None:
                continue
            raw = chunk.frame.value_of(name)
            if typ.kind == "bool":
                out[name] = bool(np.asarray(raw[0] if isinstance(raw, tuple) else raw).ravel()[0])
                continue
            x = float(np.asarray(raw, dtype=np.float64).ravel()[0])
            if typ.kind == "level" and x == x:
                out[name] = typ.levels[int(x)]
            elif typ.kind == "date" and x == x:
                out[name] = dt.date(1970, 1, 1) + dt.timedelta(days=int(x))
            else:
                out[name] = x
    return out


def table_inputs(
    cp: CompiledPolicy, population: Population, rows: npt.NDArray[np.intp]
) -> list[list[npt.NDArray[np.float64]]]:
    """Each decision table's input values for ``rows``, as the engine read them.

    For residents the engine has evaluated; explanations show these beside the row that applied.
    """
    ids = population.id_column[rows]
    chunk = _Chunk(cp, {c: v[rows] for c, v in population.columns.items()}, ids)
    with np.errstate(all="ignore"):
        return [t.inputs(chunk.frame, len(rows)) for t in cp.tables]


def _indicator_points(ind: object, frame: Frame, n: int, ids: Ids) -> npt.NDArray[np.float64]:
    return _capped(ind, _uncapped_points(ind, frame, n, ids))


def _uncapped_points(ind: object, frame: Frame, n: int, ids: Ids) -> npt.NDArray[np.float64]:
    from fairalloc._compiler import _IndicatorCode

    assert isinstance(ind, _IndicatorCode)
    x = _full(ind.source(frame), n)
    if ind.source_nan:
        _check_defined(np.isnan(x), ind.where, ids, "the indicator's value is undefined")
    if ind.bands is not None:
        pts = _bands(x, ind.bands)
        _check_defined(
            np.isnan(pts), ind.where, ids, "the value falls in no band (add a catch-all band last)"
        )
    elif ind.lookup is not None:
        pts = ind.lookup[x.astype(np.intp)]
    elif ind.table is not None:
        rows = x.astype(np.intp)
        pts = np.where(rows >= 0, ind.table.outputs[np.maximum(rows, 0)], np.nan)
        _check_defined(np.isnan(pts), ind.where, ids, "no row of the table matches")
    else:
        pts = x
    return pts


def _capped(ind: object, pts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Points within the indicator's ``min_points``/``max_points``."""
    from fairalloc._compiler import _IndicatorCode

    assert isinstance(ind, _IndicatorCode)
    if ind.min_points is None and ind.max_points is None:
        return pts
    lo = -np.inf if ind.min_points is None else ind.min_points
    hi = np.inf if ind.max_points is None else ind.max_points
    return np.minimum(np.maximum(pts, lo), hi)


def _weighted(
    total: npt.NDArray[np.int64], weight: float, where: str, ids: Ids
) -> npt.NDArray[np.int64]:
    if weight == 1.0:
        return total
    return _to_micro(total.astype(np.float64) / MICRO * weight, where, ids, MAX_TOTAL)


def _check_total(total: npt.NDArray[np.int64], where: str, ids: Ids) -> None:
    limit = int(MAX_TOTAL) * MICRO
    _check_defined(np.abs(total) > limit, where, ids, f"the total is beyond ±{MAX_TOTAL:g} points")


def _score(cp: CompiledPolicy, out: Evaluation, sl: slice, ids: Ids) -> None:
    scale_col = {s.path: s.index for s in (n for top in cp.scales for n in top.walk())}
    method = cp.policy.score.method
    where = cp.span(("score",))
    n = sl.stop - sl.start
    for j, (name, weight) in enumerate(cp.score_terms):
        if name == "priority":
            # Rule by rule into one int64 sum: integer addition, so the order does not matter.
            value = np.zeros(n, dtype=np.int64)
            part = np.empty(n, dtype=np.int64)
            for p in cp._priority:
                constant = out.constant_points_of(p.criterion)
                if constant is None:
                    value += out.point_columns()[sl, p.criterion]
                else:
                    column, m = constant
                    value += np.multiply(out.fired[sl, column], np.int64(m), out=part)
        else:
            value = out.scale_totals[sl, scale_col[name]]
        # In a product, weights are exponents (applied below), not multipliers.
        _check_total(value, where, ids)
        out.terms[sl, j] = value if method == "product" else _weighted(value, weight, where, ids)
    if method == "sum":
        if out.terms.shape[1] == 1 and np.shares_memory(out.terms, out.score_micro):
            return  # the one term is the score (see Evaluation)
        total = np.zeros(n, dtype=np.int64)
        for j in range(out.terms.shape[1]):
            total += out.terms[sl, j]
        _check_total(total, where, ids)
        out.score_micro[sl] = total
    elif method == "tiers":
        # With no terms at all, everyone scores 0 and the tie-break chain alone decides.
        out.score_micro[sl] = out.terms[sl, 0] if cp.score_terms else 0
    else:
        prod = np.ones(n, dtype=np.float64)
        for j, (_name, weight) in enumerate(cp.score_terms):
            base = out.terms[sl, j].astype(np.float64) / MICRO
            # Repeated multiplication, not pow: exact to reproduce on any platform.
            for _ in range(int(weight)):
                prod = prod * base
        out.score_micro[sl] = _to_micro(prod, where, ids, MAX_TOTAL)


def _allocation_inputs(
    cp: CompiledPolicy,
    out: Evaluation,
    frame: Frame,
    sl: slice,
    n: int,
    ids: Ids,
    redo: frozenset[str] | None = None,
) -> None:
    """Evaluate the allocation section's expressions, as the engine does every rule.

    Reserve and resource eligibility and priorities, lottery weights, rotation bands; with
    ``redo``, only the parts it names.
    """
    for target_elig, target_prio, parts, kind in (
        (out.reserve_eligible, out.reserve_priority, cp._reserves, "reserve"),
        (out.resource_eligible, out.resource_priority, cp._resources, "resource"),
    ):
        for j, part in enumerate(parts):
            if redo is not None and f"{kind}:{part.id}" not in redo:
                continue
            if part.cond is not None:
                target_elig[sl, j] = _condition(part.cond(frame), n, part.where, ids, part.id)
            if part.value is not None:
                vals = _full(part.value(frame), n)
                _check_defined(np.isnan(vals), part.where, ids, "the priority is undefined")
                target_prio[sl, j] = vals
    weight, band = cp._lottery_weight, cp._rotation_band
    if redo is not None:
        weight = weight if "allocation:lottery-weight" in redo else None
        band = band if "allocation:rotation-band" in redo else None
    if weight is not None and weight.value is not None:
        w = _full(weight.value(frame), n)
        _check_defined(
            ~(w > 0) | ~np.isfinite(w),
            weight.where,
            ids,
            "lottery weights must be positive numbers",
        )
        out.lottery_weight[sl] = w
    if band is not None and band.value is not None:
        b = _full(band.value(frame), n)
        _check_defined(np.isnan(b), band.where, ids, "the need band is undefined")
        out.rotation_band[sl] = b
