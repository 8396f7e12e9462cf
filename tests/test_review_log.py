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
    rerun_round,
)
from tests.records.conftest import log, log_url  # noqa: F401  (fixtures: both backends)
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
    kept: dict[int, fa.RotationState | None] = {}
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
        kept[k - 1] = state
        rnd, rec = record_round(
            log,
            policy,
            people,
            freeze=f,
            seed=s,
            operator="clerk",
            state=state,
            as_of=dt.date(2026, 12, 1),
        )
        # The same round run directly with the drawn seed.
        seeded = with_seed(policy, log.record(s).body["seed"])
        direct = fa.run_round(seeded, people, direct.state if direct else None)
        assert rnd.served == direct.served
        assert rnd.state.to_json() == direct.state.to_json()
        assert (rec.kind, rec.body["kind"], rec.body["round"]) == ("decision", "rotation_round", k)
        assert rec.body["served"] == 1
        state = fa.RotationState.from_json(rnd.state.to_json())  # kept by the office
    assert state is not None
    assert state.get("b") is not None
    assert state.get("b").departed == 3  # type: ignore[union-attr]
    with pytest.raises(RecordsError):  # a seed is used once
        record_round(log, policy, weeks[-1], freeze=f, seed=s, operator="clerk", state=state)
    with pytest.raises(RecordsError):  # a policy that draws lots needs a seed
        record_round(log, policy, weeks[-1], freeze=f, seed=None, operator="clerk", state=state)
    # verify re-runs every round from the states the office kept, to identical outcomes.
    freezes = [r.seq for r in log.records() if r.kind == "freeze"]
    report = verify_log(
        log,
        policies=[policy],
        data=dict(zip(freezes, weeks, strict=True)),
        rerun={"rotation_round": rerun_round(kept)},
    )
    assert report.ok, report.problems
    with pytest.raises(ReviewError) as info:  # a round is not replayed for review
        open_review(
            log,
            rec.seq,
            policy,
            weeks[-1],
            case_id="R-5",
            resident="a",
            grounds="g",
            filed=FILED,
            operator="officer",
        )
    assert info.value.code == "FA796"
    rounds = [r.seq for r in log.records() if r.body.get("kind") == "rotation_round"]
    assert report.rerun == rounds
    # A state the office altered is found: the round re-runs to other outcomes.
    doc = json.loads(kept[1].to_json())
    next(r for r in doc["residents"] if r["accrued"])["accrued"]["wait"] += 5
    altered = {**kept, 1: fa.RotationState.from_dict(doc)}
    report = verify_log(
        log,
        policies=[policy],
        data=dict(zip(freezes, weeks, strict=True)),
        rerun={"rotation_round": rerun_round(altered)},
    )
    assert not report.ok
    assert [p.record for p in report.problems] == [rounds[1]]


def _csv(path: Path, people: list[dict[str, Any]]) -> Path:
    heads = list(people[0])
    rows = [
        ",".join(str(p[h]).lower() if isinstance(p[h], bool) else str(p[h]) for h in heads)
        for p in people
    ]
    path.write_text(",".join(heads) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _size(db: str) -> int:
    with DecisionLog.open(db) as opened:
        return len(opened)


def test_command_line_review_cases_and_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fairalloc.cli import main

    db = str(tmp_path / "log.db")
    policy = tmp_path / "care.yaml"
    policy.write_text(
        _policy({"deadline_days": 15, "remedy": "supernumerary"}).model_dump_json(exclude_none=True)
    )
    data = _csv(tmp_path / "people.csv", PEOPLE)
    op = ["--operator", "clerk"]
    assert (
        main(
            [
                "log",
                "register",
                db,
                str(policy),
                "--approved-by",
                "committee",
                "--approved-at",
                "2026-11-20",
                *op,
            ]
        )
        == 0
    )
    assert main(["freeze", db, str(policy), str(data), *op]) == 0
    assert (
        main(["draw", db, "--freeze", "1", "--public-randomness", "07 12", "--how", "dice", *op])
        == 0
    )
    assert main(["decide", db, str(policy), str(data), "--freeze", "1", "--seed", "2", *op]) == 0
    capsys.readouterr()
    case_file = tmp_path / "case.json"
    opened = [
        "review",
        "open",
        db,
        str(policy),
        str(data),
        "--decision",
        "3",
        "--case",
        "R-9",
        "--resident",
        "COMPLAINANT",
        "--grounds",
        "wrong need",
        "--correct",
        "need=90=report 118",
        "--filed",
        "2026-12-02",
        "--out",
        str(case_file),
        *op,
    ]
    assert main(opened) == 0
    assert "answer due by 2026-12-17" in capsys.readouterr().out
    assert main(["cases", db, "--overdue", "--as-of", "2026-12-20"]) == 0
    out = capsys.readouterr().out
    assert "1 overdue cases" in out
    assert "R-9\toverdue" in out
    assert (
        main(
            [
                "review",
                "answer",
                db,
                str(policy),
                str(data),
                "--case-file",
                str(case_file),
                "--on",
                "2026-12-21",
                "--lang",
                "zh-CN",
                *op,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "补救" in out
    assert "晚于期限" in out
    for other in ("OTHER-A", "OTHER-B", "OTHER-C"):
        assert other not in out
    assert main(["cases", db, "--overdue", "--as-of", "2026-12-22"]) == 0
    assert "0 overdue cases" in capsys.readouterr().out
    # Usage and data errors: exit 2 and 1, never a traceback.
    bad = [*opened[:-4], "--correct", "need", "--out", str(tmp_path / "c2.json"), *op]
    assert main(bad) == 2
    again = [*opened[:-4], "--out", str(tmp_path / "c3.json"), *op]
    assert main(again) == 1
    assert "FA795" in capsys.readouterr().err

    # A rotation, one round a week.
    rot = tmp_path / "rot.yaml"
    rot.write_text(
        _rotation_policy({"capacity": 1, "accrue": {"wait": 1}}).model_dump_json(exclude_none=True)
    )
    assert (
        main(
            [
                "log",
                "register",
                db,
                str(rot),
                "--approved-by",
                "committee",
                "--approved-at",
                "2026-11-20",
                *op,
            ]
        )
        == 0
    )
    state = tmp_path / "state.json"
    weeks = [_people(("a", 3), ("b", 5)), _people(("a", 3), ("b", 5), ("c", 9))]
    kept: list[tuple[int, Path]] = []
    for k, people in enumerate(weeks, start=1):
        week = _csv(tmp_path / f"week{k}.csv", people)
        assert main(["freeze", db, str(rot), str(week), *op]) == 0
        n = _size(db) - 1
        kept.append((n, week))
        assert (
            main(
                [
                    "draw",
                    db,
                    "--freeze",
                    str(n),
                    "--public-randomness",
                    f"w{k}",
                    "--how",
                    "dice",
                    *op,
                ]
            )
            == 0
        )
        args = [
            "round",
            db,
            str(rot),
            str(week),
            "--freeze",
            str(n),
            "--seed",
            str(n + 1),
            "--state-out",
            str(state),
            *op,
        ]
        if k > 1:
            assert main(args) == 1  # the log has a round: its state is needed
            assert "FA786" in capsys.readouterr().err
            args += ["--state", str(state)]
        capsys.readouterr()
        assert main(args) == 0
        assert f"round {k}, 1 served" in capsys.readouterr().out
        (tmp_path / f"state{k}.json").write_text(state.read_text())
    assert fa.RotationState.from_json(state.read_text()).round == 2
    # verify re-runs both rounds from the week's data and the state round 1 left; without that
    # state, round 2 is listed as not re-run rather than failing.
    data = [a for n, week in kept for a in ("--data", f"{n}={week}")]
    base = ["verify", db, "--policy", str(rot), *data]
    assert main([*base, "--state", f"1={tmp_path / 'state1.json'}"]) == 0
    out = capsys.readouterr().out
    rerun = [line for line in out.splitlines() if line.startswith("decisions re-run")]
    assert rerun, out
    assert all(str(n + 2) in rerun[0] for n, _ in kept), out  # each round's decision record
    assert main(base) == 0
    assert "not re-run" in capsys.readouterr().out


@pytest.mark.slow
def test_the_review_and_rounds_example_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        Path(__file__).resolve().parent.parent / "examples" / "records" / "review_and_rounds.py"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "With the corrected facts: served." in done.stdout
    assert "every round re-run from the state files: OK" in done.stdout
