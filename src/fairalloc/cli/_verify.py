"""``fairalloc verify LOG``: check a decision log, or its export, and re-run its decisions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fairalloc.allocation._state import RotationState
from fairalloc.cli._common import freeze_data
from fairalloc.cli._records_common import add_log
from fairalloc.errors import UsageError
from fairalloc.records import DecisionLog, verify_log
from fairalloc.review import rerun_round
from fairalloc.review._log import ROUND_KIND

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
    p.add_argument(
        "--data",
        type=freeze_data,
        action="append",
        default=[],
        metavar="[FREEZE=]FILE",
        help="the residents' data: one file for every freeze, or FREEZE=FILE for the freeze"
        " recorded at that number (repeat)",
    )
    p.add_argument(
        "--state",
        type=_state,
        action="append",
        default=[],
        metavar="ROUND=STATE.json",
        help="the rotation state a round left (its --state-out), so that the next round is re-run"
        " too (repeat; round 1 needs none)",
    )
    p.add_argument("--openings", type=Path, default=None, help="private openings (with --export)")
    p.add_argument(
        "--head", type=Path, action="append", default=[], help="a head published earlier (JSON)"
    )
    p.set_defaults(handler=handle)


def _state(text: str) -> tuple[int, Path]:
    number, sep, path = text.partition("=")
    if not sep or not number.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"give a state as ROUND=STATE.json, not {text!r}")
    return int(number), Path(path)


def _inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The data argument (by freeze, ``None`` for the rest) and the re-run of rounds."""
    data = dict(args.data)
    if sum(seq is None for seq, _ in args.data) > 1:
        raise UsageError("give one --data FILE for every freeze, and FREEZE=FILE for the others")
    states = {n: RotationState.from_json(p.read_text(encoding="utf-8")) for n, p in args.state}
    return (data or None), {ROUND_KIND: rerun_round(states)}


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 on any mismatch."""
    heads = [json.loads(h.read_text(encoding="utf-8")) for h in args.head]
    if args.export:
        data, rerun = _inputs(args)
        report = verify_log(
            Path(args.log),
            policies=args.policy,
            data=data,
            openings=args.openings,
            heads=heads,
            rerun=rerun,
        )
    else:
        data, rerun = _inputs(args)
        with DecisionLog.open(args.log) as log:
            report = verify_log(log, policies=args.policy, data=data, heads=heads, rerun=rerun)
    print(report.to_text())
    return 0 if report.ok else 1
