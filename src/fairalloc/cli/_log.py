"""``fairalloc log ACTION LOG``: register a policy, show, head, export, retention, erase."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import fairalloc as fa
from fairalloc.cli._common import count, date, out_file
from fairalloc.cli._records_common import add_log, add_operator
from fairalloc.records import DecisionLog, due_for_erasure, retention_schedule

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``log`` command and its actions."""
    p = sub.add_parser("log", help="decision log: register, show, head, export, retention, erase")
    act = p.add_subparsers(dest="log_command", metavar="ACTION", required=True, help="what to do")

    reg = act.add_parser("register", help="record an approved policy version")
    add_log(reg)
    reg.add_argument("policy", type=Path, help="the policy file")
    reg.add_argument("--approved-by", required=True, help="who approved it")
    reg.add_argument("--approved-at", type=date, required=True, help="when (YYYY-MM-DD)")
    reg.add_argument("--until", type=date, default=None, help="last day it applies")
    add_operator(reg)
    reg.set_defaults(handler=handle_register, inputs=("policy",))

    show = act.add_parser("show", help="list the records")
    add_log(show)
    show.set_defaults(handler=handle_show)

    head = act.add_parser("head", help="print the tree head to publish (JSON)")
    add_log(head)
    head.add_argument("--size", type=count(), default=None, help="head of the first N records")
    head.add_argument(
        "--since", type=count(minimum=1), default=None, help="also a consistency proof from N"
    )
    head.set_defaults(handler=handle_head)

    exp = act.add_parser("export", help="write the log as JSON Lines for publication")
    add_log(exp)
    exp.add_argument("out", type=out_file(".jsonl"), help="the export (.jsonl)")
    exp.add_argument(
        "--openings",
        type=out_file(".jsonl"),
        default=None,
        help="also write the private openings (never publish them)",
    )
    exp.set_defaults(handler=handle_export)

    ret = act.add_parser("retention", help="the policy's retention periods; what is due")
    ret.add_argument("policy", type=Path, help="the policy file")
    ret.add_argument("--log", default=None, help="list this log's records past their period")
    ret.add_argument("--today", type=date, default=None, help="the date to judge by")
    ret.set_defaults(handler=handle_retention, inputs=("policy",))

    era = act.add_parser("erase", help="destroy a resident's openings (erasure)")
    add_log(era)
    era.add_argument("resident", help="the resident's id")
    era.add_argument("--reason", required=True, help="why (e.g. retention period over)")
    add_operator(era)
    era.set_defaults(handler=handle_erase)


def handle_register(args: argparse.Namespace) -> int:
    """Record the policy version."""
    policy = fa.load_policy(args.policy)
    with DecisionLog.open(args.log) as log:
        rec = log.register_policy(
            policy,
            approved_by=args.approved_by,
            approved_at=args.approved_at.isoformat(),
            effective_until=args.until,
            operator=args.operator,
        )
    print(
        f"record {rec.seq}: policy {rec.body['id']} {rec.body['version']} {rec.body['policy_hash']}"
    )
    return 0


def handle_show(args: argparse.Namespace) -> int:
    """List the records, one line each."""
    with DecisionLog.open(args.log) as log:
        for r in log.records():
            keys = ("id", "version", "count", "root", "seed", "kind", "served", "outcome_root")
            said = ", ".join(f"{k}={r.body[k]}" for k in keys if k in r.body)
            print(f"{r.seq:>5}  {r.time}  {r.kind:<10} {r.operator}  {said}")
    return 0


def handle_head(args: argparse.Namespace) -> int:
    """Print the head (and a consistency proof)."""
    with DecisionLog.open(args.log) as log:
        head = log.head(args.size)
        doc = head.to_dict()
        if args.since is not None:
            doc["consistency_from"] = args.since
            doc["consistency"] = log.consistency(args.since, head.size)
    print(json.dumps(doc))
    return 0


def handle_export(args: argparse.Namespace) -> int:
    """Write the export."""
    with DecisionLog.open(args.log) as log:
        head = log.export(args.out)
        if args.openings is not None:
            log.export_openings(args.openings)
    print(f"{head.size} records written to {args.out}; head {head.to_json()}")
    return 0


def handle_retention(args: argparse.Namespace) -> int:
    """List the periods, and with a log what is due."""
    policy = fa.load_policy(args.policy)
    for rule in retention_schedule(policy):
        print(f"{rule.what:<9} {rule.period or 'not declared':<14} {rule.covers}")
    if args.log is not None:
        today = args.today or dt.datetime.now(dt.UTC).date()
        with DecisionLog.open(args.log) as log:
            due = due_for_erasure(log, policy, today)
        for d in due:
            print(
                f"due: record {d.record} ({d.kind}, {d.time}): {d.residents} residents' openings"
                f" past {d.due}"
            )
        if not due:
            print(f"nothing due on {today}")
    return 0


def handle_erase(args: argparse.Namespace) -> int:
    """Erase the resident."""
    with DecisionLog.open(args.log) as log:
        rec = log.erase(args.resident, reason=args.reason, operator=args.operator)
    hit = ", ".join(str(h["record"]) for h in rec.body["leaves"])
    print(f"record {rec.seq}: erasure; openings destroyed in records {hit}")
    return 0
