"""The HTML tables results show in Jupyter: semantic, escaped, readable at any text size."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fairalloc._escape import html_text

__all__ = ["STYLE", "page", "table"]


def table(heads: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table with column headers; every value is escaped."""
    head = "".join(f"<th scope='col'>{html_text(h)}</th>" for h in heads)
    body = "".join(
        "<tr>" + "".join(f"<td>{html_text(v)}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


#: The page's style: readable at any size, nothing wider than the page, code that wraps.
STYLE = (
    "html{font-size:100%}body{font:1rem/1.6 system-ui,'Noto Sans CJK SC','Microsoft YaHei',"
    "sans-serif;color:#1a1a1a;background:#fff;max-width:75rem;margin:0 auto;padding:1rem}"
    "main{max-width:100%}h1,h2,h3{line-height:1.3}"
    "a{color:#0b4f9c}"
    ".table{max-width:100%;overflow-x:auto;margin:1rem 0}"
    "table{border-collapse:collapse;max-width:100%}"
    "th,td{border:1px solid #444;padding:.3rem .6rem;text-align:left;vertical-align:top;"
    "overflow-wrap:anywhere;word-break:normal}"
    "caption{font-weight:bold;text-align:left;padding:.3rem 0}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;color:#1a1a1a;"
    "padding:.6rem;border:1px solid #999}"
    "code{font-family:ui-monospace,'Noto Sans Mono CJK SC',monospace}"
    ":focus{outline:3px solid #0b4f9c;outline-offset:2px}"
)
_LARGE = "html{font-size:150%}"


def page(body: str, *, title: str, lang: str, large_print: bool = False) -> str:
    """A standalone, accessible HTML page around ``body`` (already HTML).

    Args:
        body: The page's content (HTML).
        title: The page's title (plain text; escaped here).
        lang: The page's language (``en``, ``zh-CN``).
        large_print: Set the base text size to 150% (§2.1.3).
    """
    e = html_text
    style = STYLE + (_LARGE if large_print else "")
    return (
        f'<!DOCTYPE html>\n<html lang="{e(lang)}">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{style}</style></head>\n<body><main>\n"
        f"{body}</main></body>\n</html>\n"
    )
