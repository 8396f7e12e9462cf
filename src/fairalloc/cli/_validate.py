"""``fairalloc validate POLICY...``: every problem of each file as ``file:line:col: CODE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fairalloc as fa

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` command."""
    val = sub.add_parser("validate", help="check policy files and report every problem")
    val.add_argument("policies", type=Path, nargs="+", help="policy files")
    val.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 when any file has a problem."""
    status = 0
    for path in args.policies:
        try:
            policy = fa.load_policy(path)
        except fa.PolicyError as e:
            status = 1
            for issue in e.issues:
                print(str(issue), file=sys.stdout)
        except OSError as e:
            status = 1
            print(f"{path}: FA104 cannot read the file: {e.strerror or e}", file=sys.stdout)
        else:
            meta = policy.policy
            print(f"{path}: ok ({meta.id} v{meta.version})", file=sys.stdout)
            for warning in fa.compile_policy(policy).warnings:
                print(f"{warning} (warning)", file=sys.stdout)
    return status
