"""Population input and validation: every error class with its message, and the input kinds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import fairalloc as fa
from fairalloc.errors import ArgumentError, PopulationError, PopulationIssue
from tests.strategies import residents

SCHEMA = fa.Policy.model_validate(
    {
        "policy": {"id": "p", "version": "1", "title": "P"},
        "attributes": {
            "rid": {"type": "str", "role": "id"},
            "age": {"type": "int", "min": 0, "max": 130},
            "income": {"type": "float", "min": 0},
            "alone": {"type": "bool"},
            "gender": {"type": "category", "levels": ["female", "male", "other"]},
            "need": {"type": "ordinal", "levels": ["low", "mid", "high"]},
            "since": {"type": "date", "min": dt.date(2000, 1, 1)},
            "kids": {"type": "int", "min": 0, "missing": "default", "default": 0},
        },
    }
)

GOOD = {
    "rid": ["a", "b", "c"],
    "age": [70, 81, 64],
    "income": [1200.5, 0.0, 300.0],
    "alone": [True, False, True],
    "gender": ["female", "male", "other"],
    "need": ["high", "low", "mid"],
    "since": [dt.date(2001, 1, 1), dt.date(2010, 5, 6), dt.date(2020, 2, 29)],
    "kids": [1, None, 2],
}


def issues(data: Any, **kw: Any) -> dict[str, PopulationIssue]:
    with pytest.raises(PopulationError) as info:
        fa.Population.load(data, SCHEMA, **kw)
    return {f"{i.code}:{i.column}": i for i in info.value.issues}


def test_encodings_and_default_fill() -> None:
    pop = fa.Population.from_columns(GOOD, SCHEMA)
    assert list(pop.ids) == ["a", "b", "c"]
    assert pop.columns["age"].dtype == np.int64  # integer columns stay integers
    assert list(pop.columns["gender"]) == [0, 1, 2]
    assert pop.columns["gender"].dtype == np.int16
    assert list(pop.columns["need"]) == [2, 0, 1]
    assert list(pop.columns["since"]) == [11323, 14735, 18321]
    assert list(pop.columns["kids"]) == [1.0, 0.0, 2.0]
    assert list(pop.filled["kids"]) == [False, True, False]
    assert pop.ignored_columns == ()


def test_every_problem_is_reported_at_once() -> None:
    bad = dict(GOOD)
    bad["age"] = [70, 200, 64.5]
    bad["gender"] = ["female", "mael", "other"]
    bad["alone"] = [True, "yes", None]
    bad["since"] = [dt.date(1999, 1, 1), "2010-13-01", dt.date(2001, 1, 1)]
    bad["income"] = [1.0, "12", float("inf")]
    found = issues(bad)
    assert set(found) == {
        "FA503:age",
        "FA508:age",
        "FA504:gender",
        "FA502:alone",
        "FA505:alone",
        "FA503:since",
        "FA502:since",
        "FA502:income",
    }
    assert found["FA503:age"].ids == ("b",)
    assert found["FA503:age"].values == ("200",)
    assert found["FA503:age"].valid == "a whole number from 0 to 130"
    assert found["FA504:gender"].message == "unknown level; did you mean `male`?"
    assert found["FA504:gender"].valid == "one of: female, male, other"
    assert found["FA505:alone"].ids == ("c",)
    assert "missing: default" in found["FA505:alone"].valid
    assert found["FA502:income"].ids == ("b", "c")


def test_missing_column_suggests_name_and_lists_found() -> None:
    data = dict(GOOD)
    data["agee"] = data.pop("age")
    found = issues(data)
    assert found["FA501:age"].message == "missing column; did you mean `agee`?"
    assert "columns found:" in found["FA501:age"].valid


def test_duplicate_and_missing_ids() -> None:
    data = dict(GOOD)
    data["rid"] = ["a", "a", None]
    found = issues(data)
    assert found["FA506:rid"].ids == ("row 1", "row 2")
    assert found["FA507:rid"].ids == ("row 3",)


def test_csv_names_lines_and_parses_text(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "rid,age,income,alone,gender,need,since,extra,kids\n"
        "a,70,10.5,true,female,high,2001-01-01,x,\n"
        "b,71,,no,male,low,2002-02-02,y,\n"
        "a,72,3,maybe,femal,mid,2003-03-03,z,\n"
    )
    found = issues(path)
    assert set(found) == {"FA505:income", "FA502:alone", "FA504:gender", "FA506:rid"}
    assert found["FA506:rid"].ids == ("line 2", "line 4")
    path.write_text(
        "rid,age,income,alone,gender,need,since,extra,kids\n"
        "a,70,10.5,true,female,high,2001-01-01,x,\n"
        "b,71,0,no,male , low,2002-02-02,y,\n"
    )
    pop = fa.Population.load(path, SCHEMA)
    assert pop.source == str(path)
    assert list(pop.columns["alone"]) == [True, False]
    assert list(pop.columns["gender"]) == [0, 1]
    assert pop.ignored_columns == ("extra",)
    assert list(pop.filled["kids"]) == [True, True]


def test_csv_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("rid,age\na,1,2\n")
    with pytest.raises(PopulationError, match="rows with other than 2 cells") as info:
        fa.Population.from_csv(path, SCHEMA)
    assert info.value.issues[0].ids == ("line 2",)


def test_records_models_pandas_and_arrow_agree() -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    records = [dict(zip(GOOD, vals, strict=True)) for vals in zip(*GOOD.values(), strict=True)]

    class Resident(BaseModel):
        rid: str
        age: int
        income: float
        alone: bool
        gender: str
        need: str
        since: dt.date
        kids: int | None

    loaded = [
        fa.Population.load(records, SCHEMA),
        fa.Population.load([Resident(**r) for r in records], SCHEMA),
        fa.Population.load(pd.DataFrame(records), SCHEMA),
        fa.Population.load(pa.Table.from_pylist(records), SCHEMA),
    ]
    for pop in loaded:
        assert pop.to_records() == loaded[0].to_records()
    df = loaded[0].to_pandas()
    assert next(iter(df.columns)) == "rid"
    assert str(df["need"].dtype) == "category"
    assert list(df["since"].dt.year) == [2001, 2010, 2020]


def test_pandas_missing_values_are_reported() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(GOOD)
    df.loc[1, "age"] = None
    found = issues(df)
    assert found["FA505:age"].ids == ("b",)


def test_take_replace_decode_and_repr() -> None:
    pop = fa.Population.from_columns(GOOD, SCHEMA)
    sub = pop.take([2, 0])
    assert list(sub.ids) == ["c", "a"]
    assert list(sub.decode("need")) == ["mid", "high"]
    assert list(pop.take([-1, 0]).ids) == ["c", "a"]  # numpy's negative positions
    assert list(pop.take([]).ids) == []
    for bad in ([0, 0], [2, -1], [3], [-4]):  # twice the same resident, or no such position
        with pytest.raises(ArgumentError) as e:
            pop.take(bad)
        assert e.value.code == "FA613"
    older = pop.replace("age", pop.columns["age"] + 1)
    assert list(older.columns["age"]) == [71.0, 82.0, 65.0]
    assert list(pop.columns["age"]) == [70.0, 81.0, 64.0]
    with pytest.raises(PopulationError, match="out of range"):
        pop.replace("age", pop.columns["age"] + 100)
    with pytest.raises(PopulationError, match="not a level code"):
        pop.replace("need", np.array([0, 3, 1]))
    assert "3 residents" in repr(pop)
    assert "<table>" in pop._repr_html_()


def test_unsupported_input_kind() -> None:
    with pytest.raises(TypeError, match="cannot read residents from int"):
        fa.Population.load(3, SCHEMA)
    with pytest.raises(TypeError, match=r"give a \.csv or \.parquet file"):
        fa.Population.load("residents.xlsx", SCHEMA)


@given(residents(SCHEMA, max_size=10))
def test_round_trip_records(records: list[dict[str, Any]]) -> None:
    pop = fa.Population.from_records(records, SCHEMA)
    assert pop.to_records() == records


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),
    st.text(max_size=5),
    st.dates(),
    st.just(""),
    st.just([1]),
)


@given(st.lists(st.fixed_dictionaries(dict.fromkeys(GOOD, _JUNK)), max_size=5))
def test_junk_never_crashes(records: list[dict[str, Any]]) -> None:
    try:
        fa.Population.from_records(records, SCHEMA)
    except PopulationError as e:
        problems = e.issues
        assert problems


def test_ids_must_be_text_or_whole_numbers() -> None:
    data = dict(GOOD)
    data["rid"] = ["a", [1], 2.5]
    found = issues(data)
    assert found["FA502:rid"].ids == ("row 2", "row 3")
    data["rid"] = [1, 2, 3.0]
    assert list(fa.Population.load(data, SCHEMA).ids) == ["1", "2", "3"]


def test_rows_are_named_by_their_own_id_when_usable(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "rid,age,income,alone,gender,need,since,kids\n"
        ",70,1,true,female,high,2001-01-01,0\n"
        "b,71,1,true,femal,high,2001-01-01,0\n"
        "c,71,1,true,female,high,2001-01-01,0\n"
        "c,72,1,true,female,hihg,2001-01-01,0\n"
    )
    found = issues(path)
    assert found["FA507:rid"].ids == ("line 2",)
    assert found["FA504:gender"].ids == ("b",)
    assert found["FA504:need"].ids == ("line 5",)  # its id `c` is shared: it names nobody


def test_absent_column_is_an_error_even_with_a_default() -> None:
    data = dict(GOOD)
    data["kidz"] = data.pop("kids")
    found = issues(data)
    assert found["FA501:kids"].message == "missing column; did you mean `kidz`?"


def test_huge_integers_are_population_errors() -> None:
    data = dict(GOOD)
    data["income"] = [10**400, 1.0, 2.0]
    found = issues(data)
    assert found["FA502:income"].ids == ("a",)
