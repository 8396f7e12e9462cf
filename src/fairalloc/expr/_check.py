"""Type checking of expressions against a policy's attribute schema.

The checker resolves every name (attribute, parameter, derived value, level of a category),
checks that every operation is applied to values of the right type, and produces a small typed
intermediate form (:class:`IR`) that :mod:`fairalloc.expr._numpy` turns into numpy code. It also
records what each expression reads, the basis of the protected-attribute proofs.

Types: ``number`` (float64; integers are exact up to 2**53), ``bool``, ``level`` (a level of a
category or ordinal attribute, carried as its integer code), ``date`` (days since 1970-01-01)
and, for constants only, ``list``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fairalloc.expr import _ast as A

__all__ = ["IR", "Checked", "ExprTypeError", "Scope", "Type", "check"]

EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Type:
    """The type of an expression value.

    Attributes:
        kind: ``number``, ``bool``, ``level``, ``date`` or ``list``.
        attr: For ``level``: the attribute whose levels these are.
        levels: For ``level``: the levels, in order.
        ordered: For ``level``: whether levels may be compared with ``<`` (ordinal).
    """

    kind: str
    attr: str = ""
    levels: tuple[str, ...] = ()
    ordered: bool = False

    def __str__(self) -> str:
        if self.kind == "level":
            return f"{'ordinal' if self.ordered else 'category'} `{self.attr}`"
        return self.kind


NUMBER = Type("number")
BOOL = Type("bool")
DATE = Type("date")


class ExprTypeError(Exception):
    """A type or name error at ``[start, end)`` of the expression text."""

    def __init__(self, code: str, message: str, start: int, end: int, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.start = start
        self.end = end
        self.hint = hint


# -- intermediate form ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IR:
    """A node of the typed intermediate form.

    ``op`` is one of: ``const`` (``value``), ``col`` (``name``: an attribute), ``derived``
    (``name``: a derived value, or ``@grade:PATH`` / ``@total:PATH`` for a scale's grade or
    total), ``neg``, ``not``, ``+ - * / //``, ``== != < <= > >=``, ``and``, ``or``,
    ``in`` (``value``: a frozenset of constants), ``range`` (``args``: item, low, high), ``if``
    (``args``: cond, then, otherwise), and the functions ``min max clip abs round floor ceil``.
    ``negated`` flips ``in``/``range``.
    """

    op: str
    type: Type
    args: tuple[IR, ...] = ()
    value: float | bool | frozenset[float] | None = None
    name: str = ""
    negated: bool = False
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class Checked:
    """A type-checked expression: its type, its intermediate form and what it reads.

    ``scales`` names the scale values it reads directly, as ``grade:PATH`` or ``total:PATH``.
    """

    type: Type
    ir: IR
    attributes: frozenset[str]
    derived: frozenset[str]
    parameters: frozenset[str]
    scales: frozenset[str] = frozenset()


@dataclass(slots=True)
class Scope:
    """What names an expression may use.

    Attributes:
        attributes: Attribute name → (type, levels or ()), for every readable attribute.
        id_attribute: The resident id's column, which no expression may read.
        parameters: Parameter name → its value in force.
        derived_names: The names of the policy's derived values.
        derived: Derived value name → its checked type, filled in as they are checked.
        derived_resolver: Called with a derived value's name that has not been checked yet;
            checks it (raising :class:`ExprTypeError` on a cycle) and returns its type.
        scales: Scale path → the type of its grade (an ordinal of its grades, in the order
            listed), or None for a scale without grades; ``grade(PATH)`` and ``total(PATH)``
            read them.
    """

    attributes: Mapping[str, Type]
    id_attribute: str
    parameters: Mapping[str, object]
    derived_names: frozenset[str] = frozenset()
    derived: dict[str, Type] = field(default_factory=dict)
    derived_resolver: Callable[[str], Type] | None = None
    scales: Mapping[str, Type | None] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Every name an expression may use, for suggestions."""
        return [*self.attributes, *self.parameters, *self.derived]


def check(tree: A.Node, scope: Scope, expect: Type | None = None) -> Checked:
    """Type-check ``tree`` in ``scope``; ``expect`` (``number`` or ``bool``) is the wanted type.

    Raises:
        ExprTypeError: on the first name or type error.
    """
    c = _Checker(scope)
    ir = c.visit(tree)
    if expect is not None and ir.type.kind != expect.kind:
        hint = ""
        if expect == BOOL and ir.type.kind == "number":
            hint = "a condition must be true or false, e.g. `x > 0`"
        elif expect == NUMBER and ir.type.kind == "bool":
            hint = "turn a condition into points with `P if CONDITION else 0`"
        raise ExprTypeError(
            "FA203",
            f"expected a {expect.kind}, but this is a {ir.type}",
            tree.start,
            tree.end,
            hint,
        )
    return Checked(
        ir.type,
        ir,
        frozenset(c.attrs),
        frozenset(c.derived),
        frozenset(c.params),
        frozenset(c.scales),
    )


class _Checker:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.attrs: set[str] = set()
        self.derived: set[str] = set()
        self.params: set[str] = set()
        self.scales: set[str] = set()

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def fail(node: A.Node, message: str, hint: str = "", code: str = "FA203") -> ExprTypeError:
        return ExprTypeError(code, message, node.start, node.end, hint)

    def need(self, node: A.Node, ir: IR, *kinds: str, what: str) -> None:
        if ir.type.kind not in kinds:
            hint = ""
            if ir.type.kind == "bool" and "number" in kinds:
                hint = "turn a condition into a number with `1 if CONDITION else 0`"
            elif ir.type.kind == "level" and "number" in kinds:
                hint = f"map the levels of `{ir.type.attr}` to points with a `lookup` indicator"
            raise self.fail(node, f"{what} needs {' or '.join(kinds)}, got {ir.type}", hint)

    def const(self, node: A.Node, value: float | bool, typ: Type) -> IR:  # noqa: FBT001
        return IR("const", typ, value=value, start=node.start, end=node.end)

    # -- dispatch ----------------------------------------------------------------------
    def visit(self, node: A.Node, want_level: Type | None = None) -> IR:
        match node:
            case A.Literal(value=v):
                return self.literal(node, v, want_level)
            case A.Name(id=name):
                return self.name(node, name, want_level)
            case A.Unary():
                return self.unary(node)
            case A.Binary():
                return self.binary(node)
            case A.BoolOp():
                return self.boolop(node)
            case A.Compare():
                return self.compare(node)
            case A.InOp():
                return self.in_op(node)
            case A.IfExp():
                return self.ifexp(node, want_level)
            case A.Call():
                return self.call(node)
            case A.ListLit() | A.RangeLit():
                raise self.fail(node, "a list or range can only follow `in`")
        raise self.fail(node, "unsupported expression")  # pragma: no cover

    def literal(
        self,
        node: A.Node,
        v: float | bool | str,  # noqa: FBT001 - the literal's value
        want_level: Type | None,
    ) -> IR:
        if isinstance(v, bool):
            return self.const(node, v, BOOL)
        if isinstance(v, float):
            return self.const(node, v, NUMBER)
        if want_level is not None:
            return self.level_const(node, v, want_level)
        raise self.fail(
            node,
            f"text '{v}' can only stand for a level of a category compared with it",
            "compare it with a category attribute, e.g. `gender == 'female'`",
        )

    def level_const(self, node: A.Node, level: str, typ: Type) -> IR:
        if level not in typ.levels:
            close = difflib.get_close_matches(level, typ.levels, n=1)
            hint = f"did you mean `{close[0]}`?" if close else "levels: " + ", ".join(typ.levels)
            raise self.fail(node, f"`{level}` is not a level of `{typ.attr}`", hint, "FA204")
        return self.const(node, float(typ.levels.index(level)), typ)

    def name(self, node: A.Node, name: str, want_level: Type | None) -> IR:
        s = self.scope
        if name == s.id_attribute:
            raise self.fail(
                node,
                f"rules may not read the resident id `{name}`",
                "ids must never decide an outcome; use a lottery tie-break",
                "FA205",
            )
        if name in s.attributes:
            self.attrs.add(name)
            return IR("col", s.attributes[name], name=name, start=node.start, end=node.end)
        if name in s.parameters:
            self.params.add(name)
            return self.param(node, name, s.parameters[name], want_level)
        if name in s.derived_names:
            typ = s.derived.get(name) or self._resolve_derived(node, name)
            self.derived.add(name)
            return IR("derived", typ, name=name, start=node.start, end=node.end)
        if want_level is not None:
            # Compared with a category: an unknown bare name is meant as one of its levels.
            return self.level_const(node, name, want_level)
        candidates = s.names() + (list(want_level.levels) if want_level else [])
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else ""
        if want_level is not None and not close:
            hint = f"levels of `{want_level.attr}`: " + ", ".join(want_level.levels)
        raise self.fail(node, f"unknown name `{name}`", hint, "FA202")

    def _resolve_derived(self, node: A.Node, name: str) -> Type:
        resolver = self.scope.derived_resolver
        if resolver is None:  # pragma: no cover - scopes with derived names carry a resolver
            raise self.fail(node, f"derived value `{name}` is not available here", code="FA202")
        try:
            return resolver(name)
        except ExprTypeError as e:
            # The derived value's own error is reported at its own place; here, say why.
            msg = (
                e.message
                if e.code == "FA207"
                else f"derived value `{name}` is invalid: {e.message}"
            )
            raise self.fail(node, msg, e.hint, "FA206" if e.code == "FA206" else "FA207") from None

    def is_free(self, node: A.Node) -> bool:
        """Whether ``node`` may be a level whose meaning depends on the other operand."""
        if isinstance(node, A.Literal):
            return isinstance(node.value, str)
        if isinstance(node, A.Name):
            s = self.scope
            return not (
                node.id in s.attributes
                or node.id in s.derived_names
                or (node.id in s.parameters and not isinstance(s.parameters[node.id], str))
            )
        return False

    def param(self, node: A.Node, name: str, value: object, want_level: Type | None) -> IR:
        if isinstance(value, bool):
            return self.const(node, value, BOOL)
        if isinstance(value, int | float):
            return self.const(node, float(value), NUMBER)
        if isinstance(value, str) and want_level is not None:
            return self.level_const(node, value, want_level)
        day = _iso_date(value) if isinstance(value, str) else None
        if day is not None:
            # JSON has no date type: a parameter written "2025-12-31" is that date.
            return self.const(node, float((day - EPOCH).days), DATE)
        if isinstance(value, dt.date):
            return self.const(node, float((value - EPOCH).days), DATE)
        what = "a list" if isinstance(value, list) else f"text '{value}'"
        raise self.fail(
            node,
            f"parameter `{name}` is {what}; it can only be used "
            + ("after `in`" if isinstance(value, list) else "compared with a category"),
        )

    def unary(self, node: A.Unary) -> IR:
        operand = self.visit(node.operand)
        if node.op == "not":
            self.need(node.operand, operand, "bool", what="`not`")
            return IR("not", BOOL, (operand,), start=node.start, end=node.end)
        self.need(node.operand, operand, "number", what="`-`")
        if operand.op == "const":  # so that `-1` is a constant, e.g. in `x in [-1, 0]`
            assert isinstance(operand.value, float)
            return self.const(node, -operand.value, NUMBER)
        return IR("neg", NUMBER, (operand,), start=node.start, end=node.end)

    def binary(self, node: A.Binary) -> IR:
        left, right = self.visit(node.left), self.visit(node.right)
        lk, rk = left.type.kind, right.type.kind
        result: Type | None = None
        if lk == rk == "number":
            result = NUMBER
        elif node.op == "-" and lk == rk == "date":
            result = NUMBER  # days between two dates
        elif (node.op in "+-" and lk == "date" and rk == "number") or (
            node.op == "+" and lk == "number" and rk == "date"
        ):
            result = DATE
        if result is None:
            bad = node.left if lk != "number" else node.right
            bad_ir = left if lk != "number" else right
            raise self.fail(
                bad,
                f"`{node.op}` needs numbers, got {left.type} {node.op} {right.type}",
                "turn a condition into a number with `1 if CONDITION else 0`"
                if bad_ir.type.kind == "bool"
                else "",
            )
        return IR(node.op, result, (left, right), start=node.start, end=node.end)

    def boolop(self, node: A.BoolOp) -> IR:
        items = tuple(self.visit(v) for v in node.values)
        for v, ir in zip(node.values, items, strict=True):
            self.need(v, ir, "bool", what=f"`{node.op}`")
        return IR(node.op, BOOL, items, start=node.start, end=node.end)

    def operand_pair(self, a: A.Node, b: A.Node) -> tuple[IR, IR]:
        # A bare name or string on one side may be a level of the category on the other.
        left = None if self.is_free(a) else self.visit(a)
        right = self.visit(b, left.type if left and left.type.kind == "level" else None)
        if left is None:
            left = self.visit(a, right.type if right.type.kind == "level" else None)
        return left, right

    def compare(self, node: A.Compare) -> IR:
        parts: list[IR] = []
        for i, op in enumerate(node.ops):
            a, b = node.operands[i], node.operands[i + 1]
            left, right = self.operand_pair(a, b)
            self.comparable(node, op, left, right, b)
            parts.append(IR(op, BOOL, (left, right), start=a.start, end=b.end))
        if len(parts) == 1:
            return parts[0]
        return IR("and", BOOL, tuple(parts), start=node.start, end=node.end)

    def comparable(self, node: A.Node, op: str, left: IR, right: IR, at: A.Node) -> None:
        lt, rt = left.type, right.type
        if lt.kind != rt.kind or (
            lt.kind == "level" and lt.attr != rt.attr and lt.levels != rt.levels
        ):
            raise self.fail(at, f"cannot compare {lt} with {rt}")
        if op not in ("==", "!=") and lt.kind == "bool":
            raise self.fail(node, f"`{op}` does not apply to true/false values")
        if op not in ("==", "!=") and lt.kind == "level" and not lt.ordered:
            raise self.fail(
                node,
                f"`{op}` needs an order, but category `{lt.attr}` has none",
                "use `in [...]`, or declare the attribute as `ordinal` if its levels are ordered",
            )

    def in_op(self, node: A.InOp) -> IR:
        item = None if self.is_free(node.item) else self.visit(node.item)
        c = node.container
        if isinstance(c, A.RangeLit):
            if item is None:
                item = self.visit(node.item)
            if item.type.kind == "level" and not item.type.ordered:
                raise self.fail(
                    node.item,
                    f"a range needs an order, but category `{item.type.attr}` has none",
                    "use `in [...]`, or declare the attribute as `ordinal`",
                )
            self.need(node.item, item, "number", "date", "level", what="a range")
            want = item.type if item.type.kind == "level" else None
            low, high = self.visit(c.low, want), self.visit(c.high, want)
            for sub, ir in ((c.low, low), (c.high, high)):
                if ir.type != item.type:
                    raise self.fail(sub, f"range bound is {ir.type}, but the value is {item.type}")
            return IR(
                "range",
                BOOL,
                (item, low, high),
                negated=node.negated,
                start=node.start,
                end=node.end,
            )
        if isinstance(c, A.Name) and c.id in self.scope.parameters:
            return self.in_param(node, item, c)
        if not isinstance(c, A.ListLit):
            raise self.fail(c, "`in` needs a list `[...]`, a range `low..high` or a list parameter")
        if item is None:
            item = self.visit(node.item)
        if item.type.kind not in ("number", "level", "date"):
            raise self.fail(
                node.item, f"`in` applies to numbers, dates and levels, not {item.type}"
            )
        values: set[float] = set()
        for sub in c.items:
            ir = self.visit(sub, item.type if item.type.kind == "level" else None)
            if ir.op != "const":
                raise self.fail(sub, "list items must be constants (numbers, levels, parameters)")
            if ir.type.kind != item.type.kind:
                raise self.fail(sub, f"list item is {ir.type}, but the value is {item.type}")
            assert isinstance(ir.value, float)
            values.add(ir.value)
        return _member(node, item, values)

    def in_param(self, node: A.InOp, item: IR | None, c: A.Name) -> IR:
        raw = self.scope.parameters[c.id]
        self.params.add(c.id)
        if not isinstance(raw, list):
            raise self.fail(c, f"parameter `{c.id}` is not a list")
        if item is None:
            item = self.visit(node.item)
        values: set[float] = set()
        for v in raw:
            if item.type.kind == "level":
                if not isinstance(v, str) or v not in item.type.levels:
                    raise self.fail(
                        c,
                        f"parameter `{c.id}` holds `{v}`, not a level of `{item.type.attr}`",
                        code="FA204",
                    )
                values.add(float(item.type.levels.index(v)))
            elif (
                item.type.kind == "number"
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            ):
                values.add(float(v))
            else:
                raise self.fail(c, f"parameter `{c.id}` holds {v!r}, which is not a {item.type}")
        return _member(node, item, values)

    def ifexp(self, node: A.IfExp, want_level: Type | None) -> IR:
        cond = self.visit(node.cond)
        self.need(node.cond, cond, "bool", what="the condition of `if`")
        then = self.visit(node.then, want_level)
        other = self.visit(node.otherwise, then.type if then.type.kind == "level" else want_level)
        if then.type != other.type:
            raise self.fail(
                node, f"both branches must have one type: {then.type} if ... else {other.type}"
            )
        return IR("if", then.type, (cond, then, other), start=node.start, end=node.end)

    def call(self, node: A.Call) -> IR:
        if node.func == "date":
            arg = node.args[0]
            if not isinstance(arg, A.Literal) or not isinstance(arg.value, str):
                raise self.fail(node, "`date` takes a text date such as date('2026-01-01')")
            try:
                day = dt.date.fromisoformat(arg.value)
            except ValueError:
                raise self.fail(arg, f"'{arg.value}' is not a date (YYYY-MM-DD)") from None
            return self.const(node, float((day - EPOCH).days), DATE)
        if node.func in ("grade", "total"):
            return self.scale_value(node)
        args = tuple(self.visit(a) for a in node.args)
        kinds = ("number", "date") if node.func in ("min", "max", "clip") else ("number",)
        for a, ir in zip(node.args, args, strict=True):
            self.need(a, ir, *kinds, what=f"`{node.func}`")
        if (
            node.func == "round"
            and len(args) == 2
            and (
                args[1].op != "const"
                or not float(args[1].value or 0).is_integer()  # type: ignore[arg-type]
                or not 0 <= float(args[1].value or 0) <= 9  # type: ignore[arg-type]
            )
        ):
            raise self.fail(node.args[1], "`round` takes a whole number of digits from 0 to 9")
        typ = args[0].type
        for a, ir in zip(node.args, args, strict=True):
            if node.func in ("min", "max", "clip") and ir.type != typ:
                raise self.fail(a, f"`{node.func}` mixes {typ} and {ir.type}")
        return IR(node.func, typ, args, start=node.start, end=node.end)

    def scale_value(self, node: A.Call) -> IR:
        """``grade(PATH)`` (an ordinal of the scale's grades) or ``total(PATH)`` (a number)."""
        arg = node.args[0]
        assert isinstance(arg, A.Literal)
        path = str(arg.value)
        scales = self.scope.scales
        if path not in scales:
            close = difflib.get_close_matches(path, list(scales), n=1)
            raise self.fail(
                arg,
                f"`{path}` is not a scale",
                f"did you mean `{close[0]}`?" if close else "scales: " + ", ".join(scales),
                "FA420",
            )
        typ: Type | None = NUMBER
        if node.func == "grade":
            typ = scales[path]
            if typ is None:
                raise self.fail(
                    arg,
                    f"scale `{path}` has no grades",
                    f"give it `grades`, or read its total with `total({path})`",
                    "FA421",
                )
        self.scales.add(f"{node.func}:{path}")
        assert typ is not None
        return IR("derived", typ, name=f"@{node.func}:{path}", start=node.start, end=node.end)


def _iso_date(text: str) -> dt.date | None:
    """``text`` as a date if it is written YYYY-MM-DD, else None."""
    if len(text) != 10:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _member(node: A.InOp, item: IR, values: set[float]) -> IR:
    """``item in values`` (values as level codes or numbers)."""
    return IR(
        "in",
        BOOL,
        (item,),
        value=frozenset(values),
        negated=node.negated,
        start=node.start,
        end=node.end,
    )
