"""``fairalloc round LOG POLICY DATA --freeze N --seed M``: run and record a rotation round."""

from __future__ import annotations

import argparse
from pathlib import Path

import fairalloc as fa
from fairalloc.cli._common import count, date, out_file, write_text
from fairalloc.cli._records_common import add_log, add_operator
from fairalloc.records import DecisionLog
from fairalloc.review import record_round

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``round`` command."""
    p = sub.add_parser(
        "round", help="run the next round of a rotation from the log's state, and record it"
    )
    add_log(p)
    p.add_argument("policy", type=Path, help="the registered policy file")
    p.add_argument("data", type=Path, help="this round's residents, exactly as frozen")
    p.add_argument("--freeze", type=count(), required=True, help="the freeze record")
    p.add_argument("--seed", type=count(), default=None, help="the seed record (for lotteries)")
    p.add_argument(
        "--state",
        type=Path,
        default=None,
        help="the state the log's last round left (its --state-out); none before round 1",
    )
    p.add_argument(
        "--state-out", type=out_file(".json"), required=True, help="where to keep the new state"
    )
    p.add_argument("--capacity", type=count(), default=None, help="places this round")
    p.add_argument("--as-of", type=date, default=None, help="date of the parameter values")
    add_operator(p)
    p.set_defaults(handler=handle, inputs=("policy", "data", "state"))


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    policy = fa.load_policy(args.policy)
    state = (
        fa.RotationState.from_json(args.state.read_text(encoding="utf-8"))
        if args.state is not None
        else None
    )
    with DecisionLog.open(args.log) as log:
        rnd, rec = record_round(
            log,
            policy,
            args.data,
            freeze=args.freeze,
            seed=args.seed,
            operator=args.operator,
            state=state,
            capacity=args.capacity,
            as_of=args.as_of,
        )
        head = log.head()
    write_text(args.state_out, rnd.state.to_json() + "\n")
    print(
        f"record {rec.seq}: round {rnd.round}, {len(rnd.served)} served of {rnd.eligible}"
        f" eligible ({rnd.present} present); outcome root {rec.body['outcome_root']}"
    )
    print("served: " + (", ".join(rnd.served) or "nobody"))
    print(f"state kept in {args.state_out}; head to publish: {head.to_json()}")
    return 0
