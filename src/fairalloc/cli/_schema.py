"""``fairalloc schema``: the JSON Schema of policy files, for editors."""

from __future__ import annotations

import argparse
import json
import sys

import fairalloc as fa
from fairalloc.cli._common import out_file, write_text

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` command."""
    sch = sub.add_parser("schema", help="print the JSON Schema of policy files")
    sch.add_argument(
        "--out", type=out_file(".json"), metavar="FILE", help="write to FILE instead of stdout"
    )
    sch.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command."""
    text = json.dumps(fa.json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
    return 0
