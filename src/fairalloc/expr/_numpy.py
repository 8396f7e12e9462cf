"""Compilation of typed expressions (:class:`~fairalloc.expr._check.IR`) into numpy kernels.

A kernel takes a :class:`Frame` (a chunk of residents' columns) and returns whole columns:

* numbers, dates and levels come back as float64 arrays (or a Python float for a constant),
  where NaN marks a resident for whom the value is undefined (a division by zero, or an
  undefined operand on the branch that resident takes);
* conditions come back as a pair ``(values, invalid)``: a bool array and either ``None`` or a
  bool mask of residents for whom the condition is undefined.

Undefinedness follows the language's lazy semantics exactly: ``a and b`` is undefined only
where ``a`` is undefined, or ``a`` holds and ``b`` is undefined; a conditional only where its
condition, or the branch taken, is undefined. The engine turns any undefined final value into an
:class:`~fairalloc.errors.EvaluationError`; the plain-Python reference evaluator in the tests
implements the same rules one resident at a time.

Whether a value *can* be undefined is known statically (only arithmetic introduces NaN:
``/`` by zero, and ``+ - *`` after an overflow to infinity), so reading columns and comparing
them pays for no NaN checks at all.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fairalloc.expr._check import IR

__all__ = [
    "BoolArray",
    "CondKernel",
    "FloatArray",
    "Frame",
    "NumKernel",
    "compile_cond",
    "compile_num",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
NumValue = FloatArray | float
CondValue = tuple[BoolArray | bool, BoolArray | None]
NumKernel = Callable[["Frame"], NumValue]
CondKernel = Callable[["Frame"], CondValue]

_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(slots=True)
class Frame:
    """A chunk of residents as columns, with a cache for derived values.

    Attributes:
        n: Number of residents in the chunk.
        columns: Encoded columns: float64 numbers, bool flags, int16 level codes, int64 days.
        derived: The policy's derived values, evaluated at most once per frame: for each, its
            kind, its kernel and (optionally) the derived values it reads.
    """

    n: int
    columns: Mapping[str, np.ndarray]
    derived: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    _floats: dict[str, FloatArray] = field(default_factory=dict)

    def raw(self, name: str) -> np.ndarray:
        """The encoded column ``name`` as stored."""
        return self.columns[name]

    def floats(self, name: str) -> FloatArray:
        """Column ``name`` as float64 (level codes and days included), converted once."""
        arr = self._floats.get(name)
        if arr is None:
            col = self.columns[name]
            arr = col if col.dtype == np.float64 else col.astype(np.float64)
            self._floats[name] = arr
        return arr

    def value_of(self, name: str) -> Any:
        """The value of derived value ``name`` on this frame (number array or condition)."""
        cache = self._cache
        if name in cache:
            return cache[name]
        # The derived values it reads first, deepest first: then no kernel waits on another,
        # and a chain of derived values of any length needs no recursion.
        stack = [name]
        while stack:
            top = stack[-1]
            if top in cache:
                stack.pop()
                continue
            entry = self.derived[top]
            needs = [d for d in (entry[2] if len(entry) > 2 else ()) if d not in cache]
            if needs:
                stack.extend(needs)
                continue
            cache[top] = entry[1](self)
            stack.pop()
        return cache[name]


def compile_num(ir: IR, derived_nan: Mapping[str, bool] | None = None) -> tuple[NumKernel, bool]:
    """Compile a number-, date- or level-valued expression.

    Args:
        ir: The checked expression.
        derived_nan: For each derived value already compiled, whether it may be undefined.

    Returns:
        The kernel, and whether its result may contain NaN (undefined values).
    """
    return _Compiler(derived_nan or {}).num(ir)


def compile_cond(ir: IR, derived_nan: Mapping[str, bool] | None = None) -> tuple[CondKernel, bool]:
    """Compile a condition (see :func:`compile_num` for the arguments).

    Returns:
        The kernel, and whether its result may have undefined entries.
    """
    return _Compiler(derived_nan or {}).cond(ir)


def _const(value: float) -> NumKernel:
    return lambda _f: value


class _Compiler:
    def __init__(self, derived_nan: Mapping[str, bool]) -> None:
        self.derived_nan = derived_nan

    # -- numbers ----------------------------------------------------------------------
    def num(self, ir: IR) -> tuple[NumKernel, bool]:
        op = ir.op
        if op == "const":
            assert isinstance(ir.value, float | int)
            return _const(float(ir.value)), False
        if op == "col":
            name = ir.name
            return (lambda f: f.floats(name)), False
        if op == "derived":
            name = ir.name
            return (lambda f: f.value_of(name)), self.derived_nan.get(name, True)
        if op in ("+", "-", "*", "/", "//"):
            return self.arith(ir)
        if op == "neg":
            k, nan = self.num(ir.args[0])
            return (lambda f: -k(f)), nan
        if op == "if":
            return self.num_if(ir)
        return self.func(ir)

    def arith(self, ir: IR) -> tuple[NumKernel, bool]:
        # Whether the operands may be undefined does not matter: the result may be in any case.
        (ka, _), (kb, _) = self.num(ir.args[0]), self.num(ir.args[1])
        if ir.op == "/":

            def div(f: Frame) -> NumValue:
                a, b = ka(f), kb(f)
                if isinstance(b, float):
                    return a / b if b != 0.0 else a * np.nan
                out = np.asarray(np.divide(a, b))  # 0-d when both are: `k / (k if c else k)`
                out[b == 0.0] = np.nan
                return out

            return div, True
        if ir.op == "//":

            def floordiv(f: Frame) -> NumValue:
                # floor(a / b), exactly what `floor(a / b)` computes; undefined where b is 0.
                a, b = ka(f), kb(f)
                if isinstance(b, float):
                    return np.floor(a / b) if b != 0.0 else a * np.nan
                out = np.floor(np.divide(a, b))
                out[b == 0.0] = np.nan
                return out

            return floordiv, True
        fn = {"+": operator.add, "-": operator.sub, "*": operator.mul}[ir.op]
        # inf - inf and 0 * inf are NaN: after an overflow, any arithmetic may be undefined.
        return (lambda f: fn(ka(f), kb(f))), not (_is_const(ir.args[0]) and _is_const(ir.args[1]))

    def num_if(self, ir: IR) -> tuple[NumKernel, bool]:
        kc, nc = self.cond(ir.args[0])
        (kt, nt), (ko, no) = self.num(ir.args[1]), self.num(ir.args[2])

        def choose(f: Frame) -> NumValue:
            c, inv = kc(f)
            out = np.where(c, kt(f), ko(f)).astype(np.float64, copy=False)
            if inv is not None:
                out = np.where(inv, np.nan, out)
            return out

        return choose, nc or nt or no

    def func(self, ir: IR) -> tuple[NumKernel, bool]:
        compiled = [self.num(a) for a in ir.args]
        ks = [k for k, _ in compiled]
        nan = any(n for _, n in compiled)
        op = ir.op
        if op in ("min", "max"):
            red = np.minimum if op == "min" else np.maximum

            def minmax(f: Frame) -> NumValue:
                out = ks[0](f)
                for k in ks[1:]:
                    out = red(out, k(f))
                return out

            return minmax, nan
        if op == "clip":
            kx, klo, khi = ks
            return (lambda f: np.minimum(np.maximum(kx(f), klo(f)), khi(f))), nan
        if op == "abs":
            return (lambda f: np.abs(ks[0](f))), nan
        if op == "floor":
            return (lambda f: np.floor(ks[0](f))), nan
        if op == "ceil":
            return (lambda f: np.ceil(ks[0](f))), nan
        if op == "round":
            digits = ir.args[1].value if len(ir.args) == 2 else 0.0
            scale = 10.0 ** float(digits or 0.0)  # type: ignore[arg-type]
            # Half away from zero is what people expect of points; defined via floor so that it
            # is exactly reproducible: round(x, n) = sign(x) * floor(|x| * 10^n + 0.5) / 10^n.
            return (
                lambda f: np.copysign(np.floor(np.abs(ks[0](f)) * scale + 0.5) / scale, ks[0](f))
            ), nan
        raise NotImplementedError(op)  # pragma: no cover - the checker admits no other

    # -- conditions -------------------------------------------------------------------
    def cond(self, ir: IR) -> tuple[CondKernel, bool]:
        op = ir.op
        if op == "const":
            value = bool(ir.value)
            return (lambda _f: (value, None)), False
        if op == "col":
            name = ir.name
            return (lambda f: (f.raw(name), None)), False
        if op == "derived":
            name = ir.name
            return (lambda f: f.value_of(name)), self.derived_nan.get(name, True)
        if op == "not":
            k, inv = self.cond(ir.args[0])
            return (lambda f: _not(k(f))), inv
        if op in ("and", "or"):
            return self.boolop(ir)
        if op in _CMP:
            return self.compare(ir)
        if op == "in":
            return self.member(ir)
        if op == "range":
            return self.range_(ir)
        if op == "if":
            return self.cond_if(ir)
        raise NotImplementedError(op)  # pragma: no cover

    def boolop(self, ir: IR) -> tuple[CondKernel, bool]:
        parts = [self.cond(a) for a in ir.args]
        ks = [k for k, _ in parts]
        may = any(n for _, n in parts)
        is_and = ir.op == "and"

        def combine(f: Frame) -> CondValue:
            val, inv = ks[0](f)
            for k in ks[1:]:
                v2, inv2 = k(f)
                if inv2 is not None:
                    # b's undefinedness matters only where b is evaluated: where a is
                    # true (and) or false (or).
                    reached = val if is_and else np.logical_not(val)
                    inv2 = np.logical_and(reached, inv2)
                    inv = inv2 if inv is None else np.logical_or(inv, inv2)
                val = np.logical_and(val, v2) if is_and else np.logical_or(val, v2)
            return val, inv

        return combine, may

    def compare(self, ir: IR) -> tuple[CondKernel, bool]:
        a, b = ir.args
        fn = _CMP[ir.op]
        if a.type.kind == "bool":
            (ka, na), (kb, nb) = self.cond(a), self.cond(b)

            def cmp_bool(f: Frame) -> CondValue:
                (va, ia), (vb, ib) = ka(f), kb(f)
                return fn(va, vb), _or(ia, ib)

            return cmp_bool, na or nb
        fast = self.level_col_vs_const(a, b, fn) or self.int_col_vs_const(a, b, fn)
        if fast is not None:
            return fast, False
        (ka2, na2), (kb2, nb2) = self.num(a), self.num(b)
        if not (na2 or nb2):
            return (lambda f: (fn(ka2(f), kb2(f)), None)), False

        def cmp_nan(f: Frame) -> CondValue:
            va, vb = ka2(f), kb2(f)
            return fn(va, vb), _or(_isnan(va), _isnan(vb))

        return cmp_nan, True

    @staticmethod
    def level_col_vs_const(a: IR, b: IR, fn: Callable[[Any, Any], Any]) -> CondKernel | None:
        # The hot path of category rules: compare int16 codes without converting them.
        if a.type.kind == "level" and a.op == "col" and b.op == "const":
            name, code = a.name, int(b.value)  # type: ignore[arg-type]
            return lambda f: (fn(f.raw(name), code), None)
        if b.type.kind == "level" and b.op == "col" and a.op == "const":
            name, code = b.name, int(a.value)  # type: ignore[arg-type]
            return lambda f: (fn(code, f.raw(name)), None)
        return None

    @staticmethod
    def int_col_vs_const(a: IR, b: IR, fn: Callable[[Any, Any], Any]) -> CondKernel | None:
        # A number column against a whole-number constant. Integer columns hold whole numbers
        # within ±2**53 (exact as floats), so comparing the integers themselves is exactly the
        # float comparison, without converting the column; a float column is compared as is.
        if a.type.kind != "number" or a.op != "col" or b.op != "const":
            return None
        value = b.value
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        c = float(value)
        if not (c.is_integer() and abs(c) <= 2.0**53):
            return None
        name, whole = a.name, int(c)

        def cmp_int(f: Frame) -> CondValue:
            col = f.raw(name)
            if col.dtype.kind in "iu":
                return fn(col, whole), None
            return fn(f.floats(name), c), None

        return cmp_int

    def member(self, ir: IR) -> tuple[CondKernel, bool]:
        item = ir.args[0]
        assert isinstance(ir.value, frozenset)
        values = sorted(ir.value)
        negated = ir.negated
        if item.type.kind == "level" and item.op == "col":
            table = np.zeros(len(item.type.levels), dtype=bool)
            table[[int(v) for v in values]] = True
            if negated:
                table = ~table
            name = item.name
            return (lambda f: (table[f.raw(name)], None)), False
        k, nan = self.num(item)
        arr = np.asarray(values, dtype=np.float64)

        def isin(f: Frame) -> CondValue:
            v = k(f)
            out = np.isin(v, arr, invert=negated)
            return out, (_isnan(v) if nan else None)

        return isin, nan

    def range_(self, ir: IR) -> tuple[CondKernel, bool]:
        (kx, nx), (kl, nl), (kh, nh) = (self.num(a) for a in ir.args)
        negated = ir.negated

        def within(f: Frame) -> CondValue:
            x, lo, hi = kx(f), kl(f), kh(f)
            out = np.logical_and(lo <= x, x <= hi)
            if negated:
                out = np.logical_not(out)
            inv = _or(_or(_isnan(x), _isnan(lo)), _isnan(hi)) if (nx or nl or nh) else None
            return out, inv

        return within, nx or nl or nh

    def cond_if(self, ir: IR) -> tuple[CondKernel, bool]:
        (kc, nc), (kt, nt), (ko, no) = (self.cond(a) for a in ir.args)

        def choose(f: Frame) -> CondValue:
            (c, ic), (t, it), (o, io) = kc(f), kt(f), ko(f)
            val = np.where(c, t, o)
            inv = None
            if it is not None or io is not None:
                inv = np.where(c, False if it is None else it, False if io is None else io)
            return val, _or(ic, inv)

        return choose, nc or nt or no


def _is_const(ir: IR) -> bool:
    """Whether ``ir`` is a constant (arithmetic on constants alone cannot overflow to NaN)."""
    return ir.op == "const"


def _not(v: CondValue) -> CondValue:
    return np.logical_not(v[0]), v[1]


def _or(a: BoolArray | None, b: BoolArray | None) -> BoolArray | None:
    if a is None:
        return b
    if b is None:
        return a
    return np.logical_or(a, b)


def _isnan(v: NumValue) -> BoolArray | None:
    if isinstance(v, float):
        return None if v == v else np.True_  # type: ignore[return-value]
    return np.isnan(v)
