"""The same policy on a Dask cluster: a population larger than one worker's memory.

Writes the elderly-care example's residents as a Parquet dataset (files of 250,000), then:

1. one process, at a size it can hold (``--one``): reads the dataset with pandas, evaluates and
   allocates; its time and peak memory (measured in a child process of its own);
2. a two-worker ``LocalCluster`` whose per-worker memory limit (``--limit``) is below what one
   process needs for the whole population (estimated from 1., in proportion), on the whole
   dataset (``--n``);
3. both at the size of 1., with one worker and with two, to show the cost per million and how
   it scales with workers;
4. every resident's outcome written as Parquet (``to_parquet``) after each run, timed alone;
   at the size of 1. the cluster's parts are checked equal to one process's table, and every
   resident's explanation is written too (``export_explanations``) and checked equal.

Results are checked equal (served residents, in order) where both run. Usage::

    python benchmarks/bench_dask.py                      # 20,000,000 residents
    python benchmarks/bench_dask.py --n 4000000 --one 2000000 --limit 1GB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import load_generator

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "elderly-care" / "policy.yaml"
CHUNK = 250_000  # residents per file: a partition evaluates in about 0.25 GB


def write_dataset(folder: Path, n: int) -> None:
    """``n`` residents in files of ``CHUNK``; ids made unique across files."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = load_generator("elderly-care")
    for k, start in enumerate(range(0, n, CHUNK)):
        size = min(CHUNK, n - start)
        cols = gen.generate(size, seed=k + 1)
        frame = pd.DataFrame(cols)
        frame["resident_id"] = [f"P{k:03d}-{i}" for i in frame["resident_id"]]
        frame.to_parquet(folder / f"part.{k:04d}.parquet", index=False)


def one_process(
    folder: Path, files: int, capacity: int, out: Path
) -> dict[str, float | list[str]]:
    """Run in a child process: read ``files`` files, evaluate, allocate; time and peak RSS.

    Then (not timed with the rest) every resident's outcome is written to ``out``, and every
    resident's explanation beside it (``.jsonl``), each timed alone.
    """
    code = f"""
import json, resource, time, pandas as pd, fairalloc as fa
from pathlib import Path
files = sorted(Path({str(folder)!r}).glob("part.*.parquet"))[:{files}]
policy = fa.load_policy({str(POLICY)!r})
start = time.perf_counter()
frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
alloc = fa.allocate(fa.evaluate(policy, frame), capacity={capacity})
served = alloc.served_ids()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
alloc.to_parquet({str(out)!r})
write = time.perf_counter() - start
start = time.perf_counter()
fa.export_explanations(alloc, {str(out.with_suffix(".jsonl"))!r})
explain = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "served": served, "write": write,
                  "explain": explain}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def on_cluster(
    folder: Path,
    files: int,
    capacity: int,
    workers: int,
    limit: str,
    out: Path | None = None,
    explain: Path | None = None,
) -> tuple[float, list[str], int, float | None, float | None]:
    """Seconds, served ids and partitions on a fresh LocalCluster of ``workers`` processes.

    With ``out``, every resident's outcome is then written there, and with ``explain`` every
    resident's explanation; the last items are their times.
    """
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import fairalloc as fa
    from fairalloc.cluster import allocate_on_cluster

    policy = fa.load_policy(POLICY)
    paths = [str(p) for p in sorted(folder.glob("part.*.parquet"))[:files]]
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, memory_limit=limit, dashboard_address=":0"
    ) as cluster, Client(cluster) as client:
        start = time.perf_counter()
        got = allocate_on_cluster(policy, dd.read_parquet(paths), capacity=capacity, client=client)
        seconds = time.perf_counter() - start
        write = None
        if out is not None:
            start = time.perf_counter()
            got.to_parquet(out)
            write = time.perf_counter() - start
        why = None
        if explain is not None:
            start = time.perf_counter()
            got.export_explanations(explain)
            why = time.perf_counter() - start
    return seconds, got.served_ids(), got.partitions, write, why


def same_table(one: Path, many: Path) -> bool:
    """Whether the cluster's parts, in order, are one process's result table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.read_table(p) for p in sorted(many.glob("part-*.parquet"))]
    return pa.concat_tables(parts).equals(pq.read_table(one))


def same_lines(one: Path, many: Path) -> bool:
    """Whether the cluster's explanation parts, in order, are one process's export."""
    with one.open("rb") as want:
        for part in sorted(many.glob("part-*.jsonl")):
            with part.open("rb") as got:
                while block := got.read(1 << 20):
                    if want.read(len(block)) != block:
                        return False
        return want.read(1) == b""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000_000, help="residents on the cluster")
    ap.add_argument("--one", type=int, default=2_000_000, help="residents both can hold")
    ap.add_argument("--limit", default="1.5GB", help="memory limit of each worker")
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (kept if given)")
    ap.add_argument(
        "--no-write", action="store_true", help="do not write the whole population's outcomes"
    )
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    folder = args.data or Path(tmp.name) / "residents"
    files_all = -(-args.n // CHUNK)
    if len(list(folder.glob("part.*.parquet"))) < files_all:
        t0 = time.perf_counter()
        write_dataset(folder, args.n)
        took = time.perf_counter() - t0
        print(f"wrote {args.n:,} residents in {files_all} files in {took:.0f} s")
    files_one = -(-args.one // CHUNK)
    cap_one, cap_all = args.one // 100, args.n // 100

    results = Path(tmp.name)
    single = one_process(folder, files_one, cap_one, results / "one.parquet")
    need_all = float(single["peak_mb"]) * args.n / args.one  # type: ignore[arg-type]
    print(
        f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f};"
        f" per-worker memory limit {args.limit}"
    )
    print(f"\none process, {args.one:,} residents: {single['seconds']:.2f} s,"
          f" peak {single['peak_mb']:.0f} MB"
          f" (for {args.n:,}: about {need_all / 1024:.1f} GB, in proportion)")
    for workers in (1, 2):
        many = results / f"many-{workers}.parquet"
        why = results / f"why-{workers}.jsonl"
        t, served, parts, w, e = on_cluster(
            folder, files_one, cap_one, workers, args.limit, many, why
        )
        assert served == single["served"], "the cluster served other residents"
        assert same_table(results / "one.parquet", many), "the result tables differ"
        assert same_lines(results / "one.jsonl", why), "the explanations differ"
        print(
            f"cluster, {workers} worker(s), {args.one:,} residents in {parts} partitions:"
            f" {t:.2f} s ({t / (args.one / 1e6):.2f} s per million; one process"
            f" {float(single['seconds']) / (args.one / 1e6):.2f})"  # type: ignore[arg-type]
        )
        print(
            f"  every resident's outcome written (equal to one process's table): {w:.2f} s"
            f" (one process: {float(single['write']):.2f} s)"  # type: ignore[arg-type]
        )
        print(
            f"  every resident's explanation written (equal to one process's): {e:.2f} s"
            f" (one process: {float(single['explain']):.2f} s)"  # type: ignore[arg-type]
        )
        for path in (many, why):
            shutil.rmtree(path)
    many = None if args.no_write else results / "many-all.parquet"
    t, served, parts, w, _ = on_cluster(folder, files_all, cap_all, 2, args.limit, many)
    print(
        f"cluster, 2 workers, {args.n:,} residents in {parts} partitions, {cap_all:,} places:"
        f" {t:.1f} s ({t / (args.n / 1e6):.2f} s per million); {len(served):,} served"
    )
    if w is not None:
        print(f"  every resident's outcome written as {parts} parts: {w:.1f} s")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this script's own peak (the client: candidates and keys): {own:.0f} MB")


if __name__ == "__main__":
    main()
