"""Sweeps: outcomes and group statistics as one or two parameters vary over a grid.

:func:`sweep` evaluates the policy once, then, for each value of the grid, compiles the policy
with the changed parameter values and lets the engine compute again only the parts that read
them (:func:`fairalloc._engine.reevaluate`): every other column of the trace is reused, and each
resident's lottery key is drawn at most once for the whole sweep. Sweeping the allocation's
capacity (the key ``capacity``) evaluates nothing again: only the allocation is repeated.

Each grid point reports the eligible and served counts, the cut-off score of every category, the
mean and median score of the eligible, and :func:`fairalloc.audit.group_statistics` of the
outcome (selection rates by group, ratios to the best-served group, four-fifths flags).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import difflib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from fairalloc._compiler import CompiledPolicy, compile_policy, remember_compiled
from fairalloc._engine import DEFAULT_CHUNK, compiled_of, evaluate_compiled, reevaluate
from fairalloc._escape import csv_text
from fairalloc._evaluation import Evaluation
from fairalloc._html import table as html_table
from fairalloc._io import atomic_write
from fairalloc._numeric import MICRO
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import LotteryKeys, rank_with, release
from fairalloc._text import text_table, value
from fairalloc.allocation import Allocation, allocate_evaluation
from fairalloc.errors import (
    AllocationError,
    AllocationReason,
    ArgumentError,
    EvaluationError,
    FairallocError,
    PolicyError,
    PolicyIssue,
)
from fairalloc.policy import _model as M

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc.audit._groups import GroupStatistics

__all__ = [
    "CAPACITY",
    "Sweep",
    "SweepPoint",
    "sweep",
    "with_parameters",
]

#: The grid key that varies the allocation's capacity instead of a parameter.
CAPACITY = "capacity"
#: Another name for it, for a policy that has a parameter called ``capacity``.
CAPACITY_ALIAS = "allocation.capacity"


# -- changed policies ---------------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """A parameter value as a policy document holds it: numpy scalars and tuples unwrapped.

    Dates from numpy or pandas (any unit) become days; a date-time at midnight becomes its day.
    """
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list | np.ndarray):
        return [plain_value(v) for v in value]
    return value


def _issue(
    code: str, message: str, cp: CompiledPolicy, path: tuple[str, ...], hint: str = ""
) -> PolicyIssue:
    return PolicyIssue(code, message, cp.source_map.span(path), hint=hint)


def check_parameter_names(cp: CompiledPolicy, names: Sequence[str]) -> None:
    """Raise :class:`PolicyError` (``FA202``) naming every name that is not a parameter."""
    params = list(cp.policy.parameters)
    issues = []
    for name in names:
        if name not in params:
            close = difflib.get_close_matches(name, params, n=1)
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else "parameters: " + (", ".join(params) or "none")
            )
            issues.append(
                _issue("FA202", f"unknown parameter `{name}`", cp, ("parameters",), hint=hint)
            )
    if issues:
        raise PolicyError(issues)


def changed_parameters(cp: CompiledPolicy, values: Mapping[str, Any]) -> dict[str, M.Parameter]:
    """The policy's parameters with ``values`` in force, each value validated.

    Raises:
        PolicyError: ``FA202`` for a name that is not a parameter, ``FA112`` for a value that no
            parameter can hold.
    """
    check_parameter_names(cp, list(values))
    params = dict(cp.policy.parameters)
    issues: list[PolicyIssue] = []
    for name, raw in values.items():
        value = plain_value(raw)
        try:
            checked = M.Parameter.model_validate({"value": value})
        except ValidationError:
            issues.append(
                _issue(
                    "FA112",
                    f"parameter `{name}` cannot be {value!r}: a parameter is a number, true/false,"
                    " a date, a text or a list of numbers or texts",
                    cp,
                    ("parameters", name),
                )
            )
            continue
        # Its title, description and source stay; one value replaces any dated values.
        params[name] = params[name].model_copy(update={"value": checked.value, "values": None})
    if issues:
        raise PolicyError(issues)
    return params


def compile_variant(cp: CompiledPolicy, doc: M.Policy, context: str) -> CompiledPolicy:
    """Compile ``doc``, a changed copy of ``cp``'s document, as ``cp`` was compiled.

    Problems are reported as the compiler reports them, each message prefixed with ``context``
    (for example ``with min_age = 'abc'``), so that it says which change caused it.
    """
    try:
        return compile_policy(doc, as_of=cp.as_of, audit=bool(cp.violations))
    except PolicyError as e:
        issues = [dataclasses.replace(i, message=f"{context}: {i.message}") for i in e.issues]
        raise type(e)(issues) from None


def _assignments(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {_jsonable(plain_value(v))!r}" for k, v in values.items())


def _context(values: Mapping[str, Any]) -> str:
    return "with " + _assignments(values)


def parameter_variant(cp: CompiledPolicy, values: Mapping[str, Any]) -> CompiledPolicy:
    """``cp`` compiled again with the parameter ``values`` in force."""
    if not values:
        return cp
    params = changed_parameters(cp, values)
    doc = cp.policy.model_copy(update={"parameters": params})
    return compile_variant(cp, doc, _context(values))


def as_loaded(doc: M.Policy, cp: CompiledPolicy) -> M.Policy:
    """``doc`` with ``cp`` as its compilation, so that it evaluates as of the same date."""
    remember_compiled(doc, cp, cp.as_of, audit=bool(cp.violations))
    return doc


def with_parameters(policy: M.Policy | CompiledPolicy, values: Mapping[str, Any]) -> M.Policy:
    """A copy of ``policy`` with other parameter values, checked as a policy file is.

    Each named parameter gets one ``value`` (replacing any dated ``values``). The copy is
    compiled at once, as of the date ``policy`` was loaded for, so that
    ``fairalloc.evaluate(copy, residents)`` applies the same date as
    ``fairalloc.evaluate(policy, residents)``.

    Args:
        policy: A policy, or a compiled one (then its date applies).
        values: Parameter name → value (a number, true/false, a date, a text or a list).

    Raises:
        PolicyError: for an unknown parameter (``FA202``), a value no parameter can hold
            (``FA112``), or a value of the wrong type for the expressions that use it (for
            example ``FA203``); every message starts with the change that caused it.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   age: {type: int, min: 0, max: 120}
        ... parameters: {min_age: 60}
        ... rules: {eligibility: [{id: old-enough, when: "age >= min_age"}]}
        ... ''')
        >>> older = with_parameters(policy, {"min_age": 65})
        >>> older.parameters["min_age"].value
        65
        >>> older.policy.version
        '1+min_age=65'
        >>> fa.evaluate(older, [{"id": "a", "age": 62}]).eligible.tolist()
        [False]
    """
    cp = compiled_of(policy, None)
    if not values:
        return as_loaded(cp.policy.model_copy(), cp)
    # The variant is another version of the policy: say which, so that comparisons and reports
    # never read "v2026.1 → v2026.1".
    meta = cp.policy.policy
    changed = ", ".join(f"{k}={_jsonable(plain_value(v))}" for k, v in values.items())
    update = {
        "parameters": changed_parameters(cp, values),
        "policy": meta.model_copy(update={"version": f"{meta.version}+{changed}"}),
    }
    doc = cp.policy.model_copy(update=update)
    return as_loaded(doc, compile_variant(cp, doc, _context(values)))


# -- outcomes -----------------------------------------------------------------------------------


def allocation_units(cp: CompiledPolicy, capacity: int | None) -> int | None:
    """The units a sweep allocates: ``capacity`` or the policy's; None to report eligibility.

    Raises:
        ValueError: if a capacity is given for a policy that cannot allocate one.
    """
    spec = cp.policy.allocation
    if spec is None or spec.matching is not None or spec.rotation is not None:
        if capacity is not None:
            why = (
                "has no `allocation` section"
                if spec is None
                else "allocates by matching"
                if spec.matching is not None
                else "serves a waiting list over rounds (rotation)"
            )
            code = "FA650" if spec is None else "FA652"
            reason = (
                AllocationReason.NO_SECTION if spec is None else AllocationReason.OTHER_MECHANISM
            )
            raise AllocationError(code, reason, f"cannot allocate a capacity: the policy {why}")
        return None
    return capacity if capacity is not None else spec.capacity


def check_capacity(value: Any) -> int:
    """A capacity from a grid: a whole number of at least 0."""
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(
            "FA601",
            f"a capacity is a whole number of units, got {value!r}",
            argument="capacity",
            value=value,
            valid="a whole number, 0 or more",
        )
    if value < 0:
        raise ArgumentError(
            "FA601",
            f"capacity must be at least 0, got {value}",
            argument="capacity",
            value=value,
            valid="a whole number, 0 or more",
        )
    return value


def outcome(ev: Evaluation, units: int | None) -> Allocation | None:
    """The allocation of ``units`` (None: no allocation, the outcome is eligibility)."""
    if units is None:
        return None
    # An analysis, never a decision: a policy loaded for audit only is measured too.
    return allocate_evaluation(ev, capacity=units, measure_only=True)


@dataclass(frozen=True)
class SweepPoint:
    """The outcome at one point of a sweep's grid.

    Attributes:
        values: The value of each swept key (parameters, ``capacity``), in the grid's order.
        capacity: The units allocated (None when the outcome is eligibility).
        residents: Residents evaluated.
        eligible: Residents eligible.
        served: Residents served (None without an allocation).
        cutoffs: Per category: ``category``, ``size``, ``used`` and the cut-off ``score`` (the
            score of its last resident served; None if nobody was).
        mean_score: The mean score of the eligible residents (None if nobody is eligible).
        median_score: Their median score.
        groups: The :func:`~fairalloc.audit.group_statistics` of the outcome: served among the
            eligible with an allocation, eligible among all residents without.
        recomputed: The parts of the policy evaluated again for this point (the others were
            reused), as named by :attr:`fairalloc.CompiledPolicy.reads`.
    """

    values: dict[str, Any]
    capacity: int | None
    residents: int
    eligible: int
    served: int | None
    cutoffs: tuple[dict[str, Any], ...]
    mean_score: float | None
    median_score: float | None
    groups: GroupStatistics
    recomputed: tuple[str, ...] = ()

    def group_rows(self) -> list[dict[str, Any]]:
        """The groups compared, as the audit counts them.

        Within each grade of the strata when the sweep has strata (differences across need
        grades are what a needs-based policy is for), else over all residents compared.
        """
        within = self.groups.strata is not None
        return [r for r in self.groups.rows if (r["stratum"] is not None) == within]

    @property
    def min_ratio(self) -> float | None:
        """The lowest ratio of a group's selection rate to the best-served group's.

        Among the groups large enough to publish (not suppressed: see
        :func:`~fairalloc.audit.group_statistics`), so that a group of three residents with
        nobody served does not stand for the whole comparison; every group's ratio is in
        :meth:`Sweep.to_pandas`.
        """
        ratios = [
            r["ratio"] for r in self.group_rows() if r["ratio"] is not None and not r["suppressed"]
        ]
        return min(ratios) if ratios else None

    @property
    def four_fifths(self) -> list[str]:
        """The groups below four-fifths of the best-served group's rate (``attribute=group``)."""
        return [_label(r) for r in self.group_rows() if r["four_fifths"]]

    @property
    def disparities(self) -> list[str]:
        """The groups below four-fifths whose interval excludes parity."""
        return [_label(r) for r in self.group_rows() if r["disparity"]]

    def to_dict(self) -> dict[str, Any]:
        """The point as plain values (dates as ISO text)."""
        return {
            "values": {k: _jsonable(v) for k, v in self.values.items()},
            "capacity": self.capacity,
            "residents": self.residents,
            "eligible": self.eligible,
            "served": self.served,
            "cutoffs": [dict(c) for c in self.cutoffs],
            "mean_score": self.mean_score,
            "median_score": self.median_score,
            "min_ratio": self.min_ratio,
            "four_fifths": self.four_fifths,
            "disparities": self.disparities,
            "groups": [
                {k: r[k] for k in _GROUP_KEYS} | {"group": r["group"], "grouping": r["grouping"]}
                for r in self.group_rows()
            ],
            "recomputed": list(self.recomputed),
        }


_GROUP_KEYS = (
    "n",
    "selected",
    "rate",
    "rate_low",
    "rate_high",
    "reference",
    "ratio",
    "ratio_low",
    "ratio_high",
    "four_fifths",
    "compatible_with_parity",
    "disparity",
)


def _label(row: dict[str, Any]) -> str:
    label = f"{row['grouping']}={row['group']}"
    return label if row["stratum"] is None else f"{label} in {row['stratum']}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _exact_sum(values: npt.NDArray[np.int64]) -> int:
    """The sum of int64 values as a Python int, without overflow: high and low 32 bits apart."""
    high = int((values >> 32).sum(dtype=np.int64))
    low = int((values & 0xFFFFFFFF).sum(dtype=np.int64))
    return (high << 32) + low


def summarize(
    ev: Evaluation,
    values: dict[str, Any],
    units: int | None,
    *,
    group_by: Sequence[str] | None,
    strata: str | None,
    intersections: bool,
    bins: Mapping[str, Sequence[float]] | None = None,
    recomputed: tuple[str, ...] = (),
) -> tuple[SweepPoint, npt.NDArray[np.bool_]]:
    """One point's outcome and the residents selected (served, or eligible)."""
    from fairalloc.audit._groups import group_statistics

    alloc = outcome(ev, units)
    eligible = ev.score_micro[ev.eligible]
    count = len(eligible)
    mean = _exact_sum(eligible) / count / MICRO if count else None
    median = float(np.median(eligible)) / MICRO if count else None
    cutoffs: tuple[dict[str, Any], ...] = ()
    if alloc is not None:
        cutoffs = tuple(
            {"category": c.category, "size": c.size, "used": c.used, "score": c.score}
            for c in alloc.cutoffs()
        )
    stats = group_statistics(
        alloc if alloc is not None else ev,
        attributes=group_by,
        strata=strata,
        intersections=intersections,
        bins=bins,
    )
    point = SweepPoint(
        values=values,
        capacity=units,
        residents=ev.n,
        eligible=count,
        served=alloc.n_served if alloc is not None else None,
        cutoffs=cutoffs,
        mean_score=mean,
        median_score=median,
        groups=stats,
        recomputed=recomputed,
    )
    selected = np.asarray(alloc.served if alloc is not None else ev.eligible, dtype=bool)
    return point, selected


# -- the sweep ----------------------------------------------------------------------------------


@dataclass
class Sweep:
    """Outcomes over a grid of parameter values (and capacities); build it with :func:`sweep`.

    Attributes:
        keys: The swept keys: one or two parameter names or ``capacity``.
        grid: The values of each key, as given.
        points: One :class:`SweepPoint` per grid point: every value of the first key with every
            value of the second, the second varying fastest.
        baseline: The outcome under the policy as it is (its own parameter values and capacity).
        base_values: The value of each key in the policy as it is.
        recomputed: For each parameter key, the parts of the policy that read it (directly or
            through derived values), which alone are evaluated again; empty for ``capacity``.
        policy_id: The policy's id.
        policy_version: Its version.
        as_of: The date whose parameter values apply.
        ids: Resident ids, in the population's order.
        served: ``[points, residents]`` whether each resident is selected at each point (served,
            or eligible without an allocation), if kept (``keep_served=True``), else None.
        capacity_key: The name of the units allocated in tables: ``capacity``, or
            ``allocation.capacity`` when the policy has a parameter called ``capacity``.
    """

    keys: tuple[str, ...]
    grid: dict[str, list[Any]]
    points: list[SweepPoint]
    baseline: SweepPoint
    base_values: dict[str, Any]
    recomputed: dict[str, list[str]]
    policy_id: str
    policy_version: str
    as_of: dt.date | None
    ids: np.ndarray
    served: npt.NDArray[np.bool_] | None = None
    capacity_key: str = CAPACITY

    def __len__(self) -> int:
        return len(self.points)

    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        for p in self.points:
            row: dict[str, Any] = dict(p.values)
            row.update(
                {
                    self.capacity_key: p.capacity,
                    "eligible": p.eligible,
                    "served": p.served,
                    "mean_score": p.mean_score,
                    "median_score": p.median_score,
                }
            )
            for c in p.cutoffs:
                row[f"cutoff.{c['category']}"] = c["score"]
            row["min_ratio"] = p.min_ratio
            row["four_fifths"] = len(p.four_fifths)
            row["disparities"] = len(p.disparities)
            rows.append(row)
        return rows

    def to_pandas(self) -> pd.DataFrame:
        """One row per grid point: the swept values, counts, cut-offs, scores and groups.

        Columns: each swept key, ``capacity``, ``eligible``, ``served``, ``mean_score``,
        ``median_score``, ``cutoff.<category>``, ``min_ratio``, ``four_fifths`` and
        ``disparities`` (numbers of groups flagged), then ``rate.<attribute>=<group>`` and
        ``ratio.<attribute>=<group>`` for every group (requires pandas).
        """
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        rows = self._rows()
        for row, p in zip(rows, self.points, strict=True):
            for r in p.group_rows():
                label = f"{r['grouping']}={r['group']}"
                row[f"rate.{label}"] = r["rate"]
                row[f"ratio.{label}"] = r["ratio"]
        return pd.DataFrame.from_records(rows)

    def groups_to_pandas(self) -> pd.DataFrame:
        """One row per grid point and group: the swept values and the group's statistics."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        rows = []
        for p in self.points:
            for r in p.group_rows():
                rows.append(
                    {**p.values, "grouping": r["grouping"], "group": r["group"]}
                    | {k: r[k] for k in _GROUP_KEYS}
                )
        return pd.DataFrame.from_records(rows)

    def served_to_pandas(self) -> pd.DataFrame:
        """Whether each resident is selected at each point (requires ``keep_served=True``).

        One row per resident, by id, and one column per point (requires pandas).
        """
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        if self.served is None:
            raise ArgumentError(
                "FA618", "the sweep kept no per-resident outcomes: pass keep_served=True"
            )
        labels = [
            ", ".join(f"{k}={_jsonable(v)}" for k, v in p.values.items()) for p in self.points
        ]
        df = pd.DataFrame(
            self.served.T, index=pd.Index(self.ids.astype(str), name="id"), columns=labels
        )
        return df.sort_index(kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """The sweep as plain values (no per-resident data)."""
        return {
            "policy": {"id": self.policy_id, "version": self.policy_version},
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "keys": list(self.keys),
            "grid": {k: [_jsonable(v) for v in vs] for k, vs in self.grid.items()},
            "base_values": {k: _jsonable(v) for k, v in self.base_values.items()},
            "recomputed": self.recomputed,
            "residents": len(self.ids),
            "baseline": self.baseline.to_dict(),
            "points": [p.to_dict() for p in self.points],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON; the same residents give the same text in any order."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_text(self) -> str:
        """The sweep as a text table, one line per point, then the points with a disparity."""
        return sweep_text(self)

    def to_csv(self, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> None:
        """Write one row per point: the columns of :meth:`to_pandas` (see :func:`write_csv`)."""
        write_csv(self, path, escape_formulas=escape_formulas)

    def __repr__(self) -> str:
        shape = " × ".join(f"{k} ({len(self.grid[k])} values)" for k in self.keys)
        eligible = [p.eligible for p in self.points]
        served = [p.served for p in self.points if p.served is not None]
        text = f"eligible {min(eligible)}–{max(eligible)}" if eligible else "no points"
        if served:
            text += f", served {min(served)}–{max(served)}"
        flagged = sum(1 for p in self.points if p.disparities)
        return (
            f"<Sweep of {self.policy_id} over {shape}: {len(self.ids)} residents; {text};"
            f" points with disparities: {flagged}>"
        )

    def _repr_html_(self) -> str:
        rows = self._rows()
        heads: list[str] = []
        for r in rows:
            heads += [h for h in r if h not in heads]
        return html_table(heads, ([_show(r.get(h)) for h in heads] for r in rows))


def _show(v: Any) -> str:
    return value(v)


def capacity_key(cp: CompiledPolicy) -> str:
    """The key that sweeps the capacity in ``cp``'s sweeps.

    ``capacity``, or ``allocation.capacity`` when the policy has a parameter called ``capacity``.
    """
    return CAPACITY_ALIAS if CAPACITY in cp.policy.parameters else CAPACITY


def _resolve_keys(
    cp: CompiledPolicy, grid: Mapping[str, Sequence[Any]]
) -> tuple[tuple[str, ...], dict[str, list[Any]]]:
    if not isinstance(grid, Mapping) or not 1 <= len(grid) <= 2:
        raise ArgumentError(
            "FA615",
            "a sweep varies one or two keys: give {name: [values, ...]} with one or two names",
            argument="grid",
        )
    keys: list[str] = []
    axes: dict[str, list[Any]] = {}
    for key, values in grid.items():
        name = key
        cap = capacity_key(cp)
        if key == CAPACITY_ALIAS or (key == CAPACITY and cap == CAPACITY):
            name = cap
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
            raise ArgumentError(
                "FA615", f"give the values of `{key}` as a list, got {values!r}", argument=key
            )
        vals = [plain_value(v) for v in values]
        if not vals:
            raise ArgumentError("FA615", f"`{key}` has no values to sweep", argument=key)
        if name in axes:
            raise ArgumentError("FA615", f"`{key}` is given twice", argument=key)
        if name == capacity_key(cp):
            vals = [check_capacity(v) for v in vals]
        keys.append(name)
        axes[name] = vals
    check_parameter_names(cp, [k for k in keys if k != capacity_key(cp)])
    for units in axes.get(capacity_key(cp), []):
        allocation_units(cp, units)
    return tuple(keys), axes


def sweep(
    policy: M.Policy | CompiledPolicy,
    residents: Population | Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    capacity: int | None = None,
    group_by: Sequence[str] | None = None,
    strata: str | None = None,
    intersections: bool = False,
    keep_served: bool = False,
    as_of: dt.date | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Sweep:
    """Outcomes and group statistics for every value of one or two parameters (a full grid).

    The policy is evaluated once. For each combination of values, it is compiled again with
    those values (checked exactly as in a policy file), and only the parts that read the changed
    parameters, directly or through derived values, are evaluated again; scale totals, grades,
    the score and the ranking follow. Each result equals, array for array, a full
    :func:`fairalloc.evaluate` of the changed policy (:func:`with_parameters`). The key
    ``capacity`` varies the allocation's capacity: nothing is evaluated again, the allocation
    alone is repeated.

    Args:
        policy: The policy (or a compiled one).
        residents: Anything :func:`fairalloc.evaluate` accepts.
        grid: ``{name: [values, ...]}`` for one or two names: parameters, or ``capacity``
            (``allocation.capacity`` when the policy has a parameter called ``capacity``).
            With two names every value of the first is combined with every value of the
            second.
        capacity: The units to allocate at every point (unless swept); by default the
            policy's ``allocation.capacity``. Without an allocation (no ``allocation`` section,
            or one that matches or rotates), each point reports eligibility only.
        group_by: The attributes whose groups are compared; by default the protected ones.
        strata: A graded scale whose grades the group statistics are also given within.
        intersections: Also compare groups of every pair of attributes.
        keep_served: Keep whether each resident is selected at each point (:attr:`Sweep.served`).
        as_of: The date whose parameter values apply (for an uncompiled policy).
        chunk_size: Residents evaluated at a time.

    Returns:
        The :class:`Sweep`.

    Raises:
        PolicyError: for an unknown parameter or a value that does not fit it (the message
            names the change).
        EvaluationError: if the policy cannot be applied with some value (a note names it).
        ValueError: for a malformed grid or capacity, or a capacity the policy cannot allocate.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   age: {type: int, min: 0, max: 120}
        ...   need: {type: int, min: 0, max: 10}
        ... parameters: {min_age: 60}
        ... rules:
        ...   eligibility: [{id: old-enough, when: "age >= min_age"}]
        ...   priority: [{id: need-points, points: "need"}]
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {capacity: 1}
        ... ''')
        >>> residents = [
        ...     {"id": "a", "age": 62, "need": 3},
        ...     {"id": "b", "age": 70, "need": 7},
        ...     {"id": "c", "age": 58, "need": 9},
        ... ]
        >>> s = sweep(policy, residents, {"min_age": [55, 65]})
        >>> [(p.values["min_age"], p.eligible, p.served, p.cutoffs[-1]["score"]) for p in s.points]
        [(55, 3, 1, 9.0), (65, 1, 1, 7.0)]
        >>> s.recomputed
        {'min_age': ['rule:old-enough']}
    """
    cp0 = compiled_of(policy, as_of)
    population = Population.of(residents, cp0.policy)
    keys, axes = _resolve_keys(cp0, grid)
    cap = capacity_key(cp0)
    params = [k for k in keys if k != cap]
    base_units = allocation_units(cp0, capacity)
    from fairalloc.audit._groups import group_bins

    # Numbers and dates are grouped by the whole population's quartiles, once: each point's
    # own quartiles would move the groups from point to point.
    grouped = [*(group_by or population.schema.protected_attributes)]
    bins = group_bins(population, [a for a in grouped if a in population.schema.attributes])
    kw: dict[str, Any] = {
        "group_by": group_by,
        "strata": strata,
        "intersections": intersections,
        "bins": bins,
    }

    base = evaluate_compiled(cp0, population, chunk_size=chunk_size)
    lottery = LotteryKeys(population.id_column)
    rank_with(base, lottery)
    baseline, _ = summarize(base, {}, base_units, **kw)

    shape = [len(axes[k]) for k in keys]
    points: list[SweepPoint | None] = [None] * int(np.prod(shape))
    served = np.zeros((len(points), population.n), dtype=bool) if keep_served else None
    capacities = axes.get(cap, [capacity])
    for combo in itertools.product(*(range(len(axes[k])) for k in params)):
        values = {k: axes[k][i] for k, i in zip(params, combo, strict=True)}
        ev, parts = _evaluate_at(cp0, base, values, chunk_size)
        if ev is not base:
            rank_with(ev, lottery)
        for c, units in enumerate(capacities):
            where = dict(zip(params, combo, strict=True))
            if cap in keys:
                where[cap] = c
            index = int(np.ravel_multi_index([where[k] for k in keys], shape))
            point_values = {k: axes[k][where[k]] for k in keys}
            try:
                point, selected = summarize(
                    ev,
                    point_values,
                    allocation_units(cp0, units),
                    recomputed=parts,
                    **kw,
                )
            except FairallocError as e:
                e.add_note(f"at the sweep's point {_assignments(point_values)}")
                raise
            points[index] = point
            if served is not None:
                served[index] = selected
        if ev is not base:
            release(ev)
    meta = cp0.policy.policy
    base_values: dict[str, Any] = {k: (base_units if k == cap else cp0.parameters[k]) for k in keys}
    return Sweep(
        keys=keys,
        grid={k: list(axes[k]) for k in keys},
        points=[p for p in points if p is not None],
        baseline=baseline,
        base_values=base_values,
        recomputed={k: [] if k == cap else sorted(cp0.parameter_readers(k)) for k in keys},
        policy_id=meta.id,
        policy_version=meta.version,
        as_of=cp0.as_of,
        ids=population.ids,
        served=served,
        capacity_key=cap,
    )


def _evaluate_at(
    cp0: CompiledPolicy, base: Evaluation, values: dict[str, Any], chunk_size: int
) -> tuple[Evaluation, tuple[str, ...]]:
    """The evaluation with parameter ``values``, and the parts evaluated again."""
    if not values:
        return base, ()
    cp = parameter_variant(cp0, values)
    changes = cp.changes_from(cp0)
    if changes is not None and changes.empty:
        return base, ()
    parts = tuple(sorted(changes.parts)) if changes is not None else ("everything",)
    try:
        ev = reevaluate(base, cp, chunk_size=chunk_size)
    except EvaluationError as e:
        e.add_note(f"at the sweep's point {_assignments(values)}")
        raise
    return ev, parts


# -- reports --------------------------------------------------------------------------------------


def sweep_text(result: Sweep) -> str:
    """The sweep as a text table, one line per point, and the points below four-fifths."""
    lines: list[str] = []
    lines.append(
        f"{result.policy_id} v{result.policy_version}: {len(result.ids)} residents;"
        f" sweep of {' × '.join(result.keys)}"
    )
    for key in result.keys:
        parts = ", ".join(result.recomputed[key]) or "nothing (allocation only)"
        lines.append(f"  {key} (now {_show(result.base_values[key])}): evaluated again: {parts}")
    rows = result._rows()
    heads: list[str] = []
    for r in rows:
        heads += [h for h in r if h not in heads]
    cells = [[_show(r.get(h)) for h in heads] for r in rows]
    lines += text_table(heads, cells, right=[True] * len(heads))
    flagged = [p for p in result.points if p.disparities]
    for p in flagged:
        lines.append(
            f"  {_assignments(p.values)}: below four-fifths, interval excludes parity:"
            f" {', '.join(p.disparities)}"
        )
    return "\n".join(lines) + "\n"


def write_csv(
    result: Sweep, path: str | os.PathLike[str], *, escape_formulas: bool = True
) -> None:
    """Write one row per point: the columns of :meth:`Sweep.to_pandas`, atomically.

    Text cells that a spreadsheet would run as a formula get a leading ``'`` unless
    ``escape_formulas`` is false; numbers are written as they are.
    """
    rows = result._rows()
    for row, p in zip(rows, result.points, strict=True):
        for r in p.group_rows():
            label = f"{r['grouping']}={r['group']}"
            row[f"rate.{label}"] = r["rate"]
            row[f"ratio.{label}"] = r["ratio"]
    heads: list[str] = []
    for r in rows:
        heads += [h for h in r if h not in heads]

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        v = _jsonable(v)
        return csv_text(v) if escape_formulas and isinstance(v, str) else v

    with atomic_write(path) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([cell(h) for h in heads])
        for r in rows:
            w.writerow([cell(r.get(h)) for h in heads])
