"""Recording a decision in the log: what it adds to the decision, verify, and receipts.

Figures (wall seconds, perf_counter; one run each unless --repeat):

1. the decision alone (the baseline): evaluate + allocate with the recorded seed, which is what
   :meth:`DecisionLog.decide` runs;
2. freezing the list (rows, nonces, leaves, root, storage), before any seed;
3. ``decide``: the baseline plus the check of the data against the freeze and the recording of
   the outcome (leaf hashes, root, storage); what recording adds = decide - baseline, shown
   split into the check of the frozen list and the outcome record itself;
4. ``verify_log`` with policy, data and openings (chain, head, roots, re-run to an identical
   outcome commitment), as a multiple of the decision;
5. one resident's receipt checked against the head (mean of 1,000).

Usage::

    python benchmarks/bench_records.py                       # N = 1,000,000, C = 10,000, SQLite
    python benchmarks/bench_records.py --n 100000 --url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import load_generator

import fairalloc as fa
from fairalloc.records import DecisionLog, Opening, verify_log, verify_receipt, with_seed
from fairalloc.records._commit import commit, id_order, recommit
from fairalloc.records._log import _lazy_outcomes, _lazy_rows
from fairalloc.records._merkle import Tree

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"
AS_OF = dt.date(2026, 12, 1)
T0 = "2026-12-01T09:00:00Z"


def clock(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=10_000)
    ap.add_argument("--url", default=None, help="log address (a fresh SQLite file by default)")
    args = ap.parse_args()
    n, cap = args.n, args.capacity

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.from_columns(
        load_generator("elderly-care").generate(n, seed=1), policy
    )
    tmp = tempfile.TemporaryDirectory()
    url = args.url or str(Path(tmp.name) / "log.db")
    with DecisionLog.open(url) as log:
        p = log.register_policy(
            policy, approved_by="committee", approved_at="2026-11-20", operator="b"
        )
        t_freeze, frz = clock(lambda: log.freeze(p.seq, population, policy=policy, operator="b"))
        s = log.draw_seed(frz.seq, public_randomness="bench", how="benchmark", operator="b")
        seeded = with_seed(policy, s.body["seed"])

        def baseline() -> fa.Allocation:
            return fa.allocate(fa.evaluate(seeded, population, as_of=AS_OF), capacity=cap)

        t_base, alloc = clock(baseline)
        t_decide, decision = clock(
            lambda: log.decide(
                policy, population, freeze=frz.seq, seed=s.seq, operator="b", capacity=cap, time=T0
            )
        )
        assert decision.allocation.served_ids() == alloc.served_ids()
        # Verify the log as a decision leaves it (before the measurements below add to it).
        t_verify, report = clock(lambda: verify_log(log, policies=[policy], data=population))
        assert report.ok, report.to_text()
        assert decision.seq in report.rerun
        # the two parts of what decide adds, measured on their own
        order = id_order(population.ids)
        opening = log.store.opening(frz.seq)
        assert opening is not None

        def check_frozen() -> None:
            rows = _lazy_rows(population, order)  # as decide and verify read them
            assert b"".join(recommit(rows, opening.nonces)) == b"".join(log.leaves(frz.seq))

        t_check, _ = clock(check_frozen)

        def record_outcome() -> str:
            nonces, leaves = commit(_lazy_outcomes(alloc, order))
            ids = population.ids[order].astype(str).tolist()
            rec = log.append(
                "bench.outcome",
                {"root": Tree(leaves).root.hex()},
                operator="b",
                leaves=leaves,
                opening=Opening(ids, nonces),
            )
            return rec.hash

        t_record, _ = clock(record_outcome)
        head = log.head()
        some = np.random.default_rng(0).choice(len(decision.ids), 20, replace=False)
        receipts = [log.receipt(decision, decision.ids[int(i)]) for i in some]
        reps = 1000
        start = time.perf_counter()
        for k in range(reps):
            assert verify_receipt(receipts[k % len(receipts)], head).ok
        t_receipt = (time.perf_counter() - start) / reps
        backend = type(log.store).__name__

    load = os.getloadavg()[0]
    print(
        f"elderly-care example: {n:,} residents, {cap:,} places; log: {backend};"
        f" load average {load:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'':52}{'seconds':>10}")
    print(f"{'decision alone: evaluate + allocate (baseline)':52}{t_base:10.3f}")
    print(f"{'freeze the list (before the draw)':52}{t_freeze:10.3f}")
    print(f"{'decide (baseline + check + record)':52}{t_decide:10.3f}")
    print(f"{'  recording adds (decide - baseline)':52}{t_decide - t_base:10.3f}")
    print(f"{'    of which: data checked against the freeze':52}{t_check:10.3f}")
    print(f"{'    of which: outcome leaves, root and storage':52}{t_record:10.3f}")
    print(
        f"{'verify (chain, heads, roots, re-run)':52}{t_verify:10.3f}"
        f"   ({t_verify / t_base:.2f}x the decision alone,"
        f" {t_verify / t_decide:.2f}x the recorded decision)"
    )
    print(f"{'one receipt verified against the head (ms)':52}{t_receipt * 1000:10.3f}")


if __name__ == "__main__":
    main()
