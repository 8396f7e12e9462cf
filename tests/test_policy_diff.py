"""The structural diff of two policy documents: items matched by id, order where it counts."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.analysis import Change, policy_diff

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care" / "policy.yaml"
RAW: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
POLICY = fa.Policy.model_validate(RAW)


def variant(edit: Any) -> fa.Policy:
    doc = copy.deepcopy(RAW)
    edit(doc)
    return fa.Policy.model_validate(doc)


def described(p: fa.Policy) -> list[str]:
    return [c.describe() for c in policy_diff(POLICY, p).changes]


def test_a_policy_and_itself_say_the_same() -> None:
    diff = policy_diff(POLICY, POLICY)
    assert diff.empty
    assert not diff
    assert diff.changes == ()
    assert "say the same" in diff.to_text()
    assert diff.to_dict() == {
        "before": "elderly-care-places v2026.1",
        "after": "elderly-care-places v2026.1",
        "changes": [],
        "affects_outcomes": False,
        "unjustified_reads": [],
    }


def test_reordering_unordered_items_is_no_change() -> None:
    def shuffle(doc: dict[str, Any]) -> None:
        doc["attributes"] = dict(reversed(list(doc["attributes"].items())))
        doc["parameters"] = dict(reversed(list(doc["parameters"].items())))
        doc["rules"]["eligibility"].reverse()
        doc["justified_uses"].reverse()
        family = doc["scales"]["need"]["scales"]["family"]
        family["indicators"] = dict(reversed(list(family["indicators"].items())))
        doc["scales"]["need"]["scales"] = dict(
            reversed(list(doc["scales"]["need"]["scales"].items()))
        )
        # Spelt-out defaults are no change either.
        doc["rules"]["priority"][0]["when"] = True
        doc["allocation"]["reserve_mode"] = "precedence"

    assert policy_diff(POLICY, variant(shuffle)).empty


PARAMETERS = {
    "min_age": st.integers(0, 130).filter(lambda v: v != 60),
    "waiting_points_per_month": st.floats(0.01, 5).filter(lambda v: v != 0.5),
    "waiting_cap_points": st.integers(1, 40).filter(lambda v: v != 12),
    "residence_cutoff": st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)).filter(
        lambda d: d != dt.date(2025, 12, 31)
    ),
}
READERS = {
    "min_age": "rule `aged-60-plus`",
    "waiting_points_per_month": "rule `waiting-time`",
    "waiting_cap_points": "rule `waiting-time`",
    "residence_cutoff": "rule `registered-resident`",
}


@settings(max_examples=30)
@given(st.sampled_from(sorted(PARAMETERS)).flatmap(lambda n: st.tuples(st.just(n), PARAMETERS[n])))
def test_one_parameter_changed_is_the_only_change(change: tuple[str, Any]) -> None:
    name, value = change
    new = variant(lambda doc: doc["parameters"][name].update(value=value))
    (only,) = policy_diff(POLICY, new).changes
    assert (only.section, only.item, only.field, only.kind) == (
        "parameters",
        name,
        "value",
        "changed",
    )
    shown = value.isoformat() if isinstance(value, dt.date) else value
    assert only.new == shown
    assert only.affects_outcomes
    assert only.note == f"read by {READERS[name]}"


def test_dated_values_are_compared_by_date() -> None:
    def edit(doc: dict[str, Any]) -> None:
        values = doc["parameters"]["waiting_cap_points"]["values"]
        values[0]["value"] = 18
        values.append({"from": dt.date(2027, 1, 1), "value": 20})

    assert described(variant(edit)) == [
        "parameter `waiting_cap_points`: value from 2026-07-01: 15 → 18; read by rule"
        " `waiting-time`",
        "parameter `waiting_cap_points`: value from 2027-01-01: added (20); read by rule"
        " `waiting-time`",
    ]


def test_parameters_read_through_derived_values_name_their_readers() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["parameters"]["per_month"] = 30
        doc["derived"]["months_waited"]["expr"] = "waiting_days / per_month"

    assert described(variant(edit)) == [
        "parameter `per_month`: added (value: 30); read by rule `waiting-time`",
        "derived value `months_waited`: expr `waiting_days / 30` → `waiting_days / per_month`;"
        " read by rule `waiting-time`",
    ]


def _adl_bands(doc: dict[str, Any]) -> None:
    # The example grades the Barthel index with a decision table; bands are diffed here.
    doc["scales"]["need"]["scales"]["health"]["indicators"]["adl"] = {
        "of": "adl_score",
        "bands": [
            {"max": 40, "points": 40},
            {"max": 60, "points": 30},
            {"max": 90, "points": 15},
            {"points": 0},
        ],
    }


def test_scales_indicators_and_weights() -> None:
    def edit(doc: dict[str, Any]) -> None:
        _adl_bands(doc)
        need = doc["scales"]["need"]
        need["scales"]["family"]["weight"] = 1.2
        need["scales"]["economic"]["indicators"]["hardship"]["lookup"]["dibao"] = 12
        need["scales"]["health"]["indicators"]["adl"]["bands"][0]["points"] = 45
        need["grades"][0]["min"] = 75
        cognition = need["scales"]["health"]["indicators"].pop("cognition")
        need["scales"]["family"]["indicators"]["cognition"] = cognition

    changes = policy_diff(variant(_adl_bands), variant(edit)).changes
    by_item = {(c.section, c.item, c.field): c for c in changes}
    assert by_item[("scales", "need.family", "weight")].new == 1.2
    assert by_item[("indicators", "need.economic.hardship", "lookup.dibao")].old == 10
    assert by_item[("indicators", "need.family.cognition", None)].kind == "moved"
    grades = by_item[("scales", "need", "grades")]
    assert grades.describe().startswith("scale `need`: grades ≥70: severe; ≥40: moderate;")
    assert "→ ≥75: severe" in grades.describe()
    adl = by_item[("indicators", "need.health.adl", "bands")]
    assert "≤40: 40; ≤60: 30" in adl.describe()
    assert "→ ≤40: 45; ≤60: 30" in adl.describe()
    assert len(changes) == 5


def test_rules_are_matched_by_id_and_order_counts_only_where_it_decides() -> None:
    def edit(doc: dict[str, Any]) -> None:
        rules = doc["rules"]
        rules["eligibility"][0]["when"] = "age >= min_age + 5"
        rules["eligibility"].reverse()  # no change: every eligibility rule must hold
        rules["exclusions"].insert(0, {"id": "fit", "when": "adl_score > 99", "reason": "Fit"})
        rules["exclusions"].append({"id": "gone", "when": "waiting_days > 3000", "reason": "Old"})
        rules["exclusions"][1]["title"] = "Holds a place"

    before = variant(
        lambda doc: doc["rules"]["exclusions"].append(
            {"id": "fit", "when": "adl_score > 99", "reason": "Fit"}
        )
    )
    changes = policy_diff(before, variant(edit)).changes
    assert [c.describe() for c in changes] == [
        "eligibility rule `aged-60-plus`: when `age >= min_age` → `age >= min_age + 5`",
        "exclusion `already-placed`: title {en: Already holds a place, zh-CN: 已有床位}"
        " → Holds a place (documentation only)",
        "exclusion `gone`: added (when: `waiting_days > 3000`)",
        "exclusions: order [already-placed, fit] → [fit, already-placed]; the first exclusion"
        " that applies is the reason a resident is given",
    ]
    assert [c.affects_outcomes for c in changes] == [True, False, True, True]


def test_rule_moved_between_sections() -> None:
    def edit(doc: dict[str, Any]) -> None:
        rule = doc["rules"]["eligibility"].pop(1)
        rule.update(when="moved_in > residence_cutoff", reason="Not registered")
        doc["rules"]["exclusions"].append(rule)

    assert described(variant(edit)) == [
        "exclusion `registered-resident`: section eligibility → exclusions",
        "exclusion `registered-resident`: when `moved_in <= residence_cutoff` →"
        " `moved_in > residence_cutoff`",
        "exclusion `registered-resident`: reason none → Not registered (documentation only)",
    ]


def test_tie_breaks_score_and_allocation() -> None:
    def edit(doc: dict[str, Any]) -> None:
        chain = doc["ranking"]["tie_break"]
        chain.insert(0, {"by": "age", "order": "desc"})
        chain[1]["order"] = "asc"
        chain[2]["lottery"]["seed"] = "2026-Q2"
        doc["score"]["terms"][1]["weight"] = 2
        doc["allocation"]["capacity"] = 50
        doc["allocation"]["reserves"][0]["share"] = 0.3
        doc["allocation"]["reserves"].append({"id": "alone", "eligible": "lives_alone", "count": 5})

    assert described(variant(edit)) == [
        "score term `priority`: weight 1 → 2",
        "tie-break by `waiting_days`: order desc → asc",
        "tie-break lottery: seed 2026-Q1-elderly-care-published-seed → 2026-Q2",
        "tie-break by `age`: added (position: 1)",
        "allocation: capacity 40 → 50",
        "reserve `special-hardship`: share 0.25 → 0.3",
        "reserve `alone`: added (eligible: `lives_alone`; count: 5)",
    ]


def test_tie_break_order_and_precedence_are_order_changes() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["ranking"]["tie_break"].insert(0, {"by": "age"})

    before = variant(edit)

    def swap(doc: dict[str, Any]) -> None:
        edit(doc)
        chain = doc["ranking"]["tie_break"]
        chain[0], chain[1] = chain[1], chain[0]
        doc["allocation"]["precedence"] = ["open", "special-hardship"]

    assert [c.describe() for c in policy_diff(before, variant(swap)).changes] == [
        "tie-break chain: order [by `age`, by `waiting_days`, lottery] → [by `waiting_days`,"
        " by `age`, lottery]; each tie-break applies only to residents still tied by those"
        " before it",
        "allocation: precedence none → [open, special-hardship]; categories are processed in"
        " this order",
    ]


def test_protected_attributes_are_shown_first() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["attributes"]["gender"]["protected"] = False
        doc["attributes"]["religion"] = {
            "type": "category",
            "levels": ["none", "other"],
            "protected": True,
        }
        doc["attributes"]["cognition"]["levels"] = ["intact", "moderate", "mild", "severe"]

    diff = policy_diff(POLICY, variant(edit))
    assert [c.item for c in diff.protection_changes] == ["gender", "religion"]
    text = diff.to_text()
    first = text.index("Protected attributes")
    assert first < text.index("Attributes\n")
    assert (
        "attribute `gender`: protected true → false; no longer protected: any part may read it"
        " without a justified use" in text
    )
    assert text.count("attribute `gender`") == 1
    assert "attribute `cognition`: order [intact, mild, moderate, severe] →" in text
    assert "the levels of an ordinal are its order, lowest first" in text


def test_justified_uses_and_documentation() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["justified_uses"][0]["why"] = "Defined for residents aged 60 and over."
        doc["policy"]["version"] = "2026.2"
        doc["policy"]["effective"] = dt.date(2026, 7, 1)

    diff = policy_diff(POLICY, variant(edit))
    assert [(c.section, c.field, c.affects_outcomes) for c in diff.changes] == [
        ("policy", "version", False),
        ("policy", "effective", True),
        ("justified uses", "why", False),
    ]
    assert diff.changes[2].label == "justified use of `age` by rule `aged-60-plus`"
    assert diff.affects_outcomes


def test_causes_follow_reads_and_weights() -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["scales"]["need"]["scales"]["family"]["weight"] = 1.2
        doc["parameters"]["waiting_cap_points"]["value"] = 10
        doc["score"]["terms"][0]["weight"] = 2
        doc["policy"]["title"] = "Renamed"

    diff = policy_diff(POLICY, variant(edit))
    alone = [c.describe() for c in diff.causes("indicator:need.family.alone")]
    assert alone == ["scale `need.family`: weight 1 → 1.2", "score term `need`: weight 1 → 2"]
    adl = [c.describe() for c in diff.causes("indicator:need.health.adl")]
    assert adl == ["score term `need`: weight 1 → 2"]
    waiting = [c.item for c in diff.causes("rule:waiting-time")]
    assert waiting == ["waiting_cap_points"]
    assert diff.causes("rule:aged-60-plus") == []
    assert diff.names_read_by("rule:waiting-time") == {
        "months_waited",
        "waiting_days",
        "waiting_points_per_month",
        "waiting_cap_points",
    }
    assert diff.readers_of("waiting_days") == ["rule:waiting-time", "tie_break:0"]


def test_exports() -> None:
    new = variant(lambda doc: doc["parameters"]["min_age"].update(value=65))
    diff = policy_diff(EXAMPLE, new)
    assert diff.to_markdown() == (
        "# Policy changes: elderly-care-places v2026.1 → elderly-care-places v2026.1\n\n"
        "1 change(s), of which 1 can change a resident's eligibility, score, rank or"
        " allocation; the others are documentation only.\n\n"
        "## Parameters\n\n"
        "- parameter `min_age`: value 60 → 65; read by rule `aged-60-plus`\n"
    )
    assert "Parameters\n----------\n\n  - parameter `min_age`" in diff.to_text()
    assert "<code>min_age</code>" in diff._repr_html_()
    data = json.loads(diff.to_json())
    assert data["changes"] == [
        {
            "section": "parameters",
            "item": "min_age",
            "field": "value",
            "change": "changed",
            "old": 60,
            "new": 65,
            "description": "parameter `min_age`: value 60 → 65; read by rule `aged-60-plus`",
            "affects_outcomes": True,
        }
    ]
    assert repr(diff).endswith(": 1 changes, 1 affecting outcomes>")
    assert isinstance(diff.changes[0], Change)
    with pytest.raises(ValueError, match="no section 'params'"):
        diff.in_section("params")
    with pytest.raises(TypeError, match="give a Policy"):
        policy_diff(POLICY, 3)  # type: ignore[arg-type]


def test_sections_added_or_removed_whole() -> None:
    def drop(doc: dict[str, Any]) -> None:
        del doc["allocation"]
        doc["justified_uses"] = [u for u in doc["justified_uses"] if "reserve" not in u]

    assert described(variant(drop)) == [
        "justified use of `hardship` by reserve `special-hardship`: removed (was because: A"
        " quarter of the places are reserved for households in special hardship (低保, 特困).)",
        "allocation section: removed (was capacity: 40)",
    ]
    rotation = variant(
        lambda doc: doc["allocation"].update(
            rotation={"capacity": 5, "accrue": {"waiting_days": 7}}
        )
    )
    longer = variant(
        lambda doc: doc["allocation"].update(
            rotation={"capacity": 5, "accrue": {"waiting_days": 14}, "max_wait": 10}
        )
    )
    assert [c.describe() for c in policy_diff(rotation, longer).changes] == [
        "rotation: max_wait none → 10",
        "rotation: accrue.waiting_days 7 → 14",
    ]


def test_a_proposal_that_reads_a_protected_attribute_can_still_be_diffed(capsys: Any) -> None:
    from fairalloc.cli import main

    root = Path(__file__).resolve().parent.parent / "examples" / "elderly-care"
    assert main(["diff", str(root / "policy.yaml"), str(root / "unfair-policy.yaml")]) == 1
    out = capsys.readouterr().out
    assert "priority rule `civil-servant-bonus`: added" in out
    assert "New reads of protected attributes without a justified use" in out
    assert "rule `civil-servant-bonus` reads protected attribute `occupation`" in out
    fair = fa.load_policy(root / "policy.yaml")
    unfair = fa.load_policy(root / "unfair-policy.yaml", audit=True)
    assert policy_diff(unfair, fair).unjustified == ()  # removing the read is no new read
    assert len(policy_diff(fair, unfair).to_dict()["unjustified_reads"]) == 1
