"""Property checks of a policy: what must hold for every population, searched with hypothesis.

Each check generates residents valid for the policy's attribute schema
(:mod:`fairalloc.testing._strategies`), evaluates the policy with the library's one engine, and
compares the evaluation traces: every eligibility rule's and exclusion's verdict, every priority
rule's and indicator's points, every tie-break value and every input of the allocation
mechanism. When a property fails, hypothesis shrinks the residents to a minimal
counterexample, and :class:`PropertyFailure` prints it as resident records, naming the parts
of the policy responsible with their place in the file.

Policies that read a protected attribute without a justified use load only for audit
(``audit=True``); the checks compile every policy that way, so that such a policy can be shown
to be unfair by a counterexample, not only by the static FA300 check.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck
from hypothesis import settings as Settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc._evaluation import Evaluation
from fairalloc.allocation import allocate_evaluation
from fairalloc.allocation._capacity import category_sizes
from fairalloc.errors import AllocationError, ArgumentError, EvaluationError
from fairalloc.policy._model import Attribute, Policy
from fairalloc.testing._strategies import (
    PolicyLike,
    attribute_values,
    resident_id,
    residents,
    residents_with,
)
from fairalloc.testing._trace import (
    DEFAULT_RESIDENTS,
    PropertyFailure,
    Subject,
    Trace,
    change_lines,
    refused_tie,
    run_search,
    show_points,
    show_value,
)

__all__ = [
    "PROFILES",
    "PROPERTIES",
    "PlannedCheck",
    "PropertyCheck",
    "PropertyFailure",
    "check_allocation",
    "check_anonymity",
    "check_determinism",
    "check_equal_treatment",
    "check_need_monotonicity",
    "check_protected_invariance",
    "need_attributes",
    "plan_checks",
]


class PropertyCheck(Protocol):
    """The signature every check of :data:`PROPERTIES` shares."""

    def __call__(
        self,
        policy: PolicyLike,
        *,
        settings: Settings | None = None,
        seed: int | None = None,
        max_residents: int = DEFAULT_RESIDENTS,
    ) -> None:
        """Check one property of ``policy``; raise :class:`PropertyFailure` if it fails."""


# -- protected invariance ---------------------------------------------------------------------


def _alternatives(attr: Attribute) -> st.SearchStrategy[Any]:
    """What an attribute is changed to: any valid value (for true/false: the other one)."""
    return st.just(None) if attr.type == "bool" else attribute_values(attr, missing=False)


def _changed_value(attr: Attribute, current: Any, drawn: Any) -> Any:
    return (not current) if attr.type == "bool" else drawn


def check_protected_invariance(
    policy: PolicyLike,
    *,
    attributes: Iterable[str] | None = None,
    settings: Settings | None = None,
    seed: int | None = None,
    max_residents: int = DEFAULT_RESIDENTS,
) -> None:
    """Changing a protected attribute changes nothing but what a justified use allows.

    For each protected attribute, residents are generated, the attribute is changed to another
    valid value for each of them, and both populations are evaluated. Without a justified use,
    every output must stay the same: each eligibility rule's and exclusion's verdict, each
    priority rule's and indicator's points, each tie-break value and each input of the
    allocation (reserve and resource eligibility and priorities, lottery weights, rotation
    bands), hence eligibility, score, rank and who is served. With justified uses, only the
    outputs of the parts they name may change (a justified scale covers its indicators); every
    other part's verdict and points must stay.

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        attributes: The protected attributes to check; all of them by default.
        settings: Hypothesis settings (examples, seed behaviour, database); by default the
            current profile's. Deadlines are always off.
        seed: A seed for hypothesis, to reproduce a run.
        max_residents: Most residents in one generated population.

    Raises:
        PropertyFailure: ``property '<attribute>-invariance'``, with the minimal resident and
            the parts whose outputs changed.
        ValueError: if an attribute named is not protected.
    """
    sub = Subject(policy)
    protected = sub.doc.protected_attributes
    names = list(protected) if attributes is None else list(attributes)
    for name in names:
        if name not in protected:
            raise ArgumentError(
                "FA603",
                f"`{name}` is not a protected attribute of {sub.label}; protected: "
                + (", ".join(protected) or "none"),
                argument="attributes",
                value=name,
                valid=", ".join(protected),
            )
    for name in names:
        _invariance(sub, name, settings, seed, max_residents)


def _invariance(
    sub: Subject, name: str, settings: Settings | None, seed: int | None, max_residents: int
) -> None:
    prop = f"{name}-invariance"
    attr = sub.doc.attributes[name]
    exempt = sub.justified_parts(name)
    static = [str(v) for v in sub.cp.violations if f"protected attribute `{name}`" in v.message]

    def body(example: list[tuple[dict[str, Any], Any]]) -> None:
        records = [rec for rec, _ in example]
        changed = [
            {**rec, name: _changed_value(attr, sub.value(name, rec), drawn)}
            for rec, drawn in example
        ]
        a = Trace(sub, sub.evaluate(prop, records))
        b = Trace(sub, sub.evaluate(prop, changed))
        rows = np.arange(len(records))
        for i in map(int, np.flatnonzero(a.differing(b, rows, rows))):
            before, after = records[i], changed[i]
            changes = a.changes(b, i, i)
            blamed = [c for c in changes if c.part not in exempt]
            if not blamed and changes:
                continue  # only parts a justified use allows changed
            why = (
                f"`{name}` has no justified use, so no part of the policy may depend on it"
                if not exempt
                else f"`{name}` is justified only for "
                + ", ".join(sorted(set(exempt.values())))
                + "; every other part must ignore it"
            )
            lines = change_lines(blamed, a.total_changes(b, i, i, shown=bool(blamed)))
            lines.append(why)
            lines += [f"static check: {s}".replace("\n", "\n    ") for s in static]
            raise sub.failure(
                prop,
                f"resident {sub.rid(before)} is treated differently when only its protected"
                f" attribute `{name}` changes from {show_value(sub.value(name, before))} to"
                f" {show_value(after[name])}",
                [before],
                lines,
                [c.part for c in blamed],
            )

    strategy = residents_with(sub.doc, _alternatives(attr), min_size=1, max_size=max_residents)
    run_search(sub, prop, strategy, body, settings, seed)


# -- need monotonicity ------------------------------------------------------------------------


def _more_need(attr: Attribute, v: Any, delta: float) -> Any:
    """A value that means more need than ``v``, or None at the end of the range.

    One step for whole numbers, levels, days and true/false; ``delta`` more (or less) for
    floats.
    """
    up = attr.need == "higher"
    sign = 1 if up else -1
    if attr.type == "bool":
        return up if bool(v) != up else None
    if attr.type == "ordinal":
        levels = list(attr.levels or [])
        k = levels.index(v) + sign
        return levels[k] if 0 <= k < len(levels) else None
    if attr.type == "date":
        w = v + dt.timedelta(days=sign)
        lo, hi = attr.min, attr.max
        if (isinstance(lo, dt.date) and w < lo) or (isinstance(hi, dt.date) and w > hi):
            return None
        return w
    if attr.type in ("int", "float"):
        lo_n = float(attr.min) if isinstance(attr.min, int | float) else -float("inf")
        hi_n = float(attr.max) if isinstance(attr.max, int | float) else float("inf")
        step = 1.0 if attr.type == "int" else delta
        w = min(max(float(v) + sign * step, lo_n), hi_n)
        if w == float(v) or (attr.type == "int" and w != float(v) + sign):
            return None
        return int(w) if attr.type == "int" else w
    return None  # a category has no order: more need is not defined


#: How much a float need attribute moves: tenths first, then any amount.
_DELTAS = st.one_of(
    st.integers(1, 1000).map(lambda k: k / 10),
    st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False),
)


def need_attributes(policy: Policy) -> list[str]:
    """The attributes declaring ``need`` whose values have an order (not categories)."""
    return [n for n, a in policy.attributes.items() if a.need is not None and a.type != "category"]


def check_need_monotonicity(
    policy: PolicyLike,
    *,
    attributes: Iterable[str] | None = None,
    settings: Settings | None = None,
    seed: int | None = None,
    max_residents: int = DEFAULT_RESIDENTS,
) -> None:
    """More need never lowers the score nor makes an eligible resident ineligible.

    For attributes declared ``need: higher`` (more means more need), each generated resident's
    value of one of them is raised: to the next whole number, level (ordinals) or day, to
    ``true``, or to a larger number within ``max`` (floats); for ``need: lower`` it is lowered.
    The resident's score must not go down (with ``score: {method: tiers}``: the tiers, compared
    in order), and an eligible resident must stay eligible. Category attributes have no order
    and are not checked. One step at a time suffices: a policy that never loses from one step
    never loses from several.

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        attributes: The need attributes to vary; all with an order by default.
        settings: Hypothesis settings; by default the current profile's.
        seed: A seed for hypothesis, to reproduce a run.
        max_residents: Most residents in one generated population.

    Raises:
        PropertyFailure: ``property 'need-monotonicity'``, with the minimal resident, the
            change and the rules or indicators whose points fell (or that now fail).
        ValueError: if an attribute named declares no ``need``.
    """
    sub = Subject(policy)
    declared = need_attributes(sub.doc)
    names = declared if attributes is None else list(attributes)
    for name in names:
        if name not in declared:
            raise ArgumentError(
                "FA603",
                f"`{name}` declares no `need` with an order in {sub.label}; need attributes: "
                + (", ".join(declared) or "none"),
                argument="attributes",
                value=name,
                valid=", ".join(declared),
            )
    if not names:
        return
    prop = "need-monotonicity"

    def body(example: list[tuple[dict[str, Any], tuple[str, float]]]) -> None:
        records = [rec for rec, _ in example]
        which = [name for _, (name, _d) in example]
        changed = []
        for rec, (name, delta) in example:
            w = _more_need(sub.doc.attributes[name], sub.value(name, rec), delta)
            changed.append(rec if w is None else {**rec, name: w})
        ta = Trace(sub, sub.evaluate(prop, records))
        tb = Trace(sub, sub.evaluate(prop, changed))
        a, b = ta.ev, tb.ev
        rows = np.arange(len(records))
        for i in map(int, np.flatnonzero(ta.differing(tb, rows, rows))):
            before, after, name = records[i], changed[i], which[i]
            attr = sub.doc.attributes[name]
            changes = ta.changes(tb, i, i)
            totals = ta.total_changes(tb, i, i)
            meaning = "more" if attr.need == "higher" else "less"
            change = (
                f"its need attribute `{name}` (need: {attr.need}: {meaning} means more need)"
                f" goes from {show_value(sub.value(name, before))} to {show_value(after[name])}"
            )
            if a.eligible[i] and not b.eligible[i]:
                blamed = [
                    c
                    for c in changes
                    if (c.label.startswith("eligibility") and c.after == "fails")
                    or (c.label.startswith("exclusion") and c.after == "applies")
                ]
                raise sub.failure(
                    prop,
                    f"resident {sub.rid(before)} becomes ineligible when {change}",
                    [before],
                    change_lines(blamed or changes, totals),
                    [c.part for c in blamed],
                )
            if sub.score_key(b, i) < sub.score_key(a, i):
                fell = [c for c in changes if c.aspect == "points" and c.lower]
                raise sub.failure(
                    prop,
                    f"resident {sub.rid(before)} scores lower when {change}",
                    [before],
                    change_lines(
                        fell or changes, totals or ta.total_changes(tb, i, i, shown=False)
                    ),
                    [c.part for c in fell],
                )

    strategy = residents_with(
        sub.doc, st.tuples(st.sampled_from(names), _DELTAS), min_size=1, max_size=max_residents
    )
    run_search(sub, prop, strategy, body, settings, seed)


# -- equal treatment --------------------------------------------------------------------------


def check_equal_treatment(
    policy: PolicyLike,
    *,
    settings: Settings | None = None,
    seed: int | None = None,
    max_residents: int = DEFAULT_RESIDENTS,
) -> None:
    """Two residents with the same attributes (different ids) are treated the same.

    Each generated resident gets a twin with another id in the same population. Every output
    of every part (verdicts, points, tie-break values, allocation inputs), and so eligibility,
    score and grades, must be equal for the twins. Without a ranking lottery they must also
    share their rank and, in a capacity allocation, both be served or both wait (or the
    allocation must refuse to split their tie). With a lottery, only the lottery may separate
    them.

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        settings: Hypothesis settings; by default the current profile's.
        seed: A seed for hypothesis, to reproduce a run.
        max_residents: Most residents in one generated population (before twins).

    Raises:
        PropertyFailure: ``property 'equal-treatment'``, with the twins and the parts whose
            outputs differ.
    """
    sub = Subject(policy)
    prop = "equal-treatment"

    def body(records: list[dict[str, Any]]) -> None:
        n = len(records)
        twins = [
            {**rec, sub.idname: new}
            for rec, new in zip(records, sub.fresh_ids(records, n), strict=True)
        ]
        both = [*records, *twins]
        ev = sub.evaluate(prop, both)
        trace = Trace(sub, ev)
        differ = trace.differing(trace, np.arange(n), np.arange(n, 2 * n))
        ranks = ev.ranking.rank
        served = None
        if sub.mechanism == "capacity" and not sub.has_lottery:
            spec = sub.doc.allocation
            assert spec is not None
            if spec.mechanism == "priority":
                try:
                    served = allocate_evaluation(ev, measure_only=True).served
                except ValueError as e:
                    if not refused_tie(e):
                        raise
                    served = None  # refused to split a tie at a cut-off: as it should
        for i in range(n):
            j = n + i
            head = (
                f"residents {sub.rid(records[i])} and {sub.rid(twins[i])} have the same"
                " attributes but are treated differently"
            )
            if differ[i]:
                changes = trace.changes(trace, i, j)
                raise sub.failure(
                    prop,
                    head,
                    [records[i], twins[i]],
                    change_lines(changes, trace.total_changes(trace, i, j, shown=bool(changes))),
                    [c.part for c in changes],
                )
            if not sub.has_lottery and ranks[i] != ranks[j]:
                raise sub.failure(
                    prop,
                    head,
                    [records[i], twins[i]],
                    [f"rank: {ranks[i]} and {ranks[j]} (no lottery may separate them)"],
                )
            if served is not None and served[i] != served[j]:
                raise sub.failure(
                    prop,
                    head,
                    both,
                    [f"served: {bool(served[i])} and {bool(served[j])} (no lottery)"],
                    ["allocation"],
                )

    run_search(
        sub, prop, residents(sub.doc, min_size=1, max_size=max_residents), body, settings, seed
    )


# -- anonymity --------------------------------------------------------------------------------


@st.composite
def _shuffled(
    draw: st.DrawFn, sub: Subject, max_residents: int
) -> tuple[list[dict[str, Any]], list[int], list[str | int]]:
    records = draw(residents(sub.doc, min_size=1, max_size=max_residents))
    n = len(records)
    order = draw(st.permutations(range(n)))
    numbers = draw(st.lists(st.integers(1, 999_999), min_size=n, max_size=n, unique=True))
    return records, list(order), [resident_id(sub.doc, k) for k in numbers]


def _pre_lottery_rank(sub: Subject, ev: Evaluation) -> npt.NDArray[np.int64]:
    """Each eligible resident's rank before any lottery: 1 + the number ranked strictly ahead."""
    order = ev.ranking.order
    ties = [j for j, tb in enumerate(sub.doc.ranking.tie_break) if tb.lottery is None]
    out = np.zeros(ev.n, dtype=np.int64)
    previous: tuple[object, ...] | None = None
    start = 0
    for pos, row in enumerate(order):
        key = (*sub.score_key(ev, int(row)), *(float(ev.tie_values[row, j]) for j in ties))
        if key != previous:
            start, previous = pos + 1, key
        out[row] = start
    return out


def _first_difference(a: str, b: str) -> str:
    """Where two JSON documents first differ, as a readable line."""
    try:
        da, db = json.loads(a), json.loads(b)
    except ValueError:
        da = db = None
    if isinstance(da, dict) and isinstance(db, dict):
        for key in dict.fromkeys([*da, *db]):
            va, vb = da.get(key), db.get(key)
            if va == vb:
                continue
            if isinstance(va, list) and isinstance(vb, list):
                for k, (x, y) in enumerate(zip(va, vb, strict=False)):
                    if x != y:
                        return f"`{key}`[{k}]: {json.dumps(x)} -> {json.dumps(y)}"
                return f"`{key}`: {len(va)} entries -> {len(vb)} entries"
            return f"`{key}`: {json.dumps(va)} -> {json.dumps(vb)}"
    k = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return (
        f"character {k}: ...{a[max(0, k - 30) : k + 30]}... -> ...{b[max(0, k - 30) : k + 30]}..."
    )


def check_anonymity(
    policy: PolicyLike,
    *,
    settings: Settings | None = None,
    seed: int | None = None,
    max_residents: int = DEFAULT_RESIDENTS,
) -> None:
    """Neither the order of the rows nor the ids' values decide anything but the lottery.

    Two things are checked on each generated population:

    * **Row order.** The same residents in another order give byte-identical JSON of the
      evaluation, the ranking and the allocation (or matching, or rotation).
    * **Renaming.** The rows shuffled and every id renamed consistently give every resident,
      under its new id, the same outputs of every part (hence eligibility and score) and the
      same rank *before the lottery* (1 + the residents ranked strictly ahead on score and
      tie-breaks). A published-seed lottery keys on the ids, so renaming legitimately changes
      who wins a lottery: the full rank and the allocation are compared under renaming only for
      a policy with no lottery at all (no ranking lottery, ``mechanism: priority``).

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        settings: Hypothesis settings; by default the current profile's.
        seed: A seed for hypothesis, to reproduce a run.
        max_residents: Most residents in one generated population.

    Raises:
        PropertyFailure: ``property 'anonymity'``, with the residents and the first difference.
    """
    sub = Subject(policy)
    prop = "anonymity"
    spec = sub.doc.allocation
    no_lottery = not sub.has_lottery and (spec is None or spec.mechanism == "priority")

    def body(example: tuple[list[dict[str, Any]], list[int], list[str | int]]) -> None:
        records, order, new_ids = example
        shuffled = [records[k] for k in order]
        renamed = [{**records[k], sub.idname: new_ids[k]} for k in order]
        ev0 = sub.evaluate(prop, records)
        ev1 = sub.evaluate(prop, shuffled)
        for what, x, y in (
            ("evaluation", ev0.to_json(), ev1.to_json()),
            ("ranking", ev0.ranking.to_json(), ev1.ranking.to_json()),
            (
                "allocation",
                sub.outcome(prop, ev0, records),
                sub.outcome(prop, ev1, shuffled),
            ),
        ):
            if x != y:
                raise sub.failure(
                    prop,
                    f"the {what} changes when only the order of the rows changes"
                    f" (rows in the order {', '.join(sub.rid(r) for r in shuffled)})",
                    records,
                    [_first_difference(x or "", y or "")],
                    ["allocation"] if what == "allocation" else [],
                )
        ev2 = sub.evaluate(prop, renamed)
        t0, t2 = Trace(sub, ev0), Trace(sub, ev2)
        pre0, pre2 = _pre_lottery_rank(sub, ev0), _pre_lottery_rank(sub, ev2)
        where = np.argsort(order)  # the row of records[k] in `renamed`
        differ = t0.differing(t2, np.arange(len(records)), where)
        for i, rec in enumerate(records):
            j = int(where[i])
            head = (
                f"resident {sub.rid(rec)} is treated differently once the rows are shuffled and"
                f" the ids renamed ({sub.rid(rec)} -> {new_ids[i]})"
            )
            if differ[i]:
                changes = t0.changes(t2, i, j)
                raise sub.failure(
                    prop,
                    head,
                    [rec],
                    change_lines(changes, t0.total_changes(t2, i, j, shown=bool(changes))),
                    [c.part for c in changes],
                )
            if pre0[i] != pre2[j]:
                raise sub.failure(
                    prop, head, records, [f"rank before the lottery: {pre0[i]} -> {pre2[j]}"]
                )
            if no_lottery and ev0.ranking.rank[i] != ev2.ranking.rank[j]:
                raise sub.failure(
                    prop,
                    head,
                    records,
                    [f"rank: {ev0.ranking.rank[i]} -> {ev2.ranking.rank[j]} (no lottery)"],
                )
        if no_lottery and sub.mechanism == "capacity":
            a0 = sub.outcome(prop, ev0, records)
            a2 = sub.outcome(prop, ev2, renamed)
            assert a0 is not None
            assert a2 is not None
            served0 = _served_ids(a0)
            rename = {sub.rid(records[k]): str(new_ids[k]) for k in range(len(records))}
            expected = None if served0 is None else sorted(rename[s] for s in served0)
            got = _served_ids(a2)
            if expected != (None if got is None else sorted(got)):
                raise sub.failure(
                    prop,
                    "the allocation changes when the ids are renamed, though no lottery is drawn",
                    records,
                    [f"served: {expected} expected, got {got}"],
                    ["allocation"],
                )

    run_search(sub, prop, _shuffled(sub, max_residents), body, settings, seed)


def _served_ids(outcome: str) -> list[str] | None:
    if outcome.startswith("refused: "):
        return None
    doc = json.loads(outcome)
    return [str(r["id"]) for r in doc["residents"] if r.get("served")]


# -- determinism ------------------------------------------------------------------------------


def check_determinism(
    policy: PolicyLike,
    *,
    settings: Settings | None = None,
    seed: int | None = None,
    max_residents: int = DEFAULT_RESIDENTS,
) -> None:
    """The same policy and residents always give byte-identical results.

    Each generated population (possibly empty) is evaluated twice, by two separate
    compilations of the policy and, the second time, in chunks of a generated size; the JSON of
    the evaluation, of the ranking and of the allocation (or matching, or a two-round rotation)
    must be byte-identical, refusals included.

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        settings: Hypothesis settings; by default the current profile's.
        seed: A seed for hypothesis, to reproduce a run.
        max_residents: Most residents in one generated population.

    Raises:
        PropertyFailure: ``property 'determinism'``, with the residents and the first
            difference.
    """
    sub = Subject(policy)
    prop = "determinism"
    strategy = st.tuples(
        residents(sub.doc, min_size=0, max_size=max_residents), st.integers(1, max_residents)
    )

    def body(example: tuple[list[dict[str, Any]], int]) -> None:
        records, chunk = example
        runs = []
        for chunk_size in (None, chunk):
            cp = fa.compile_policy(sub.doc, audit=True)
            ev = sub.evaluate(prop, records, cp=cp, chunk_size=chunk_size)
            runs.append((ev.to_json(), ev.ranking.to_json(), sub.outcome(prop, ev, records) or ""))
        for what, x, y in zip(("evaluation", "ranking", "allocation"), *runs, strict=True):
            if x != y:
                raise sub.failure(
                    prop,
                    f"the {what} differs between two runs on the same residents"
                    f" (the second evaluated {chunk} at a time)",
                    records,
                    [_first_difference(x, y)],
                )

    run_search(sub, prop, strategy, body, settings, seed)


# -- allocation -------------------------------------------------------------------------------


def check_allocation(
    policy: PolicyLike,
    *,
    settings: Settings | None = None,
    seed: int | None = None,
    max_residents: int = DEFAULT_RESIDENTS,
) -> None:
    """The allocation respects capacity, wastes nothing and respects priorities.

    Capacities are generated too (the policy's, or small ones, so that units are scarce).

    * **Capacity allocations** (``allocation.capacity``, with or without reserves): no category
      gives more units than it has, and no more than the capacity in all; only eligible
      residents are served, in categories they are eligible for; nobody eligible waits while a
      unit they could take is unused (reserved units that lapse excepted); and, within each
      category, nobody eligible for it waits while someone after them in its order (its own
      ``priority``, then the base order) is served in it. With
      ``reserve_mode: max_beneficiaries`` the last is checked for the open category only.
    * **Matchings**: no resource holds more than its capacity, nobody more than
      ``units_per_resident``; only eligible residents hold resources, only resources they listed
      and may hold; and no blocking pair: no resident who would rather have a resource it may
      hold that has a free unit, or that holds someone it ranks below that resident.
    * **Rotations**: each round serves as many eligible residents as its capacity allows, none
      twice.

    A policy loaded for audit only is allocated to be measured, never matched or rotated (those
    mechanisms refuse it), so only its capacity allocation is checked.

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        settings: Hypothesis settings; by default the current profile's.
        seed: A seed for hypothesis, to reproduce a run.
        max_residents: Most residents in one generated population.

    Raises:
        PropertyFailure: ``property 'allocation'``, with the residents and what went wrong.
    """
    sub = Subject(policy)
    kind = sub.mechanism
    if kind == "capacity":
        _capacity_allocation(sub, settings, seed, max_residents)
    elif kind == "matching" and not sub.audit_only:
        _matching(sub, settings, seed, max_residents)
    elif kind == "rotation" and not sub.audit_only:
        _rotation(sub, settings, seed, max_residents)


def _capacity_allocation(
    sub: Subject, settings: Settings | None, seed: int | None, max_residents: int
) -> None:
    prop = "allocation"
    spec = sub.doc.allocation
    assert spec is not None
    strategy = st.tuples(
        residents(sub.doc, min_size=0, max_size=max_residents),
        st.one_of(st.none(), st.integers(0, max_residents + 2)),
    )

    def body(example: tuple[list[dict[str, Any]], int | None]) -> None:
        records, capacity = example
        if capacity is not None:
            try:
                category_sizes(spec, capacity)
            except AllocationError:
                capacity = None  # the reserves need more units: use the policy's capacity
        ev = sub.evaluate(prop, records)
        try:
            a = allocate_evaluation(ev, capacity=capacity, measure_only=True)
        except ValueError as e:
            if refused_tie(e):
                return  # refused to split a tie at a cut-off without a lottery: as it should
            raise
        ids = [str(i) for i in ev.ids]

        def fail(head: str, parts: Sequence[str], lines: Sequence[str] = ()) -> PropertyFailure:
            return sub.failure(prop, f"{head} (capacity {a.capacity})", records, lines, parts)

        used = a.used()
        open_ = len(a.categories) - 1
        parts = [*(f"reserve:{c}" for c in a.categories[:-1]), "allocation"]
        for c, cid in enumerate(a.categories):
            size = a.sizes[c] + (a.reverted if c == open_ else 0)
            if used[c] > size:
                raise fail(f"category `{cid}` gives {used[c]} units but has {size}", [parts[c]])
        if a.n_served > a.capacity:
            raise fail(f"{a.n_served} residents are served", ["allocation"])
        for bad in np.flatnonzero(a.served & ~ev.eligible):
            raise fail(f"resident {ids[bad]} is served but not eligible", ["allocation"])
        for c in range(open_):
            for bad in np.flatnonzero((a.category == c) & ~ev.reserve_eligible[:, c]):
                raise fail(
                    f"resident {ids[bad]} is served in `{a.categories[c]}` without being"
                    " eligible for it",
                    [parts[c]],
                )
        waiting = ev.eligible & ~a.served
        if waiting.any():
            lapsed = int(a.lapsed.sum())
            if a.n_served != a.capacity - lapsed:
                row = int(np.flatnonzero(waiting)[0])
                raise fail(
                    f"resident {ids[row]} waits while {a.capacity - lapsed - a.n_served}"
                    " units are left unused",
                    ["allocation"],
                )
            for c in range(open_):
                could = waiting & ev.reserve_eligible[:, c]
                if used[c] < a.sizes[c] and could.any():
                    row = int(np.flatnonzero(could)[0])
                    raise fail(
                        f"resident {ids[row]}, eligible for `{a.categories[c]}`, waits while"
                        f" {a.sizes[c] - used[c]} of its units are unused",
                        [parts[c]],
                    )
        checked = range(open_ + 1) if spec.reserve_mode == "precedence" else [open_]
        for c in checked:
            members = a.category == c
            if not members.any():
                continue
            if c == open_:
                elig, key = ev.eligible, a.position.astype(np.float64)
                prio = np.zeros(ev.n)
            else:
                elig = ev.reserve_eligible[:, c] & ev.eligible
                prio = (
                    ev.reserve_priority[:, c]
                    if spec.reserves[c].priority is not None
                    else np.zeros(ev.n)
                )
                key = a.position.astype(np.float64)
            # A category's order: its own priority (highest first), then the base order.
            rows = np.flatnonzero(members)
            last = max(rows, key=lambda r: (-prio[r], key[r]))
            for w in np.flatnonzero(waiting & elig):
                if (-prio[w], key[w]) < (-prio[last], key[last]):
                    raise fail(
                        f"resident {ids[w]} waits although `{a.categories[c]}` serves"
                        f" {ids[last]}, who comes after it in the category's order",
                        [parts[c]],
                        [
                            f"{ids[r]}: position {a.position[r]},"
                            f" score {show_points(ev.score_micro[r])}"
                            for r in (w, last)
                        ],
                    )

    run_search(sub, prop, strategy, body, settings, seed)


def _matching(
    sub: Subject, settings: Settings | None, seed: int | None, max_residents: int
) -> None:
    prop = "allocation"
    spec = sub.doc.allocation
    assert spec is not None
    assert spec.matching is not None
    rids = [r.id for r in spec.matching.resources]
    units = spec.matching.units_per_resident
    strategy = st.tuples(
        residents(sub.doc, min_size=0, max_size=max_residents),
        st.one_of(st.none(), st.fixed_dictionaries({r: st.integers(0, 3) for r in rids})),
    )

    def body(example: tuple[list[dict[str, Any]], dict[str, int] | None]) -> None:
        records, capacities = example
        ev = sub.evaluate(prop, records)
        try:
            m = fa.match(ev, capacities=capacities)
        except ValueError as e:
            if refused_tie(e):
                return  # lottery keys that collide: the matching refuses, as it should
            raise
        ids = [str(i) for i in ev.ids]

        def fail(head: str, parts: Sequence[str]) -> PropertyFailure:
            caps = ", ".join(f"{r}: {c}" for r, c in zip(rids, m.capacities, strict=True))
            return sub.failure(prop, f"{head} (capacities {caps})", records, (), parts)

        for r, (used, cap) in enumerate(zip(m.used(), m.capacities, strict=True)):
            if used > cap:
                raise fail(
                    f"resource `{rids[r]}` is held {used} times but has {cap} units",
                    [f"resource:{rids[r]}"],
                )
        holders: dict[int, list[tuple[int, int]]] = {}  # resource -> (rank there, row)
        for row in range(ev.n):
            if m.units[row] > units:
                raise fail(f"resident {ids[row]} holds {m.units[row]} resources", ["allocation"])
            for q in np.flatnonzero(m.held[row]):
                r, rank = int(m.preferences[row, q]), int(m.priority_rank[row, q])
                if rank <= 0 or not ev.eligible[row]:
                    raise fail(
                        f"resident {ids[row]} holds `{rids[r]}`, which it may not hold",
                        [f"resource:{rids[r]}"],
                    )
                holders.setdefault(r, []).append((rank, row))
        for row in map(int, np.flatnonzero(ev.eligible)):
            held = np.flatnonzero(m.held[row])
            worst_held = int(held.max()) if len(held) else -1
            for p in range(m.preferences.shape[1]):
                r, rank = int(m.preferences[row, p]), int(m.priority_rank[row, p])
                if r < 0 or rank <= 0 or m.held[row, p]:
                    continue
                if m.units[row] >= units and p > worst_held:
                    continue  # it holds enough resources it likes better
                free = m.used()[r] < m.capacities[r]
                beaten = [h for h in holders.get(r, []) if h[0] > rank]
                if free or beaten:
                    why = (
                        "which has a free unit"
                        if free
                        else f"which holds {ids[beaten[0][1]]}, whom it ranks below"
                        f" {ids[row]} ({beaten[0][0]} > {rank})"
                    )
                    raise fail(
                        f"resident {ids[row]} and resource `{rids[r]}` block the matching:"
                        f" {ids[row]} lists `{rids[r]}` as choice {p + 1} and would rather have"
                        f" it, {why}",
                        [f"resource:{rids[r]}"],
                    )

    run_search(sub, prop, strategy, body, settings, seed)


def _rotation(
    sub: Subject, settings: Settings | None, seed: int | None, max_residents: int
) -> None:
    prop = "allocation"
    strategy = st.tuples(
        residents(sub.doc, min_size=0, max_size=max_residents),
        st.one_of(st.none(), st.integers(0, max_residents)),
        st.integers(1, 3),
    )

    def body(example: tuple[list[dict[str, Any]], int | None, int]) -> None:
        records, capacity, rounds = example
        try:
            sim = fa.simulate(sub.cp, sub.population(records), rounds=rounds, capacity=capacity)
        except EvaluationError as e:
            raise sub.cannot(prop, e, records) from None
        except ValueError as e:
            if refused_tie(e):
                return  # refused to split a tie at the capacity without a lottery: as it should
            raise
        for r, served in enumerate(sim.served, start=1):
            expect = min(sim.capacity, sim.eligible[r - 1])
            if len(set(served)) != len(served) or len(served) != expect:
                raise sub.failure(
                    prop,
                    f"round {r} serves {len(served)} residents ({', '.join(served) or 'none'})"
                    f" where {expect} of its {sim.eligible[r - 1]} eligible should be, once"
                    f" each (capacity {sim.capacity})",
                    records,
                    (),
                    ["allocation:rotation"],
                )

    run_search(sub, prop, strategy, body, settings, seed)


# -- registry ---------------------------------------------------------------------------------

#: The property checks by name. ``protected-invariance`` checks every protected attribute; the
#: pytest plugin runs it as one test per attribute, named ``<attribute>-invariance``.
PROPERTIES: dict[str, PropertyCheck] = {
    "protected-invariance": check_protected_invariance,
    "need-monotonicity": check_need_monotonicity,
    "equal-treatment": check_equal_treatment,
    "anonymity": check_anonymity,
    "determinism": check_determinism,
    "allocation": check_allocation,
}

_DEFAULT = Settings.get_profile("default")

#: Built-in hypothesis settings by profile name: ``quick`` (20 examples, for editing a policy),
#: ``ci`` (100 examples, derandomized so that a build passes or fails the same way every time)
#: and ``thorough`` (1000 examples, by hand before adopting a policy).
PROFILES: dict[str, Settings] = {
    "quick": Settings(_DEFAULT, max_examples=20, deadline=None),
    "ci": Settings(
        _DEFAULT,
        max_examples=100,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    ),
    "thorough": Settings(
        _DEFAULT, max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    ),
}


@dataclass(frozen=True, slots=True)
class PlannedCheck:
    """One property check of one policy, ready to run (one pytest item of the plugin).

    Attributes:
        name: The check's name, e.g. ``occupation-invariance`` or ``allocation``.
        property: The name of the property in :data:`PROPERTIES`.
        skip: Why the property does not apply to this policy, or None.
        doc_path: Where in the policy file the check looks first (for reports).
        line: The line of ``doc_path`` in the policy file (0 when unknown).
        run: Run the check: ``run(settings, seed)``.
    """

    name: str
    property: str
    skip: str | None
    doc_path: tuple[str, ...]
    line: int
    run: Callable[[Settings | None, int | None], None]


def plan_checks(policy: PolicyLike, properties: Iterable[str] | None = None) -> list[PlannedCheck]:
    """The checks of ``policy``, one per property and one per protected attribute.

    Args:
        policy: The policy, compiled policy or policy file (loaded with ``audit=True``).
        properties: Names to keep: names of :data:`PROPERTIES`, or ``<attribute>-invariance``
            for one protected attribute; all by default.

    Returns:
        The checks, in the order of :data:`PROPERTIES`; those that do not apply to the policy
        (no ``need`` declared, no allocation) carry the reason in ``skip``.

    Raises:
        ValueError: if a name is neither a property nor ``<attribute>-invariance``.
        PolicyError: if the policy file cannot be loaded even for audit.
    """
    wanted = None if properties is None else set(properties)
    for name in wanted or ():
        if name not in PROPERTIES and not name.endswith("-invariance"):
            raise ArgumentError(
                "FA606",
                f"unknown property `{name}`; properties: {', '.join(PROPERTIES)}, or"
                " <attribute>-invariance",
                argument="properties",
                value=name,
                valid=", ".join(PROPERTIES),
            )
    sub = Subject(policy)
    doc = sub.doc

    def keep(*names: str) -> bool:
        return wanted is None or any(n in wanted for n in names)

    def invariance(attr: str) -> Callable[[Settings | None, int | None], None]:
        return lambda settings, seed: _invariance(sub, attr, settings, seed, DEFAULT_RESIDENTS)

    def running(check: PropertyCheck) -> Callable[[Settings | None, int | None], None]:
        return lambda settings, seed: check(sub.cp, settings=settings, seed=seed)

    def line(doc_path: tuple[str, ...]) -> int:
        return sub.cp.source_map.span(doc_path).line

    out: list[PlannedCheck] = []
    protected = doc.protected_attributes
    for attr in protected:
        if keep("protected-invariance", f"{attr}-invariance"):
            out.append(
                PlannedCheck(
                    f"{attr}-invariance",
                    "protected-invariance",
                    None,
                    ("attributes", attr),
                    line(("attributes", attr)),
                    invariance(attr),
                )
            )
    if not protected and keep("protected-invariance"):
        out.append(
            PlannedCheck(
                "protected-invariance",
                "protected-invariance",
                "no attribute is protected",
                ("attributes",),
                line(("attributes",)),
                running(check_protected_invariance),
            )
        )
    needs = need_attributes(doc)
    skips: dict[str, str | None] = {
        "need-monotonicity": None if needs else "no attribute declares `need` with an order",
        "equal-treatment": None,
        "anonymity": None,
        "determinism": None,
        "allocation": _allocation_skip(sub),
    }
    paths: dict[str, tuple[str, ...]] = {
        "need-monotonicity": ("attributes", needs[0]) if needs else ("attributes",),
        "equal-treatment": ("rules",),
        "anonymity": ("ranking",),
        "determinism": ("policy",),
        "allocation": ("allocation",),
    }
    for name, skip in skips.items():
        if keep(name):
            out.append(
                PlannedCheck(
                    name, name, skip, paths[name], line(paths[name]), running(PROPERTIES[name])
                )
            )
    return out


def _allocation_skip(sub: Subject) -> str | None:
    kind = sub.mechanism
    if kind == "none":
        return "the policy allocates nothing (no `allocation` section with a mechanism)"
    if sub.audit_only and kind in ("matching", "rotation"):
        return f"a policy loaded for audit only cannot be used for a {kind}"
    return None
