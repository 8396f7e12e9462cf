"""The fairness audit on a large population, layer by layer, beside one evaluation.

Prints the seconds of one evaluation (the baseline), of evaluation + ranking, and of each audit
layer on the elderly-care example: the static proof, the counterfactual flip audit of every
protected attribute and value, proxy detection, group statistics (every protected attribute
and pairwise intersection, within need strata) and the scale audit; then the full audit as a
multiple of one evaluation; last, ``audit()`` as users call it (its layers and flip values in
threads, one per core up to four) and on one thread, each against one evaluate + allocate.

Usage::

    python benchmarks/bench_audit.py               # 1,000,000 residents
    python benchmarks/bench_audit.py --n 200000
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from _common import load_generator, timed

import fairalloc as fa
from fairalloc.allocation import allocate_evaluation
from fairalloc.audit import (
    audit,
    flip_audit,
    group_statistics,
    outcome_proxies,
    proxy_check,
    scale_audit,
    static_proof,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.from_columns(
        load_generator("elderly-care").generate(args.n, seed=1), policy
    )

    t_eval, ev = timed(lambda: fa.evaluate(policy, population), args.repeat)

    def ranked() -> fa.Evaluation:
        e = fa.evaluate(policy, population)
        _ = e.ranking
        return e

    t_rank, ev = timed(ranked, args.repeat)
    alloc = fa.allocate(ev, capacity=args.capacity)
    measured = allocate_evaluation(ev, capacity=args.capacity, measure_only=True)
    rows = [
        ("static proof", lambda: static_proof(policy)),
        ("flip audit (every protected value)", lambda: flip_audit(ev, capacity=args.capacity)),
        ("proxy detection", lambda: proxy_check(ev)),
        ("proxies judged by outcomes", lambda: outcome_proxies(measured)),
        ("group statistics, strata + pairs", lambda: group_statistics(alloc, strata="need")),
        ("scale audit", lambda: scale_audit(ev, strata="need")),
    ]
    print(
        f"elderly-care example: {args.n:,} residents, {int(ev.eligible.sum()):,} eligible,"
        f" {args.capacity:,} places; median of {args.repeat} runs"
    )
    print(f"{'':40}{'seconds':>10}{'x evaluate':>12}")
    print(f"{'one evaluate (baseline)':40}{t_eval:10.3f}{1:12.1f}")
    print(f"{'evaluate + rank':40}{t_rank:10.3f}{t_rank / t_eval:12.1f}")
    total = t_rank
    for label, fn in rows:
        t, _ = timed(fn, args.repeat)
        total += t
        print(f"{label:40}{t:10.3f}{t / t_eval:12.1f}")
    print(f"{'full audit (evaluate + rank + layers)':40}{total:10.3f}{total / t_eval:12.1f}")
    # The target of the fairness work: the whole audit, as users call it, against one
    # evaluate + allocate, both measured here in one run; and the audit on one thread. The
    # three are timed in turn, round after round, so that a slower spell of the machine
    # weighs on each alike; the medians are compared.
    rounds: dict[str, list[float]] = {"base": [], "audit": [], "one": []}
    for _ in range(args.repeat):
        for key, fn in (
            ("base", lambda: fa.allocate(fa.evaluate(policy, population), capacity=args.capacity)),
            ("audit", lambda: audit(policy, population, capacity=args.capacity)),
            ("one", lambda: audit(policy, population, capacity=args.capacity, workers=1)),
        ):
            rounds[key].append(timed(fn, 1)[0])
    t_decide = statistics.median(rounds["base"])
    t_audit = statistics.median(rounds["audit"])
    t_one = statistics.median(rounds["one"])
    print(f"{'evaluate + allocate (baseline)':40}{t_decide:10.3f}")
    print(
        f"{'audit(), as users call it':40}{t_audit:10.3f}"
        f"   ({t_audit / t_decide:.1f}x evaluate + allocate; target at most 5x;"
        f" threads: {min(4, os.cpu_count() or 1)})"
    )
    print(
        f"{'audit(workers=1), one thread':40}{t_one:10.3f}"
        f"   ({t_one / t_decide:.1f}x evaluate + allocate)"
    )


if __name__ == "__main__":
    main()
