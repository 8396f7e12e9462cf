"""Comparing two policies on one population: who gains or loses, how ranks move, and why.

:func:`compare` evaluates both policies on the same residents (loaded against each policy's own
attribute schema), matches residents by id (never by row), and reports:

* eligibility: who becomes eligible or ineligible, and which rules decide it;
* allocation: who is newly served or loses their place, and each category's cut-off, when both
  policies allocate (or a capacity is given);
* ranks: the distribution of rank shifts, the largest movers, and the rank correlation
  (Spearman's rho and Kendall's tau-b, ties handled) among residents eligible under both;
* scores: the change of each resident's score split by criterion (indicator or priority rule),
  each criterion linked to the changes of the policy text that reach it (its own definition,
  weights above it, the parameters, derived values and attributes it reads);
* groups: selection rates by group of the protected (or chosen) attributes before and after,
  with ratios to the best-served group, also within need strata.

Every figure is computed from the engine's own arrays (the evaluations' points, ranks and
allocations); nothing here evaluates a rule. Exports sort residents by id, so the same inputs
give byte-identical JSON in any row order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._evaluation import Evaluation
from fairalloc._numeric import MICRO, micro
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc.allocation import allocate_evaluation
from fairalloc.allocation._result import Allocation, Cutoff
from fairalloc.analysis._diff import Document, PolicyDiff, policy_diff, show
from fairalloc.analysis._rankcorr import canonical_pairs, kendall_of_pairs, spearman_of_pairs
from fairalloc.audit._groups import GroupStatistics, group_statistics
from fairalloc.errors import (
    AllocationError,
    ArgumentError,
    ArgumentTypeError,
    ComparisonError,
    PopulationError,
)
from fairalloc.policy._model import Policy

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Comparison",
    "ComparisonError",
    "CriterionChange",
    "CutoffChange",
    "Mover",
    "compare",
]

#: Version of the comparison's JSON layout.
COMPARE_SCHEMA = "fairalloc.compare/1"
#: Ids listed by name in text reports before the rest are counted.
LISTED = 20
#: The pseudo-criterion holding what rounding weighted totals adds to a ``sum`` score.
ROUNDING = "(rounding of weighted totals)"
#: Rank shifts are counted in these bands of size (the last is open).
SHIFT_BANDS = ((1, 9), (10, 99), (100, 999), (1000, None))

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Source = Policy | CompiledPolicy | Evaluation | Allocation


@dataclass(frozen=True, slots=True)
class CriterionChange:
    """How one criterion (an indicator or a priority rule) changed residents' scores.

    Attributes:
        criterion: ``scale.path.indicator``, ``priority.<rule id>``, or :data:`ROUNDING`.
        status: ``changed``, ``unchanged``, ``added`` (only in the policy after) or ``removed``.
        residents_changed: Residents (in both populations) whose contribution changed.
        mean_change: The mean change over every resident in both populations, in points.
        smallest: The most negative change, in points.
        largest: The most positive change, in points.
        causes: The changes of the policy text that reach the criterion (see
            :meth:`PolicyDiff.causes`), with parameters by their value in force.
    """

    criterion: str
    status: Literal["changed", "unchanged", "added", "removed"]
    residents_changed: int
    mean_change: float
    smallest: float
    largest: float
    causes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "criterion": self.criterion,
            "status": self.status,
            "residents_changed": self.residents_changed,
            "mean_change": self.mean_change,
            "smallest": self.smallest,
            "largest": self.largest,
            "causes": list(self.causes),
        }


@dataclass(frozen=True, slots=True)
class CutoffChange:
    """One allocation category before and after (see :class:`~fairalloc.Cutoff`).

    Attributes:
        category: The category id (``open`` for unreserved units).
        before: Its cut-off under the first policy, or None if it has no such category.
        after: Its cut-off under the second policy, or None.
    """

    category: str
    before: Cutoff | None
    after: Cutoff | None

    @property
    def changed(self) -> bool:
        """Whether units, units given, the last resident served or the cut-off score differ."""
        if self.before is None or self.after is None:
            return True
        b, a = self.before, self.after
        return (b.size, b.used, b.last_id, b.score) != (a.size, a.used, a.last_id, a.score)

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "category": self.category,
            "before": None if self.before is None else self.before.to_dict(),
            "after": None if self.after is None else self.after.to_dict(),
            "changed": self.changed,
        }


@dataclass(frozen=True, slots=True)
class Mover:
    """A resident whose rank moved, eligible under both policies.

    Attributes:
        id: The resident's id.
        rank_before: Rank under the first policy (1 = best).
        rank_after: Rank under the second policy.
        shift: ``rank_before - rank_after``: positive when the resident moved up.
        score_before: Score under the first policy, in points.
        score_after: Score under the second policy.
        main_criterion: The criterion whose contribution changed most for the resident, or None.
        main_change: That change, in points (0 without one).
    """

    id: str
    rank_before: int
    rank_after: int
    shift: int
    score_before: float
    score_after: float
    main_criterion: str | None
    main_change: float

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "id": self.id,
            "rank_before": self.rank_before,
            "rank_after": self.rank_after,
            "shift": self.shift,
            "score_before": self.score_before,
            "score_after": self.score_after,
            "main_criterion": self.main_criterion,
            "main_change": self.main_change,
        }


# -- the comparison -----------------------------------------------------------------------------


@dataclass
class _Side:
    """One policy's evaluation (and allocation) of the residents."""

    name: str  # "before" or "after"
    evaluation: Evaluation
    allocation: Allocation | None = None

    @property
    def label(self) -> str:
        meta = self.evaluation.policy.policy.policy
        return f"{meta.id} v{meta.version}"

    @property
    def compiled(self) -> CompiledPolicy:
        return self.evaluation.policy


class Comparison:
    """Two policies applied to the same residents, side by side; build with :func:`compare`.

    Arrays hold the residents in both populations, matched by id (``ids``), in no particular
    order; every export sorts them by id.

    Attributes:
        before: The first policy's id and version.
        after: The second policy's id and version.
        diff: The structural :class:`~fairalloc.analysis.PolicyDiff` of the two documents.
        ids: Ids of the residents in both populations.
        only_before: Ids (sorted) of residents only the first population holds.
        only_after: Ids (sorted) of residents only the second population holds.
        eligible_before: ``[m]`` eligibility under the first policy.
        eligible_after: ``[m]`` eligibility under the second policy.
        score_before_micro: ``[m]`` scores under the first policy, in micro-points.
        score_after_micro: ``[m]`` scores under the second policy.
        rank_before: ``[m]`` ranks under the first policy (0 = not eligible).
        rank_after: ``[m]`` ranks under the second policy.
        served_before: ``[m]`` served under the first policy, or None when not compared.
        served_after: ``[m]`` served under the second policy, or None.
        criteria: The criteria of both policies (first policy's order, then new ones), and
            :data:`ROUNDING` when weighted totals round differently.
        criterion_delta_micro: ``[m, criteria]`` change of each criterion's contribution to each
            resident's score, in micro-points; with ``sum`` scores each row adds up exactly to
            ``score_after_micro - score_before_micro``.
        additive: Whether both scores are sums (then the criteria's changes add up to the score's
            change); for ``product`` and ``tiers`` scores they are changes in points.
        criterion_changes: One :class:`CriterionChange` per criterion.
        cutoff_changes: One :class:`CutoffChange` per category, when served status is compared.
        movers: The residents whose rank moved most (see ``top`` of :func:`compare`).
        groups_before: Group statistics under the first policy, or None without attributes.
        groups_after: Group statistics under the second policy.
        notes: What was not compared, and why.
    """

    def __init__(
        self,
        sides: tuple[_Side, _Side],
        diff: PolicyDiff,
        rows: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]],
        only: tuple[list[str], list[str]],
        top: int,
        groups: tuple[GroupStatistics | None, GroupStatistics | None],
        notes: list[str],
    ) -> None:
        a, b = sides
        ra, rb = rows
        self._sides = sides
        self._rows = rows
        self.before, self.after = a.label, b.label
        self.diff = diff
        self.ids: npt.NDArray[np.object_] = a.evaluation.id_column[ra]
        self.only_before, self.only_after = only
        self.eligible_before: BoolArray = a.evaluation.eligible[ra]
        self.eligible_after: BoolArray = b.evaluation.eligible[rb]
        self.score_before_micro: IntArray = a.evaluation.score_micro[ra]
        self.score_after_micro: IntArray = b.evaluation.score_micro[rb]
        self.rank_before: IntArray = a.evaluation.ranking.rank[ra]
        self.rank_after: IntArray = b.evaluation.ranking.rank[rb]
        self.served_before: BoolArray | None = None
        self.served_after: BoolArray | None = None
        self._category: tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]] | None = None
        if a.allocation is not None and b.allocation is not None:
            self.served_before = a.allocation.served[ra]
            self.served_after = b.allocation.served[rb]
            self._category = (a.allocation.category[ra], b.allocation.category[rb])
        self.additive = (
            a.compiled.policy.score.method == "sum" and b.compiled.policy.score.method == "sum"
        )
        self.criteria, self.criterion_delta_micro = _criterion_deltas(
            a.evaluation, ra, b.evaluation, rb, additive=self.additive
        )
        self.criterion_changes = [
            _criterion_change(key, j, self, a.compiled, b.compiled)
            for j, key in enumerate(self.criteria)
        ]
        self.cutoff_changes = _cutoff_changes(a.allocation, b.allocation)
        self.movers = self._movers(top)
        self.groups_before, self.groups_after = groups
        self.notes = notes
        self._ranks: dict[str, Any] | None = None
        self.rank_summary()  # the correlations are the costly figures: computed once, here

    # -- the figures -------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Residents in both populations."""
        return len(self.ids)

    def _sorted(self, mask: BoolArray) -> list[str]:
        return sorted(str(i) for i in self.ids[mask])

    @property
    def newly_eligible(self) -> list[str]:
        """Ids (sorted) of residents eligible under the second policy only."""
        return self._sorted(~self.eligible_before & self.eligible_after)

    @property
    def newly_ineligible(self) -> list[str]:
        """Ids (sorted) of residents eligible under the first policy only."""
        return self._sorted(self.eligible_before & ~self.eligible_after)

    @property
    def served_compared(self) -> bool:
        """Whether who is served was compared (both policies allocated)."""
        return self.served_before is not None and self.served_after is not None

    @property
    def newly_served(self) -> list[str]:
        """Ids (sorted) of residents served under the second policy only (empty if not compared)."""
        if self.served_before is None or self.served_after is None:
            return []
        return self._sorted(~self.served_before & self.served_after)

    @property
    def losing_place(self) -> list[str]:
        """Ids (sorted) of residents served under the first policy only (empty if not compared)."""
        if self.served_before is None or self.served_after is None:
            return []
        return self._sorted(self.served_before & ~self.served_after)

    @property
    def score_delta_micro(self) -> IntArray:
        """``[m]`` each resident's score change, in micro-points."""
        return self.score_after_micro - self.score_before_micro

    @property
    def eligible_both(self) -> BoolArray:
        """``[m]`` whether each resident is eligible under both policies."""
        return self.eligible_before & self.eligible_after

    def rank_shifts(self) -> IntArray:
        """Rank shifts (``rank_before - rank_after``; up is positive), eligible under both.

        In the order of :attr:`ids` restricted to :attr:`eligible_both`.
        """
        both = self.eligible_both
        return self.rank_before[both] - self.rank_after[both]

    @property
    def changed(self) -> bool:
        """Whether anything differs for anybody.

        True when some resident's eligibility, served status, rank or score differs, when a
        cut-off moves, or when only one population holds some resident.
        """
        return bool(
            self.only_before
            or self.only_after
            or (self.eligible_before != self.eligible_after).any()
            or (self.rank_before != self.rank_after).any()
            or (self.score_before_micro != self.score_after_micro).any()
            or (
                self.served_before is not None
                and self.served_after is not None
                and (self.served_before != self.served_after).any()
            )
            or any(c.changed for c in self.cutoff_changes)
        )

    def _movers(self, top: int) -> list[Mover]:
        both = np.flatnonzero(self.eligible_both)
        shift = self.rank_before[both] - self.rank_after[both]
        mag = np.abs(shift)
        moved = int((mag > 0).sum())
        k = min(top, moved)
        if k == 0:
            return []
        threshold = max(int(np.partition(mag, len(mag) - k)[len(mag) - k]), 1)
        cand = np.flatnonzero(mag >= threshold)
        ids = self.ids[both[cand]].astype(str)
        order = np.lexsort((ids, -mag[cand]))[:k]
        out = []
        for c in cand[order]:
            row = int(both[c])
            deltas = self.criterion_delta_micro[row]
            j = int(np.argmax(np.abs(deltas))) if deltas.size else 0
            main = self.criteria[j] if deltas.size and deltas[j] != 0 else None
            out.append(
                Mover(
                    str(self.ids[row]),
                    int(self.rank_before[row]),
                    int(self.rank_after[row]),
                    int(shift[c]),
                    int(self.score_before_micro[row]) / MICRO,
                    int(self.score_after_micro[row]) / MICRO,
                    main,
                    int(deltas[j]) / MICRO if main is not None else 0.0,
                )
            )
        return out

    def eligibility_summary(self) -> dict[str, Any]:
        """Counts of residents by eligibility before and after, and the rules behind changes.

        ``newly_ineligible_by_rule`` counts, among residents newly ineligible, those failing each
        eligibility rule of the second policy (``fails <rule>``) or excluded by each of its
        exclusions (``excluded by <rule>``); ``newly_eligible_by_rule`` does the same with the
        first policy's rules for residents newly eligible. A resident may count under several.
        """
        eb, ea = self.eligible_before, self.eligible_after
        a, b = self._sides
        ra, rb = self._rows
        return {
            "eligible_both": int((eb & ea).sum()),
            "newly_eligible": int((~eb & ea).sum()),
            "newly_ineligible": int((eb & ~ea).sum()),
            "ineligible_both": int((~eb & ~ea).sum()),
            "newly_ineligible_by_rule": _rule_counts(b.evaluation, rb[eb & ~ea]),
            "newly_eligible_by_rule": _rule_counts(a.evaluation, ra[~eb & ea]),
        }

    def served_summary(self) -> dict[str, Any] | None:
        """Counts of residents by served status before and after (None if not compared).

        ``newly_served`` splits into residents newly eligible and residents who moved above a
        cut-off; ``losing_place`` into residents no longer eligible and residents now below one.
        ``category_changed`` counts residents served under both, in another category.
        """
        if self.served_before is None or self.served_after is None or self._category is None:
            return None
        sb, sa = self.served_before, self.served_after
        eb, ea = self.eligible_before, self.eligible_after
        a, b = self._sides
        assert a.allocation is not None
        assert b.allocation is not None
        # Category names (index -1, not served, reads the trailing "").
        cat_before = np.array([*a.allocation.categories, ""], dtype=object)[self._category[0]]
        cat_after = np.array([*b.allocation.categories, ""], dtype=object)[self._category[1]]
        return {
            "capacity_before": a.allocation.capacity,
            "capacity_after": b.allocation.capacity,
            "served_before": int(sb.sum()),
            "served_after": int(sa.sum()),
            "served_both": int((sb & sa).sum()),
            "newly_served": int((~sb & sa).sum()),
            "newly_served_newly_eligible": int((~sb & sa & ~eb).sum()),
            "newly_served_above_cutoff": int((~sb & sa & eb).sum()),
            "losing_place": int((sb & ~sa).sum()),
            "losing_place_no_longer_eligible": int((sb & ~sa & ~ea).sum()),
            "losing_place_below_cutoff": int((sb & ~sa & ea).sum()),
            "category_changed": int((sb & sa & (cat_before != cat_after)).sum()),
        }

    def rank_summary(self) -> dict[str, Any]:
        """Rank shifts among residents eligible under both, and the rank correlation.

        Ranks are each policy's own (1 = best), so residents who become eligible above someone
        push them down. ``distribution`` counts residents moved up and down by bands of shift.
        """
        if self._ranks is not None:
            return self._ranks
        shift = self.rank_shifts()
        both = self.eligible_both
        xs, ys = canonical_pairs(self.rank_before[both], self.rank_after[both])
        mag = np.abs(shift)
        bands = []
        for lo, hi in SHIFT_BANDS:
            inside = (mag >= lo) if hi is None else ((mag >= lo) & (mag <= hi))
            bands.append(
                {
                    "shift": f"{lo}–{hi}" if hi is not None else f"{lo} or more",
                    "up": int((inside & (shift > 0)).sum()),
                    "down": int((inside & (shift < 0)).sum()),
                }
            )
        n = len(shift)
        self._ranks = {
            "compared": n,
            "unchanged": int((shift == 0).sum()),
            "moved_up": int((shift > 0).sum()),
            "moved_down": int((shift < 0).sum()),
            "median_shift": float(np.median(shift)) if n else None,
            "mean_absolute_shift": _exact_sum(mag) / n if n else None,
            "largest_up": int(shift.max()) if n and shift.max() > 0 else 0,
            "largest_down": int(-shift.min()) if n and shift.min() < 0 else 0,
            "spearman_rho": spearman_of_pairs(xs, ys),
            "kendall_tau_b": kendall_of_pairs(xs, ys),
            "distribution": bands,
            "largest_movers": [m.to_dict() for m in self.movers],
        }
        return self._ranks

    def score_summary(self) -> dict[str, Any]:
        """How many scores changed, the mean change, and the change by criterion."""
        delta = self.score_delta_micro
        n = len(delta)
        return {
            "changed": int((delta != 0).sum()),
            "changed_among_eligible_both": int(((delta != 0) & self.eligible_both).sum()),
            "mean_change": _exact_sum(delta) / (n * MICRO) if n else 0.0,
            "additive": self.additive,
            "criteria": [c.to_dict() for c in self.criterion_changes],
        }

    def group_rows(self) -> list[dict[str, Any]]:
        """Selection rates by group before and after, one record per group and stratum.

        Groups are matched by grouping, group label and stratum; a group present on one side
        only has None on the other (groups of numbers and dates are quartiles of each policy's
        compared residents, so their bins can differ when eligibility changes).
        """
        if self.groups_before is None or self.groups_after is None:
            return []
        return _group_rows(self.groups_before, self.groups_after)

    # -- exports -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every figure of the comparison as plain values, residents sorted by id."""
        a, b = self._sides
        groups = self.groups_after or self.groups_before
        return {
            "schema": COMPARE_SCHEMA,
            "before": _side_meta(a),
            "after": _side_meta(b),
            "residents": {
                "in_both": self.n,
                "only_before": list(self.only_before),
                "only_after": list(self.only_after),
            },
            "changed": self.changed,
            "eligibility": {
                **self.eligibility_summary(),
                "newly_eligible_ids": self.newly_eligible,
                "newly_ineligible_ids": self.newly_ineligible,
            },
            "served": None
            if not self.served_compared
            else {
                **(self.served_summary() or {}),
                "newly_served_ids": self.newly_served,
                "losing_place_ids": self.losing_place,
            },
            "cutoffs": [c.to_dict() for c in self.cutoff_changes],
            "ranks": self.rank_summary(),
            "scores": self.score_summary(),
            "groups": None
            if groups is None
            else {
                "outcome": groups.outcome,
                "base": groups.base,
                "strata": groups.strata,
                "rows": self.group_rows(),
            },
            "policy_diff": self.diff.to_dict(),
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The comparison as JSON (see :meth:`to_dict`).

        The same inputs in any row order give the same bytes.
        """
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_pandas(self) -> pd.DataFrame:
        """One row per resident (indexed by id, sorted), both policies side by side.

        Columns: ``in_before``, ``in_after``, ``eligible_before``/``_after``,
        ``score_before``/``_after`` and ``score_change`` (points), ``rank_before``/``_after``
        (missing when not eligible) and ``rank_shift``,
        ``served_before``/``_after`` (when compared), and ``delta.<criterion>``: each
        criterion's change, in points. Residents in one population only have missing values
        for the other.
        """
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        cols: dict[str, Any] = {
            "in_before": np.ones(self.n, dtype=bool),
            "in_after": np.ones(self.n, dtype=bool),
            "eligible_before": pd.array(self.eligible_before, dtype="boolean"),
            "eligible_after": pd.array(self.eligible_after, dtype="boolean"),
            "score_before": self.score_before_micro / MICRO,
            "score_after": self.score_after_micro / MICRO,
            "score_change": self.score_delta_micro / MICRO,
            "rank_before": pd.array(
                np.where(self.eligible_before, self.rank_before, 0), dtype="Int64"
            ),
            "rank_after": pd.array(
                np.where(self.eligible_after, self.rank_after, 0), dtype="Int64"
            ),
        }
        cols["rank_before"][~self.eligible_before] = pd.NA
        cols["rank_after"][~self.eligible_after] = pd.NA
        cols["rank_shift"] = cols["rank_before"] - cols["rank_after"]
        if self.served_before is not None and self.served_after is not None:
            cols["served_before"] = pd.array(self.served_before, dtype="boolean")
            cols["served_after"] = pd.array(self.served_after, dtype="boolean")
        for j, key in enumerate(self.criteria):
            cols[f"delta.{key}"] = self.criterion_delta_micro[:, j] / MICRO
        df = pd.DataFrame(cols, index=pd.Index(self.ids.astype(str), name="id"))
        extra = [
            pd.DataFrame(
                {"in_before": True, "in_after": False}, index=pd.Index(self.only_before, name="id")
            ),
            pd.DataFrame(
                {"in_before": False, "in_after": True}, index=pd.Index(self.only_after, name="id")
            ),
        ]
        extra = [e for e in extra if len(e)]
        if extra:
            df = pd.concat([df, *extra])
        return df.sort_index()

    def document(self, level: int = 1, *, include_diff: bool = True) -> Document:
        """The comparison as a :class:`~fairalloc.analysis.Document` (title at ``level``).

        Args:
            level: The heading level of the title.
            include_diff: Include the structural diff of the two policies.
        """
        from fairalloc.analysis._compare_report import report  # the rendering of these facts

        return report(self, level, include_diff=include_diff)

    def to_markdown(self, *, include_diff: bool = True) -> str:
        """The comparison as Markdown: the policy changes, then each figure with its table.

        Args:
            include_diff: Include the structural diff of the two policies.
        """
        return self.document(include_diff=include_diff).markdown()

    def to_text(self, *, include_diff: bool = True) -> str:
        """The comparison as plain text (the same content as :meth:`to_markdown`).

        Args:
            include_diff: Include the structural diff of the two policies.
        """
        return self.document(include_diff=include_diff).text()

    def _repr_html_(self) -> str:
        return self.document().html(shift=2)

    def __repr__(self) -> str:
        e = self.eligibility_summary()
        served = ""
        if self.served_compared:
            s = self.served_summary() or {}
            served = f", {s['newly_served']} newly served, {s['losing_place']} losing their place"
        moved = int((self.rank_shifts() != 0).sum())
        return (
            f"<Comparison {self.before} → {self.after} on {self.n} residents:"
            f" {e['newly_eligible']} newly eligible, {e['newly_ineligible']} newly ineligible"
            f"{served}, {moved} moved in rank>"
        )


# -- building a comparison ----------------------------------------------------------------------


def compare(
    a: Source,
    b: Source,
    residents: Population | Any = None,
    *,
    capacity: int | None = None,
    group_by: Sequence[str] | str | None = None,
    strata: str | bool = True,
    served: bool | None = None,
    as_of: dt.date | None = None,
    top: int = 10,
    intersections: bool = False,
) -> Comparison:
    """Apply two policies to the same residents and report what changes for whom, and why.

    Residents are loaded against each policy's own attribute schema (the schemas may differ;
    columns only one policy reads are simply not read by the other) and matched by id, never by
    row. Residents in one population only (possible when evaluations of different populations
    are compared) are listed.

    Args:
        a: The policy before: a :class:`~fairalloc.Policy`, a compiled policy, an
            :class:`~fairalloc.Evaluation` or an :class:`~fairalloc.Allocation` (whose served
            status is used unless ``capacity`` is given).
        b: The policy after, likewise.
        residents: The residents, when ``a`` or ``b`` is a policy: a
            :class:`~fairalloc.Population` or anything :meth:`~fairalloc.Population.load`
            accepts (a CSV path, a DataFrame, columns, records).
        capacity: Units to allocate under both policies. By default each policy's own
            allocation is compared when both have one.
        group_by: Attributes whose groups' selection rates are compared; by default every
            attribute protected in either policy (that both schemas hold).
        strata: A graded scale whose grades are the need strata of the group statistics;
            True (the default) for the first graded scale of both policies, False for none.
        served: Whether to compare who is served: None (the default) when both policies can
            allocate, True to require it, False never.
        as_of: The date whose parameter values apply, for policies not yet compiled.
        top: How many of the largest rank movers to list.
        intersections: Also compare the groups of every pair of attributes.

    Returns:
        The :class:`Comparison`.

    Raises:
        ComparisonError: if the policies identify residents with ids of different types, no
            resident is in both populations, the residents do not fit a policy's schema, served
            status is asked of a policy that cannot allocate, or a grouping attribute or
            stratum is unknown.
        TypeError: if the residents are missing or given with two evaluations.

    Examples:
        >>> import fairalloc as fa
        >>> from fairalloc.analysis import compare
        >>> text = '''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   age: {type: int, min: 0, max: 130}
        ...   need: {type: int, min: 0, max: 10}
        ... parameters: {min_age: 60}
        ... rules:
        ...   eligibility: [{id: old-enough, when: "age >= min_age"}]
        ...   priority: [{id: need-points, points: "need"}]
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {capacity: 1}
        ... '''
        >>> old = fa.parse_policy(text)
        >>> new = fa.parse_policy(text.replace("min_age: 60", "min_age: 70"))
        >>> people = [{"id": "a", "age": 65, "need": 9}, {"id": "b", "age": 75, "need": 2}]
        >>> result = compare(old, new, people, group_by=[])
        >>> result.newly_ineligible, result.newly_served, result.losing_place
        (['a'], ['b'], ['a'])
    """
    if top < 0:
        raise ArgumentError(
            "FA600", f"top must be at least 0, got {top}", argument="top", value=top, valid=">= 0"
        )
    if capacity is not None and served is False:
        raise ArgumentError(
            "FA617", "capacity= allocates to compare who is served; drop served=False"
        )
    schema_a, schema_b = _schema_of(a), _schema_of(b)
    _check_ids(schema_a, schema_b)
    needs_residents = not isinstance(a, Evaluation | Allocation) or not isinstance(
        b, Evaluation | Allocation
    )
    if needs_residents and residents is None:
        raise ArgumentTypeError(
            "FA642", "give the residents to compare the policies on", argument="residents"
        )
    if not needs_residents and residents is not None:
        raise ArgumentTypeError(
            "FA641",
            "residents are given with policies, not with evaluations or allocations",
            argument="residents",
        )
    if isinstance(residents, Iterator):
        residents = list(residents)  # loaded once per policy
    loaded: list[Population] = []
    side_a = _side("before", a, residents, as_of, loaded)
    side_b = _side("after", b, residents, as_of, loaded)
    rows_a, rows_b, only_a, only_b = _match(side_a.evaluation, side_b.evaluation)
    notes = _allocate(side_a, side_b, capacity=capacity, served=served)
    groups = _groups(
        side_a, side_b, group_by=group_by, strata=strata, intersections=intersections, notes=notes
    )
    if groups[0] is not None and (only_a or only_b):
        notes.append(
            f"Group statistics count each population as a whole: {len(only_a)} resident(s) only"
            f" before and {len(only_b)} only after are in them, so their changes mix a change"
            " of residents with the change of policy."
        )
    diff = policy_diff(side_a.compiled.policy, side_b.compiled.policy)
    return Comparison(
        (side_a, side_b), diff, (rows_a, rows_b), (only_a, only_b), top, groups, notes
    )


def _schema_of(x: Source) -> Policy:
    if isinstance(x, Policy):
        return x
    if isinstance(x, CompiledPolicy):
        return x.policy
    if isinstance(x, Evaluation):
        return x.policy.policy
    if isinstance(x, Allocation):
        return x.evaluation.policy.policy
    raise ArgumentTypeError(
        "FA640",
        f"cannot compare a {type(x).__name__}: give a Policy, a CompiledPolicy, an Evaluation"
        " or an Allocation",
        valid="Policy, CompiledPolicy, Evaluation, Allocation",
    )


def _compiled_of(x: Source) -> CompiledPolicy | None:
    """The compiled policy of an evaluation, allocation or compiled policy (None for a Policy)."""
    if isinstance(x, Allocation):
        return x.evaluation.policy
    if isinstance(x, Evaluation):
        return x.policy
    return x if isinstance(x, CompiledPolicy) else None


def _check_ids(a: Policy, b: Policy) -> None:
    ida, idb = a.id_attribute, b.id_attribute
    ta, tb = a.attributes[ida].type, b.attributes[idb].type
    if ta != tb:
        raise ComparisonError(
            "FA670",
            f"the policies identify residents with ids of different types: before by `{ida}`"
            f" ({ta}), after by `{idb}` ({tb}); residents are matched by id, so both id"
            " attributes must have the same type (both str or both int)",
        )


def _side(
    name: str, x: Source, residents: Any, as_of: dt.date | None, loaded: list[Population]
) -> _Side:
    compiled = _compiled_of(x)
    if compiled is not None and as_of is not None and as_of != compiled.as_of:
        raise ArgumentError(
            "FA611",
            f"the {name} policy was compiled as of {compiled.as_of}, not {as_of}: compile it"
            " with as_of, or give the Policy",
            argument="as_of",
            value=as_of,
        )
    if isinstance(x, Allocation):
        return _Side(name, x.evaluation, x)
    if isinstance(x, Evaluation):
        return _Side(name, x)
    population = _population_for(name, residents, _schema_of(x), loaded)
    evaluation = evaluate(x, population, as_of=None if isinstance(x, CompiledPolicy) else as_of)
    return _Side(name, evaluation)


def _population_for(
    name: str, residents: Any, schema: Policy, loaded: list[Population]
) -> Population:
    """The residents as validated against ``schema``, reusing a population of the same schema."""
    for pop in (*loaded, *([residents] if isinstance(residents, Population) else [])):
        if pop.schema is schema or pop.schema.attributes == schema.attributes:
            return pop
    try:
        if isinstance(residents, Population):
            pop = Population.from_columns(_decoded(residents), schema, source=residents.source)
        else:
            source = str(residents) if isinstance(residents, str | os.PathLike) else ""
            pop = Population.load(residents, schema, source=source)
    except PopulationError as e:
        raise ComparisonError(
            "FA671",
            f"the residents do not fit the attributes of the {name} policy"
            f" ({schema.policy.id} v{schema.policy.version}):\n{e}",
        ) from e
    loaded.append(pop)
    return pop


def _decoded(pop: Population) -> dict[str, Any]:
    """A population's columns as written (levels, dates), filled defaults blank again."""
    cols: dict[str, Any] = {pop.schema.id_attribute: pop.ids}
    for name in pop.columns:
        values = pop.decode(name)
        filled = pop.filled.get(name)
        if filled is not None and filled.any():
            values = values.astype(object)
            values[filled] = None
        cols[name] = values
    return cols


def _allocate(a: _Side, b: _Side, *, capacity: int | None, served: bool | None) -> list[str]:
    """Allocate on both sides when asked or possible; the notes say what was not compared."""
    if served is False:
        a.allocation = b.allocation = None
        return ["Who is served is not compared (served=False)."]
    reasons = {s.name: _cannot_allocate(s, capacity) for s in (a, b)}
    blocked = {k: v for k, v in reasons.items() if v}
    if blocked:
        why = "; ".join(
            f"the {k} policy ({(a if k == 'before' else b).label}) {v}" for k, v in blocked.items()
        )
        if capacity is not None or served:
            raise ComparisonError(
                "FA672",
                f"cannot compare who is served: {why}. Compare eligibility, ranks and scores"
                " only with served=False (and no capacity=)",
            )
        a.allocation = b.allocation = None
        return [f"Who is served is not compared: {why}."]
    for s in (a, b):
        if s.allocation is not None and (capacity is None or capacity == s.allocation.capacity):
            continue
        try:
            s.allocation = allocate_evaluation(s.evaluation, capacity=capacity)
        except AllocationError as e:
            raise ComparisonError(
                "FA673", f"cannot allocate under the {s.name} policy ({s.label}): {e}"
            ) from e
    return []


def _cannot_allocate(s: _Side, capacity: int | None) -> str:
    if s.allocation is not None and capacity is None:
        return ""
    spec = s.compiled.policy.allocation
    if spec is None:
        return "has no `allocation` section"
    if s.compiled.violations:
        return (
            "was loaded for audit only (it reads protected attributes without justified uses),"
            " so it cannot allocate"
        )
    if spec.matching is not None:
        return "allocates by matching, which compare() does not compare (use fairalloc.match)"
    if spec.rotation is not None:
        return (
            "serves a waiting list over rounds, which compare() does not compare as one"
            " allocation (use fairalloc.simulate)"
        )
    if capacity is None and spec.capacity is None:
        return "has no `allocation.capacity` (give capacity=)"
    return ""


def _match(
    ev_a: Evaluation, ev_b: Evaluation
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], list[str], list[str]]:
    """Rows of the residents in both evaluations, matched by id, and the ids in one only."""
    same = ev_a.ids is ev_b.ids or (ev_a.n == ev_b.n and np.array_equal(ev_a.ids, ev_b.ids))
    if same and ev_a.n:
        rows = np.arange(ev_a.n, dtype=np.intp)
        return rows, rows, [], []
    ids_a, ids_b = ev_a.ids.astype(str), ev_b.ids.astype(str)
    common, rows_a, rows_b = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    if len(common) == 0:
        raise ComparisonError(
            "FA674",
            "no resident is in both populations: residents are matched by id, never by row;"
            f" before has {ev_a.n} (ids such as {_examples(ids_a)}), after has {ev_b.n}"
            f" (ids such as {_examples(ids_b)})",
        )
    # Sorted, so that reports do not depend on the order residents came in.
    only_a = np.sort(np.setdiff1d(ids_a, common, assume_unique=True))
    only_b = np.sort(np.setdiff1d(ids_b, common, assume_unique=True))
    return (
        rows_a.astype(np.intp),
        rows_b.astype(np.intp),
        [str(i) for i in only_a],
        [str(i) for i in only_b],
    )


def _examples(ids: npt.NDArray[np.str_]) -> str:
    shown = ", ".join(repr(str(i)) for i in np.sort(ids)[:3])
    return shown or "none"


def _groups(
    a: _Side,
    b: _Side,
    *,
    group_by: Sequence[str] | str | None,
    strata: str | bool,
    intersections: bool,
    notes: list[str],
) -> tuple[GroupStatistics | None, GroupStatistics | None]:
    schema_a, schema_b = a.compiled.policy, b.compiled.policy
    groupable = ("bool", "int", "float", "category", "ordinal", "date")
    if group_by is None:
        protected = [*schema_a.protected_attributes, *schema_b.protected_attributes]
        names = [
            n
            for n in dict.fromkeys(protected)
            if n in schema_a.attributes and n in schema_b.attributes
        ]
    else:
        names = [group_by] if isinstance(group_by, str) else list(dict.fromkeys(group_by))
        both = [
            n
            for n in schema_a.attributes
            if n in schema_b.attributes
            and n != schema_a.id_attribute
            and schema_a.attributes[n].type in groupable
        ]
        for n in names:
            if n not in both:
                raise ArgumentError(
                    "FA603",
                    f"cannot group by `{n}`: it is not an attribute of both policies that has"
                    f" groups; attributes of both: {', '.join(both) or 'none'}",
                    argument="group_by",
                    value=n,
                    valid=", ".join(both) or "none",
                )
    if not names:
        return None, None
    path: str | None
    graded_a = [s.path for s in a.compiled.graded_scales]
    graded_b = [s.path for s in b.compiled.graded_scales]
    if strata is True:
        path = next((p for p in graded_a if p in graded_b), None)
    elif strata is False:
        path = None
    else:
        path = strata
        for side, graded in ((a, graded_a), (b, graded_b)):
            if path not in graded:
                raise ArgumentError(
                    "FA608",
                    f"`{path}` is not a graded scale of the {side.name} policy; its graded"
                    f" scales: {', '.join(graded) or 'none'}",
                    argument="strata",
                    value=path,
                    valid=", ".join(graded) or "none",
                )
    stats = []
    for s in (a, b):
        result: Allocation | Evaluation = s.allocation if s.allocation is not None else s.evaluation
        stats.append(
            group_statistics(result, attributes=names, strata=path, intersections=intersections)
        )
    numeric = [n for n in names if schema_a.attributes[n].type in ("int", "float", "date")]
    if numeric:
        notes.append(
            "Groups of " + ", ".join(f"`{n}`" for n in numeric) + " are quartiles of each"
            " policy's compared residents, so their bins can differ between the policies."
        )
    return stats[0], stats[1]


# -- figures ------------------------------------------------------------------------------------


def _contributions(
    ev: Evaluation, rows: npt.NDArray[np.intp], *, additive: bool
) -> tuple[dict[str, IntArray], IntArray]:
    """Each criterion's contribution to the score of ``rows`` (micro-points), and the rest.

    With a ``sum`` score, a contribution is the criterion's points times its weight in the
    score, rounded once; the rest (``score - sum``) is what rounding the weighted totals adds
    (0 when every weight above the criteria is 1). Otherwise contributions are the points.
    """
    whole = _identity(rows, ev.n)
    weights = ev.policy.criterion_weights() if additive else [1.0] * len(ev.criteria)
    out: dict[str, IntArray] = {}
    total = np.zeros(len(rows), dtype=np.int64)
    for k, (key, w) in enumerate(zip(ev.criteria, weights, strict=True)):
        points = ev.points[:, k] if whole else ev.points[rows, k]
        if w == 1.0:
            out[key] = points
        elif w == 0.0:
            out[key] = np.zeros(len(rows), dtype=np.int64)
        else:
            out[key] = micro(points / MICRO * w)
        total += out[key]
    rest = (ev.score_micro if whole else ev.score_micro[rows]) - total
    return out, rest if additive else np.zeros(len(rows), dtype=np.int64)


def _identity(rows: npt.NDArray[np.intp], n: int) -> bool:
    """Whether ``rows`` are ``0, 1, ..., n-1`` (then copies can be spared)."""
    return len(rows) == n and (n == 0 or bool((np.diff(rows) == 1).all() and rows[0] == 0))


def _criterion_deltas(
    a: Evaluation,
    ra: npt.NDArray[np.intp],
    b: Evaluation,
    rb: npt.NDArray[np.intp],
    *,
    additive: bool,
) -> tuple[list[str], IntArray]:
    """The criteria of both policies and the change of each one's contribution (columns)."""
    ca, rest_a = _contributions(a, ra, additive=additive)
    cb, rest_b = _contributions(b, rb, additive=additive)
    keys = list(dict.fromkeys([*ca, *cb]))
    rest = rest_b - rest_a
    with_rest = additive and bool(rest.any())
    # Column-major: each criterion's changes are contiguous, as they are read.
    delta = np.empty((len(ra), len(keys) + with_rest), dtype=np.int64, order="F")
    zero = np.zeros(len(ra), dtype=np.int64)
    for j, key in enumerate(keys):
        np.subtract(cb.get(key, zero), ca.get(key, zero), out=delta[:, j])
    if with_rest:
        delta[:, -1] = rest
        keys.append(ROUNDING)
    return keys, delta


def _criterion_change(
    key: str, j: int, c: Comparison, cp_a: CompiledPolicy, cp_b: CompiledPolicy
) -> CriterionChange:
    d = c.criterion_delta_micro[:, j]
    n = len(d)
    changed = int((d != 0).sum())
    keys_a, keys_b = {x.key for x in cp_a.criteria}, {x.key for x in cp_b.criteria}
    status: Literal["changed", "unchanged", "added", "removed"]
    if key == ROUNDING or (key in keys_a and key in keys_b):
        status = "changed" if changed else "unchanged"
    else:
        status = "added" if key in keys_b else "removed"
    causes: list[str] = []
    if key != ROUNDING:
        part = (
            f"rule:{key.removeprefix('priority.')}"
            if key.startswith("priority.")
            else f"indicator:{key}"
        )
        causes = [ch.describe() for ch in c.diff.causes(part) if ch.section != "parameters"]
        # Parameters by the value in force, which is what the engine used.
        for name in sorted(c.diff.names_read_by(part)):
            if name not in cp_a.policy.parameters and name not in cp_b.policy.parameters:
                continue
            va, vb = cp_a.parameters.get(name), cp_b.parameters.get(name)
            if va != vb:
                causes.append(f"parameter `{name}` in force: {_value(va)} → {_value(vb)}")
    return CriterionChange(
        key,
        status,
        changed,
        _exact_sum(d) / (n * MICRO) if n else 0.0,
        int(d.min()) / MICRO if n else 0.0,
        int(d.max()) / MICRO if n else 0.0,
        tuple(causes),
    )


def _value(v: object) -> str:
    return "none" if v is None else show(v)


def _exact_sum(values: IntArray) -> int:
    """The exact sum of int64 values (Python integers where int64 could overflow)."""
    if len(values) == 0:
        return 0
    peak = max(abs(int(values.max())), abs(int(values.min())))
    if peak * len(values) < 2**62:
        return int(values.sum(dtype=np.int64))
    return sum(int(v) for v in values)


def _rule_counts(ev: Evaluation, rows: npt.NDArray[np.intp]) -> dict[str, int]:
    cp = ev.policy
    out: dict[str, int] = {}
    if len(rows) == 0:
        return out
    failed = (~ev.eligibility[rows]).sum(axis=0)
    for j, rid in enumerate(cp.eligibility_ids):
        if failed[j]:
            out[f"fails {rid}"] = int(failed[j])
    hit = ev.exclusions[rows].sum(axis=0)
    for j, rid in enumerate(cp.exclusion_ids):
        if hit[j]:
            out[f"excluded by {rid}"] = int(hit[j])
    return out


def _cutoff_changes(a: Allocation | None, b: Allocation | None) -> list[CutoffChange]:
    if a is None or b is None:
        return []
    before = {c.category: c for c in a.cutoffs()}
    after = {c.category: c for c in b.cutoffs()}
    return [
        CutoffChange(cat, before.get(cat), after.get(cat))
        for cat in dict.fromkeys([*before, *after])
    ]


def _side_meta(s: _Side) -> dict[str, Any]:
    cp = s.compiled
    meta = cp.policy.policy
    return {
        "policy": {"id": meta.id, "version": meta.version},
        "as_of": cp.as_of.isoformat() if cp.as_of else None,
        "residents": s.evaluation.n,
        "eligible": int(s.evaluation.eligible.sum()),
        "capacity": None if s.allocation is None else s.allocation.capacity,
        "served": None if s.allocation is None else s.allocation.n_served,
    }


def _group_rows(before: GroupStatistics, after: GroupStatistics) -> list[dict[str, Any]]:
    def key(r: Mapping[str, Any]) -> tuple[str, str, str | None]:
        return (r["grouping"], r["group"], r["stratum"])

    rows_b = {key(r): r for r in before.rows}
    rows_a = {key(r): r for r in after.rows}
    # Groupings, strata and groups in the order they first appear (the first policy's, then
    # any only the second has), so a group of one side only sits beside its neighbours.
    keys = list(dict.fromkeys([*rows_b, *rows_a]))
    grouping_pos = {g: i for i, g in enumerate(dict.fromkeys(k[0] for k in keys))}
    stratum_pos = {s: i for i, s in enumerate(dict.fromkeys(k[2] for k in keys))}
    group_pos = {g: i for i, g in enumerate(dict.fromkeys(k[:2] for k in keys))}
    keys.sort(key=lambda k: (grouping_pos[k[0]], stratum_pos[k[2]], group_pos[k[:2]]))
    out = []
    for k in keys:
        rb, ra = rows_b.get(k), rows_a.get(k)
        rate_b = None if rb is None else rb["rate"]
        rate_a = None if ra is None else ra["rate"]
        out.append(
            {
                "grouping": k[0],
                "group": k[1],
                "stratum": k[2],
                "n_before": None if rb is None else rb["n"],
                "n_after": None if ra is None else ra["n"],
                "selected_before": None if rb is None else rb["selected"],
                "selected_after": None if ra is None else ra["selected"],
                "rate_before": rate_b,
                "rate_after": rate_a,
                "rate_change": None if rate_b is None or rate_a is None else rate_a - rate_b,
                "ratio_before": None if rb is None else rb["ratio"],
                "ratio_after": None if ra is None else ra["ratio"],
                "reference_before": None if rb is None else rb["reference"],
                "reference_after": None if ra is None else ra["reference"],
                "four_fifths_before": None if rb is None else rb["four_fifths"],
                "four_fifths_after": None if ra is None else ra["four_fifths"],
                "disparity_before": None if rb is None else rb["disparity"],
                "disparity_after": None if ra is None else ra["disparity"],
            }
        )
    return out
