"""Explanations: facts from the engine's trace, counterfactuals that hold, two languages."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fairalloc as fa
from fairalloc.explain import contrast, explain
from fairalloc.explain._counterfactual import _World, changeable_attributes
from fairalloc.explain._i18n import catalog
from tests.conftest import EXAMPLE
from tests.strategies import residents

# -- the bundled example ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> tuple[fa.Policy, fa.Allocation]:
    policy = fa.load_policy(EXAMPLE / "policy.yaml")
    allocation = fa.allocate(fa.evaluate(policy, EXAMPLE / "residents.csv"))
    return policy, allocation


def _ids(alloc: fa.Allocation, mask: np.ndarray) -> list[str]:
    return [str(i) for i in alloc.evaluation.ids[np.flatnonzero(mask)]]


def test_every_level_of_the_breakdown_adds_up_exactly(example: Any) -> None:
    _, alloc = example
    ev = alloc.evaluation
    for rid in _ids(alloc, np.ones(ev.n, dtype=bool)):
        f = explain(alloc, rid, counterfactuals=False).facts
        for s in f.scales:
            assert sum(s.parts_micro.values()) == s.total_micro, (rid, s.path)
        assert sum(t.value_micro for t in f.terms) == f.score_micro
        # Weights are 1 in the example: the flat parts add up to the ranking's score.
        parts = [i.points_micro for i in f.indicators] + [p.points_micro for p in f.priority]
        assert sum(parts) == f.score_micro == int(ev.score_micro[ev.index_of(rid)])


def test_deciding_rules_are_exactly_those_that_changed_eligibility_or_score(example: Any) -> None:
    policy, alloc = example
    ev = alloc.evaluation
    residents_csv = EXAMPLE / "residents.csv"
    doc = policy.model_dump(mode="json", exclude_none=True)
    # Remove each rule and indicator in turn: what changes for each resident?
    for j, rule in enumerate(policy.rules.eligibility):
        changed = _without(doc, ("rules", "eligibility", j), residents_csv)
        for rid in _ids(alloc, np.ones(ev.n, dtype=bool)):
            check = next(
                c
                for c in explain(alloc, rid, counterfactuals=False).facts.checks
                if c.rule == rule.id
            )
            r = ev.index_of(rid)
            failed = int((~ev.eligibility[r]).sum()) + int(ev.exclusions[r].sum())
            if not check.deciding:
                assert changed.eligible[r] == ev.eligible[r]
            elif failed == 1:  # the only reason: removing it makes the resident eligible
                assert changed.eligible[r]
                assert not ev.eligible[r]
    for j, ind in enumerate(explain(alloc, "R0000001", counterfactuals=False).facts.indicators):
        scale, _, name = ind.path.rpartition(".")
        path: tuple[Any, ...] = (
            "scales",
            *scale.replace(".", ".scales.").split("."),
            "indicators",
            name,
        )
        changed = _without(doc, path, residents_csv)
        for rid in _ids(alloc, ev.eligible)[:60]:
            r = ev.index_of(rid)
            line = explain(alloc, rid, counterfactuals=False).facts.indicators[j]
            assert line.deciding == (changed.score_micro[r] != ev.score_micro[r]), (rid, ind.path)
        del j


def _without(doc: dict[str, Any], path: tuple[Any, ...], data: Any) -> fa.Evaluation:
    copy = json.loads(json.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    if path[-2] == "indicators":
        node[path[-1]] = {"points": 0}  # a scale keeps at least one indicator
    else:
        del node[path[-1]]
    # Justified uses may name the removed part: measure the rest as an audit does.
    copy.pop("justified_uses", None)
    return fa.evaluate(fa.compile_policy(fa.Policy.model_validate(copy), audit=True), data)


def test_counterfactuals_hold_when_rerun_and_never_touch_protected(example: Any) -> None:
    policy, alloc = example
    ev = alloc.evaluation
    pop = ev.population
    assert changeable_attributes(ev) == ["adl_score", "cognition", "waiting_days"]
    waiting = _ids(alloc, ev.eligible & ~alloc.served)[:8]
    served = _ids(alloc, alloc.served)[:3]
    found = 0
    for rid in waiting + served:
        e = explain(alloc, rid)
        for cf in e.facts.counterfactuals:
            found += 1
            assert not policy.attributes[cf.attribute].protected
            assert cf.verified
            records = pop.to_records()
            rec = next(x for x in records if x["resident_id"] == rid)
            rec[cf.attribute] = cf.after
            again = fa.allocate(fa.evaluate(policy, records))
            row = again.evaluation.index_of(rid)
            assert bool(again.served[row]) == (cf.outcome_after == "served")
            assert cf.outcome_after != cf.outcome_before
            assert int(again.evaluation.ranking.rank[row]) == cf.rank_after
            # The smallest change: one less and the outcome stays.
            if cf.delta is None:
                continue
            rec[cf.attribute] = cf.before + int(cf.delta) - (1 if cf.delta > 0 else -1)
            if rec[cf.attribute] != cf.before:
                third = fa.allocate(fa.evaluate(policy, records))
                assert bool(third.served[third.evaluation.index_of(rid)]) == bool(
                    alloc.served[ev.index_of(rid)]
                )
    assert found >= 5


def test_protected_attributes_are_refused_as_changes(example: Any) -> None:
    _, alloc = example
    with pytest.raises(ValueError, match="protected"):
        explain(alloc, "R0000003", attributes=["age"])
    with pytest.raises(ValueError, match="no attribute"):
        explain(alloc, "R0000003", attributes=["shoe_size"])
    with pytest.raises(KeyError, match="no resident"):
        explain(alloc, "nobody")
    with pytest.raises(ValueError, match="locale"):
        explain(alloc, "R0000003", lang="fr")


def test_explanation_does_not_depend_on_row_order(example: Any) -> None:
    policy, alloc = example
    records = alloc.evaluation.population.to_records()
    random.Random(7).shuffle(records)
    again = fa.allocate(fa.evaluate(policy, records))
    for rid in ("R0000003", "R0000031", "R0000000", "R0000100"):
        assert explain(alloc, rid).to_json() == explain(again, rid).to_json()
        assert explain(alloc, rid).to_text("zh-CN") == explain(again, rid).to_text("zh-CN")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def test_english_and_chinese_carry_the_same_facts(example: Any) -> None:
    _, alloc = example
    for rid in ("R0000003", "R0000031", "R0000000"):
        e = explain(alloc, rid)
        en, zh = e.to_text("en"), e.to_text("zh-CN")
        # Titles differ by language; the rule ids, values and numbers must not.
        for f in (e.facts.checks, e.facts.priority):
            for item in f:
                assert item.rule in en
                assert item.rule in zh
        assert sorted(_NUMBER.findall(_strip_titles(en))) == sorted(
            _NUMBER.findall(_strip_titles(zh))
        )
        assert e.to_markdown("en").count("|") == e.to_markdown("zh-CN").count("|")


def _strip_titles(text: str) -> str:
    # Policy titles are translated by the policy itself ("Aged 60 or over" / "年满60周岁").
    return text.replace("Aged 60 or over", "").replace("年满60周岁", "")


def test_catalogs_hold_the_same_messages_and_placeholders() -> None:
    en, zh = catalog("en"), catalog("zh-CN")
    assert en.keys() == zh.keys()
    fields = re.compile(r"\{(\w+)\}")
    for key in en:
        assert sorted(fields.findall(en[key])) == sorted(fields.findall(zh[key])), key


def test_html_is_accessible_and_escaped(example: Any) -> None:
    _, alloc = example
    page = explain(alloc, "R0000003").to_html(fragment=False)
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in page
    assert '<th scope="col">' in page
    assert '<th scope="row">' in page
    assert "<caption>" in page
    assert "color" not in page
    assert "px" not in page.replace("1px solid", "")
    zh = explain(alloc, "R0000003", lang="zh-CN")._repr_html_()
    assert 'lang="zh-CN"' in zh
    # Deciding rows are marked in words as well as in bold.
    assert "<strong>" in zh


def test_json_has_a_versioned_schema(example: Any) -> None:
    _, alloc = example
    doc = json.loads(explain(alloc, "R0000003").to_json())
    assert doc["schema"] == "fairalloc.explanation/1"
    assert doc["resident"] == "R0000003"
    assert doc["outcome"]["served"] is False
    assert doc["counterfactuals"][0]["attribute"] == "waiting_days"
    assert {
        "checks",
        "indicators",
        "priority",
        "scales",
        "score",
        "cutoffs",
        "lottery",
    } <= doc.keys()


def test_cutoff_margin_and_decision(example: Any) -> None:
    _, alloc = example
    ev = alloc.evaluation
    cuts = {c.category: c for c in alloc.cutoffs()}
    for rid in _ids(alloc, ev.eligible)[:40]:
        f = explain(alloc, rid, counterfactuals=False).facts
        r = ev.index_of(rid)
        openc = next(c for c in f.cutoffs if c.category == "open")
        assert openc.score_micro is not None
        assert openc.margin_micro == int(ev.score_micro[r]) - openc.score_micro
        assert openc.score_micro == round(cuts["open"].score * 1_000_000)
        d = f.decision
        assert d is not None
        if d.by == "score":
            assert d.equal_before == ()
            assert (d.mine > d.theirs) == bool(alloc.served[r])  # type: ignore[operator]


def test_lottery_recipe_recomputes_the_key(example: Any) -> None:
    _, alloc = example
    lot = explain(alloc, "R0000003", counterfactuals=False).facts.lottery
    assert lot is not None
    out = subprocess.run(
        [sys.executable, "-c", lot.recipe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == lot.key


def test_contrast_differences_add_up(example: Any) -> None:
    _, alloc = example
    c = contrast(alloc, "R0000031", "R0000003")
    diff = sum(x - y for _, x, y in c.differences())
    assert diff == pytest.approx(c.a.score - c.b.score, abs=1e-9)
    assert c.deciding() == ("score", c.a.score, c.b.score)
    assert "R0000031" in c.to_text("zh-CN")
    assert json.loads(c.to_json())["deciding"]["by"] == "score"


def test_methods_on_results(example: Any) -> None:
    _, alloc = example
    assert alloc.explain("R0000003").served is False
    assert alloc.evaluation.explain("R0000003").served is None
    assert alloc.contrast("R0000003", "R0000031").a.resident == "R0000003"
    text = alloc.evaluation.explain("R0000003", target_rank=40).to_text()
    assert "ranked within 40" in text


# -- counterfactual search against brute force --------------------------------------------------

CF_ATTRIBUTES: dict[str, Any] = {
    "id": {"type": "str", "role": "id"},
    "age": {
        "type": "int",
        "min": 50,
        "max": 90,
        "protected": True,
        "ground": "age",
        "changeable": True,
    },
    "need": {"type": "int", "min": 0, "max": 5, "changeable": True},
    "wait": {"type": "int", "min": 0, "max": 12, "changeable": True},
    "poor": {"type": "bool", "changeable": True},
    "level": {"type": "ordinal", "levels": ["a", "b", "c"], "changeable": True},
    "hours": {"type": "float", "min": 0, "max": 4, "changeable": True},
    "fixed": {"type": "int", "min": 0, "max": 3},
}


@st.composite
def cf_case(draw: st.DrawFn) -> tuple[fa.Policy, list[dict[str, Any]], int]:
    """A small policy and population: every mechanism, reserve setting and score method, with
    and without a ranking lottery, with weights other than 1."""
    method = draw(st.sampled_from(["sum", "sum", "tiers", "product"]))
    need_weight = draw(st.sampled_from([1, 1, 0.5, 2]))
    scale_weight = draw(
        st.sampled_from([1, 2]) if method == "product" else st.sampled_from([1, 2, 0.5])
    )
    terms = [{"of": "s", "weight": scale_weight}, {"of": "priority", "weight": 1}]
    if method == "tiers" and draw(st.booleans()):
        terms.reverse()
    tie_break: list[dict[str, Any]] = []
    if draw(st.booleans()):
        tie_break.append({"by": "wait", "order": "desc"})
    if draw(st.booleans()):
        tie_break.append({"lottery": {"seed": "s"}})
    mechanism = draw(st.sampled_from(["priority", "priority", "lottery"]))
    alloc: dict[str, Any] = {"mechanism": mechanism}
    if mechanism == "lottery":
        alloc["lottery"] = {"seed": "L", **({"weight": "1 + need"} if draw(st.booleans()) else {})}
    reserves = []
    if draw(st.booleans()):
        reserves.append({"id": "poor", "eligible": "poor", "count": draw(st.integers(0, 3))})
    if draw(st.booleans()):
        r = {"id": "high", "eligible": "level >= b", "count": draw(st.integers(0, 2))}
        if draw(st.booleans()):
            r["priority"] = "need"
        reserves.append(r)
    if reserves:
        alloc["reserves"] = reserves
        mode = draw(st.sampled_from(["precedence", "max_beneficiaries"]))
        if mode == "max_beneficiaries" and not any("priority" in r for r in reserves):
            alloc["reserve_mode"] = mode
        else:
            ids = [r["id"] for r in reserves] + ["open"]
            alloc["precedence"] = draw(st.permutations(ids))
        alloc["unused_reserved"] = draw(st.sampled_from(["open", "lapse"]))
    alloc["capacity"] = sum(r["count"] for r in reserves) + draw(st.integers(0, 5))
    doc: dict[str, Any] = {
        "policy": {"id": "cf", "version": "1", "title": "CF"},
        "attributes": CF_ATTRIBUTES,
        "justified_uses": [
            {"attribute": "age", "rule": "old-enough", "why": "service for 60+", "source": "§1"}
        ],
        "scales": {
            "s": {
                "indicators": {
                    "n": {
                        "of": "need",
                        "bands": [{"max": 1, "points": 1}, {"max": 3, "points": 3}, {"points": 5}],
                        "weight": need_weight,
                    },
                    "h": {"points": "hours"},
                }
            }
        },
        "rules": {
            "eligibility": [
                {"id": "old-enough", "when": "age >= 60"},
                {"id": "some-need", "when": "need >= 1 or level == c"},
            ],
            "priority": [
                {"id": "wait", "points": "min(wait * 0.5, 4)"},
                {"id": "level", "when": "level >= b", "points": 3},
                {"id": "fixed", "points": "fixed"},
            ],
        },
        "score": {"method": method, "terms": terms},
        "allocation": alloc,
    }
    if tie_break:
        doc["ranking"] = {"tie_break": tie_break}
    policy = fa.Policy.model_validate(doc)
    records = draw(residents(policy, min_size=1, max_size=12))
    for r in records:  # decimals as assessments record them, so that ties happen
        r["hours"] = draw(st.sampled_from([0.0, 0.5, 1.0, 2.25, 4.0]))
    return policy, records, draw(st.integers(0, len(records) - 1))


def _served(policy: fa.Policy, records: list[dict[str, Any]], rid: str) -> str | None:
    """The outcome of a full evaluation and allocation; None if it refuses a tie."""
    try:
        alloc = fa.allocate(fa.evaluate(policy, records))
    except ValueError as e:
        if "tied at the cut-off" not in str(e):
            raise
        # Eligibility does not depend on the allocation: an ineligible resident stays so
        # whatever tie among others the mechanism refuses.
        ev = fa.evaluate(policy, records)
        return None if ev.eligible[ev.index_of(rid)] else "ineligible"
    row = alloc.evaluation.index_of(rid)
    if alloc.served[row]:
        return "served"
    return "waiting" if alloc.evaluation.eligible[row] else "ineligible"


@given(cf_case())
@pytest.mark.slow
def test_predicted_outcomes_agree_with_a_full_rerun_for_every_value(case: Any) -> None:
    policy, records, who = case
    note(json.dumps(policy.model_dump(mode="json", exclude_none=True)["allocation"]))
    try:
        alloc = fa.allocate(fa.evaluate(policy, records))
    except ValueError:
        return  # the allocation itself refuses a tie: nothing to explain
    ev = alloc.evaluation
    rid = str(records[who]["id"])
    row = ev.index_of(rid)
    world = _World(ev, row, alloc, None)
    from fairalloc.explain._counterfactual import _candidates

    for name in changeable_attributes(ev):
        assert name != "age"
        attr = policy.attributes[name]
        for direction in (-1, 1):
            cands, _ = _candidates(ev.population, row, name, attr, direction, 64)
            if not cands:
                continue
            got = world._evaluate(cands)
            assert got is not None
            evc, kept = got
            for k, i in enumerate(kept):
                changed = [dict(r) for r in records]
                changed[who][name] = cands[i].value
                expected = _served(policy, changed, rid)
                assert world.outcome(evc, k, exact=True) == expected, (name, cands[i].value)
                predicted = world.outcome(evc, k)
                # A prediction is exact, except where the mechanism refuses a tie at the
                # cut-off: the fast path cannot see the refusal, and every change it predicts
                # is re-run exactly before it is offered (the exact outcome is checked above).
                if expected is not None:
                    assert predicted == expected, (name, cands[i].value)
    # The explanation's counterfactuals hold, and no nearer value reaches the target.
    before = _served(policy, records, rid)
    for cf in explain(alloc, rid, limit=20).facts.counterfactuals:
        changed = [dict(r) for r in records]
        changed[who][cf.attribute] = cf.after
        assert _served(policy, changed, rid) == cf.outcome_after != before
        assert (
            cf.rank_after == int(fa.evaluate(policy, changed).ranking.rank[ev.index_of(rid)])
            or cf.rank_after is None
        )
        attr = policy.attributes[cf.attribute]
        if attr.type == "float":
            continue  # decimals are narrowed to the boundary, not enumerated
        values = (
            list(attr.levels or [])
            if attr.levels
            else [True, False]
            if attr.type == "bool"
            else list(range(int(attr.min or 0), int(attr.max or 0) + 1))  # type: ignore[arg-type]
        )
        now = records[who][cf.attribute]
        pos = {v: i for i, v in enumerate(values)}
        here, there = pos[now], pos[cf.after]
        step = 1 if there > here else -1
        for nearer in values[here + step : there : step]:
            changed[who][cf.attribute] = nearer
            now_served = _served(policy, changed, rid)
            # Nearer values do not reach the target (being served, or losing the place).
            assert now_served is None or (now_served == "served") == (before == "served"), (
                cf.attribute,
                nearer,
            )


# -- other mechanisms ---------------------------------------------------------------------------


def test_matching_explanation_lists_choices_and_cutoffs() -> None:
    root = EXAMPLE.parent / "facility-slots"
    policy = fa.load_policy(root / "policy.yaml")
    result = fa.match(fa.evaluate(policy, root / "residents.csv"))
    served = [str(i) for i in result.evaluation.ids[np.flatnonzero(result.served)]]
    e = result.explain(served[0])
    assert e.facts.outcome.kind == "matching"
    held = [c for c in e.facts.choices if c.held]
    assert [c.resource for c in held] == list(e.facts.outcome.resources)
    for c in held:
        assert c.rank is not None
        assert c.last_rank is not None
        assert c.rank <= c.last_rank
    assert e.facts.notes[0][0] == "cf_mechanism"
    assert "志愿匹配" in e.to_text("zh-CN")


def test_rotation_explanation_shows_rounds() -> None:
    root = EXAMPLE.parent / "activity-places"
    policy = fa.load_policy(root / "policy.yaml")
    sim = fa.simulate(policy, root / "residents.csv", rounds=4)
    rid = sim.ids[0]
    e = sim.explain(rid)
    rec = sim.record(rid)
    assert e.facts.outcome.kind == "rotation"
    assert list(e.facts.outcome.rounds_served) == rec["rounds_served"]
    assert e.facts.outcome.longest_wait == rec["longest_wait"]
    assert "rounds" in e.to_text()


# -- batch export and the command line ----------------------------------------------------------


def test_batch_export_matches_single_explanations(example: Any, tmp_path: Any) -> None:
    policy, alloc = example
    path = tmp_path / "all.jsonl"
    assert fa.export_explanations(alloc, path) == alloc.evaluation.n
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    for r in rows[::7]:
        f = explain(alloc, r["id"], counterfactuals=False).facts
        assert r["schema"] == "fairalloc.explanation-row/1"
        assert r["eligible"] == f.eligible
        assert r["score"] == f.score
        assert r["rank"] == f.outcome.rank
        assert r["served"] == f.outcome.served
        assert r["category"] == f.outcome.category
        assert r["failed"] == [c.rule for c in f.checks if c.kind == "eligibility" and not c.held]
        assert r["points"] == {
            **{i.path: i.points for i in f.indicators},
            **{f"priority.{p.rule}": p.points for p in f.priority},
        }
        assert r["grades"] == {s.path: s.grade for s in f.scales if s.grade is not None}
        if f.eligible:
            cat = f.outcome.category or "open"
            cut = next(c for c in f.cutoffs if c.category == cat)
            assert r["margin"] == pytest.approx(cut.margin_micro / 1_000_000, abs=1e-12)
    # Row order never shows in the file.
    records = alloc.evaluation.population.to_records()
    random.Random(3).shuffle(records)
    again = tmp_path / "again.jsonl"
    fa.export_explanations(fa.allocate(fa.evaluate(policy, records)), again)
    assert again.read_bytes() == path.read_bytes()
    # CSV: the same facts, one column per field.
    import csv

    out = tmp_path / "all.csv"
    fa.export_explanations(alloc.evaluation, out, format="csv")
    with out.open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == alloc.evaluation.n
    by_id = {r["id"]: r for r in rows}
    for row in table[::11]:
        assert float(row["score"]) == by_id[row["id"]]["score"]
        assert row["points.priority.waiting-time"] == _plain(
            by_id[row["id"]]["points"]["priority.waiting-time"]
        )


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def test_points_text_is_exact() -> None:
    from fairalloc.explain._batch import _points

    micro = np.array([0, 1, -1, 12_500_000, 47_283_333, -1_000_000, 10**15], dtype=np.int64)
    assert _points(micro) == ["0", "0.000001", "-0.000001", "12.5", "47.283333", "-1", "1000000000"]


def test_cli_explain(capsys: Any, tmp_path: Any) -> None:
    from fairalloc.cli import main

    args = [str(EXAMPLE / "policy.yaml"), str(EXAMPLE / "residents.csv")]
    assert main(["explain", *args, "--id", "R0000003", "--lang", "zh-CN"]) == 0
    out = capsys.readouterr().out
    assert "居民 R0000003 的分配说明" in out
    assert "怎样的变化会改变结果" in out
    assert main(["explain", *args, "--id", "R0000003", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["resident"] == "R0000003"
    assert main(["explain", *args, "--id", "R0000003", "--id", "R0000031", "--format", "json"]) == 0
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["resident"] for d in docs] == ["R0000003", "R0000031"]
    assert (
        main(["explain", *args, "--id", "R0000003", "--contrast", "R0000031", "--format", "md"])
        == 0
    )
    assert capsys.readouterr().out.startswith("# Resident R0000003 compared with resident R0000031")
    page = tmp_path / "r.html"
    assert main(["explain", *args, "--id", "R0000003", "--format", "html", "--out", str(page)]) == 0
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    out_csv = tmp_path / "all.csv"
    assert main(["explain", *args, "--all", "--out", str(out_csv)]) == 0
    assert len(out_csv.read_text(encoding="utf-8").splitlines()) == 201
    capsys.readouterr()
    assert main(["explain", *args, "--id", "nobody"]) == 2
    assert "no resident with id 'nobody'" in capsys.readouterr().err
    assert main(["explain", *args, "--all"]) == 2
    assert "--out FILE.jsonl" in capsys.readouterr().err
    rot = EXAMPLE.parent / "activity-places"
    assert main(["explain", str(rot / "policy.yaml"), str(rot / "residents.csv"), "--id", "x"]) == 2
    assert "--rounds" in capsys.readouterr().err


def test_rotation_explains_only_residents_present_at_the_end() -> None:
    root = EXAMPLE.parent / "activity-places"
    policy = fa.load_policy(root / "policy.yaml")
    pop = fa.Population.from_csv(root / "residents.csv", policy)
    gone = str(pop.ids[0])
    sim = fa.simulate(policy, pop, rounds=3, departures={2: [gone]})
    with pytest.raises(KeyError, match="left before round 2"):
        sim.explain(gone)
    with pytest.raises(KeyError, match="no resident"):
        sim.explain("nobody")


# -- review cases: weights, lotteries, sampled ranges, wording --------------------------------

SMALL = """
policy: {id: t, version: "1", title: T}
attributes:
  id: {type: str, role: id}
  need: {type: int, min: 0, max: 10, changeable: true}
  days: {type: int, min: 0, max: 1000000, changeable: true}
  poor: {type: bool}
  level: {type: ordinal, levels: [a, b, c]}
"""


def test_points_that_never_reach_the_score_are_not_deciding() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
scales:
  assessed:
    indicators: {n: {of: need, bands: [{max: 3, points: 1}, {points: 5}]}}
    scales:
      family: {weight: 0, indicators: {p: {of: poor, lookup: {true: 4, false: 0}}}}
rules: {priority: [{id: wait, points: "days / 100"}]}
score: {terms: [{of: priority}]}
"""
    )
    ev = fa.evaluate(policy, [{"id": "a", "need": 5, "days": 300, "poor": True, "level": "a"}])
    f = ev.explain("a", counterfactuals=False).facts
    assert f.score == 3
    assert [(i.path, i.points, i.deciding) for i in f.indicators] == [
        ("assessed.n", 5.0, False),
        ("assessed.family.p", 4.0, False),
    ]
    assert f.priority[0].deciding
    assert ev.explain("a").deciding_rules() == ["wait"]


def test_weights_are_shown_where_they_apply() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
scales:
  assessed:
    indicators: {n: {of: need, bands: [{max: 3, points: 1}, {points: 5}]}}
    scales:
      family: {weight: 0.5, indicators: {p: {of: poor, lookup: {true: 4, false: 0}}}}
score: {terms: [{of: assessed, weight: 2}]}
"""
    )
    ev = fa.evaluate(policy, [{"id": "a", "need": 5, "days": 0, "poor": True, "level": "a"}])
    text = ev.explain("a").to_text()
    assert "5 + 4 × 0.5 = 2" in text  # the sub-scale's total, weight and share
    assert "Score 14 = assessed 7 × 2 = 14" in text


def test_lottery_allocation_has_no_score_margin() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
rules: {priority: [{id: need, points: need}]}
allocation: {mechanism: lottery, capacity: 1, lottery: {seed: L}}
"""
    )
    people = [
        {"id": x, "need": n, "days": 0, "poor": False, "level": "a"}
        for x, n in (("a", 9), ("b", 8), ("c", 7))
    ]
    alloc = fa.allocate(policy, people)
    for rid in ("a", "b", "c"):
        f = alloc.explain(rid).facts
        assert all(c.margin_micro is None and c.score_micro is None for c in f.cutoffs)
        assert f.lottery is not None
        assert f.lottery.role == "mechanism"
        d = f.decision
        assert d is not None
        assert d.by == "lottery"
    rows = [json.loads(x) for x in _export(alloc).splitlines()]
    assert all(r["margin"] is None and len(r["draw_key"]) == 16 for r in rows)


def _export(source: Any) -> str:
    import io

    buf = io.StringIO()
    fa.export_explanations(source, buf)
    return buf.getvalue()


def test_sampled_ranges_still_give_the_smallest_change() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
rules: {priority: [{id: wait, points: "days / 100"}]}
ranking: {tie_break: [{lottery: {seed: s}}]}
allocation: {capacity: 1}
"""
    )
    people = [
        {"id": "a", "need": 0, "days": 3005, "poor": False, "level": "a"},
        {"id": "b", "need": 0, "days": 3000, "poor": False, "level": "a"},
    ]
    alloc = fa.allocate(policy, people)
    cf = alloc.explain("b").facts.counterfactuals[0]
    # A million values cannot all be tried; the gap before the first hit is searched.
    assert (cf.attribute, cf.after) == ("days", 3006)


def test_only_changeable_attributes_may_vary_and_target_rank_needs_a_ranking() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
rules: {priority: [{id: need, points: "need + (1 if poor else 0)"}]}
ranking: {tie_break: [{lottery: {seed: s}}]}
allocation: {capacity: 1}
"""
    )
    people = [
        {"id": "a", "need": 5, "days": 0, "poor": False, "level": "a"},
        {"id": "b", "need": 5, "days": 0, "poor": False, "level": "a"},
    ]
    alloc = fa.allocate(policy, people)
    with pytest.raises(ValueError, match="not marked `changeable: true`"):
        alloc.explain("a", attributes=["poor"])
    with pytest.raises(ValueError, match="target_rank applies to a ranking alone"):
        alloc.explain("a", target_rank=1)
    assert alloc.explain("a", attributes=[]).facts.notes[0][0] == "cf_none_given"


def test_catch_all_bands_and_lookups_on_expressions_read_as_words() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
scales:
  s:
    indicators:
      n: {of: need, bands: [{max: 3, points: 1}, {points: 5}]}
      both: {of: "need >= 3 and poor", lookup: {true: 2, false: 0}}
"""
    )
    ev = fa.evaluate(policy, [{"id": "a", "need": 5, "days": 0, "poor": True, "level": "a"}])
    f = ev.explain("a").facts
    assert f.indicators[1].value == "true"
    assert f.indicators[1].band == "true"
    text_en, text_zh = ev.explain("a").to_text(), ev.explain("a").to_text("zh-CN")
    assert "band 2 (any value)" in text_en
    assert "第 2 档（任何值）" in text_zh
    assert "等级 是" in text_zh


def test_caps_are_reported_as_the_engine_applied_them() -> None:
    policy = fa.parse_policy(
        SMALL
        + """
scales:
  s:
    indicators:
      wait: {points: "days / 10", max_points: 12}
      n: {of: need, bands: [{max: 3, points: 1}, {points: 5}], min_points: 2}
"""
    )
    people = [
        {"id": "a", "need": 1, "days": 500, "poor": False, "level": "a"},
        {"id": "b", "need": 5, "days": 30, "poor": False, "level": "a"},
    ]
    ev = fa.evaluate(policy, people)
    a, b = (ev.explain(r, counterfactuals=False).facts.indicators for r in ("a", "b"))
    assert [(i.capped, i.points) for i in a] == [(True, 12.0), (True, 2.0)]
    assert [(i.capped, i.points) for i in b] == [(False, 3.0), (False, 5.0)]
    assert "12 (capped)" in ev.explain("a").to_text()


def test_bad_formats_are_named(example: Any, tmp_path: Any, capsys: Any) -> None:
    from fairalloc.cli import main

    _, alloc = example
    with pytest.raises(ValueError, match="no format 'pdf'; formats: text, md, html, json"):
        alloc.explain("R0000003").render("pdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no format 'xml'; formats: jsonl, csv"):
        fa.export_explanations(alloc, tmp_path / "x", format="xml")  # type: ignore[arg-type]
    root = EXAMPLE.parent / "facility-slots"
    args = [str(root / "policy.yaml"), str(root / "residents.csv")]
    assert main(["explain", *args, "--all", "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "explain residents one by one with --id" in capsys.readouterr().err
