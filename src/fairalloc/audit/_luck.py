"""Luck, measured: how much each protected group's outcome depends on the lottery's seed.

A lottery is fair in expectation, but one draw can favour a group by chance. This measures it:
for many seeds (``seeds``, 200 by default, derived from ``base`` as ``base/1``, ``base/2``...),
which residents a draw serves, and each protected group's selection rate under each. The spread
(standard deviation, 5th to 95th percentile, lowest and highest) says how much of a group's
rate in one published draw is luck; the published seed's own rate is placed in that range.

For a lottery mechanism without reserve categories the policy is evaluated once: each seed only
recomputes the keys (and, for a weighted lottery, the draws) of the eligible residents and
takes the first ``capacity`` of them, as the allocation does (:mod:`fairalloc.allocation.
_lottery`). Any other use of a lottery (a lottery tie-break of a priority ranking, reserve
categories) re-runs evaluation and allocation per seed, with the seed replaced as a recorded
draw would replace it (:meth:`fairalloc.Policy.with_lottery_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fairalloc._engine import evaluate
from fairalloc.allocation import Allocation, allocate_evaluation
from fairalloc.allocation._lottery import lottery_order
from fairalloc.audit._groups import _code_attribute, group_bins
from fairalloc.errors import ArgumentError

__all__ = ["Luck", "luck"]


@dataclass
class Luck:
    """The spread of protected groups' selection rates over lottery seeds.

    Attributes:
        seeds: Seeds drawn.
        method: ``keys only`` (the policy evaluated once) or ``re-run per seed``.
        rows: One record per protected attribute and group: ``attribute``, ``group``, ``n``,
            ``published`` (the rate under the policy's own seed), ``mean``, ``sd``, ``p5``,
            ``p95``, ``low``, ``high``.
        min_group: Groups with fewer residents are left out.
    """

    seeds: int
    method: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    min_group: int = 10

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "seeds": self.seeds,
            "method": self.method,
            "min_group": self.min_group,
            "rows": self.rows,
        }

    def to_markdown(self) -> str:
        """A section of the audit report."""
        lines = [
            "## Luck: group outcomes over lottery seeds",
            "",
            f"Each protected group's share served under {self.seeds} seeds ({self.method}):"
            " the published seed's rate, and the spread a different draw would have given.",
            "",
            "| attribute | group | residents | published | mean | sd | 5%–95% |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| `{r['attribute']}` | {r['group']} | {r['n']} | {r['published']:.3f} |"
                f" {r['mean']:.3f} | {r['sd']:.3f} | {r['p5']:.3f}–{r['p95']:.3f} |"
            )
        return "\n".join(lines) + "\n"


def luck(
    allocation: Allocation, *, seeds: int = 200, base: str = "luck", min_group: int = 10
) -> Luck:
    """How much each protected group's selection rate depends on the lottery's seed.

    Args:
        allocation: An allocation under a policy that draws lots (a lottery mechanism or a
            lottery tie-break), holding its residents.
        seeds: How many seeds to draw.
        base: The seeds are ``base/1`` to ``base/seeds``.
        min_group: Groups with fewer residents are left out.

    Returns:
        The :class:`Luck`.

    Raises:
        ArgumentError: ``FA624`` when the policy draws no lots, or ``seeds`` is below 2.
    """
    ev = allocation.evaluation
    cp = ev.policy
    spec = cp.policy.allocation
    pop = ev.population
    if pop is None:
        raise ArgumentError("FA610", "the evaluation does not hold its residents")
    uses_lottery = cp.lottery_seed is not None or (spec is not None and spec.lottery is not None)
    if not uses_lottery or seeds < 2:
        raise ArgumentError(
            "FA624",
            "luck is measured over lottery seeds: the policy must draw lots (a lottery"
            " mechanism or a lottery tie-break) and seeds must be at least 2",
            argument="seeds" if uses_lottery else "allocation",
            value=seeds if uses_lottery else None,
        )
    names = [f"{base}/{k}" for k in range(1, seeds + 1)]
    served = np.zeros((seeds, ev.n), dtype=bool)
    fast = (
        spec is not None
        and allocation.mechanism == "lottery"
        and spec.lottery is not None
        and not spec.reserves
    )
    if fast and spec is not None and spec.lottery is not None:
        rows = np.flatnonzero(ev.eligible)
        weights = ev.lottery_weight[rows] if spec.lottery.weight is not None else None
        k = allocation.n_served
        for s, seed in enumerate(names):
            order, _, _ = lottery_order(seed, ev.id_column[rows], weights)
            served[s, rows[order[:k]]] = True
        method = "keys only"
    else:
        from fairalloc._compiler import compiled_for

        for s, seed in enumerate(names):
            run = compiled_for(cp.policy.with_lottery_seed(seed), cp.as_of)
            again = allocate_evaluation(
                evaluate(run, pop), capacity=allocation.capacity, measure_only=True
            )
            served[s] = _served_rows(again, ev.ids)
        method = "re-run per seed"
    published = np.asarray(allocation.served, dtype=bool)
    out = Luck(seeds=seeds, method=method, min_group=min_group)
    for name in pop.schema.protected_attributes:
        if name not in pop.columns:
            continue
        grouped = _code_attribute(pop, name, None, group_bins(pop, [name]).get(name))
        codes = grouped.codes
        for g, label in enumerate(grouped.labels):
            members = codes == g
            n = int(members.sum())
            if n < min_group:
                continue
            rates = served[:, members].mean(axis=1)
            out.rows.append(
                {
                    "attribute": name,
                    "group": label,
                    "n": n,
                    "published": round(float(published[members].mean()), 6),
                    "mean": round(float(rates.mean()), 6),
                    "sd": round(float(rates.std(ddof=1)), 6),
                    "p5": round(float(np.quantile(rates, 0.05)), 6),
                    "p95": round(float(np.quantile(rates, 0.95)), 6),
                    "low": round(float(rates.min()), 6),
                    "high": round(float(rates.max()), 6),
                }
            )
    return out


def _served_rows(allocation: Allocation, ids: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Served status in the row order of ``ids`` (a re-run may order rows alike; make sure)."""
    ev = allocation.evaluation
    where = {str(i): r for r, i in enumerate(ev.ids)}
    idx = np.array([where[str(i)] for i in ids], dtype=np.intp)
    return np.asarray(allocation.served, dtype=bool)[idx]
