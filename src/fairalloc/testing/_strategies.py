"""Hypothesis strategies generating residents that are valid for a policy's attribute schema.

One declaration serves twice: the ``attributes`` section of a policy validates the residents'
data (:class:`fairalloc.Population`) and, here, generates it. Every value drawn is one the
schema accepts: numbers within ``min``/``max`` (whole numbers for ``int``), levels of a category
or ordinal, dates within their bounds, distinct ids, and, for attributes with
``missing: default``, now and then a missing value (``None``).

Examples shrink towards what a person would write first: small numbers (or the bound nearest to
zero), the first level, ``False``, 2000-01-01, few residents, ids ``r1``, ``r2``, ...
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from fairalloc._compiler import CompiledPolicy
from fairalloc._population import Population
from fairalloc.errors import ArgumentError
from fairalloc.policy import load_policy
from fairalloc.policy._model import Attribute, Policy

__all__ = [
    "FIRST_DATE",
    "LAST_DATE",
    "UNBOUNDED",
    "PolicyLike",
    "attribute_values",
    "number_bounds",
    "populations",
    "resident",
    "resident_id",
    "residents",
    "residents_with",
    "schema_of",
]

#: A policy as the strategies and property checks accept it: a loaded or built
#: :class:`~fairalloc.Policy`, a compiled one, or the path of a policy file.
PolicyLike = Policy | CompiledPolicy | str | os.PathLike[str]

#: The largest magnitude drawn for a number attribute without ``min`` or ``max``.
UNBOUNDED = 1_000_000
#: The earliest date drawn for a date attribute without ``min``.
FIRST_DATE = dt.date(1900, 1, 1)
#: The latest date drawn for a date attribute without ``max``.
LAST_DATE = dt.date(2100, 12, 31)

#: One value in this many is missing for an attribute with ``missing: default``.
_MISSING_ONE_IN = 8
#: What dates shrink towards.
_DATE_ORIGIN = dt.date(2000, 1, 1)
#: Resident numbers are drawn from 1 to this (ids ``r1`` ... for text ids).
_ID_SPACE = 999_999


def schema_of(policy: PolicyLike) -> Policy:
    """The policy document whose attribute schema residents must fit.

    Args:
        policy: A policy, a compiled policy, or the path of a policy file (loaded with
            ``audit=True``, so that a policy reading protected attributes without a justified
            use can still be tested).

    Returns:
        The :class:`~fairalloc.Policy`.

    Raises:
        PolicyError: if the file cannot be loaded.
    """
    if isinstance(policy, CompiledPolicy):
        return policy.policy
    if isinstance(policy, Policy):
        return policy
    return load_policy(policy, audit=True)


def attribute_values(attribute: Attribute, *, missing: bool = True) -> st.SearchStrategy[Any]:
    """Valid values of one attribute, as people record them.

    Numbers stay within ``min``/``max`` (within ±:data:`UNBOUNDED` where a bound is not
    declared), and about one in six is exactly a bound, where policies tend to go wrong;
    floats are mostly written with one decimal, now and then any float; dates stay within
    ``min``/``max`` (:data:`FIRST_DATE` to :data:`LAST_DATE` by default); levels are drawn from
    ``levels``.

    Args:
        attribute: The attribute, from a policy's ``attributes``.
        missing: Whether to draw ``None`` now and then when the attribute declares
            ``missing: default``.

    Returns:
        A strategy of plain Python values: ``bool``, ``int``, ``float``, ``str`` (a level) or
        :class:`datetime.date`.

    Raises:
        ValueError: for the id attribute (ids are drawn by :func:`residents`), or when the
            bounds leave no valid value.
    """
    if attribute.role == "id":
        raise ArgumentError(
            "FA619",
            "ids are drawn by residents(), distinct for each resident",
            argument="attribute",
        )
    values = _present_values(attribute)
    if missing and attribute.missing == "default":
        last = _MISSING_ONE_IN - 1
        # The first element shrinks to 0: minimal examples have every value present.
        return st.tuples(st.integers(0, last), values).map(lambda t: None if t[0] == last else t[1])
    return values


def _spread(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Whole numbers from ``lo`` to ``hi``, about one in six exactly on a bound.

    Drawn from a range wider by a tenth on each side and clamped onto it: a single choice, so
    that shrinking stays simple (towards zero, or the bound nearest zero), while the bounds,
    where policies tend to go wrong, come up often.
    """
    margin = max(1, (hi - lo) // 10)
    return st.integers(lo - margin, hi + margin).map(lambda k: min(max(k, lo), hi))


def _present_values(attr: Attribute) -> st.SearchStrategy[Any]:
    if attr.type == "bool":
        return st.booleans()
    if attr.type in ("category", "ordinal"):
        return st.sampled_from(list(attr.levels or []))
    if attr.type == "date":
        lo = attr.min if isinstance(attr.min, dt.date) else FIRST_DATE
        hi = attr.max if isinstance(attr.max, dt.date) else LAST_DATE
        if lo > hi:
            raise ArgumentError("FA619", f"no valid date from {lo} to {hi}", argument="attribute")
        # Days from 2000-01-01, so that dates shrink towards it (or the bound nearest it).
        origin = _DATE_ORIGIN.toordinal()
        days = _spread(lo.toordinal() - origin, hi.toordinal() - origin)
        return days.map(lambda d: dt.date.fromordinal(d + origin))
    if attr.values is not None:
        # Only the allowed values (an item scored 0, 5 or 10), smallest first when shrinking.
        allowed = sorted(set(attr.values))
        return st.sampled_from([int(v) if attr.type == "int" else float(v) for v in allowed])
    lo_n, hi_n = number_bounds(attr)
    if attr.type == "int":
        lo_i, hi_i = math.ceil(lo_n), math.floor(hi_n)
        if lo_i > hi_i:
            raise ArgumentError(
                "FA619", f"no whole number from {lo_n:g} to {hi_n:g}", argument="attribute"
            )
        return _spread(lo_i, hi_i)
    if attr.type == "float":
        # Mostly tenths (the outermost clamped onto the bounds), now and then any float.
        tenths = _spread(math.floor(lo_n * 10), math.ceil(hi_n * 10)).map(
            lambda k: min(max(k / 10, lo_n), hi_n)
        )
        return st.one_of(tenths, st.floats(lo_n, hi_n, allow_nan=False, allow_infinity=False))
    raise ArgumentError(  # str is only for the id
        "FA619", f"no values to draw for type {attr.type}", argument="attribute"
    )


def number_bounds(attr: Attribute) -> tuple[float, float]:
    """The range drawn for a number attribute: its ``min`` and ``max``, or ±:data:`UNBOUNDED`."""
    lo = float(attr.min) if isinstance(attr.min, int | float) else -float(UNBOUNDED)
    hi = float(attr.max) if isinstance(attr.max, int | float) else float(UNBOUNDED)
    return lo, hi


def _fields(
    schema: Policy, values: Mapping[str, st.SearchStrategy[Any]] | None
) -> dict[str, st.SearchStrategy[Any]]:
    given = dict(values or {})
    unknown = [n for n in given if n not in schema.attributes]
    if unknown:
        raise ArgumentError(
            "FA602",
            f"values given for unknown attributes {', '.join(unknown)}; attributes: "
            + ", ".join(schema.attributes),
            argument="values",
            value=unknown[0],
            valid=", ".join(schema.attributes),
        )
    if schema.id_attribute in given:
        raise ArgumentError(
            "FA619",
            "ids are drawn by residents(), distinct for each resident",
            argument="values",
            value=schema.id_attribute,
        )
    return {
        name: given[name] if name in given else attribute_values(attr)
        for name, attr in schema.attributes.items()
        if attr.role != "id"
    }


def resident_id(schema: Policy, number: int) -> str | int:
    """The id of resident number ``number``: ``r<number>`` for text ids, the number for ints."""
    return number if schema.attributes[schema.id_attribute].type == "int" else f"r{number}"


def _record(schema: Policy, rid: str | int, body: Mapping[str, Any]) -> dict[str, Any]:
    # Attributes in the schema's order, the id where the schema declares it.
    return {name: rid if name == schema.id_attribute else body[name] for name in schema.attributes}


def _drawn(
    schema: Policy,
    fields: dict[str, st.SearchStrategy[Any]],
    extra: st.SearchStrategy[Any],
    min_size: int,
    max_size: int,
) -> st.SearchStrategy[list[tuple[dict[str, Any], Any]]]:
    # Each resident's number, attributes and extra are drawn together, so that hypothesis
    # drops a resident with all that belongs to it in one step, and shrinks each on its own.
    one = st.tuples(st.integers(1, _ID_SPACE), st.fixed_dictionaries(fields), extra)
    return st.lists(one, min_size=min_size, max_size=max_size, unique_by=lambda t: t[0]).map(
        lambda drawn: [(_record(schema, resident_id(schema, k), body), x) for k, body, x in drawn]
    )


def residents_with(
    policy: PolicyLike,
    extra: st.SearchStrategy[Any],
    *,
    min_size: int = 0,
    max_size: int = 50,
) -> st.SearchStrategy[list[tuple[dict[str, Any], Any]]]:
    """Like :func:`residents`, each record paired with a value of ``extra`` drawn with it.

    Drawing what belongs to a resident together with it (the value it is changed to, say) lets
    hypothesis drop a resident and what goes with it in one step, so that counterexamples
    shrink quickly.

    Args:
        policy: The policy (or compiled policy, or policy file) whose schema to follow.
        extra: What to draw with each resident.
        min_size: Fewest residents.
        max_size: Most residents.

    Returns:
        A strategy of lists of ``(record, extra)`` pairs.
    """
    schema = schema_of(policy)
    return _drawn(schema, _fields(schema, None), extra, min_size, max_size)


def residents(
    policy: PolicyLike,
    *,
    min_size: int = 0,
    max_size: int = 50,
    values: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of resident records valid for the policy's attribute schema, with distinct ids.

    A record is a ``dict`` with one entry per attribute, in the schema's order; text ids are
    ``r1``, ``r2``, ... (whole numbers for ``type: int`` ids). Pass the records to
    :func:`fairalloc.evaluate`, or to :meth:`fairalloc.Population.from_records`.

    Args:
        policy: The policy (or compiled policy, or policy file) whose schema to follow.
        min_size: Fewest residents.
        max_size: Most residents.
        values: Strategies to use instead of the schema's for some attributes, by name (for
            example to draw ages around an eligibility threshold); each must draw values the
            schema accepts.

    Returns:
        A strategy of lists of records.

    Raises:
        ValueError: if ``values`` names an unknown attribute or the id.
    """
    schema = schema_of(policy)
    if min_size < 0 or max_size < min_size:
        raise ArgumentError(
            "FA600", f"need 0 <= min_size <= max_size, got {min_size} and {max_size}"
        )
    return _drawn(schema, _fields(schema, values), st.none(), min_size, max_size).map(
        lambda pairs: [record for record, _ in pairs]
    )


def resident(
    policy: PolicyLike, *, values: Mapping[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """One resident record valid for the policy's attribute schema (see :func:`residents`).

    Args:
        policy: The policy (or compiled policy, or policy file) whose schema to follow.
        values: Strategies to use instead of the schema's for some attributes, by name.

    Returns:
        A strategy of records.
    """
    return residents(policy, min_size=1, max_size=1, values=values).map(lambda rs: rs[0])


def populations(
    policy: PolicyLike,
    *,
    min_size: int = 0,
    max_size: int = 50,
    values: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Population]:
    """:class:`fairalloc.Population` objects valid for the policy (records of :func:`residents`).

    Args:
        policy: The policy (or compiled policy, or policy file) whose schema to follow.
        min_size: Fewest residents.
        max_size: Most residents.
        values: Strategies to use instead of the schema's for some attributes, by name.

    Returns:
        A strategy of populations, validated against the policy's schema.
    """
    schema = schema_of(policy)
    return residents(schema, min_size=min_size, max_size=max_size, values=values).map(
        lambda records: Population.from_records(records, schema, source="hypothesis")
    )
