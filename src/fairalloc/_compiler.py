"""Compiling a policy: the only place where a policy document becomes code.

:func:`compile_policy` checks everything that the document's structure alone cannot (names,
expressions and their types, lookup tables against levels, score terms, justified uses of
protected attributes), reporting every problem at once with its place in the file, then builds
the numpy kernels that :mod:`fairalloc._engine` runs.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fairalloc import _instruments as _ins
from fairalloc.errors import (
    ArgumentError,
    FairnessViolation,
    IssueCollector,
    PolicyError,
    PolicyIssue,
    PolicyNotInForce,
    _ExprIssue,
)
from fairalloc.expr import _ast as A
from fairalloc.expr._check import BOOL, DATE, NUMBER, Checked, ExprTypeError, Scope, Type, check
from fairalloc.expr._numpy import CondKernel, NumKernel, compile_cond, compile_num
from fairalloc.expr._parser import ExprSyntaxError, children, parse
from fairalloc.policy import _model as M
from fairalloc.policy._load import PathKey, SourceMap, dotted

if TYPE_CHECKING:
    from fairalloc._tables import TableCode

__all__ = [
    "BandTable",
    "Changes",
    "CompiledPolicy",
    "Criterion",
    "ReadPath",
    "ScaleNode",
    "TraceColumn",
    "compile_policy",
    "compiled_for",
    "remember_compiled",
]

PartKind = Literal["rule", "indicator", "tie_break", "derived"]


@dataclass(frozen=True, slots=True)
class ReadPath:
    """How one part of a policy reads one attribute: directly, or through derived values.

    Attributes:
        attribute: The attribute read.
        via: The derived values passed through, outermost first (empty when read directly).
    """

    attribute: str
    via: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " -> ".join((*(_via_text(d) for d in self.via), f"`{self.attribute}`"))


def _via_text(step: str) -> str:
    """One step of a read path: a derived value, or ``KIND:NAME`` for a scale value."""
    kind, _, name = step.partition(":")
    if not name:
        return f"derived `{step}`"
    return {
        "grade": "grade of",
        "total": "total of",
        "indicator": "indicator",
        "table": "grade table of",
    }.get(kind, kind) + f" `{name}`"


@dataclass(frozen=True, slots=True)
class BandTable:
    """Bands (or grades) as arrays: tried in order, the first whose bounds hold applies."""

    lower: np.ndarray  # float64, -inf where unbounded
    lower_strict: np.ndarray  # bool: ``above`` (>) rather than ``min`` (>=)
    upper: np.ndarray  # float64, +inf where unbounded
    upper_strict: np.ndarray  # bool: ``below`` (<) rather than ``max`` (<=)
    values: np.ndarray  # float64 points, or grade index

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One column of the points matrix: an indicator of a scale, or a priority rule.

    Attributes:
        key: ``scale.path.indicator`` or ``priority.<rule id>``.
        kind: ``indicator`` or ``priority``.
        scale: The scale path of an indicator ('' for priority rules).
        weight: The indicator's weight (1 for priority rules).
        doc_path: Where it is defined in the policy document.
    """

    key: str
    kind: Literal["indicator", "priority"]
    scale: str
    weight: float
    doc_path: PathKey


@dataclass(slots=True)
class _IndicatorCode:
    criterion: int
    source: NumKernel  # the value of `of`, or the points formula
    source_nan: bool
    bands: BandTable | None
    lookup: np.ndarray | None  # points by level code
    levels: tuple[str, ...] | None  # the level names of a lookup, by code
    min_points: float | None
    max_points: float | None
    where: str
    table: TableCode | None = None


@dataclass(slots=True)
class ScaleNode:
    """A scale in the compiled tree.

    Attributes:
        path: Dotted path, e.g. ``need`` or ``need.family``.
        index: Column of this scale in the totals matrix.
        weight: Weight of this scale in its parent (or in the score, through terms).
        indicators: Columns of its indicators in the points matrix.
        children: Its sub-scales.
        grades: Names of its grades, if graded.
        grade_table: Its grades' bounds on its total, when graded by bands.
        grade_index: Column in the grades matrix, or -1.
        decision: The decision table choosing its grade, when graded by a table.
    """

    path: str
    index: int
    weight: float
    indicators: list[int] = field(default_factory=list)
    children: list[ScaleNode] = field(default_factory=list)
    grades: tuple[str, ...] = ()
    grade_table: BandTable | None = None
    grade_index: int = -1
    decision: TableCode | None = None

    def walk(self) -> Iterator[ScaleNode]:
        """This scale and all below it, parents first."""
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    cond: CondKernel
    nan: bool
    where: str


@dataclass(frozen=True, slots=True)
class _Priority:
    criterion: int
    when: CondKernel
    when_nan: bool
    points: NumKernel
    points_nan: bool
    where: str


@dataclass(frozen=True, slots=True)
class _TieBreak:
    kernel: NumKernel | None
    nan: bool
    descending: bool
    seed: str | None
    label: str
    where: str
    #: The attribute whose column the tie-break reads as it is (its values are the column's).
    column: str | None = None


@dataclass(frozen=True, slots=True)
class TraceColumn:
    """One column of an evaluation's trace and the part of the policy that produces it.

    Attributes:
        part: The part, as in :attr:`CompiledPolicy.reads` (``rule:<id>``, ``indicator:<path>``,
            ``tie_break:<i>``, ``reserve:<id>``, ``resource:<id>``, ``allocation:<what>``).
        kind: ``eligibility``, ``exclusion``, ``fires``, ``points``, ``value``, ``eligible``,
            ``priority``, ``weight`` or ``band``.
        array: The name of the :class:`~fairalloc.Evaluation` array holding it.
        column: Its column in that array, or -1 for a one-dimensional array.
        doc_path: Where the part is defined in the policy document.
    """

    part: str
    kind: str
    array: str
    column: int
    doc_path: PathKey

    @property
    def allocation(self) -> bool:
        """Whether this is an input of the allocation mechanism (not of eligibility or score)."""
        return self.part.split(":", 1)[0] in ("reserve", "resource", "allocation")

    def values(self, evaluation: Any) -> np.ndarray:
        """This column of ``evaluation``'s trace."""
        arr: np.ndarray = getattr(evaluation, self.array)
        return arr if self.column < 0 else arr[:, self.column]


@dataclass(frozen=True, slots=True)
class _AllocExpr:
    """The expressions of one part of the allocation section (a reserve, a resource, ...)."""

    id: str
    cond: CondKernel | None
    cond_nan: bool
    value: NumKernel | None
    value_nan: bool
    where: str


@dataclass(frozen=True, slots=True)
class Changes:
    """What differs between two compilations of one policy that differ in values only.

    Two compilations differ in values only when their documents are the same but for parameter
    values and weights (of indicators, sub-scales and score terms). Then only the parts that read
    a changed parameter, directly or through derived values, and the indicators whose weight
    changed compute anything new; see :meth:`CompiledPolicy.changes_from`.

    Attributes:
        parameters: The parameters whose values differ.
        weights: The weights that differ: an indicator's path (``need.health.adl``), a
            sub-scale's path (``need.health``) or a score term (``need``, ``priority``).
        parts: The parts whose kernels must run again, named as in :attr:`CompiledPolicy.reads`
            (``rule:<id>``, ``indicator:<path>``, ``tie_break:<i>``, ``reserve:<id>``, ...),
            and the derived values they recompute (``derived:<name>``).
        scales: Whether scale totals and grades must be computed again (an indicator's points
            or a sub-scale's weight changed).
        score: Whether the score terms and the score must be computed again (some points or
            weights changed).
    """

    parameters: frozenset[str]
    weights: frozenset[str]
    parts: frozenset[str]
    scales: bool
    score: bool

    @property
    def empty(self) -> bool:
        """Whether nothing differs."""
        return not (self.parameters or self.weights)


@dataclass(eq=False)
class CompiledPolicy:
    """A checked policy with its numpy kernels; build it with :func:`compile_policy`.

    Attributes:
        policy: The policy document.
        as_of: The date whose parameter values are in force.
        parameters: The parameter values in force.
        criteria: The columns of the points matrix.
        scales: The top-level scales, as trees.
        score_terms: The names of the score's terms (top-level scales or ``priority``).
        reads: For each part (``rule:<id>``, ``indicator:<path>``, ``tie_break:<i>``,
            ``reserve:<id>``, ...), every attribute it reads with the path through derived
            values.
        violations: Unjustified reads of protected attributes, when compiled for audit only
            (empty otherwise: such a policy does not compile).
        parameter_reads: For each part (named as in ``reads``) and each derived value
            (``derived:<name>``), the parameters it reads, directly or through derived values.
    """

    policy: M.Policy
    as_of: dt.date | None
    parameters: dict[str, object]
    criteria: list[Criterion]
    scales: list[ScaleNode]
    score_terms: list[tuple[str, float]]
    reads: dict[str, list[ReadPath]]
    source_map: SourceMap
    violations: tuple[PolicyIssue, ...] = ()
    parameter_reads: dict[str, frozenset[str]] = field(default_factory=dict)
    _derived: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _derived_nan: dict[str, bool] = field(default_factory=dict)
    _eligibility: list[_Rule] = field(default_factory=list)
    _exclusions: list[_Rule] = field(default_factory=list)
    _priority: list[_Priority] = field(default_factory=list)
    _indicators: list[_IndicatorCode] = field(default_factory=list)
    _tie_breaks: list[_TieBreak] = field(default_factory=list)
    _reserves: list[_AllocExpr] = field(default_factory=list)
    _resources: list[_AllocExpr] = field(default_factory=list)
    _lottery_weight: _AllocExpr | None = None
    #: Decision tables, in the order of an evaluation's ``table_rows`` trace.
    tables: list[TableCode] = field(default_factory=list)
    #: Located warnings: gaps a table may have on values the policy does not declare.
    warnings: tuple[PolicyIssue, ...] = ()
    #: Whether any part reads a scale's grade or total (evaluation order follows the reads).
    reads_scales: bool = False
    #: The parts (and grade tables, ``grade:PATH``) that read a grade or total, directly or
    #: through derived values: computed again whenever points change.
    scale_readers: frozenset[str] = frozenset()
    #: Each derived value's type: ``number``, ``bool``, ``date`` or the levels of a level.
    derived_types: dict[str, Type] = field(default_factory=dict)
    _rotation_band: _AllocExpr | None = None
    _shape: object = None

    @property
    def eligibility_ids(self) -> list[str]:
        """Ids of the eligibility rules, in order."""
        return [r.id for r in self._eligibility]

    @property
    def exclusion_ids(self) -> list[str]:
        """Ids of the exclusion rules, in order."""
        return [r.id for r in self._exclusions]

    @property
    def priority_ids(self) -> list[str]:
        """Ids of the priority rules, in order."""
        return [p.id for p in self.policy.rules.priority]

    @property
    def scale_paths(self) -> list[str]:
        """Every scale's path, in the order of the totals matrix."""
        return [s.path for top in self.scales for s in top.walk()]

    @property
    def graded_scales(self) -> list[ScaleNode]:
        """The scales that have grades, in the order of the grades matrix."""
        return [s for top in self.scales for s in top.walk() if s.grades]

    @property
    def tie_break_labels(self) -> list[str]:
        """Readable labels of the tie-break chain, e.g. ``waiting_days (desc)``, ``lottery``."""
        return [t.label for t in self._tie_breaks]

    @property
    def lottery_seed(self) -> str | None:
        """The published lottery seed, if the chain ends with a lottery."""
        return self._tie_breaks[-1].seed if self._tie_breaks else None

    @property
    def draw(self) -> str | None:
        """Whether this policy's lottery is a recorded draw (``None`` if it draws no lots).

        A seed written in the policy file is known before anyone applies, so results drawn
        with it are simulations and analyses, not a draw: a decision draws its seed after
        the applicant list is frozen (``fairalloc.records``).
        """
        spec = self.policy.allocation
        if self.lottery_seed is None and (spec is None or spec.lottery is None):
            return None
        if self.policy._recorded_seed is not None:
            return "a recorded draw: the seed was drawn after the list was frozen"
        return "not a draw: the policy file's seed is known in advance"

    def criterion_weights(self) -> list[float]:
        """Each criterion's weight in the score, for the columns of the points matrix.

        The product of the weights of the sub-scales above it and of its score term; 0 for a
        criterion whose scale (or ``priority``) is no term of the score. An indicator's own
        weight is already in its points. In a ``sum`` score the score is the criteria's points
        times these weights (up to rounding once per weighted total); in a ``product`` or
        ``tiers`` score they say only which criteria reach the score at all (not 0).
        """
        terms = dict(self.score_terms)
        weights = [0.0] * len(self.criteria)

        def walk(node: ScaleNode, w: float) -> None:
            for k in node.indicators:
                weights[k] = w
            for child in node.children:
                walk(child, w * child.weight)

        for top in self.scales:
            walk(top, terms.get(top.path, 0.0))
        for k, c in enumerate(self.criteria):
            if c.kind == "priority":
                weights[k] = terms.get("priority", 0.0)
        return weights

    def trace_columns(self) -> list[TraceColumn]:
        """Every column of an evaluation's trace with the part producing it, in document order.

        Audits and the test kit compare two evaluations column by column through this list, so
        that a difference is named by the part responsible without evaluating anything again.
        """
        doc = self.policy
        out = [
            TraceColumn(
                f"rule:{r.id}", "eligibility", "eligibility", j, ("rules", "eligibility", str(j))
            )
            for j, r in enumerate(doc.rules.eligibility)
        ]
        out += [
            TraceColumn(
                f"rule:{r.id}", "exclusion", "exclusions", j, ("rules", "exclusions", str(j))
            )
            for j, r in enumerate(doc.rules.exclusions)
        ]
        for j, pr in enumerate(self._priority):
            crit = self.criteria[pr.criterion]
            part = f"rule:{crit.key.removeprefix('priority.')}"
            out.append(TraceColumn(part, "fires", "fired", j, crit.doc_path))
            out.append(TraceColumn(part, "points", "points", pr.criterion, crit.doc_path))
        out += [
            TraceColumn(f"indicator:{c.key}", "points", "points", k, c.doc_path)
            for k, c in enumerate(self.criteria)
            if c.kind == "indicator"
        ]
        out += [
            TraceColumn(
                f"tie_break:{j}", "value", "tie_values", j, ("ranking", "tie_break", str(j))
            )
            for j, tb in enumerate(self._tie_breaks)
            if tb.kernel is not None
        ]
        out += [TraceColumn(t.part, "row", "table_rows", t.index, t.doc_path) for t in self.tables]
        spec = doc.allocation
        if spec is None:
            return out
        for j, res in enumerate(spec.reserves):
            where: PathKey = ("allocation", "reserves", str(j))
            out.append(TraceColumn(f"reserve:{res.id}", "eligible", "reserve_eligible", j, where))
            if res.priority is not None:
                out.append(
                    TraceColumn(f"reserve:{res.id}", "priority", "reserve_priority", j, where)
                )
        for j, rsc in enumerate(spec.matching.resources if spec.matching else ()):
            where = ("allocation", "matching", "resources", str(j))
            out.append(TraceColumn(f"resource:{rsc.id}", "eligible", "resource_eligible", j, where))
            if rsc.priority is not None:
                out.append(
                    TraceColumn(f"resource:{rsc.id}", "priority", "resource_priority", j, where)
                )
        if self._lottery_weight is not None:
            out.append(
                TraceColumn(
                    "allocation:lottery-weight",
                    "weight",
                    "lottery_weight",
                    -1,
                    ("allocation", "lottery"),
                )
            )
        if self._rotation_band is not None:
            out.append(
                TraceColumn(
                    "allocation:rotation-band",
                    "band",
                    "rotation_band",
                    -1,
                    ("allocation", "rotation"),
                )
            )
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        # Kernels are closures, which do not pickle: a pickled compiled policy is its document,
        # date and mode, compiled again when unpickled (compilation is deterministic).
        return (_recompiled, (self.policy, self.as_of, bool(self.violations)))

    def refuse_if_audit_only(self, action: str) -> None:
        """Raise :class:`FairnessViolation` if this policy was compiled for audit only.

        Args:
            action: What was attempted, for the message (e.g. ``allocate``).
        """
        if self.violations:
            raise FairnessViolation(
                [
                    PolicyIssue(
                        i.code,
                        f"loaded for audit only, so it cannot {action}: {i.message}",
                        i.span,
                        i.text,
                        i.hint,
                    )
                    for i in self.violations
                ]
            )

    def dependencies(self) -> dict[str, set[str]]:
        """For each part of the policy, the attributes it reads (directly or via derived values).

        Examples:
            ``{"rule:aged-60-plus": {"age"}, "indicator:need.health": {"adl_score"}, ...}``
        """
        return {part: {r.attribute for r in paths} for part, paths in self.reads.items()}

    def readers_of(self, attribute: str) -> dict[str, list[ReadPath]]:
        """Every part that reads ``attribute``, with the read paths."""
        return {
            part: [r for r in paths if r.attribute == attribute]
            for part, paths in self.reads.items()
            if any(r.attribute == attribute for r in paths)
        }

    def parameter_readers(self, name: str) -> list[str]:
        """Every part and derived value that reads parameter ``name``, directly or not.

        Examples:
            ``["rule:aged-60-plus"]`` for ``min_age`` in the elderly-care example.
        """
        return [part for part, names in self.parameter_reads.items() if name in names]

    def weights(self) -> dict[str, float]:
        """Every weight of the policy, by the path that names it.

        An indicator's weight by its path (``need.health.adl``), a sub-scale's weight in its
        parent by its path (``need.health``), and a score term's weight by the term (``need``,
        ``priority``): a top-level scale's own weight is always 1, so its name stands for its
        weight in the score.
        """
        out: dict[str, float] = {}
        for top in self.scales:
            for node in top.walk():
                if node is not top:
                    out[node.path] = node.weight
                for k in node.indicators:
                    out[self.criteria[k].key] = self.criteria[k].weight
        for name, weight in self.score_terms:
            out[name] = weight
        return out

    def changes_from(self, base: CompiledPolicy) -> Changes | None:
        """What must be computed again to evaluate this policy, given an evaluation of ``base``.

        Returns:
            The :class:`Changes`, when the two documents differ in parameter values and weights
            only (a policy compiled again with other values); None when they differ in anything
            else, and an evaluation must start afresh.
        """
        if self._structure() != base._structure():
            return None
        names = set(self.parameters) | set(base.parameters)
        params = frozenset(
            n
            for n in names
            if not _same_value(self.parameters.get(n, _MISSING), base.parameters.get(n, _MISSING))
        )
        mine, theirs = self.weights(), base.weights()
        weights = frozenset(k for k in mine if mine[k] != theirs.get(k))
        parts = {part for part, read in self.parameter_reads.items() if read & params}
        indicators = {c.key for c in self.criteria if c.kind == "indicator"}
        parts |= {f"indicator:{w}" for w in weights if w in indicators}
        sub_scales = {s.path for top in self.scales for s in top.walk() if s is not top}
        scales = any(p.startswith("indicator:") for p in parts) or bool(weights & sub_scales)
        if scales:
            # Everything that reads a grade or a total may change with the points.
            parts |= self.scale_readers
        priority = any(p.removeprefix("rule:") in self.priority_ids for p in parts)
        return Changes(
            params, weights, frozenset(parts), scales, scales or priority or bool(weights)
        )

    def _structure(self) -> object:
        """The document without parameter values and weights, to tell value-only changes."""
        if self._shape is None:
            doc = self.policy.model_dump(exclude={"parameters": True, "score": {"terms"}})
            _drop_weights(doc["scales"])
            self._shape = (doc, [name for name, _ in self.score_terms])
        return self._shape

    def span(self, doc_path: PathKey) -> str:
        """The location of a document path in the policy file, for messages."""
        return str(self.source_map.span(doc_path))


# -- compiling --------------------------------------------------------------------------------


def compile_policy(
    policy: M.Policy, *, as_of: dt.date | None = None, audit: bool = False
) -> CompiledPolicy:
    """Check ``policy`` as a whole and compile it into numpy kernels.

    Args:
        policy: A structurally valid policy document.
        as_of: The date whose parameter values apply; by default the policy's ``effective``
            date, or, without one, each parameter's latest value. Never today's date: the same
            policy must give the same results whenever it is run.
        audit: Compile a policy that reads protected attributes without justified uses, for
            audit only: the violations are recorded in :attr:`CompiledPolicy.violations`
            instead of raised, and every allocation mechanism refuses the result.

    Raises:
        PolicyError: listing every name, type and cross-reference problem, located.
        FairnessViolation: when the only problems are reads of protected attributes without a
            justified use (each issue names the part, the attribute and the read path).
    """
    return _Builder(policy, as_of, audit=audit).build()


def _recompiled(policy: M.Policy, as_of: dt.date | None, audit: bool) -> CompiledPolicy:  # noqa: FBT001
    """A compiled policy as unpickled (see :meth:`CompiledPolicy.__reduce__`)."""
    return compiled_for(policy, as_of, audit=audit)


def _empty_cache(audit: bool) -> _CompileCache:  # noqa: FBT001
    return _CompileCache(audit=audit)


class _CompileCache:
    """A policy's compilations, by the date whose parameters apply and the mode.

    Kept on the :class:`~fairalloc.policy.Policy` (a private attribute the model only carries),
    read and written by :func:`compiled_for` and :func:`remember_compiled` alone.
    """

    __slots__ = ("audit", "compiled")

    def __reduce__(self) -> tuple[Any, ...]:
        # The compilations are a cache: a pickled policy keeps its mode and compiles again.
        return (_empty_cache, (self.audit,))

    def __init__(self, *, audit: bool) -> None:
        #: The mode the policy was loaded in: audit-mode policies may read protected
        #: attributes without a justified use (recorded as violations, never allocated).
        self.audit = audit
        self.compiled: dict[tuple[dt.date | None, bool], CompiledPolicy] = {}


def compiled_for(
    policy: M.Policy, as_of: dt.date | None = None, *, audit: bool = False
) -> CompiledPolicy:
    """The compilation of ``policy`` that applies as of ``as_of``, compiled once and kept.

    Every entry point that takes a :class:`~fairalloc.policy.Policy` (evaluate, allocate,
    audit, comparisons, sweeps) goes through this function, so a policy is compiled once per
    date and mode. The mode is the one the policy was loaded in
    (``load_policy(..., audit=True)`` keeps unjustified reads of protected attributes as facts
    for the audit instead of refusing them), or audit mode when ``audit`` asks for it.

    Args:
        policy: A checked policy document.
        as_of: The date whose parameter values apply (see :func:`compile_policy`); ``None``
            for the date the policy was loaded for.
        audit: Compile in audit mode even if the policy was loaded in the normal mode (the
            audit and the analysis tools read policies that way).

    Returns:
        The compiled policy.
    """
    cache = policy._compiled
    if not isinstance(cache, _CompileCache):
        cache = _CompileCache(audit=False)
        policy._compiled = cache
    key = (as_of, cache.audit or audit)
    found = cache.compiled.get(key)
    if found is None:
        found = compile_policy(policy, as_of=as_of, audit=key[1])
        cache.compiled[key] = found
    return found


def remember_compiled(
    policy: M.Policy, compiled: CompiledPolicy, as_of: dt.date | None, *, audit: bool
) -> None:
    """Keep the compilation made while loading ``policy``: used as loaded and as of ``as_of``.

    A policy checked in the normal mode has no violations, so its compilation also serves
    audit mode.
    """
    cache = _CompileCache(audit=audit)
    for date in (None, as_of):
        cache.compiled[date, True] = compiled
        if not audit:
            cache.compiled[date, False] = compiled
    policy._compiled = cache


class _Builder:
    def __init__(self, policy: M.Policy, as_of: dt.date | None, *, audit: bool = False) -> None:
        self.audit = audit
        self.p = policy
        self.as_of = as_of if as_of is not None else policy.policy.effective
        origin = policy._origin
        self.smap: SourceMap = origin if isinstance(origin, SourceMap) else SourceMap()
        self.issues = IssueCollector()
        self.fairness = IssueCollector()
        self.params: dict[str, object] = {}
        self.attr_types: dict[str, Type] = {}
        self.checked_derived: dict[str, Checked] = {}
        self.failed_derived: dict[str, str] = {}
        self.failed_parts: set[str] = set()
        self._resolving: list[str] = []
        self._order: list[str] = []
        self._derived_reads: dict[str, list[ReadPath]] = {}
        self._derived_params: dict[str, set[str]] = {}
        self.reads: dict[str, list[ReadPath]] = {}
        self.param_reads: dict[str, set[str]] = {}
        #: The checked expressions of each part, for reads through grades and totals.
        self.part_checks: dict[str, list[Checked]] = {}
        #: Decision tables, bands and grades waiting for their completeness check.
        self.pending_tables: list[tuple[TableCode, list[Checked | None], str]] = []
        #: Derived values given by decision tables.
        self.derived_tables: dict[str, TableCode] = {}
        self.scope: Scope

    # -- issues ------------------------------------------------------------------------
    def issue(self, code: str, message: str, path: PathKey, hint: str = "", text: str = "") -> None:
        self.issues.add(PolicyIssue(code, message, self.smap.span(path), text, hint))

    def expr_issue(
        self, path: PathKey, text: str, code: str, message: str, offset: int, hint: str
    ) -> None:
        span = self.smap.span(path, offset, text)
        self.issues.add(_ExprIssue(code, message, span, text, hint, offset))

    # -- top level ---------------------------------------------------------------------
    def build(self) -> CompiledPolicy:
        self.check_names()
        self.check_metadata()
        self.resolve_parameters()
        self.build_scope()
        # In an order that checks each derived value after those it reads: no recursion, so
        # derived values of any number may be declared in any order.
        for name in self.order_derived():
            if name not in self.checked_derived and name not in self.failed_derived:
                self._check_derived_quietly(name)
            c = self.checked_derived.get(name)
            if c is not None:
                self._derived_reads[name] = self.reads_of(c)
                self._derived_params[name] = self.params_of(c)
        cp = CompiledPolicy(
            policy=self.p,
            as_of=self.as_of,
            parameters=self.params,
            criteria=[],
            scales=[],
            score_terms=[],
            reads=self.reads,
            source_map=self.smap,
        )
        self.compile_derived(cp)
        cp.derived_types = {n: c.type for n, c in self.checked_derived.items()}
        self.compile_scales(cp)
        self.compile_rules(cp)
        self.compile_score(cp)
        self.compile_tie_breaks(cp)
        self.compile_allocation(cp)
        _ins.finish(self, cp)
        if self.p.allocation is not None and self.p.allocation.matching is not None:
            self.check_choices_unread(self.p.allocation.matching.preferences)
        self.check_review()
        self.check_justified_uses()
        cp.warnings = (*cp.warnings, *self.check_grounds())
        for name, c in self.checked_derived.items():
            self.param_reads[f"derived:{name}"] = self.params_of(c)
        cp.parameter_reads = {part: frozenset(ps) for part, ps in self.param_reads.items()}
        if self.audit and not self.issues.issues:
            cp.violations = tuple(self.fairness.issues)
            return cp
        if self.issues.issues and self.fairness.issues:
            # Report everything at once; a plain PolicyError, as not only fairness is at stake.
            merged = [*self.issues.issues, *self.fairness.issues]
            merged.sort(key=lambda i: (i.span.line, i.span.column))
            raise PolicyError(merged)
        self.issues.raise_if_any()
        self.fairness.raise_if_any(FairnessViolation)
        return cp

    def check_metadata(self) -> None:
        """The effective window, level titles; then refuse a date outside the window."""
        meta = self.p.policy
        if meta.expires is not None and meta.effective is not None and (
            meta.expires < meta.effective
        ):
            self.issue(
                "FA116",
                f"`expires` ({meta.expires}) is before `effective` ({meta.effective})",
                ("policy", "expires"),
                hint="the policy is in force from `effective` to `expires`, both included",
            )
        if meta.approved is not None and meta.effective is not None and (
            meta.approved.on > meta.effective
        ):
            self.issue(
                "FA117",
                f"approved on {meta.approved.on}, after it took effect on {meta.effective}",
                ("policy", "approved", "on"),
                hint="a policy is approved before it takes effect",
            )
        titled: list[tuple[str, str, Any, tuple[str, ...]]] = [
            (
                "attributes",
                name,
                attr,
                ("false", "true") if attr.type == "bool" else tuple(attr.levels or ()),
            )
            for name, attr in self.p.attributes.items()
        ]
        titled += [("derived", n, d, tuple(d.levels or ())) for n, d in self.p.derived.items()]
        for section, name, attr, levels in titled:
            if not attr.level_titles:
                continue
            if not levels:
                self.issue(
                    "FA115",
                    "`level_titles` only apply to values with levels: category, ordinal,"
                    " true/false, or a decision table with `levels`",
                    (section, name, "level_titles"),
                    hint="remove `level_titles`",
                )
                continue
            for key in attr.level_titles:
                if key not in levels:
                    close = difflib.get_close_matches(key, levels, n=1)
                    self.issue(
                        "FA115",
                        f"`{key}` in `level_titles` is not a level of `{name}`",
                        (section, name, "level_titles", key),
                        hint=f"did you mean `{close[0]}`?"
                        if close
                        else "levels: " + ", ".join(levels),
                    )
        as_of = self.as_of
        if as_of is not None and not self.issues.issues:
            early = meta.effective is not None and as_of < meta.effective
            late = meta.expires is not None and as_of > meta.expires
            if early or late:
                raise PolicyNotInForce(meta.id, as_of, meta.effective, meta.expires)

    def check_names(self) -> None:
        kinds: dict[str, str] = {}
        for kind, names in (
            ("attribute", self.p.attributes),
            ("parameter", self.p.parameters),
            ("derived value", self.p.derived),
            ("scale", self.p.scales),
        ):
            for name in names:
                if name in M.RESERVED:
                    self.issue(
                        "FA120",
                        f"`{name}` is a reserved word and cannot name a {kind}",
                        (_section(kind), name),
                        hint="choose another name",
                    )
                elif name in kinds:
                    self.issue(
                        "FA121",
                        f"`{name}` names both {_a(kinds[name])} and {_a(kind)}",
                        (_section(kind), name),
                        hint="names must be unique across sections",
                    )
                else:
                    kinds[name] = kind
        seen: dict[str, PathKey] = {}
        for section in ("eligibility", "exclusions", "priority"):
            for i, rule in enumerate(getattr(self.p.rules, section)):
                path: PathKey = ("rules", section, str(i), "id")
                if rule.id in seen:
                    self.issue(
                        "FA122",
                        f"rule id `{rule.id}` is used twice (also at {dotted(seen[rule.id][:-1])})",
                        path,
                    )
                seen[rule.id] = path

    def resolve_parameters(self) -> None:
        for name, param in self.p.parameters.items():
            try:
                self.params[name] = param.at(self.as_of)
            except ArgumentError as e:
                self.issue(
                    "FA130",
                    f"parameter `{name}`: {e.message}",
                    ("parameters", name),
                    hint="give a `value` in force before the first dated value",
                )
                # Keep checking expressions that use it, with its first value's type.
                self.params[name] = (param.values or [])[0].value

    def build_scope(self) -> None:
        _ins.check_allowed_values(self)
        for name, a in self.p.attributes.items():
            if a.role == "id":
                continue
            if a.type in ("int", "float"):
                self.attr_types[name] = NUMBER
            elif a.type == "bool":
                self.attr_types[name] = BOOL
            elif a.type == "date":
                self.attr_types[name] = DATE
            else:
                self.attr_types[name] = Type(
                    "level", name, tuple(a.levels or ()), ordered=a.type == "ordinal"
                )
        self.scope = Scope(
            attributes=self.attr_types,
            id_attribute=self.p.id_attribute,
            parameters=self.params,
            derived_names=frozenset(self.p.derived),
            derived_resolver=self._resolve_derived,
            scales=_scale_types(self.p.scales),
        )

    # -- expressions -------------------------------------------------------------------
    def checked(
        self,
        text: str | bool | float,  # noqa: FBT001 - an expression, or a constant written as one
        path: PathKey,
        expect: Type | None,
    ) -> Checked | None:
        """Parse and check one expression, recording any error at its place; None on error."""
        if isinstance(text, bool | float | int):
            text = ("true" if text else "false") if isinstance(text, bool) else repr(float(text))
        try:
            tree = parse(text)
        except ExprSyntaxError as e:
            message = f"syntax error: {e.message}" if e.code == "FA201" else e.message
            self.expr_issue(path, text, e.code, message, e.offset, e.hint)
            return None
        try:
            return check(tree, self.scope, expect)
        except ExprTypeError as e:
            # FA207 (uses an invalid derived value) is a consequence: the derived value's own
            # error is reported at its place.
            if e.code != "FA207":
                self.expr_issue(path, text, e.code, e.message, e.start, e.hint)
            return None

    def _resolve_derived(self, name: str) -> Type:
        done = self.checked_derived.get(name)
        if done is not None:
            return done.type
        if name in self.failed_derived:
            raise ExprTypeError("FA207", self.failed_derived[name], 0, 0)
        if name in self._resolving:
            cycle = " -> ".join([*self._resolving[self._resolving.index(name) :], name])
            raise ExprTypeError(
                "FA206", f"derived values refer to each other in a cycle: {cycle}", 0, 0
            )
        self._resolving.append(name)
        try:
            path = self._derived_path(name)
            before = len(self.issues.issues)
            doc = self.p.derived[name]
            if doc.table is not None:
                result = _ins.derived_table(self, name, doc)
            else:
                assert doc.expr is not None
                result = self.checked(doc.expr, path, None)
            if result is None:
                failed = self.issues.issues[before:]
                self.failed_derived[name] = failed[0].message if failed else "invalid"
                raise ExprTypeError("FA207", self.failed_derived[name], 0, 0)
            if result.type.kind not in ("number", "bool", "date", "level"):  # pragma: no cover
                raise ExprTypeError("FA203", f"a derived value cannot be {result.type}", 0, 0)
            self.checked_derived[name] = result
            self.scope.derived[name] = result.type
            return result.type
        finally:
            self._resolving.pop()

    def _check_derived_quietly(self, name: str) -> None:
        try:
            self._resolve_derived(name)
        except ExprTypeError as e:
            if e.code == "FA206":
                self.issue("FA206", e.message, ("derived", name))

    def _derived_path(self, name: str) -> PathKey:
        # `name: "expr"` is located at the name, `name: {expr: ...}` at `expr`.
        path: PathKey = ("derived", name, "expr")
        return path if path in self.smap.locs else ("derived", name)

    def order_derived(self) -> list[str]:
        """The derived values, each after the derived values it reads; cycles reported.

        An iterative depth-first search over the names each expression mentions, so that no
        number of derived values reaches the recursion limit. Each cycle is reported once
        (FA206), at the reference that closes it, and its members are not checked further.
        """
        derived = self.p.derived
        # Attributes, parameters and the id come first when a name is resolved.
        shadowed = {*self.attr_types, *self.params, self.p.id_attribute}
        refs: dict[str, list[tuple[str, int]]] = {}
        tables: list[str] = []
        for name, d in derived.items():
            if d.expr is None:
                # A decision table is checked last, when the values it may read are known;
                # tables that read tables resolve those in turn, as deep as they nest.
                tables.append(name)
                continue
            try:
                tree = parse(d.expr)
            except ExprSyntaxError:
                refs[name] = []  # reported when it is checked
                continue
            found: list[tuple[str, int]] = []
            seen: set[str] = set()
            stack: list[A.Node] = [tree]
            while stack:
                node = stack.pop()
                if (
                    isinstance(node, A.Name)
                    and node.id in derived
                    and derived[node.id].expr is not None
                    and node.id not in shadowed
                    and node.id not in seen
                ):
                    seen.add(node.id)
                    found.append((node.id, node.start))
                stack.extend(reversed(children(node)))
            refs[name] = found
        order: list[str] = []
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in refs:
            if root in state:
                continue
            path, pending = [root], [iter(refs[root])]
            state[root] = 1
            while pending:
                step = next(pending[-1], None)
                if step is None:
                    done = path.pop()
                    pending.pop()
                    state[done] = 2
                    order.append(done)
                    continue
                dep, offset = step
                if state.get(dep) == 1:
                    self._cycle(path[-1], [*path[path.index(dep) :], dep], offset)
                elif dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    pending.append(iter(refs[dep]))
        self._order = [*order, *tables]
        return self._order

    def _cycle(self, where: str, cycle: list[str], offset: int) -> None:
        message = "derived values refer to each other in a cycle: " + " -> ".join(cycle)
        text = self.p.derived[where].expr or ""
        self.expr_issue(self._derived_path(where), text, "FA206", message, offset, "")
        for name in cycle:
            self.failed_derived.setdefault(name, message)

    def reads_of(self, c: Checked) -> list[ReadPath]:
        """Every attribute ``c`` reads, with the derived values it reads them through.

        At most :data:`MAX_READ_PATHS` paths per attribute: derived values that read each other
        in a lattice have paths in numbers exponential in their count.
        """
        out: list[ReadPath] = [ReadPath(a) for a in sorted(c.attributes)]
        for d in sorted(c.derived):
            out.extend(ReadPath(r.attribute, (d, *r.via)) for r in self._derived_reads.get(d, ()))
        return _capped(out)

    def params_of(self, c: Checked) -> set[str]:
        """Every parameter ``c`` reads, directly or through derived values."""
        out = set(c.parameters)
        for d in c.derived:
            out |= self._derived_params.get(d, set())
        return out

    def note_reads(self, part: str, *checks: Checked | None) -> None:
        self.part_checks.setdefault(part, []).extend(c for c in checks if c is not None)
        params = self.param_reads.setdefault(part, set())
        for c in checks:
            if c is not None:
                params |= self.params_of(c)
        paths = self.reads.setdefault(part, [])
        if any(c is None for c in checks):
            self.failed_parts.add(part)
        for c in checks:
            if c is not None:
                for r in self.reads_of(c):
                    if r not in paths:
                        paths.append(r)

    # -- derived values and rules ------------------------------------------------------
    def compile_derived(self, cp: CompiledPolicy) -> None:
        for name in self._derived_order():
            c = self.checked_derived.get(name)
            if c is None:
                continue
            if name in self.derived_tables:
                _ins.compile_derived_table(cp, name, self.derived_tables[name])
                continue
            # With the derived values it reads, which a frame computes first (see Frame).
            needs = tuple(sorted(c.derived))
            if c.type.kind == "bool":
                kc, nan = compile_cond(c.ir, cp._derived_nan)
                cp._derived[name] = ("cond", kc, needs)
            else:
                kn, nan = compile_num(c.ir, cp._derived_nan)
                cp._derived[name] = ("num", kn, needs)
            cp._derived_nan[name] = nan

    def _derived_order(self) -> list[str]:
        return [n for n in self._order if n in self.checked_derived]

    def compile_rules(self, cp: CompiledPolicy) -> None:
        for section, target in (("eligibility", cp._eligibility), ("exclusions", cp._exclusions)):
            for i, rule in enumerate(getattr(self.p.rules, section)):
                path: PathKey = ("rules", section, str(i), "when")
                c = self.checked(rule.when, path, BOOL)
                self.note_reads(f"rule:{rule.id}", c)
                if c is not None:
                    k, nan = compile_cond(c.ir, cp._derived_nan)
                    target.append(_Rule(rule.id, k, nan, cp.span(path)))
        for i, prule in enumerate(self.p.rules.priority):
            base: PathKey = ("rules", "priority", str(i))
            cw = self.checked(prule.when, (*base, "when"), BOOL)
            cpts = self.checked(prule.points, (*base, "points"), NUMBER)
            self.note_reads(f"rule:{prule.id}", cw, cpts)
            if cw is None or cpts is None:
                continue
            crit = len(cp.criteria)
            cp.criteria.append(Criterion(f"priority.{prule.id}", "priority", "", 1.0, base))
            kw, wn = compile_cond(cw.ir, cp._derived_nan)
            kp, pn = compile_num(cpts.ir, cp._derived_nan)
            cp._priority.append(_Priority(crit, kw, wn, kp, pn, cp.span(base)))

    # -- scales ------------------------------------------------------------------------
    def compile_scales(self, cp: CompiledPolicy) -> None:
        counter = [0]
        for name, scale in self.p.scales.items():
            if scale.weight != 1.0:
                self.issue(
                    "FA146",
                    f"top-level scale `{name}` has a weight, which would have no effect",
                    ("scales", name, "weight"),
                    hint="weigh it in the score instead: score: {terms: [{of: "
                    + name
                    + ", weight: ...}]}",
                )
            cp.scales.append(self.compile_scale(cp, name, scale, ("scales", name), counter))
        graded = 0
        for node in (s for top in cp.scales for s in top.walk()):
            if node.grades:
                node.grade_index = graded
                graded += 1

    def compile_scale(
        self, cp: CompiledPolicy, path: str, scale: M.Scale, doc: PathKey, counter: list[int]
    ) -> ScaleNode:
        node = ScaleNode(path, counter[0], scale.weight)
        counter[0] += 1
        for iname, ind in scale.indicators.items():
            ipath = f"{path}.{iname}"
            crit = self.compile_indicator(cp, ipath, ind, (*doc, "indicators", iname))
            if crit is not None:
                node.indicators.append(crit)
        for sname, sub in scale.scales.items():
            node.children.append(
                self.compile_scale(cp, f"{path}.{sname}", sub, (*doc, "scales", sname), counter)
            )
        if scale.grades:
            names = tuple(g.grade for g in scale.grades)
            if len(set(names)) != len(names):
                self.issue("FA140", f"scale `{path}` repeats a grade name", (*doc, "grades"))
            node.grades = names
            if scale.grade_table is not None:
                node.decision = _ins.grade_table(
                    self, cp, path, names, scale.grade_table, (*doc, "grade_table")
                )
            else:
                if self.check_bands(scale.grades, (*doc, "grades")):
                    _ins.grades_check(self, cp, path, scale.grades, (*doc, "grades"))
                node.grade_table = _band_table(scale.grades, [float(i) for i in range(len(names))])
        return node

    def compile_indicator(
        self, cp: CompiledPolicy, ipath: str, ind: M.Indicator, doc: PathKey
    ) -> int | None:
        part = f"indicator:{ipath}"
        table = None
        if ind.table is not None:
            table = _ins.indicator_table(self, cp, part, ind.table, (*doc, "table"))
            if table is None:
                return None
            kernel, nan = _ins.row_kernel(table), False
            bands = lookup = None
            levels = None
        elif ind.points is not None:
            c = self.checked(ind.points, (*doc, "points"), NUMBER)
            self.note_reads(part, c)
            if c is None:
                return None
            kernel, nan = compile_num(c.ir, cp._derived_nan)
            bands = lookup = None
            levels = None
        else:
            assert ind.of is not None
            c = self.checked(ind.of, (*doc, "of"), None)
            self.note_reads(part, c)
            if c is None:
                return None
            kernel, nan = (
                compile_num(c.ir, cp._derived_nan)
                if c.type.kind != "bool"
                else _bool_as_number(c, cp._derived_nan)
            )
            bands, lookup = None, None
            levels = None
            if ind.bands is not None:
                if c.type.kind not in ("number", "date"):
                    self.issue(
                        "FA141",
                        f"bands need a number, but `of` is {c.type}",
                        (*doc, "of"),
                        hint="use `lookup` for levels and true/false",
                    )
                    return None
                if self.check_bands(ind.bands, (*doc, "bands")):
                    _ins.bands_check(self, cp, part, ind.bands, (*doc, "bands"), c, ind.of)
                bands = _band_table(ind.bands, [b.points for b in ind.bands])
            else:
                lookup = self.lookup_table(ind, c.type, doc)
                if lookup is None:
                    return None
                levels = ("false", "true") if c.type.kind == "bool" else c.type.levels
        crit = len(cp.criteria)
        cp.criteria.append(Criterion(ipath, "indicator", ipath.rsplit(".", 1)[0], ind.weight, doc))
        cp._indicators.append(
            _IndicatorCode(
                crit,
                kernel,
                nan,
                bands,
                lookup,
                levels,
                ind.min_points,
                ind.max_points,
                cp.span(doc),
                table,
            )
        )
        return crit

    def check_bands(self, bands: list[M.Band] | list[M.Grade], doc: PathKey) -> bool:
        """Refuse a catch-all before the last entry; whether the bands passed that check."""
        for i, b in enumerate(bands[:-1]):
            if b.unbounded:
                self.issue(
                    "FA142",
                    f"entry {i} matches every value, so the ones after it never apply",
                    (*doc, str(i)),
                    hint="put the catch-all last",
                )
                return False
        return True

    def lookup_table(self, ind: M.Indicator, typ: Type, doc: PathKey) -> np.ndarray | None:
        assert ind.lookup is not None
        if typ.kind == "bool":
            levels: tuple[str, ...] = ("false", "true")
        elif typ.kind == "level":
            levels = typ.levels
        else:
            self.issue(
                "FA143",
                f"`lookup` needs a category, ordinal or true/false, but `of` is {typ}",
                (*doc, "of"),
                hint="use `bands` for numbers",
            )
            return None
        keys = {str(k).lower() if typ.kind == "bool" else str(k): v for k, v in ind.lookup.items()}
        unknown = [k for k in keys if k not in levels]
        for k in unknown:
            close = difflib.get_close_matches(k, levels, n=1)
            self.issue(
                "FA144",
                f"`{k}` is not a level of {typ}",
                (*doc, "lookup", k),
                hint=f"did you mean `{close[0]}`?" if close else "levels: " + ", ".join(levels),
            )
        missing = [lv for lv in levels if lv not in keys]
        if missing:
            self.issue(
                "FA145",
                f"`lookup` gives no points for {', '.join(missing)}",
                (*doc, "lookup"),
                hint="every level needs points (0 is fine)",
            )
        if unknown or missing:
            return None
        return np.array([float(keys[lv]) for lv in levels], dtype=np.float64)

    # -- score and ranking -------------------------------------------------------------
    def compile_score(self, cp: CompiledPolicy) -> None:
        terms = self.p.score.terms
        if terms is None:
            cp.score_terms = [(name, 1.0) for name in self.p.scales]
            if self.p.rules.priority:
                cp.score_terms.append(("priority", 1.0))
        else:
            valid = [*self.p.scales, "priority"]
            for i, t in enumerate(terms):
                if t.of not in valid:
                    close = difflib.get_close_matches(t.of, valid, n=1)
                    self.issue(
                        "FA150",
                        f"score term `{t.of}` is neither a top-level scale nor `priority`",
                        ("score", "terms", str(i), "of"),
                        hint=f"did you mean `{close[0]}`?"
                        if close
                        else "terms: " + ", ".join(valid),
                    )
                elif any(t.of == name for name, _ in cp.score_terms):
                    self.issue(
                        "FA151",
                        f"score term `{t.of}` appears twice",
                        ("score", "terms", str(i), "of"),
                    )
                else:
                    cp.score_terms.append((t.of, t.weight))

    def check_review(self) -> None:
        """The ``review`` section (§2.3.2): it needs something to remedy, and a remedy."""
        spec = self.p.review
        if spec is None:
            return
        if self.p.allocation is None:
            self.issue(
                "FA177",
                "a `review` section needs an `allocation` section: a remedy gives a place",
                ("review",),
                hint="add `allocation`, or remove `review`",
            )
        if spec.remedy is None and not spec.displace:
            self.issue(
                "FA178",
                "`review` says neither a `remedy` nor `displace: true`: a review that finds the"
                " complainant should have been served must say how they are served",
                ("review",),
                hint="remedy: next_free_unit | supernumerary | head_of_waiting_list",
            )
        if spec.remedy == "supernumerary" and spec.displace:
            self.issue(
                "FA179",
                "`remedy: supernumerary` adds a place, so it never displaces anyone; it cannot go"
                " with `displace: true`",
                ("review", "displace"),
                hint="remove `displace`, or choose another remedy",
            )

    def compile_allocation(self, cp: CompiledPolicy) -> None:
        spec = self.p.allocation
        if spec is None:
            return
        base: PathKey = ("allocation",)
        for i, r in enumerate(spec.reserves):
            cp._reserves.append(
                self.alloc_expr(
                    cp, f"reserve:{r.id}", r.id, (*base, "reserves", str(i)), r.eligible, r.priority
                )
            )
        if spec.lottery is not None and spec.lottery.weight is not None:
            cp._lottery_weight = self.alloc_expr(
                cp,
                "allocation:lottery-weight",
                "lottery-weight",
                (*base, "lottery"),
                None,
                spec.lottery.weight,
                value_key="weight",
            )
        if spec.rotation is not None:
            for name, per_round in spec.rotation.accrue.items():
                where: PathKey = (*base, "rotation", "accrue", name)
                attr = self.p.attributes.get(name)
                if attr is None or attr.type not in ("int", "float"):
                    self.issue(
                        "FA175",
                        f"`accrue` needs a number attribute, and `{name}` is "
                        + ("not an attribute" if attr is None else _a(attr.type)),
                        where,
                        hint=_suggest(name, self.p.attributes),
                    )
                elif attr.type == "int" and not float(per_round).is_integer():
                    self.issue(
                        "FA175",
                        f"`{name}` is a whole number; it cannot accrue {per_round} per round",
                        where,
                    )
                elif attr.protected:
                    self.issue(
                        "FA175", f"`{name}` is protected; a rotation cannot change it", where
                    )
        if spec.rotation is not None and spec.rotation.bands is not None:
            cp._rotation_band = self.alloc_expr(
                cp,
                "allocation:rotation-band",
                "rotation-band",
                (*base, "rotation"),
                None,
                spec.rotation.bands,
                value_key="bands",
            )
        if spec.matching is not None:
            m = spec.matching
            ids = [r.id for r in m.resources]
            if len(set(ids)) != len(ids):
                self.issue(
                    "FA170", "resource ids must be distinct", (*base, "matching", "resources")
                )
            for i, res in enumerate(m.resources):
                cp._resources.append(
                    self.alloc_expr(
                        cp,
                        f"resource:{res.id}",
                        res.id,
                        (*base, "matching", "resources", str(i)),
                        res.eligible,
                        res.priority,
                    )
                )
            for i, name in enumerate(m.preferences):
                path: PathKey = (*base, "matching", "preferences", str(i))
                attr = self.p.attributes.get(name)
                if attr is None or attr.type != "category":
                    self.issue(
                        "FA171",
                        f"preference `{name}` must be a category attribute whose"
                        " levels are resource ids",
                        path,
                        hint=_suggest(name, self.p.attributes),
                    )
                elif stray := [lv for lv in attr.levels or () if lv not in ids and lv != "none"]:
                    for lv in stray:
                        # A misspelt resource would silently end a resident's list.
                        close = difflib.get_close_matches(lv, ids, n=1)
                        self.issue(
                            "FA172",
                            f"level `{lv}` of preference `{name}` is neither a resource id nor"
                            " `none`",
                            ("attributes", name, "levels", str((attr.levels or []).index(lv))),
                            hint=f"did you mean `{close[0]}`?"
                            if close
                            else "resources: " + ", ".join(ids),
                        )
                elif attr.protected:
                    self.issue(
                        "FA173",
                        f"preference `{name}` is protected; preferences are the"
                        " residents' own choices, not protected grounds",
                        path,
                    )

    def check_choices_unread(self, choices: list[str]) -> None:
        """Refuse any part of the policy that reads the residents' choices.

        Choices may only rank resources: a rule that reads them (a bonus for a first choice,
        say) would reward misreporting them and break strategy-proofness.
        """
        for part, paths in self.reads.items():
            for r in paths:
                if r.attribute in choices:
                    kind, name = part.split(":", 1)
                    self.issue(
                        "FA176",
                        f"{kind.replace('_', '-')} `{name}` reads the choice `{r.attribute}`"
                        f" (read path: {r}); choices may only rank resources",
                        self._doc_path(kind, name),
                        hint="priorities that depend on how a resident ranks resources reward"
                        " misreporting them",
                    )

    def alloc_expr(
        self,
        cp: CompiledPolicy,
        part: str,
        ident: str,
        doc: PathKey,
        when: str | bool | None,  # noqa: FBT001 - an expression, or a constant condition
        value: str | float | None,
        *,
        value_key: str = "priority",
    ) -> _AllocExpr:
        cond = val = None
        cond_nan = val_nan = False
        cw = cv = None
        if when is not None:
            cw = self.checked(when, (*doc, "eligible"), BOOL)
            if cw is not None:
                cond, cond_nan = compile_cond(cw.ir, cp._derived_nan)
        if value is not None:
            cv = self.checked(value, (*doc, value_key), None)
            if cv is not None and cv.type.kind == "bool":
                self.issue(
                    "FA174",
                    f"`{value_key}` must be a number or an ordinal, not a condition",
                    (*doc, value_key),
                    hint="write `1 if CONDITION else 0`",
                )
            elif cv is not None and cv.type.kind == "level" and not cv.type.ordered:
                self.issue(
                    "FA174",
                    f"`{value_key}` needs an order, but {cv.type} has none",
                    (*doc, value_key),
                )
            elif cv is not None:
                val, val_nan = compile_num(cv.ir, cp._derived_nan)
        self.note_reads(part, *(c for c, given in ((cw, when), (cv, value)) if given is not None))
        return _AllocExpr(ident, cond, cond_nan, val, val_nan, cp.span(doc))

    def compile_tie_breaks(self, cp: CompiledPolicy) -> None:
        for i, tb in enumerate(self.p.ranking.tie_break):
            path: PathKey = ("ranking", "tie_break", str(i))
            if tb.lottery is not None:
                cp._tie_breaks.append(
                    _TieBreak(
                        kernel=None,
                        nan=False,
                        descending=False,
                        seed=tb.lottery.seed,
                        label="lottery",
                        where=cp.span(path),
                    )
                )
                continue
            assert tb.by is not None
            c = self.checked(tb.by, (*path, "by"), None)
            self.note_reads(f"tie_break:{i}", c)
            if c is None:
                continue
            if c.type.kind == "bool":
                k, nan = _bool_as_number(c, cp._derived_nan)
            elif c.type.kind == "level" and not c.type.ordered:
                self.issue(
                    "FA160", f"a tie-break needs an order, but {c.type} has none", (*path, "by")
                )
                continue
            else:
                k, nan = compile_num(c.ir, cp._derived_nan)
            cp._tie_breaks.append(
                _TieBreak(
                    k,
                    nan,
                    tb.order == "desc",
                    None,
                    f"{tb.by} ({tb.order})",
                    cp.span(path),
                    c.ir.name if c.ir.op == "col" and c.type.kind != "bool" else None,
                )
            )

    # -- grounds (§2.1.1) --------------------------------------------------------------
    def check_grounds(self) -> list[PolicyIssue]:
        """Each ground the regulation names is carried by protected attributes or not collected.

        Errors: a ``ground`` on an attribute that is not protected (``FA310``); a ground stated
        as not collected that an attribute carries (``FA311``) or that is not one of
        :data:`~fairalloc.policy._model.GROUNDS` (``FA312``). Returns the warnings: a named
        ground the policy says nothing of (``FA313``).
        """
        carried: dict[str, list[str]] = {}
        for name, attr in self.p.attributes.items():
            if attr.ground is None:
                continue
            if not attr.protected:
                self.issue(
                    "FA310",
                    f"attribute `{name}` records the ground `{attr.ground}` but is not protected",
                    ("attributes", name, "ground"),
                    hint="add `protected: true` (a ground is what makes an attribute protected),"
                    " or remove `ground`",
                )
            carried.setdefault(attr.ground, []).append(name)
        for ground in self.p.grounds_not_collected:
            where: PathKey = ("grounds_not_collected", ground)
            if ground not in M.GROUNDS:
                close = difflib.get_close_matches(ground, M.GROUNDS, n=1)
                self.issue(
                    "FA312",
                    f"`{ground}` is not a ground the regulation names",
                    where,
                    hint=f"did you mean `{close[0]}`?"
                    if close
                    else "grounds: " + ", ".join(M.GROUNDS),
                )
            elif ground in carried:
                self.issue(
                    "FA311",
                    f"the ground `{ground}` is stated as not collected, but"
                    f" {', '.join(f'`{a}`' for a in carried[ground])} carries it",
                    where,
                    hint="remove it from `grounds_not_collected`, or the attribute's `ground`",
                )
        missing = [
            g for g in M.GROUNDS if g not in carried and g not in self.p.grounds_not_collected
        ]
        if not missing:
            return []
        return [
            PolicyIssue(
                "FA313",
                "the policy does not say which attributes carry the ground(s) "
                + ", ".join(f"`{g}`" for g in missing)
                + " of §2.1.1, or that they are not collected",
                self.smap.span(("attributes",)),
                "",
                "mark each attribute that records one `protected: true` with `ground: ...`,"
                " and list the others under `grounds_not_collected: {GROUND: why}`",
            )
        ]

    # -- justified uses ----------------------------------------------------------------
    def check_justified_uses(self) -> None:
        protected = set(self.p.protected_attributes)
        allowed: dict[tuple[str, str], M.JustifiedUse] = {}
        for i, use in enumerate(self.p.justified_uses):
            path: PathKey = ("justified_uses", str(i))
            if use.attribute not in self.p.attributes:
                self.issue(
                    "FA301",
                    f"justified use names unknown attribute `{use.attribute}`",
                    (*path, "attribute"),
                    hint=_suggest(use.attribute, self.p.attributes),
                )
                continue
            if use.attribute not in protected:
                self.issue(
                    "FA302",
                    f"`{use.attribute}` is not protected, so it needs no justified use",
                    (*path, "attribute"),
                    hint="mark it `protected: true` or remove this entry",
                )
                continue
            kind, name = use.target
            parts = self._parts_of(kind, name)
            if parts is None:
                self.issue(
                    "FA303",
                    f"justified use names unknown {kind.replace('_', '-')} `{name}`",
                    (*path, kind),
                    hint=_suggest(name, self._names_of(kind)),
                )
                continue
            reads_it = any(
                r.attribute == use.attribute for p in parts for r in self.reads.get(p, ())
            )
            # A part with an error of its own may read it once fixed: no second complaint.
            if not reads_it and not any(p in self.failed_parts for p in parts):
                self.issue(
                    "FA304",
                    f"{kind.replace('_', '-')} `{name}` does not read"
                    f" `{use.attribute}`, so this justified use allows nothing",
                    path,
                    hint="remove it, so the policy states only uses it makes",
                )
            for p in parts:
                allowed[(p, use.attribute)] = use
        for part, paths in self.reads.items():
            for r in paths:
                if r.attribute in protected and (part, r.attribute) not in allowed:
                    self._violation(part, r)

    def _violation(self, part: str, r: ReadPath) -> None:
        kind, name = part.split(":", 1)
        doc = self._doc_path(kind, name)
        what = {
            "grade": "grade table",
            "rule": "rule",
            "indicator": "indicator",
            "tie_break": "tie-break",
            "reserve": "reserve",
            "resource": "resource",
            "allocation": "allocation",
        }[kind]
        self.fairness.add(
            PolicyIssue(
                "FA300",
                f"{what} `{name}` reads protected attribute `{r.attribute}` (read path: {what}"
                f" `{name}` -> {r}) without a justified use",
                self.smap.span(doc),
                hint=f"add a `justified_uses` entry {{attribute: {r.attribute},"
                f" {kind}: {name}, why: ..., source: ...}} if the regulation allows it,"
                " or stop reading it",
            )
        )

    def _parts_of(self, kind: str, name: str) -> list[str] | None:
        if kind == "rule":
            ids = {
                r.id
                for sec in ("eligibility", "exclusions", "priority")
                for r in getattr(self.p.rules, sec)
            }
            return [f"rule:{name}"] if name in ids else None
        if kind == "tie_break":
            return [f"tie_break:{name}"] if int(name) < len(self.p.ranking.tie_break) else None
        if kind in ("reserve", "resource", "allocation"):
            return [f"{kind}:{name}"] if name in self._names_of(kind) else None
        indicators = list(_indicator_paths(self.p.scales))
        if kind == "indicator":
            return [f"indicator:{name}"] if name in indicators else None
        scales = set(_scale_paths(self.p.scales))
        if name not in scales:
            return None
        return [f"indicator:{i}" for i in indicators if i.startswith(name + ".")] + [
            p
            for p in self.reads
            if p.startswith("grade:") and (p + ".").startswith(f"grade:{name}.")
        ]

    def _names_of(self, kind: str) -> list[str]:
        if kind == "rule":
            return [
                r.id
                for sec in ("eligibility", "exclusions", "priority")
                for r in getattr(self.p.rules, sec)
            ]
        if kind == "indicator":
            return list(_indicator_paths(self.p.scales))
        if kind == "scale":
            return list(_scale_paths(self.p.scales))
        spec = self.p.allocation
        if kind == "reserve":
            return [r.id for r in spec.reserves] if spec else []
        if kind == "resource":
            return [r.id for r in spec.matching.resources] if spec and spec.matching else []
        if kind == "allocation":
            return [p.split(":", 1)[1] for p in self.reads if p.startswith("allocation:")]
        return [str(i) for i in range(len(self.p.ranking.tie_break))]

    def _doc_path(self, kind: str, name: str) -> PathKey:
        if kind == "rule":
            for sec in ("eligibility", "exclusions", "priority"):
                for i, r in enumerate(getattr(self.p.rules, sec)):
                    if r.id == name:
                        return ("rules", sec, str(i))
        if kind == "tie_break":
            return ("ranking", "tie_break", name)
        if kind == "reserve":
            return ("allocation", "reserves", str(self._names_of("reserve").index(name)))
        if kind == "resource":
            i = self._names_of("resource").index(name)
            return ("allocation", "matching", "resources", str(i))
        if kind == "allocation":
            return (
                ("allocation", "lottery")
                if name == "lottery-weight"
                else ("allocation", "rotation")
            )
        parts = name.split(".")
        doc: list[str] = ["scales", parts[0]]
        if kind == "grade":
            return (*doc, *(x for p in parts[1:] for x in ("scales", p)), "grade_table")
        for p in parts[1:-1]:
            doc += ["scales", p]
        doc += ["indicators", parts[-1]] if len(parts) > 1 else []
        return tuple(doc)


# -- helpers ----------------------------------------------------------------------------------

_MISSING = object()

#: Read paths kept per attribute for one part (see :meth:`_Builder.reads_of`).
MAX_READ_PATHS = 8


def _capped(paths: list[ReadPath]) -> list[ReadPath]:
    """``paths`` without repeats, and at most :data:`MAX_READ_PATHS` for each attribute."""
    out: list[ReadPath] = []
    seen: set[ReadPath] = set()
    per: dict[str, int] = {}
    for r in paths:
        if r in seen or per.get(r.attribute, 0) >= MAX_READ_PATHS:
            continue
        seen.add(r)
        per[r.attribute] = per.get(r.attribute, 0) + 1
        out.append(r)
    return out


def _same_value(a: object, b: object) -> bool:
    """Whether two parameter values are the same, type included (``1`` is not ``True``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return a is b or a == b


def _drop_weights(scales: dict[str, Any]) -> None:
    for scale in scales.values():
        scale.pop("weight", None)
        for ind in scale["indicators"].values():
            ind.pop("weight", None)
        _drop_weights(scale["scales"])


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _section(kind: str) -> str:
    return {
        "attribute": "attributes",
        "parameter": "parameters",
        "derived value": "derived",
        "scale": "scales",
    }[kind]


def _suggest(name: str, options: Mapping[str, object] | list[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"did you mean `{close[0]}`?" if close else ""


def _band_table(bands: list[M.Band] | list[M.Grade], values: list[float]) -> BandTable:
    inf = float("inf")
    lower = [
        b.min if b.min is not None else (b.above if b.above is not None else -inf) for b in bands
    ]
    upper = [
        b.max if b.max is not None else (b.below if b.below is not None else inf) for b in bands
    ]
    return BandTable(
        np.array(lower, dtype=np.float64),
        np.array([b.above is not None for b in bands]),
        np.array(upper, dtype=np.float64),
        np.array([b.below is not None for b in bands]),
        np.array(values, dtype=np.float64),
    )


def _bool_as_number(c: Checked, derived_nan: Mapping[str, bool]) -> tuple[NumKernel, bool]:
    """A condition used as a value (lookups on true/false, tie-breaks): 1.0 or 0.0."""
    kc, nan = compile_cond(c.ir, derived_nan)

    def as_number(f: object) -> np.ndarray | float:
        val, inv = kc(f)  # type: ignore[arg-type]
        out = np.asarray(val, dtype=np.float64)
        if inv is not None:
            out = np.where(inv, np.nan, out)
        return out if out.ndim else float(out)

    return as_number, nan


def _indicator_paths(scales: Mapping[str, M.Scale], prefix: str = "") -> Iterator[str]:
    for name, s in scales.items():
        path = f"{prefix}{name}"
        for iname in s.indicators:
            yield f"{path}.{iname}"
        yield from _indicator_paths(s.scales, path + ".")


def _scale_types(scales: Mapping[str, M.Scale], prefix: str = "") -> dict[str, Type | None]:
    """Each scale's path and the type of its grade (None when it has no grades)."""
    out: dict[str, Type | None] = {}
    for name, s in scales.items():
        path = f"{prefix}{name}"
        out[path] = (
            Type("level", f"grade({path})", tuple(g.grade for g in s.grades), ordered=True)
            if s.grades
            else None
        )
        out.update(_scale_types(s.scales, path + "."))
    return out


def _scale_paths(scales: Mapping[str, M.Scale], prefix: str = "") -> Iterator[str]:
    for name, s in scales.items():
        yield f"{prefix}{name}"
        yield from _scale_paths(s.scales, f"{prefix}{name}.")
