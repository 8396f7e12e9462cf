"""Documents for the public: blocks laid out as Markdown or as an accessible HTML page.

A document is a list of blocks (headings, paragraphs, lists, tables, code); Markdown and HTML
lay the same blocks out, so both formats say the same thing. Every text is escaped: in HTML by
:func:`html.escape`, in Markdown by a backslash before every character Markdown would read as
markup, so a policy's own words can never become markup, links or script.

The HTML page is for everyone (§2.1.3): the language declared, one ``<main>`` landmark,
headings in order, tables with captions and header cells, relative units only, dark text on a
light background well above WCAG AA contrast, tables that wrap their words to fit a 1280-pixel
page (a table wider than the page scrolls inside a labelled, focusable region instead of the
page), code that wraps, and a large-print option that sets the base size to 150%.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from fairalloc._html import page

__all__ = ["Block", "md_escape", "page", "to_html", "to_markdown"]


@dataclass(frozen=True, slots=True)
class Block:
    """One part of a document.

    Attributes:
        kind: ``h`` (heading), ``p`` (paragraph), ``ul`` (list), ``table`` or ``code``.
        text: The heading's, paragraph's or code's text.
        level: A heading's level (1 for the title).
        heads: A table's column headers.
        rows: A table's rows (the first cell is the row's header), or a list's items.
        caption: A table's caption.
        code: A table's columns that hold policy expressions, shown as code.
    """

    kind: str
    text: str = ""
    level: int = 2
    heads: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    caption: str = ""
    code: tuple[int, ...] = ()


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: str) -> str:
    """Text that Markdown shows as written (no emphasis, link, HTML or table cell break)."""
    out = _MD_SPECIAL.sub(r"\\\1", text.replace("\r", " ").replace("\n", " "))
    # A line starting with "-" or "1." would become a list: escape the marker.
    out = re.sub(r"^(\s*)([-=])", r"\1\\\2", out)
    return re.sub(r"^(\s*\d+)\.", r"\1\\.", out)


def _md_code(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def _md_span(text: str) -> str:
    """A code span that holds ``text`` as written (pipes escaped for the table)."""
    text = text.replace("\r", " ").replace("\n", " ")
    ticks = "`"
    while ticks in text:
        ticks += "`"
    body = text.replace("|", "\\|")
    return f"{ticks} {body} {ticks}"


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "h":
            out.append("#" * b.level + " " + md_escape(b.text))
        elif b.kind == "p":
            out.append(md_escape(b.text))
        elif b.kind == "ul":
            out.append("\n".join("- " + md_escape(r[0]) for r in b.rows))
        elif b.kind == "code":
            out.append(_md_code(b.text))
        else:
            lines = []
            if b.caption:
                lines += [f"*{md_escape(b.caption)}*", ""]
            lines.append("| " + " | ".join(md_escape(h) for h in b.heads) + " |")
            lines.append("|" + "---|" * len(b.heads))
            lines += [
                "| "
                + " | ".join(_md_span(c) if i in b.code else md_escape(c) for i, c in enumerate(r))
                + " |"
                for r in b.rows
            ]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def to_html(blocks: list[Block]) -> str:
    """The blocks as HTML elements (no page around them)."""
    e = html.escape
    parts: list[str] = []
    tables = 0
    for b in blocks:
        if b.kind == "h":
            parts.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif b.kind == "p":
            parts.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{e(r[0])}</li>" for r in b.rows) + "</ul>")
        elif b.kind == "code":
            parts.append(f"<pre><code>{e(b.text)}</code></pre>")
        else:
            tables += 1
            head = "".join(f'<th scope="col">{e(h)}</th>' for h in b.heads)
            body = "".join(
                "<tr>"
                + (f'<th scope="row">{e(r[0])}</th>' if r else "")
                + "".join(
                    f"<td><code>{e(c)}</code></td>" if i in b.code else f"<td>{e(c)}</td>"
                    for i, c in enumerate(r[1:], start=1)
                )
                + "</tr>"
                for r in b.rows
            )
            caption = f"<caption>{e(b.caption)}</caption>" if b.caption else ""
            label = e(b.caption or b.heads[0] if b.heads else "table")
            parts.append(
                f'<div class="table" role="region" tabindex="0" aria-label="{label}">'
                f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                "</div>"
            )
    return "\n".join(parts) + "\n"
