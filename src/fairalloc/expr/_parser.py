"""Tokenizer and recursive-descent parser for rule expressions.

The grammar, loosest binding first::

    expr     := or_expr ["if" or_expr "else" expr]
    or_expr  := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | compare
    compare  := sum ((CMP sum)+ | ["not"] "in" container)?
    container:= "[" [expr ("," expr)*] "]" | sum ".." sum | NAME
    sum      := term (("+" | "-") term)*
    term     := unary (("*" | "/" | "//") unary)*
    unary    := "-" unary | primary
    primary  := NUMBER | STRING | "true" | "false" | NAME ["(" args ")"] | "(" expr ")"
    scaleref := ("grade" | "total") "(" NAME ("." NAME)* ")"

Nothing here evaluates anything: the result is a tree of :mod:`fairalloc.expr._ast` nodes, or
a :class:`ExprSyntaxError` with the offset of the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fairalloc.expr import _ast as A

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "ExprSyntaxError", "children", "parse"]

#: Longest expression text accepted, in characters.
MAX_LENGTH = 4000
#: Deepest nesting accepted (parentheses, operators, calls).
MAX_DEPTH = 48

FUNCTIONS = {
    "min": (2, 16),
    "max": (2, 16),
    "clip": (3, 3),
    "abs": (1, 1),
    "round": (1, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "date": (1, 1),
    "grade": (1, 1),
    "total": (1, 1),
}
#: Functions whose argument is the dotted path of a scale, e.g. ``grade(need.health)``.
SCALE_FUNCTIONS = frozenset({"grade", "total"})
KEYWORDS = frozenset({"and", "or", "not", "in", "if", "else", "true", "false", "True", "False"})
COMPARE_OPS = ("==", "!=", "<=", ">=", "<", ">")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|\.\.|//|[-+*/()<>\[\],.])
    """,
    re.VERBOSE,
)


class ExprSyntaxError(Exception):
    """A syntax error at ``offset`` in the expression text."""

    def __init__(self, message: str, offset: int, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind (``number``, ``string``, ``name``, ``op``, ``end``) and text."""

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        """Offset just past the token."""
        return self.start + len(self.text)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = ""
            if ch in "=":
                hint = "compare with `==`"
            elif ch in "&|!":
                hint = "write `and`, `or`, `not`"
            elif ch in "'\"":
                hint = "close the string on the same line with the same quote"
            raise ExprSyntaxError(f"unexpected character {ch!r}", pos, hint)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def at_keyword(self, word: str) -> bool:
        return self.at("name", word)

    def advance(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise ExprSyntaxError(
                f"expected {what}, found {self._describe(self.tok)}", self.tok.start
            )
        return self.advance()

    @staticmethod
    def _describe(t: Token) -> str:
        return "the end of the expression" if t.kind == "end" else f"`{t.text}`"

    def enter(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprSyntaxError(
                f"expression nested deeper than {MAX_DEPTH} levels",
                at,
                "split it into derived values",
            )

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> A.Node:
        node = self.expr()
        if not self.at("end"):
            t = self.tok
            hint = "join conditions with `and` / `or`" if t.kind in ("name", "number") else ""
            raise ExprSyntaxError(f"unexpected {self._describe(t)}", t.start, hint)
        return node

    def expr(self) -> A.Node:
        self.enter(self.tok.start)
        node = self.or_expr()
        if self.at_keyword("if"):
            self.advance()
            cond = self.or_expr()
            if not self.at_keyword("else"):
                raise ExprSyntaxError(
                    f"expected `else`, found {self._describe(self.tok)}",
                    self.tok.start,
                    "a conditional reads `A if CONDITION else B`",
                )
            self.advance()
            other = self.expr()
            node = A.IfExp(node.start, other.end, cond, node, other)
        self.depth -= 1
        return node

    def _bool_chain(self, word: str, sub: str) -> A.Node:
        parse_sub = getattr(self, sub)
        first: A.Node = parse_sub()
        values = [first]
        while self.at_keyword(word):
            self.advance()
            values.append(parse_sub())
        if len(values) == 1:
            return first
        return A.BoolOp(first.start, values[-1].end, word, tuple(values))

    def or_expr(self) -> A.Node:
        return self._bool_chain("or", "and_expr")

    def and_expr(self) -> A.Node:
        return self._bool_chain("and", "not_expr")

    def not_expr(self) -> A.Node:
        if self.at_keyword("not"):
            t = self.advance()
            self.enter(t.start)
            operand = self.not_expr()
            self.depth -= 1
            return A.Unary(t.start, operand.end, "not", operand)
        return self.compare()

    def compare(self) -> A.Node:
        left = self.sum()
        if self.at_keyword("in") or (
            self.at_keyword("not")
            and self.tokens[self.i + 1].kind == "name"
            and self.tokens[self.i + 1].text == "in"
        ):
            negated = self.at_keyword("not")
            if negated:
                self.advance()
            self.advance()
            container = self.container()
            return A.InOp(left.start, container.end, left, container, negated)
        ops: list[str] = []
        operands = [left]
        while self.tok.kind == "op" and self.tok.text in COMPARE_OPS:
            ops.append(self.advance().text)
            operands.append(self.sum())
        if not ops:
            return left
        return A.Compare(left.start, operands[-1].end, tuple(ops), tuple(operands))

    def container(self) -> A.Node:
        if self.at("op", "["):
            open_ = self.advance()
            items: list[A.Node] = []
            if not self.at("op", "]"):
                items.append(self.expr())
                while self.at("op", ","):
                    self.advance()
                    items.append(self.expr())
            close = self.expect("op", "]", "`,` or `]`")
            return A.ListLit(open_.start, close.end, tuple(items))
        low = self.sum()
        if isinstance(low, A.Name) and not self.at("op", ".."):
            return low  # a list parameter: `district in served_districts`
        if not self.at("op", ".."):
            raise ExprSyntaxError(
                f"expected a list `[...]` or a range `low..high` after `in`, found"
                f" {self._describe(self.tok)}",
                self.tok.start,
            )
        self.advance()
        high = self.sum()
        return A.RangeLit(low.start, high.end, low, high)

    def sum(self) -> A.Node:
        node = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.advance().text
            right = self.term()
            node = A.Binary(node.start, right.end, op, node, right)
        return node

    def term(self) -> A.Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "//"):
            op = self.advance().text
            right = self.unary()
            node = A.Binary(node.start, right.end, op, node, right)
        return node

    def unary(self) -> A.Node:
        if self.at("op", "-"):
            t = self.advance()
            self.enter(t.start)
            operand = self.unary()
            self.depth -= 1
            return A.Unary(t.start, operand.end, "-", operand)
        return self.primary()

    def primary(self) -> A.Node:
        t = self.tok
        if t.kind == "number":
            self.advance()
            try:
                value = float(t.text)
            except ValueError:  # pragma: no cover - the token pattern admits only floats
                raise ExprSyntaxError(f"invalid number `{t.text}`", t.start) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise ExprSyntaxError(f"number `{t.text}` is out of range", t.start)
            return A.Literal(t.start, t.end, value)
        if t.kind == "string":
            self.advance()
            return A.Literal(t.start, t.end, t.text[1:-1])
        if t.kind == "name":
            return self.name_or_call()
        if self.at("op", "("):
            self.advance()
            self.enter(t.start)
            node = self.expr()
            self.depth -= 1
            self.expect("op", ")", "`)`")
            return node
        if t.kind == "end":
            raise ExprSyntaxError("the expression ends too early", t.start)
        raise ExprSyntaxError(f"unexpected `{t.text}`", t.start)

    def name_or_call(self) -> A.Node:
        t = self.advance()
        if t.text in ("true", "True"):
            return A.Literal(t.start, t.end, True)  # noqa: FBT003 - a literal's value
        if t.text in ("false", "False"):
            return A.Literal(t.start, t.end, False)  # noqa: FBT003 - a literal's value
        if t.text in KEYWORDS:
            raise ExprSyntaxError(f"unexpected keyword `{t.text}`", t.start)
        if not self.at("op", "("):
            return A.Name(t.start, t.end, t.text)
        if t.text not in FUNCTIONS:
            import difflib

            close = difflib.get_close_matches(t.text, list(FUNCTIONS), n=1)
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else ("functions: " + ", ".join(sorted(FUNCTIONS)))
            )
            raise ExprSyntaxError(f"unknown function `{t.text}`", t.start, hint)
        self.advance()
        if t.text in SCALE_FUNCTIONS:
            return self.scale_ref(t)
        self.enter(t.start)
        args: list[A.Node] = []
        if not self.at("op", ")"):
            args.append(self.expr())
            while self.at("op", ","):
                self.advance()
                args.append(self.expr())
        close_tok = self.expect("op", ")", "`,` or `)`")
        self.depth -= 1
        lo, hi = FUNCTIONS[t.text]
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise ExprSyntaxError(f"`{t.text}` takes {want} arguments, got {len(args)}", t.start)
        return A.Call(t.start, close_tok.end, t.text, tuple(args))

    def scale_ref(self, func: Token) -> A.Node:
        """``grade(need.health)``: the argument is a scale's dotted path, kept as its text."""
        first = self.tok
        if first.kind == "string":  # grade('need.health') reads the same
            self.advance()
            path, start, end = first.text[1:-1], first.start, first.end
        else:
            if first.kind != "name":
                raise ExprSyntaxError(
                    f"`{func.text}` takes the path of a scale, found {self._describe(first)}",
                    first.start,
                    f"e.g. `{func.text}(need.health)`",
                )
            parts = [self.advance().text]
            while self.at("op", "."):
                self.advance()
                if not self.at("name"):
                    raise ExprSyntaxError(
                        f"expected a scale name after `.`, found {self._describe(self.tok)}",
                        self.tok.start,
                    )
                parts.append(self.advance().text)
            path, start, end = ".".join(parts), first.start, self.tokens[self.i - 1].end
        close = self.expect("op", ")", "`)`")
        return A.Call(func.start, close.end, func.text, (A.Literal(start, end, path),))


def parse(text: str) -> A.Node:
    """Parse an expression into a syntax tree.

    Raises:
        ExprSyntaxError: on any syntax error, too long a text or too deep a nesting.

    Examples:
        >>> parse("age >= 60 and not lives_alone")  # doctest: +ELLIPSIS
        BoolOp(start=0, end=29, op='and', values=(Compare(...), Unary(...)))
    """
    if len(text) > MAX_LENGTH:
        raise ExprSyntaxError(
            f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}",
            0,
            "split it into derived values",
        )
    if not text.strip():
        raise ExprSyntaxError("the expression is empty", 0)
    tree = _Parser(text).parse()
    _check_depth(tree)
    return tree


def children(node: A.Node) -> tuple[A.Node, ...]:
    """The direct sub-nodes of ``node``, in source order."""
    match node:
        case A.Unary(operand=o):
            return (o,)
        case A.Binary(left=left, right=right):
            return (left, right)
        case A.BoolOp(values=vs):
            return vs
        case A.Compare(operands=ops):
            return ops
        case A.ListLit(items=items):
            return items
        case A.RangeLit(low=lo, high=hi):
            return (lo, hi)
        case A.InOp(item=item, container=c):
            return (item, c)
        case A.IfExp(cond=c, then=t, otherwise=o):
            return (t, c, o)
        case A.Call(args=args):
            return args
    return ()


def _check_depth(tree: A.Node) -> None:
    # Chains such as `a + b + c + ...` are parsed by loops but nest in the tree; later passes
    # recurse over the tree, so its depth is bounded here, without recursion.
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprSyntaxError(
                f"expression nested deeper than {MAX_DEPTH} levels",
                node.start,
                "split it into derived values",
            )
        stack.extend((c, depth + 1) for c in children(node))
