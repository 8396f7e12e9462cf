"""The fairalloc pytest plugin: one test per policy and property, options and ini settings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
ELDERLY = ROOT / "examples" / "elderly-care"
SLOTS = ROOT / "examples" / "facility-slots"

#: Few examples: these runs test the plugin, not the policies.
QUICK = ("--fairalloc-examples", "5", "-p", "no:cacheprovider")

ELDERLY_ITEMS = [
    "load",
    "age-invariance",
    "gender-invariance",
    "occupation-invariance",
    "ethnicity-invariance",
    "hardship-invariance",
    "disability-invariance",
    "need-monotonicity",
    "equal-treatment",
    "anonymity",
    "determinism",
    "allocation",
]


@pytest.fixture
def policies(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with the fair and the unfair example policies at its root."""
    shutil.copy(ELDERLY / "policy.yaml", pytester.path / "policy.yaml")
    shutil.copy(ELDERLY / "unfair-policy.yaml", pytester.path / "unfair-policy.yaml")
    return pytester


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def test_one_item_per_policy_and_property(policies: pytest.Pytester) -> None:
    result = policies.runpytest("--fairalloc-policies", "policy.yaml", "--collect-only", "-q")
    assert collected(result) == [f"policy.yaml::{name}" for name in ELDERLY_ITEMS]


def test_the_fair_example_passes(policies: pytest.Pytester) -> None:
    result = policies.runpytest("--fairalloc-policies", "policy.yaml", "-v", *QUICK)
    result.assert_outcomes(passed=len(ELDERLY_ITEMS))
    result.stdout.fnmatch_lines(
        [
            "fairalloc: 1 policy file, the current hypothesis profile, 5 examples",
            "policy.yaml::occupation-invariance PASSED*",
            "policy.yaml::allocation PASSED*",
        ]
    )


@pytest.mark.slow
def test_the_unfair_example_fails_its_load_and_occupation_invariance(
    policies: pytest.Pytester,
) -> None:
    result = policies.runpytest(
        "--fairalloc-policies", "unfair-policy.yaml", "--fairalloc-examples", "30", "-rf"
    )
    result.assert_outcomes(passed=len(ELDERLY_ITEMS) - 2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ unfair-policy.yaml: load and static checks _*",
            "unfair-policy.yaml: 1 problem in policy:",
            "unfair-policy.yaml:*: FA300 rule `civil-servant-bonus` reads protected attribute"
            " `occupation`*without a justified use",
            "*_ unfair-policy.yaml: property 'occupation-invariance' _*",
            "unfair-policy.yaml: property 'occupation-invariance': resident r1 is treated"
            " differently when only its protected attribute `occupation` changes from *",
            "    priority rule `civil-servant-bonus` (unfair-policy.yaml:*): *points *",
            "  resident: {'resident_id': 'r1', *",
            "FAILED unfair-policy.yaml::load*",
            "FAILED unfair-policy.yaml::occupation-invariance*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_policy_that_does_not_load_is_one_failing_item(pytester: pytest.Pytester) -> None:
    broken = (ELDERLY / "policy.yaml").read_text().replace('"age >= min_age"', '"age >= min_agee"')
    pytester.path.joinpath("broken.yaml").write_text(broken)
    result = pytester.runpytest("--fairalloc-policies", "broken.yaml", *QUICK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "broken.yaml: 1 problem in policy:",
            "broken.yaml:*:*: FA2* *min_agee*",
            "FAILED broken.yaml::load*",
        ]
    )


def test_properties_option_keeps_the_load_check_and_the_named_properties(
    policies: pytest.Pytester,
) -> None:
    result = policies.runpytest(
        "--fairalloc-policies",
        "policy.yaml",
        "unfair-policy.yaml",
        "--fairalloc-properties",
        "occupation-invariance,determinism",
        "--collect-only",
        "-q",
    )
    assert collected(result) == [
        "policy.yaml::load",
        "policy.yaml::occupation-invariance",
        "policy.yaml::determinism",
        "unfair-policy.yaml::load",
        "unfair-policy.yaml::occupation-invariance",
        "unfair-policy.yaml::determinism",
    ]


def test_inapplicable_properties_are_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    shutil.copy(SLOTS / "policy.yaml", pytester.path / "slots.yaml")
    result = pytester.runpytest("--fairalloc-policies", "slots.yaml", "-rs", *QUICK)
    result.assert_outcomes(passed=6, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * slots.yaml: no attribute declares `need`*"])


@pytest.mark.slow
def test_ini_globs_profile_and_properties(policies: pytest.Pytester) -> None:
    policies.mkdir("policies")
    for name in ("policy.yaml", "unfair-policy.yaml"):
        policies.path.joinpath(name).rename(policies.path / "policies" / name)
    policies.mkdir("tests").joinpath("test_nothing.py").write_text("def test_ok():\n    pass\n")
    policies.makeini(
        """
        [pytest]
        testpaths = tests
        fairalloc_policies =
            policies/*.yaml
        fairalloc_profile = quick
        fairalloc_properties = anonymity
        """
    )
    result = policies.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)  # the test, two loads, two anonymity checks
    result.stdout.fnmatch_lines(
        [
            "fairalloc: 2 policy files, quick",
            "tests/test_nothing.py::test_ok PASSED*",
            "policies/policy.yaml::load PASSED*",
            "policies/policy.yaml::anonymity PASSED*",
            "policies/unfair-policy.yaml::load FAILED*",
            "policies/unfair-policy.yaml::anonymity PASSED*",
        ]
    )
    # A run narrowed to some tests does not check the policies of the ini file...
    narrowed = policies.runpytest("tests/test_nothing.py", "-q", "-p", "no:cacheprovider")
    narrowed.assert_outcomes(passed=1)
    # ... unless they are asked for on the command line, or named.
    named = policies.runpytest(
        "tests/test_nothing.py", "policies/policy.yaml::anonymity", "-q", *QUICK
    )
    named.assert_outcomes(passed=2)
    # -k selects among the policies' tests as among any others.
    picked = policies.runpytest("-k", "anonymity and not unfair", "-q", *QUICK)
    picked.assert_outcomes(passed=1, deselected=4)


def test_policy_files_given_as_arguments_or_directories(policies: pytest.Pytester) -> None:
    result = policies.runpytest("policy.yaml", "--fairalloc-properties=determinism", *QUICK)
    result.assert_outcomes(passed=2)
    policies.mkdir("more")
    policies.path.joinpath("policy.yaml").rename(policies.path / "more" / "policy.yaml")
    result = policies.runpytest(
        "--fairalloc-policies", "more", "--fairalloc-properties", "allocation", "-v", *QUICK
    )
    result.stdout.fnmatch_lines(["more/policy.yaml::allocation PASSED*"])


def test_seed_and_builtin_profiles(policies: pytest.Pytester) -> None:
    for profile in ("quick", "ci", "thorough"):
        result = policies.runpytest(
            "--fairalloc-policies",
            "policy.yaml",
            "--fairalloc-profile",
            profile,
            "--fairalloc-seed",
            "7",
            "--fairalloc-properties",
            "need-monotonicity",
            *QUICK,
        )
        result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fairalloc-policies", "nowhere/*.yaml"), "no policy file matches 'nowhere/*.yaml'"),
        (("--fairalloc-policies", "missing.yaml"), "no such file or directory: 'missing.yaml'"),
        (
            ("--fairalloc-policies", "policy.yaml", "--fairalloc-properties", "fairness"),
            "unknown property 'fairness'",
        ),
        (
            ("--fairalloc-policies", "policy.yaml", "--fairalloc-profile", "nope"),
            "no hypothesis profile 'nope'",
        ),
        (("--fairalloc-policies", "policy.yaml", "--fairalloc-examples", "0"), "at least 1"),
    ],
)
def test_usage_errors(policies: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    result = policies.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_without_policies_the_plugin_collects_nothing(policies: pytest.Pytester) -> None:
    policies.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = policies.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "fairalloc" not in result.stdout.str()
    # A YAML file that is not a policy is left to whichever plugin collects it.
    policies.path.joinpath("stages.yaml").write_text("- name: a test of another plugin\n")
    other = policies.runpytest("stages.yaml", "-p", "no:cacheprovider")
    assert "stages.yaml::load" not in other.stdout.str()
    other.stderr.fnmatch_lines(["ERROR: not found: *stages.yaml"])


@pytest.mark.slow
def test_without_hypothesis_the_plugin_loads_and_explains(policies: pytest.Pytester) -> None:
    fake = policies.mkdir("fake").joinpath("hypothesis")
    fake.mkdir()
    fake.joinpath("__init__.py").write_text(
        "raise ModuleNotFoundError('No module named hypothesis', name='hypothesis')\n"
    )
    # The hypothesis plugin goes with hypothesis: without one, there is no other.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    command += ["-p", "no:hypothesispytest"]
    env = {"PYTHONPATH": str(policies.path / "fake"), "PATH": ""}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=policies.path, capture_output=True, text=True, env=env
        )

    plain = run("--collect-only", "-q")
    assert plain.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, plain.stderr
    asked = run("--fairalloc-policies", "policy.yaml")
    assert asked.returncode == pytest.ExitCode.USAGE_ERROR
    assert "pip install 'fairalloc[testing]'" in asked.stderr
