"""Fuzzing the population boundary: mutated CSV bytes and junk DataFrames.

Whatever comes in, only a :class:`~fairalloc.Population` or fairalloc's own
:class:`~fairalloc.PopulationError` comes out, and every issue says where (a column, or the
residents, lines or rows concerned). The budget follows the hypothesis profile: short under
``ci``, long under ``thorough``. The slowest case of each campaign is recorded: set
``FAIRALLOC_FUZZ_REPORT=path`` to have the figures appended to that file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.errors import PopulationError
from tests.test_population import GOOD, SCHEMA

HEAD = list(GOOD)
WORST: dict[str, list[float]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Load once before timing, so that the first case does not pay for imports.
    warm = tmp_path_factory.mktemp("warm") / "w.csv"
    warm.write_text("rid\na\n")
    with pytest.raises(PopulationError):
        fa.Population.from_csv(warm, SCHEMA)
    yield
    target = os.environ.get("FAIRALLOC_FUZZ_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            for name, times in WORST.items():
                row = {"campaign": name, "cases": len(times), "worst_s": max(times, default=0)}
                fh.write(json.dumps(row) + "\n")


def attempt(name: str, load: Callable[[], Any]) -> fa.Population | PopulationError:
    """Run ``load``; fail on anything but a population or a located PopulationError."""
    start = time.perf_counter()
    try:
        out: fa.Population | PopulationError = load()
    except PopulationError as e:
        out = e
    finally:
        WORST.setdefault(name, []).append(time.perf_counter() - start)
    if isinstance(out, PopulationError):
        assert out.issues
        for issue in out.issues:
            assert issue.code.startswith("FA5"), issue
            assert issue.column or issue.ids, f"issue without a location: {issue}"
            assert issue.count <= 0 or issue.ids, issue
    return out


# -- CSV bytes --------------------------------------------------------------------------------

_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "a",
            "70",
            " 70 ",
            "１００",
            "৪০",
            "1_000",
            "nan",
            "inf",
            "1e400",
            "9007199254740993",
            "true",
            "maybe",
            "female",
            "high",
            "2001-01-01",
            "2026-02-30",
            '"quoted, comma"',
            '"line\nbreak"',
            '"crlf\r\nbreak"',
            '"unterminated',
            'x"y',
            '"a""b"c',
            "\x00",
            "\x1b[31m",
            "R1 ",
            "\u202e",
            "=HYPERLINK(1)",
            "\r",
        ]
    ),
    st.text(max_size=8),
    st.text(alphabet='a,"\r\n 0', max_size=6),
)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from([*HEAD, "extra", "age", " rid ", ""]), max_size=10))
    if draw(st.booleans()):
        names = [*HEAD, *names[:2]]
    rows = draw(
        st.lists(
            st.lists(_CELLS, min_size=max(0, len(names) - 1), max_size=len(names) + 1),
            max_size=6,
        )
    )
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(",".join(r) for r in [names, *rows])
    text += draw(st.sampled_from(["", ending, ending * 3]))
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.booleans()) and data:  # a byte flipped, cut or inserted
        k = draw(st.integers(0, len(data) - 1))
        mutation = draw(st.sampled_from(["flip", "cut", "insert"]))
        byte = bytes([draw(st.integers(0, 255))])
        if mutation == "flip":
            data = data[:k] + byte + data[k + 1 :]
        elif mutation == "cut":
            data = data[:k]
        else:
            data = data[:k] + byte + data[k:]
    return data


@given(csv_bytes())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_csv_bytes_give_a_population_or_a_located_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    out = attempt("csv bytes", lambda: fa.Population.from_csv(path, SCHEMA))
    if isinstance(out, PopulationError):
        for issue in out.issues:
            for label in issue.ids:  # positions in a CSV file are lines, never lost
                assert not label.startswith("row "), (issue, data)


@given(st.binary(max_size=300))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    attempt("random bytes", lambda: fa.Population.from_csv(path, SCHEMA))
    attempt(
        "random bytes (latin-1)", lambda: fa.Population.from_csv(path, SCHEMA, encoding="cp1252")
    )


@given(csv_bytes())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_line_numbers_agree_with_python_csv(tmp_path: Path, data: bytes) -> None:
    """Where Python's csv module reads the same rows, the scan finds the same first lines."""
    import csv as pycsv
    import io

    from fairalloc._csvread import LineIndex

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return
    if "\x00" in text or '"' in text:  # quoting rules differ at the edges: Arrow's are used
        return
    reader = pycsv.reader(io.StringIO(text, newline=""))
    starts, seen = [], 0
    for row in reader:
        if row:
            starts.append(seen + 1)
        seen = reader.line_num
    assert LineIndex(data).lines.tolist() == starts


# -- DataFrames and columns -------------------------------------------------------------------

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["female", "high", " R1", "R1\t", "2001-01-01", "", "１"]),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.binary(max_size=3),
    st.just([1]),
    st.just({"a": 1}),
    st.just(np.datetime64("NaT")),
    st.just(np.int64(3)),
)


@st.composite
def frames(draw: st.DrawFn) -> dict[str, list[Any]]:
    n = draw(st.integers(0, 5))
    names = draw(st.lists(st.sampled_from([*HEAD, "extra", "age", "rid"]), max_size=12))
    return {name: [draw(_JUNK) for _ in range(n)] for name in names}


@given(frames(), st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_dataframes_give_a_population_or_a_located_error(
    columns: dict[str, list[Any]], duplicate: bool
) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
    if duplicate and len(df.columns):
        df.insert(0, df.columns[0], df.iloc[:, 0], allow_duplicates=True)
    attempt("dataframes", lambda: fa.Population.load(df, SCHEMA))
    attempt("column mappings", lambda: fa.Population.load(columns, SCHEMA))


@given(
    st.lists(
        st.one_of(
            st.none(), st.integers(), st.fixed_dictionaries({}, optional=dict.fromkeys(HEAD, _JUNK))
        ),
        max_size=5,
    )
)
def test_records_give_a_population_or_a_located_error(records: list[Any]) -> None:
    attempt("records", lambda: fa.Population.load(records, SCHEMA))


_TYPED = st.sampled_from(
    [
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),
        st.text(max_size=6),
        st.booleans(),
        st.dates(),
        st.sampled_from(["female", "high", "R1 ", "2001-01-01", ""]),
    ]
)


@st.composite
def typed_columns(draw: st.DrawFn) -> dict[str, list[Any]]:
    """Columns of one type each (with nulls), as Arrow tables hold them."""
    n = draw(st.integers(0, 5))
    names = draw(st.lists(st.sampled_from([*HEAD, "extra"]), max_size=10, unique=True))
    return {
        name: draw(st.lists(st.one_of(st.none(), draw(_TYPED)), min_size=n, max_size=n))
        for name in names
    }


@given(typed_columns(), st.booleans())
def test_arrow_tables_and_parquet(columns: dict[str, list[Any]], parquet: bool) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    if parquet:
        import io

        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(table, sink)
        table = pq.read_table(io.BytesIO(sink.getvalue()))
    attempt("arrow tables", lambda: fa.Population.load(table, SCHEMA))
