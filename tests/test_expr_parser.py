from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairalloc.expr import _ast as A
from fairalloc.expr._parser import MAX_DEPTH, MAX_LENGTH, ExprSyntaxError, parse, tokenize


def test_precedence_and_spans() -> None:
    tree = parse("a + b * 2 > 3 and not c")
    assert isinstance(tree, A.BoolOp)
    assert tree.op == "and"
    cmp_, neg = tree.values
    assert isinstance(cmp_, A.Compare)
    assert cmp_.ops == (">",)
    plus = cmp_.operands[0]
    assert isinstance(plus, A.Binary)
    assert plus.op == "+"
    assert isinstance(plus.right, A.Binary)
    assert plus.right.op == "*"
    assert isinstance(neg, A.Unary)
    assert (neg.start, neg.end) == (18, 23)


def test_conditional_is_loosest_and_right_associative() -> None:
    tree = parse("1 if a else 2 if b else 3")
    assert isinstance(tree, A.IfExp)
    assert isinstance(tree.otherwise, A.IfExp)


def test_chained_comparison_and_ranges() -> None:
    tree = parse("60 <= age < 80")
    assert isinstance(tree, A.Compare)
    assert tree.ops == ("<=", "<")
    rng = parse("age in 60..79")
    assert isinstance(rng, A.InOp)
    assert isinstance(rng.container, A.RangeLit)
    neg = parse("x not in [a, 'b', 3]")
    assert isinstance(neg, A.InOp)
    assert neg.negated
    assert isinstance(neg.container, A.ListLit)
    assert len(neg.container.items) == 3


def test_numbers_tokenize_without_swallowing_ranges() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("1..2.5e1")]
    assert kinds == [("number", "1"), ("op", ".."), ("number", "2.5e1"), ("end", "")]


@pytest.mark.parametrize(
    ("text", "offset", "fragment", "hint"),
    [
        ("age >", 5, "ends too early", ""),
        ("age = 3", 4, "unexpected character '='", "`==`"),
        ("a && b", 2, "unexpected character '&'", "`and`"),
        ("foo(1)", 0, "unknown function `foo`", "floor"),
        ("min(1)", 0, "takes 2 to 16 arguments", ""),
        ("1 if a", 6, "expected `else`", "A if CONDITION else B"),
        ("a b", 2, "unexpected `b`", "`and` / `or`"),
        ("'open", 0, "unexpected character", "close the string"),
        ("x in 3", 6, "expected a list", ""),
        ("", 0, "empty", ""),
        ("(1 + 2", 6, "expected `)`", ""),
        ("1e999", 0, "out of range", ""),
    ],
)
def test_syntax_errors_have_offsets_and_hints(
    text: str, offset: int, fragment: str, hint: str
) -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse(text)
    assert fragment in info.value.message
    assert info.value.offset == offset
    assert hint in info.value.hint


def test_limits() -> None:
    with pytest.raises(ExprSyntaxError, match="characters long"):
        parse("1+" * MAX_LENGTH + "1")
    with pytest.raises(ExprSyntaxError, match="nested deeper"):
        parse("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExprSyntaxError, match="nested deeper"):
        parse("+".join(["x"] * (MAX_DEPTH + 2)))
    # Just inside the limit is fine.
    parse("+".join(["x"] * (MAX_DEPTH - 1)))


_ALPHABET = st.sampled_from(
    [
        *list("abcxyz019 .,()[]+-*/<>=!'\"_&|%\n\t"),
        "and",
        "or",
        "not",
        "in",
        "if",
        "else",
        "..",
        "min(",
        "round(",
        "true",
        "1e5",
        "date(",
    ]
)


@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_fuzz_parser_returns_tree_or_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except ExprSyntaxError as e:
        offset = e.offset
        assert 0 <= offset <= len(text)
    else:
        assert isinstance(tree, A.Node)
        assert 0 <= tree.start <= tree.end <= len(text)


@given(st.text(max_size=200))
def test_fuzz_parser_on_arbitrary_unicode(text: str) -> None:
    try:
        parse(text)
    except ExprSyntaxError as e:
        offset = e.offset
        assert 0 <= offset <= len(text)
