"""``fairalloc report POLICY --period 2026-Q1 --round DATE=RESIDENTS.csv``: the period report."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc._engine import evaluate
from fairalloc.allocation import allocate
from fairalloc.cli._common import date, out_file, write_text
from fairalloc.errors import PublishError
from fairalloc.publish import LOCALES, parse_period, report

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
        required=True,
        metavar="DATE=RESIDENTS.csv",
        help="a round: the day it was decided and the residents who applied (repeat)",
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
    rep.set_defaults(handler=handle_report, inputs=("policy",))


def handle_report(args: argparse.Namespace) -> int:
    """Allocate every round on its day, then render the period's report."""
    policy = fa.load_policy(args.policy)
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
