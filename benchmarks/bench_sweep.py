"""A parameter sweep on a large population, against evaluating the changed policy in full.

Figures (whole seconds of wall time measured with perf_counter, median of ``--repeat`` runs):

1. one full evaluation of the example policy, with its ranking (the baseline);
2. a sweep of ``--values`` values of one parameter with allocation and group statistics at
   every value: the total and the time per value;
3. the same outcomes computed the plain way: for each value, ``fa.evaluate`` of the changed
   policy, ``fa.allocate`` and ``group_statistics`` (what partial recomputation saves);
4. a sweep of as many capacities (nothing evaluated again, only allocations).

The sweep's outcomes are checked to equal the plain way's at every value.

Usage::

    python benchmarks/bench_sweep.py                      # N = 1,000,000, 20 values
    python benchmarks/bench_sweep.py --n 200000 --param min_age --values 10
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_generator, timed

import fairalloc as fa
from fairalloc.analysis._sweep import sweep, with_parameters
from fairalloc.audit import group_statistics

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"

#: Values swept for each parameter of the example: (first, last).
RANGES = {
    "waiting_points_per_month": (0.1, 2.0),
    "waiting_cap_points": (1.0, 20.0),
    "min_age": (55, 74),
}


def grid_of(param: str, k: int) -> list[Any]:
    lo, hi = RANGES[param]
    if isinstance(lo, int) and isinstance(hi, int):
        return [int(v) for v in np.linspace(lo, hi, k).round()]
    return [round(float(v), 4) for v in np.linspace(lo, hi, k)]


def plain(
    policy: fa.Policy, population: fa.Population, param: str, values: list[Any], capacity: int
) -> list[Any]:
    """The sweep's outcomes, each value evaluated in full."""
    out = []
    for v in values:
        ev = fa.evaluate(with_parameters(policy, {param: v}), population)
        alloc = fa.allocate(ev, capacity=capacity)
        stats = group_statistics(alloc, intersections=False)
        out.append((int(ev.eligible.sum()), alloc.n_served, alloc.cutoffs(), stats.to_dict()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--param", choices=sorted(RANGES), default="waiting_points_per_month")
    ap.add_argument("--values", type=int, default=20)
    ap.add_argument("--capacity", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    n, k, rep, param, cap = args.n, args.values, args.repeat, args.param, args.capacity

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.from_columns(
        load_generator("elderly-care").generate(n, seed=1), policy
    )
    values = grid_of(param, k)

    def one() -> fa.Evaluation:
        ev = fa.evaluate(policy, population)
        _ = ev.ranking
        return ev

    t_one, ev = timed(one, rep)
    t_sweep, result = timed(lambda: sweep(policy, population, {param: values}, capacity=cap), rep)
    t_plain, expected = timed(lambda: plain(policy, population, param, values, cap), rep)
    for point, (eligible, served, cutoffs, stats) in zip(result.points, expected, strict=True):
        assert point.eligible == eligible
        assert point.served == served
        assert [c["score"] for c in point.cutoffs] == [c.score for c in cutoffs]
        assert point.groups.to_dict() == stats, "the sweep must give the plain way's outcomes"
    capacities = [int(c) for c in np.linspace(cap // 2, 2 * cap, k)]
    t_cap, _ = timed(lambda: sweep(policy, population, {"capacity": capacities}), rep)

    print(
        f"elderly-care example: {n:,} residents, {int(ev.eligible.sum()):,} eligible,"
        f" {cap:,} places; {param} over {k} values ({values[0]} to {values[-1]});"
        f" median of {rep} run(s)"
    )
    print(f"reads `{param}`: {', '.join(result.recomputed[param])}")
    print(f"{'':52}{'seconds':>10}{'per value':>12}")
    print(f"{'one full evaluation + ranking (baseline)':52}{t_one:10.3f}")
    print(f"{'sweep with allocation and group statistics':52}{t_sweep:10.3f}{t_sweep / k:12.3f}")
    print(
        f"{'the plain way: evaluate + allocate + groups each':52}{t_plain:10.3f}{t_plain / k:12.3f}"
    )
    print(f"{'sweep of capacities (allocation only)':52}{t_cap:10.3f}{t_cap / k:12.3f}")
    print(
        f"the sweep takes {t_sweep / t_plain:.2f}x the plain way's time;"
        f" per value {t_sweep / k / t_one:.2f}x one full evaluation + ranking"
    )


if __name__ == "__main__":
    main()
