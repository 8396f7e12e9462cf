"""Policy analysis: what changes between two policies, in their text and for residents.

* :func:`policy_diff`: the structural difference of two policy documents, item by item.
* :func:`compare`: both policies applied to the same residents: eligibility, served status,
  ranks, scores by criterion and selection rates by group, before and after.
* :func:`sweep`: outcomes and group statistics over a grid of one or two parameters (or the
  capacity), re-evaluating only the parts that read them.
* :func:`sensitivity`: how often each resident is served when weights vary within ranges, and
  :func:`weight_margin`: the smallest weight change that moves a resident across the cut-off.
"""

from __future__ import annotations

from fairalloc.analysis._compare import (
    Comparison,
    ComparisonError,
    CriterionChange,
    CutoffChange,
    Mover,
    compare,
)
from fairalloc.analysis._diff import Change, Document, PolicyDiff, policy_diff
from fairalloc.analysis._rankcorr import kendall_tau_b, spearman_rho
from fairalloc.analysis._sensitivity import (
    Margin,
    Sensitivity,
    policy_weights,
    sensitivity,
    weight_margin,
    with_weights,
)
from fairalloc.analysis._sweep import (
    Sweep,
    SweepPoint,
    sweep,
    with_parameters,
)

__all__ = [
    "Change",
    "Comparison",
    "ComparisonError",
    "CriterionChange",
    "CutoffChange",
    "Document",
    "Margin",
    "Mover",
    "PolicyDiff",
    "Sensitivity",
    "Sweep",
    "SweepPoint",
    "compare",
    "kendall_tau_b",
    "policy_diff",
    "policy_weights",
    "sensitivity",
    "spearman_rho",
    "sweep",
    "weight_margin",
    "with_parameters",
    "with_weights",
]
