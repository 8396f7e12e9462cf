"""Every resident's explanation at once, as JSON Lines or CSV, built column by column.

One line per resident, sorted by id (so the file is byte-identical whatever the input's row
order): eligibility (the rules that failed, the exclusion that applied), the points of every
indicator and priority rule, scale totals and grades, the score, rank, tie-break values, the
outcome (served, category, position) and, under priority allocation, the margin to the cut-off
score of the category that served the resident (for others: the open category's); under a
lottery allocation, the resident's lottery key and draw instead (scores do not decide there).
These are the facts of :func:`explain` without the prose and without counterfactual searches,
which are made one resident at a time.

Values are formatted a column at a time with numpy and written in chunks, so a million residents
take seconds.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from fairalloc._escape import csv_text
from fairalloc._io import atomic_write
from fairalloc._numeric import MICRO
from fairalloc.errors import ArgumentError

if TYPE_CHECKING:
    from fairalloc._evaluation import Evaluation
    from fairalloc.allocation import Allocation

__all__ = ["ROW_SCHEMA", "export_explanations"]

#: The identifier and version of one JSON Lines record.
ROW_SCHEMA = "fairalloc.explanation-row/1"

_CHUNK = 1 << 16
_PLAIN = re.compile(r'^[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029]*$')


def export_explanations(
    source: Evaluation | Allocation,
    out: str | os.PathLike[str] | IO[str],
    *,
    format: Literal["jsonl", "csv"] = "jsonl",
    progress: Callable[[int], None] | None = None,
    escape_formulas: bool = True,
) -> int:
    """Write every resident's explanation facts as JSON Lines or CSV.

    A path is written atomically: the previous file stays whole until the new one is complete.
    In CSV, ids that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return) get a leading ``'``, unless ``escape_formulas`` is false.

    Args:
        source: An evaluation (ranking only) or an allocation (with outcomes and margins).
        out: A path, or an open text file.
        format: ``jsonl`` (one JSON object per line, schema ``fairalloc.explanation-row/1``)
            or ``csv`` (one column per field; lists joined by ``;``).
        progress: Called with the number of residents written after each chunk.
        escape_formulas: Neutralise formula starts in CSV ids (see above); false for a
            program that reads the file.

    Returns:
        The number of residents written.
    """
    from fairalloc.allocation import Allocation

    check_format(format)
    alloc = source if isinstance(source, Allocation) else None
    ev = source.evaluation if isinstance(source, Allocation) else source
    cols = _Columns(ev, Outcomes.of(ev, alloc))
    if isinstance(out, str | os.PathLike):
        with atomic_write(out) as fh:
            return _write(cols, fh, format, progress, escape=escape_formulas)
    return _write(cols, out, format, progress, escape=escape_formulas)


def check_format(format: str) -> None:
    """Refuse an export format other than ``jsonl`` and ``csv`` (``FA606``)."""
    if format not in ("jsonl", "csv"):
        raise ArgumentError(
            "FA606",
            f"no format {format!r}; formats: jsonl, csv",
            argument="format",
            value=format,
            valid="jsonl, csv",
        )


def _write(
    cols: _Columns,
    fh: IO[str],
    format: str,
    progress: Callable[[int], None] | None,
    *,
    escape: bool,
) -> int:
    order = cols.ev.canonical_order()
    if format == "csv":
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols.csv_heads())
    for start in range(0, len(order), _CHUNK):
        rows = order[start : start + _CHUNK]
        if format == "jsonl":
            fh.write(cols.jsonl(rows))
        else:
            w.writerows(cols.csv_rows(rows, escape=escape))
        if progress is not None:
            progress(len(rows))
    return len(order)


def _points(micro: npt.NDArray[np.int64]) -> list[str]:
    """Micro-points as exact decimal text (``12.5``, ``40``, ``-0.000001``).

    Points take few distinct values (bands, lookups), so each distinct value is written once.
    The shortest text that reads back as the same float is the exact decimal for every total
    the engine allows (below 10**15 micro-points); tiny values that would be written in
    exponent form are written out in full.
    """
    values, inverse = np.unique(micro, return_inverse=True)
    text = (values / MICRO).astype(str)
    whole = values % MICRO == 0
    if whole.any():
        text[whole] = (values[whole] // MICRO).astype(str)
    for i in np.flatnonzero((values != 0) & (np.abs(values) < 1000)).tolist():
        text[i] = _exact(int(values[i]))
    return text.astype(object)[inverse.reshape(-1)].tolist()  # type: ignore[no-any-return]


def _exact(m: int) -> str:
    whole, frac = divmod(abs(m), MICRO)
    text = str(whole) + (f".{frac:06d}".rstrip("0") if frac else "")
    return "-" + text if m < 0 else text


def _floats(x: npt.NDArray[np.float64]) -> list[str]:
    out = [repr(float(v)) for v in x.tolist()]
    return [s[:-2] if s.endswith(".0") else s for s in out]


def _lookup(codes: npt.NDArray[np.int64], table: list[str]) -> list[str]:
    return np.asarray(table, dtype=object)[codes].tolist()  # type: ignore[no-any-return]


@dataclass
class Outcomes:
    """What an export says of each resident beyond its own evaluation, by row.

    One process takes these from the evaluation's ranking and the allocation
    (:meth:`of`); a cluster works them out over the whole population and gives them for the
    rows of one part.

    Attributes:
        rank: ``[n]`` rank in the ranking (0: not eligible).
        tied: ``[n]`` whether the rank is shared.
        lottery: ``[n]`` the ranking's lottery key, where ``lottery_used``.
        lottery_used: ``[n]`` whether the ranking drew a lottery key for the resident.
        category: ``[n]`` index of the category that served the resident, or -1; None for
            an evaluation without an allocation.
        position: ``[n]`` position in the base order (0: not eligible).
        cut_score: Per category, the micro-points of its last resident served (0 if none).
        cut_has: Per category, whether anyone was served in it.
        categories: Category ids.
        mechanism: ``priority`` or ``lottery``.
        lottery_key: ``[n]`` the allocation's lottery keys (lottery mechanism), else None.
        lottery_draw: ``[n]`` the allocation's lottery draws (lottery mechanism), else None.
    """

    rank: npt.NDArray[np.int64]
    tied: npt.NDArray[np.bool_]
    lottery: npt.NDArray[np.uint64]
    lottery_used: npt.NDArray[np.bool_]
    category: npt.NDArray[np.int16] | None = None
    position: npt.NDArray[np.int64] | None = None
    cut_score: npt.NDArray[np.int64] | None = None
    cut_has: npt.NDArray[np.bool_] | None = None
    categories: tuple[str, ...] = ()
    mechanism: str = "priority"
    lottery_key: npt.NDArray[np.uint64] | None = None
    lottery_draw: npt.NDArray[np.float64] | None = None

    @classmethod
    def of(cls, ev: Evaluation, alloc: Allocation | None) -> Outcomes:
        """The outcomes of one process's evaluation and allocation."""
        ranking = ev.ranking
        out = cls(ranking.rank, ranking.tied, ranking.lottery, ranking.lottery_used)
        if alloc is None:
            return out
        cuts = alloc.cutoffs()
        cut = [
            int(ev.score_micro[ev.index_of(c.last_id)]) if c.last_id is not None else 0
            for c in cuts
        ]
        out.category = alloc.category
        out.position = alloc.position
        out.cut_score = np.array(cut, dtype=np.int64)
        out.cut_has = np.array([c.last_id is not None for c in cuts], dtype=bool)
        out.categories = alloc.categories
        out.mechanism = alloc.mechanism
        out.lottery_key = alloc.lottery_key
        out.lottery_draw = alloc.lottery_draw
        return out


class _Columns:
    """The export's fields as text columns (JSON and CSV forms), computed per chunk."""

    def __init__(self, ev: Evaluation, outcomes: Outcomes) -> None:
        self.ev = ev
        self.out = outcomes
        cp = ev.policy
        self.cp = cp
        self.rank = outcomes.rank
        self.tied = outcomes.tied
        self.lottery = outcomes.lottery
        self.lottery_used = outcomes.lottery_used
        self.criteria = [c.key for c in cp.criteria]
        self.scale_paths = cp.scale_paths
        self.graded = cp.graded_scales
        self.ties = [(j, t.label) for j, t in enumerate(cp._tie_breaks) if t.kernel is not None]
        # Failed eligibility rules: one code per combination, one text per code.
        k = ev.eligibility.shape[1]
        if k <= 16:
            weights = (1 << np.arange(k, dtype=np.int64)) if k else np.zeros(0, dtype=np.int64)
            self.failed_code = (~ev.eligibility).astype(np.int64) @ weights if k else None
        else:  # pragma: no cover - more than 16 eligibility rules
            self.failed_code = None
        self.eligibility_ids = cp.eligibility_ids
        self.exclusion_ids = cp.exclusion_ids
        if outcomes.category is not None:
            assert outcomes.cut_score is not None
            assert outcomes.cut_has is not None
            last = len(outcomes.categories) - 1
            cat = np.where(outcomes.category >= 0, outcomes.category, last).astype(np.int64)
            self.margin = ev.score_micro - outcomes.cut_score[cat]
            ok = outcomes.cut_has[cat] & ev.eligible & (outcomes.mechanism == "priority")
            self.margin_ok = ok
            self.categories = list(outcomes.categories)

    # -- one chunk ---------------------------------------------------------------------------
    def _failed(self, rows: npt.NDArray[np.intp], *, json_form: bool) -> list[str]:
        """The failed eligibility rules of each row, as a JSON list or ``;``-joined."""
        ids = self.eligibility_ids

        def written(failed: list[str]) -> str:
            return json.dumps(failed, ensure_ascii=False) if json_form else ";".join(failed)

        if self.failed_code is not None:
            codes = self.failed_code[rows]
            table = {
                int(c): written([ids[j] for j in range(len(ids)) if int(c) >> j & 1])
                for c in np.unique(codes)
            }
            return [table[c] for c in codes.tolist()]
        elig = self.ev.eligibility[rows]  # pragma: no cover
        return [written([ids[j] for j in np.flatnonzero(~r)]) for r in elig]  # pragma: no cover

    def fields(self, rows: npt.NDArray[np.intp], *, json_form: bool) -> list[tuple[str, list[str]]]:
        """The fields of ``rows`` as (name, text column); JSON literals or CSV cells."""
        ev = self.ev
        null = "null" if json_form else ""

        def boolean(a: npt.NDArray[np.bool_]) -> list[str]:
            return np.where(a, "true", "false").tolist()  # type: ignore[no-any-return]

        def text(values: Sequence[str | None]) -> list[str]:
            if not json_form:
                return ["" if v is None else v for v in values]
            # Few distinct values (levels, rule ids): quote each once.
            quoted: dict[str | None, str] = {None: null}
            out = []
            for v in values:
                q = quoted.get(v)
                if q is None:
                    q = quoted[v] = json.dumps(v, ensure_ascii=False)
                out.append(q)
            return out

        def integer(a: npt.NDArray[np.int64], missing: npt.NDArray[np.bool_]) -> list[str]:
            out = a.astype(str)
            out[missing] = null
            return out.tolist()  # type: ignore[no-any-return]

        ids = [str(i) for i in ev.id_column[rows].tolist()]
        if json_form:
            blob = "".join(ids)
            ids = [f'"{i}"' for i in ids] if _PLAIN.match(blob) else text(list(ids))
        failed_text = self._failed(rows, json_form=json_form)
        ex = ev.exclusion[rows].astype(np.int64)
        exclusion = text([self.exclusion_ids[e] if e >= 0 else None for e in ex.tolist()])
        out: list[tuple[str, list[str]]] = [
            ("id", ids),
            ("eligible", boolean(ev.eligible[rows])),
            ("failed", failed_text),
            ("exclusion", exclusion),
            ("score", _points(ev.score_micro[rows])),
            ("rank", integer(self.rank[rows], self.rank[rows] == 0)),
            ("tied", boolean(self.tied[rows])),
        ]
        for j, key in enumerate(self.criteria):
            out.append((f"points.{key}", _points(ev.points[rows, j])))
        for j, path in enumerate(self.scale_paths):
            out.append((f"scale.{path}", _points(ev.scale_totals[rows, j])))
        for s in self.graded:
            grades = _lookup(ev.grades[rows, s.grade_index].astype(np.int64), list(s.grades))
            out.append((f"grade.{s.path}", text(grades)))
        for j, label in self.ties:
            out.append((f"tie.{label}", _floats(ev.tie_values[rows, j])))
        quote = '"' if json_form else ""
        used = self.lottery_used[rows]
        keys = [f"{int(k):016x}" for k in self.lottery[rows].tolist()]
        out.append(
            (
                "lottery_key",
                text([k if u else None for k, u in zip(keys, used.tolist(), strict=True)]),
            )
        )
        o = self.out
        if o.category is not None:
            assert o.position is not None
            cat = o.category[rows].astype(np.int64)
            out.append(("served", boolean(cat >= 0)))
            names = [self.categories[c] if c >= 0 else None for c in cat.tolist()]
            out.append(("category", text(names)))
            pos = o.position[rows]
            out.append(("position", integer(pos, pos == 0)))
            margin = _points(self.margin[rows])
            ok = self.margin_ok[rows].tolist()
            out.append(("margin", [m if g else null for m, g in zip(margin, ok, strict=True)]))
            if o.lottery_key is not None and o.lottery_draw is not None:
                elig = ev.eligible[rows].tolist()
                drawn = [
                    f"{quote}{k:016x}{quote}" if e else null
                    for k, e in zip(o.lottery_key[rows].tolist(), elig, strict=True)
                ]
                draws = _floats(o.lottery_draw[rows])
                out.append(("draw_key", drawn))
                out.append(("draw", [d if e else null for d, e in zip(draws, elig, strict=True)]))
        return out

    def jsonl(self, rows: npt.NDArray[np.intp]) -> str:
        """JSON Lines of ``rows``."""
        fields = self.fields(rows, json_form=True)
        groups: dict[str, list[tuple[str, int]]] = {}
        flat: list[tuple[str, int]] = []
        for i, (name, _) in enumerate(fields):
            head, _, rest = name.partition(".")
            if rest and head in ("points", "scale", "grade", "tie"):
                groups.setdefault(head, []).append((rest, i))
            else:
                flat.append((name, i))
        # One %-template per line; keys are JSON-escaped, and '%' in them doubled.
        parts = [f'"schema":{json.dumps(ROW_SCHEMA)}']
        order: list[int] = []
        for name, i in flat:
            if name == "served":
                for g in ("points", "scale", "grade", "tie"):
                    if g in groups:
                        parts.append(_group(g, groups.pop(g), order))
            parts.append(f"{_key(name)}:%s")
            order.append(i)
        for g in ("points", "scale", "grade", "tie"):
            if g in groups:
                parts.append(_group(g, groups.pop(g), order))
        template = "{" + ",".join(parts) + "}\n"
        columns = [fields[i][1] for i in order]
        return "".join(template % t for t in zip(*columns, strict=True))

    def csv_heads(self) -> list[str]:
        """The CSV header."""
        return [name for name, _ in self.fields(np.zeros(0, dtype=np.intp), json_form=False)]

    def csv_rows(self, rows: npt.NDArray[np.intp], *, escape: bool) -> Any:
        """CSV rows of ``rows``; with ``escape``, ids neutralised against formulas.

        The id comes first; every other text is a name from the policy.
        """
        cells = zip(*(col for _, col in self.fields(rows, json_form=False)), strict=True)
        if not escape:
            return cells
        return ((csv_text(r[0]), *r[1:]) for r in cells)


_GROUP_NAMES = {"points": "points", "scale": "scales", "grade": "grades", "tie": "tie_values"}


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False).replace("%", "%%")


def _group(g: str, members: list[tuple[str, int]], order: list[int]) -> str:
    inner = []
    for name, i in members:
        inner.append(f"{_key(name)}:%s")
        order.append(i)
    return f"{_key(_GROUP_NAMES[g])}:{{{','.join(inner)}}}"
