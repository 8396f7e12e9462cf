"""``fairalloc decide LOG POLICY DATA --freeze N --seed M``: allocate and record the decision."""

from __future__ import annotations

import argparse
from pathlib import Path

import fairalloc as fa
from fairalloc.cli._common import count, date, out_file
from fairalloc.cli._records_common import add_log, add_operator
from fairalloc.records import DecisionLog

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``decide`` command."""
    p = sub.add_parser("decide", help="allocate with the recorded seed and record the decision")
    add_log(p)
    p.add_argument("policy", type=Path, help="the registered policy file")
    p.add_argument("data", type=Path, help="the applicants, exactly as frozen")
    p.add_argument("--freeze", type=count(), required=True, help="the freeze record")
    p.add_argument("--seed", type=count(), default=None, help="the seed record (for lotteries)")
    p.add_argument("--capacity", type=count(), default=None, help="units (default: the policy's)")
    p.add_argument("--as-of", type=date, default=None, help="date of the parameter values")
    p.add_argument(
        "--out", type=out_file(".json", ".csv"), default=None, help="the allocation (.json, .csv)"
    )
    add_operator(p)
    p.set_defaults(handler=handle, inputs=("policy", "data"))


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    policy = fa.load_policy(args.policy)
    with DecisionLog.open(args.log) as log:
        decision = log.decide(
            policy,
            args.data,
            freeze=args.freeze,
            seed=args.seed,
            operator=args.operator,
            capacity=args.capacity,
            as_of=args.as_of,
        )
        head = log.head()
    body = decision.record.body
    print(
        f"record {decision.seq}: decision, {body['served']} served of {body['count']};"
        f" outcome root {body['outcome_root']}"
    )
    print(f"head to publish: {head.to_json()}")
    if args.out is not None:
        if args.out.suffix == ".json":
            args.out.write_text(decision.allocation.to_json(indent=2), encoding="utf-8")
        else:
            decision.allocation.to_csv(args.out)
    return 0
