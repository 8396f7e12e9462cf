"""``fairalloc publish criteria POLICY``: the selection criteria as a public document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc.cli._common import out_file, write_text
from fairalloc.publish import LOCALES, criteria

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``publish`` command and its ``criteria`` document."""
    pub = sub.add_parser("publish", help="documents for the public (§2.2)")
    docs = pub.add_subparsers(
        dest="document", required=True, metavar="DOCUMENT", help="the document to publish"
    )
    crit = docs.add_parser("criteria", help="the selection criteria of a policy (§2.2.1)")
    crit.add_argument("policy", type=Path, help="policy file")
    crit.add_argument("--lang", choices=LOCALES, default="en", help="language (default en)")
    crit.add_argument(
        "--format", choices=("md", "html"), default="md", help="document format (default md)"
    )
    crit.add_argument(
        "--large-print", action="store_true", help="HTML with a base text size of 150%%"
    )
    crit.add_argument(
        "--out", type=out_file(".md", ".html"), metavar="FILE", help="write the document to FILE"
    )
    crit.set_defaults(handler=handle_criteria, inputs=("policy",))


def handle_criteria(args: argparse.Namespace) -> int:
    """Render the criteria document."""
    policy = fa.load_policy(args.policy)
    text = criteria(policy, lang=args.lang, format=args.format, large_print=args.large_print)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote the criteria to {args.out}", file=sys.stdout)
    return 0

