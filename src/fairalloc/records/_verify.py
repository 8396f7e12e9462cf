"""Checking a decision log: the chain, heads, proofs, seeds after freezes, and re-runs.

:func:`verify_log` works from a live log or from its JSON Lines export alone; given the policy
files, the data and the private openings it also re-runs every decision and compares the
outcome commitment leaf by leaf. :func:`verify_receipt` checks one resident's receipt against
a published head with no data at all.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fairalloc._population import Population
from fairalloc.errors import FairallocError, RecordsError
from fairalloc.policy._model import Policy
from fairalloc.records._commit import (
    id_order,
    policy_hash,
    recommit,
)
from fairalloc.records._log import (
    DecisionLog,
    Record,
    TreeHead,
    _lazy_outcomes,
    _lazy_rows,
    row_differences,
    with_seed,
)
from fairalloc.records._merkle import (
    Tree,
    leaf_hash,
    root_from_inclusion,
    verify_consistency,
)
from fairalloc.records._store import GENESIS, Opening, StoredRecord

__all__ = [
    "Problem",
    "ReceiptCheck",
    "Rerun",
    "VerifyReport",
    "load_openings",
    "rerun_allocation",
    "verify_log",
    "verify_receipt",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that does not hold.

    Attributes:
        code: A stable code (``FA720``–``FA739``, see ``docs/errors.md``).
        record: The record concerned (``None`` for the log as a whole).
        what: What differs.
    """

    code: str
    record: int | None
    what: str

    def __str__(self) -> str:
        where = f"record {self.record}" if self.record is not None else "log"
        return f"{self.code} {where}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_log` found.

    Attributes:
        size: Records read.
        head: The head recomputed from them.
        problems: Everything that does not hold (empty when the log verifies).
        rerun: Decisions re-run to an identical outcome commitment.
        not_rerun: Decisions not re-run, each with the reason.
    """

    size: int = 0
    head: TreeHead | None = None
    problems: list[Problem] = field(default_factory=list)
    rerun: list[int] = field(default_factory=list)
    not_rerun: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed (records not re-run are reported, not failures)."""
        return not self.problems

    def add(self, code: str, record: int | None, what: str) -> None:
        """Record a problem."""
        self.problems.append(Problem(code, record, what))

    def to_text(self) -> str:
        """A readable summary, one line per finding."""
        lines = [
            f"{self.size} records; head {self.head.root if self.head else '-'}",
            f"decisions re-run to identical outcomes: {len(self.rerun)}"
            + (f" ({', '.join(map(str, self.rerun))})" if self.rerun else ""),
        ]
        lines += [f"not re-run: record {s}: {why}" for s, why in self.not_rerun]
        lines += [str(p) for p in self.problems]
        lines.append("OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)")
        return "\n".join(lines)


@dataclass(slots=True)
class _Entry:
    stored: StoredRecord
    leaves: bytes | None
    record: Record | None = None


def _read_export(path: Path, report: VerifyReport) -> tuple[list[_Entry], TreeHead | None]:
    entries: list[_Entry] = []
    stated: TreeHead | None = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            where = len(entries) if lineno > 1 else None
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                report.add("FA720", where, f"line {lineno} of {path} is not JSON ({exc.msg})")
                continue
            if lineno == 1:
                try:
                    stated = TreeHead.from_dict(doc)
                except RecordsError:
                    report.add("FA720", None, f"line 1 of {path} is not the log's head")
                continue
            try:
                raw = str(doc["record"]).encode("utf-8")
                blob = base64.b64decode(doc["leaves"], validate=True) if doc["leaves"] else None
                entries.append(
                    _Entry(StoredRecord(int(doc["seq"]), "", str(doc["hash"]), raw), blob)
                )
            except (KeyError, TypeError, ValueError) as exc:
                report.add("FA720", where, f"line {lineno} of {path} is not a record ({exc})")
    return entries, stated


def load_openings(path: str | Path) -> dict[int, Opening]:
    """Read the private openings written by :meth:`DecisionLog.export_openings`."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            out[int(doc["seq"])] = Opening(list(doc["ids"]), bytes.fromhex(doc["nonces"]))
    return out


def verify_log(
    source: DecisionLog | str | Path,
    *,
    policies: Iterable[Policy | str | Path] = (),
    data: Mapping[int, Any] | Any = None,
    openings: Mapping[int, Opening] | str | Path | None = None,
    heads: Iterable[TreeHead | Mapping[str, Any]] = (),
    rerun: Mapping[str, Rerun] | None = None,
) -> VerifyReport:
    """Check a decision log; with policies, data and openings, re-run every decision.

    Args:
        source: A :class:`DecisionLog`, or the path of its JSON Lines export.
        policies: The policy files (or documents) the decisions used.
        data: The residents' data: one source for every freeze, or a mapping from a freeze's
            sequence number to its data (the key ``None``, if present, serves the freezes not
            named).
        openings: The private openings (a mapping, or the file
            :meth:`DecisionLog.export_openings` wrote); a live log's own by default.
        heads: Heads published earlier: each must be a prefix of this log.
        rerun: How to re-run decisions of other kinds than ``allocation`` (e.g.
            ``rotation_round``), by kind: called with the decision record, the policy with
            the recorded seed and the residents, it returns each resident's canonical outcome
            in the order of their ids (:func:`~fairalloc.records.id_order`), or None when it
            lacks an input it needs (a round's starting state): the decision is then listed as
            not re-run.

    Returns:
        The :class:`VerifyReport`; :attr:`VerifyReport.ok` is false on any mismatch, and
        each problem names the record and what differs.
    """
    report = VerifyReport()
    if isinstance(source, DecisionLog):
        entries = [_Entry(s, source.store.leaves(s.seq)) for s in source.store.records()]
        stated = None
        if openings is None:
            openings = dict(source.store.openings())
    else:
        entries, stated = _read_export(Path(source), report)
    if isinstance(openings, str | Path):
        openings = load_openings(openings)
    hashes = _check_chain(entries, report)
    report.size = len(entries)
    report.head = TreeHead(len(hashes), Tree(hashes).root.hex())
    if stated is not None and stated != report.head:
        report.add(
            "FA722",
            None,
            f"the stated head (size {stated.size}, root {stated.root[:16]}…) is not the head of"
            f" the records (size {report.head.size}, root {report.head.root[:16]}…)",
        )
    for h in heads:
        _check_published(TreeHead.from_dict(h) if isinstance(h, Mapping) else h, hashes, report)
    records = {e.record.seq: e for e in entries if e.record is not None}
    _check_links(records, report)
    runners: dict[str, Rerun] = {"allocation": rerun_allocation, **(rerun or {})}
    _rerun(records, list(policies), data, openings or {}, runners, report)
    return report


#: Re-runs one kind of decision: (decision record, seeded policy, residents) -> outcomes, or
#: None when an input it needs was not given.
Rerun = Callable[[Record, Policy, Population], Sequence[bytes] | None]


def rerun_allocation(
    record: Record, policy: Policy, population: Population
) -> Sequence[bytes]:
    """Re-run a recorded ``allocation``: the same ``allocate`` with its date and capacity."""
    from fairalloc._compiler import compiled_for
    from fairalloc.allocation import allocate

    allocation = allocate(
        compiled_for(policy, dt.date.fromisoformat(record.body["as_of"])),
        population,
        capacity=int(record.body["capacity"]),
    )
    return _lazy_outcomes(allocation, id_order(population.id_column))


def _check_chain(entries: list[_Entry], report: VerifyReport) -> list[bytes]:
    hashes: list[bytes] = []
    prev = GENESIS
    for pos, e in enumerate(entries):
        own = leaf_hash(e.stored.body).hex()
        if own != e.stored.hash:
            report.add(
                "FA721",
                pos,
                f"its bytes hash to {own[:16]}…, not to the hash stated {e.stored.hash[:16]}…"
                " (the record was altered)",
            )
        try:
            doc = json.loads(e.stored.body)
            rec = Record(
                int(doc["seq"]),
                str(doc["kind"]),
                own,
                str(doc["prev"]),
                str(doc["time"]),
                str(doc["operator"]),
                dict(doc["body"]),
                e.stored.body,
            )
        except (ValueError, KeyError, TypeError) as exc:
            report.add("FA721", pos, f"is not a record ({exc})")
            hashes.append(bytes.fromhex(own))
            prev = own
            continue
        if rec.seq != pos:
            report.add("FA721", pos, f"says it is record {rec.seq}, but stands at position {pos}")
        if rec.prev != prev:
            report.add(
                "FA721", pos, f"names {rec.prev[:16]}… as the record before, not {prev[:16]}…"
            )
        e.record = rec
        hashes.append(bytes.fromhex(own))
        prev = own
    return hashes


def _check_published(head: TreeHead, hashes: list[bytes], report: VerifyReport) -> None:
    if head.size > len(hashes):
        report.add(
            "FA722", None, f"a published head covers {head.size} records; the log has {len(hashes)}"
        )
    elif Tree(hashes[: head.size]).root.hex() != head.root:
        report.add(
            "FA722",
            None,
            f"the published head of {head.size} records ({head.root[:16]}…) is not a prefix of"
            " this log: records were changed after it was published",
        )


def _leaf_list(blob: bytes | None) -> list[bytes]:
    # Each 32-byte item of a void array converts to its bytes, NUL bytes included.
    return np.frombuffer(blob or b"", dtype="V32").tolist()  # type: ignore[no-any-return]


def _check_links(records: dict[int, _Entry], report: VerifyReport) -> None:
    by_hash = {e.record.hash: e.record for e in records.values() if e.record is not None}
    used_seeds: dict[str, int] = {}
    drawn: dict[str, int] = {}  # freeze hash -> its seed record
    latest: dict[str, Record] = {}  # policy record hash -> its latest freeze so far

    def ref(rec: Record, key: str, kind: str) -> Record | None:
        target = by_hash.get(str(rec.body.get(key)))
        if target is None or target.kind != kind or target.seq >= rec.seq:
            report.add(
                "FA723",
                rec.seq,
                f"its {key} {str(rec.body.get(key))[:16]}… is no earlier {kind} record",
            )
            return None
        return target

    for e in records.values():
        rec = e.record
        assert rec is not None
        leaves = _leaf_list(e.leaves)
        if rec.kind == "freeze":
            ref(rec, "policy", "policy")
            _check_root(rec, leaves, "root", report)
            latest[str(rec.body.get("policy"))] = rec
        elif rec.kind == "seed":
            frz = ref(rec, "freeze", "freeze")
            if frz is not None:
                _check_one_draw(rec, frz, drawn, latest, report)
            if frz is not None and rec.body.get("method") == "derived":
                from fairalloc.records._log import derive_seed

                want = derive_seed(frz.body["root"], str(rec.body.get("public_randomness")))
                if want != rec.body.get("seed"):
                    report.add(
                        "FA724",
                        rec.seq,
                        "its seed is not derived from the freeze and the public value",
                    )
        elif rec.kind == "decision":
            _check_decision(rec, leaves, ref, used_seeds, report)


def _check_one_draw(
    rec: Record, frz: Record, drawn: dict[str, int], latest: dict[str, Record], report: VerifyReport
) -> None:
    if frz.hash in drawn:
        report.add(
            "FA731",
            rec.seq,
            f"a second seed for freeze {frz.seq} (the first is record {drawn[frz.hash]}):"
            " whoever draws twice can choose",
        )
    drawn.setdefault(frz.hash, rec.seq)
    newest = latest.get(str(frz.body.get("policy")))
    if newest is not None and newest.seq != frz.seq:
        report.add(
            "FA732",
            rec.seq,
            f"drawn for freeze {frz.seq} although freeze {newest.seq} of the same policy came"
            " later: whoever freezes twice can choose",
        )


def _check_root(rec: Record, leaves: list[bytes], key: str, report: VerifyReport) -> None:
    root = Tree(leaves).root.hex()
    if root != rec.body.get(key) or len(leaves) != rec.body.get("count"):
        report.add(
            "FA725",
            rec.seq,
            f"its {len(leaves)} leaves hash to {root[:16]}…, not to its {key}"
            f" {str(rec.body.get(key))[:16]}… over {rec.body.get('count')}",
        )


def _check_decision(
    rec: Record, leaves: list[bytes], ref: Any, used: dict[str, int], report: VerifyReport
) -> None:
    _check_root(rec, leaves, "outcome_root", report)
    pol = ref(rec, "policy", "policy")
    frz = ref(rec, "freeze", "freeze")
    if pol is not None and pol.body["policy_hash"] != rec.body.get("policy_hash"):
        report.add("FA723", rec.seq, "its policy hash is not the registered policy's")
    if frz is not None and frz.body["root"] != rec.body.get("list_root"):
        report.add("FA723", rec.seq, "its list commitment is not the freeze's")
    if rec.body.get("seed") is None:
        return
    seed = ref(rec, "seed", "seed")
    if seed is None or frz is None:
        return
    if seed.seq <= frz.seq or seed.body.get("freeze") != frz.hash:
        report.add(
            "FA726",
            rec.seq,
            f"its seed (record {seed.seq}) was not drawn after its freeze (record {frz.seq})"
            " for it",
        )
    if seed.body.get("seed") != rec.body.get("seed_value"):
        report.add("FA723", rec.seq, "its seed value is not the seed record's")
    if seed.hash in used:
        report.add("FA727", rec.seq, f"its seed was already used by decision {used[seed.hash]}")
    used[seed.hash] = rec.seq


def _load_policies(
    policies: list[Policy | str | Path], report: VerifyReport
) -> dict[str, tuple[Policy, str]]:
    from fairalloc.policy import load_policy

    out = {}
    for p in policies:
        name = str(p) if not isinstance(p, Policy) else f"{p.policy.id} {p.policy.version}"
        try:
            doc = p if isinstance(p, Policy) else load_policy(p)
        except FairallocError as exc:
            report.add(
                "FA728", None, f"policy file {name} does not load: {str(exc).splitlines()[0]}"
            )
            continue
        out[policy_hash(doc)] = (doc, name)
    return out


def _rerun(
    records: dict[int, _Entry],
    policies: list[Policy | str | Path],
    data: Any,
    openings: Mapping[int, Opening],
    runners: Mapping[str, Rerun],
    report: VerifyReport,
) -> None:
    known = _load_policies(policies, report)
    recs = [e.record for e in records.values() if e.record is not None]
    for digest, (doc, name) in known.items():
        if not any(r.kind == "policy" and r.body.get("policy_hash") == digest for r in recs):
            same = [
                r
                for r in recs
                if r.kind == "policy"
                and (r.body.get("id"), r.body.get("version")) == (doc.policy.id, doc.policy.version)
            ]
            what = (
                f"policy file {name} is not the policy registered as {doc.policy.id}"
                f" {doc.policy.version}: its hash is {digest[:16]}…, the record's"
                f" {str(same[0].body.get('policy_hash'))[:16]}…"
                if same
                else f"policy file {name} (hash {digest[:16]}…) was never registered"
            )
            report.add("FA728", same[0].seq if same else None, what)
    erased = _erased(recs)
    for rec in recs:
        if rec.kind != "decision":
            continue
        why = _why_not(rec, known, data, openings, erased, records, runners)
        if why:
            report.not_rerun.append((rec.seq, why))
            continue
        _rerun_one(rec, known, data, openings, records, runners, report)


def _erased(recs: list[Record]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in recs:
        if r.kind == "erasure":
            for hit in r.body.get("leaves", []):
                out.setdefault(int(hit["record"]), []).append(r.seq)
    return out


def _data_for(data: Any, freeze: int) -> Any:
    if isinstance(data, Mapping) and all(isinstance(k, int) or k is None for k in data):
        return data.get(freeze, data.get(None))
    return data


def _why_not(
    rec: Record,
    known: dict[str, tuple[Policy, str]],
    data: Any,
    openings: Mapping[int, Opening],
    erased: dict[int, list[int]],
    records: dict[int, _Entry],
    runners: Mapping[str, Rerun],
) -> str:
    frz = int(rec.body.get("freeze_record", -1))
    if rec.body.get("kind") not in runners:
        return f"no re-run given for a {rec.body.get('kind')} decision (rerun=)"
    for seq in (frz, rec.seq):
        if seq in erased:
            by = ", ".join(str(s) for s in sorted(set(erased[seq])))
            return f"openings of record {seq} were destroyed by erasure record {by}"
    if rec.body.get("policy_hash") not in known:
        return "the policy it used was not given"
    if _data_for(data, frz) is None:
        return f"no data given for freeze {frz}"
    if frz not in openings or rec.seq not in openings:
        return "the private openings were not given"
    if frz not in records:
        return f"freeze {frz} is missing"
    return ""


def _rerun_one(
    rec: Record,
    known: dict[str, tuple[Policy, str]],
    data: Any,
    openings: Mapping[int, Opening],
    records: dict[int, _Entry],
    runners: Mapping[str, Rerun],
    report: VerifyReport,
) -> None:
    frz = int(rec.body["freeze_record"])
    policy, _ = known[rec.body["policy_hash"]]
    try:
        population = Population.of(_data_for(data, frz), policy)
    except FairallocError as exc:
        report.add("FA729", frz, f"the data do not load: {str(exc).splitlines()[0]}")
        return
    order = id_order(population.id_column)
    ids = population.id_column[order].astype(str).tolist()
    rows = _lazy_rows(population, order)
    diffs = row_differences(ids, rows, openings[frz], records[frz].leaves or b"")
    if diffs:
        for d in diffs:
            report.add("FA729", frz, d)
        report.not_rerun.append((rec.seq, f"the data differ from freeze {frz}"))
        return
    seed = rec.body.get("seed_value")
    run = with_seed(policy, seed) if seed is not None else policy
    outcomes = runners[str(rec.body["kind"])](rec, run, population)
    if outcomes is None:
        why = f"the inputs to re-run a {rec.body['kind']} are not given"
        report.not_rerun.append((rec.seq, why))
        return
    mine = openings[rec.seq]
    if mine.ids != ids:
        report.add("FA730", rec.seq, "its openings list other residents than the data")
        return
    got = recommit(outcomes, mine.nonces)
    if b"".join(got) == records[rec.seq].leaves:  # and the leaves were checked against the root
        report.rerun.append(rec.seq)
        return
    want = _leaf_list(records[rec.seq].leaves)
    bad = [ids[k] for k in range(len(ids)) if k >= len(want) or got[k] != want[k]]
    if bad or Tree(got).root.hex() != rec.body.get("outcome_root"):
        report.add(
            "FA730",
            rec.seq,
            f"re-run gives another outcome for {len(bad)} resident(s): {', '.join(bad[:5])}",
        )
    else:
        report.rerun.append(rec.seq)


@dataclass(slots=True)
class ReceiptCheck:
    """What :func:`verify_receipt` found: :attr:`ok`, and each :attr:`problems`."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the receipt verifies."""
        return not self.problems


def verify_receipt(
    receipt: Mapping[str, Any] | str,
    head: TreeHead | Mapping[str, Any],
    *,
    consistency: Sequence[str] = (),
) -> ReceiptCheck:
    """Check a resident's receipt against a published head, with no data and no log.

    Args:
        receipt: The receipt (a mapping, or its JSON text).
        head: A published head: the one the receipt was made against, or a later one with
            ``consistency``, the proof between the two (:meth:`DecisionLog.consistency`).
        consistency: Proof that the receipt's head is a prefix of ``head``.
    """
    r = json.loads(receipt) if isinstance(receipt, str) else receipt
    pub = TreeHead.from_dict(head) if isinstance(head, Mapping) else head
    out = ReceiptCheck()
    own = TreeHead.from_dict(r["head"])
    if own != pub and not verify_consistency(
        own.size,
        pub.size,
        bytes.fromhex(own.root),
        bytes.fromhex(pub.root),
        [bytes.fromhex(c) for c in consistency],
    ):
        out.problems.append("the receipt's head is not the published head, nor a prefix of it")
    raw = str(r["decision"]).encode("utf-8")
    path = [bytes.fromhex(p) for p in r["log_path"]]
    if root_from_inclusion(int(r["log_index"]), own.size, leaf_hash(raw), path) != bytes.fromhex(
        own.root
    ):
        out.problems.append("the decision record is not in the log under the head")
    body = json.loads(raw)["body"]
    for part, key in (("outcome", "outcome_root"), ("row", "list_root")):
        p = r[part]
        leaf = hashlib.sha256(
            b"\x00" + bytes.fromhex(p["nonce"]) + p["message"].encode("utf-8")
        ).digest()
        root = root_from_inclusion(
            int(p["index"]), int(p["size"]), leaf, [bytes.fromhex(x) for x in p["path"]]
        )
        if root is None or root.hex() != body.get(key) or int(p["size"]) != body.get("count"):
            out.problems.append(f"the {part} is not the one committed in the decision")
    msg = json.loads(r["outcome"]["message"])
    row = json.loads(r["row"]["message"])
    if msg.get("id") != r["resident"] or r["resident"] not in row.values():
        out.problems.append("the receipt is not this resident's")
    return out
