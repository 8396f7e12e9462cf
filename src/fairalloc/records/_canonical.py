r"""Canonical bytes: one serialisation anyone can recompute, for records, rows and outcomes.

Records, residents' rows and outcomes are hashed as canonical JSON in the manner of RFC 8785
(JSON Canonicalization Scheme):

* objects with their keys sorted by UTF-16 code units, no whitespace;
* strings as :func:`json.dumps` writes them with ``ensure_ascii=False`` (only ``"``, ``\\`` and
  control characters escaped, the latter as ``\\uXXXX`` in lower case or ``\\n``-style);
* numbers: integers in decimal; floats as ECMAScript writes them (shortest form that reads back
  to the same double; ``29.0`` is written ``29``, ``1e-07`` is written ``1e-7``); NaN and
  infinities are refused;
* ``true``, ``false``, ``null``; UTF-8 bytes.

In Python, for the records of a log (which hold no floats), the canonical bytes are simply::

    json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fairalloc.errors import RecordsError

__all__ = ["bare_texts", "canonical", "canonical_float", "column_texts", "json_text"]


def canonical_float(x: float) -> str:
    """``x`` as ECMAScript's ``Number.prototype.toString`` (and RFC 8785) write it.

    Examples:
        >>> [canonical_float(v) for v in (29.0, 29.1, 1e-7, 0.00001, 1.5e22, -0.0)]
        ['29', '29.1', '1e-7', '0.00001', '1.5e+22', '0']
    """
    if not math.isfinite(x):
        raise RecordsError("FA700", f"{x!r} has no canonical form (NaN and infinities are refused)")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    # value = 0.digits * 10**n (ECMAScript's k digits and exponent n)
    n = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-")
        out += str(abs(e))
    return sign + out


def json_text(value: str) -> str:
    """A string as canonical JSON text (quoted and escaped)."""
    return json.dumps(value, ensure_ascii=False)


def _encode(obj: Any, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(json_text(obj))
    elif isinstance(obj, int):
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        out.append(canonical_float(obj))
    elif isinstance(obj, Mapping):
        out.append("{")
        keys = sorted(obj, key=lambda k: str(k).encode("utf-16-be"))
        for i, k in enumerate(keys):
            if not isinstance(k, str):
                raise RecordsError("FA700", f"object keys must be text, got {k!r}")
            if i:
                out.append(",")
            out.append(json_text(k))
            out.append(":")
            _encode(obj[k], out)
        out.append("}")
    elif isinstance(obj, Sequence) and not isinstance(obj, bytes | bytearray):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    elif isinstance(obj, dt.date):
        out.append(json_text(obj.isoformat()))
    else:
        raise RecordsError(
            "FA700", f"{type(obj).__name__} has no canonical JSON form", valid="JSON values"
        )


def canonical(obj: Any) -> bytes:
    r"""The canonical JSON bytes of ``obj`` (see the module's documentation).

    Examples:
        >>> canonical({"b": 1, "a": [True, None, "é"]})
        b'{"a":[true,null,"\xc3\xa9"],"b":1}'
    """
    out: list[str] = []
    _encode(obj, out)
    return "".join(out).encode("utf-8")


def column_texts(values: np.ndarray, kind: str, levels: Sequence[str] | None = None) -> list[str]:
    """Every value of a decoded column as canonical JSON text, vectorised where it can be.

    Args:
        values: The column as :meth:`~fairalloc.Population.decode` gives it, or, with
            ``levels``, the level codes of a category or ordinal.
        kind: The attribute's type (``bool``, ``int``, ``float``, ``category``, ``ordinal``,
            ``date``, ``str``).
        levels: The levels, when ``values`` are codes: each level is written once.
    """
    texts, quote = bare_texts(values, kind, levels)
    return [f'"{t}"' for t in texts] if quote else texts


def bare_texts(
    values: np.ndarray, kind: str, levels: Sequence[str] | None = None
) -> tuple[list[str], bool]:
    """:func:`column_texts` without the quotes of text and dates: ``(texts, quote)``.

    When ``quote`` is true each text is the inside of a JSON string (already escaped), and
    the caller writes the quotes, once in a row template rather than once per value.
    """
    if levels is not None:
        written = np.array([json_text(v) for v in levels], dtype=object)
        return written[values.astype(np.intp)].tolist(), False
    if kind == "bool":
        return np.where(values.astype(bool), "true", "false").tolist(), False
    if kind in _ARROW_WRITTEN:
        array, quote = bare_array(values, kind)
        return array.to_pylist(), quote
    texts = [str(v) for v in values.tolist()]
    if not texts:
        return [], True
    # One C-level dump of the whole list, split at the separators: inside a JSON string every
    # `"` is escaped, so `","` only ever separates two items.
    inner = json.dumps(texts, ensure_ascii=False, separators=(",", ":"))[2:-2]
    return inner.split('","'), True


def bare_array(values: np.ndarray, kind: str) -> tuple[Any, bool]:
    """:func:`bare_texts` as an Arrow ``string`` array: ``(texts, quote)``.

    Whole numbers, decimals and dates are written by Arrow (and :func:`bare_texts` takes them
    from here); text and yes/no by :func:`bare_texts`.
    """
    if kind == "int":
        return pc.cast(pa.array(values.astype(np.int64)), pa.string()), False
    if kind == "float":
        return _float_array(values.astype(np.float64)), False
    if kind == "date":
        # ISO dates (YYYY-MM-DD for the years 1-9999 a population holds) need no escaping.
        return pc.cast(pa.array(values.astype("datetime64[D]")), pa.string()), True
    texts, quote = bare_texts(values, kind)
    return pa.array(texts, type=pa.string()), quote


#: The kinds :func:`bare_array` writes with Arrow.
_ARROW_WRITTEN = ("int", "float", "date")


def _float_array(floats: np.ndarray) -> Any:
    if not np.isfinite(floats).all():
        bad = floats[~np.isfinite(floats)][0]
        raise RecordsError(
            "FA700", f"{bad!r} has no canonical form (NaN and infinities are refused)"
        )
    size = np.abs(floats)
    whole = (floats == np.round(floats)) & (size < 1e15)
    # Arrow writes the shortest digits that read back to the same double, as ECMAScript does,
    # and in ECMAScript's layout for numbers that are not whole from 1e-7 to 1e10 (checked
    # against `canonical_float` in the tests); whole numbers are written as integers; the rest
    # (rare: huge or tiny) one by one.
    texts = pc.cast(pa.array(floats), pa.string())
    ints = pc.cast(pa.array(np.where(whole, floats, 0).astype(np.int64)), pa.string())
    out = pc.if_else(pa.array(whole), ints, texts)
    odd = np.flatnonzero(~whole & ((size < 1e-7) | (size >= 1e10)))
    if len(odd):
        written = out.to_pylist()
        for i in odd.tolist():
            written[i] = canonical_float(float(floats[i]))
        out = pa.array(written, type=pa.string())
    return out
