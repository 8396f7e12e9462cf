"""Generate residents for the MZ/T 039-2013 example: every item drawn from its allowed values.

Usage: python examples/elderly-ability/generate.py [N] [SEED] > residents.csv
(``residents.csv`` beside it was made with N = 200, SEED = 0.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

POLICY = Path(__file__).resolve().parent / "policy.yaml"


def generate(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` residents as columns; item values follow each attribute's ``values``."""
    rng = np.random.default_rng(seed)
    attributes = yaml.safe_load(POLICY.read_text(encoding="utf-8"))["attributes"]
    cols: dict[str, np.ndarray] = {"person": np.array([f"P{i:07d}" for i in range(n)])}
    for name, a in attributes.items():
        if "values" in a:
            # Mostly able, some impaired: the best value (highest for ADL items, 0 otherwise)
            # is drawn nine times in ten.
            values = np.array(a["values"])
            best = values.max() if name in _ADL else values.min()
            pick = rng.choice(values, size=n)
            cols[name] = np.where(rng.random(n) < 0.9, best, pick).astype(np.int64)
    cols["age"] = rng.integers(55, 100, size=n)
    cols["dementia"] = rng.random(n) < 0.08
    cols["mental_illness"] = rng.random(n) < 0.03
    cols["incidents_30d"] = rng.poisson(0.3, size=n)
    return cols


_ADL = {
    "feeding",
    "bathing",
    "grooming",
    "dressing",
    "bowels",
    "bladder",
    "toilet",
    "transfer",
    "walking",
    "stairs",
}


def _text(v: object) -> str:
    return str(v).lower() if isinstance(v, bool | np.bool_) else str(v)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    cols = generate(n, seed)
    names = list(cols)
    print(",".join(names))
    for i in range(n):
        print(",".join(_text(cols[k][i]) for k in names))
