"""The notebooks in docs/notebooks run from top to bottom on the bundled example."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "docs" / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["tutorial.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    # The stored copy shows a clean run: no error outputs were committed.
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", cell.source
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    # Every figure shows itself as an image in a fresh kernel (no pyplot, no `;` needed).
    plots = [c for c in nb.cells if c.cell_type == "code" and _ends_with_a_plot(c.source)]
    for cell in plots:
        kinds = [kind for out in cell.get("outputs", []) for kind in out.get("data", {})]
        assert "image/png" in kinds, cell.source
    text = "\n".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )
    if path.name == "tutorial.ipynb":
        # Each step printed what it is there to show.
        assert "Explanation for resident" in text
        assert "What would have changed the outcome" in text
        assert "verdict: ok" in text
        assert "parameter `waiting_points_per_month`: value 0.5 → 1" in text
        assert len(plots) == 5


def _ends_with_a_plot(source: str) -> bool:
    lines = source.strip().splitlines()
    return bool(lines) and lines[-1].startswith("plot.")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_committed_notebook_shows_its_figures_and_no_machine_path(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    plots = [c for c in nb.cells if c.cell_type == "code" and _ends_with_a_plot(c.source)]
    assert plots
    for cell in plots:
        kinds = [kind for out in cell.get("outputs", []) for kind in out.get("data", {})]
        assert "image/png" in kinds, cell.source
    text = path.read_text(encoding="utf-8")
    root = str(Path(__file__).resolve().parent.parent)
    for machine_path in (root, "/home/", "/root/", "/tmp/", "/work/"):
        assert machine_path not in text
