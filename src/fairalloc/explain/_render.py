"""Render an explanation's facts as plain text, Markdown or HTML, in English or Chinese.

One function, :func:`blocks`, turns the facts into a language-specific sequence of headings,
paragraphs, tables and code; each format only lays those blocks out. So every format and every
language shows the same facts, in the same order, with the same numbers.

HTML is for everyone, including readers who enlarge text or use a screen reader: semantic
headings and tables with header cells, relative units only, no meaning carried by colour
(deciding rules are marked in words and with ``<strong>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fairalloc._escape import html_text, markdown_text, terminal_text
from fairalloc._numeric import MICRO
from fairalloc._text import display_width, text_table
from fairalloc.explain._facts import Facts, Value
from fairalloc.explain._i18n import localized, message

__all__ = ["Block", "blocks", "fmt", "to_html", "to_markdown", "to_text"]


@dataclass(frozen=True, slots=True)
class Block:
    """A heading (``h``), paragraph (``p``), table (``table``) or code (``code``)."""

    kind: str
    text: str = ""
    heads: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    strong: tuple[bool, ...] = ()  # per table row: a deciding row


def fmt(v: Value | float, lang: str | None = None) -> str:
    """A value as explanations print it: numbers without float noise, true/false in words.

    With ``lang``, true and false are written in that language.
    """
    if v is None:
        return "-"
    if isinstance(v, bool):
        if lang is not None:
            return message(lang, "true" if v else "false")
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        r = round(v, 6)
        if r == int(r) and abs(r) < 1e15:
            return str(int(r))
        return f"{r:.6f}".rstrip("0").rstrip(".")
    return str(v)


def _lv(f: Facts, attribute: str | None, value: Value, lang: str) -> str:
    """A value as shown: a level's title where the policy gives one, else :func:`fmt`."""
    if isinstance(value, str) and attribute is not None:
        title = f.level_titles.get(attribute, {}).get(value)
        if title is not None:
            return localized(title, lang, value)
    return fmt(value, lang)


def _cell(f: Facts, key: str, text: str, lang: str) -> str:
    """A decision-table cell as written, with level names replaced by their titles.

    Only a cell that is one level, or a list of levels, is rewritten; comparisons and ranges
    stay as written.
    """
    titles = f.level_titles.get(key)
    if not titles:
        return text
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else None
    names = [n.strip() for n in inner.split(",")] if inner is not None else [text.strip()]
    if not all(n in titles for n in names):
        return text
    shown = [localized(titles[n], lang, n) for n in names]
    return f"[{', '.join(shown)}]" if inner is not None else shown[0]


def _reads(
    f: Facts, values: dict[str, Value], lang: str, via: dict[str, list[str]] | None = None
) -> str:
    parts = []
    for k, v in values.items():
        text = f"{k} = {_lv(f, k, v, lang)}"
        if via and k in via:
            text += " " + message(lang, "via", names=", ".join(via[k]))
        parts.append(text)
    return ", ".join(parts)


def _category(lang: str, category: str | None, title: Any) -> str:
    if category is None:
        return "-"
    if category == "open" and title is None:
        title = message(lang, "open_category")
    return _name(title, category, lang)


def _name(title: Any, ident: str, lang: str) -> str:
    text = localized(title, lang, ident)
    return text if text == ident else f"{text} ({ident})"


def blocks(f: Facts, lang: str) -> list[Block]:
    """The explanation ``f`` as blocks in ``lang``."""

    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    out = [
        Block("h", m("title", id=f.resident)),
        Block(
            "p",
            m(
                "policy",
                title=localized(f.policy_title, lang, f.policy_id),
                policy=f.policy_id,
                version=f.policy_version,
            ),
        ),
    ]
    if f.as_of is not None:
        out.append(Block("p", m("as_of", date=f.as_of.isoformat())))
    out += _outcome(f, lang)
    out += _checks(f, lang)
    out += _assessment(f, lang)
    out += _tables(f, lang)
    out += _score(f, lang)
    out += _lottery(f, lang)
    out += _cutoffs(f, lang)
    out += _choices(f, lang)
    out += _counterfactuals(f, lang)
    notes = [n for n in f.notes if n[0] != "cf_none_found" or not f.counterfactuals]
    if notes:
        out.append(Block("h", m("h_notes")))
        for code, params in notes:
            out.append(Block("p", _note(lang, code, params)))
    return out


def _tables(f: Facts, lang: str) -> list[Block]:
    """Each decision table as it decided: the row that applied, its conditions, its output."""

    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    if not f.tables:
        return []
    out = [Block("h", m("h_tables"))]
    for t in f.tables:
        output = (
            localized(t.output_title, lang, t.output)
            if t.output_title
            else _lv(f, t.part.partition(":")[2], t.output, lang)
        )
        line = m(
            "table_row",
            title=_name(t.title, t.part.partition(":")[2], lang),
            n=t.row + 1,
            hit=m(f"hit_{t.hit}"),
            output=output,
        )
        if t.row_title:
            line += m("table_row_title", title=localized(t.row_title, lang, ""))
        cells = dict(t.cells)
        rows = tuple(
            (
                name if name == expr else f"{name} = {expr}",
                _lv(f, expr, value, lang),
                _cell(f, expr, cells.get(name, "-"), lang),
            )
            for name, expr, value in t.inputs
        )
        out += [
            Block("p", line),
            Block("table", heads=(m("col_input"), m("col_value"), m("col_cell")), rows=rows),
        ]
    return out


def _note(lang: str, code: str, params: dict[str, Any]) -> str:
    kw = dict(params)
    if "attributes" in kw:
        kw["attributes"] = ", ".join(kw["attributes"])
    if "mechanism" in kw:
        kw["mechanism"] = message(lang, f"mech_{kw['mechanism']}")
    return message(lang, code, **kw)


def _outcome(f: Facts, lang: str) -> list[Block]:
    o = f.outcome
    out = [Block("h", message(lang, "h_outcome"))]
    p: list[str] = []
    titles = {c.category: c.title for c in f.cutoffs}
    if o.kind == "allocation":
        if o.served:
            p.append(
                message(
                    lang,
                    "out_served",
                    category=_category(lang, o.category, titles.get(o.category or "")),
                    position=o.position,
                    n=o.n_eligible,
                    capacity=o.capacity,
                )
            )
        elif o.eligible:
            p.append(
                message(
                    lang, "out_waiting", position=o.position, n=o.n_eligible, capacity=o.capacity
                )
            )
        else:
            p.append(message(lang, "out_ineligible_alloc", capacity=o.capacity))
    if o.eligible and (o.kind != "allocation" or o.position != o.rank):
        p.append(message(lang, "out_ranked", rank=o.rank, n=o.n_eligible))
        if o.tied:
            p.append(message(lang, "out_tied"))
    elif o.kind != "allocation":
        p.append(message(lang, "out_ineligible"))
    if o.kind == "matching":
        p.append(
            message(lang, "out_holds", resources=", ".join(o.resources))
            if o.resources
            else message(lang, "out_holds_none")
        )
    if o.kind == "rotation":
        if o.rounds_served:
            p.append(
                message(
                    lang,
                    "out_rotation",
                    rounds_served=", ".join(str(r) for r in o.rounds_served),
                    rounds=o.rounds,
                    capacity=o.capacity,
                )
            )
        else:
            p.append(message(lang, "out_rotation_none", rounds=o.rounds, capacity=o.capacity))
        p.append(message(lang, "out_waited", waited=o.waited, longest=o.longest_wait))
    out.append(Block("p", " ".join(p)))
    return out


def _checks(f: Facts, lang: str) -> list[Block]:
    if not f.checks:
        return []

    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    rows = []
    strong = []
    for c in f.checks:
        if c.kind == "eligibility":
            result = m("met") if c.held else m("not_met")
            name = _name(c.title, c.rule, lang)
        else:
            result = m("applies") if c.held else m("not_applies")
            name = f"{_name(c.title, c.rule, lang)} [{m('exclusion')}]"
            if c.held and c.reason is not None:
                result += "; " + m("reason", reason=localized(c.reason, lang, c.rule))
        rows.append(
            (
                name,
                result,
                _reads(f, c.reads, lang),
                m("yes") if c.deciding else m("no"),
                c.source or "",
            )
        )
        strong.append(c.deciding)
    heads = (m("col_rule"), m("col_result"), m("col_values"), m("col_deciding"), m("col_source"))
    return [
        Block("h", m("h_checks")),
        Block("table", heads=heads, rows=tuple(rows), strong=tuple(strong)),
    ]


def _assessment(f: Facts, lang: str) -> list[Block]:
    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    out: list[Block] = []
    if f.indicators:
        rows = []
        for i in f.indicators:
            if i.kind == "formula":
                band = m("formula")
            elif i.kind == "bands":
                band = m("band", n=i.band_index + 1, bounds=i.band or m("any_value"))
            elif i.kind == "table":
                band = m("table_row_n", n=i.band_index + 1)
            else:
                band = m(
                    "level",
                    level=fmt(i.band == "true", lang)
                    if i.band in ("true", "false")
                    else _lv(f, i.attribute or i.of, i.band, lang),
                )
            pts = fmt(i.points)
            if i.capped:
                pts = m("capped", points=pts)
            if i.weight != 1.0:
                pts = m("weighted", points=pts, weight=fmt(i.weight))
            value = _lv(f, i.attribute or i.of, i.value, lang)
            if isinstance(i.value, str) and i.value in ("true", "false"):
                value = fmt(i.value == "true", lang)
            rows.append(
                (
                    _name(i.title, i.path, lang),
                    value,
                    band,
                    pts,
                    m("yes") if i.deciding else m("no"),
                )
            )
        out += [
            Block("h", m("h_indicators")),
            Block(
                "table",
                heads=(
                    m("col_indicator"),
                    m("col_value"),
                    m("col_band"),
                    m("col_points"),
                    m("col_deciding"),
                ),
                rows=tuple(rows),
                strong=tuple(i.deciding for i in f.indicators),
            ),
        ]
    if f.priority:
        rows = [
            (
                _name(p.title, p.rule, lang),
                m("yes") if p.fired else m("no"),
                _reads(f, p.reads, lang, p.via),
                fmt(p.points),
                m("yes") if p.deciding else m("no"),
            )
            for p in f.priority
        ]
        out += [
            Block("h", m("h_priority")),
            Block(
                "table",
                heads=(
                    m("col_rule"),
                    m("col_fired"),
                    m("col_values"),
                    m("col_points"),
                    m("col_deciding"),
                ),
                rows=tuple(rows),
                strong=tuple(p.deciding for p in f.priority),
            ),
        ]
    if f.scales:
        totals = {s.path: s for s in f.scales}
        scale_rows: list[tuple[str, ...]] = []
        for s in f.scales:
            parts = []
            for key, v in s.parts_micro.items():
                child = totals.get(key)
                if child is not None and child.weight != 1.0:
                    # A weighted sub-scale: its total, its weight, and what it adds.
                    parts.append(f"{fmt(child.total)} × {fmt(child.weight)} = {fmt(v / MICRO)}")
                else:
                    parts.append(fmt(v / MICRO))
            grade = ""
            if s.grade is not None:
                # A grade is a level of need: its title alone, as every level is shown.
                grade = localized(s.grade_title, lang, s.grade)
            scale_rows.append(
                (_name(s.title, s.path, lang), fmt(s.total), " + ".join(parts), grade)
            )
        out += [
            Block("h", m("h_scales")),
            Block(
                "table",
                heads=(m("col_scale"), m("col_total"), m("col_parts"), m("col_grade")),
                rows=tuple(scale_rows),
            ),
        ]
    return out


def _score(f: Facts, lang: str) -> list[Block]:
    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    terms = []
    for t in f.terms:
        name = m("term_priority") if t.name == "priority" else _name(t.title, t.name, lang)
        raw = fmt(t.raw_micro / MICRO)
        if f.method == "product":
            power = "" if t.weight == 1.0 else "^" + fmt(t.weight)
            terms.append(f"{name} {raw}{power}")
        elif f.method == "sum" and t.weight != 1.0:
            terms.append(f"{name} {raw} × {fmt(t.weight)} = {fmt(t.value_micro / MICRO)}")
        else:
            terms.append(f"{name} {fmt(t.value_micro / MICRO)}")
    key = {"sum": "score_sum", "product": "score_product"}.get(f.method, "score_tiers")
    sep = {"sum": " + ", "product": " × "}.get(f.method, ", ")
    out = [Block("h", m("h_score")), Block("p", m(key, score=fmt(f.score), parts=sep.join(terms)))]
    if f.tie_values:
        values = ", ".join(f"{k} = {fmt(v)}" for k, v in f.tie_values.items())
        out.append(Block("p", m("tie_values", values=values)))
    return out


def _lottery(f: Facts, lang: str) -> list[Block]:
    lot = f.lottery
    if lot is None:
        return []
    out = [Block("h", message(lang, "h_lottery"))]
    if lot.role == "tie_break":
        drawn = message(lang, "lottery_drawn" if lot.drawn else "lottery_not_drawn")
        out.append(
            Block("p", message(lang, "lottery_tie", key=lot.key, seed=lot.seed, drawn=drawn))
        )
    else:
        out.append(Block("p", message(lang, "lottery_mech", key=lot.key, seed=lot.seed)))
        if lot.weight is not None:
            out.append(
                Block(
                    "p", message(lang, "lottery_weight", weight=fmt(lot.weight), draw=fmt(lot.draw))
                )
            )
    out.append(Block("p", message(lang, "lottery_recipe")))
    out.append(Block("code", lot.recipe))
    return out


def _cutoffs(f: Facts, lang: str) -> list[Block]:
    if not f.cutoffs:
        return []

    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    rows = []
    for c in f.cutoffs:
        if c.used == 0:
            cut = m("nobody")
        elif c.score_micro is None:  # a lottery: the last place served in the draw
            cut = m("cut_position", position=c.position)
        else:
            cut = fmt(c.score_micro / MICRO)
        rows.append(
            (
                _category(lang, c.category, c.title),
                str(c.size),
                str(c.used),
                cut,
                "-" if c.margin_micro is None else _signed(c.margin_micro / 1_000_000),
                m("yes") if c.eligible else m("no"),
            )
        )
    heads = (
        m("col_category"),
        m("col_places"),
        m("col_given"),
        m("col_cutoff"),
        m("col_margin"),
        m("col_eligible"),
    )
    out = [Block("h", m("h_cutoffs")), Block("table", heads=heads, rows=tuple(rows))]
    d = f.decision
    if d is not None:
        if d.by == "none":
            how = m("decided_none", keys=", ".join(_key(lang, k) for k in d.equal_before))
        else:
            how = m("decided_by", by=_key(lang, d.by), mine=fmt(d.mine), theirs=fmt(d.theirs))
            if d.equal_before:
                keys = ", ".join(_key(lang, k) for k in d.equal_before)
                how = m("equal_on", keys=keys, rest=how)
        category = _category(lang, d.category, d.category_title)
        out.append(Block("p", m(f"decision_{d.neighbour}", how=how, category=category)))
    return out


def _key(lang: str, name: str) -> str:
    """A ranking key's name: the score and lottery in words, tie-breaks as the policy names them."""
    if name in ("score", "eligible", "lottery", "lottery draw"):
        return message(lang, "k_" + name.replace(" ", "_"))
    if name.startswith("score: "):
        return message(lang, "k_score") + ": " + name.removeprefix("score: ")
    if name.startswith("priority: "):
        return message(lang, "k_priority", category=name.removeprefix("priority: "))
    return name


def _signed(x: float) -> str:
    s = fmt(x)
    return s if s.startswith("-") or s == "0" else "+" + s


def _choices(f: Facts, lang: str) -> list[Block]:
    if not f.choices:
        return []

    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    rows = [
        (
            str(c.choice),
            _name(c.title, c.resource, lang),
            m("yes") if c.held else m("no"),
            m("may_not") if c.rank is None else str(c.rank),
            "-" if c.last_rank is None else str(c.last_rank),
            f"{c.used}/{c.capacity}",
        )
        for c in f.choices
    ]
    heads = (
        m("col_choice"),
        m("col_resource"),
        m("col_held"),
        m("col_rank"),
        m("col_last_rank"),
        m("col_given"),
    )
    return [
        Block("h", m("h_choices")),
        Block("table", heads=heads, rows=tuple(rows), strong=tuple(c.held for c in f.choices)),
    ]


def _counterfactuals(f: Facts, lang: str) -> list[Block]:
    if not f.counterfactuals:
        return []

    def m(key: str, **kw: Any) -> str:
        return message(lang, key, **kw)

    out = [Block("h", m("h_cf"))]
    for c in f.counterfactuals:
        outcome = _outcome_word(lang, c.outcome_after, f.target)
        if c.rank_after is not None:
            outcome = m(
                "cf_rank",
                outcome=outcome,
                rank=c.rank_after,
                score=fmt(c.score_after_micro / 1_000_000),
            )
        else:
            outcome = m("cf_score", outcome=outcome, score=fmt(c.score_after_micro / 1_000_000))
        attribute = _name(c.title, c.attribute, lang)
        if c.delta is None:
            text = m(
                "cf_level",
                attribute=attribute,
                after=_lv(f, c.attribute, c.after, lang),
                before=_lv(f, c.attribute, c.before, lang),
                outcome=outcome,
            )
        else:
            # Dates change by days; other numbers in the policy's unit, if it gives one.
            unit = m("unit_days") if isinstance(c.before, str) else localized(c.unit, lang, "")
            change = _signed(c.delta) + (f" {unit}" if unit else "")
            text = m(
                "cf_number",
                attribute=attribute,
                after=fmt(c.after),
                before=fmt(c.before),
                change=change,
                outcome=outcome,
            )
        out.append(Block("p", text))
    out.append(Block("p", m("cf_verified")))
    return out


def _outcome_word(lang: str, outcome: str, target: str | None) -> str:
    if outcome in ("within", "beyond"):
        n = (target or "").split()[-1]
        return message(lang, f"o_{outcome}", n=n)
    return message(lang, f"o_{outcome}")


# -- formats ----------------------------------------------------------------------------------


def to_text(bs: list[Block]) -> str:
    """Plain text: headings underlined, tables aligned in columns.

    Control characters (ANSI escape sequences among them) from ids and policy texts are shown
    as visible escapes, so printing the text on a terminal runs nothing.
    """
    lines: list[str] = []
    for b in map(_terminal_block, bs):
        if b.kind == "h":
            if lines:
                lines.append("")
            rule = "=" if not lines else "-"
            lines += [b.text, rule * display_width(b.text)]
        elif b.kind == "p":
            lines.append(b.text)
        elif b.kind == "code":
            lines += ["    " + line for line in b.text.splitlines()]
        else:
            table = text_table(b.heads, b.rows)
            for k, line in enumerate(table):
                mark = "* " if k > 0 and b.strong and b.strong[k - 1] else "  "
                lines.append((mark + line).rstrip())
    return "\n".join(lines) + "\n"


def _terminal_block(b: Block) -> Block:
    return Block(
        b.kind,
        terminal_text(b.text, multiline=b.kind == "code"),
        tuple(terminal_text(h) for h in b.heads),
        tuple(tuple(terminal_text(c) for c in r) for r in b.rows),
        b.strong,
    )


def _md_cell(s: str) -> str:
    return markdown_text(s)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    runs = [len(r) for r in re.findall("`{3,}", text)]
    return "`" * max([3, *(n + 1 for n in runs)])


def to_markdown(bs: list[Block]) -> str:
    """Markdown: ``#`` headings, pipe tables (deciding rows in bold), fenced code.

    Every text is escaped (:func:`fairalloc._escape.markdown_text`): ids and policy texts
    render as the characters they are, never as HTML, links or emphasis.
    """
    out: list[str] = []
    first = True
    for b in bs:
        if b.kind == "h":
            out.append(("# " if first else "## ") + markdown_text(b.text))
            first = False
        elif b.kind == "p":
            out.append(markdown_text(b.text))
        elif b.kind == "code":
            fence = _fence(b.text)
            code = terminal_text(b.text, multiline=True)
            out.append(f"{fence}python\n{code}\n{fence}")
        else:
            lines = ["| " + " | ".join(_md_cell(h) for h in b.heads) + " |"]
            lines.append("|" + "---|" * len(b.heads))
            for k, r in enumerate(b.rows):
                cells = [_md_cell(c) for c in r]
                if b.strong and b.strong[k]:
                    cells[0] = f"**{cells[0]}**"
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def to_html(bs: list[Block], lang: str, *, fragment: bool = True) -> str:
    """HTML: an ``<article>`` with headings, captioned tables and header cells."""
    e = html_text
    parts = [f'<article lang="{e(lang)}" class="fairalloc-explanation" style="font-size:1rem">']
    first = True
    heading = ""
    for b in bs:
        if b.kind == "h":
            tag = "h2" if first else "h3"
            parts.append(f"<{tag}>{e(b.text)}</{tag}>")
            heading = b.text
            first = False
        elif b.kind == "p":
            parts.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "code":
            parts.append(f"<pre><code>{e(b.text)}</code></pre>")
        else:
            head = "".join(f'<th scope="col">{e(h)}</th>' for h in b.heads)
            body = []
            for k, r in enumerate(b.rows):
                strong = bool(b.strong and b.strong[k])
                first_cell = f"<strong>{e(r[0])}</strong>" if strong else e(r[0])
                cells = f'<th scope="row">{first_cell}</th>' + "".join(
                    f"<td>{e(c)}</td>" for c in r[1:]
                )
                body.append(f"<tr>{cells}</tr>")
            parts.append(
                f"<table><caption>{e(heading)}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>"
            )
    parts.append("</article>")
    doc = "\n".join(parts)
    if fragment:
        return doc
    return (
        f'<!DOCTYPE html>\n<html lang="{e(lang)}">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(bs[0].text if bs else '')}</title>"
        "<style>body{font-family:system-ui,sans-serif;line-height:1.5;max-width:60rem;"
        "margin:auto;padding:1rem}table{border-collapse:collapse;margin:1rem 0}"
        "th,td{border:1px solid;padding:.25rem .5rem;text-align:left;vertical-align:top}"
        "caption{text-align:left;font-weight:bold}"
        "pre{white-space:pre-wrap;overflow-wrap:anywhere}td,th{overflow-wrap:anywhere}"
        "</style></head>\n<body>\n"
        f"{doc}\n</body>\n</html>\n"
    )
