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
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._html import table as html_table
from fairalloc._ids import Ids
from fairalloc._io import write_table
from fairalloc._numeric import MICRO
from fairalloc._optional import require

if TYPE_CHECKING:
    import pandas as pd

    from fairalloc._evaluation import Evaluation

__all__ = ["LotteryKeys", "Ranking", "lottery_key", "lottery_keys", "rank", "rank_with", "release"]


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
    # The keyed state after the key block, copied for each id: the same digest as keying a
    # new hash each time, without hashing the key again.
    keyed = hashlib.blake2b(key=seed.encode("utf-8"), digest_size=8).copy

    def one(resident_id: object) -> bytes:
        h = keyed()
        h.update(str(resident_id).encode("utf-8"))
        return h.digest()

    blob = b"".join(map(one, resident_ids))
    return np.frombuffer(blob, dtype=">u8").astype(np.uint64)


class Ranking:
    """Eligible residents in rank order.

    The order is worked out when first read: deciding who is served at a cut-off
    (:meth:`served`) needs only the residents around it, and the lottery keys of those tied
    there; the whole order, and every key that decides it, only when asked for.

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

    def __init__(self, evaluation: Evaluation, *, keys: LotteryKeys | None = None) -> None:
        self.evaluation = evaluation
        self._keys = keys
        self._full: tuple[np.ndarray, ...] | None = None
        self._sort: _SortKey | None = None

    def _sort_key(self) -> _SortKey:
        if self._sort is None:
            self._sort = _SortKey(self.evaluation)
        return self._sort

    def _complete(self) -> tuple[np.ndarray, ...]:
        if self._full is None:
            self._full = _rank_all(self.evaluation, self._sort_key(), self._keys)
        return self._full

    @property
    def order(self) -> npt.NDArray[np.intp]:
        """Row positions of the eligible residents, best first."""
        return self._complete()[0]

    @property
    def rank(self) -> npt.NDArray[np.int64]:
        """``[n]`` rank of each resident (1 = best); 0 for residents not eligible."""
        return self._complete()[1]

    @property
    def tied(self) -> npt.NDArray[np.bool_]:
        """``[n]`` whether the resident shares its rank with another."""
        return self._complete()[2]

    @property
    def lottery(self) -> npt.NDArray[np.uint64]:
        """``[n]`` the lottery key, where :attr:`lottery_used` is true."""
        return self._complete()[3]

    @property
    def lottery_used(self) -> npt.NDArray[np.bool_]:
        """``[n]`` whether the lottery had to be drawn for the resident."""
        return self._complete()[4]

    def served(self, k: int) -> npt.NDArray[np.intp] | None:
        """The rows of the ``k`` best-ranked residents (in no particular order).

        Only the residents tied at the cut-off are drawn by lottery. None when a tie that the
        policy leaves undecided (no lottery) straddles the cut-off: then only the whole order
        can say who is tied with whom.
        """
        ev = self.evaluation
        if self._full is None and self._sort is None and ev.policy.policy.score.method != "tiers":
            # Only residents scoring at least the k-th best score can be among the k best:
            # the whole sort key is needed for them alone.
            idx = np.flatnonzero(ev.eligible)
            if not 0 < k < len(idx):
                return idx[: max(k, 0)]
            score = ev.score_micro.take(idx)
            kth = np.partition(score, len(idx) - k)[len(idx) - k]
            near = _SortKey(ev, idx[score >= kth])
            if near.packed is not None:
                return near.served(k, ev, self._keys)
        if self._full is None:
            sk = self._sort_key()
            if sk.packed is not None or not 0 < k < len(sk.idx):
                return sk.served(k, ev, self._keys)
        order, rank = self.order, self.rank  # keys that do not pack: the whole order
        if 0 < k < len(order) and rank[order[k]] == rank[order[k - 1]]:
            return None
        return order[:k]

    def __len__(self) -> int:
        return len(self.order)

    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """Resident ids in rank order."""
        return self.evaluation.id_column[self.order]

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
            "id": str(ev.id_column[r]),
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
            "id": ev.id_column.arrow_take(rows),
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

    def __init__(self, ids: Ids) -> None:
        self.ids = ids  # either form: only the rows whose keys are drawn are read
        self.seed: str | None = None
        self.keys = np.zeros(len(ids), dtype=np.uint64)
        self.known = np.zeros(len(ids), dtype=bool)
        self._lock = threading.Lock()  # several threads of an audit draw from one

    @classmethod
    def drawn_by(
        cls, ranking: Ranking, seed: str, order: npt.NDArray[np.intp] | None = None
    ) -> LotteryKeys:
        """A table holding the keys ``ranking`` drew under ``seed`` (its rows taken in ``order``).

        What-if studies of that ranking's residents then draw only the keys it did not.
        """
        ids = ranking.evaluation.id_column
        table = cls(ids if order is None else ids.select(order))
        used = ranking.lottery_used if order is None else ranking.lottery_used[order]
        lottery = ranking.lottery if order is None else ranking.lottery[order]
        table.seed = seed
        table.keys[used] = lottery[used]
        table.known[:] = used
        return table

    def draw_all(self, seed: str, *, chunk: int = 1 << 15) -> None:
        """Draw every resident's key under ``seed``, a chunk at a time.

        For a thread that draws ahead while others work: between chunks, :meth:`of` gets the
        table (and draws what it needs that is not there yet).
        """
        for start in range(0, len(self.keys), chunk):
            self.of(seed, np.arange(start, min(start + chunk, len(self.keys)), dtype=np.intp))

    def of(self, seed: str, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64]:
        """The keys of the residents at ``rows`` under ``seed``."""
        with self._lock:
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
    return Ranking(evaluation, keys=keys)


def rank_with(evaluation: Evaluation, keys: LotteryKeys) -> Ranking:
    """:func:`rank` of ``evaluation`` with lottery keys from ``keys``, set as its ranking.

    For what-if studies that rank the same residents many times (sweeps, sensitivity, the
    audit's permutations): each key is hashed once.
    """
    ranking = rank(evaluation, keys=keys)
    evaluation.__dict__["ranking"] = ranking  # what Evaluation.ranking would compute, cached
    return ranking


def release(evaluation: Evaluation) -> None:
    """Drop ``evaluation``'s ranking, which refers back to it, so its arrays are freed at once."""
    evaluation.__dict__.pop("ranking", None)


#: Bits of one packed sort key.
_KEY_BITS = 64


class _SortKey:
    """The eligible residents' sort keys before the lottery, most significant first.

    When every key is a whole number (scores are micro-points; tie-break values usually are
    counts or days) and their ranges fit in 64 bits together, they are packed into one uint64
    per resident, ``(k1 - min1) << s1 | (k2 - min2) << s2 | ...``, which orders residents exactly
    as the keys do, and one sort of plain integers replaces a sort on several keys.
    """

    def __init__(self, ev: Evaluation, rows: npt.NDArray[np.intp] | None = None) -> None:
        self.ev = ev
        self.idx = np.flatnonzero(ev.eligible) if rows is None else rows
        self.packed = _pack(_key_columns(ev), self.idx)
        self._keys: list[np.ndarray] | None = None

    @property
    def keys(self) -> list[np.ndarray]:
        """The keys one by one (for a lexicographic sort, when they cannot be packed)."""
        if self._keys is None:
            self._keys = _sort_keys(self.ev, self.idx)
        return self._keys

    def lottery_free_order(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Positions in ``idx`` sorted by the keys, and whether each is equal to the one before.

        Residents with equal keys come in no particular order: the lottery, then the id,
        decides between them afterwards.
        """
        if self.packed is None:
            order = _lexsort(self.keys)
            return order, _same_as_previous(self.keys, order)
        order = np.argsort(self.packed)
        s = self.packed[order]
        return order, s[1:] == s[:-1]

    def served(
        self, k: int, ev: Evaluation, keys: LotteryKeys | None
    ) -> npt.NDArray[np.intp] | None:
        """See :meth:`Ranking.served`."""
        idx, m = self.idx, len(self.idx)
        if k >= m:
            return idx
        if k <= 0:
            return idx[:0]
        if self.packed is None:
            return None
        packed = self.packed
        part = np.partition(packed, (k - 1, k))
        last, first_out = part[k - 1], part[k]
        if last != first_out:
            return np.asarray(idx[packed <= last], dtype=np.intp)
        seed = ev.policy.lottery_seed
        if seed is None:
            return None
        ahead = np.flatnonzero(packed < last)
        group = idx[np.flatnonzero(packed == last)]
        drawn = (
            keys.of(seed, group) if keys is not None else lottery_keys(seed, ev.id_column[group])
        )
        # Lowest key first; equal keys (never seen in practice) by id, as in the full order.
        by = np.lexsort((ev.id_column[group].astype(str), drawn))
        return np.concatenate((idx[ahead], group[by[: k - len(ahead)]]))


def _key_columns(ev: Evaluation) -> list[tuple[np.ndarray, bool]]:
    """The columns of the sort keys, most significant first, and whether each is descending."""
    cp = ev.policy
    cols: list[tuple[np.ndarray, bool]] = []
    if cp.policy.score.method == "tiers":
        cols.extend((ev.terms[:, j], True) for j in range(ev.terms.shape[1]))
    else:
        cols.append((ev.score_micro, True))
    for j, tb in enumerate(cp._tie_breaks):
        if tb.kernel is not None:
            cols.append((ev.tie_key(j), tb.descending))
    return cols


def _pack(
    columns: list[tuple[np.ndarray, bool]], idx: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64] | None:
    """The keys of the residents at ``idx`` packed into one uint64 each (see :class:`_SortKey`).

    Each key becomes its distance from the best value of its column (``max - x`` for a
    descending key, ``x - min`` for an ascending one). None if a key is not a whole number
    or the keys need more than 64 bits together.
    """
    if not columns or len(idx) == 0:
        return None
    parts: list[tuple[np.ndarray, int, int, bool]] = []
    bits = 0
    for column, descending in columns:
        x = column.take(idx)
        if x.dtype.kind in "iub" and x.dtype != np.int64:
            x = x.astype(np.int64)  # level codes, flags
        lo_x, hi_x = x.min(), x.max()
        if x.dtype.kind == "f":
            # NaN never reaches here: the engine refuses undefined values.
            if not (lo_x >= -(2.0**53) and hi_x <= 2.0**53):
                return None
            whole = x.astype(np.int64)
            if not np.array_equal(whole, x):
                return None
            x = whole
        lo, hi = int(lo_x), int(hi_x)
        width = (hi - lo).bit_length()
        bits += width
        if bits > _KEY_BITS:
            return None
        parts.append((x, lo, hi, descending))
    packed: npt.NDArray[np.uint64] | None = None
    shift = bits
    for x, lo, hi, descending in parts:
        width = (hi - lo).bit_length()
        shift -= width
        if width == 0:
            continue
        part = _offset(x, hi, descending=True) if descending else _offset(x, lo, descending=False)
        if shift:
            np.left_shift(part, np.uint64(shift), out=part)
        if packed is None:
            packed = part
        else:
            np.bitwise_or(packed, part, out=packed)
    return packed if packed is not None else np.zeros(len(idx), dtype=np.uint64)


def _offset(x: npt.NDArray[np.int64], base: int, *, descending: bool) -> npt.NDArray[np.uint64]:
    """``base - x`` (descending) or ``x - base`` as uint64, computed in place in ``x``'s memory.

    Exact even where the difference exceeds int64: the arithmetic is modulo 2**64 and the true
    difference is below it.
    """
    u = x.view(np.uint64) if x.dtype == np.int64 else x.astype(np.uint64)
    b = np.uint64(base % 2**64)
    if descending:
        np.subtract(b, u, out=u)
    else:
        np.subtract(u, b, out=u)
    return u


def _rank_all(ev: Evaluation, sk: _SortKey, keys: LotteryKeys | None) -> tuple[np.ndarray, ...]:
    """The whole ranking: order, rank, tied, lottery keys and where they were drawn."""
    cp = ev.policy
    idx = sk.idx
    order, same = sk.lottery_free_order()
    lottery = np.zeros(ev.n, dtype=np.uint64)
    used = np.zeros(ev.n, dtype=bool)
    seed = cp.lottery_seed
    if seed is not None and same.any():
        in_tie = np.zeros(len(order), dtype=bool)
        in_tie[1:] |= same
        in_tie[:-1] |= same
        rows = idx[order[in_tie]]
        drawn = keys.of(seed, rows) if keys is not None else lottery_keys(seed, ev.id_column[rows])
        lottery[rows] = drawn
        used[rows] = True
        # Groups of residents tied so far are runs of `order`; sorting the tied positions by
        # (group, key) is what sorting everyone by all keys and the lottery gives.
        group = np.cumsum(np.concatenate(([True], ~same)))
        tied_at = np.flatnonzero(in_tie)
        within = _by_group_then_key(group[tied_at], drawn)
        order = order.copy()
        order[tied_at] = order[tied_at][within]
        drawn_sorted = drawn[within]
        after = np.ones(len(order), dtype=bool)  # equal lottery key to the one before
        after[tied_at[1:]] = drawn_sorted[1:] == drawn_sorted[:-1]
        same = same & after[1:]
    if same.any():
        # Still tied after the whole chain: shared rank; listed by id only for stable output.
        in_tie = np.zeros(len(order), dtype=bool)
        in_tie[1:] |= same
        in_tie[:-1] |= same
        tied_at = np.flatnonzero(in_tie)
        group = np.cumsum(np.concatenate(([True], ~same)))
        names = ev.id_column[idx[order[tied_at]]].astype(str)
        order = order.copy()
        order[tied_at] = order[tied_at][np.lexsort((names, group[tied_at]))]
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
    return rows_sorted, rank_arr, tied, lottery, used


def _by_group_then_key(
    group: npt.NDArray[np.int64], key: npt.NDArray[np.uint64]
) -> npt.NDArray[np.intp]:
    """Positions sorted by ``group`` (ascending, in runs), then by ``key`` within a group.

    Equal keys within a group come in no particular order (the id decides between them
    afterwards). With fewer than 2**16 groups: one sort of the keys, then a stable radix sort
    of the group numbers, instead of a two-key lexicographic sort.
    """
    if len(group) == 0:
        return np.arange(0)
    dense = np.cumsum(np.concatenate(([0], group[1:] != group[:-1])))
    if dense[-1] >= 2**16:
        return np.lexsort((key, group))
    by_key = np.argsort(key)
    return by_key[np.argsort(dense[by_key].astype(np.uint16), kind="stable")]


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
