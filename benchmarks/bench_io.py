"""Residents in and results out at scale: reading, validating and writing through Arrow.

A population of the elderly-care example (``examples/elderly-care/generate.py``) is written as
CSV and Parquet, then timed, median of several interleaved rounds in one process:

1. ``Population.load(csv)``: parse (Arrow, every cell as text or number) + validate + encode;
2. ``pandas.read_csv`` of the same file, parse only, no validation: the baseline;
3. ``Population.load(parquet)``;
4. ``Population.from_columns`` of the generator's columns (numpy arrays, text as object arrays),
   and of the same columns with numeric ids;
5. writing every resident's allocation outcome: ``Allocation.to_csv`` and ``to_parquet``, next
   to ``DataFrame.to_csv`` of the same columns as the baseline.

The populations read from CSV, from Parquet and from columns are checked to be identical, and
the CSV written is read back and checked against the allocation, before anything is printed.

Usage::

    python benchmarks/bench_io.py              # 1,000,000 residents
    python benchmarks/bench_io.py --n 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, load_generator

import fairalloc as fa

EXAMPLE = ROOT / "examples" / "elderly-care"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="residents")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (median reported)")
    args = parser.parse_args()

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    gen = load_generator("elderly-care")
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    columns = gen.generate(args.n)
    numeric_ids = dict(columns, resident_id=np.arange(args.n, dtype=np.int64))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path, parquet_path = folder / "residents.csv", folder / "residents.parquet"
        gen.write_csv(columns, csv_path)
        pq.write_table(
            pa.Table.from_pandas(pd.read_csv(csv_path), preserve_index=False), parquet_path
        )

        # Correctness first: every reader gives the same population.
        from_csv = fa.Population.load(csv_path, policy)
        from_parquet = fa.Population.load(parquet_path, policy)
        from_columns = fa.Population.from_columns(columns, policy)
        for other in (from_parquet, from_columns):
            assert np.array_equal(other.ids, from_csv.ids)
            for name, col in from_csv.columns.items():
                assert col.dtype == other.columns[name].dtype, name
                assert np.array_equal(col, other.columns[name]), name
        allocation = fa.allocate(fa.evaluate(policy, from_csv), capacity=args.n // 100)
        out_csv, out_parquet = folder / "out.csv", folder / "out.parquet"
        allocation.to_csv(out_csv)
        back = pd.read_csv(out_csv, keep_default_na=False, dtype=str)
        records = allocation.to_dicts()
        assert back["id"].tolist() == [r["id"] for r in records]
        assert back["served"].tolist() == [str(r["served"]) for r in records]
        frame = allocation.to_pandas()

        tasks: dict[str, Callable[[], Any]] = {
            "CSV read + validate (fairalloc)": lambda: fa.Population.load(csv_path, policy),
            "CSV parse only (pandas.read_csv)": lambda: pd.read_csv(csv_path),
            "Parquet read + validate (fairalloc)": lambda: fa.Population.load(parquet_path, policy),
            "from_columns, text ids": lambda: fa.Population.from_columns(columns, policy),
            "from_columns, numeric ids": lambda: fa.Population.from_columns(numeric_ids, policy),
            "write results CSV (Allocation.to_csv)": lambda: allocation.to_csv(out_csv),
            "write results Parquet (Allocation.to_parquet)": lambda: allocation.to_parquet(
                out_parquet
            ),
            "write the same frame (DataFrame.to_csv)": lambda: frame.to_csv(folder / "pd.csv"),
        }
        times: dict[str, list[float]] = {k: [] for k in tasks}
        for _ in range(args.repeat):  # interleaved, so that load on the machine hits all alike
            for name, task in tasks.items():
                start = time.perf_counter()
                task()
                times[name].append(time.perf_counter() - start)

    print(
        f"{args.n:,} residents, median of {args.repeat} interleaved rounds;"
        f" {platform.machine()}, {platform.python_version()}, pyarrow {pa.__version__},"
        f" pandas {pd.__version__}"
    )
    base = statistics.median(times["CSV parse only (pandas.read_csv)"])
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"  {name:<46} {median:7.3f} s   ({median / base:4.2f}x pandas.read_csv)")


if __name__ == "__main__":
    main()
