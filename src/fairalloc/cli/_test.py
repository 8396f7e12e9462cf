"""``fairalloc test CASES...``: run named cases files, with expected against actual on failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fairalloc as fa
from fairalloc.errors import ArgumentError
from fairalloc.testing._cases import load_cases, run_case

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``test`` command."""
    cmd = sub.add_parser(
        "test",
        help="run named test cases of policies (cases.yaml files)",
        description="Run every case of each cases file: the residents and what each must get."
        " Prints each failing case with the fields whose expected and actual values differ.",
    )
    cmd.add_argument(
        "cases",
        type=Path,
        nargs="+",
        help="cases files (YAML), or folders in which every cases.yaml is run",
    )
    cmd.set_defaults(handler=handle)


def _cases_files(paths: list[Path]) -> list[Path]:
    """Each file as given; each folder as the ``cases.yaml`` files under it, in sorted order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob("cases.yaml"))
            if not found:
                raise ArgumentError(
                    "FA622",
                    f"{path} holds no cases.yaml file",
                    argument="cases",
                    value=str(path),
                    valid="a cases file, or a folder with a cases.yaml in it",
                )
            files.extend(found)
        else:
            files.append(path)
    return files


def handle(args: argparse.Namespace) -> int:
    """Run the command; returns 1 when any case fails or a file cannot be used."""
    failed = passed = 0
    for path in _cases_files(args.cases):
        cases = load_cases(path)
        policy = fa.load_policy(cases.policy_path, as_of=cases.as_of)
        for case in cases.cases:
            result = run_case(policy, case)
            if result.passed:
                passed += 1
            else:
                failed += 1
                print(result.report(str(path)), file=sys.stdout)
    total = passed + failed
    print(f"{passed} of {total} case{'s' * (total != 1)} passed", file=sys.stdout)
    return 1 if failed else 0
