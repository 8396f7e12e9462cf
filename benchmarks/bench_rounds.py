"""Real rounds: running weekly rounds one at a time from a stored state, against simulate.

Figures (wall seconds, perf_counter):

1. ``simulate`` over R rounds at once (the baseline);
2. the same R rounds run one by one with ``run_round``, each from the state the one before
   returned, written to JSON and read back between rounds (what an office does each week);
   the difference is what carrying the state costs;
3. one state's canonical JSON, its reading, and its digest, at the end;
4. with ``--cluster W``: the same rounds one by one with
   ``fairalloc.cluster.run_round_on_cluster`` on a local Dask cluster of ``W`` worker
   processes, the residents a Parquet dataset of 8 files (extra ``fairalloc[dask]``), the
   state written to JSON and read back between rounds as in 2.

Every run gives the same rounds and the same state (checked).

Usage::

    python benchmarks/bench_rounds.py                  # 100,000 residents, 8 rounds of 2,000
    python benchmarks/bench_rounds.py --n 20000 --rounds 4 --capacity 400
    python benchmarks/bench_rounds.py --n 1000000 --rounds 3 --cluster 2
"""

from __future__ import annotations

import argparse
import gc
import tempfile
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
    ap.add_argument(
        "--cluster", type=int, default=0, metavar="W", help="also on a local cluster of W workers"
    )
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
    if args.cluster:
        _on_cluster(args, policy, population, served, state, one_by_one)


def _on_cluster(
    args: argparse.Namespace,
    policy: fa.Policy,
    population: fa.Population,
    served: list[list[str]],
    state: fa.RotationState,
    one_by_one: float,
) -> None:
    import distributed
    import numpy as np
    import pandas as pd

    from fairalloc.cluster import run_round_on_cluster

    frame = pd.DataFrame(population.to_pandas())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "residents"
        folder.mkdir()
        for k, rows in enumerate(np.array_split(np.arange(len(frame)), 8)):
            frame.iloc[rows].to_parquet(folder / f"part.{k:02d}.parquet", index=False)
        with (
            distributed.LocalCluster(
                n_workers=args.cluster, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            got: fa.RotationState | None = None
            t = time.perf_counter()
            for r in range(args.rounds):
                rnd = run_round_on_cluster(
                    policy, str(folder), got, capacity=args.capacity, client=client
                )
                assert rnd.served == served[r]
                got = fa.RotationState.from_json(rnd.state.to_json())  # as run_round's
            took = time.perf_counter() - t
    assert got is not None
    assert got.to_json() == state.to_json()
    print(
        f"run_round_on_cluster, {args.cluster} workers: {took:8.2f} s"
        f"  ({took / one_by_one:.2f}x run_round one by one; {took / args.rounds:.2f} s a round)"
    )


if __name__ == "__main__":
    main()
