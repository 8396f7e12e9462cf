"""Residents as typed numpy columns, validated against a policy's attribute schema.

Every value is checked column by column (vectorized where the input allows it); all problems are
collected and raised together as one :class:`~fairalloc.errors.PopulationError` naming the
residents, the column, the values and what would be valid. Nothing is dropped or coerced
silently: missing values are an error unless the attribute says ``missing: default``, and the
rows so filled are recorded in :attr:`Population.filled`.

Encodings (what rules see): ``int`` attributes as int64 (whole numbers up to 2**53 in size),
``float`` attributes as float64, flags as bool, levels of a category or ordinal as int16 codes
(positions in ``levels``), dates as int64 days since 1970-01-01. Ids are kept as text.

Files are parsed by Arrow (CSV in parallel, every cell as text; Parquet as typed columns), and
text is checked with Arrow's vectorized kernels; numbers in text are ASCII digits only.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fairalloc._html import table as html_table
from fairalloc._ids import IdColumn
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
# A number as CSV files may write it: ASCII digits only (no `１００`, `৪০` or `1_000`), an
# optional sign, fraction and exponent; no `inf` or `nan`.
_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_WHOLE = r"^[+-]?[0-9]{1,18}$"  # exact in int64
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# What an id may not hold: white space at either end, control characters (C0, DEL, C1), line
# and paragraph separators, or bidirectional controls that reorder what a reader sees.
_ID_CONTROL = (
    r"[\x{00}-\x{1F}\x{7F}-\x{9F}\x{061C}\x{200E}\x{200F}\x{2028}\x{2029}"
    r"\x{202A}-\x{202E}\x{2066}-\x{2069}\x{FEFF}]"
)
_BAD_ID = r"^[\s\p{Z}]|[\s\p{Z}]$|" + _ID_CONTROL
_BAD_ID_PY = re.compile(
    r"^\s|\s$|[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
    r"\ud800-\udfff]"  # lone surrogates: not text that a file (UTF-8) can hold
)


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

    labels: Sequence[str] | np.ndarray | IdColumn
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
    """``row 1``, ``row 2``, ... (or ``line N`` for CSV), made only when a problem needs one.

    ``label(i)`` names row ``i`` by position; with ``ids``, a row whose id is usable (present
    and not shared) is named by its id instead.
    """

    def __init__(self, label: Callable[[int], str], n: int, ids: np.ndarray | None = None) -> None:
        self.label, self.n, self.ids = label, n, ids

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        if self.ids is not None and self.ids[i] is not None and not self.duplicated(i):
            return str(self.ids[i])
        return self.label(i)

    def duplicated(self, i: int) -> bool:
        """Whether row ``i``'s id is shared with another row (then it names nobody)."""
        assert self.ids is not None
        if not hasattr(self, "_dups"):
            self._dups = set(_duplicates(self.ids))
        return i in self._dups


def _by_row(i: int) -> str:
    return f"row {i + 1}"


class Population:
    """Residents as typed columns, validated against a policy's attribute schema.

    Build one with :meth:`load` (any supported input) or the ``from_*`` constructors. A
    population pickles (with its policy), for work shipped to other processes.

    Attributes:
        columns: Encoded columns by attribute name (see the module documentation).
        filled: For attributes with ``missing: default``, which rows were filled with it.
        source: Where the data came from (for messages).
        ignored_columns: Input columns the schema does not name (left out, listed here).
        schema: The policy whose attribute schema the data was validated against.
    """

    def __init__(
        self,
        ids: npt.NDArray[np.object_] | IdColumn,
        columns: Mapping[str, np.ndarray],
        schema: Policy,
        *,
        filled: Mapping[str, npt.NDArray[np.bool_]] | None = None,
        source: str = "",
        ignored_columns: tuple[str, ...] = (),
    ) -> None:
        self._ids = IdColumn(ids)
        self.columns = dict(columns)
        self.schema = schema
        self.filled = dict(filled or {})
        self.source = source
        self.ignored_columns = ignored_columns

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # The policy's compilations are a cache of code made in this process: leave them out.
        state["schema"] = _without_cache(self.schema)
        return state

    # -- construction ------------------------------------------------------------------
    @classmethod
    def load(cls, data: Any, schema: Policy, *, source: str = "") -> Population:
        """Build a population from any supported input.

        Accepted: a ``.csv`` or ``.parquet`` path; a pandas or polars DataFrame; a pyarrow
        Table; a mapping of column name to sequence or array; an iterable of mappings
        (records) or of pydantic models; or a :class:`Population` (returned as is).

        Raises:
            PopulationError: listing every problem in the data.
            TypeError: for an input of another kind.
        """
        if isinstance(data, Population):
            return data
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            suffix = path.suffix.lower()
            if suffix == ".parquet":
                return cls.from_parquet(path, schema, source=source or str(path))
            if suffix != ".csv":
                raise ArgumentTypeError(
                    "FA640",
                    f"cannot read residents from `{path.name}`: give a .csv or .parquet file",
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
        if isinstance(data, Iterable) and not isinstance(data, bytes | bytearray):
            items = list(data)
            if items and all(isinstance(i, BaseModel) for i in items):
                return cls.from_models(items, schema, source=source)
            # Anything else is read as records: an item that is not one is named by its row.
            return cls.from_records(items, schema, source=source)
        raise ArgumentTypeError(
            "FA640",
            f"cannot read residents from {type(data).__name__}: give a CSV or Parquet path, a"
            " DataFrame, an Arrow table, a mapping of columns, records (dicts) or pydantic models",
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
        """From records (one mapping per resident; a pydantic model counts as its fields).

        Raises:
            PopulationError: ``FA514`` naming every row that is not a record (``None``, a
                number, ...), reported on its own; otherwise every problem in the data.
        """
        rows = [r.model_dump() if isinstance(r, BaseModel) else r for r in records]
        not_records = [i for i, r in enumerate(rows) if not isinstance(r, Mapping)]
        if not_records:
            raise PopulationError(
                [
                    PopulationIssue(
                        "FA514",
                        "",
                        "not a record",
                        ids=tuple(f"row {i + 1}" for i in not_records[:MAX_LISTED]),
                        values=tuple(_show(rows[i]) for i in not_records[:MAX_LISTED]),
                        valid="a mapping of column name to value (a dict) for every resident",
                        count=len(not_records),
                    )
                ],
                source=source,
            )
        keys = list(dict.fromkeys(k for r in rows for k in r))
        check_columns(keys, source)
        names = [str(k) for k in keys]
        wanted = set(schema.attributes)
        if not rows:  # no residents: every column is present, and empty
            keys = names = list(schema.attributes)
        cols: dict[str, list[Any]] = {
            n: [r.get(k) for r in rows] for k, n in zip(keys, names, strict=True) if n in wanted
        }
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
        """From a pandas DataFrame (a named index is used as a column too).

        Raises:
            PopulationError: ``FA509`` for a column name given twice (every position).
        """
        check_columns(list(df.columns), source)
        if df.index.name is not None and str(df.index.name) not in map(str, df.columns):
            df = df.reset_index()
        cols: dict[str, Any] = {}
        for j, name in enumerate(df.columns):
            s = df.iloc[:, j]
            if hasattr(s, "cat"):
                s = s.astype(object)
            cols[str(name)] = s.to_numpy(dtype=object) if s.hasnans else s.to_numpy()
        return cls.from_columns(cols, schema, source=source)

    @classmethod
    def from_arrow(cls, table: Any, schema: Policy, *, source: str = "") -> Population:
        """From a pyarrow Table (nulls are missing values).

        Raises:
            PopulationError: ``FA509`` for a column name given twice (every position).
        """
        names = [str(n) for n in table.column_names]
        check_columns(names, source)
        cols = {name: _from_arrow(table.column(j)) for j, name in enumerate(names)}
        return cls.from_columns(cols, schema, source=source, _n=table.num_rows)

    @classmethod
    def from_polars(cls, df: Any, schema: Policy, *, source: str = "") -> Population:
        """From a polars DataFrame (nulls are missing values)."""
        return cls.from_columns(df.to_dict(as_series=False), schema, source=source)

    @classmethod
    def from_parquet(
        cls, path: str | os.PathLike[str], schema: Policy, *, source: str | None = None
    ) -> Population:
        """From a Parquet file, read by Arrow: its typed columns, as :meth:`from_arrow` reads.

        Raises:
            PopulationError: ``FA512`` for a file Arrow cannot read as Parquet; otherwise as
                :meth:`from_arrow`.
        """
        from fairalloc._csvread import read_parquet

        where = source or str(path)
        return cls.from_arrow(read_parquet(path, where), schema, source=where)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        schema: Policy,
        *,
        source: str | None = None,
        encoding: str = "utf-8",
    ) -> Population:
        """From a CSV file with a header row; an empty cell is a missing value.

        The file is parsed by Arrow, every cell as text; a byte-order mark at the start is
        skipped, and so are blank lines. Problems name residents by id, or by ``line N`` (the
        header is line 1; a cell with a line break inside counts its lines) where the id itself
        is missing, repeated or invalid.

        Args:
            path: The file.
            schema: The policy whose attribute schema the data must fit.
            source: How messages name the data (the path by default).
            encoding: The file's text encoding (UTF-8 by default, with or without a mark).
        """
        from fairalloc._csvread import read_csv_bytes

        where = source or str(path)
        data = Path(path).read_bytes()
        numbers = {
            name: attr.type
            for name, attr in schema.attributes.items()
            if attr.type in ("int", "float") and name != schema.id_attribute
        }
        table = read_csv_bytes(data, where, encoding, numbers)
        lines = table.lines

        def label(i: int) -> str:
            found = lines.lines
            # Line numbers hold only while the scan and the parser agree on the records.
            if len(found) == table.rows + 1:
                return f"line {found[i + 1]}"
            return f"row {i + 1}"

        cols = dict(zip(table.names, table.columns, strict=True))
        return cls.from_columns(cols, schema, source=where, _n=table.rows, _text=True, _label=label)

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Sequence[Any] | np.ndarray],
        schema: Policy,
        *,
        source: str = "",
        _n: int | None = None,
        _text: bool = False,
        _label: Callable[[int], str] = _by_row,
    ) -> Population:
        """From a mapping of column name to values (lists, numpy arrays or Arrow arrays).

        Raises:
            PopulationError: ``FA509`` if two keys name the same column (``1`` and ``"1"``);
                otherwise every problem in the data.
        """
        check_columns(list(columns), source)
        population = _Validator(schema, columns, source, _n, _text, _label).run()
        _release_arrow_memory()
        return population

    # -- views -------------------------------------------------------------------------
    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """Resident ids as ``str`` (an object array), one per row; made on first read."""
        return self._ids.objects

    @property
    def id_column(self) -> IdColumn:
        """The ids as held (Arrow text from a file): read rows without making every ``str``."""
        return self._ids

    @property
    def n(self) -> int:
        """Number of residents."""
        return len(self._ids)

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
        n = len(self._ids)
        if len(idx) and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise ArgumentError(
                "FA613",
                f"take() positions must be in [-{n}, {n}) for {n} residents",
                argument="indices",
            )
        # Distinct positions, counted in one pass (a permutation of a million is common).
        if len(idx) and int(np.bincount(np.where(idx < 0, idx + n, idx), minlength=n).max()) > 1:
            raise ArgumentError(
                "FA613",
                "take() positions must be distinct: a resident cannot appear twice",
                argument="indices",
            )
        return Population(
            self._ids.select(np.where(idx < 0, idx + n, idx)),
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
        probs = _Problems(self._ids)  # ids are text already; labels are made only on a problem
        encoded = _check_encoded(column, attr, arr, probs)
        if probs.issues:
            raise PopulationError(probs.issues, source=self.source)
        cols = dict(self.columns)
        cols[column] = encoded
        return Population(
            self._ids,
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
        label: Callable[[int], str],
    ) -> None:
        self.schema = schema
        self.raw = {str(k): v for k, v in columns.items()}
        self.source = source
        self.text = text
        self.label = label
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
        self.row_labels = _RowLabels(label, n)

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
        labels: Sequence[str] | IdColumn = (
            ids if ids is not None else _RowLabels(self.label, self.n, named)
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
    ) -> tuple[IdColumn | None, npt.NDArray[np.object_] | None]:
        """The ids if all are usable (else None), and the usable ids (None where not)."""
        idname = self.schema.id_attribute
        raw = self.raw.get(idname)
        if raw is None:
            return None, None
        attr = self.schema.attributes[idname]
        numbers: np.ndarray | None = None  # the ids as whole numbers, when given as numbers
        strings = _as_strings(raw)
        if strings is not None:
            out, empty, bad_rows, spaced = _text_ids(strings, raw)
            vals: Any = _Cells(strings)
        elif isinstance(raw, np.ndarray) and raw.dtype.kind in "iuf":
            out, bad_rows, numbers = _numeric_ids(raw, attr)
            empty, spaced, vals = [], [], raw
        else:
            arr = _object_array(raw)
            out, empty, bad_rows, spaced = _ids_slow(arr, attr)
            vals = arr
        probs.add(
            "FA507", idname, "missing resident id", empty, vals, "a non-empty id for every resident"
        )
        probs.add("FA502", idname, "not a valid id", bad_rows, vals, "text or a whole number")
        probs.add(
            "FA510",
            idname,
            "an id with white space around it or a control character in it",
            spaced,
            vals,
            "an id without spaces at either end, line breaks, tabs or other control characters",
        )
        n_valid = self.n - len(empty) - len(bad_rows)
        if numbers is not None:
            # Whole numbers have distinct digits exactly when they differ: no strings needed.
            n_distinct = _count_distinct(numbers)
        elif isinstance(out, np.ndarray):
            distinct = set(out.tolist())
            distinct.discard(None)
            n_distinct = len(distinct)
        else:
            n_distinct = _count_distinct_text(out)
        if n_distinct == n_valid and not (empty or bad_rows or spaced):
            return IdColumn(out), None
        # A problem: every row gets a label, so the ids become Python strings (None if unusable).
        objects = IdColumn(out).objects
        usable = objects
        if spaced:
            usable = objects.copy()
            usable[spaced] = None
        if n_distinct != n_valid:
            probs.add(
                "FA506",
                idname,
                "the same id for several residents",
                _duplicates(objects),
                vals,
                "one row per resident",
            )
        return None, usable


def _release_arrow_memory() -> None:
    """Give back to the system what Arrow's memory pool kept of the validation's temporaries."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()


def _ids_slow(
    arr: np.ndarray, attr: Attribute
) -> tuple[npt.NDArray[np.object_], list[int], list[int], list[int]]:
    n = len(arr)
    out = np.empty(n, dtype=object)
    empty: list[int] = []
    bad: list[int] = []
    spaced: list[int] = []
    for i, v in enumerate(arr):
        if _is_missing(v) and not (isinstance(v, str) and v):
            empty.append(i)
        elif (
            isinstance(v, bool | np.bool_)
            or not isinstance(v, str | int | np.integer | float | np.floating)
            or (isinstance(v, float | np.floating) and not float(v).is_integer())
        ):
            bad.append(i)
        elif isinstance(v, str):
            out[i] = v
            if _BAD_ID_PY.search(v):
                spaced.append(i)
        else:
            out[i] = str(int(v)) if attr.type == "int" or isinstance(v, float) else str(v)
    return out, empty, bad, spaced


def _text_ids(strings: Any, raw: Any) -> tuple[Any, list[int], list[int], list[int]]:
    """Ids given as text: missing (null or empty), and refused (spaces, control characters).

    The ids come back as given: the object array of ``str`` when that was the input, else the
    Arrow array (null where missing); nothing is converted.
    """
    import pyarrow.compute as pc

    missing = _np_bool(pc.fill_null(pc.equal(strings, ""), fill_value=True))
    flagged = _np_bool(pc.fill_null(pc.match_substring_regex(strings, _BAD_ID), fill_value=False))
    empty = np.flatnonzero(missing)
    out: Any = strings
    if isinstance(raw, np.ndarray) and raw.dtype == object:
        out = raw.copy()  # the same str objects, already made (the caller keeps its array)
        out[empty] = None
    elif len(empty) and strings.null_count != len(empty):
        out = pc.if_else(pc.equal(strings, ""), None, strings)  # empty ids count as missing
    return out, empty.tolist(), [], np.flatnonzero(flagged & ~missing).tolist()


def _count_distinct(values: np.ndarray) -> int:
    """The number of distinct values (one pass when they come sorted, as ids usually do)."""
    if len(values) < 2 or bool(np.all(values[1:] > values[:-1])):
        return len(values)
    s = np.sort(values)
    return int(np.count_nonzero(s[1:] != s[:-1])) + 1


def _count_distinct_text(values: Any) -> int:
    """The number of distinct texts in an Arrow array, nulls left out (one pass when sorted)."""
    import pyarrow.compute as pc

    valid = values if values.null_count == 0 else pc.drop_null(values)
    if len(valid) < 2 or pc.all(pc.greater(valid[1:], valid[:-1])).as_py():
        return len(valid)
    return len(pc.unique(valid))  # a hash table: twice as fast as count_distinct at 1M


def _numeric_ids(arr: np.ndarray, attr: Attribute) -> tuple[Any, list[int], np.ndarray]:
    """Ids given as numbers: whole numbers become their digits; others are not valid ids.

    Returns the ids (the whole numbers themselves when all are valid: their text is made
    when read; else Arrow text, null where not valid), the rows that are not valid, and the
    valid ids as whole numbers (to count them without their digits).
    """
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (np.floor(arr) == arr) & (np.abs(arr) < 2.0**63)
        ints = np.where(whole, arr, 0).astype(np.int64)
    else:
        whole = np.ones(len(arr), dtype=bool)
        ints = arr
    bad = np.flatnonzero(~whole)
    if not len(bad) and (ints.dtype.kind == "i" or not len(ints) or int(ints.max()) < 2**63):
        return np.array(ints, dtype=np.int64), [], ints  # a copy: the caller keeps its array
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pc.cast(pa.array(ints, mask=~whole), pa.string())
    return out, bad.tolist(), ints[whole]


class _Cells(Sequence[Any]):
    """An Arrow column's cells as Python values, made one by one for messages."""

    def __init__(self, column: Any) -> None:
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        return self.column[int(i)].as_py()


class _TextCells(_Cells):
    """Cells read as numbers from a CSV file, shown as the text they were."""

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        value = self.column[int(i)].as_py()
        return None if value is None else str(value)


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.split(".")[0] == "pyarrow"


def _is_arrow_text(values: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(values.type))


def _np_bool(arr: Any) -> npt.NDArray[np.bool_]:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _as_strings(values: Any) -> Any:
    """``values`` as an Arrow string array (null for None and NaN) if every value is text."""
    if isinstance(values, np.ndarray) and values.dtype.kind not in "OU":
        return None  # numbers, booleans, dates: no text (and no need to load Arrow)
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if pa.types.is_string(values.type) else None
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "U":
            return pa.array(values, type=pa.string())
        if values.dtype != object or values.ndim != 1:
            return None
    elif not isinstance(values, list | tuple):
        return None
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _from_arrow(column: Any) -> Any:
    """An Arrow column as the validator takes it: text as Arrow, plain columns as numpy."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string()).combine_chunks()
    plain = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date32(kind)
    )
    if plain and column.null_count == 0:
        return column.to_numpy()
    return column.to_pylist()


def check_columns(keys: Sequence[Any], source: str) -> None:
    """Refuse a column name given twice (``FA509``), naming every position it has (from 1).

    Names are compared as text, so the keys ``1`` and ``"1"`` are one name.
    """
    seen: dict[str, list[int]] = {}
    for pos, key in enumerate(keys, start=1):
        seen.setdefault(str(key), []).append(pos)
    issues = [
        PopulationIssue(
            "FA509",
            name,
            "the same column name at positions "
            + ", ".join(map(str, where[:-1]))
            + f" and {where[-1]}",
            ids=tuple(f"column {p}" for p in where[:MAX_LISTED]),
            valid="one column per name",
            count=len(where),
        )
        for name, where in seen.items()
        if len(where) > 1
    ]
    if issues:
        raise PopulationError(issues, source=source)


def _without_cache(policy: Policy) -> Policy:
    # An update, even one that changes nothing, leaves the compilations behind.
    return policy.model_copy(update={"policy": policy.policy})


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
    strings = None
    arr: Any
    shown: Any  # the values as messages show them
    if _is_arrow(values) and not _is_arrow_text(values):  # numbers of a CSV file, or Arrow's
        import pyarrow.compute as pc

        missing = _np_bool(values.is_null())
        arr = values.fill_null(0).to_numpy() if values.null_count else values.to_numpy()
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            arr = _object_array(values.to_pylist())
        shown = _TextCells(values) if text else _Cells(values)
    else:
        if attr.type in ("category", "ordinal") and not text:
            exact = _exact_levels(values, attr.levels or [])
            if exact is not None:
                return exact, None
        if (
            text
            or attr.type in ("category", "ordinal", "date")
            or not isinstance(values, np.ndarray)
        ):
            strings = _as_strings(values)
        if strings is not None:
            import pyarrow.compute as pc

            arr = _Cells(strings)
            missing = _np_bool(pc.fill_null(pc.equal(strings, ""), fill_value=True))
        else:
            arr = _object_array(values)
            missing = _missing_mask(arr)
        shown = arr
    n = len(arr)
    out: np.ndarray
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
                shown,
                _valid_text(attr) + " (or declare `missing: default`)",
            )
    present = ~missing
    if attr.type in ("int", "float"):
        if strings is not None:
            out, bad, nonint = _text_numbers(strings, present, attr, text=text)
        else:
            out, bad, nonint = _numbers(arr, present, attr)
        probs.add("FA502", name, "not a number", np.flatnonzero(bad), shown, _valid_text(attr))
        probs.add(
            "FA508",
            name,
            "not a whole number",
            np.flatnonzero(nonint),
            shown,
            _valid_text(attr),
        )
        ok = present & ~bad & ~nonint
        _range(
            name,
            attr,
            out,
            ok,
            shown,
            probs,
            attr.min if isinstance(attr.min, int | float) else None,
            attr.max if isinstance(attr.max, int | float) else None,
        )
    elif attr.type == "bool":
        if strings is not None:
            out, bad = _text_bools(strings, present, text=text)
        else:
            out, bad = _bools(arr, present)
        probs.add("FA502", name, "not true or false", np.flatnonzero(bad), shown, _valid_text(attr))
    elif attr.type in ("category", "ordinal"):
        if strings is not None:
            out = _text_levels(name, attr, strings, present, probs)
        else:
            out = _levels(name, attr, arr, present, probs)
    else:  # date
        if strings is not None:
            out, bad = _text_dates(strings, present)
        else:
            out, bad = _dates(arr, present)
        probs.add("FA502", name, "not a date", np.flatnonzero(bad), shown, _valid_text(attr))
        lo = (attr.min - _EPOCH).days if isinstance(attr.min, dt.date) else None
        hi = (attr.max - _EPOCH).days if isinstance(attr.max, dt.date) else None
        _range(name, attr, out, present & ~bad, shown, probs, lo, hi)
    if fill is not None:
        out = _fill_default(name, attr, out, fill, n, probs)
    return out, fill


def _exact_levels(values: Any, levels: Sequence[str]) -> npt.NDArray[np.int16] | None:
    """The level codes of an object array of which every value is a level as written.

    None for anything else (another input, a missing value, a value that is not a level
    exactly), which the Arrow path then checks and reports. Level names given as Python
    strings are looked up without Arrow: for a million values, as fast, and neither pyarrow
    nor (which it loads to convert Python objects) pandas is imported.
    """
    if not isinstance(values, np.ndarray) or values.dtype != object or values.ndim != 1:
        return None
    code = {level: j for j, level in enumerate(levels)}
    try:
        codes = np.fromiter(
            map(code.get, values, itertools.repeat(-1)), dtype=np.int16, count=len(values)
        )
    except TypeError:  # an unhashable value (a list, a dict): not a level, reported there
        return None
    return codes if not len(codes) or int(codes.min()) >= 0 else None


# -- text, checked by Arrow's kernels --------------------------------------------------------


def _match(strings: Any, pattern: str) -> npt.NDArray[np.bool_]:
    import pyarrow.compute as pc

    return _np_bool(pc.fill_null(pc.match_substring_regex(strings, pattern), fill_value=False))


def _where(mask: npt.NDArray[np.bool_], strings: Any, other: str) -> Any:
    """``strings`` where ``mask``, else ``other`` (no copy when every row is kept: the usual)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if mask.all():
        return strings
    return pc.if_else(pa.array(mask), strings, other)


def _text_numbers(
    strings: Any, present: npt.NDArray[np.bool_], attr: Attribute, *, text: bool
) -> tuple[np.ndarray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Numbers written as text (ASCII digits only); outside a CSV file text is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(strings)
    nonint = np.zeros(n, dtype=bool)
    if not text:
        zeros = np.zeros(n, dtype=np.int64 if attr.type == "int" else np.float64)
        return zeros, present.copy(), nonint
    trimmed = pc.ascii_trim_whitespace(strings)
    number = _match(trimmed, _NUMBER) & present
    bad = present & ~number
    whole = _match(trimmed, _WHOLE) & number if attr.type == "int" else np.zeros(n, dtype=bool)
    rest = number & ~whole
    floats = np.zeros(n, dtype=np.float64)
    if rest.any():
        floats = np.asarray(pc.cast(_where(rest, trimmed, "0"), pa.float64()).to_numpy())
    finite = np.isfinite(floats)
    bad |= rest & ~finite
    if attr.type == "float":
        out = np.where(number & finite, floats, 0.0)
        return out, bad, nonint
    ints = np.zeros(n, dtype=np.int64)
    if whole.any():
        ints = np.asarray(pc.cast(_where(whole, trimmed, "0"), pa.int64()).to_numpy())
    nonint = (whole & (np.abs(ints) > _MAX_EXACT)) | (
        rest & finite & ((floats != np.floor(floats)) | (np.abs(floats) > _MAX_EXACT))
    )
    fine_float = rest & finite & ~nonint
    out = np.where(whole & ~nonint, ints, 0)
    if fine_float.any():
        out[fine_float] = floats[fine_float].astype(np.int64)
    return out.astype(np.int64), bad, nonint


def _text_bools(
    strings: Any, present: npt.NDArray[np.bool_], *, text: bool
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Flags written as words (in a CSV file); outside one text is not a flag."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not text:
        return np.zeros(len(strings), dtype=bool), present.copy()
    words = pc.utf8_lower(pc.ascii_trim_whitespace(strings))
    yes = _np_bool(pc.is_in(words, value_set=pa.array(sorted(_TRUE))).fill_null(fill_value=False))
    no = _np_bool(pc.is_in(words, value_set=pa.array(sorted(_FALSE))).fill_null(fill_value=False))
    return yes & present, present & ~(yes | no)


def _text_levels(
    name: str, attr: Attribute, strings: Any, present: npt.NDArray[np.bool_], probs: _Problems
) -> npt.NDArray[np.int16]:
    import pyarrow as pa
    import pyarrow.compute as pc

    levels = list(attr.levels or [])
    value_set = pa.array(levels, type=pa.string())
    index = pc.index_in(strings, value_set=value_set)
    matched = _np_bool(index.is_valid())
    if (present & ~matched).any():  # second chance for values padded with spaces
        index = pc.coalesce(index, pc.index_in(pc.utf8_trim_whitespace(strings), value_set))
        matched = _np_bool(index.is_valid())
    codes = np.asarray(pc.fill_null(index, 0).to_numpy(zero_copy_only=False), dtype=np.int16)
    bad = np.flatnonzero(present & ~matched).tolist()
    if bad:
        first = str(strings[bad[0]].as_py())
        close = difflib.get_close_matches(first, levels, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        probs.add("FA504", name, f"unknown level{hint}", bad, _Cells(strings), _valid_text(attr))
    return codes


def _text_dates(
    strings: Any, present: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Dates written ``YYYY-MM-DD`` (ASCII digits), real days only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(strings)
    shaped = _match(trimmed, _DATE) & present
    bad = present & ~shaped
    out = np.zeros(len(strings), dtype=np.int64)
    if not shaped.any():
        return out, bad
    try:
        days = pc.cast(pc.cast(_where(shaped, trimmed, "1970-01-01"), pa.date32()), pa.int32())
    except pa.ArrowInvalid:  # some day does not exist (2026-02-30): find which
        for i in np.flatnonzero(shaped):
            d = _as_date(str(trimmed[int(i)].as_py()))
            if d is None:
                bad[i] = True
            else:
                out[i] = (d - _EPOCH).days
        return out, bad
    out[:] = np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.int64)
    out[~shaped] = 0
    return out, bad


# -- Python and numpy values -----------------------------------------------------------------


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
    arr: np.ndarray, present: npt.NDArray[np.bool_], attr: Attribute
) -> tuple[np.ndarray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Numbers given as numbers; text, flags and anything non-finite are not numbers."""
    n = len(arr)
    bad = np.zeros(n, dtype=bool)
    if arr.dtype.kind in "iu":
        if attr.type != "int":
            out = arr.astype(np.float64)
        else:  # exact: no detour through float64
            limit = 2**53
            nonint = (arr > limit) | ((arr < -limit) if arr.dtype.kind == "i" else False)
            nonint = np.asarray(nonint, dtype=bool)
            whole = arr.astype(np.int64) if not nonint.any() else np.where(nonint, 0, arr)
            return whole.astype(np.int64, copy=False), bad, nonint
    elif arr.dtype.kind == "f":
        out = arr.astype(np.float64)
    elif (fast := _float_column(arr, present)) is not None:
        out = fast
    else:
        out = np.zeros(n, dtype=np.float64)
        for i in np.flatnonzero(present):
            v = arr[i]
            if isinstance(v, bool | np.bool_ | str | bytes):
                bad[i] = True
                continue
            try:
                out[i] = float(v)
            except (TypeError, ValueError, OverflowError):
                bad[i] = True
    finite = np.isfinite(out)
    bad |= present & ~finite
    out[~present | bad] = 0.0
    nonint = np.zeros(n, dtype=bool)
    if attr.type == "int":
        nonint = present & ~bad & ((out != np.floor(out)) | (np.abs(out) > _MAX_EXACT))
        out[nonint] = 0.0
        return out.astype(np.int64), bad, nonint
    return out, bad, nonint


def _float_column(
    arr: np.ndarray, present: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64] | None:
    """The whole column converted at C speed, or None if some value needs a closer look."""
    if not present.all():
        return None
    if any(isinstance(v, str | bytes | bool | np.bool_) for v in arr):
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
    raw: Any,
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
    arr: np.ndarray, present: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    n = len(arr)
    if arr.dtype.kind == "b":
        return arr.astype(bool), np.zeros(n, dtype=bool)
    out = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(present):
        v = arr[i]
        if isinstance(v, bool | np.bool_) or (isinstance(v, int | np.integer) and v in (0, 1)):
            out[i] = bool(v)
        else:
            bad[i] = True
    return out, bad


def _levels(
    name: str, attr: Attribute, arr: np.ndarray, present: npt.NDArray[np.bool_], probs: _Problems
) -> npt.NDArray[np.int16]:
    """Levels from values that are not all text: only text can be a level."""
    levels = list(attr.levels or [])
    codes = np.zeros(len(arr), dtype=np.int16)
    lookup = {level: k for k, level in enumerate(levels)}
    bad: list[int] = []
    for i in np.flatnonzero(present):
        v = arr[i]
        k = lookup.get(v.strip()) if isinstance(v, str) else None
        if k is None:
            bad.append(int(i))
        else:
            codes[i] = k
    if bad:
        first = str(arr[bad[0]])
        close = difflib.get_close_matches(first, levels, n=1)
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
        if np.isnat(v):
            return None
        day = v.astype("datetime64[D]")
        return day.astype(dt.date) if day == v else None
    if hasattr(v, "to_pydatetime"):  # pandas.Timestamp
        return _as_date(v.to_pydatetime())
    if isinstance(v, str):
        text = v.strip()
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return None
        try:
            return dt.date.fromisoformat(text)
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
        if attr.type == "int":
            bad |= np.abs(out) > _MAX_EXACT
            return np.where(bad, 0.0, out).astype(np.int64)
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
