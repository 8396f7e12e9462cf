"""``fairalloc review ACTION LOG POLICY DATA``: open a case on a recorded decision; answer it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import fairalloc as fa
from fairalloc.cli._common import count, date, out_file, write_text
from fairalloc.cli._records_common import add_log, add_operator
from fairalloc.errors import UsageError
from fairalloc.explain import LOCALES
from fairalloc.records import DecisionLog
from fairalloc.review import Case, Correction, answer_review, open_review

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``review`` command and its actions."""
    p = sub.add_parser("review", help="re-review a recorded decision: open a case, answer it")
    act = p.add_subparsers(
        dest="review_command", metavar="ACTION", required=True, help="what to do"
    )

    op = act.add_parser("open", help="open a case on a recorded decision")
    add_log(op)
    op.add_argument("policy", type=Path, help="the registered policy file")
    op.add_argument("data", type=Path, help="the residents, exactly as frozen")
    op.add_argument("--decision", type=count(), required=True, help="the decision record")
    op.add_argument("--case", required=True, help="the case's id")
    op.add_argument("--resident", required=True, help="the complainant's resident id")
    op.add_argument("--grounds", required=True, help="why a review is asked for")
    op.add_argument(
        "--correct",
        action="append",
        default=[],
        metavar="ATTR=VALUE=EVIDENCE",
        help="a corrected fact and the reference to its evidence (repeatable)",
    )
    op.add_argument("--filed", type=date, required=True, help="the filing date (YYYY-MM-DD)")
    op.add_argument(
        "--out", type=out_file(".json"), required=True, help="where to keep the case (.json)"
    )
    add_operator(op)
    op.set_defaults(handler=handle_open, inputs=("policy", "data"))

    an = act.add_parser("answer", help="review a case and record the answer")
    add_log(an)
    an.add_argument("policy", type=Path, help="the registered policy file")
    an.add_argument("data", type=Path, help="the residents, exactly as frozen")
    an.add_argument("--case-file", type=Path, required=True, help="the case (.json) as opened")
    an.add_argument("--on", type=date, required=True, help="the date of the answer")
    an.add_argument("--lang", choices=LOCALES, default="en", help="language of the answer")
    an.add_argument(
        "--out", type=out_file(".json"), default=None, help="the complainant's answer (.json)"
    )
    an.add_argument(
        "--officer", action="store_true", help="also print who else the review concerns"
    )
    add_operator(an)
    an.set_defaults(handler=handle_answer, inputs=("policy", "data", "case_file"))


def _value(policy: fa.Policy, name: str, text: str) -> Any:
    """A corrected value as typed, read as the attribute's type reads text."""
    attr = policy.attributes.get(name)
    if attr is None or attr.type not in ("int", "float", "bool"):
        return text  # levels, dates and text as written; the review checks them
    if attr.type == "bool":
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise UsageError(f"--correct {name}: {text!r} is not true or false")
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"--correct {name}: {text!r} is not a number") from None
    return int(number) if attr.type == "int" and number.is_integer() else number


def _corrections(policy: fa.Policy, given: list[str]) -> list[Correction]:
    out = []
    for item in given:
        parts = item.split("=", 2)
        if len(parts) != 3 or not parts[0]:
            raise UsageError(f"--correct {item!r}: write ATTR=VALUE=EVIDENCE")
        name, value, evidence = parts
        out.append(Correction(name, _value(policy, name, value), evidence))
    return out


def handle_open(args: argparse.Namespace) -> int:
    """Open the case."""
    policy = fa.load_policy(args.policy)
    with DecisionLog.open(args.log) as log:
        case = open_review(
            log,
            args.decision,
            policy,
            args.data,
            case_id=args.case,
            resident=args.resident,
            grounds=args.grounds,
            corrections=_corrections(policy, args.correct),
            filed=args.filed,
            operator=args.operator,
        )
        seq = len(log) - 1
    write_text(args.out, json.dumps(case.to_dict(), ensure_ascii=False, indent=2) + "\n")
    print(
        f"record {seq}: review.opened, case {case.id} on decision {args.decision};"
        f" answer due by {case.deadline.isoformat()}; case kept in {args.out}"
    )
    return 0


def handle_answer(args: argparse.Namespace) -> int:
    """Review the case and record the answer."""
    policy = fa.load_policy(args.policy)
    try:
        doc = json.loads(args.case_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UsageError(f"{args.case_file} is not JSON: {e}") from None
    case = Case.from_dict(doc)
    with DecisionLog.open(args.log) as log:
        finding = answer_review(
            log, case, policy, args.data, on=args.on, operator=args.operator, lang=args.lang
        )
        seq = len(log) - 1
    print(finding.complainant_text(args.lang), end="")
    print(f"record {seq}: review.answered, case {case.id}, remedy {finding.remedy}")
    if args.officer:
        officer = finding.for_officer()
        print("served after the review: " + ", ".join(officer["served_after"]))
        print("displaced: " + (", ".join(officer["displaced"]) or "nobody"))
    if args.out is not None:
        write_text(args.out, json.dumps(finding.for_complainant(), ensure_ascii=False, indent=2))
    return 0
