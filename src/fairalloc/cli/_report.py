"""``fairalloc report POLICY --period 2026-Q1``: the period report.

From allocation rounds (``--round DATE=RESIDENTS.csv ...``) or from a decision log (``--log LOG
--data RESIDENTS.csv``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc._engine import evaluate
from fairalloc.allocation import allocate
from fairalloc.cli._common import date, freeze_data, out_file, write_text
from fairalloc.errors import PublishError, UsageError
from fairalloc.publish import LOCALES, PeriodReport, log_report, parse_period, report

__all__ = ["register"]


def _round(text: str) -> tuple[dt.date, Path]:
    day, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"give a round as DATE=RESIDENTS.csv, not {text!r}")
    return date(day), Path(path)


def _period(text: str) -> str:
    try:
        parse_period(text)
    except PublishError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command."""
    rep = sub.add_parser("report", help="the period report of allocation rounds (§2.2.2)")
    rep.add_argument("policy", type=Path, help="policy file")
    rep.add_argument(
        "--round",
        dest="rounds",
        type=_round,
        action="append",
        metavar="DATE=RESIDENTS.csv",
        help="a round: the day it was decided and the residents who applied (repeat);"
        " or give --log",
    )
    rep.add_argument(
        "--log",
        help="make the report from this decision log (a file, sqlite:///path or"
        " postgresql://...): each decision of the period is re-run and checked",
    )
    rep.add_argument(
        "--data",
        dest="data",
        type=freeze_data,
        action="append",
        metavar="[FREEZE=]RESIDENTS.csv",
        help="with --log: the data of the frozen lists, one file for all or FREEZE=FILE per"
        " freeze record (repeat)",
    )
    rep.add_argument(
        "--state",
        type=Path,
        metavar="STATE.json",
        help="with --log: the rotation state after the period's last round",
    )
    rep.add_argument("--period", required=True, type=_period, help="2026-Q1, 2026-03 or 2026")
    rep.add_argument("--strata", help="graded scale whose grades are the need strata")
    rep.add_argument("--lang", choices=LOCALES, default="en", help="language (default en)")
    rep.add_argument(
        "--format", choices=("md", "html", "json"), default="md", help="format (default md)"
    )
    rep.add_argument(
        "--large-print", action="store_true", help="HTML with a base text size of 150%%"
    )
    rep.add_argument(
        "--out",
        type=out_file(".md", ".html", ".json"),
        metavar="FILE",
        help="write the report to FILE",
    )
    rep.set_defaults(handler=handle_report, inputs=("policy", "state"))


def handle_report(args: argparse.Namespace) -> int:
    """Allocate every round on its day, then render the period's report."""
    if (args.rounds is None) == (args.log is None):
        raise UsageError("give the rounds (--round DATE=RESIDENTS.csv ...) or a --log, not both")
    if args.log is None and (args.data or args.state):
        raise UsageError("--data and --state go with --log")
    policy = fa.load_policy(args.policy)
    if args.log is not None:
        result = _from_log(args, policy)
    else:
        rounds = []
        for day, path in args.rounds:
            population = fa.Population.from_csv(path, policy)
            rounds.append((day, allocate(evaluate(policy, population, as_of=day))))
        result = report(rounds, period=args.period, strata=args.strata)
    text = result.render(lang=args.lang, format=args.format, large_print=args.large_print)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote the report to {args.out}", file=sys.stdout)
    return 0


def _from_log(args: argparse.Namespace, policy: fa.Policy) -> PeriodReport:
    """The report from a decision log, with the data of its frozen lists."""
    from fairalloc.records import DecisionLog

    if not args.data:
        raise UsageError("--log needs the data of the frozen lists: --data RESIDENTS.csv")
    if sum(seq is None for seq, _ in args.data) > 1:
        raise UsageError("give one --data RESIDENTS.csv for all, and FREEZE=FILE for the others")
    residents = {seq: fa.Population.from_csv(path, policy) for seq, path in args.data}
    state = (
        fa.RotationState.from_json(args.state.read_text(encoding="utf-8"))
        if args.state is not None
        else None
    )
    with DecisionLog.open(args.log) as log:
        return log_report(
            log, policy, residents, period=args.period, strata=args.strata, state=state
        )
