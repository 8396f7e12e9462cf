"""``fairalloc check POLICY...``: the static proof of which protected attributes are read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc.audit import static_proof

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` command."""
    chk = sub.add_parser("check", help="static proof: which protected attributes are read, why")
    chk.add_argument("policies", type=Path, nargs="+", help="policy files")
    chk.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 when a policy reads a protected attribute without reason."""
    status = 0
    for path in args.policies:
        proof = static_proof(fa.load_policy(path, audit=True))
        print(f"{path}:", file=sys.stdout)
        print(proof.to_markdown(), file=sys.stdout)
        if not proof.ok:
            status = 1
    return status
