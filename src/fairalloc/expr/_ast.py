"""Syntax tree of the rule expression language.

Every node keeps the character offsets of the text it was parsed from (``start``, ``end``), so
that type errors point at the exact place inside the policy file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Binary",
    "BoolOp",
    "Call",
    "Compare",
    "IfExp",
    "InOp",
    "ListLit",
    "Literal",
    "Name",
    "Node",
    "RangeLit",
    "Unary",
]


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all nodes: the span ``[start, end)`` of the source text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A number, boolean or quoted string."""

    value: float | bool | str


@dataclass(frozen=True, slots=True)
class Name(Node):
    """An identifier: attribute, parameter, derived value, or a level of a category."""

    id: str


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``-x`` or ``not x``."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """Arithmetic: ``+ - * /``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    """``a and b and ...`` or ``a or b or ...`` (evaluated left to right, short-circuit)."""

    op: str
    values: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """A comparison chain, ``a < b <= c`` meaning ``a < b and b <= c``."""

    ops: tuple[str, ...]
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    """``[a, b, c]``, only as the right side of ``in``."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class RangeLit(Node):
    """``lo..hi`` (both ends included), only as the right side of ``in``."""

    low: Node
    high: Node


@dataclass(frozen=True, slots=True)
class InOp(Node):
    """``x in [..]``, ``x in lo..hi``, ``x not in ...``."""

    item: Node
    container: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class IfExp(Node):
    """``then if cond else otherwise`` (only the taken branch matters for each resident)."""

    cond: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A call of a built-in function: min, max, clip, abs, round, floor, ceil, date."""

    func: str
    args: tuple[Node, ...]
