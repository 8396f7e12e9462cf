"""Review cases and rotation rounds in a decision log (:mod:`fairalloc.records`).

Records appended (kinds, bodies; residents' data only as hiding commitments):

* ``review.opened``: ``case``, ``decision`` (hash) and ``decision_record``, ``filed``,
  ``deadline``, ``case_commitment`` (the leaf of the case's canonical JSON under a nonce kept
  in the operator's store);
* ``review.answered``: ``case``, ``opened`` (hash) and ``opened_record``, ``answered``,
  ``late``, ``outcome_changed``, ``remedy``, ``answer_commitment``;
* a ``decision`` of kind ``rotation_round`` (:meth:`DecisionLog.record_decision`): the
  policy, freeze and seed records it ran on, one hiding outcome leaf per present resident
  (served or not, and their record in the rotation after the round), and as extra facts the
  rotation, the round's number and counts, the previous round's hash and ``state``, a hiding
  commitment to the whole rotation state after the round (:func:`state_commitment`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fairalloc._compiler import compiled_for
from fairalloc._population import Population
from fairalloc.allocation._rotation import Round, run_round
from fairalloc.allocation._state import RotationState
from fairalloc.errors import RecordsError, ReviewError, RotationStateError
from fairalloc.policy._model import Policy
from fairalloc.records import (
    DecisionLog,
    Opening,
    Record,
    Rerun,
    canonical,
    commit,
    id_order,
    policy_hash,
)
from fairalloc.records._commit import recommit
from fairalloc.review._case import Case, Correction, DecisionRef, open_case
from fairalloc.review._review import Finding, review

__all__ = [
    "CaseStatus",
    "answer_review",
    "case_statuses",
    "last_round",
    "open_review",
    "record_round",
    "recorded_decision",
    "rerun_round",
    "round_outcomes",
    "state_commitment",
]

#: Records errors of a replay, and the review error each becomes.
_REPLAY_CODES = {"FA712": "FA790", "FA713": "FA791", "FA717": "FA792"}


def recorded_decision(log: DecisionLog, seq: int, policy: Policy, residents: Any) -> DecisionRef:
    """What decision ``seq`` of ``log`` recorded, once it is re-run from ``policy`` and data.

    The log checks that the policy is the one registered (its hash), that the data are the
    list frozen (the row commitments), and that the re-run gives the recorded outcome.

    Raises:
        ReviewError: ``FA790`` another policy, ``FA791`` other data, ``FA792`` another
            outcome (the log's own error is chained as the cause), ``FA796`` a decision of
            another kind than an allocation.
    """
    rec = log.record(seq)
    kind = rec.body.get("kind") if rec.kind == "decision" else None
    if kind is not None and kind != "allocation":
        raise ReviewError(
            "FA796",
            f"decision {seq} is a {kind}: only a capacity allocation can be replayed for review",
        )
    try:
        decision = log.decision(seq, policy, residents)
    except RecordsError as e:
        code = _REPLAY_CODES.get(getattr(e, "code", ""))
        if code is None:
            raise
        raise ReviewError(
            code, f"decision {seq} cannot be replayed from the inputs given: {e}"
        ) from e
    body = decision.record.body
    return DecisionRef(
        decision=str(seq),
        policy_hash=str(body["policy_hash"]),
        data_hash=str(body["list_root"]),
        capacity=int(body["capacity"]),
        as_of=dt.date.fromisoformat(body["as_of"]),
        served=tuple(decision.allocation.served_ids()),
        seed=body.get("seed_value"),
    )


def _opened(log: DecisionLog) -> dict[str, Record]:
    return {str(r.body["case"]): r for r in log.records() if r.kind == "review.opened"}


def _answered(log: DecisionLog) -> dict[str, Record]:
    return {str(r.body["case"]): r for r in log.records() if r.kind == "review.answered"}


def open_review(
    log: DecisionLog,
    decision: int,
    policy: Policy,
    residents: Any,
    *,
    case_id: str,
    resident: str,
    grounds: str,
    corrections: Sequence[Correction] | Mapping[str, tuple[Any, str]] = (),
    filed: dt.date,
    operator: str,
    time: str | None = None,
) -> Case:
    """Open a case on decision ``decision`` of ``log`` and record it (``review.opened``).

    The decision is re-run first, so a case is opened only on a decision that replays from
    the policy and data given. The log keeps a commitment to the case, never its content:
    keep the case (``case.to_json()``) with the office's files.

    Raises:
        ReviewError: as :func:`recorded_decision` and :func:`~fairalloc.review.open_case`;
            ``FA795`` if a case with this id is already in the log.
    """
    ref = recorded_decision(log, decision, policy, residents)
    if case_id in _opened(log):
        raise ReviewError("FA795", "a case with this id is already in the log", case=case_id)
    case = open_case(
        policy,
        ref,
        case_id=case_id,
        resident=resident,
        grounds=grounds,
        corrections=corrections,
        filed=filed,
    )
    if case.resident not in set(Population.of(residents, policy).ids.tolist()):
        raise ReviewError(
            "FA799",
            f"resident {case.resident!r} is not among the decision's residents",
            case=case_id,
        )
    nonces, leaves = commit([case.to_json().encode("utf-8")])
    rec = log.record(decision)
    body = {
        "case": case.id,
        "case_commitment": leaves[0].hex(),
        "deadline": case.deadline.isoformat(),
        "decision": rec.hash,
        "decision_record": rec.seq,
        "filed": case.filed.isoformat(),
    }
    log.append(
        "review.opened",
        body,
        operator=operator,
        time=time,
        leaves=leaves,
        opening=Opening([case.resident], nonces),
    )
    return case


def _check_commitment(log: DecisionLog, rec: Record, case: Case) -> None:
    opening = log.store.opening(rec.seq)
    if opening is None or opening.ids != [case.resident]:
        raise ReviewError(
            "FA798",
            "the log keeps no opening of this case (erased, or another resident's)",
            case=case.id,
        )
    leaf = recommit([case.to_json().encode("utf-8")], opening.nonces)[0]
    if leaf.hex() != rec.body["case_commitment"]:
        raise ReviewError(
            "FA798",
            f"the case given is not the case opened in record {rec.seq}: its commitment differs",
            case=case.id,
        )


def answer_review(
    log: DecisionLog,
    case: Case,
    policy: Policy,
    residents: Any,
    *,
    on: dt.date,
    operator: str,
    lang: str = "en",
    time: str | None = None,
) -> Finding:
    """Review ``case`` (as opened in ``log``) and record the answer (``review.answered``).

    The case must be the one the log committed to when it was opened; the decision is
    replayed with the seed it drew with, from inputs the log checks.

    Raises:
        ReviewError: ``FA798`` an unknown case or one that differs from the one opened,
            ``FA795`` a case already answered, and as :func:`~fairalloc.review.review`.
    """
    opened = _opened(log).get(case.id)
    if opened is None:
        raise ReviewError("FA798", "no case with this id was opened in the log", case=case.id)
    if case.id in _answered(log):
        raise ReviewError("FA795", "the case is already answered in the log", case=case.id)
    _check_commitment(log, opened, case)
    ref = recorded_decision(log, int(opened.body["decision_record"]), policy, residents)
    finding = review(
        case,
        policy,
        residents,
        ref,
        policy_hash=policy_hash(policy),
        data_hash=ref.data_hash,
        on=on,
        lang=lang,
    )
    answer = json.dumps(finding.for_complainant(), sort_keys=True, separators=(",", ":"))
    nonces, leaves = commit([answer.encode("utf-8")])
    body = {
        "answer_commitment": leaves[0].hex(),
        "answered": on.isoformat(),
        "case": case.id,
        "late": finding.case.late,
        "opened": opened.hash,
        "opened_record": opened.seq,
        "outcome_changed": finding.changed,
        "remedy": finding.remedy,
    }
    log.append(
        "review.answered",
        body,
        operator=operator,
        time=time,
        leaves=leaves,
        opening=Opening([case.resident], nonces),
    )
    return finding


@dataclass(frozen=True, slots=True)
class CaseStatus:
    """A case as the log shows it, without its content.

    Attributes:
        case: The case's id.
        decision_record: The decision it is about.
        filed: When filed.
        deadline: The last day to answer.
        answered: When answered (``None``: not yet).
        opened_record: The ``review.opened`` record.
    """

    case: str
    decision_record: int
    filed: dt.date
    deadline: dt.date
    answered: dt.date | None
    opened_record: int

    def state(self, as_of: dt.date) -> str:
        """``answered``, ``overdue`` or ``filed`` on ``as_of`` (as :meth:`Case.state`)."""
        if self.answered is not None and self.answered <= as_of:
            return "answered"
        return "overdue" if as_of > self.deadline else "filed"


def case_statuses(log: DecisionLog) -> list[CaseStatus]:
    """Every case opened in ``log``, by deadline then id."""
    answered = _answered(log)
    out = [
        CaseStatus(
            case=cid,
            decision_record=int(r.body["decision_record"]),
            filed=dt.date.fromisoformat(r.body["filed"]),
            deadline=dt.date.fromisoformat(r.body["deadline"]),
            answered=(
                dt.date.fromisoformat(answered[cid].body["answered"]) if cid in answered else None
            ),
            opened_record=r.seq,
        )
        for cid, r in _opened(log).items()
    ]
    return sorted(out, key=lambda c: (c.deadline, c.case))


# -- rotation rounds ------------------------------------------------------------------------

#: The decision kind of a rotation round in the log.
ROUND_KIND = "rotation_round"


def last_round(log: DecisionLog, policy_id: str) -> Record | None:
    """The last recorded round of the rotation of policy ``policy_id``, if any."""
    found = None
    for r in log.records():
        if (
            r.kind == "decision"
            and r.body.get("kind") == ROUND_KIND
            and r.body.get("rotation") == policy_id
        ):
            found = r
    return found


def state_commitment(state: RotationState, nonces: bytes) -> str:
    """The hiding commitment to a rotation state recorded with the round that left it.

    ``SHA-256("fairalloc rotation state" || 0x00 || SHA-256(nonces) || canonical JSON)``,
    where ``nonces`` are the nonces of the round's freeze (private: in the operator's store
    and in the openings given to a verifier). Without them, the commitment reveals nothing of
    the state, not even to someone who could guess it.
    """
    salt = hashlib.sha256(nonces).digest()
    data = b"fairalloc rotation state\x00" + salt + state.to_json().encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def round_outcomes(rnd: Round, ids: Sequence[str]) -> list[bytes]:
    """Each present resident's outcome of ``rnd`` as canonical JSON, in the order of ``ids``.

    The outcome is whether the resident was served this round, and their record in the
    rotation after it (times served, waits, accrued values): a receipt of their standing.
    """
    served = set(rnd.served)
    out = []
    for rid in ids:
        kept = rnd.state.get(rid)
        if kept is None:  # every resident present is in the state
            raise RotationStateError("FA780", f"resident {rid!r} is missing from the state")
        out.append(canonical({**kept.to_dict(), "round": rnd.round, "served": rid in served}))
    return out


def _check_state(log: DecisionLog, prev: Record | None, state: RotationState | None) -> None:
    if prev is None:
        if state is not None and state.round:
            raise RotationStateError(
                "FA785", "the log holds no round of this rotation, but a state was given"
            )
        return
    if state is None:
        raise RotationStateError(
            "FA786",
            f"the log's last round of this rotation is round {prev.body['round']} (record"
            f" {prev.seq}): give the state it left",
        )
    if state.round != prev.body["round"]:
        raise RotationStateError(
            "FA785",
            f"the state given is after round {state.round}; the log's last round of this"
            f" rotation is round {prev.body['round']} (record {prev.seq})",
        )
    opening = log.store.opening(int(prev.body["freeze_record"]))
    if opening is None or state_commitment(state, opening.nonces) != prev.body["state"]:
        raise RotationStateError(
            "FA785",
            f"the state given is not the one round {prev.body['round']} (record {prev.seq})"
            " left: its commitment differs",
        )


def record_round(
    log: DecisionLog,
    policy: Policy,
    residents: Any,
    *,
    freeze: int,
    seed: int | None,
    operator: str,
    state: RotationState | None = None,
    capacity: int | None = None,
    as_of: dt.date | None = None,
    time: str | None = None,
) -> tuple[Round, Record]:
    """Run the next round of the policy's rotation from the log, and record it.

    A round is a decision (kind ``rotation_round``): the round's residents are frozen first
    (``freeze``), and a policy that draws lots takes the seed drawn after that freeze
    (``seed``), never its file's (:meth:`DecisionLog.prepare` checks all of it). The round
    starts from the state the log's last round of this rotation left: ``state`` must be that
    state (the log keeps a hiding commitment to it, the office keeps the state itself);
    before the first round, no state. Each present resident's outcome leaf holds whether
    they were served and their record in the rotation after the round.

    Returns:
        The round, and its ``decision`` record.

    Raises:
        RotationStateError: ``FA785`` a state that is not the one the last round left (or a
            state given before any round), ``FA786`` no state although the log has rounds.
        RecordsError: as :meth:`DecisionLog.decide` (policy not registered, data not as
            frozen, seed not drawn after the freeze or already used).
    """
    ready = log.prepare(policy, residents, freeze=freeze, seed=seed)
    prev = last_round(log, policy.policy.id)
    _check_state(log, prev, state)
    day = as_of or dt.datetime.now(dt.UTC).date()
    rnd = run_round(compiled_for(ready.policy, day), ready.population, state, capacity=capacity)
    outcomes = round_outcomes(rnd, ready.ids)
    rec, _ = log.record_decision(
        ready,
        ROUND_KIND,
        outcomes,
        as_of=day,
        capacity=rnd.simulation.capacity,
        served=len(rnd.served),
        operator=operator,
        time=time,
        extra={
            "eligible": rnd.eligible,
            "previous": prev.hash if prev is not None else None,
            "present": rnd.present,
            "rotation": policy.policy.id,
            "round": rnd.round,
            "state": state_commitment(rnd.state, ready.row_nonces),
        },
    )
    return rnd, rec


def rerun_round(states: Mapping[int, RotationState | None]) -> Rerun:
    """A re-run of recorded rounds for :func:`~fairalloc.records.verify_log` (``rerun=``).

    Args:
        states: The state each round left, by round number: the state files the office kept
            (the first round starts from none).

    Returns:
        A function that re-runs a ``rotation_round`` decision from the policy with its
        recorded seed and the frozen residents, and returns each resident's outcome; or None
        for a round after the first whose starting state is not among ``states`` (verify then
        lists it as not re-run).

    Examples:
        >>> rerun = rerun_round({})  # verify_log(..., rerun={"rotation_round": rerun})
    """

    def rerun(record: Record, policy: Policy, population: Population) -> list[bytes] | None:
        body = record.body
        number = int(body["round"])
        if number > 1 and number - 1 not in states:
            return None
        start = states.get(number - 1)
        cp = compiled_for(policy, dt.date.fromisoformat(body["as_of"]))
        rnd = run_round(cp, population, start, capacity=int(body["capacity"]))
        ids = population.id_column
        return round_outcomes(rnd, ids[id_order(ids)].tolist())

    return rerun
