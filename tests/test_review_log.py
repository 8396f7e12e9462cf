"""Review cases and rotation rounds in the decision log, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import fairalloc as fa
from fairalloc.errors import RecordsError, ReviewError, RotationStateError
from fairalloc.records import DecisionLog, verify_log, with_seed
from fairalloc.review import (
    Case,
    answer_review,
    case_statuses,
    open_review,
    record_round,
)
from tests.test_records import log, log_url  # noqa: F401  (fixtures: both backends)
from tests.test_review import PEOPLE, _policy
from tests.test_rotation import _people
from tests.test_rotation import _policy as _rotation_policy

T0 = "2026-12-01T09:00:00Z"
FILED = dt.date(2026, 12, 2)


def _decided(dlog: DecisionLog, policy: fa.Policy, data: Any = PEOPLE) -> int:
    p = dlog.register_policy(
        policy, approved_by="committee", approved_at="2026-11-20", operator="clerk", time=T0
    )
    f = dlog.freeze(p.seq, data, policy=policy, operator="clerk", time=T0)
    s = dlog.draw_seed(f.seq, public_randomness="07 12 19", how="state lottery", operator="clerk")
    return dlog.decide(policy, data, freeze=f.seq, seed=s.seq, operator="clerk", time=T0).seq


def _open(dlog: DecisionLog, policy: fa.Policy, seq: int, case_id: str = "R-1") -> Case:
    return open_review(
        dlog,
        seq,
        policy,
        PEOPLE,
        case_id=case_id,
        resident="COMPLAINANT",
        grounds="the assessment was entered as 10; the report says 90",
        corrections={"need": (90, "report 2026-118")},
        filed=FILED,
        operator="review officer",
        time=T0,
    )


def test_a_review_on_the_log(log: DecisionLog, tmp_path: Path) -> None:  # noqa: F811
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    seq = _decided(log, policy)
    case = _open(log, policy, seq)
    assert case.deadline == dt.date(2026, 12, 17)
    [status] = case_statuses(log)
    assert (status.case, status.decision_record, status.answered) == ("R-1", seq, None)
    assert status.state(dt.date(2026, 12, 18)) == "overdue"
    with pytest.raises(ReviewError) as info:
        _open(log, policy, seq)
    assert info.value.code == "FA795"
    # Another case's content under this id is refused: the log committed to the case opened.
    changed = Case.from_dict({**json.loads(case.to_json()), "grounds": "something else"})
    with pytest.raises(ReviewError) as info:
        answer_review(log, changed, policy, PEOPLE, on=FILED, operator="officer")
    assert info.value.code == "FA798"
    finding = answer_review(
        log, case, policy, PEOPLE, on=dt.date(2026, 12, 10), operator="review officer", time=T0
    )
    assert (finding.changed, finding.remedy) == (True, "supernumerary")
    # The replay drew with the recorded seed, not the policy file's.
    decision = log.decision(seq, policy, PEOPLE)
    assert list(finding.served_after[:-1]) == decision.allocation.served_ids()
    [status] = case_statuses(log)
    assert status.answered == dt.date(2026, 12, 10)
    assert status.state(dt.date(2026, 12, 18)) == "answered"
    with pytest.raises(ReviewError) as info:
        answer_review(log, case, policy, PEOPLE, on=FILED, operator="officer")
    assert info.value.code == "FA795"
    kinds = [r.kind for r in log.records()]
    assert kinds[-2:] == ["review.opened", "review.answered"]
    answered = log.records()[-1].body
    assert answered["remedy"] == "supernumerary"
    assert answered["outcome_changed"] is True
    # The published log holds commitments only: no resident, grounds or evidence.
    export = tmp_path / "log.jsonl"
    log.export(export)
    text = export.read_text()
    for secret in ("COMPLAINANT", "OTHER-A", "report 2026-118", "assessment"):
        assert secret not in text
    assert verify_log(export).ok


def test_a_review_refuses_other_inputs(log: DecisionLog) -> None:  # noqa: F811
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    seq = _decided(log, policy)
    with pytest.raises(ReviewError) as info:
        _open(log, _policy({"deadline_days": 15, "remedy": "supernumerary"}, capacity=3), seq)
    assert info.value.code == "FA790"
    other = [dict(p) for p in PEOPLE]
    other[1]["need"] = 87
    with pytest.raises(ReviewError) as info:
        open_review(
            log,
            seq,
            policy,
            other,
            case_id="R-2",
            resident="COMPLAINANT",
            grounds="g",
            filed=FILED,
            operator="officer",
        )
    assert info.value.code == "FA791"
    with pytest.raises(ReviewError) as info:
        open_review(
            log,
            seq,
            policy,
            PEOPLE,
            case_id="R-3",
            resident="NOBODY",
            grounds="g",
            filed=FILED,
            operator="officer",
        )
    assert info.value.code == "FA799"


def _week(
    dlog: DecisionLog, policy: fa.Policy, people: list[dict[str, Any]], p: int
) -> tuple[int, int]:
    f = dlog.freeze(p, people, policy=policy, operator="clerk", time=T0)
    s = dlog.draw_seed(f.seq, public_randomness=f"week {f.seq}", how="public", operator="clerk")
    return f.seq, s.seq


def test_rounds_run_from_the_state_the_log_recorded(log: DecisionLog) -> None:  # noqa: F811
    policy = _rotation_policy({"capacity": 1, "accrue": {"wait": 1}}, points="need + wait")
    p = log.register_policy(
        policy, approved_by="committee", approved_at="2026-11-20", operator="clerk", time=T0
    ).seq
    weeks = [
        _people(("a", 3), ("b", 5), ("c", 4)),
        _people(("a", 3), ("b", 5), ("c", 4), ("d", 9)),  # d arrives
        _people(("a", 3), ("d", 9)),  # b and c leave
    ]
    state = None
    direct = None
    for k, people in enumerate(weeks, start=1):
        f, s = _week(log, policy, people, p)
        if k > 1:
            with pytest.raises(RotationStateError) as info:
                record_round(log, policy, people, freeze=f, seed=s, operator="clerk")
            assert info.value.code == "FA786"
            assert state is not None
            doc = json.loads(state.to_json())
            present = next(r for r in doc["residents"] if r["accrued"])
            present["accrued"]["wait"] += 5  # a longer wait than recorded
            forged = fa.RotationState.from_dict(doc)
            with pytest.raises(RotationStateError) as info:
                record_round(log, policy, people, freeze=f, seed=s, operator="clerk", state=forged)
            assert info.value.code == "FA785"
        rnd, rec = record_round(
            log, policy, people, freeze=f, seed=s, operator="clerk", state=state
        )
        # The same round run directly with the drawn seed.
        seeded = with_seed(policy, log.record(s).body["seed"])
        direct = fa.run_round(seeded, people, direct.state if direct else None)
        assert rnd.served == direct.served
        assert rnd.state.to_json() == direct.state.to_json()
        assert rec.body["round"] == k
        assert rec.body["served"] == 1
        state = fa.RotationState.from_json(rnd.state.to_json())  # kept by the office
    assert state is not None
    assert state.get("b") is not None
    assert state.get("b").departed == 3  # type: ignore[union-attr]
    with pytest.raises(RotationStateError) as info:  # a seed is used once
        record_round(log, policy, weeks[-1], freeze=f, seed=s, operator="clerk", state=state)
    assert info.value.code == "FA787"
    with pytest.raises(RecordsError):  # a policy that draws lots needs a seed
        record_round(log, policy, weeks[-1], freeze=f, seed=None, operator="clerk", state=state)
    assert verify_log(log).ok
