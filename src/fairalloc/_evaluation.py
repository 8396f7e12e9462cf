"""The result of evaluating a policy over a population: every rule's verdict and every point.

An :class:`Evaluation` holds the full trace as arrays (one row per resident, in the
population's order), so that explanations, audits and comparisons read what the engine
computed instead of computing it again.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._escape import html_text
from fairalloc._explainable import Explainable
from fairalloc._ids import IdColumn, Ids
from fairalloc._numeric import MICRO
from fairalloc._optional import require

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._compiler import CompiledPolicy
    from fairalloc._population import Population
    from fairalloc._ranking import Ranking

__all__ = ["Evaluation"]

_COMPILED = "fairalloc.compiled-policy/1"


def _columns(n: int, k: int, dtype: Any, *, fill: bool = False) -> np.ndarray:
    """An ``[n, k]`` trace array stored rule by rule: each column is one contiguous array.

    The engine writes and reads a whole rule's column at a time; rows (one resident's trace)
    are read one at a time, for explanations, where the stride does not matter.
    """
    block = np.ones((k, n), dtype=dtype) if fill else np.zeros((k, n), dtype=dtype)
    return block.T


class Evaluation(Explainable):
    """Per-resident results of :func:`fairalloc.evaluate`, with the full trace.

    Rows follow the population's order; every export sorts by resident id, so that the same
    residents give byte-identical output whatever order they came in.

    Attributes:
        policy: The compiled policy that was applied.
        ids: Resident ids (str, an object array), one per row; made on first read.
        id_column: The same ids as held (:class:`~fairalloc._ids.IdColumn`), read by row.
        eligible: Whether each resident passed every eligibility rule and no exclusion applied.
        eligibility: ``[n, rules]``: whether each eligibility rule held.
        exclusions: ``[n, rules]``: whether each exclusion rule applied.
        exclusion: Index of the first exclusion that applied, or -1.
        fired: ``[n, rules]``: whether each priority rule's condition held.
        points: ``[n, criteria]``: micro-points of every indicator (weighted) and priority rule.
        scale_totals: ``[n, scales]``: micro-point totals of every scale and sub-scale.
        grades: ``[n, graded scales]``: the index of each graded scale's grade.
        terms: ``[n, score terms]``: micro-points of each (weighted) score term.
        score_micro: The final score in micro-points (for ``tiers``: the first tier).
        tie_values: ``[n, tie-breaks]``: the value of each non-lottery tie-break.
        reserve_eligible: ``[n, reserves]``: whether each reserve category's condition holds.
        reserve_priority: ``[n, reserves]``: each reserve's own priority value (0 if none).
        resource_eligible: ``[n, resources]``: whether each resource's condition holds.
        resource_priority: ``[n, resources]``: each resource's own priority value (0 if none).
        lottery_weight: The weight of each resident in a weighted lottery (1 if unweighted).
        rotation_band: The need band of each resident in a rotation (0 if none).
        table_rows: ``[n, tables]``: the row of each decision table that applied (see
            :attr:`CompiledPolicy.tables`).
    """

    def __init__(self, policy: CompiledPolicy, ids: Ids, n: int) -> None:
        self.policy = policy
        self.id_column = IdColumn(ids)
        self.n = n
        #: The residents evaluated (set by the engine), for mechanisms that read their choices.
        self.population: Population | None = None
        self.eligibility = _columns(n, len(policy._eligibility), bool)
        self.exclusions = _columns(n, len(policy._exclusions), bool)
        self.fired = _columns(n, len(policy._priority), bool)
        self._points = _columns(n, len(policy.criteria), np.int64)
        # Priority rules with constant points: (criterion, fired column, micro-points), filled
        # in `points` when first read (untouched, their memory is never even mapped in).
        self._constant_points: dict[int, tuple[int, int]] = {}
        self.scale_totals = _columns(n, len(policy.scale_paths), np.int64)
        self.grades = _columns(n, len(policy.graded_scales), np.int16)
        self.table_rows = _columns(n, len(policy.tables), np.int16)
        self.score_micro = np.zeros(n, dtype=np.int64)
        terms = len(policy.score_terms)
        if policy.policy.score.method == "sum" and terms == 1:
            # The sum of one term is that term: the score and its only term share memory.
            self.terms = self.score_micro.reshape(n, 1)
        else:
            self.terms = _columns(n, terms, np.int64)
        self._tie_values = _columns(n, len(policy._tie_breaks), np.float64)
        # Tie-breaks that read a column as it is: (tie-break, attribute), filled from the
        # population's column in `tie_values` when first read.
        self._column_ties: dict[int, str] = {}
        self.eligible = np.zeros(n, dtype=bool)
        self.exclusion = np.full(n, -1, dtype=np.int16)
        # Inputs of the allocation mechanism, evaluated by the same engine.
        self.reserve_eligible = _columns(n, len(policy._reserves), bool, fill=True)
        self.reserve_priority = _columns(n, len(policy._reserves), np.float64)
        self.resource_eligible = _columns(n, len(policy._resources), bool, fill=True)
        self.resource_priority = _columns(n, len(policy._resources), np.float64)
        # Without a weight or a band in the policy, one read-only value stands for everyone.
        weighted = policy._lottery_weight is not None and policy._lottery_weight.value is not None
        banded = policy._rotation_band is not None and policy._rotation_band.value is not None
        self.lottery_weight = np.ones(n) if weighted else np.broadcast_to(np.float64(1.0), (n,))
        self.rotation_band = np.zeros(n) if banded else np.broadcast_to(np.float64(0.0), (n,))

    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """Resident ids (``str``, an object array), one per row; made on first read."""
        return self.id_column.objects

    @property
    def points(self) -> npt.NDArray[np.int64]:
        """``[n, criteria]``: micro-points of every indicator (weighted) and priority rule."""
        if self._constant_points:
            for criterion, (j, m) in self._constant_points.items():
                np.multiply(self.fired[:, j], np.int64(m), out=self._points[:, criterion])
            self._constant_points = {}
        return self._points

    @points.setter
    def points(self, value: npt.NDArray[np.int64]) -> None:
        self._points = value
        self._constant_points = {}

    @property
    def tie_values(self) -> npt.NDArray[np.float64]:
        """``[n, tie-breaks]``: the value of each non-lottery tie-break."""
        if self._column_ties:
            assert self.population is not None, "column tie-breaks are set by the engine"
            for j, name in self._column_ties.items():
                self._tie_values[:, j] = self.population.columns[name]
            self._column_ties = {}
        return self._tie_values

    @tie_values.setter
    def tie_values(self, value: npt.NDArray[np.float64]) -> None:
        self._tie_values = value
        self._column_ties = {}

    def tie_value_columns(self) -> npt.NDArray[np.float64]:
        """The engine's view of :attr:`tie_values`: columns read as they are not filled yet."""
        return self._tie_values

    def column_tie(self, j: int, attribute: str) -> None:
        """Record that tie-break ``j`` is ``attribute``'s column as it is (for the engine)."""
        self._column_ties[j] = attribute

    def tie_key(self, j: int) -> np.ndarray:
        """Tie-break ``j``'s values for sorting: the column itself where it reads one as it is.

        An integer column stays integer (its values are exactly the float ones).
        """
        name = self._column_ties.get(j)
        if name is not None and self.population is not None:
            return self.population.columns[name]
        return self.tie_values[:, j]

    def point_columns(self) -> npt.NDArray[np.int64]:
        """The engine's view of :attr:`points`: columns of constant points not filled yet."""
        return self._points

    def constant_points(self, criterion: int, fired_column: int, micro_points: int) -> None:
        """Record that a priority rule's points are ``fired × micro_points`` (for the engine)."""
        self._constant_points[criterion] = (fired_column, micro_points)

    def constant_points_of(self, criterion: int) -> tuple[int, int] | None:
        """The fired column and micro-points of a rule with constant points not filled yet."""
        return self._constant_points.get(criterion)

    @classmethod
    def allocate_arrays(cls, policy: CompiledPolicy, ids: Ids, n: int) -> Evaluation:
        """An evaluation with every array allocated, for the engine to fill."""
        return cls(policy, ids, n)

    def finish(self) -> None:
        """Derive the summary columns once the engine has filled the trace."""
        # Column by column: each rule's verdicts are contiguous (see `_columns`).
        eligible = np.ones(self.n, dtype=bool)
        for j in range(self.eligibility.shape[1]):
            eligible &= self.eligibility[:, j]
        exclusion = np.full(self.n, -1, dtype=np.int16)
        for j in range(self.exclusions.shape[1] - 1, -1, -1):  # the first that applied wins
            np.copyto(exclusion, j, where=self.exclusions[:, j])
        if self.exclusions.shape[1]:
            eligible &= exclusion < 0
        self.exclusion = exclusion
        self.eligible = eligible

    # -- pickling ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Compiled kernels are code made in this process: ship the policy document and the
        # date and mode it was compiled for, and compile it again on arrival (compilation is
        # deterministic, so the kernels are the same).
        self.points  # noqa: B018 - constant points filled in: the state is plain arrays
        self.tie_values  # noqa: B018 - and columns read as they are copied in
        state = dict(self.__dict__)
        cp = self.policy
        document = cp.policy.model_copy(update={"policy": cp.policy.policy})
        state["policy"] = (_COMPILED, document, cp.as_of, bool(cp.violations))
        state.pop("_index", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from fairalloc._compiler import compiled_for

        _, document, as_of, audit = state["policy"]  # (_COMPILED, ...) as __getstate__ made it
        state["policy"] = compiled_for(document, as_of, audit=audit)
        self.__dict__.update(state)

    # -- views -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    @property
    def score(self) -> npt.NDArray[np.float64]:
        """The final score in points (float64; exact to the micro-point)."""
        return self.score_micro.astype(np.float64) / MICRO

    @property
    def criteria(self) -> list[str]:
        """The names of the columns of :attr:`points`."""
        return [c.key for c in self.policy.criteria]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {str(rid): i for i, rid in enumerate(self.ids)}

    def index_of(self, resident_id: str) -> int:
        """The row of ``resident_id``.

        Raises:
            KeyError: if no resident has that id.
        """
        try:
            return self._index[str(resident_id)]
        except KeyError:
            raise KeyError(f"no resident with id {resident_id!r}") from None

    @cached_property
    def ranking(self) -> Ranking:
        """The eligible residents ranked by score and the policy's tie-break chain."""
        from fairalloc._ranking import rank

        return rank(self)

    def canonical_order(self) -> npt.NDArray[np.intp]:
        """Row positions sorted by resident id: the order of every export."""
        return self.id_column.sort_order()

    # -- records -----------------------------------------------------------------------
    def record(self, row: int) -> dict[str, Any]:
        """Everything evaluated for the resident at ``row``, as plain Python values."""
        cp = self.policy
        failed = [rid for j, rid in enumerate(cp.eligibility_ids) if not self.eligibility[row, j]]
        ex = int(self.exclusion[row])
        rec: dict[str, Any] = {
            "id": str(self.ids[row]),
            "eligible": bool(self.eligible[row]),
            "failed_eligibility": failed,
            "exclusion": cp.exclusion_ids[ex] if ex >= 0 else None,
            "score": int(self.score_micro[row]) / MICRO,
            "points": {k: int(self.points[row, j]) / MICRO for j, k in enumerate(self.criteria)},
            "scales": {
                p: int(self.scale_totals[row, j]) / MICRO for j, p in enumerate(cp.scale_paths)
            },
            "grades": {
                s.path: s.grades[int(self.grades[row, s.grade_index])] for s in cp.graded_scales
            },
        }
        return rec

    def to_dicts(self) -> list[dict[str, Any]]:
        """One plain dict per resident (see :meth:`record`), sorted by id."""
        return [self.record(int(i)) for i in self.canonical_order()]

    def to_json(self, *, indent: int | None = None) -> str:
        """The evaluation as JSON: the policy's identity and one record per resident."""
        meta = self.policy.policy.policy
        doc = {
            "policy": {"id": meta.id, "version": meta.version},
            "as_of": self.policy.as_of.isoformat() if self.policy.as_of else None,
            "residents": self.to_dicts(),
        }
        return json.dumps(doc, ensure_ascii=False, indent=indent, sort_keys=False)

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame indexed by resident id, one column per rule, indicator, scale and grade.

        Rows keep the population's order (join on the index); points are in points.
        """
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        cp = self.policy
        cols: dict[str, Any] = {"eligible": self.eligible, "score": self.score}
        cols["exclusion"] = (
            pd.Categorical.from_codes(
                self.exclusion.astype(np.int64), categories=pd.Index(cp.exclusion_ids)
            )
            if cp.exclusion_ids
            else pd.Categorical([None] * self.n)
        )
        for j, rid in enumerate(cp.eligibility_ids):
            cols[f"eligibility.{rid}"] = self.eligibility[:, j]
        for j, rid in enumerate(cp.exclusion_ids):
            cols[f"exclusion.{rid}"] = self.exclusions[:, j]
        for j, key in enumerate(self.criteria):
            cols[f"points.{key}"] = self.points[:, j] / MICRO
        for j, path in enumerate(cp.scale_paths):
            cols[f"scale.{path}"] = self.scale_totals[:, j] / MICRO
        for s in cp.graded_scales:
            cols[f"grade.{s.path}"] = pd.Categorical.from_codes(
                self.grades[:, s.grade_index].astype(np.int64), categories=pd.Index(list(s.grades))
            )
        df = pd.DataFrame(cols, index=pd.Index(self.ids.astype(str), name="id"))
        return df

    # -- display -----------------------------------------------------------------------
    def __repr__(self) -> str:
        meta = self.policy.policy.policy
        return (
            f"<Evaluation of {meta.id} v{meta.version}: {self.n} residents,"
            f" {int(self.eligible.sum())} eligible>"
        )

    def _repr_html_(self) -> str:
        meta = self.policy.policy.policy
        head = (
            f"<p><strong>{html_text(meta.id)}</strong> v{html_text(meta.version)}:"
            f" {self.n} residents, {int(self.eligible.sum())} eligible</p>"
        )
        return head + self.ranking._table_html(limit=20)
