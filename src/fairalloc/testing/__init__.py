"""Property-based testing of policies: generated residents, property checks, a pytest plugin.

Install with ``pip install 'fairalloc[testing]'`` (hypothesis and pytest). Three layers:

* **Strategies** (:func:`residents`, :func:`resident`, :func:`populations`,
  :func:`attribute_values`): hypothesis strategies drawing residents that are valid for a
  policy's attribute schema, the same schema that validates real data.
* **Property checks** (:data:`PROPERTIES`): :func:`check_protected_invariance`,
  :func:`check_need_monotonicity`, :func:`check_equal_treatment`, :func:`check_anonymity`,
  :func:`check_determinism` and :func:`check_allocation`. Each takes a policy (or the path of a
  policy file) and hypothesis settings, and raises :class:`PropertyFailure` with a minimal
  counterexample, printed as resident records, naming the rules responsible.
* **The pytest plugin** (:mod:`fairalloc.testing.plugin`, registered on install):
  ``pytest --fairalloc-policies policies/*.yaml`` runs every property on every policy file, one
  test per policy and property.

From Python::

    from fairalloc.testing import PROPERTIES, PropertyFailure

    for name, check in PROPERTIES.items():
        check("examples/elderly-care/policy.yaml")  # raises PropertyFailure on a counterexample

The fairalloc library itself never imports this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fairalloc.testing._cases import (
        Case,
        CaseResult,
        CasesError,
        CasesFile,
        load_cases,
        run_case,
        run_cases,
    )
    from fairalloc.testing._properties import (
        PROFILES,
        PROPERTIES,
        PlannedCheck,
        PropertyCheck,
        PropertyFailure,
        check_allocation,
        check_anonymity,
        check_determinism,
        check_equal_treatment,
        check_need_monotonicity,
        check_protected_invariance,
        plan_checks,
    )
    from fairalloc.testing._strategies import (
        PolicyLike,
        attribute_values,
        populations,
        resident,
        residents,
    )

__all__ = [
    "PROFILES",
    "PROPERTIES",
    "Case",
    "CaseResult",
    "CasesError",
    "CasesFile",
    "PlannedCheck",
    "PolicyLike",
    "PropertyCheck",
    "PropertyFailure",
    "attribute_values",
    "check_allocation",
    "check_anonymity",
    "check_determinism",
    "check_equal_treatment",
    "check_need_monotonicity",
    "check_protected_invariance",
    "load_cases",
    "plan_checks",
    "populations",
    "resident",
    "residents",
    "run_case",
    "run_cases",
]

#: What to install when hypothesis is missing.
MISSING = (
    "fairalloc.testing needs hypothesis and pytest; install them with"
    " pip install 'fairalloc[testing]'"
)

_HOME = {
    **dict.fromkeys(
        [
            "PROFILES",
            "PROPERTIES",
            "PlannedCheck",
            "PropertyCheck",
            "PropertyFailure",
            "check_allocation",
            "check_anonymity",
            "check_determinism",
            "check_equal_treatment",
            "check_need_monotonicity",
            "check_protected_invariance",
            "plan_checks",
        ],
        "_properties",
    ),
    **dict.fromkeys(
        ["Case", "CaseResult", "CasesError", "CasesFile", "load_cases", "run_case", "run_cases"],
        "_cases",
    ),
    **dict.fromkeys(
        ["PolicyLike", "attribute_values", "populations", "resident", "residents"],
        "_strategies",
    ),
}


def __getattr__(name: str) -> Any:
    # The names load on first use: pytest loads the plugin (an entry point) in every run of
    # every project where fairalloc is installed, with or without the `testing` extra, so this
    # package must import without hypothesis; using any of its names then says what to install.
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{home}")
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] in ("hypothesis", "pytest"):
            raise ImportError(MISSING) from e
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
