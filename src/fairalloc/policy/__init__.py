"""Policy documents: the model, loading from files with source locations, JSON Schema export."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from fairalloc.policy._load import Format, read_policy
from fairalloc.policy._load import parse_policy as _parse
from fairalloc.policy._model import Policy

__all__ = ["Policy", "json_schema", "load_policy", "parse_policy"]


def load_policy(
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    as_of: dt.date | None = None,
    audit: bool = False,
) -> Policy:
    """Load a policy file (YAML, JSON or TOML) and check it completely.

    The structure, every name and expression, and every read of a protected attribute are
    checked; all problems are reported together.

    Args:
        path: The policy file.
        format: ``yaml``, ``json`` or ``toml``; by default from the file's suffix.
        as_of: The date whose parameter values are checked (see
            :func:`fairalloc.compile_policy`).
        audit: Load a policy that reads protected attributes without justified uses, for
            audit only: it can be evaluated and audited, never allocated with.

    Raises:
        PolicyError: listing every problem as ``file:line:col: CODE message``.
        FairnessViolation: if the only problems are unjustified reads of protected attributes.
    """
    policy = read_policy(path, format=format)
    _check(policy, as_of, audit=audit)
    return policy


def parse_policy(
    text: str,
    *,
    format: Format = "yaml",
    filename: str = "<string>",
    as_of: dt.date | None = None,
    audit: bool = False,
) -> Policy:
    """Parse and completely check policy text (see :func:`load_policy`)."""
    policy = _parse(text, format=format, filename=filename)
    _check(policy, as_of, audit=audit)
    return policy


def _check(policy: Policy, as_of: dt.date | None, *, audit: bool) -> None:
    # Deferred: the compiler imports this package's model, and this package's entry points
    # stand above the compiler (see the layer table in docs/design.md).
    from fairalloc._compiler import compile_policy, remember_compiled

    compiled = compile_policy(policy, as_of=as_of, audit=audit)
    # Loaded as of a date, the policy is evaluated as of that date unless told otherwise.
    remember_compiled(policy, compiled, as_of, audit=audit)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of policy files, for editors to validate and complete them."""
    schema = Policy.model_json_schema(by_alias=True, mode="validation")
    # The loader accepts `name: 60` for a parameter and `name: "expr"` for a derived value.
    scalar = {"type": ["boolean", "number", "string", "array"]}
    for section, short in (("parameters", scalar), ("derived", {"type": "string"})):
        props = schema["properties"][section]["patternProperties"]
        for pattern, long_form in props.items():
            props[pattern] = {"anyOf": [long_form, short]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fairalloc policy"
    return schema
