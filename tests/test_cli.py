from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fairalloc.cli import main

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "examples" / "elderly-care" / "policy.yaml"
DATA = ROOT / "examples" / "elderly-care" / "residents.csv"


def test_run_prints_allocation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(POLICY), str(DATA), "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "Community elderly-care places (elderly-care-places v2026.1)" in out
    assert "200 residents" in out
    assert "ranked by score (desc), waiting_days (desc), lottery" in out
    assert "allocation: priority, 40 units, 40 served" in out
    assert "special-hardship: 10 of 10 units, cut-off score" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["position", "id"])
    assert lines[header + 1].split()[0] == "1"
    assert "more (use --out to write all)" in out


def test_run_without_allocation_prints_ranking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = POLICY.read_text()
    text = text[: text.index("\nallocation:")] + "\n"
    # Without the reserve, its justified use would name nothing: drop it too.
    start = text.index("  - attribute: hardship\n    reserve:")
    text = text[:start] + text[text.index("\nparameters:", start) + 1 :]
    policy = tmp_path / "ranking-only.yaml"
    policy.write_text(text)
    assert main(["run", str(policy), str(DATA), "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "id"])
    assert lines[header + 1].split()[0] == "1"
    out_csv = tmp_path / "r.csv"
    assert main(["run", str(policy), str(DATA), "--top", "0", "--out", str(out_csv)]) == 0
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["rank"] == "1"
    assert "points.need.health.adl" in rows[0]
    assert [int(r["rank"]) for r in rows] == sorted(int(r["rank"]) for r in rows)


def test_run_writes_csv_and_json_identically_twice(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["run", str(POLICY), str(DATA), "--top", "0", "--out", str(a)]) == 0
    assert main(["run", str(POLICY), str(DATA), "--top", "0", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    with a.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["position"] == "1"
    assert sum(r["served"] == "True" for r in rows) == 40
    j = tmp_path / "r.json"
    assert (
        main(["run", str(POLICY), str(DATA), "--top", "0", "--out", str(j), "--capacity", "20"])
        == 0
    )
    doc = json.loads(j.read_text())
    assert doc["policy"]["id"] == "elderly-care-places"
    assert doc["capacity"] == 20
    assert [c["size"] for c in doc["categories"]] == [5, 15]
    assert doc["served"] == 20


def test_validate_reports_all_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        POLICY.read_text()
        .replace('when: "age >= min_age"', 'when: "agee >= min_age"')
        .replace("lookup: {intact: 0, mild: 5,", "lookup: {intakt: 0, mild: 5,")
    )
    assert main(["validate", str(bad), str(POLICY)]) == 1
    out = capsys.readouterr().out.splitlines()
    errors = [line for line in out if ": FA" in line]
    assert len(errors) == 3  # unknown name; unknown level; level without points
    assert errors[0].startswith(f"{bad}:")
    assert "FA202 unknown name `agee`" in "\n".join(out)
    assert any(line == f"{POLICY}: ok (elderly-care-places v2026.1)" for line in out)


def test_validate_ok_and_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(POLICY)]) == 0
    assert main(["validate", "nope.yaml"]) == 1
    assert "nope.yaml: FA104 cannot read the file" in capsys.readouterr().out


def test_schema(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "fairalloc policy"


def test_bad_data_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.csv"
    text = DATA.read_text().splitlines()
    text[1] = text[1].replace(",female,", ",femal,", 1).replace(",male,", ",femal,", 1)
    data.write_text("\n".join(text) + "\n")
    assert main(["run", str(POLICY), str(data)]) == 1
    err = capsys.readouterr().err
    assert "FA504" in err
    assert "femal" in err


def test_usage_errors() -> None:
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == 2


def test_non_utf8_files_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_policy = tmp_path / "p.yaml"
    bad_policy.write_bytes("policy: {id: t, title: '\u00e9'}\n".encode("latin-1"))
    assert main(["validate", str(bad_policy)]) == 1
    assert "FA104 the file is not UTF-8 text" in capsys.readouterr().out
    data = tmp_path / "d.csv"
    data.write_bytes(DATA.read_bytes().replace(b"female", "f\u00e9male".encode("latin-1"), 1))
    assert main(["run", str(POLICY), str(data)]) == 1
    assert "not UTF-8 text" in capsys.readouterr().err


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    data = tmp_path / "bom.csv"
    data.write_bytes(b"\xef\xbb\xbf" + DATA.read_bytes())
    assert main(["run", str(POLICY), str(data), "--top", "0"]) == 0


def test_run_prints_a_matching(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slots = ROOT / "examples" / "facility-slots"
    args = ["run", str(slots / "policy.yaml"), str(slots / "residents.csv"), "--top", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "matching: deferred acceptance, 104 served of 137 eligible" in out
    assert "seniors_gym_fri: 10 of 10 units" in out
    assert main([*args, "--out", str(tmp_path / "m.csv")]) == 2  # refused before the run
    assert not (tmp_path / "m.csv").exists()
    assert main([*args, "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["served"] == 104


def test_run_points_rotation_policies_to_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    places = ROOT / "examples" / "activity-places"
    assert main(["run", str(places / "policy.yaml"), str(places / "residents.csv")]) == 0
    assert "`fairalloc simulate` runs them" in capsys.readouterr().out
