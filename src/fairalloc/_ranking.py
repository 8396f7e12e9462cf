"""Ranking eligible residents by score, then by the policy's tie-break chain.

Order: highest score first (for ``tiers``: each tier in turn), then each tie-break in the
chain, then, if the chain ends with a lottery, each resident's lottery key (lowest first).
Neither the input's row order nor the ids' values ever decide a rank: residents still equal
after the whole chain share one rank (and are listed by id only for a stable display).

The lottery key of a resident is public and can be recomputed with the standard library::

    import hashlib
    key = int.from_bytes(
        hashlib.blake2b(resident_id.encode("utf-8"), key=seed.encode("utf-8"),
                        digest_size=8).digest(), "big")

BLAKE2b keyed with the published seed is a keyed cryptographic hash: nobody can steer a key
without knowing the seed, and once the seed is published anybody can check every draw.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._html import table as html_table
from fairalloc._io import write_table
from fairalloc._numeric import MICRO
from fairalloc._optional import require

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._evaluation import Evaluation

__all__ = ["LotteryKeys", "Ranking", "lottery_key", "lottery_keys", "rank"]


def lottery_key(seed: str, resident_id: str) -> int:
    """The published-seed lottery key of one resident (lower keys draw first).

    Examples:
        >>> lottery_key("2026-Q1", "R0001") == lottery_key("2026-Q1", "R0001")
        True
        >>> lottery_key("2026-Q1", "R0001") != lottery_key("2026-Q2", "R0001")
        True
    """
    digest = hashlib.blake2b(
        resident_id.encode("utf-8"), key=seed.encode("utf-8"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


def lottery_keys(seed: str, resident_ids: Iterable[str]) -> npt.NDArray[np.uint64]:
    """:func:`lottery_key` of many residents, as uint64."""
    key = seed.encode("utf-8")
    blob = b"".join(
        hashlib.blake2b(str(r).encode("utf-8"), key=key, digest_size=8).digest()
        for r in resident_ids
    )
    return np.frombuffer(blob, dtype=">u8").astype(np.uint64)


class Ranking:
    """Eligible residents in rank order.

    Attributes:
        evaluation: The evaluation ranked.
        order: Row positions of the eligible residents, best first.
        rank: ``[n]`` rank of each resident (1 = best; residents still tied after the whole
            chain share the best rank of their group); 0 for residents not eligible.
        tied: ``[n]`` whether the resident shares its rank with another.
        lottery: ``[n]`` the lottery key, where :attr:`lottery_used` is true.
        lottery_used: ``[n]`` whether the lottery had to be drawn for the resident (it is
            drawn only for residents tied on everything before it).
    """

    def __init__(
        self,
        evaluation: Evaluation,
        order: npt.NDArray[np.intp],
        rank: npt.NDArray[np.int64],
        tied: npt.NDArray[np.bool_],
        lottery: npt.NDArray[np.uint64],
        lottery_used: npt.NDArray[np.bool_],
    ) -> None:
        self.evaluation = evaluation
        self.order = order
        self.rank = rank
        self.tied = tied
        self.lottery = lottery
        self.lottery_used = lottery_used

    def __len__(self) -> int:
        return len(self.order)

    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """Resident ids in rank order."""
        return self.evaluation.ids[self.order]

    def top(self, k: int) -> list[str]:
        """The ids of the ``k`` best-ranked residents."""
        return [str(i) for i in self.ids[:k]]

    def row(self, position: int) -> dict[str, Any]:
        """The ranking entry at ``position`` (0 = best) as plain values."""
        ev = self.evaluation
        r = int(self.order[position])
        cp = ev.policy
        out: dict[str, Any] = {
            "rank": int(self.rank[r]),
            "id": str(ev.ids[r]),
            "score": int(ev.score_micro[r]) / MICRO,
        }
        for j, label in enumerate(cp.tie_break_labels):
            if cp._tie_breaks[j].kernel is not None:
                out[label] = float(ev.tie_values[r, j])
        if self.lottery_used[r]:
            out["lottery"] = f"{int(self.lottery[r]):016x}"
        out["tied"] = bool(self.tied[r])
        return out

    def to_dicts(self) -> list[dict[str, Any]]:
        """The ranking as plain dicts, best first."""
        return [self.row(i) for i in range(len(self.order))]

    def to_json(self, *, indent: int | None = None) -> str:
        """The ranking as JSON, with the policy's identity and the lottery seed."""
        cp = self.evaluation.policy
        meta = cp.policy.policy
        doc = {
            "policy": {"id": meta.id, "version": meta.version},
            "as_of": cp.as_of.isoformat() if cp.as_of else None,
            "tie_break": cp.tie_break_labels,
            "lottery_seed": cp.lottery_seed,
            **({"draw": cp.draw} if cp.draw else {}),
            "ranking": self.to_dicts(),
        }
        return json.dumps(doc, ensure_ascii=False, indent=indent)

    def to_csv(self, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> None:
        """Write the ranking (best first) with every resident's points and scale totals.

        The file is replaced atomically. Ids that a spreadsheet would run as a formula get a
        leading ``'`` unless ``escape_formulas`` is false (for programs that read the file).
        """
        write_table(
            path,
            self._columns(),
            text_columns=("id",),
            escape_formulas=escape_formulas,
            file_format="csv",
        )

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the columns of :meth:`to_csv` as Parquet, atomically."""
        write_table(path, self._columns(), file_format="parquet")

    def _columns(self) -> dict[str, Any]:
        import pyarrow as pa

        ev = self.evaluation
        cp = ev.policy
        rows = self.order.astype(np.intp)
        cols: dict[str, Any] = {
            "rank": pa.array(self.rank[rows]),
            "id": pa.array(ev.ids[rows], type=pa.string()),
            "score": pa.array(ev.score_micro[rows] / MICRO),
        }
        for j, lbl in enumerate(cp.tie_break_labels):
            if cp._tie_breaks[j].kernel is not None:
                cols[lbl] = pa.array(ev.tie_values[rows, j])
        if cp.lottery_seed is not None:
            keys = np.ascontiguousarray(self.lottery[rows].astype(">u8")).tobytes().hex()
            hexes: Any = np.frombuffer(keys.encode("ascii"), dtype="S16") if len(rows) else []
            cols["lottery"] = pa.array(
                hexes, type=pa.binary(16), mask=~self.lottery_used[rows]
            ).cast(pa.string())
        cols["tied"] = pa.array(self.tied[rows])
        for j, k in enumerate(ev.criteria):
            cols[f"points.{k}"] = pa.array(ev.points[rows, j] / MICRO)
        for j, p in enumerate(cp.scale_paths):
            cols[f"scale.{p}"] = pa.array(ev.scale_totals[rows, j] / MICRO)
        return cols

    def to_pandas(self) -> pd.DataFrame:
        """The ranking as a DataFrame (best first) with the evaluation's columns beside it."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        ev = self.evaluation
        detail = ev.to_pandas().iloc[self.order]
        front = pd.DataFrame(
            {"rank": self.rank[self.order], "tied": self.tied[self.order]}, index=detail.index
        )
        return pd.concat([front, detail], axis=1)

    def __repr__(self) -> str:
        return f"<Ranking of {len(self.order)} eligible residents>"

    def _table_html(self, limit: int) -> str:
        cp = self.evaluation.policy
        heads = [
            "rank",
            "id",
            "score",
            *[
                lbl
                for j, lbl in enumerate(cp.tie_break_labels)
                if cp._tie_breaks[j].kernel is not None
            ],
        ]
        if cp.lottery_seed is not None:
            heads.append("lottery")
        records = (self.row(i) for i in range(min(limit, len(self.order))))
        more = len(self.order) - limit
        foot = f"<p>… and {more} more</p>" if more > 0 else ""
        return html_table(heads, ([rec.get(h, "") for h in heads] for rec in records)) + foot

    def _repr_html_(self) -> str:
        return self._table_html(limit=20)


class LotteryKeys:
    """The lottery keys of a population's residents, each computed at most once.

    What-if studies rank the same residents many times (a sweep's grid points, a sensitivity's
    samples); a resident's key depends only on the published seed and its id, so it is the same
    every time and is hashed once.
    """

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self.seed: str | None = None
        self.keys = np.zeros(len(ids), dtype=np.uint64)
        self.known = np.zeros(len(ids), dtype=bool)

    def of(self, seed: str, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64]:
        """The keys of the residents at ``rows`` under ``seed``."""
        if seed != self.seed:
            self.seed = seed
            self.known[:] = False
        todo = rows[~self.known[rows]]
        if len(todo):
            self.keys[todo] = lottery_keys(seed, self.ids[todo])
            self.known[todo] = True
        return self.keys[rows]


def rank(evaluation: Evaluation, *, keys: LotteryKeys | None = None) -> Ranking:
    """Rank the eligible residents of ``evaluation`` (see the module's documentation).

    Args:
        evaluation: The evaluation to rank.
        keys: Lottery keys already drawn for these residents (for repeated rankings); by
            default the keys needed are drawn now.
    """
    ev = evaluation
    cp = ev.policy
    idx = np.flatnonzero(ev.eligible)
    sort_keys = _sort_keys(ev, idx)  # most significant first
    order = _lexsort(sort_keys)
    same = _same_as_previous(sort_keys, order)
    lottery = np.zeros(ev.n, dtype=np.uint64)
    used = np.zeros(ev.n, dtype=bool)
    seed = cp.lottery_seed
    if seed is not None and same.any():
        in_tie = np.zeros(len(order), dtype=bool)
        in_tie[1:] |= same
        in_tie[:-1] |= same
        rows = idx[order[in_tie]]
        drawn = keys.of(seed, rows) if keys is not None else lottery_keys(seed, ev.ids[rows])
        lottery[rows] = drawn
        used[rows] = True
        # Groups of residents tied so far are runs of `order`; a stable sort by (group, key)
        # of the tied positions is what sorting everyone by all keys and the lottery gives.
        group = np.cumsum(np.concatenate(([True], ~same)))
        tied_at = np.flatnonzero(in_tie)
        within = np.lexsort((drawn, group[tied_at]))
        order = order.copy()
        order[tied_at] = order[tied_at][within]
        drawn_sorted = drawn[within]
        after = np.ones(len(order), dtype=bool)  # equal lottery key to the one before
        after[tied_at[1:]] = drawn_sorted[1:] == drawn_sorted[:-1]
        same = same & after[1:]
        sort_keys.append(lottery[idx])
    if same.any():
        # Still tied after the whole chain: shared rank; listed by id only for stable output.
        sort_keys.append(ev.ids[idx].astype(str))
        order = _lexsort(sort_keys)
        sort_keys.pop()
        same = _same_as_previous(sort_keys, order)
    m = len(order)
    positions = np.arange(1, m + 1, dtype=np.int64)
    group_start = np.where(np.concatenate(([False], same)), 0, positions)
    ranks_sorted = np.maximum.accumulate(group_start) if m else positions
    rank_arr = np.zeros(ev.n, dtype=np.int64)
    rows_sorted = idx[order]
    rank_arr[rows_sorted] = ranks_sorted
    tied = np.zeros(ev.n, dtype=bool)
    tied_sorted = np.zeros(m, dtype=bool)
    tied_sorted[1:] |= same
    tied_sorted[:-1] |= same
    tied[rows_sorted] = tied_sorted
    return Ranking(ev, rows_sorted, rank_arr, tied, lottery, used)


def _sort_keys(ev: Evaluation, idx: npt.NDArray[np.intp]) -> list[np.ndarray]:
    cp = ev.policy
    keys: list[np.ndarray] = []
    if cp.policy.score.method == "tiers":
        keys.extend(-ev.terms[idx, j] for j in range(ev.terms.shape[1]))
    else:
        keys.append(-ev.score_micro[idx])
    for j, tb in enumerate(cp._tie_breaks):
        if tb.kernel is not None:
            v = ev.tie_values[idx, j]
            # +0.0 turns a -0.0 into 0.0, so the two never differ as keys.
            keys.append((-v if tb.descending else v) + 0.0)
    return keys


def _lexsort(keys: list[np.ndarray]) -> npt.NDArray[np.intp]:
    # np.lexsort sorts by its last key first.
    return np.lexsort(keys[::-1]) if keys else np.arange(0)


def _same_as_previous(keys: list[np.ndarray], order: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
    if len(order) < 2:
        return np.zeros(max(len(order) - 1, 0), dtype=bool)
    same = np.ones(len(order) - 1, dtype=bool)
    for k in keys:
        s = k[order]
        same &= s[1:] == s[:-1]
    return same
