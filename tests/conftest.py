"""Shared fixtures and hypothesis profiles.

Profiles: ``dev`` (default, quick), ``ci`` (more examples, no deadline), ``thorough`` (by hand:
``FAIRALLOC_HYPOTHESIS_PROFILE=thorough pytest``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import fairalloc as fa

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci",
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("FAIRALLOC_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "elderly-care"


@pytest.fixture(scope="session")
def example_policy_path() -> Path:
    return EXAMPLE / "policy.yaml"


# The elderly-care example, loaded once per test module that asks for it.


@pytest.fixture(scope="module")
def policy() -> fa.Policy:
    """The elderly-care example policy."""
    return fa.load_policy(EXAMPLE / "policy.yaml")


@pytest.fixture(scope="module")
def population(policy: fa.Policy) -> fa.Population:
    """The elderly-care example's residents."""
    return fa.Population.from_csv(EXAMPLE / "residents.csv", policy)


@pytest.fixture(scope="module")
def base(policy: fa.Policy, population: fa.Population) -> fa.Evaluation:
    """The elderly-care example evaluated."""
    return fa.evaluate(policy, population)
