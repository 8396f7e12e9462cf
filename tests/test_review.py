"""Re-review (§2.3.2): cases, exact replays, corrections, remedies, deadlines, privacy."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.cli import main
from fairalloc.review import Case, Correction, DecisionRef, open_case, overdue, review

FILED = dt.date(2026, 3, 2)
P_HASH = "a" * 64
D_HASH = "b" * 64


def _policy(review_section: dict[str, Any] | None, *, capacity: int = 2) -> fa.Policy:
    doc: dict[str, Any] = {
        "policy": {"id": "care", "version": "1", "title": "Care places"},
        "attributes": {
            "id": {"type": "str", "role": "id"},
            "need": {"type": "int", "min": 0, "max": 100},
            "alone": {"type": "bool"},
        },
        "rules": {
            "eligibility": [{"id": "some-need", "when": "need >= 5"}],
            "priority": [
                {"id": "need-points", "points": "need"},
                {"id": "alone-points", "when": "alone", "points": 1},
            ],
        },
        "ranking": {"tie_break": [{"lottery": {"seed": "published"}}]},
        "allocation": {"capacity": capacity},
    }
    if review_section is not None:
        doc["review"] = review_section
    return fa.parse_policy(json.dumps(doc), format="json")


# Other residents' points are 77, 88 and 66 (+1 when alone): numbers nothing else shows.
PEOPLE = [
    {"id": "COMPLAINANT", "need": 10, "alone": False},
    {"id": "OTHER-A", "need": 88, "alone": False},
    {"id": "OTHER-B", "need": 77, "alone": False},
    {"id": "OTHER-C", "need": 66, "alone": False},
]
OTHERS = ("OTHER-A", "OTHER-B", "OTHER-C")


def _decision(policy: fa.Policy, **kw: Any) -> DecisionRef:
    served = tuple(fa.allocate(policy, PEOPLE).served_ids())
    return DecisionRef("decision-7", P_HASH, D_HASH, served=served, **kw)


def _case(policy: fa.Policy, need: int = 90, **kw: Any) -> Case:
    return open_case(
        policy,
        _decision(policy),
        case_id="case-1",
        resident="COMPLAINANT",
        grounds="my assessment was entered as 10; the assessor's report says 90",
        corrections={"need": (need, "assessment report 2026-118")},
        filed=FILED,
        **kw,
    )


def _review(policy: fa.Policy, case: Case, **kw: Any) -> Any:
    args: dict[str, Any] = {"policy_hash": P_HASH, "data_hash": D_HASH, "on": FILED}
    args.update(kw)
    return review(case, policy, PEOPLE, _decision(policy), **args)


@pytest.mark.parametrize("remedy", ["next_free_unit", "head_of_waiting_list"])
def test_a_correction_that_serves_the_complainant_displaces_nobody(remedy: str) -> None:
    policy = _policy({"deadline_days": 15, "remedy": remedy})
    finding = _review(policy, _case(policy))
    assert finding.served_before is False
    assert finding.served_corrected is True
    assert finding.changed
    assert finding.remedy == remedy
    assert finding.served_after == ("OTHER-A", "OTHER-B")  # nobody loses a place
    assert finding.displaced == ()
    assert finding.case.state(FILED) == "answered"
    assert finding.case.answer == finding.for_complainant()


def test_a_supernumerary_place_is_added() -> None:
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    finding = _review(policy, _case(policy))
    assert finding.served_after == ("OTHER-A", "OTHER-B", "COMPLAINANT")
    assert finding.displaced == ()


def test_displace_only_when_the_policy_says_so() -> None:
    policy = _policy({"deadline_days": 15, "displace": True})
    finding = _review(policy, _case(policy))
    assert finding.remedy == "displace"
    assert finding.served_after == ("COMPLAINANT", "OTHER-A")
    assert finding.displaced == ("OTHER-B",)
    officer = finding.for_officer()
    assert officer["displaced"] == ["OTHER-B"]
    assert "OTHER-B" not in json.dumps(finding.for_complainant())


def test_no_change_and_a_place_is_never_withdrawn() -> None:
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    finding = _review(policy, _case(policy, need=20))  # still below 66
    assert (finding.changed, finding.remedy) == (False, "none")
    assert finding.served_after == ("OTHER-A", "OTHER-B")
    assert "does not change" in finding.complainant_text()
    # A served resident whose corrected facts would not serve them keeps the place.
    worse = open_case(
        policy,
        _decision(policy),
        case_id="case-2",
        resident="OTHER-A",
        grounds="my record",
        corrections=[Correction("need", 1, "letter")],
        filed=FILED,
    )
    found = review(
        worse, policy, PEOPLE, _decision(policy), policy_hash=P_HASH, data_hash=D_HASH, on=FILED
    )
    assert (found.served_before, found.served_corrected, found.remedy) == (True, False, "none")
    assert found.served_after == ("OTHER-A", "OTHER-B")
    assert "not withdrawn" in found.complainant_text()


def _numbers(doc: Any) -> list[float]:
    if isinstance(doc, bool):
        return []
    if isinstance(doc, int | float):
        return [doc]
    if isinstance(doc, dict):
        return [n for v in doc.values() for n in _numbers(v)]
    if isinstance(doc, list):
        return [n for v in doc for n in _numbers(v)]
    return []


def _private(doc: Any, text: str) -> None:
    """Neither the document nor the text shows another resident's id or points."""
    flat = json.dumps(doc, ensure_ascii=False)
    for rid in OTHERS:
        assert rid not in flat
        assert rid not in text
    assert not {66, 77, 88, 67, 78, 89} & set(_numbers(doc))
    assert not re.search(r"\b(66|77|88|67|78|89)\b", text)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize("need", [90, 20, 70])
def test_the_complainant_is_shown_nothing_of_another_resident(lang: str, need: int) -> None:
    policy = _policy({"deadline_days": 15, "displace": True})
    finding = _review(policy, _case(policy, need=need), lang=lang)
    _private(finding.for_complainant(), finding.complainant_text(lang))
    _private(json.loads(finding.to_json()), finding.explanation.to_markdown(lang))
    assert finding.for_complainant()["explanation"]["resident"] == "COMPLAINANT"
    # The full explanation of the same outcome would show the cut-off: the test can fail.
    full = finding.corrected.explain("COMPLAINANT", counterfactuals=False)
    assert re.search(r"\b(66|77|88)\b", full.to_text(lang))


def test_contrast_for_a_resident_shows_nothing_of_the_other() -> None:
    policy = _policy(None)
    allocation = fa.allocate(policy, PEOPLE)
    officer = fa.contrast(allocation, "COMPLAINANT", "OTHER-B")
    assert "OTHER-B" in officer.to_text()
    assert 77 in _numbers(officer.to_dict())
    for lang in ("en", "zh-CN"):
        mine = allocation.contrast("COMPLAINANT", "OTHER-B", lang=lang, audience="resident")
        _private(mine.to_dict(), mine.to_text() + mine.to_markdown() + mine.to_html())
        assert mine.to_dict()["other"] == "above"
        assert mine.to_dict()["deciding"] == {"by": "score"}
        assert "another resident" in repr(mine)
    with pytest.raises(ValueError, match="no audience"):
        fa.contrast(allocation, "COMPLAINANT", "OTHER-B", audience="public")  # type: ignore[arg-type]


def test_cli_contrast_audience(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(_policy(None).model_dump_json(exclude_none=True))
    data = tmp_path / "residents.csv"
    data.write_text("id,need,alone\n" + "".join(f"{p['id']},{p['need']},false\n" for p in PEOPLE))
    base = ["explain", str(policy_file), str(data), "--id", "COMPLAINANT", "--contrast", "OTHER-B"]
    assert main(base) == 0
    assert "OTHER-B" in capsys.readouterr().out
    assert main([*base, "--audience", "resident", "--format", "json"]) == 0
    out = capsys.readouterr().out
    _private(json.loads(out), out)


def test_replay_is_refused_unless_it_starts_from_the_recorded_inputs() -> None:
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    case = _case(policy)
    with pytest.raises(fa.ReviewError) as info:
        _review(policy, case, policy_hash="c" * 64)
    assert info.value.code == "FA790"
    assert info.value.case == "case-1"
    with pytest.raises(fa.ReviewError) as info:
        _review(policy, case, data_hash="c" * 64)
    assert info.value.code == "FA791"
    recorded = DecisionRef("decision-7", P_HASH, D_HASH, served=("OTHER-B", "OTHER-A"))
    with pytest.raises(fa.ReviewError) as info:
        review(case, policy, PEOPLE, recorded, policy_hash=P_HASH, data_hash=D_HASH, on=FILED)
    assert info.value.code == "FA792"
    assert "position 1" in info.value.message
    other = DecisionRef("decision-8", P_HASH, D_HASH)
    with pytest.raises(fa.ReviewError) as info:
        review(case, policy, PEOPLE, other, policy_hash=P_HASH, data_hash=D_HASH, on=FILED)
    assert info.value.code == "FA797"
    with pytest.raises(fa.ReviewError) as info:
        review(
            case,
            policy,
            PEOPLE[1:],
            _decision(policy),
            policy_hash=P_HASH,
            data_hash=D_HASH,
            on=FILED,
        )
    assert info.value.code == "FA799"
    with pytest.raises(fa.ReviewError) as info:
        _review(policy, _case(policy, need=500))
    assert info.value.code == "FA793"
    assert "out of range" in info.value.message
    done = _review(policy, case).case
    with pytest.raises(fa.ReviewError) as info:
        _review(policy, done)
    assert info.value.code == "FA795"


def test_cases_need_a_review_section_and_evidence() -> None:
    with pytest.raises(fa.ReviewError) as info:
        _case(_policy(None))
    assert info.value.code == "FA794"
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    for corrections in (
        {"weight": (3, "x")},
        {"id": ("Z", "x")},
        {"need": (50, "  ")},
        [Correction("need", 1, "a"), Correction("need", 2, "b")],
    ):
        with pytest.raises(fa.ReviewError) as info:
            open_case(
                policy,
                _decision(policy),
                case_id="c",
                resident="COMPLAINANT",
                grounds="g",
                corrections=corrections,
                filed=FILED,
            )
        assert info.value.code == "FA793"
    with pytest.raises(fa.ReviewError) as info:
        open_case(
            policy, _decision(policy), case_id="c", resident="COMPLAINANT", grounds=" ", filed=FILED
        )
    assert info.value.code == "FA798"


def test_states_deadlines_and_overdue_cases() -> None:
    policy = _policy({"deadline_days": 15, "remedy": "next_free_unit"})
    case = _case(policy)
    assert case.deadline == dt.date(2026, 3, 17)
    assert case.state(dt.date(2026, 3, 17)) == "filed"
    assert case.state(dt.date(2026, 3, 18)) == "overdue"
    later = open_case(
        policy,
        _decision(policy),
        case_id="case-0",
        resident="OTHER-C",
        grounds="g",
        filed=dt.date(2026, 3, 10),
    )
    answered = _review(policy, _case(policy), on=dt.date(2026, 3, 20)).case
    assert answered.state(dt.date(2026, 3, 20)) == "answered"
    assert answered.state(dt.date(2026, 3, 19)) == "overdue"
    assert answered.late
    assert (
        "after the deadline of 2026-03-17"
        in _review(policy, _case(policy), on=dt.date(2026, 3, 20)).complainant_text()
    )
    assert overdue([later, case, answered], dt.date(2026, 3, 26)) == [case, later]
    # On 18 March, the case answered on the 20th was not answered yet: overdue.
    assert overdue([later, case, answered], dt.date(2026, 3, 18)) == [case, answered]
    assert overdue([later, case], dt.date(2026, 3, 1)) == []


def test_cases_are_stored_as_canonical_json() -> None:
    policy = _policy({"deadline_days": 15, "remedy": "supernumerary"})
    done = _review(policy, _case(policy)).case
    text = done.to_json()
    back = Case.from_dict(json.loads(text))
    assert back == done
    assert back.to_json() == text
    with pytest.raises(fa.ReviewError) as info:
        Case.from_dict({**json.loads(text), "filed": "yesterday"})
    assert info.value.code == "FA798"
    with pytest.raises(fa.ReviewError) as info:
        Case.from_dict({k: v for k, v in json.loads(text).items() if k != "resident"})
    assert info.value.code == "FA798"


def test_the_review_section_is_checked_when_the_policy_loads() -> None:
    with pytest.raises(fa.PolicyError) as info:
        _policy({"deadline_days": 15})
    assert info.value.codes == ["FA178"]
    with pytest.raises(fa.PolicyError) as info:
        _policy({"deadline_days": 15, "remedy": "supernumerary", "displace": True})
    assert info.value.codes == ["FA179"]
    with pytest.raises(fa.PolicyError) as info:
        _policy({"deadline_days": 0, "remedy": "supernumerary"})
    assert info.value.codes[0].startswith("FA1")
    doc = json.loads(_policy(None).model_dump_json(exclude_none=True))
    del doc["allocation"]
    doc["review"] = {"deadline_days": 15, "remedy": "supernumerary"}
    with pytest.raises(fa.PolicyError) as info:
        fa.parse_policy(json.dumps(doc), format="json")
    assert info.value.codes == ["FA177"]


@given(
    needs=st.lists(st.integers(0, 100), min_size=1, max_size=8),
    who=st.integers(0, 7),
    corrected=st.integers(0, 100),
    capacity=st.integers(0, 4),
    remedy=st.sampled_from(["next_free_unit", "supernumerary", "head_of_waiting_list", None]),
)
def test_nobody_served_loses_a_place_unless_the_policy_says_displace(
    needs: list[int], who: int, corrected: int, capacity: int, remedy: str | None
) -> None:
    section = {"deadline_days": 10, **({"remedy": remedy} if remedy else {"displace": True})}
    policy = _policy(section, capacity=capacity)
    people = [{"id": f"r{i}", "need": n, "alone": i % 2 == 0} for i, n in enumerate(needs)]
    rid = f"r{who % len(needs)}"
    decision = DecisionRef(
        "d", P_HASH, D_HASH, served=tuple(fa.allocate(policy, people).served_ids())
    )
    case = open_case(
        policy,
        decision,
        case_id="c",
        resident=rid,
        grounds="g",
        corrections={"need": (corrected, "e")},
        filed=FILED,
    )
    finding = review(case, policy, people, decision, policy_hash=P_HASH, data_hash=D_HASH, on=FILED)
    before = set(decision.served or ())
    after = set(finding.served_after)
    assert finding.served_corrected == (rid in finding.corrected.served_ids())
    if remedy is None:
        assert finding.displaced == tuple(i for i in decision.served or () if i not in after)
        if finding.remedy == "displace":
            assert list(finding.served_after) == finding.corrected.served_ids()
    else:
        assert before <= after
        assert finding.displaced == ()
        if finding.remedy == "supernumerary":
            assert after == before | {rid}
    if finding.served_before or not finding.served_corrected:
        assert finding.remedy == "none"
        assert after == before
