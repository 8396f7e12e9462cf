"""Decision tables (and bands, and grades) as vectorised kernels, and their completeness check.

A table is compiled into a :class:`TableCode`: one kernel per input (giving float64 values:
numbers, days, level codes, 1/0 for true/false) and a matrix of :class:`CellTest` s. The kernel
:meth:`TableCode.rows` gives, for a whole chunk of residents at once, the index of the row that
applies (the first matching row, or the only one under ``unique``), -1 where none does and -2
where two rows match under ``unique``.

:func:`completeness` checks a table over the declared domains of its inputs (the levels of an
ordinal or category, true/false, the allowed ``values`` of a number, the ``min``/``max`` of an
attribute, the reachable totals of a scale): every combination of values must match a row
(else a *gap*), at most one row under ``unique`` (else an *overlap*), and under ``first`` each
row must be the first match for some combination (else it is *shadowed*). Bands and grades are
one-input ``first`` tables and get the same check. Domains are split into the regions the
cells' bounds delimit, so the check is exact, not sampled.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_COMBINATIONS",
    "CellTest",
    "Domain",
    "Finding",
    "TableCode",
    "completeness",
]

#: Most combinations of input regions the completeness check enumerates; larger tables get a
#: warning that they were not checked.
MAX_COMBINATIONS = 200_000

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CellTest:
    """One cell as a test of a float value.

    Attributes:
        kind: ``any``, ``set`` (``values``; ``negated`` for ``!=``/not in) or ``interval``.
        values: For ``set``: the values (level codes, 1/0 for true/false, numbers).
        negated: For ``set``: holds for every value *not* listed.
        lo: For ``interval``: the lower bound (``-inf`` when open).
        lo_strict: ``>`` rather than ``>=``.
        hi: For ``interval``: the upper bound (``inf`` when open).
        hi_strict: ``<`` rather than ``<=``.
        text: The cell as written, for explanations (``-`` for any).
    """

    kind: Literal["any", "set", "interval"]
    values: tuple[float, ...] = ()
    negated: bool = False
    lo: float = -math.inf
    lo_strict: bool = False
    hi: float = math.inf
    hi_strict: bool = False
    text: str = "-"

    def holds(self, x: FloatArray) -> npt.NDArray[np.bool_]:
        """Whether the cell holds for each value of ``x`` (NaN never holds)."""
        if self.kind == "any":
            return np.ones(x.shape, dtype=bool)
        if self.kind == "set":
            inside = np.isin(x, np.asarray(self.values, dtype=np.float64))
            return ~inside & ~np.isnan(x) if self.negated else inside
        ok = (x > self.lo) if self.lo_strict else (x >= self.lo)
        ok &= (x < self.hi) if self.hi_strict else (x <= self.hi)
        return ok

    def bounds(self) -> list[float]:
        """The finite values where this cell's truth can change."""
        if self.kind == "set":
            return list(self.values)
        if self.kind == "interval":
            return [b for b in (self.lo, self.hi) if math.isfinite(b)]
        return []


@dataclass(frozen=True, slots=True)
class Domain:
    """The values an input can take, as declared.

    Attributes:
        values: A finite set of values (level codes, 0/1, allowed numbers), or None for an
            interval.
        labels: Names of ``values`` for messages (levels, ``true``/``false``), when they have.
        lo: Smallest value of an interval (``-inf`` when unbounded).
        hi: Largest value of an interval (``inf`` when unbounded).
        integer: Whether an interval holds whole numbers only (``int`` attributes, dates).
        declared: Whether the domain is what the policy declares (an attribute, a grade, a
            scale's total); False for a computed value whose range is not known, where a gap
            is a warning rather than an error.
        computed: Whether the values were worked out from other parts (a scale's reachable
            totals) rather than declared: a row that matches none of them is a warning, since
            other weights or parameters could reach it.
    """

    values: tuple[float, ...] | None = None
    labels: tuple[str, ...] = ()
    lo: float = -math.inf
    hi: float = math.inf
    integer: bool = False
    declared: bool = True
    computed: bool = False

    def regions(self, bounds: Sequence[float]) -> list[float]:
        """One representative value of each region the ``bounds`` cut this domain into."""
        if self.values is not None:
            return list(self.values)
        pts = sorted({b for b in bounds if math.isfinite(b)})
        cand: set[float] = set()
        if self.integer:
            for b in pts:
                cand |= {math.floor(b) - 1.0, float(math.floor(b)), float(math.ceil(b))}
                cand.add(math.ceil(b) + 1.0)
            if not pts:
                cand.add(0.0)
        else:
            cand |= set(pts)
            cand |= {(a + b) / 2 for a, b in itertools.pairwise(pts)}
            if pts:
                cand |= {pts[0] - 1.0, pts[-1] + 1.0}
            else:
                cand.add(0.0)
        for end in (self.lo, self.hi):
            if math.isfinite(end):
                cand.add(end)
        return sorted(c for c in cand if self.lo <= c <= self.hi)

    def label(self, x: float) -> str:
        """``x`` as written in a policy: a level's name, true/false, or a number."""
        if self.values is not None and self.labels and x in self.values:
            return self.labels[self.values.index(x)]
        return _num(x)


@dataclass(slots=True)
class TableCode:
    """A compiled decision table (or bands, or grades).

    Attributes:
        part: The part it belongs to (``indicator:PATH``, ``grade:PATH``, ``derived:NAME``).
        where: Its location in the policy file, for evaluation errors.
        doc_path: Its place in the document.
        hit: ``unique`` or ``first``.
        names: The input names.
        texts: The input expressions as written.
        kernels: One kernel per input, from a chunk of residents to float64 values.
        cells: ``cells[row][input]``.
        outputs: Each row's output: points, a level code or a grade index.
        output_labels: Each row's output as written.
        domains: The declared domain of each input.
        index: Its column in an evaluation's ``table_rows`` trace (set when compiled).
    """

    part: str
    where: str
    doc_path: tuple[str, ...]
    hit: Literal["unique", "first"]
    names: tuple[str, ...]
    texts: tuple[str, ...]
    kernels: list[Callable[[object], FloatArray | float]]
    cells: list[list[CellTest]]
    outputs: FloatArray
    output_labels: tuple[str, ...]
    domains: list[Domain] = field(default_factory=list)
    index: int = -1

    def inputs(self, frame: object, n: int) -> list[FloatArray]:
        """Each input's values for a chunk of ``n`` residents."""
        out = []
        for k in self.kernels:
            v = k(frame)
            out.append(
                v.astype(np.float64, copy=False)
                if isinstance(v, np.ndarray) and v.shape == (n,)
                else np.full(n, float(v), dtype=np.float64)
            )
        return out

    def rows(self, values: Sequence[FloatArray]) -> npt.NDArray[np.int64]:
        """The row that applies for each resident: -1 where none does, -2 for two (unique)."""
        n = len(values[0]) if values else 0
        out = np.full(n, -1, dtype=np.int64)
        matches = np.zeros(n, dtype=np.int64)
        for k in range(len(self.cells) - 1, -1, -1):
            ok = np.ones(n, dtype=bool)
            for cell, x in zip(self.cells[k], values, strict=True):
                if cell.kind != "any":
                    ok &= cell.holds(x)
            out[ok] = k
            matches += ok
        if self.hit == "unique":
            out[matches > 1] = -2
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of the completeness check.

    Attributes:
        kind: ``gap``, ``overlap``, ``shadowed``, ``never`` (matches no value of the domain)
            or ``unchecked`` (too many combinations to enumerate).
        rows: The rows concerned (for an overlap: both; for shadowed: the row, then the
            earlier row that covers it when there is one).
        example: An example combination of input values, as written (``adl = mild``).
        error: Whether it is an error (else a warning: the domain is not declared).
    """

    kind: Literal["gap", "overlap", "shadowed", "never", "unchecked"]
    rows: tuple[int, ...]
    example: str
    error: bool


def completeness(table: TableCode, *, limit: int = 3) -> list[Finding]:
    """Check ``table`` for gaps, overlaps (``unique``) and shadowed rows (``first``).

    Args:
        table: The table, with the domains of its inputs.
        limit: Most overlaps reported (each with an example); the first gap is reported with
            the number of other uncovered combinations, and every shadowed row is.

    Returns:
        The findings, gaps first; empty for a complete, unambiguous table.
    """
    ninp = len(table.names)
    reps = [
        dom.regions([b for row in table.cells for b in row[i].bounds()])
        for i, dom in enumerate(table.domains)
    ]
    total = math.prod(len(r) for r in reps)
    if total > MAX_COMBINATIONS:
        return [Finding("unchecked", (), f"{total} combinations", error=False)]
    if total == 0:
        return []
    grids = np.indices([len(r) for r in reps]).reshape(ninp, -1)
    values = [np.asarray(reps[i], dtype=np.float64)[grids[i]] for i in range(ninp)]
    nrows = len(table.cells)
    match = np.ones((nrows, total), dtype=bool)
    for k, row in enumerate(table.cells):
        for i, cell in enumerate(row):
            if cell.kind != "any":
                match[k] &= cell.holds(values[i])
    declared = all(d.declared for d in table.domains)

    def example(c: int) -> str:
        return ", ".join(
            f"{name} = {dom.label(float(values[i][c]))}"
            for i, (name, dom) in enumerate(zip(table.names, table.domains, strict=True))
        )

    out: list[Finding] = []
    count = match.sum(axis=0)
    gaps = np.flatnonzero(count == 0)
    if len(gaps):
        more = f" (and {len(gaps) - 1} more)" if len(gaps) > 1 else ""
        out.append(Finding("gap", (), example(int(gaps[0])) + more, error=declared))
    if table.hit == "unique":
        seen: set[tuple[int, int]] = set()
        for c in np.flatnonzero(count > 1):
            ks = np.flatnonzero(match[:, c])
            pair = (int(ks[0]), int(ks[1]))
            if pair in seen:
                continue
            seen.add(pair)
            out.append(Finding("overlap", pair, example(int(c)), error=declared))
            if len(seen) >= limit:
                break
    first = np.where(match.any(axis=0), match.argmax(axis=0), -1)
    for k in range(nrows):
        if not match[k].any():
            exact = all(d.declared and not d.computed for d in table.domains)
            out.append(Finding("never", (k,), "", error=exact))
        elif table.hit == "first" and not (first == k).any():
            at = int(np.flatnonzero(match[k])[0])
            out.append(Finding("shadowed", (k, int(first[at])), example(at), error=True))
    return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))
