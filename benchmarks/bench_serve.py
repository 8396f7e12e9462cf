"""The web service under load: requests per second and latency percentiles, on loopback.

``fairalloc serve`` runs as its own process with the elderly-care policy and a pool of N
residents (the example's generator), evaluated and allocated at start. 50 clients (asyncio,
one httpx client and connection each, in this process) call one route as fast as it answers
for S seconds; each figure is the number of answers divided by S, and the 50th and 99th
percentiles of their latencies.

Routes, each for one resident drawn at random from the pool:

1. ``/health``: no work at all, the floor of the framework and the client (the baseline);
2. evaluation of a pool resident (``GET .../residents/{id}``);
3. explanation of a pool resident without the search for counterfactuals;
4. explanation with counterfactuals (the route's default: each candidate change re-runs the
   engine and the allocation on the whole pool);
5. evaluation of one resident's record sent in the request (``POST .../evaluate``).

Beside each, the library's own time for the same call in this process (median of a few), so
the service's overhead reads from one run. Every answer is checked against the library's
(with counterfactuals, the route draws from 20 residents whose answers were computed first).

Usage::

    python benchmarks/bench_serve.py                    # N = 100,000, 50 clients, 30 s a route
    python benchmarks/bench_serve.py --n 20000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import load_generator, timed

import fairalloc as fa
from fairalloc.serve import hash_token

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "fairalloc.cli", "serve", str(config), "--port", str(port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    stop = time.monotonic() + 600
    while time.monotonic() < stop:  # poll the socket until the service answers
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise SystemExit(f"the service ended: {log.read_text()[-2000:]}")
    raise SystemExit("the service did not answer within 600 s")


def percentile(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q))]


async def load(
    url: str,
    make: Any,
    expected: Any,
    *,
    clients: int,
    seconds: float,
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    wrong = 0

    async def client(k: int, c: httpx.AsyncClient, stop: float) -> None:
        nonlocal wrong
        rng = random.Random(k)
        while time.monotonic() < stop:
            method, path, body, key = make(rng)
            t = time.perf_counter()
            r = await c.request(method, path, json=body)
            latencies.append(time.perf_counter() - t)
            if r.status_code != 200 or (expected is not None and r.json() != expected(key)):
                wrong += 1

    # One client object (one connection) per client: 50 independent callers. (A single
    # AsyncClient shared by 50 tasks spends its time in its own pool's locks, not on the wire.)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    pool = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60) for _ in range(clients)]
    try:
        stop = time.monotonic() + seconds
        await asyncio.gather(*(client(k, c, stop) for k, c in enumerate(pool)))
    finally:
        for c in pool:
            await c.aclose()
    latencies.sort()
    return len(latencies), latencies, wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="residents in the pool")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds per route")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--check", type=int, default=200, help="residents whose answers are checked")
    args = ap.parse_args()

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    columns = load_generator("elderly-care").generate(args.n, seed=1)
    population = fa.Population.from_columns(columns, policy)
    alloc = fa.allocate(fa.evaluate(policy, population))
    ev = alloc.evaluation
    rng = random.Random(7)
    ids = [str(ev.ids[rng.randrange(ev.n)]) for _ in range(args.check)]

    def as_json(x: Any) -> Any:
        return json.loads(json.dumps(x, ensure_ascii=False, default=str))

    records = {
        rid: as_json({**ev.record(ev.index_of(rid)), **alloc.record(ev.index_of(rid))})
        for rid in ids
    }
    plain = {rid: as_json(alloc.explain(rid, counterfactuals=False).to_dict()) for rid in ids}
    sent = {rid: as_json(population.take([ev.index_of(rid)]).to_records()) for rid in ids}
    evaluated = {rid: json.loads(fa.evaluate(policy, sent[rid]).to_json()) for rid in ids}
    cf_ids = ids[:20]  # each takes a search: the route draws from fewer residents
    with_cf = {rid: as_json(alloc.explain(rid).to_dict()) for rid in cf_ids}

    t_record, _ = timed(lambda: [ev.record(ev.index_of(r)) for r in ids[:50]], 3)
    t_plain, _ = timed(lambda: [alloc.explain(r, counterfactuals=False) for r in ids[:50]], 3)
    t_cf, _ = timed(lambda: [alloc.explain(r) for r in ids[:10]], 1)
    t_eval, _ = timed(lambda: [fa.evaluate(policy, sent[r]) for r in ids[:50]], 3)
    library = {"record": t_record / 50, "plain": t_plain / 50, "cf": t_cf / 10, "eval": t_eval / 50}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pool = work / "pool.parquet"
        _write_pool(population, pool)
        config = work / "service.json"
        config.write_text(
            json.dumps(
                {
                    "policies": [
                        {
                            "name": "care",
                            "file": str(EXAMPLE / "policy.yaml"),
                            "residents": str(pool),
                        }
                    ],
                    "tokens": [{"name": "bench", "sha256": hash_token(TOKEN), "scopes": ["read"]}],
                    "limits": {"workers": 8, "timeout_seconds": 60},
                }
            )
        )
        port = free_port()
        t0 = time.perf_counter()
        proc = start(config, port, work / "stderr.log")
        t_start = time.perf_counter() - t0
        url = f"http://127.0.0.1:{port}"
        base = "/v1/policies/care"
        print(
            f"fairalloc serve, {args.n:,} residents in the pool, {args.clients} clients,"
            f" {args.seconds:g} s a route, loopback, {os.cpu_count()} cores"
        )
        print(f"  start (load, evaluate and allocate the pool)   {t_start:6.1f} s")
        print(f"  {'route':<44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'library ms':>11}")
        routes = [
            ("health (baseline)", lambda r: ("GET", "/health", None, None), None, None),
            (
                "evaluation of a pool resident",
                lambda r: ("GET", f"{base}/residents/{(k := r.choice(ids))}", None, k),
                records.__getitem__,
                library["record"],
            ),
            (
                "explanation, no counterfactuals",
                lambda r: (
                    "GET",
                    f"{base}/residents/{(k := r.choice(ids))}/explanation?counterfactuals=false",
                    None,
                    k,
                ),
                plain.__getitem__,
                library["plain"],
            ),
            (
                "explanation with counterfactuals (default)",
                lambda r: (
                    "GET",
                    f"{base}/residents/{(k := r.choice(cf_ids))}/explanation",
                    None,
                    k,
                ),
                with_cf.__getitem__,
                library["cf"],
            ),
            (
                "evaluation of one record sent (POST)",
                lambda r: (
                    "POST",
                    f"{base}/evaluate",
                    {"residents": sent[(k := r.choice(ids))]},
                    k,
                ),
                evaluated.__getitem__,
                library["eval"],
            ),
        ]
        failures = 0
        try:
            for name, make, expected, lib in routes:
                n, lat, wrong = asyncio.run(
                    load(url, make, expected, clients=args.clients, seconds=args.seconds)
                )
                failures += wrong
                lib_ms = f"{lib * 1000:11.2f}" if lib is not None else f"{'-':>11}"
                print(
                    f"  {name:<44} {n / args.seconds:8.0f} {percentile(lat, 0.5) * 1000:8.1f}"
                    f" {percentile(lat, 0.99) * 1000:8.1f} {lib_ms}"
                )
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        print(f"  answers different from the library's: {failures}")
        if failures:
            raise SystemExit(1)


def _write_pool(population: fa.Population, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(population.to_records()), path)


if __name__ == "__main__":
    main()
