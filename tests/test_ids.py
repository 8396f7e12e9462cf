"""Resident ids held once (`IdColumn`): both forms read alike, and a run never makes them all.

Ids from a file stay Arrow text through evaluation, ranking, allocation and the result file;
Python strings are made only for the rows read. The forms must agree on every read, and the
order by id must be numpy's order of ``str`` (code points), which every export uses.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc._ids import IdColumn

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "elderly-care"

# Text as ids may be: no surrogates (a file cannot hold them), any other code point.
id_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6)
id_lists = st.lists(id_text, min_size=1, max_size=40, unique=True)


def both(ids: list[str]) -> tuple[IdColumn, IdColumn]:
    """The same ids as Python strings and as Arrow text."""
    return IdColumn(np.array(ids, dtype=object)), IdColumn(pa.array(ids, type=pa.string()))


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40, unique=True), st.data())
def test_whole_number_ids_read_as_their_digits(numbers: list[int], data: st.DataObject) -> None:
    ids = [str(v) for v in numbers]
    col = IdColumn(np.array(numbers, dtype=np.int64))
    n = len(ids)
    rows = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=10)), dtype=np.intp)
    assert col[rows].tolist() == [ids[r] for r in rows]
    assert [col[int(r)] for r in rows] == [ids[r] for r in rows]
    assert col[1:].objects.tolist() == ids[1:]
    assert col.select(rows[rows >= 0]).objects.tolist() == [ids[r] for r in rows if r >= 0]
    assert col.arrow_take(rows[rows >= 0]).to_pylist() == [ids[r] for r in rows if r >= 0]
    assert col.sort_order().tolist() == np.argsort(np.array(ids, dtype=str), kind="stable").tolist()
    assert pickle.loads(pickle.dumps(col)).__getstate__()[2] is not None  # numbers travel
    assert col._objects is None  # no str made for the order: Arrow text, made once
    assert col._arrow is not None
    many = np.arange(5000) % n
    assert col[many].tolist() == [ids[r] for r in many]
    assert col.objects.tolist() == ids


@given(id_lists, st.data())
def test_both_forms_read_alike(ids: list[str], data: st.DataObject) -> None:
    objects, arrow = both(ids)
    n = len(ids)
    rows = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=10)), dtype=np.intp)
    start, stop = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
    for col in (objects, arrow):
        # Rows first: reading every id (`objects`, iteration) makes and keeps the strings.
        assert len(col) == n
        assert col[rows].tolist() == [ids[r] for r in rows]
        assert col.take(np.arange(n) % 2 == 0).tolist() == ids[::2]
        assert [col[int(r)] for r in rows] == [ids[r] for r in rows]
        assert col[np.int64(-1)] == ids[-1]
        assert col[start:stop].objects.tolist() == ids[start:stop]
        assert col[::-2].objects.tolist() == ids[::-2]
        assert col.select(rows[rows >= 0]).objects.tolist() == [ids[r] for r in rows if r >= 0]
        assert col.arrow_take(rows[rows >= 0]).to_pylist() == [ids[r] for r in rows if r >= 0]
        assert pickle.loads(pickle.dumps(col)).objects.tolist() == ids
        assert col.arrow.to_pylist() == ids
        assert (col._objects is None) == (col is arrow)  # no read above made every string
        assert col.objects.tolist() == ids
        assert list(col) == ids


@given(id_lists, st.data())
def test_order_by_id_is_numpys_order_of_str(ids: list[str], data: st.DataObject) -> None:
    """Arrow sorts UTF-8 bytes; numpy sorts code points: for text without surrogates, alike."""
    rows = np.array(data.draw(st.permutations(range(len(ids)))), dtype=np.intp)
    for col in both(ids):
        expected = np.argsort(np.array(ids, dtype=object).astype(str), kind="stable")
        assert col.sort_order().tolist() == expected.tolist()
        within = np.argsort(np.array(ids, dtype=object)[rows].astype(str), kind="stable")
        assert col.sort_order(rows).tolist() == within.tolist()
        # Taken in that order, the column knows it is in order; its order is arange, as a
        # column whose ids come in order finds by one comparison pass.
        ordered = col.select(col.sort_order())
        assert ordered._order is not None
        assert ordered.sort_order().tolist() == list(range(len(ids)))
        assert IdColumn(ordered.objects.copy()).sort_order().tolist() == list(range(len(ids)))


def test_the_order_of_a_column_is_kept_and_read_only() -> None:
    col = IdColumn(pa.array(["c", "a", "b"]))
    first = col.sort_order()
    assert col.sort_order() is first
    assert not first.flags.writeable
    assert IdColumn(col).sort_order() is first  # a column made from it shares it


def test_fixed_width_text_becomes_str() -> None:
    col = IdColumn(np.array(["b", "a"]))
    assert col.objects.dtype == object
    assert col.objects.tolist() == ["b", "a"]
    assert col.sort_order().tolist() == [1, 0]


def test_pickles_one_form() -> None:
    col = IdColumn(pa.array(["a", "b"]))
    col.objects  # noqa: B018 - made, and kept in this process
    state = col.__getstate__()
    assert state[1] is None  # only the Arrow array travels


def test_a_run_never_makes_every_id(tmp_path: Path) -> None:
    """From a CSV file to a result file, ids stay Arrow text (64 MB less at a million)."""
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    population = fa.Population.load(EXAMPLE / "residents.csv", policy)
    evaluation = fa.evaluate(policy, population)
    allocation = fa.allocate(evaluation)
    allocation.to_parquet(tmp_path / "out.parquet")
    allocation.to_csv(tmp_path / "out.csv")
    assert population.id_column._objects is None
    assert evaluation.id_column._objects is None
    # Reading them is still possible, and the same as the file's.
    assert population.ids.tolist() == population.id_column.arrow.to_pylist()


def test_numeric_ids_stay_numbers_until_read() -> None:
    """Neither their text nor Arrow is made to build, evaluate and allocate."""
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    columns = fa.Population.load(EXAMPLE / "residents.csv", policy).to_pandas()
    columns["resident_id"] = np.arange(len(columns), dtype=np.int64) * 7
    population = fa.Population.from_columns({c: columns[c].to_numpy() for c in columns}, policy)
    assert population.id_column._objects is None
    assert population.id_column._arrow is None
    allocation = fa.allocate(fa.evaluate(policy, population))
    served = {population.id_column[int(r)] for r in np.flatnonzero(allocation.served)}
    assert set(allocation.served_ids()) == served
    assert population.id_column._arrow is None
    assert population.ids[:3].tolist() == ["0", "7", "14"]


@pytest.mark.parametrize("bad", ["a\ud800", "\udfffb"])
def test_an_id_with_a_lone_surrogate_is_refused(bad: str) -> None:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    records = fa.Population.load(EXAMPLE / "residents.csv", policy).to_records()[:3]
    records[1]["resident_id"] = bad
    with pytest.raises(fa.PopulationError) as err:
        fa.Population.from_records(records, policy)
    assert [i.code for i in err.value.issues] == ["FA510"]


ID_SCHEMA = fa.Policy.model_validate(
    {
        "policy": {"id": "p", "version": "1", "title": "P"},
        "attributes": {"rid": {"type": "str", "role": "id"}, "age": {"type": "int"}},
    }
)


@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", "", None, "é", "a1"]), min_size=1, max_size=12)
)
def test_id_checks_agree_for_every_input_form(ids: list[str | None]) -> None:
    """Missing and repeated ids are found alike from Python strings and from Arrow text."""
    missing = [i for i, v in enumerate(ids) if not v]
    seen: dict[str, list[int]] = {}
    for i, v in enumerate(ids):
        if v:
            seen.setdefault(v, []).append(i)
    repeated = sorted(i for rows in seen.values() if len(rows) > 1 for i in rows)
    ages = list(range(len(ids)))
    forms = {
        "python": {"rid": ids, "age": ages},
        "arrow": pa.table({"rid": pa.array(ids, type=pa.string()), "age": ages}),
    }
    for form, data in forms.items():
        if not missing and not repeated:
            population = fa.Population.load(data, ID_SCHEMA)
            assert population.ids.tolist() == ids, form
            continue
        with pytest.raises(fa.PopulationError) as err:
            fa.Population.load(data, ID_SCHEMA)
        found = {i.code: i for i in err.value.issues}
        expected = ({"FA507"} if missing else set()) | ({"FA506"} if repeated else set())
        assert set(found) == expected, form
        if missing:
            assert found["FA507"].count == len(missing), form
        if repeated:
            assert found["FA506"].count == len(repeated), form
            assert (
                found["FA506"].ids
                == tuple(f"row {r + 1}" for r in repeated[:5])[: len(found["FA506"].ids)]
            ), form


LEVELS_SCHEMA = fa.Policy.model_validate(
    {
        "policy": {"id": "p", "version": "1", "title": "P"},
        "attributes": {
            "rid": {"type": "str", "role": "id"},
            "g": {"type": "category", "levels": ["female", "male", "other"]},
            "k": {"type": "category", "levels": ["a"], "missing": "default", "default": "a"},
        },
    }
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["female", "male", "other", " male", "fem", None, "", 3, ["x"]]),
            st.sampled_from(["a", None, "b"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_levels_from_python_strings_read_as_through_arrow(
    rows: list[tuple[object, object]],
) -> None:
    """Levels looked up directly (an object array) and through Arrow (a list): the same."""
    g, k = [r[0] for r in rows], [r[1] for r in rows]
    rid = [f"r{i}" for i in range(len(rows))]
    results = []
    for form in (list, lambda v: np.array(v, dtype=object)):
        try:
            pop = fa.Population.from_columns(
                {"rid": rid, "g": form(g), "k": form(k)}, LEVELS_SCHEMA
            )
            results.append(
                ("ok", pop.columns["g"].tolist(), pop.columns["k"].tolist(), pop.filled.keys())
            )
        except fa.PopulationError as e:
            results.append(("error", [(i.code, i.column, i.ids, i.values) for i in e.issues]))
    assert results[0] == results[1]
