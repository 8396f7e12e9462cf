"""``fairalloc sweep POLICY DATA --param NAME=V1,V2``: outcomes over a grid of parameter values."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

import fairalloc as fa
from fairalloc.cli._common import add_as_of, count, out_file, write_text

__all__ = ["parse_param", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sweep`` command."""
    sw = sub.add_parser(
        "sweep", help="outcomes and group statistics as parameters (or the capacity) vary"
    )
    sw.add_argument("policy", type=Path, help="policy file (.yaml, .json, .toml)")
    sw.add_argument("data", type=Path, help="residents (.csv)")
    sw.add_argument(
        "--param",
        action="append",
        required=True,
        type=parse_param,
        metavar="NAME=V1,V2,...",
        help="a parameter (or `capacity`) and its values; give it twice for a grid of two",
    )
    sw.add_argument("--capacity", type=count(), help="units to allocate (default: the policy's)")
    sw.add_argument(
        "--group-by",
        action="append",
        metavar="ATTRIBUTE",
        help="attribute whose groups are compared (repeatable; default: the protected ones)",
    )
    sw.add_argument("--strata", help="graded scale whose grades the groups are also compared in")
    add_as_of(sw)
    sw.add_argument(
        "--out",
        type=out_file(".json", ".csv"),
        metavar="FILE",
        help="write the sweep to FILE (.json or .csv)",
    )
    sw.set_defaults(handler=handle, inputs=("policy", "data"))


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,...`` as a name and values, each read as in a policy file.

    ``60`` is a number, ``0.5`` too, ``2025-12-31`` a date, ``true`` a condition, anything
    else a text.

    Raises:
        argparse.ArgumentTypeError: without ``=`` or values, or with an empty value.
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise argparse.ArgumentTypeError(f"write --param NAME=V1,V2,... (got {text!r})")
    values = []
    for item in rest.split(","):
        item = item.strip()
        if not item:
            raise argparse.ArgumentTypeError(f"an empty value in {text!r}")
        try:
            value = yaml.safe_load(item)
        except yaml.YAMLError:
            value = item
        values.append(item if value is None or isinstance(value, dict | list) else value)
    return name, values


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    grid: dict[str, list[Any]] = dict(args.param)
    policy = fa.load_policy(args.policy, as_of=args.as_of)
    population = fa.Population.from_csv(args.data, policy)
    result = fa.sweep(
        policy,
        population,
        grid,
        capacity=args.capacity,
        group_by=args.group_by,
        strata=args.strata,
        as_of=args.as_of,
    )
    out = sys.stdout
    out.write(result.to_text())
    if args.out is not None:
        if args.out.suffix.lower() == ".json":
            write_text(args.out, result.to_json(indent=1) + "\n")
        else:
            result.to_csv(args.out)
        print(f"wrote {len(result)} points to {args.out}", file=out)
    return 0
