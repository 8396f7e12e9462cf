"""``fairalloc verify LOG``: check a decision log, or its export, and re-run its decisions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fairalloc.cli._records_common import add_log
from fairalloc.records import DecisionLog, verify_log

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` command."""
    p = sub.add_parser(
        "verify", help="check a decision log: chain, heads, proofs, seeds, and re-run decisions"
    )
    add_log(p)
    p.add_argument(
        "--export", action="store_true", help="LOG is a JSON Lines export, not a live log"
    )
    p.add_argument("--policy", type=Path, action="append", default=[], help="a policy file used")
    p.add_argument("--data", type=Path, default=None, help="the residents' data of the freezes")
    p.add_argument("--openings", type=Path, default=None, help="private openings (with --export)")
    p.add_argument(
        "--head", type=Path, action="append", default=[], help="a head published earlier (JSON)"
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 on any mismatch."""
    heads = [json.loads(h.read_text(encoding="utf-8")) for h in args.head]
    if args.export:
        report = verify_log(
            Path(args.log),
            policies=args.policy,
            data=args.data,
            openings=args.openings,
            heads=heads,
        )
    else:
        with DecisionLog.open(args.log) as log:
            report = verify_log(log, policies=args.policy, data=args.data, heads=heads)
    print(report.to_text())
    return 0 if report.ok else 1
