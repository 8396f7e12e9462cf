"""fairalloc: allocation policies as data, evaluated fast, explained, and checked for fairness.

A notebook session needs only a few names::

    import fairalloc as fa

    policy = fa.load_policy("examples/elderly-care/policy.yaml")
    result = fa.evaluate(policy, "examples/elderly-care/residents.csv")
    result.ranking.to_pandas()
    fa.allocate(result).explain("R0000003").to_text("zh-CN")

Everything public is listed in ``__all__``; modules whose names start with ``_`` are internal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fairalloc import _engine
from fairalloc._compiler import CompiledPolicy, ReadPath, compile_policy
from fairalloc._evaluation import Evaluation
from fairalloc._population import Population
from fairalloc._ranking import Ranking, lottery_key, rank
from fairalloc.allocation import Allocation, Cutoff
from fairalloc.allocation import allocate_evaluation as _allocate_evaluation
from fairalloc.allocation._matching import MatchingResult, ResourceCutoff, match
from fairalloc.allocation._rotation import Simulation, simulate
from fairalloc.analysis import (
    Comparison,
    PolicyDiff,
    Sensitivity,
    Sweep,
    compare,
    policy_diff,
    sensitivity,
    sweep,
)
from fairalloc.errors import (
    EvaluationError,
    FairallocError,
    FairnessViolation,
    PolicyError,
    PolicyIssue,
    PopulationError,
    PopulationIssue,
    SourceSpan,
)
from fairalloc.explain import Contrast, Explanation, contrast, explain, export_explanations
from fairalloc.policy import Policy, json_schema, load_policy, parse_policy

__version__ = "0.1.0"

__all__ = [
    "Allocation",
    "Comparison",
    "CompiledPolicy",
    "Contrast",
    "Cutoff",
    "Evaluation",
    "EvaluationError",
    "Explanation",
    "FairallocError",
    "FairnessViolation",
    "MatchingResult",
    "Policy",
    "PolicyDiff",
    "PolicyError",
    "PolicyIssue",
    "Population",
    "PopulationError",
    "PopulationIssue",
    "Ranking",
    "ReadPath",
    "ResourceCutoff",
    "Sensitivity",
    "Simulation",
    "SourceSpan",
    "Sweep",
    "__version__",
    "allocate",
    "compare",
    "compile_policy",
    "contrast",
    "evaluate",
    "explain",
    "export_explanations",
    "json_schema",
    "load_policy",
    "lottery_key",
    "match",
    "parse_policy",
    "policy_diff",
    "rank",
    "sensitivity",
    "simulate",
    "sweep",
]


def evaluate(
    policy: Policy | CompiledPolicy,
    residents: Population | Any,
    *,
    as_of: dt.date | None = None,
    chunk_size: int = _engine.DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
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
    if isinstance(policy, CompiledPolicy):
        if as_of is not None and as_of != policy.as_of:
            raise ValueError("as_of applies when compiling; compile the policy with it")
        compiled = policy
    else:
        compiled = _compiled(policy, as_of)
    population = Population.of(residents, compiled.policy)
    return _engine.evaluate_compiled(compiled, population, chunk_size=chunk_size, progress=progress)


def _compiled(policy: Policy, as_of: dt.date | None) -> CompiledPolicy:
    # Compiling is cheap but not free; a policy keeps its compilations by date.
    cache: dict[dt.date | None, CompiledPolicy] | None = policy._compiled
    if cache is None:
        cache = {}
        policy._compiled = cache
    if as_of not in cache:
        cache[as_of] = compile_policy(policy, as_of=as_of)
    return cache[as_of]


def allocate(
    source: Evaluation | Policy | CompiledPolicy,
    residents: Population | Any = None,
    *,
    capacity: int | None = None,
) -> Allocation:
    """Allocate the policy's units: by priority or lottery, with its reserve categories.

    Args:
        source: An :class:`Evaluation`, or a policy (then ``residents`` is evaluated first).
        residents: The residents, when ``source`` is a policy (see :func:`evaluate`).
        capacity: Units to allocate; by default the policy's ``allocation.capacity``.

    Returns:
        The :class:`Allocation`: who is served, in which category, and each category's cut-off.

    Raises:
        ValueError: if the policy has no allocation section or no capacity is known.

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
        ... allocation: {capacity: 1}
        ... ''')
        >>> fa.allocate(policy, [{"id": "a", "need": 3}, {"id": "b", "need": 7}]).served_ids()
        ['b']
    """
    if isinstance(source, Evaluation):
        if residents is not None:
            raise TypeError("residents are given with a policy, not with an evaluation")
        evaluation = source
    else:
        if residents is None:
            raise TypeError("give the residents to allocate among")
        evaluation = evaluate(source, residents)
    return _allocate_evaluation(evaluation, capacity=capacity)
