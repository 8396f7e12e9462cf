"""One escaping function per output format, so that no text from a policy or a population acts.

Policy titles, rule names, level names and resident ids are data: whatever they hold, they must
come out of a report as the characters they are, never as markup, links, terminal commands or
spreadsheet formulas. Every renderer of the library passes such text through these functions:

* :func:`html_text` for HTML (element content and attribute values);
* :func:`markdown_text` for Markdown prose and table cells, :func:`markdown_code` for code spans;
* :func:`terminal_text` for text printed on a terminal (ANSI escape sequences and other control
  characters shown as visible escapes);
* :func:`plot_text` for figure titles and labels (``$`` escaped, so that matplotlib reads no
  mathematics in it);
* :func:`csv_text` (one cell) and :func:`csv_column` (an Arrow column) for CSV, which neutralise
  formulas as OWASP recommends: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or
  a carriage return gets a leading ``'``. Numeric columns are never changed.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = [
    "FORMULA_START",
    "csv_column",
    "csv_text",
    "html_text",
    "markdown_code",
    "markdown_inline",
    "markdown_text",
    "plot_text",
    "terminal_text",
]

#: The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# C0 and C1 control characters (but tab and newline, which the callers decide on), DEL, and the
# Unicode bidirectional controls that can reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
# Characters that start inline Markdown wherever they stand (emphasis, code, links, tables,
# strikethrough); `_` only at a word's edge (inside a word it cannot start emphasis). `<` and
# entity-like `&` become HTML entities instead: a backslash does not stop every renderer from
# reading raw HTML.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# What starts a block (heading, list, quote) only at the start of a line, before a space.
_MD_LEADING = re.compile(r"^(\s*)(?:([#+\-=](?=\s|$)|>)|(\d+)([.)])(?=\s|$))")
_MD_RULE = re.compile(r"^(\s*)([-=])(?=[\s\-=]*$)")
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_CODE_SPAN = re.compile(r"(`[^`]+`)")
_CODE_OR_BOLD = re.compile(r"(\*\*|`[^`]+`)")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def html_text(value: Any) -> str:
    """``value`` as HTML text: markup characters and quotes as entities, controls made visible.

    Safe in element content and in quoted attribute values.

    Examples:
        >>> html_text('<img src=x onerror="alert(1)">')
        '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return html.escape(_CONTROL.sub(_visible, str(value)), quote=True)


def markdown_text(value: Any) -> str:
    r"""``value`` as Markdown text that renders as exactly these characters.

    Markdown punctuation is backslash-escaped where it could act (no emphasis, code, link, image,
    heading, list, quote or table cell boundary can start inside), ``<`` and entity-like ``&``
    become HTML entities (no raw HTML, autolink or entity), line breaks become spaces (a table
    row stays one row) and control characters are shown as visible escapes.

    Examples:
        >>> print(markdown_text("[x](javascript:alert(1))"))
        \[x\](javascript:alert(1))
        >>> markdown_text("<script>")
        '&lt;script>'
    """
    text = _CONTROL_ALL.sub(_visible, str(value).replace("\r\n", " ").replace("\n", " "))
    text = _ENTITY_LIKE.sub("&amp;", text).replace("<", "&lt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_RULE.sub(r"\1\\\2", text)
    return _MD_LEADING.sub(_leading, text)


def _leading(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


def markdown_inline(text: str, *, bold: bool = False, cell: bool = False) -> str:
    """A renderer's own text as Markdown: code spans (and ``**`` with ``bold``) kept as markup.

    For texts a renderer composes with values in them: what stands in backticks becomes a code
    span (:func:`markdown_code`), everything else is escaped as :func:`markdown_text` does.

    Args:
        text: The text.
        bold: Keep ``**`` as bold markers.
        cell: Escape pipes inside code spans too (for a table cell).

    Examples:
        >>> markdown_inline("rule `a-1` reads `<b>`")
        'rule `a-1` reads `<b>`'
    """
    out = []
    for k, part in enumerate((_CODE_OR_BOLD if bold else _CODE_SPAN).split(text)):
        if k % 2 == 0:
            out.append(markdown_text(part))
        elif part == "**":
            out.append(part)
        else:
            code = markdown_code(part[1:-1])
            out.append(code.replace("|", "\\|") if cell else code)
    return "".join(out)


def markdown_code(value: Any) -> str:
    """``value`` as a Markdown code span: literal inside, whatever backticks it holds.

    Examples:
        >>> markdown_code("age >= 60")
        '`age >= 60`'
        >>> markdown_code("a`b")
        '`` a`b ``'
    """
    text = _CONTROL_ALL.sub(_visible, str(value).replace("\r\n", " ").replace("\n", " "))
    runs = [len(r) for r in re.findall("`+", text)]
    if not runs:
        return f"`{text}`" if text else "` `"
    fence = "`" * (max(runs) + 1)
    return f"{fence} {text} {fence}"


def terminal_text(value: Any, *, multiline: bool = False) -> str:
    r"""``value`` safe to print on a terminal: ANSI escapes and control characters made visible.

    Args:
        value: The text (anything, shown through ``str``).
        multiline: Keep line breaks and tabs (for whole documents); by default they are made
            visible too, so one value stays on one line.

    Examples:
        >>> print(terminal_text("R1" + chr(27) + "[2J"))
        R1\x1b[2J
    """
    pattern = _CONTROL if multiline else _CONTROL_ALL
    return pattern.sub(_visible, str(value))


def plot_text(value: Any) -> str:
    r"""``value`` as matplotlib text: ``$`` escaped (no mathtext), controls made visible.

    Examples:
        >>> print(plot_text("R$1$"))
        R\$1\$
    """
    return terminal_text(value).replace("$", r"\$")


def csv_text(value: str) -> str:
    """A text cell neutralised against formula injection (OWASP): ``'`` before a formula start.

    Examples:
        >>> print(csv_text('=HYPERLINK("http://x")'))
        '=HYPERLINK("http://x")
        >>> csv_text("R0001")
        'R0001'
    """
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_column(column: Any) -> Any:
    """A pyarrow string column with every cell passed through :func:`csv_text`, vectorized."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    risky = pc.match_substring_regex(col, r"^[=+\-@\t\r]")
    if not pc.any(risky).as_py():
        return col
    quoted = pc.binary_join_element_wise(pa.scalar("'"), col, "")
    return pc.if_else(risky, quoted, col)
