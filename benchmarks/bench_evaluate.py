"""Evaluate + trace + rank the elderly-care example on a large population, three ways.

1. fairalloc: ``evaluate`` (every rule's verdict and points kept) and ``ranking``;
2. a hand-written numpy implementation of the same policy, keeping the same trace;
3. a plain-Python loop over residents, timed on a sample and scaled up.

The hand-written version is the baseline: it is what a careful analyst would write for this one
policy. The figures printed are the median of several runs; peak memory is measured with
tracemalloc (numpy reports its buffers to it). The results of (1) and (2) are checked to be
identical before anything is printed.

Usage::

    python benchmarks/bench_evaluate.py            # 1,000,000 residents
    python benchmarks/bench_evaluate.py --n 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_generator

import fairalloc as fa

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"
SEED = "2026-Q1-elderly-care-published-seed"


# -- the baseline: the example policy written by hand in numpy ------------------------------

HARDSHIP = {"none": 0, "low_income": 1, "dibao": 2, "tekun": 3}
COGNITION = {"intact": 0, "mild": 1, "moderate": 2, "severe": 3}


def _micro(x: np.ndarray) -> np.ndarray:
    return np.floor(x * 1e6 + 0.5).astype(np.int64)


def hand_numpy(cols: dict[str, np.ndarray], ids: np.ndarray) -> dict[str, np.ndarray]:
    """The example policy, by hand: same trace (verdicts, points per criterion), same ranking."""
    age = cols["age"]
    moved = cols["moved_in"]
    cutoff = (dt.date(2025, 12, 31) - dt.date(1970, 1, 1)).days
    elig = np.stack([age >= 60, moved <= cutoff], axis=1)
    excl = cols["holds_place"][:, None].copy()
    adl = cols["adl_score"]
    pts = np.empty((len(age), 7), dtype=np.int64)
    adl_pts = np.where(adl <= 40, 40.0, np.where(adl <= 60, 30.0, np.where(adl <= 90, 15.0, 0.0)))
    pts[:, 0] = _micro(adl_pts)
    pts[:, 1] = _micro(np.array([0.0, 5.0, 10.0, 15.0])[cols["cognition"]])
    pts[:, 2] = _micro(np.where(cols["lives_alone"], 10.0, 0.0))
    ch = cols["children_nearby"]
    pts[:, 3] = _micro(np.where(ch == 0, 10.0, np.where(ch == 1, 5.0, 0.0)))
    pts[:, 4] = _micro(np.clip(10 - cols["carer_hours"] / 2, 0, 10))
    pts[:, 5] = _micro(np.array([0.0, 5.0, 10.0, 15.0])[cols["hardship"]])
    pts[:, 6] = _micro(np.minimum(cols["waiting_days"] / 30 * 0.5, 12.0))
    score = pts.sum(axis=1)
    eligible = elig.all(axis=1) & ~excl[:, 0]
    idx = np.flatnonzero(eligible)
    k1, k2 = -score[idx], -cols["waiting_days"][idx]
    order = np.lexsort((k2, k1))
    same = (k1[order][1:] == k1[order][:-1]) & (k2[order][1:] == k2[order][:-1])
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    draw = order[tied]
    lottery = np.zeros(len(idx), dtype=np.uint64)
    key = SEED.encode()
    blob = b"".join(
        hashlib.blake2b(str(r).encode(), key=key, digest_size=8).digest() for r in ids[idx[draw]]
    )
    lottery[draw] = np.frombuffer(blob, dtype=">u8")
    order = np.lexsort((lottery, k2, k1))
    return {
        "eligibility": elig,
        "exclusions": excl,
        "points": pts,
        "score": score,
        "order": idx[order],
    }


def encode_for_hand(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """Columns as the hand-written code wants them (what any numpy user would prepare)."""
    cols = {k: v for k, v in raw.items() if isinstance(v, np.ndarray) and v.dtype != object}
    cols["hardship"] = np.vectorize(HARDSHIP.__getitem__, otypes=[np.int64])(raw["hardship"])
    cols["cognition"] = np.vectorize(COGNITION.__getitem__, otypes=[np.int64])(raw["cognition"])
    cols["moved_in"] = (raw["moved_in"] - np.datetime64("1970-01-01", "D")).astype(np.int64)
    return cols


# -- plain Python ---------------------------------------------------------------------------


def plain_python(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """One resident at a time, as a per-resident rules engine would do it."""
    out = []
    cutoff = dt.date(2025, 12, 31)
    for r in rows:
        if not (r["age"] >= 60 and r["moved_in"] <= cutoff) or r["holds_place"]:
            continue
        adl = r["adl_score"]
        p = 40 if adl <= 40 else 30 if adl <= 60 else 15 if adl <= 90 else 0
        p += {"intact": 0, "mild": 5, "moderate": 10, "severe": 15}[r["cognition"]]
        p += 10 if r["lives_alone"] else 0
        ch = r["children_nearby"]
        p += 10 if ch == 0 else 5 if ch == 1 else 0
        p += min(max(10 - r["carer_hours"] / 2, 0), 10)
        p += {"none": 0, "low_income": 5, "dibao": 10, "tekun": 15}[r["hardship"]]
        p += min(r["waiting_days"] / 30 * 0.5, 12)
        out.append((math.floor(p * 1e6 + 0.5), r["resident_id"]))
    out.sort(reverse=True)
    return out


# -- measuring ------------------------------------------------------------------------------


def measure(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median seconds over ``repeat`` runs, and peak MiB of one traced run."""
    times = []
    result = None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
        del result
    gc.collect()
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(times), peak, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--python-sample", type=int, default=50_000)
    args = ap.parse_args()

    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    raw = load_generator("elderly-care").generate(args.n, seed=1)
    t = time.perf_counter()
    population = fa.Population.from_columns(raw, policy)
    t_load = time.perf_counter() - t
    hand_cols = encode_for_hand(raw)
    ids = population.ids

    def run_fairalloc() -> Any:
        ev = fa.evaluate(policy, population)
        return ev, ev.ranking

    def run_hand() -> Any:
        return hand_numpy(hand_cols, ids)

    fa_t, fa_mem, (ev, ranking) = measure(run_fairalloc, args.repeat)
    hd_t, hd_mem, hand = measure(run_hand, args.repeat)

    # Same results, or the comparison means nothing.
    assert np.array_equal(ev.eligibility, hand["eligibility"])
    assert np.array_equal(ev.exclusions, hand["exclusions"])
    assert np.array_equal(ev.score_micro, hand["score"])
    assert np.array_equal(ranking.order, hand["order"])

    rows = population.take(np.arange(min(args.python_sample, args.n))).to_records()
    t = time.perf_counter()
    plain_python(rows)
    py_t = (time.perf_counter() - t) * args.n / len(rows)

    n = args.n
    print(
        f"elderly-care example, {n:,} residents, {int(ev.eligible.sum()):,} eligible,"
        f" {int(ranking.lottery_used.sum()):,} lottery draws; median of {args.repeat} runs"
    )
    print(f"{'':34}{'seconds':>10}{'residents/s':>14}{'peak MiB':>10}")
    print(f"{'fairalloc evaluate+trace+rank':34}{fa_t:10.3f}{n / fa_t:14,.0f}{fa_mem:10.1f}")
    print(f"{'hand-written numpy (baseline)':34}{hd_t:10.3f}{n / hd_t:14,.0f}{hd_mem:10.1f}")
    print(f"{'plain Python loop (scaled)':34}{py_t:10.3f}{n / py_t:14,.0f}{'':>10}")
    print(
        f"fairalloc / baseline: time {fa_t / hd_t:.2f}x (target <= 1.5x),"
        f" memory {fa_mem / hd_mem:.2f}x (target <= 2x)"
    )
    print(f"population validation from numpy columns: {t_load:.3f} s (not included above)")


if __name__ == "__main__":
    main()
