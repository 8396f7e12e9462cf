"""The facts of an explanation: language-free records of what the engine and mechanism decided.

Every renderer (text, Markdown, HTML, JSON; English and Chinese) reads these records and nothing
else, so that all renderings of one explanation carry the same facts. Numbers are kept exact:
points as integer micro-points (shown in points), values as the resident's data shows them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fairalloc._numeric import MICRO
from fairalloc.policy._model import LocalizedText

__all__ = [
    "SCHEMA",
    "Check",
    "Counterfactual",
    "CutoffFact",
    "Decision",
    "Facts",
    "IndicatorLine",
    "LotteryFact",
    "MatchChoice",
    "Outcome",
    "PriorityLine",
    "ScaleLine",
    "TableLine",
    "TermLine",
    "Text",
    "Value",
]

#: The identifier and version of the JSON form; bumped on any incompatible change.
SCHEMA = "fairalloc.explanation/1"

#: A text in one language, or keyed by locale (``en``, ``zh-CN``), as policy files give them.
Text = LocalizedText | None

#: A resident's value as people write it: a number, a level name, a date, true/false.
Value = bool | int | float | str | None


def points(micro: int) -> float:
    """Micro-points as points (exact: micro-points are whole numbers)."""
    return int(micro) / MICRO


@dataclass(frozen=True, slots=True)
class Check:
    """An eligibility or exclusion rule and how it went for the resident.

    Attributes:
        rule: The rule's id.
        kind: ``eligibility`` or ``exclusion``.
        title: Its title (``None``: show the id).
        held: Whether its condition held.
        deciding: Whether it changed the resident's eligibility (a failed eligibility rule, an
            exclusion that applied).
        reads: The values it read, by attribute.
        reason: For an exclusion, the reason shown to residents.
        source: The regulation article it implements.
        where: Its place in the policy file (``file:line:col``).
    """

    rule: str
    kind: Literal["eligibility", "exclusion"]
    title: Text
    held: bool
    deciding: bool
    reads: dict[str, Value]
    reason: Text = None
    source: str | None = None
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "rule": self.rule,
            "kind": self.kind,
            "title": self.title,
            "held": self.held,
            "deciding": self.deciding,
            "reads": self.reads,
            "reason": self.reason,
            "source": self.source,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class IndicatorLine:
    """One indicator of a needs-assessment scale for the resident.

    Attributes:
        path: ``scale.path.indicator``.
        scale: The scale it belongs to.
        title: Its title.
        attribute: The attribute it maps (``of``), if it names one directly.
        value: The value it read (for a formula: the formula's result before caps).
        band: How the value mapped: the bounds of its band as written (``≤ 60``), the level
            name of a lookup, or ``formula``.
        band_index: The band's index (0 = first), the level code of a lookup; -1 for a formula.
        kind: ``bands``, ``lookup``, ``table`` (a decision table) or ``formula``.
        weight: The indicator's weight.
        capped: Whether ``min_points``/``max_points`` changed the points.
        points_micro: Its points (weighted) in micro-points, as the engine summed them.
        reads: The attributes and parameters it read, by name.
        of: The attribute or derived value it maps, by name (None for a formula).
        counts: Whether its points reach the score (its scale is a term of the score and no
            weight on the way is 0).
    """

    path: str
    scale: str
    title: Text
    attribute: str | None
    value: Value
    band: str
    band_index: int
    kind: Literal["bands", "lookup", "table", "formula"]
    weight: float
    capped: bool
    points_micro: int
    reads: dict[str, Value]
    counts: bool = True
    of: str | None = None

    @property
    def points(self) -> float:
        """Its points."""
        return points(self.points_micro)

    @property
    def deciding(self) -> bool:
        """Whether it changed the score: points other than 0 that reach the score."""
        return self.points_micro != 0 and self.counts

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "path": self.path,
            "scale": self.scale,
            "title": self.title,
            "attribute": self.attribute,
            "value": self.value,
            "band": self.band,
            "band_index": self.band_index,
            "kind": self.kind,
            "weight": self.weight,
            "capped": self.capped,
            "points": self.points,
            "points_micro": self.points_micro,
            "deciding": self.deciding,
            "counts": self.counts,
            "reads": self.reads,
        }


@dataclass(frozen=True, slots=True)
class PriorityLine:
    """One priority rule for the resident: whether it fired, and its points.

    Attributes:
        rule: The rule's id.
        title: Its title.
        fired: Whether its ``when`` held.
        points_micro: Its points in micro-points (0 when it did not fire).
        reads: The values it read, by attribute or parameter.
        via: Derived values it read them through, by attribute.
        source: The regulation article it implements.
        where: Its place in the policy file.
        counts: Whether priority points reach the score (``priority`` is a term of it).
    """

    rule: str
    title: Text
    fired: bool
    points_micro: int
    reads: dict[str, Value]
    via: dict[str, list[str]]
    source: str | None = None
    where: str = ""
    counts: bool = True

    @property
    def points(self) -> float:
        """Its points."""
        return points(self.points_micro)

    @property
    def deciding(self) -> bool:
        """Whether it changed the score: points other than 0 that reach the score."""
        return self.points_micro != 0 and self.counts

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "rule": self.rule,
            "title": self.title,
            "fired": self.fired,
            "points": self.points,
            "points_micro": self.points_micro,
            "deciding": self.deciding,
            "counts": self.counts,
            "reads": self.reads,
            "via": self.via,
            "source": self.source,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class TableLine:
    """A decision table as it decided for the resident: the row that applied and why.

    Attributes:
        part: The part it decides (``indicator:PATH``, ``grade:PATH`` or ``derived:NAME``).
        title: The title of that part.
        hit: The hit policy, ``first`` or ``unique``.
        row: The index of the row that applied (from 0).
        row_title: That row's title, if it has one.
        inputs: Each input as (name, expression, the resident's value as written).
        cells: The row's conditions as (input name, cell as written), ``-`` for any value.
        output: The row's output as written (points, a level or a grade).
        output_title: The title of the output grade, if it has one.
    """

    part: str
    title: Text
    hit: str
    row: int
    row_title: Text
    inputs: tuple[tuple[str, str, str], ...]
    cells: tuple[tuple[str, str], ...]
    output: str
    output_title: Text = None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "part": self.part,
            "title": self.title,
            "hit": self.hit,
            "row": self.row,
            "row_title": self.row_title,
            "inputs": [{"name": n, "expr": e, "value": v} for n, e, v in self.inputs],
            "cells": dict(self.cells),
            "output": self.output,
            "output_title": self.output_title,
        }


@dataclass(frozen=True, slots=True)
class ScaleLine:
    """A scale (or domain) total and its grade.

    Attributes:
        path: The scale's dotted path.
        title: Its title.
        weight: Its weight in its parent scale.
        total_micro: Its total: its indicators' points plus its sub-scales' weighted totals.
        parts_micro: What adds up to the total, by indicator path or sub-scale path.
        grade: Its grade, if graded.
        grade_title: The grade's title.
    """

    path: str
    title: Text
    weight: float
    total_micro: int
    parts_micro: dict[str, int]
    grade: str | None = None
    grade_title: Text = None

    @property
    def total(self) -> float:
        """Its total in points."""
        return points(self.total_micro)

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "path": self.path,
            "title": self.title,
            "weight": self.weight,
            "total": self.total,
            "total_micro": self.total_micro,
            "parts_micro": self.parts_micro,
            "grade": self.grade,
            "grade_title": self.grade_title,
        }


@dataclass(frozen=True, slots=True)
class TermLine:
    """A term of the score: a top-level scale or the priority rules, and its weight.

    Attributes:
        name: The scale's path or ``priority``.
        title: Its title.
        weight: Its weight (an exponent in a ``product`` score).
        value_micro: The term as the score uses it (weighted in a ``sum``).
        raw_micro: The term before its weight: the scale's total, or the priority points.
    """

    name: str
    title: Text
    weight: float
    value_micro: int
    raw_micro: int

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "name": self.name,
            "title": self.title,
            "weight": self.weight,
            "value": points(self.value_micro),
            "value_micro": self.value_micro,
            "raw": points(self.raw_micro),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What set the resident apart from its nearest neighbour at the cut-off.

    Attributes:
        neighbour: ``last_served`` (the resident was not served: compared with the last one
            served) or ``first_waiting`` (served: compared with the first one not served).
        by: ``score``, a tie-break label, ``lottery`` or ``none`` (tied on everything).
        mine: The resident's value of that key.
        theirs: The neighbour's value of that key.
        equal_before: The keys on which the two were equal before it, in chain order.
        category: The category whose order compared them.
        category_title: Its title.
    """

    neighbour: Literal["last_served", "first_waiting"]
    by: str
    mine: Value
    theirs: Value
    equal_before: tuple[str, ...]
    category: str = "open"
    category_title: Text = None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "neighbour": self.neighbour,
            "by": self.by,
            "mine": self.mine,
            "theirs": self.theirs,
            "equal_before": list(self.equal_before),
            "category": self.category,
        }


@dataclass(frozen=True, slots=True)
class CutoffFact:
    """A category's cut-off, as the resident may see it (never another resident's identity).

    Attributes:
        category: The category (``open`` or a reserve's id).
        title: The category's title.
        size: Its units.
        used: Units given.
        score_micro: The score of the last resident served in it (None: nobody served, or a
            lottery, where scores do not decide).
        position: That resident's position in the mechanism's order.
        eligible: Whether this resident was eligible for the category.
        margin_micro: This resident's score less the cut-off score, for a category the resident
            is eligible for, under priority allocation.
    """

    category: str
    title: Text
    size: int
    used: int
    score_micro: int | None
    position: int | None
    eligible: bool
    margin_micro: int | None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "category": self.category,
            "title": self.title,
            "size": self.size,
            "used": self.used,
            "score": None if self.score_micro is None else points(self.score_micro),
            "position": self.position,
            "eligible": self.eligible,
            "margin": None if self.margin_micro is None else points(self.margin_micro),
        }


@dataclass(frozen=True, slots=True)
class LotteryFact:
    """The resident's published-seed lottery key and how to recompute it.

    Attributes:
        seed: The published seed.
        key: The key, as 16 hex digits.
        role: ``tie_break`` (the ranking's last tie-break) or ``mechanism`` (a lottery
            allocation).
        drawn: Whether the key took part (a tie-break key is drawn only for residents tied on
            everything before it).
        weight: The resident's weight in a weighted lottery.
        draw: The resident's draw (lowest first) in a lottery allocation.
        recipe: Python that recomputes the key (and the draw) with the standard library.
    """

    seed: str
    key: str
    role: Literal["tie_break", "mechanism"]
    drawn: bool
    weight: float | None
    draw: float | None
    recipe: str

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "seed": self.seed,
            "key": self.key,
            "role": self.role,
            "drawn": self.drawn,
            "weight": self.weight,
            "draw": self.draw,
            "recipe": self.recipe,
        }


@dataclass(frozen=True, slots=True)
class MatchChoice:
    """One resource on the resident's list, in a matching.

    Attributes:
        choice: Its place on the list (1 = first choice).
        resource: The resource id.
        title: Its title.
        held: Whether the resident holds it.
        rank: The resident's priority rank there (None: may not hold it).
        last_rank: The rank of the last resident admitted (None: nobody holds it).
        capacity: Its units.
        used: Units given.
    """

    choice: int
    resource: str
    title: Text
    held: bool
    rank: int | None
    last_rank: int | None
    capacity: int
    used: int

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "choice": self.choice,
            "resource": self.resource,
            "title": self.title,
            "held": self.held,
            "rank": self.rank,
            "last_rank": self.last_rank,
            "capacity": self.capacity,
            "used": self.used,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the resident received.

    Attributes:
        kind: ``ranking`` (an evaluation, no allocation), ``allocation``, ``matching`` or
            ``rotation``.
        eligible: Whether the resident is eligible.
        rank: Rank among the eligible (1 = best; None if not eligible).
        n_eligible: Number of eligible residents.
        tied: Whether the resident shares its rank.
        served: Whether the resident was served (None for a ranking alone).
        category: The category that served the resident.
        position: Position in the mechanism's order (1 = first).
        capacity: Units allocated (per round in a rotation).
        resources: Resources held, in a matching.
        rounds: Rounds run (rotation).
        rounds_served: Rounds in which the resident was served (rotation).
        waited: Rounds waited before the first service, or so far (rotation).
        longest_wait: Longest wait (rotation).
    """

    kind: Literal["ranking", "allocation", "matching", "rotation"]
    eligible: bool
    rank: int | None
    n_eligible: int
    tied: bool = False
    served: bool | None = None
    category: str | None = None
    position: int | None = None
    capacity: int | None = None
    resources: tuple[str, ...] = ()
    rounds: int | None = None
    rounds_served: tuple[int, ...] = ()
    waited: int | None = None
    longest_wait: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "kind": self.kind,
            "eligible": self.eligible,
            "rank": self.rank,
            "n_eligible": self.n_eligible,
            "tied": self.tied,
            "served": self.served,
            "category": self.category,
            "position": self.position,
            "capacity": self.capacity,
            "resources": list(self.resources),
            "rounds": self.rounds,
            "rounds_served": list(self.rounds_served),
            "waited": self.waited,
            "longest_wait": self.longest_wait,
        }


@dataclass(frozen=True, slots=True)
class Counterfactual:
    """A change of one changeable attribute that would have changed the outcome.

    Attributes:
        attribute: The attribute changed (never a protected one).
        title: Its title.
        unit: Its unit, if declared.
        before: The resident's value.
        after: The value that changes the outcome.
        delta: ``after - before`` for numbers (days for dates); None for levels.
        outcome_before: ``served``, ``waiting`` (eligible, not served), ``ineligible`` or, for a
            ranking target, ``within`` / ``beyond``.
        outcome_after: The outcome with the change.
        rank_after: The rank the resident would have had (None if not eligible).
        score_after_micro: The score it would have had.
        verified: Whether the change was re-run through the engine and the mechanism on the
            whole population and gave ``outcome_after``.
    """

    attribute: str
    title: Text
    unit: Text
    before: Value
    after: Value
    delta: float | None
    outcome_before: str
    outcome_after: str
    rank_after: int | None
    score_after_micro: int
    verified: bool

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "attribute": self.attribute,
            "title": self.title,
            "unit": self.unit,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "outcome_before": self.outcome_before,
            "outcome_after": self.outcome_after,
            "rank_after": self.rank_after,
            "score_after": points(self.score_after_micro),
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything one explanation states, before any language is chosen.

    Attributes:
        resident: The resident's id.
        policy_id: The policy's id.
        policy_version: Its version.
        policy_title: Its title.
        as_of: The date whose parameter values applied.
        method: How the score is formed: ``sum``, ``product`` or ``tiers``.
        checks: Eligibility and exclusion rules, in policy order.
        indicators: Every indicator, in policy order.
        priority: Every priority rule, in policy order.
        scales: Every scale and sub-scale, parents first.
        terms: The score's terms.
        score_micro: The score used for ranking, in micro-points.
        tie_values: The resident's tie-break values, by label.
        outcome: What the resident received.
        cutoffs: The cut-off of every category (allocation).
        decision: What decided against the nearest neighbour at the cut-off.
        lottery: The resident's lottery key, if a lottery is part of the policy.
        choices: The resident's list in a matching.
        counterfactuals: Changes that would have changed the outcome, smallest first.
        level_titles: The titles the policy gives levels, by attribute and level (shown in
            place of the level's name).
        target: What counterfactuals aim at: ``served``, ``not_served``, ``eligible`` or
            ``rank <= N``.
        notes: Facts that need saying in words, as (message code, parameters): a limit of the
            counterfactual search, a mechanism it does not cover.
        tables: Every decision table, as it decided for the resident.
    """

    resident: str
    policy_id: str
    policy_version: str
    policy_title: Text
    as_of: dt.date | None
    method: str
    checks: tuple[Check, ...]
    indicators: tuple[IndicatorLine, ...]
    priority: tuple[PriorityLine, ...]
    scales: tuple[ScaleLine, ...]
    terms: tuple[TermLine, ...]
    score_micro: int
    tie_values: dict[str, float]
    outcome: Outcome
    cutoffs: tuple[CutoffFact, ...] = ()
    decision: Decision | None = None
    lottery: LotteryFact | None = None
    choices: tuple[MatchChoice, ...] = ()
    counterfactuals: tuple[Counterfactual, ...] = ()
    target: str | None = None
    notes: tuple[tuple[str, dict[str, Any]], ...] = field(default=())
    level_titles: dict[str, dict[str, LocalizedText]] = field(default_factory=dict)
    tables: tuple[TableLine, ...] = ()

    @property
    def score(self) -> float:
        """The score in points."""
        return points(self.score_micro)

    @property
    def eligible(self) -> bool:
        """Whether the resident is eligible."""
        return self.outcome.eligible

    def private(self) -> Facts:
        """These facts with nothing about any other resident: what the resident may be shown.

        Dropped: the cut-offs (the last served resident's score and position), the comparison
        with the nearest neighbour across the cut-off, and in a matching the rank of the last
        resident each resource admitted. The resident's own checks, values, points, score,
        rank, outcome, lottery key and counterfactuals stay.
        """
        return replace(
            self,
            cutoffs=(),
            decision=None,
            choices=tuple(replace(c, last_rank=None) for c in self.choices),
        )

    def to_dict(self) -> dict[str, Any]:
        """As plain values, the form of the JSON schema :data:`SCHEMA`."""
        return {
            "schema": SCHEMA,
            "resident": self.resident,
            "policy": {
                "id": self.policy_id,
                "version": self.policy_version,
                "title": self.policy_title,
                "as_of": self.as_of.isoformat() if self.as_of else None,
            },
            "eligible": self.eligible,
            "checks": [c.to_dict() for c in self.checks],
            "indicators": [i.to_dict() for i in self.indicators],
            "priority": [p.to_dict() for p in self.priority],
            "scales": [s.to_dict() for s in self.scales],
            "tables": [t.to_dict() for t in self.tables],
            "score": {
                "method": self.method,
                "value": self.score,
                "value_micro": self.score_micro,
                "terms": [t.to_dict() for t in self.terms],
            },
            "tie_values": self.tie_values,
            "outcome": self.outcome.to_dict(),
            "cutoffs": [c.to_dict() for c in self.cutoffs],
            "decision": self.decision.to_dict() if self.decision else None,
            "lottery": self.lottery.to_dict() if self.lottery else None,
            "choices": [c.to_dict() for c in self.choices],
            "counterfactual_target": self.target,
            "counterfactuals": [c.to_dict() for c in self.counterfactuals],
            "notes": [{"code": code, **params} for code, params in self.notes],
        }
