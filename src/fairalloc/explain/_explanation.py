"""Explanations of one resident's outcome, and contrasts of two residents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from fairalloc._numeric import MICRO
from fairalloc.errors import ArgumentError, ReviewError
from fairalloc.explain._build import build_facts
from fairalloc.explain._facts import Facts, Value
from fairalloc.explain._i18n import check_locale, localized, message
from fairalloc.explain._render import Block, _key, blocks, fmt, to_html, to_markdown, to_text

if TYPE_CHECKING:
    from fairalloc._evaluation import Evaluation
    from fairalloc.allocation import Allocation
    from fairalloc.allocation._matching import MatchingResult
    from fairalloc.allocation._rotation import Simulation

    Explainable = Evaluation | Allocation | MatchingResult | Simulation

__all__ = ["Audience", "Contrast", "Explanation", "Format", "contrast", "explain"]

#: The formats an explanation renders to.
Format = Literal["text", "md", "html", "json"]

#: Who an explanation or contrast is for: ``officer`` (everything the decision recorded) or
#: ``resident`` (a complainant's view: nothing about any other resident).
Audience = Literal["officer", "resident"]


class _Rendered:
    """Shared rendering of explanations and contrasts."""

    lang: str

    def _blocks(self, lang: str) -> list[Block]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """As plain values (see the JSON schema in the documentation)."""
        raise NotImplementedError

    def to_json(self, *, indent: int | None = None) -> str:
        """As JSON (UTF-8 text, keys in a fixed order): byte-identical for the same facts."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def to_text(self, lang: str | None = None) -> str:
        """Plain text, in ``lang`` (default: the language asked for when explaining)."""
        return to_text(self._blocks(check_locale(lang or self.lang)))

    def to_markdown(self, lang: str | None = None) -> str:
        """Markdown, in ``lang``."""
        return to_markdown(self._blocks(check_locale(lang or self.lang)))

    def to_html(self, lang: str | None = None, *, fragment: bool = True) -> str:
        """Accessible HTML, in ``lang``; ``fragment=False`` gives a whole page."""
        code = check_locale(lang or self.lang)
        return to_html(self._blocks(code), code, fragment=fragment)

    def render(self, format: Format = "text", lang: str | None = None) -> str:
        """Render as ``text``, ``md``, ``html`` (a whole page) or ``json``."""
        if format == "text":
            return self.to_text(lang)
        if format == "md":
            return self.to_markdown(lang)
        if format == "html":
            return self.to_html(lang, fragment=False)
        if format == "json":
            return self.to_json(indent=2) + "\n"
        raise ArgumentError(
            "FA606",
            f"no format {format!r}; formats: text, md, html, json",
            argument="format",
            value=format,
            valid="text, md, html, json",
        )

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html()


class Explanation(_Rendered):
    """Why one resident got its outcome, and what would have changed it.

    Build one with :func:`explain` or ``result.explain(resident_id)``. Everything it states is
    in :attr:`facts`; :meth:`to_text`, :meth:`to_markdown`, :meth:`to_html` and
    :meth:`to_json` render those facts in English (``en``) or Chinese (``zh-CN``).

    Attributes:
        facts: The language-free facts.
        lang: The default language of the renderings.
    """

    def __init__(self, facts: Facts, lang: str = "en") -> None:
        self.facts = facts
        self.lang = check_locale(lang)

    @property
    def resident(self) -> str:
        """The resident's id."""
        return self.facts.resident

    @property
    def score(self) -> float:
        """The score used for ranking."""
        return self.facts.score

    @property
    def eligible(self) -> bool:
        """Whether the resident is eligible."""
        return self.facts.eligible

    @property
    def served(self) -> bool | None:
        """Whether the resident was served (None when only ranked)."""
        return self.facts.outcome.served

    @property
    def rank(self) -> int | None:
        """The resident's rank among the eligible."""
        return self.facts.outcome.rank

    def parts(self) -> dict[str, float]:
        """The score's parts by indicator path and priority rule id, in points.

        For a ``sum`` score whose terms and sub-scales have weight 1 they add up exactly to
        :attr:`score`; in general, each level of :attr:`Facts.scales` adds up exactly.
        """
        out = {i.path: i.points for i in self.facts.indicators}
        out.update({f"priority.{p.rule}": p.points for p in self.facts.priority})
        return out

    def deciding_rules(self) -> list[str]:
        """Ids of the rules and indicators that changed eligibility or the score."""
        f = self.facts
        return (
            [c.rule for c in f.checks if c.deciding]
            + [i.path for i in f.indicators if i.deciding]
            + [p.rule for p in f.priority if p.deciding]
        )

    def to_dict(self) -> dict[str, Any]:
        """As plain values, in the form of the JSON schema ``fairalloc.explanation/1``."""
        return self.facts.to_dict()

    def _blocks(self, lang: str) -> list[Block]:
        return blocks(self.facts, lang)

    def __repr__(self) -> str:
        o = self.facts.outcome
        state = (
            ("served" if o.served else ("not served" if o.served is False else "ranked"))
            if o.eligible
            else "not eligible"
        )
        return f"<Explanation of {self.resident}: {state}, score {fmt(self.score)}>"


def explain(
    source: Explainable,
    resident_id: str,
    *,
    lang: str = "en",
    counterfactuals: bool = True,
    target_rank: int | None = None,
    attributes: Sequence[str] | None = None,
    limit: int = 5,
) -> Explanation:
    """Explain one resident's outcome from an evaluation, allocation, matching or rotation.

    Everything comes from what the engine and the mechanism recorded: each rule's verdict with
    the values it read, each indicator's value, band and points, scale totals and grades, the
    score and rank, the outcome, each category's cut-off and the resident's margin to it, the
    key that decided against the nearest neighbour across the cut-off, and the lottery key with
    the code that recomputes it.

    Counterfactuals vary one attribute the policy marks ``changeable`` at a time (never a
    protected one), re-running the engine and the mechanism, and report the smallest change
    that would have changed the outcome: served or not (allocation), eligible or not, or
    ranked within ``target_rank`` (evaluation). Every one is verified by a re-run.

    Args:
        source: An :class:`~fairalloc.Evaluation`, :class:`~fairalloc.Allocation`,
            :class:`~fairalloc.MatchingResult` or :class:`~fairalloc.Simulation`.
        resident_id: The resident's id.
        lang: The default language of renderings: ``en`` or ``zh-CN``.
        counterfactuals: Search for counterfactuals (allocations and evaluations).
        target_rank: For an evaluation: the rank whose reach counterfactuals aim at.
        attributes: The attributes counterfactuals vary (default: every changeable one).
        limit: The most counterfactuals reported.

    Returns:
        The :class:`Explanation`.

    Raises:
        KeyError: if no resident has that id.
        ValueError: for an unknown locale, or a protected or unknown attribute to vary.
    """
    check_locale(lang)
    facts = build_facts(
        source,
        str(resident_id),
        counterfactuals=counterfactuals,
        target_rank=target_rank,
        attributes=attributes,
        limit=limit,
    )
    return Explanation(facts, lang)


class Contrast(_Rendered):
    """Why resident A ranked where it did relative to resident B, part by part.

    With ``audience="resident"`` (a view for resident A, such as a complainant), nothing of
    B is shown: not B's id, checks, score or points, only whether B ranked above or below A and
    the name of the first ranking key on which they differ.

    Attributes:
        a: The facts of resident A.
        b: The facts of resident B.
        lang: The default language of the renderings.
        audience: ``officer`` (both residents' facts) or ``resident`` (A's own only).
    """

    def __init__(
        self, a: Facts, b: Facts, lang: str = "en", audience: Audience = "officer"
    ) -> None:
        if audience not in ("officer", "resident"):
            raise ReviewError("FA784", f"no audience {audience!r}; audiences: officer, resident")
        self.a = a
        self.b = b
        self.lang = check_locale(lang)
        self.audience: Audience = audience

    def _other_side(self) -> Literal["above", "below", "same"]:
        ra, rb = self.a.outcome.rank, self.b.outcome.rank
        if ra == rb:
            return "same"
        if ra is None:
            return "above"
        if rb is None:
            return "below"
        return "above" if rb < ra else "below"

    def _private_dict(self) -> dict[str, Any]:
        d = self.deciding()
        return {
            "schema": "fairalloc.contrast/1",
            "audience": "resident",
            "a": self.a.resident,
            "eligible": self.a.eligible,
            "score": self.a.score,
            "rank": self.a.outcome.rank,
            "served": self.a.outcome.served,
            "parts": [{"part": k, "points": v / MICRO} for k, v in _parts(self.a).items()],
            "other": self._other_side(),
            "deciding": None if d is None else {"by": d[0]},
        }

    def _private_blocks(self, lang: str) -> list[Block]:
        def m(key: str, **kw: Any) -> str:
            return message(lang, key, **kw)

        a = self.a
        rank = a.outcome.rank if a.outcome.rank is not None else "-"
        out = [Block("h", m("contrast_private_title", a=a.resident))]
        side = self._other_side()
        out.append(
            Block("p", m(f"contrast_private_{side}", a=a.resident, sa=fmt(a.score), ra=rank))
        )
        titles = {i.path: i.title for i in a.indicators} | {
            f"priority.{p.rule}": p.title for p in a.priority
        }
        rows = []
        for key, v in _parts(a).items():
            name = localized(titles.get(key), lang, key)
            rows.append((name if name == key else f"{name} ({key})", fmt(v / MICRO)))
        if rows:
            out.append(Block("h", m("h_own_points", a=a.resident)))
            out.append(
                Block("table", heads=(m("col_indicator"), m("col_points")), rows=tuple(rows))
            )
        d = self.deciding()
        out.append(
            Block(
                "p",
                m("contrast_private_equal")
                if d is None
                else m("contrast_private_deciding", by=_key(lang, d[0])),
            )
        )
        return out

    def differences(self) -> list[tuple[str, float, float]]:
        """Every indicator and priority rule whose points differ: (part, A's, B's), in points.

        For a ``sum`` score with weights of 1, the differences add up to the score difference.
        """
        pa = _parts(self.a)
        pb = _parts(self.b)
        return [(k, pa[k] / MICRO, pb[k] / MICRO) for k in pa if pa[k] != pb[k]]

    def deciding(self) -> tuple[str, Value, Value] | None:
        """The first key of the ranking on which A and B differ: (key, A's, B's)."""
        keys = _ranking_keys(self.a)
        other = _ranking_keys(self.b)
        for (name, va), (_, vb) in zip(keys, other, strict=True):
            if va != vb:
                return name, va, vb
        return None

    def to_dict(self) -> dict[str, Any]:
        """As plain values (for ``audience="resident"``, resident A's own only)."""
        if self.audience == "resident":
            return self._private_dict()
        d = self.deciding()
        return {
            "schema": "fairalloc.contrast/1",
            "audience": "officer",
            "a": self.a.resident,
            "b": self.b.resident,
            "eligible": [self.a.eligible, self.b.eligible],
            "score": [self.a.score, self.b.score],
            "rank": [self.a.outcome.rank, self.b.outcome.rank],
            "served": [self.a.outcome.served, self.b.outcome.served],
            "checks": [
                {"rule": ca.rule, "a": ca.held, "b": cb.held}
                for ca, cb in zip(self.a.checks, self.b.checks, strict=True)
                if ca.held != cb.held
            ],
            "differences": [
                {"part": k, "a": x, "b": y, "difference": x - y} for k, x, y in self.differences()
            ],
            "deciding": None if d is None else {"by": d[0], "a": d[1], "b": d[2]},
        }

    def _blocks(self, lang: str) -> list[Block]:
        def m(key: str, **kw: Any) -> str:
            return message(lang, key, **kw)

        if self.audience == "resident":
            return self._private_blocks(lang)
        a, b = self.a, self.b
        out = [Block("h", m("contrast_title", a=a.resident, b=b.resident))]
        out.append(
            Block(
                "p",
                m(
                    "contrast_summary",
                    a=a.resident,
                    b=b.resident,
                    sa=fmt(a.score),
                    sb=fmt(b.score),
                    ra=a.outcome.rank if a.outcome.rank is not None else "-",
                    rb=b.outcome.rank if b.outcome.rank is not None else "-",
                ),
            )
        )
        checks = [
            (
                localized(ca.title, lang, ca.rule) + f" ({ca.rule})",
                _held(lang, ca.kind, ca.held),
                _held(lang, cb.kind, cb.held),
            )
            for ca, cb in zip(a.checks, b.checks, strict=True)
            if ca.held != cb.held
        ]
        if checks:
            out.append(Block("h", m("h_checks")))
            out.append(
                Block(
                    "table",
                    heads=(m("col_rule"), a.resident, b.resident),
                    rows=tuple(checks),
                )
            )
        titles = {i.path: i.title for i in a.indicators} | {
            f"priority.{p.rule}": p.title for p in a.priority
        }
        rows = []
        for key, x, y in self.differences():
            name = localized(titles.get(key), lang, key)
            name = name if name == key else f"{name} ({key})"
            rows.append((name, fmt(x), fmt(y), _signed(x - y)))
        if rows:
            out.append(Block("h", m("h_differences")))
            out.append(
                Block(
                    "table",
                    heads=(m("col_indicator"), a.resident, b.resident, m("col_difference")),
                    rows=tuple(rows),
                )
            )
        d = self.deciding()
        if d is None:
            out.append(Block("p", m("contrast_equal")))
        else:
            out.append(
                Block("p", m("contrast_deciding", by=_key(lang, d[0]), va=fmt(d[1]), vb=fmt(d[2])))
            )
        return out

    def __repr__(self) -> str:
        if self.audience == "resident":
            return f"<Contrast of {self.a.resident} and another resident>"
        return f"<Contrast of {self.a.resident} and {self.b.resident}>"


def _signed(x: float) -> str:
    s = fmt(x)
    return s if s.startswith("-") or s == "0" else "+" + s


def _held(lang: str, kind: str, held: bool) -> str:  # noqa: FBT001
    if kind == "eligibility":
        return message(lang, "met" if held else "not_met")
    return message(lang, "applies" if held else "not_applies")


def _parts(f: Facts) -> dict[str, int]:
    out = {i.path: i.points_micro for i in f.indicators}
    out.update({f"priority.{p.rule}": p.points_micro for p in f.priority})
    return out


def _ranking_keys(f: Facts) -> list[tuple[str, Value]]:
    keys: list[tuple[str, Value]] = [("eligible", f.eligible)]
    if f.method == "tiers":
        keys += [(f"score: {t.name}", t.value_micro / MICRO) for t in f.terms]
    else:
        keys.append(("score", f.score))
    keys += list(f.tie_values.items())
    if f.lottery is not None and f.lottery.role == "tie_break":
        keys.append(("lottery", f.lottery.key))
    return keys


def contrast(
    source: Explainable, a: str, b: str, *, lang: str = "en", audience: Audience = "officer"
) -> Contrast:
    """Why resident ``a`` ranked where it did relative to resident ``b``, part by part.

    Args:
        source: An evaluation, allocation, matching or rotation result.
        a: The first resident's id.
        b: The second resident's id.
        lang: The default language of renderings.
        audience: ``officer`` (the default: both residents' checks and points) or
            ``resident``, for a view shown to resident ``a`` (a complainant): nothing of ``b``
            but whether ``b`` ranked above or below and the name of the deciding key.

    Raises:
        KeyError: if either id is unknown.
        ValueError: for an unknown locale or audience.
    """
    check_locale(lang)
    fa = build_facts(source, str(a), counterfactuals=False)
    fb = build_facts(source, str(b), counterfactuals=False)
    return Contrast(fa, fb, lang, audience)
