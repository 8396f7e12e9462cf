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
2. **Scatter**: each partition, evaluated once, writes its residents' outcomes sorted by key
   to one Arrow file beside the output, and sends back a few evenly spaced keys.
3. **Splitters**: the client picks them from those keys, one part per partition, so each part
   gets about a partition's worth of residents.
4. **Gather**: each part finds its slice of every partition's file by binary search (the files
   are sorted), sorts the slices together and numbers the eligible from the number of
   residents before it in all the files (by the same search; a part that holds eligible
   residents has only eligible ones before it): their position in the whole population's
   base order.

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

#: Keys each partition sends to choose the splitters from (one part per partition).
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
        # 2-3. each partition's outcomes, sorted by key, to a file of its own; a few keys back.
        pieces = [str(work / _PIECES / f"{k:05d}.arrow") for k in range(len(parts))]
        held = delayed(served, pure=True)
        sent = _gather(
            [
                delayed(_scatter, pure=True)(p, cp, held, piece, _SAMPLES_PER_PART)
                for p, piece in zip(parts, pieces, strict=True)
            ],
            compute,
        )
        width = max((k.dtype.itemsize for k in sent), default=1)
        sampled = [k for k in sent if len(k)]
        pool = np.sort(np.concatenate(sampled).astype(f"S{width}")) if sampled else None
        if pool is None or n_parts == 1:
            bounds: list[bytes | None] = [None] * (n_parts + 1)
        else:
            cut = pool[(np.arange(1, n_parts) * len(pool)) // n_parts]
            bounds = [None, *(bytes(c) for c in cut), None]
        # 4. each part: its slice of every file, sorted, numbered from the parts before it.
        written = _gather(
            [
                delayed(_gather_part, pure=True)(
                    pieces,
                    width,
                    bounds[b],
                    bounds[b + 1],
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


def _check_target(target: Path, suffix: str = ".parquet") -> None:
    """Refuse a ``path`` that holds anything but a dataset of ``part-NNNNN{suffix}`` files."""
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
        p.name.startswith("part-") and p.suffix == suffix for p in target.iterdir()
    ):
        return
    raise ArgumentError(
        "FA629",
        f"cannot write `{target}`: it exists and is not a result dataset (a folder of"
        f" part-NNNNN{suffix} files) to replace",
        argument="path",
        value=str(target),
        valid="a new path, or a folder a cluster result was written to before",
    )


def _scatter(
    frame: pd.DataFrame, cp: CompiledPolicy, served: dict[str, int], piece: str, k: int
) -> np.ndarray:
    """Write the partition's outcomes to ``piece``, sorted by key; ``k`` evenly spaced keys.

    The keys sent are as wide as the partition's keys need.
    """
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from fairalloc.cluster._allocate import _evaluated

    ev = _evaluated(frame, cp)
    keys, lottery_key, lottery_draw = order_keys(ev, None)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    width = keys.dtype.itemsize
    category = np.array([served.get(str(i), -1) for i in ev.ids], dtype=np.int16)
    cols = {
        "key": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), ev.n, [None, pa.py_buffer(np.ascontiguousarray(keys))]
        ),
        "id": pa.array(ev.ids[order], type=pa.string()),
        "eligible": pa.array(ev.eligible[order], type=pa.bool_()),
        "category": pa.array(category[order], type=pa.int16()),
        "score_micro": pa.array(ev.score_micro[order], type=pa.int64()),
    }
    if lottery_key is not None:
        assert lottery_draw is not None
        cols["lottery_key"] = pa.array(lottery_key[order], type=pa.uint64())
        cols["lottery_draw"] = pa.array(lottery_draw[order], type=pa.float64())
    table = pa.table(cols)
    with pa.OSFile(piece, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    sample = keys[(np.arange(k) * ev.n) // k] if ev.n else keys
    return sample


def _gather_part(
    pieces: list[str],
    width: int,
    low: bytes | None,
    high: bytes | None,
    categories: tuple[str, ...],
    out: str,
) -> int:
    """Write the part of keys in ``[low, high)`` from every partition's file; its row count.

    Each file is sorted by key, so the part's rows of it are one slice, found by binary
    search; the eligible residents before the part (their keys sort first in every file) are
    counted the same way, which numbers the part's eligible residents.
    """
    import pyarrow as pa
    import pyarrow.ipc as ipc

    slices, key_slices = [], []
    before = 0
    for piece in pieces:
        with pa.memory_map(piece) as source:
            table = ipc.open_file(source).read_all()
        keys = _keys_of(table)  # as wide as that partition's keys: numpy pads to compare
        start = 0 if low is None else int(np.searchsorted(keys, np.bytes_(low)))
        stop = len(keys) if high is None else int(np.searchsorted(keys, np.bytes_(high)))
        # Rows before the part: all eligible if the part holds any eligible resident (the
        # others sort after every eligible one); if it holds none, no position is needed.
        before += start
        slices.append(table.drop_columns(["key"]).slice(start, stop - start))
        key_slices.append(keys[start:stop].astype(f"S{width}"))
    table = pa.concat_tables(slices).combine_chunks()
    n = int(table.num_rows)
    order = np.argsort(np.concatenate(key_slices), kind="stable")
    col = {name: table.column(name).to_numpy() for name in table.column_names}
    eligible_rows = col["eligible"][order].astype(bool)
    position = np.zeros(n, dtype=np.int64)
    # The eligible sort first (their keys begin with 0x00), so they are the part's first rows.
    m = int(eligible_rows.sum())
    position[:m] = before + np.arange(1, m + 1)
    lottery = "lottery_key" in col
    write_table(
        out,
        outcome_columns(
            ids=col["id"][order],
            eligible=eligible_rows,
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


def _keys_of(table: Any) -> np.ndarray:
    """The ``key`` column of ``table`` (one chunk or none) as numpy bytes, without a copy."""
    column = table.column("key")
    width = column.type.byte_width
    if column.num_chunks == 0 or len(column) == 0:
        return np.zeros(0, dtype=f"S{width}")
    chunk = column.chunks[0] if column.num_chunks == 1 else column.combine_chunks()
    data = chunk.buffers()[1]
    return np.frombuffer(data, dtype=f"S{width}", count=len(chunk), offset=chunk.offset * width)


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
