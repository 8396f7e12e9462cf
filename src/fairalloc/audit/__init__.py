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

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from fairalloc._compiler import CompiledPolicy, compiled_for
from fairalloc._engine import evaluate
from fairalloc._evaluation import Evaluation
from fairalloc._population import Population
from fairalloc._ranking import LotteryKeys, rank_with
from fairalloc.allocation import Allocation, allocate_evaluation
from fairalloc.audit._flip import (
    AffectedResident,
    AttributeFlips,
    FlipAudit,
    FlipResult,
    flip_audit,
    run_flip_audit,
)
from fairalloc.audit._groups import (
    GroupStatistics,
    ScaleAudit,
    group_bins,
    group_statistics,
    rate_ratio_interval,
    scale_audit,
    wilson_interval,
)
from fairalloc.audit._luck import Luck, luck
from fairalloc.audit._outcome import OutcomeProxies, measure_proxies, outcome_proxies
from fairalloc.audit._proxy import ProxyReport, correlation_ratio, cramers_v, proxy_check
from fairalloc.audit._report import AuditReport, data_hash, policy_hash
from fairalloc.audit._static import (
    AttributeProof,
    GroundLine,
    ProtectedRead,
    StaticProof,
    static_proof,
)
from fairalloc.errors import ArgumentError

_T = TypeVar("_T")

__all__ = [
    "AffectedResident",
    "AttributeFlips",
    "AttributeProof",
    "AuditReport",
    "FlipAudit",
    "FlipResult",
    "GroundLine",
    "GroupStatistics",
    "Luck",
    "OutcomeProxies",
    "ProtectedRead",
    "ProxyReport",
    "ScaleAudit",
    "StaticProof",
    "Thresholds",
    "audit",
    "correlation_ratio",
    "cramers_v",
    "flip_audit",
    "group_statistics",
    "luck",
    "outcome_proxies",
    "proxy_check",
    "rate_ratio_interval",
    "scale_audit",
    "static_proof",
    "wilson_interval",
]


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of the audit, each documented with why in ``docs/fairness.md``.

    Attributes:
        association: Cramér's V (or ``|r|``) from which an attribute is a proxy (0.3, a
            "medium" association).
        influence: The share of the score's variance from which a proxy matters (0.05).
        four_fifths: The ratio of a group's selection rate to the best-served group's below
            which it is flagged (0.8, the four-fifths rule).
        effect: The change of a protected group's selection rate, when an associated attribute
            is permuted, from which it is a proxy that moves outcomes (0.05).
        confidence: The level of every interval (0.95).
        min_group: The smallest group whose statistics are published (10).
        min_expected: The smallest expected count of selected, and of not selected, published
            (5).
    """

    association: float = 0.3
    influence: float = 0.05
    four_fifths: float = 0.8
    effect: float = 0.05
    confidence: float = 0.95
    min_group: int = 10
    min_expected: float = 5.0

    def __post_init__(self) -> None:
        checks = (
            ("association", 0.0 < self.association <= 1.0, "a number in (0, 1]"),
            ("influence", 0.0 < self.influence <= 1.0, "a number in (0, 1]"),
            ("four_fifths", 0.0 < self.four_fifths <= 1.0, "a number in (0, 1]"),
            ("effect", 0.0 < self.effect <= 1.0, "a number in (0, 1]"),
            ("confidence", 0.0 < self.confidence < 1.0, "a number in (0, 1)"),
            ("min_group", self.min_group >= 1, "a whole number of at least 1"),
            ("min_expected", self.min_expected >= 0.0, "a number of at least 0"),
        )
        for name, ok, valid in checks:
            if not ok:
                raise ArgumentError(
                    "FA623",
                    f"threshold {name} = {getattr(self, name)!r} is out of range",
                    argument=name,
                    value=getattr(self, name),
                    valid=valid,
                )

    def to_dict(self) -> dict[str, Any]:
        """As plain values (recorded in the audit report)."""
        return dataclasses.asdict(self)


def audit(
    policy: Any,
    residents: Any,
    *,
    capacity: int | None = None,
    strata: str | None = None,
    publication: bool = False,
    as_of: dt.date | None = None,
    thresholds: Thresholds | None = None,
    luck_seeds: int = 0,
    workers: int | None = None,
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
        thresholds: The audit's thresholds (:class:`Thresholds`; the documented defaults when
            not given).
        luck_seeds: With a lottery and an allocation, measure over this many seeds how much
            each group's selection rate depends on the draw (a ``luck`` section, for review;
            see :func:`luck`). 0, the default, leaves it out. Not with ``publication``: its
            rows give each group's size and rates, which the published group statistics
            suppress for small groups.
        workers: Threads working on the layers and on the flip audit's values at once (they
            are independent, and NumPy works outside Python's lock); by default the machine's
            cores, at most 4. 1 runs them one after another. The report is the same whatever
            the number.

    Returns:
        The :class:`AuditReport`; ``report.ok`` is false when a verdict layer failed.

    Raises:
        ArgumentError: ``FA625`` when ``luck_seeds`` is asked together with ``publication``;
            ``FA600`` for ``workers`` below 1.
    """
    if luck_seeds and publication:
        raise ArgumentError(
            "FA625",
            "luck is for review, not publication: its rows give each group's size and"
            " selection rates, which the published group statistics suppress for small groups",
            argument="luck_seeds",
            value=luck_seeds,
            valid="luck_seeds=0 with publication=True, or a review report (publication=False)",
        )
    if workers is not None and workers < 1:
        raise ArgumentError(
            "FA600", f"workers must be at least 1, got {workers}", argument="workers", value=workers
        )
    threads = workers if workers is not None else min(4, os.cpu_count() or 1)
    t = thresholds if thresholds is not None else Thresholds()
    if isinstance(policy, CompiledPolicy):
        compiled = policy
    else:
        compiled = compiled_for(policy, as_of, audit=True)
    population = Population.load(residents, compiled.policy)
    # In id order, so that every statistic (sums of floats included) is the same, to the bit,
    # whatever order the residents came in.
    population = population.take(population.id_column.sort_order())
    ev = evaluate(compiled, population)
    pool = (
        ThreadPoolExecutor(threads, thread_name_prefix="fairalloc-audit") if threads > 1 else None
    )
    try:
        report, outcome = _layers(
            compiled, population, ev, capacity, strata, t, publication=publication, pool=pool
        )
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if luck_seeds and isinstance(outcome, Allocation) and _draws_lots(compiled):
        report.sections.append(("luck", luck(outcome, seeds=luck_seeds, min_group=t.min_group)))
    report.publication = publication
    return report


def _layers(
    compiled: CompiledPolicy,
    population: Population,
    ev: Evaluation,
    capacity: int | None,
    strata: str | None,
    t: Thresholds,
    *,
    publication: bool,
    pool: Executor | None,
) -> tuple[AuditReport, Evaluation | Allocation]:
    """Every layer of :func:`audit` but luck: the report and the outcome audited.

    With a pool, the layers that read the evaluation alone start before the allocation, those
    that read the allocation after it, and the flip audit's values are handed out with them;
    each section is then taken in its place. Without one, they run one after another.
    """
    spec = compiled.policy.allocation
    outcome: Evaluation | Allocation = ev
    units = capacity if capacity is not None else (spec.capacity if spec else None)
    if strata is None and compiled.graded_scales:
        strata = compiled.graded_scales[0].path
    # The layers that read the evaluation alone run one after another in one thread while
    # this one allocates: the allocation, which the flip audit waits for, keeps a core.
    early = _later(pool, _evaluation_layers, ev, strata, t)
    # A resident's lottery key depends on the seed and the id alone: the allocation, the flip
    # audit and the proxies' permutations draw each one once, together. With threads, one
    # draws them all ahead (hashing, under Python's lock) while this one allocates (NumPy,
    # mostly outside it).
    seed = compiled.lottery_seed
    keys = LotteryKeys(population.id_column) if seed is not None else None
    drawing = None
    if keys is not None and seed is not None:
        if pool is not None:
            drawing = pool.submit(keys.draw_all, seed)
        rank_with(ev, keys)
    if units is not None and spec is not None and spec.matching is None and spec.rotation is None:
        outcome = allocate_evaluation(ev, capacity=units, measure_only=True)
    moved = _later(
        pool,
        measure_proxies,
        outcome,
        association=t.association,
        effect=t.effect,
        rounds=None,
        min_group=t.min_group,
        seed=0,
        keys=keys,
    )
    # Published groups of numbers and dates are bounded by the population's quartiles, not
    # labelled by the smallest and largest value in them (which are residents' values).
    bins = (
        group_bins(population, list(population.schema.protected_attributes))
        if publication
        else None
    )
    groups = _later(
        pool,
        group_statistics,
        outcome,
        strata=strata,
        bins=bins,
        confidence=t.confidence,
        min_group=t.min_group,
        min_expected=t.min_expected,
        four_fifths=t.four_fifths,
    )
    flips = run_flip_audit(ev, units, pool, keys)
    hashed, proxies, scales = early()
    if drawing is not None:
        drawing.result()
    report = AuditReport(ev)
    meta = compiled.policy.policy
    title = meta.title if isinstance(meta.title, str) else meta.title.get("en", meta.id)
    report.meta = {
        "policy_id": meta.id,
        "policy_version": meta.version,
        "policy_title": title,
        "policy_hash": policy_hash(ev),
        "data_hash": hashed,
        "residents": ev.n,
        "eligible": int(ev.eligible.sum()),
        "capacity": units,
        "lottery_seed": compiled.lottery_seed,
        "strata": strata,
        "as_of": compiled.as_of.isoformat() if compiled.as_of else None,
        "thresholds": t.to_dict(),
    }
    report.violations = [str(v) for v in compiled.violations]
    report.sections.append(("static proof", static_proof(compiled)))
    report.sections.append(("flip audit", _PublishedFlips(flips) if publication else flips))
    report.sections.append(("proxies", proxies))
    found = moved()
    report.sections.append(("proxy outcomes", _PublishedMoves(found) if publication else found))
    grouped = groups()
    report.sections.append(("group statistics", _Review(grouped, publication=publication)))
    scaled = scales
    report.sections.append(
        ("scale audit", _PublishedScales(scaled, grouped) if publication else _Review(scaled))
    )
    return report, outcome


def _evaluation_layers(
    ev: Evaluation, strata: str | None, t: Thresholds
) -> tuple[str, ProxyReport, ScaleAudit]:
    """The data hash, the proxy check and the scale audit: what reads the evaluation alone."""
    return (
        data_hash(ev),
        proxy_check(ev, association_threshold=t.association, influence_threshold=t.influence),
        scale_audit(ev, strata=strata, min_group=t.min_group, confidence=t.confidence),
    )


def _later(
    pool: Executor | None, fn: Callable[..., _T], *args: Any, **kwargs: Any
) -> Callable[[], _T]:
    """``fn(*args, **kwargs)`` in ``pool`` (its result when asked for), or now without one."""
    if pool is None:
        value = fn(*args, **kwargs)
        return lambda: value
    return pool.submit(fn, *args, **kwargs).result


def _draws_lots(cp: CompiledPolicy) -> bool:
    spec = cp.policy.allocation
    return cp.lottery_seed is not None or (spec is not None and spec.lottery is not None)


class _Review:
    """A section whose findings are for review: shown, never failing the report."""

    def __init__(self, section: Any, *, publication: bool = False) -> None:
        self.section = section
        self.publication = publication
        self.ok = True

    def findings(self) -> int:
        """How many findings for review the section's tables mark."""
        if isinstance(self.section, GroupStatistics):
            if self.publication:
                return len(self.section.publication()["disparities"])
            return len(self.section.disparities)
        return len(self.section.flags)

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


class _PublishedMoves:
    """Proxies judged by outcomes, as published: verdicts and effects, no group's size or rate."""

    def __init__(self, moved: OutcomeProxies) -> None:
        self.moved = moved
        self.ok = moved.ok
        self.rows = moved.rows

    def findings(self) -> int:
        return self.moved.findings()

    def to_dict(self) -> dict[str, Any]:
        return self.moved.to_dict(publication=True)

    def to_markdown(self) -> str:
        return self.moved.to_markdown()


class _PublishedFlips:
    """The flip audit as published: each attribute's verdict, no resident and no count.

    Counts of residents per value tried would give the sizes of small groups back (the
    residents compared are those whose value differed); the list of affected residents would
    give their attributes away (a resident listed under every hardship level but one has that
    one). The verdict and the parts responsible are what the public needs.
    """

    def __init__(self, flips: FlipAudit) -> None:
        self.flips = flips
        self.ok = flips.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": {"id": self.flips.policy_id, "version": self.flips.policy_version},
            "ok": self.ok,
            "independent": self.flips.independent,
            "attributes": [
                {
                    "attribute": a.attribute,
                    "status": a.status,
                    "evaluated": a.evaluated,
                    "parts": list(a.parts),
                    "unjustified_parts": list(a.unjustified_parts),
                    "note": a.note,
                }
                for a in self.flips.attributes
            ],
            "publication": True,
        }

    def to_markdown(self) -> str:
        lines = [
            "## Counterfactual flip audit",
            "",
            "Each protected attribute was changed for one resident at a time, to every other"
            " value, all else equal, and the policy re-run. Published: whether any outcome"
            " changed, and through which parts; counts and residents are not published.",
            "",
            "| attribute | status | finding |",
            "|---|---|---|",
        ]
        for a in self.flips.attributes:
            status = "**violation**" if a.status == "violation" else a.status
            note = a.note.replace("|", "\\|")
            finding = f"**{note}**" if a.unjustified_parts else note
            lines.append(f"| `{a.attribute}` | {status} | {finding} |")
        lines.append("")
        lines.append(
            "**Result:** no outcome changes through a part without a justified use."
            if self.ok
            else "**Result:** outcomes change through parts without a justified use."
        )
        return "\n".join(lines) + "\n"


class _PublishedScales:
    """The scale audit as published: only cells whose group is published, in published strata.

    A group's mean points are shown only where the group statistics publish the same group
    (same residents: the eligible, within the same grade), and a grade's tables only where the
    grade's total is published, so that no mean describes a suppressed handful of residents.
    """

    def __init__(self, scales: ScaleAudit, groups: GroupStatistics) -> None:
        self.scales = scales
        self.groups = groups
        self.ok = True
        pub = groups.publication()
        aligned = groups.base == scales.among and groups.strata == scales.strata
        shown = {
            (r["grouping"], r["stratum"] or "all", r["group"])
            for r in pub["rows"]
            if aligned and not r["suppressed"] and len(r["attributes"]) == 1
        }
        strata_ok = {
            o["stratum"] or "all" for o in pub["overall"] if not o["suppressed"] and aligned
        }
        rows = [
            r
            for r in scales.rows
            if (r["attribute"], r["stratum"], r["group"]) in shown and r["stratum"] in strata_ok
        ]
        self.published = ScaleAudit(
            rows,
            strata=scales.strata,
            among=scales.among,
            threshold=scales.threshold,
            min_group=scales.min_group,
            confidence=scales.confidence,
        )
        self.aligned = aligned

    def findings(self) -> int:
        return len(self.published.flags)

    def to_dict(self) -> dict[str, Any]:
        d = self.published.to_dict()
        d["for_review"] = True
        d["publication"] = True
        return d

    def to_markdown(self) -> str:
        text = self.published.to_markdown()
        note = (
            "Published only for groups and grades whose selection statistics are published."
            if self.aligned
            else "Not published: the group statistics compare other residents, so no cell of"
            " this audit can be checked against their suppression."
        )
        head, _, rest = text.partition("\n\n")
        return f"{head}\n\n{note}\n\n{rest}"
