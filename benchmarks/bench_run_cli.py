"""``fairalloc run`` from a CSV file to a result file, end to end, and ``import fairalloc``.

Two data sets of N residents are written as CSV once (not timed):

* the shared workload (``../shared/bench``: ``make_population`` and its ``policy.yaml``, with the
  registration number ``seq`` as a column), capacity = 1% of the eligible, as the side-by-side
  benchmark serves;
* the elderly-care example (``examples/elderly-care``: its generator and policy, with reserve
  categories and a published-seed lottery that decides many ties).

Then ``fairalloc run POLICY DATA --out result.csv`` runs as a user runs it, each time in a new
process, and its wall time is taken (median of several runs): starting Python, reading and
validating the CSV, evaluating, ranking, allocating and writing every resident's outcome. The
residents served in the result file of the shared workload are checked against the hand-written
numpy ranking before anything is printed. ``import fairalloc`` is timed in fresh processes too.

Usage::

    python benchmarks/bench_run_cli.py              # 1,000,000 residents
    python benchmarks/bench_run_cli.py --n 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, load_generator

SHARED = ROOT.parent / "shared" / "bench"
FAIRALLOC = Path(sys.executable).with_name("fairalloc")


def _write_csv(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table({k: v.tolist() if v.dtype == object else v for k, v in columns.items()})
    pacsv.write_csv(table, path)


def _wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _import_time(repeat: int) -> float:
    code = "import time; t = time.perf_counter(); import fairalloc; print(time.perf_counter() - t)"
    out = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(repeat)
    ]
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sys.path[:0] = [str(SHARED), str(SHARED / "engines")]
    from common import alloc_k, make_population  # type: ignore[import-not-found]
    from eng_numpy import run_lexsort  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cols = make_population(args.n)
        eligible, _, _, served = run_lexsort(cols)
        k = alloc_k(int(eligible.sum()))
        shared_csv = folder / "shared.csv"
        _write_csv({**cols, "seq": cols["id"]}, shared_csv)
        del cols
        raw = load_generator("elderly-care").generate(args.n, seed=1)
        care_csv = folder / "care.csv"
        _write_csv(raw, care_csv)
        del raw
        out = folder / "result.csv"
        shared_cmd = [
            str(FAIRALLOC),
            "run",
            str(SHARED / "policy.yaml"),
            str(shared_csv),
            "--capacity",
            str(k),
            "--out",
            str(out),
            "--top",
            "0",
            "--no-progress",
        ]
        care_cmd = [
            str(FAIRALLOC),
            "run",
            str(ROOT / "examples" / "elderly-care" / "policy.yaml"),
            str(care_csv),
            "--out",
            str(out),
            "--top",
            "0",
            "--no-progress",
        ]
        subprocess.run(shared_cmd, check=True, capture_output=True)
        with out.open(encoding="utf-8", newline="") as fh:
            got = [int(r["id"]) for r in csv.DictReader(fh) if r["served"] == "True"]
        assert got == served.tolist(), "the result file serves other residents than numpy"
        t_shared = _wall(shared_cmd, args.repeat)
        t_care = _wall(care_cmd, args.repeat)
        sizes = (shared_csv.stat().st_size / 2**20, care_csv.stat().st_size / 2**20)
    t_import = _import_time(max(args.repeat, 7))
    print(f"{args.n:,} residents; median of {args.repeat} runs, each a new process")
    print(
        f"  fairalloc run, shared workload ({sizes[0]:.0f} MB CSV -> result CSV): {t_shared:.2f} s"
    )
    print(
        f"  fairalloc run, elderly-care example ({sizes[1]:.0f} MB CSV -> result CSV):"
        f" {t_care:.2f} s"
    )
    print(f"  import fairalloc: {t_import * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
