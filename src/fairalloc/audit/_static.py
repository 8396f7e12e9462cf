"""Static proof: which protected attributes a policy can use, read off the compiled policy.

Regulation §2.1.1: age, gender, occupation, economic status, physical condition and cultural
background must not decide an allocation, except where a rule states a justified use.

The compiler records, for every part of a policy (each rule, indicator, tie-break, reserve,
resource and allocation expression), every attribute it reads and the derived values it reads
it through (parameters are constants and read nothing). Each part is a function of exactly the
attributes it reads, so an attribute that no part reads cannot change any verdict, point, score,
rank or allocation: that is a proof of independence for every possible resident, not a sample.
For each protected attribute :func:`static_proof` reports one of:

* ``independent``: nothing reads it;
* ``justified``: only parts named by a ``justified_uses`` entry read it (each read is listed with
  the entry's reason and source);
* ``violation``: some part reads it without a justified use (each such read is listed with its
  read path).

Examples:
    >>> import fairalloc as fa
    >>> from fairalloc.audit._static import static_proof
    >>> policy = fa.parse_policy('''
    ... policy: {id: demo, version: "1", title: Demo}
    ... attributes:
    ...   id: {type: str, role: id}
    ...   need: {type: int, min: 0, max: 10}
    ...   gender: {type: category, levels: [f, m], protected: true}
    ... rules:
    ...   priority: [{id: need-points, points: "need"}]
    ... ''')
    >>> proof = static_proof(policy)
    >>> proof.ok, proof.attribute("gender").status
    (True, 'independent')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fairalloc._compiler import CompiledPolicy, ReadPath, _Builder, compile_policy
from fairalloc._escape import markdown_inline
from fairalloc.policy._model import GROUNDS, JustifiedUse, Policy

__all__ = ["AttributeProof", "ProtectedRead", "StaticProof", "part_label", "static_proof"]

Status = Literal["independent", "justified", "violation"]

_KIND_LABEL = {
    "rule": "rule",
    "indicator": "indicator",
    "tie_break": "tie-break",
    "reserve": "reserve",
    "resource": "resource",
    "allocation": "allocation",
}


def part_label(part: str) -> str:
    """A readable name of a part, e.g. ``rule `aged-60-plus``` for ``rule:aged-60-plus``.

    Examples:
        >>> part_label("rule:aged-60-plus")
        'rule `aged-60-plus`'
        >>> part_label("tie_break:0")
        'tie-break `0`'
    """
    kind, _, name = part.partition(":")
    return f"{_KIND_LABEL.get(kind, kind)} `{name}`"


@dataclass(frozen=True, slots=True)
class ProtectedRead:
    """One read of a protected attribute by one part of the policy.

    Attributes:
        part: The part, e.g. ``rule:aged-60-plus`` or ``indicator:need.economic.hardship``.
        path: How the part reads the attribute (directly, or through derived values).
        justified: Whether a ``justified_uses`` entry allows this part to read it.
        why: The justified use's reason (None when not justified).
        source: The justified use's regulation source (None when not justified).
        where: Where the part is defined in the policy file.
    """

    part: str
    path: ReadPath
    justified: bool
    why: str | None
    source: str | None
    where: str

    def __str__(self) -> str:
        return f"{part_label(self.part)} -> {self.path}"

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "part": self.part,
            "attribute": self.path.attribute,
            "via": list(self.path.via),
            "read_path": str(self),
            "justified": self.justified,
            "why": self.why,
            "source": self.source,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class AttributeProof:
    """What the static proof found for one protected attribute.

    Attributes:
        attribute: The attribute's name.
        ground: The protected ground it records (``age``, ``economic status``...), if declared.
        status: ``independent``, ``justified`` or ``violation``.
        reads: Every read of it, in the order of the policy's parts.
    """

    attribute: str
    ground: str | None
    status: Status
    reads: tuple[ProtectedRead, ...]

    @property
    def violations(self) -> tuple[ProtectedRead, ...]:
        """The reads without a justified use."""
        return tuple(r for r in self.reads if not r.justified)

    @property
    def justified_parts(self) -> tuple[str, ...]:
        """The parts allowed to read it by a justified use, that do read it."""
        return tuple(dict.fromkeys(r.part for r in self.reads if r.justified))

    @property
    def message(self) -> str:
        """The finding in one sentence."""
        if self.status == "independent":
            return "proven independent: nothing reads it"
        if self.status == "justified":
            parts = ", ".join(part_label(p) for p in self.justified_parts)
            return f"read only where a justified use allows it: {parts}"
        shown = "; ".join(str(r) for r in self.violations)
        return f"read without a justified use: {shown}"

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "attribute": self.attribute,
            "ground": self.ground,
            "status": self.status,
            "message": self.message,
            "reads": [r.to_dict() for r in self.reads],
        }


@dataclass(frozen=True, slots=True)
class GroundLine:
    """What the policy states of one ground the regulation names (§2.1.1).

    Attributes:
        ground: The ground (``age``, ``gender``, ``occupation``, ``economic status``,
            ``physical condition``, ``cultural background``).
        attributes: The protected attributes that carry it.
        not_collected: Why it is not collected, when the policy says so.
    """

    ground: str
    attributes: tuple[str, ...]
    not_collected: str | None

    @property
    def stated(self) -> bool:
        """Whether the policy says which attributes carry it, or that it is not collected."""
        return bool(self.attributes) or self.not_collected is not None

    def to_dict(self) -> dict[str, Any]:
        """As plain values."""
        return {
            "ground": self.ground,
            "attributes": list(self.attributes),
            "not_collected": self.not_collected,
            "stated": self.stated,
        }


@dataclass(frozen=True)
class StaticProof:
    """The static proof of a policy: every part's reads, and each protected attribute's status.

    Attributes:
        policy_id: The policy's id.
        policy_version: The policy's version.
        attributes: One record per protected attribute, in the order of the attribute schema.
        parts: For every part of the policy, the attributes it reads, each with its read path
            through derived values (empty when a part reads nothing, e.g. a constant rule).
        grounds: For each ground the regulation names, the attributes that carry it or why it
            is not collected (a ground the policy says nothing of is ``FA313``, a warning).
    """

    policy_id: str
    policy_version: str
    attributes: list[AttributeProof]
    parts: dict[str, tuple[ReadPath, ...]]
    grounds: list[GroundLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no protected attribute is read without a justified use."""
        return all(a.status != "violation" for a in self.attributes)

    @property
    def violations(self) -> list[ProtectedRead]:
        """Every read of a protected attribute without a justified use."""
        return [r for a in self.attributes for r in a.violations]

    @property
    def independent(self) -> list[str]:
        """The protected attributes that nothing reads."""
        return [a.attribute for a in self.attributes if a.status == "independent"]

    def attribute(self, name: str) -> AttributeProof:
        """The record of protected attribute ``name``.

        Raises:
            KeyError: if ``name`` is not a protected attribute of the policy.
        """
        for a in self.attributes:
            if a.attribute == name:
                return a
        known = ", ".join(a.attribute for a in self.attributes) or "none"
        raise KeyError(f"`{name}` is not a protected attribute (protected: {known})")

    def attributes_read_by(self, part: str) -> list[str]:
        """The attributes ``part`` reads (each once, in the order recorded).

        Raises:
            KeyError: if the policy has no such part.
        """
        return list(dict.fromkeys(r.attribute for r in self.parts[part]))

    def to_dict(self) -> dict[str, Any]:
        """As plain values (the JSON layout of the audit report's section)."""
        return {
            "policy": {"id": self.policy_id, "version": self.policy_version},
            "ok": self.ok,
            "attributes": [a.to_dict() for a in self.attributes],
            "grounds": [g.to_dict() for g in self.grounds],
            "parts": {
                part: [
                    {"attribute": r.attribute, "via": list(r.via), "read_path": str(r)}
                    for r in paths
                ]
                for part, paths in self.parts.items()
            },
        }

    def to_markdown(self) -> str:
        """A readable section: one row per protected attribute, with who reads it and why."""
        lines = [
            "## Static proof: protected attributes",
            "",
            f"Policy `{self.policy_id}` version {_cell(self.policy_version)}. Exact for every"
            " possible resident: read off what each part of the policy reads (through derived"
            " values); no residents are sampled. An attribute that nothing reads cannot"
            " change any eligibility, score, rank or allocation.",
            "",
            "| attribute | status | read by | justification / source |",
            "|---|---|---|---|",
        ]
        for a in self.attributes:
            name = f"`{a.attribute}`" + (f" ({_cell(a.ground)})" if a.ground else "")
            if not a.reads:
                lines.append(f"| {name} | independent | — | {_cell(a.message)} |")
                continue
            read_by = "; ".join(_cell(str(r)) for r in a.reads)
            just = "; ".join(
                f"{part_label(r.part)}: {_cell(r.why or '')} ({_cell(r.source or '')})"
                if r.justified
                else f"**no justified use** for {part_label(r.part)} ({_cell(r.where)})"
                for r in a.reads
            )
            status = "**violation**" if a.status == "violation" else a.status
            lines.append(f"| {name} | {status} | {read_by} | {just} |")
        lines.append("")
        if not self.attributes:
            lines.append("The policy declares no protected attribute.")
        elif self.ok:
            lines.append("**Result:** no protected attribute is read without a justified use.")
        else:
            lines.append(
                f"**Result:** {len(self.violations)} read(s) of protected attributes without a"
                " justified use:"
            )
            lines.append("")
            lines.extend(f"- {_cell(str(r))} at {_cell(r.where)}" for r in self.violations)
        if self.grounds:
            lines += [
                "",
                "### Grounds of §2.1.1",
                "",
                "| ground | carried by | |",
                "|---|---|---|",
            ]
            for g in self.grounds:
                if g.attributes:
                    shown = ", ".join(f"`{a}`" for a in g.attributes)
                    lines.append(f"| {g.ground} | {shown} | protected |")
                elif g.not_collected is not None:
                    lines.append(f"| {g.ground} | — | not collected: {_cell(g.not_collected)} |")
                else:
                    lines.append(f"| {g.ground} | — | **not stated** (FA313) |")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        counts = {s: sum(a.status == s for a in self.attributes) for s in _STATUSES}
        shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        verdict = "ok" if self.ok else "violations"
        return f"<StaticProof of {self.policy_id} v{self.policy_version}: {verdict} ({shown})>"


_STATUSES: tuple[Status, ...] = ("independent", "justified", "violation")


def static_proof(policy: Policy | CompiledPolicy) -> StaticProof:
    """Prove which protected attributes can decide an allocation, exactly and without data.

    Args:
        policy: A policy, or a compiled policy. A policy is compiled for audit
            (``fa.compile_policy(policy, audit=True)``), so that a policy reading protected
            attributes without justified uses can still be measured.

    Returns:
        The :class:`StaticProof`: each part's reads, and each protected attribute's status.

    Raises:
        PolicyError: if the policy has problems other than unjustified reads.

    Examples:
        >>> import fairalloc as fa
        >>> policy = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes:
        ...   id: {type: str, role: id}
        ...   job: {type: category, levels: [a, b], protected: true}
        ... derived:
        ...   is_b: "job == b"
        ... rules:
        ...   priority: [{id: b-bonus, when: is_b, points: 5}]
        ... ''', audit=True)
        >>> proof = static_proof(policy)
        >>> proof.ok
        False
        >>> str(proof.violations[0])
        'rule `b-bonus` -> derived `is_b` -> `job`'
    """
    cp = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy, audit=True)
    p = cp.policy
    allowed = _justified(cp)
    builder = _Builder(p, cp.as_of, audit=True)
    builder.reads = cp.reads
    records = []
    for name in p.protected_attributes:
        reads = []
        for part, paths in cp.reads.items():
            for path in paths:
                if path.attribute != name:
                    continue
                use = allowed.get((part, name))
                kind, _, ident = part.partition(":")
                reads.append(
                    ProtectedRead(
                        part=part,
                        path=path,
                        justified=use is not None,
                        why=use.why if use is not None else None,
                        source=_source(use.source) if use is not None else None,
                        where=cp.span(builder._doc_path(kind, ident)),
                    )
                )
        status: Status = (
            "independent"
            if not reads
            else ("justified" if all(r.justified for r in reads) else "violation")
        )
        records.append(AttributeProof(name, p.attributes[name].ground, status, tuple(reads)))
    return StaticProof(
        policy_id=p.policy.id,
        policy_version=p.policy.version,
        attributes=records,
        parts={part: tuple(paths) for part, paths in cp.reads.items()},
        grounds=grounds_map(p),
    )


def grounds_map(p: Policy) -> list[GroundLine]:
    """For each ground §2.1.1 names, the protected attributes that carry it, or why not."""
    return [
        GroundLine(
            ground=g,
            attributes=tuple(
                n for n, a in p.attributes.items() if a.ground == g and a.protected
            ),
            not_collected=p.grounds_not_collected.get(g),
        )
        for g in GROUNDS
    ]


def _justified(cp: CompiledPolicy) -> dict[tuple[str, str], JustifiedUse]:
    """(part, attribute) -> the justified use allowing it, as the compiler resolves targets."""
    builder = _Builder(cp.policy, cp.as_of, audit=True)
    builder.reads = cp.reads
    allowed: dict[tuple[str, str], JustifiedUse] = {}
    for use in cp.policy.justified_uses:
        kind, name = use.target
        for part in builder._parts_of(kind, name) or ():
            allowed.setdefault((part, use.attribute), use)
    return allowed


def _source(source: str | list[str]) -> str:
    return source if isinstance(source, str) else ", ".join(source)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: on one line, code spans kept, the rest escaped."""
    return markdown_inline(" ".join(text.split()), cell=True)
