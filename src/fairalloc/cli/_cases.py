"""``fairalloc cases LOG [--overdue]``: the review cases of a decision log and their states."""

from __future__ import annotations

import argparse
import datetime as dt

from fairalloc.cli._common import date
from fairalloc.cli._records_common import add_log
from fairalloc.records import DecisionLog
from fairalloc.review import case_statuses

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cases`` command."""
    p = sub.add_parser("cases", help="list review cases: filed, answered, overdue")
    add_log(p)
    p.add_argument("--overdue", action="store_true", help="only the cases past their deadline")
    p.add_argument(
        "--as-of", type=date, default=None, help="the date to judge deadlines by (default today)"
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """List the cases; exit 0 (an overdue case is a finding, not a failure of the command)."""
    as_of = args.as_of or dt.datetime.now(dt.UTC).date()
    with DecisionLog.open(args.log) as log:
        statuses = case_statuses(log)
    shown = [c for c in statuses if not args.overdue or c.state(as_of) == "overdue"]
    what = "overdue cases" if args.overdue else "cases"
    print(f"{len(shown)} {what} on {as_of.isoformat()}")
    for c in shown:
        answered = c.answered.isoformat() if c.answered else "-"
        print(
            f"{c.case}\t{c.state(as_of)}\tdecision {c.decision_record}\tfiled"
            f" {c.filed.isoformat()}\tdue {c.deadline.isoformat()}\tanswered {answered}"
        )
    return 0
