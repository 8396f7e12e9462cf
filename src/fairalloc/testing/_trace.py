"""The policy under test, its evaluation traces, and how a failed property reads.

A :class:`Subject` is a policy compiled for testing (``audit=True``, so that a policy reading a
protected attribute without a justified use can be shown unfair by example). A :class:`Trace`
reads, once per evaluation, every output of every part of the policy (each eligibility rule's
and exclusion's verdict, each priority rule's and indicator's points, each tie-break value and
each input of the allocation mechanism) and the totals they add up to, so that two evaluations
can be compared resident by resident and a difference named by the part responsible, with its
place in the policy file. :func:`run_search` runs one property with hypothesis and raises the
shrunk :class:`PropertyFailure`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis import seed as _seed
from hypothesis import settings as Settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc._compiler import CompiledPolicy, TraceColumn
from fairalloc._evaluation import Evaluation
from fairalloc._numeric import MICRO
from fairalloc._population import Population
from fairalloc._text import number
from fairalloc.allocation import allocate_evaluation
from fairalloc.errors import AllocationError, AllocationReason, EvaluationError, FairnessViolation
from fairalloc.policy._model import Policy
from fairalloc.testing._strategies import PolicyLike, resident_id, schema_of

__all__ = [
    "DEFAULT_RESIDENTS",
    "Change",
    "Mechanism",
    "Output",
    "PropertyFailure",
    "Subject",
    "Trace",
    "change_lines",
    "changes_between",
    "record_text",
    "refused_tie",
    "run_search",
    "search_settings",
    "show_number",
    "show_points",
    "show_value",
    "words",
]

#: Residents in one generated population, by default.
DEFAULT_RESIDENTS = 20
#: Records printed in a failure message at most.
_MAX_SHOWN = 8


class PropertyFailure(AssertionError):
    """A property of a policy does not hold; the message shows the minimal counterexample.

    The message reads ``property 'NAME': resident r1 ...``: what went wrong for which
    resident, the parts of the policy responsible with their place in the file and the values
    that changed, then the residents involved as records that :func:`fairalloc.evaluate`
    accepts, to reproduce the failure.

    Attributes:
        property: The property's name, e.g. ``occupation-invariance`` or ``need-monotonicity``.
        detail: The message without the ``property 'NAME': `` prefix.
        policy: The policy's file (or id, for a policy built in Python).
        residents: The residents of the minimal counterexample, as records.
        parts: The parts of the policy held responsible, as in
            :attr:`fairalloc.CompiledPolicy.reads`: ``rule:<id>``, ``indicator:<path>``,
            ``tie_break:<i>``, ``reserve:<id>``, ``resource:<id>``, ``allocation:<what>``.
    """

    def __init__(
        self,
        property: str,
        detail: str,
        *,
        policy: str = "",
        residents: Sequence[Mapping[str, Any]] = (),
        parts: Sequence[str] = (),
    ) -> None:
        self.property = property
        self.detail = detail
        self.policy = policy
        self.residents = [dict(r) for r in residents]
        self.parts = tuple(dict.fromkeys(parts))
        super().__init__(f"property '{property}': {detail}")


# -- the policy under test --------------------------------------------------------------------

Mechanism = Literal["none", "capacity", "matching", "rotation"]


@dataclass(frozen=True, slots=True)
class Output:
    """One traced output of the policy for every resident (a column of the evaluation)."""

    part: str  # as in CompiledPolicy.reads; "" for totals (score, eligible, ...)
    label: str
    where: str
    aspect: str
    values: np.ndarray
    show: Callable[[Any], str]
    shown: bool = True  # listed in messages (totals of sub-scales are not)


@dataclass(frozen=True, slots=True)
class Change:
    """How one output of one part differs between two residents (or two evaluations)."""

    part: str
    label: str
    where: str
    aspect: str
    before: str
    after: str
    lower: bool  # the value went down (points, flags from true to false)


def words(yes: str, no: str) -> Callable[[Any], str]:
    """Show a flag as one of two words."""
    return lambda v: yes if bool(v) else no


def show_points(v: Any) -> str:
    """Show micro-points as points, without trailing zeros."""
    return number(int(v) / MICRO)


def refused_tie(error: Exception) -> bool:
    """Whether a mechanism refused to decide a tie that only ids or row order could decide."""
    return isinstance(error, AllocationError) and error.reason is AllocationReason.UNDECIDED_TIE


def _grade_names(grades: tuple[str, ...]) -> Callable[[Any], str]:
    return lambda g: grades[int(g)]


def show_number(v: Any) -> str:
    """Show a number with up to 12 significant digits."""
    return f"{float(v):.12g}"


#: What each kind of trace column shows in a message, and how its values read.
_ASPECT = {
    "eligibility": "",
    "exclusion": "",
    "fires": "",
    "points": "points",
    "value": "value",
    "eligible": "",
    "priority": "priority",
    "weight": "",
    "band": "",
    "row": "table row",
}
_SHOW: dict[str, Callable[[Any], str]] = {
    "eligibility": words("holds", "fails"),
    "exclusion": words("applies", "does not apply"),
    "fires": words("fires", "does not fire"),
    "points": show_points,
    "value": show_number,
    "eligible": words("eligible", "not eligible"),
    "priority": show_number,
    "weight": show_number,
    "band": show_number,
    "row": lambda v: f"row {int(v)}",
}


class Subject:
    """A policy compiled for testing, with what the checks need to read its traces."""

    def __init__(self, policy: PolicyLike) -> None:
        self.cp = (
            policy
            if isinstance(policy, CompiledPolicy)
            else fa.compile_policy(schema_of(policy), audit=True)
        )
        self.doc: Policy = self.cp.policy
        self.idname = self.doc.id_attribute
        meta = self.doc.policy
        file = self.cp.source_map.file
        self.label = file if file and file != "<policy>" else meta.id
        self.key = f"{meta.id}@{meta.version}"
        self.audit_only = bool(self.cp.violations)
        self.has_lottery = self.cp.lottery_seed is not None

    # -- structure ---------------------------------------------------------------------
    @property
    def mechanism(self) -> Mechanism:
        """How the policy allocates: by capacity, matching, rotation, or not at all."""
        spec = self.doc.allocation
        if spec is None:
            return "none"
        if spec.matching is not None:
            return "matching"
        if spec.rotation is not None and not spec.reserves and spec.mechanism == "priority":
            return "rotation"
        return "capacity" if spec.capacity is not None else "none"

    def justified_parts(self, attribute: str) -> dict[str, str]:
        """The parts a justified use lets read ``attribute``, with a readable name."""
        out: dict[str, str] = {}
        for use in self.doc.justified_uses:
            if use.attribute != attribute:
                continue
            kind, name = use.target
            if kind == "scale":
                for c in self.cp.criteria:
                    if c.kind == "indicator" and c.key.startswith(name + "."):
                        out[f"indicator:{c.key}"] = f"scale `{name}`"
            else:
                out[f"{kind}:{name}"] = f"{kind.replace('_', '-')} `{name}`"
        return out

    def value(self, name: str, record: Mapping[str, Any]) -> Any:
        """The value a record gives ``name``, its default where missing."""
        v = record.get(name)
        return self.doc.attributes[name].default if v is None else v

    def rid(self, record: Mapping[str, Any]) -> str:
        """A record's id, as text."""
        return str(record[self.idname])

    def fresh_ids(self, records: Sequence[Mapping[str, Any]], k: int) -> list[str | int]:
        """``k`` ids no record uses, smallest numbers first."""
        taken = {self.rid(r) for r in records}
        out: list[str | int] = []
        number = 1
        while len(out) < k:
            candidate = resident_id(self.doc, number)
            if str(candidate) not in taken:
                out.append(candidate)
            number += 1
        return out

    # -- evaluation --------------------------------------------------------------------
    def population(self, records: Sequence[Mapping[str, Any]]) -> Population:
        """The records as a population validated against the policy's schema."""
        return Population.from_records(records, self.doc, source="hypothesis")

    def evaluate(
        self,
        prop: str,
        records: Sequence[Mapping[str, Any]],
        *,
        cp: CompiledPolicy | None = None,
        chunk_size: int | None = None,
    ) -> Evaluation:
        """Evaluate, turning an :class:`EvaluationError` into a counterexample."""
        population = self.population(records)
        try:
            if chunk_size is None:
                return fa.evaluate(cp or self.cp, population)
            return fa.evaluate(cp or self.cp, population, chunk_size=chunk_size)
        except EvaluationError as e:
            raise self.cannot(prop, e, records) from None

    def cannot(
        self, prop: str, error: EvaluationError, records: Sequence[Mapping[str, Any]]
    ) -> PropertyFailure:
        """The failure of a resident the policy cannot be evaluated for."""
        ids = set(error.ids)
        involved = [r for r in records if self.rid(r) in ids] or list(records)
        who = ", ".join(error.ids) or "some residents"
        return self.failure(
            prop,
            f"resident {who} cannot be evaluated: {error}",
            involved,
        )

    def outcome(
        self,
        prop: str,
        ev: Evaluation,
        records: Sequence[Mapping[str, Any]],
        *,
        capacity: int | None = None,
        capacities: Mapping[str, int] | None = None,
        rounds: int = 2,
    ) -> str | None:
        """The allocation mechanism's result as JSON, a refusal's message, or None.

        None when the policy has no mechanism, or one that refuses a policy loaded for audit
        only (matching and rotation; capacity allocations are measured).
        """
        kind = self.mechanism
        try:
            if kind == "capacity":
                return allocate_evaluation(ev, capacity=capacity, measure_only=True).to_json()
            if kind == "none" or self.audit_only:
                return None
            if kind == "matching":
                return fa.match(ev, capacities=capacities).to_json()
            assert ev.population is not None
            return fa.simulate(self.cp, ev.population, rounds=rounds, capacity=capacity).to_json()
        except EvaluationError as e:
            raise self.cannot(prop, e, records) from None
        except FairnessViolation:
            return None
        except ValueError as e:
            if refused_tie(e):  # the documented refusal to let ids or row order decide
                return f"refused: {e}"
            raise

    # -- traces ------------------------------------------------------------------------
    def outputs(self, ev: Evaluation) -> list[Output]:
        """Every traced output of every part of the policy, one column each."""
        cp = self.cp
        return [
            Output(col.part, label, cp.span(col.doc_path), aspect, col.values(ev), _SHOW[col.kind])
            for col in cp.trace_columns()
            for label, aspect in [self._describe(col)]
        ]

    def _describe(self, col: TraceColumn) -> tuple[str, str]:
        """The label of a trace column's part, and the aspect it shows."""
        kind, name = col.part.split(":", 1)
        if kind == "rule":
            what = {"eligibility": "eligibility rule", "exclusion": "exclusion"}
            return f"{what.get(col.kind, 'priority rule')} `{name}`", _ASPECT[col.kind]
        if kind == "tie_break":
            by = self.doc.ranking.tie_break[int(name)].by
            return f"tie-break {name} (`{by}`)", _ASPECT[col.kind]
        if kind == "allocation":
            return name.replace("-", " "), _ASPECT[col.kind]
        if kind == "grade":
            return f"grade table of `{name}`", _ASPECT[col.kind]
        return f"{kind} `{name}`", _ASPECT[col.kind]

    def totals(self, ev: Evaluation) -> list[Output]:
        """What the parts add up to: eligibility, score, grades, score terms, scale totals."""
        cp = self.cp
        outs = [
            Output("", "eligible", "", "", ev.eligible, words("yes", "no")),
            Output("", "score", "", "", ev.score_micro, show_points),
        ]
        for s in cp.graded_scales:
            outs.append(
                Output(
                    "",
                    f"grade of `{s.path}`",
                    "",
                    "",
                    ev.grades[:, s.grade_index],
                    _grade_names(s.grades),
                )
            )
        tiers = self.doc.score.method == "tiers"
        for j, (name, _w) in enumerate(cp.score_terms):
            outs.append(
                Output("", f"score term `{name}`", "", "", ev.terms[:, j], show_points, shown=tiers)
            )
        for j, path in enumerate(cp.scale_paths):
            outs.append(
                Output(
                    "",
                    f"total of scale `{path}`",
                    "",
                    "",
                    ev.scale_totals[:, j],
                    show_points,
                    shown=False,
                )
            )
        return outs

    def score_key(self, ev: Evaluation, row: int) -> tuple[int, ...]:
        """What the ranking orders by first: the score, or with ``tiers`` every tier."""
        if self.doc.score.method == "tiers":
            return tuple(int(v) for v in ev.terms[row])
        return (int(ev.score_micro[row]),)

    def failure(
        self,
        prop: str,
        head: str,
        records: Sequence[Mapping[str, Any]],
        lines: Iterable[str] = (),
        parts: Sequence[str] = (),
    ) -> PropertyFailure:
        """A failure: ``head``, indented ``lines``, then the residents as records."""
        body = [head + (":" if lines else "")]
        body += [f"    {line}" for line in lines]
        for rec in records[:_MAX_SHOWN]:
            body.append("  resident: " + record_text(rec).replace("\n", "\n" + " " * 12))
        if len(records) > _MAX_SHOWN:
            body.append(f"  (and {len(records) - _MAX_SHOWN} more residents)")
        return PropertyFailure(
            prop, "\n".join(body), policy=self.label, residents=records, parts=parts
        )


def record_text(record: Mapping[str, Any], width: int = 88) -> str:
    """A record as a Python dict literal (dates as ISO text), wrapped between entries."""
    items = [
        f"{k!r}: {(v.isoformat() if isinstance(v, dt.date) else v)!r}" for k, v in record.items()
    ]
    lines: list[str] = []
    line = "{"
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else "")
        if line != "{" and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = " " + piece
        else:
            line += ("" if line == "{" else " ") + piece
    lines.append(line + "}")
    return "\n".join(lines)


def show_value(v: Any) -> str:
    """Show an attribute's value as in a record (dates as ISO text)."""
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is None:
        return "missing"
    return repr(v)


def changes_between(a: Sequence[Output], b: Sequence[Output], i: int, j: int) -> list[Change]:
    """The outputs that differ between row ``i`` of ``a`` and row ``j`` of ``b``."""
    out = []
    for oa, ob in zip(a, b, strict=True):
        va, vb = oa.values[i], ob.values[j]
        if va != vb:
            out.append(
                Change(
                    oa.part,
                    oa.label,
                    oa.where,
                    oa.aspect,
                    oa.show(va),
                    ob.show(vb),
                    bool(vb < va),
                )
            )
    return out


def change_lines(changes: Sequence[Change], totals: Sequence[Change] = ()) -> list[str]:
    """One line per part: ``label (file:line:col): aspect before -> after; ...``."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for c in changes:
        text = f"{c.aspect} {c.before} -> {c.after}".strip()
        grouped.setdefault((c.label, c.where), []).append(text)
    out = [
        f"{label}{f' ({where})' if where else ''}: {'; '.join(texts)}"
        for (label, where), texts in grouped.items()
    ]
    out += [f"{c.label}: {c.before} -> {c.after}" for c in totals]
    return out


class Trace:
    """The outputs and totals of one evaluation, read once."""

    def __init__(self, sub: Subject, ev: Evaluation) -> None:
        self.ev = ev
        self.outputs = sub.outputs(ev)
        self.totals = sub.totals(ev)

    def differing(
        self, other: Trace, rows: npt.ArrayLike, other_rows: npt.ArrayLike
    ) -> npt.NDArray[np.bool_]:
        """Whether anything differs between ``rows`` here and ``other_rows`` in ``other``."""
        ra, rb = np.asarray(rows, dtype=np.intp), np.asarray(other_rows, dtype=np.intp)
        out = np.zeros(len(ra), dtype=bool)
        for oa, ob in zip(
            [*self.outputs, *self.totals], [*other.outputs, *other.totals], strict=True
        ):
            out |= oa.values[ra] != ob.values[rb]
        return out

    def changes(self, other: Trace, i: int, j: int) -> list[Change]:
        """How the outputs of the parts differ between row ``i`` and ``other``'s row ``j``."""
        return changes_between(self.outputs, other.outputs, i, j)

    def total_changes(self, other: Trace, i: int, j: int, *, shown: bool = True) -> list[Change]:
        """How the totals differ (only those shown in messages, with ``shown``)."""
        keep = [k for k, o in enumerate(self.totals) if o.shown or not shown]
        return changes_between(
            [self.totals[k] for k in keep], [other.totals[k] for k in keep], i, j
        )


# -- running a property with hypothesis -------------------------------------------------------


def search_settings(base: Settings | None) -> Settings:
    """``base`` (or the current profile) without deadlines, explain phase or output."""
    parent = base if base is not None else Settings()
    verbosity = parent.verbosity if parent.verbosity > Verbosity.normal else Verbosity.quiet
    suppressed = [*parent.suppress_health_check, HealthCheck.too_slow, HealthCheck.data_too_large]
    # The explain phase only annotates hypothesis' own report, which a PropertyFailure replaces.
    phases = [p for p in parent.phases if p != Phase.explain]
    return Settings(
        parent,
        phases=phases,
        deadline=None,
        report_multiple_bugs=False,
        verbosity=verbosity,
        suppress_health_check=list(dict.fromkeys(suppressed)),
    )


def run_search(
    sub: Subject,
    prop: str,
    strategy: st.SearchStrategy[Any],
    body: Callable[[Any], None],
    settings: Settings | None,
    seed: int | None,
) -> None:
    """Search for a counterexample to ``body``; raise its :class:`PropertyFailure`, shrunk."""

    def test(example: Any) -> None:
        body(example)

    # Hypothesis keys its example database by the test's name: one entry per policy and property.
    digest = hashlib.sha256(f"{sub.key}\0{prop}".encode()).hexdigest()[:12]
    test.__name__ = test.__qualname__ = "fairalloc_" + re.sub(r"\W", "_", prop) + "_" + digest
    run: Callable[[], None] = search_settings(settings)(given(strategy)(test))
    if seed is not None:
        run = _seed(seed)(run)
    try:
        run()
    except PropertyFailure as failure:
        # A fresh exception: without hypothesis' notes on the inner test and its traceback.
        raise PropertyFailure(
            failure.property,
            failure.detail,
            policy=failure.policy,
            residents=failure.residents,
            parts=failure.parts,
        ) from None
