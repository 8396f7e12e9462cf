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

from fairalloc._compiler import CompiledPolicy, ReadPath, compile_policy
from fairalloc._engine import evaluate
from fairalloc._evaluation import Evaluation
from fairalloc._population import Population
from fairalloc._ranking import Ranking, lottery_key, rank
from fairalloc.allocation import Allocation, Cutoff, allocate
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
    SourceSpan,
    UsageError,
)
from fairalloc.explain import Contrast, Explanation, contrast, explain, export_explanations
from fairalloc.policy import Policy, json_schema, load_policy, parse_policy

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
    "ResourceCutoff",
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
    "sensitivity",
    "simulate",
    "sweep",
]
