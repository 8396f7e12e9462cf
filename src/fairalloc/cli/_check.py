"""``fairalloc check POLICY...``: the static proof of which protected attributes are read."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc.audit import static_proof

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` command."""
    chk = sub.add_parser("check", help="static proof: which protected attributes are read, why")
    chk.add_argument("policies", type=Path, nargs="+", help="policy files")
    chk.add_argument(
        "--format",
        choices=("md", "json"),
        default="md",
        help="Markdown for people (default), or one JSON document: {file: proof}",
    )
    chk.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 when a policy reads a protected attribute without reason."""
    proofs = {str(path): static_proof(fa.load_policy(path, audit=True)) for path in args.policies}
    if args.format == "json":
        doc = {path: proof.to_dict() for path, proof in proofs.items()}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    else:
        for path, proof in proofs.items():
            print(f"{path}:", file=sys.stdout)
            print(proof.to_markdown(), file=sys.stdout)
    return 0 if all(proof.ok for proof in proofs.values()) else 1
