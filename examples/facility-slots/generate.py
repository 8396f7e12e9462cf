"""Seeded generator of residents' session choices for the facility-slots example.

The residents are invented, but their choices are shaped like real ones: evening and weekend gym
sessions are the most wanted, older residents favour the seniors' session and the reading room,
club members favour club night, and most residents rank two or three sessions. Each run with the
same seed and size gives the same residents.

Usage::

    python examples/facility-slots/generate.py --n 150 --seed 2026 --out residents.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np

SESSIONS = [
    "gym_mon_evening",
    "gym_sat_morning",
    "pingpong_tue",
    "pingpong_thu_club",
    "reading_wed",
    "seniors_gym_fri",
]
#: How much residents under 60 and residents aged 60 and over want each session.
APPEAL_YOUNGER = np.array([6.0, 5.0, 2.0, 1.5, 1.5, 0.3])
APPEAL_OLDER = np.array([1.0, 2.0, 1.5, 1.0, 3.0, 5.0])
CLUB_BOOST = 4.0


def generate(n: int, seed: int = 2026) -> dict[str, Any]:
    """``n`` residents as columns (numpy arrays; levels and flags as Python values)."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(52, 18, n), 16, 95).round().astype(np.int64)
    club = rng.random(n) < 0.15
    choices = np.full((n, 3), "none", dtype=object)
    wanted = rng.choice([1, 2, 3], size=n, p=[0.2, 0.35, 0.45])
    for i in range(n):
        appeal = (APPEAL_OLDER if age[i] >= 60 else APPEAL_YOUNGER).copy()
        if club[i]:
            appeal[3] += CLUB_BOOST
        picks = rng.choice(len(SESSIONS), size=wanted[i], replace=False, p=appeal / appeal.sum())
        choices[i, : wanted[i]] = [SESSIONS[k] for k in picks]
    return {
        "resident_id": np.array([f"F{i:04d}" for i in range(n)], dtype=object),
        "age": age,
        "registered": rng.random(n) < 0.96,
        "suspended": rng.random(n) < 0.03,
        "held_last_term": rng.random(n) < 0.4,
        "club_member": club,
        "choice_1": choices[:, 0],
        "choice_2": choices[:, 1],
        "choice_3": choices[:, 2],
    }


def write_csv(columns: dict[str, Any], out: Path | None) -> None:
    """Write generated columns as CSV (to stdout when ``out`` is None)."""
    names = list(columns)
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        w = csv.writer(handle, lineterminator="\n")
        w.writerow(names)
        cols = [_strings(columns[c]) for c in names]
        for i in range(len(cols[0])):
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
