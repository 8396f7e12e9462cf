"""The decision-log commands, retention, and the note that a policy file's seed is no draw."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fairalloc as fa
from fairalloc import cli
from fairalloc.records import (
    DecisionLog,
    add_period,
    due_for_erasure,
    retention_schedule,
    with_seed,
)

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "examples" / "elderly-care" / "policy.yaml")
DATA = str(ROOT / "examples" / "elderly-care" / "residents.csv")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_whole_procedure_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = str(tmp_path / "office.db")
    op = ("--operator", "clerk")
    assert (
        run(
            capsys,
            "log",
            "register",
            log,
            POLICY,
            "--approved-by",
            "committee",
            "--approved-at",
            "2026-11-20",
            *op,
        )[0]
        == 0
    )
    status, out, _ = run(capsys, "freeze", log, POLICY, DATA, *op)
    assert status == 0
    assert "record 1: freeze of 200 applicants" in out
    status, out, _ = run(
        capsys,
        "draw",
        log,
        "--freeze",
        "1",
        "--public-randomness",
        "7 12 19",
        "--how",
        "welfare lottery",
        *op,
    )
    assert (status, "(derived) for freeze 1" in out) == (0, True)
    decision_out = tmp_path / "decision.json"
    status, out, _ = run(
        capsys,
        "decide",
        log,
        POLICY,
        DATA,
        "--freeze",
        "1",
        "--seed",
        "2",
        "--out",
        str(decision_out),
        *op,
    )
    assert status == 0
    assert "record 3: decision, 40 served of 200" in out
    assert json.loads(decision_out.read_text("utf-8"))["draw"].startswith("a recorded draw")
    status, out, _ = run(capsys, "log", "head", log)
    head = tmp_path / "head.json"
    head.write_text(out, encoding="utf-8")
    assert json.loads(out)["size"] == 4
    receipt = tmp_path / "receipt.json"
    status, out, _ = run(
        capsys,
        "receipt",
        "make",
        log,
        POLICY,
        DATA,
        "--decision",
        "3",
        "--resident",
        "R0000115",
        "--out",
        str(receipt),
    )
    assert status == 0
    status, out, _ = run(capsys, "receipt", "check", str(receipt), str(head))
    assert (status, "receipt verifies: R0000115 served in decision 3" in out) == (0, True)
    export = tmp_path / "log.jsonl"
    openings = tmp_path / "openings.jsonl"
    assert run(capsys, "log", "export", log, str(export), "--openings", str(openings))[0] == 0
    status, out, _ = run(capsys, "verify", log, "--policy", POLICY, "--data", DATA)
    assert (status, out.splitlines()[-1]) == (0, "OK")
    status, out, _ = run(
        capsys,
        "verify",
        str(export),
        "--export",
        "--policy",
        POLICY,
        "--data",
        DATA,
        "--openings",
        str(openings),
        "--head",
        str(head),
    )
    assert (status, "decisions re-run to identical outcomes: 1 (3)" in out) == (0, True)
    status, out, _ = run(capsys, "log", "show", log)
    assert [line.split()[2] for line in out.splitlines()] == [
        "policy",
        "freeze",
        "seed",
        "decision",
    ]
    # tampering: exit 1, naming the record
    lines = export.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace('\\"count\\":200', '\\"count\\":201')
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, out, _ = run(capsys, "verify", str(export), "--export")
    assert status == 1
    assert "FA721 record 1:" in out
    # refusals are messages with exit 1, never tracebacks
    status, _, err = run(capsys, "decide", log, POLICY, DATA, "--freeze", "1", "--seed", "2", *op)
    assert (status, err.startswith("FA711 record 2:")) == (1, True)
    status, _, err = run(capsys, "draw", log, "--freeze", "0", "--seed", "x", "--how", "h", *op)
    assert (status, err.startswith("FA704 record 0:")) == (1, True)
    # erasure
    status, out, _ = run(capsys, "log", "erase", log, "R0000115", "--reason", "art. 47", *op)
    assert (status, "openings destroyed in records 1, 3" in out) == (0, True)
    status, out, _ = run(capsys, "verify", log, "--policy", POLICY, "--data", DATA)
    assert status == 0
    assert "not re-run: record 3: openings of record 1 were destroyed by erasure record 4" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = str(tmp_path / "office.db")
    with pytest.raises(SystemExit) as stop:
        cli.main(["draw", log, "--freeze", "1", "--how", "h", "--operator", "o"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        cli.main(["decide", log, POLICY, DATA, "--freeze", "-1", "--operator", "o"])
    assert stop.value.code == 2
    capsys.readouterr()


def test_a_policy_files_seed_says_it_is_no_draw() -> None:
    policy = fa.load_policy(POLICY)
    allocation = fa.allocate(policy, DATA)
    assert allocation.summary()["draw"] == "not a draw: the policy file's seed is known in advance"
    ranking = json.loads(fa.evaluate(policy, DATA).ranking.to_json())
    assert ranking["draw"].startswith("not a draw")
    seeded = fa.allocate(with_seed(policy, "drawn-after-freeze"), DATA)
    assert seeded.summary()["draw"].startswith("a recorded draw")
    no_lottery = fa.parse_policy(
        'policy: {id: d, version: "1", title: D}\n'
        "attributes: {id: {type: str, role: id}, need: {type: int, min: 0, max: 9}}\n"
        'rules: {priority: [{id: n, points: "need"}]}\nallocation: {capacity: 1}\n'
    )
    assert "draw" not in fa.allocate(no_lottery, [{"id": "a", "need": 1}]).summary()


RETAINED = """
policy: {id: kept, version: "1", title: Kept}
attributes: {id: {type: str, role: id}, need: {type: int, min: 0, max: 9}}
rules: {priority: [{id: n, points: "need"}]}
allocation: {capacity: 1}
records: {retention: {data: 2 years, openings: 6 months}}
"""


def test_retention_is_declared_listed_and_due(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = fa.parse_policy(RETAINED)
    assert [(r.what, r.period) for r in retention_schedule(policy)] == [
        ("data", "2 years"),
        ("openings", "6 months"),
        ("log", "permanent"),
    ]
    assert add_period(dt.date(2026, 8, 31), "6 months") == dt.date(2027, 2, 28)
    assert add_period(dt.date(2024, 2, 29), "1 year") == dt.date(2025, 2, 28)
    assert add_period(dt.date(2026, 1, 1), "90 days") == dt.date(2026, 4, 1)
    with DecisionLog.open(tmp_path / "log.db") as log:
        p = log.register_policy(policy, approved_by="c", approved_at="2026-01-01", operator="o")
        log.freeze(
            p.seq,
            [{"id": "a", "need": 1}],
            policy=policy,
            operator="o",
            time="2026-01-10T08:00:00Z",
        )
        assert due_for_erasure(log, policy, dt.date(2026, 7, 9)) == []
        (due,) = due_for_erasure(log, policy, dt.date(2026, 7, 10))
        assert (due.record, due.kind, due.due, due.residents) == (
            1,
            "freeze",
            dt.date(2026, 7, 10),
            1,
        )
        log.erase("a", reason="retention over", operator="dpo")
        assert due_for_erasure(log, policy, dt.date(2027, 1, 1)) == []
    path = tmp_path / "kept.yaml"
    path.write_text(RETAINED, encoding="utf-8")
    status, out, _ = run(capsys, "log", "retention", str(path))
    assert status == 0
    assert out.splitlines()[1].split()[:3] == ["openings", "6", "months"]
    with pytest.raises(fa.PolicyError):
        fa.parse_policy(RETAINED.replace("6 months", "six months"))


@pytest.mark.slow
def test_the_walkthrough_example_runs(tmp_path: Path) -> None:
    script = ROOT / "examples" / "records" / "walkthrough.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7. anyone, from the export alone: OK" in done.stdout
    assert "receipt against the published head: OK" in done.stdout
