# ruff: noqa: E501 -- one policy fragment per line reads best as a table
"""A corpus of policies that try to discriminate, each caught by one of the three checks.

Every part of a policy that can read an attribute is tried with a protected one (the static
proof refuses it at load, ``FA300``); proxies single and paired, through points, rules,
reserves, lottery weights and tie-breaks, and a need-declared proxy, are judged by what they do
to outcomes (:func:`fairalloc.audit.outcome_proxies`: flagged, or reported for review); an
attribute that records a ground without being protected is a load error (``FA310``). The fair
example passes all three. ``python -m pytest tests/test_fairness_corpus.py -s`` prints the
table of which check caught each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc.allocation import allocate_evaluation
from fairalloc.audit import flip_audit, outcome_proxies, static_proof
from fairalloc.errors import PolicyError

ROOT = Path(__file__).resolve().parent.parent
N = 1500

BASE = """
policy: {id: corpus, version: "1", title: Corpus}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 120, protected: true, ground: age}
  gender: {type: category, levels: [female, male], protected: true, ground: gender}
  occupation: {type: category, levels: [retired, worker, farmer], protected: true, ground: occupation}
  hardship: {type: category, levels: [none, dibao], protected: true, ground: economic status}
  disability: {type: bool, protected: true, ground: physical condition}
  ethnicity: {type: category, levels: [han, hui], protected: true, ground: cultural background}
  need: {type: int, min: 0, max: 100%(NEED)s}
  district: {type: category, levels: [a, b]}
  is_female: {type: bool%(FEMALE)s}
  f1: {type: bool}
  f2: {type: bool}
  height: {type: int, min: 120, max: 200}
  c1: {type: category, levels: [gym, pool, none]}
  c2: {type: category, levels: [gym, pool, none]}
%(EXTRA_ATTRS)s
scales:
  s: {indicators: {n: {points: "need / 10"}}}
ranking: {tie_break: [{lottery: {seed: published}}]}
"""


def _policy_text(body: str, *, need: str = "", female: str = "", attrs: str = "") -> str:
    text = BASE % {"NEED": need, "FEMALE": female, "EXTRA_ATTRS": attrs}
    if body.startswith("scales:") or "\nscales:" in body:
        # The body's scale joins the base's need scale.
        text = text.replace('scales:\n  s: {indicators: {n: {points: "need / 10"}}}\n', "")
        body = body.replace("scales: {", 'scales: {s: {indicators: {n: {points: "need / 10"}}}, ')
    if "ranking:" in body:
        text = text.replace("ranking: {tie_break: [{lottery: {seed: published}}]}\n", "")
    if "allocation:" not in body:
        body += f"allocation: {{capacity: {N // 5}}}\n"
    return text + body


def _residents(seed: int = 11) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    eth = rng.integers(0, 2, N)
    f1 = rng.integers(0, 2, N).astype(bool)
    f2 = rng.integers(0, 2, N).astype(bool)
    female = f1 ^ f2
    return {
        "id": [f"C{i:05d}" for i in range(N)],
        "age": rng.integers(60, 100, N).tolist(),
        "gender": np.where(female, "female", "male").tolist(),
        "occupation": np.array(["retired", "worker", "farmer"])[rng.integers(0, 3, N)].tolist(),
        "hardship": np.array(["none", "dibao"])[rng.integers(0, 2, N)].tolist(),
        "disability": rng.integers(0, 2, N).astype(bool).tolist(),
        "ethnicity": np.array(["han", "hui"])[eth].tolist(),
        "need": rng.integers(0, 101, N).tolist(),
        "district": np.array(["a", "b"])[np.where(rng.random(N) < 0.85, eth, 1 - eth)].tolist(),
        "is_female": female.tolist(),
        "f1": f1.tolist(),
        "f2": f2.tolist(),
        "height": np.where(female, rng.integers(140, 170, N), rng.integers(160, 195, N)).tolist(),
        "c1": np.array(["gym", "pool", "none"])[rng.integers(0, 3, N)].tolist(),
        "c2": np.array(["gym", "pool", "none"])[rng.integers(0, 3, N)].tolist(),
    }


MATCHING = """allocation:
  matching:
    resources:
      - {id: gym, capacity: 100%s}
      - {id: pool, capacity: 100}
    preferences: [c1, c2]
"""

#: name -> (policy body, the check that must catch it)
STATIC: dict[str, str] = {
    "eligibility reads age": "rules: {eligibility: [{id: r, when: 'age >= 70'}]}\n",
    "exclusion reads gender": "rules: {exclusions: [{id: x, when: 'gender == male', reason: r}]}\n",
    "priority condition reads gender": "rules: {priority: [{id: p, when: 'gender == female', points: 5}]}\n",
    "priority points read age": "rules: {priority: [{id: p, points: 'age / 10'}]}\n",
    "eligibility reads occupation with in": "rules: {eligibility: [{id: r, when: 'occupation in [retired, worker]'}]}\n",
    "exclusion reads hardship": "rules: {exclusions: [{id: x, when: 'hardship == none', reason: r}]}\n",
    "priority reads disability": "rules: {priority: [{id: p, when: disability, points: 3}]}\n",
    "priority reads ethnicity": "rules: {priority: [{id: p, when: 'ethnicity == han', points: 2}]}\n",
    "derived value reads gender": "derived: {w: 'gender == female'}\nrules: {priority: [{id: p, when: w, points: 5}]}\n",
    "chain of two derived values": "derived: {w: 'age > 80', v: 'w and need > 10'}\nrules: {priority: [{id: p, when: v, points: 5}]}\n",
    "chain of three derived values": "derived: {a1: 'hardship == dibao', a2: 'not a1', a3: 'a2 or need > 90'}\nrules: {eligibility: [{id: r, when: a3}]}\n",
    "derived number reads age": "derived: {years: 'age - 60'}\nrules: {priority: [{id: p, points: 'years / 5'}]}\n",
    "indicator bands over age": "scales: {t: {indicators: {i: {of: age, bands: [{min: 80, points: 10}, {points: 0}]}}}}\n",
    "indicator lookup on ethnicity": "scales: {t: {indicators: {i: {of: ethnicity, lookup: {han: 5, hui: 0}}}}}\n",
    "indicator points read disability": "scales: {t: {indicators: {i: {points: '3 if disability else 0'}}}}\n",
    "indicator over a derived value reading occupation": "derived: {farm: 'occupation == farmer'}\nscales: {t: {indicators: {i: {points: '2 if farm else 0'}}}}\n",
    "tie-break by age": "ranking: {tie_break: [{by: age, order: desc}, {lottery: {seed: published}}]}\n",
    "tie-break by a derived value of gender": "derived: {m: 'gender == male'}\nranking: {tie_break: [{by: m, order: desc}, {lottery: {seed: published}}]}\n",
    "reserve for an ethnic group": "allocation:\n  capacity: 300\n  reserves: [{id: r, share: 0.5, eligible: 'ethnicity == hui'}]\n",
    "reserve priority by age": "allocation:\n  capacity: 300\n  reserves: [{id: r, share: 0.5, eligible: 'need > 50', priority: age}]\n",
    "reserve for an occupation through a derived value": "derived: {w: 'occupation == worker'}\nallocation:\n  capacity: 300\n  reserves: [{id: r, share: 0.3, eligible: w}]\n",
    "lottery weight reads hardship": "allocation:\n  capacity: 300\n  mechanism: lottery\n  lottery: {seed: s, weight: '2 if hardship == none else 1'}\n",
    "lottery weight reads age": "allocation:\n  capacity: 300\n  mechanism: lottery\n  lottery: {seed: s, weight: 'age / 60'}\n",
    "rotation bands read gender": "allocation:\n  capacity: 300\n  rotation: {capacity: 300, bands: \"1 if gender == male else 0\"}\n",
    "rotation bands read age": "allocation:\n  capacity: 300\n  rotation: {capacity: 300, bands: 'age'}\n",
    "matching resource eligible reads gender": MATCHING % ", eligible: 'gender == male'",
    "matching resource priority reads age": MATCHING % ", priority: age",
    "matching eligibility through a derived value of ethnicity": "derived: {h: 'ethnicity == han'}\n"
    + MATCHING % ", eligible: h",
    "eligibility reads age and need together": "rules: {eligibility: [{id: r, when: 'age < 90 and need > 5'}]}\n",
    "exclusion reads disability through not": "rules: {exclusions: [{id: x, when: 'not disability', reason: r}]}\n",
}

OUTCOME: dict[str, tuple[str, dict[str, str]]] = {
    "district points tracking ethnicity": (
        "rules: {priority: [{id: p, when: 'district == a', points: 10}]}\n", {}
    ),
    "district in an eligibility rule": ("rules: {eligibility: [{id: r, when: 'district == a or need > 95'}]}\n", {}),
    "district in an exclusion": ("rules: {exclusions: [{id: x, when: 'district == b and need < 97', reason: r}]}\n", {}),
    "district through a derived value": (
        "derived: {near: 'district == a'}\nrules: {priority: [{id: p, when: near, points: 10}]}\n", {}
    ),
    "district decides a reserve": (
        "allocation:\n  capacity: 300\n  reserves: [{id: r, share: 0.75, eligible: 'district == a'}]\n",
        {},
    ),
    "district as a lottery weight": (
        "allocation:\n  capacity: 300\n  mechanism: lottery\n  lottery: {seed: s, weight: \"4 if district == a else 1\"}\n",
        {},
    ),
    "is_female points": ("rules: {priority: [{id: p, when: is_female, points: 5}]}\n", {}),
    "is_female in eligibility": ("rules: {eligibility: [{id: r, when: 'is_female or need > 95'}]}\n", {}),
    "is_female declared a need": (
        "rules: {priority: [{id: p, when: is_female, points: 5}]}\n", {"female": ", need: higher"}
    ),
    "two flags whose XOR is gender": (
        "derived: {odd: 'f1 != f2'}\nrules: {priority: [{id: p, when: odd, points: 10}]}\n", {}
    ),
    "height bands standing for gender": (
        "scales: {t: {indicators: {h: {of: height, bands: [{max: 165, points: 8}, {points: 0}]}}}}\n",
        {},
    ),
}

LOAD: dict[str, tuple[str, str]] = {
    "a ground on an unprotected attribute, read by points": (
        "rules: {priority: [{id: p, when: 'faith == a', points: 5}]}\n",
        "  faith: {type: category, levels: [a, b], ground: cultural background}",
    ),
    "a ground on an unprotected attribute, read by a reserve": (
        "allocation:\n  capacity: 300\n  reserves: [{id: r, share: 0.5, eligible: 'income < 500'}]\n",
        "  income: {type: int, min: 0, max: 10000, ground: economic status}",
    ),
}


@pytest.fixture(scope="module")
def residents() -> dict[str, Any]:
    return _residents()


CAUGHT: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(STATIC))
def test_the_static_proof_refuses_every_unjustified_read(name: str) -> None:
    text = _policy_text(STATIC[name])
    with pytest.raises(PolicyError) as e:
        fa.parse_policy(text)
    assert {i.code for i in e.value.issues} == {"FA300"}, str(e.value)
    assert not static_proof(fa.parse_policy(text, audit=True)).ok
    CAUGHT[name] = "static proof (FA300)"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OUTCOME))
def test_proxies_are_caught_by_what_they_do(name: str, residents: dict[str, Any]) -> None:
    body, kw = OUTCOME[name]
    policy = fa.parse_policy(_policy_text(body, **kw), audit=True)
    assert static_proof(policy).ok  # nothing protected is read: only the outcome check sees it
    ev = fa.evaluate(policy, residents)
    spec = policy.allocation
    assert spec is not None
    report = outcome_proxies(allocate_evaluation(ev, capacity=spec.capacity, measure_only=True))
    hits = [r for r in report.rows if r["flagged"] or r["for_review"]]
    assert hits, report.to_markdown()
    if kw.get("female"):
        assert all(r["for_review"] and not r["flagged"] for r in hits)
        CAUGHT[name] = "outcome proxies (for review: declared need)"
    else:
        assert not report.ok
        CAUGHT[name] = "outcome proxies (flagged)"


@pytest.mark.parametrize("name", sorted(LOAD))
def test_an_undeclared_ground_is_a_load_error(name: str) -> None:
    body, attr = LOAD[name]
    with pytest.raises(PolicyError) as e:
        fa.parse_policy(_policy_text(body, attrs=attr))
    assert "FA310" in {i.code for i in e.value.issues}
    CAUGHT[name] = "load (FA310)"


def test_the_corpus_is_large_enough() -> None:
    assert len(STATIC) + len(OUTCOME) + len(LOAD) >= 40


@pytest.mark.slow
def test_the_fair_example_passes_all_three() -> None:
    path = ROOT / "examples" / "elderly-care" / "policy.yaml"
    policy = fa.load_policy(path, audit=True)
    assert static_proof(policy).ok
    ev = fa.evaluate(policy, ROOT / "examples" / "elderly-care" / "residents.csv")
    assert flip_audit(ev, capacity=40).ok
    assert outcome_proxies(allocate_evaluation(ev, capacity=40, measure_only=True)).ok


def test_zz_print_the_table() -> None:
    # Run last in the module (by name): the table of which check caught each policy.
    for name in sorted(CAUGHT):
        print(f"| {name} | {CAUGHT[name]} |")
