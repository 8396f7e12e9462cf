"""Proxies judged by what they do to outcomes, not by their share of the score.

A proxy check that weighs an attribute by its share of score variance misses what matters: a
district that tracks ethnicity may add little variance yet move a group's places (a few points
near the cut-off, or the eligibility for a reserve of half the places); two flags each unrelated
to gender may, together, be gender. This check measures the effect itself:

1. **Candidates.** Every non-protected attribute the policy reads, by any part (points, rules,
   reserves, tie-breaks, lottery weights, rotation bands, matching), and every pair of them
   whose joint value is associated with a protected attribute although neither alone is.
   Association is bias-corrected Cramér's V over the attribute's groups (levels; numbers and
   dates in the quartile groups of the rest of the audit); a candidate is examined from
   ``association`` (0.3) up.
2. **Effect.** The attribute (or the pair, jointly) is permuted across all residents: its
   distribution is kept, its link with every protected attribute is broken. The policy is re-
   evaluated and the allocation re-run (same capacity, same seed) for ``rounds`` permutations (8
   for a community, fewer for large populations, whose rates vary less), and each protected
   group's selection rate (served, or eligible without an allocation) is compared with the
   actual one. The effect is the largest change of a group's rate, over groups of at least
   ``min_group`` residents, averaged over the permutations. 3. **Verdict.** A candidate whose
   effect reaches ``effect`` (0.05: five percentage points of a group's selection rate) moves
   outcomes between groups through the protected attribute it stands for: it is flagged, and the
   audit fails. An attribute the policy declares a need measure (``need: higher|lower``) is
   reported with that declared role, for review, rather than failing the audit: assessed need
   may differ by group for good reasons, which a reviewer must judge; it is never left out.

Permutations are drawn from a generator seeded by ``seed`` and the attribute names, so the same
policy, residents and seed give the same report whatever the row order (rows are taken in id
order first).
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fairalloc._engine import evaluate, reevaluate_attribute
from fairalloc._evaluation import Evaluation
from fairalloc._population import Population
from fairalloc._ranking import LotteryKeys, rank_with
from fairalloc.allocation import Allocation, allocate_evaluation
from fairalloc.audit._groups import _code_attribute, group_bins
from fairalloc.audit._proxy import cramers_v
from fairalloc.errors import ArgumentError

__all__ = ["OutcomeProxies", "outcome_proxies"]


def _codes(pop: Population, name: str) -> tuple[npt.NDArray[np.intp], int]:
    """The attribute's groups as codes, and how many.

    The audit's own grouping: levels, or the population's quartiles for numbers and dates, with
    a group for missing values.
    """
    coded = _code_attribute(pop, name, None, group_bins(pop, [name]).get(name))
    return coded.codes, max(len(coded.labels), 1)


def _v(a: npt.NDArray[np.intp], la: int, b: npt.NDArray[np.intp], lb: int) -> float:
    table = np.bincount(a * lb + b, minlength=la * lb).reshape(la, lb)
    return cramers_v(table)


class _Association:
    """Cramér's V of candidates (one attribute or a pair) with each protected attribute.

    Every protected attribute's groups are coded jointly, so one count over the residents per
    candidate gives its table with all of them at once, summed down to each protected
    attribute's table: the same tables as counting once per protected attribute, in a sixth
    of the passes with six protected attributes. When the joint table would be too large, each
    protected attribute is counted on its own.
    """

    #: At most this many joint groups, and this many cells in one candidate's joint table.
    _GROUPS = 1 << 16
    _CELLS = 1 << 22

    def __init__(
        self,
        codes: dict[str, tuple[npt.NDArray[np.intp], int]],
        protected: dict[str, tuple[npt.NDArray[np.intp], int]],
    ) -> None:
        self.codes = codes
        self.protected = protected
        self.size = 1
        for _, pl in protected.values():
            self.size *= pl
        self.joint: npt.NDArray[np.int64] | None = None
        if protected and self.size <= self._GROUPS:
            joint = np.zeros(len(next(iter(protected.values()))[0]), dtype=np.int64)
            for pc, pl in protected.values():
                joint = joint * pl + pc
            self.joint = joint
        self._down: dict[str, npt.NDArray[np.float64]] = {}

    def of(self, attrs: tuple[str, ...], prots: list[str]) -> dict[str, float]:
        """V of ``attrs`` (jointly) with each of ``prots``."""
        levels = 1
        for a in attrs:
            levels *= self.codes[a][1]
        combined = self._combined(attrs)
        if self.joint is None or levels * self.size > self._CELLS:
            return {p: _v(combined, levels, *self.protected[p]) for p in prots}
        counts = np.bincount(combined * self.size + self.joint, minlength=levels * self.size)
        table = counts.reshape(levels, self.size).astype(np.float64)
        # Counts below 2**53 sum exactly in float64: each table is the one counted directly.
        return {p: cramers_v(table @ self._down_to(p)) for p in prots}

    def _combined(self, attrs: tuple[str, ...]) -> npt.NDArray[np.int64]:
        out = self.codes[attrs[0]][0].astype(np.int64)
        for a in attrs[1:]:
            ca, la = self.codes[a]
            out = out * la + ca
        return out

    def _down_to(self, prot: str) -> npt.NDArray[np.float64]:
        """The (joint groups, ``prot``'s groups) 0/1 matrix that sums a joint table down."""
        down = self._down.get(prot)
        if down is None:
            # The joint code is mixed radix over the protected attributes, in order.
            names = list(self.protected)
            stride = 1
            for later in names[names.index(prot) + 1 :]:
                stride *= self.protected[later][1]
            pl = self.protected[prot][1]
            down = np.zeros((self.size, pl))
            down[np.arange(self.size), (np.arange(self.size) // stride) % pl] = 1.0
            self._down[prot] = down
        return down


@dataclass
class OutcomeProxies:
    """What permuting each candidate proxy does to protected groups' selection rates.

    Attributes:
        rows: One record per candidate and protected attribute examined: ``attributes`` (one,
            or a pair), ``protected``, ``association`` (V), ``effect`` (the largest change of a
            group's rate), ``rates`` (each group's actual rate and the mean under
            permutation), ``parts`` (the parts of the policy reading it), ``need`` (declared
            roles), ``flagged`` (fails the audit) and ``for_review`` (a declared need measure
            over the threshold).
        outcome: ``served`` or ``eligible``.
        association: The association from which a candidate is examined.
        effect: The change of a group's rate from which a candidate is flagged.
        rounds: Permutations per candidate.
        min_group: The smallest group whose rate counts.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "served"
    association: float = 0.3
    effect: float = 0.05
    rounds: int = 8
    min_group: int = 10

    @property
    def ok(self) -> bool:
        """Whether no candidate that is not a declared need measure moves outcomes."""
        return not any(r["flagged"] for r in self.rows)

    def findings(self) -> int:
        """The declared need measures over the threshold: for review, not verdicts."""
        return sum(1 for r in self.rows if r["for_review"])

    @property
    def flags(self) -> list[dict[str, Any]]:
        """The rows flagged, then those for review."""
        return [r for r in self.rows if r["flagged"]] + [r for r in self.rows if r["for_review"]]

    def to_dict(self, *, publication: bool = False) -> dict[str, Any]:
        """As plain values; for publication, without any group's size or rate."""
        rows = (
            [{k: v for k, v in r.items() if k != "rates"} for r in self.rows]
            if publication
            else self.rows
        )
        return {
            "ok": self.ok,
            "outcome": self.outcome,
            "association_threshold": self.association,
            "effect_threshold": self.effect,
            "rounds": self.rounds,
            "min_group": self.min_group,
            "rows": rows,
        }

    def to_markdown(self) -> str:
        """A section of the audit report."""
        what = "served" if self.outcome == "served" else "eligible"
        lines = [
            "## Proxies judged by outcomes",
            "",
            f"Each attribute the policy reads (and each pair that is jointly associated with a"
            f" protected attribute) with an association of at least {self.association:g} is"
            f" permuted across the residents {self.rounds} times, breaking its link with the"
            f" protected attribute, and the policy re-run: the effect is the largest change of a"
            f" protected group's share {what} (groups of at least {self.min_group}). From"
            f" {self.effect:g} it is flagged; a declared need measure is reported for review.",
            "",
        ]
        if not self.rows:
            lines.append("No attribute read by the policy is associated with a protected one.")
            return "\n".join(lines) + "\n"
        lines += [
            "| attribute(s) | protected | association | effect | verdict |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            verdict = (
                "**proxy: moves outcomes**"
                if r["flagged"]
                else "for review: declared need measure"
                if r["for_review"]
                else "no effect beyond the threshold"
            )
            names = " + ".join(f"`{a}`" for a in r["attributes"])
            lines.append(
                f"| {names} | `{r['protected']}` | {r['association']:.2f} |"
                f" {r['effect']:.3f} | {verdict} |"
            )
        return "\n".join(lines) + "\n"


def _selected(result: Evaluation | Allocation) -> npt.NDArray[np.bool_]:
    if isinstance(result, Allocation):
        return np.asarray(result.served, dtype=bool)
    return np.asarray(result.eligible, dtype=bool)


def _rates(
    selected: npt.NDArray[np.bool_], groups: npt.NDArray[np.intp], levels: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    n = np.bincount(groups, minlength=levels)
    k = np.bincount(groups, weights=selected.astype(np.float64), minlength=levels)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, k / np.maximum(n, 1), np.nan), n.astype(np.int64)


def outcome_proxies(
    result: Evaluation | Allocation,
    *,
    association: float = 0.3,
    effect: float = 0.05,
    rounds: int | None = None,
    min_group: int = 10,
    seed: int = 0,
) -> OutcomeProxies:
    """Measure what each candidate proxy does to protected groups' outcomes.

    Args:
        result: An evaluation (outcome: eligibility) or an allocation (outcome: served), holding
            its residents.
        association: Cramér's V from which an attribute (or pair) is examined.
        effect: The change of a group's selection rate from which it is flagged.
        rounds: Permutations per candidate (more: a steadier effect, a slower audit). By
            default 8 below 10,000 residents, 2 below 100,000 and 1 from there: a group's
            rate under one permutation varies by about ``sqrt(p(1-p)/n)``, under half a
            percentage point for groups of 10,000, so more rounds buy nothing at that size.
        min_group: Groups with fewer residents are left out of the effect.
        seed: Seeds the permutations.

    Returns:
        The :class:`OutcomeProxies`.

    Raises:
        ArgumentError: ``FA610`` when the result does not hold its residents; ``FA623`` for a
            threshold out of range.
    """
    return measure_proxies(
        result,
        association=association,
        effect=effect,
        rounds=rounds,
        min_group=min_group,
        seed=seed,
        keys=None,
    )


def measure_proxies(
    result: Evaluation | Allocation,
    *,
    association: float,
    effect: float,
    rounds: int | None,
    min_group: int,
    seed: int,
    keys: LotteryKeys | None,
) -> OutcomeProxies:
    """:func:`outcome_proxies`, with the lottery keys of the residents the audit shares.

    ``keys`` is used when the residents come in id order (as the audit holds them); it holds
    the keys of the allocation's ranking, and any drawn here are kept there for the others.
    """
    ev = result.evaluation if isinstance(result, Allocation) else result
    pop = ev.population
    if pop is None:
        raise ArgumentError("FA610", "the evaluation does not hold its residents")
    if rounds is None:
        rounds = 8 if ev.n < 10_000 else 2 if ev.n < 100_000 else 1
    if not 0 < association <= 1 or not 0 < effect <= 1 or rounds < 1 or min_group < 1:
        raise ArgumentError(
            "FA623",
            "association and effect are in (0, 1]; rounds and min_group at least 1",
            valid="association, effect in (0, 1]; rounds, min_group >= 1",
        )
    order = pop.id_column.sort_order()
    in_order = bool(np.array_equal(order, np.arange(pop.n)))
    if not in_order:
        pop = pop.take(order)
    cp = ev.policy
    capacity = result.capacity if isinstance(result, Allocation) else None
    # Permuting attributes leaves every id where it is, so every lottery key too: the keys the
    # allocation already drew are reused, and any other is drawn once for all permutations.
    if not in_order or capacity is None or cp.lottery_seed is None:
        keys = None
    if keys is None and capacity is not None and cp.lottery_seed is not None:
        keys = LotteryKeys.drawn_by(ev.ranking, cp.lottery_seed, order)
    actual = _selected(result)[order]
    protected = [a for a in pop.schema.protected_attributes if a in pop.columns]
    read: dict[str, list[str]] = {}
    for part, paths in cp.reads.items():
        for p in paths:
            if p.attribute in pop.columns and p.attribute not in protected:
                read.setdefault(p.attribute, [])
                if part not in read[p.attribute]:
                    read[p.attribute].append(part)
    names = sorted(read)
    codes = {n: _codes(pop, n) for n in names}
    report = OutcomeProxies(
        outcome="served" if isinstance(result, Allocation) else "eligible",
        association=association,
        effect=effect,
        rounds=rounds,
        min_group=min_group,
    )
    grouping = {
        prot: _code_attribute(pop, prot, None, group_bins(pop, [prot]).get(prot))
        for prot in protected
    }
    assoc = _Association(codes, {p: (g.codes, max(len(g.labels), 1)) for p, g in grouping.items()})
    singles = {n: assoc.of((n,), protected) for n in names}
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    for a, b in itertools.combinations(names, 2):
        # A pair is examined for a protected attribute neither member is examined for alone.
        wanted = [
            p for p in protected if singles[a][p] < association and singles[b][p] < association
        ]
        if wanted:
            pairs[(a, b)] = assoc.of((a, b), wanted)
    for prot in protected:
        grouped = grouping[prot]
        pc, pl, labels = grouped.codes, len(grouped.labels), grouped.labels
        candidates: list[tuple[tuple[str, ...], float]] = [
            ((n,), singles[n][prot]) for n in names if singles[n][prot] >= association
        ]
        for (a, b), vs in pairs.items():
            if prot in vs and vs[prot] >= association:
                candidates.append(((a, b), vs[prot]))
        before, n = _rates(actual, pc, pl)
        counted = n >= min_group
        for attrs, v in candidates:
            rng = np.random.default_rng(
                [seed, zlib.crc32("\x00".join((prot, *attrs)).encode("utf-8"))]
            )
            after = np.zeros(pl)
            for _ in range(rounds):
                perm = rng.permutation(pop.n)
                changed = pop
                ev2 = ev if in_order else None
                for a in attrs:
                    changed = changed.replace(a, pop.columns[a][perm])
                    # Rows already in id order: only the parts reading the attribute run.
                    ev2 = reevaluate_attribute(ev2, changed, a) if ev2 is not None else None
                if ev2 is None:
                    ev2 = evaluate(cp, changed)
                if keys is not None:
                    rank_with(ev2, keys)
                if capacity is not None:
                    res2: Evaluation | Allocation = allocate_evaluation(
                        ev2, capacity=capacity, measure_only=True
                    )
                else:
                    res2 = ev2
                rates, _ = _rates(_selected(res2), pc, pl)
                after += np.nan_to_num(rates)
            after /= rounds
            moved = np.abs(after - np.nan_to_num(before))[counted]
            size = float(moved.max()) if moved.size else 0.0
            declared = {a: pop.schema.attributes[a].need for a in attrs}
            need = all(d is not None for d in declared.values())
            over = size >= effect
            report.rows.append(
                {
                    "attributes": list(attrs),
                    "protected": prot,
                    "association": round(v, 6),
                    "effect": round(size, 6),
                    "rates": {
                        labels[g]: {
                            "n": int(n[g]),
                            "actual": None if np.isnan(before[g]) else round(float(before[g]), 6),
                            "permuted": round(float(after[g]), 6),
                        }
                        for g in range(pl)
                        if n[g] > 0
                    },
                    "parts": sorted({p for a in attrs for p in read[a]}),
                    "need": {a: d for a, d in declared.items() if d is not None},
                    "flagged": over and not need,
                    "for_review": over and need,
                }
            )
    report.rows.sort(
        key=lambda r: (not r["flagged"], not r["for_review"], -r["effect"], r["attributes"])
    )
    return report
