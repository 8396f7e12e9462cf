"""Re-review of a decision (§2.3.2): replay exactly, correct, compare, remedy, explain."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._population import Population
from fairalloc.allocation import allocate_evaluation
from fairalloc.errors import PopulationError, ReviewError
from fairalloc.explain import Explanation, explain
from fairalloc.policy._model import Policy, ReviewSpec
from fairalloc.records import with_seed
from fairalloc.review._case import Case, DecisionRef, answered

if TYPE_CHECKING:
    from fairalloc.allocation import Allocation

__all__ = ["ANSWER_SCHEMA", "Finding", "Remedy", "review"]

#: The ``schema`` value of the answer a complainant is shown.
ANSWER_SCHEMA = "fairalloc.review-answer/1"

#: What a review did for the complainant: nothing (``none``), or the policy's remedy.
Remedy = Literal["none", "next_free_unit", "supernumerary", "head_of_waiting_list", "displace"]

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Review of case {case}",
        "before": "In the decision: {state}.",
        "after": "With the corrected facts: {state}.",
        "served": "served",
        "not_served": "not served",
        "none": "The outcome does not change.",
        "kept": "A place already given is not withdrawn by a review.",
        "next_free_unit": "Remedy: you receive the next place that becomes free.",
        "supernumerary": "Remedy: you receive a place in addition to the places allocated.",
        "head_of_waiting_list": "Remedy: you are placed first on the waiting list.",
        "displace": "Remedy: the corrected decision stands, and you receive a place.",
        "late": "The answer came after the deadline of {deadline}.",
    },
    "zh-CN": {
        "title": "复核案件 {case}",
        "before": "原决定：{state}。",
        "after": "按更正后的事实：{state}。",
        "served": "获得名额",
        "not_served": "未获得名额",
        "none": "结果不变。",
        "kept": "已给予的名额不因复核而收回。",
        "next_free_unit": "补救：下一个空出的名额给予您。",
        "supernumerary": "补救：在已分配名额之外另给予您一个名额。",
        "head_of_waiting_list": "补救：您排在轮候名单首位。",
        "displace": "补救：按更正后的决定执行，您获得名额。",
        "late": "答复晚于期限 {deadline}。",
    },
}


@dataclass(frozen=True)
class Finding:
    """What a review found, and what it did.

    :meth:`for_complainant` and :meth:`complainant_text` are what the complainant is shown:
    nothing about any other resident. :meth:`for_officer` adds who else is concerned.

    Attributes:
        case: The case, answered.
        served_before: Whether the decision served the complainant.
        served_corrected: Whether the decision replayed with the corrected facts serves them.
        remedy: What the review does for the complainant (``none`` when the corrected facts
            do not call for a place the complainant lacks).
        served_after: The ids holding a place after the review, in order.
        displaced: Residents whose place the review took (only with ``displace: true``).
        explanation: Why the corrected decision gives the complainant its outcome, from the
            complainant's own facts only.
        original: The decision as replayed.
        corrected: The decision replayed with the corrected facts.
    """

    case: Case
    served_before: bool
    served_corrected: bool
    remedy: Remedy
    served_after: tuple[str, ...]
    displaced: tuple[str, ...]
    explanation: Explanation
    original: Allocation
    corrected: Allocation

    @property
    def changed(self) -> bool:
        """Whether the corrected facts change the complainant's outcome."""
        return self.served_before != self.served_corrected

    def for_complainant(self) -> dict[str, Any]:
        """The answer the complainant is shown: their own facts, outcome and remedy only."""
        c = self.case
        return {
            "schema": ANSWER_SCHEMA,
            "case": c.id,
            "decision": c.decision,
            "resident": c.resident,
            "grounds": c.grounds,
            "corrections": [x.to_dict() for x in c.corrections],
            "filed": c.filed.isoformat(),
            "deadline": c.deadline.isoformat(),
            "answered": c.answered.isoformat() if c.answered else None,
            "late": c.late,
            "served_before": self.served_before,
            "served_with_corrections": self.served_corrected,
            "outcome_changed": self.changed,
            "remedy": self.remedy,
            "explanation": self.explanation.to_dict(),
        }

    def for_officer(self) -> dict[str, Any]:
        """The whole finding: the complainant's answer, and who else the review concerns."""
        return {
            **self.for_complainant(),
            "served_in_decision": self.original.served_ids(),
            "served_with_corrections_all": self.corrected.served_ids(),
            "served_after": list(self.served_after),
            "displaced": list(self.displaced),
        }

    def complainant_text(self, lang: str = "en") -> str:
        """The complainant's answer as text, in ``en`` or ``zh-CN``."""
        words = _WORDS.get(lang)
        if words is None:
            raise ReviewError("FA784", f"no locale {lang!r}; locales: " + ", ".join(_WORDS))

        def state(served: bool) -> str:  # noqa: FBT001
            return words["served" if served else "not_served"]

        lines = [
            words["title"].format(case=self.case.id),
            "",
            words["before"].format(state=state(self.served_before)),
            words["after"].format(state=state(self.served_corrected)),
        ]
        if self.remedy != "none":
            lines.append(words[self.remedy])
        elif self.served_before and not self.served_corrected:
            lines.append(words["kept"])
        else:
            lines.append(words["none"])
        if self.case.late:
            lines.append(words["late"].format(deadline=self.case.deadline.isoformat()))
        return "\n".join(lines) + "\n\n" + self.explanation.to_text(lang)

    def to_json(self) -> str:
        """The complainant's answer as canonical JSON (sorted keys, no spaces)."""
        return json.dumps(
            self.for_complainant(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )


def review(
    case: Case,
    policy: Policy | CompiledPolicy,
    residents: Population | Any,
    decision: DecisionRef,
    *,
    policy_hash: str,
    data_hash: str,
    on: dt.date,
    lang: str = "en",
) -> Finding:
    """Re-review ``decision`` for ``case``: replay it exactly, correct, compare, remedy.

    1. The policy and data given must be those the decision recorded: their hashes, computed
       by the caller (a decision log computes them as it recorded them), must equal the
       decision's, or the review is refused.
    2. The decision is replayed from them (the engine and the mechanism, nothing else); when
       the decision recorded who was served, the replay must serve exactly them, in order.
    3. The case's corrections are applied to the complainant's row (``Population.replace``)
       and the decision replayed again.
    4. If the corrected facts serve the complainant and the decision did not, the policy's
       ``review`` section says how they are served: ``next_free_unit``, ``supernumerary`` or
       ``head_of_waiting_list``, none of which takes a place from anyone; only with
       ``displace: true`` does the corrected decision stand, and whoever it no longer serves
       loses the place. A place already given is never withdrawn by a review.

    Args:
        case: The case, from :func:`open_case`, not yet answered.
        policy: The policy the decision applied; with ``decision.seed``, its lotteries take
            that seed (the recorded draw), never the file's.
        residents: The residents' data the decision applied to.
        decision: What the decision recorded.
        policy_hash: The hash of ``policy`` as the decision's record computes it.
        data_hash: The hash of ``residents`` as the decision's record computes it.
        on: The date of the answer.
        lang: The language of the explanation (``en`` or ``zh-CN``).

    Returns:
        The :class:`Finding`, with the case answered.

    Raises:
        ReviewError: ``FA790`` (policy hash) or ``FA791`` (data hash) if the inputs are not
            those the decision recorded; ``FA792`` if the replay does not give the recorded
            outcome; ``FA793`` if a corrected value does not fit its attribute; ``FA794`` if
            the policy has no ``review`` section; ``FA795`` if the case is already answered;
            ``FA796`` if the decision is not a capacity allocation; ``FA797`` if the case is
            about another decision; ``FA799`` if the complainant is not among the residents.
    """
    model = policy.policy if isinstance(policy, CompiledPolicy) else policy
    spec = _spec(model, case)
    if decision.seed is not None:  # the seed the decision drew with, never the file's
        policy = model = with_seed(model, decision.seed)
    if case.decision != decision.decision:
        raise ReviewError(
            "FA797",
            f"the case is about decision {case.decision!r}, not {decision.decision!r}",
            case=case.id,
        )
    if case.answered is not None:
        raise ReviewError(
            "FA795", f"the case was already answered on {case.answered.isoformat()}", case=case.id
        )
    _same("FA790", "policy", decision.policy_hash, policy_hash, case)
    _same("FA791", "data", decision.data_hash, data_hash, case)
    alloc = model.allocation
    if alloc is None or alloc.matching is not None or alloc.rotation is not None:
        raise ReviewError(
            "FA796",
            "only a capacity allocation can be replayed for review; this policy"
            + (" has no allocation" if alloc is None else " serves a matching or a rotation"),
            case=case.id,
        )
    population = Population.of(residents, model)
    if case.resident not in set(population.ids.tolist()):
        raise ReviewError(
            "FA799",
            f"resident {case.resident!r} is not among the residents the decision applied to",
            case=case.id,
        )
    original = _decide(policy, population, decision)
    if decision.served is not None and tuple(original.served_ids()) != tuple(decision.served):
        raise ReviewError(
            "FA792",
            "the replay does not give the recorded outcome: "
            + _first_difference(original.served_ids(), list(decision.served)),
            case=case.id,
        )
    corrected = _decide(policy, _corrected(population, model, case), decision)
    before = case.resident in set(original.served_ids())
    after = case.resident in set(corrected.served_ids())
    remedy, served_after, displaced = _remedy(
        spec, case.resident, before, after, original, corrected
    )
    facts = explain(corrected, case.resident, counterfactuals=False).facts.private()
    explanation = Explanation(facts, lang)
    done = answered(case, on, {})
    finding = Finding(
        case=done,
        served_before=before,
        served_corrected=after,
        remedy=remedy,
        served_after=served_after,
        displaced=displaced,
        explanation=explanation,
        original=original,
        corrected=corrected,
    )
    # The case keeps the answer as the complainant was shown it.
    return replace(finding, case=replace(done, answer=finding.for_complainant()))


def _spec(model: Policy, case: Case) -> ReviewSpec:
    if model.review is None:
        raise ReviewError(
            "FA794",
            f"policy {model.policy.id!r} has no `review` section: it states no deadline and no"
            " remedy for a review",
            case=case.id,
        )
    return model.review


def _same(code: str, what: str, recorded: str, given: str, case: Case) -> None:
    if recorded != given:
        raise ReviewError(
            code,
            f"the {what} given is not the one the decision recorded: its hash is {given[:16]}…,"
            f" the decision's {recorded[:16]}…; a review replays the decision from exactly its"
            f" own {what}",
            case=case.id,
        )


def _decide(
    policy: Policy | CompiledPolicy, population: Population, decision: DecisionRef
) -> Allocation:
    ev = evaluate(policy, population, as_of=decision.as_of)
    return allocate_evaluation(ev, capacity=decision.capacity)


def _first_difference(got: list[str], recorded: list[str]) -> str:
    if len(got) != len(recorded):
        return f"it serves {len(got)} residents, the decision {len(recorded)}"
    k = next(i for i, (a, b) in enumerate(zip(got, recorded, strict=True)) if a != b)
    return f"position {k + 1} of the order served differs"


def _corrected(population: Population, model: Policy, case: Case) -> Population:
    """``population`` with the complainant's corrected facts (``Population.replace``)."""
    row = int(np.flatnonzero(population.ids == case.resident)[0])
    if not case.corrections:
        return population
    record = population.take([row]).to_records()[0]
    for c in case.corrections:
        record[c.attribute] = c.value
    try:
        one = Population.load([record], model, source=f"case {case.id}")
    except PopulationError as e:
        raise ReviewError(
            "FA793", "a corrected value does not fit its attribute:\n" + str(e), case=case.id
        ) from None
    out = population
    for c in case.corrections:
        col = out.columns[c.attribute].copy()
        col[row] = one.columns[c.attribute][0]
        out = out.replace(c.attribute, col)
    return out


def _remedy(
    spec: ReviewSpec,
    resident: str,
    before: bool,  # noqa: FBT001
    after: bool,  # noqa: FBT001
    original: Allocation,
    corrected: Allocation,
) -> tuple[Remedy, tuple[str, ...], tuple[str, ...]]:
    """The remedy, who holds a place afterwards, and who was displaced."""
    served = tuple(original.served_ids())
    if before or not after:
        return "none", served, ()
    if spec.displace:
        now = tuple(corrected.served_ids())
        return "displace", now, tuple(i for i in served if i not in set(now))
    if spec.remedy == "supernumerary":
        return "supernumerary", (*served, resident), ()
    if spec.remedy is None:  # the compiler refuses this (FA178); a policy built unchecked
        raise ReviewError("FA794", "the policy's `review` section names no remedy")
    return spec.remedy, served, ()
