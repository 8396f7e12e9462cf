"""Optional libraries: a clear error naming the extra to install when one is missing.

The core of fairalloc needs only pydantic, numpy and PyYAML; DataFrames, figures, the test kit
and the other integrations come with extras (``pip install 'fairalloc[pandas]'``). A feature
that needs one calls :func:`require` first, so that a user without it reads what to install
instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fairalloc.errors import MissingDependency

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str = "") -> ModuleType:
    """Import ``module``, or raise :class:`~fairalloc.errors.MissingDependency`.

    Args:
        module: The module to import, e.g. ``"pandas"``.
        extra: The fairalloc extra that installs it, e.g. ``"pandas"``.
        feature: What needs it, for the message (e.g. ``"to_pandas()"``).

    Raises:
        MissingDependency: naming the extra to install.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and e.name != module and not module.startswith(e.name + "."):
            raise  # the library is installed but one of its own imports is broken
        raise MissingDependency(module, extra=extra, feature=feature) from None
