"""Comparing two policies on a large population, beside one evaluation and allocation.

Figures (median of several runs, seconds of wall time measured with perf_counter):

1. one evaluate + rank + allocate of the example policy (the baseline: what a single run of
   the policy costs);
2. ``compare`` of the example policy with a changed version (the weight of living alone
   raised from 1 to 1.5), with capacity, group statistics of every protected attribute within
   need grades, rank correlations and the structural diff; it evaluates and allocates under
   both policies, so about twice the baseline is its floor;
3. the JSON export of that comparison.

Usage::

    python benchmarks/bench_compare.py                  # N = 1,000,000, C = 10,000
    python benchmarks/bench_compare.py --n 200000 --capacity 2000 --repeat 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from _common import load_generator, timed

import fairalloc as fa
from fairalloc.analysis import Comparison, compare

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"


def changed_policy() -> fa.Policy:
    """The example policy with living alone weighing 1.5 instead of 1."""
    doc = yaml.safe_load((EXAMPLE / "policy.yaml").read_text(encoding="utf-8"))
    doc["scales"]["need"]["scales"]["family"]["indicators"]["alone"]["weight"] = 1.5
    doc["policy"]["version"] = "2026.1-alone-1.5"
    return fa.Policy.model_validate(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, cap, rep = args.n, args.capacity, args.repeat

    old = fa.load_policy(EXAMPLE / "policy.yaml")
    new = changed_policy()
    population = fa.Population.from_columns(load_generator("elderly-care").generate(n, seed=1), old)

    def baseline() -> fa.Allocation:
        return fa.allocate(fa.evaluate(old, population), capacity=cap)

    def comparison() -> Comparison:
        return compare(old, new, population, capacity=cap)

    t_base, alloc = timed(baseline, rep)
    t_compare, result = timed(comparison, rep)
    t_json, text = timed(result.to_json, rep)

    ranks = result.rank_summary()
    scores = result.score_summary()
    served = result.served_summary() or {}
    print(
        f"elderly-care example: {n:,} residents, {int(alloc.evaluation.eligible.sum()):,}"
        f" eligible, {cap:,} places; median of {rep} runs"
    )
    print(f"change: {'; '.join(c.describe() for c in result.diff.changes)}")
    print(f"{'':44}{'seconds':>10}")
    print(f"{'evaluate + rank + allocate (baseline)':44}{t_base:10.3f}")
    print(
        f"{'compare, with group statistics':44}{t_compare:10.3f}"
        f"   ({t_compare / t_base:.2f}x the baseline)"
    )
    print(f"{'  its JSON export':44}{t_json:10.3f}   ({len(text) / 1e3:.0f} kB)")
    print(
        f"scores changed: {scores['changed']:,}; newly served: {served.get('newly_served', 0):,},"
        f" losing their place: {served.get('losing_place', 0):,}; moved in rank:"
        f" {ranks['moved_up'] + ranks['moved_down']:,}; Spearman {ranks['spearman_rho']:.6f},"
        f" Kendall tau-b {ranks['kendall_tau_b']:.6f}"
    )


if __name__ == "__main__":
    main()
