"""A week of a community's life, handled event by event through durable-rules.

Usage: python examples/event-week/week.py [WORKDIR]

Before the week, the office recorded its decision on the elderly-care places (policy,
frozen list, public draw, decision) in a decision log. From Monday 7 to Sunday 13 December
2026, an event loop (``fairalloc.events.EventLoop``, ``pip install 'fairalloc[events]'``)
handles what happens, with a clock moved by hand so the week runs in a second:

* arrivals and a reassessment: each gets its verdict (eligibility, points, standing against
  the recorded cut-off) from the policy's engine;
* freed places: offered to the next resident in the recorded order, one offer declined, one
  lapsing after 72 hours (a ``tick`` notices), one accepted;
* two complaints: one answered within the policy's 3-day deadline, one left overdue (a
  ``tick`` raises ``case_overdue``, recorded in the log);
* Friday's round of the activity-centre rotation.

Every offer, case and round goes into the log. The week ends with ``fairalloc verify`` on the
log it wrote. See docs/events.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fairalloc as fa
from fairalloc.cli import main as fairalloc_cli
from fairalloc.events import Desk, EventLoop, ManualClock
from fairalloc.records import DecisionLog

HERE = Path(__file__).resolve().parent
CARE = HERE.parent / "elderly-care"
PLACES = HERE.parent / "activity-places"
#: The example's review section: complaints are answered within 3 days.


def at(day: int, hour: int = 9) -> dt.datetime:
    """A time in the week (day 7 is Monday 7 December 2026), in UTC."""
    return dt.datetime(2026, 12, day, hour, tzinfo=dt.UTC)


def plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """A resident's record as an event carries it: dates as ISO text."""
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in record.items()}


def show(when: dt.datetime, what: str, replies: list[dict[str, Any]]) -> None:
    """Print one event and what the loop answered."""
    print(f"{when:%a %H:%M}  {what}")
    for r in replies:
        kind = r["type"]
        if kind == "verdict":
            text = (
                f"{r['id']}: {'eligible' if r['eligible'] else 'not eligible'},"
                f" score {r['score']}, standing {r['standing']}"
                + (f", failed {', '.join(r['failed_eligibility'])}" if not r["eligible"] else "")
            )
        elif kind == "offer":
            text = f"offer {r['offer']} of {r['place']} to {r['resident']} (position"
            text += f" {r['position']}), open until {r['expires']}"
        elif kind == "offer_closed":
            text = f"offer {r['offer']} {r['outcome']} ({r['resident']})"
            nxt = r.get("next")
            if nxt is not None and nxt["type"] == "offer":
                text += f"; offer {nxt['offer']} to {nxt['resident']} (position {nxt['position']})"
        elif kind == "case_opened":
            text = f"case {r['case']} opened, answer due by {r['deadline']}"
        elif kind == "case_answered":
            text = f"case {r['case']} answered ({'late' if r['late'] else 'in time'}),"
            text += f" outcome changed: {r['changed']}, remedy {r['remedy']}"
        elif kind == "case_overdue":
            text = f"case {r['case']} OVERDUE (deadline {r['deadline']}), record {r['record']}"
        elif kind == "round":
            text = f"round {r['round']} of {r['rotation']}: {len(r['served'])} served"
        elif kind == "tick":
            text = f"tick: {len(r['follow'])} due"
        else:
            text = str(r)
        print(f"             -> {text}")


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        for r in records:
            writer.writerow(
                {k: ("true" if v is True else "false" if v is False else v) for k, v in r.items()}
            )


def main(work: Path) -> int:
    policy_file = work / "elderly-care-with-review.yaml"
    # The example's review section, with a deadline of 3 days so that one falls in the week.
    text = (CARE / "policy.yaml").read_text(encoding="utf-8")
    policy_file.write_text(text.replace("deadline_days: 15", "deadline_days: 3"))
    policy = fa.load_policy(policy_file)
    data = CARE / "residents.csv"
    rotation = fa.load_policy(PLACES / "policy.yaml")
    everyone = fa.Population.from_csv(data, policy).to_records()
    members = fa.Population.from_csv(PLACES / "residents.csv", rotation).to_records()

    log = DecisionLog.open(work / "office-log.db")
    before = "2026-12-01T09:00:00Z"
    p = log.register_policy(policy, operator="clerk", time=before)
    f = log.freeze(p.seq, data, policy=policy, operator="clerk", time=before)
    s = log.draw_seed(
        f.seq,
        public_randomness="welfare lottery 2026-12-02: 07 12 19 23 31 40",
        how="numbers of the welfare lottery drawn on 2026-12-02",
        operator="clerk",
        time="2026-12-02T20:00:00Z",
    )
    decision = log.decide(policy, data, freeze=f.seq, seed=s.seq, operator="clerk", time=before)
    r = log.register_policy(
        rotation,
        approved_by="residents' committee",
        approved_at="2026-01-05",
        operator="clerk",
        time=before,
    )
    print(f"Before the week: decision {decision.seq}, {decision.record.body['served']} served.\n")

    clock = ManualClock(at(7))
    desk = Desk(log, policy, data, decision=decision.seq, clock=clock, operator="desk")
    desk.add_rotation(rotation, policy_record=r.seq)
    loop = EventLoop(desk)
    waiting = desk.waiting
    by_id = {str(x["resident_id"]): x for x in everyone}

    def post(when: dt.datetime, what: str, event: dict[str, Any]) -> list[dict[str, Any]]:
        clock.set(when)
        replies = loop.post(event)
        show(when, what, replies)
        return replies

    def tick(when: dt.datetime) -> list[dict[str, Any]]:
        clock.set(when)
        replies = loop.tick()
        show(when, "tick", replies)
        return replies

    # Monday: three arrivals, a place freed, a complaint.
    for k, source in enumerate((everyone[12], everyone[57], everyone[3]), start=1):
        arrival = {**plain(source), "resident_id": f"N00{k:02d}", "waiting_days": 0}
        post(at(7, 9), f"arrival N00{k:02d}", {"type": "application", "record": arrival})
    post(at(7, 10), "place freed", {"type": "place_freed", "place": "day-care place 14"})
    first_waiting = waiting[0]
    post(
        at(7, 11),
        f"complaint from {first_waiting}",
        {
            "type": "complaint",
            "case": "2026-R-0101",
            "resident": first_waiting,
            "grounds": "my daily-living assessment was entered wrongly",
            "corrections": {"adl_score": [10, "assessment report 2026-118"]},
        },
    )
    # Tuesday: a reassessment, a declined offer, another place, another complaint.
    again = {**plain(by_id[waiting[5]]), "adl_score": 15}
    post(at(8, 9), f"reassessment of {waiting[5]}", {"type": "application", "record": again})
    post(at(8, 10), "offer 1 declined", {"type": "offer_declined", "offer": 1})
    post(at(8, 11), "place freed", {"type": "place_freed", "place": "day-care place 3"})
    post(
        at(8, 12),
        f"complaint from {waiting[9]}",
        {
            "type": "complaint",
            "case": "2026-R-0102",
            "resident": waiting[9],
            "grounds": "my waiting time was counted from the wrong date",
            "corrections": {"waiting_days": [400, "registration letter of 2025-10-28"]},
        },
    )
    # Wednesday: the first complaint answered in time; an offer accepted.
    answered = {"type": "complaint_answered", "case": "2026-R-0101"}
    post(at(9, 15), "complaint 2026-R-0101 answered", answered)
    post(at(9, 16), "offer 3 accepted", {"type": "offer_accepted", "offer": 3})
    # Thursday: nothing due yet. Friday: offer 2 lapses; the weekly round.
    tick(at(10))
    tick(at(11, 11))
    present = [plain(m) for m in members[:140]]
    post(
        at(11, 12),
        "activity-centre round due",
        {
            "type": "round_due",
            "rotation": rotation.policy.id,
            "residents": present,
            "public_randomness": "welfare lottery 2026-12-09: 02 08 15 27 33 41",
        },
    )
    # Saturday: the second complaint is overdue. Sunday: one more arrival.
    overdue = tick(at(12))
    newcomer = {**plain(everyone[101]), "resident_id": "N0004", "waiting_days": 0}
    post(at(13, 10), "arrival N0004", {"type": "application", "record": newcomer})
    tick(at(13, 18))
    # The office keeps the round's residents, as it keeps every frozen list's data, so that
    # verify can re-run the round too.
    rounds = [
        r for r in log.records() if r.kind == "decision" and r.body["kind"] == "rotation_round"
    ]
    round_data = work / "round-1-residents.csv"
    _write_csv(round_data, present)
    log.close()

    raised = [x["case"] for x in overdue if x["type"] == "case_overdue"]
    print(f"\nOverdue cases raised on Saturday: {raised}")
    print("\nfairalloc verify on the log the week wrote:")
    freeze = int(rounds[0].body["freeze_record"])
    status = fairalloc_cli(
        [
            "verify",
            str(work / "office-log.db"),
            "--policy",
            str(policy_file),
            "--policy",
            str(PLACES / "policy.yaml"),
            "--data",
            str(data),
            "--data",
            f"{freeze}={round_data}",
        ]
    )
    return 0 if status == 0 and raised == ["2026-R-0102"] else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp)))
