"""The audit as one report, from Python and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fairalloc as fa
from fairalloc.audit import audit
from fairalloc.cli import main

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "elderly-care" / "policy.yaml"
DATA = ROOT / "examples" / "elderly-care" / "residents.csv"


def _unfair(tmp_path: Path) -> Path:
    text = POLICY.read_text().replace(
        "  priority:\n",
        "  priority:\n"
        '    - {id: civil-servant-bonus, when: "occupation == civil_servant", points: 10}\n',
        1,
    )
    path = tmp_path / "unfair.yaml"
    path.write_text(text)
    return path


def test_fair_example_passes_every_verdict() -> None:
    report = audit(fa.load_policy(POLICY), DATA)
    assert report.ok
    doc = json.loads(report.to_json())
    assert doc["schema"] == "fairalloc.audit/1"
    assert doc["meta"]["capacity"] == 40
    assert len(doc["meta"]["data_hash"]) == 64
    assert set(doc["sections"]) == {
        "static proof",
        "flip audit",
        "proxies",
        "proxy outcomes",
        "group statistics",
        "scale audit",
    }
    assert doc["sections"]["group statistics"]["for_review"] is True
    md = report.to_markdown()
    assert "**Overall: no unjustified use of a protected attribute found**" in md
    assert "proven independent: nothing reads it" in md
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert '<th scope="col">attribute</th>' in page
    assert "<script" not in page


def test_data_hash_does_not_depend_on_row_order(tmp_path: Path) -> None:
    lines = DATA.read_text().splitlines()
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    policy = fa.load_policy(POLICY)
    a, b = audit(policy, DATA), audit(policy, shuffled)
    assert a.meta["data_hash"] == b.meta["data_hash"]
    assert a.to_json() == b.to_json()


@pytest.mark.parametrize("publication", [False, True])
def test_the_report_is_the_same_whatever_the_threads(tmp_path: Path, publication: bool) -> None:
    # Layers and flip values run in threads by default; one after another with workers=1.
    policy = fa.load_policy(_unfair(tmp_path), audit=True)
    alone = audit(policy, DATA, publication=publication, workers=1)
    assert not alone.ok
    for workers in (None, 2, 5):
        assert audit(policy, DATA, publication=publication, workers=workers).to_json() == (
            alone.to_json()
        )
    with pytest.raises(fa.errors.ArgumentError, match="workers must be at least 1, got 0"):
        audit(policy, DATA, workers=0)


def test_unfair_policy_is_caught_by_static_and_flip_layers(tmp_path: Path) -> None:
    path = _unfair(tmp_path)
    with pytest.raises(fa.FairnessViolation):
        fa.load_policy(path)
    report = audit(fa.load_policy(path, audit=True), DATA)
    assert not report.ok
    assert any("civil-servant-bonus" in v and "`occupation`" in v for v in report.violations)
    flips = dict(report.sections)["flip audit"]
    assert flips.attribute("occupation").affected
    assert "rule:civil-servant-bonus" in flips.attribute("occupation").unjustified_parts


def test_cli_check_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(POLICY)]) == 0
    out = capsys.readouterr().out
    assert "`gender` (gender) | independent" in out
    unfair = _unfair(tmp_path)
    assert main(["check", str(unfair)]) == 1
    assert "violation" in capsys.readouterr().out
    report = tmp_path / "audit.html"
    assert (
        main(
            [
                "audit",
                str(POLICY),
                str(DATA),
                "--format",
                "html",
                "--out",
                str(report),
                "--publication",
            ]
        )
        == 0
    )
    assert "<h1>Fairness audit: Community elderly-care places</h1>" in report.read_text()
    capsys.readouterr()
    assert main(["audit", str(unfair), str(DATA), "--format", "json"]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc["ok"] is False
    assert main(["audit", str(unfair), str(DATA), "--format", "json", "--workers", "1"]) == 1
    assert capsys.readouterr().out == out
    with pytest.raises(SystemExit) as e:
        main(["audit", str(unfair), str(DATA), "--workers", "0"])
    assert e.value.code == 2
    assert "expected 1 or more, got 0" in capsys.readouterr().err


def _population_with_districts(n: int = 4000) -> dict[str, object]:
    """The example's generated residents, with districts that follow ethnicity."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("gen", POLICY.parent / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    cols: dict[str, object] = gen.generate(n, seed=3)
    rng = np.random.default_rng(4)
    minority = cols["ethnicity"] != "han"  # type: ignore[operator]
    north = np.where(minority, rng.random(n) < 0.9, rng.random(n) < 0.05)
    others = np.array(["south", "east", "west"], dtype=object)[rng.integers(0, 3, n)]
    cols["district"] = np.where(north, "north", others).astype(object)
    return cols


def test_unfair_variant_is_caught_by_every_layer_that_can_see_it() -> None:
    unfair = fa.load_policy(POLICY.parent / "unfair-policy.yaml", audit=True)
    report = audit(unfair, _population_with_districts())
    assert not report.ok
    sections = dict(report.sections)
    proof = sections["static proof"]
    assert proof.attribute("occupation").status == "violation"
    flips = sections["flip audit"]
    assert "rule:civil-servant-bonus" in flips.attribute("occupation").unjustified_parts
    proxies = sections["proxies"]
    assert any(f.startswith("district acts as a proxy for ethnicity") for f in proxies.flags)
    # The fair policy on the same residents (district unread) flags nothing.
    fair = audit(fa.load_policy(POLICY), _population_with_districts())
    assert fair.ok
    assert not dict(fair.sections)["proxies"].flags


def test_thresholds_are_settable_recorded_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fairalloc.audit import Thresholds
    from fairalloc.errors import ArgumentError

    policy = fa.load_policy(POLICY, audit=True)
    data = DATA
    default = audit(policy, data)
    strict = audit(policy, data, thresholds=Thresholds(four_fifths=0.99, min_group=3))
    assert default.meta["thresholds"]["four_fifths"] == 0.8
    expected = {**Thresholds().to_dict(), "four_fifths": 0.99, "min_group": 3}
    assert strict.meta["thresholds"] == expected
    groups = dict(strict.sections)["group statistics"].section
    assert groups.four_fifths == 0.99
    before = dict(default.sections)["group statistics"].section
    assert sum(r["four_fifths"] for r in groups.rows) > sum(r["four_fifths"] for r in before.rows)
    assert "A ratio below 0.99 fails" in strict.to_markdown()
    with pytest.raises(ArgumentError) as e:
        Thresholds(association=0)
    assert e.value.code == "FA623"
    out = tmp_path / "a.json"
    args = ["audit", str(POLICY), str(data), "--format", "json"]
    assert main([*args, "--association", "0.5", "--out", str(out)]) in (0, 1)
    assert json.loads(out.read_text(encoding="utf-8"))["meta"]["thresholds"]["association"] == 0.5
    # Every threshold has an option, and each reaches the report.
    given = {"association": 0.4, "influence": 0.1, "four_fifths": 0.7, "effect": 0.2}
    given |= {"confidence": 0.9, "min_group": 4, "min_expected": 2.0}
    assert set(given) == set(Thresholds().to_dict())
    options = [x for k, v in given.items() for x in ("--" + k.replace("_", "-"), str(v))]
    assert main([*args, *options, "--out", str(out)]) in (0, 1)
    assert json.loads(out.read_text(encoding="utf-8"))["meta"]["thresholds"] == given
    capsys.readouterr()
    assert main([*args, "--min-group", "0"]) == 2
    assert "FA623" in capsys.readouterr().err
