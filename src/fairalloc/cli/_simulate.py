"""``fairalloc simulate POLICY DATA --rounds N``: serve a rotation (轮候) over rounds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import fairalloc as fa
from fairalloc._text import fixed
from fairalloc.cli._common import cell, count, out_file, title_of, write_text

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command."""
    sim = sub.add_parser("simulate", help="serve a policy's rotation (轮候) over rounds")
    sim.add_argument("policy", type=Path, help="policy file with `allocation.rotation`")
    sim.add_argument("data", type=Path, help="residents at the start (.csv)")
    sim.add_argument(
        "--rounds", type=count(minimum=1), required=True, help="rounds to run (weeks, months)"
    )
    sim.add_argument("--capacity", type=count(), help="served per round (default: the policy's)")
    sim.add_argument(
        "--out",
        type=out_file(".csv", ".json"),
        metavar="FILE",
        help="write every resident's history (.csv or .json)",
    )
    sim.set_defaults(handler=handle, inputs=("policy", "data"))


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    policy = fa.load_policy(args.policy)
    population = fa.Population.from_csv(args.data, policy)
    result = fa.simulate(policy, population, rounds=args.rounds, capacity=args.capacity)
    out = sys.stdout
    _print_simulation(result, population.n, out)
    if args.out is not None:
        if args.out.suffix.lower() == ".json":
            write_text(args.out, result.to_json(indent=1) + "\n")
        else:
            result.to_csv(args.out)
        print(f"wrote {len(result)} residents to {args.out}", file=out)
    return 0


def _print_simulation(result: fa.Simulation, n: int, out: TextIO) -> None:
    cp = result.policy
    meta = cp.policy.policy
    print(f"{title_of(meta)} ({meta.id} v{meta.version})", file=out)
    print(f"{n} residents; rotation: {result.rounds} rounds, {result.capacity} per round", file=out)
    rot = result.rotation
    order = (
        [f"due to keep a wait of at most {rot.max_wait} rounds first"]
        if rot.max_wait is not None
        else []
    )
    order += ["served fewer times first"] if rot.served_go_last else []
    order += [f"band `{rot.bands}` (desc)"] if rot.bands is not None else []
    bonus = f" + {cell(rot.points_per_round)} per round waited" if rot.points_per_round else ""
    order += [f"score{bonus} (desc)", "rounds waited (desc)"]
    order += [f"the ranking's {', '.join(cp.tie_break_labels)}"] if cp.tie_break_labels else []
    print("order: " + ", ".join(order), file=out)
    if result.lottery_seed is not None:
        print(f"lottery seed: {result.lottery_seed}", file=out)
    s = result.summary()
    runs: list[list[int]] = []  # [count, first round, last round]
    for r, k in enumerate(s["served_per_round"], start=1):
        if runs and runs[-1][0] == k:
            runs[-1][2] = r
        else:
            runs.append([k, r, r])
    print(
        "served per round: "
        + ", ".join(f"{k} (round{f's {a}-{b}' if b > a else f' {a}'})" for k, a, b in runs),
        file=out,
    )
    print(
        f"served at least once: {s['served_at_least_once']} of {s['residents']};"
        f" never served: {s['never_served']}"
        f" (never served while eligible: {s['never_served_while_eligible']})",
        file=out,
    )
    print(f"longest wait: {s['longest_wait']} rounds", file=out)
    w = s["waiting_before_first_service"]
    if w["mean"] is None:
        return
    print(
        f"wait before first service: mean {fixed(w['mean'])}, median {cell(w['median'])},"
        f" max {w['max']} rounds",
        file=out,
    )
    print(f"  {'rounds':>6}  {'residents':>9}", file=out)
    for row in w["distribution"]:
        print(f"  {row['rounds']:>6}  {row['residents']:>9}", file=out)
