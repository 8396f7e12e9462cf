"""Explanations on a large population: one resident with counterfactuals, and every resident.

Figures (median of several runs, wall time measured with perf_counter):

1. the evaluation + allocation the explanations read (the baseline);
2. one explanation of a resident just below the cut-off, including the counterfactual search
   over every changeable attribute (each candidate evaluated by the engine, each reported
   change re-run through the mechanism on the whole population), and one without the search;
   the same under ``reserve_mode: max_beneficiaries``;
3. every resident's explanation facts written as JSON Lines and as CSV, beside a
   straightforward ``json.dumps`` of one dict per resident (scaled from a sample), the
   baseline a user would write by hand.

Usage::

    python benchmarks/bench_explain.py                 # N = 1,000,000, C = 10,000
    python benchmarks/bench_explain.py --n 200000 --capacity 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import load_generator, timed

import fairalloc as fa

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"


def by_hand(alloc: fa.Allocation, rows: np.ndarray) -> str:
    """One json.dumps per resident of the same facts: the baseline."""
    ev = alloc.evaluation
    criteria = ev.criteria
    out = []
    for r in rows:
        out.append(
            json.dumps(
                {
                    "id": str(ev.ids[r]),
                    "eligible": bool(ev.eligible[r]),
                    "score": int(ev.score_micro[r]) / 1_000_000,
                    "rank": int(ev.ranking.rank[r]) or None,
                    "points": {k: int(ev.points[r, j]) / 1_000_000 for j, k in enumerate(criteria)},
                    "served": bool(alloc.served[r]),
                }
            )
        )
    return "\n".join(out)


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

    def evaluate_allocate() -> fa.Allocation:
        return fa.allocate(fa.evaluate(policy, population), capacity=cap)

    t_base, alloc = timed(evaluate_allocate, rep)
    ev = alloc.evaluation
    waiting = alloc.order[~alloc.served[alloc.order]]
    near = str(ev.ids[waiting[min(50, len(waiting) - 1)]])  # just below the cut-off
    far = str(ev.ids[waiting[len(waiting) // 2]])

    print(f"{n:,} residents, {cap:,} places, {len(alloc.order):,} eligible")
    print(f"  evaluate + allocate (baseline)          {t_base:7.3f} s")

    start = time.perf_counter()
    first = alloc.explain(near)
    t_first = time.perf_counter() - start
    t_near, e = timed(lambda: alloc.explain(near), rep)
    t_far, e_far = timed(lambda: alloc.explain(far), rep)
    t_plain, _ = timed(lambda: alloc.explain(near, counterfactuals=False), rep)
    assert first.to_json() == e.to_json()
    print(
        f"  one explanation with counterfactuals    {t_near:7.3f} s   (first call {t_first:.3f} s)"
    )
    for cf in e.facts.counterfactuals:
        print(f"      {cf.attribute}: {cf.before} -> {cf.after} gives {cf.outcome_after}")
    print(
        f"  same, a resident mid-list               {t_far:7.3f} s"
        f"   ({len(e_far.facts.counterfactuals)} changes found)"
    )
    print(f"  one explanation without the search      {t_plain:7.3f} s")

    # The same with reserve_mode: max_beneficiaries, whose allocation is a greedy matching:
    # each reported change costs one re-run of that allocation on everybody.
    doc = policy.model_dump(mode="json", exclude_none=True)
    doc["allocation"]["reserve_mode"] = "max_beneficiaries"
    mb_policy = fa.Policy.model_validate(doc)
    t_mb_alloc, mb = timed(lambda: fa.allocate(fa.evaluate(mb_policy, population), capacity=cap), 1)
    mb_waiting = mb.order[~mb.served[mb.order]]
    mb_near = str(mb.evaluation.ids[mb_waiting[min(50, len(mb_waiting) - 1)]])
    t_mb, e_mb = timed(lambda: mb.explain(mb_near), 1)
    print(f"  max_beneficiaries: evaluate + allocate  {t_mb_alloc:7.3f} s")
    print(
        f"  max_beneficiaries: one explanation      {t_mb:7.3f} s"
        f"   ({len(e_mb.facts.counterfactuals)} changes found, each re-run)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        jl = os.path.join(tmp, "all.jsonl")
        csv_path = os.path.join(tmp, "all.csv")
        t_jsonl, written = timed(lambda: fa.export_explanations(alloc, jl), rep)
        t_csv, _ = timed(lambda: fa.export_explanations(alloc, csv_path, format="csv"), rep)
        size = os.path.getsize(jl) / 2**20
    sample = np.arange(min(n, 50_000))
    t_hand, _ = timed(lambda: by_hand(alloc, sample), 1)
    t_hand_all = t_hand * n / len(sample)
    lines = f"({written:,} lines, {size:.0f} MiB)"
    print(f"  export every resident, JSON Lines       {t_jsonl:7.3f} s   {lines}")
    print(f"  export every resident, CSV              {t_csv:7.3f} s")
    scaled = f"(scaled from {len(sample):,}; fewer fields)"
    print(f"  json.dumps per resident (baseline)      {t_hand_all:7.3f} s   {scaled}")
    print(f"  export / baseline                       {t_jsonl / t_hand_all:7.2f}x")


if __name__ == "__main__":
    main()
