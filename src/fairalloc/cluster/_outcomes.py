"""Every resident's outcome over a cluster, in one process's order.

One process writes its result table (:meth:`Allocation.to_parquet`) with the eligible residents
in the base order (each with their position in it) and then the others by id. Over a cluster
the table is written as a Parquet dataset of parts that, read in the order of their names, are
that table row for row, by the sample sort of :mod:`fairalloc.cluster._sort`: each partition,
evaluated once, writes its residents' outcomes sorted by their key in the base order; each part
takes its slice of every file and numbers its eligible residents from the rows before it (a
part that holds eligible residents has only eligible ones before it: their keys sort first).

Served residents and their categories come from the allocation already decided: the
partitions get the served ids and the category of each (a few per hundred residents).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fairalloc._compiler import CompiledPolicy
from fairalloc._io import write_table
from fairalloc._optional import require
from fairalloc.allocation._result import outcome_columns
from fairalloc.cluster._sort import (
    SAMPLES_PER_PART,
    category_codes,
    order_keys,
    read_slices,
    replacing,
    served_codes,
    splitters,
    write_sorted,
)

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc.cluster._allocate import ClusterAllocation


def write_outcomes(result: ClusterAllocation, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``result``'s outcome of every resident as a Parquet dataset at ``path``.

    See :meth:`ClusterAllocation.to_parquet`.
    """
    from fairalloc.cluster._allocate import _gather

    parts, cp, compute = result._source
    delayed = require("dask", extra="dask", feature="cluster results").delayed
    alloc = result.allocation
    served = served_codes(result)
    n_parts = max(1, len(parts))
    with replacing(path, ".parquet") as work:
        (work / "sorted").mkdir()
        files = [str(work / "sorted" / f"{k:05d}.arrow") for k in range(len(parts))]
        held = delayed(served, pure=True)
        sent = _gather(
            [
                delayed(_scatter, pure=True)(p, cp, held, file)
                for p, file in zip(parts, files, strict=True)
            ],
            compute,
        )
        _, bounds = splitters(sent, n_parts)
        written = _gather(
            [
                delayed(_gather_part, pure=True)(
                    files, bounds[b], bounds[b + 1], alloc.categories, str(work / f"part-{b:05d}")
                )
                for b in range(n_parts)
            ],
            compute,
        )
        assert sum(written) == result.residents
    return sorted(Path(path).glob("part-*.parquet"))


def _scatter(
    frame: pd.DataFrame, cp: CompiledPolicy, served: dict[str, int], file: str
) -> np.ndarray:
    """Write the partition's outcomes to ``file``, sorted by key; a sample of its keys."""
    from fairalloc.cluster._allocate import _evaluated

    ev = _evaluated(frame, cp)
    keys, lottery_key, lottery_draw = order_keys(ev)
    columns = {
        "id": ev.ids,
        "eligible": ev.eligible,
        "category": category_codes(served, ev.ids),
        "score_micro": ev.score_micro,
    }
    if lottery_key is not None:
        assert lottery_draw is not None
        columns["lottery_key"] = lottery_key
        columns["lottery_draw"] = lottery_draw
    return write_sorted(file, keys, columns, SAMPLES_PER_PART)


def _gather_part(
    files: list[str],
    low: bytes | None,
    high: bytes | None,
    categories: tuple[str, ...],
    out: str,
) -> int:
    """Write the part of keys in ``[low, high)`` from every partition's file; its row count.

    ``out`` is the part's path without the ``.parquet`` suffix.
    """
    table, _, before, _ = read_slices(files, low, high)
    n = int(table.num_rows)
    col = {name: table.column(name).to_numpy() for name in table.column_names if name != "id"}
    eligible = col["eligible"].astype(bool)
    position = np.zeros(n, dtype=np.int64)
    # The eligible sort first (their keys begin with 0x00), so they are the part's first rows,
    # and only eligible residents come before a part that holds any.
    m = int(eligible.sum())
    position[:m] = before + np.arange(1, m + 1)
    lottery = "lottery_key" in col
    write_table(
        out + ".parquet",
        outcome_columns(
            ids=table.column("id").combine_chunks(),  # Arrow text, as read
            eligible=eligible,
            category=col["category"],
            categories=categories,
            position=position,
            score_micro=col["score_micro"],
            lottery_key=col["lottery_key"] if lottery else None,
            lottery_draw=col["lottery_draw"] if lottery else None,
        ),
        file_format="parquet",
    )
    return n
