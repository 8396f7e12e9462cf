"""Hypothesis strategies for the tests: residents from a policy's schema, and expressions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from fairalloc.policy._model import Attribute, Policy


def value_of(attr: Attribute) -> st.SearchStrategy[Any]:
    """Valid values of one attribute."""
    if attr.type == "bool":
        return st.booleans()
    if attr.type in ("category", "ordinal"):
        return st.sampled_from(attr.levels or [])
    if attr.type == "date":
        lo = attr.min if isinstance(attr.min, dt.date) else dt.date(1900, 1, 1)
        hi = attr.max if isinstance(attr.max, dt.date) else dt.date(2100, 12, 31)
        return st.dates(lo, hi)
    if attr.values is not None:
        return st.sampled_from(
            sorted({int(v) if attr.type == "int" else float(v) for v in attr.values})
        )
    lo_n = attr.min if isinstance(attr.min, int | float) else -1e6
    hi_n = attr.max if isinstance(attr.max, int | float) else 1e6
    if attr.type == "int":
        return st.integers(int(lo_n), int(hi_n))
    # Floats as people record them: a few decimals, plus the exact bounds.
    return st.one_of(
        st.sampled_from([float(lo_n), float(hi_n)]),
        st.integers(int(lo_n * 10), int(hi_n * 10)).map(lambda v: v / 10),
        st.floats(float(lo_n), float(hi_n), allow_nan=False, allow_infinity=False),
    )


@st.composite
def residents(
    draw: st.DrawFn, policy: Policy, min_size: int = 0, max_size: int = 30
) -> list[dict[str, Any]]:
    """A list of resident records with distinct ids."""
    idname = policy.id_attribute
    n = draw(st.integers(min_size, max_size))
    ids = draw(
        st.lists(
            st.from_regex(r"[A-Za-z0-9]{1,6}", fullmatch=True), min_size=n, max_size=n, unique=True
        )
    )
    out = []
    for rid in ids:
        rec: dict[str, Any] = {idname: rid}
        for name, attr in policy.attributes.items():
            if name != idname:
                rec[name] = draw(value_of(attr))
        out.append(rec)
    return out


# -- expressions over a fixed schema ----------------------------------------------------------

EXPR_SCHEMA = {
    "id": {"type": "str", "role": "id"},
    "a": {"type": "int", "min": -5, "max": 5},
    "b": {"type": "int", "min": 0, "max": 3},
    "x": {"type": "float", "min": -2.5, "max": 2.5},
    "flag": {"type": "bool"},
    "lvl": {"type": "ordinal", "levels": ["lo", "mid", "hi"]},
    "cat": {"type": "category", "levels": ["red", "green", "blue"]},
    "day": {"type": "date", "min": "2020-01-01", "max": "2020-12-31"},
}
PARAMS = {"k": 2, "half": 0.5, "colours": ["red", "blue"]}

_NUM_LEAVES = st.sampled_from(["a", "b", "x", "k", "half", "0", "1", "2.5", "3", "0.1"])
_BOOL_LEAVES = st.sampled_from(["flag", "true", "false"])


def _num(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        children.map(lambda c: f"-{c}"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(children, children, children).map(lambda t: f"clip({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["abs", "floor", "ceil", "round"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(children, st.integers(0, 3)).map(lambda t: f"round({t[0]}, {t[1]})"),
        st.tuples(children, _bool_expr(), children).map(
            lambda t: f"({t[0]} if {t[1]} else {t[2]})"
        ),
        st.just("(day - date('2020-06-01'))"),
    )


def num_expr() -> st.SearchStrategy[str]:
    """Number-valued expressions (possibly with divisions by zero)."""
    return st.recursive(_NUM_LEAVES, _num, max_leaves=8)


def _bool_expr() -> st.SearchStrategy[str]:
    simple_num = st.recursive(
        _NUM_LEAVES,
        lambda c: st.tuples(c, st.sampled_from(["+", "-", "*", "/"]), c).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=3,
    )
    return st.one_of(
        _BOOL_LEAVES,
        st.tuples(simple_num, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), simple_num).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        st.tuples(simple_num, simple_num, simple_num).map(lambda t: f"{t[0]} <= {t[1]} < {t[2]}"),
        st.sampled_from(
            [
                "lvl >= mid",
                "lvl == 'hi'",
                "cat in [red, green]",
                "cat not in colours",
                "cat != blue",
                "a in -1..2",
                "x not in 0..1.5",
                "day >= date('2020-03-01')",
                "lvl in [lo, hi]",
                "b in [0, 2]",
            ]
        ),
    )


def bool_expr() -> st.SearchStrategy[str]:
    """Conditions, with lazy and/or/not and conditionals."""
    return st.recursive(
        _bool_expr(),
        lambda c: st.one_of(
            st.tuples(c, st.sampled_from(["and", "or"]), c).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            c.map(lambda s: f"not ({s})"),
            st.tuples(c, c, c).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        ),
        max_leaves=6,
    )
