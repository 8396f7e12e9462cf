"""Sensitivity of the outcome to the policy's weights.

:func:`sensitivity` perturbs the weights of indicators, sub-scales and score terms (at random
within ranges, with a seeded generator, or over a grid) and counts how often each resident is
served; :meth:`Sensitivity.weight_margin` (or :func:`weight_margin`) finds, for one resident
and each weight in turn, the nearest change of that weight alone that moves the resident across
the cut-off.

A changed weight changes no rule: only the points of an indicator whose own weight changed are
computed again, then the scale totals, the score and the ranking
(:func:`fairalloc._engine.reevaluate`), so each sample costs a fraction of a full evaluation,
with exactly the same result.

Weights are named by path: an indicator by its path (``need.health.adl``), a sub-scale's weight
in its parent by its path (``need.health``), and a score term's weight by the term (``need``,
``priority``; a top-level scale's own weight is always 1). Priority rules have no weights of
their own: the ``priority`` term weighs them together.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from fairalloc._compiler import CompiledPolicy
from fairalloc._engine import DEFAULT_CHUNK, compiled_of, evaluate_compiled, reevaluate
from fairalloc._evaluation import Evaluation
from fairalloc._html import table as html_table
from fairalloc._optional import require
from fairalloc._population import Population
from fairalloc._ranking import LotteryKeys, rank_with, release
from fairalloc.analysis._sweep import (
    allocation_units,
    as_loaded,
    compile_variant,
    outcome,
    plain_value,
)
from fairalloc.errors import (
    AllocationError,
    AllocationReason,
    ArgumentError,
    PolicyError,
    PolicyIssue,
)
from fairalloc.policy import _model as M

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Margin",
    "Sensitivity",
    "policy_weights",
    "sensitivity",
    "weight_margin",
    "with_weights",
]


# -- changed weights ----------------------------------------------------------------------------


def policy_weights(policy: M.Policy | CompiledPolicy) -> dict[str, float]:
    """Every weight of ``policy`` by its path (see the module's documentation).

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   health: {type: int, min: 0, max: 10}
        ...   alone: {type: bool}
        ... scales:
        ...   need:
        ...     indicators: {health: {points: "health"}}
        ...     scales:
        ...       family: {indicators: {alone: {of: alone, lookup: {true: 5, false: 0}}}}
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {capacity: 1}
        ... ''')
        >>> policy_weights(policy)
        {'need.health': 1.0, 'need.family': 1.0, 'need.family.alone': 1.0, 'need': 1.0}
    """
    return compiled_of(policy, None).weights()


def _weight_place(cp: CompiledPolicy, name: str) -> tuple[str, ...]:
    """Where the weight ``name`` is written (or would be) in the policy document."""
    for c in cp.criteria:
        if c.key == name and c.kind == "indicator":
            return (*c.doc_path, "weight")
    if name in {t for t, _ in cp.score_terms}:
        return ("score", "terms")
    if "." in name:
        doc = ["scales"]
        for part in name.split("."):
            doc += [part, "scales"]
        return (*doc[:-1], "weight")
    return ("scales",)


def _weight_issue(
    cp: CompiledPolicy, code: str, message: str, name: str, hint: str = ""
) -> PolicyIssue:
    return PolicyIssue(code, message, cp.source_map.span(_weight_place(cp, name)), hint=hint)


def check_weights(cp: CompiledPolicy, weights: Mapping[str, Any]) -> dict[str, float]:
    """``weights`` as floats, every name and value checked.

    Raises:
        PolicyError: ``FA202`` for a name that is no weight of the policy, ``FA112`` for a value
            that is not a finite number.
    """
    known = cp.weights()
    issues = []
    out: dict[str, float] = {}
    for name, raw in weights.items():
        value = plain_value(raw)
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            issues.append(
                _weight_issue(
                    cp,
                    "FA202",
                    f"unknown weight `{name}`",
                    "",
                    f"did you mean `{close[0]}`?" if close else "weights: " + ", ".join(known),
                )
            )
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            issues.append(
                _weight_issue(
                    cp, "FA112", f"weight `{name}` must be a finite number, not {value!r}", name
                )
            )
        else:
            out[name] = float(value)
    if issues:
        raise PolicyError(issues)
    return out


def _reweigh(
    scales: Mapping[str, M.Scale], prefix: str, weights: Mapping[str, float]
) -> dict[str, M.Scale]:
    out: dict[str, M.Scale] = {}
    for name, scale in scales.items():
        path = f"{prefix}{name}"
        indicators = {
            iname: ind.model_copy(update={"weight": weights[f"{path}.{iname}"]})
            if f"{path}.{iname}" in weights
            else ind
            for iname, ind in scale.indicators.items()
        }
        update: dict[str, Any] = {
            "indicators": indicators,
            "scales": _reweigh(scale.scales, f"{path}.", weights),
        }
        if prefix and path in weights:
            update["weight"] = weights[path]
        out[name] = scale.model_copy(update=update)
    return out


def weight_variant(cp: CompiledPolicy, weights: Mapping[str, Any]) -> CompiledPolicy:
    """``cp`` compiled again with other ``weights`` (see :func:`with_weights`)."""
    if not weights:
        return cp
    values = check_weights(cp, weights)
    doc = cp.policy
    terms = {name for name, _ in cp.score_terms}
    update: dict[str, Any] = {"scales": _reweigh(doc.scales, "", values)}
    context = "with " + ", ".join(f"{k} = {v!r}" for k, v in values.items())
    if terms & set(values):
        spec = doc.score.model_dump()
        spec["terms"] = [{"of": name, "weight": values.get(name, w)} for name, w in cp.score_terms]
        try:
            update["score"] = M.Score.model_validate(spec)
        except ValidationError as e:
            msg = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in e.errors())
            raise PolicyError(
                [
                    PolicyIssue(
                        "FA113",
                        f"{context}: `score`: {msg}",
                        cp.source_map.span(("score",)),
                    )
                ]
            ) from None
    return compile_variant(cp, doc.model_copy(update=update), context)


def with_weights(policy: M.Policy | CompiledPolicy, weights: Mapping[str, Any]) -> M.Policy:
    """A copy of ``policy`` with other weights, checked as a policy file is.

    The copy is compiled at once, as of the date ``policy`` was loaded for, so that
    ``fairalloc.evaluate(copy, residents)`` applies the same date as for ``policy``.

    Args:
        policy: A policy, or a compiled one.
        weights: Weight path → value (see the module's documentation for the paths).

    Raises:
        PolicyError: for an unknown weight (``FA202``), a value that is not a finite number
            (``FA112``), or score weights the score's method does not allow (``FA113``: with
            ``product``, whole numbers from 1 to 8; with ``tiers``, positive).

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   health: {type: int, min: 0, max: 10}
        ...   alone: {type: bool}
        ... scales:
        ...   need:
        ...     indicators: {health: {points: "health"}}
        ...     scales:
        ...       family: {indicators: {alone: {of: alone, lookup: {true: 5, false: 0}}}}
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {capacity: 1}
        ... ''')
        >>> residents = [{"id": "a", "health": 6, "alone": False},
        ...              {"id": "b", "health": 3, "alone": True}]
        >>> fa.allocate(policy, residents).served_ids()
        ['b']
        >>> changed = with_weights(policy, {"need.family": 0.5})
        >>> changed.scales["need"].scales["family"].weight
        0.5
        >>> fa.allocate(changed, residents).served_ids()
        ['a']
    """
    cp = compiled_of(policy, None)
    variant = weight_variant(cp, weights)
    return as_loaded(variant.policy.model_copy(), variant)


# -- evaluating samples -------------------------------------------------------------------------


class _Runner:
    """Evaluates weight variants of one base evaluation and tells who is served."""

    def __init__(self, cp: CompiledPolicy, population: Population, units: int, chunk: int) -> None:
        self.cp = cp
        self.units = units
        self.chunk = chunk
        self.base = evaluate_compiled(cp, population, chunk_size=chunk)
        self.keys = LotteryKeys(population.id_column)
        rank_with(self.base, self.keys)
        self.base_served = self.served(self.base)

    def served(self, ev: Evaluation) -> npt.NDArray[np.bool_]:
        alloc = outcome(ev, self.units)
        assert alloc is not None
        return np.asarray(alloc.served, dtype=bool)

    def evaluate(self, weights: Mapping[str, float]) -> Evaluation:
        if not weights:
            return self.base
        ev = reevaluate(self.base, weight_variant(self.cp, weights), chunk_size=self.chunk)
        rank_with(ev, self.keys)
        return ev

    def served_with(self, weights: Mapping[str, float]) -> npt.NDArray[np.bool_]:
        ev = self.evaluate(weights)
        served = self.served(ev)
        if ev is not self.base:
            release(ev)
        return served


def _runner(
    policy: M.Policy | CompiledPolicy,
    residents: Population | Any,
    capacity: int | None,
    as_of: dt.date | None,
    chunk_size: int,
) -> _Runner:
    cp = compiled_of(policy, as_of)
    units = allocation_units(cp, capacity)
    if units is None:
        spec = cp.policy.allocation
        code, reason = (
            ("FA650", AllocationReason.NO_SECTION)
            if spec is None
            else ("FA654", AllocationReason.NO_CAPACITY)
            if spec.matching is None and spec.rotation is None
            else ("FA652", AllocationReason.OTHER_MECHANISM)
        )
        raise AllocationError(
            code,
            reason,
            "sensitivity counts who is served: the policy needs an `allocation` section with a"
            " capacity (priority or lottery, not matching or rotation)",
        )
    population = Population.of(residents, cp.policy)
    return _Runner(cp, population, units, chunk_size)


# -- margins ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Margin:
    """How far one weight, alone, must move for one resident to cross the cut-off.

    Attributes:
        resident: The resident's id.
        weight: The weight's path.
        base: Its value in the policy.
        served: Whether the resident is served with the policy as it is.
        lower: The value below ``base`` nearest to it found at which the resident's outcome is
            the opposite (None if none within the range searched).
        upper: The same above ``base``.
        searched: The range of values searched, ``(low, high)``.
        decimals: The decimals of the values tried.
    """

    resident: str
    weight: str
    base: float
    served: bool
    lower: float | None
    upper: float | None
    searched: tuple[float, float]
    decimals: int = 4

    @property
    def nearest(self) -> float | None:
        """Whichever of :attr:`lower` and :attr:`upper` is nearer to :attr:`base`."""
        found = [v for v in (self.lower, self.upper) if v is not None]
        return min(found, key=lambda v: (abs(v - self.base), v)) if found else None

    @property
    def change(self) -> float | None:
        """The smallest change of the weight that flips the outcome (signed), if found."""
        v = self.nearest
        return None if v is None else round(v - self.base, self.decimals + 6)

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "resident": self.resident,
            "weight": self.weight,
            "base": self.base,
            "served": self.served,
            "lower": self.lower,
            "upper": self.upper,
            "change": self.change,
            "searched": list(self.searched),
        }


def _margin(
    run: _Runner,
    row: int,
    name: str,
    base: float,
    *,
    within: float,
    steps: int,
    decimals: int,
) -> Margin:
    was = bool(run.base_served[row])
    span = within * (abs(base) if base != 0 else 1.0)
    low = max(0.0, base - span) if base >= 0 else base - span
    high = base + span

    def flips(v: float) -> bool:
        return bool(run.served_with({name: v})[row]) != was

    found: list[float | None] = []
    for end in (low, high):
        found.append(_search(flips, base, end, steps, decimals))
    return Margin(
        resident=str(run.base.ids[row]),
        weight=name,
        base=base,
        served=was,
        lower=found[0],
        upper=found[1],
        searched=(round(low, decimals), round(high, decimals)),
        decimals=decimals,
    )


def _search(flips: Any, base: float, end: float, steps: int, decimals: int) -> float | None:
    """The value nearest to ``base`` towards ``end`` at which ``flips`` holds, or None.

    Scans ``steps`` evenly spaced values from ``base`` to ``end``, then bisects between the
    last value that did not flip and the first that did, on values of ``decimals`` decimals,
    until they are one unit of the last decimal apart. Every value returned was evaluated.
    """
    unit = 10.0**-decimals
    if abs(end - base) < unit:
        return None
    prev = base
    for i in range(1, steps + 1):
        v = round(base + (end - base) * i / steps, decimals)
        if (v - base) * (end - base) <= 0 or v == prev:
            continue
        if flips(v):
            cur = v
            while abs(cur - prev) > unit * 1.5:
                mid = round((prev + cur) / 2, decimals)
                if mid in (prev, cur):
                    break
                if flips(mid):
                    cur = mid
                else:
                    prev = mid
            return cur
        prev = v
    return None


# -- sensitivity --------------------------------------------------------------------------------


@dataclass
class Sensitivity:
    """How often each resident is served as the weights vary; build with :func:`sensitivity`.

    Attributes:
        weights: The policy's weights (every path and its value).
        varied: The weights varied: path → ``(low, high)`` for random samples, or the list of
            values of a grid.
        samples: The weights of each sample (only the varied ones).
        ids: Resident ids, in the population's order.
        base_served: ``[n]`` whether each resident is served with the policy as it is.
        counts: ``[n]`` in how many samples each resident is served.
        served_per_sample: Residents served in each sample.
        changed_per_sample: Residents whose outcome differs from the policy as it is, per sample.
        capacity: The units allocated.
        seed: The seed of the random samples (None for a grid).
    """

    weights: dict[str, float]
    varied: dict[str, Any]
    samples: list[dict[str, float]]
    ids: np.ndarray
    base_served: npt.NDArray[np.bool_]
    counts: npt.NDArray[np.int64]
    served_per_sample: list[int]
    changed_per_sample: list[int]
    capacity: int
    seed: int | None
    policy_id: str = ""
    policy_version: str = ""
    _runner: _Runner | None = field(default=None, repr=False)

    @property
    def frequency(self) -> npt.NDArray[np.float64]:
        """``[n]`` the share of samples in which each resident is served."""
        return self.counts / max(len(self.samples), 1)

    def status(self) -> npt.NDArray[np.str_]:
        """``[n]`` ``always`` (served in every sample), ``never`` or ``sometimes`` (unstable)."""
        k = len(self.samples)
        return np.where(
            self.counts == k, "always", np.where(self.counts == 0, "never", "sometimes")
        )

    def unstable_ids(self) -> list[str]:
        """Ids of the residents served in some samples and not in others, sorted by id."""
        rows = np.flatnonzero((self.counts > 0) & (self.counts < len(self.samples)))
        return sorted(str(i) for i in self.ids[rows])

    def summary(self) -> dict[str, Any]:
        """Counts of stable and unstable residents, and how much each sample changed."""
        k = len(self.samples)
        always = self.counts == k
        never = self.counts == 0
        unstable = ~always & ~never
        changed = self.changed_per_sample
        return {
            "samples": k,
            "residents": len(self.ids),
            "capacity": self.capacity,
            "served": int(self.base_served.sum()),
            "always_served": int(always.sum()),
            "never_served": int(never.sum()),
            "unstable": int(unstable.sum()),
            "unstable_served_now": int((unstable & self.base_served).sum()),
            "unstable_not_served_now": int((unstable & ~self.base_served).sum()),
            "served_now_but_not_always": int((self.base_served & ~always).sum()),
            "changed_per_sample": {
                "mean": sum(changed) / k if k else None,
                "max": max(changed) if changed else None,
            },
        }

    def weight_margin(
        self,
        resident_id: str,
        weights: Sequence[str] | None = None,
        *,
        within: float = 1.0,
        steps: int = 20,
        decimals: int = 4,
    ) -> list[Margin]:
        """For each weight alone, the nearest value that flips ``resident_id``'s outcome.

        See :func:`weight_margin`; this reuses the sensitivity's evaluation.
        """
        if self._runner is None:
            raise ArgumentError("FA618", "this sensitivity holds no evaluation to search from")
        return _margins(self._runner, resident_id, weights, within, steps, decimals)

    def to_pandas(self) -> pd.DataFrame:
        """One row per resident, by id: ``served_now``, ``served_in``, ``frequency``, ``status``."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        df = pd.DataFrame(
            {
                "served_now": self.base_served,
                "served_in": self.counts,
                "frequency": self.frequency,
                "status": self.status(),
            },
            index=pd.Index(self.ids.astype(str), name="id"),
        )
        return df.sort_index(kind="stable")

    def samples_to_pandas(self) -> pd.DataFrame:
        """One row per sample: the varied weights, residents served and residents changed."""
        require("pandas", extra="pandas", feature="DataFrames")
        import pandas as pd

        return pd.DataFrame.from_records(
            [
                {**s, "served": n, "changed": c}
                for s, n, c in zip(
                    self.samples, self.served_per_sample, self.changed_per_sample, strict=True
                )
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """As plain values; residents served now or in some sample only, sorted by id."""
        rows = np.flatnonzero((self.counts > 0) | self.base_served)
        order = rows[np.argsort(self.ids[rows].astype(str), kind="stable")]
        freq = self.frequency
        status = self.status()
        return {
            "policy": {"id": self.policy_id, "version": self.policy_version},
            "capacity": self.capacity,
            "seed": self.seed,
            "weights": self.weights,
            "varied": {k: list(v) for k, v in self.varied.items()},
            "summary": self.summary(),
            "samples": [
                {"weights": s, "served": n, "changed": c}
                for s, n, c in zip(
                    self.samples, self.served_per_sample, self.changed_per_sample, strict=True
                )
            ],
            "residents": [
                {
                    "id": str(self.ids[r]),
                    "served_now": bool(self.base_served[r]),
                    "served_in": int(self.counts[r]),
                    "frequency": float(freq[r]),
                    "status": str(status[r]),
                }
                for r in order
            ],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON; the same residents and seed give the same text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<Sensitivity of {self.policy_id} to {len(self.varied)} weights over"
            f" {s['samples']} samples: {s['always_served']} always served,"
            f" {s['unstable']} unstable, {s['never_served']} never served>"
        )

    def _repr_html_(self) -> str:
        s = self.summary()
        rows = [
            (k, s[k])
            for k in (
                "samples",
                "capacity",
                "served",
                "always_served",
                "unstable",
                "unstable_served_now",
                "unstable_not_served_now",
                "never_served",
            )
        ]
        varied = [
            (k, f"{v[0]} – {v[1]}" if isinstance(v, tuple) else ", ".join(map(str, v)))
            for k, v in self.varied.items()
        ]
        return html_table(["weight", "varied over"], varied) + html_table(["", "residents"], rows)


def _ranges(
    cp: CompiledPolicy,
    ranges: Mapping[str, Sequence[float]] | None,
    relative: float | None,
) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    weights = cp.weights()
    if relative is not None:
        if not (isinstance(relative, int | float) and 0 <= relative < 1e6):
            raise ArgumentError(
                "FA600",
                f"relative must be a number of at least 0, got {relative!r}",
                argument="relative",
                value=relative,
            )
        method = cp.policy.score.method
        fixed = {n for n, _ in cp.score_terms} if method == "product" else set()
        terms = {n for n, _ in cp.score_terms}
        for name, w in weights.items():
            if name in fixed:
                continue
            lo, hi = sorted((w * (1 - relative), w * (1 + relative)))
            if method == "tiers" and name in terms and lo <= 0:
                # Tier weights must stay positive: vary them down to a tenth at the least.
                lo = min(hi, w / 10) if w > 0 else lo
            out[name] = (lo, hi)
    for name, bounds in (ranges or {}).items():
        pair = [plain_value(b) for b in bounds]
        check_weights(cp, {name: pair[0] if pair else 0})
        if len(pair) != 2 or not all(isinstance(b, int | float) for b in pair):
            raise ArgumentError(
                "FA615",
                f"give the range of `{name}` as (low, high), got {bounds!r}",
                argument=f"ranges[{name}]",
                value=bounds,
            )
        lo, hi = float(pair[0]), float(pair[1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ArgumentError(
                "FA615",
                f"the range of `{name}` must be finite with low <= high",
                argument=f"ranges[{name}]",
                value=bounds,
            )
        out[name] = (lo, hi)
    order = list(weights)
    return {k: out[k] for k in sorted(out, key=order.index)}


def sensitivity(
    policy: M.Policy | CompiledPolicy,
    residents: Population | Any,
    *,
    ranges: Mapping[str, Sequence[float]] | None = None,
    relative: float | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    samples: int = 200,
    seed: int = 0,
    decimals: int = 4,
    capacity: int | None = None,
    as_of: dt.date | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Sensitivity:
    """How often each resident is served when the policy's weights vary.

    Either random samples: ``samples`` draws, each weight uniform within its range (from
    ``ranges``, or ``relative``: ±that share of every weight's value; ``ranges`` take precedence),
    from ``numpy.random.default_rng(seed)`` and rounded to ``decimals`` decimals, so the same
    seed gives the same samples; or a ``grid``: every combination of the listed values. Each
    sample is evaluated by computing again only the indicators whose weight changed, the totals,
    the score and the ranking, with the same result as a full evaluation of
    :func:`with_weights` of the sample.

    Args:
        policy: The policy (or a compiled one); it needs an allocation with a capacity.
        residents: Anything :func:`fairalloc.evaluate` accepts.
        ranges: Weight path → ``(low, high)``.
        relative: Vary every weight by up to this share of its value (0.2: ±20%). With
            ``score.method: product``, term weights are whole exponents and are left as they are.
        grid: Weight path → values; every combination is one sample (instead of random ones).
        samples: Random samples to draw.
        seed: Seed of the random generator.
        decimals: Decimals of the drawn weights.
        capacity: Units to allocate; by default the policy's.
        as_of: The date whose parameter values apply (for an uncompiled policy).
        chunk_size: Residents evaluated at a time.

    Returns:
        The :class:`Sensitivity`.

    Raises:
        PolicyError: for an unknown weight or a value the policy cannot take.
        ValueError: for a malformed range or grid, or a policy that allocates no capacity.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   health: {type: int, min: 0, max: 10}
        ...   alone: {type: bool}
        ... scales:
        ...   need:
        ...     indicators: {health: {points: "health"}}
        ...     scales:
        ...       family: {indicators: {alone: {of: alone, lookup: {true: 5, false: 0}}}}
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {capacity: 1}
        ... ''')
        >>> residents = [{"id": "a", "health": 6, "alone": False},
        ...              {"id": "b", "health": 3, "alone": True}]
        >>> s = sensitivity(policy, residents, ranges={"need.family": (0.4, 1.2)}, samples=100)
        >>> s.frequency.tolist(), s.unstable_ids()
        ([0.22, 0.78], ['a', 'b'])
    """
    run = _runner(policy, residents, capacity, as_of, chunk_size)
    cp = run.cp
    drawn: list[dict[str, float]]
    varied: dict[str, Any]
    if grid is not None:
        if ranges is not None or relative is not None:
            raise ArgumentError(
                "FA617", "give a grid, or ranges / relative for random samples, not both"
            )
        if not grid:
            raise ArgumentError("FA615", "the grid names no weight", argument="grid", value=grid)
        axes = {}
        for name, values in grid.items():
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
                raise ArgumentError(
                    "FA615",
                    f"give the values of `{name}` as a list, got {values!r}",
                    argument=f"grid[{name}]",
                    value=values,
                )
            axes[name] = [check_weights(cp, {name: v})[name] for v in values]
            if not axes[name]:
                raise ArgumentError(
                    "FA615", f"`{name}` has no values", argument=f"grid[{name}]", value=values
                )
        names = list(axes)
        drawn = [
            dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())
        ]
        varied = {k: list(v) for k, v in axes.items()}
        used_seed: int | None = None
    else:
        bounds = _ranges(cp, ranges, relative)
        if not bounds:
            raise ArgumentError("FA617", "nothing to vary: give ranges=, relative= or grid=")
        if samples < 1:
            raise ArgumentError(
                "FA600",
                f"samples must be at least 1, got {samples}",
                argument="samples",
                value=samples,
            )
        rng = np.random.default_rng(seed)
        lo = np.array([b[0] for b in bounds.values()])
        hi = np.array([b[1] for b in bounds.values()])
        draws = np.round(rng.uniform(lo, hi, size=(samples, len(bounds))), decimals)
        drawn = [{k: float(v) for k, v in zip(bounds, row, strict=True)} for row in draws.tolist()]
        varied = dict(bounds)
        used_seed = seed
    counts = np.zeros(len(run.base.ids), dtype=np.int64)
    served_n: list[int] = []
    changed_n: list[int] = []
    for weights in drawn:
        served = run.served_with(weights)
        counts += served
        served_n.append(int(served.sum()))
        changed_n.append(int((served != run.base_served).sum()))
    meta = cp.policy.policy
    return Sensitivity(
        weights=cp.weights(),
        varied=varied,
        samples=drawn,
        ids=run.base.ids,
        base_served=run.base_served,
        counts=counts,
        served_per_sample=served_n,
        changed_per_sample=changed_n,
        capacity=run.units,
        seed=used_seed,
        policy_id=meta.id,
        policy_version=meta.version,
        _runner=run,
    )


def _margins(
    run: _Runner,
    resident_id: str,
    weights: Sequence[str] | None,
    within: float,
    steps: int,
    decimals: int,
) -> list[Margin]:
    row = run.base.index_of(resident_id)
    known = run.cp.weights()
    if weights is None:
        fixed = (
            {n for n, _ in run.cp.score_terms} if run.cp.policy.score.method == "product" else set()
        )
        names = [n for n in known if n not in fixed]
    else:
        names = list(check_weights(run.cp, {n: known.get(n, 0.0) for n in weights}))
    if not (within > 0 and steps >= 1 and decimals >= 0):
        raise ArgumentError(
            "FA600", "within must be above 0, steps at least 1 and decimals at least 0"
        )
    return [
        _margin(run, row, n, known[n], within=within, steps=steps, decimals=decimals) for n in names
    ]


def weight_margin(
    policy: M.Policy | CompiledPolicy,
    residents: Population | Any,
    resident_id: str,
    *,
    weights: Sequence[str] | None = None,
    within: float = 1.0,
    steps: int = 20,
    decimals: int = 4,
    capacity: int | None = None,
    as_of: dt.date | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> list[Margin]:
    """For each weight alone, the nearest value at which ``resident_id``'s outcome flips.

    For each weight (the others as in the policy), values from the current one outwards are
    tried: ``steps`` evenly spaced values down to ``within`` × its size below it (not below 0)
    and up to as far above, then the interval where the outcome first flips is bisected on
    values of ``decimals`` decimals. The value reported was evaluated: with it,
    ``fairalloc.allocate`` of :func:`with_weights` gives the resident the opposite outcome,
    and one unit of the last decimal nearer to the current value it does not (or that is the
    current value). A flip and flip back narrower than one step can be missed.

    Args:
        policy: The policy (or a compiled one); it needs an allocation with a capacity.
        residents: Anything :func:`fairalloc.evaluate` accepts.
        resident_id: The resident.
        weights: The weight paths to search; by default every weight (but the exponents of a
            ``product`` score).
        within: How far to search, as a share of each weight's value (of 1 for a weight of 0).
        steps: Values tried on each side before bisecting.
        decimals: Decimals of the values tried.
        capacity: Units to allocate; by default the policy's.
        as_of: The date whose parameter values apply (for an uncompiled policy).
        chunk_size: Residents evaluated at a time.

    Returns:
        One :class:`Margin` per weight.

    Raises:
        KeyError: if no resident has that id.
        PolicyError: for an unknown weight.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   health: {type: int, min: 0, max: 10}
        ...   alone: {type: bool}
        ... scales:
        ...   need:
        ...     indicators: {health: {points: "health"}}
        ...     scales:
        ...       family: {indicators: {alone: {of: alone, lookup: {true: 5, false: 0}}}}
        ... ranking: {tie_break: [{lottery: {seed: published}}]}
        ... allocation: {capacity: 1}
        ... ''')
        >>> residents = [{"id": "a", "health": 6, "alone": False},
        ...              {"id": "b", "health": 3, "alone": True}]
        >>> for m in weight_margin(policy, residents, "a"):
        ...     print(m.weight, m.served, m.lower, m.upper)
        need.health False None 1.6667
        need.family False 0.6 None
        need.family.alone False 0.6 None
        need False 0.0 None

        ``a`` (6 points against ``b``'s 3 + 5) would be served with ``need.health`` at 1.6667
        (10.0002 points against 10.0001), or with ``need.family`` at 0.6 (a tie that the lottery
        gives to ``a``).
    """
    run = _runner(policy, residents, capacity, as_of, chunk_size)
    return _margins(run, resident_id, weights, within, steps, decimals)
