"""A sample sort on byte keys, over the workers of a cluster.

The cluster writes tables in an order of the whole population (one process's result table
in the base order, explanations by ranking and by id) without any machine holding the
whole population:

1. Every resident gets a **byte key** that sorts as the order does: each numeric key column
   as 8 big-endian bytes that compare as its values do (integers and floats mapped to
   unsigned), then the id's UTF-8 bytes. Numpy compares such keys as bytes, padding shorter
   ones with NUL; ids hold no NUL (nor, being UTF-8, the byte ``0xff``), so padding never
   decides, and UTF-8 bytes sort as the code points one process sorts ids by.
2. Each partition writes its rows **sorted by key** to an Arrow file of its own in a scratch
   folder beside the output, and sends back a few evenly spaced keys.
3. The client picks **splitters** from those keys: one part per partition, each about a
   partition's worth of residents.
4. Each part takes its **slice of every file** by binary search (the files are sorted) and
   sorts the slices together. The rows before the part, in all the files, are counted by the
   same search, which numbers the part's rows in the whole order.

Parts are written to a folder beside the output and moved into place when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._evaluation import Evaluation
from fairalloc.allocation._capacity import base_order
from fairalloc.errors import ArgumentError

if TYPE_CHECKING:
    from fairalloc.cluster._allocate import ClusterAllocation

#: Keys each partition sends to choose the splitters from (one part per partition).
SAMPLES_PER_PART = 64

#: The key column's name in the scratch files.
KEY = "fairalloc:key"


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], suffix: str) -> Iterator[Path]:
    """A new folder to write a dataset of ``part-NNNNN{suffix}`` files in, then ``path``.

    Yields the folder (beside ``path``); when the block ends without an exception, its
    subfolders (scratch files) are removed, an earlier dataset at ``path`` is removed, and
    the folder takes its place. If the block raises, the folder is removed.

    Raises:
        ArgumentError: ``FA629`` if ``path`` holds anything but such a dataset, or its folder
            does not exist.
    """
    target = Path(path)
    check_target(target, suffix)
    work = target.with_name(f"{target.name}.partial-{uuid.uuid4().hex[:12]}")
    work.mkdir()
    try:
        yield work
        for sub in [p for p in work.iterdir() if p.is_dir()]:
            shutil.rmtree(sub)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def check_target(target: Path, suffix: str = ".parquet") -> None:
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


def splitters(samples: list[np.ndarray], n_parts: int) -> tuple[int, list[bytes | None]]:
    """The keys' width, and the bounds of ``n_parts`` parts chosen from the samples.

    Part ``b`` holds the keys in ``[bounds[b], bounds[b + 1])``; None is open.
    """
    width = max((s.dtype.itemsize for s in samples), default=1)
    given = [s for s in samples if len(s)]
    if not given or n_parts == 1:
        return width, [None] * (n_parts + 1)
    pool = np.sort(np.concatenate(given).astype(f"S{width}"))
    cut = pool[(np.arange(1, n_parts) * len(pool)) // n_parts]
    return width, [None, *(bytes(c) for c in cut), None]


def write_sorted(path: str, keys: np.ndarray, columns: dict[str, Any], k: int) -> np.ndarray:
    """Write ``columns`` sorted by their byte ``keys`` as an Arrow file; ``k`` keys evenly spaced.

    ``columns`` are numpy or Arrow arrays in the rows' order; they are written in key order
    (rows given in key order already are written without a copy).
    """
    import pyarrow as pa
    import pyarrow.ipc as ipc

    arrays = {name: _arrow(values) for name, values in columns.items()}
    if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():  # given in order: no copy
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        arrays = {name: values.take(pa.array(order)) for name, values in arrays.items()}
    width = keys.dtype.itemsize
    table = pa.table(
        {
            **arrays,
            KEY: pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(keys), [None, pa.py_buffer(np.ascontiguousarray(keys))]
            ),
        }
    )
    with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return keys[(np.arange(k) * len(keys)) // k] if len(keys) else keys


def _arrow(values: Any) -> Any:
    import pyarrow as pa

    return values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)


def read_slices(
    files: list[str], low: bytes | None, high: bytes | None
) -> tuple[Any, np.ndarray, int, list[np.ndarray]]:
    """The rows of keys in ``[low, high)`` from every sorted file, in key order.

    Returns the rows (an Arrow table without the key), their keys, how many rows of all the
    files come before ``low``, and each file's keys (for counting by binary search).
    """
    import pyarrow as pa
    import pyarrow.ipc as ipc

    tables, keys, every = [], [], []
    before = 0
    for path in files:
        with pa.memory_map(path) as source:
            table = ipc.open_file(source).read_all()
        k = _keys_of(table)  # as wide as that file's keys: numpy pads to compare
        start = 0 if low is None else int(np.searchsorted(k, np.bytes_(low)))
        stop = len(k) if high is None else int(np.searchsorted(k, np.bytes_(high)))
        before += start
        tables.append(table.drop_columns([KEY]).slice(start, stop - start))
        keys.append(k[start:stop])
        every.append(k)
    width = max((k.dtype.itemsize for k in keys), default=1)
    joined = np.concatenate([k.astype(f"S{width}") for k in keys]) if keys else np.zeros(0, "S1")
    order = np.argsort(joined, kind="stable")
    table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    return table.take(pa.array(order)), joined[order], before, every


def count(every: list[np.ndarray], low: bytes, high: bytes | None = None) -> int:
    """Keys of all the files below ``low`` (or, with ``high``, within ``[low, high]``)."""
    if high is None:
        return sum(int(np.searchsorted(k, np.bytes_(low))) for k in every)
    return sum(
        int(np.searchsorted(k, np.bytes_(high), side="right"))
        - int(np.searchsorted(k, np.bytes_(low)))
        for k in every
    )


def _keys_of(table: Any) -> np.ndarray:
    """The key column of ``table`` as numpy bytes (without a copy when in one chunk)."""
    column = table.column(KEY)
    width = column.type.byte_width
    if len(column) == 0:
        return np.zeros(0, dtype=f"S{width}")
    chunk = column.chunks[0] if column.num_chunks == 1 else column.combine_chunks()
    data = chunk.buffers()[1]
    return np.frombuffer(data, dtype=f"S{width}", count=len(chunk), offset=chunk.offset * width)


def served_codes(result: ClusterAllocation) -> dict[str, int]:
    """Each served resident's category index, by id (sent to the partitions)."""
    alloc = result.allocation
    ids = alloc.evaluation.ids
    return {str(ids[r]): int(alloc.category[r]) for r in np.flatnonzero(alloc.served)}


def category_codes(served: dict[str, int], ids: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
    """The category index of each of ``ids`` (-1: not served), from :func:`served_codes`."""
    return np.array([served.get(str(i), -1) for i in ids], dtype=np.int16)


def id_keys(ids: npt.NDArray[Any]) -> np.ndarray:
    """The ids' UTF-8 bytes as byte keys (sorting as one process sorts ids)."""
    text, lengths = _utf8(ids)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    mat = np.zeros((len(ids), width), dtype=np.uint8)
    _place(mat, 0, text, lengths)
    return mat.view(f"S{width}").ravel()


def _place(
    mat: npt.NDArray[np.uint8], at: int, text: npt.NDArray[np.uint8], lengths: np.ndarray
) -> None:
    """Write each row's bytes of ``text`` (``lengths`` each) into ``mat`` from column ``at``."""
    if len(text):
        starts = np.cumsum(lengths) - lengths
        row = np.repeat(np.arange(len(lengths)), lengths)
        mat[row, at + np.arange(len(text)) - np.repeat(starts, lengths)] = text


def order_keys(
    ev: Evaluation, *, ranking: bool = False
) -> tuple[np.ndarray, npt.NDArray[np.uint64] | None, npt.NDArray[np.float64] | None]:
    """Each resident's byte key in the base order, and the lottery keys and draws.

    The eligible (``0x00``, the base order's key columns, the id) sort before the others
    (``0x01``, zeros, the id), who sort by id: the result table's order. The keys are as
    wide as this population's longest id needs; the lottery arrays are given under a lottery
    mechanism. With ``ranking``, the key is the ranking's (which is the base order under
    ``priority``), and no lottery arrays are given.
    """
    from fairalloc.cluster._allocate import _key_columns, ranking_columns

    spec = ev.policy.policy.allocation
    assert spec is not None
    rows = np.flatnonzero(ev.eligible)
    if spec.mechanism == "lottery" and not ranking:
        _, lottery_key, lottery_draw = base_order(ev, spec)
    else:
        lottery_key = lottery_draw = None
    if ranking:
        cols = ranking_columns(ev, rows)
    else:
        cols = _key_columns(ev, spec, rows, (lottery_key, lottery_draw), with_id=False)
    text, lengths = _utf8(ev.ids)
    head = 1 + 8 * len(cols)
    w = head + (int(lengths.max()) if len(lengths) else 0)
    mat = np.zeros((ev.n, w), dtype=np.uint8)
    mat[:, 0] = 1
    mat[rows, 0] = 0
    for j, c in enumerate(cols):
        mat[rows, 1 + 8 * j : 9 + 8 * j] = _sortable(c).view(np.uint8).reshape(-1, 8)
    _place(mat, head, text, lengths)
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
        raise AssertionError(f"no byte key for a column of {col.dtype}")  # keys are numbers
    return words.astype(">u8")
