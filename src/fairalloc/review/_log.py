"""Review cases and rotation rounds in a decision log (:mod:`fairalloc.records`).

Records appended (kinds, bodies; residents' data only as hiding commitments):

* ``review.opened``: ``case``, ``decision`` (hash) and ``decision_record``, ``filed``,
  ``deadline``, ``case_commitment`` (the leaf of the case's canonical JSON under a nonce kept
  in the operator's store);
* ``review.answered``: ``case``, ``opened`` (hash) and ``opened_record``, ``answered``,
  ``late``, ``outcome_changed``, ``remedy``, ``answer_commitment``;
* ``round``: a rotation round: the policy, freeze and seed records it ran on, its number,
  counts, the previous round's hash and ``state_root``, the Merkle root over one hiding leaf
  per resident's record in the rotation state after the round.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fairalloc._population import Population
from fairalloc.allocation._rotation import Round, run_round
from fairalloc.allocation._state import RotationState
from fairalloc.errors import RecordsError, ReviewError, RotationStateError
from fairalloc.policy._model import Policy
from fairalloc.records import DecisionLog, Opening, Record, commit, policy_hash, tree_root
from fairalloc.records._commit import fingerprint, id_order, recommit, row_messages
from fairalloc.records._log import check_rows, library_version, with_seed
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
]

#: Records errors of a replay, and the review error each becomes.
_REPLAY_CODES = {"FA712": "FA790", "FA713": "FA791", "FA717": "FA792"}


def recorded_decision(log: DecisionLog, seq: int, policy: Policy, residents: Any) -> DecisionRef:
    """What decision ``seq`` of ``log`` recorded, once it is re-run from ``policy`` and data.

    The log checks that the policy is the one registered (its hash), that the data are the
    list frozen (the row commitments), and that the re-run gives the recorded outcome.

    Raises:
        ReviewError: ``FA790`` another policy, ``FA791`` other data, ``FA792`` another
            outcome (the log's own error is chained as the cause).
    """
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


def last_round(log: DecisionLog, policy_id: str) -> Record | None:
    """The last ``round`` record of the rotation of policy ``policy_id``, if any."""
    found = None
    for r in log.records():
        if r.kind == "round" and r.body.get("policy_id") == policy_id:
            found = r
    return found


def _state_messages(state: RotationState) -> tuple[list[str], list[bytes]]:
    ids = [r.id for r in state.residents]
    messages = [
        json.dumps(r.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
        for r in state.residents
    ]
    return ids, messages


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
    opening = log.store.opening(prev.seq)
    ids, messages = _state_messages(state)
    if opening is None or opening.ids != ids:
        raise RotationStateError(
            "FA785",
            f"the state given is not the one round {prev.body['round']} (record {prev.seq})"
            " recorded: its residents differ",
        )
    root = tree_root(recommit(messages, opening.nonces)).hex()
    if root != prev.body["state_root"]:
        raise RotationStateError(
            "FA785",
            f"the state given is not the one round {prev.body['round']} (record {prev.seq})"
            " recorded: its commitment differs",
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
    time: str | None = None,
) -> tuple[Round, Record]:
    """Run the next round of the policy's rotation from the log, and record it (``round``).

    As for a decision, the week's residents are frozen first (``freeze``), and a policy that
    draws lots takes the seed drawn after that freeze (``seed``), never its file's. The
    round starts from the state the log's last round of this rotation recorded: ``state``
    must be that state (the log keeps a commitment to it, the office keeps the state itself);
    before the first round, no state.

    Returns:
        The round, and its record.

    Raises:
        RotationStateError: ``FA785`` a state that is not the one the last round recorded
            (or one given before any round), ``FA786`` no state although the log has rounds.
        RotationStateError: ``FA787`` a seed already used by a round or a decision.
        RecordsError: as :meth:`DecisionLog.decide` (policy not registered, data not as
            frozen, seed not drawn after the freeze).
    """
    frec = log._kind(freeze, "freeze")
    prec = log._kind(int(frec.body["policy_record"]), "policy")
    log._check_policy(prec, policy)
    srec = log._check_seed(frec, seed, policy)
    if srec is not None:
        for r in log.records():
            if r.kind in ("round", "decision") and r.body.get("seed") == srec.hash:
                raise RotationStateError(
                    "FA787",
                    f"seed record {srec.seq} was already used by {r.kind} record {r.seq}; each"
                    " round draws its own seed after its own freeze",
                )
    population = Population.of(residents, policy)
    order = id_order(population.ids)
    opening = log.store.opening(frec.seq)
    if opening is None:
        raise RecordsError("FA713", "the freeze's openings are not kept here", record=frec.seq)
    if not opening.fingerprint or fingerprint(population, order) != opening.fingerprint:
        ids = population.ids[order].astype(str).tolist()
        check_rows(frec, ids, row_messages(population, order), opening, log.leaves(frec.seq))
    prev = last_round(log, policy.policy.id)
    _check_state(log, prev, state)
    run = with_seed(policy, srec.body["seed"]) if srec is not None else policy
    rnd = run_round(run, population, state, capacity=capacity)
    ids, messages = _state_messages(rnd.state)
    nonces, leaves = commit(messages)
    body = {
        "capacity": rnd.simulation.capacity,
        "eligible": rnd.eligible,
        "freeze": frec.hash,
        "freeze_record": frec.seq,
        "kind": "rotation",
        "library": library_version(),
        "list_root": frec.body["root"],
        "policy": prec.hash,
        "policy_hash": prec.body["policy_hash"],
        "policy_id": policy.policy.id,
        "policy_record": prec.seq,
        "present": rnd.present,
        "previous": prev.hash if prev is not None else None,
        "round": rnd.round,
        "seed": srec.hash if srec is not None else None,
        "seed_record": srec.seq if srec is not None else None,
        "served": len(rnd.served),
        "state_count": len(ids),
        "state_root": tree_root(leaves).hex(),
    }
    rec = log.append(
        "round", body, operator=operator, time=time, leaves=leaves, opening=Opening(ids, nonces)
    )
    return rnd, rec
