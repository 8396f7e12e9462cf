"""Every command's exit statuses: 0 done, 1 the policy or data at fault (or a finding), 2 usage.

Each case runs the command in-process, as the ``fairalloc`` script does, and checks the status
and that the message names the problem without a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fairalloc.cli import main

ROOT = Path(__file__).resolve().parent.parent
EC = ROOT / "examples" / "elderly-care"
POLICY, DATA, UNFAIR = EC / "policy.yaml", EC / "residents.csv", EC / "unfair-policy.yaml"
ROT = ROOT / "examples" / "activity-places"
MATCH = ROOT / "examples" / "facility-slots"


def status_of(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse ends the process on its own usage errors
        return int(e.code or 0)


@pytest.fixture
def bad_policy(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY.read_text(encoding="utf-8").replace("age >= min_age", "age >= "))
    return path


@pytest.fixture
def bad_data(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    lines = DATA.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(",female,", ",femal,", 1).replace(",male,", ",femal,", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


P, D = str(POLICY), str(DATA)

CASES: list[tuple[str, list[str], int, str]] = [
    # run
    ("run ok", ["run", P, D, "--top", "0"], 0, ""),
    ("run bad policy", ["run", "{bad_policy}", D], 1, "FA2"),
    ("run bad data", ["run", P, "{bad_data}"], 1, "FA504"),
    ("run missing file", ["run", P, "{tmp}/nope.csv"], 1, "nope.csv"),
    ("run negative capacity", ["run", P, D, "--capacity", "-1"], 2, "expected 0 or more"),
    ("run bad --out", ["run", P, D, "--out", "{tmp}/r.txt"], 2, "*.csv or *.json"),
    ("run --out over input", ["run", P, D, "--out", D], 2, "is an input"),
    ("run bad date", ["run", P, D, "--as-of", "2026-13-01"], 2, "YYYY-MM-DD"),
    # simulate
    (
        "simulate ok",
        ["simulate", str(ROT / "policy.yaml"), str(ROT / "residents.csv"), "--rounds", "2"],
        0,
        "",
    ),
    ("simulate zero rounds", ["simulate", P, D, "--rounds", "0"], 2, "expected 1 or more"),
    ("simulate no rotation", ["simulate", P, D, "--rounds", "2"], 1, "allocation.rotation"),
    # validate
    ("validate ok", ["validate", P], 0, ""),
    ("validate bad", ["validate", "{bad_policy}"], 1, ""),
    ("validate no file", ["validate"], 2, "required"),
    # check
    ("check ok", ["check", P], 0, ""),
    ("check finds a read", ["check", str(UNFAIR)], 1, ""),
    ("check bad policy", ["check", "{bad_policy}"], 1, "FA2"),
    ("check json", ["check", P, str(UNFAIR), "--format", "json"], 1, '"violation"'),
    # audit
    ("audit bad format", ["audit", P, D, "--format", "pdf"], 2, "invalid choice"),
    ("audit negative capacity", ["audit", P, D, "--capacity", "-5"], 2, "expected 0"),
    ("audit bad data", ["audit", P, "{bad_data}"], 1, "FA504"),
    # diff
    ("diff same", ["diff", P, P], 0, ""),
    ("diff differs", ["diff", P, str(UNFAIR)], 1, ""),
    ("diff missing", ["diff", P, "{tmp}/nope.yaml"], 1, "nope.yaml"),
    ("diff bad --out", ["diff", P, P, "--out", "{tmp}/d.pdf"], 2, "*.txt"),
    # sweep
    ("sweep ok", ["sweep", P, D, "--param", "min_age=60,65"], 0, ""),
    ("sweep bad param", ["sweep", P, D, "--param", "min_age"], 2, "NAME=V1,V2"),
    ("sweep unknown param", ["sweep", P, D, "--param", "min_ag=1"], 1, "min_age"),
    # explain
    ("explain ok", ["explain", P, D, "--id", "R0000003", "--no-counterfactuals"], 0, ""),
    ("explain unknown id", ["explain", P, D, "--id", "nobody"], 2, "nobody"),
    ("explain --all without --out", ["explain", P, D, "--all"], 2, "--out FILE.jsonl"),
    (
        "explain rotation without rounds",
        ["explain", str(ROT / "policy.yaml"), str(ROT / "residents.csv"), "--id", "x"],
        2,
        "--rounds",
    ),
    (
        "explain matching --all",
        [
            "explain",
            str(MATCH / "policy.yaml"),
            str(MATCH / "residents.csv"),
            "--all",
            "--out",
            "{tmp}/m.jsonl",
        ],
        2,
        "one by one",
    ),
    ("explain bad data", ["explain", P, "{bad_data}", "--id", "R0000003"], 1, "FA504"),
    # schema
    ("schema ok", ["schema", "--out", "{tmp}/s.json"], 0, ""),
    ("schema bad --out", ["schema", "--out", "{tmp}/s.yaml"], 2, "*.json"),
    # examples
    ("examples ok", ["examples", "{tmp}/ex"], 0, "elderly-care"),
    ("examples no folder", ["examples"], 2, "required"),
    # no command
    ("no command", [], 2, ""),
    ("unknown command", ["frobnicate"], 2, "invalid choice"),
]


@pytest.mark.parametrize(
    ("argv", "expected", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_exit_status(
    argv: list[str],
    expected: int,
    says: str,
    tmp_path: Path,
    bad_policy: Path,
    bad_data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    filled = [a.format(tmp=tmp_path, bad_policy=bad_policy, bad_data=bad_data) for a in argv]
    assert status_of(filled) == expected
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert says in out + err


def test_a_refused_output_leaves_the_input_untouched(tmp_path: Path) -> None:
    data = tmp_path / "residents.csv"
    data.write_bytes(DATA.read_bytes())
    assert status_of(["run", P, str(data), "--out", str(data)]) == 2
    assert data.read_bytes() == DATA.read_bytes()


def test_examples_are_copied_once_and_then_refused(tmp_path: Path) -> None:
    assert status_of(["examples", str(tmp_path)]) == 0
    copied = tmp_path / "elderly-care" / "policy.yaml"
    assert copied.read_bytes() == POLICY.read_bytes()
    assert status_of(["run", str(copied), str(tmp_path / "elderly-care" / "residents.csv")]) == 0
    assert status_of(["examples", str(tmp_path)]) == 2  # never overwrites


def test_every_option_has_help() -> None:
    from fairalloc.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"fairalloc {name}: {action.option_strings or action.dest}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from fairalloc import __version__

    assert status_of(["--version"]) == 0
    assert capsys.readouterr().out == f"fairalloc {__version__}\n"
