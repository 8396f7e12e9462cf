"""The HTML tables results show in Jupyter: semantic, escaped, readable at any text size."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fairalloc._escape import html_text

__all__ = ["table"]


def table(heads: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table with column headers; every value is escaped."""
    head = "".join(f"<th scope='col'>{html_text(h)}</th>" for h in heads)
    body = "".join(
        "<tr>" + "".join(f"<td>{html_text(v)}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
