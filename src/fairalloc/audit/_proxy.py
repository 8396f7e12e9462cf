"""Proxy detection: attributes the policy reads that stand in for a protected attribute (§4).

A policy may never read ethnicity, yet give points for a district where most residents of one
ethnicity live. :func:`proxy_check` finds such proxies: for every attribute the policy reads
that is not protected, and every protected attribute, it measures their association in the
population and how much the attribute matters to the decision.

Association (each in [0, 1]):
    * both discrete (category, ordinal or bool): Cramér's V with Bergsma's (2013) bias
      correction, so that independent attributes give about 0 even in small samples;
    * a number (or date) and a discrete attribute: the correlation ratio η, the square root of
      the share of the number's variance explained by the discrete attribute's levels (η is
      biased upwards by about ``(levels - 1) / (n - 1)`` in η², noticeable only in small
      samples);
    * two numbers (or dates): ``|r|``, Pearson's correlation.

    Dates are taken as day numbers, so no binning is needed. Association is measured over all
    residents (a proxy may decide who is eligible as well as who is ranked first).

Influence:
    The share of the score's variance, among eligible residents, explained by the criteria (the
    columns of :attr:`~fairalloc.Evaluation.points`) that read the attribute: ``Var(sum of their
    contributions) / Var(score)``. With ``score.method: sum`` a criterion's contribution is its
    points times the weights of its sub-scales and of its score term (exactly what it adds to
    the score); with ``tiers`` only the criteria of the first tier (the score) count; with
    ``product`` the unweighted points are used, an approximation. The share is 0 when the
    score does not vary, and can exceed 1 when other criteria offset these ones. Whether the
    attribute decides eligibility (an eligibility or exclusion rule reads it) is reported
    separately.

Flag:
    A pair is flagged when the association is at least ``association_threshold`` and the
    attribute's influence is at least ``influence_threshold`` or it decides eligibility. The
    defaults, 0.3 and 5%, are a "medium" association (Cohen's benchmarks for r and for V with
    one degree of freedom: 0.1 small, 0.3 medium, 0.5 large) and a twentieth of what separates
    residents' scores. An attribute the schema declares as a need measure (``need: higher`` or
    ``lower``) is the need the regulation asks to allocate by (§2.3.3: health status, family
    support); its association with a protected ground (daily living with age, say) is reported
    but not flagged unless ``exempt_need=False``; the scale audit looks at how its points fall
    by group for the same assessed need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._escape import markdown_text
from fairalloc._evaluation import Evaluation
from fairalloc._numeric import MICRO
from fairalloc.errors import ArgumentError

if TYPE_CHECKING:
    from fairalloc._compiler import CompiledPolicy, ScaleNode
    from fairalloc._population import Population
    from fairalloc.policy._model import Attribute

__all__ = ["ProxyReport", "correlation_ratio", "cramers_v", "proxy_check"]

_DISCRETE = ("category", "ordinal", "bool")
_NUMERIC = ("int", "float", "date")
_ELIGIBILITY = "eligibility"

FloatArray = npt.NDArray[np.float64]
#: Measure names as table cells (a pipe would end the cell).
_MEASURE_CELL = {"|Pearson r|": "Pearson r (absolute)"}


# -- association measures -----------------------------------------------------------------------


def cramers_v(table: npt.ArrayLike) -> float:
    """Bias-corrected Cramér's V of a contingency table (Bergsma, 2013).

    With ``φ² = χ²/n`` over the ``r × k`` table of non-empty rows and columns::

        φ̃² = max(0, φ² - (k-1)(r-1)/(n-1))
        k̃ = k - (k-1)²/(n-1),  r̃ = r - (r-1)²/(n-1)
        Ṽ = sqrt(φ̃² / min(k̃-1, r̃-1))

    Args:
        table: Counts, rows by columns.

    Returns:
        Ṽ in [0, 1]; 0 when either variable has a single observed value.

    Examples:
        >>> round(cramers_v([[30, 10], [10, 30]]), 4)
        0.4903
    """
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    n = float(t.sum())
    r, k = t.shape
    if r < 2 or k < 2 or n < 2:
        return 0.0
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / n
    chi2 = float(((t - expected) ** 2 / expected).sum())
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    k_c = k - (k - 1) ** 2 / (n - 1)
    r_c = r - (r - 1) ** 2 / (n - 1)
    denom = min(k_c - 1, r_c - 1)
    if denom <= 0:
        return 0.0
    return float(min(1.0, np.sqrt(phi2 / denom)))


def correlation_ratio(codes: npt.ArrayLike, values: npt.ArrayLike) -> float:
    """The correlation ratio η of a number over the levels of a discrete attribute.

    ``η² = Σ n_g (ȳ_g - ȳ)² / Σ (y - ȳ)²``: the share of the number's variance between the
    levels.

    Args:
        codes: Non-negative integer level of each resident.
        values: The number of each resident.

    Returns:
        η in [0, 1]; 0 when the number does not vary or only one level is observed.

    Examples:
        >>> round(correlation_ratio([0, 0, 1, 1], [1.0, 2.0, 3.0, 4.0]), 4)
        0.8944
    """
    c = np.asarray(codes, dtype=np.intp)
    y = np.asarray(values, dtype=np.float64)
    if y.size == 0:
        return 0.0
    centred = y - y.mean()
    total = float(centred @ centred)
    if total <= 0.0:
        return 0.0
    counts = np.bincount(c).astype(np.float64)
    sums = np.bincount(c, weights=centred, minlength=len(counts))
    nz = counts > 0
    if nz.sum() < 2:
        return 0.0
    between = float((sums[nz] ** 2 / counts[nz]).sum())
    return float(np.sqrt(min(1.0, between / total)))


def _pearson(x: FloatArray, y: FloatArray) -> float:
    xc = x - x.mean()
    yc = y - y.mean()
    sx, sy = float(xc @ xc), float(yc @ yc)
    if sx <= 0.0 or sy <= 0.0:
        return 0.0
    return float(min(1.0, abs(float(xc @ yc)) / np.sqrt(sx * sy)))


def _association(population: Population, a: str, b: str) -> tuple[str, float]:
    attrs = population.schema.attributes
    ta, tb = attrs[a], attrs[b]
    ca, cb = population.columns[a], population.columns[b]
    if ta.type in _DISCRETE and tb.type in _DISCRETE:
        la, lb = _levels(ta), _levels(tb)
        code = ca.astype(np.intp) * lb + cb.astype(np.intp)
        table = np.bincount(code, minlength=la * lb).reshape(la, lb)
        return "Cramér's V", cramers_v(table)
    if ta.type in _NUMERIC and tb.type in _NUMERIC:
        return "|Pearson r|", _pearson(ca.astype(np.float64), cb.astype(np.float64))
    if ta.type in _DISCRETE and tb.type in _NUMERIC:
        return "correlation ratio η", correlation_ratio(ca.astype(np.intp), cb)
    if ta.type in _NUMERIC and tb.type in _DISCRETE:
        return "correlation ratio η", correlation_ratio(cb.astype(np.intp), ca)
    # Unreachable: the id (type str) is never read by a rule nor protected.
    raise AssertionError(f"no association measure for `{a}` ({ta.type}) and `{b}` ({tb.type})")


def _levels(attr: Attribute) -> int:
    return 2 if attr.type == "bool" else len(attr.levels or ())


# -- influence ----------------------------------------------------------------------------------


def _multipliers(cp: CompiledPolicy) -> FloatArray:
    """What one point of each criterion adds to the score (see the module documentation)."""
    method = cp.policy.score.method
    mult = np.ones(len(cp.criteria), dtype=np.float64)
    if method == "product":
        return mult
    terms = dict(cp.score_terms)
    if method == "tiers":
        terms = {name: (w if i == 0 else 0.0) for i, (name, w) in enumerate(cp.score_terms)}
    mult[:] = 0.0

    def walk(node: ScaleNode, factor: float) -> None:
        for j in node.indicators:
            mult[j] = factor
        for child in node.children:
            walk(child, factor * child.weight)

    for top in cp.scales:
        walk(top, terms.get(top.path, 0.0))
    for j, c in enumerate(cp.criteria):
        if c.kind == "priority":
            mult[j] = terms.get("priority", 0.0)
    return mult


def _part_of(criterion_key: str, kind: str) -> str:
    if kind == "priority":
        return "rule:" + criterion_key.removeprefix("priority.")
    return "indicator:" + criterion_key


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reads:
    criteria: list[int]
    eligibility: list[str]
    other: list[str]


class ProxyReport:
    """Associations of the attributes a policy reads with the protected attributes.

    Build it with :func:`proxy_check`.

    Attributes:
        pairs: One record (dict) per read attribute and protected attribute: ``attribute``,
            ``protected``, ``measure`` (``Cramér's V``, ``correlation ratio η`` or
            ``|Pearson r|``), ``association``, ``influence`` (share of score variance),
            ``criteria`` (the criteria that read it), ``eligibility_rules`` (the eligibility
            and exclusion rules that read it), ``other_reads`` (tie-breaks, reserves, ...),
            ``need`` (its declared need direction, or None), ``flagged``, ``exempt`` (strong
            enough to flag, but a declared need measure) and ``message``.
        association_threshold: The association from which a pair is a proxy.
        influence_threshold: The influence from which a proxy matters.
        exempt_need: Whether declared need measures are left unflagged.
    """

    def __init__(
        self,
        pairs: list[dict[str, Any]],
        *,
        association_threshold: float,
        influence_threshold: float,
        exempt_need: bool,
    ) -> None:
        self.pairs = pairs
        self.association_threshold = association_threshold
        self.influence_threshold = influence_threshold
        self.exempt_need = exempt_need

    @property
    def flags(self) -> list[str]:
        """The message of every flagged pair, strongest association first."""
        return [p["message"] for p in self.pairs if p["flagged"]]

    @property
    def ok(self) -> bool:
        """Whether no proxy is flagged."""
        return not any(p["flagged"] for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values."""
        return {
            "association_threshold": self.association_threshold,
            "influence_threshold": self.influence_threshold,
            "exempt_need": self.exempt_need,
            "ok": self.ok,
            "flags": self.flags,
            "pairs": list(self.pairs),
        }

    def to_markdown(self) -> str:
        """The report as Markdown: flags, notes, then every pair."""
        lines = ["## Proxy detection", ""]
        lines.append(
            "For each attribute the policy reads that is not protected, its association with"
            " each protected attribute (bias-corrected Cramér's V between discrete attributes,"
            " the correlation ratio η between a number and a discrete attribute, |Pearson r|"
            " between numbers) and its influence: the share of the score's variance among"
            " eligible residents explained by the criteria that read it. A pair is flagged"
            f" when the association is at least {self.association_threshold:g} and the"
            f" influence at least {self.influence_threshold:.0%} or the attribute decides"
            " eligibility."
            + (
                " Declared need measures are reported but not flagged: they are the need the"
                " policy allocates by (see the scale audit)."
                if self.exempt_need
                else ""
            )
        )
        lines.append("")
        flags = self.flags
        lines += [f"- **{markdown_text(f)}**" for f in flags] if flags else ["No proxy is flagged."]
        notes = [p["message"] for p in self.pairs if p["exempt"]]
        if notes:
            lines += ["", *[f"- {markdown_text(n)}" for n in notes]]
        lines.append("")
        if self.pairs:
            lines.append(
                "| attribute | protected | measure | association | influence | eligibility"
                " | result |"
            )
            lines.append("|---|---|---|---|---|---|---|")
            for p in self.pairs:
                result = "**proxy**" if p["flagged"] else ("need measure" if p["exempt"] else "")
                elig = ", ".join(f"`{r}`" for r in p["eligibility_rules"]) or "—"
                measure = _MEASURE_CELL.get(p["measure"], p["measure"])
                lines.append(
                    f"| `{p['attribute']}` | `{p['protected']}` | {measure} |"
                    f" {p['association']:.2f} | {p['influence']:.1%} | {elig} | {result} |"
                )
        return "\n".join(lines).rstrip() + "\n"

    def __repr__(self) -> str:
        return (
            f"<ProxyReport: {len(self.pairs)} pairs, {len(self.flags)} flagged"
            f" (association >= {self.association_threshold:g},"
            f" influence >= {self.influence_threshold:.0%})>"
        )


def proxy_check(
    evaluation: Evaluation,
    *,
    association_threshold: float = 0.3,
    influence_threshold: float = 0.05,
    exempt_need: bool = True,
) -> ProxyReport:
    """Find attributes the policy reads that act as proxies for protected attributes.

    See the module documentation for the measures, the influence and the thresholds.

    Args:
        evaluation: An evaluation that holds its residents.
        association_threshold: The association (V, η or |r|) from which a pair is a proxy.
        influence_threshold: The share of score variance from which a proxy matters.
        exempt_need: Leave attributes declared as need measures (``need: higher|lower``)
            unflagged, reporting their association instead.

    Returns:
        The :class:`ProxyReport`, pairs sorted by association, strongest first.

    Raises:
        ValueError: if the evaluation does not hold its residents.
    """
    pop = evaluation.population
    if pop is None:
        raise ArgumentError(
            "FA610", "the evaluation does not hold its residents (population is None)"
        )
    cp = evaluation.policy
    schema = pop.schema
    protected = [a for a in schema.protected_attributes if a in pop.columns]
    reads = _reads(cp, set(protected))
    influence = _influence(evaluation, reads)
    pairs: list[dict[str, Any]] = []
    for name, r in reads.items():
        if name not in pop.columns:
            continue
        attr = schema.attributes[name]
        infl = influence[name]
        for prot in protected:
            measure, assoc = _association(pop, name, prot)
            strong = assoc >= association_threshold and (
                infl >= influence_threshold or bool(r.eligibility)
            )
            exempt = strong and exempt_need and attr.need is not None
            pair = {
                "attribute": name,
                "protected": prot,
                "measure": measure,
                "association": assoc,
                "influence": infl,
                "criteria": [cp.criteria[j].key for j in r.criteria],
                "eligibility_rules": list(r.eligibility),
                "other_reads": list(r.other),
                "need": attr.need,
                "flagged": strong and not exempt,
                "exempt": exempt,
            }
            pair["message"] = _message(pair) if strong else ""
            pairs.append(pair)
    pairs.sort(key=lambda p: (not p["flagged"], -p["association"], p["attribute"], p["protected"]))
    return ProxyReport(
        pairs,
        association_threshold=association_threshold,
        influence_threshold=influence_threshold,
        exempt_need=exempt_need,
    )


def _reads(cp: CompiledPolicy, protected: set[str]) -> dict[str, _Reads]:
    """Every non-protected attribute read, with the criteria and rules that read it."""
    part_criterion = {_part_of(c.key, c.kind): j for j, c in enumerate(cp.criteria)}
    deciding = {f"rule:{r}" for r in (*cp.eligibility_ids, *cp.exclusion_ids)}
    out: dict[str, _Reads] = {}
    for part, paths in cp.reads.items():
        for attribute in dict.fromkeys(p.attribute for p in paths):
            if attribute in protected:
                continue
            r = out.setdefault(attribute, _Reads([], [], []))
            if part in part_criterion:
                r.criteria.append(part_criterion[part])
            elif part in deciding:
                r.eligibility.append(part.split(":", 1)[1])
            else:
                r.other.append(part)
    return out


def _influence(evaluation: Evaluation, reads: dict[str, _Reads]) -> dict[str, float]:
    eligible = np.asarray(evaluation.eligible, dtype=bool)
    out = dict.fromkeys(reads, 0.0)
    if eligible.sum() < 2:
        return out
    score = evaluation.score_micro[eligible].astype(np.float64) / MICRO
    total = float(score.var())
    if total <= 0.0:
        return out
    mult = _multipliers(evaluation.policy)
    points = evaluation.points[eligible]
    for name, r in reads.items():
        if not r.criteria:
            continue
        cols = sorted(set(r.criteria))
        part = (points[:, cols].astype(np.float64) / MICRO) @ mult[cols]
        out[name] = float(part.var()) / total
    return out


def _message(p: dict[str, Any]) -> str:
    how = []
    if p["influence"] > 0:
        how.append(f"contributes {p['influence']:.0%} of score variance")
    if p["eligibility_rules"]:
        rules = ", ".join(f"`{r}`" for r in p["eligibility_rules"])
        how.append(f"decides eligibility (rule {rules})")
    measure = f"{p['measure']} {p['association']:.2f}"
    if p["exempt"]:
        return (
            f"{p['attribute']} is associated with {p['protected']} ({measure}) and "
            + " and ".join(how)
            + f"; it is a declared need measure (need: {p['need']}), so it is not flagged:"
            " see the scale audit"
        )
    return f"{p['attribute']} acts as a proxy for {p['protected']} ({measure}) and " + " and ".join(
        how
    )
