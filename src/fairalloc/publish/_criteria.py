"""The selection criteria as a public document (§2.2.1), from the policy's data alone.

Who may apply and who is excluded, every scale and indicator with its bands or lookup in a
table, the grades, the priority rules, how the score is formed, the tie-breaks and the lottery
procedure, reserves and capacity, every justified use of a protected attribute with its reason
and source article, the parameters with their dated values, and the review procedure and
deadline when the policy declares them. Nothing is read but the policy: the same policy gives
the same bytes.
"""

from __future__ import annotations

from typing import Any

from fairalloc.policy import _model as M
from fairalloc.publish._doc import Block, page, to_html, to_markdown
from fairalloc.publish._words import check_lang, level_title, text, word

__all__ = ["criteria", "criteria_blocks"]


def _num(x: float) -> str:
    f = float(x)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def _source(obj: Any) -> str:
    src = getattr(obj, "source", None)
    if src is None:
        return "—"
    return ", ".join(src) if isinstance(src, list) else str(src)


def _bounds(lang: str, b: M._Bounded) -> str:
    parts = []
    if b.min is not None:
        parts.append(f"≥ {_num(b.min)}")
    if b.above is not None:
        parts.append(f"> {_num(b.above)}")
    if b.max is not None:
        parts.append(f"≤ {_num(b.max)}")
    if b.below is not None:
        parts.append(f"< {_num(b.below)}")
    return ", ".join(parts) if parts else word(lang, "otherwise")


def _attr_name(policy: M.Policy, name: str, lang: str) -> str:
    attr = policy.attributes.get(name)
    if attr is None:
        derived = policy.derived.get(name)
        title = derived.title if derived is not None else None
    else:
        title = attr.title
    shown = text(title, lang, name)
    return shown if shown == name else f"{shown} ({name})"


def _when(lang: str, value: str | bool) -> str:  # noqa: FBT001
    if value is True:
        return word(lang, "always")
    if value is False:
        return word(lang, "never")
    return str(value)


def criteria_blocks(policy: M.Policy, lang: str = "en") -> list[Block]:
    """The criteria document's blocks (see :func:`criteria`)."""
    lang = check_lang(lang)
    meta = policy.policy
    title = text(meta.title, lang, meta.id)
    out = [Block("h", word(lang, "doc_title", title=title), level=1)]
    facts = [word(lang, "version", version=meta.version, id=meta.id)]
    if meta.effective is not None:
        facts.append(word(lang, "effective", date=meta.effective.isoformat()))
    for key, label in (("expires", "expires"),):
        value = getattr(meta, key, None)
        if value is not None:
            facts.append(word(lang, label, date=value.isoformat()))
    approved = getattr(meta, "approved", None)
    if approved is not None:
        facts.append(
            word(
                lang,
                "approved",
                by=str(approved.by),
                on=approved.on.isoformat(),
                reference=str(approved.reference or "—"),
            )
        )
    supersedes = getattr(meta, "supersedes", None)
    if supersedes:
        facts.append(word(lang, "supersedes", previous=str(supersedes)))
    if meta.source is not None:
        facts.append(word(lang, "source", source=_source(meta)))
    out.append(Block("p", word(lang, "sentence_sep").join(facts)))
    if meta.description is not None:
        out.append(Block("p", text(meta.description, lang, "")))

    # Who may apply
    out.append(Block("h", word(lang, "h_who")))
    rules = policy.rules
    if rules.eligibility:
        out.append(Block("p", word(lang, "who_all")))
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_rule"),
                    word(lang, "col_condition"),
                    word(lang, "col_source"),
                ),
                rows=tuple(
                    (text(r.title, lang, r.id), _when(lang, r.when), _source(r))
                    for r in rules.eligibility
                ),
                caption=word(lang, "cap_eligibility"),
                code=(1,),
            )
        )
    else:
        out.append(Block("p", word(lang, "who_everyone")))
    if rules.exclusions:
        out.append(Block("p", word(lang, "who_excluded")))
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_rule"),
                    word(lang, "col_condition"),
                    word(lang, "col_reason"),
                    word(lang, "col_source"),
                ),
                rows=tuple(
                    (
                        text(r.title, lang, r.id),
                        _when(lang, r.when),
                        text(r.reason, lang, ""),
                        _source(r),
                    )
                    for r in rules.exclusions
                ),
                caption=word(lang, "cap_exclusions"),
                code=(1,),
            )
        )

    # Scales
    if policy.scales:
        out.append(Block("h", word(lang, "h_scales")))
        out.append(Block("p", word(lang, "scales_intro")))
        for name, scale in policy.scales.items():
            out += _scale(policy, name, scale, lang, level=3)

    # Derived values given by decision tables
    tables = [(n, d) for n, d in policy.derived.items() if getattr(d, "table", None) is not None]
    if tables:
        out.append(Block("h", word(lang, "h_derived")))
        for name, d in tables:
            label = text(d.title, lang, name)
            if d.description is not None:
                out.append(Block("p", f"{label}: {text(d.description, lang, '')}"))
            out.append(_table_block(policy, d.table, d, lang, word(lang, "cap_table", name=label)))

    # Priority rules
    if rules.priority:
        out.append(Block("h", word(lang, "h_priority")))
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_rule"),
                    word(lang, "col_condition"),
                    word(lang, "col_points"),
                    word(lang, "col_source"),
                ),
                rows=tuple(
                    (
                        text(r.title, lang, r.id),
                        _when(lang, r.when),
                        r.points if isinstance(r.points, str) else _num(r.points),
                        _source(r),
                    )
                    for r in rules.priority
                ),
                caption=word(lang, "h_priority"),
                code=(1, 2),
            )
        )

    # Score
    out.append(Block("h", word(lang, "h_score")))
    score = policy.score
    out.append(Block("p", word(lang, f"score_{score.method}")))
    if score.terms:
        out.append(
            Block(
                "table",
                heads=(word(lang, "col_term"), word(lang, "col_weight")),
                rows=tuple((_term(policy, t.of, lang), _num(t.weight)) for t in score.terms),
                caption=word(lang, "cap_terms"),
            )
        )

    # Ties and lottery
    out.append(Block("h", word(lang, "h_ties")))
    out.append(Block("p", word(lang, "ties_intro")))
    steps = []
    for tb in policy.ranking.tie_break:
        if tb.lottery is not None:
            steps.append((word(lang, "tb_lottery", seed=tb.lottery.seed),))
        else:
            label = text(tb.title, lang, str(tb.by))
            order = word(lang, "order_desc" if tb.order == "desc" else "order_asc")
            steps.append((word(lang, "tb_by", label=label, expr=str(tb.by), order=order),))
    steps.append((word(lang, "tb_id"),))
    out.append(Block("ul", rows=tuple(steps)))
    seeds = [tb.lottery.seed for tb in policy.ranking.tie_break if tb.lottery is not None]
    alloc = policy.allocation
    if alloc is not None and alloc.lottery is not None:
        seeds.append(alloc.lottery.seed)
    if seeds:
        out.append(Block("p", word(lang, "lottery_how")))
        out.append(Block("code", _recipe(seeds[0])))

    # Allocation
    if alloc is not None:
        out += _allocation(policy, alloc, lang)

    # Justified uses
    out.append(Block("h", word(lang, "h_uses")))
    protected = [n for n, a in policy.attributes.items() if a.protected]
    if protected:
        out.append(
            Block(
                "p",
                word(
                    lang,
                    "protected",
                    names=word(lang, "list_sep").join(
                        _attr_name(policy, n, lang) for n in protected
                    ),
                ),
            )
        )
    if policy.justified_uses:
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_attribute"),
                    word(lang, "col_used_by"),
                    word(lang, "col_why"),
                    word(lang, "col_source"),
                ),
                rows=tuple(
                    (_attr_name(policy, u.attribute, lang), _use_target(u, lang), u.why, _source(u))
                    for u in policy.justified_uses
                ),
                caption=word(lang, "h_uses"),
            )
        )
    else:
        out.append(Block("p", word(lang, "no_uses")))

    # Parameters
    if policy.parameters:
        out.append(Block("h", word(lang, "h_parameters")))
        prow = []
        for name, p in policy.parameters.items():
            values = [] if p.value is None else [_value(p.value, lang)]
            values += [
                word(lang, "from_date", date=d.from_.isoformat(), value=_value(d.value, lang))
                for d in p.values or ()
            ]
            prow.append((text(p.title, lang, name), "; ".join(values), _source(p)))
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_parameter"),
                    word(lang, "col_value"),
                    word(lang, "col_source"),
                ),
                rows=tuple(prow),
                caption=word(lang, "h_parameters"),
            )
        )

    # Review
    out.append(Block("h", word(lang, "h_review")))
    review = getattr(policy, "review", None)
    if review is not None:
        out += _review(review, lang)
    else:
        out.append(Block("p", word(lang, "review_none")))
    return out


def _value(v: Any, lang: str) -> str:
    if isinstance(v, bool):
        return word(lang, "true" if v else "false")
    if isinstance(v, float | int):
        return _num(v)
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    if isinstance(v, list):
        return ", ".join(_value(x, lang) for x in v)
    return str(v)


def _review(review: Any, lang: str) -> list[Block]:
    rows = []
    for key in ("procedure", "deadline_days", "deadline", "contact", "source"):
        value = getattr(review, key, None)
        if value is None:
            continue
        shown = text(value, lang, "") if isinstance(value, str | dict) else _value(value, lang)
        rows.append((word(lang, f"review_{key}"), shown))
    return [
        Block(
            "table",
            heads=(word(lang, "col_item"), word(lang, "col_value")),
            rows=tuple(rows),
            caption=word(lang, "h_review"),
        )
    ]


def _term(policy: M.Policy, of: str, lang: str) -> str:
    if of == "priority":
        return word(lang, "term_priority")
    scale = policy.scales.get(of.split(".")[0])
    if scale is not None and "." not in of:
        return f"{text(scale.title, lang, of)} ({of})"
    return of


def _use_target(u: M.JustifiedUse, lang: str) -> str:
    for key in ("rule", "scale", "indicator", "tie_break", "reserve", "resource", "allocation"):
        value = getattr(u, key)
        if value is not None:
            return f"{word(lang, 'use_' + key)} {value}"
    return "—"


def _scale(policy: M.Policy, path: str, scale: M.Scale, lang: str, level: int) -> list[Block]:
    out = [Block("h", f"{text(scale.title, lang, path)} ({path})", level=min(level, 6))]
    facts = []
    if scale.weight != 1.0:
        facts.append(word(lang, "weight", weight=_num(scale.weight)))
    if scale.source is not None:
        facts.append(word(lang, "source", source=_source(scale)))
    if facts:
        out.append(Block("p", word(lang, "sentence_sep").join(facts)))
    if scale.description is not None:
        out.append(Block("p", text(scale.description, lang, "")))
    if scale.indicators:
        rows = []
        for name, ind in scale.indicators.items():
            if ind.bands is not None:
                how = word(lang, "how_bands")
            elif ind.lookup is not None:
                how = word(lang, "how_lookup")
            elif getattr(ind, "table", None) is not None:
                how = word(lang, "how_table")
            else:
                how = word(lang, "how_formula", formula=str(ind.points))
            caps = []
            if ind.min_points is not None:
                caps.append(word(lang, "min_points", points=_num(ind.min_points)))
            if ind.max_points is not None:
                caps.append(word(lang, "max_points", points=_num(ind.max_points)))
            if caps:
                how += " " + ", ".join(caps)
            reads = _attr_name(policy, ind.of, lang) if ind.of else "—"
            rows.append(
                (
                    f"{text(ind.title, lang, name)} ({path}.{name})",
                    reads,
                    how,
                    _num(ind.weight),
                    _source(ind),
                )
            )
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_indicator"),
                    word(lang, "col_reads"),
                    word(lang, "col_how"),
                    word(lang, "col_weight"),
                    word(lang, "col_source"),
                ),
                rows=tuple(rows),
                caption=word(lang, "cap_indicators", scale=text(scale.title, lang, path)),
            )
        )
        for name, ind in scale.indicators.items():
            label = text(ind.title, lang, name)
            if ind.bands is not None:
                out.append(
                    Block(
                        "table",
                        heads=(word(lang, "col_value"), word(lang, "col_points")),
                        rows=tuple((_bounds(lang, b), _num(b.points)) for b in ind.bands),
                        caption=word(lang, "cap_bands", indicator=label),
                    )
                )
            elif getattr(ind, "table", None) is not None:
                out.append(
                    _table_block(policy, ind.table, None, lang, word(lang, "cap_table", name=label))
                )
            elif ind.lookup is not None:
                attr = _levelled(policy, ind.of or "")
                out.append(
                    Block(
                        "table",
                        heads=(word(lang, "col_level"), word(lang, "col_points")),
                        rows=tuple(
                            (_level(attr, key, lang), _num(p)) for key, p in ind.lookup.items()
                        ),
                        caption=word(lang, "cap_lookup", indicator=label),
                    )
                )
    if scale.grades:
        out.append(
            Block(
                "table",
                heads=(word(lang, "col_grade"), word(lang, "col_total")),
                rows=tuple((text(g.title, lang, g.grade), _bounds(lang, g)) for g in scale.grades),
                caption=word(lang, "cap_grades", scale=text(scale.title, lang, path)),
            )
        )
    for sub, child in scale.scales.items():
        out += _scale(policy, f"{path}.{sub}", child, lang, level + 1)
    return out


def _levelled(policy: M.Policy, name: str) -> Any:
    """The attribute or derived value ``name`` (whose levels may carry titles), or None."""
    return policy.attributes.get(name) or policy.derived.get(name)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _table_block(policy: M.Policy, table: Any, owner: Any, lang: str, caption: str) -> Block:
    """A decision table: one column per input (its expression), then the output."""
    inputs = list(table.inputs)
    heads = tuple(f"{name} = {table.inputs[name]}" for name in inputs)
    titles = {name: _input_titles(policy, table.inputs[name]) for name in inputs}
    rows = []
    for row in table.rows:
        cells = tuple(
            _titled_cell(row.cells[i], titles[i], lang) if i in row.cells else "-" for i in inputs
        )
        output = row.output
        if isinstance(output, str) and owner is not None:
            shown = level_title(owner, output, lang)
        else:
            shown = _cell(output)
        rows.append((*cells, shown))
    hit = word(lang, "hit_first" if table.hit == "first" else "hit_unique")
    return Block(
        "table",
        heads=(*heads, word(lang, "col_output")),
        rows=tuple(rows),
        caption=f"{caption} ({hit})",
        code=tuple(i for i, name in enumerate(inputs) if not titles[name]),
    )


def _input_titles(policy: M.Policy, expr: str) -> dict[str, Any]:
    """The titles of the levels a table input takes, where it reads a titled value whole.

    An input that is a levelled attribute or derived value (``cognition``) or a scale's grade
    (``grade(ability.adl)``) shows its levels by their titles; any other expression has none.
    """
    expr = expr.strip()
    if expr.startswith("grade(") and expr.endswith(")"):
        path = expr[6:-1].strip().split(".")
        scale: Any = policy.scales.get(path[0])
        for part in path[1:]:
            scale = scale.scales.get(part) if scale is not None else None
        if scale is None or not scale.grades:
            return {}
        return {g.grade: g.title for g in scale.grades if g.title is not None}
    owner = _levelled(policy, expr)
    return dict(getattr(owner, "level_titles", None) or {})


def _titled_cell(value: Any, titles: dict[str, Any], lang: str) -> str:
    """A cell as written, its levels by their titles when the input's levels have titles."""
    names = value if isinstance(value, list) else [value]
    if titles and all(isinstance(v, str) and v in titles for v in names):
        return word(lang, "list_sep").join(text(titles[v], lang, v) for v in names)
    return _cell(value)


def _level(attr: Any, key: str, lang: str) -> str:
    if attr is not None and getattr(attr, "type", None) == "bool":
        return word(lang, "true" if key == "true" else "false")
    if attr is None:
        return key
    return level_title(attr, key, lang)


def _allocation(policy: M.Policy, alloc: M.AllocationSpec, lang: str) -> list[Block]:
    out = [Block("h", word(lang, "h_allocation"))]
    facts = [word(lang, f"mech_{alloc.mechanism}")]
    if alloc.capacity is not None:
        facts.append(word(lang, "capacity", capacity=alloc.capacity))
    out.append(Block("p", word(lang, "sentence_sep").join(facts)))
    if alloc.reserves:
        rows = []
        for r in alloc.reserves:
            size = (
                word(lang, "share", share=_num(r.share * 100))
                if r.share is not None
                else word(lang, "count", count=r.count if r.count is not None else 0)
            )
            rows.append(
                (
                    text(r.title, lang, r.id),
                    size,
                    _when(lang, r.eligible),
                    str(r.priority) if r.priority else word(lang, "by_ranking"),
                    _source(r),
                )
            )
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_reserve"),
                    word(lang, "col_size"),
                    word(lang, "col_who"),
                    word(lang, "col_order"),
                    word(lang, "col_source"),
                ),
                rows=tuple(rows),
                caption=word(lang, "cap_reserves"),
                code=(2, 3),
            )
        )
        out.append(
            Block(
                "p",
                word(lang, "unused_open" if alloc.unused_reserved == "open" else "unused_lapse"),
            )
        )
    if alloc.lottery is not None:
        weight = alloc.lottery.weight
        out.append(
            Block(
                "p",
                word(lang, "alloc_lottery", seed=alloc.lottery.seed)
                + ("" if weight is None else " " + word(lang, "alloc_weight", weight=str(weight))),
            )
        )
    if alloc.rotation is not None:
        rot = alloc.rotation
        facts = [word(lang, "rotation")]
        if rot.capacity is not None:
            facts.append(word(lang, "per_round", capacity=rot.capacity))
        if rot.bands:
            facts.append(word(lang, "rot_bands", bands=rot.bands))
        if rot.points_per_round:
            facts.append(word(lang, "rot_points", points=_num(rot.points_per_round)))
        if rot.max_wait:
            facts.append(word(lang, "rot_max_wait", rounds=rot.max_wait))
        if rot.served_go_last:
            facts.append(word(lang, "rot_last"))
        out.append(Block("p", word(lang, "sentence_sep").join(facts)))
    if alloc.matching is not None:
        m = alloc.matching
        out.append(
            Block(
                "table",
                heads=(
                    word(lang, "col_resource"),
                    word(lang, "col_capacity"),
                    word(lang, "col_who"),
                    word(lang, "col_source"),
                ),
                rows=tuple(
                    (
                        text(r.title, lang, r.id),
                        str(r.capacity),
                        _when(lang, r.eligible),
                        _source(r),
                    )
                    for r in m.resources
                ),
                caption=word(lang, "cap_resources"),
                code=(2,),
            )
        )
    return out


def _recipe(seed: str) -> str:
    return "\n".join(
        [
            "import hashlib",
            f"seed, resident = {seed!r}, 'RESIDENT-ID'",
            "key = int.from_bytes(hashlib.blake2b(resident.encode('utf-8'),"
            " key=seed.encode('utf-8'), digest_size=8).digest(), 'big')",
            "print(f'{key:016x}')  # lower keys go first",
        ]
    )


def criteria(
    policy: M.Policy,
    *,
    lang: str = "en",
    format: str = "md",
    large_print: bool = False,
) -> str:
    """The policy's selection criteria as a public document (§2.2.1).

    Args:
        policy: The policy (only its data is read: no residents, no date).
        lang: ``en`` or ``zh-CN``.
        format: ``md`` (Markdown) or ``html`` (a standalone accessible page).
        large_print: For HTML, a base text size of 150% (§2.1.3).

    Returns:
        The document; the same policy gives the same bytes.

    Raises:
        PublishError: for an unknown language or format (FA850).
    """
    from fairalloc.publish._words import PublishError

    if format not in ("md", "html"):
        raise PublishError(f"no format {format!r} for the criteria; formats: md, html")
    blocks = criteria_blocks(policy, lang)
    if format == "md":
        return to_markdown(blocks)
    return page(to_html(blocks), title=blocks[0].text, lang=lang, large_print=large_print)
