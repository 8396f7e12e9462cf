"""Decision tables and grades as inputs: the MZ/T 039-2013 example on many residents.

Compares, in the same run, the example as published (dimension grades, an overall grade table of
22 rows, a perception grade table, an adjustment table, grades read by other parts) with a
baseline of the same 22 items summed into the same four graded dimensions and nothing read
across parts: what the tables and the reads of grades cost on top of the items themselves.

    python benchmarks/bench_tables.py [N]
"""

from __future__ import annotations

import sys

import yaml
from _common import ROOT, load_generator, timed

import fairalloc as fa

POLICY = ROOT / "examples" / "elderly-ability" / "policy.yaml"


def baseline() -> fa.Policy:
    """The example without its tables: the four dimensions graded by bands and summed."""
    doc = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    doc.pop("derived")
    ability = doc["scales"]["ability"]
    ability.pop("grade_table")
    ability["grades"] = [{"max": 40, "grade": "low"}, {"grade": "high"}]
    perception = ability["scales"]["perception"]
    perception.pop("grade_table")
    perception["grades"] = [{"max": 2, "grade": "low"}, {"grade": "high"}]
    doc["scales"]["hours"]["indicators"]["level"] = {"points": "total(ability) // 10"}
    return fa.Policy.model_validate(doc)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    gen = load_generator("elderly-ability")
    policy = fa.load_policy(POLICY)
    base = baseline()
    population = fa.Population.of(gen.generate(n, seed=1), policy)
    fa.evaluate(policy, population)  # warm up: compile once
    fa.evaluate(base, population)
    t_base, _ = timed(lambda: fa.evaluate(base, population), repeat=3)
    t_tables, ev = timed(lambda: fa.evaluate(policy, population), repeat=3)
    rows = sum(len(t.cells) for t in ev.policy.tables)
    print(f"residents: {n:,}; tables: {len(ev.policy.tables)} ({rows} rows)")
    print(f"baseline (items, band grades, no tables): {t_base:.2f} s")
    print(f"as published (grade tables, adjustment, grades read): {t_tables:.2f} s")
    print(f"tables and grade reads add {t_tables - t_base:.2f} s ({t_tables / t_base:.2f}x)")
    print(f"per resident: {t_tables / n * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
