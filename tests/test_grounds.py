"""Grounds of §2.1.1: each is carried by protected attributes or stated as not collected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fairalloc as fa
from fairalloc.audit import static_proof
from fairalloc.cli import main
from fairalloc.errors import PolicyError
from fairalloc.policy._model import GROUNDS

HEAD = """
policy: {id: g, version: "1", title: G}
attributes:
  id: {type: str, role: id}
  age: {type: int, min: 0, max: 130, protected: true, ground: age}
"""
REST = """grounds_not_collected:
  gender: not asked
  occupation: not asked
  economic status: not asked
  physical condition: not asked
  cultural background: not asked
"""
ROOT = Path(__file__).resolve().parent.parent


def _codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as e:
        fa.parse_policy(text)
    return [i.code for i in e.value.issues]


def test_a_policy_that_states_every_ground_has_no_warning() -> None:
    cp = fa.compile_policy(fa.parse_policy(HEAD + REST))
    assert [w.code for w in cp.warnings] == []
    proof = static_proof(cp)
    assert [g.ground for g in proof.grounds] == list(GROUNDS)
    assert proof.grounds[0].attributes == ("age",)
    assert all(g.stated for g in proof.grounds)
    assert proof.grounds[1].not_collected == "not asked"


def test_a_ground_left_unstated_is_a_located_warning() -> None:
    text = HEAD + REST.replace("  occupation: not asked\n", "")
    cp = fa.compile_policy(fa.parse_policy(text))
    (w,) = cp.warnings
    assert w.code == "FA313"
    assert "`occupation`" in w.message
    assert w.span.line == 4  # at `attributes`
    md = static_proof(cp).to_markdown()
    assert "| occupation | — | **not stated** (FA313) |" in md


def test_a_ground_on_an_attribute_that_is_not_protected_is_an_error() -> None:
    text = HEAD + "  sex: {type: category, levels: [f, m], ground: gender}\n" + REST.replace(
        "  gender: not asked\n", ""
    )
    assert _codes(text) == ["FA310"]


def test_a_ground_not_collected_but_carried_or_unknown_is_an_error() -> None:
    assert _codes(HEAD + REST + "  age: not asked\n") == ["FA311"]
    assert _codes(HEAD + REST + "  religion: not asked\n") == ["FA312"]
    with pytest.raises(PolicyError) as e:
        fa.parse_policy(HEAD + REST + "  gendr: not asked\n")
    assert "did you mean `gender`?" in str(e.value)


def test_every_example_states_every_ground() -> None:
    for path in sorted((ROOT / "examples").glob("*/policy.yaml")):
        proof = static_proof(fa.load_policy(path, audit=True))
        assert all(g.stated for g in proof.grounds), path


def test_check_reports_the_map(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / "elderly-care" / "policy.yaml"
    assert main(["check", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)[str(path)]
    grounds = {g["ground"]: g["attributes"] for g in doc["grounds"]}
    assert grounds == {
        "age": ["age"],
        "gender": ["gender"],
        "occupation": ["occupation"],
        "economic status": ["hardship"],
        "physical condition": ["disability"],
        "cultural background": ["ethnicity"],
    }
