"""``fairalloc audit POLICY DATA``: the fairness audit as Markdown, HTML or JSON."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import fairalloc as fa
from fairalloc.audit import Thresholds, audit
from fairalloc.cli._common import count, out_file, write_text

__all__ = ["register"]

#: What each threshold option means, for ``--help``.
_THRESHOLD_HELP = {
    "association": "proxy association, Cramér's V",
    "influence": "share of score variance that matters",
    "four_fifths": "flagged rate ratio, below this",
    "effect": "change of a group's selection rate that makes a proxy",
    "confidence": "interval level",
    "min_group": "smallest group published",
    "min_expected": "smallest expected selected / not selected published",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``audit`` command."""
    aud = sub.add_parser("audit", help="fairness audit of a policy on a population")
    aud.add_argument("policy", type=Path, help="policy file")
    aud.add_argument("data", type=Path, help="residents (.csv)")
    aud.add_argument("--capacity", type=count(), help="units to allocate (default: the policy's)")
    aud.add_argument("--strata", help="graded scale whose grades are the need strata")
    aud.add_argument(
        "--format",
        choices=("md", "html", "json"),
        default="md",
        help="report format (default md)",
    )
    aud.add_argument(
        "--out",
        type=out_file(".md", ".html", ".json"),
        metavar="FILE",
        help="write the report to FILE",
    )
    aud.add_argument(
        "--publication", action="store_true", help="suppress small cells, as for a published report"
    )
    aud.add_argument(
        "--luck",
        type=int,
        default=0,
        metavar="SEEDS",
        help="with a lottery: each group's selection rate over SEEDS other seeds (for review)",
    )
    aud.add_argument(
        "--workers",
        type=count(minimum=1),
        default=None,
        metavar="N",
        help="threads for the layers and flipped values (default: the cores, at most 4;"
        " the report is the same)",
    )
    limits = aud.add_argument_group(
        "thresholds", "the audit's thresholds (defaults and why: docs/fairness.md)"
    )
    defaults = Thresholds()
    for f in fields(Thresholds):  # one option per threshold, its default the API's
        default = getattr(defaults, f.name)
        limits.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(default),
            default=default,
            help=f"{_THRESHOLD_HELP[f.name]} ({default:g})",
        )
    aud.set_defaults(handler=handle, inputs=("policy", "data"))


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 when a verdict of the audit failed."""
    thresholds = Thresholds(**{f.name: getattr(args, f.name) for f in fields(Thresholds)})
    policy = fa.load_policy(args.policy, audit=True)
    report = audit(
        policy,
        fa.Population.from_csv(args.data, policy),
        capacity=args.capacity,
        strata=args.strata,
        publication=args.publication,
        thresholds=thresholds,
        luck_seeds=args.luck,
        workers=args.workers,
    )
    if args.format == "md":
        text = report.to_markdown()
    elif args.format == "html":
        text = report.to_html()
    else:
        text = report.to_json(indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote the audit report to {args.out}", file=sys.stdout)
    return 0 if report.ok else 1
