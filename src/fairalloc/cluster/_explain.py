"""Every resident's explanation over a cluster, as one process exports it: two sample sorts.

:func:`fairalloc.export_explanations` writes one line per resident, sorted by id, with what the
evaluation found for the resident (eligibility, points, scales, grades, tie-break values) and
what only the whole population decides: the rank (shared by residents tied on the whole
ranking), whether it is shared, whether the ranking drew a lottery key for the resident (tied
on everything before the lottery), the position in the base order, the category served in and
the margin to that category's cut-off. Over a cluster:

1. **By ranking.** Each partition writes its rows, sorted by their byte key in the ranking
   (as for the result table, :mod:`fairalloc.cluster._outcomes`), to a file of its own. Each
   part of the ranking takes its slice of every file (binary search), evaluates those rows
   (evaluation is per resident, so any rows evaluate alike), and numbers them: the rows before
   the part give the positions, and for the tie groups at the part's two ends, which may go
   on in the parts before or after, the group's size and first position are counted in every
   file by binary search on the key's leading bytes. It then writes each resident's finished
   line, by id, to a second file.
2. **By id.** Each part of the id order takes its slice of every second file and writes the
   lines in id order: the parts, in the order of their names, are one process's export.

Explanations are made for priority allocations (with or without reserves, any tie-break).
Under a lottery mechanism the ranking and the draw are two different orders of the whole
population; that is refused (``FA630``).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import evaluate
from fairalloc._io import atomic_write
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc.cluster._sort import (
    SAMPLES_PER_PART,
    category_codes,
    count,
    id_keys,
    order_keys,
    read_slices,
    replacing,
    served_codes,
    splitters,
    write_sorted,
)
from fairalloc.errors import ArgumentError
from fairalloc.explain._batch import Outcomes, _Columns, check_format

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc.cluster._allocate import ClusterAllocation

#: Rows whose text fields are made at once (a worker's memory holds them as Python strings).
_LINES_AT_ONCE = 8192
_LINE = "fairalloc:line"


def write_explanations(
    result: ClusterAllocation,
    path: str | os.PathLike[str],
    *,
    format: Literal["jsonl", "csv"] = "jsonl",
    escape_formulas: bool = True,
) -> list[Path]:
    """Write every resident's explanation facts as a folder of parts; see the module."""
    from fairalloc.cluster._allocate import _gather

    check_format(format)
    parts, cp, compute = result._source
    spec = cp.policy.allocation
    assert spec is not None
    if spec.mechanism != "priority":
        raise ArgumentError(
            "FA630",
            "explanations over a cluster are made for priority allocations: under a lottery"
            " the ranking (rank, ties) and the draw (positions) are two orders of the whole"
            " population; export them with fairalloc.export_explanations on one machine",
            argument="result",
            valid="the result of a priority allocation",
        )
    delayed = require("dask", extra="dask", feature="cluster explanations").delayed
    alloc = result.allocation
    ev = alloc.evaluation
    outcomes = Outcomes.of(ev, alloc)
    served = served_codes(result)
    cuts = (outcomes.cut_score, outcomes.cut_has, alloc.categories)
    head = ""
    if format == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(_Columns(ev, outcomes).csv_heads())
        head = buf.getvalue()
    n_parts = max(1, len(parts))
    with replacing(path, f".{format}") as work:
        (work / "ranked").mkdir()
        (work / "lines").mkdir()
        # 1. rows in ranking order, a file per partition; parts of the ranking make the lines.
        ranked = [str(work / "ranked" / f"{k:05d}.arrow") for k in range(len(parts))]
        sent = _gather(
            [
                delayed(_scatter_rows, pure=True)(p, cp, file)
                for p, file in zip(parts, ranked, strict=True)
            ],
            compute,
        )
        width, bounds = splitters(sent, n_parts)
        lines = [str(work / "lines" / f"{k:05d}.arrow") for k in range(n_parts)]
        held = delayed((served, cuts), pure=True)
        by_id = _gather(
            [
                delayed(_rank_part, pure=True)(
                    ranked, width, bounds[b], bounds[b + 1], cp, held, lines[b],
                    format=format, escape=escape_formulas,
                )
                for b in range(n_parts)
            ],
            compute,
        )
        # 2. parts of the id order write the lines.
        _, id_bounds = splitters(by_id, n_parts)
        written = _gather(
            [
                delayed(_write_part, pure=True)(
                    lines, id_bounds[b], id_bounds[b + 1], head,
                    str(work / f"part-{b:05d}.{format}"),
                )
                for b in range(n_parts)
            ],
            compute,
        )
        assert sum(written) == result.residents
    return sorted(Path(path).glob(f"part-*.{format}"))


def _scatter_rows(frame: pd.DataFrame, cp: CompiledPolicy, file: str) -> np.ndarray:
    """Write the partition's rows sorted by ranking key to ``file``; a sample of the keys."""
    import pyarrow as pa

    from fairalloc.cluster._allocate import _evaluated

    ev = _evaluated(frame, cp)
    keys, _, _ = order_keys(ev)
    rows = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    columns = {name: rows.column(name) for name in rows.column_names}
    return write_sorted(file, keys, columns, SAMPLES_PER_PART)


def _groups(
    keys: np.ndarray, prefix: int, before: int, every: list[np.ndarray], width: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Runs of equal leading ``prefix`` bytes among ``keys`` (the part's eligible, sorted).

    Returns each key's run, and per run the number of keys before its first in the whole
    population and its size there. ``before`` keys of the population come before the part;
    the runs at the part's two ends, which may go on in the parts before and after, are
    counted in every file by binary search.
    """
    n = len(keys)
    mat = keys.view(np.uint8).reshape(n, keys.dtype.itemsize)[:, :prefix]
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (mat[1:] != mat[:-1]).any(axis=1)
    run = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    first = before + starts.astype(np.int64)
    size = np.diff(np.append(starts, n)).astype(np.int64)
    for r in {0, len(starts) - 1} if n else ():
        head = bytes(mat[starts[r]])
        tail = head + b"\xff" * (width - prefix)  # no UTF-8 id holds the byte 0xff
        first[r] = count(every, head)
        size[r] = count(every, head, tail)
    return run, first, size


def _rank_part(
    files: list[str],
    width: int,
    low: bytes | None,
    high: bytes | None,
    cp: CompiledPolicy,
    held: tuple[dict[str, int], tuple[Any, ...]],
    out: str,
    *,
    format: str,
    escape: bool,
) -> np.ndarray:
    """Number one part of the ranking and write its residents' lines by id; a sample of ids."""
    from fairalloc.cluster._allocate import _key_columns

    served, (cut_score, cut_has, categories) = held
    table, keys, before, every = read_slices(files, low, high)
    ev = evaluate(cp, Population.load(table, cp.policy, source="partition"))
    del table
    n = ev.n
    m = int(ev.eligible.sum())  # the eligible come first: their keys begin with 0x00
    spec = cp.policy.allocation
    assert spec is not None
    columns = len(_key_columns(ev, spec, np.zeros(0, dtype=np.intp), (None, None), with_id=False))
    seeded = cp.lottery_seed is not None
    whole = 1 + 8 * columns  # the ranking's key: residents equal on it share a rank
    plain = whole - 8 if seeded else whole  # before the lottery: equal on it, a key is drawn
    rank = np.zeros(n, dtype=np.int64)
    tied = np.zeros(n, dtype=bool)
    used = np.zeros(n, dtype=bool)
    lottery = np.zeros(n, dtype=np.uint64)
    position = np.zeros(n, dtype=np.int64)
    position[:m] = before + np.arange(1, m + 1)
    if m:
        eligible_keys = keys[:m]
        run, first, size = _groups(eligible_keys, whole, before, every, width)
        rank[:m] = first[run] + 1
        tied[:m] = size[run] > 1
        if seeded:
            run, _, size = _groups(eligible_keys, plain, before, every, width)
            used[:m] = size[run] > 1
            mat = eligible_keys.view(np.uint8).reshape(m, eligible_keys.dtype.itemsize)
            words = np.ascontiguousarray(mat[:, plain:whole]).view(">u8").ravel()
            lottery[:m] = np.where(used[:m], words.astype(np.uint64), np.uint64(0))
    category = category_codes(served, ev.ids)
    outcomes = Outcomes(
        rank,
        tied,
        lottery,
        used,
        category=category,
        position=position,
        cut_score=cut_score,
        cut_has=cut_has,
        categories=categories,
        mechanism="priority",
    )
    # The lines are made in id order, so they are written without a copy.
    ids = id_keys(ev.ids)
    order = np.argsort(ids, kind="stable")
    texts = _lines(_Columns(ev, outcomes), order, format, escape=escape)
    return write_sorted(out, ids[order], {_LINE: texts}, SAMPLES_PER_PART)


def _lines(cols: _Columns, order: npt.NDArray[np.intp], format: str, *, escape: bool) -> Any:
    """The lines of the rows ``order``, as one process writes them (Arrow text, in chunks).

    The text fields of a few thousand rows at a time are held as Python strings.
    """
    import pyarrow as pa

    chunks = []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for start in range(0, len(order), _LINES_AT_ONCE):
        rows = order[start : start + _LINES_AT_ONCE]
        if format == "jsonl":
            lines = cols.jsonl(rows).splitlines(keepends=True)
        else:
            lines = []
            for r in cols.csv_rows(rows, escape=escape):
                buf.seek(0)
                buf.truncate()
                writer.writerow(r)
                lines.append(buf.getvalue())
        chunks.append(pa.array(lines, type=pa.large_string()))
    return pa.chunked_array(chunks, type=pa.large_string())


def _write_part(
    files: list[str], low: bytes | None, high: bytes | None, head: str, out: str
) -> int:
    """Write one part of the id order: its lines from every file, by id; its line count."""
    table, _, _, _ = read_slices(files, low, high)
    lines = table.column(_LINE).combine_chunks()  # one large_string array, in id order
    n = len(lines)
    with atomic_write(out, "wb") as fh:
        fh.write(head.encode("utf-8"))
        if n:
            # The lines one after another are the array's character data, from its first
            # offset to its last.
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
            offsets = offsets[lines.offset : lines.offset + n + 1]
            fh.write(memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
    return n
