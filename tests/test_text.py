"""The one text-table renderer and number formatter of every text report."""

from __future__ import annotations

from fairalloc._text import display_width, fixed, number, text_table, value


def test_wide_characters_take_two_columns() -> None:
    assert display_width("需求评估") == 8
    assert display_width("need") == 4
    assert display_width("e\u0301") == 1  # a combining accent takes no column


def test_numbers_are_written_one_way() -> None:
    assert number(40.0) == "40"
    assert number(7.15) == "7.15"
    assert number(1 / 3) == "0.333333"
    assert number(-0.0) == "0"
    assert number(-1e-9) == "0"
    assert number(2.5, sign=True) == "+2.5"
    assert number(0.0, sign=True) == "0"
    assert fixed(-0.001) == "0.00"
    assert fixed(-0.001, sign=True) == "0.00"
    assert fixed(1.5, sign=True) == "+1.50"
    assert value(None) == "—"
    assert value(True) == "true"


def test_numeric_columns_and_their_headings_align_right_with_wide_text() -> None:
    lines = text_table(["量表", "score"], [["需求", "7.5"], ["need", "12"]])
    assert lines == ["量表  score", "需求    7.5", "need     12"]
    widths = {display_width(line) for line in lines}
    assert widths == {11}
