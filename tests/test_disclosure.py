"""Publication exposes no one: an attacker solving everything published recovers nothing."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

import fairalloc as fa
from fairalloc.audit import group_statistics
from tests.attacker import attack
from tests.conftest import EXAMPLE


def _generated(n: int, seed: int) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("generate", EXAMPLE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    columns: dict[str, Any] = gen.generate(n, seed)
    return columns


def _old_layout(stats: Any) -> dict[str, Any]:
    """What publication used to print: sizes of suppressed cells, one-table complements."""
    d = stats.to_dict()
    hide = ("selected",)
    rows = [{**r, **dict.fromkeys(hide)} if r["suppressed"] else r for r in d["rows"]]
    overall = [{**o, **dict.fromkeys(hide)} if o["suppressed"] else o for o in d["overall"]]
    return {"rows": rows, "overall": overall}


def _report(name: str, stats: Any) -> None:
    pub = stats.to_dict(publication=True)
    result = attack(pub)
    d = pub["disclosure"]
    print(
        f"\n{name}: cells published {d['cells_published']}, suppressed {d['cells_suppressed']}"
        f" (primary {d['primary']}, secondary {d['secondary']}), recovered by the attacker"
        f" {len(result.recovered)} ({result.lps} linear programs)"
    )
    assert result.published == d["cells_published"]
    assert result.suppressed == d["cells_suppressed"]
    assert result.recovered == []
    assert d["pinned"] == 0


@pytest.mark.slow
def test_attacker_recovers_nothing_on_the_example(policy: fa.Policy) -> None:
    alloc = fa.allocate(policy, EXAMPLE / "residents.csv")
    stats = group_statistics(alloc, strata="need")
    # The attack is real: the one-table complements of the preview give cells away ...
    assert attack(_old_layout(stats), sizes_published=True).recovered
    # ... and the publication gives none.
    _report("elderly-care example", stats)


@pytest.mark.slow
def test_attacker_recovers_nothing_on_2000_generated_residents(policy: fa.Policy) -> None:
    alloc = fa.allocate(policy, _generated(2000, 7), capacity=400)
    stats = group_statistics(alloc, strata="need")
    assert attack(_old_layout(stats), sizes_published=True).recovered
    _report("2,000 generated residents", stats)


def test_sweep_and_audit_agree_on_the_same_allocation_and_strata(policy: fa.Policy) -> None:
    residents = EXAMPLE / "residents.csv"
    report = fa.audit.audit(policy, residents, strata="need")
    groups = dict(report.sections)["group statistics"].section
    sweep = fa.sweep(policy, residents, {"capacity": [40]}, strata="need", intersections=True)
    point = sweep.points[0]
    assert len(point.disparities) == len(groups.disparities)
    assert report.for_review()["group statistics"] == len(groups.disparities)
    flat = fa.sweep(policy, residents, {"capacity": [40]}, intersections=True).points[0]
    # --strata changes what is counted: rows within grades, not across them.
    assert all(" in " in label for label in point.four_fifths)
    assert all(" in " not in label for label in flat.four_fifths)
    assert point.four_fifths != flat.four_fifths


def test_audit_headline_counts_what_its_tables_mark(policy: fa.Policy) -> None:
    report = fa.audit.audit(policy, EXAMPLE / "residents.csv", strata="need")
    md = report.to_markdown()
    groups = dict(report.sections)["group statistics"].section
    marked = sum(
        "below four-fifths; interval excludes parity" in line
        for line in md.splitlines()
        if line.startswith("|")
    )
    within = len(groups.disparities)
    across = sum(1 for r in groups.rows if r["disparity"] and r["stratum"] is None)
    assert marked == within + across
    assert f"{within} group(s) below four-fifths" in md
    assert "within a grade is below four-fifths" in md or within
    assert md.count("(across grades: for review, not counted)") == across


def test_publication_lists_no_resident_and_no_small_cell(policy: fa.Policy) -> None:
    import json
    import re

    report = fa.audit.audit(policy, EXAMPLE / "residents.csv", publication=True)
    plain = fa.audit.audit(policy, EXAMPLE / "residents.csv")
    assert "R0000001" in plain.to_markdown()  # the audit itself lists affected residents
    for text in (report.to_markdown(), report.to_json(), report.to_html()):
        assert not re.search(r"R\d{7}", text)
    doc = json.loads(report.to_json())
    assert doc["publication"] is True
    flips = doc["sections"]["flip audit"]
    assert "results" not in flips
    assert all("n_compared" not in a for a in flips["attributes"])
    groups = doc["sections"]["group statistics"]
    hidden = [r for r in groups["rows"] if r["suppressed"]]
    assert hidden
    for r in [*hidden, *(o for o in groups["overall"] if o["suppressed"])]:
        assert r["n"] is None
        assert r["selected"] is None
        assert not any(re.search(r"\d", t.replace("2.2.2", "")) for t in r["suppression"])
    published = {
        (r["grouping"], r["stratum"], r["group"]): r["n"]
        for r in groups["rows"]
        if not r["suppressed"]
    }
    scales = doc["sections"]["scale audit"]["rows"]
    assert scales
    for r in scales:
        assert r["n"] >= groups["min_group"]
        assert published[(r["attribute"], r["stratum"], r["group"])] == r["n"]
    # The whole published audit, attacked: nothing comes back.
    assert attack(groups).recovered == []


def test_published_number_groups_are_bounds_not_residents_values(policy: fa.Policy) -> None:
    import json

    plain = fa.audit.audit(policy, EXAMPLE / "residents.csv")
    ages = {
        r["group"]
        for r in dict(plain.sections)["group statistics"].section.rows
        if r["grouping"] == "age"
    }
    oldest = max(int(g.split("–")[-1]) for g in ages if g[0].isdigit())
    report = fa.audit.audit(policy, EXAMPLE / "residents.csv", publication=True)
    doc = json.loads(report.to_json())
    published = {
        r["group"] for r in doc["sections"]["group statistics"]["rows"] if r["grouping"] == "age"
    }
    assert any(g.endswith("and over") for g in published)
    assert not any(str(oldest) in g for g in published)
