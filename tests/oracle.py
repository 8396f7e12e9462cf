"""A slow, plain-Python reference evaluator of fairalloc's semantics, one resident at a time.

It reads the policy *document* (not the compiled kernels) and the residents as plain records,
and implements every rule of the language as documented: lazy ``and``/``or``/conditionals,
undefined values from division by zero, half-up rounding, bands tried in order, micro-point
arithmetic, the score methods and the ranking order. The vectorized engine must agree with it
exactly on generated inputs. It shares only the parser (syntax) with the library.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from fairalloc.expr import _ast as A
from fairalloc.expr._parser import parse
from fairalloc.policy._model import Band, DecisionTable, Grade, Indicator, Policy, Scale

MICRO = 1_000_000
EPOCH = dt.date(1970, 1, 1)


class Undefined(Exception):
    """Raised when a final value (condition, points) is undefined for a resident."""


class _U:
    def __repr__(self) -> str:
        return "UNDEF"


UNDEF: Any = _U()


@dataclass(frozen=True)
class Level:
    levels: tuple[str, ...]
    name: str

    @property
    def code(self) -> int:
        return self.levels.index(self.name)


def micro(x: float) -> int:
    return math.floor(x * float(MICRO) + 0.5)


def lottery_key(seed: str, rid: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(rid.encode(), key=seed.encode(), digest_size=8).digest(), "big"
    )


def _param_value(policy: Policy, name: str, as_of: dt.date | None) -> Any:
    p = policy.parameters[name]
    value = p.value
    for dv in p.values or ():
        if as_of is None or dv.from_ <= as_of:
            value = dv.value
    return value


class Resident:
    """Evaluates expressions for one resident (a dict of decoded values)."""

    def __init__(self, policy: Policy, record: dict[str, Any], as_of: dt.date | None) -> None:
        self.p = policy
        self.rec = record
        self.as_of = as_of
        self.derived_cache: dict[str, Any] = {}
        self.scales = _Scales(policy, self)

    # -- values -----------------------------------------------------------------------
    def name(self, name: str) -> Any:
        attrs = self.p.attributes
        if name in attrs:
            a = attrs[name]
            v = self.rec[name]
            if a.type in ("category", "ordinal"):
                return Level(tuple(a.levels or ()), v)
            if a.type == "date":
                return float((v - EPOCH).days)
            if a.type in ("int", "float"):
                return float(v)
            return bool(v)
        if name in self.p.parameters:
            v = _param_value(self.p, name, self.as_of)
            if isinstance(v, bool):
                return v
            if isinstance(v, int | float):
                return float(v)
            if isinstance(v, dt.date):
                return float((v - EPOCH).days)
            return v  # a level name or a list
        if name in self.p.derived:
            if name not in self.derived_cache:
                d = self.p.derived[name]
                if d.table is not None:
                    out = d.table.rows[self.table_row(d.table)].output
                    value: Any = Level(tuple(d.levels), str(out)) if d.levels else float(out)
                else:
                    assert d.expr is not None
                    value = self.eval(parse(d.expr))
                self.derived_cache[name] = value
            return self.derived_cache[name]
        return name  # a bare level name

    def eval(self, node: A.Node) -> Any:
        match node:
            case A.Literal(value=v):
                return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            case A.Name(id=n):
                return self.name(n)
            case A.Unary(op="not", operand=o):
                v = self.eval(o)
                return UNDEF if v is UNDEF else (not v)
            case A.Unary(op="-", operand=o):
                v = self.eval(o)
                return UNDEF if v is UNDEF else -v
            case A.Binary(op=op, left=left, right=right):
                return self.arith(op, self.eval(left), self.eval(right))
            case A.BoolOp(op=op, values=values):
                for sub in values:
                    v = self.eval(sub)
                    if v is UNDEF:
                        return UNDEF
                    if op == "and" and not v:
                        return False
                    if op == "or" and v:
                        return True
                return op == "and"
            case A.Compare(ops=ops, operands=operands):
                # a < b < c  ==  (a < b) and (b < c), lazily.
                for i, op in enumerate(ops):
                    r = self.compare(op, self.eval(operands[i]), self.eval(operands[i + 1]))
                    if r is UNDEF:
                        return UNDEF
                    if not r:
                        return False
                return True
            case A.InOp(item=item, container=c, negated=neg):
                return self.member(self.eval(item), c, neg)
            case A.IfExp(cond=c, then=t, otherwise=o):
                cv = self.eval(c)
                if cv is UNDEF:
                    return UNDEF
                return self.eval(t) if cv else self.eval(o)
            case A.Call(func=f, args=args):
                return self.call(f, args)
        raise AssertionError(node)

    @staticmethod
    def arith(op: str, a: Any, b: Any) -> Any:
        if a is UNDEF or b is UNDEF:
            return UNDEF
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "//":
            if b == 0:
                return UNDEF
            q = a / b
            r = float(math.floor(q)) if math.isfinite(q) else q
        else:
            if b == 0:
                return UNDEF
            r = a / b
        return UNDEF if r != r else r

    @staticmethod
    def _pair(a: Any, b: Any) -> tuple[Any, Any]:
        if isinstance(a, Level) and isinstance(b, str):
            b = Level(a.levels, b)
        if isinstance(b, Level) and isinstance(a, str):
            a = Level(b.levels, a)
        if isinstance(a, Level):
            return a.code, b.code
        return a, b

    def compare(self, op: str, a: Any, b: Any) -> Any:
        if a is UNDEF or b is UNDEF:
            return UNDEF
        a, b = self._pair(a, b)
        if isinstance(a, float) and (a != a or b != b):
            return UNDEF
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]

    def member(self, item: Any, c: A.Node, negated: bool) -> Any:
        if item is UNDEF:
            return UNDEF
        if isinstance(c, A.RangeLit):
            lo, hi = self.eval(c.low), self.eval(c.high)
            if UNDEF in (lo, hi) or item != item:
                return UNDEF
            r = lo <= item <= hi
        else:
            if isinstance(c, A.ListLit):
                values = [self.eval(x) for x in c.items]
            else:
                values = self.name(c.id)  # type: ignore[attr-defined]
            if isinstance(item, Level):
                r = item.name in [v.name if isinstance(v, Level) else v for v in values]
            else:
                if item != item:
                    return UNDEF
                r = item in [float(v) for v in values]
        return (not r) if negated else r

    def call(self, f: str, args: tuple[A.Node, ...]) -> Any:
        if f == "grade":
            return self.scales.grade(str(args[0].value))  # type: ignore[attr-defined]
        if f == "total":
            return self.scales.total(str(args[0].value)) / MICRO  # type: ignore[attr-defined]
        if f == "date":
            return float((dt.date.fromisoformat(args[0].value) - EPOCH).days)  # type: ignore[attr-defined]
        vals = [self.eval(a) for a in args]
        if any(v is UNDEF or v != v for v in vals):
            return UNDEF
        if f == "min":
            return min(vals)
        if f == "max":
            return max(vals)
        if f == "clip":
            return min(max(vals[0], vals[1]), vals[2])
        if f == "abs":
            return abs(vals[0])
        if f == "floor":
            return float(math.floor(vals[0])) if math.isfinite(vals[0]) else vals[0]
        if f == "ceil":
            return float(math.ceil(vals[0])) if math.isfinite(vals[0]) else vals[0]
        if f == "round":
            scale = 10.0 ** (vals[1] if len(vals) == 2 else 0.0)
            x = vals[0]
            if not math.isfinite(x):
                return x
            return math.copysign(math.floor(abs(x) * scale + 0.5) / scale, x)
        raise AssertionError(f)

    # -- final values -----------------------------------------------------------------
    def condition(self, text: str | bool) -> bool:
        v = text if isinstance(text, bool) else self.eval(parse(str(text)))
        if v is UNDEF:
            raise Undefined(str(text))
        if isinstance(v, float):
            raise AssertionError("condition is a number")
        return bool(v)

    def number(self, text: str | float) -> float:
        v = float(text) if isinstance(text, int | float) else self.eval(parse(text))
        if isinstance(v, bool):
            raise AssertionError("number is a bool")
        if isinstance(v, Level):
            return float(v.code)
        if v is UNDEF or not math.isfinite(v):
            raise Undefined(str(text))
        return v

    def raw(self, text: str) -> Any:
        v = self.eval(parse(text))
        if v is UNDEF:
            raise Undefined(text)
        return v

    def table_row(self, table: DecisionTable) -> int:
        """The row of ``table`` that applies, by its hit policy (Undefined if none, or two)."""
        values = {name: self.raw(text) for name, text in table.inputs.items()}
        hits = [
            k
            for k, row in enumerate(table.rows)
            if all(_cell_holds(row.cells.get(name), v) for name, v in values.items())
        ]
        if not hits or (table.hit == "unique" and len(hits) > 1):
            raise Undefined("no single row")
        return hits[0]


def _scalar(item: Any, v: Any) -> Any:
    """A cell's value in the form of the input's value ``v``."""
    if isinstance(v, Level):
        return v.levels.index(str(item).strip())
    if isinstance(v, bool):
        return item if isinstance(item, bool) else str(item).strip().lower() == "true"
    return float(item)


def _cell_holds(cell: Any, v: Any) -> bool:
    """Whether a decision-table cell, as written, holds for the value ``v``."""
    if cell is None or (isinstance(cell, str) and cell.strip() == "-"):
        return True
    x = v.code if isinstance(v, Level) else v
    if isinstance(v, float) and v != v:
        raise Undefined("undefined table input")
    if isinstance(cell, list):
        return any(x == _scalar(c, v) for c in cell)
    if isinstance(cell, str):
        text = cell.strip()
        for op in ("<=", ">=", "!=", "==", "<", ">"):
            if text.startswith(op):
                y = _scalar(text[len(op) :], v)
                return {
                    "<=": x <= y,
                    ">=": x >= y,
                    "!=": x != y,
                    "==": x == y,
                    "<": x < y,
                    ">": x > y,
                }[op]
        if ".." in text:
            lo, hi = text.split("..", 1)
            return _scalar(lo, v) <= x <= _scalar(hi, v)
    return bool(x == _scalar(cell, v))


class _Scales:
    """Every indicator's points and every scale's total and grade, computed when first read."""

    def __init__(self, policy: Policy, r: Resident) -> None:
        self.p = policy
        self.r = r
        self.docs: dict[str, Scale] = {}

        def walk(scales: dict[str, Scale], prefix: str) -> None:
            for name, sc in scales.items():
                self.docs[prefix + name] = sc
                walk(sc.scales, prefix + name + ".")

        walk(policy.scales, "")
        self.points: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.grades: dict[str, str] = {}

    def indicator(self, path: str, ind: Indicator) -> int:
        if path in self.points:
            return self.points[path]
        r = self.r
        if ind.points is not None:
            p = r.number(ind.points)
        elif ind.table is not None:
            p = float(ind.table.rows[r.table_row(ind.table)].output)
        else:
            assert ind.of is not None
            v = r.raw(ind.of)
            if ind.bands is not None:
                x = float(v)
                if x != x:
                    raise Undefined(ind.of)
                i = _band(x, ind.bands)
                if i is None:
                    raise Undefined("no band")
                p = ind.bands[i].points
            else:
                assert ind.lookup is not None
                key = ("true" if v else "false") if isinstance(v, bool) else v.name
                p = ind.lookup[key]
        if ind.min_points is not None:
            p = max(p, ind.min_points)
        if ind.max_points is not None:
            p = min(p, ind.max_points)
        w = p * ind.weight if ind.weight != 1.0 else p
        if not abs(w) <= MAX_POINTS:
            raise Undefined("points out of range")
        self.points[path] = micro(w)
        return self.points[path]

    def total(self, path: str) -> int:
        if path in self.totals:
            return self.totals[path]
        s = self.docs[path]
        total = 0
        for name, ind in s.indicators.items():
            total += self.indicator(f"{path}.{name}", ind)
        for name, sub in s.scales.items():
            total += _weighted(self.total(f"{path}.{name}"), sub.weight)
        self.totals[path] = _total(total)
        return total

    def grade(self, path: str) -> Level:
        s = self.docs[path]
        assert s.grades
        names = tuple(g.grade for g in s.grades)
        if path not in self.grades:
            if s.grade_table is not None:
                self.grades[path] = str(s.grade_table.rows[self.r.table_row(s.grade_table)].output)
            else:
                g = _band(self.total(path) / MICRO, s.grades)
                if g is None:
                    raise Undefined("no grade")
                self.grades[path] = names[g]
        return Level(names, self.grades[path])


def _band(x: float, bands: list[Band] | list[Grade]) -> int | None:
    for i, b in enumerate(bands):
        if b.min is not None and not x >= b.min:
            continue
        if b.above is not None and not x > b.above:
            continue
        if b.max is not None and not x <= b.max:
            continue
        if b.below is not None and not x < b.below:
            continue
        return i
    return None


MAX_POINTS = 1e9
MAX_TOTAL = 1e12


def _weighted(total: int, w: float) -> int:
    if w == 1.0:
        return total
    x = total / MICRO * w
    if not abs(x) <= MAX_TOTAL:
        raise Undefined("weighted total out of range")
    return micro(x)


def _total(t: int) -> int:
    if abs(t) > int(MAX_TOTAL) * MICRO:
        raise Undefined("total out of range")
    return t


@dataclass
class OracleResult:
    eligibility: list[bool]
    exclusions: list[bool]
    fired: list[bool]
    points: dict[str, int]
    scales: dict[str, int]
    grades: dict[str, str]
    terms: list[int]
    score: int
    tie_values: list[float]

    @property
    def eligible(self) -> bool:
        return all(self.eligibility) and not any(self.exclusions)


def evaluate_one(
    policy: Policy, record: dict[str, Any], as_of: dt.date | None = None
) -> OracleResult:
    """Evaluate ``policy`` for one resident record; raises Undefined where the engine errs."""
    as_of = as_of if as_of is not None else policy.policy.effective
    r = Resident(policy, record, as_of)
    elig = [r.condition(rule.when) for rule in policy.rules.eligibility]
    excl = [r.condition(rule.when) for rule in policy.rules.exclusions]
    sc = r.scales
    points: dict[str, int] = sc.points
    scales: dict[str, int] = sc.totals

    for path, s in sc.docs.items():
        for name, ind in s.indicators.items():
            sc.indicator(f"{path}.{name}", ind)
        sc.total(path)
        if s.grades:
            sc.grade(path)
    grades = dict(sc.grades)
    fired = []
    prio_total = 0
    for rule in policy.rules.priority:
        f = r.condition(rule.when)
        fired.append(f)
        pts = r.number(rule.points) if f else 0.0
        if not abs(pts) <= MAX_POINTS:
            raise Undefined("points out of range")
        points[f"priority.{rule.id}"] = micro(pts)
        prio_total += micro(pts)
    if policy.score.terms is None:
        term_spec = [(n, 1.0) for n in policy.scales] + (
            [("priority", 1.0)] if policy.rules.priority else []
        )
    else:
        term_spec = [(t.of, t.weight) for t in policy.score.terms]
    method = policy.score.method
    terms = []
    for name, w in term_spec:
        value = _total(prio_total) if name == "priority" else scales[name]
        terms.append(value if method == "product" else _weighted(value, w))
    if method == "sum":
        score = _total(sum(terms))
    elif method == "tiers":
        score = terms[0]
    else:
        prod = 1.0
        for (_, w), t in zip(term_spec, terms, strict=True):
            for _ in range(int(w)):
                prod = prod * (t / MICRO)
        if not abs(prod) <= MAX_TOTAL:
            raise Undefined("score out of range")
        score = micro(prod)
    ties = []
    for tb in policy.ranking.tie_break:
        if tb.by is not None:
            v = r.raw(tb.by)
            v = float(v.code) if isinstance(v, Level) else float(v)
            if v != v:
                raise Undefined(tb.by)
            ties.append(v)
    return OracleResult(elig, excl, fired, points, scales, grades, terms, score, ties)


def rank_all(policy: Policy, ids: list[str], results: list[OracleResult]) -> dict[str, int]:
    """Ranks of eligible residents (1 = best; ties share the best rank of their group)."""
    lottery = next((tb.lottery.seed for tb in policy.ranking.tie_break if tb.lottery), None)
    descending = [tb.order == "desc" for tb in policy.ranking.tie_break if tb.by is not None]

    def key(i: int) -> tuple[Any, ...]:
        res = results[i]
        if policy.score.method == "tiers":
            head: tuple[Any, ...] = tuple(-t for t in res.terms)
        else:
            head = (-res.score,)
        ties = tuple(-v if d else v for v, d in zip(res.tie_values, descending, strict=True))
        tail = (lottery_key(lottery, ids[i]),) if lottery else ()
        return (*head, *(t + 0.0 for t in ties), *tail)

    eligible = [i for i, res in enumerate(results) if res.eligible]
    eligible.sort(key=key)
    ranks: dict[str, int] = {}
    prev = None
    for pos, i in enumerate(eligible, 1):
        k = key(i)
        if k != prev:
            current = pos
            prev = k
        ranks[ids[i]] = current
    return ranks
