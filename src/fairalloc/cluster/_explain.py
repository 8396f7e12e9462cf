"""Every resident's explanation over a cluster, as one process exports it, by sample sorts.

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

Under a lottery mechanism the ranking (ranks, ties, the ranking's lottery keys) and the draw
(positions) are two orders of the whole population. Then the parts of the ranking write each
resident's row with its ranking facts, by id, instead of a line; a third sample sort numbers
the draw (as the result table does) and writes each resident's position, lottery key and draw,
by id; and each part of the id order takes its slice of both, which hold the same residents in
the same order, evaluates the rows and writes the lines.
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
from fairalloc._evaluation import Evaluation
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
from fairalloc.explain._batch import Outcomes, _Columns, check_format

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc.cluster._allocate import ClusterAllocation

#: Rows whose text fields are made at once (a worker's memory holds them as Python strings).
_LINES_AT_ONCE = 8192
_LINE = "fairalloc:line"
#: Columns of the scratch files under a lottery mechanism.
_ID, _DRAW_KEY, _DRAW = "fairalloc:id", "fairalloc:lottery_key", "fairalloc:lottery_draw"
_POSITION = "fairalloc:position"
_FACTS = ("fairalloc:rank", "fairalloc:tied", "fairalloc:used", "fairalloc:lottery")


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
    drawn = spec.mechanism == "lottery"
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
    text = {"format": format, "escape": escape_formulas}
    with replacing(path, f".{format}") as work:
        for sub in ("ranked", "lines", *(("drawn", "placed") if drawn else ())):
            (work / sub).mkdir()
        # 1. rows in ranking order (and, under a lottery, the draw), a file per partition.
        ranked = [str(work / "ranked" / f"{k:05d}.arrow") for k in range(len(parts))]
        draws = [
            str(work / "drawn" / f"{k:05d}.arrow") if drawn else None for k in range(len(parts))
        ]
        sent = _gather(
            [
                delayed(_scatter_rows, pure=True)(p, cp, file, draw)
                for p, file, draw in zip(parts, ranked, draws, strict=True)
            ],
            compute,
        )
        width, bounds = splitters([s[0] for s in sent], n_parts)
        # 2. parts of the ranking number their rows: finished lines by id (priority), or
        #    the rows with their ranking facts by id (lottery: positions come from the draw).
        lines = [str(work / "lines" / f"{k:05d}.arrow") for k in range(n_parts)]
        held = delayed((served, cuts, alloc.mechanism), pure=True)
        by_id = _gather(
            [
                delayed(_rank_part, pure=True)(
                    ranked,
                    width,
                    bounds[b],
                    bounds[b + 1],
                    cp,
                    held,
                    lines[b],
                    finish=not drawn,
                    **text,
                )
                for b in range(n_parts)
            ],
            compute,
        )
        _, id_bounds = splitters(by_id, n_parts)
        outs = [str(work / f"part-{b:05d}.{format}") for b in range(n_parts)]
        if not drawn:
            # 3. parts of the id order write the lines.
            tasks = [
                delayed(_write_part, pure=True)(
                    lines, id_bounds[b], id_bounds[b + 1], head, outs[b]
                )
                for b in range(n_parts)
            ]
        else:
            # 3. parts of the draw number their rows, by id; 4. parts of the id order join
            #    both by id (the same residents, in the same order) and write the lines.
            _, draw_bounds = splitters([s[1] for s in sent if s[1] is not None], n_parts)
            placed = [str(work / "placed" / f"{b:05d}.arrow") for b in range(n_parts)]
            _gather(
                [
                    delayed(_place_part, pure=True)(
                        [d for d in draws if d is not None],
                        draw_bounds[b],
                        draw_bounds[b + 1],
                        placed[b],
                    )
                    for b in range(n_parts)
                ],
                compute,
            )
            tasks = [
                delayed(_finish_part, pure=True)(
                    lines,
                    placed,
                    id_bounds[b],
                    id_bounds[b + 1],
                    cp,
                    held,
                    head,
                    outs[b],
                    **text,
                )
                for b in range(n_parts)
            ]
        written = _gather(tasks, compute)
        assert sum(written) == result.residents
    return sorted(Path(path).glob(f"part-*.{format}"))


def _scatter_rows(
    frame: pd.DataFrame, cp: CompiledPolicy, file: str, draw_file: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Write the partition's rows sorted by ranking key to ``file``; a sample of the keys.

    With ``draw_file`` (a lottery mechanism), also each resident's id, lottery key and draw,
    sorted by the draw's key, to that file; and a sample of those keys.
    """
    import pyarrow as pa

    from fairalloc.cluster._allocate import _evaluated

    ev = _evaluated(frame, cp)
    keys, _, _ = order_keys(ev, ranking=True)
    rows = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    columns = {name: rows.column(name) for name in rows.column_names}
    sample = write_sorted(file, keys, columns, SAMPLES_PER_PART)
    if draw_file is None:
        return sample, None
    keys, lottery_key, lottery_draw = order_keys(ev)
    assert lottery_key is not None
    assert lottery_draw is not None
    drawn = {_ID: ev.id_column.arrow, _DRAW_KEY: lottery_key, _DRAW: lottery_draw}
    return sample, write_sorted(draw_file, keys, drawn, SAMPLES_PER_PART)


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
    held: tuple[dict[str, int], tuple[Any, ...], str],
    out: str,
    *,
    finish: bool,
    format: str,
    escape: bool,
) -> np.ndarray:
    """Number one part of the ranking and write its residents by id; a sample of the ids.

    With ``finish``, the residents' finished lines are written; otherwise (a lottery
    mechanism, whose positions come from the draw) their rows and ranking facts.
    """
    served, (cut_score, cut_has, categories), mechanism = held
    table, keys, before, every = read_slices(files, low, high)
    ev = evaluate(cp, Population.load(table, cp.policy, source="partition"))
    n = ev.n
    m = int(ev.eligible.sum())  # the eligible come first: their keys begin with 0x00
    rank, tied, used, lottery = _ranking_facts(ev, keys[:m], before, every, width)
    ids = id_keys(ev.ids)
    order = np.argsort(ids, kind="stable")
    if not finish:
        facts = dict(zip(_FACTS, (rank, tied, used, lottery), strict=True))
        columns = {name: table.column(name) for name in table.column_names}
        return write_sorted(out, ids, {**columns, **facts}, SAMPLES_PER_PART)
    del table
    position = np.zeros(n, dtype=np.int64)
    position[:m] = before + np.arange(1, m + 1)
    outcomes = Outcomes(
        rank,
        tied,
        lottery,
        used,
        category=category_codes(served, ev.ids),
        position=position,
        cut_score=cut_score,
        cut_has=cut_has,
        categories=categories,
        mechanism=mechanism,
    )
    # The lines are made in id order, so they are written without a copy.
    texts = _lines(_Columns(ev, outcomes), order, format, escape=escape)
    return write_sorted(out, ids[order], {_LINE: texts}, SAMPLES_PER_PART)


def _ranking_facts(
    ev: Evaluation, keys: np.ndarray, before: int, every: list[np.ndarray], width: int
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.uint64]
]:
    """Rank, shared rank, lottery drawn and lottery key of ``ev``'s rows in the ranking.

    ``keys``: the byte keys of the eligible rows (the first ones), in ranking order;
    ``before`` residents of the population come before them; ``every``: each file's keys.
    """
    from fairalloc.cluster._allocate import ranking_columns

    n, m = ev.n, len(keys)
    rank = np.zeros(n, dtype=np.int64)
    tied = np.zeros(n, dtype=bool)
    used = np.zeros(n, dtype=bool)
    lottery = np.zeros(n, dtype=np.uint64)
    if not m:
        return rank, tied, used, lottery
    columns = len(ranking_columns(ev, np.zeros(0, dtype=np.intp)))
    seeded = ev.policy.lottery_seed is not None
    whole = 1 + 8 * columns  # the ranking's key: residents equal on it share a rank
    plain = whole - 8 if seeded else whole  # before the lottery: equal on it, a key is drawn
    run, first, size = _groups(keys, whole, before, every, width)
    rank[:m] = first[run] + 1
    tied[:m] = size[run] > 1
    if seeded:
        run, _, size = _groups(keys, plain, before, every, width)
        used[:m] = size[run] > 1
        mat = keys.view(np.uint8).reshape(m, keys.dtype.itemsize)
        words = np.ascontiguousarray(mat[:, plain:whole]).view(">u8").ravel()
        lottery[:m] = np.where(used[:m], words.astype(np.uint64), np.uint64(0))
    return rank, tied, used, lottery


def _place_part(files: list[str], low: bytes | None, high: bytes | None, out: str) -> int:
    """Number one part of the draw and write each resident's place in it, by id."""
    table, keys, before, _ = read_slices(files, low, high)
    n = int(table.num_rows)
    # The eligible sort first (their keys begin with 0x00), and only eligible residents come
    # before a part that holds any.
    m = int(np.count_nonzero(keys.view(np.uint8).reshape(n, -1)[:, 0] == 0)) if n else 0
    position = np.zeros(n, dtype=np.int64)
    position[:m] = before + np.arange(1, m + 1)
    ids = id_keys(table.column(_ID).to_numpy(zero_copy_only=False))
    columns = {_POSITION: position, _DRAW_KEY: table.column(_DRAW_KEY), _DRAW: table.column(_DRAW)}
    write_sorted(out, ids, columns, 1)
    return n


def _finish_part(
    lines: list[str],
    placed: list[str],
    low: bytes | None,
    high: bytes | None,
    cp: CompiledPolicy,
    held: tuple[dict[str, int], tuple[Any, ...], str],
    head: str,
    out: str,
    *,
    format: str,
    escape: bool,
) -> int:
    """Write one part of the id order under a lottery: ranking facts and draw joined by id."""
    served, (cut_score, cut_has, categories), mechanism = held
    rows, ids, _, _ = read_slices(lines, low, high)
    draw, drawn_ids, _, _ = read_slices(placed, low, high)
    width = max(ids.dtype.itemsize, drawn_ids.dtype.itemsize)
    if not np.array_equal(ids.astype(f"S{width}"), drawn_ids.astype(f"S{width}")):
        raise AssertionError("the ranking and the draw hold different residents")
    facts = [rows.column(name).to_numpy() for name in _FACTS]
    ev = evaluate(cp, Population.load(rows.drop_columns(list(_FACTS)), cp.policy, source="part"))
    rank, tied, used, lottery = facts
    outcomes = Outcomes(
        np.asarray(rank, dtype=np.int64),
        np.asarray(tied, dtype=bool),
        np.asarray(lottery, dtype=np.uint64),
        np.asarray(used, dtype=bool),
        category=category_codes(served, ev.ids),
        position=np.asarray(draw.column(_POSITION).to_numpy(), dtype=np.int64),
        cut_score=cut_score,
        cut_has=cut_has,
        categories=categories,
        mechanism=mechanism,
        lottery_key=np.asarray(draw.column(_DRAW_KEY).to_numpy(), dtype=np.uint64),
        lottery_draw=np.asarray(draw.column(_DRAW).to_numpy(), dtype=np.float64),
    )
    texts = _lines(_Columns(ev, outcomes), np.arange(ev.n), format, escape=escape)
    return _write_lines(out, head, texts.combine_chunks())


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
    return _write_lines(out, head, table.column(_LINE).combine_chunks())


def _write_lines(out: str, head: str, lines: Any) -> int:
    """Write ``head`` and ``lines`` (one large_string array, in order) to ``out``; the count."""
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
