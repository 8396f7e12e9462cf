"""``fairalloc verify LOG``: check a decision log, or its export, and re-run its decisions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fairalloc.allocation._state import RotationState
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
        type=_data,
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


def _data(text: str) -> tuple[int | None, Path]:
    seq, sep, path = text.partition("=")
    if sep and seq.isdigit() and path:
        return int(seq), Path(path)
    return None, Path(text)


def _state(text: str) -> tuple[int, Path]:
    number, sep, path = text.partition("=")
    if not sep or not number.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"give a state as ROUND=STATE.json, not {text!r}")
    return int(number), Path(path)


def _rounds(source: DecisionLog | Path) -> list[int]:
    """The round numbers of the rotation rounds recorded in the log (or its export)."""
    if isinstance(source, DecisionLog):
        bodies = [r.body for r in source.records() if r.kind == "decision"]
    else:
        bodies = []
        for line in source.read_text(encoding="utf-8").splitlines()[1:]:
            record = json.loads(json.loads(line)["record"])
            if record.get("kind") == "decision":
                bodies.append(record["body"])
    return [int(b["round"]) for b in bodies if b.get("kind") == ROUND_KIND]


def _inputs(args: argparse.Namespace, source: DecisionLog | Path) -> tuple[Any, Any]:
    """The data argument and the re-runs of other decision kinds, from the options."""
    default = [path for seq, path in args.data if seq is None]
    per = {seq: path for seq, path in args.data if seq is not None}
    if len(default) > 1:
        raise UsageError("give one --data FILE for every freeze, and FREEZE=FILE for the others")
    data: Any = default[0] if default else None
    if per:
        data = _PerFreeze(per, data)
    states = {n: RotationState.from_json(p.read_text(encoding="utf-8")) for n, p in args.state}
    rerun = None
    rounds = _rounds(source)
    # A round is re-run from the state the round before it left: only when every round after
    # the first has it (a round started from the wrong state would look like a mismatch).
    if rounds and all(r == 1 or (r - 1) in states for r in rounds):
        rerun = {ROUND_KIND: rerun_round(states)}
    return data, rerun


class _PerFreeze(dict[int, Any]):
    """Data by freeze record, falling back to one file for the freezes not named."""

    def __init__(self, per: dict[int, Path], default: Path | None) -> None:
        super().__init__(per)
        self.default = default

    def __missing__(self, key: int) -> Any:
        if self.default is None:
            raise KeyError(key)
        return self.default

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or self.default is not None

    def get(self, key: int, default: Any = None) -> Any:
        """The data of freeze ``key``: its own file, else the one for all."""
        if super().__contains__(key):
            return super().__getitem__(key)
        return self.default if self.default is not None else default


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 on any mismatch."""
    heads = [json.loads(h.read_text(encoding="utf-8")) for h in args.head]
    if args.export:
        source = Path(args.log)
        data, rerun = _inputs(args, source)
        report = verify_log(
            source,
            policies=args.policy,
            data=data,
            openings=args.openings,
            heads=heads,
            rerun=rerun,
        )
    else:
        with DecisionLog.open(args.log) as log:
            data, rerun = _inputs(args, log)
            report = verify_log(log, policies=args.policy, data=data, heads=heads, rerun=rerun)
    print(report.to_text())
    return 0 if report.ok else 1
