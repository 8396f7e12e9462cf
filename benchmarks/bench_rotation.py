"""A year of weekly rotation rounds on the activity-places example, against one evaluation.

The simulation re-evaluates the whole population every round (the accrued ``waiting_weeks``
changes the scores), so its cost per round is compared with the baseline printed beside it: one
``fa.evaluate`` and ranking of the same population, which is what a single round cannot avoid.
The baseline is the median of several runs; the simulation is run once.

Usage::

    python benchmarks/bench_rotation.py                     # 100,000 residents, 52 rounds
    python benchmarks/bench_rotation.py --n 20000 --rounds 10 --capacity 400
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

from _common import load_generator

import fairalloc as fa
from fairalloc import simulate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "activity-places"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=52)
    ap.add_argument("--capacity", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=5, help="runs of the baseline (median)")
    args = ap.parse_args()

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.from_columns(
        load_generator("activity-places").generate(args.n, seed=1), policy
    )

    def one_round() -> int:
        ev = fa.evaluate(policy, population)
        return len(ev.ranking)

    times = []
    for _ in range(args.repeat):
        gc.collect()
        t = time.perf_counter()
        eligible = one_round()
        times.append(time.perf_counter() - t)
    base = statistics.median(times)

    gc.collect()
    t = time.perf_counter()
    sim = simulate(policy, population, rounds=args.rounds, capacity=args.capacity)
    total = time.perf_counter() - t
    per_round = total / args.rounds
    s = sim.summary()
    w = s["waiting_before_first_service"]

    print(
        f"activity-places example, {args.n:,} residents, {eligible:,} eligible,"
        f" {args.rounds} rounds of {args.capacity:,}"
    )
    print(f"{'':40}{'seconds':>10}")
    print(f"{'simulation, total':40}{total:10.3f}")
    print(f"{'simulation, per round':40}{per_round:10.3f}")
    print(f"{'evaluate + rank once (baseline)':40}{base:10.3f}")
    print(f"per round / baseline: {per_round / base:.2f}x")
    print(
        f"services {s['services']:,}; served at least once {s['served_at_least_once']:,};"
        f" never served while eligible {s['never_served_while_eligible']:,}"
    )
    print(
        f"longest wait {s['longest_wait']} rounds; wait before first service: mean"
        f" {w['mean']:.2f}, median {w['median']}, max {w['max']}"
    )


if __name__ == "__main__":
    main()
