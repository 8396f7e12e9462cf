"""Fuzzing the policy-file boundary: mutated YAML, JSON and TOML files and random expressions.

Each campaign mutates a valid policy (deleted keys, swapped types, random texts and numbers,
random expression text, YAML aliases, deep nesting, corrupted text) and loads it. The only
acceptable outcomes are a loaded policy or one of fairalloc's own errors, every policy issue with
a location; anything else fails the test. The time of every case is measured and the worst one
reported (``FAIRALLOC_FUZZ_REPORT=file`` appends a JSON line per campaign), never asserted: a
case over 20 s is stopped and counted as a hang, which fails the test.

Budget: the hypothesis profile's ``max_examples`` per campaign (``ci``: 120; ``thorough``:
2000, ``FAIRALLOC_HYPOTHESIS_PROFILE=thorough``).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import math
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.errors import FairallocError, PolicyError
from fairalloc.expr._parser import ExprSyntaxError, parse

#: A case that takes longer than this is stopped and counted as a hang.
HANG_SECONDS = 20.0

BASE: dict[str, Any] = {
    "fairalloc": 1,
    "policy": {"id": "fuzz", "version": "1", "title": "Fuzz", "effective": dt.date(2026, 1, 1)},
    "attributes": {
        "id": {"type": "str", "role": "id"},
        "age": {"type": "int", "min": 0, "max": 130, "protected": True},
        "score": {"type": "float", "min": 0, "max": 100},
        "hardship": {"type": "ordinal", "levels": ["none", "low", "high"]},
        "district": {"type": "category", "levels": ["north", "south"]},
        "alone": {"type": "bool"},
        "since": {"type": "date"},
    },
    "justified_uses": [{"attribute": "age", "rule": "older", "why": "w", "source": "s"}],
    "parameters": {
        "min_age": 60,
        "cap": {"value": 5, "values": [{"from": dt.date(2026, 6, 1), "value": 6}]},
        "served": ["north"],
    },
    "derived": {"needy": "hardship >= high or alone", "pts": {"expr": "min(score / 10, cap)"}},
    "scales": {
        "need": {
            "indicators": {
                "h": {"of": "hardship", "lookup": {"none": 0, "low": 1, "high": 2}},
                "s": {
                    "of": "score",
                    "bands": [{"min": 50, "points": 2}, {"above": 20, "points": 1}, {"points": 0}],
                },
            },
            "grades": [{"min": 3, "grade": "high"}, {"grade": "low"}],
        }
    },
    "rules": {
        "eligibility": [{"id": "older", "when": "age >= min_age"}],
        "exclusions": [{"id": "far", "when": "district not in served", "reason": "far away"}],
        "priority": [{"id": "p", "when": "needy", "points": "pts"}],
    },
    "ranking": {"tie_break": [{"by": "since", "order": "asc"}, {"lottery": {"seed": "s"}}]},
    "allocation": {"capacity": 2},
}

ROWS = [
    {
        "id": f"r{i}",
        "age": 58 + 3 * i,
        "score": 15.0 * i,
        "hardship": ["none", "low", "high"][i % 3],
        "district": ["north", "south"][i % 2],
        "alone": i % 2 == 0,
        "since": dt.date(2025, 1, 1 + i),
    }
    for i in range(5)
]

EXPR_FIELDS = [
    ("rules", "eligibility", 0, "when"),
    ("rules", "exclusions", 0, "when"),
    ("rules", "priority", 0, "points"),
    ("rules", "priority", 0, "when"),
    ("derived", "needy"),
    ("derived", "pts", "expr"),
    ("scales", "need", "indicators", "s", "of"),
    ("ranking", "tie_break", 0, "by"),
]


# -- what a campaign records ------------------------------------------------------------------


@dataclass
class Campaign:
    """Counts and the worst time of one campaign."""

    name: str
    cases: int = 0
    loaded: int = 0
    own_errors: int = 0
    crashes: list[str] = field(default_factory=list)
    hangs: int = 0
    unlocated: list[str] = field(default_factory=list)
    worst: float = 0.0
    worst_case: str = ""
    worst_action: Callable[[], None] | None = None

    def run(self, label: str, action: Callable[[], None]) -> None:
        self.cases += 1
        start = time.perf_counter()
        try:
            with _deadline(HANG_SECONDS):
                action()
            self.loaded += 1
        except _Hang:
            self.hangs += 1
        except PolicyError as e:
            self.own_errors += 1
            for issue in e.issues:
                if not (issue.span.line or issue.span.path):
                    self.unlocated.append(f"{label}: {issue}")
        except FairallocError:
            self.own_errors += 1
        except Exception as e:  # anything else is a crash
            self.crashes.append(f"{label}: {type(e).__name__}: {e}"[:500])
        took = time.perf_counter() - start
        if took > self.worst:
            self.worst, self.worst_case, self.worst_action = took, label[:200], action

    def rerun_worst(self) -> float:
        """The worst case timed again (best of three): one slow first run may be the machine."""
        if self.worst_action is None:
            return 0.0
        times = []
        for _ in range(3):
            start = time.perf_counter()
            with contextlib.suppress(FairallocError):
                self.worst_action()
            times.append(time.perf_counter() - start)
        return min(times)

    def report(self) -> None:
        line = {
            "campaign": self.name,
            "cases": self.cases,
            "loaded": self.loaded,
            "own_errors": self.own_errors,
            "crashes": len(self.crashes),
            "hangs": self.hangs,
            "unlocated": len(self.unlocated),
            "worst_seconds": round(self.worst, 4),
            "worst_again_seconds": round(self.rerun_worst(), 4),
            "worst_case": self.worst_case,
        }
        print(json.dumps(line, ensure_ascii=False))
        out = os.environ.get("FAIRALLOC_FUZZ_REPORT")
        if out:
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        assert not self.crashes, self.crashes[:3]
        assert not self.hangs
        assert not self.unlocated, self.unlocated[:3]


class _Hang(BaseException):
    pass


class _deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        def stop(_sig: int, _frame: object) -> None:
            raise _Hang

        self.old = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)


def load_and_use(text: str, fmt: str) -> None:
    """Load the text; when it loads, use it as every command would."""
    policy = fa.parse_policy(text, format=fmt, filename=f"fuzz.{fmt}")  # type: ignore[arg-type]
    pickle.loads(pickle.dumps(policy))
    if policy.allocation is None:  # allocate() then needs a capacity argument
        fa.evaluate(policy, ROWS)
    else:
        result = fa.allocate(policy, ROWS)
        for rid in ("r0", "r3"):
            result.explain(rid).render("text").encode("utf-8")
    json.dumps(policy.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")


# -- writing documents ------------------------------------------------------------------------


def to_yaml(doc: Any, *, flow: bool, unicode: bool) -> str:
    return yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=flow, allow_unicode=unicode, width=10**6
    )


def to_json(doc: Any, *, ascii_only: bool) -> str:
    return json.dumps(doc, ensure_ascii=ascii_only, default=str, allow_nan=True)


def to_toml(doc: Any) -> str:
    """A small TOML writer: top-level keys, everything below as inline tables and arrays."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            if math.isinf(v):
                return "inf" if v > 0 else "-inf"
            return repr(v)
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
        return '""'  # TOML has no null

    def key(k: Any) -> str:
        return json.dumps(str(k), ensure_ascii=False)

    if not isinstance(doc, dict):
        return f"value = {value(doc)}\n"
    return "".join(f"{key(k)} = {value(v)}\n" for k, v in doc.items())


# -- mutations --------------------------------------------------------------------------------


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    stack = [(doc, prefix)]
    while stack:
        node, path = stack.pop()
        if path:
            yield path
        if isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))


ALL_PATHS = sorted(paths(BASE), key=repr)

INTERESTING_TEXT = [
    "",
    " ",
    "yes",
    "no",
    "null",
    ".nan",
    "2026-02-30",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\ud800",
    "低保",
    "e\u0301",
    "a" * 200,
    "1" * 5000,
    "=HYPERLINK(1)",
    "<script>",
    "age >= ৪0",
]

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**120), max_value=10**120),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, 5e-324, 32767, 32768, 2**53 + 1]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(max_size=30),
    st.sampled_from(INTERESTING_TEXT),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

TOKENS = [
    "age",
    "score",
    "hardship",
    "district",
    "alone",
    "since",
    "id",
    "min_age",
    "cap",
    "served",
    "needy",
    "pts",
    "high",
    "low",
    "north",
    "nope",
    "0",
    "60",
    "1.5",
    ".5",
    "1e308",
    "1e309",
    "৪0",
    "６０",
    "+",
    "-",
    "*",
    "/",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "and",
    "or",
    "not",
    "in",
    "if",
    "else",
    "true",
    "false",
    "min(",
    "max(",
    "clip(",
    "abs(",
    "round(",
    "date(",
    "floor(",
    "(",
    ")",
    "[",
    "]",
    ",",
    "..",
    "'low'",
    "'低保'",
    "'2026-01-01'",
    '"',
    "&&",
    "__import__",
    "\n",
]


@st.composite
def expression_text(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return " ".join(draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25)))
    if kind == 1:
        return draw(st.text(max_size=60))
    if kind == 2:
        n = draw(st.integers(1, 3000))
        return draw(
            st.sampled_from(
                ["(" * n + "age" + ")" * n, "-" * n + "1", "not " * n + "alone", "1 + " * n + "1"]
            )
        )
    parts = draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8))
    return "".join(parts)


def set_at(doc: Any, path: tuple[Any, ...], new: Any) -> None:
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = new


def delete_at(doc: Any, path: tuple[Any, ...]) -> None:
    node = doc
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


def get_at(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated_document(draw: st.DrawFn) -> tuple[Any, str]:
    doc = copy.deepcopy(BASE)
    done = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["delete", "replace", "expression", "wrap", "rename"]))
        current = sorted(paths(doc), key=repr)
        if not current:
            break
        path = draw(st.sampled_from(current))
        if op == "delete":
            delete_at(doc, path)
        elif op == "replace":
            set_at(doc, path, draw(values))
        elif op == "expression":
            target = draw(st.sampled_from(EXPR_FIELDS))
            try:
                set_at(doc, target, draw(expression_text()))
                path = target
            except (KeyError, IndexError, TypeError):
                continue
        elif op == "wrap":
            inner = get_at(doc, path)
            for _ in range(draw(st.integers(1, 120))):
                inner = [inner] if draw(st.booleans()) else {"k": inner}
            set_at(doc, path, inner)
        else:
            parent = get_at(doc, path[:-1]) if len(path) > 1 else doc
            if isinstance(parent, dict):
                parent[draw(st.one_of(st.text(max_size=10), st.sampled_from(INTERESTING_TEXT)))] = (
                    parent.pop(path[-1])
                )
        done.append(f"{op} {path!r}")
    return doc, "; ".join(done)


SNIPPETS = [
    "\x00",
    "\t",
    "&a [1, *a]",
    "*a",
    "!!float x",
    "!!python/object:os.system",
    ".nan",
    "{",
    "[",
    "]",
    "}",
    '"',
    "'",
    "---\n",
    "? [a]\n: 1\n",
    "<<: *a\n",
    "2026-02-30",
    "\ud800",
    "\\ud800",
    "#",
    "=",
    "\r",
    "\u2028",
    "\ufeff",
    ":",
    "- ",
    "1" * 4400,
]


@st.composite
def corrupted(draw: st.DrawFn, text: str) -> tuple[str, str]:
    """Text-level damage: inserted snippets or random text, deleted or repeated slices."""
    how = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["insert", "delete", "repeat"]))
        i = draw(st.integers(0, len(text)))
        if op == "insert":
            piece = draw(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8)))
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            j = draw(st.integers(i, min(len(text), i + 40)))
            text = text[:i] + text[j:]
        else:
            j = draw(st.integers(i, min(len(text), i + 200)))
            text = text[:j] + text[i:j] * draw(st.integers(1, 50)) + text[j:]
        how.append(f"{op}@{i}")
    return text, ",".join(how)


def alias_bomb(width: int, depth: int, recursive: bool) -> str:
    lines = [f"b0: &b0 [{', '.join(['x'] * width)}]"]
    for i in range(1, depth):
        lines.append(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * width)}]")
    if recursive:
        lines.append("br: &br [1, *br]")
    return "\n".join(lines) + "\n"


# -- campaigns --------------------------------------------------------------------------------

FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
def test_fuzz_policy_files(fmt: str) -> None:
    campaign = Campaign(f"policy files ({fmt})")

    @FUZZ
    @given(mutated_document(), st.data())
    def case(mutated: tuple[Any, str], data: st.DataObject) -> None:
        doc, how = mutated
        if fmt == "yaml":
            text = to_yaml(doc, flow=data.draw(st.booleans()), unicode=data.draw(st.booleans()))
            if data.draw(st.integers(0, 4)) == 0:
                text = (
                    alias_bomb(
                        data.draw(st.integers(1, 12)),
                        data.draw(st.integers(1, 12)),
                        data.draw(st.booleans()),
                    )
                    + text
                )
        elif fmt == "json":
            text = to_json(doc, ascii_only=data.draw(st.booleans()))
        else:
            text = to_toml(doc)
        text, damage = data.draw(corrupted(text))
        campaign.run(f"{how} | {damage}", lambda: load_and_use(text, fmt))

    case()
    campaign.report()


@pytest.mark.slow
def test_fuzz_expressions() -> None:
    campaign = Campaign("expressions")

    @FUZZ
    @given(expression_text(), st.sampled_from(EXPR_FIELDS), st.booleans())
    def case(expr: str, where: tuple[Any, ...], as_json: bool) -> None:
        doc = copy.deepcopy(BASE)
        set_at(doc, where, expr)
        text = to_json(doc, ascii_only=False) if as_json else to_yaml(doc, flow=False, unicode=True)
        fmt = "json" if as_json else "yaml"

        def attempt() -> None:
            with contextlib.suppress(ExprSyntaxError):
                parse(expr)
            load_and_use(text, fmt)

        campaign.run(f"{where!r}: {expr!r}"[:300], attempt)

    case()
    campaign.report()


@pytest.mark.slow
def test_libyaml_and_pyyaml_read_every_text_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same values and locations, or the same error at the same place, with either parser."""
    from fairalloc.policy import _load

    if not _load.USE_LIBYAML:
        pytest.skip("PyYAML without libyaml")
    campaign = Campaign("policy files (yaml, libyaml against pure Python)")

    def outcome(text: str, *, c: bool) -> object:
        monkeypatch.setattr(_load, "USE_LIBYAML", c)
        try:
            policy = fa.parse_policy(text, filename="f.yaml")
        except PolicyError as e:
            return [str(i) for i in e.issues]
        return policy.model_dump(), dict(policy._origin.locs)

    @FUZZ
    @given(mutated_document(), st.data())
    def case(mutated: tuple[Any, str], data: st.DataObject) -> None:
        doc, how = mutated
        text = to_yaml(doc, flow=data.draw(st.booleans()), unicode=data.draw(st.booleans()))
        text, damage = data.draw(corrupted(text))

        def compare() -> None:
            with_c, without = outcome(text, c=True), outcome(text, c=False)
            assert with_c == without, (text, with_c, without)

        campaign.run(f"{how} | {damage}", compare)

    case()
    campaign.report()
