"""Loading large policy files: time per parameter, by size and format, against the bare reader.

A policy with a few rules and N parameters (``p123: 123``, one per line) is written as YAML, JSON
and TOML, then loaded with ``fa.parse_policy`` (read, structure, names and expressions checked,
compiled). The baseline in the same run is the format's bare reader turning the same text into
plain data with no positions and no checks (``yaml.load`` with libyaml's ``CSafeLoader``,
``json.loads``, ``tomllib.loads``). Loading scales linearly when the time per parameter stays
flat as N grows.

Usage::

    python benchmarks/bench_policy_load.py                        # 25k .. 400k parameters
    python benchmarks/bench_policy_load.py --sizes 2800000 --formats yaml   # ~55 MB of YAML
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tomllib
from collections.abc import Callable
from typing import Any

import yaml

import fairalloc as fa
from fairalloc.policy import PolicyLimits

HEAD = """\
fairalloc: 1
policy: {id: big, version: "1", title: Big, effective: 2026-01-01}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 130}
rules:
  eligibility: [{id: e, when: "age >= p1"}]
  priority: [{id: p, points: "p2 if age > p3 else 0"}]
"""


def yaml_text(n: int) -> str:
    return HEAD + "parameters:\n" + "".join(f"  p{i}: {i}\n" for i in range(n))


def json_text(n: int) -> str:
    doc: dict[str, Any] = {
        "fairalloc": 1,
        "policy": {"id": "big", "version": "1", "title": "Big", "effective": "2026-01-01"},
        "attributes": {"id": {"type": "str", "role": "id"}, "age": {"type": "int"}},
        "rules": {
            "eligibility": [{"id": "e", "when": "age >= p1"}],
            "priority": [{"id": "p", "points": "p2 if age > p3 else 0"}],
        },
        "parameters": {f"p{i}": i for i in range(n)},
    }
    return json.dumps(doc, indent=1)


def toml_text(n: int) -> str:
    return (
        'fairalloc = 1\n[policy]\nid = "big"\nversion = "1"\ntitle = "Big"\n'
        "effective = 2026-01-01\n"
        '[attributes]\nid = {type = "str", role = "id"}\nage = {type = "int"}\n'
        '[rules]\neligibility = [{id = "e", when = "age >= p1"}]\n'
        'priority = [{id = "p", points = "p2 if age > p3 else 0"}]\n'
        "[parameters]\n" + "".join(f"p{i} = {i}\n" for i in range(n))
    )


WRITERS: dict[str, Callable[[int], str]] = {"yaml": yaml_text, "json": json_text, "toml": toml_text}
BARE: dict[str, Callable[[str], Any]] = {
    "yaml": lambda t: yaml.load(t, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)),
    "json": json.loads,
    "toml": tomllib.loads,
}


def seconds(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000, 400_000])
    ap.add_argument("--formats", nargs="+", default=["yaml", "json", "toml"])
    args = ap.parse_args()
    limits = PolicyLimits(max_bytes=1 << 30)
    print(
        f"{'format':6} {'parameters':>10} {'MB':>6} {'load s':>8} {'µs/param':>9}"
        f" {'bare s':>7} {'× bare':>7}"
    )
    for fmt in args.formats:
        for n in args.sizes:
            text = WRITERS[fmt](n)
            mb = len(text.encode()) / 1e6
            bare = seconds(lambda t=text, f=fmt: BARE[f](t))  # type: ignore[misc]
            load = seconds(
                lambda t=text, f=fmt: fa.parse_policy(t, format=f, limits=limits)  # type: ignore[misc]
            )
            print(
                f"{fmt:6} {n:>10,} {mb:>6.1f} {load:>8.2f} {load / n * 1e6:>9.2f}"
                f" {bare:>7.2f} {load / bare:>7.1f}"
            )


if __name__ == "__main__":
    main()
