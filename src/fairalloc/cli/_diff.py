"""``fairalloc diff OLD NEW [DATA]``: what changed between two policies and, with DATA, for whom.

Without DATA, the structural diff of the two policy files; with DATA, also the comparison of
their outcomes on those residents. Exit status: 0 when nothing differs, 1 when something does
(or a policy or the data is at fault), 2 on wrong usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import fairalloc as fa
from fairalloc.cli._common import add_as_of, count, out_file, write_text

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``diff`` command."""
    p = sub.add_parser(
        "diff",
        help="what changed between two policies, and for whom",
        description="Compare two policy files: what the text changes and, given residents,"
        " who becomes eligible or ineligible, who is served, how ranks and scores move, and"
        " selection rates by group. Exit status: 0 when nothing differs, 1 when something"
        " does or a policy or the data is at fault, 2 on wrong usage.",
    )
    p.add_argument("old", type=Path, help="the policy before (.yaml, .json, .toml)")
    p.add_argument("new", type=Path, help="the policy after")
    p.add_argument("data", type=Path, nargs="?", help="residents (.csv): also compare outcomes")
    p.add_argument(
        "--capacity", type=count(), help="units to allocate under both (default: each one's)"
    )
    p.add_argument("--format", choices=("text", "md", "json"), default="text", help="report format")
    p.add_argument(
        "--group-by",
        action="append",
        metavar="ATTRIBUTE",
        help="attribute whose groups are compared (repeatable; default: the protected ones)",
    )
    p.add_argument(
        "--top", type=count(), default=10, help="largest rank movers to list (default 10)"
    )
    add_as_of(p)
    p.add_argument(
        "--out",
        type=out_file(".txt", ".md", ".json"),
        metavar="FILE",
        help="write the report to FILE instead of stdout",
    )
    p.set_defaults(handler=handle, inputs=("old", "new", "data"))


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 when the policies differ (see the module's text)."""
    # Loaded for audit: a proposal that reads a protected attribute without a justified use is
    # still compared (what it would do), but never allocates; the diff names the read.
    old = fa.load_policy(args.old, as_of=args.as_of, audit=True)
    new = fa.load_policy(args.new, as_of=args.as_of, audit=True)
    diff = fa.policy_diff(old, new)
    comparison = None
    if args.data is not None:
        comparison = fa.compare(
            old,
            new,
            args.data,
            capacity=args.capacity,
            group_by=args.group_by,
            top=args.top,
            as_of=args.as_of,
        )
    if args.format == "json":
        doc: dict[str, Any] = (
            {"policy_diff": diff.to_dict()} if comparison is None else comparison.to_dict()
        )
        text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    else:
        document = diff.document() if comparison is None else comparison.document()
        text = document.markdown() if args.format == "md" else document.text()
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote the report to {args.out}", file=sys.stdout)
    differs = bool(diff) or (comparison is not None and comparison.changed)
    return 1 if differs else 0
