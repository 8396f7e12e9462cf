"""Draw the gallery of fairalloc's figures on the bundled elderly-care example.

    python docs/gen_gallery.py        # (re)write docs/gallery/*.png

Each figure of :mod:`fairalloc.plot` is drawn once, from the example policy and residents, and
saved where docs/gallery.md shows it. tests/test_plot.py checks that every figure function is
in the gallery and that each figure has a title and labelled axes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import fairalloc as fa
from fairalloc import plot
from fairalloc.analysis import with_parameters
from fairalloc.audit import group_statistics

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"
OUT = ROOT / "docs" / "gallery"


def figures() -> dict[str, object]:
    """Every gallery figure by file name (without ``.png``), drawn on the example."""
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    residents = fa.Population.from_csv(EXAMPLE / "residents.csv", policy)
    allocation = fa.allocate(policy, residents)
    proposal = with_parameters(policy, {"waiting_points_per_month": 1.0})
    sweep = fa.sweep(policy, residents, {"waiting_points_per_month": [0.25, 0.5, 1.0, 2.0]})
    return {
        "score_breakdown": plot.score_breakdown(allocation, "R0000003"),
        "score_distribution": plot.score_distribution(allocation),
        "selection_rates": plot.selection_rates(
            group_statistics(allocation, attributes=["gender", "hardship"])
        ),
        "sweep_curves": plot.sweep_curves(sweep, metric="cutoffs"),
        "comparison_groups": plot.comparison_groups(
            fa.compare(policy, proposal, residents), attribute="hardship"
        ),
    }


def main() -> int:
    """Write every figure as a PNG under docs/gallery/."""
    OUT.mkdir(exist_ok=True)
    for name, fig in figures().items():
        path = OUT / f"{name}.png"
        fig.savefig(path, dpi=80, metadata={"Software": None})  # type: ignore[attr-defined]
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
