"""Luck: the spread of protected groups' selection rates over lottery seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fairalloc as fa
from fairalloc.audit import luck
from fairalloc.errors import ArgumentError

ROOT = Path(__file__).resolve().parent.parent
POLICY = """
policy: {id: lot, version: "1", title: Lottery}
attributes:
  id: {type: str, role: id}
  gender: {type: category, levels: [female, male], protected: true, ground: gender}
  waited: {type: int, min: 0, max: 10}
grounds_not_collected:
  age: not asked
  occupation: not asked
  economic status: not asked
  physical condition: not asked
  cultural background: not asked
allocation:
  capacity: 30
  mechanism: lottery
  lottery: {seed: published%s}
"""


def _residents(n: int = 120) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {
        "id": [f"L{i:04d}" for i in range(n)],
        "gender": np.array(["female", "male"])[rng.integers(0, 2, n)].tolist(),
        "waited": rng.integers(0, 11, n).tolist(),
    }


def _brute(policy: fa.Policy, data: dict[str, Any], seeds: int) -> dict[str, list[float]]:
    """Each group's rate under each seed, from a full evaluation and allocation per seed."""
    out: dict[str, list[float]] = {"female": [], "male": []}
    gender = np.array(data["gender"])
    for k in range(1, seeds + 1):
        alloc = fa.allocate(fa.evaluate(policy.with_lottery_seed(f"luck/{k}"), data))
        served = {str(i) for i in alloc.served_ids()}
        mask = np.array([i in served for i in data["id"]])
        for g in out:
            out[g].append(float(mask[gender == g].mean()))
    return out


@pytest.mark.parametrize("weight", ["", ", weight: '1 + waited'"])
def test_keys_only_agrees_with_a_full_rerun_per_seed(weight: str) -> None:
    policy = fa.parse_policy(POLICY % weight)
    data = _residents()
    result = luck(fa.allocate(policy, data), seeds=40)
    assert result.method == "keys only"
    brute = _brute(policy, data, 40)
    for row in result.rows:
        rates = np.array(brute[row["group"]])
        assert row["mean"] == pytest.approx(rates.mean(), abs=1e-6)
        assert row["sd"] == pytest.approx(rates.std(ddof=1), abs=1e-6)
        assert (row["low"], row["high"]) == pytest.approx((rates.min(), rates.max()), abs=1e-6)
        assert row["sd"] > 0  # a lottery of 30 among 120: luck is real
        assert row["p5"] <= row["mean"] <= row["p95"]


def test_the_published_rate_is_the_allocation_s_own() -> None:
    policy = fa.parse_policy(POLICY % "")
    data = _residents()
    alloc = fa.allocate(policy, data)
    result = luck(alloc, seeds=10)
    served = {str(i) for i in alloc.served_ids()}
    female = [i for i, g in zip(data["id"], data["gender"], strict=True) if g == "female"]
    row = next(r for r in result.rows if r["group"] == "female")
    assert row["published"] == pytest.approx(
        sum(i in served for i in female) / len(female), abs=1e-6
    )
    assert "## Luck" in result.to_markdown()


def test_a_tie_break_lottery_is_re_run_and_no_tie_means_no_luck() -> None:
    example = ROOT / "examples" / "elderly-care"
    policy = fa.load_policy(example / "policy.yaml")
    result = luck(fa.allocate(policy, example / "residents.csv"), seeds=5)
    assert result.method == "re-run per seed"
    assert all(r["sd"] == 0 for r in result.rows)  # no tie at the cut-off: the seed decides nothing


def test_a_policy_without_a_lottery_is_refused() -> None:
    text = (POLICY % "").replace(
        "  mechanism: lottery\n  lottery: {seed: published}\n", ""
    ) + "rules: {priority: [{id: w, points: waited}]}\n"
    policy = fa.parse_policy(text.replace("max: 10", "max: 200"))
    data = _residents()
    data["waited"] = list(range(len(data["id"])))  # no ties, so no lottery is needed
    with pytest.raises(ArgumentError) as e:
        luck(fa.allocate(policy, data), seeds=5)
    assert e.value.code == "FA624"


def test_the_audit_adds_luck_when_asked(tmp_path: Path) -> None:
    from fairalloc.audit import audit
    from fairalloc.cli import main

    example = ROOT / "examples" / "elderly-care"
    policy = fa.load_policy(example / "policy.yaml", audit=True)
    assert "luck" not in dict(audit(policy, example / "residents.csv").sections)
    report = audit(policy, example / "residents.csv", luck_seeds=5)
    assert dict(report.sections)["luck"].seeds == 5
    out = tmp_path / "a.json"
    args = ["audit", str(example / "policy.yaml"), str(example / "residents.csv")]
    assert main([*args, "--luck", "3", "--format", "json", "--out", str(out)]) == 0
    assert '"luck"' in out.read_text(encoding="utf-8")


def test_luck_is_refused_in_a_published_audit(capsys: pytest.CaptureFixture[str]) -> None:
    # Luck rows give each group's size and rates; a published audit suppresses small groups.
    from fairalloc.audit import audit
    from fairalloc.cli import main

    example = ROOT / "examples" / "elderly-care"
    policy = fa.load_policy(example / "policy.yaml", audit=True)
    with pytest.raises(ArgumentError) as e:
        audit(policy, example / "residents.csv", luck_seeds=5, publication=True)
    assert e.value.code == "FA625"
    assert e.value.argument == "luck_seeds"
    args = ["audit", str(example / "policy.yaml"), str(example / "residents.csv")]
    assert main([*args, "--luck", "3", "--publication"]) == 2
    err = capsys.readouterr().err
    assert "FA625" in err
    assert "Traceback" not in err
