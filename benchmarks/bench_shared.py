"""The shared allocation workload, side by side: numpy, polars, OpenFisca-Core and fairalloc.

The workload lives in ``../shared/bench`` (its README describes it): residents from
``make_population(n)``, eligibility by age or disability, an income exclusion, six priority
rules, ranking by points, waiting days and registration number, the top 1% of the eligible
served. Every engine evaluates every rule for every resident and keeps the per-rule trace.

Timed, median of interleaved rounds in one process (loading the data is not timed):

* numpy top-k: hand-written, ``argpartition`` on a composite key (only the served are ordered;
  the shared code packs ids in 21 bits, so above 2,097,152 residents the same code runs here with
  24 bits);
* numpy lexsort: hand-written, full ranking with ``np.lexsort``: the baseline (ratio 1);
* polars: expressions, multi-key sort, ``head(k)``;
* OpenFisca-Core: the workload's tax-benefit system, run by the Python of its own virtual
  environment (``--openfisca-python``), timed there against the same numpy lexsort code in that
  process, and reported as that ratio (plus its absolute time);
* fairalloc: ``evaluate`` (full trace) + ``allocate`` (who is served, decided at the cut-off);
* fairalloc, full order: the same + the whole ranking (``ranking.order``), as a lexsort gives.

Before a figure is printed, every engine's served residents (in rank order) are asserted to be
the same, and fairalloc's trace (each rule's verdicts, the points) to equal numpy's.

Peak memory: each engine runs again in a subprocess of its own; after the data is loaded and
one warm-up run, the process's high-water mark is reset (``/proc/self/clear_refs``) and the
peak resident set of three runs is read (``VmHWM``), collecting garbage between runs as the
timed rounds do. The first column is that peak; the second
is what the process held before the runs (the data, the libraries), so the difference is what
the work itself needs.

Usage::

    python benchmarks/bench_shared.py                       # 100k and 1M
    python benchmarks/bench_shared.py --big                 # and 10M (about 6 GB of memory)
    python benchmarks/bench_shared.py --openfisca-python .venv-openfisca/bin/python

The OpenFisca environment: ``python -m venv .venv-openfisca &&
.venv-openfisca/bin/pip install openfisca-core==46.0.1`` (found there by default).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
POLICY = SHARED / "policy.yaml"
OPENFISCA_VENV = ROOT / ".venv-openfisca" / "bin" / "python"


def _shared_path() -> None:
    for p in (SHARED, SHARED / "engines"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))


# -- the engines ------------------------------------------------------------------------------


def _numpy(kind: str, cols: dict[str, np.ndarray]) -> Callable[[], Any]:
    import eng_numpy  # type: ignore[import-not-found]

    if kind == "lexsort":
        return lambda: eng_numpy.run_lexsort(cols)
    if len(cols["id"]) <= 2**21:
        return lambda: eng_numpy.run_argpartition(cols)
    return lambda: _argpartition_wide(eng_numpy, cols)


def _argpartition_wide(eng_numpy: Any, c: dict[str, np.ndarray]) -> Any:
    """``eng_numpy.run_argpartition`` with ids in 24 bits of the key, not 21 (N > 2**21)."""
    from common import alloc_k

    eligible, pts, fired = eng_numpy.evaluate(c)
    idx = np.flatnonzero(eligible)
    key30 = np.rint(pts[idx] * 30).astype(np.int64)
    wd = c["waiting_days"][idx]
    comp = ((eng_numpy.MAXK30 - key30) * 1001 + (1000 - wd)) * (1 << 24) + c["id"][idx]
    k = alloc_k(len(idx))
    part = np.argpartition(comp, k - 1)[:k] if k < len(idx) else np.arange(len(idx))
    top = part[np.argsort(comp[part])]
    return eligible, pts, fired, c["id"][idx[top]]


def _polars(cols: dict[str, np.ndarray]) -> Callable[[], Any]:
    import eng_polars  # type: ignore[import-not-found]

    df = eng_polars.prepare(cols)
    return lambda: eng_polars.run(df)


_POPULATIONS: dict[int, Any] = {}


def _fairalloc(cols: dict[str, np.ndarray], *, full: bool) -> Callable[[], Any]:
    from common import alloc_k  # type: ignore[import-not-found]

    import fairalloc as fa

    cp = fa.compile_policy(fa.load_policy(POLICY))
    key = id(cols["id"])
    if key not in _POPULATIONS:  # both fairalloc rows evaluate the same residents
        _POPULATIONS.clear()
        _POPULATIONS[key] = fa.Population.from_columns({**cols, "seq": cols["id"]}, cp.policy)
    population = _POPULATIONS[key]

    def run() -> Any:
        ev = fa.evaluate(cp, population)
        if full:
            ev.ranking.order  # noqa: B018 - the whole ranking, as numpy's lexsort gives
        return ev, fa.allocate(ev, capacity=alloc_k(int(ev.eligible.sum())))

    return run


def _openfisca(cols: dict[str, np.ndarray]) -> Callable[[], Any]:
    """OpenFisca-Core's system (in its own environment: this runs inside the worker)."""
    import openfisca_system as ofs  # type: ignore[import-not-found]
    from common import GENDERS, OCCUPATIONS  # type: ignore[import-not-found]

    data = {k: cols[k] for k in ofs.INPUTS}
    for name, levels in (("gender", GENDERS), ("occupation", OCCUPATIONS)):
        codes = {v: i for i, v in enumerate(levels)}
        data[name] = np.fromiter(
            (codes[v] for v in cols[name]), dtype=np.int64, count=len(cols[name])
        )
    tbs = ofs.build_system()
    period = "2024"
    wd = cols["waiting_days"]

    def run() -> Any:
        sim = ofs.build_simulation(tbs, data, period)
        eligible, points = ofs.compute(sim, period)
        return ofs.rank(eligible, points, wd)

    return run


ENGINES: dict[str, Callable[[dict[str, np.ndarray]], Callable[[], Any]]] = {
    "numpy top-k (argpartition)": lambda c: _numpy("argpartition", c),
    "numpy full ranking (lexsort)": lambda c: _numpy("lexsort", c),
    "polars": _polars,
    "fairalloc": lambda c: _fairalloc(c, full=False),
    "fairalloc, full order": lambda c: _fairalloc(c, full=True),
}
BASELINE = "numpy full ranking (lexsort)"


def _served(name: str, out: Any) -> list[int]:
    """The served residents' ids in rank order."""
    if name.startswith("numpy"):
        return [int(i) for i in out[3]]
    if name == "polars":
        return [int(i) for i in out[1].to_list()]
    if name == "openfisca":
        return [int(i) for i in out]
    _, allocation = out
    return [int(i) for i in allocation.served_ids()]


def _check_trace(numpy_out: Any, fairalloc_out: Any) -> None:
    """fairalloc's trace is numpy's: each rule's verdicts, the points, eligibility."""
    eligible, pts, fired, _ = numpy_out
    ev, _ = fairalloc_out
    assert np.array_equal(ev.eligible, eligible)
    assert np.array_equal(ev.eligibility[:, 0], fired[0] | fired[1])
    assert np.array_equal(ev.exclusions[:, 0], fired[2])
    for j in range(6):
        assert np.array_equal(ev.fired[:, j], fired[3 + j])
    thirtieths = np.rint(ev.score_micro / 1e6 * 30).astype(np.int64)
    assert np.array_equal(thirtieths, np.rint(pts * 30).astype(np.int64))


# -- timing -----------------------------------------------------------------------------------


def time_engines(n: int, rounds: int) -> tuple[dict[str, float], int, int, list[int]]:
    """Median seconds per engine (interleaved rounds), the eligible count, k and who is served."""
    from common import alloc_k, make_population

    cols = make_population(n)
    runs = {name: make(cols) for name, make in ENGINES.items()}
    outs = {name: run() for name, run in runs.items()}  # warm-up, and the results to check
    served = {name: _served(name, out) for name, out in outs.items()}
    reference = served[BASELINE]
    for name, ids in served.items():
        assert ids == reference, f"{name} serves other residents than {BASELINE}"
    _check_trace(outs[BASELINE], outs["fairalloc"])
    n_eligible = int(outs[BASELINE][0].sum())
    del outs
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            t = time.perf_counter()
            out = runs[name]()
            times[name].append(time.perf_counter() - t)
            del out
    medians = {k: statistics.median(v) for k, v in times.items()}
    return medians, n_eligible, alloc_k(n_eligible), reference


def _status(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(engine: str, n: int, rounds: int) -> dict[str, Any]:
    """Run one engine in this process: its peak memory, and (for OpenFisca) its times."""
    _shared_path()
    from common import make_population

    cols = make_population(n)
    if engine == "openfisca":
        run = _openfisca(cols)
        lexsort = _numpy("lexsort", cols)
    else:
        run = ENGINES[engine](cols)
        if engine.startswith(("fairalloc", "polars")):
            del cols  # the population (or the data frame) holds the data now
    out = run()
    served = _served(engine, out)
    del out
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")  # reset the high-water mark: what follows is the work alone
    for _ in range(3):
        out = run()
        del out
        gc.collect()  # as between timed rounds: an evaluation and its ranking refer to each other
    result: dict[str, Any] = {"peak_mb": _status("VmHWM"), "before_mb": before}
    if engine == "openfisca":
        from importlib.metadata import version

        times: dict[str, list[float]] = {"openfisca": [], "lexsort": []}
        for r in range(rounds):
            for name, fn in (("openfisca", run), ("lexsort", lexsort))[:: 1 if r % 2 else -1]:
                gc.collect()
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        result.update(
            seconds=statistics.median(times["openfisca"]),
            lexsort_seconds=statistics.median(times["lexsort"]),
            served=served,
            version=version("openfisca-core"),
        )
    return result


def _subprocess(python: str, engine: str, n: int, rounds: int) -> dict[str, Any]:
    cmd = [python, __file__, "--worker", engine, "--n", str(n), "--rounds", str(rounds)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} worker failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the table --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--big", action="store_true", help="also 10,000,000 residents")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--openfisca-python", default=str(OPENFISCA_VENV))
    ap.add_argument("--no-memory", action="store_true", help="skip the subprocess measurements")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    _shared_path()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.rounds)))
        return

    sizes = [*args.sizes, *([10_000_000] if args.big else [])]
    openfisca = Path(args.openfisca_python)
    print(
        f"{dt.date.today()}  {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}, numpy {np.__version__}"
    )
    for n in sizes:
        rounds = args.rounds if n <= 1_000_000 else max(3, args.rounds // 3)
        times, n_eligible, k, reference = time_engines(n, rounds)
        memory: dict[str, dict[str, Any]] = {}
        if not args.no_memory:
            for name in ENGINES:
                memory[name] = _subprocess(sys.executable, name, n, rounds)
        of: dict[str, Any] | None = None
        if openfisca.exists():
            of = _subprocess(str(openfisca), "openfisca", n, rounds)
            assert of["served"] == reference, "OpenFisca serves other residents"
        base = times[BASELINE]
        print(
            f"\n{n:,} residents, {n_eligible:,} eligible, {k:,} served;"
            f" median of {rounds} interleaved rounds; served residents asserted equal"
        )
        print(f"| engine | {n:,} | vs numpy lexsort | peak RSS | held before |")
        print("|---|---|---|---|---|")
        for name, t in times.items():
            mem = memory.get(name)
            rss = f"{mem['peak_mb']:.0f} MB | {mem['before_mb']:.0f} MB" if mem else "- | -"
            print(f"| {name} | {t * 1e3:.1f} ms | {t / base:.2f}x | {rss} |")
        if of is not None:
            ratio = of["seconds"] / of["lexsort_seconds"]
            print(
                f"| OpenFisca-Core {of['version']} (own venv) | {of['seconds'] * 1e3:.1f} ms |"
                f" {ratio:.2f}x | {of['peak_mb']:.0f} MB | {of['before_mb']:.0f} MB |"
            )
        else:
            print(f"| OpenFisca-Core | not run: no {openfisca} | | | |")
        top = times["numpy top-k (argpartition)"]
        fa_t = times["fairalloc"]
        line = f"fairalloc: {fa_t / base:.2f}x numpy lexsort, {fa_t / top:.2f}x numpy top-k"
        if of is not None:
            faster = of["seconds"] / of["lexsort_seconds"] / (fa_t / base)
            line += f", {faster:.1f}x faster than OpenFisca"
        if memory:
            peak = memory["fairalloc"]["peak_mb"] / memory[BASELINE]["peak_mb"]
            work = (memory["fairalloc"]["peak_mb"] - memory["fairalloc"]["before_mb"]) / (
                memory[BASELINE]["peak_mb"] - memory[BASELINE]["before_mb"]
            )
            line += f"; peak RSS {peak:.2f}x numpy lexsort's (the work alone: {work:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
