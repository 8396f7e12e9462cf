"""Plain-text output: one table renderer and one number formatter for every text report.

Terminals show East Asian wide characters (Chinese titles, full-width punctuation) in two
columns and combining marks in none, so widths are counted in display columns, not characters.
Columns whose every cell is a number are right-aligned, and so is their heading; others are
left-aligned. Numbers are written one way everywhere: whole numbers without decimals, others
with at most the places asked for and no trailing zeros, and never ``-0``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Sequence

__all__ = ["display_width", "fixed", "number", "pad", "text_table", "value"]

_NUMERIC = re.compile(r"^[+\-−]?(\d[\d,]*)?(\.\d+)?%?=?$|^[—-]$")


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: 2 for wide characters, 0 for combining marks."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` display columns, on the left when ``right``."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def number(x: float, *, places: int = 6, sign: bool = False) -> str:
    """A number as text: ``40``, ``7.15``, ``0.333333``; never ``-0`` or ``-0.00``.

    Args:
        x: The number.
        places: Decimals at most (trailing zeros are dropped).
        sign: Write ``+`` before positive numbers (for changes).
    """
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("∞" if x > 0 else "-∞")
    text = f"{x:.{places}f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(int(x))
    if text in ("-0", "+0", "-0.0"):
        text = "0"
    if sign and not text.startswith("-") and text != "0":
        text = "+" + text
    return text


def fixed(x: float, places: int = 2, *, sign: bool = False) -> str:
    """A number with exactly ``places`` decimals (for columns of figures); never ``-0.00``."""
    text = f"{x:{'+' if sign else ''}.{places}f}"
    if float(text) == 0:
        text = f"{0.0:.{places}f}"
    return text


def value(v: object) -> str:
    """Any value of a report as text: numbers by :func:`number`, dates ISO, ``None`` as ``—``."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return number(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def text_table(
    heads: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    rule: bool = False,
) -> list[str]:
    """The lines of an aligned text table (no trailing spaces).

    Args:
        heads: Column headings.
        rows: Cells, already text (see :func:`value`).
        right: Which columns to right-align; by default those whose every cell is a number.
        rule: Draw a line of dashes under the headings.
    """
    n = len(heads)
    widths = [max(display_width(heads[k]), *(display_width(r[k]) for r in rows)) for k in range(n)]
    if right is None:
        right = [bool(rows) and all(_NUMERIC.match(r[k]) for r in rows) for k in range(n)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            pad(c, w, right=r) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    out = [line(heads)]
    if rule:
        out.append(line(["-" * w for w in widths]))
    out += [line(r) for r in rows]
    return out
