"""Seeded generator of a synthetic community population for the elderly-care example.

The population is invented, but shaped like a real one: ages skewed to the elderly, daily-living
scores falling with age, cognition and living alone related to age, hardship more common among
those living alone, and waiting times with a long tail. Each run with the same seed and size
gives the same residents.

Usage::

    python examples/elderly-care/generate.py --n 200 --seed 7 --out residents.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import numpy as np

GENDERS = ["female", "male", "other", "undisclosed"]
OCCUPATIONS = ["retired", "worker", "farmer", "civil_servant", "self_employed", "other"]
ETHNICITIES = ["han", "hui", "manchu", "mongol", "other"]
HARDSHIP = ["none", "low_income", "dibao", "tekun"]
COGNITION = ["intact", "mild", "moderate", "severe"]
EPOCH = np.datetime64("1970-01-01", "D")


def generate(n: int, seed: int = 2026) -> dict[str, Any]:
    """``n`` residents as columns (numpy arrays; levels as strings, dates as datetime64[D])."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(68, 12, n), 18, 105).round().astype(np.int64)
    frailty = np.clip((age - 55) / 40, 0, 1)
    adl = np.clip(rng.normal(95 - 55 * frailty, 15), 0, 100).round().astype(np.int64)
    cog_p = np.stack([1 - frailty * 0.6, frailty * 0.3, frailty * 0.2, frailty * 0.1], axis=1)
    cog_p /= cog_p.sum(axis=1, keepdims=True)
    cognition = (rng.random(n)[:, None] > np.cumsum(cog_p, axis=1)).sum(axis=1)
    lives_alone = rng.random(n) < 0.15 + 0.25 * frailty
    hardship_p = np.where(lives_alone[:, None], [0.55, 0.2, 0.17, 0.08], [0.75, 0.15, 0.08, 0.02])
    hardship = (rng.random(n)[:, None] > np.cumsum(hardship_p, axis=1)).sum(axis=1)
    moved_in = EPOCH + rng.integers(
        (dt.date(1950, 1, 1) - dt.date(1970, 1, 1)).days,
        (dt.date(2026, 6, 30) - dt.date(1970, 1, 1)).days,
        n,
    ).astype("timedelta64[D]")
    return {
        "resident_id": np.array([f"R{i:07d}" for i in range(n)], dtype=object),
        "age": age,
        "gender": np.array(GENDERS, dtype=object)[rng.choice(4, n, p=[0.52, 0.46, 0.01, 0.01])],
        "occupation": np.array(OCCUPATIONS, dtype=object)[
            np.where(age >= 60, 0, rng.integers(1, 6, n))
        ],
        "ethnicity": np.array(ETHNICITIES, dtype=object)[
            rng.choice(5, n, p=[0.86, 0.05, 0.04, 0.03, 0.02])
        ],
        "hardship": np.array(HARDSHIP, dtype=object)[hardship],
        "disability": rng.random(n) < 0.05 + 0.15 * frailty,
        "adl_score": adl,
        "cognition": np.array(COGNITION, dtype=object)[cognition],
        "lives_alone": lives_alone,
        "children_nearby": np.minimum(rng.poisson(np.where(lives_alone, 0.4, 1.5)), 10),
        "carer_hours": np.where(lives_alone, 0.0, np.clip(rng.gamma(2.0, 6.0, n), 0, 168)).round(1),
        "waiting_days": np.minimum(rng.exponential(240, n), 3650).round().astype(np.int64),
        "holds_place": rng.random(n) < 0.03,
        "moved_in": moved_in,
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
    ap.add_argument("--n", type=int, default=200, help="number of residents")
    ap.add_argument("--seed", type=int, default=2026, help="random seed")
    ap.add_argument("--out", type=Path, default=None, help="CSV file (default: stdout)")
    args = ap.parse_args()
    write_csv(generate(args.n, args.seed), args.out)


if __name__ == "__main__":
    main()
