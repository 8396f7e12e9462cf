"""A re-review and weekly rotation rounds, recorded in a decision log.

Usage: python examples/records/review_and_rounds.py [WORKDIR]

1. On the elderly-care example (with a ``review`` section added to its policy): a recorded
   decision, a complaint from the first resident left waiting, with a corrected assessment,
   the exact replay, the remedy and the answer the complainant is shown, and the cases'
   states with their deadlines.
2. On the activity-places example: two weekly rounds of its rotation, each frozen, drawn and
   run from the state the log's previous round committed to, then verified by re-running
   every round from the state files.

See docs/review.md and docs/allocation.md.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

import fairalloc as fa
from fairalloc.records import DecisionLog, verify_log
from fairalloc.review import answer_review, case_statuses, open_review, record_round, rerun_round

HERE = Path(__file__).resolve().parent
CARE = HERE.parent / "elderly-care"
PLACES = HERE.parent / "activity-places"


def review_part(work: Path, log: DecisionLog) -> bool:
    policy_file = work / "elderly-care-with-review.yaml"
    policy_file.write_text((CARE / "policy.yaml").read_text(encoding="utf-8"))
    policy = fa.load_policy(policy_file)
    data = CARE / "residents.csv"
    p = log.register_policy(
        policy, approved_by="residents' committee", approved_at="2026-11-20", operator="clerk"
    )
    f = log.freeze(p.seq, data, policy=policy, operator="clerk")
    s = log.draw_seed(f.seq, public_randomness="07 12 19 23 31 40", how="public", operator="clerk")
    decision = log.decide(policy, data, freeze=f.seq, seed=s.seq, operator="clerk")
    order = decision.allocation.to_dicts()
    waiting = min(
        (r for r in order if r["eligible"] and not r["served"]), key=lambda r: r["position"]
    )
    resident = str(waiting["id"])
    print(f"1. decision {decision.seq}: {resident} waits at position {waiting['position']}")
    case = open_review(
        log,
        decision.seq,
        policy,
        data,
        case_id="2026-R-0001",
        resident=resident,
        grounds="my daily-living assessment was entered wrongly",
        corrections={"adl_score": (10, "assessment report 2026-118")},
        filed=dt.date(2026, 12, 2),
        operator="review officer",
    )
    (work / "2026-R-0001.json").write_text(case.to_json(), encoding="utf-8")
    print(f"2. case {case.id} opened, answer due by {case.deadline}")
    late = [c.case for c in case_statuses(log) if c.state(dt.date(2026, 12, 20)) == "overdue"]
    print(f"   overdue on 2026-12-20 if unanswered: {late}")
    finding = answer_review(
        log, case, policy, data, on=dt.date(2026, 12, 10), operator="review officer"
    )
    print("3. the answer the complainant is shown:\n")
    print("   " + finding.complainant_text().replace("\n", "\n   ")[:1200] + "\n   ...")
    print(f"4. officer: remedy {finding.remedy}, displaced: {list(finding.displaced) or 'nobody'}")
    return finding.case.state(dt.date(2026, 12, 20)) == "answered"


def rounds_part(work: Path, log: DecisionLog) -> bool:
    policy = fa.load_policy(PLACES / "policy.yaml")
    everyone = fa.Population.from_csv(PLACES / "residents.csv", policy)
    p = log.register_policy(
        policy, approved_by="residents' committee", approved_at="2026-11-20", operator="clerk"
    )
    weeks = [everyone.take(range(140)), everyone.take(range(10, 150))]  # 10 leave, 10 come
    state = None
    states: dict[int, fa.RotationState | None] = {}
    for k, week in enumerate(weeks, start=1):
        f = log.freeze(p.seq, week, policy=policy, operator="clerk")
        s = log.draw_seed(f.seq, public_randomness=f"week {k}", how="public", operator="clerk")
        states[k - 1] = state
        rnd, rec = record_round(
            log,
            policy,
            week,
            freeze=f.seq,
            seed=s.seq,
            state=state,
            operator="clerk",
            as_of=dt.date(2026, 12, 1),
        )
        (work / "state.json").write_text(rnd.state.to_json(), encoding="utf-8")
        state = fa.RotationState.from_json((work / "state.json").read_text(encoding="utf-8"))
        print(f"{4 + k}. week {k}: record {rec.seq}, served {', '.join(rnd.served[:4])}, ...")
    freezes = [r.seq for r in log.records() if r.kind == "freeze"][-2:]
    report = verify_log(
        log,
        policies=[policy],
        data=dict(zip(freezes, weeks, strict=True)),
        rerun={"rotation_round": rerun_round(states)},
    )
    print(f"7. every round re-run from the state files: {'OK' if report.ok else 'FAILED'}")
    return report.ok


def main(work: Path) -> int:
    with DecisionLog.open(work / "office-log.db") as log:
        ok = review_part(work, log) and rounds_part(work, log)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp)))
