"""``fairalloc receipt``: make one resident's receipt, or check one against a published head."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc.cli._common import count, out_file
from fairalloc.cli._records_common import add_log
from fairalloc.records import DecisionLog, verify_receipt

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``receipt`` command."""
    p = sub.add_parser("receipt", help="a resident's receipt, or check one against a head")
    what = p.add_subparsers(
        dest="receipt_command", metavar="ACTION", required=True, help="make or check"
    )
    make = what.add_parser("make", help="write a resident's receipt for a recorded decision")
    add_log(make)
    make.add_argument("policy", type=Path, help="the registered policy file")
    make.add_argument("data", type=Path, help="the applicants, as frozen")
    make.add_argument("--decision", type=count(), required=True, help="the decision record")
    make.add_argument("--resident", required=True, help="the resident's id")
    make.add_argument("--out", type=out_file(".json"), required=True, help="the receipt (.json)")
    make.set_defaults(handler=handle_make, inputs=("policy", "data"))
    check = what.add_parser("check", help="check a receipt against a published head (no data)")
    check.add_argument("receipt", type=Path, help="the receipt (.json)")
    check.add_argument("head", type=Path, help="the published head (.json)")
    check.set_defaults(handler=handle_check)


def handle_make(args: argparse.Namespace) -> int:
    """Write the receipt."""
    policy = fa.load_policy(args.policy)
    with DecisionLog.open(args.log) as log:
        decision = log.decision(args.decision, policy, args.data)
        receipt = log.receipt(decision, args.resident)
    args.out.write_text(json.dumps(receipt, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"receipt of {args.resident} for decision {args.decision} written to {args.out}")
    return 0


def handle_check(args: argparse.Namespace) -> int:
    """Check the receipt; returns 1 if it does not verify."""
    receipt = json.loads(args.receipt.read_text(encoding="utf-8"))
    head = json.loads(args.head.read_text(encoding="utf-8"))
    found = verify_receipt(receipt, head)
    for problem in found.problems:
        print(problem, file=sys.stderr)
    if found.ok:
        outcome = json.loads(receipt["outcome"]["message"])
        state = "served" if outcome["served"] else "not served"
        print(f"receipt verifies: {receipt['resident']} {state} in decision {receipt['log_index']}")
    return 0 if found.ok else 1
