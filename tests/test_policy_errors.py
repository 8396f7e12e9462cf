"""Every class of policy error: its code, message, hint and location in the file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import fairalloc as fa
from fairalloc.errors import FairnessViolation, PolicyError, PolicyIssue

HEAD = """\
fairalloc: 1
policy: {id: t, version: "1", title: Test, effective: 2026-01-01}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 130, protected: true}
  health_score: {type: float, min: 0, max: 100}
  hardship: {type: ordinal, levels: [none, low, high]}
  district: {type: category, levels: [north, south]}
  alone: {type: bool}
"""


def load(body: str) -> fa.Policy:
    return fa.parse_policy(HEAD + textwrap.dedent(body), filename="p.yaml")


def issues_of(body: str) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as info:
        load(body)
    return list(info.value.issues)


def one(body: str) -> PolicyIssue:
    issues = issues_of(body)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def test_valid_policy_loads() -> None:
    p = load("""
        rules:
          priority: [{id: p, points: "health_score / 10"}]
    """)
    assert p.policy.id == "t"


def test_unknown_attribute_suggests_name_with_line_and_column() -> None:
    issue = one("""
        rules:
          eligibility:
            - {id: e, when: "helth_score > 3"}
    """)
    assert issue.code == "FA202"
    assert "unknown name `helth_score`" in issue.message
    assert issue.hint == "did you mean `health_score`?"
    assert (issue.span.file, issue.span.line, issue.span.column) == ("p.yaml", 13, 22)
    assert str(issue).startswith("p.yaml:13:22: FA202 ")
    # The caret sits under the name inside the quoted text.
    assert "\n    helth_score > 3\n    ^" in str(issue)


def test_offset_inside_expression_is_mapped_to_column() -> None:
    issue = one("""
        rules:
          priority:
            - id: p
              points: "10 if alone else helth_score"
    """)
    assert issue.span.line == 14
    assert issue.span.column == 33  # the column of `helth_score` inside the quotes


def test_block_scalar_expression_location() -> None:
    issue = one("""
        rules:
          priority:
            - id: p
              points: >-
                10 if alone
                else bogus
    """)
    assert issue.code == "FA202"
    assert (issue.span.line, issue.span.column) == (16, 14)


def test_all_errors_are_reported_together() -> None:
    issues = issues_of("""
        rules:
          eligibility:
            - {id: a, when: "nope > 1"}
            - {id: b, when: "health_score +"}
          priority:
            - {id: c, points: "alone"}
    """)
    assert [i.code for i in issues] == ["FA202", "FA201", "FA203"]
    assert [i.span.line for i in issues] == [13, 14, 16]


def test_type_errors() -> None:
    issue = one("""
        rules:
          eligibility: [{id: e, when: "district < south"}]
    """)
    assert issue.code == "FA203"
    assert "has none" in issue.message
    assert "ordinal" in issue.hint
    issue = one("""
        rules:
          priority: [{id: p, points: "alone + 1"}]
    """)
    assert "`+` needs numbers" in issue.message
    assert "1 if CONDITION else 0" in issue.hint
    issue = one("""
        rules:
          eligibility: [{id: e, when: "health_score"}]
    """)
    assert "expected a bool" in issue.message


def test_unknown_level_suggests_level() -> None:
    issue = one("""
        rules:
          eligibility: [{id: e, when: "hardship in [low, hihg]"}]
    """)
    assert issue.code == "FA204"
    assert "`hihg` is not a level of `hardship`" in issue.message
    assert issue.hint == "did you mean `high`?"


def test_ordinal_comparison_with_bare_level_is_fine() -> None:
    load("""
        rules:
          eligibility: [{id: e, when: "hardship >= low and district == 'north'"}]
    """)


def test_reading_the_id_is_refused() -> None:
    issue = one("""
        ranking:
          tie_break: [{by: "id"}]
    """)
    assert issue.code in ("FA205", "FA202")
    assert "resident id" in issue.message


def test_unknown_field_and_duplicate_key() -> None:
    issue = one("""
        rules:
          eligibility: [{id: e, when: "alone", titel: x}]
    """)
    assert issue.code == "FA110"
    assert issue.hint == "did you mean `title`?"
    assert issue.span.line == 12
    # A field of another section is not suggested as itself.
    issue = one("""
        ranking:
          tie_break: [{value: alone}]
    """)
    assert issue.code == "FA110"
    assert "`value` is a field of another section" in issue.hint
    with pytest.raises(PolicyError) as info:
        fa.parse_policy(HEAD + "attributes: {}\n", filename="d.yaml")
    assert info.value.issues[0].code == "FA102"
    assert "first on line 3" in info.value.issues[0].message


def test_yaml_syntax_error_has_location() -> None:
    with pytest.raises(PolicyError) as info:
        fa.parse_policy("policy: {id: t\nattributes: [", filename="bad.yaml")
    issue = info.value.issues[0]
    assert issue.code == "FA101"
    assert issue.span.line >= 1
    assert issue.span.column >= 1


def test_missing_field_and_yaml_boolean_hint() -> None:
    issues = issues_of("""
        rules:
          exclusions: [{id: x, when: "alone"}]
    """)
    assert issues[0].code == "FA111"
    assert "`reason`" in issues[0].message
    with pytest.raises(PolicyError) as info:
        fa.parse_policy(
            HEAD.replace("levels: [north, south]", "levels: [yes, no]"), filename="b.yaml"
        )
    assert "quote" in info.value.issues[0].hint


def test_lookup_must_cover_levels() -> None:
    issues = issues_of("""
        scales:
          need:
            indicators:
              h: {of: hardship, lookup: {none: 0, lwo: 1, high: 2}}
    """)
    assert [i.code for i in issues] == ["FA144", "FA145"]
    assert issues[0].hint == "did you mean `low`?"
    assert "low" in issues[1].message


def test_bands_need_numbers_and_catch_all_last() -> None:
    issues = issues_of("""
        scales:
          need:
            indicators:
              h: {of: health_score, bands: [{points: 1}, {max: 3, points: 2}]}
              d: {of: district, bands: [{points: 1}]}
    """)
    assert sorted(i.code for i in issues) == ["FA141", "FA142"]


def test_unjustified_protected_read_names_rule_attribute_and_path() -> None:
    with pytest.raises(FairnessViolation) as info:
        load("""
            derived:
              senior: "age >= 60"
            rules:
              priority: [{id: old-first, points: "5 if senior else 0"}]
        """)
    issue = info.value.issues[0]
    assert issue.code == "FA300"
    assert "rule `old-first`" in issue.message
    assert "`age`" in issue.message
    assert "derived `senior` -> `age`" in issue.message
    assert issue.span.line == 14


def test_justified_use_allows_the_read_and_must_be_real() -> None:
    load("""
        justified_uses:
          - {attribute: age, rule: sixty, why: defined for 60+, source: "§2.3.3"}
        rules:
          eligibility: [{id: sixty, when: "age >= 60"}]
    """)
    issue = one("""
        justified_uses:
          - {attribute: age, rule: sixty, why: defined for 60+, source: "§2.3.3"}
        rules:
          eligibility: [{id: sixty, when: "alone"}]
    """)
    assert issue.code == "FA304"
    issues = issues_of("""
        justified_uses:
          - {attribute: age, rule: sixtyy, why: w, source: s}
        rules:
          eligibility: [{id: sixty, when: "age >= 60"}]
    """)
    # Both problems at once: the misspelt use, and so the read it fails to justify.
    assert [i.code for i in issues] == ["FA303", "FA300"]
    assert issues[0].hint == "did you mean `sixty`?"


def test_derived_cycle_is_reported() -> None:
    issues = issues_of("""
        derived:
          a: "b + 1"
          b: "a + 1"
        rules:
          priority: [{id: p, points: "a"}]
    """)
    assert [i.code for i in issues] == ["FA206"]
    assert "cycle: a -> b -> a" in issues[0].message


def test_names_must_be_unique_across_sections_and_rule_ids() -> None:
    issues = issues_of("""
        parameters: {age: 3}
        rules:
          eligibility: [{id: r, when: "alone"}]
          exclusions: [{id: r, when: "alone", reason: x}]
    """)
    assert sorted(i.code for i in issues) == ["FA121", "FA122"]


def test_score_terms_are_checked() -> None:
    issue = one("""
        scales:
          need: {indicators: {h: {points: "health_score"}}}
        score: {terms: [{of: nede}]}
    """)
    assert issue.code == "FA150"
    assert issue.hint == "did you mean `need`?"


def test_dated_parameter_without_value_in_force() -> None:
    issue = one("""
        parameters:
          cap: {values: [{from: 2027-01-01, value: 3}]}
        rules:
          priority: [{id: p, points: "cap"}]
    """)
    assert issue.code == "FA130"


def test_json_and_toml_policies(tmp_path: Path) -> None:
    import json

    doc = {
        "fairalloc": 1,
        "policy": {"id": "j", "version": "1", "title": "J"},
        "attributes": {"id": {"type": "str", "role": "id"}, "x": {"type": "int"}},
        "rules": {"priority": [{"id": "p", "points": "x + y"}]},
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc, indent=2))
    with pytest.raises(PolicyError) as info:
        fa.load_policy(path)
    issue = info.value.issues[0]
    assert issue.code == "FA202"
    assert (issue.span.line, issue.span.column) == (21, 24)
    toml = tmp_path / "p.toml"
    toml.write_text(
        textwrap.dedent("""
        fairalloc = 1
        [policy]
        id = "t"
        version = "1"
        title = "T"
        [attributes.id]
        type = "str"
        role = "id"
        [attributes.x]
        type = "int"
        colour = "red"
    """)
    )
    with pytest.raises(PolicyError) as info:
        fa.load_policy(toml)
    issue = info.value.issues[0]
    assert issue.code == "FA110"
    assert issue.span.line == 12
    assert issue.span.path == "attributes.x.colour"


def test_unknown_suffix() -> None:
    with pytest.raises(PolicyError, match="cannot tell the format"):
        fa.load_policy("policy.txt")


def test_json_schema_exports() -> None:
    schema = fa.json_schema()
    assert schema["title"] == "fairalloc policy"
    assert "attributes" in schema["properties"]
    assert "Attribute" in schema["$defs"]


MATCHING = """
        allocation:
          matching:
            resources: [{id: gym, capacity: 1}, {id: gym, capacity: 2}]
            preferences: [district]
"""


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ("parameters: {and: 1}\n", "FA120", "`and` is a reserved word"),
        (
            """
        scales:
          s:
            grades: [{min: 1, grade: hi}, {grade: hi}]
            indicators: {a: {points: "1"}}
        """,
            "FA140",
            "repeats a grade name",
        ),
        (
            """
        scales:
          s: {indicators: {a: {of: health_score, lookup: {x: 1}}}}
        """,
            "FA143",
            "`lookup` needs a category",
        ),
        (
            """
        scales:
          s: {indicators: {a: {points: "1"}}}
        score: {terms: [{of: s}, {of: s}]}
        """,
            "FA151",
            "appears twice",
        ),
        (
            """
        ranking:
          tie_break: [{by: district}]
        """,
            "FA160",
            "a tie-break needs an order",
        ),
        (MATCHING.replace("[district]", "[hardship]"), "FA170", "resource ids must be distinct"),
        (
            MATCHING.replace("{id: gym, capacity: 2}", "{id: pool, capacity: 2}").replace(
                "[district]", "[health_score]"
            ),
            "FA171",
            "must be a category attribute",
        ),
        (
            """
        allocation:
          capacity: 1
          lottery: {seed: s, weight: "alone"}
          mechanism: lottery
        """,
            "FA174",
            "must be a number or an ordinal",
        ),
        (
            """
        justified_uses: [{attribute: agee, rule: r, why: w, source: s}]
        rules:
          eligibility: [{id: r, when: "alone"}]
        """,
            "FA301",
            "unknown attribute `agee`",
        ),
        (
            """
        justified_uses: [{attribute: alone, rule: r, why: w, source: s}]
        rules:
          eligibility: [{id: r, when: "alone"}]
        """,
            "FA302",
            "`alone` is not protected",
        ),
    ],
)
def test_cross_reference_errors(body: str, code: str, fragment: str) -> None:
    issues = issues_of(body)
    found = [i for i in issues if i.code == code]
    assert found, [str(i) for i in issues]
    assert fragment in found[0].message
    assert found[0].span.line > 0


def test_protected_preferences_are_refused() -> None:
    text = HEAD.replace(
        "district: {type: category, levels: [north, south]}",
        "district: {type: category, levels: [gym, none], protected: true}",
    )
    with pytest.raises(PolicyError) as info:
        fa.parse_policy(
            text
            + textwrap.dedent("""
            allocation:
              matching:
                resources: [{id: gym, capacity: 1}]
                preferences: [district]
            ranking: {tie_break: [{lottery: {seed: s}}]}
        """),
            filename="p.yaml",
        )
    assert "FA173" in info.value.codes


def test_not_a_mapping_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        fa.parse_policy("- just\n- a list\n", filename="l.yaml")
    assert info.value.codes == ["FA103"]
    with pytest.raises(PolicyError) as info:
        fa.load_policy(tmp_path / "policy.txt")
    assert info.value.codes == ["FA100"]
    with pytest.raises(PolicyError) as info:
        fa.parse_policy(HEAD.replace("max: 130", "max: lots"), filename="t.yaml")
    assert info.value.codes == ["FA112"]
    assert "age.max" in info.value.issues[0].message
