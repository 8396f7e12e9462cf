"""Every resident's outcome over a cluster, in one process's order: a sample sort.

One process writes its result table (:meth:`Allocation.to_parquet`) with the eligible residents
in the base order (each with their position in it) and then the others by id. Over a cluster no
machine holds the whole population, so the table is written as a Parquet dataset of parts that,
read in the order of their names, are that table row for row:

1. **A byte key per resident** that sorts as the table does: ``0x00``, then the base order's
   key columns, each as 8 bytes that compare as the column does (integers and floats mapped to
   unsigned big-endian), then the id's UTF-8 bytes, for the eligible; ``0x01`` and the id for
   the others. Numpy compares such keys as bytes (ids hold no NUL, so the padding never
   decides), and UTF-8 bytes sort as the code points one process sorts ids by.
2. **Splitters**: each partition sends a few evenly spaced keys of its own; the client picks
   one splitter per part from them, so each part gets about a partition's worth of residents.
3. **Scatter**: each partition writes its residents' outcomes, grouped by part, to one Arrow
   file beside the output, and sends back how many fall in each part (and how many of them
   are eligible).
4. **Gather**: each part reads its slice of every partition's file, sorts it by key and numbers
   the eligible from the number of eligible residents in the parts before it; that is their
   position in the whole population's base order.

Served residents and their categories come from the allocation already decided: the
partitions get the served ids and category of each (a few per hundred residents).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._evaluation import Evaluation
from fairalloc._io import write_table
from fairalloc._optional import require
from fairalloc.allocation._capacity import base_order
from fairalloc.allocation._result import outcome_columns
from fairalloc.errors import ArgumentError

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc.cluster._allocate import ClusterAllocation

#: Keys each partition sends to choose the splitters from, per part.
_SAMPLES_PER_PART = 64

_PIECES = ".pieces"


def write_outcomes(result: ClusterAllocation, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``result``'s outcome of every resident as a Parquet dataset at ``path``.

    See :meth:`ClusterAllocation.to_parquet`. The dataset is made in a folder beside ``path``
    and moved into place when complete; a result folder already at ``path`` is replaced.
    """
    from fairalloc.cluster._allocate import _gather

    target = Path(path)
    _check_target(target)
    parts, cp, compute = result._source
    delayed = require("dask", extra="dask", feature="cluster results").delayed
    alloc = result.allocation
    ids = alloc.evaluation.ids
    served = {str(ids[r]): int(alloc.category[r]) for r in np.flatnonzero(alloc.served)}
    n_parts = max(1, len(parts))
    work = target.with_name(f"{target.name}.partial-{uuid.uuid4().hex[:12]}")
    (work / _PIECES).mkdir(parents=True)
    try:
        # 2. splitters from each partition's evenly spaced keys.
        sampled = _gather(
            [delayed(_sample, pure=True)(p, cp, _SAMPLES_PER_PART) for p in parts], compute
        )
        width = max((s[0] for s in sampled), default=1)
        keys = [s[1] for s in sampled if len(s[1])]
        pool = np.sort(np.concatenate(keys)) if keys else np.zeros(0, dtype="S1")
        cut = (np.arange(1, n_parts) * len(pool)) // n_parts
        splitters = pool[cut] if len(pool) else np.zeros(0, dtype="S1")
        # 3. scatter: each partition's outcomes, grouped by part, to a file of its own.
        pieces = [str(work / _PIECES / f"{k:05d}.arrow") for k in range(len(parts))]
        held = delayed(served, pure=True)
        counts = _gather(
            [
                delayed(_scatter, pure=True)(p, cp, held, width, splitters, n_parts, piece)
                for p, piece in zip(parts, pieces, strict=True)
            ],
            compute,
        )
        rows = np.array([c[0] for c in counts], dtype=np.int64).reshape(len(parts), n_parts)
        eligible = np.array([c[1] for c in counts], dtype=np.int64).reshape(len(parts), n_parts)
        starts = np.cumsum(rows, axis=1) - rows  # where each part's slice begins, per piece
        before = np.cumsum(eligible.sum(axis=0)) - eligible.sum(axis=0)
        # 4. gather: each part sorted, the eligible numbered from the parts before it.
        written = _gather(
            [
                delayed(_gather_part, pure=True)(
                    pieces,
                    starts[:, b].tolist(),
                    rows[:, b].tolist(),
                    int(before[b]),
                    alloc.categories,
                    str(work / f"part-{b:05d}.parquet"),
                )
                for b in range(n_parts)
            ],
            compute,
        )
        assert sum(written) == result.residents
        shutil.rmtree(work / _PIECES)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return sorted(target.glob("part-*.parquet"))


def _check_target(target: Path) -> None:
    """Refuse a ``path`` that holds anything but a result dataset written here before."""
    if not target.exists():
        if not target.parent.is_dir():
            raise ArgumentError(
                "FA629",
                f"cannot write `{target}`: its folder `{target.parent}` does not exist",
                argument="path",
                value=str(target),
            )
        return
    if target.is_dir() and all(
        p.name.startswith("part-") and p.suffix == ".parquet" for p in target.iterdir()
    ):
        return
    raise ArgumentError(
        "FA629",
        f"cannot write `{target}`: it exists and is not a result dataset (a folder of"
        " part-NNNNN.parquet files) to replace",
        argument="path",
        value=str(target),
        valid="a new path, or a folder a cluster result was written to before",
    )


def _sample(frame: pd.DataFrame, cp: CompiledPolicy, k: int) -> tuple[int, np.ndarray]:
    """The width the partition's keys need, and ``k`` evenly spaced keys of the partition."""
    from fairalloc.cluster._allocate import _evaluated

    ev = _evaluated(frame, cp)
    keys, _, _ = order_keys(ev, None)
    if not len(keys):
        return 1, keys
    ordered = np.sort(keys)
    return keys.dtype.itemsize, ordered[(np.arange(k) * len(ordered)) // k]


def _scatter(
    frame: pd.DataFrame,
    cp: CompiledPolicy,
    served: dict[str, int],
    width: int,
    splitters: np.ndarray,
    n_parts: int,
    piece: str,
) -> tuple[list[int], list[int]]:
    """Write the partition's outcomes grouped by part; per part, its rows and eligible rows."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from fairalloc.cluster._allocate import _evaluated

    ev = _evaluated(frame, cp)
    keys, lottery_key, lottery_draw = order_keys(ev, width)
    part = np.zeros(ev.n, dtype=np.intp)
    if len(splitters):
        part = np.searchsorted(splitters, keys, side="right")
    by_part = np.argsort(part, kind="stable")
    category = np.array([served.get(str(i), -1) for i in ev.ids], dtype=np.int16)
    cols = {
        "key": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), ev.n, [None, pa.py_buffer(np.ascontiguousarray(keys[by_part]))]
        ),
        "id": pa.array(ev.ids[by_part], type=pa.string()),
        "eligible": pa.array(ev.eligible[by_part], type=pa.bool_()),
        "category": pa.array(category[by_part], type=pa.int16()),
        "score_micro": pa.array(ev.score_micro[by_part], type=pa.int64()),
    }
    if lottery_key is not None:
        assert lottery_draw is not None
        cols["lottery_key"] = pa.array(lottery_key[by_part], type=pa.uint64())
        cols["lottery_draw"] = pa.array(lottery_draw[by_part], type=pa.float64())
    table = pa.table(cols)
    with pa.OSFile(piece, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    counts = np.bincount(part.astype(np.intp), minlength=n_parts)
    eligible = np.bincount(part[ev.eligible].astype(np.intp), minlength=n_parts)
    return counts.tolist(), eligible.tolist()


def _gather_part(
    pieces: list[str],
    starts: list[int],
    counts: list[int],
    before: int,
    categories: tuple[str, ...],
    out: str,
) -> int:
    """Sort one part's residents from every partition's file and write it; its row count."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    slices = []
    for piece, start, count in zip(pieces, starts, counts, strict=True):
        with pa.memory_map(piece) as source:
            slices.append(ipc.open_file(source).read_all().slice(start, count))
    table = pa.concat_tables(slices).combine_chunks()
    n = int(table.num_rows)
    width = table.schema.field("key").type.byte_width
    key_col = table.column("key").chunks[0] if n else None
    if key_col is not None:
        data = key_col.buffers()[1]
        keys = np.frombuffer(data, dtype=f"S{width}", count=n, offset=key_col.offset * width)
        order = np.argsort(keys, kind="stable")
    else:
        order = np.arange(0)
    col = {name: table.column(name).to_numpy() for name in table.column_names if name != "key"}
    lottery = "lottery_key" in col
    eligible = col["eligible"][order].astype(bool)
    position = np.zeros(n, dtype=np.int64)
    # The eligible sort first (their keys begin with 0x00), so they are the part's first rows.
    m = int(eligible.sum())
    position[:m] = before + np.arange(1, m + 1)
    write_table(
        out,
        outcome_columns(
            ids=col["id"][order],
            eligible=eligible,
            category=col["category"][order],
            categories=categories,
            position=position,
            score_micro=col["score_micro"][order],
            lottery_key=col["lottery_key"][order] if lottery else None,
            lottery_draw=col["lottery_draw"][order] if lottery else None,
        ),
        file_format="parquet",
    )
    return n


def order_keys(
    ev: Evaluation, width: int | None
) -> tuple[np.ndarray, npt.NDArray[np.uint64] | None, npt.NDArray[np.float64] | None]:
    """Each resident's byte key in the result table's order, and the lottery keys and draws.

    ``width`` is the keys' byte width (at least what this population needs); None: as few
    bytes as this population needs. The lottery arrays are given under a lottery mechanism.
    """
    from fairalloc.cluster._allocate import _key_columns

    spec = ev.policy.policy.allocation
    assert spec is not None
    rows = np.flatnonzero(ev.eligible)
    if spec.mechanism == "lottery":
        _, lottery_key, lottery_draw = base_order(ev, spec)
    else:
        lottery_key = lottery_draw = None
    cols = _key_columns(ev, spec, rows, (lottery_key, lottery_draw), with_id=False)
    text, lengths = _utf8(ev.ids)
    head = 1 + 8 * len(cols)
    need = head + (int(lengths.max()) if len(lengths) else 0)
    w = max(need, 1) if width is None else width
    if w < need:
        raise AssertionError(f"key width {w} below the {need} bytes needed")
    mat = np.zeros((ev.n, w), dtype=np.uint8)
    mat[:, 0] = 1
    mat[rows, 0] = 0
    for j, c in enumerate(cols):
        mat[rows, 1 + 8 * j : 9 + 8 * j] = _sortable(c).view(np.uint8).reshape(-1, 8)
    if len(text):
        starts = np.cumsum(lengths) - lengths
        row = np.repeat(np.arange(ev.n), lengths)
        at = np.arange(len(text)) - np.repeat(starts, lengths)
        mat[row, head + at] = text
    return mat.view(f"S{w}").ravel(), lottery_key, lottery_draw


def _utf8(ids: npt.NDArray[Any]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The ids' UTF-8 bytes, one after the other, and each id's length in bytes."""
    import pyarrow as pa

    arr = pa.array(ids, type=pa.string())
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data, np.diff(offsets).astype(np.int64)


def _sortable(col: np.ndarray) -> np.ndarray:
    """Big-endian 8-byte words that compare, as bytes, as ``col``'s values compare.

    Signed integers have their sign bit flipped; floats (``-0.0`` made ``0.0``, every NaN the
    one NaN, which numpy sorts last) have the sign bit set when positive and every bit
    flipped when negative.
    """
    if col.dtype.kind == "f":
        x = np.where(np.isnan(col), np.nan, col.astype(np.float64) + 0.0)
        bits = x.view(np.uint64)
        negative = (bits >> np.uint64(63)).astype(bool)
        words = np.where(negative, ~bits, bits | np.uint64(1 << 63))
    elif col.dtype.kind in "ib":
        words = col.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    elif col.dtype.kind == "u":
        words = col.astype(np.uint64)
    else:
        raise TypeError(f"no byte key for a column of {col.dtype}")
    return words.astype(">u8")
