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

import sys
import types
from typing import TYPE_CHECKING, Any

from fairalloc.errors import (
    AllocationError,
    AllocationReason,
    ArgumentError,
    ArgumentTypeError,
    ComparisonError,
    EvaluationError,
    FairallocError,
    FairnessViolation,
    MissingDependency,
    PolicyError,
    PolicyIssue,
    PopulationError,
    PopulationIssue,
    ReviewError,
    RotationStateError,
    SourceSpan,
    UsageError,
)

if TYPE_CHECKING:  # what the names below are; they load on first use
    from fairalloc._compiler import CompiledPolicy, ReadPath, compile_policy
    from fairalloc._engine import evaluate
    from fairalloc._evaluation import Evaluation
    from fairalloc._ids import IdColumn
    from fairalloc._population import Population
    from fairalloc._ranking import Ranking, lottery_key, rank
    from fairalloc.allocation import Allocation, Cutoff, allocate
    from fairalloc.allocation._matching import MatchingResult, ResourceCutoff, match
    from fairalloc.allocation._rotation import Round, Simulation, run_round, simulate
    from fairalloc.allocation._state import ResidentState, RotationState
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
    from fairalloc.explain import Contrast, Explanation, contrast, explain, export_explanations
    from fairalloc.policy import Policy, json_schema, load_policy, parse_policy

#: Public names imported when first used, so that ``import fairalloc`` (and the
#: command line's ``--version``) does not load the engine, analysis and renderers.
_LAZY: dict[str, str] = {
    "allocate": "fairalloc.allocation",
    "Allocation": "fairalloc.allocation",
    "compare": "fairalloc.analysis",
    "Comparison": "fairalloc.analysis",
    "compile_policy": "fairalloc._compiler",
    "CompiledPolicy": "fairalloc._compiler",
    "Contrast": "fairalloc.explain",
    "contrast": "fairalloc.explain",
    "Cutoff": "fairalloc.allocation",
    "evaluate": "fairalloc._engine",
    "Evaluation": "fairalloc._evaluation",
    "explain": "fairalloc.explain",
    "Explanation": "fairalloc.explain",
    "IdColumn": "fairalloc._ids",
    "export_explanations": "fairalloc.explain",
    "json_schema": "fairalloc.policy",
    "load_policy": "fairalloc.policy",
    "lottery_key": "fairalloc._ranking",
    "match": "fairalloc.allocation._matching",
    "MatchingResult": "fairalloc.allocation._matching",
    "parse_policy": "fairalloc.policy",
    "Policy": "fairalloc.policy",
    "policy_diff": "fairalloc.analysis",
    "PolicyDiff": "fairalloc.analysis",
    "Population": "fairalloc._population",
    "rank": "fairalloc._ranking",
    "Ranking": "fairalloc._ranking",
    "ReadPath": "fairalloc._compiler",
    "ResourceCutoff": "fairalloc.allocation._matching",
    "Sensitivity": "fairalloc.analysis",
    "sensitivity": "fairalloc.analysis",
    "simulate": "fairalloc.allocation._rotation",
    "Simulation": "fairalloc.allocation._rotation",
    "Round": "fairalloc.allocation._rotation",
    "run_round": "fairalloc.allocation._rotation",
    "RotationState": "fairalloc.allocation._state",
    "ResidentState": "fairalloc.allocation._state",
    "Sweep": "fairalloc.analysis",
    "sweep": "fairalloc.analysis",
}

__version__ = "0.1.0"

__all__ = [
    "Allocation",
    "AllocationError",
    "AllocationReason",
    "ArgumentError",
    "ArgumentTypeError",
    "Comparison",
    "ComparisonError",
    "CompiledPolicy",
    "Contrast",
    "Cutoff",
    "Evaluation",
    "EvaluationError",
    "Explanation",
    "FairallocError",
    "FairnessViolation",
    "IdColumn",
    "MatchingResult",
    "MissingDependency",
    "Policy",
    "PolicyDiff",
    "PolicyError",
    "PolicyIssue",
    "Population",
    "PopulationError",
    "PopulationIssue",
    "Ranking",
    "ReadPath",
    "ResidentState",
    "ResourceCutoff",
    "ReviewError",
    "RotationState",
    "RotationStateError",
    "Round",
    "Sensitivity",
    "Simulation",
    "SourceSpan",
    "Sweep",
    "UsageError",
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
    "run_round",
    "sensitivity",
    "simulate",
    "sweep",
]


#: Public subpackages, loaded when first named (``fa.analysis.with_parameters``).
_SUBPACKAGES = frozenset(
    {"allocation", "analysis", "audit", "cli", "plot", "policy", "records", "testing"}
)


def __getattr__(name: str) -> Any:
    import importlib

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'fairalloc' has no attribute {name!r}")
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Facade(types.ModuleType):
    """The package module: ``fairalloc.explain`` stays the function when its subpackage loads.

    Importing a subpackage sets it as an attribute of its parent; the function
    :func:`fairalloc.explain.explain` shares its subpackage's name, so that setting is kept off
    the public name (the subpackage stays reachable through ``sys.modules`` and ``import``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade
