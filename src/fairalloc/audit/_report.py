"""The audit report: one document a third party can read and re-run (§4.2).

It gathers the static proof, the counterfactual flip audit, proxy detection, group statistics
with intervals and the scale audit, with what is needed to reproduce them: the policy's id,
version and content hash, the residents' data hash, the lottery seed and the capacity.
Renderers: Markdown, accessible HTML (semantic headings and tables, no meaning in colour) and
JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fairalloc._escape import html_text, markdown_text
from fairalloc._evaluation import Evaluation
from fairalloc._html import page

__all__ = ["AuditReport", "data_hash", "markdown_to_html", "policy_hash"]

#: Version of the report's JSON layout.
REPORT_SCHEMA = "fairalloc.audit/1"


class _Section(Protocol):
    def to_dict(self) -> dict[str, Any]: ...

    def to_markdown(self) -> str: ...


def policy_hash(evaluation: Evaluation) -> str:
    """SHA-256 of the policy document's canonical JSON (what it says, not how it is spelt)."""
    doc = evaluation.policy.policy.model_dump(mode="json", by_alias=True)
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_hash(evaluation: Evaluation) -> str:
    """SHA-256 of the residents' encoded columns in id order (independent of row order)."""
    pop = evaluation.population
    if pop is None:
        return ""
    ids = pop.ids.astype(str)
    order = pop.id_column.sort_order()  # code-point order, as numpy sorts ``str``
    # Rows already in id order (as the audit holds them) are hashed as they are.
    take = None if np.array_equal(order, np.arange(len(order))) else order
    h = hashlib.sha256()
    # The ids as one block of fixed-width UTF-32 (its width is the longest id's, and ids hold
    # no control characters, so the padding is no part of an id): no string per resident.
    ordered = np.ascontiguousarray(ids if take is None else ids[take])
    h.update(ordered.dtype.str.encode("ascii"))
    h.update(ordered.data)
    for name in sorted(pop.columns):
        h.update(name.encode("utf-8"))
        column = pop.columns[name] if take is None else pop.columns[name][take]
        h.update(np.ascontiguousarray(column).data)
    return h.hexdigest()


@dataclass
class AuditReport:
    """Every layer of a fairness audit of one policy on one population.

    Attributes:
        evaluation: The evaluation audited.
        sections: Titled parts, in order (static proof, flip audit, proxies, groups, scales).
        meta: Policy id, version and hash, data hash, residents, capacity, lottery seed.
        violations: Unjustified reads of protected attributes (the policy was loaded for
            audit only if any).
    """

    evaluation: Evaluation
    sections: list[tuple[str, _Section]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    publication: bool = False

    @property
    def ok(self) -> bool:
        """Whether no layer found a problem (no violation, flip, flagged proxy or disparity)."""
        for _, section in self.sections:
            if getattr(section, "ok", True) is False:
                return False
        return not self.violations

    def for_review(self) -> dict[str, int]:
        """Findings for review each section's tables mark (not verdicts), by section title."""
        out: dict[str, int] = {}
        for title, section in self.sections:
            findings = getattr(section, "findings", None)
            if callable(findings):
                out[title] = int(findings())
        return out

    def headline(self) -> list[str]:
        """The summary sentences: the verdict, then the findings for review, as counted."""
        failed = [t for t, s in self.sections if getattr(s, "ok", True) is False]
        if self.violations:
            failed.insert(0, "violations")
        lines = [
            "**Overall: no unjustified use of a protected attribute found** (static proof,"
            " flip audit, proxies, proxy outcomes)."
            if not failed
            else f"**Overall: problems found** ({', '.join(failed)})."
        ]
        review = self.for_review()
        if review:
            parts = []
            groups = review.get("group statistics")
            if groups is not None:
                parts.append(
                    f"{groups} group(s) below four-fifths with an interval that excludes parity"
                    " (group statistics)"
                )
            moved = review.get("proxy outcomes")
            if moved:
                parts.append(
                    f"{moved} declared need measure(s) that move outcomes between protected"
                    " groups (proxy outcomes)"
                )
            scales = review.get("scale audit")
            if scales is not None:
                parts.append(f"{scales} indicator difference(s) flagged (scale audit)")
            lines.append("For review, not verdicts: " + "; ".join(parts) + ".")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (the JSON layout)."""
        return {
            "schema": REPORT_SCHEMA,
            "meta": self.meta,
            "ok": self.ok,
            "publication": self.publication,
            "for_review": self.for_review(),
            "violations": self.violations,
            "sections": {title: section.to_dict() for title, section in self.sections},
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, default=_plain)

    def to_markdown(self) -> str:
        """The report as Markdown, for a third party to read."""
        m = self.meta
        lines = [
            f"# Fairness audit: {markdown_text(m.get('policy_title', m.get('policy_id')))}",
            "",
            f"Policy `{m.get('policy_id')}` version {m.get('policy_version')}"
            f" (content SHA-256 `{m.get('policy_hash', '')[:16]}…`), {m.get('residents')}"
            f" residents (data SHA-256 `{m.get('data_hash', '')[:16]}…`).",
            "",
            f"Capacity: {m.get('capacity') if m.get('capacity') is not None else 'none'};"
            f" lottery seed: {m.get('lottery_seed') or 'none'}. Re-run with"
            " `fairalloc audit POLICY DATA` on the same files.",
            "",
            *self.headline(),
            "",
        ]
        if self.violations:
            lines += ["## Violations", "", *[f"- {v}" for v in self.violations], ""]
        for _, section in self.sections:
            lines += [section.to_markdown().rstrip(), ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self, *, large_print: bool = False) -> str:
        """The report as a standalone, accessible HTML page.

        Args:
            large_print: A base text size of 150% (§2.1.3).
        """
        body = markdown_to_html(self.to_markdown())
        title = f"Fairness audit: {self.meta.get('policy_id', 'policy')}"
        return page(body, title=title, lang="en", large_print=large_print)

    def _repr_html_(self) -> str:
        return markdown_to_html(self.to_markdown())

    def __repr__(self) -> str:
        state = "ok" if self.ok else "problems found"
        return f"<AuditReport of {self.meta.get('policy_id')}: {state}>"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}")


def markdown_to_html(text: str) -> str:
    """Render the report's own Markdown (headings, paragraphs, lists, pipe tables) as HTML.

    Only the constructs the report writes are supported; all text is escaped. Backslash
    escapes and the entities ``&lt;``, ``&gt;``, ``&amp;`` (as :mod:`fairalloc._escape` writes
    texts from policies and data) stand for their characters and never for markup.
    """
    held: list[str] = []

    def hold(char: str) -> str:
        held.append(char)
        return f"\ue000{len(held) - 1}\ue001"

    text = text.replace("\ue000", "").replace("\ue001", "")
    text = _ESCAPED.sub(lambda m: hold(m.group(1)), text)
    text = _ENTITY.sub(lambda m: hold(_ENTITIES[m.group(1)]), text)
    body = _blocks(text)
    return _HELD.sub(lambda m: html_text(held[int(m.group(1))]), body)


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}
_ENTITY = re.compile(r"&(lt|gt|amp);")
_HELD = re.compile("\ue000([0-9]+)\ue001")


def _blocks(text: str) -> str:
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out.append(_table(rows))
        elif line.lstrip().startswith(("- ", "* ")):
            items = []
            while i < len(lines) and lines[i].lstrip().startswith(("- ", "* ")):
                items.append(f"<li>{_inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|")):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out) + "\n"


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    head = _cells(rows[0])
    body = [r for r in rows[1:] if not _TABLE_RULE.match(r.strip())]
    ths = "".join(f'<th scope="col">{_inline(c)}</th>' for c in head)
    trs = "".join(
        "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(r)) + "</tr>" for r in body
    )
    label = html_text(head[0] if head else "table")
    return (
        f'<div class="table" role="region" tabindex="0" aria-label="{label}">'
        f"<table><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table></div>"
    )


def _inline(text: str) -> str:
    escaped = html_text(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
