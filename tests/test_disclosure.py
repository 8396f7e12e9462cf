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
    assert spec is not None and spec.loader is not None
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
