"""Instruments: grades as inputs, decision tables, checked completeness, allowed values."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.errors import EvaluationError, FairnessViolation, PolicyError, PopulationError
from fairalloc.testing import CasesError, load_cases, run_cases
from tests.test_engine_oracle import _assert_agrees

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENT = ROOT / "examples" / "elderly-ability" / "policy.yaml"
CASES = ROOT / "examples" / "elderly-ability" / "cases.yaml"

HEAD = """
policy: {id: t, version: "1", title: T}
attributes:
  id: {type: str, role: id}
  a: {type: int, min: 0, max: 10}
  b: {type: int, values: [0, 5, 10]}
  lvl: {type: ordinal, levels: [lo, mid, hi]}
  flag: {type: bool}
"""


def policy(body: str) -> fa.Policy:
    return fa.parse_policy(HEAD + textwrap.dedent(body), filename="t.yaml")


def refused(body: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        policy(body)
    return info.value


ROWS = [
    {"id": "r0", "a": 0, "b": 0, "lvl": "lo", "flag": False},
    {"id": "r1", "a": 7, "b": 10, "lvl": "hi", "flag": True},
    {"id": "r2", "a": 4, "b": 5, "lvl": "mid", "flag": True},
]


# -- grades and totals as inputs --------------------------------------------------------------


GRADED = """
scales:
  dim:
    grades: [{max: 3, grade: low}, {max: 6, grade: mid}, {grade: high}]
    indicators: {x: {points: a}}
  need:
    indicators:
      by_grade: {of: "grade(dim)", lookup: {low: 0, mid: 20, high: 40}}
      by_total: {points: "total(dim) // 2"}
rules:
  eligibility: [{id: not-low, when: "grade(dim) >= mid"}]
score: {terms: [{of: need}]}
"""


def test_a_grade_and_a_total_are_read_by_indicators_and_rules() -> None:
    ev = fa.evaluate(policy(GRADED), ROWS)
    recs = {r["id"]: r for r in ev.to_dicts()}
    assert recs["r1"]["grades"]["dim"] == "high"
    assert recs["r1"]["points"]["need.by_grade"] == 40
    assert recs["r1"]["points"]["need.by_total"] == 3  # 7 // 2
    assert recs["r2"]["points"]["need.by_grade"] == 20
    assert [recs[i]["eligible"] for i in ("r0", "r1", "r2")] == [False, True, True]


def test_reads_through_a_grade_reach_the_protected_attribute_behind_it() -> None:
    body = GRADED.replace("indicators: {x: {points: a}}", "indicators: {x: {points: a}}")
    text = (HEAD + textwrap.dedent(body)).replace(
        "a: {type: int, min: 0, max: 10}", "a: {type: int, min: 0, max: 10, protected: true}"
    )
    with pytest.raises(FairnessViolation) as info:
        fa.parse_policy(text, filename="t.yaml")
    messages = [i.message for i in info.value.issues]
    assert any(
        "rule `not-low` reads protected attribute `a` (read path: rule `not-low` -> grade of"
        " `dim` -> total of `dim` -> indicator `dim.x` -> `a`)" in m
        for m in messages
    )
    assert any("indicator `need.by_grade`" in m for m in messages)


def test_a_cycle_through_grades_is_refused_with_its_place() -> None:
    err = refused("""
        scales:
          one:
            grades: [{max: 3, grade: low}, {grade: high}]
            indicators: {x: {of: "grade(two)", lookup: {low: 0, high: 1}}}
          two:
            grades: [{max: 3, grade: low}, {grade: high}]
            indicators: {y: {points: "total(one)"}}
    """)
    assert "FA422" in err.codes
    issue = next(i for i in err.issues if i.code == "FA422")
    assert "cycle" in issue.message
    assert "grade of `two`" in issue.message
    assert issue.span.line > 0


def test_unknown_scales_and_ungraded_grades_are_named() -> None:
    err = refused("""
        rules:
          eligibility: [{id: e, when: "grade(dmi) == low"}, {id: f, when: "grade(s) == low"}]
        scales:
          s: {indicators: {x: {points: a}}}
    """)
    assert err.codes == ["FA420", "FA421"]
    assert "did you mean `dim`" not in str(err)  # no such scale to suggest
    assert "read its total with `total(s)`" in str(err)


def test_integer_division_floors_and_is_undefined_by_zero() -> None:
    p = policy("""
        rules:
          priority:
            - {id: p, points: "(a - 5) // 2"}
            - {id: q, when: "a > 5", points: "10 // (a - 7)"}
    """)
    ev = fa.evaluate(p, ROWS[:1] + ROWS[2:])
    assert [ev.record(i)["points"]["priority.p"] for i in range(2)] == [-3, -1]  # floor, not trunc
    with pytest.raises(EvaluationError, match="undefined"):
        fa.evaluate(p, ROWS)  # a = 7: 10 // 0


# -- decision tables ---------------------------------------------------------------------------


def test_a_table_gives_points_and_is_traced_row_by_row() -> None:
    p = policy("""
        scales:
          s:
            indicators:
              t:
                table:
                  hit: unique
                  inputs: {level: lvl, busy: flag}
                  rows:
                    - {level: lo, output: 0}
                    - {level: ">= mid", busy: true, output: 10}
                    - {level: [mid, hi], busy: false, output: 5}
    """)
    ev = fa.evaluate(p, ROWS)
    assert [ev.record(i)["points"]["s.t"] for i in range(3)] == [0, 10, 10]
    assert ev.table_rows[:, 0].tolist() == [0, 1, 1]
    col = next(c for c in ev.policy.trace_columns() if c.kind == "row")
    assert col.part == "indicator:s.t"


def test_the_published_table_5_has_gaps_and_overlaps_and_is_refused_naming_them() -> None:
    # MZ/T 039-2013 Table 5, as written: every row of the standard, nothing added, `unique`.
    doc = yaml.safe_load(INSTRUMENT.read_text(encoding="utf-8"))
    table = doc["scales"]["ability"]["grade_table"]
    table["hit"] = "unique"
    table["rows"] = table["rows"][:-2]  # without the two rows the policy adds
    with pytest.raises(PolicyError) as info:
        fa.parse_policy(yaml.safe_dump(doc, allow_unicode=True), filename="table5.yaml")
    gaps = [i for i in info.value.issues if i.code == "FA410"]
    overlaps = [i for i in info.value.issues if i.code == "FA411"]
    assert len(gaps) == 1
    assert gaps[0].message.startswith(
        "no row covers adl = intact, mental = intact, perception = intact, social = severe"
    )
    assert overlaps
    assert all("both match adl = " in i.message for i in overlaps)


def test_an_overlap_between_levels_of_the_standard_is_named() -> None:
    # ADL mildly impaired, mental state able, perception severe: Table 5 says both 1 and 2.
    err = refused("""
        scales:
          s:
            grades: [{grade: mild}, {grade: moderate}]
            indicators: {x: {points: a}}
            grade_table:
              inputs: {mental: lvl, perception: a}
              rows:
                - {mental: [lo, mid], output: mild}
                - {perception: ">= 8", output: moderate}
                - {mental: hi, perception: "< 8", output: mild}
    """)
    assert err.codes == ["FA411"]
    assert err.issues[0].message == (
        "rows 0 and 1 both match mental = lo, perception = 8 under hit policy `unique`"
    )


def test_shadowed_rows_and_bands_are_refused() -> None:
    err = refused("""
        scales:
          s:
            indicators:
              x: {of: a, bands: [{max: 5, points: 1}, {max: 3, points: 2}, {points: 0}]}
              t:
                table:
                  hit: first
                  inputs: {v: b}
                  rows: [{v: "<= 5", output: 1}, {v: 0, output: 2}, {v: 10, output: 3}]
    """)
    assert err.codes == ["FA412", "FA412"]
    assert "band 1 never applies" in err.issues[0].message
    assert "e.g. a = 0, matched by band 0" in err.issues[0].message
    assert "row 1 never applies" in err.issues[1].message


def test_allowed_values_make_bands_complete_without_a_catch_all() -> None:
    p = policy("""
        scales:
          s:
            indicators:
              x:
                of: b
                bands: [{max: 0, points: 0}, {min: 5, max: 5, points: 1}, {min: 10, points: 2}]
    """)
    assert _table_warnings(fa.compile_policy(p)) == []
    err = refused("""
        scales:
          s:
            indicators:
              x:
                of: a
                bands: [{max: 0, points: 0}, {min: 5, max: 5, points: 1}, {min: 10, points: 2}]
    """)
    assert err.codes == ["FA410"]
    assert "no band covers a = 1 (and" in err.issues[0].message


def test_grades_are_checked_over_the_totals_the_scale_can_reach() -> None:
    # b is 0, 5 or 10: totals 0..20 in steps of 5; nothing reaches 1-4, so no gap there.
    p = policy("""
        scales:
          s:
            grades: [{max: 0, grade: none}, {min: 5, max: 10, grade: some}, {min: 15, grade: much}]
            indicators: {x: {points: b}, y: {points: b}}
    """)
    assert _table_warnings(fa.compile_policy(p)) == []
    err = refused("""
        scales:
          s:
            grades: [{max: 0, grade: none}, {min: 6, grade: some}]
            indicators: {x: {points: b}}
    """)
    assert err.codes == ["FA410"]
    assert "no grade covers the total total(s) = 5" in err.issues[0].message


def test_cells_are_checked_against_their_input() -> None:
    err = refused("""
        scales:
          s:
            indicators:
              t:
                table:
                  inputs: {level: lvl, busy: flag}
                  rows:
                    - {level: mdi, output: 1}
                    - {busy: "> true", output: 2}
                    - {level: lo, output: x}
    """)
    assert err.codes == ["FA401", "FA400", "FA402"]
    assert "levels: lo, mid, hi" in str(err)


def test_a_derived_table_gives_a_level_that_rules_compare() -> None:
    p = policy("""
        derived:
          band:
            levels: [low, high]
            table: {hit: first, inputs: {v: a}, rows: [{v: "< 5", output: low}, {output: high}]}
        rules:
          eligibility: [{id: high-only, when: "band >= high"}]
    """)
    ev = fa.evaluate(p, ROWS)
    assert ev.eligible.tolist() == [False, True, False]


# -- allowed values ------------------------------------------------------------------------------


def test_values_outside_the_allowed_ones_are_population_errors() -> None:
    p = policy("scales: {s: {indicators: {x: {points: b}}}}")
    with pytest.raises(PopulationError) as info:
        fa.evaluate(p, [*ROWS, {"id": "bad", "a": 1, "b": 7, "lvl": "lo", "flag": False}])
    issue = info.value.issues[0]
    assert (issue.code, issue.column, issue.ids, issue.values) == ("FA440", "b", ("bad",), ("7",))
    assert issue.valid == "one of: 0, 5, 10"


def test_allowed_values_are_checked_against_the_attribute() -> None:
    text = HEAD.replace("values: [0, 5, 10]", "values: [0, 5, 5.5, 5], min: 1")
    with pytest.raises(PolicyError) as info:
        fa.parse_policy(text, filename="t.yaml")
    messages = [i.message for i in info.value.issues]
    assert info.value.codes == ["FA430"] * 3
    assert any("distinct" in m for m in messages)
    assert any("whole numbers" in m for m in messages)
    assert any("0 outside min/max" in m for m in messages)


# -- the instrument example ----------------------------------------------------------------------


def test_the_instrument_loads_and_its_cases_pass() -> None:
    results = run_cases(CASES)
    assert len(results) >= 12
    assert [r.report() for r in results if not r.passed] == []


def test_the_instrument_explains_its_tables_in_both_languages() -> None:
    p = fa.load_policy(INSTRUMENT)
    cases = {c.name: c for c in load_cases(CASES).cases}
    resident = {"person": "B", **cases["dementia-raises-one-level"].resident}
    text_zh = fa.evaluate(p, [resident]).explain("B", lang="zh-CN").to_text()
    assert "决策表" in text_zh
    assert (
        "老年人能力 (ability)：适用第 17 行（首个符合条件的行），结果为 轻度失能。"
        in text_zh
    )
    assert "适用第 3 行" in text_zh
    assert "（提高一个等级）" in text_zh
    text_en = fa.evaluate(p, [resident]).explain("B").to_text()
    assert "Ability level after adjustment (ability_level): row 3 applies" in text_en
    lines = [" ".join(line.split()) for line in text_en.splitlines()]
    assert "raise = dementia or mental_illness or incidents_30d >= 2 true true" in lines
    # Grades read by a table are shown by their titles, in its value and in its cells.
    assert "base = grade(ability) Mildly disabled Mildly disabled" in lines
    zh_lines = [" ".join(x.split()) for x in text_zh.splitlines()]
    assert "base = grade(ability) 轻度失能 轻度失能" in zh_lines
    facts = fa.evaluate(p, [resident]).explain("B").to_dict()
    assert {t["part"]: t["output"] for t in facts["tables"]} == {
        "derived:ability_level": "moderate",
        "grade:ability.perception": "intact",
        "grade:ability": "mild",
    }


# -- cases files -----------------------------------------------------------------------------


def test_a_failing_case_reports_expected_against_actual(tmp_path: Path) -> None:
    doc = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    doc["policy"] = str(INSTRUMENT)
    doc["cases"] = [
        {
            "name": "wrong",
            "resident": {"stairs": 0},
            "expect": {"grades": {"ability.adl": "intact", "nope": "x"}, "score": 5},
        }
    ]
    path = tmp_path / "cases.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (result,) = run_cases(path)
    assert not result.passed
    assert result.report("cases.yaml").splitlines() == [
        f"case `wrong` (cases.yaml:{result.case.line}): expected and actual differ",
        "  grades.ability.adl  expected intact, got mild",
        "  grades.nope         expected x, got nothing (no grade `nope`)",
        "  score               expected 5, got 10",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: [{name: a}]", "case `a` needs `expect`"),
        ("cases: [{name: a, expect: {grade: x}}]", "cannot expect grade"),
        ("cases: [{name: a, expect: {score: 1}}, {name: a, expect: {score: 1}}]", "used twice"),
        ("cases: [{name: a, pool: p, expect: {served: true}}]", "unknown pool `p`"),
        ("policy: x.yaml\nextra: 1\ncases: []", "unknown section extra"),
    ],
)
def test_bad_cases_files_are_located(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CasesError, match=message) as info:
        load_cases(path)
    assert info.value.where.startswith(f"{path}:")


def test_the_plugin_collects_one_item_per_case(pytester: pytest.Pytester) -> None:
    doc = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    doc["policy"] = str(INSTRUMENT)
    doc["cases"] = [*doc["cases"][:2], {**doc["cases"][2], "expect": {"score": 99}}]
    pytester.makefile(".yaml", cases=yaml.safe_dump(doc, allow_unicode=True))
    result = pytester.runpytest("-p", "no:randomly", "cases.yaml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*case `adl-mild-only`*", "*score  expected 99, got 10*"])


# -- the oracle ----------------------------------------------------------------------------------


def _generated(data: st.DataObject) -> dict[str, Any]:
    """A policy whose score reads a grade, a total and decision tables of generated rows."""
    cell_lvl = st.sampled_from(["-", "lo", "mid", "hi", ["lo", "hi"], ">= mid", "< hi", "lo..mid"])
    cell_a = st.sampled_from(["-", 0, 5, "<= 3", "> 7", "2..6", [1, 9], "!= 4"])
    cell_flag = st.sampled_from(["-", True, False])
    rows = data.draw(
        st.lists(
            st.fixed_dictionaries(
                {"lv": cell_lvl, "n": cell_a, "f": cell_flag, "output": st.integers(-3, 9)}
            ),
            min_size=1,
            max_size=6,
        )
    )
    rows.append({"output": data.draw(st.integers(0, 5))})  # first-hit: a catch-all last
    grade_rows = [
        {"g": g, "f": f, "output": o}
        for g, f, o in data.draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["-", "low", "high", ">= high"]),
                    st.sampled_from(["-", True]),
                    st.sampled_from(["calm", "busy"]),
                ),
                max_size=4,
            )
        )
    ]
    grade_rows.append({"output": "calm"})
    return {
        "policy": {"id": "gen", "version": "1", "title": "generated"},
        "attributes": {
            "id": {"type": "str", "role": "id"},
            "a": {"type": "int", "min": 0, "max": 10},
            "lvl": {"type": "ordinal", "levels": ["lo", "mid", "hi"]},
            "flag": {"type": "bool"},
        },
        "derived": {
            "mood": {
                "levels": ["calm", "busy"],
                "table": {
                    "hit": "first",
                    "inputs": {"g": "grade(dim)", "f": "flag"},
                    "rows": grade_rows,
                },
            }
        },
        "scales": {
            "dim": {
                "grades": [{"max": 3, "grade": "low"}, {"grade": "high"}],
                "indicators": {
                    "t": {
                        "table": {
                            "hit": "first",
                            "inputs": {"lv": "lvl", "n": "a", "f": "flag"},
                            "rows": rows,
                        }
                    }
                },
            },
            "need": {
                "indicators": {
                    "m": {"of": "mood", "lookup": {"calm": 0, "busy": 2.5}},
                    "half": {"points": "total(dim) // 2 + a // 3"},
                }
            },
        },
        "rules": {"eligibility": [{"id": "e", "when": "grade(dim) >= low"}]},
        "ranking": {"tie_break": [{"lottery": {"seed": "s"}}]},
    }


@given(data=st.data())
def test_generated_tables_and_grade_reads_agree_with_the_oracle(data: st.DataObject) -> None:
    doc = _generated(data)
    note(yaml.safe_dump(doc))
    policy = fa.Policy.model_validate(doc)
    try:
        fa.compile_policy(policy)
    except PolicyError as e:
        codes = set(e.codes)
    else:
        codes = set()
    if codes:
        # Generated rows may shadow one another: refused at load, as they must be.
        assert codes <= {"FA412"}
        event("refused: a shadowed row")
        return
    event("evaluated")
    from tests.strategies import residents

    records = data.draw(residents(policy, max_size=12))
    _assert_agrees(policy, copy.deepcopy(records), chunk_size=data.draw(st.integers(1, 13)))


# -- the command line ---------------------------------------------------------------------------


def test_fairalloc_test_runs_cases_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fairalloc.cli import main

    assert main(["test", str(CASES), str(ROOT / "examples" / "elderly-care" / "cases.yaml")]) == 0
    assert capsys.readouterr().out.endswith("22 of 22 cases passed\n")
    doc = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    doc["policy"] = str(INSTRUMENT)
    doc["cases"] = [{"name": "wrong", "resident": {}, "expect": {"score": 1}}]
    bad = tmp_path / "cases.yaml"
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["test", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "case `wrong`" in out
    assert "score  expected 1, got 0" in out
    assert out.endswith("0 of 1 case passed\n")
    bad.write_text("cases: [{name: a}]", encoding="utf-8")
    assert main(["test", str(bad)]) == 1
    assert "FA450 case `a` needs `expect`" in capsys.readouterr().err


def test_fairalloc_test_takes_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.cli import main

    assert main(["test", str(ROOT / "examples")]) == 0
    assert capsys.readouterr().out.endswith("22 of 22 cases passed\n")
    assert main(["test", str(tmp_path)]) == 2
    assert "FA622" in capsys.readouterr().err


def _table_warnings(cp: Any) -> list[Any]:
    """The warnings of bands, lookups, grades and tables (not FA313, grounds left unstated)."""
    return [w for w in cp.warnings if w.code != "FA313"]


def test_validate_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc.cli import main

    path = tmp_path / "p.yaml"
    path.write_text(
        HEAD + "scales: {s: {indicators: {b: {of: 'a * 1', bands: [{min: 0, points: 1}]}}}}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(": ok (t v1)")
    assert "FA410 no band covers a * 1 = -1 (its range is not declared" in out[1]


def test_an_indicator_table_shows_its_row_in_the_explanation() -> None:
    p = policy("""
        scales:
          s:
            indicators:
              t:
                table:
                  hit: first
                  inputs: {level: lvl}
                  rows: [{level: hi, output: 9}, {output: 1}]
    """)
    ev = fa.evaluate(p, ROWS)
    line = ev.explain("r1").to_text().split("Needs assessment")[1].splitlines()[3]
    assert "table row 1" in line
    assert "9" in line
    assert "决策表第 2 行" in ev.explain("r0").to_text("zh-CN")


def test_counterfactuals_try_only_allowed_values() -> None:
    # b is 0, 5 or 10; from 0 the nearest change upwards is 5, never 1..4.
    p = policy("""
        scales: {s: {indicators: {x: {points: b}}}}
        allocation: {capacity: 1}
    """)
    doc = p.model_dump(by_alias=True, exclude_none=True)
    doc["attributes"]["b"]["changeable"] = True
    doc["attributes"]["b"]["need"] = "higher"
    p = fa.Policy.model_validate(doc)
    rows = [{**ROWS[0], "id": "low"}, {**ROWS[2], "id": "mid", "b": 5}]
    e = fa.allocate(p, rows).explain("low")
    (cf,) = e.facts.counterfactuals
    assert cf.after == 10  # never 1..4 or 6..9; at 5 it only ties with the other resident
