"""Policy analysis: what changes between two policies, in their text and for residents.

* :func:`policy_diff`: the structural difference of two policy documents, item by item.
* :func:`compare`: both policies applied to the same residents: eligibility, served status,
  ranks, scores by criterion and selection rates by group, before and after.

The ``diff`` command of the command line is built from :func:`add_diff_parser` and
:func:`run_diff`.
"""

from __future__ import annotations

from fairalloc.analysis._compare import (
    Comparison,
    ComparisonError,
    CriterionChange,
    CutoffChange,
    Mover,
    add_diff_parser,
    compare,
    kendall_tau_b,
    run_diff,
    spearman_rho,
)
from fairalloc.analysis._diff import Change, Document, PolicyDiff, policy_diff

__all__ = [
    "Change",
    "Comparison",
    "ComparisonError",
    "CriterionChange",
    "CutoffChange",
    "Document",
    "Mover",
    "PolicyDiff",
    "add_diff_parser",
    "compare",
    "kendall_tau_b",
    "policy_diff",
    "run_diff",
    "spearman_rho",
]
