"""Review cases: a complaint against one decision, its corrections, its deadline and its answer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fairalloc.errors import ReviewError
from fairalloc.policy._model import Policy

__all__ = [
    "CASE_SCHEMA",
    "Case",
    "CaseState",
    "Correction",
    "DecisionRef",
    "open_case",
    "overdue",
]

#: The ``schema`` value of a case's JSON form.
CASE_SCHEMA = "fairalloc.review-case/1"

#: A case's state on a given date.
CaseState = Literal["filed", "answered", "overdue"]


@dataclass(frozen=True, slots=True)
class DecisionRef:
    """What a recorded decision states about itself: what a review replays it from.

    A decision log supplies it (the decision record); so can any other record of the decision.

    Attributes:
        decision: The decision's identifier (for instance its sequence number in a log).
        policy_hash: The hash of the policy document the decision applied.
        data_hash: The hash (or commitment) of the residents' data it applied to.
        capacity: Units allocated (``None``: the policy's capacity).
        as_of: The date whose rules applied (``None``: the policy's dates).
        served: The ids served, in order, as recorded (``None``: not recorded; the replay
            then cannot be compared with the outcome).
        seed: The lottery seed the decision drew with, when it was not the policy file's own.
    """

    decision: str
    policy_hash: str
    data_hash: str
    capacity: int | None = None
    as_of: dt.date | None = None
    served: tuple[str, ...] | None = None
    seed: str | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """One corrected fact: an attribute's right value, and the evidence for it.

    Attributes:
        attribute: The attribute corrected (never the id).
        value: The right value, as people write it (a level name, a number, ``YYYY-MM-DD``).
        evidence: A reference to the evidence (a document number, a file name).
    """

    attribute: str
    value: Any
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        """As plain values (dates as ``YYYY-MM-DD``)."""
        v = self.value.isoformat() if isinstance(self.value, dt.date) else self.value
        return {"attribute": self.attribute, "value": v, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Case:
    """A complaint against one decision (§2.3.2), from filing to answer.

    Open one with :func:`open_case`; answer it with :func:`fairalloc.review.review`, which
    returns the answered case in its :class:`~fairalloc.review.Finding`. A case is ``filed``
    until answered, ``overdue`` once its deadline has passed unanswered (see :meth:`state`),
    and ``answered`` when answered (:attr:`late` says whether after the deadline).

    Attributes:
        id: The case's identifier.
        decision: The identifier of the decision complained about.
        resident: The complainant's resident id.
        grounds: Why the complainant asks for a review, in their words.
        corrections: The corrected facts, each with its evidence.
        filed: The date the case was filed.
        deadline: The last day to answer (filed + the policy's ``review.deadline_days``).
        answered: The date answered (``None``: not yet).
        answer: The finding as the complainant is shown it (``None``: not yet).
    """

    id: str
    decision: str
    resident: str
    grounds: str
    corrections: tuple[Correction, ...]
    filed: dt.date
    deadline: dt.date
    answered: dt.date | None = None
    answer: Mapping[str, Any] | None = field(default=None, compare=False)

    def state(self, as_of: dt.date) -> CaseState:
        """``answered``, ``overdue`` (unanswered after its deadline) or ``filed``, on ``as_of``."""
        if self.answered is not None and self.answered <= as_of:
            return "answered"
        return "overdue" if as_of > self.deadline else "filed"

    @property
    def late(self) -> bool:
        """Whether the case was answered after its deadline."""
        return self.answered is not None and self.answered > self.deadline

    def to_dict(self) -> dict[str, Any]:
        """As plain values, the form of the JSON schema :data:`CASE_SCHEMA`."""
        return {
            "schema": CASE_SCHEMA,
            "id": self.id,
            "decision": self.decision,
            "resident": self.resident,
            "grounds": self.grounds,
            "corrections": [c.to_dict() for c in self.corrections],
            "filed": self.filed.isoformat(),
            "deadline": self.deadline.isoformat(),
            "answered": self.answered.isoformat() if self.answered else None,
            "answer": dict(self.answer) if self.answer is not None else None,
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces; the same case always gives the same text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Case:
        """Read a case from the form of :meth:`to_dict`.

        Raises:
            ReviewError: ``FA798`` if a field is missing or not of its form.
        """
        try:
            if doc.get("schema") != CASE_SCHEMA:
                raise ReviewError("FA798", f"not a review case: `schema` must be {CASE_SCHEMA}")
            corrections = tuple(
                Correction(str(c["attribute"]), c["value"], str(c["evidence"]))
                for c in doc["corrections"]
            )
            answered = doc.get("answered")
            answer = doc.get("answer")
            return cls(
                id=_text(doc["id"], "id"),
                decision=_text(doc["decision"], "decision"),
                resident=_text(doc["resident"], "resident"),
                grounds=str(doc["grounds"]),
                corrections=corrections,
                filed=dt.date.fromisoformat(doc["filed"]),
                deadline=dt.date.fromisoformat(doc["deadline"]),
                answered=dt.date.fromisoformat(answered) if answered else None,
                answer=dict(answer) if isinstance(answer, Mapping) else None,
            )
        except ReviewError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing field {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
            raise ReviewError("FA798", f"not a review case ({CASE_SCHEMA}): {what}") from None


def _text(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v:
        raise ReviewError("FA798", f"not a review case: `{name}` must be non-empty text")
    return v


def open_case(
    policy: Policy,
    decision: DecisionRef,
    *,
    case_id: str,
    resident: str,
    grounds: str,
    corrections: Sequence[Correction] | Mapping[str, tuple[Any, str]] = (),
    filed: dt.date,
) -> Case:
    """File a complaint against ``decision``: the case, with its deadline from the policy.

    Args:
        policy: The policy the decision applied; its ``review`` section gives the deadline.
        decision: The decision complained about.
        case_id: The case's identifier.
        resident: The complainant's resident id.
        grounds: Why the complainant asks for a review.
        corrections: The corrected facts: :class:`Correction` objects, or a mapping
            ``{attribute: (value, evidence)}``.
        filed: The date the case is filed.

    Returns:
        The :class:`Case`, in state ``filed``.

    Raises:
        ReviewError: ``FA794`` if the policy has no ``review`` section; ``FA793`` if a
            correction names the id or an unknown attribute, names one attribute twice, or has
            no evidence reference; ``FA798`` for an empty case id, resident or grounds.
    """
    spec = policy.review
    if spec is None:
        raise ReviewError(
            "FA794",
            f"policy {policy.policy.id!r} has no `review` section: it states no deadline and no"
            " remedy for a review; add `review: {deadline_days: N, remedy: ...}`",
            case=case_id,
        )
    for name, value in (("case id", case_id), ("resident", resident), ("grounds", grounds)):
        if not isinstance(value, str) or not value.strip():
            raise ReviewError("FA798", f"the {name} must be non-empty text", case=case_id or None)
    fixed = _corrections(policy, corrections, case_id)
    return Case(
        id=case_id,
        decision=decision.decision,
        resident=str(resident),
        grounds=grounds,
        corrections=fixed,
        filed=filed,
        deadline=filed + dt.timedelta(days=spec.deadline_days),
    )


def _corrections(
    policy: Policy,
    given: Sequence[Correction] | Mapping[str, tuple[Any, str]],
    case_id: str,
) -> tuple[Correction, ...]:
    items: list[Correction] = (
        [Correction(k, v[0], v[1]) for k, v in given.items()]
        if isinstance(given, Mapping)
        else list(given)
    )
    seen: set[str] = set()
    for c in items:
        if c.attribute == policy.id_attribute:
            raise ReviewError(
                "FA793", f"`{c.attribute}` is the resident id; it cannot be corrected", case=case_id
            )
        if c.attribute not in policy.attributes:
            raise ReviewError(
                "FA793",
                f"`{c.attribute}` is not an attribute of the policy; attributes: "
                + ", ".join(a for a in policy.attributes if a != policy.id_attribute),
                case=case_id,
            )
        if c.attribute in seen:
            raise ReviewError("FA793", f"`{c.attribute}` is corrected twice", case=case_id)
        seen.add(c.attribute)
        if not isinstance(c.evidence, str) or not c.evidence.strip():
            raise ReviewError(
                "FA793",
                f"the correction of `{c.attribute}` names no evidence; every corrected fact needs"
                " a reference to its evidence",
                case=case_id,
            )
    return tuple(sorted(items, key=lambda c: c.attribute))


def overdue(cases: Iterable[Case], as_of: dt.date) -> list[Case]:
    """The cases unanswered after their deadline on ``as_of``, oldest deadline first."""
    late = [c for c in cases if c.state(as_of) == "overdue"]
    return sorted(late, key=lambda c: (c.deadline, c.id))


def answered(case: Case, on: dt.date, answer: Mapping[str, Any]) -> Case:
    """``case`` answered on ``on`` with ``answer`` (the complainant's view of the finding).

    Raises:
        ReviewError: ``FA795`` if the case is already answered, or ``on`` is before it was filed.
    """
    if case.answered is not None:
        raise ReviewError(
            "FA795", f"the case was already answered on {case.answered.isoformat()}", case=case.id
        )
    if on < case.filed:
        raise ReviewError(
            "FA795",
            f"an answer on {on.isoformat()} would come before the filing on"
            f" {case.filed.isoformat()}",
            case=case.id,
        )
    return replace(case, answered=on, answer=dict(answer))
