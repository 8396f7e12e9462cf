"""The result of allocating units: who is served, in which category, and the cut-offs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._escape import html_text
from fairalloc._evaluation import Evaluation
from fairalloc._explainable import Explainable
from fairalloc._html import table as html_table
from fairalloc._io import write_table
from fairalloc._numeric import MICRO
from fairalloc._optional import require

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["Allocation", "Cutoff"]


@dataclass(frozen=True, slots=True)
class Cutoff:
    """The last resident served in a category, and what they were served on.

    Attributes:
        category: The category id (``open`` for unreserved units).
        size: Units of the category (for ``open``: with the reserved units it received).
        used: Units given.
        last_id: Id of the last resident served in it (None if nobody was).
        score: That resident's score.
        position: That resident's position in the category's order (1 = first).
        tie_values: That resident's tie-break values, by label.
        lottery_draw: That resident's lottery draw, in a lottery.
    """

    category: str
    size: int
    used: int
    last_id: str | None
    score: float | None
    position: int | None
    tie_values: dict[str, float]
    lottery_draw: float | None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "category": self.category,
            "size": self.size,
            "used": self.used,
            "left": self.size - self.used,
            "last_id": self.last_id,
            "score": self.score,
            "position": self.position,
            "tie_values": self.tie_values,
            "lottery_draw": self.lottery_draw,
        }


class Allocation(Explainable):
    """Who was served, in which category, in what order, and the cut-off of each category.

    Attributes:
        evaluation: The evaluation allocated from.
        mechanism: ``priority`` or ``lottery``.
        capacity: Units allocated.
        categories: Category ids (reserves, then ``open``).
        sizes: Units of each category.
        served: ``[n]`` whether each resident was served.
        category: ``[n]`` index of the category that served the resident, or -1.
        order: Rows of the eligible residents in the mechanism's base order.
        position: ``[n]`` position in the base order (1 = first), 0 if not eligible.
        lottery_key: ``[n]`` the published lottery key (lottery mechanism only).
        lottery_draw: ``[n]`` the lottery draw, lowest first (lottery mechanism only).
        lapsed: Units of each category left unused (reserved units that lapse).
        reverted: Reserved units that nobody eligible took, given in the open category.
    """

    def __init__(
        self,
        evaluation: Evaluation,
        mechanism: str,
        capacity: int,
        categories: tuple[str, ...],
        sizes: tuple[int, ...],
        category: npt.NDArray[np.int16],
        order: npt.NDArray[np.intp] | None,
        lottery_key: npt.NDArray[np.uint64] | None,
        lottery_draw: npt.NDArray[np.float64] | None,
        lapsed: npt.NDArray[np.int64],
        reverted: int = 0,
    ) -> None:
        self.evaluation = evaluation
        self.mechanism = mechanism
        self.capacity = capacity
        self.categories = categories
        self.sizes = sizes
        self.category = category
        self.served = category >= 0
        self._order = order
        self._position: npt.NDArray[np.int64] | None = None
        self.lottery_key = lottery_key
        self.lottery_draw = lottery_draw
        self.lapsed = lapsed
        self.reverted = reverted

    @property
    def order(self) -> npt.NDArray[np.intp]:
        """Rows of the eligible residents in the mechanism's base order.

        For a priority allocation without reserves, the ranking's order, worked out when first
        read (who is served never needs it).
        """
        if self._order is None:
            self._order = self.evaluation.ranking.order
        return self._order

    @property
    def position(self) -> npt.NDArray[np.int64]:
        """``[n]`` position in the base order (1 = first), 0 if not eligible."""
        if self._position is None:
            order = self.order
            position = np.zeros(self.evaluation.n, dtype=np.int64)
            position[order] = np.arange(1, len(order) + 1)
            self._position = position
        return self._position

    # -- summaries ---------------------------------------------------------------------
    @property
    def n_served(self) -> int:
        """Number of residents served."""
        return int(self.served.sum())

    def served_ids(self) -> list[str]:
        """Ids of the served residents, in the base order."""
        rows = self.order[self.served[self.order]]
        return [str(i) for i in self.evaluation.id_column[rows]]

    def used(self) -> list[int]:
        """Units given in each category."""
        return [int((self.category == c).sum()) for c in range(len(self.categories))]

    def cutoffs(self) -> list[Cutoff]:
        """The cut-off of each category: its last resident served (in the base order)."""
        ev = self.evaluation
        cp = ev.policy
        labels = [(j, t.label) for j, t in enumerate(cp._tie_breaks) if t.kernel is not None]
        out = []
        used = self.used()
        for c, cid in enumerate(self.categories):
            size = self.sizes[c] + (self.reverted if cid == "open" else 0)
            rows = self.order[self.category[self.order] == c]
            if len(rows) == 0:
                out.append(Cutoff(cid, size, 0, None, None, None, {}, None))
                continue
            last = int(rows[-1])
            out.append(
                Cutoff(
                    cid,
                    size,
                    used[c],
                    str(ev.id_column[last]),
                    int(ev.score_micro[last]) / MICRO,
                    int(self.position[last]),
                    {lbl: float(ev.tie_values[last, j]) for j, lbl in labels},
                    float(self.lottery_draw[last]) if self.lottery_draw is not None else None,
                )
            )
        return out

    # -- conversions -------------------------------------------------------------------
    def record(self, row: int) -> dict[str, Any]:
        """The allocation outcome of the resident at ``row``, as plain values."""
        ev = self.evaluation
        c = int(self.category[row])
        rec: dict[str, Any] = {
            "id": str(ev.id_column[row]),
            "eligible": bool(ev.eligible[row]),
            "served": bool(self.served[row]),
            "category": self.categories[c] if c >= 0 else None,
            "position": int(self.position[row]) or None,
            "rank": int(ev.ranking.rank[row]) or None,
            "score": int(ev.score_micro[row]) / MICRO,
        }
        cp = ev.policy
        for j, tb in enumerate(cp._tie_breaks):
            if tb.kernel is not None:
                rec[tb.label] = float(ev.tie_values[row, j])
        if ev.ranking.lottery_used[row]:
            rec["ranking_lottery_key"] = f"{int(ev.ranking.lottery[row]):016x}"
        if self.lottery_key is not None and ev.eligible[row]:
            rec["lottery_key"] = f"{int(self.lottery_key[row]):016x}"
            assert self.lottery_draw is not None
            rec["lottery_draw"] = float(self.lottery_draw[row])
        return rec

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per eligible resident, in the base order, then the ineligible by id."""
        rest = np.flatnonzero(~self.evaluation.eligible)
        rest = rest[self.evaluation.id_column.sort_order(rest)]
        return [self.record(int(r)) for r in (*self.order, *rest)]

    def to_csv(self, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> None:
        """Write every resident's outcome (see :meth:`to_dicts`) as CSV, atomically.

        The rows and cells are those of :meth:`to_dicts` (an empty cell where a value is
        ``None``). Ids and category names that a spreadsheet would run as a formula (starting
        with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) are written with a leading
        ``'``; pass ``escape_formulas=False`` for a program that reads the file.
        """
        write_table(
            path,
            self._columns(),
            text_columns=("id", "category"),
            escape_formulas=escape_formulas,
            file_format="csv",
        )

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write every resident's outcome (see :meth:`to_dicts`) as Parquet, atomically."""
        write_table(path, self._columns(), file_format="parquet")

    def _columns(self) -> dict[str, Any]:
        """The columns of :meth:`to_dicts`, in its row order, as Arrow arrays."""
        ev = self.evaluation
        rest = np.flatnonzero(~ev.eligible)
        rest = rest[ev.id_column.sort_order(rest)]
        rows = np.concatenate([self.order.astype(np.intp), rest.astype(np.intp)])
        return outcome_columns(
            ids=ev.id_column.arrow_take(rows),
            eligible=ev.eligible[rows],
            category=self.category[rows],
            categories=self.categories,
            position=self.position[rows],
            score_micro=ev.score_micro[rows],
            lottery_key=None if self.lottery_key is None else self.lottery_key[rows],
            lottery_draw=None if self.lottery_draw is None else self.lottery_draw[rows],
        )

    def summary(self) -> dict[str, Any]:
        """The allocation's figures: capacity, units used, cut-offs per category."""
        meta = self.evaluation.policy.policy.policy
        return {
            "policy": {"id": meta.id, "version": meta.version},
            "mechanism": self.mechanism,
            "capacity": self.capacity,
            "served": self.n_served,
            "eligible": int(self.evaluation.eligible.sum()),
            "categories": [c.to_dict() for c in self.cutoffs()],
            "lapsed": int(self.lapsed.sum()),
            "reverted_to_open": self.reverted,
            **({"draw": draw} if (draw := self.evaluation.policy.draw) else {}),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The summary and every resident's outcome, as JSON."""
        doc = self.summary()
        doc["residents"] = self.to_dicts()
        return json.dumps(doc, ensure_ascii=False, indent=indent)

    def to_pandas(self) -> pd.DataFrame:
        """One row per resident (indexed by id, population order) with outcome columns."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        ev = self.evaluation
        df = pd.DataFrame(
            {
                "served": self.served,
                "category": pd.Categorical.from_codes(
                    self.category.astype(np.int64), categories=pd.Index(list(self.categories))
                ),
                "position": self.position,
                "eligible": ev.eligible,
                "score": ev.score,
            },
            index=pd.Index(ev.ids.astype(str), name="id"),
        )
        if self.lottery_draw is not None:
            df["lottery_draw"] = self.lottery_draw
        return df

    def __repr__(self) -> str:
        return (
            f"<Allocation ({self.mechanism}) of {self.capacity} units:"
            f" {self.n_served} served of {int(self.evaluation.eligible.sum())} eligible>"
        )

    def _repr_html_(self) -> str:
        rows = (
            (
                c.category,
                c.size,
                c.used,
                c.size - c.used,
                c.last_id or "—",
                "—" if c.score is None else c.score,
            )
            for c in self.cutoffs()
        )
        heads = ("category", "units", "given", "left", "last served", "cut-off score")
        return f"<p>{html_text(repr(self))}</p>" + html_table(heads, rows)


def outcome_columns(
    *,
    ids: Any,
    eligible: npt.NDArray[np.bool_],
    category: npt.NDArray[np.integer[Any]],
    categories: tuple[str, ...],
    position: npt.NDArray[np.int64],
    score_micro: npt.NDArray[np.int64],
    lottery_key: npt.NDArray[np.uint64] | None,
    lottery_draw: npt.NDArray[np.float64] | None,
) -> dict[str, Any]:
    """The result table's columns (:meth:`Allocation.to_parquet`) of residents given in order.

    ``ids`` are text (an Arrow array, or an object array of ``str``); ``category`` is each
    resident's category index (-1: not served); ``position`` their position in the base order
    (0: not eligible); the lottery columns are given under a lottery mechanism. A cluster
    writes its parts of the table with this too, so both write the same columns, types and
    values.
    """
    import pyarrow as pa

    code = category.astype(np.int64)
    names = pa.array(list(categories), type=pa.string())
    cols: dict[str, Any] = {
        "id": ids if isinstance(ids, pa.Array) else pa.array(ids, type=pa.string()),
        "eligible": pa.array(eligible, type=pa.bool_()),
        "served": pa.array(code >= 0, type=pa.bool_()),
        "category": names.take(pa.array(code, mask=code < 0)),
        "position": pa.array(position, mask=position == 0, type=pa.int64()),
        "score": pa.array(score_micro / MICRO, type=pa.float64()),
    }
    if lottery_key is not None:
        assert lottery_draw is not None
        drawn = ~eligible
        keys = np.ascontiguousarray(lottery_key.astype(">u8")).tobytes().hex()
        hexes: Any = np.frombuffer(keys.encode("ascii"), dtype="S16") if len(ids) else []
        cols["lottery_key"] = pa.array(hexes, type=pa.binary(16), mask=drawn).cast(pa.string())
        cols["lottery_draw"] = pa.array(lottery_draw, mask=drawn, type=pa.float64())
    return cols
