"""Build the facts of one resident's explanation from what the engine and mechanism recorded.

Nothing here decides anything: every verdict, point, total, rank and category is read from the
:class:`~fairalloc.Evaluation` and the allocation result. The only values computed are the
inputs the engine read (re-read from the resident's data, or reported by
:func:`fairalloc._engine.indicator_inputs`) and comparisons of recorded keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

import fairalloc._engine as _engine
from fairalloc._numeric import MICRO
from fairalloc._ranking import lottery_key
from fairalloc.errors import ArgumentError, ArgumentTypeError
from fairalloc.explain._counterfactual import search, written_value
from fairalloc.explain._facts import (
    Check,
    CutoffFact,
    Decision,
    Facts,
    IndicatorLine,
    LotteryFact,
    MatchChoice,
    Outcome,
    PriorityLine,
    ScaleLine,
    TableLine,
    TermLine,
    Text,
    Value,
)

if TYPE_CHECKING:
    from fairalloc._compiler import CompiledPolicy, ReadPath
    from fairalloc._evaluation import Evaluation
    from fairalloc.allocation import Allocation
    from fairalloc.allocation._matching import MatchingResult
    from fairalloc.allocation._rotation import Simulation
    from fairalloc.policy._model import Band, LocalizedText

__all__ = ["build_facts", "lottery_recipe"]


def lottery_recipe(seed: str, resident_id: str, weight: float | None = None) -> str:
    """Python (standard library only) that recomputes a resident's lottery key and draw."""
    lines = [
        "import hashlib, math",
        f"seed, resident = {seed!r}, {resident_id!r}",
        "key = int.from_bytes(hashlib.blake2b(resident.encode('utf-8'),"
        " key=seed.encode('utf-8'), digest_size=8).digest(), 'big')",
        "print(f'{key:016x}')",
    ]
    if weight is not None:
        lines.append(f"print(-math.log(((key >> 12) + 0.5) / 2**52) / {weight!r})")
    return "\n".join(lines)


def build_facts(
    source: Evaluation | Allocation | MatchingResult | Simulation,
    resident_id: str,
    *,
    counterfactuals: bool = True,
    target_rank: int | None = None,
    attributes: Sequence[str] | None = None,
    limit: int = 5,
) -> Facts:
    """The facts of ``resident_id``'s explanation; see :func:`fairalloc.explain.explain`."""
    from fairalloc._evaluation import Evaluation
    from fairalloc.allocation import Allocation
    from fairalloc.allocation._matching import MatchingResult
    from fairalloc.allocation._rotation import Simulation

    notes: list[tuple[str, dict[str, Any]]] = []
    alloc: Allocation | None = None
    matching: MatchingResult | None = None
    sim: Simulation | None = None
    if isinstance(source, Allocation):
        alloc = source
        ev = source.evaluation
    elif isinstance(source, MatchingResult):
        matching = source
        ev = source.evaluation
    elif isinstance(source, Simulation):
        sim = source
        ev = _rotation_evaluation(source)
    elif isinstance(source, Evaluation):
        ev = source
    else:
        raise ArgumentTypeError(
            "FA640",
            "explain an Evaluation, Allocation, MatchingResult or Simulation,"
            f" not {type(source).__name__}",
            argument="source",
        )
    if sim is not None and resident_id not in ev._index:
        rec = sim.record(resident_id)  # KeyError if the resident never took part
        raise KeyError(
            f"resident {resident_id!r} left before round {rec['departed']}; its history is"
            " in simulation.record(), and only residents present at the end are explained"
        )
    row = ev.index_of(resident_id)
    cp = ev.policy
    doc = cp.policy
    ranking = ev.ranking
    rank = int(ranking.rank[row])
    n_eligible = int(ev.eligible.sum())
    outcome = Outcome(
        kind="ranking",
        eligible=bool(ev.eligible[row]),
        rank=rank or None,
        n_eligible=n_eligible,
        tied=bool(ranking.tied[row]),
    )
    cutoffs: tuple[CutoffFact, ...] = ()
    decision: Decision | None = None
    lottery: LotteryFact | None = None
    choices: tuple[MatchChoice, ...] = ()
    if cp.lottery_seed is not None:
        used = bool(ranking.lottery_used[row])
        key = int(ranking.lottery[row]) if used else lottery_key(cp.lottery_seed, resident_id)
        lottery = LotteryFact(
            seed=cp.lottery_seed,
            key=f"{key:016x}",
            role="tie_break",
            drawn=used,
            weight=None,
            draw=None,
            recipe=lottery_recipe(cp.lottery_seed, resident_id),
        )
    if alloc is not None:
        outcome, cutoffs, decision, mech_lottery = _allocation_facts(alloc, row, outcome)
        lottery = mech_lottery or lottery
    elif matching is not None:
        outcome, choices = _matching_facts(matching, row, outcome)
    elif sim is not None:
        outcome = _rotation_outcome(sim, resident_id, outcome)
        notes.append(("rotation_end", {"rounds": sim.rounds}))
    cfs: tuple[Any, ...] = ()
    target = None
    if counterfactuals:
        if matching is not None or sim is not None:
            notes.append(("cf_mechanism", {"mechanism": outcome.kind}))
        else:
            target, found, more = search(
                ev, row, alloc, target_rank=target_rank, attributes=attributes, limit=limit
            )
            cfs = tuple(found)
            notes.extend(more)
    return Facts(
        resident=str(resident_id),
        policy_id=doc.policy.id,
        policy_version=doc.policy.version,
        policy_title=doc.policy.title,
        as_of=cp.as_of,
        method=doc.score.method,
        checks=_checks(ev, row),
        indicators=_indicators(ev, row),
        priority=_priority(ev, row),
        scales=_scales(ev, row),
        terms=_terms(ev, row),
        score_micro=int(ev.score_micro[row]),
        tie_values={
            t.label: float(ev.tie_values[row, j])
            for j, t in enumerate(cp._tie_breaks)
            if t.kernel is not None
        },
        outcome=outcome,
        cutoffs=cutoffs,
        decision=decision,
        lottery=lottery,
        choices=choices,
        counterfactuals=cfs,
        tables=_tables(ev, row),
        target=target,
        notes=tuple(notes),
        level_titles={
            **{n: dict(a.level_titles) for n, a in doc.attributes.items() if a.level_titles},
            **{n: dict(d.level_titles) for n, d in doc.derived.items() if d.level_titles},
            **_grade_titles(cp),
        },
    )


def _grade_titles(cp: CompiledPolicy) -> dict[str, dict[str, LocalizedText]]:
    """The titles of every scale's grades, keyed as an expression reads them: ``grade(PATH)``."""
    out: dict[str, dict[str, LocalizedText]] = {}
    for top in cp.scales:
        for node in top.walk():
            doc_path = ("scales", *node.path.replace(".", ".scales.").split("."))
            scale = _doc_at(cp, doc_path)
            titles = {g.grade: g.title for g in scale.grades or () if g.title is not None}
            if titles:
                out[f"grade({node.path})"] = titles
    return out


# -- inputs -----------------------------------------------------------------------------------


def _reads(ev: Evaluation, row: int, part: str) -> tuple[dict[str, Value], dict[str, list[str]]]:
    """The attributes (as the resident's data has them) and parameters a part reads."""
    cp = ev.policy
    pop = ev.population
    paths: list[ReadPath] = cp.reads.get(part, [])
    values: dict[str, Value] = {}
    via: dict[str, list[str]] = {}
    for p in paths:
        if pop is not None and p.attribute in pop.columns:
            attr = pop.schema.attributes[p.attribute]
            values[p.attribute] = written_value(attr, pop.columns[p.attribute][row])
        if p.via:
            via[p.attribute] = list(p.via)
    for name in sorted(cp.parameter_reads.get(part, ())):
        values[name] = _parameter(cp.parameters.get(name))
    return values, via


def _parameter(v: object) -> Value:
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    return str(v)


def _doc_at(cp: CompiledPolicy, path: Sequence[str]) -> Any:
    node: Any = cp.policy
    for step in path:
        if isinstance(node, dict):
            node = node[step]
        elif isinstance(node, list):
            node = node[int(step)]
        else:
            node = getattr(node, step)
    return node


def _source(obj: Any) -> str | None:
    src = getattr(obj, "source", None)
    if src is None:
        return None
    return src if isinstance(src, str) else ", ".join(src)


def _checks(ev: Evaluation, row: int) -> tuple[Check, ...]:
    cp = ev.policy
    doc = cp.policy
    out = []
    for j, rule in enumerate(doc.rules.eligibility):
        held = bool(ev.eligibility[row, j])
        reads, _ = _reads(ev, row, f"rule:{rule.id}")
        out.append(
            Check(
                rule=rule.id,
                kind="eligibility",
                title=rule.title,
                held=held,
                deciding=not held,
                reads=reads,
                source=_source(rule),
                where=cp.span(("rules", "eligibility", str(j))),
            )
        )
    for j, ex in enumerate(doc.rules.exclusions):
        applied = bool(ev.exclusions[row, j])
        reads, _ = _reads(ev, row, f"rule:{ex.id}")
        out.append(
            Check(
                rule=ex.id,
                kind="exclusion",
                title=ex.title,
                held=applied,
                deciding=applied,
                reads=reads,
                reason=ex.reason,
                source=_source(ex),
                where=cp.span(("rules", "exclusions", str(j))),
            )
        )
    return tuple(out)


def _bounds_text(band: Band) -> str:
    parts = []
    if band.min is not None:
        parts.append(f"≥ {_num(band.min)}")
    if band.above is not None:
        parts.append(f"> {_num(band.above)}")
    if band.max is not None:
        parts.append(f"≤ {_num(band.max)}")
    if band.below is not None:
        parts.append(f"< {_num(band.below)}")
    return ", ".join(parts)  # empty: the catch-all band


def _num(x: float) -> str:
    f = float(x)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def _indicators(ev: Evaluation, row: int) -> tuple[IndicatorLine, ...]:
    cp = ev.policy
    pop = ev.population
    if not cp._indicators:
        return ()
    if pop is None:  # pragma: no cover - evaluations made by the engine hold their population
        raise ArgumentError("FA610", "this evaluation does not hold its residents")
    inputs = _engine.indicator_inputs(cp, pop, np.array([row], dtype=np.intp))
    weights = cp.criterion_weights()
    out = []
    for i, code in enumerate(cp._indicators):
        crit = cp.criteria[code.criterion]
        ind = _doc_at(cp, crit.doc_path)
        reads, _ = _reads(ev, row, f"indicator:{crit.key}")
        x = float(inputs.values[0, i])
        k = int(inputs.bands[0, i])
        of = ind.of if isinstance(ind.of, str) and ind.of in cp.policy.attributes else None
        value: Value
        if of is not None and of in pop.columns:
            value = written_value(cp.policy.attributes[of], pop.columns[of][row])
        else:
            value = int(x) if x.is_integer() else x
        if ind.bands is not None:
            band = _bounds_text(ind.bands[k]) if k >= 0 else "-"
        elif ind.lookup is not None:
            levels = code.levels or ()
            band = levels[k] if 0 <= k < len(levels) else str(k)
            if of is None:  # an expression: show its level, not the code behind it
                value = band
        elif ind.table is not None:
            band = f"row {k + 1}" if k >= 0 else "-"
            value = _num(x + 1) if k >= 0 else value
        else:
            band = "formula"
        out.append(
            IndicatorLine(
                path=crit.key,
                scale=crit.scale,
                title=ind.title,
                attribute=of,
                of=ind.of if isinstance(ind.of, str) else None,
                value=value,
                band=band,
                band_index=k,
                kind="bands"
                if ind.bands is not None
                else "lookup"
                if ind.lookup
                else "table"
                if ind.table is not None
                else "formula",
                weight=crit.weight,
                capped=bool(inputs.capped[0, i]),
                points_micro=int(ev.points[row, code.criterion]),
                reads=reads,
                counts=weights[code.criterion] != 0,
            )
        )
    return tuple(out)


def _tables(ev: Evaluation, row: int) -> tuple[TableLine, ...]:
    cp = ev.policy
    pop = ev.population
    if not cp.tables or pop is None:
        return ()
    inputs = _engine.table_inputs(cp, pop, np.array([row], dtype=np.intp))
    doc = cp.policy
    out = []

    def order(t: Any) -> tuple[int, int]:
        # As a reader follows them: dimension grades, then the grades made of them, then the
        # derived values and indicators that read grades.
        kind, _, name = t.part.partition(":")
        return ({"grade": 0, "derived": 1}.get(kind, 2), -name.count(".") if kind == "grade" else 0)

    ordered = sorted(zip(cp.tables, inputs, strict=True), key=lambda p: order(p[0]))
    for t, values in ordered:
        k = int(ev.table_rows[row, t.index])
        kind, _, name = t.part.partition(":")
        output_title = None
        if kind == "derived":
            title = doc.derived[name].title
            table = doc.derived[name].table
        else:
            node: Any = _doc_at(cp, t.doc_path[:-1])
            title = node.title
            table = node.table if kind == "indicator" else node.grade_table
            if kind == "grade":
                output_title = next(
                    (g.title for g in node.grades if g.grade == t.output_labels[k]), None
                )
        assert table is not None
        out.append(
            TableLine(
                part=t.part,
                title=title,
                hit=t.hit,
                row=k,
                row_title=table.rows[k].title,
                inputs=tuple(
                    (n, e, d.label(float(v[0])))
                    for n, e, d, v in zip(t.names, t.texts, t.domains, values, strict=True)
                ),
                cells=tuple((n, c.text) for n, c in zip(t.names, t.cells[k], strict=True)),
                output=t.output_labels[k],
                output_title=output_title,
            )
        )
    return tuple(out)


def _priority(ev: Evaluation, row: int) -> tuple[PriorityLine, ...]:
    cp = ev.policy
    weights = cp.criterion_weights()
    out = []
    for j, (code, rule) in enumerate(zip(cp._priority, cp.policy.rules.priority, strict=True)):
        reads, via = _reads(ev, row, f"rule:{rule.id}")
        out.append(
            PriorityLine(
                rule=rule.id,
                title=rule.title,
                fired=bool(ev.fired[row, j]),
                points_micro=int(ev.points[row, code.criterion]),
                reads=reads,
                via=via,
                source=_source(rule),
                where=cp.span(("rules", "priority", str(j))),
                counts=weights[code.criterion] != 0,
            )
        )
    return tuple(out)


def _scales(ev: Evaluation, row: int) -> tuple[ScaleLine, ...]:
    cp = ev.policy
    out = []
    for top in cp.scales:
        for node in top.walk():
            doc_path = ("scales", *node.path.replace(".", ".scales.").split("."))
            scale = _doc_at(cp, doc_path)
            where = cp.span(doc_path)
            parts: dict[str, int] = {
                cp.criteria[c].key: int(ev.points[row, c]) for c in node.indicators
            }
            for child in node.children:
                total = ev.scale_totals[row : row + 1, child.index]
                # The child's total weighted exactly as the engine weighted it.
                weighted = _engine._weighted(total, child.weight, where, ev.ids[row : row + 1])
                parts[child.path] = int(weighted[0])
            total_micro = int(ev.scale_totals[row, node.index])
            if sum(parts.values()) != total_micro:  # pragma: no cover - an engine invariant
                raise AssertionError(f"the parts of `{node.path}` do not add up to its total")
            grade = grade_title = None
            if node.grade_index >= 0:
                g = int(ev.grades[row, node.grade_index])
                grade = node.grades[g]
                grade_title = scale.grades[g].title if scale.grades else None
            out.append(
                ScaleLine(
                    path=node.path,
                    title=scale.title,
                    weight=node.weight,
                    total_micro=total_micro,
                    parts_micro=parts,
                    grade=grade,
                    grade_title=grade_title,
                )
            )
    return tuple(out)


def _terms(ev: Evaluation, row: int) -> tuple[TermLine, ...]:
    cp = ev.policy
    prio = [p.criterion for p in cp._priority]
    index = {n.path: n.index for top in cp.scales for n in top.walk()}
    out = []
    for j, (name, weight) in enumerate(cp.score_terms):
        title: Text = None
        if name == "priority":
            raw = int(ev.points[row, prio].sum())
        else:
            title = _doc_at(cp, ("scales", *name.replace(".", ".scales.").split("."))).title
            raw = int(ev.scale_totals[row, index[name]])
        out.append(TermLine(name, title, weight, int(ev.terms[row, j]), raw))
    return tuple(out)


# -- outcomes ---------------------------------------------------------------------------------


def _allocation_facts(
    alloc: Allocation, row: int, base: Outcome
) -> tuple[Outcome, tuple[CutoffFact, ...], Decision | None, LotteryFact | None]:
    ev = alloc.evaluation
    cp = ev.policy
    spec = cp.policy.allocation
    assert spec is not None
    c = int(alloc.category[row])
    outcome = Outcome(
        kind="allocation",
        eligible=base.eligible,
        rank=base.rank,
        n_eligible=base.n_eligible,
        tied=base.tied,
        served=bool(alloc.served[row]),
        category=alloc.categories[c] if c >= 0 else None,
        position=int(alloc.position[row]) or None,
        capacity=alloc.capacity,
    )
    by_score = alloc.mechanism == "priority"
    score = int(ev.score_micro[row])
    cutoffs = []
    for k, cut in enumerate(alloc.cutoffs()):
        is_open = k == len(alloc.categories) - 1
        eligible = bool(ev.eligible[row]) and (is_open or bool(ev.reserve_eligible[row, k]))
        # In a lottery the draw decides, not the score: the cut-off is a place in the draw.
        cut_micro = _cutoff_micro(alloc, cut.last_id) if by_score else None
        cutoffs.append(
            CutoffFact(
                category=cut.category,
                title=None if is_open else spec.reserves[k].title,
                size=cut.size,
                used=cut.used,
                score_micro=cut_micro,
                position=cut.position,
                eligible=eligible,
                margin_micro=score - cut_micro if cut_micro is not None and eligible else None,
            )
        )
    decision = _decision(alloc, row)
    lottery = None
    if alloc.lottery_key is not None and ev.eligible[row]:
        assert spec.lottery is not None
        assert alloc.lottery_draw is not None
        weighted = spec.lottery.weight is not None
        weight = float(ev.lottery_weight[row]) if weighted else None
        lottery = LotteryFact(
            seed=spec.lottery.seed,
            key=f"{int(alloc.lottery_key[row]):016x}",
            role="mechanism",
            drawn=True,
            weight=weight,
            draw=float(alloc.lottery_draw[row]) if weighted else None,
            recipe=lottery_recipe(spec.lottery.seed, str(ev.id_column[row]), weight),
        )
    return outcome, tuple(cutoffs), decision, lottery


def _cutoff_micro(alloc: Allocation, last_id: str | None) -> int | None:
    if last_id is None:
        return None
    ev = alloc.evaluation
    return int(ev.score_micro[ev.index_of(last_id)])


def _category_order(alloc: Allocation, c: int) -> npt.NDArray[np.intp]:
    """The residents eligible for category ``c`` in the order it takes them."""
    ev = alloc.evaluation
    order = alloc.order
    if c == len(alloc.categories) - 1:
        return order
    spec = ev.policy.policy.allocation
    assert spec is not None
    rows: npt.NDArray[np.intp] = order[ev.reserve_eligible[order, c]]
    if spec.reserves[c].priority is not None:
        rows = rows[np.lexsort((np.arange(len(rows)), -ev.reserve_priority[rows, c]))]
    return rows


def _decision(alloc: Allocation, row: int) -> Decision | None:
    """Compare the resident with its neighbour across the cut-off of the category that decided.

    Served: the first resident eligible for the resident's category, after it in that
    category's order, who was not served. Not served: the last resident the open category
    served. Keys are compared in that category's order.
    """
    ev = alloc.evaluation
    if not ev.eligible[row]:
        return None
    open_c = len(alloc.categories) - 1
    if alloc.served[row]:
        c = int(alloc.category[row])
        rows = _category_order(alloc, c)
        at = int(np.flatnonzero(rows == row)[0])
        later = rows[at + 1 :]
        waiting = later[~alloc.served[later]]
        if not len(waiting):
            return None
        return _first_difference(alloc, row, int(waiting[0]), "first_waiting", c)
    rows = alloc.order
    served = rows[alloc.category[rows] == open_c]
    if not len(served):
        return None
    return _first_difference(alloc, row, int(served[-1]), "last_served", open_c)


def _first_difference(alloc: Allocation, row: int, other: int, kind: str, c: int) -> Decision:
    ev = alloc.evaluation
    cp = ev.policy
    spec = cp.policy.allocation
    assert spec is not None
    names: list[str] = []
    mine: list[Value] = []
    theirs: list[Value] = []
    reserve = spec.reserves[c] if c < len(alloc.categories) - 1 else None
    if reserve is not None and reserve.priority is not None:
        names.append(f"priority: {reserve.id}")
        mine.append(float(ev.reserve_priority[row, c]))
        theirs.append(float(ev.reserve_priority[other, c]))
    if alloc.mechanism == "priority":
        if cp.policy.score.method == "tiers":
            names += [f"score: {name}" for name, _ in cp.score_terms]
            for j in range(len(cp.score_terms)):
                mine.append(int(ev.terms[row, j]) / MICRO)
                theirs.append(int(ev.terms[other, j]) / MICRO)
        else:
            names.append("score")
            mine.append(int(ev.score_micro[row]) / MICRO)
            theirs.append(int(ev.score_micro[other]) / MICRO)
        for j, t in enumerate(cp._tie_breaks):
            if t.kernel is not None:
                names.append(t.label)
                mine.append(float(ev.tie_values[row, j]))
                theirs.append(float(ev.tie_values[other, j]))
        if cp.lottery_seed is not None:
            names.append("lottery")
            mine.append(f"{lottery_key(cp.lottery_seed, str(ev.id_column[row])):016x}")
            theirs.append(f"{lottery_key(cp.lottery_seed, str(ev.id_column[other])):016x}")
    else:
        assert alloc.lottery_key is not None
        assert alloc.lottery_draw is not None
        if spec.lottery is not None and spec.lottery.weight is not None:
            names.append("lottery draw")
            mine.append(float(alloc.lottery_draw[row]))
            theirs.append(float(alloc.lottery_draw[other]))
        names.append("lottery")
        mine.append(f"{int(alloc.lottery_key[row]):016x}")
        theirs.append(f"{int(alloc.lottery_key[other]):016x}")
    title = reserve.title if reserve is not None else None
    category = alloc.categories[c]
    equal: list[str] = []
    for name, a, b in zip(names, mine, theirs, strict=True):
        if a != b:
            return Decision(kind, name, a, b, tuple(equal), category, title)  # type: ignore[arg-type]
        equal.append(name)
    return Decision(kind, "none", None, None, tuple(equal), category, title)  # type: ignore[arg-type]


def _matching_facts(
    m: MatchingResult, row: int, base: Outcome
) -> tuple[Outcome, tuple[MatchChoice, ...]]:
    rec = m.record(row)
    cuts = {c.resource: c for c in m.cutoffs()}
    spec = m.evaluation.policy.policy.allocation
    titles: dict[str, Text] = {}
    if spec is not None and spec.matching is not None:
        titles = {r.id: r.title for r in spec.matching.resources}
    choices = []
    for j, name in enumerate(rec["preferences"]):
        cut = cuts[name]
        choices.append(
            MatchChoice(
                choice=j + 1,
                resource=name,
                title=titles.get(name),
                held=name in rec["resources"],
                rank=rec["priority_ranks"].get(name),
                last_rank=cut.last_rank,
                capacity=cut.capacity,
                used=cut.used,
            )
        )
    outcome = Outcome(
        kind="matching",
        eligible=base.eligible,
        rank=base.rank,
        n_eligible=base.n_eligible,
        tied=base.tied,
        served=bool(rec["served"]),
        resources=tuple(rec["resources"]),
    )
    return outcome, tuple(choices)


def _rotation_evaluation(sim: Simulation) -> Evaluation:
    cached: Evaluation | None = getattr(sim, "_explained", None)
    if cached is None:
        cached = _engine.evaluate_compiled(sim.policy, sim.population)
        sim._explained = cached  # type: ignore[attr-defined]
    return cached


def _rotation_outcome(sim: Simulation, resident_id: str, base: Outcome) -> Outcome:
    rec = sim.record(resident_id)
    waited = rec["waited_before_first"]
    return Outcome(
        kind="rotation",
        eligible=base.eligible,
        rank=base.rank,
        n_eligible=base.n_eligible,
        tied=base.tied,
        served=rec["times_served"] > 0,
        capacity=sim.capacity,
        rounds=sim.rounds,
        rounds_served=tuple(rec["rounds_served"]),
        waited=waited if waited is not None else rec["current_wait"],
        longest_wait=rec["longest_wait"],
    )
