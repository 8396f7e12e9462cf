"""Events through durable-rules: latency and throughput per event, memory per resident held.

A pool of N residents of the elderly-care example (100,000 by default) is decided and recorded
(register, freeze, draw, decide); an event desk starts from that decision and an event loop
routes events to it. Figures, in one run:

1. start-up: the desk re-running the recorded decision from the log (policy, frozen list and
   outcome checked);
2. application events (received or updated): latency per event through the loop (median,
   95th and 99th percentile, mean), beside two baselines measured in the same run: the desk's
   handler called directly (what durable-rules adds is the difference) and the engine alone on
   a one-resident population (the floor); throughput in events per second; and a batch
   evaluation of the same applicants, per resident, for comparison;
3. offer events (a place freed, then declined: each appends records to the SQLite log);
4. memory: what the desk holds per resident of the pool (tracemalloc), and what durable-rules
   holds per resident kept as a fact instead (resident set size growth over K facts), the
   design this module avoids: events are posted, never kept as facts.

Usage::

    python benchmarks/bench_events.py                  # N = 100,000, 2,000 events
    python benchmarks/bench_events.py --n 20000 --events 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_generator

import fairalloc as fa
from fairalloc._engine import evaluate_compiled
from fairalloc._population import Population
from fairalloc.events import Desk, EventLoop, ManualClock
from fairalloc.records import DecisionLog

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"
T0 = "2026-12-01T09:00:00Z"


def plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in record.items()}


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def latencies(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def summary(label: str, times: list[float]) -> None:
    ms = np.array(times) * 1000
    print(
        f"{label:46}{np.median(ms):9.3f}{np.percentile(ms, 95):9.3f}"
        f"{np.percentile(ms, 99):9.3f}{ms.mean():9.3f}{len(ms) / ms.sum() * 1000:11,.0f}"
    )


def durable_facts(k: int, records: list[dict[str, Any]]) -> float:
    """Bytes of resident memory per resident asserted as a durable-rules fact."""
    from durable import engine

    class Host(engine.Host):  # type: ignore[misc]
        def _run(self) -> None:
            pass

    host = Host()
    host.register_rulesets(
        {
            "facts": {
                "r": {
                    "all": [{"a": {"kind": "resident"}}, {"b": {"kind": "never"}}],
                    "run": lambda c: None,
                }
            }
        }
    )
    gc.collect()
    before = rss()
    for i in range(k):
        host.assert_fact(
            "facts", {**records[i % len(records)], "resident_id": f"F{i:07d}", "kind": "resident"}
        )
    gc.collect()
    return (rss() - before) / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="residents in the pool")
    ap.add_argument("--capacity", type=int, default=1_000)
    ap.add_argument("--events", type=int, default=2_000, help="application events timed")
    ap.add_argument("--facts", type=int, default=10_000, help="durable-rules facts for memory")
    args = ap.parse_args()
    n = args.n

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    gen = load_generator("elderly-care")
    population = Population.from_columns(gen.generate(n, seed=1), policy)
    newcomers = Population.from_columns(gen.generate(args.events, seed=2), policy).to_records()
    applicants = [{**plain(r), "resident_id": f"N{i:07d}"} for i, r in enumerate(newcomers)]
    tmp = tempfile.TemporaryDirectory()
    log = DecisionLog.open(Path(tmp.name) / "log.db")
    p = log.register_policy(policy, operator="b", time=T0)
    f = log.freeze(p.seq, population, policy=policy, operator="b", time=T0)
    s = log.draw_seed(f.seq, public_randomness="bench", how="benchmark", operator="b", time=T0)
    d = log.decide(
        policy,
        population,
        freeze=f.seq,
        seed=s.seq,
        operator="b",
        capacity=args.capacity,
        time=T0,
    )
    clock = ManualClock(dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC))

    gc.collect()
    tracemalloc.start()
    held_before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    desk = Desk(log, policy, population, decision=d.seq, clock=clock, operator="b")
    t_start = time.perf_counter() - start
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - held_before
    tracemalloc.stop()
    loop = EventLoop(desk)

    events = [{"type": "application", "record": a} for a in applicants]
    for e in events[:50]:  # warm up both paths
        loop.post(e)
        desk.application(e)
    cp = desk.compiled
    t_engine = latencies(
        lambda a: evaluate_compiled(cp, Population.of([a], policy)).record(0), applicants
    )
    t_direct = latencies(desk.application, events)
    t_loop = latencies(loop.post, events)
    start = time.perf_counter()
    batch = fa.evaluate(cp, applicants)
    t_batch = time.perf_counter() - start
    assert batch.n == len(applicants)

    offers = 200
    freed = [{"type": "place_freed", "place": f"unit {i}"} for i in range(offers)]
    t_freed = latencies(loop.post, freed)
    declined = [{"type": "offer_declined", "offer": 2 * i + 1} for i in range(offers)]
    t_declined = latencies(loop.post, declined)

    per_fact = durable_facts(args.facts, applicants)
    log.close()

    load = os.getloadavg()[0]
    print(
        f"elderly-care example: a pool of {n:,} residents, {args.capacity:,} places;"
        f" {len(events):,} application events; load average {load:.1f} on"
        f" {os.cpu_count()} cores"
    )
    print(f"desk start-up (re-run of the recorded decision from the log): {t_start:.2f} s")
    print(
        f"\n{'milliseconds per event':46}{'median':>9}{'p95':>9}{'p99':>9}{'mean':>9}"
        f"{'events/s':>11}"
    )
    summary("application, through durable-rules", t_loop)
    summary("  baseline: the desk's handler alone", t_direct)
    summary("  baseline: the engine alone, one resident", t_engine)
    print(
        f"{'  (batch evaluation of the same applicants)':46}"
        f"{t_batch / len(applicants) * 1000:9.4f} per resident"
    )
    summary("place freed (offer recorded)", t_freed)
    summary("offer declined (closed, next offered)", t_declined)
    added = statistics.median(t_loop) - statistics.median(t_direct)
    print(f"\ndurable-rules adds {added * 1000:.3f} ms per event (median loop - median handler)")
    print(
        f"memory the desk holds per resident of the pool: {held / n:,.0f} bytes"
        f" ({held / 2**20:,.1f} MiB for {n:,})"
    )
    print(
        f"memory durable-rules holds per resident kept as a fact: {per_fact:,.0f} bytes"
        f" ({args.facts:,} facts; the loop keeps none)"
    )


if __name__ == "__main__":
    main()
