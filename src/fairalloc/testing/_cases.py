"""Named test cases of a policy: residents and what each must get, in a YAML file.

A cases file sits beside the policy it tests::

    policy: policy.yaml          # relative to this file; this is the default
    as_of: 2026-01-01            # optional: the evaluation date
    defaults: {age: 75}          # optional: values every resident has unless it gives its own
    pools:                       # optional: residents allocated together with a case
      two-applicants: [{id: p1, age: 80, ...}, {id: p2, age: 70, ...}]
    cases:
      - name: able-elder
        resident: {age: 81, feeding: 10, ...}   # the id defaults to the case's name
        expect:
          eligible: true
          grades: {ability: intact}
          values: {ability_level: intact}
          points: {hours.level: 0}
          score: 0
      - name: too-young
        resident: {age: 55}
        expect: {eligible: false, failed: [aged-60-plus]}
      - name: served-among-two
        resident: {...}
        pool: two-applicants
        expect: {served: true, category: open}

What ``expect`` may name: ``eligible``; ``failed`` (the eligibility rules that failed, in
order); ``excluded`` (the exclusion that applied, or null); ``points`` (by indicator path or
``priority.<rule id>``); ``scales`` (totals by scale path); ``grades`` (by scale path);
``values`` (derived values, levels by name); ``score``; and with a pool or the policy's
allocation, ``served`` and ``category``. Numbers are compared to the micro-point.

:func:`run_cases` runs every case and reports, for each failing one, the expected and actual
value of every field that differs. The pytest plugin collects a file named ``cases.yaml`` (or
``*.cases.yaml``) as one test per case.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fairalloc._text import number
from fairalloc.errors import FairallocError

__all__ = ["Case", "CaseResult", "CasesError", "CasesFile", "load_cases", "run_case", "run_cases"]

_EXPECT = (
    "eligible",
    "failed",
    "excluded",
    "points",
    "scales",
    "grades",
    "values",
    "score",
    "served",
    "category",
)


class CasesError(FairallocError, ValueError):
    """A cases file that cannot be read: located (``file:line``), with what would be valid.

    Attributes:
        code: ``FA450``.
        where: ``file:line`` of the problem.
    """

    code = "FA450"

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: FA450 {message}")


@dataclass(frozen=True)
class Case:
    """One named case: a resident, optionally a pool, and what the resident must get.

    Attributes:
        name: The case's name (unique in its file).
        resident: The resident's values (defaults merged in, id included).
        expect: The expected outcome (see the module documentation).
        pool: The residents allocated together with it, if any.
        line: Its line in the cases file.
    """

    name: str
    resident: dict[str, Any]
    expect: dict[str, Any]
    pool: tuple[dict[str, Any], ...] | None = None
    line: int = 0


@dataclass(frozen=True)
class CasesFile:
    """A loaded cases file.

    Attributes:
        path: The file.
        policy_path: The policy it tests.
        as_of: The evaluation date, if given.
        cases: Its cases, in order.
    """

    path: Path
    policy_path: Path
    as_of: dt.date | None
    cases: tuple[Case, ...]


@dataclass
class CaseResult:
    """The outcome of one case.

    Attributes:
        case: The case.
        diffs: Each field that differs, as (field, expected, actual).
        error: An error that stopped the case (bad resident data, an evaluation error).
    """

    case: Case
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the resident got everything the case expects."""
        return not self.diffs and self.error is None

    def report(self, label: str = "") -> str:
        """The failure as text: ``case NAME (FILE:LINE)`` and one line per differing field."""
        where = f" ({label}:{self.case.line})" if label else ""
        head = f"case `{self.case.name}`{where}"
        if self.error is not None:
            return f"{head}: {self.error}"
        if not self.diffs:
            return f"{head}: passed"
        lines = [f"{head}: expected and actual differ"]
        width = max(len(k) for k, _, _ in self.diffs)
        for key, exp, act in self.diffs:
            lines.append(f"  {key:<{width}}  expected {_show(exp)}, got {_show(act)}")
        return "\n".join(lines)


def _show(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, float):
        return number(v)
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return str(v)


def load_cases(path: str | Path) -> CasesFile:
    """Read a cases file.

    Raises:
        CasesError: for a file that is not a valid cases file (located).
        OSError: when it cannot be read.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise CasesError(f"{path}:{line}", f"not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise CasesError(f"{path}:1", "a cases file needs a `cases` list")
    unknown = sorted(set(data) - {"policy", "as_of", "defaults", "pools", "cases"})
    if unknown:
        raise CasesError(
            f"{path}:1",
            f"unknown section {', '.join(unknown)} (sections: policy, as_of, defaults, pools,"
            " cases)",
        )
    lines = _case_lines(node)
    policy_path = path.parent / str(data.get("policy", "policy.yaml"))
    as_of = data.get("as_of")
    if as_of is not None and not isinstance(as_of, dt.date):
        try:
            as_of = dt.date.fromisoformat(str(as_of))
        except ValueError:
            raise CasesError(f"{path}:1", f"as_of `{as_of}` is not a date (YYYY-MM-DD)") from None
    defaults = data.get("defaults") or {}
    pools = data.get("pools") or {}
    if not isinstance(defaults, dict) or not isinstance(pools, dict):
        raise CasesError(f"{path}:1", "`defaults` is a mapping and `pools` a mapping of lists")
    cases: list[Case] = []
    names: set[str] = set()
    for i, raw in enumerate(data["cases"]):
        where = f"{path}:{lines[i] if i < len(lines) else 0}"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise CasesError(where, "each case needs a `name`")
        name = raw["name"]
        if name in names:
            raise CasesError(where, f"case name `{name}` is used twice")
        names.add(name)
        extra = sorted(set(raw) - {"name", "description", "resident", "expect", "pool"})
        if extra:
            raise CasesError(
                where,
                f"case `{name}`: unknown field {', '.join(extra)} (fields: name, description,"
                " resident, expect, pool)",
            )
        expect = raw.get("expect")
        if not isinstance(expect, dict) or not expect:
            raise CasesError(where, f"case `{name}` needs `expect`: what the resident must get")
        bad = sorted(set(expect) - set(_EXPECT))
        if bad:
            raise CasesError(
                where,
                f"case `{name}`: cannot expect {', '.join(bad)} (one of: {', '.join(_EXPECT)})",
            )
        resident = {**defaults, **(raw.get("resident") or {})}
        pool = None
        if raw.get("pool") is not None:
            members = pools.get(raw["pool"])
            if not isinstance(members, list):
                raise CasesError(where, f"case `{name}` names an unknown pool `{raw['pool']}`")
            pool = tuple({**defaults, **m} for m in members)
        cases.append(Case(name, resident, dict(expect), pool, lines[i] if i < len(lines) else 0))
    return CasesFile(path, policy_path, as_of, tuple(cases))


def _case_lines(node: yaml.Node | None) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "cases" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def run_cases(path: str | Path) -> list[CaseResult]:
    """Run every case of a cases file.

    Returns:
        One result per case, in order; :attr:`CaseResult.report` describes a failure.

    Raises:
        CasesError: for an invalid cases file.
        PolicyError: when the policy it names does not load.
    """
    from fairalloc.policy import load_policy

    cases = load_cases(path)
    policy = load_policy(cases.policy_path, as_of=cases.as_of)
    return [run_case(policy, c) for c in cases.cases]


def run_case(policy: Any, case: Case) -> CaseResult:
    """Run one case against a loaded policy."""
    from fairalloc._engine import derived_values, evaluate
    from fairalloc.allocation import allocate

    result = CaseResult(case)
    idname = policy.id_attribute
    resident = {idname: case.name, **case.resident}
    rid = str(resident[idname])
    try:
        ev = evaluate(policy, [resident] if case.pool is None else [*case.pool, resident])
        row = ev.index_of(rid)
        rec = ev.record(row)
        actual: dict[str, Any] = {
            "eligible": bool(ev.eligible[row]),
            "failed": list(rec.get("failed_eligibility", [])),
            "excluded": rec.get("exclusion"),
            "score": float(ev.score_micro[row]) / 1e6,
        }
        want = case.expect
        if "values" in want:
            actual["values"] = derived_values(ev, row, list(want["values"]))
        if "served" in want or "category" in want:
            alloc = allocate(ev)
            actual["served"] = bool(alloc.served[row])
            c = int(alloc.category[row])
            actual["category"] = alloc.categories[c] if c >= 0 else None
        for key in ("points", "scales", "grades"):
            actual[key] = rec.get(key, {})
    except FairallocError as e:
        result.error = f"{type(e).__name__}: {e}"
        return result
    for key, exp in case.expect.items():
        act = actual[key]
        if isinstance(exp, Mapping):
            for sub, want in exp.items():
                a = act.get(sub, _NOTHING) if isinstance(act, Mapping) else _NOTHING
                if a is _NOTHING:
                    result.diffs.append((f"{key}.{sub}", want, f"nothing (no {key[:-1]} `{sub}`)"))
                elif not _same(want, a):
                    result.diffs.append((f"{key}.{sub}", want, a))
        elif not _same(exp, act):
            result.diffs.append((key, exp, act))
    return result


_NOTHING = object()


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None:
        return bool(expected == actual and type(expected) is type(actual)) or (
            expected is None and actual is None
        )
    if isinstance(expected, int | float) and isinstance(actual, int | float | np.number):
        return math.floor(float(expected) * 1e6 + 0.5) == math.floor(float(actual) * 1e6 + 0.5)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            _same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return str(expected) == str(actual)
