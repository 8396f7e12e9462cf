"""Seeded generator of a synthetic community population for the activity-places example.

The population is invented, but shaped like a real one: most residents are older adults, most
are registered for the programme, support levels are skewed towards the low end and rise with
age, and waiting times have a long tail. Each run with the same seed and size gives the same
residents.

Usage::

    python examples/activity-places/generate.py --n 150 --seed 2026 --out residents.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np

GENDERS = ["female", "male", "other", "undisclosed"]
SUPPORT = ["none", "low", "medium", "high"]


def generate(n: int, seed: int = 2026) -> dict[str, Any]:
    """``n`` residents as columns (numpy arrays; levels as strings)."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(66, 13, n), 18, 105).round().astype(np.int64)
    frailty = np.clip((age - 50) / 45, 0, 1)
    support_p = np.stack(
        [0.45 - 0.25 * frailty, np.full(n, 0.30), 0.17 + 0.13 * frailty, 0.08 + 0.12 * frailty],
        axis=1,
    )
    support_p /= support_p.sum(axis=1, keepdims=True)
    support = (rng.random(n)[:, None] > np.cumsum(support_p, axis=1)).sum(axis=1)
    return {
        "resident_id": np.array([f"A{i:06d}" for i in range(n)], dtype=object),
        "age": age,
        "gender": np.array(GENDERS, dtype=object)[rng.choice(4, n, p=[0.55, 0.43, 0.01, 0.01])],
        "registered": rng.random(n) < 0.9,
        "support_level": np.array(SUPPORT, dtype=object)[np.minimum(support, 3)],
        "waiting_weeks": np.minimum(rng.exponential(6, n), 520).round().astype(np.int64),
        "opted_out": rng.random(n) < 0.04,
    }


def write_csv(columns: dict[str, Any], out: Path | None) -> None:
    """Write generated columns as CSV (to stdout when ``out`` is None)."""
    names = list(columns)
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        w = csv.writer(handle, lineterminator="\n")
        w.writerow(names)
        n = len(columns[names[0]])
        cols = [_strings(columns[c]) for c in names]
        for i in range(n):
            w.writerow([c[i] for c in cols])
    finally:
        if out:
            handle.close()


def _strings(col: np.ndarray) -> list[str]:
    if col.dtype == bool:
        return ["true" if v else "false" for v in col]
    return [str(v) for v in col]


def main() -> None:
    """Command-line entry: write a population CSV."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150, help="number of residents")
    ap.add_argument("--seed", type=int, default=2026, help="random seed")
    ap.add_argument("--out", type=Path, default=None, help="CSV file (default: stdout)")
    args = ap.parse_args()
    write_csv(generate(args.n, args.seed), args.out)


if __name__ == "__main__":
    main()
