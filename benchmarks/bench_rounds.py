"""Real rounds: running weekly rounds one at a time from a stored state, against simulate.

Figures (wall seconds, perf_counter):

1. ``simulate`` over R rounds at once (the baseline);
2. the same R rounds run one by one with ``run_round``, each from the state the one before
   returned, written to JSON and read back between rounds (what an office does each week);
   the difference is what carrying the state costs;
3. one state's canonical JSON, its reading, and its digest, at the end.

Both runs give the same rounds (checked).

Usage::

    python benchmarks/bench_rounds.py                  # 100,000 residents, 8 rounds of 2,000
    python benchmarks/bench_rounds.py --n 20000 --rounds 4 --capacity 400
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from _common import load_generator

import fairalloc as fa

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "activity-places"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--capacity", type=int, default=2_000)
    args = ap.parse_args()

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.from_columns(
        load_generator("activity-places").generate(args.n, seed=1), policy
    )

    gc.collect()
    t = time.perf_counter()
    sim = fa.simulate(policy, population, rounds=args.rounds, capacity=args.capacity)
    at_once = time.perf_counter() - t

    gc.collect()
    t = time.perf_counter()
    state = None
    served = []
    for _ in range(args.rounds):
        rnd = fa.run_round(policy, population, state, capacity=args.capacity)
        served.append(rnd.served)
        state = fa.RotationState.from_json(rnd.state.to_json())
    one_by_one = time.perf_counter() - t
    assert served == sim.served
    assert state is not None
    assert state.to_json() == sim.state.to_json()

    t = time.perf_counter()
    text = state.to_json()
    write = time.perf_counter() - t
    t = time.perf_counter()
    fa.RotationState.from_json(text)
    read = time.perf_counter() - t
    t = time.perf_counter()
    state.digest()
    digest = time.perf_counter() - t

    print(f"{args.n:,} residents, {args.rounds} rounds of {args.capacity:,}")
    print(f"simulate, all rounds at once (baseline): {at_once:8.2f} s")
    print(
        f"run_round one by one, state via JSON:    {one_by_one:8.2f} s"
        f"  ({one_by_one / at_once:.2f}x; +{(one_by_one - at_once) / args.rounds:.2f} s a round)"
    )
    print(
        f"state ({len(text) / 1e6:.1f} MB JSON): write {write:.2f} s, read {read:.2f} s,"
        f" digest {digest:.2f} s"
    )


if __name__ == "__main__":
    main()
