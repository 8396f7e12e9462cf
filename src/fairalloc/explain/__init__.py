"""Explanations: why each resident got its outcome, and what would have changed it.

``result.explain(resident_id)`` (or :func:`explain`) reads what the engine and the mechanism
recorded and states it rule by rule, point by point, in English or Chinese, as text, Markdown,
accessible HTML or versioned JSON. :func:`contrast` sets two residents side by side;
:func:`export_explanations` writes every resident's explanation as JSON Lines or CSV.
"""

from fairalloc.explain._batch import export_explanations
from fairalloc.explain._explanation import (
    Audience,
    Contrast,
    Explanation,
    Format,
    contrast,
    explain,
)
from fairalloc.explain._facts import SCHEMA, Counterfactual, Facts
from fairalloc.explain._i18n import LOCALES

__all__ = [
    "LOCALES",
    "SCHEMA",
    "Audience",
    "Contrast",
    "Counterfactual",
    "Explanation",
    "Facts",
    "Format",
    "contrast",
    "explain",
    "export_explanations",
]
