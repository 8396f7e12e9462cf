"""The population input boundary: every file or table a user can hand in gives a population or
one located PopulationError, never a traceback, a silent change or a wrong line."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc.errors import PopulationError, PopulationIssue
from tests.test_population import GOOD, SCHEMA

HEAD = "rid,age,income,alone,gender,need,since,kids"
ROW = "{rid},70,10.5,true,female,high,2001-01-01,0"


def csv(tmp_path: Path, text: str | bytes, name: str = "r.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def problems(data: Any, **kw: Any) -> dict[str, PopulationIssue]:
    with pytest.raises(PopulationError) as info:
        fa.Population.load(data, SCHEMA, **kw)
    return {f"{i.code}:{i.column}": i for i in info.value.issues}


# -- cells of any length ------------------------------------------------------------------------


def test_a_cell_longer_than_131072_characters_in_an_ignored_column(tmp_path: Path) -> None:
    big = "x" * 200_000
    path = csv(tmp_path, f"{HEAD},note\n{ROW.format(rid='a')},{big}\n{ROW.format(rid='b')},\n")
    pop = fa.Population.load(path, SCHEMA)
    assert list(pop.ids) == ["a", "b"]
    assert pop.ignored_columns == ("note",)


def test_a_huge_cell_in_a_read_column_is_a_located_problem(tmp_path: Path) -> None:
    big = "y" * 300_000
    path = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='a').replace('female', big)}\n")
    found = problems(path)
    assert found["FA504:gender"].ids == ("a",)
    assert found["FA504:gender"].values[0].endswith("...")


# -- column names -------------------------------------------------------------------------------


def test_a_column_named_twice_in_a_csv_header_names_both_positions(tmp_path: Path) -> None:
    path = csv(tmp_path, f"{HEAD},age\n{ROW.format(rid='a')},200\n")
    found = problems(path)
    assert list(found) == ["FA509:age"]
    assert found["FA509:age"].message == "the same column name at positions 2 and 9"


def test_a_column_named_twice_after_spaces_are_removed(tmp_path: Path) -> None:
    path = csv(tmp_path, f"{HEAD}, age \n{ROW.format(rid='a')},200\n")
    assert problems(path)["FA509:age"].message.endswith("positions 2 and 9")


def test_a_dataframe_with_a_column_twice() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(GOOD)
    df.insert(3, "age", [1, 2, 3], allow_duplicates=True)
    found = problems(df)
    assert found["FA509:age"].message == "the same column name at positions 2 and 4"


def test_an_arrow_table_and_a_mapping_with_a_column_twice() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table(GOOD).append_column("age", pa.array([1, 2, 3]))
    assert "FA509:age" in problems(table)
    assert problems({**GOOD, 1: [1, 2, 3], "1": [1, 2, 3]})["FA509:1"].message.endswith(
        "positions 9 and 10"
    )


# -- lines -------------------------------------------------------------------------------------


def test_line_numbers_count_the_lines_inside_quoted_cells(tmp_path: Path) -> None:
    path = csv(
        tmp_path,
        f'{HEAD},note\n{ROW.format(rid="a")},"two\nlines"\n'
        f'{ROW.format(rid="")},"three\r\nmore\nlines"\n{ROW.format(rid="b")},x\n'
        f"{ROW.format(rid='b')},y\n",
    )
    found = problems(path)
    assert found["FA507:rid"].ids == ("line 4",)
    assert found["FA506:rid"].ids == ("line 7", "line 8")


def test_blank_lines_are_skipped_and_do_not_shift_lines(tmp_path: Path) -> None:
    path = csv(tmp_path, f"{HEAD}\n\n{ROW.format(rid='a')}\n\r\n{ROW.format(rid='')}\n\n\n\n")
    assert problems(path)["FA507:rid"].ids == ("line 5",)
    trailing = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='a')}\n\n\n", "t.csv")
    assert list(fa.Population.load(trailing, SCHEMA).ids) == ["a"]


def test_every_ragged_row_is_named_by_its_line(tmp_path: Path) -> None:
    path = csv(
        tmp_path,
        f'{HEAD}\n{ROW.format(rid="a")},extra\n"b\nc",1\n{ROW.format(rid="d")}\n1,2\n',
    )
    with pytest.raises(PopulationError) as info:
        fa.Population.load(path, SCHEMA)
    (issue,) = info.value.issues
    assert (issue.code, issue.message) == ("FA502", "rows with other than 8 cells")
    assert issue.ids == ("line 2", "line 3", "line 6")
    assert issue.values == ("9", "2", "2")


def test_an_unterminated_quote_is_a_located_ragged_row(tmp_path: Path) -> None:
    path = csv(tmp_path, f'{HEAD}\n{ROW.format(rid="a")}\n"b,70\n')
    with pytest.raises(PopulationError) as info:
        fa.Population.load(path, SCHEMA)
    assert info.value.issues[0].ids == ("line 3",)


# -- ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rid", ["R1 ", " R1", "R1\t", "R\x1b[31m1", "R\u202e1", "R1\u00a0", "  "])
def test_ids_with_spaces_around_or_control_characters_are_refused(tmp_path: Path, rid: str) -> None:
    path = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='R1')}\n{ROW.format(rid=rid)}\n")
    found = problems(path)
    assert found["FA510:rid"].ids == ("line 3",)
    assert found["FA510:rid"].values == (repr(rid),)
    data = dict(GOOD, rid=["a", rid, "c"])
    assert problems(data)["FA510:rid"].ids == ("row 2",)


def test_a_refused_id_does_not_name_its_row_elsewhere(tmp_path: Path) -> None:
    path = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='R1 ').replace('female', 'femal')}\n")
    found = problems(path)
    assert found["FA504:gender"].ids == ("line 2",)


# -- records ------------------------------------------------------------------------------------


def test_a_none_record_names_its_row() -> None:
    good = {k: v[0] for k, v in GOOD.items()}
    with pytest.raises(PopulationError) as info:
        fa.Population.load([good, None, good, 3], SCHEMA)
    (issue,) = info.value.issues
    assert (issue.code, issue.ids, issue.count) == ("FA514", ("row 2", "row 4"), 2)


# -- numbers: ASCII digits only ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["１００", "৪০", "1_000", "nan", "inf", "-Infinity", "0x10", "1,5"]
)
def test_numbers_in_csv_are_ascii_digits_only(tmp_path: Path, text: str) -> None:
    quoted = f'"{text}"'
    path = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='a').replace(',10.5,', f',{quoted},')}\n")
    found = problems(path)
    assert found["FA502:income"].ids == ("a",)
    assert found["FA502:income"].values == (repr(text),)


def test_numbers_in_csv_that_are_fine(tmp_path: Path) -> None:
    rows = [("a", " 7 ", "+1.5"), ("b", "007", ".5"), ("c", "1e2", "5."), ("d", "70.0", "1E-2")]
    text = "\n".join(
        ROW.format(rid=r).replace(",70,", f",{age},").replace(",10.5,", f",{inc},")
        for r, age, inc in rows
    )
    pop = fa.Population.load(csv(tmp_path, f"{HEAD}\n{text}\n"), SCHEMA)
    assert pop.columns["age"].tolist() == [7, 7, 100, 70]
    assert pop.columns["age"].dtype == np.int64
    assert pop.columns["income"].tolist() == [1.5, 0.5, 5.0, 0.01]


def test_whole_numbers_beyond_2_53_are_refused_exactly(tmp_path: Path) -> None:
    path = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='a').replace(',0', ',9007199254740993')}\n")
    assert problems(path)["FA508:kids"].ids == ("a",)


# -- encodings and reader errors ------------------------------------------------------------


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    text = f"{HEAD}\n{ROW.format(rid='a')}\n{ROW.format(rid='b')}\n".encode()
    path = csv(tmp_path, text.replace(b"female", b"f\xe9male").replace(b"f\xe9male", b"female", 1))
    with pytest.raises(PopulationError) as info:
        fa.Population.load(path, SCHEMA)
    (issue,) = info.value.issues
    assert (issue.code, issue.ids) == ("FA511", ("line 3",))
    assert "not UTF-8 text" in issue.message


def test_other_encodings_are_read_when_named(tmp_path: Path) -> None:
    text = f"{HEAD}\n{ROW.format(rid='é1')}\n"
    path = csv(tmp_path, text.encode("latin-1"))
    assert list(fa.Population.from_csv(path, SCHEMA, encoding="latin-1").ids) == ["é1"]
    bad = csv(tmp_path, text.encode("utf-8") + b"\xff\xfe", "b.csv")
    with pytest.raises(PopulationError) as info:
        fa.Population.from_csv(bad, SCHEMA, encoding="ascii")
    assert info.value.issues[0].code == "FA511"
    assert info.value.issues[0].ids == ("line 2",)


def test_an_unknown_encoding(tmp_path: Path) -> None:
    path = csv(tmp_path, f"{HEAD}\n{ROW.format(rid='a')}\n")
    with pytest.raises(PopulationError) as info:
        fa.Population.from_csv(path, SCHEMA, encoding="no-such-codec")
    assert info.value.issues[0].code == "FA513"


def test_empty_files(tmp_path: Path) -> None:
    for text in ["", "\n\n", "\ufeff", "\r\n"]:
        found = problems(csv(tmp_path, text))
        assert list(found) == ["FA501:"]


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = csv(tmp_path, "\ufeff" + f"{HEAD}\n{ROW.format(rid='a')}\n")
    assert list(fa.Population.from_csv(path, SCHEMA).ids) == ["a"]


# -- parquet ----------------------------------------------------------------------------------


def test_parquet_files_are_read(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table(GOOD), path)
    pop = fa.Population.load(path, SCHEMA)
    assert pop.to_records() == fa.Population.load(GOOD, SCHEMA).to_records()
    assert pop.source == str(path)


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = csv(tmp_path, "not parquet at all", "r.parquet")
    found = problems(path)
    assert found["FA512:"].ids == ("the whole file",)


# -- typed columns ------------------------------------------------------------------------------


def test_integer_columns_stay_integers_and_numeric_ids_become_text() -> None:
    data = dict(GOOD, rid=np.array([10, 2, 30]), age=np.array([70, 81, 64], dtype=np.int32))
    pop = fa.Population.from_columns(data, SCHEMA)
    assert list(pop.ids) == ["10", "2", "30"]
    assert pop.columns["age"].dtype == np.int64
    assert pop.decode("age").tolist() == [70, 81, 64]
    assert pop.replace("age", pop.columns["age"] + 1).columns["age"].dtype == np.int64
    floats = dict(data, rid=np.array([1.0, 2.5, np.nan]))
    found = problems(floats)
    assert found["FA502:rid"].ids == ("row 2", "row 3")


def test_populations_pickle(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"
    policy = fa.load_policy(example / "policy.yaml")
    pop = fa.Population.load(example / "residents.csv", policy)
    fa.evaluate(policy, pop)  # the policy now holds compiled code, which is not pickled
    back = pickle.loads(pickle.dumps(pop))
    assert back.to_records() == pop.to_records()
    assert list(back.filled) == list(pop.filled)
    assert back.schema.model_dump() == pop.schema.model_dump()
