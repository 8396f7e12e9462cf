"""``fairalloc freeze LOG POLICY DATA``: commit to the applicant list before any draw."""

from __future__ import annotations

import argparse
from pathlib import Path

import fairalloc as fa
from fairalloc.cli._records_common import add_log, add_operator
from fairalloc.errors import RecordsError
from fairalloc.records import DecisionLog, policy_hash

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``freeze`` command."""
    p = sub.add_parser("freeze", help="freeze the applicant list in a decision log")
    add_log(p)
    p.add_argument("policy", type=Path, help="the registered policy file")
    p.add_argument("data", type=Path, help="the applicants (CSV, Parquet, ...)")
    add_operator(p)
    p.set_defaults(handler=handle, inputs=("policy", "data"))


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    policy = fa.load_policy(args.policy)
    with DecisionLog.open(args.log) as log:
        rec = log.freeze(registered(log, policy), args.data, policy=policy, operator=args.operator)
    print(f"record {rec.seq}: freeze of {rec.body['count']} applicants, root {rec.body['root']}")
    return 0


def registered(log: DecisionLog, policy: fa.Policy) -> int:
    """The latest ``policy`` record of this policy document."""
    digest = policy_hash(policy)
    found = [r.seq for r in log.records() if r.kind == "policy" and r.body["policy_hash"] == digest]
    if not found:
        raise RecordsError(
            "FA712",
            f"{policy.policy.id} {policy.policy.version} (hash {digest[:16]}…) is not registered",
            valid="fairalloc log register LOG POLICY ... first",
        )
    return found[-1]
