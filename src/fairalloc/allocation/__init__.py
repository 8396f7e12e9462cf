"""Allocation mechanisms: priority with capacity, published-seed lotteries, reserve categories.

They read the :class:`~fairalloc.Evaluation` (eligibility, scores, ranking and the allocation
inputs the engine evaluated); they never evaluate rules themselves.
"""

from __future__ import annotations

from typing import Any

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._evaluation import Evaluation
from fairalloc._population import Population
from fairalloc.allocation._capacity import allocate_units, category_sizes
from fairalloc.allocation._result import Allocation, Cutoff
from fairalloc.errors import AllocationError, AllocationReason, ArgumentError, ArgumentTypeError
from fairalloc.policy._model import AllocationSpec, Policy

__all__ = ["Allocation", "Cutoff", "allocate", "allocate_evaluation"]


def allocate_evaluation(
    evaluation: Evaluation, *, capacity: int | None = None, measure_only: bool = False
) -> Allocation:
    """Allocate units among the residents of ``evaluation`` by the policy's mechanism.

    Args:
        evaluation: The evaluation to allocate from.
        capacity: Units to allocate; by default the policy's ``allocation.capacity`` (a
            different capacity is the usual what-if; reserve shares follow it).
        measure_only: For audits: allocate even with a policy loaded for audit only, to
            measure what it would do (the result must never be used as a decision).

    Raises:
        ValueError: if the policy has no allocation section, if no capacity is known, or if
            the reserves exceed it.
    """
    if not measure_only:
        evaluation.policy.refuse_if_audit_only("allocate")
    spec: AllocationSpec | None = evaluation.policy.policy.allocation
    if spec is None:
        raise AllocationError(
            "FA650", AllocationReason.NO_SECTION, "the policy has no `allocation` section"
        )
    if spec.matching is not None:
        raise AllocationError(
            "FA651",
            AllocationReason.OTHER_MECHANISM,
            "this policy allocates by matching: use fairalloc.match()",
        )
    units = capacity if capacity is not None else spec.capacity
    if units is None:
        raise AllocationError(
            "FA654",
            AllocationReason.NO_CAPACITY,
            "no capacity: give capacity= or `allocation.capacity` in the policy",
        )
    if units < 0:
        raise ArgumentError(
            "FA601", f"capacity must be at least 0, got {units}", argument="capacity", value=units
        )
    cats = category_sizes(spec, units)
    result = allocate_units(evaluation, spec, units)
    return Allocation(
        evaluation,
        spec.mechanism,
        units,
        cats.ids,
        cats.sizes,
        result.category,
        result.base_order,
        result.lottery_key,
        result.lottery_draw,
        result.lapsed,
        result.reverted,
    )


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
            raise ArgumentTypeError(
                "FA641",
                "residents are given with a policy, not with an evaluation",
                argument="residents",
            )
        evaluation = source
    else:
        if residents is None:
            raise ArgumentTypeError(
                "FA642", "give the residents to allocate among", argument="residents"
            )
        evaluation = evaluate(source, residents)
    return allocate_evaluation(evaluation, capacity=capacity)
