"""Fairness you can verify: static proof, counterfactual flips, proxies, group statistics.

Every layer reads what the engine computed (compiled reads, evaluations, allocations) and
re-runs the same :func:`fairalloc.evaluate` on changed columns where it needs a counterfactual;
none re-implements rule semantics. :func:`audit` runs them all and returns one report.

Verdicts and findings: the static proof and the flip audit are *verdicts* (a protected attribute
read or deciding without a justified use is a failure), and so are flagged proxies; group
disparities and scale-audit differences are *findings for review*, because allocation by need
may legitimately differ between groups (§2.3.3).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from fairalloc._compiler import CompiledPolicy, compiled_for
from fairalloc._engine import evaluate
from fairalloc._population import Population
from fairalloc.allocation import allocate_evaluation
from fairalloc.audit._flip import (
    AffectedResident,
    AttributeFlips,
    FlipAudit,
    FlipResult,
    flip_audit,
)
from fairalloc.audit._groups import (
    GroupStatistics,
    ScaleAudit,
    group_statistics,
    rate_ratio_interval,
    scale_audit,
    wilson_interval,
)
from fairalloc.audit._proxy import ProxyReport, correlation_ratio, cramers_v, proxy_check
from fairalloc.audit._report import AuditReport, data_hash, policy_hash
from fairalloc.audit._static import AttributeProof, ProtectedRead, StaticProof, static_proof

__all__ = [
    "AffectedResident",
    "AttributeFlips",
    "AttributeProof",
    "AuditReport",
    "FlipAudit",
    "FlipResult",
    "GroupStatistics",
    "ProtectedRead",
    "ProxyReport",
    "ScaleAudit",
    "StaticProof",
    "audit",
    "correlation_ratio",
    "cramers_v",
    "flip_audit",
    "group_statistics",
    "proxy_check",
    "rate_ratio_interval",
    "scale_audit",
    "static_proof",
    "wilson_interval",
]


def audit(
    policy: Any,
    residents: Any,
    *,
    capacity: int | None = None,
    strata: str | None = None,
    publication: bool = False,
    as_of: dt.date | None = None,
) -> AuditReport:
    """Audit a policy on a population with every layer, as one report.

    Args:
        policy: A :class:`~fairalloc.Policy` (compiled for audit, so a policy that reads
            protected attributes without justified uses can be measured) or a compiled policy.
        residents: Anything :func:`fairalloc.evaluate` accepts.
        capacity: Units to allocate for the outcome statistics and served-status flips; by
            default the policy's ``allocation.capacity``. Without one, outcomes are eligibility.
        strata: A graded scale whose grades are the need strata (default: the policy's first
            graded scale, if any).
        publication: Suppress small cells in the group statistics, as for publication.
        as_of: The date whose parameter values apply.

    Returns:
        The :class:`AuditReport`; ``report.ok`` is false when a verdict layer failed.
    """
    if isinstance(policy, CompiledPolicy):
        compiled = policy
    else:
        compiled = compiled_for(policy, as_of, audit=True)
    population = Population.load(residents, compiled.policy)
    # In id order, so that every statistic (sums of floats included) is the same, to the bit,
    # whatever order the residents came in.
    population = population.take(np.argsort(population.ids.astype(str), kind="stable"))
    ev = evaluate(compiled, population)
    spec = compiled.policy.allocation
    outcome: Any = ev
    units = capacity if capacity is not None else (spec.capacity if spec else None)
    if units is not None and spec is not None and spec.matching is None and spec.rotation is None:
        outcome = allocate_evaluation(ev, capacity=units, measure_only=True)
    if strata is None and compiled.graded_scales:
        strata = compiled.graded_scales[0].path
    report = AuditReport(ev)
    meta = compiled.policy.policy
    title = meta.title if isinstance(meta.title, str) else meta.title.get("en", meta.id)
    report.meta = {
        "policy_id": meta.id,
        "policy_version": meta.version,
        "policy_title": title,
        "policy_hash": policy_hash(ev),
        "data_hash": data_hash(ev),
        "residents": ev.n,
        "eligible": int(ev.eligible.sum()),
        "capacity": units,
        "lottery_seed": compiled.lottery_seed,
        "strata": strata,
        "as_of": compiled.as_of.isoformat() if compiled.as_of else None,
    }
    report.violations = [str(v) for v in compiled.violations]
    report.sections.append(("static proof", static_proof(compiled)))
    report.sections.append(("flip audit", flip_audit(ev, capacity=units)))
    report.sections.append(("proxies", proxy_check(ev)))
    groups = group_statistics(outcome, strata=strata)
    report.sections.append(("group statistics", _Review(groups, publication=publication)))
    report.sections.append(("scale audit", _Review(scale_audit(ev, strata=strata))))
    return report


class _Review:
    """A section whose findings are for review: shown, never failing the report."""

    def __init__(self, section: Any, *, publication: bool = False) -> None:
        self.section = section
        self.publication = publication
        self.ok = True

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = (
            self.section.to_dict(publication=True) if self.publication else self.section.to_dict()
        )
        d["for_review"] = True
        return d

    def to_markdown(self) -> str:
        text: str = (
            self.section.to_markdown(publication=True)
            if self.publication
            else self.section.to_markdown()
        )
        return text
