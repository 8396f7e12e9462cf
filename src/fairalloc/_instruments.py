"""Compiling assessment instruments: decision tables, grades as inputs, checked completeness.

The policy compiler (:mod:`fairalloc._compiler`) calls these functions for the parts of a
policy that publish an instrument as it is written: decision tables (in indicators, as a
scale's grade, as a derived value), reads of a scale's ``grade(...)`` and ``total(...)`` by
other parts, and the load-time check that bands, grades and tables leave no gap, no overlap
under ``unique`` and no shadowed row under ``first`` over the declared domains of their inputs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fairalloc._tables import CellTest, Domain, Finding, TableCode, completeness
from fairalloc.errors import PolicyIssue
from fairalloc.expr._check import IR, NUMBER, Checked, Type
from fairalloc.expr._numpy import Frame, compile_cond, compile_num

if TYPE_CHECKING:
    from fairalloc._compiler import CompiledPolicy, ReadPath, _Builder
    from fairalloc.policy import _model as M
    from fairalloc.policy._load import PathKey
    from fairalloc.policy._tables import Cell, DecisionTable

__all__ = [
    "bands_check",
    "derived_table",
    "finish",
    "grade_table",
    "grades_check",
    "indicator_table",
    "row_kernel",
]

EPOCH = dt.date(1970, 1, 1)
_OPS = ("<=", ">=", "!=", "==", "<", ">")
#: Most distinct totals a scale's reachable set is enumerated to, before falling back to bounds.
_MAX_TOTALS = 20_000


def check_allowed_values(b: _Builder) -> None:
    """An attribute's allowed ``values``: numbers only, distinct, within its bounds (FA430)."""
    for name, a in b.p.attributes.items():
        if a.values is None:
            continue
        where: PathKey = ("attributes", name, "values")
        if a.type not in ("int", "float"):
            b.issue(
                "FA430",
                f"`values` apply to int and float attributes, not {a.type}",
                where,
                hint="give a category or ordinal `levels` instead",
            )
            continue
        problems = []
        if len(set(a.values)) != len(a.values):
            problems.append("they must be distinct")
        if a.type == "int" and any(not float(v).is_integer() for v in a.values):
            problems.append("an int attribute's values must be whole numbers")
        lo = a.min if isinstance(a.min, int | float) else None
        hi = a.max if isinstance(a.max, int | float) else None
        out = [v for v in a.values if (lo is not None and v < lo) or (hi is not None and v > hi)]
        if out:
            problems.append(f"{', '.join(_cell_text(float(v)) for v in out)} outside min/max")
        if (
            a.default is not None
            and isinstance(a.default, int | float)
            and (float(a.default) not in a.values)
        ):
            problems.append(f"the default {_cell_text(float(a.default))} is not one of them")
        for p in problems:
            b.issue("FA430", f"allowed values of `{name}`: {p}", where)


# -- compiling tables ---------------------------------------------------------------------------


class _CellError(Exception):
    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def _scalar(v: Any, typ: Type) -> float:
    """One value of a cell as the float the input's kernel gives."""
    if typ.kind == "bool":
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return 1.0 if v.strip().lower() == "true" else 0.0
        raise _CellError("FA400", f"`{v}` is not true or false")
    if typ.kind == "level":
        name = str(v).strip()
        if name not in typ.levels:
            raise _CellError(
                "FA401", f"`{name}` is not a level of {typ}", "levels: " + ", ".join(typ.levels)
            )
        return float(typ.levels.index(name))
    if isinstance(v, bool):
        raise _CellError("FA400", f"`{str(v).lower()}` is not a {typ}")
    if typ.kind == "date":
        if isinstance(v, dt.date):
            return float((v - EPOCH).days)
        try:
            return float((dt.date.fromisoformat(str(v).strip()) - EPOCH).days)
        except ValueError:
            raise _CellError("FA400", f"`{v}` is not a date (YYYY-MM-DD)") from None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise _CellError("FA400", f"`{v}` is not a number") from None
    if not math.isfinite(x):
        raise _CellError("FA400", f"`{v}` is not a finite number")
    return x


def parse_cell(raw: Cell | None, typ: Type) -> CellTest:
    """A cell as written, against its input's type.

    Raises:
        _CellError: when the cell cannot be read for this input.
    """
    if raw is None or (isinstance(raw, str) and raw.strip() in ("-", "")):
        return CellTest("any")
    text = _cell_text(raw)
    if isinstance(raw, list):
        if not raw:
            raise _CellError("FA400", "an empty list matches nothing", "write `-` for any value")
        return CellTest("set", tuple(sorted({_scalar(v, typ) for v in raw})), text=text)
    if isinstance(raw, str):
        s = raw.strip()
        op = next((o for o in _OPS if s.startswith(o)), None)
        if op is not None:
            x = _scalar(s[len(op) :], typ)
            if op in ("==", "!="):
                return CellTest("set", (x,), negated=op == "!=", text=text)
            _need_order(typ, op)
            if op[0] == "<":
                return CellTest("interval", hi=x, hi_strict=op == "<", text=text)
            return CellTest("interval", lo=x, lo_strict=op == ">", text=text)
        if ".." in s:
            lo_text, _, hi_text = s.partition("..")
            _need_order(typ, "..")
            lo, hi = _scalar(lo_text, typ), _scalar(hi_text, typ)
            if lo > hi:
                raise _CellError("FA400", f"the range `{s}` is empty", "write the low end first")
            return CellTest("interval", lo=lo, hi=hi, text=text)
    return CellTest("set", (_scalar(raw, typ),), text=text)


def _need_order(typ: Type, op: str) -> None:
    if typ.kind == "bool" or (typ.kind == "level" and not typ.ordered):
        raise _CellError(
            "FA400",
            f"`{op}` needs an order, but {typ} has none",
            "list the values instead: `[a, b]`",
        )


def _cell_text(raw: Any) -> str:
    if isinstance(raw, list):
        return "[" + ", ".join(_cell_text(v) for v in raw) + "]"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def _input_kernel(c: Checked) -> Any:
    if c.type.kind == "bool":
        kc, _ = compile_cond(c.ir)

        def as_number(f: Frame) -> Any:
            val, inv = kc(f)
            out = np.asarray(val, dtype=np.float64)
            if inv is not None:
                out = np.where(inv, np.nan, out)
            return out if out.ndim else float(out)

        return as_number
    return compile_num(c.ir)[0]


def _compile(
    b: _Builder,
    part: str,
    doc_table: DecisionTable,
    doc: PathKey,
    where: str,
    outputs: Sequence[str] | None,
) -> tuple[TableCode, list[Checked | None]] | None:
    """Check and compile one table; outputs are names from ``outputs``, or numbers."""
    checks: list[Checked | None] = []
    types: list[Type | None] = []
    for name, text in doc_table.inputs.items():
        c = b.checked(text, (*doc, "inputs", name), None)
        if c is not None and c.type.kind not in ("number", "date", "level", "bool"):
            b.issue("FA403", f"input `{name}` is {c.type}", (*doc, "inputs", name))
            c = None
        checks.append(c)
        types.append(None if c is None else c.type)
    ok = all(c is not None for c in checks)
    cells: list[list[CellTest]] = []
    values: list[float] = []
    labels: list[str] = []
    for k, row in enumerate(doc_table.rows):
        line: list[CellTest] = []
        for name, typ in zip(doc_table.inputs, types, strict=True):
            if typ is None:
                continue
            try:
                line.append(parse_cell(row.cells.get(name), typ))
            except _CellError as e:
                b.issue(
                    e.code,
                    f"row {k}, `{name}`: {e.message}",
                    (*doc, "rows", str(k), name),
                    hint=e.hint,
                )
                ok = False
        cells.append(line)
        out = row.output
        if outputs is None:
            if isinstance(out, str):
                b.issue(
                    "FA402",
                    f"row {k}: the output `{out}` is not a number",
                    (*doc, "rows", str(k), "output"),
                    hint="this table gives points",
                )
                ok = False
                continue
            values.append(float(out))
            labels.append(_cell_text(float(out)))
        else:
            name_out = str(out) if not isinstance(out, float) or not out.is_integer() else None
            if name_out is None or name_out not in outputs:
                b.issue(
                    "FA402",
                    f"row {k}: the output `{_cell_text(out)}` is not one of {', '.join(outputs)}",
                    (*doc, "rows", str(k), "output"),
                )
                ok = False
                continue
            values.append(float(outputs.index(name_out)))
            labels.append(name_out)
    if not ok:
        b.failed_parts.add(part)
        return None
    table = TableCode(
        part=part,
        where=where,
        doc_path=tuple(doc),
        hit=doc_table.hit,
        names=tuple(doc_table.inputs),
        texts=tuple(doc_table.inputs.values()),
        kernels=[_input_kernel(c) for c in checks if c is not None],
        cells=cells,
        outputs=np.asarray(values, dtype=np.float64),
        output_labels=tuple(labels),
    )
    return table, checks


def _register(cp: CompiledPolicy, table: TableCode) -> None:
    """Give ``table`` its trace column and its row kernel, a value of every frame."""
    table.index = len(cp.tables)
    cp.tables.append(table)

    def rows(f: Frame) -> Any:
        return table.rows(table.inputs(f, f.n)).astype(np.float64)

    cp._derived[f"@row:{table.index}"] = ("num", rows)
    cp._derived_nan[f"@row:{table.index}"] = False


def row_kernel(table: TableCode) -> Any:
    """A kernel giving the row of ``table`` that applies to each resident (as float64)."""
    key = f"@row:{table.index}"
    return lambda f: f.value_of(key)


def indicator_table(
    b: _Builder, cp: CompiledPolicy, part: str, doc_table: DecisionTable, doc: PathKey
) -> TableCode | None:
    """An indicator's table, whose outputs are points."""
    done = _compile(b, part, doc_table, doc, cp.span(doc[:-1]), None)
    b.note_reads(part, *(done[1] if done else [None]))
    if done is None:
        return None
    _register(cp, done[0])
    b.pending_tables.append((done[0], done[1], "table"))
    return done[0]


def grade_table(
    b: _Builder,
    cp: CompiledPolicy,
    path: str,
    grades: Sequence[str],
    doc_table: DecisionTable,
    doc: PathKey,
) -> TableCode | None:
    """A scale's grade table, whose outputs are the scale's grades."""
    part = f"grade:{path}"
    done = _compile(b, part, doc_table, doc, cp.span(doc), list(grades))
    b.note_reads(part, *(done[1] if done else [None]))
    if done is None:
        return None
    _register(cp, done[0])
    b.pending_tables.append((done[0], done[1], "table"))
    return done[0]


def derived_table(b: _Builder, name: str, doc: M.Derived) -> Checked | None:
    """A derived value given by a table: its checked form (reads of all its inputs)."""
    assert doc.table is not None
    path: PathKey = ("derived", name, "table")
    done = _compile(b, f"derived:{name}", doc.table, path, b.smap.span(path).__str__(), doc.levels)
    if done is None:
        return None
    table, checks = done
    b.derived_tables[name] = table
    cs = [c for c in checks if c is not None]
    typ = Type("level", name, tuple(doc.levels), ordered=True) if doc.levels else NUMBER
    b.pending_tables.append((table, checks, "table"))
    return Checked(
        typ,
        IR("const", typ, value=0.0),
        frozenset().union(*(c.attributes for c in cs)),
        frozenset().union(*(c.derived for c in cs)),
        frozenset().union(*(c.parameters for c in cs)),
        frozenset().union(*(c.scales for c in cs)),
    )


def compile_derived_table(cp: CompiledPolicy, name: str, table: TableCode) -> None:
    """Register a derived table's rows and its value (its row's output; NaN where none)."""
    _register(cp, table)
    key = f"@row:{table.index}"
    outputs = table.outputs

    def value(f: Frame) -> Any:
        rows = np.asarray(f.value_of(key), dtype=np.int64)
        return np.where(rows >= 0, outputs[np.maximum(rows, 0)], np.nan)

    cp._derived[name] = ("num", value)
    cp._derived_nan[name] = True


def _band_cells(bands: Sequence[M.Band] | Sequence[M.Grade]) -> list[list[CellTest]]:
    out = []
    for bd in bands:
        lo = bd.min if bd.min is not None else bd.above
        hi = bd.max if bd.max is not None else bd.below
        out.append(
            [
                CellTest(
                    "interval" if (lo is not None or hi is not None) else "any",
                    lo=-math.inf if lo is None else lo,
                    lo_strict=bd.above is not None,
                    hi=math.inf if hi is None else hi,
                    hi_strict=bd.below is not None,
                )
            ]
        )
    return out


def bands_check(
    b: _Builder,
    cp: CompiledPolicy,
    part: str,
    bands: Sequence[M.Band],
    doc: PathKey,
    c: Checked,
    of: str,
) -> None:
    """Queue an indicator's bands for the completeness check, as a one-input ``first`` table."""
    table = TableCode(
        part=part,
        where=cp.span(doc),
        doc_path=tuple(doc),
        hit="first",
        names=(of,),
        texts=(of,),
        kernels=[],
        cells=_band_cells(bands),
        outputs=np.asarray([bd.points for bd in bands], dtype=np.float64),
        output_labels=tuple(_cell_text(bd.points) for bd in bands),
    )
    b.pending_tables.append((table, [c], "band"))


def grades_check(
    b: _Builder, cp: CompiledPolicy, path: str, grades: Sequence[M.Grade], doc: PathKey
) -> None:
    """Queue a scale's grades for the completeness check over the totals it can reach."""
    table = TableCode(
        part=f"grade:{path}",
        where=cp.span(doc),
        doc_path=tuple(doc),
        hit="first",
        names=(f"total({path})",),
        texts=(f"total({path})",),
        kernels=[],
        cells=_band_cells(grades),
        outputs=np.arange(len(grades), dtype=np.float64),
        output_labels=tuple(g.grade for g in grades),
    )
    b.pending_tables.append((table, [None], f"grade:{path}"))


# -- after every part is compiled ---------------------------------------------------------------


def finish(b: _Builder, cp: CompiledPolicy) -> None:
    """Refuse cycles through grades and totals, follow reads through them, check tables."""
    cyclic = _cycles(b)
    if not cyclic:
        _expand_reads(b)
    readers = {part for part, cs in b.part_checks.items() if any(_reads_scales(b, c) for c in cs)}
    readers |= {f"derived:{n}" for n, c in b.checked_derived.items() if _reads_scales(b, c)}
    readers |= {f"grade:{path}" for path, s in _walk(b.p.scales, "") if s.grade_table is not None}
    cp.scale_readers = frozenset(readers)
    cp.reads_scales = bool(readers)
    warnings: list[PolicyIssue] = []
    ranges = _Ranges(b)
    for table, checks, kind in b.pending_tables:
        if kind.startswith("grade:"):
            table.domains = [_computed(ranges.total(kind.removeprefix("grade:")))]
        else:
            table.domains = [_domain(b, c, ranges) for c in checks if c is not None]
        for f in completeness(table):
            issue = _finding_issue(b, table, f, kind)
            if f.error:
                b.issues.add(issue)
            else:
                warnings.append(issue)
    cp.warnings = tuple(warnings)


def _reads_scales(b: _Builder, c: Checked, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``c`` reads a grade or total, directly or through derived values."""
    if c.scales:
        return True
    for d in c.derived - seen:
        inner = b.checked_derived.get(d)
        if inner is not None and _reads_scales(b, inner, seen | {d}):
            return True
    return False


def _finding_issue(b: _Builder, table: TableCode, f: Finding, kind: str) -> PolicyIssue:
    doc = table.doc_path
    band = kind != "table"
    noun = "grade" if kind.startswith("grade:") else ("band" if band else "row")

    def at(k: int) -> PathKey:
        return (*doc, str(k)) if band else (*doc, "rows", str(k))

    def name(k: int) -> str:
        if kind.startswith("grade:"):
            return f"grade {k} (`{table.output_labels[k]}`)"
        return f"{noun} {k}"

    undeclared = "" if f.error else " (its range is not declared, so this is a warning)"
    if f.kind == "gap":
        what = "no grade covers the total" if kind.startswith("grade:") else f"no {noun} covers"
        return PolicyIssue(
            "FA410",
            f"{what} {f.example}{undeclared}",
            b.smap.span(doc),
            hint="add a catch-all last" if band else f"add a {noun} for it (or a catch-all `-`)",
        )
    if f.kind == "overlap":
        i, j = f.rows
        return PolicyIssue(
            "FA411",
            f"rows {i} and {j} both match {f.example} under hit policy `unique`{undeclared}",
            b.smap.span(at(j)),
            hint="narrow one of them, or use `hit: first` if the order decides",
        )
    if f.kind == "shadowed":
        k, first = f.rows
        return PolicyIssue(
            "FA412",
            f"{name(k)} never applies: every value it matches is matched first by an earlier"
            f" {noun} (e.g. {f.example}, matched by {name(first)})",
            b.smap.span(at(k)),
            hint="remove it, or move it before the entries that cover it",
        )
    if f.kind == "never":
        (k,) = f.rows
        return PolicyIssue(
            "FA412",
            f"{name(k)} matches no value its inputs can take",
            b.smap.span(at(k)),
            hint="check its bounds against the input's declared values",
        )
    return PolicyIssue(
        "FA414",
        f"the table has too many combinations to check for gaps ({f.example})",
        b.smap.span(doc),
        hint="split it into smaller tables",
    )


def _domain(b: _Builder, c: Checked, ranges: _Ranges) -> Domain:
    typ = c.type
    if typ.kind == "level":
        return Domain(tuple(float(i) for i in range(len(typ.levels))), typ.levels)
    if typ.kind == "bool":
        return Domain((0.0, 1.0), ("false", "true"))
    ir = c.ir
    if ir.op == "col":
        a = b.p.attributes[ir.name]
        if a.values is not None:
            return Domain(tuple(sorted(set(a.values))))
        lo, hi = a.min, a.max
        if isinstance(lo, dt.date):
            lo = float((lo - EPOCH).days)
        if isinstance(hi, dt.date):
            hi = float((hi - EPOCH).days)
        return Domain(
            lo=-math.inf if lo is None else float(lo),
            hi=math.inf if hi is None else float(hi),
            integer=a.type in ("int", "date"),
        )
    if ir.op == "derived" and ir.name.startswith("@total:"):
        return _computed(ranges.total(ir.name.removeprefix("@total:")))
    return Domain(declared=False)


def _computed(d: Domain) -> Domain:
    return Domain(d.values, d.labels, d.lo, d.hi, d.integer, d.declared, computed=True)


class _Ranges:
    """The totals each scale can reach: a finite set when small, else bounds."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.memo: dict[str, Domain] = {}
        self.docs = dict(_walk(b.p.scales, ""))

    def total(self, path: str) -> Domain:
        if path not in self.memo:
            self.memo[path] = Domain(declared=False)  # a cycle reads as unknown
            self.memo[path] = self._total(path)
        return self.memo[path]

    def _total(self, path: str) -> Domain:
        scale = self.docs[path]
        parts: list[Domain] = [self._indicator(ind) for ind in scale.indicators.values()]
        for name, sub in scale.scales.items():
            d = self.total(f"{path}.{name}")
            parts.append(_scaled(d, sub.weight))
        return _sum(parts)

    def _indicator(self, ind: M.Indicator) -> Domain:
        if ind.bands is not None:
            pts = [bd.points for bd in ind.bands]
        elif ind.lookup is not None:
            pts = list(ind.lookup.values())
        elif ind.table is not None:
            pts = [float(r.output) for r in ind.table.rows if not isinstance(r.output, str)]
        elif isinstance(ind.points, int | float):
            pts = [float(ind.points)]
        elif (d := self._attribute(str(ind.points).strip())) is not None:
            if ind.min_points is not None or ind.max_points is not None:
                d = Domain(lo=d.lo, hi=d.hi, declared=False)
            return _scaled(d, ind.weight)
        else:
            lo = -math.inf if ind.min_points is None else ind.min_points
            hi = math.inf if ind.max_points is None else ind.max_points
            d = Domain(lo=lo, hi=hi, declared=math.isfinite(lo) and math.isfinite(hi))
            return _scaled(d, ind.weight)
        capped = [
            min(
                max(p, -math.inf if ind.min_points is None else ind.min_points),
                math.inf if ind.max_points is None else ind.max_points,
            )
            for p in pts
        ]
        return _scaled(Domain(tuple(sorted(set(capped)))), ind.weight)

    def _attribute(self, name: str) -> Domain | None:
        """The values of a points formula that reads one number attribute as it is."""
        a = self.b.p.attributes.get(name)
        if a is None or a.type not in ("int", "float"):
            return None
        if a.values is not None:
            return Domain(tuple(sorted(set(a.values))))
        lo, hi = a.min, a.max
        if not isinstance(lo, int | float) or not isinstance(hi, int | float):
            return Domain(
                lo=-math.inf if not isinstance(lo, int | float) else float(lo),
                hi=math.inf if not isinstance(hi, int | float) else float(hi),
                declared=False,
            )
        if a.type == "int" and hi - lo <= 1000:
            return Domain(tuple(float(v) for v in range(math.ceil(lo), math.floor(hi) + 1)))
        return Domain(lo=float(lo), hi=float(hi), declared=True)


def _micro(x: float) -> float:
    return math.floor(x * 1e6 + 0.5) / 1e6


def _scaled(d: Domain, w: float) -> Domain:
    if w == 1.0:
        return d
    if d.values is not None:
        return Domain(tuple(sorted({_micro(v * w) for v in d.values})))
    lo, hi = sorted((d.lo * w, d.hi * w)) if w else (0.0, 0.0)
    return Domain(lo=lo, hi=hi, declared=d.declared)


def _sum(parts: list[Domain]) -> Domain:
    acc: set[float] | None = {0.0}
    lo = hi = 0.0
    declared = True
    for d in parts:
        if d.values is not None:
            lo, hi = lo + min(d.values), hi + max(d.values)
            if acc is not None:
                acc = {_micro(a + v) for a in acc for v in d.values}
                if len(acc) > _MAX_TOTALS:
                    acc = None
        else:
            lo, hi, acc = lo + d.lo, hi + d.hi, None
            declared = declared and d.declared
    if acc is not None:
        return Domain(tuple(sorted(acc)))
    # Bounds only: values inside them may be unreachable, so gaps there are warnings.
    return Domain(lo=lo, hi=hi, declared=False)


def _walk(scales: Any, prefix: str) -> Iterator[tuple[str, M.Scale]]:
    for name, s in scales.items():
        yield f"{prefix}{name}", s
        yield from _walk(s.scales, f"{prefix}{name}.")


def _indicators_under(scale: M.Scale, path: str) -> Iterator[str]:
    for name in scale.indicators:
        yield f"{path}.{name}"
    for name, sub in scale.scales.items():
        yield from _indicators_under(sub, f"{path}.{name}")


def _value_deps(b: _Builder, docs: dict[str, M.Scale]) -> dict[str, list[str]]:
    """The graph of values: what each indicator, derived value, total and grade reads."""
    graph: dict[str, list[str]] = {}

    def of_checks(cs: Sequence[Checked]) -> list[str]:
        out: list[str] = []
        for c in cs:
            out += sorted(c.scales)
            out += [f"derived:{d}" for d in sorted(c.derived)]
        return out

    for part, cs in b.part_checks.items():
        kind = part.split(":", 1)[0]
        if kind == "indicator":
            graph[part] = of_checks(cs)
        elif kind == "grade":
            graph[f"table:{part.removeprefix('grade:')}"] = of_checks(cs)
    for name, c in b.checked_derived.items():
        graph[f"derived:{name}"] = of_checks([c])
    for path, scale in docs.items():
        graph[f"total:{path}"] = [f"indicator:{path}.{i}" for i in scale.indicators] + [
            f"total:{path}.{s}" for s in scale.scales
        ]
        if scale.grades:
            graph[f"grade:{path}"] = [
                f"table:{path}" if scale.grade_table is not None else f"total:{path}"
            ]
    return graph


def _cycles(b: _Builder) -> bool:
    """Report each cycle of values through grades and totals (FA422); whether there was one."""
    docs = dict(_walk(b.p.scales, ""))
    graph = _value_deps(b, docs)
    state: dict[str, int] = {}
    stack: list[str] = []
    found = False

    def visit(node: str) -> None:
        nonlocal found
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                if any(n.split(":", 1)[0] in ("grade", "total") for n in cycle):
                    found = True
                    b.issue(
                        "FA422",
                        "values refer to each other in a cycle: "
                        + " -> ".join(_node_text(n) for n in cycle),
                        _node_doc(cycle[0], docs),
                        hint="a grade or total cannot depend on itself; read another scale",
                    )
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def _node_text(node: str) -> str:
    kind, _, name = node.partition(":")
    return {
        "indicator": "indicator",
        "derived": "derived",
        "total": "total of",
        "grade": "grade of",
        "table": "grade table of",
    }[kind] + f" `{name}`"


def _node_doc(node: str, docs: dict[str, M.Scale]) -> PathKey:
    kind, _, name = node.partition(":")
    if kind == "derived":
        return ("derived", name)
    if kind == "indicator":
        scale, ind = name.rsplit(".", 1)
        return (*_scale_doc(scale), "indicators", ind)
    doc = _scale_doc(name)
    if kind == "table":
        return (*doc, "grade_table")
    if kind == "grade" and docs[name].grades:
        return (*doc, "grades")
    return doc


def _scale_doc(path: str) -> PathKey:
    parts = path.split(".")
    out: list[str] = ["scales", parts[0]]
    for p in parts[1:]:
        out += ["scales", p]
    return tuple(out)


def _expand_reads(b: _Builder) -> None:
    """Follow every read of a grade or total to the attributes behind it (no cycles remain)."""
    from fairalloc._compiler import ReadPath

    docs = dict(_walk(b.p.scales, ""))
    memo: dict[str, list[ReadPath]] = {}

    def through(c: Checked, via: tuple[str, ...]) -> list[ReadPath]:
        out: list[ReadPath] = []
        for s in sorted(c.scales):
            out += [ReadPath(r.attribute, (*via, s, *r.via)) for r in value(s)]
        for d in sorted(c.derived):
            inner = b.checked_derived.get(d)
            if inner is not None:
                out += through(inner, (*via, d))
        return out

    def part(name: str) -> list[ReadPath]:
        if name not in memo:
            memo[name] = []
            out = list(b.reads.get(name, ()))
            for c in b.part_checks.get(name, ()):
                out += [r for r in through(c, ()) if r not in out]
            memo[name] = out
        return memo[name]

    def value(key: str) -> list[ReadPath]:
        kind, _, path = key.partition(":")
        out: list[ReadPath] = []
        if kind == "grade" and docs[path].grade_table is not None:
            return [ReadPath(r.attribute, (f"table:{path}", *r.via)) for r in part(key)]
        if kind == "grade":
            return [
                ReadPath(r.attribute, (f"total:{path}", *r.via)) for r in value(f"total:{path}")
            ]
        for ind in _indicators_under(docs[path], path):
            for r in part(f"indicator:{ind}"):
                rp = ReadPath(r.attribute, (f"indicator:{ind}", *r.via))
                if rp not in out:
                    out.append(rp)
        return out

    for name in list(b.part_checks):
        paths = b.reads.setdefault(name, [])
        for r in part(name):
            if r not in paths:
                paths.append(r)
