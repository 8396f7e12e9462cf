"""Residents as typed numpy columns, validated against a policy's attribute schema.

:class:`Population` knows the attributes a policy declares, never its rules. Every value is
checked column by column, vectorized where the input is already typed; all problems are
collected and raised together as one :class:`~fairalloc.errors.PopulationError` naming the
column, the residents, the values and what would be valid. Nothing is dropped or coerced
silently: a missing value is an error unless the attribute says ``missing: default``, and the
rows so filled are recorded in :attr:`Population.filled`.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import difflib
import enum
import html
import math
import numbers
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fairalloc.errors import MAX_LISTED, PopulationError, PopulationIssue
from fairalloc.policy._model import Attribute, Policy

__all__ = ["Population"]

Array = npt.NDArray[Any]
Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.intp]
Label = Callable[[int], str]

_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_EPOCH64: Final = np.datetime64("1970-01-01", "D")
#: Integers beyond this lose exactness in float64, the encoding of every number.
_EXACT: Final = 2**53
_BOOL_WORDS: Final = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_WHOLE_TEXT: Final = re.compile(r"[+-]?\d+")
_HTML_ROWS: Final = 10
_ACCEPTED: Final = (
    "a .csv path or open CSV file, a pandas or polars DataFrame, a pyarrow Table, a mapping of"
    " column names to values, records (mappings) or pydantic models"
)

# Messages shared by several encoders (an issue is keyed by code and message).
_NOT_NUMBER = "not a number"
_NOT_FINITE = "not a finite number"
_TEXT_NUMBER = "text where a number is expected (only CSV text is parsed)"
_FLAG_NUMBER = "true/false where a number is expected"
_TOO_BIG = "too large to hold exactly (more than 2**53 in size)"
_NOT_BOOL = "not true or false"
_NOT_DATE = "not a date"
_HAS_TIME = "a date with a time of day or time zone; give the date only"
_NOT_TEXT = "not text: write the level's name"


# -- what a value is ---------------------------------------------------------------------------

# Kinds of Python values in an object column, decided once per distinct type.
_MISSING, _BOOL, _INT, _REAL, _STR, _DATETIME, _DATE, _DATETIME64, _OTHER = range(9)


def _kind_of_type(t: type) -> int:
    # pandas' NA and NaT are recognised by name so that pandas need not be imported; NaT
    # subclasses datetime, so this test comes first.
    if t is type(None) or (t.__module__.startswith("pandas") and t.__name__ in _PANDAS_NULLS):
        return _MISSING
    if issubclass(t, bool | np.bool_):
        return _BOOL
    if issubclass(t, int | np.integer):
        return _INT
    if issubclass(t, numbers.Real | decimal.Decimal):
        return _REAL
    if issubclass(t, str):
        return _STR
    if issubclass(t, dt.datetime):
        return _DATETIME
    if issubclass(t, dt.date):
        return _DATE
    if issubclass(t, np.datetime64):
        return _DATETIME64
    return _OTHER


_PANDAS_NULLS: Final = frozenset({"NAType", "NaTType"})


def _kinds(values: Array) -> npt.NDArray[np.int8]:
    """The kind of every value of an object array; blank text, NaN and NaT count as missing."""
    types = [type(v) for v in values]
    table = {t: _kind_of_type(t) for t in set(types)}
    kinds = np.array([table[t] for t in types], dtype=np.int8)
    for kind, is_missing in ((_STR, _is_blank), (_REAL, _is_nan), (_DATETIME64, _is_nat)):
        rows = np.flatnonzero(kinds == kind)
        if len(rows):
            gone = np.fromiter((is_missing(v) for v in values[rows]), dtype=bool, count=len(rows))
            kinds[rows[gone]] = _MISSING
    return kinds


def _is_blank(v: str) -> bool:
    return not v or v.isspace()


def _is_nan(v: Any) -> bool:
    try:
        return math.isnan(v)
    except (TypeError, ValueError, OverflowError):  # e.g. Decimal('sNaN'), a huge Fraction
        return False


def _is_nat(v: np.datetime64) -> bool:
    return bool(np.isnat(v))


def _to_floats(values: Array) -> tuple[npt.NDArray[np.float64], Mask]:
    """``values`` as float64, and which could not be converted."""
    try:  # one C loop in the usual case
        return values.astype(np.float64), np.zeros(len(values), dtype=bool)
    except (TypeError, ValueError, ArithmeticError):
        pass
    out = np.zeros(len(values), dtype=np.float64)
    failed = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError, ArithmeticError):
            failed[i] = True
    return out, failed


def _parse_each(values: Array, parse: Callable[[str], Any]) -> list[Any]:
    # Columns repeat values (dates, flags), so each distinct text is parsed once.
    cache = {s: parse(s) for s in set(values.tolist())}
    return [cache[s] for s in values.tolist()]


def _suggest(value: str, options: Sequence[str]) -> str | None:
    for opt in options:
        if opt.casefold() == value.strip().casefold():
            return opt
    close = difflib.get_close_matches(value.strip(), list(options), n=1)
    return close[0] if close else None


def _show(v: Any) -> str:
    """A short, unambiguous rendering of an offending value (text is quoted)."""
    try:
        if isinstance(v, np.datetime64):
            text = str(v)
        else:
            if isinstance(v, np.generic):
                v = v.item()
            text = v.isoformat() if isinstance(v, dt.date) else repr(v)
    except Exception:  # a value whose repr fails must not hide the real problem
        text = f"<{type(v).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _as_mask(where: Mask | Rows, n: int) -> Mask:
    if where.dtype == np.bool_:
        return where
    mask = np.zeros(n, dtype=bool)
    mask[where] = True
    return mask


# -- what is valid -----------------------------------------------------------------------------


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _day(d: dt.date) -> str:
    return d.isoformat()[:10]


def _span(lo: str | None, hi: str | None) -> str:
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" from {lo}"
    return f" up to {hi}" if hi is not None else ""


def _valid(attr: Attribute) -> str:
    """What a valid value of ``attr`` looks like, for the ``valid`` field of an issue."""
    if attr.type in ("category", "ordinal"):
        return "one of: " + ", ".join(attr.levels or [])
    if attr.type == "bool":
        return "true or false"
    if attr.type == "str":
        return "a non-empty id, different for every resident"
    if attr.type == "date":
        lo = _day(attr.min) if isinstance(attr.min, dt.date) else None
        hi = _day(attr.max) if isinstance(attr.max, dt.date) else None
        return "a date YYYY-MM-DD" + _span(lo, hi)
    lo = _num(attr.min) if isinstance(attr.min, int | float) else None
    hi = _num(attr.max) if isinstance(attr.max, int | float) else None
    return ("a whole number" if attr.type == "int" else "a number") + _span(lo, hi)


def _bounds(attr: Attribute) -> tuple[float | None, float | None]:
    """``min`` and ``max`` in the column's encoding (days since 1970 for dates)."""

    def one(b: float | dt.date | None) -> float | None:
        if isinstance(b, dt.date):
            return float(b.toordinal() - _EPOCH_ORDINAL)
        return None if b is None else float(b)

    return one(attr.min), one(attr.max)


# -- one column being encoded ------------------------------------------------------------------


class _Check:
    """A column being encoded: its values, its missing rows, its invalid rows and why."""

    def __init__(self, n: int, dtype: npt.DTypeLike, valid: str) -> None:
        kind = np.dtype(dtype)
        self.values: Array = np.empty(n, dtype=kind) if kind == object else np.zeros(n, kind)
        self.missing: Mask = np.zeros(n, dtype=bool)
        self.bad: Mask = np.zeros(n, dtype=bool)
        self.valid = valid
        self._flags: dict[tuple[str, str], Mask] = {}

    def ok(self) -> Mask:
        return ~(self.missing | self.bad)

    def set_missing(self, where: Mask | Rows) -> None:
        self.missing |= _as_mask(where, len(self.values))

    def flag(self, code: str, where: Mask | Rows, message: str) -> None:
        mask = _as_mask(where, len(self.values))
        if not mask.any():
            return
        key = (code, message)
        self._flags[key] = mask | self._flags[key] if key in self._flags else mask
        self.bad |= mask

    def check_bounds(self, attr: Attribute) -> None:
        lo, hi = _bounds(attr)
        ok = self.ok()
        out = np.zeros(len(self.values), dtype=bool)
        if lo is not None:
            out |= ok & (self.values < lo)
        if hi is not None:
            out |= ok & (self.values > hi)
        self.flag("FA503", out, "out of range")

    def check_whole(self) -> None:
        ok = self.ok()
        self.flag("FA508", ok & (self.values != np.floor(self.values)), "not a whole number")
        self.flag("FA503", self.ok() & (np.abs(self.values) > _EXACT), _TOO_BIG)

    def finish(self) -> Array:
        # Rows that are not valid hold a fixed placeholder, so nothing depends on junk.
        self.values[~self.ok()] = None if self.values.dtype == object else 0
        return self.values

    def issues(self, column: str, raw: Array, label: Label) -> list[PopulationIssue]:
        keys = sorted(self._flags, key=lambda k: k[0])  # by code; stable within a code
        return [
            _issue(code, column, msg, np.flatnonzero(self._flags[code, msg]), raw, label, self.valid)
            for code, msg in keys
        ]


def _issue(
    code: str, column: str, message: str, rows: Rows, raw: Array, label: Label, valid: str
) -> PopulationIssue:
    shown = rows[:MAX_LISTED].tolist()
    return PopulationIssue(
        code,
        column,
        message,
        ids=tuple(label(r) for r in shown),
        values=tuple(_show(raw[r]) for r in shown),
        valid=valid,
        count=len(rows),
    )


def _all(n: int) -> Mask:
    return np.ones(n, dtype=bool)


def _object_rows(raw: Array) -> tuple[Array, Rows]:
    """``raw`` as an object array, with every row position (for the object-column paths)."""
    return raw.astype(object), np.arange(len(raw))


# -- numbers -----------------------------------------------------------------------------------


def _encode_number(raw: Array, attr: Attribute, *, text: bool) -> _Check:
    chk = _Check(len(raw), np.float64, _valid(attr))
    whole = attr.type == "int"
    kind = raw.dtype.kind
    if kind in "iu":
        if whole:
            chk.flag("FA503", (raw > _EXACT) | (raw < -_EXACT), _TOO_BIG)
        chk.values[:] = raw
    elif kind == "f":
        vals = raw.astype(np.float64)
        chk.set_missing(np.isnan(vals))
        chk.flag("FA502", np.isinf(vals), _NOT_FINITE)
        chk.values[:] = vals
    elif kind == "b":
        chk.flag("FA502", _all(len(raw)), _FLAG_NUMBER)
    elif kind in "OUS":
        _object_numbers(chk, *_object_rows(raw), whole=whole, text=text)
    else:
        chk.flag("FA502", _all(len(raw)), f"{_NOT_NUMBER} (a column of {raw.dtype})")
    if whole:
        chk.check_whole()
    chk.check_bounds(attr)
    return chk


def _object_numbers(chk: _Check, vals: Array, rows: Rows, *, whole: bool, text: bool) -> None:
    kinds = _kinds(vals)
    chk.set_missing(rows[kinds == _MISSING])
    ints = np.flatnonzero(kinds == _INT)
    if whole and len(ints):
        # Exactly, on Python ints: 2**53 + 1 would round to 2**53 as a float.
        big = np.fromiter((abs(int(v)) > _EXACT for v in vals[ints]), dtype=bool, count=len(ints))
        chk.flag("FA503", rows[ints[big]], _TOO_BIG)
        ints = ints[~big]
    _put_floats(chk, rows[ints], vals[ints], text=False)
    reals = np.flatnonzero(kinds == _REAL)
    _put_floats(chk, rows[reals], vals[reals], text=False)
    chk.flag("FA502", rows[kinds == _BOOL], _FLAG_NUMBER)
    strs = np.flatnonzero(kinds == _STR)
    if text:
        _put_floats(chk, rows[strs], vals[strs], text=True)
    else:
        chk.flag("FA502", rows[strs], _TEXT_NUMBER)
    others = (kinds == _DATETIME) | (kinds == _DATE) | (kinds == _DATETIME64) | (kinds == _OTHER)
    chk.flag("FA502", rows[others], _NOT_NUMBER)


def _put_floats(chk: _Check, rows: Rows, vals: Array, *, text: bool) -> None:
    if not len(rows):
        return
    out, failed = _to_floats(vals)
    chk.flag("FA502", rows[failed], _NOT_NUMBER)
    nan = np.isnan(out) & ~failed
    if text:  # the text "nan" is not an empty cell
        chk.flag("FA502", rows[nan], _NOT_FINITE)
    else:
        chk.set_missing(rows[nan])
    chk.flag("FA502", rows[np.isinf(out)], _NOT_FINITE)
    chk.values[rows] = out


# -- flags -------------------------------------------------------------------------------------


def _encode_bool(raw: Array, attr: Attribute, *, text: bool) -> _Check:
    del text  # words such as "yes" are read from any source
    chk = _Check(len(raw), np.bool_, _valid(attr))
    kind = raw.dtype.kind
    if kind == "b":
        chk.values[:] = raw
    elif kind in "iuf":
        _zero_one(chk, np.arange(len(raw)), raw.astype(np.float64))
    elif kind in "OUS":
        _object_bools(chk, *_object_rows(raw))
    else:
        chk.flag("FA502", _all(len(raw)), _NOT_BOOL)
    return chk


def _zero_one(chk: _Check, rows: Rows, nums: npt.NDArray[np.float64]) -> None:
    nan = np.isnan(nums)
    chk.set_missing(rows[nan])
    chk.flag("FA502", rows[~nan & (nums != 0) & (nums != 1)], _NOT_BOOL)
    chk.values[rows] = nums == 1


def _object_bools(chk: _Check, vals: Array, rows: Rows) -> None:
    kinds = _kinds(vals)
    chk.set_missing(rows[kinds == _MISSING])
    flags = np.flatnonzero(kinds == _BOOL)
    chk.values[rows[flags]] = [bool(v) for v in vals[flags]]
    nums = np.flatnonzero((kinds == _INT) | (kinds == _REAL))
    out, failed = _to_floats(vals[nums])
    chk.flag("FA502", rows[nums[failed]], _NOT_BOOL)
    _zero_one(chk, rows[nums[~failed]], out[~failed])
    strs = np.flatnonzero(kinds == _STR)
    words = _parse_each(vals[strs], lambda s: _BOOL_WORDS.get(s.strip().lower()))
    unknown = np.array([w is None for w in words], dtype=bool)
    chk.flag("FA502", rows[strs[unknown]], _NOT_BOOL)
    chk.values[rows[strs[~unknown]]] = [w for w in words if w is not None]
    chk.flag("FA502", rows[kinds >= _DATETIME], _NOT_BOOL)


# -- levels ------------------------------------------------------------------------------------


def _encode_level(raw: Array, attr: Attribute, *, text: bool) -> _Check:
    del text  # levels are text in every source
    levels = list(attr.levels or [])
    chk = _Check(len(raw), np.int16, _valid(attr))
    kind = raw.dtype.kind
    if kind == "U":
        # One vectorized comparison per level; only the rest is looked at value by value.
        matched = np.zeros(len(raw), dtype=bool)
        for code, level in enumerate(levels):
            hit = raw == level
            chk.values[hit] = code
            matched |= hit
        rest = np.flatnonzero(~matched)
        _object_levels(chk, raw[rest].astype(object), rest, levels)
    elif kind in "OS":
        _object_levels(chk, *_object_rows(raw), levels)
    elif kind == "f":
        nan = np.isnan(raw)
        chk.set_missing(nan)
        chk.flag("FA502", ~nan, _NOT_TEXT)
    else:
        chk.flag("FA502", _all(len(raw)), _NOT_TEXT)
    return chk


def _object_levels(chk: _Check, vals: Array, rows: Rows, levels: list[str]) -> None:
    kinds = _kinds(vals)
    chk.set_missing(rows[kinds == _MISSING])
    strs = np.flatnonzero(kinds == _STR)
    lookup = {level: code for code, level in enumerate(levels)}
    codes = np.array([lookup.get(s, -1) for s in vals[strs]], dtype=np.int16)
    known = codes >= 0
    chk.values[rows[strs[known]]] = codes[known]
    unknown = strs[~known]
    if len(unknown):
        chk.flag("FA504", rows[unknown], "unknown level" + _hint(vals[unknown], levels))
    chk.flag("FA502", rows[(kinds != _MISSING) & (kinds != _STR)], _NOT_TEXT)


def _hint(offending: Array, levels: list[str]) -> str:
    for value in dict.fromkeys(offending[: MAX_LISTED * 4].tolist()):
        guess = _suggest(str(value), levels)
        if guess is not None:
            return f"; did you mean `{guess}`?"
    return ""


# -- dates -------------------------------------------------------------------------------------


def _encode_date(raw: Array, attr: Attribute, *, text: bool) -> _Check:
    del text  # ISO dates are read from any source
    chk = _Check(len(raw), np.int64, _valid(attr))
    kind = raw.dtype.kind
    if kind == "M":
        nat = np.isnat(raw)
        days = raw.astype("datetime64[D]")
        chk.set_missing(nat)
        chk.flag("FA502", ~nat & (days.astype(raw.dtype) != raw), _HAS_TIME)
        chk.values[~nat] = (days[~nat] - _EPOCH64).astype(np.int64)
    elif kind in "OUS":
        _object_dates(chk, *_object_rows(raw))
    elif kind == "f":
        nan = np.isnan(raw)
        chk.set_missing(nan)
        chk.flag("FA502", ~nan, _NOT_DATE)
    else:
        chk.flag("FA502", _all(len(raw)), _NOT_DATE)
    chk.check_bounds(attr)
    return chk


def _object_dates(chk: _Check, vals: Array, rows: Rows) -> None:
    kinds = _kinds(vals)
    chk.set_missing(rows[kinds == _MISSING])
    for kind, parse in (
        (_DATE, _date_day),
        (_DATETIME, _datetime_day),
        (_DATETIME64, _datetime64_day),
        (_STR, _text_day),
    ):
        sel = np.flatnonzero(kinds == kind)
        days = _parse_each(vals[sel], parse) if kind == _STR else [parse(v) for v in vals[sel]]
        failed = np.array([d is None for d in days], dtype=bool)
        message = _HAS_TIME if kind in (_DATETIME, _DATETIME64) else _NOT_DATE
        chk.flag("FA502", rows[sel[failed]], message)
        chk.values[rows[sel[~failed]]] = [d for d in days if d is not None]
    chk.flag("FA502", rows[np.isin(kinds, (_BOOL, _INT, _REAL, _OTHER))], _NOT_DATE)


def _date_day(v: dt.date) -> int:
    return v.toordinal() - _EPOCH_ORDINAL


def _datetime_day(v: dt.datetime) -> int | None:
    # A time zone makes the calendar day ambiguous; a time of day is not a date.
    midnight = v.time() == dt.time(0) and getattr(v, "nanosecond", 0) == 0
    return _date_day(v.date()) if midnight and v.tzinfo is None else None


def _datetime64_day(v: np.datetime64) -> int | None:
    day = v.astype("datetime64[D]")
    return int((day - _EPOCH64).astype(np.int64)) if day == v else None


def _text_day(s: str) -> int | None:
    s = s.strip()
    if not _ISO_DATE.fullmatch(s):
        return None
    try:
        return _date_day(dt.date.fromisoformat(s))
    except ValueError:
        return None


# -- ids ---------------------------------------------------------------------------------------


def _encode_ids(raw: Array, attr: Attribute) -> _Check:
    """Ids as decimal or verbatim text; missing ids are left for FA507 (there is no default)."""
    valid = "a whole number, different for every resident" if attr.type == "int" else _valid(attr)
    chk = _Check(len(raw), object, valid)
    kind = raw.dtype.kind
    if kind in "iu":
        chk.values[:] = raw.astype(str).astype(object)
    elif kind in "fOUS":
        _object_ids(chk, *_object_rows(raw), whole=attr.type == "int")
    else:
        chk.flag("FA502", _all(len(raw)), "not a valid id")
    return chk


def _object_ids(chk: _Check, vals: Array, rows: Rows, *, whole: bool) -> None:
    kinds = _kinds(vals)
    chk.set_missing(rows[kinds == _MISSING])
    ints = np.flatnonzero(kinds == _INT)
    chk.values[rows[ints]] = [str(int(v)) for v in vals[ints]]
    strs = np.flatnonzero(kinds == _STR)
    texts = [_whole_text(s) if whole else str(s) for s in vals[strs]]
    failed = np.array([t is None for t in texts], dtype=bool)
    chk.flag("FA502", rows[strs[failed]], "not a whole number")
    chk.values[rows[strs[~failed]]] = [t for t in texts if t is not None]
    reals = np.flatnonzero(kinds == _REAL)
    nums, bad = _to_floats(vals[reals])
    bad |= ~np.isfinite(nums) | (nums != np.floor(nums)) | (np.abs(nums) > _EXACT)
    chk.flag("FA502", rows[reals[bad]], "not a whole number")
    chk.values[rows[reals[~bad]]] = [str(int(v)) for v in nums[~bad]]
    chk.flag("FA502", rows[np.isin(kinds, (_BOOL, _DATETIME, _DATE, _DATETIME64, _OTHER))], "not a valid id")


def _whole_text(s: str) -> str | None:
    s = s.strip()
    return str(int(s)) if _WHOLE_TEXT.fullmatch(s) else None


def _duplicates(ids: Array, ok: Mask) -> Mask:
    """Rows whose id another valid row shares (every one of them, the first included)."""
    rows = np.flatnonzero(ok)
    listed = ids[rows].tolist()
    if len(set(listed)) == len(listed):  # the usual case, at the cost of one set
        return np.zeros(len(ids), dtype=bool)
    counts = Counter(listed)
    return _as_mask(rows[np.array([counts[i] > 1 for i in listed], dtype=bool)], len(ids))


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RowNames:
    """How to name a row whose id is unusable: ``row N`` (1-based) or ``line N`` of a file."""

    word: str = "row"
    numbers: Sequence[int] | None = None

    def __call__(self, r: int) -> str:
        return f"{self.word} {self.numbers[r] if self.numbers is not None else r + 1}"


@dataclass(frozen=True, slots=True)
class _Labels:
    """Names rows by resident id where the id is usable, else by :class:`_RowNames`."""

    ids: Array | None
    usable: Mask | None
    rows: _RowNames

    def __call__(self, r: int) -> str:
        if self.ids is not None and self.usable is not None and self.usable[r]:
            return str(self.ids[r])
        return self.rows(r)


@dataclass(slots=True)
class _Table:
    """Raw input columns, before validation."""

    columns: dict[str, Array]
    text: bool = False  # values are text read from a file, so numbers are parsed
    rows: _RowNames = field(default_factory=_RowNames)
    repeated: tuple[str, ...] = ()  # column names given more than once
    issues: list[PopulationIssue] = field(default_factory=list)  # found while reading


def _named(pairs: Iterable[tuple[str, Array]], **kw: Any) -> _Table:
    """A table from (name, column) pairs; a repeated name keeps its first column."""
    columns: dict[str, Array] = {}
    repeated: list[str] = []
    for name, col in pairs:
        if name in columns:
            repeated.append(name)
        else:
            columns[name] = col
    return _Table(columns, repeated=tuple(dict.fromkeys(repeated)), **kw)


def _object_array(values: Sequence[Any]) -> Array:
    # fromiter keeps every value as one element, even lists (np.array would nest them).
    return np.fromiter(values, dtype=object, count=len(values))


def _as_column(name: str, values: Any) -> Array:
    module = type(values).__module__.partition(".")[0]
    if module == "pandas":
        return _pandas_column(values)
    if module == "pyarrow":
        return _arrow_column(values)
    if module == "polars":
        return _object_array(values.to_list())
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise TypeError(f"column `{name}` must be one-dimensional, got shape {values.shape}")
        return values
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"column `{name}` must be a sequence of values, got {type(values).__name__}")
    return _object_array(list(values))


def _pandas_column(s: Any) -> Array:
    import pandas as pd

    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # Decode through the categories, so a level is checked as the text it shows.
        categories = np.asarray(dtype.categories, dtype=object)
        codes = s.cat.codes.to_numpy()
        out = np.full(len(s), None, dtype=object)
        has = codes >= 0
        out[has] = categories[codes[has]]
        return out
    if isinstance(dtype, np.dtype):
        return np.asarray(s.to_numpy())
    # Extension dtypes (nullable Int64, boolean, string, arrow): pandas.NA becomes None.
    return np.asarray(s.to_numpy(dtype=object, na_value=None))


def _arrow_column(col: Any) -> Array:
    import pyarrow as pa

    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    # Integers with nulls would become float64 (inexact past 2**53), and zoned timestamps
    # would silently become UTC: keep Python values for both.
    zoned = pa.types.is_timestamp(t) and t.tz is not None
    if zoned or (pa.types.is_integer(t) and col.null_count):
        return _object_array(col.to_pylist())
    return np.asarray(col.to_numpy())


def _read_csv(fh: IO[str], source: str) -> _Table:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        issue = PopulationIssue("FA501", "", "the file is empty", valid="a header row of names")
        raise PopulationError([issue], source=source)
    if header:  # a byte-order mark, as spreadsheet programs write, is not part of the name
        header[0] = header[0].removeprefix("\ufeff")
    names = [h.strip() for h in header]
    cells: list[list[str]] = []
    lines: list[int] = []
    before = reader.line_num
    for row in reader:
        start, before = before + 1, reader.line_num  # a quoted cell may span several lines
        if row:  # a blank line holds no resident
            cells.append(row)
            lines.append(start)
    issues = _ragged(cells, lines, len(names))
    columns = [(name, _object_array([r[j] for r in cells])) for j, name in enumerate(names)]
    return _named(columns, text=True, rows=_RowNames("line", lines), issues=issues)


def _ragged(cells: list[list[str]], lines: list[int], width: int) -> list[PopulationIssue]:
    bad = [i for i, r in enumerate(cells) if len(r) != width]
    if not bad:
        return []
    shown = bad[:MAX_LISTED]
    return [
        PopulationIssue(
            "FA502",
            "",
            "lines with another number of cells than the header",
            ids=tuple(f"line {lines[i]}" for i in shown),
            values=tuple(f"{len(cells[i])} cells" for i in shown),
            valid=f"{width} cells, as in the header",
            count=len(bad),
        )
    ]


# -- validation --------------------------------------------------------------------------------

_ENCODERS: Final[dict[str, Callable[..., _Check]]] = {
    "int": _encode_number,
    "float": _encode_number,
    "bool": _encode_bool,
    "category": _encode_level,
    "ordinal": _encode_level,
    "date": _encode_date,
}


def _build(table: _Table, schema: Policy, source: str) -> Population:
    """Validate ``table`` against ``schema``: a population, or every problem at once."""
    idname = schema.id_attribute
    issues = list(table.issues)
    issues += _column_issues(table, schema)
    n = _row_count(table, idname, issues)
    if issues and (table.issues or n is None):  # cells are misaligned: values mean nothing
        raise PopulationError(issues, source=source)
    assert n is not None
    ids, labels = _check_ids(table, schema, issues)
    columns: dict[str, Array] = {}
    filled: dict[str, Mask] = {}
    for name, attr in schema.attributes.items():
        if name == idname or name not in table.columns or name in table.repeated:
            continue
        values, fill = _encode_column(name, attr, table, labels, issues)
        columns[name] = values
        if fill is not None:
            filled[name] = fill
    if issues:
        raise PopulationError(issues, source=source)
    assert ids is not None
    ignored = tuple(c for c in table.columns if c not in schema.attributes)
    return Population(
        ids, columns, schema, filled=filled, source=source, ignored_columns=ignored
    )


def _column_issues(table: _Table, schema: Policy) -> list[PopulationIssue]:
    found = list(table.columns)
    spare = [c for c in found if c not in schema.attributes]
    shown = ", ".join(f"`{c}`" for c in found[:20]) or "none"
    if len(found) > 20:
        shown += f" and {len(found) - 20} more"
    issues = []
    for name, attr in schema.attributes.items():
        if name in table.repeated:
            issues.append(
                PopulationIssue(
                    "FA501", name, "the column is given more than once", valid="one column"
                )
            )
        elif name not in table.columns:
            message = f"missing column; columns found: {shown}"
            guess = difflib.get_close_matches(name, spare, n=1) or [
                c for c in spare if c.casefold() == name.casefold()
            ]
            if guess:
                message += f"; `{guess[0]}` may be a misspelling: did you mean `{name}`?"
            issues.append(
                PopulationIssue("FA501", name, message, valid=f"a column `{name}`: {_valid(attr)}")
            )
    return issues


def _row_count(table: _Table, idname: str, issues: list[PopulationIssue]) -> int | None:
    """The number of residents, or None (with an issue per column) if columns disagree."""
    lengths = {name: len(col) for name, col in table.columns.items()}
    if not lengths:
        return 0
    n = lengths.get(idname, Counter(lengths.values()).most_common(1)[0][0])
    wrong = [name for name, k in lengths.items() if k != n]
    for name in wrong:
        issues.append(
            PopulationIssue(
                "FA502",
                name,
                f"{lengths[name]} values, but the table has {n} rows",
                valid=f"{n} values, one per resident",
            )
        )
    return None if wrong else n


def _check_ids(
    table: _Table, schema: Policy, issues: list[PopulationIssue]
) -> tuple[Array | None, _Labels]:
    idname = schema.id_attribute
    raw = table.columns.get(idname)
    if raw is None or idname in table.repeated:
        return None, _Labels(None, None, table.rows)
    chk = _encode_ids(raw, schema.attributes[idname])
    chk.flag("FA507", chk.missing, "no resident id")  # an id has no default
    ids = chk.finish()
    dups = _duplicates(ids, chk.ok())
    chk.flag("FA506", dups, "the same id for several residents")
    issues += chk.issues(idname, raw, table.rows)  # the id is what is wrong: name the row
    usable = chk.ok()
    return (ids if usable.all() else None), _Labels(ids, usable, table.rows)


def _encode_column(
    name: str, attr: Attribute, table: _Table, labels: _Labels, issues: list[PopulationIssue]
) -> tuple[Array, Mask | None]:
    raw = table.columns[name]
    chk = _ENCODERS[attr.type](raw, attr, text=table.text)
    found = chk.issues(name, raw, labels)
    fill: Mask | None = None
    if attr.missing == "error":
        rows = np.flatnonzero(chk.missing)
        if len(rows):
            message = "missing value (the attribute has no `missing: default`)"
            found.append(_issue("FA505", name, message, rows, raw, labels, chk.valid))
    else:
        default = _encode_default(name, attr, found)
        if default is not None and chk.missing.any():
            chk.values[chk.missing] = default
            fill = chk.missing.copy()
            chk.missing[:] = False
    values = chk.finish()
    issues += sorted(found, key=lambda i: i.code)
    return values, fill


def _encode_default(name: str, attr: Attribute, issues: list[PopulationIssue]) -> Any:
    """The encoded ``default`` of ``attr``, or None (with an issue) if it is not valid."""
    one = np.empty(1, dtype=object)
    one[0] = attr.default
    chk = _ENCODERS[attr.type](one, attr, text=False)
    if chk.ok()[0]:
        return chk.values[0]
    issues.append(
        PopulationIssue(
            "FA502",
            name,
            f"the attribute's `default` {_show(attr.default)} is not valid",
            valid=chk.valid,
        )
    )
    return None


def _check_encoded(values: Array, attr: Attribute) -> _Check:
    """Check values already in the column encoding (see :meth:`Population.replace`)."""
    n, kind = len(values), values.dtype.kind
    if attr.type in ("category", "ordinal"):
        k = len(attr.levels or [])
        chk = _Check(n, np.int16, f"a level code from 0 to {k - 1}: " + _codes(attr))
        if kind not in "iu":
            chk.flag("FA502", _all(n), f"level codes must be integers, not {values.dtype}")
        else:
            chk.flag("FA504", (values < 0) | (values >= k), "not a level code")
            chk.values[chk.ok()] = values[chk.ok()]
        return chk
    if attr.type == "date" and kind in "iu":
        chk = _Check(n, np.int64, _valid(attr) + " (as days since 1970-01-01)")
        chk.values[:] = values
        chk.check_bounds(attr)
        return chk
    if attr.type == "bool" and kind != "b":
        chk = _Check(n, np.bool_, _valid(attr))
        chk.flag("FA502", _all(n), f"flags must be a bool array, not {values.dtype}")
        return chk
    chk = _ENCODERS[attr.type](values, attr, text=False)
    # Encoded data has no gaps: NaN or NaT is an invalid value here, not a missing one.
    chk.flag("FA502", chk.missing, "missing value (encoded columns have none)")
    chk.missing[:] = False
    return chk


def _codes(attr: Attribute) -> str:
    return ", ".join(f"{k}={level}" for k, level in enumerate(attr.levels or []))


def _readonly(a: Array) -> Array:
    view = a.view()
    view.flags.writeable = False
    return view


def _decode(attr: Attribute, values: Array) -> Array:
    if attr.type in ("category", "ordinal"):
        return np.array(attr.levels or [], dtype=object)[values]
    if attr.type == "date":
        return values.astype("datetime64[D]")
    if attr.type == "int":
        return values.astype(np.int64)
    return values.copy()


def _plain(v: Any) -> Any:
    if isinstance(v, np.datetime64):
        return v.astype(dt.date)
    return v.item() if isinstance(v, np.generic) else v


# -- the population ----------------------------------------------------------------------------


class Population:
    """Residents as typed columns, validated against a policy's attribute schema.

    Build one with :meth:`load` (any supported input) or a ``from_*`` constructor; each checks
    every value and raises one :class:`~fairalloc.errors.PopulationError` listing all problems.
    Rows are kept in input order.

    Encodings (what rules see), one numpy array per schema attribute except the id:

    * ``int`` and ``float``: float64 (an ``int`` is a whole number of at most 2**53 in size,
      so it is exact);
    * ``bool``: numpy bool;
    * ``category`` and ``ordinal``: int16 codes, the position of the value in ``levels``;
    * ``date``: int64 days since 1970-01-01.

    Missing values (None, NaN, pandas NA/NaT, empty text) are an error, or, for an attribute
    with ``missing: default``, replaced by its ``default``; :attr:`filled` says where.

    Attributes:
        ids: Resident ids as ``str`` in an object array (an ``int`` id as its decimal text).
        columns: The encoded columns by attribute name, in schema order (read-only).
        filled: For each column where a ``default`` was used, which rows got it.
        source: Where the data came from (for messages), e.g. a file path.
        ignored_columns: Input columns the schema does not name; left out, listed here.
        schema: The policy whose attributes the data was validated against.

    Examples:
        >>> from fairalloc.policy._model import Policy
        >>> policy = Policy.model_validate({
        ...     "policy": {"id": "demo", "version": "1", "title": "Demo"},
        ...     "attributes": {
        ...         "id": {"type": "str", "role": "id"},
        ...         "age": {"type": "int", "min": 0, "max": 130},
        ...     },
        ... })
        >>> pop = Population.from_records([{"id": "a", "age": 70}, {"id": "b", "age": 64}], policy)
        >>> pop
        <Population: 2 residents; columns age>
        >>> pop.columns["age"]
        array([70., 64.])
    """

    __slots__ = ("_columns", "_filled", "_ids", "_ignored", "_schema", "_source")

    def __init__(
        self,
        ids: Array,
        columns: Mapping[str, Array],
        schema: Policy,
        *,
        filled: Mapping[str, Mask] | None = None,
        source: str = "",
        ignored_columns: tuple[str, ...] = (),
    ) -> None:
        # Not validating: for arrays already encoded (use load() or a from_* constructor).
        n = len(ids)
        for name, col in columns.items():
            if col.shape != (n,):
                raise ValueError(f"column `{name}` has shape {col.shape}, not ({n},)")
        self._ids = _readonly(np.asarray(ids, dtype=object))
        self._columns = MappingProxyType({k: _readonly(v) for k, v in columns.items()})
        self._filled = MappingProxyType({k: _readonly(v) for k, v in (filled or {}).items()})
        self._schema = schema
        self._source = source
        self._ignored = tuple(ignored_columns)

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def load(cls, data: Any, schema: Policy, *, source: str = "") -> Population:
        """Build a population from any supported input.

        Args:
            data: A ``.csv`` path or open text file; a pandas or polars DataFrame; a pyarrow
                Table; a mapping of column names to values; an iterable of mappings (records)
                or of pydantic models; or a :class:`Population` (returned as it is).
            schema: The policy whose attributes the data must have.
            source: A label for messages (a CSV file's path by default).

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
            TypeError: for input of another kind.
        """
        if isinstance(data, Population):
            return data
        if isinstance(data, str | os.PathLike):
            if Path(data).suffix.lower() != ".csv":
                raise TypeError(f"cannot read residents from {str(data)!r}: give {_ACCEPTED}")
            return cls.from_csv(data, schema, source=source or None)
        frame = _frame_kind(data)
        if frame is not None:
            return getattr(cls, frame)(data, schema, source=source)  # type: ignore[no-any-return]
        if isinstance(data, Mapping):
            return cls.from_columns(data, schema, source=source)
        if hasattr(data, "read"):
            return cls.from_csv(data, schema, source=source or None)
        if isinstance(data, Iterable) and not isinstance(data, bytes):
            items = list(data)
            if all(isinstance(i, Mapping) for i in items):
                return cls.from_records(items, schema, source=source)
            if all(isinstance(i, BaseModel) for i in items):
                return cls.from_models(items, schema, source=source)
        raise TypeError(f"cannot read residents from {type(data).__name__}: give {_ACCEPTED}")

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Sequence[Any] | Array],
        schema: Policy,
        *,
        source: str = "",
    ) -> Population:
        """Build a population from columns: numpy arrays, lists, or pandas/arrow/polars series.

        Values are taken as typed: text in a number column is an error (only CSV text is
        parsed as numbers), and so is true/false.

        Args:
            columns: Column name to values, one value per resident, all of one length.
            schema: The policy whose attributes the data must have.
            source: A label for messages.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
            TypeError: if a column is not a one-dimensional sequence.
        """
        table = _named((str(k), _as_column(str(k), v)) for k, v in columns.items())
        return _build(table, schema, source)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], schema: Policy, *, source: str = ""
    ) -> Population:
        """Build a population from records, one mapping per resident.

        A key absent from a record is a missing value; no records at all is an empty
        population.

        Args:
            records: The residents, e.g. a list of dicts.
            schema: The policy whose attributes the data must have.
            source: A label for messages.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
            TypeError: if a record is not a mapping.
        """
        rows = list(records)
        for i, r in enumerate(rows):
            if not isinstance(r, Mapping):
                raise TypeError(f"record {i + 1} is a {type(r).__name__}, not a mapping")
        names = list(dict.fromkeys(k for r in rows for k in r)) if rows else list(schema.attributes)
        columns = {str(k): _object_array([r.get(k) for r in rows]) for k in names}
        return _build(_Table(columns), schema, source)

    @classmethod
    def from_models(
        cls, models: Iterable[BaseModel], schema: Policy, *, source: str = ""
    ) -> Population:
        """Build a population from pydantic models, whose fields are the columns.

        Args:
            models: One model per resident (dumped with ``model_dump``; enum members become
                their values).
            schema: The policy whose attributes the data must have.
            source: A label for messages.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
            TypeError: if an item is not a pydantic model.
        """
        records = []
        for i, m in enumerate(models):
            if not isinstance(m, BaseModel):
                raise TypeError(f"item {i + 1} is a {type(m).__name__}, not a pydantic model")
            records.append(
                {k: v.value if isinstance(v, enum.Enum) else v for k, v in m.model_dump().items()}
            )
        return cls.from_records(records, schema, source=source)

    @classmethod
    def from_pandas(cls, df: Any, schema: Policy, *, source: str = "") -> Population:
        """Build a population from a pandas DataFrame.

        A named index (for example the ids) is used as a column. NaN, ``pandas.NA`` and
        ``NaT`` are missing values; categorical columns are read as their labels.

        Args:
            df: The DataFrame.
            schema: The policy whose attributes the data must have.
            source: A label for messages.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
        """
        if any(name is not None for name in df.index.names) and not any(
            name in df.columns for name in df.index.names
        ):
            df = df.reset_index()
        pairs = ((str(name), _pandas_column(df.iloc[:, j])) for j, name in enumerate(df.columns))
        return _build(_named(pairs), schema, source)

    @classmethod
    def from_arrow(cls, table: Any, schema: Policy, *, source: str = "") -> Population:
        """Build a population from a pyarrow Table (or RecordBatch); nulls are missing values.

        Args:
            table: The Arrow data; dictionary-encoded columns are read as their values.
            schema: The policy whose attributes the data must have.
            source: A label for messages.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
        """
        pairs = (
            (str(name), _arrow_column(table.column(j))) for j, name in enumerate(table.column_names)
        )
        return _build(_named(pairs), schema, source)

    @classmethod
    def from_polars(cls, df: Any, schema: Policy, *, source: str = "") -> Population:
        """Build a population from a polars DataFrame; nulls are missing values.

        Args:
            df: The DataFrame (converted through Python values, column by column).
            schema: The policy whose attributes the data must have.
            source: A label for messages.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
        """
        return cls.from_columns(df.to_dict(as_series=False), schema, source=source)

    @classmethod
    def from_csv(
        cls,
        path_or_file: str | os.PathLike[str] | IO[str],
        schema: Policy,
        *,
        source: str | None = None,
        encoding: str = "utf-8",
    ) -> Population:
        """Build a population from a CSV file with a header row.

        Cells are text: numbers, flags (``true``/``false``, ``yes``/``no``, ``1``/``0``, any
        case) and ISO dates are parsed; an empty cell is a missing value. Problems name
        residents by id, or by ``line N`` (the header is line 1) where the id itself is
        missing or repeated.

        Args:
            path_or_file: A path, or a file opened in text mode (with ``newline=""``).
            schema: The policy whose attributes the data must have.
            source: A label for messages; by default the path (or the file's name).
            encoding: The file's encoding, when a path is given.

        Returns:
            The validated population.

        Raises:
            PopulationError: listing every problem in the data.
        """
        if isinstance(path_or_file, str | os.PathLike):
            label = os.fspath(path_or_file) if source is None else source
            with open(path_or_file, newline="", encoding=encoding) as fh:
                table = _read_csv(fh, label)
        else:
            label = str(getattr(path_or_file, "name", "<csv>")) if source is None else source
            table = _read_csv(path_or_file, label)
        return _build(table, schema, label)

    # -- views ---------------------------------------------------------------------------------

    @property
    def ids(self) -> Array:
        """Resident ids as ``str``, one per row (read-only)."""
        return self._ids

    @property
    def columns(self) -> Mapping[str, Array]:
        """The encoded columns by attribute name (read-only)."""
        return self._columns

    @property
    def filled(self) -> Mapping[str, Mask]:
        """For each column where the attribute's ``default`` was used, which rows got it."""
        return self._filled

    @property
    def source(self) -> str:
        """Where the data came from, for messages ('' if not given)."""
        return self._source

    @property
    def ignored_columns(self) -> tuple[str, ...]:
        """Input columns that are not attributes of the schema (left out)."""
        return self._ignored

    @property
    def schema(self) -> Policy:
        """The policy whose attributes the data was validated against."""
        return self._schema

    @property
    def schema_attributes(self) -> tuple[str, ...]:
        """The attributes held: the id first, then the columns in schema order."""
        return (self._schema.id_attribute, *self._columns)

    @property
    def n(self) -> int:
        """The number of residents."""
        return len(self._ids)

    def __len__(self) -> int:
        return self.n

    def take(self, indices: npt.ArrayLike) -> Population:
        """The residents at ``indices`` (positions), in that order.

        Args:
            indices: Integer positions (negative ones count from the end), or a boolean mask
                of length :attr:`n`.

        Returns:
            A new population; ``filled`` and ``ignored_columns`` carry over.

        Raises:
            ValueError: if a resident would appear twice.
            IndexError: if a position is out of range.
        """
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (self.n,):
                raise ValueError(f"a mask needs {self.n} entries, got shape {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.intp)
        elif idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise TypeError(f"indices must be one-dimensional integers, got {idx.dtype}")
        idx = np.where(idx < 0, idx + self.n, idx).astype(np.intp)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"positions must be in [{-self.n}, {self.n}), got {indices!r}")
        if len(np.unique(idx)) != len(idx):
            raise ValueError("a resident would appear twice: positions must be distinct")
        filled = {k: v[idx] for k, v in self._filled.items()}
        return Population(
            self._ids[idx],
            {k: v[idx] for k, v in self._columns.items()},
            self._schema,
            filled={k: v for k, v in filled.items() if v.any()},
            source=self._source,
            ignored_columns=self._ignored,
        )

    def replace(self, column: str, values: npt.ArrayLike) -> Population:
        """A copy with one column replaced by values already encoded, for what-if studies.

        The values are checked as the column's encoding (float64 numbers, bool flags, int
        level codes, int days since 1970-01-01 or datetime64 dates) against the attribute's
        bounds. The column's :attr:`filled` record is dropped: its values are all given.

        Args:
            column: An attribute of the schema other than the id.
            values: One encoded value per resident.

        Returns:
            A new population sharing the other columns.

        Raises:
            PopulationError: if a value is invalid, or the length is wrong.
            KeyError: if ``column`` is not a column of this population.
        """
        if column not in self._columns:
            guess = _suggest(column, list(self._columns))
            hint = f"; did you mean `{guess}`?" if guess else ""
            raise KeyError(f"no column `{column}` to replace{hint}")
        attr = self._schema.attributes[column]
        arr = np.asarray(values)
        if arr.shape != (self.n,):
            issue = PopulationIssue(
                "FA502",
                column,
                f"{arr.size} values of shape {arr.shape}, for {self.n} residents",
                valid=f"{self.n} values, one per resident",
            )
            raise PopulationError([issue], source=self._source)
        chk = _check_encoded(arr, attr)
        label = _Labels(self._ids, np.ones(self.n, dtype=bool), _RowNames())
        issues = chk.issues(column, arr, label)
        if issues:
            raise PopulationError(issues, source=self._source)
        return Population(
            self._ids,
            {**self._columns, column: chk.finish()},
            self._schema,
            filled={k: v for k, v in self._filled.items() if k != column},
            source=self._source,
            ignored_columns=self._ignored,
        )

    def decode(self, column: str) -> Array:
        """A column as people write it.

        Args:
            column: The id or an attribute name.

        Returns:
            A new array: level names (object) for categories and ordinals, datetime64[D] for
            dates, int64 for whole numbers, and float64 or bool otherwise; the ids as text.

        Raises:
            KeyError: if there is no such column.
        """
        if column == self._schema.id_attribute:
            return self._ids.copy()
        if column not in self._columns:
            raise KeyError(f"no column `{column}`; columns: {', '.join(self.schema_attributes)}")
        return _decode(self._schema.attributes[column], self._columns[column])

    def to_records(self) -> list[dict[str, Any]]:
        """The residents as dicts of plain Python values, the id first.

        Returns:
            One dict per resident: ``str`` ids and levels, ``int``, ``float``, ``bool`` and
            ``datetime.date`` values.
        """
        names = self.schema_attributes
        decoded = [self.decode(c).tolist() for c in names]
        dates = [self._is_date(c) for c in names]
        return [
            {
                name: (_plain(col[i]) if is_date else col[i])
                for name, col, is_date in zip(names, decoded, dates, strict=True)
            }
            for i in range(self.n)
        ]

    def _is_date(self, column: str) -> bool:
        return self._schema.attributes[column].type == "date"

    def to_pandas(self) -> Any:
        """The residents as a pandas DataFrame (requires pandas), the id column first.

        Returns:
            A DataFrame with levels as ``Categorical`` (ordered for ordinals), dates as
            datetime64, whole numbers as int64.
        """
        import pandas as pd

        data: dict[str, Any] = {self._schema.id_attribute: self._ids.astype(str)}
        for name, col in self._columns.items():
            attr = self._schema.attributes[name]
            if attr.type in ("category", "ordinal"):
                data[name] = pd.Categorical.from_codes(
                    col.astype(np.int64),
                    categories=list(attr.levels or []),
                    ordered=attr.type == "ordinal",
                )
            else:
                data[name] = _decode(attr, col)
        return pd.DataFrame(data)

    def __repr__(self) -> str:
        names = list(self._columns)
        shown = ", ".join(names[:8]) + (f", … ({len(names)} columns)" if len(names) > 8 else "")
        where = f" from {self._source}" if self._source else ""
        noun = "resident" if self.n == 1 else "residents"
        return f"<Population: {self.n} {noun}{where}; columns {shown or 'none'}>"

    def _repr_html_(self) -> str:
        k = min(self.n, _HTML_ROWS)
        head = self.take(np.arange(k)).to_records()
        names = self.schema_attributes
        th = "".join(f"<th>{html.escape(c)}</th>" for c in names)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in names) + "</tr>"
            for r in head
        )
        where = f" from {html.escape(self._source)}" if self._source else ""
        more = f" (first {k} shown)" if self.n > k else ""
        return (
            f"<table><caption>Population: {self.n} residents{where}{more}</caption>"
            f"<thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"
        )


def _frame_kind(data: Any) -> str | None:
    """The constructor for a DataFrame or Arrow table, told apart without importing them."""
    module = type(data).__module__.partition(".")[0]
    name = type(data).__name__
    if module == "pandas" and name == "DataFrame":
        return "from_pandas"
    if module == "pyarrow" and name in ("Table", "RecordBatch"):
        return "from_arrow"
    if module == "polars" and name == "DataFrame":
        return "from_polars"
    return None
