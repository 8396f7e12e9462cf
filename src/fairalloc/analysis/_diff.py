"""The structural difference of two policy documents: what was added, removed or changed.

:func:`policy_diff` compares two policies item by item, keyed by what names each item (an
attribute's or parameter's name, a rule's or reserve's id, a scale's or indicator's dotted path)
rather than by its position in a list, so that moving a rule up or down is not a change. Where
order does decide something it is reported: the exclusions (the first that applies is the reason
a resident is given), the tie-break chain, the precedence of reserve categories, the reserves'
own order when it sets that precedence, the terms of a ``tiers`` score, the levels of an ordinal
and the preferences of a matching. Bands and grades are lists whose order counts (the first that
holds applies), so they are compared as whole lists.

Every change names its item and field, with the old and the new value, and says whether it can
change any resident's eligibility, score, rank or allocation (``affects_outcomes``); titles,
descriptions, sources, units, justifications and reasons cannot. A changed parameter or derived
value is shown with the parts of the policy that read it, found from the expressions, directly
or through derived values.

This module also holds the small document model (headings, paragraphs, lists, tables) that the
diff and :class:`~fairalloc.analysis.Comparison` render as text, Markdown and HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fairalloc._compiler import CompiledPolicy
from fairalloc._escape import html_text, markdown_inline, terminal_text
from fairalloc._html import table as html_table
from fairalloc._text import text_table
from fairalloc.errors import ArgumentError, ArgumentTypeError
from fairalloc.expr import _ast as A
from fairalloc.expr._parser import ExprSyntaxError, children, parse
from fairalloc.policy._model import Policy

__all__ = [
    "SECTIONS",
    "Change",
    "Document",
    "PolicyDiff",
    "expression_reads",
    "part_label",
    "policy_diff",
    "show",
]

ChangeKind = Literal["added", "removed", "changed", "reordered", "moved"]

#: Fields that document an item without changing what it computes.
_DOC_FIELDS = frozenset(
    {"title", "description", "source", "unit", "ground", "why", "reason", "changeable", "need"}
)
#: Fields holding a mapping whose entries are compared one by one.
_KEYED_FIELDS = frozenset({"lookup", "accrue"})
#: What a justified use may name, as in :class:`fairalloc.policy._model.JustifiedUse`.
_USE_TARGETS = ("rule", "scale", "indicator", "tie_break", "reserve", "resource", "allocation")
#: Sections in the order they are reported.
SECTIONS = (
    "policy",
    "attributes",
    "justified uses",
    "parameters",
    "derived values",
    "scales",
    "indicators",
    "rules",
    "score",
    "ranking",
    "allocation",
)
_RULE_SECTIONS = {
    "eligibility": "eligibility rule",
    "exclusions": "exclusion",
    "priority": "priority rule",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two policies.

    Attributes:
        section: The part of the policy (``parameters``, ``rules``, ``indicators``, ...).
        item: What names the item: a name, an id or a dotted path (``min_age``,
            ``aged-60-plus``, ``need.health.adl``).
        field: The field that changed (``value``, ``when``, ``weight``, ``lookup.dibao``), or
            None when the whole item was added, removed or moved.
        kind: ``added``, ``removed``, ``changed``, ``reordered`` or ``moved``.
        old: The value before (plain JSON values; None for an added item).
        new: The value after (None for a removed item).
        label: How reports name the item: its kind and its name in backticks.
        note: More context: who reads a parameter, why an order counts.
        affects_outcomes: Whether the change can alter any resident's eligibility, score, rank
            or allocation (False for titles, descriptions, sources and other documentation).
    """

    section: str
    item: str
    field: str | None
    kind: ChangeKind
    old: Any
    new: Any
    label: str
    note: str = ""
    affects_outcomes: bool = True

    def describe(self) -> str:
        """One line saying what changed, e.g. ``parameter `min_age`: value 60 → 65``."""
        # A field of several words (``value from 2026-07-01``) ends with a colon.
        what = (
            "" if not self.field else f"{self.field}: " if " " in self.field else f"{self.field} "
        )
        if self.kind == "added":
            text = f"{self.label}: {what}added" + (f" ({self.new})" if self.new else "")
        elif self.kind == "removed":
            text = f"{self.label}: {what}removed" + (f" (was {self.old})" if self.old else "")
        elif self.kind == "moved":
            text = f"{self.label}: moved from `{self.old}` to `{self.new}`"
        elif self.kind == "reordered":
            text = f"{self.label}: order {show(self.old)} → {show(self.new)}"
        else:
            old, new = _show_field(self.field, self.old), _show_field(self.field, self.new)
            text = f"{self.label}: {what}{old} → {new}"
        if self.note:
            text += f"; {self.note}"
        if not self.affects_outcomes:
            text += " (documentation only)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "section": self.section,
            "item": self.item,
            "field": self.field,
            "change": self.kind,
            "old": self.old,
            "new": self.new,
            "description": self.describe(),
            "affects_outcomes": self.affects_outcomes,
        }


class PolicyDiff:
    """What differs between two policy documents; build it with :func:`policy_diff`.

    Attributes:
        before: The first policy's id and version, e.g. ``elderly-care-places v2026.1``.
        after: The second policy's id and version.
        changes: Every change, section by section in the order of :data:`SECTIONS`.
    """

    def __init__(
        self,
        before: str,
        after: str,
        changes: Sequence[Change],
        reads_before: Mapping[str, frozenset[str]],
        reads_after: Mapping[str, frozenset[str]],
        priority_rules: Iterable[str],
        unjustified: Sequence[str] = (),
    ) -> None:
        self.before = before
        self.after = after
        self.changes = tuple(changes)
        #: Reads of protected attributes without a justified use that the second policy makes
        #: and the first does not (each as the compiler states it).
        self.unjustified = tuple(unjustified)
        self._reads = (dict(reads_before), dict(reads_after))
        self._priority_rules = frozenset(priority_rules)

    # -- queries -----------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        """Whether the two documents say the same (spelling and list order aside)."""
        return not self.changes

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def affects_outcomes(self) -> bool:
        """Whether any change can alter a resident's eligibility, score, rank or allocation."""
        return any(c.affects_outcomes for c in self.changes)

    @property
    def protection_changes(self) -> list[Change]:
        """Changes to which attributes are protected (added or removed protected attributes too)."""
        out = []
        for c in self.changes:
            if c.section != "attributes":
                continue
            if c.field == "protected" or (
                c.kind in ("added", "removed") and "protected: true" in str(c.new or c.old)
            ):
                out.append(c)
        return out

    def in_section(self, section: str) -> list[Change]:
        """The changes of one section (see :data:`SECTIONS`)."""
        if section not in SECTIONS:
            raise ArgumentError(
                "FA606",
                f"no section {section!r}; sections: {', '.join(SECTIONS)}",
                argument="section",
                value=section,
                valid=", ".join(SECTIONS),
            )
        return [c for c in self.changes if c.section == section]

    def names_read_by(self, part: str) -> set[str]:
        """The parameters, derived values and attributes ``part`` reads in either policy.

        Args:
            part: A part named as in :attr:`fairalloc.CompiledPolicy.reads`: ``rule:<id>``,
                ``indicator:<path>``, ``tie_break:<i>``, ``reserve:<id>``, ``resource:<id>``,
                ``allocation:lottery-weight``, ``allocation:rotation-band`` or ``derived:<name>``;
                reads through derived values are included.
        """
        return set(self._reads[0].get(part, ())) | set(self._reads[1].get(part, ()))

    def readers_of(self, name: str) -> list[str]:
        """Every part that reads the parameter, derived value or attribute ``name``.

        In either policy, directly or through derived values (which are left out of the list).
        """
        return _readers(self._reads, name)

    def causes(self, part: str) -> list[Change]:
        """The changes that can alter what ``part`` computes or how much it weighs in the score.

        These are the changes to the part itself, to the parameters, derived values and
        attributes it reads (documentation aside), and for an indicator or priority rule, to
        the weights of the scales above it, its score term and the score's method.

        Args:
            part: ``rule:<id>``, ``indicator:<path>`` or any other part (see
                :meth:`names_read_by`).
        """
        kind, _, name = part.partition(":")
        names = self.names_read_by(part)
        weighted: set[tuple[str, str]] = set()
        if kind == "indicator":
            steps = name.split(".")
            weighted |= {("scales", ".".join(steps[:i])) for i in range(2, len(steps))}
            weighted.add(("score", f"term:{steps[0]}"))
        elif kind == "rule" and name in self._priority_rules:
            weighted.add(("score", "term:priority"))
        own = {
            "rule": ("rules", name),
            "indicator": ("indicators", name),
            "reserve": ("allocation", f"reserve:{name}"),
            "resource": ("allocation", f"resource:{name}"),
            "allocation": ("allocation", "lottery" if name == "lottery-weight" else "rotation"),
        }.get(kind)
        out = []
        for c in self.changes:
            if not c.affects_outcomes:
                continue
            if (
                (c.section, c.item) == own
                or (c.section == "parameters" and c.item in names)
                or (c.section == "derived values" and c.item in names)
                or (c.section == "attributes" and c.item in names)
                or (kind == "tie_break" and c.section == "ranking")
                or ((c.section, c.item) in weighted and c.field in ("weight", None))
                or (weighted and c.section == "score" and c.field == "method")
            ):
                out.append(c)
        return out

    # -- exports -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The diff as plain values: both policies' names and every change."""
        return {
            "before": self.before,
            "after": self.after,
            "changes": [c.to_dict() for c in self.changes],
            "affects_outcomes": self.affects_outcomes,
            "unjustified_reads": list(self.unjustified),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The diff as JSON (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def document(self, level: int = 1) -> Document:
        """The diff as a :class:`Document` whose title has heading ``level``."""
        doc = Document()
        doc.heading(level, f"Policy changes: {self.before} → {self.after}")
        if not self.changes:
            doc.paragraph(
                "The two policies say the same (spelling and the order of unordered lists aside)."
            )
            return doc
        outcome = sum(c.affects_outcomes for c in self.changes)
        doc.paragraph(
            f"{len(self.changes)} change(s), of which {outcome} can change a resident's"
            " eligibility, score, rank or allocation; the others are documentation only."
        )
        if self.unjustified:
            doc.heading(level + 1, "New reads of protected attributes without a justified use")
            doc.items(self.unjustified)
        protection = self.protection_changes
        if protection:
            doc.heading(level + 1, "Protected attributes")
            doc.items(c.describe() for c in protection)
        for section in SECTIONS:
            changes = [c for c in self.in_section(section) if c not in protection]
            if changes:
                doc.heading(level + 1, section[0].upper() + section[1:])
                doc.items(c.describe() for c in changes)
        return doc

    def to_text(self) -> str:
        """The diff as plain text, one line per change under each section."""
        return self.document().text()

    def to_markdown(self) -> str:
        """The diff as Markdown, one bullet per change under each section."""
        return self.document().markdown()

    def _repr_html_(self) -> str:
        return self.document(level=3).html()

    def __repr__(self) -> str:
        return (
            f"<PolicyDiff {self.before} → {self.after}: {len(self.changes)} changes,"
            f" {sum(c.affects_outcomes for c in self.changes)} affecting outcomes>"
        )


# -- building the diff ------------------------------------------------------------------------


def policy_diff(
    a: Policy | CompiledPolicy | str | os.PathLike[str],
    b: Policy | CompiledPolicy | str | os.PathLike[str],
) -> PolicyDiff:
    """What was added, removed or changed from policy ``a`` to policy ``b``, item by item.

    Items are matched by name, id or dotted path, never by position, so reordering rules,
    attributes or parameters is no change; order changes are reported where order decides
    something (see the module documentation).

    Args:
        a: The policy before: a :class:`~fairalloc.Policy`, a compiled policy or a policy file.
        b: The policy after.

    Returns:
        The :class:`PolicyDiff`; empty when both say the same.

    Raises:
        PolicyError: if a policy file cannot be loaded.

    Examples:
        >>> import fairalloc as fa
        >>> from fairalloc.analysis import policy_diff
        >>> text = '''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   age: {type: int, min: 0, max: 130}
        ... parameters: {min_age: 60}
        ... rules:
        ...   eligibility: [{id: old-enough, when: "age >= min_age"}]
        ... '''
        >>> old = fa.parse_policy(text)
        >>> new = fa.parse_policy(text.replace("min_age: 60", "min_age: 65"))
        >>> for change in policy_diff(old, new).changes:
        ...     print(change.describe())
        parameter `min_age`: value 60 → 65; read by rule `old-enough`
    """
    pa, pb = _policy_of(a), _policy_of(b)
    da, db = _dump(pa), _dump(pb)
    sa, sb = _dump(pa, short=True), _dump(pb, short=True)
    reads_a, reads_b = expression_reads(pa), expression_reads(pb)
    diff = _Differ(reads_a, reads_b)
    diff.policy_meta(da["policy"], db["policy"])
    diff.attributes(
        da["attributes"], db["attributes"], sa.get("attributes", {}), sb.get("attributes", {})
    )
    diff.justified_uses(da["justified_uses"], db["justified_uses"])
    diff.parameters(
        da["parameters"], db["parameters"], sa.get("parameters", {}), sb.get("parameters", {})
    )
    diff.derived(da["derived"], db["derived"], sa.get("derived", {}), sb.get("derived", {}))
    diff.scales(da["scales"], db["scales"], sa.get("scales", {}), sb.get("scales", {}))
    diff.rules(da["rules"], db["rules"], sa.get("rules", {}), sb.get("rules", {}))
    diff.score(pa, pb, da["score"], db["score"])
    diff.ranking(da["ranking"]["tie_break"], db["ranking"]["tie_break"])
    diff.allocation(da["allocation"], db["allocation"], sa.get("allocation"), sb.get("allocation"))
    priority = [r.id for r in (*pa.rules.priority, *pb.rules.priority)]
    new_reads = sorted(set(_unjustified(pb)) - set(_unjustified(pa)))
    return PolicyDiff(_label(pa), _label(pb), diff.out, reads_a, reads_b, priority, new_reads)


def _unjustified(p: Policy) -> list[str]:
    """The compiler's statements of each read of a protected attribute without a justified use."""
    from fairalloc._compiler import compile_policy
    from fairalloc.errors import PolicyError

    try:
        cp = compile_policy(p, audit=True)
    except PolicyError:
        return []  # a policy with other problems: its document is still diffed
    return [i.message for i in cp.violations]


def _policy_of(p: Policy | CompiledPolicy | str | os.PathLike[str]) -> Policy:
    if isinstance(p, Policy):
        return p
    if isinstance(p, CompiledPolicy):
        return p.policy
    if isinstance(p, str | os.PathLike):
        from fairalloc.policy import load_policy

        # A document diff: a policy that reads a protected attribute without a justified use is
        # still read (the diff shows the new read), as an audit reads it.
        return load_policy(p, audit=True)
    raise ArgumentTypeError(
        "FA640",
        f"cannot compare a {type(p).__name__}: give a Policy, a CompiledPolicy or a policy file",
    )


def _label(p: Policy) -> str:
    return f"{p.policy.id} v{p.policy.version}"


def _dump(p: Policy, *, short: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = p.model_dump(mode="json", by_alias=True, exclude_defaults=short)
    return doc


class _Differ:
    """Collects the changes of one comparison, section by section.

    Each section's items come as mappings from what names them to their fields, in full (to
    compare) and without defaults (to summarise an item added or removed).
    """

    def __init__(
        self, reads_a: Mapping[str, frozenset[str]], reads_b: Mapping[str, frozenset[str]]
    ) -> None:
        self.out: list[Change] = []
        self.reads = (reads_a, reads_b)

    # -- generic -----------------------------------------------------------------------
    def change(
        self,
        section: str,
        item: str,
        field: str | None,
        kind: ChangeKind,
        old: Any,
        new: Any,
        label: str,
        note: str = "",
        *,
        affects: bool = True,
    ) -> None:
        self.out.append(Change(section, item, field, kind, old, new, label, note, affects))

    def items(
        self,
        section: str,
        old: Mapping[str, Mapping[str, Any]],
        new: Mapping[str, Mapping[str, Any]],
        old_short: Mapping[str, Any],
        new_short: Mapping[str, Any],
        label: Callable[[str], str],
        *,
        skip: Iterable[str] = (),
        note: Callable[[str], str] = lambda _: "",
    ) -> None:
        """Items matched by key: added, removed, or compared field by field."""
        for key in _union(old, new):
            if key not in old:
                summary = _summary(new_short.get(key))
                self.change(section, key, None, "added", None, summary, label(key), note(key))
            elif key not in new:
                summary = _summary(old_short.get(key))
                self.change(section, key, None, "removed", summary, None, label(key), note(key))
            else:
                self.fields(section, key, label(key), old[key], new[key], skip=skip, note=note(key))

    def fields(
        self,
        section: str,
        item: str,
        label: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        *,
        skip: Iterable[str] = (),
        note: str = "",
    ) -> None:
        """One change per field that differs; mappings in :data:`_KEYED_FIELDS` entry by entry."""
        skipped = set(skip)
        for key in _union(old, new):
            ov, nv = old.get(key), new.get(key)
            if key in skipped or _same(ov, nv):
                continue
            if key in _KEYED_FIELDS and isinstance(ov, dict) and isinstance(nv, dict):
                for k in _union(ov, nv):
                    if not _same(ov.get(k), nv.get(k)):
                        self.change(
                            section,
                            item,
                            f"{key}.{k}",
                            "changed",
                            ov.get(k),
                            nv.get(k),
                            label,
                            note,
                        )
                continue
            self.change(
                section, item, key, "changed", ov, nv, label, note, affects=key not in _DOC_FIELDS
            )

    def order(
        self, section: str, item: str, label: str, old: Sequence[str], new: Sequence[str], why: str
    ) -> None:
        """A change of the order of the items both lists hold, where that order decides."""
        common_o = [k for k in old if k in new]
        common_n = [k for k in new if k in old]
        if common_o != common_n:
            self.change(section, item, "order", "reordered", common_o, common_n, label, why)

    def readers_note(self, name: str) -> str:
        parts = _readers(self.reads, name)
        if not parts:
            return "read by nothing"
        return "read by " + ", ".join(part_label(p) for p in parts)

    # -- sections ----------------------------------------------------------------------
    def policy_meta(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        for key in _union(old, new):
            if _same(old.get(key), new.get(key)):
                continue
            # The id and version name the policy; the effective date sets parameter values.
            affects = key == "effective"
            note = "the date whose parameter values apply by default" if affects else ""
            self.change(
                "policy",
                "policy",
                key,
                "changed",
                old.get(key),
                new.get(key),
                "policy",
                note,
                affects=affects,
            )

    def attributes(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        old_short: Mapping[str, Any],
        new_short: Mapping[str, Any],
    ) -> None:
        def label(name: str) -> str:
            return f"attribute `{name}`"

        start = len(self.out)
        self.items(
            "attributes", old, new, old_short, new_short, label, skip=("protected", "levels")
        )
        for name in (n for n in old if n in new):
            o, n = old[name], new[name]
            if o.get("protected") != n.get("protected"):
                now = (
                    "now protected: every part that reads it needs a justified use"
                    if n.get("protected")
                    else "no longer protected: any part may read it without a justified use"
                )
                protected = (o.get("protected"), n.get("protected"))
                self.change(
                    "attributes", name, "protected", "changed", *protected, label(name), now
                )
            lo, ln = o.get("levels"), n.get("levels")
            if lo is None or ln is None or lo == ln:
                continue
            if sorted(lo) != sorted(ln):
                self.change("attributes", name, "levels", "changed", lo, ln, label(name))
            elif o.get("type") == "ordinal" and n.get("type") == "ordinal":
                why = "the levels of an ordinal are its order, lowest first"
                self.change("attributes", name, "levels", "reordered", lo, ln, label(name), why)
        # Each attribute's changes together, attributes in document order.
        order = {name: i for i, name in enumerate(_union(old, new))}
        self.out[start:] = sorted(self.out[start:], key=lambda c: order[c.item])

    def justified_uses(self, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        labels: dict[str, str] = {}

        def keyed(uses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            out = {}
            for u in uses:
                kind = next(k for k in _USE_TARGETS if u.get(k) is not None)
                key = f"{u['attribute']} by {kind}:{u[kind]}"
                labels[key] = (
                    f"justified use of `{u['attribute']}` by {kind.replace('_', '-')} `{u[kind]}`"
                )
                out[key] = u
            return out

        ko, kn = keyed(old), keyed(new)
        short_o = {k: {"because": u["why"]} for k, u in ko.items()}
        short_n = {k: {"because": u["why"]} for k, u in kn.items()}
        self.items("justified uses", ko, kn, short_o, short_n, labels.__getitem__)

    def parameters(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        old_short: Mapping[str, Any],
        new_short: Mapping[str, Any],
    ) -> None:
        def label(name: str) -> str:
            return f"parameter `{name}`"

        self.items(
            "parameters",
            old,
            new,
            old_short,
            new_short,
            label,
            skip=("values",),
            note=self.readers_note,
        )
        for name in (n for n in old if n in new):
            # Dated values by their date: adding one is no change to the others.
            dated_o = {d["from"]: d["value"] for d in old[name].get("values") or ()}
            dated_n = {d["from"]: d["value"] for d in new[name].get("values") or ()}
            note = self.readers_note(name)
            for when in sorted(_union(dated_o, dated_n)):
                field = f"value from {when}"
                if when not in dated_o:
                    added = show(dated_n[when])
                    self.change("parameters", name, field, "added", None, added, label(name), note)
                elif when not in dated_n:
                    gone = show(dated_o[when])
                    self.change("parameters", name, field, "removed", gone, None, label(name), note)
                elif not _same(dated_o[when], dated_n[when]):
                    values = (dated_o[when], dated_n[when])
                    self.change("parameters", name, field, "changed", *values, label(name), note)

    def derived(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        old_short: Mapping[str, Any],
        new_short: Mapping[str, Any],
    ) -> None:
        self.items(
            "derived values",
            old,
            new,
            old_short,
            new_short,
            lambda n: f"derived value `{n}`",
            note=self.readers_note,
        )

    def scales(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        old_short: Mapping[str, Any],
        new_short: Mapping[str, Any],
    ) -> None:
        self.items(
            "scales",
            dict(_scale_items(old)),
            dict(_scale_items(new)),
            dict(_scale_items(old_short)),
            dict(_scale_items(new_short)),
            lambda path: f"scale `{path}`",
        )
        io, in_ = dict(_indicator_items(old)), dict(_indicator_items(new))
        # An indicator that keeps its name and definition under another scale has moved.
        came = [q for q in in_ if q not in io]
        moved: dict[str, str] = {}
        for p in (p for p in io if p not in in_):
            leaf = p.rsplit(".", 1)[1]
            same = [q for q in came if q.rsplit(".", 1)[1] == leaf and io[p] == in_[q]]
            if len(same) == 1 and same[0] not in moved.values():
                moved[p] = same[0]
        for p, q in moved.items():
            self.change("indicators", q, None, "moved", p, q, f"indicator `{q}`")
        self.items(
            "indicators",
            {p: v for p, v in io.items() if p not in moved},
            {q: v for q, v in in_.items() if q not in moved.values()},
            dict(_indicator_items(old_short)),
            dict(_indicator_items(new_short)),
            lambda path: f"indicator `{path}`",
        )

    def rules(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        old_short: Mapping[str, Any],
        new_short: Mapping[str, Any],
    ) -> None:
        ro, rn = _rules_by_id(old), _rules_by_id(new)
        section = {**{k: v[0] for k, v in ro.items()}, **{k: v[0] for k, v in rn.items()}}
        self.items(
            "rules",
            {rid: {"section": sec, **r} for rid, (sec, r) in ro.items()},
            {rid: {"section": sec, **r} for rid, (sec, r) in rn.items()},
            {rid: r for rid, (_, r) in _rules_by_id(old_short).items()},
            {rid: r for rid, (_, r) in _rules_by_id(new_short).items()},
            lambda rid: f"{_RULE_SECTIONS[section[rid]]} `{rid}`",
            skip=("id",),
        )
        self.order(
            "rules",
            "exclusions",
            "exclusions",
            [r["id"] for r in old.get("exclusions", ())],
            [r["id"] for r in new.get("exclusions", ())],
            "the first exclusion that applies is the reason a resident is given",
        )

    def score(self, pa: Policy, pb: Policy, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.fields("score", "score", "score", old, new, skip=("terms",))
        to, tn = _terms(pa), _terms(pb)
        self.items(
            "score",
            {f"term:{k}": {"weight": w} for k, w in to.items()},
            {f"term:{k}": {"weight": w} for k, w in tn.items()},
            {f"term:{k}": {"weight": w} for k, w in to.items()},
            {f"term:{k}": {"weight": w} for k, w in tn.items()},
            lambda item: f"score term `{item.removeprefix('term:')}`",
        )
        if pb.score.method == "tiers":
            why = "with `method: tiers` the first term decides, the next breaks its ties"
            self.order("score", "terms", "score terms", list(to), list(tn), why)

    def ranking(self, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        ko = {_tie_key(t): _flat(t) for t in old}
        kn = {_tie_key(t): _flat(t) for t in new}

        def positions(keys: list[str]) -> dict[str, dict[str, Any]]:
            return {k: {"position": i + 1} for i, k in enumerate(keys)}

        self.items(
            "ranking",
            ko,
            kn,
            positions(list(ko)),
            positions(list(kn)),
            lambda key: f"tie-break {key}",
            skip=("by",),
        )
        why = "each tie-break applies only to residents still tied by those before it"
        self.order("ranking", "tie_break", "tie-break chain", list(ko), list(kn), why)

    def allocation(
        self,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        old_short: Mapping[str, Any] | None,
        new_short: Mapping[str, Any] | None,
    ) -> None:
        if old is None or new is None:
            # Added or removed as a whole: summarised without its lists of reserves and resources.
            def whole(spec: Mapping[str, Any] | None) -> dict[str, Any]:
                if spec is None:
                    return {}
                return {
                    "allocation": {
                        k: v for k, v in spec.items() if k not in ("reserves", "matching")
                    }
                }

            self.items(
                "allocation",
                {} if old is None else {"allocation": dict(old)},
                {} if new is None else {"allocation": dict(new)},
                whole(old_short),
                whole(new_short),
                _named("allocation section"),
            )
            return
        parts = ("lottery", "reserves", "rotation", "matching", "precedence")
        self.fields("allocation", "allocation", "allocation", old, new, skip=parts)
        if not _same(old.get("precedence"), new.get("precedence")):
            self.change(
                "allocation",
                "allocation",
                "precedence",
                "changed",
                old.get("precedence"),
                new.get("precedence"),
                "allocation",
                "categories are processed in this order",
            )
        for key, label in (("lottery", "allocation lottery"), ("rotation", "rotation")):
            o, n = old.get(key), new.get(key)
            self.items(
                "allocation",
                {} if o is None else {key: o},
                {} if n is None else {key: n},
                {} if o is None else {key: o},
                {} if n is None else {key: n},
                _named(label),
            )
        res_o = {f"reserve:{r['id']}": r for r in old.get("reserves") or ()}
        res_n = {f"reserve:{r['id']}": r for r in new.get("reserves") or ()}
        self.items(
            "allocation",
            res_o,
            res_n,
            {f"reserve:{r['id']}": r for r in (old_short or {}).get("reserves") or ()},
            {f"reserve:{r['id']}": r for r in (new_short or {}).get("reserves") or ()},
            lambda item: f"reserve `{item.removeprefix('reserve:')}`",
            skip=("id",),
        )
        if new.get("precedence") is None and new.get("reserve_mode") == "precedence":
            why = "without `precedence`, reserves are processed in the order listed"
            ids_o = [k.removeprefix("reserve:") for k in res_o]
            ids_n = [k.removeprefix("reserve:") for k in res_n]
            self.order("allocation", "reserves", "reserves", ids_o, ids_n, why)
        self.matching(old.get("matching"), new.get("matching"))

    def matching(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if old is None or new is None:

            def whole(m: Mapping[str, Any] | None) -> dict[str, Any]:
                return {} if m is None else {"matching": {"resources": len(m["resources"])}}

            self.items(
                "allocation",
                {} if old is None else {"matching": dict(old)},
                {} if new is None else {"matching": dict(new)},
                whole(old),
                whole(new),
                _named("matching"),
            )
            return
        self.fields("allocation", "matching", "matching", old, new, skip=("resources",))
        ro = {f"resource:{r['id']}": r for r in old["resources"]}
        rn = {f"resource:{r['id']}": r for r in new["resources"]}
        self.items(
            "allocation",
            ro,
            rn,
            ro,
            rn,
            lambda item: f"resource `{item.removeprefix('resource:')}`",
            skip=("id",),
        )


# -- items of the document ----------------------------------------------------------------------


def _scale_items(
    scales: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, s in scales.items():
        path = f"{prefix}{name}"
        yield path, {k: v for k, v in s.items() if k not in ("indicators", "scales")}
        yield from _scale_items(s.get("scales") or {}, path + ".")


def _indicator_items(
    scales: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, s in scales.items():
        path = f"{prefix}{name}"
        for iname, ind in (s.get("indicators") or {}).items():
            yield f"{path}.{iname}", ind
        yield from _indicator_items(s.get("scales") or {}, path + ".")


def _rules_by_id(rules: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r["id"]: (section, r) for section in _RULE_SECTIONS for r in rules.get(section) or ()}


def _terms(p: Policy) -> dict[str, float]:
    """The score's terms and weights, with the default terms spelt out."""
    if p.score.terms is not None:
        return {t.of: t.weight for t in p.score.terms}
    terms = dict.fromkeys(p.scales, 1.0)
    if p.rules.priority:
        terms["priority"] = 1.0
    return terms


def _tie_key(t: Mapping[str, Any]) -> str:
    return "lottery" if t.get("lottery") is not None else f"by `{t['by']}`"


def _flat(t: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in t.items() if k != "lottery"}
    if t.get("lottery") is not None:
        out["seed"] = t["lottery"]["seed"]
    if out.get("by") is None:
        out.pop("order", None)
    return out


# -- what expressions read ----------------------------------------------------------------------


def expression_reads(policy: Policy) -> dict[str, frozenset[str]]:
    """Every name each part of ``policy`` reads, directly or through derived values.

    Parts are named as in :attr:`fairalloc.CompiledPolicy.reads` (``rule:<id>``,
    ``indicator:<path>``, ``tie_break:<i>``, ``reserve:<id>``, ``resource:<id>``,
    ``allocation:lottery-weight``, ``allocation:rotation-band``), plus ``derived:<name>``. The
    names are the parameters, derived values and attributes the expressions mention (levels
    of categories written bare, such as ``dibao``, are left out).
    """
    known = set(policy.parameters) | set(policy.derived) | set(policy.attributes)
    direct: dict[str, set[str]] = {}

    def note(part: str, *exprs: object) -> None:
        names = direct.setdefault(part, set())
        for e in exprs:
            if isinstance(e, str):
                names |= _names(e) & known

    for name, d in policy.derived.items():
        note(f"derived:{name}", d.expr, *(d.table.inputs.values() if d.table else ()))
    for r in policy.rules.eligibility:
        note(f"rule:{r.id}", r.when)
    for x in policy.rules.exclusions:
        note(f"rule:{x.id}", x.when)
    for pr in policy.rules.priority:
        note(f"rule:{pr.id}", pr.when, pr.points)
    for path, ind in _indicators(policy):
        note(
            f"indicator:{path}",
            ind.of,
            ind.points,
            *(ind.table.inputs.values() if ind.table else ()),
        )
    for i, tb in enumerate(policy.ranking.tie_break):
        note(f"tie_break:{i}", tb.by)
    spec = policy.allocation
    if spec is not None:
        for res in spec.reserves:
            note(f"reserve:{res.id}", res.eligible, res.priority)
        for rsc in spec.matching.resources if spec.matching else ():
            note(f"resource:{rsc.id}", rsc.eligible, rsc.priority)
        if spec.lottery is not None and spec.lottery.weight is not None:
            note("allocation:lottery-weight", spec.lottery.weight)
        if spec.rotation is not None and spec.rotation.bands is not None:
            note("allocation:rotation-band", spec.rotation.bands)

    closed: dict[str, frozenset[str]] = {}

    def close(part: str) -> frozenset[str]:
        # Without recursion, so that chains of derived values of any length close; a cycle
        # (only in a policy that failed to load) is cut where it closes.
        stack, open_ = [part], {part}
        while stack:
            top = stack[-1]
            inner = [f"derived:{d}" for d in direct.get(top, ()) if d in policy.derived]
            pending = [d for d in inner if d not in closed and d not in open_]
            if pending:
                stack.extend(pending)
                open_.update(pending)
                continue
            names = set(direct.get(top, ()))
            for d in inner:
                names |= closed.get(d, frozenset())
            closed[top] = frozenset(names)
            stack.pop()
            open_.discard(top)
        return closed[part]

    return {part: closed.get(part) or close(part) for part in direct}


def _indicators(policy: Policy) -> Iterator[tuple[str, Any]]:
    def walk(scales: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for name, s in scales.items():
            for iname, ind in s.indicators.items():
                yield f"{prefix}{name}.{iname}", ind
            yield from walk(s.scales, f"{prefix}{name}.")

    return walk(policy.scales, "")


def _names(text: str) -> set[str]:
    try:
        tree = parse(text)
    except ExprSyntaxError:
        return set()
    out: set[str] = set()
    stack: list[A.Node] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, A.Name):
            out.add(node.id)
        stack.extend(children(node))
    return out


def _named(label: str) -> Callable[[str], str]:
    """A label function that names every item ``label``."""
    return lambda _: label


def _readers(reads: Iterable[Mapping[str, frozenset[str]]], name: str) -> list[str]:
    """The parts (derived values left out) that read ``name`` in any of ``reads``."""
    parts: dict[str, None] = {}
    for r in reads:
        for part, names in r.items():
            if name in names and not part.startswith("derived:"):
                parts[part] = None
    return list(parts)


def part_label(part: str) -> str:
    """How reports name a part: ``rule:aged-60-plus`` is rule `aged-60-plus` (name in backticks)."""
    kind, _, name = part.partition(":")
    if kind == "tie_break":
        return f"tie-break {int(name) + 1}"
    if kind == "allocation":
        return name.replace("-", " ")
    return f"{kind.replace('_', '-')} `{name}`"


# -- values -------------------------------------------------------------------------------------


def _union(a: Iterable[str], b: Iterable[str]) -> list[str]:
    """Keys of ``a`` in order, then those only in ``b``."""
    return list(dict.fromkeys([*a, *b]))


def _same(a: Any, b: Any) -> bool:
    # JSON values: 1 == 1.0 is the same weight; True is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


#: Fields holding an expression (when the value is text), written in backticks.
_EXPR_FIELDS = frozenset(
    {"when", "points", "of", "expr", "by", "eligible", "priority", "weight", "bands"}
)


def _show_field(field: str | None, value: Any) -> str:
    if isinstance(value, str) and field in _EXPR_FIELDS:
        return f"`{value}`"
    return show(value)


def _summary(fields: Mapping[str, Any] | None) -> str:
    """The fields that say what an item does (documentation and defaults left out)."""
    if not fields:
        return ""
    parts = [
        f"{k}: {_show_field(k, v)}"
        for k, v in fields.items()
        if k not in _DOC_FIELDS and k != "id" and v is not None
    ]
    return "; ".join(parts)


def show(value: Any) -> str:
    """A value as reports write it: numbers without needless decimals, bands compactly."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:197] + "..."
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and ("points" in v or "grade" in v) for v in value):
            return "; ".join(_band(v) for v in value)
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items() if v is not None) + "}"
    return str(value)


def _band(b: Mapping[str, Any]) -> str:
    bounds = []
    for key, sign in (("min", "≥"), ("above", ">"), ("max", "≤"), ("below", "<")):
        if b.get(key) is not None:
            bounds.append(f"{sign}{show(b[key])}")
    what = show(b["points"]) if "points" in b else str(b["grade"])
    return f"{' and '.join(bounds) or 'otherwise'}: {what}"


# -- documents: text, Markdown and HTML from one structure --------------------------------------


Block = tuple[str, Any]
_CODE = re.compile(r"`([^`]+)`")


class Document:
    """Headings, paragraphs, bullet lists and tables, rendered as text, Markdown or HTML.

    Reports build one document and render it three ways, so the three always say the same.
    Text in backticks is code (a name or an expression); every value is escaped in HTML.
    """

    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def heading(self, level: int, text: str) -> None:
        """A heading of ``level`` (1 is the title)."""
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        """A paragraph."""
        self.blocks.append(("paragraph", text))

    def items(self, lines: Iterable[str]) -> None:
        """A bullet list (nothing when empty)."""
        rows = list(lines)
        if rows:
            self.blocks.append(("items", rows))

    def table(self, heads: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """A table with column headers (nothing when it has no rows)."""
        body = [[_cell_text(v) for v in r] for r in rows]
        if body:
            self.blocks.append(("table", (list(heads), body)))

    def extend(self, other: Document) -> None:
        """Append the blocks of ``other``."""
        self.blocks.extend(other.blocks)

    def markdown(self) -> str:
        """As Markdown."""
        out: list[str] = []
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                out.append("#" * level + " " + _md_inline(text))
            elif kind == "paragraph":
                out.append(_md_inline(value))
            elif kind == "items":
                out.append("\n".join(f"- {_md_inline(line)}" for line in value))
            else:
                heads, rows = value
                lines = ["| " + " | ".join(_md_cell(h) for h in heads) + " |"]
                lines.append("|" + "---|" * len(heads))
                lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
                out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    def text(self) -> str:
        """As plain text: underlined headings, aligned columns."""
        out: list[str] = []
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                plain = terminal_text(_plain(text))
                out.append(plain + "\n" + ("=" if level == 1 else "-") * len(plain))
            elif kind == "paragraph":
                out.append(terminal_text(_plain(value)))
            elif kind == "items":
                out.append("\n".join(f"  - {terminal_text(_plain(line))}" for line in value))
            else:
                heads, rows = value
                out.append(_text_table(heads, rows))
        return "\n\n".join(out) + "\n"

    def html(self, *, shift: int = 0) -> str:
        """As an HTML fragment (semantic headings, lists and tables; nothing in colour alone).

        Args:
            shift: Added to every heading level (at most ``h6``), to nest the fragment.
        """
        out: list[str] = []
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                h = min(level + shift, 6)
                out.append(f"<h{h}>{_inline(text)}</h{h}>")
            elif kind == "paragraph":
                out.append(f"<p>{_inline(value)}</p>")
            elif kind == "items":
                out.append("<ul>" + "".join(f"<li>{_inline(v)}</li>" for v in value) + "</ul>")
            else:
                heads, rows = value
                out.append(html_table(heads, [[_plain(c) for c in r] for r in rows]))
        return "\n".join(out) + "\n"


def _cell_text(v: object) -> str:
    if isinstance(v, str):
        return v
    return show(v)


def _md_cell(text: str) -> str:
    return _md_inline(text, cell=True)


def _md_inline(text: str, *, cell: bool = False) -> str:
    """A document text as Markdown: ``**`` and code spans kept, the rest escaped."""
    return markdown_inline(text, bold=True, cell=cell)


def _plain(text: str) -> str:
    return text.replace("**", "")


def _inline(text: str) -> str:
    escaped = html_text(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return _CODE.sub(r"<code>\1</code>", escaped)


_NUMERIC = re.compile(r"^[+\-−]?[\d.,]+%?$|^—$")


def _text_table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = [[terminal_text(_plain(c)) for c in r] for r in rows]
    right = [all(_NUMERIC.match(r[k]) for r in cells) for k in range(len(heads))]
    return "\n".join(text_table(heads, cells, right=right, rule=True))
