"""Allocation on a large population: priority with capacity and reserves, and lotteries.

Figures (median of several runs, whole seconds of wall time measured with perf_counter):

1. priority allocation of N applicants into C places with the example's hardship reserve,
   beside the evaluation + ranking it starts from (the baseline: what allocation adds);
2. the same with ``reserve_mode: max_beneficiaries``;
3. a plain published-seed lottery and a weighted one over all N, beside a hand-written
   hashlib + numpy draw of the same keys (the baseline), checked to give the same winners.

Usage::

    python benchmarks/bench_allocation.py                  # N = 1,000,000, C = 10,000
    python benchmarks/bench_allocation.py --n 200000 --capacity 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _common import load_generator, timed

import fairalloc as fa

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"


def variant(**allocation: Any) -> fa.Policy:
    """The example policy with another allocation section."""
    doc = yaml.safe_load((EXAMPLE / "policy.yaml").read_text(encoding="utf-8"))
    doc["allocation"] = {**doc["allocation"], **allocation}
    if not doc["allocation"]["reserves"]:  # no reserve left to justify a use for
        doc["justified_uses"] = [u for u in doc["justified_uses"] if "reserve" not in u]
    return fa.Policy.model_validate(doc)


def hand_lottery(seed: str, ids: np.ndarray, capacity: int) -> list[str]:
    key = seed.encode()
    blob = b"".join(hashlib.blake2b(str(r).encode(), key=key, digest_size=8).digest() for r in ids)
    keys = np.frombuffer(blob, dtype=">u8").astype(np.uint64)
    return [str(r) for r in ids[np.argsort(keys, kind="stable")[:capacity]]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, cap, rep = args.n, args.capacity, args.repeat

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.from_columns(
        load_generator("elderly-care").generate(n, seed=1), policy
    )

    t_eval, ev = timed(lambda: _ranked(policy, population), rep)
    t_alloc, alloc = timed(lambda: fa.allocate(ev, capacity=cap), rep)
    smart = variant(reserve_mode="max_beneficiaries")
    ev_smart = fa.evaluate(smart, population)
    _ = ev_smart.ranking
    t_smart, alloc_smart = timed(lambda: fa.allocate(ev_smart, capacity=cap), rep)

    seed = "2026-Q1-published-lottery"
    plain = variant(mechanism="lottery", lottery={"seed": seed}, reserves=[])
    weighted = variant(
        mechanism="lottery",
        reserves=[],
        lottery={"seed": seed, "weight": "1 + min(waiting_days / 365, 3)"},
    )
    ev_plain = fa.evaluate(plain, population)
    ev_weighted = fa.evaluate(weighted, population)
    t_plain, lot = timed(lambda: fa.allocate(ev_plain, capacity=cap), rep)
    t_weighted, _ = timed(lambda: fa.allocate(ev_weighted, capacity=cap), rep)
    eligible_ids = ev_plain.ids[ev_plain.eligible]
    t_hand, hand = timed(lambda: hand_lottery(seed, eligible_ids, cap), rep)
    assert lot.served_ids() == hand, "the lottery must serve exactly the lowest published keys"

    elig = int(ev.eligible.sum())
    print(
        f"elderly-care example: {n:,} residents, {elig:,} eligible, {cap:,} places;"
        f" median of {rep} runs"
    )
    print(f"{'':44}{'seconds':>10}")
    print(f"{'evaluate + rank (baseline)':44}{t_eval:10.3f}")
    print(
        f"{'priority allocation with reserve':44}{t_alloc:10.3f}"
        f"   ({alloc.n_served:,} served; reserve cut-off {alloc.cutoffs()[0].score})"
    )
    print(f"{'  same, max_beneficiaries':44}{t_smart:10.3f}   ({alloc_smart.n_served:,} served)")
    print(f"{'plain lottery over all eligible':44}{t_plain:10.3f}")
    print(f"{'weighted lottery over all eligible':44}{t_weighted:10.3f}")
    print(f"{'hand-written hashlib + numpy lottery':44}{t_hand:10.3f}")
    print(
        f"allocation adds {t_alloc / t_eval:.2f}x of evaluate+rank;"
        f" plain lottery / hand-written: {t_plain / t_hand:.2f}x"
    )


def _ranked(policy: fa.Policy, population: fa.Population) -> fa.Evaluation:
    ev = fa.evaluate(policy, population)
    _ = ev.ranking
    return ev


if __name__ == "__main__":
    main()
