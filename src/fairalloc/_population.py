"""Residents as typed numpy columns, validated against a policy's attribute schema.

Every value is checked column by column (vectorized where the input allows it); all problems are
collected and raised together as one :class:`~fairalloc.errors.PopulationError` naming the
residents, the column, the values and what would be valid. Nothing is dropped or coerced
silently: missing values are an error unless the attribute says ``missing: default``, and the
rows so filled are recorded in :attr:`Population.filled`.

Encodings (what rules see): numbers as float64 (integers exact up to 2**53), flags as bool,
levels of a category or ordinal as int16 codes (positions in ``levels``), dates as int64 days
since 1970-01-01. Ids are kept as text.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fairalloc._html import table as html_table
from fairalloc._optional import require
from fairalloc.errors import (
    MAX_LISTED,
    ArgumentError,
    ArgumentTypeError,
    PopulationError,
    PopulationIssue,
)
from fairalloc.policy._model import Attribute, Policy

__all__ = ["Population"]

_EPOCH = dt.date(1970, 1, 1)
_MAX_EXACT = 2.0**53
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, str) and v.strip() == "":
        return True
    # pandas.NA, pandas.NaT and numpy.datetime64('NaT') without importing pandas.
    t = type(v).__name__
    if t in ("NAType", "NaTType"):
        return True
    return isinstance(v, np.datetime64) and bool(np.isnat(v))


@dataclass
class _Problems:
    """Collects offending rows per (code, column, message)."""

    labels: Sequence[str] | np.ndarray
    issues: list[PopulationIssue] = field(default_factory=list)

    def add(
        self,
        code: str,
        column: str,
        message: str,
        rows: npt.NDArray[np.intp] | list[int],
        values: Sequence[Any] | np.ndarray,
        valid: str = "",
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        shown = rows[:MAX_LISTED]
        self.issues.append(
            PopulationIssue(
                code,
                column,
                message,
                ids=tuple(str(self.labels[r]) for r in shown),
                values=tuple(_show(values[r]) for r in shown),
                valid=valid,
                count=len(rows),
            )
        )


def _show(v: Any) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


class _RowLabels(Sequence[str]):
    """``row 1``, ``row 2``, ... (or ``line N`` for CSV), made only when a problem needs one."""

    def __init__(self, pattern: str, base: int, n: int, ids: np.ndarray | None = None) -> None:
        self.pattern, self.base, self.n, self.ids = pattern, base, n, ids

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        if self.ids is not None and self.ids[i] is not None and not self.duplicated(i):
            return str(self.ids[i])
        return self.pattern.format(i + self.base)

    def duplicated(self, i: int) -> bool:
        """Whether row ``i``'s id is shared with another row (then it names nobody)."""
        assert self.ids is not None
        if not hasattr(self, "_dups"):
            self._dups = set(_duplicates(self.ids))
        return i in self._dups


class Population:
    """Residents as typed columns, validated against a policy's attribute schema.

    Build one with :meth:`load` (any supported input) or the ``from_*`` constructors.

    Attributes:
        ids: Resident ids as ``str`` (an object array), one per row.
        columns: Encoded columns by attribute name (see the module documentation).
        filled: For attributes with ``missing: default``, which rows were filled with it.
        source: Where the data came from (for messages).
        ignored_columns: Input columns the schema does not name (left out, listed here).
        schema: The policy whose attribute schema the data was validated against.
    """

    def __init__(
        self,
        ids: npt.NDArray[np.object_],
        columns: Mapping[str, np.ndarray],
        schema: Policy,
        *,
        filled: Mapping[str, npt.NDArray[np.bool_]] | None = None,
        source: str = "",
        ignored_columns: tuple[str, ...] = (),
    ) -> None:
        self.ids = ids
        self.columns = dict(columns)
        self.schema = schema
        self.filled = dict(filled or {})
        self.source = source
        self.ignored_columns = ignored_columns

    # -- construction ------------------------------------------------------------------
    @classmethod
    def load(cls, data: Any, schema: Policy, *, source: str = "") -> Population:
        """Build a population from any supported input.

        Accepted: a ``.csv`` path; a pandas or polars DataFrame; a pyarrow Table; a mapping
        of column name to sequence or array; an iterable of mappings (records) or of pydantic
        models; or a :class:`Population` (returned as is).

        Raises:
            PopulationError: listing every problem in the data.
            TypeError: for an input of another kind.
        """
        if isinstance(data, Population):
            return data
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            if path.suffix.lower() != ".csv":
                raise ArgumentTypeError(
                    "FA640",
                    f"cannot read residents from `{path.name}`: give a .csv file",
                    argument="data",
                    value=str(data),
                )
            return cls.from_csv(path, schema, source=source or str(path))
        module = type(data).__module__.split(".")[0]
        if module == "pandas":
            return cls.from_pandas(data, schema, source=source)
        if module == "polars":
            return cls.from_polars(data, schema, source=source)
        if module == "pyarrow":
            return cls.from_arrow(data, schema, source=source)
        if isinstance(data, Mapping):
            return cls.from_columns(data, schema, source=source)
        if isinstance(data, Iterable):
            items = list(data)
            if items and all(isinstance(i, BaseModel) for i in items):
                return cls.from_models(items, schema, source=source)
            if all(isinstance(i, Mapping) for i in items):
                return cls.from_records(items, schema, source=source)
        raise ArgumentTypeError(
            "FA640",
            f"cannot read residents from {type(data).__name__}: give a CSV path, a DataFrame,"
            " an Arrow table, a mapping of columns, records (dicts) or pydantic models",
            argument="data",
        )

    @classmethod
    def of(cls, residents: Any, schema: Policy) -> Population:
        """``residents`` as a population: a :class:`Population` as it is, anything else loaded.

        Args:
            residents: A population, or anything :meth:`load` accepts; a path names the source
                in messages.
            schema: The policy whose attribute schema the data must fit.
        """
        if isinstance(residents, Population):
            return residents
        source = str(residents) if isinstance(residents, str | os.PathLike) else ""
        return cls.load(residents, schema, source=source)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], schema: Policy, *, source: str = ""
    ) -> Population:
        """From records (one mapping per resident)."""
        rows = list(records)
        names = list(dict.fromkeys(k for r in rows for k in r))
        wanted = set(schema.attributes)
        if not rows:  # no residents: every column is present, and empty
            names = list(schema.attributes)
        cols: dict[str, list[Any]] = {n: [r.get(n) for r in rows] for n in names if n in wanted}
        ignored = tuple(n for n in names if n not in wanted)
        pop = cls.from_columns(cols, schema, source=source, _n=len(rows))
        pop.ignored_columns = ignored
        return pop

    @classmethod
    def from_models(
        cls, models: Iterable[BaseModel], schema: Policy, *, source: str = ""
    ) -> Population:
        """From pydantic models (their fields are the columns)."""
        return cls.from_records([m.model_dump() for m in models], schema, source=source)

    @classmethod
    def from_pandas(cls, df: Any, schema: Policy, *, source: str = "") -> Population:
        """From a pandas DataFrame (a named index is used as a column too)."""
        if df.index.name is not None and df.index.name not in df.columns:
            df = df.reset_index()
        cols: dict[str, Any] = {}
        for name in df.columns:
            s = df[name]
            if hasattr(s, "cat"):
                s = s.astype(object)
            cols[str(name)] = s.to_numpy(dtype=object) if s.hasnans else s.to_numpy()
        return cls.from_columns(cols, schema, source=source)

    @classmethod
    def from_arrow(cls, table: Any, schema: Policy, *, source: str = "") -> Population:
        """From a pyarrow Table (nulls are missing values)."""
        cols = {name: table.column(name).to_pylist() for name in table.column_names}
        return cls.from_columns(cols, schema, source=source)

    @classmethod
    def from_polars(cls, df: Any, schema: Policy, *, source: str = "") -> Population:
        """From a polars DataFrame (nulls are missing values)."""
        return cls.from_columns(df.to_dict(as_series=False), schema, source=source)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        schema: Policy,
        *,
        source: str | None = None,
        encoding: str = "utf-8-sig",
    ) -> Population:
        """From a CSV file with a header row; an empty cell is a missing value.

        Problems name residents by id, or by ``line N`` (the header is line 1) where the id
        itself is missing or repeated.
        """
        with open(path, newline="", encoding=encoding, errors="strict") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise PopulationError(
                    [PopulationIssue("FA501", "", "the file is empty: a header row is needed")],
                    source=source or str(path),
                )
            rows = list(reader)
        width = len(header)
        short = [i for i, r in enumerate(rows) if len(r) != width]
        if short:
            raise PopulationError(
                [
                    PopulationIssue(
                        "FA502",
                        "",
                        f"rows with other than {width} cells",
                        ids=tuple(f"line {i + 2}" for i in short[:MAX_LISTED]),
                        values=tuple(str(len(rows[i])) for i in short[:MAX_LISTED]),
                        valid=f"{width} cells, as in the header",
                        count=len(short),
                    )
                ],
                source=source or str(path),
            )
        cols: dict[str, Any] = {}
        for j, name in enumerate(header):
            cols[name.strip()] = np.array([r[j] for r in rows], dtype=object)
        return cls.from_columns(
            cols, schema, source=source or str(path), _text=True, _row_label="line {}", _row_base=2
        )

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Sequence[Any] | np.ndarray],
        schema: Policy,
        *,
        source: str = "",
        _n: int | None = None,
        _text: bool = False,
        _row_label: str = "row {}",
        _row_base: int = 1,
    ) -> Population:
        """From a mapping of column name to values (lists or numpy arrays)."""
        return _Validator(schema, columns, source, _n, _text, _row_label, _row_base).run()

    # -- views -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of residents."""
        return len(self.ids)

    def __len__(self) -> int:
        return self.n

    @property
    def schema_attributes(self) -> tuple[str, ...]:
        """The attributes held, id first."""
        return (self.schema.id_attribute, *self.columns)

    def take(self, indices: npt.ArrayLike) -> Population:
        """The residents at ``indices`` (positions), in that order.

        Raises:
            ValueError: if a position repeats (a resident cannot appear twice).
        """
        idx = np.asarray(indices, dtype=np.intp)
        if len(np.unique(idx)) != len(idx):
            raise ArgumentError(
                "FA613",
                "take() positions must be distinct: a resident cannot appear twice",
                argument="indices",
            )
        return Population(
            self.ids[idx],
            {k: v[idx] for k, v in self.columns.items()},
            self.schema,
            filled={k: v[idx] for k, v in self.filled.items()},
            source=self.source,
            ignored_columns=self.ignored_columns,
        )

    def replace(self, column: str, values: npt.ArrayLike) -> Population:
        """A copy with one column replaced by already-encoded ``values`` (for what-if studies).

        Raises:
            PopulationError: if a value is invalid for the attribute.
            KeyError: if the schema has no such column.
        """
        if column not in self.columns:
            raise KeyError(f"no column `{column}`; columns: {', '.join(self.columns)}")
        attr = self.schema.attributes[column]
        arr = np.asarray(values)
        if arr.shape != (self.n,):
            raise ArgumentError(
                "FA613",
                f"`{column}` needs {self.n} values, got shape {arr.shape}",
                argument="values",
            )
        probs = _Problems(self.ids)  # ids are text already; labels are made only on a problem
        encoded = _check_encoded(column, attr, arr, probs)
        if probs.issues:
            raise PopulationError(probs.issues, source=self.source)
        cols = dict(self.columns)
        cols[column] = encoded
        return Population(
            self.ids,
            cols,
            self.schema,
            filled=self.filled,
            source=self.source,
            ignored_columns=self.ignored_columns,
        )

    def decode(self, column: str) -> np.ndarray:
        """Column ``column`` as people write it: level names, datetime64[D] dates."""
        if column == self.schema.id_attribute:
            return self.ids
        attr = self.schema.attributes[column]
        col = self.columns[column]
        if attr.type in ("category", "ordinal"):
            levels: np.ndarray = np.array(attr.levels, dtype=object)
            return levels[col]  # type: ignore[no-any-return]
        if attr.type == "date":
            return col.astype("datetime64[D]")
        if attr.type == "int":
            return col.astype(np.int64)
        return col

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per resident with plain Python values (``date`` for dates)."""
        decoded = {c: self.decode(c) for c in self.columns}
        out = []
        for i in range(self.n):
            rec: dict[str, Any] = {self.schema.id_attribute: str(self.ids[i])}
            for c, col in decoded.items():
                v = col[i]
                rec[c] = (
                    v.astype(dt.date)
                    if isinstance(v, np.datetime64)
                    else (v.item() if isinstance(v, np.generic) else v)
                )
            out.append(rec)
        return out

    def to_pandas(self) -> Any:
        """A pandas DataFrame, the id first (requires pandas)."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        data: dict[str, Any] = {self.schema.id_attribute: self.ids.astype(str)}
        for c in self.columns:
            attr = self.schema.attributes[c]
            if attr.type in ("category", "ordinal"):
                data[c] = pd.Categorical.from_codes(
                    self.columns[c].astype(np.int64),
                    categories=pd.Index(list(attr.levels or [])),
                    ordered=attr.type == "ordinal",
                )
            else:
                data[c] = self.decode(c)
        return pd.DataFrame(data)

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<Population of {self.n} residents{where}: {', '.join(self.columns)}>"

    def _repr_html_(self) -> str:
        heads = list(self.schema_attributes)
        decoded = {c: self.decode(c) for c in heads}
        rows = ([decoded[c][i] for c in heads] for i in range(min(10, self.n)))
        more = f"<p>… {self.n - 10} more residents</p>" if self.n > 10 else ""
        return html_table(heads, rows) + more


# -- validation -------------------------------------------------------------------------------


class _Validator:
    def __init__(
        self,
        schema: Policy,
        columns: Mapping[str, Any],
        source: str,
        n: int | None,
        text: bool,  # noqa: FBT001 - internal, always passed by position from one place
        row_label: str,
        row_base: int,
    ) -> None:
        self.schema = schema
        self.raw = {str(k): v for k, v in columns.items()}
        self.source = source
        self.text = text
        lengths = {k: len(v) for k, v in self.raw.items()}
        if n is None:
            n = max(lengths.values(), default=0)
        bad_len = {k: v for k, v in lengths.items() if v != n}
        if bad_len:
            raise PopulationError(
                [
                    PopulationIssue(
                        "FA502", k, f"has {v} values, other columns {n}", valid=f"{n} values"
                    )
                    for k, v in bad_len.items()
                ],
                source=source,
            )
        self.n = n
        self.row_labels = _RowLabels(row_label, row_base, n)

    def run(self) -> Population:
        schema = self.schema
        idname = schema.id_attribute
        pre = _Problems(self.row_labels)
        missing_cols = [
            a
            for a, attr in schema.attributes.items()
            # An absent column is an error even with `missing: default`: the default is for
            # missing values, and a misspelt header must not turn into all-default silently.
            if a not in self.raw
        ]
        for a in missing_cols:
            close = difflib.get_close_matches(a, list(self.raw), n=1)
            found = ", ".join(sorted(self.raw)) or "none"
            pre.issues.append(
                PopulationIssue(
                    "FA501",
                    a,
                    "missing column" + (f"; did you mean `{close[0]}`?" if close else ""),
                    valid=f"columns found: {found}",
                )
            )
        ids, named = self._ids(pre)
        # Name each row by its id where it has a usable one, else by its row (or CSV line).
        labels: Sequence[str] | np.ndarray = (
            ids
            if ids is not None
            else _RowLabels(self.row_labels.pattern, self.row_labels.base, self.n, named)
        )
        probs = _Problems(labels, pre.issues)
        columns: dict[str, np.ndarray] = {}
        filled: dict[str, np.ndarray] = {}
        for name, attr in schema.attributes.items():
            if name == idname or name in missing_cols:
                continue
            raw = self.raw.get(name)
            values = np.full(self.n, None, dtype=object) if raw is None else raw
            enc, fill = _encode(name, attr, values, probs, text=self.text)
            columns[name] = enc
            if fill is not None and fill.any():
                filled[name] = fill
        if probs.issues:
            raise PopulationError(probs.issues, source=self.source)
        assert ids is not None
        ignored = tuple(k for k in self.raw if k not in schema.attributes)
        return Population(
            ids, columns, schema, filled=filled, source=self.source, ignored_columns=ignored
        )

    def _ids(
        self, probs: _Problems
    ) -> tuple[npt.NDArray[np.object_] | None, npt.NDArray[np.object_] | None]:
        """The ids if all are usable (else None), and the ids as far as they could be read."""
        idname = self.schema.id_attribute
        raw = self.raw.get(idname)
        if raw is None:
            return None, None
        attr = self.schema.attributes[idname]
        arr = _object_array(raw)
        kinds = _kinds(arr)
        if kinds <= {str} and not (arr == "").any():
            out = arr.astype(object)  # the common case, checked at C speed
            bad_rows: list[int] = []
            empty: list[int] = []
        else:
            out, empty, bad_rows = self._ids_slow(arr, attr)
        vals = arr
        probs.add(
            "FA507", idname, "missing resident id", empty, vals, "a non-empty id for every resident"
        )
        probs.add("FA502", idname, "not a valid id", bad_rows, vals, "text or a whole number")
        distinct = set(out.tolist())
        distinct.discard(None)
        if len(distinct) != self.n - len(empty) - len(bad_rows):
            dups = _duplicates(out)
            probs.add(
                "FA506",
                idname,
                "the same id for several residents",
                dups,
                arr,
                "one row per resident",
            )
            return None, out
        if empty or bad_rows:
            return None, out
        return out, out

    def _ids_slow(
        self, arr: np.ndarray, attr: Attribute
    ) -> tuple[npt.NDArray[np.object_], list[int], list[int]]:
        out = np.empty(self.n, dtype=object)
        empty: list[int] = []
        bad: list[int] = []
        for i, v in enumerate(arr):
            if _is_missing(v):
                empty.append(i)
            elif (
                isinstance(v, bool | np.bool_)
                or not isinstance(v, str | int | np.integer | float | np.floating)
                or (isinstance(v, float | np.floating) and not float(v).is_integer())
            ):
                bad.append(i)
            elif isinstance(v, str):
                out[i] = v.strip()
            else:
                out[i] = str(int(v)) if attr.type == "int" or isinstance(v, float) else str(v)
        return out, empty, bad


def _object_array(values: Any) -> np.ndarray:
    """``values`` as a 1-d array; nested lists stay values (np.array would add a dimension)."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    items = list(values)
    return np.fromiter(items, dtype=object, count=len(items))


def _duplicates(ids: npt.NDArray[np.object_]) -> list[int]:
    """Rows whose id (not None) appears more than once, in row order."""
    first: dict[str, int] = {}
    dups: set[int] = set()
    for i, v in enumerate(ids):
        if v is None:
            continue
        if v in first:
            dups.update((first[v], i))
        else:
            first[v] = i
    return sorted(dups)


def _kinds(arr: np.ndarray) -> set[type]:
    """The Python types of an object array's values (one C-speed pass)."""
    return set(map(type, arr)) if arr.dtype == object else {type(arr.dtype.type(0).item())}


_PLAIN = frozenset({str, float, int, bool, type(None), dt.date, dt.datetime})


def _valid_text(attr: Attribute) -> str:
    if attr.type in ("category", "ordinal"):
        return "one of: " + ", ".join(attr.levels or [])
    if attr.type == "bool":
        return "true or false"
    if attr.type == "date":
        lo = f" from {attr.min}" if attr.min is not None else ""
        hi = f" to {attr.max}" if attr.max is not None else ""
        return f"a date YYYY-MM-DD{lo}{hi}"
    if attr.values is not None:
        return "one of: " + ", ".join(_num(v) for v in sorted(set(attr.values)))
    kind = "a whole number" if attr.type == "int" else "a number"
    lo = f" from {_num(attr.min)}" if attr.min is not None else ""
    hi = f" to {_num(attr.max)}" if attr.max is not None else ""
    return kind + lo + hi


def _num(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _encode(
    name: str, attr: Attribute, values: Any, probs: _Problems, *, text: bool
) -> tuple[np.ndarray, npt.NDArray[np.bool_] | None]:
    """Encode one column; problems go to ``probs``; missing values are filled or reported."""
    arr = _object_array(values)
    n = len(arr)
    out: np.ndarray
    missing = _missing_mask(arr)
    fill = None
    if missing.any():
        if attr.missing == "default":
            fill = missing
        else:
            probs.add(
                "FA505",
                name,
                "missing value",
                np.flatnonzero(missing),
                arr,
                _valid_text(attr) + " (or declare `missing: default`)",
            )
    present = ~missing
    if attr.type in ("int", "float"):
        out, bad, nonint = _numbers(arr, present, attr, text=text)
        probs.add("FA502", name, "not a number", np.flatnonzero(bad), arr, _valid_text(attr))
        probs.add(
            "FA508",
            name,
            "not a whole number",
            np.flatnonzero(nonint),
            arr,
            _valid_text(attr),
        )
        ok = present & ~bad & ~nonint
        _range(
            name,
            attr,
            out,
            ok,
            arr,
            probs,
            attr.min if isinstance(attr.min, int | float) else None,
            attr.max if isinstance(attr.max, int | float) else None,
        )
    elif attr.type == "bool":
        out, bad = _bools(arr, present, text=text)
        probs.add("FA502", name, "not true or false", np.flatnonzero(bad), arr, _valid_text(attr))
    elif attr.type in ("category", "ordinal"):
        out = _levels(name, attr, arr, present, probs)
    else:  # date
        out, bad = _dates(arr, present)
        probs.add("FA502", name, "not a date", np.flatnonzero(bad), arr, _valid_text(attr))
        lo = (attr.min - _EPOCH).days if isinstance(attr.min, dt.date) else None
        hi = (attr.max - _EPOCH).days if isinstance(attr.max, dt.date) else None
        _range(name, attr, out, present & ~bad, arr, probs, lo, hi)
    if fill is not None:
        out = _fill_default(name, attr, out, fill, n, probs)
    return out, fill


def _missing_mask(arr: np.ndarray) -> npt.NDArray[np.bool_]:
    if arr.dtype.kind == "f":
        return np.asarray(np.isnan(arr), dtype=bool)
    if arr.dtype.kind == "M":
        return np.asarray(np.isnat(arr), dtype=bool)
    if arr.dtype.kind in "biu":
        return np.zeros(len(arr), dtype=bool)
    if arr.dtype.kind == "U":
        return np.asarray(np.char.strip(arr) == "", dtype=bool)
    if _kinds(arr) <= _PLAIN:
        # Elementwise at C speed: None, NaN (the one value unequal to itself), empty text.
        with np.errstate(invalid="ignore"):
            mask = (arr == None) | (arr != arr) | (arr == "")  # noqa: E711 - elementwise
        return np.asarray(mask, dtype=bool)
    return np.fromiter((_is_missing(v) for v in arr), dtype=bool, count=len(arr))


def _numbers(
    arr: np.ndarray, present: npt.NDArray[np.bool_], attr: Attribute, *, text: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    n = len(arr)
    bad = np.zeros(n, dtype=bool)
    if arr.dtype.kind in "iuf":
        out = arr.astype(np.float64)
    elif (fast := _float_column(arr, present, text=text)) is not None:
        out = fast
    else:
        out = np.zeros(n, dtype=np.float64)
        for i in np.flatnonzero(present):
            v = arr[i]
            if isinstance(v, bool | np.bool_) or (isinstance(v, str) and not text):
                bad[i] = True
                continue
            try:
                out[i] = float(v.strip()) if isinstance(v, str) else float(v)
            except (TypeError, ValueError, OverflowError):
                bad[i] = True
    finite = np.isfinite(out)
    bad |= present & ~finite
    out[~present | bad] = 0.0
    nonint = np.zeros(n, dtype=bool)
    if attr.type == "int":
        nonint = present & ~bad & ((out != np.floor(out)) | (np.abs(out) > _MAX_EXACT))
        out[nonint] = 0.0
    return out, bad, nonint


def _float_column(
    arr: np.ndarray, present: npt.NDArray[np.bool_], *, text: bool
) -> npt.NDArray[np.float64] | None:
    """The whole column converted at C speed, or None if some value needs a closer look."""
    if not present.all():
        return None
    if not text and any(isinstance(v, str | bool | np.bool_) for v in arr):
        return None
    if text and arr.dtype == object and not all(isinstance(v, str) for v in arr):
        return None
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None


def _range(
    name: str,
    attr: Attribute,
    out: np.ndarray,
    ok: npt.NDArray[np.bool_],
    raw: np.ndarray,
    probs: _Problems,
    lo: float | None,
    hi: float | None,
) -> None:
    below = ok & (out < lo) if lo is not None else np.zeros(len(out), dtype=bool)
    above = ok & (out > hi) if hi is not None else np.zeros(len(out), dtype=bool)
    probs.add("FA503", name, "out of range", np.flatnonzero(below | above), raw, _valid_text(attr))
    if attr.values is not None and attr.type in ("int", "float"):
        allowed = np.asarray(sorted(set(attr.values)), dtype=np.float64)
        stray = ok & ~(below | above) & ~np.isin(out, allowed)
        probs.add(
            "FA440", name, "not an allowed value", np.flatnonzero(stray), raw, _valid_text(attr)
        )


def _bools(
    arr: np.ndarray, present: npt.NDArray[np.bool_], *, text: bool
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    n = len(arr)
    if arr.dtype.kind == "b":
        return arr.astype(bool), np.zeros(n, dtype=bool)
    if text and present.all():
        words = np.char.lower(np.char.strip(arr.astype(str)))
        yes, no = np.isin(words, list(_TRUE)), np.isin(words, list(_FALSE))
        return yes, ~(yes | no)
    out = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(present):
        v = arr[i]
        if isinstance(v, bool | np.bool_):
            out[i] = bool(v)
        elif isinstance(v, str) and text and v.strip().lower() in _TRUE | _FALSE:
            out[i] = v.strip().lower() in _TRUE
        elif isinstance(v, int | np.integer) and not text and v in (0, 1):
            out[i] = bool(v)
        else:
            bad[i] = True
    return out, bad


def _levels(
    name: str, attr: Attribute, arr: np.ndarray, present: npt.NDArray[np.bool_], probs: _Problems
) -> npt.NDArray[np.int16]:
    levels = list(attr.levels or [])
    codes = np.zeros(len(arr), dtype=np.int16)
    # One vectorized comparison per level over the column as fixed-width text.
    if arr.dtype.kind == "U" or (arr.dtype == object and _kinds(arr) <= {str}):
        text = arr.astype(str)
    else:
        is_text = np.fromiter((isinstance(v, str) for v in arr), dtype=bool, count=len(arr))
        text = np.where(is_text, arr, "").astype(str)
    matched = np.zeros(len(arr), dtype=bool)
    for k, level in enumerate(levels):
        hit = text == level
        codes[hit] = k
        matched |= hit
    loose = np.flatnonzero(present & ~matched)
    if len(loose):  # second chance for values padded with spaces, e.g. in hand-made CSV
        stripped = np.char.strip(text[loose])
        for k, level in enumerate(levels):
            hit = loose[stripped == level]
            codes[hit] = k
            matched[hit] = True
    bad = np.flatnonzero(present & ~matched).tolist()
    if bad:
        firsts = [str(arr[i]) for i in bad[:MAX_LISTED]]
        close = difflib.get_close_matches(firsts[0], levels, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        probs.add("FA504", name, f"unknown level{hint}", bad, arr, _valid_text(attr))
    return codes


def _dates(
    arr: np.ndarray, present: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    n = len(arr)
    if arr.dtype.kind == "M":
        days = arr.astype("datetime64[D]")
        out = np.where(present, (days - np.datetime64("1970-01-01", "D")).astype(np.int64), 0)
        not_midnight = present & (days.astype(arr.dtype) != arr)
        return out.astype(np.int64), not_midnight
    if present.all() and all(isinstance(v, str) and len(v.strip()) == 10 for v in arr):
        try:
            days = np.char.strip(arr.astype(str)).astype("datetime64[D]")
        except ValueError:
            pass  # some value is not a date: find which below
        else:
            return (days - np.datetime64("1970-01-01", "D")).astype(np.int64), np.zeros(n, bool)
    out = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(present):
        d = _as_date(arr[i])
        if d is None:
            bad[i] = True
        else:
            out[i] = (d - _EPOCH).days
    return out, bad


def _as_date(v: Any) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date() if v.time() == dt.time(0) and v.tzinfo is None else None
    if isinstance(v, dt.date):
        return v
    if isinstance(v, np.datetime64):
        day = v.astype("datetime64[D]")
        return day.astype(dt.date) if day == v else None
    if hasattr(v, "to_pydatetime"):  # pandas.Timestamp
        return _as_date(v.to_pydatetime())
    if isinstance(v, str):
        text = v.strip()
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            return None
    return None


def _fill_default(
    name: str,
    attr: Attribute,
    out: np.ndarray,
    fill: npt.NDArray[np.bool_],
    n: int,
    probs: _Problems,
) -> np.ndarray:
    one = _Problems(["default"])
    enc, _ = _encode(
        name,
        attr.model_copy(update={"missing": "error", "default": None}),
        np.array([attr.default], dtype=object),
        one,
        text=False,
    )
    if one.issues:
        probs.issues.append(
            PopulationIssue(
                "FA502", name, f"the default {attr.default!r} is not valid", valid=_valid_text(attr)
            )
        )
        return out
    out = out.copy()
    out[fill] = enc[0]
    return out


def _check_encoded(name: str, attr: Attribute, arr: np.ndarray, probs: _Problems) -> np.ndarray:
    """Check already-encoded values (see :meth:`Population.replace`)."""
    n = len(arr)
    rows = np.arange(n)
    if attr.type in ("int", "float"):
        out = arr.astype(np.float64)
        bad = ~np.isfinite(out)
        if attr.type == "int":
            bad |= out != np.floor(out)
        probs.add("FA502", name, "not a valid number", rows[bad], arr, _valid_text(attr))
        lo = float(attr.min) if isinstance(attr.min, int | float) else None
        hi = float(attr.max) if isinstance(attr.max, int | float) else None
        _range(name, attr, out, ~bad, arr, probs, lo, hi)
        return out
    if attr.type == "bool":
        if arr.dtype.kind != "b":
            probs.add("FA502", name, "not true or false", rows, arr, "a bool array")
        return arr.astype(bool)
    if attr.type in ("category", "ordinal"):
        k = len(attr.levels or [])
        codes = arr.astype(np.int64)
        bad = (codes < 0) | (codes >= k) | (codes != arr)
        probs.add("FA504", name, "not a level code", rows[bad], arr, f"codes 0 to {k - 1}")
        return codes.astype(np.int16)
    out = arr.astype(np.int64)
    lo = (attr.min - _EPOCH).days if isinstance(attr.min, dt.date) else None
    hi = (attr.max - _EPOCH).days if isinstance(attr.max, dt.date) else None
    _range(name, attr, out, np.ones(n, dtype=bool), arr, probs, lo, hi)
    return out
