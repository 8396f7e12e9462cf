"""Rendering a :class:`~fairalloc.analysis.Comparison`: its figures as a report document.

The comparison holds the facts (who gains or loses, rank shifts, score changes by criterion,
group rates); this module only lays them out as a :class:`~fairalloc.analysis.Document`, which
renders as Markdown, text or HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fairalloc._compiler import CompiledPolicy
from fairalloc._evaluation import Evaluation
from fairalloc._text import fixed, number
from fairalloc.allocation._result import Allocation
from fairalloc.analysis._diff import Document
from fairalloc.policy._model import Policy

if TYPE_CHECKING:
    from fairalloc.analysis._compare import Comparison

__all__ = ["report"]

#: Version of the comparison's JSON layout.
COMPARE_SCHEMA = "fairalloc.compare/1"
#: Ids listed by name in text reports before the rest are counted.
LISTED = 20
#: The pseudo-criterion holding what rounding weighted totals adds to a ``sum`` score.
ROUNDING = "(rounding of weighted totals)"
#: Rank shifts are counted in these bands of size (the last is open).
SHIFT_BANDS = ((1, 9), (10, 99), (100, 999), (1000, None))

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Source = Policy | CompiledPolicy | Evaluation | Allocation


def _pts(x: float | None, *, sign: bool = False) -> str:
    if x is None:
        return "—"
    return number(x, sign=sign)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _ids_line(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:LISTED])
    more = f" … and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
    return shown + more


class _Report:
    """Builds the document of a comparison, section by section."""

    def __init__(self, c: Comparison, level: int) -> None:
        self.c = c
        self.level = level
        self.doc = Document()

    def build(self, *, include_diff: bool) -> Document:
        c, doc, h = self.c, self.doc, self.level
        doc.heading(h, f"Comparison: {c.before} → {c.after}")
        only = ""
        if c.only_before or c.only_after:
            only = (
                f" {len(c.only_before)} only in the residents of the first policy,"
                f" {len(c.only_after)} only in those of the second (not compared)."
            )
        doc.paragraph(
            f"Before: `{c.before}`; after: `{c.after}`. Residents compared: {c.n}, matched by"
            f" id.{only}" + ("" if c.changed else " **Nothing changes for any resident.**")
        )
        if c.only_before:
            doc.paragraph(f"Only before: {_ids_line(c.only_before)}.")
        if c.only_after:
            doc.paragraph(f"Only after: {_ids_line(c.only_after)}.")
        if include_diff:
            doc.extend(c.diff.document(h + 1))
        self.eligibility()
        self.served()
        self.ranks()
        self.scores()
        self.groups()
        if c.notes:
            doc.heading(h + 1, "Notes")
            doc.items(c.notes)
        return doc

    def eligibility(self) -> None:
        c, doc, h = self.c, self.doc, self.level
        e = c.eligibility_summary()
        doc.heading(h + 1, "Eligibility")
        doc.table(
            ["residents", "count"],
            [
                ["eligible under both", e["eligible_both"]],
                ["newly eligible", e["newly_eligible"]],
                ["newly ineligible", e["newly_ineligible"]],
                ["ineligible under both", e["ineligible_both"]],
            ],
        )
        if e["newly_eligible"]:
            doc.paragraph(f"Newly eligible: {_ids_line(c.newly_eligible)}.")
        if e["newly_ineligible"]:
            doc.paragraph(f"Newly ineligible: {_ids_line(c.newly_ineligible)}.")
        why = [
            f"{n} newly ineligible {_rule_phrase(rule)} under the policy after"
            for rule, n in e["newly_ineligible_by_rule"].items()
        ] + [
            f"{n} newly eligible {_rule_phrase(rule, past=True)} under the policy before"
            for rule, n in e["newly_eligible_by_rule"].items()
        ]
        doc.items(why)

    def served(self) -> None:
        c, doc, h = self.c, self.doc, self.level
        s = c.served_summary()
        if s is None:
            return
        doc.heading(h + 1, "Who is served")
        doc.table(
            ["", "before", "after"],
            [
                ["capacity", s["capacity_before"], s["capacity_after"]],
                ["served", s["served_before"], s["served_after"]],
            ],
        )
        doc.table(
            ["residents", "count"],
            [
                ["served under both", s["served_both"]],
                ["served under both, in another category", s["category_changed"]],
                ["newly served", s["newly_served"]],
                ["newly served: newly eligible", s["newly_served_newly_eligible"]],
                ["newly served: moved above a cut-off", s["newly_served_above_cutoff"]],
                ["losing their place", s["losing_place"]],
                ["losing their place: no longer eligible", s["losing_place_no_longer_eligible"]],
                ["losing their place: now below a cut-off", s["losing_place_below_cutoff"]],
            ],
        )
        if s["newly_served"]:
            doc.paragraph(f"Newly served: {_ids_line(c.newly_served)}.")
        if s["losing_place"]:
            doc.paragraph(f"Losing their place: {_ids_line(c.losing_place)}.")
        doc.heading(h + 2, "Cut-offs")
        rows = []
        for cc in c.cutoff_changes:
            bf, af = cc.before, cc.after
            rows.append(
                [
                    cc.category,
                    "—" if bf is None else f"{bf.used} of {bf.size}",
                    "—" if af is None else f"{af.used} of {af.size}",
                    "—" if bf is None or bf.last_id is None else bf.last_id,
                    "—" if af is None or af.last_id is None else af.last_id,
                    _pts(None if bf is None else bf.score),
                    _pts(None if af is None else af.score),
                    "changed" if cc.changed else "same",
                ]
            )
        doc.table(
            [
                "category",
                "given before",
                "given after",
                "last served before",
                "last served after",
                "cut-off score before",
                "cut-off score after",
                "status",
            ],
            rows,
        )

    def ranks(self) -> None:
        c, doc, h = self.c, self.doc, self.level
        r = c.rank_summary()
        doc.heading(h + 1, "Ranks")
        if r["compared"] == 0:
            doc.paragraph("Nobody is eligible under both policies, so no ranks are compared.")
            return

        def corr(x: float | None) -> str:
            return "undefined (fewer than two residents, or all tied)" if x is None else f"{x:.4f}"

        doc.paragraph(
            f"Among the {r['compared']} residents eligible under both (each policy's own ranks,"
            f" 1 = best): {r['unchanged']} keep their rank, {r['moved_up']} move up,"
            f" {r['moved_down']} move down; the median shift is {_pts(r['median_shift'])}, the"
            f" mean absolute shift {_pts(r['mean_absolute_shift'])}, the largest"
            f" {r['largest_up']} up and {r['largest_down']} down. Rank correlation: Spearman's"
            f" rho {corr(r['spearman_rho'])}, Kendall's tau-b {corr(r['kendall_tau_b'])}."
        )
        doc.table(
            ["shift (places)", "moved up", "moved down"],
            [[d["shift"], d["up"], d["down"]] for d in r["distribution"]],
        )
        if c.movers:
            doc.heading(h + 2, "Largest movers")
            doc.table(
                [
                    "id",
                    "rank before",
                    "rank after",
                    "shift",
                    "score before",
                    "score after",
                    "main change",
                ],
                [
                    [
                        m.id,
                        m.rank_before,
                        m.rank_after,
                        f"{m.shift:+d}",
                        _pts(m.score_before),
                        _pts(m.score_after),
                        "score unchanged"
                        if m.main_criterion is None
                        else f"{m.main_criterion} {_pts(m.main_change, sign=True)}",
                    ]
                    for m in c.movers
                ],
            )

    def scores(self) -> None:
        c, doc, h = self.c, self.doc, self.level
        s = c.score_summary()
        doc.heading(h + 1, "Scores")
        how = (
            "Each criterion's change is the change of its contribution to the score (its points"
            " times the weights above it), so the changes of a resident add up exactly to the"
            " change of their score."
            if c.additive
            else "The scores are not sums, so each criterion's change is a change in its points,"
            " which need not add up to the change of the score."
        )
        if not s["changed"]:
            doc.paragraph(f"No resident's score changes ({len(c.criteria)} criteria compared).")
            return
        doc.paragraph(
            f"{s['changed']} of {c.n} residents' scores change ({s['changed_among_eligible_both']}"
            f" of them eligible under both); the mean change is"
            f" {_pts(s['mean_change'], sign=True)} points. {how}"
        )
        doc.table(
            [
                "criterion",
                "status",
                "residents changed",
                "mean change",
                "smallest",
                "largest",
                "because",
            ],
            [
                [
                    cc.criterion,
                    cc.status,
                    cc.residents_changed,
                    _pts(cc.mean_change, sign=True),
                    _pts(cc.smallest, sign=True),
                    _pts(cc.largest, sign=True),
                    "; ".join(cc.causes) or "—",
                ]
                for cc in c.criterion_changes
            ],
        )

    def groups(self) -> None:
        c, doc, h = self.c, self.doc, self.level
        rows = c.group_rows()
        stats = c.groups_after
        if not rows or stats is None:
            return
        doc.heading(h + 1, "Groups")
        what = (
            "served among the eligible residents"
            if stats.outcome == "served"
            else "eligible among all residents"
        )
        within = f", overall and within the grades of `{stats.strata}`" if stats.strata else ""
        doc.paragraph(
            f"Selection rate: residents {what}, by group{within}, under each policy. The ratio"
            " is the group's rate over the reference group's: the best-served group among those"
            " large enough to publish, so a smaller group can exceed 1. A ratio below 0.8 fails"
            ' the four-fifths rule; "disparity" means its interval also excludes parity (see'
            " `fairalloc.audit.group_statistics`)."
        )
        by_grouping: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_grouping.setdefault(r["grouping"], []).append(r)
        for grouping, recs in by_grouping.items():
            doc.heading(h + 2, grouping)
            heads = ["group", "n before", "n after", "rate before", "rate after", "change"]
            heads += ["ratio before", "ratio after", "flags"]
            if stats.strata:
                heads.insert(0, stats.strata)
            table = []
            for r in recs:
                change = r["rate_change"]
                cells: list[object] = [
                    r["group"],
                    "—" if r["n_before"] is None else r["n_before"],
                    "—" if r["n_after"] is None else r["n_after"],
                    _pct(r["rate_before"]),
                    _pct(r["rate_after"]),
                    "—" if change is None else f"{change * 100:+.1f} pp",
                    _ratio(r["ratio_before"]),
                    _ratio(r["ratio_after"]),
                    _flags(r),
                ]
                if stats.strata:
                    cells.insert(0, "all" if r["stratum"] is None else r["stratum"])
                table.append(cells)
            doc.table(heads, table)


def _ratio(x: float | None) -> str:
    return "—" if x is None else fixed(x)


def _flags(r: Mapping[str, Any]) -> str:
    out = []
    for side in ("before", "after"):
        if r[f"disparity_{side}"]:
            out.append(f"disparity {side}")
        elif r[f"four_fifths_{side}"]:
            out.append(f"below four-fifths {side}")
    return "; ".join(out)


def _rule_phrase(rule: str, *, past: bool = False) -> str:
    verb, _, rid = rule.partition(" ")
    if verb == "fails":
        return f"{'failed' if past else 'fail'} `{rid}`"
    return f"{'were' if past else 'are'} excluded by `{rule.removeprefix('excluded by ')}`"


def report(c: Comparison, level: int = 1, *, include_diff: bool = True) -> Document:
    """The comparison ``c`` as a document whose title is a heading of ``level``."""
    return _Report(c, level).build(include_diff=include_diff)
