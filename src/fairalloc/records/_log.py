"""The decision log: append-only records chained by hash and kept in a Merkle tree.

Every record is one canonical JSON object (see :mod:`fairalloc.records._canonical`)::

    {"body": {...}, "kind": "freeze", "operator": "clerk-7", "prev": "<hex>", "seq": 3,
     "time": "2026-12-04T09:30:00Z", "v": 1}

``prev`` is the hash of the record before (64 zeros for the first). A record's hash is its
RFC 9162 leaf hash, ``SHA-256(0x00 || canonical bytes)``, and the log's tree head is the RFC
9162 tree hash over the records' hashes, so one published head fixes every record before it.

The log only stores and proves: :meth:`DecisionLog.decide` runs the same
:func:`~fairalloc.allocation.allocate` as everything else, with the seed recorded after the
applicant list was frozen.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from fairalloc._io import atomic_write
from fairalloc._population import Population
from fairalloc.errors import ApprovalMissing, RecordsError
from fairalloc.records._canonical import canonical
from fairalloc.records._commit import (
    NONCE_BYTES,
    commit,
    fingerprint,
    id_order,
    outcome_array,
    policy_hash,
    recommit,
    row_array,
)
from fairalloc.records._merkle import Tree, consistency_proof, leaf_hash
from fairalloc.records._store import Opening, Store, StoredRecord, open_store

if TYPE_CHECKING:
    from fairalloc.allocation import Allocation
    from fairalloc.policy._model import Policy

__all__ = [
    "DECISION_KINDS",
    "RESERVED_KINDS",
    "Decision",
    "DecisionLog",
    "Prepared",
    "Record",
    "TreeHead",
    "library_version",
    "with_seed",
]

#: Kinds only the log's own methods write (their bodies are checked).
RESERVED_KINDS = frozenset({"policy", "freeze", "seed", "decision", "erasure"})
#: Kinds of decision a ``decision`` record can hold.
DECISION_KINDS = ("allocation", "rotation_round", "matching")
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def library_version() -> str:
    """The installed fairalloc version, as recorded in decisions."""
    try:
        return metadata.version("fairalloc")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_time(time: str | None) -> str:
    if time is None:
        return _now()
    try:
        parsed = dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RecordsError(
            "FA702",
            f"time {time!r} is not an ISO 8601 time with a zone",
            valid="2026-12-04T09:30:00Z",
        )
    return time


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the log, parsed.

    Attributes:
        seq: Its position (0 for the first).
        kind: ``policy``, ``freeze``, ``seed``, ``decision``, ``erasure`` or a kind appended
            by :meth:`DecisionLog.append` (e.g. ``review.opened``).
        hash: Its hash (hex), the leaf of the log's tree.
        prev: The hash of the record before.
        time: When it was appended (ISO 8601, UTC).
        operator: Who appended it.
        body: What it says (see :mod:`fairalloc.records`).
        raw: Its canonical bytes.
    """

    seq: int
    kind: str
    hash: str
    prev: str
    time: str
    operator: str
    body: dict[str, Any]
    raw: bytes

    @classmethod
    def parse(cls, stored: StoredRecord) -> Record:
        """Parse a stored record (its hash is taken as stored; :func:`verify_log` checks it)."""
        doc = json.loads(stored.body)
        return cls(
            int(doc["seq"]),
            str(doc["kind"]),
            stored.hash,
            str(doc["prev"]),
            str(doc["time"]),
            str(doc["operator"]),
            dict(doc["body"]),
            stored.body,
        )


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A head of the log's tree: publish it, and every record before it is fixed.

    Attributes:
        size: Number of records covered.
        root: The RFC 9162 tree hash over their hashes (hex).
    """

    size: int
    root: str

    def to_dict(self) -> dict[str, Any]:
        """``{"root": ..., "size": ...}``."""
        return {"root": self.root, "size": self.size}

    def to_json(self) -> str:
        """The head as canonical JSON, the form to publish."""
        return canonical(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TreeHead:
        """Read a published head.

        Raises:
            RecordsError: ``FA703`` if it is not a head.
        """
        try:
            size, root = doc["size"], doc["root"]
        except (KeyError, TypeError):
            size = root = None
        if not isinstance(size, int) or not isinstance(root, str) or not _HEX64.match(root):
            raise RecordsError(
                "FA703", "not a tree head", valid='{"root": "<64 hex digits>", "size": <records>}'
            )
        return cls(size, root)


@dataclass(slots=True)
class Decision:
    """A recorded decision and what was computed for it.

    Attributes:
        record: The ``decision`` record.
        allocation: The allocation it recorded.
        ids: Residents' ids in leaf order.
        outcomes: Each resident's canonical outcome, in leaf order.
        outcome_nonces: The outcome leaves' nonces.
        rows: Each resident's canonical row (as frozen), in leaf order, made when first read.
        row_nonces: The freeze's nonces.
        freeze: The ``freeze`` record.
    """

    record: Record
    allocation: Allocation
    ids: list[str]
    outcomes: Sequence[bytes]
    outcome_nonces: bytes
    rows: _Lazy
    row_nonces: bytes
    freeze: Record

    @property
    def seq(self) -> int:
        """The decision record's sequence number."""
        return self.record.seq


@dataclass(frozen=True, slots=True)
class Prepared:
    """The checked inputs of a decision about to be recorded (see :meth:`DecisionLog.prepare`).

    Attributes:
        policy: The registered policy, with the recorded seed in every lottery.
        population: The residents, checked against the freeze.
        order: Row positions in leaf order (by id).
        ids: Residents' ids in leaf order.
        rows: Their canonical rows, made when first read.
        row_nonces: The freeze's nonces.
        policy_record: The ``policy`` record.
        freeze: The ``freeze`` record.
        seed: The ``seed`` record (``None`` for a policy without lottery).
    """

    policy: Policy
    population: Population
    order: Any
    ids: list[str]
    rows: _Lazy
    row_nonces: bytes
    policy_record: Record
    freeze: Record
    seed: Record | None


def with_seed(policy: Policy, seed: str) -> Policy:
    """A copy of ``policy`` whose every lottery uses ``seed`` (a recorded draw's seed).

    The tie-break lottery and the allocation's lottery both take it; nothing else changes, so
    the decision runs the same code as any other allocation. The copy is marked as a draw.
    """
    copy = policy.with_lottery_seed(seed)
    copy._recorded_seed = seed
    return copy


def has_lottery(policy: Policy) -> bool:
    """Whether the policy draws lots anywhere (tie-break or allocation)."""
    ties = policy.ranking.tie_break
    spec = policy.allocation
    return bool(ties and ties[-1].lottery is not None) or (
        spec is not None and spec.lottery is not None
    )


def derive_seed(list_root: str, public_value: str) -> str:
    """The seed derived from a list commitment and a public randomness value.

    ``SHA-256("fairalloc seed" || 0x00 || list root (32 bytes) || public value (UTF-8))`` in hex.

    Examples:
        >>> len(derive_seed("00" * 32, "lottery 2026-12-05: 3 17 22 31 40 44"))
        64
    """
    data = b"fairalloc seed\x00" + bytes.fromhex(list_root) + public_value.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


class DecisionLog:
    r"""An append-only, tamper-evident log of policies, frozen lists, seeds and decisions.

    Open one with :meth:`open`. Typical use: :meth:`register_policy`, :meth:`freeze`,
    :meth:`draw_seed`, :meth:`decide`, publish :meth:`head`, hand out :meth:`receipt`\\ s,
    :meth:`export` for publication, and :func:`~fairalloc.records.verify_log`.

    Args:
        store: The storage (see :func:`~fairalloc.records.open_store`).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # Leaves never change once written, so a record's tree is built once per log object.
        self._trees: dict[int, Tree] = {}

    def _tree(self, seq: int) -> Tree:
        tree = self._trees.get(seq)
        if tree is None:
            tree = self._trees[seq] = Tree(self.leaves(seq))
        return tree

    @classmethod
    def open(cls, url: str | Path) -> DecisionLog:
        """Open (or create) the log at ``url``.

        Args:
            url: A file path or ``sqlite:///path`` (SQLite, the default), or
                ``postgresql://user@host/db`` (a log shared by several offices).

        Raises:
            RecordsError: ``FA701`` if it cannot be opened.
        """
        return cls(open_store(url))

    def close(self) -> None:
        """Close the connection."""
        self.store.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Every record, in order."""
        return [Record.parse(r) for r in self.store.records()]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def __len__(self) -> int:
        return len(self.store.records())

    def record(self, seq: int) -> Record:
        """The record at ``seq``.

        Raises:
            RecordsError: ``FA704`` if there is none.
        """
        found = self.store.records(seq)
        if not found or found[0].seq != seq:
            raise RecordsError("FA704", f"no record {seq} in the log (it holds {len(self)})")
        return Record.parse(found[0])

    def leaves(self, seq: int) -> list[bytes]:
        """The leaf commitments of record ``seq`` (empty when it has none)."""
        blob = self.store.leaves(seq) or b""
        return [blob[i : i + 32] for i in range(0, len(blob), 32)]

    def head(self, size: int | None = None) -> TreeHead:
        """The tree head over the first ``size`` records (all by default)."""
        hashes = self._hashes(size)
        return TreeHead(len(hashes), Tree(hashes).root.hex())

    def inclusion(self, seq: int, size: int | None = None) -> list[str]:
        """The proof that record ``seq`` is in the head of ``size`` records (hex hashes)."""
        hashes = self._hashes(size)
        return [h.hex() for h in Tree(hashes).inclusion(seq)]

    def consistency(self, old_size: int, new_size: int | None = None) -> list[str]:
        """The proof that the head of ``old_size`` records is a prefix of a later head."""
        hashes = self._hashes(new_size)
        return [h.hex() for h in consistency_proof(hashes, old_size)]

    def _hashes(self, size: int | None) -> list[bytes]:
        hashes = [bytes.fromhex(r.hash) for r in self.store.records()]
        if size is None:
            return hashes
        if not 0 <= size <= len(hashes):
            raise RecordsError("FA704", f"no head of {size} records: the log holds {len(hashes)}")
        return hashes[:size]

    # -- appending ---------------------------------------------------------------------
    def _append(
        self,
        kind: str,
        body: Mapping[str, Any],
        *,
        operator: str,
        time: str | None,
        leaves: list[bytes] | None = None,
        opening: Opening | None = None,
    ) -> Record:
        if not operator:
            raise RecordsError("FA702", "every record names its operator", valid="a non-empty name")
        when = _check_time(time)
        canonical(body)  # refuse what has no canonical form before taking the lock

        def build(seq: int, prev: str) -> tuple[bytes, str]:
            doc = {
                "body": body,
                "kind": kind,
                "operator": operator,
                "prev": prev,
                "seq": seq,
                "time": when,
                "v": 1,
            }
            raw = canonical(doc)
            return raw, leaf_hash(raw).hex()

        blob = b"".join(leaves) if leaves is not None else None
        return Record.parse(self.store.append(kind, build, blob, opening))

    def append(
        self,
        kind: str,
        body: Mapping[str, Any],
        *,
        operator: str,
        time: str | None = None,
        leaves: list[bytes] | None = None,
        opening: Opening | None = None,
    ) -> Record:
        """Append a record of another kind (review cases, rotation rounds, notes).

        Args:
            kind: Dotted lower-case name, e.g. ``review.opened``; not one of
                :data:`RESERVED_KINDS`.
            body: What the record says: JSON values (no floats; residents' data only as
                commitments).
            operator: Who appends it.
            time: When (ISO 8601 with a zone); now by default.
            leaves: Leaf commitments to keep with it (e.g. from
                :func:`~fairalloc.records.commit`).
            opening: Their private openings.

        Raises:
            RecordsError: ``FA705`` for a reserved or malformed kind, ``FA700`` for a body
                with no canonical form.
        """
        if not _KIND.match(kind) or kind in RESERVED_KINDS:
            raise RecordsError(
                "FA705",
                f"kind {kind!r} cannot be appended directly",
                valid="a dotted lower-case name other than " + ", ".join(sorted(RESERVED_KINDS)),
            )
        _no_floats(body, kind)
        return self._append(
            kind, body, operator=operator, time=time, leaves=leaves, opening=opening
        )

    def register_policy(
        self,
        policy: Policy,
        *,
        approved_by: str | None = None,
        approved_at: str | None = None,
        operator: str,
        effective_until: dt.date | None = None,
        time: str | None = None,
    ) -> Record:
        """Record a policy version: its canonical hash, version, window and approval.

        Args:
            policy: The policy document.
            approved_by: Who approved it (a body or a person's role); by default the policy's
                own ``policy.approved.by``.
            approved_at: When (ISO 8601 date or time); by default ``policy.approved.on``.
            operator: Who records it.
            effective_until: The last day it applies; by default ``policy.expires``.
            time: When recorded; now by default.

        Raises:
            ApprovalMissing: ``FA118`` when neither the arguments nor the policy say who
                approved it and when.
        """
        meta = policy.policy
        approval = meta.approved
        if approved_by is None and approval is not None:
            approved_by = approval.by
        if approved_at is None and approval is not None:
            approved_at = approval.on.isoformat()
        if effective_until is None:
            effective_until = meta.expires
        if approved_by is None or approved_at is None:
            raise ApprovalMissing(meta.id, meta.version)
        body = {
            "approved_at": approved_at,
            "approved_by": approved_by,
            "effective": {
                "from": meta.effective.isoformat() if meta.effective else None,
                "until": effective_until.isoformat() if effective_until else None,
            },
            "id": meta.id,
            "policy_hash": policy_hash(policy),
            "version": meta.version,
        }
        return self._append("policy", body, operator=operator, time=time)

    def freeze(
        self,
        policy_record: int,
        residents: Any,
        *,
        policy: Policy,
        operator: str,
        time: str | None = None,
    ) -> Record:
        """Freeze the applicant list: commit to every resident's row before any seed exists.

        Args:
            policy_record: The ``policy`` record whose policy reads the list.
            residents: The applicants (anything :meth:`Population.load` accepts).
            policy: That policy (its hash must match the record).
            operator: Who freezes the list.
            time: When; now by default.

        Returns:
            The ``freeze`` record: ``{"count", "policy", "policy_record", "root"}``.
        """
        prec = self._kind(policy_record, "policy")
        self._check_policy(prec, policy)
        population = Population.of(residents, policy)
        order = id_order(population.id_column)
        # Each row is hashed and let go: the rows of a million residents are never all held.
        nonces, leaves = commit(_lazy_rows(population, order))
        body = {
            "count": population.n,
            "policy": prec.hash,
            "policy_record": prec.seq,
            "root": Tree(leaves).root.hex(),
        }
        ids = population.id_column[order].astype(str).tolist()
        opening = Opening(ids, nonces, fingerprint(population, order))
        return self._append(
            "freeze",
            body,
            operator=operator,
            time=time,
            leaves=leaves,
            opening=opening,
        )

    def draw_seed(
        self,
        freeze_record: int,
        *,
        operator: str,
        value: str | None = None,
        public_randomness: str | None = None,
        how: str,
        time: str | None = None,
    ) -> Record:
        """Record the lottery seed, after (and for) a frozen list.

        Give either ``value`` (drawn in public, e.g. by dice before witnesses) or
        ``public_randomness`` (a value published by an outside source after the freeze, e.g.
        a state lottery's numbers); the seed is then :func:`derive_seed` of the list
        commitment and that value, so it depends on the list as frozen.

        Args:
            freeze_record: The ``freeze`` record the seed is for.
            operator: Who records it.
            value: The seed drawn in public.
            public_randomness: The public value to derive the seed from.
            how: How it was drawn, in words (witnesses, source, time).
            time: When; now by default.

        Raises:
            RecordsError: ``FA706`` unless exactly one of ``value``/``public_randomness`` is
                given, or the seed is longer than 64 bytes; ``FA707`` if the freeze already has
                a seed; ``FA708`` if a later freeze of the same policy exists (a seed is drawn
                once, for the latest list, so nobody can choose among several draws).
        """
        frec = self._kind(freeze_record, "freeze")
        for rec in self.records()[frec.seq + 1 :]:
            if rec.kind == "seed" and rec.body.get("freeze") == frec.hash:
                raise RecordsError(
                    "FA707",
                    f"freeze {frec.seq} already has its seed (record {rec.seq}): one freeze,"
                    " one draw",
                    record=frec.seq,
                )
            if rec.kind == "freeze" and rec.body.get("policy") == frec.body["policy"]:
                raise RecordsError(
                    "FA708",
                    f"freeze {frec.seq} was superseded by freeze {rec.seq} of the same policy:"
                    " draw for the latest freeze",
                    record=frec.seq,
                )
        if (value is None) == (public_randomness is None):
            raise RecordsError(
                "FA706", "give the seed drawn (value) or a public randomness value, not both"
            )
        if public_randomness is not None:
            seed = derive_seed(frec.body["root"], public_randomness)
            method = "derived"
        else:
            assert value is not None
            seed, method = value, "public"
        if not seed or len(seed.encode("utf-8")) > 64:
            raise RecordsError("FA706", "a seed has 1 to 64 bytes in UTF-8")
        body = {
            "freeze": frec.hash,
            "freeze_record": frec.seq,
            "how": how,
            "method": method,
            "public_randomness": public_randomness,
            "seed": seed,
        }
        return self._append("seed", body, operator=operator, time=time)

    def decide(
        self,
        policy: Policy,
        residents: Any,
        *,
        freeze: int,
        seed: int | None,
        operator: str,
        capacity: int | None = None,
        as_of: dt.date | None = None,
        time: str | None = None,
    ) -> Decision:
        """Allocate with the recorded seed over the frozen list, and record the decision.

        Args:
            policy: The policy registered for the freeze.
            residents: The applicants, exactly as frozen.
            freeze: The ``freeze`` record.
            seed: The ``seed`` record drawn for that freeze (``None`` only if the policy
                draws no lots).
            operator: Who decides.
            capacity: Units to allocate; the policy's by default.
            as_of: The date whose parameter values apply; the day of ``time`` by default.
            time: When; now by default.

        Raises:
            RecordsError: ``FA710`` seed not drawn after this freeze, ``FA711`` seed already
                used, ``FA712`` policy not the one registered, ``FA713`` data differ from
                the frozen list, ``FA714`` a lottery without a seed.
        """
        from fairalloc._compiler import compiled_for
        from fairalloc.allocation import allocate

        when = _check_time(time)
        day = as_of or dt.date.fromisoformat(when[:10])
        ready = self.prepare(policy, residents, freeze=freeze, seed=seed)
        allocation = allocate(compiled_for(ready.policy, day), ready.population, capacity=capacity)
        outcomes = _lazy_outcomes(allocation, ready.order)
        rec, nonces = self.record_decision(
            ready,
            "allocation",
            outcomes,
            as_of=day,
            capacity=allocation.capacity,
            served=allocation.n_served,
            operator=operator,
            time=when,
        )
        return Decision(
            rec, allocation, ready.ids, outcomes, nonces, ready.rows, ready.row_nonces, ready.freeze
        )

    def prepare(self, policy: Policy, residents: Any, *, freeze: int, seed: int | None) -> Prepared:
        """Check everything a recorded decision needs, before it is computed.

        The policy must be the one registered for the freeze, the seed drawn after the freeze
        for it and not used yet, and the data the list as frozen. Modules that record other
        kinds of decision (rotation rounds) call this, compute their outcome with
        :attr:`Prepared.policy` (which carries the recorded seed) over
        :attr:`Prepared.population`, then :meth:`record_decision`.

        Raises:
            RecordsError: as :meth:`decide`.
        """
        frec = self._kind(freeze, "freeze")
        prec = self._kind(int(frec.body["policy_record"]), "policy")
        self._check_policy(prec, policy)
        srec = self._check_seed(frec, seed, policy)
        population = Population.of(residents, policy)
        order = id_order(population.id_column)
        opening = self.store.opening(frec.seq)
        if opening is None:
            raise RecordsError("FA713", "the freeze's openings are not kept here", record=frec.seq)
        ids = population.id_column[order].astype(str).tolist()
        rows = _lazy_rows(population, order)
        if not opening.fingerprint or fingerprint(population, order) != opening.fingerprint:
            check_rows(frec, ids, rows, opening, self.leaves(frec.seq))
        run = with_seed(policy, srec.body["seed"]) if srec is not None else policy
        return Prepared(run, population, order, ids, rows, opening.nonces, prec, frec, srec)

    def record_decision(
        self,
        ready: Prepared,
        kind: str,
        outcomes: Sequence[bytes],
        *,
        as_of: dt.date,
        capacity: int | None,
        served: int,
        operator: str,
        time: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[Record, bytes]:
        """Record a decision computed from :meth:`prepare`'s inputs.

        Args:
            ready: What :meth:`prepare` returned.
            kind: One of :data:`DECISION_KINDS`.
            outcomes: Each resident's outcome as canonical JSON bytes (with an ``"id"``), in
                the order of :attr:`Prepared.ids`.
            as_of: The date whose parameter values applied.
            capacity: Units allocated.
            served: Residents served.
            operator: Who decides.
            time: When; now by default.
            extra: More of the decision's facts (e.g. the round number); no floats.

        Returns:
            The ``decision`` record and the outcome leaves' nonces.

        Raises:
            RecordsError: ``FA705`` for an unknown kind or a clash with the record's own keys,
                ``FA700`` for floats in ``extra``.
        """
        if kind not in DECISION_KINDS:
            raise RecordsError(
                "FA705", f"no decision kind {kind!r}", valid=", ".join(DECISION_KINDS)
            )
        if len(outcomes) != len(ready.ids):
            raise RecordsError(
                "FA705", f"{len(outcomes)} outcomes for {len(ready.ids)} residents frozen"
            )
        nonces, leaves = commit(outcomes)
        frec, prec, srec = ready.freeze, ready.policy_record, ready.seed
        body: dict[str, Any] = {
            "as_of": as_of.isoformat(),
            "capacity": capacity,
            "count": len(outcomes),
            "freeze": frec.hash,
            "freeze_record": frec.seq,
            "kind": kind,
            "library": library_version(),
            "list_root": frec.body["root"],
            "outcome_root": Tree(leaves).root.hex(),
            "policy": prec.hash,
            "policy_hash": prec.body["policy_hash"],
            "policy_record": prec.seq,
            "seed": srec.hash if srec is not None else None,
            "seed_record": srec.seq if srec is not None else None,
            "seed_value": srec.body["seed"] if srec is not None else None,
            "served": served,
        }
        if extra:
            _no_floats(extra, "decision")
            clash = sorted(set(extra) & set(body))
            if clash:
                raise RecordsError("FA705", f"extra facts may not replace {', '.join(clash)}")
            body.update(extra)
        rec = self._append(
            "decision",
            body,
            operator=operator,
            time=time,
            leaves=leaves,
            opening=Opening(ready.ids, nonces),
        )
        return rec, nonces

    def decision(self, seq: int, policy: Policy, residents: Any) -> Decision:
        """A recorded decision re-run from the policy and the data, for receipts and reviews.

        Raises:
            RecordsError: ``FA712`` another policy, ``FA713`` other data than frozen,
                ``FA717`` a re-run that does not give the recorded outcome, ``FA715`` when
                the openings needed were erased.
        """
        from fairalloc._compiler import compiled_for
        from fairalloc.allocation import allocate

        rec = self._kind(seq, "decision")
        body = rec.body
        if body.get("kind") != "allocation":
            raise RecordsError("FA704", f"a {body.get('kind')} decision is re-run by its module")
        frec = self._kind(int(body["freeze_record"]), "freeze")
        self._check_policy(self._kind(int(body["policy_record"]), "policy"), policy)
        population = Population.of(residents, policy)
        order = id_order(population.id_column)
        row_open, out_open = self.store.opening(frec.seq), self.store.opening(seq)
        if row_open is None or out_open is None:
            raise RecordsError("FA715", "the openings of this decision are not kept", record=seq)
        if "" in row_open.ids or "" in out_open.ids:
            raise RecordsError(
                "FA715", "residents were erased from it: it can no longer be re-run", record=seq
            )
        ids = population.id_column[order].astype(str).tolist()
        rows = _lazy_rows(population, order)
        if not row_open.fingerprint or fingerprint(population, order) != row_open.fingerprint:
            check_rows(frec, ids, rows, row_open, self.leaves(frec.seq))
        seed = body.get("seed_value")
        run = with_seed(policy, seed) if seed is not None else policy
        allocation = allocate(
            compiled_for(run, dt.date.fromisoformat(body["as_of"])),
            population,
            capacity=int(body["capacity"]),
        )
        outcomes = _lazy_outcomes(allocation, order)
        if out_open.ids == ids and b"".join(recommit(outcomes, out_open.nonces)) != b"".join(
            self.leaves(seq)
        ):
            raise RecordsError(
                "FA717", "re-running it does not give the recorded outcome", record=seq
            )
        return Decision(
            rec, allocation, ids, outcomes, out_open.nonces, rows, row_open.nonces, frec
        )

    # -- checks ------------------------------------------------------------------------
    def _kind(self, seq: int, kind: str) -> Record:
        rec = self.record(seq)
        if rec.kind != kind:
            raise RecordsError("FA704", f"is a {rec.kind} record, not a {kind} record", record=seq)
        return rec

    @staticmethod
    def _check_policy(prec: Record, policy: Policy) -> None:
        digest = policy_hash(policy)
        if digest != prec.body["policy_hash"]:
            raise RecordsError(
                "FA712",
                f"the policy given (hash {digest[:16]}…) is not the one registered"
                f" ({prec.body['id']} {prec.body['version']},"
                f" hash {prec.body['policy_hash'][:16]}…)",
                record=prec.seq,
            )

    def _check_seed(self, frec: Record, seed: int | None, policy: Policy) -> Record | None:
        if seed is None:
            if has_lottery(policy):
                raise RecordsError(
                    "FA714",
                    "the policy draws lots: a decision needs a seed recorded after the freeze",
                    record=frec.seq,
                )
            return None
        srec = self._kind(seed, "seed")
        if srec.seq <= frec.seq or srec.body["freeze"] != frec.hash:
            raise RecordsError(
                "FA710",
                f"seed {srec.seq} was not drawn after freeze {frec.seq} for it"
                f" (it is for freeze {srec.body['freeze_record']})",
                record=srec.seq,
                valid="freeze the list first, then draw the seed for that freeze",
            )
        for rec in self.records():
            if rec.kind == "decision" and rec.body.get("seed") == srec.hash:
                raise RecordsError(
                    "FA711",
                    f"seed {srec.seq} was already used by decision {rec.seq}:"
                    " one draw, one decision",
                    record=srec.seq,
                )
        return srec

    # -- residents ---------------------------------------------------------------------
    def receipt(self, decision: Decision, resident_id: str) -> dict[str, Any]:
        """A resident's receipt: their own openings and the proofs up to the current head.

        It holds the resident's outcome and row (their own data), their nonces, the proofs
        to the decision's outcome and list roots, the decision record and its proof to the
        head. Check it with :func:`~fairalloc.records.verify_receipt` or by the recipe in
        ``docs/privacy.md`` (``hashlib`` alone).

        Raises:
            RecordsError: ``FA715`` if the resident is not in the decision, or was erased.
        """
        try:
            i = decision.ids.index(resident_id)
        except ValueError:
            raise RecordsError(
                "FA715", f"resident {resident_id!r} is not in this decision", record=decision.seq
            ) from None
        out_open = self.store.opening(decision.seq)
        row_open = self.store.opening(decision.freeze.seq)
        if out_open is None or row_open is None or not out_open.ids[i] or not row_open.ids[i]:
            raise RecordsError(
                "FA715", f"resident {resident_id!r}'s openings were erased", record=decision.seq
            )
        head = self.head()
        out_tree = self._tree(decision.seq)
        row_tree = self._tree(decision.freeze.seq)
        n = len(decision.ids)
        return {
            "decision": decision.record.raw.decode("utf-8"),
            "format": "fairalloc-receipt/1",
            "head": head.to_dict(),
            "log_index": decision.seq,
            "log_path": self.inclusion(decision.seq),
            "outcome": {
                "index": i,
                "message": decision.outcomes[i].decode("utf-8"),
                "nonce": out_open.nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES].hex(),
                "path": [h.hex() for h in out_tree.inclusion(i)],
                "size": n,
            },
            "resident": resident_id,
            "row": {
                "index": i,
                "message": decision.rows[i].decode("utf-8"),
                "nonce": row_open.nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES].hex(),
                "path": [h.hex() for h in row_tree.inclusion(i)],
                "size": n,
            },
        }

    def erase(
        self, resident_id: str, *, reason: str, operator: str, time: str | None = None
    ) -> Record:
        """Erase a resident: destroy their openings everywhere, and record that it was done.

        The leaves stay (they reveal nothing), so the chain, every head and every other
        resident's proofs still verify; what can no longer be done is re-running the
        records whose leaves included this resident, which
        :func:`~fairalloc.records.verify_log` then names. The ``erasure`` record lists the
        leaves by position only.

        Raises:
            RecordsError: ``FA716`` if the resident appears in no record.
        """
        hit: list[dict[str, int]] = []
        for seq, opening in list(self.store.openings()):
            if resident_id not in opening.ids:
                continue
            i = opening.ids.index(resident_id)
            ids = list(opening.ids)
            ids[i] = ""
            nonces = bytearray(opening.nonces)
            nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES] = bytes(NONCE_BYTES)
            self.store.replace_opening(seq, Opening(ids, bytes(nonces)))
            hit.append({"leaf": i, "record": seq})
        if not hit:
            raise RecordsError("FA716", f"resident {resident_id!r} appears in no record's openings")
        return self._append(
            "erasure", {"leaves": hit, "reason": reason}, operator=operator, time=time
        )

    # -- publication -------------------------------------------------------------------
    def export(self, path: str | Path) -> TreeHead:
        """Write the log as JSON Lines for publication, and return its head.

        The first line is the head; then one line per record:
        ``{"hash", "leaves" (base64 of the 32-byte leaves, or null), "record" (the canonical
        text), "seq"}``. Residents' openings are never exported.
        """
        head = self.head()
        with atomic_write(path) as fh:  # whole or not at all; lines end in \n as written
            fh.write(json.dumps({"fairalloc_log": 1, **head.to_dict()}) + "\n")
            for r in self.store.records():
                blob = self.store.leaves(r.seq)
                line = {
                    "hash": r.hash,
                    "leaves": base64.b64encode(blob).decode("ascii") if blob is not None else None,
                    "record": r.body.decode("utf-8"),
                    "seq": r.seq,
                }
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        return head

    def export_openings(self, path: str | Path) -> None:
        """Write the private openings (ids and nonces) for an offline full verification.

        This file holds residents' ids: keep it with the data, never publish it.
        """
        with atomic_write(path) as fh:  # whole or not at all; lines end in \n as written
            for seq, op in self.store.openings():
                fh.write(json.dumps({"ids": op.ids, "nonces": op.nonces.hex(), "seq": seq}) + "\n")


def check_rows(
    frec: Record, ids: list[str], rows: Sequence[bytes], opening: Opening, leaves: list[bytes]
) -> None:
    """Refuse data that differ from the frozen list, naming the residents.

    Raises:
        RecordsError: ``FA713`` naming the first residents whose rows differ, and the ids
            added or missing.
    """
    problems = row_differences(ids, rows, opening, leaves)
    if problems:
        raise RecordsError(
            "FA713",
            "the residents' data differ from the frozen list: " + "; ".join(problems),
            record=frec.seq,
            valid="the applicant list exactly as frozen",
        )


def row_differences(
    ids: list[str], rows: Sequence[bytes], opening: Opening, leaves: Sequence[bytes] | bytes
) -> list[str]:
    """What differs between the data and the frozen list (empty when nothing does).

    ``leaves``: the frozen leaves, as a list or as stored (one run of 32-byte hashes).
    Erased residents (no opening) are skipped: their rows cannot be compared. ``rows`` is
    iterated once when nothing differs (a lazy sequence then never holds them all).
    """
    blob = leaves if isinstance(leaves, bytes) else b"".join(leaves)
    # Nobody erased: the rows are in leaf order already.
    if opening.ids == ids and b"".join(recommit(rows, opening.nonces)) == blob:
        return []
    if isinstance(leaves, bytes):
        leaves = [blob[k : k + 32] for k in range(0, len(blob), 32)]
    kept = [i for i in opening.ids if i]
    missing = sorted(set(kept) - set(ids))
    added = sorted(set(ids) - set(opening.ids))
    out = []
    if missing:
        out.append(
            f"{len(missing)} frozen resident(s) missing from the data: {', '.join(missing[:5])}"
        )
    if added:
        out.append(f"{len(added)} resident(s) not in the frozen list: {', '.join(added[:5])}")
    if missing or added:
        return out
    if opening.ids == ids:
        got = recommit(rows, opening.nonces)
        idx = list(range(len(ids)))
    else:
        pos = {rid: k for k, rid in enumerate(ids)}
        idx = [k for k, rid in enumerate(opening.ids) if rid]
        msgs = [rows[pos[opening.ids[k]]] for k in idx]
        nonce_blob = b"".join(opening.nonces[k * NONCE_BYTES : (k + 1) * NONCE_BYTES] for k in idx)
        got = recommit(msgs, nonce_blob)
    bad = [opening.ids[k] for k, g in zip(idx, got, strict=True) if g != leaves[k]]
    if bad:
        out.append(
            f"{len(bad)} resident row(s) differ from the frozen leaves: {', '.join(bad[:5])}"
        )
    return out


def _no_floats(obj: Any, kind: str) -> None:
    if isinstance(obj, float):
        raise RecordsError(
            "FA700", f"a {kind} record holds no floats (write amounts as integers or text)"
        )
    if isinstance(obj, Mapping):
        for v in obj.values():
            _no_floats(v, kind)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _no_floats(v, kind)


class _Lazy(Sequence[bytes]):
    """Residents' canonical messages, written by Arrow as one array when first needed.

    Hashing a million rows or outcomes frames them behind their nonces in one array and
    hashes them in place (:meth:`framed`); iterating reads them a chunk at a time; a receipt
    (one resident's message) or a data check's report makes the array once and keeps it.
    """

    def __init__(self, n: int, array: Callable[[bytes | None], Any]) -> None:
        self._n = n
        self._array = array  # with nonces: framed for the leaves; with None: the messages
        self._items: list[bytes] | None = None
        self._kept: Any = None

    def framed(self, nonces: bytes) -> Any:
        """Every message behind its ``0x00 || nonce``, as one Arrow array.

        For :func:`~fairalloc.records._commit.framed_leaves`.
        """
        return self._array(nonces)

    def get(self) -> list[bytes]:
        """Every message, made once and kept."""
        if self._items is None:
            self._items = self._held().to_pylist()
        return self._items

    def _held(self) -> Any:
        if self._kept is None:
            self._kept = self._array(None)
        return self._kept

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[bytes]:
        if self._items is not None:
            return iter(self._items)
        array = self._kept if self._kept is not None else self._array(None)
        return (
            m for start in range(0, self._n, _CHUNK) for m in array.slice(start, _CHUNK).to_pylist()
        )

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if self._items is None and isinstance(i, int):
            if not -self._n <= i < self._n:
                raise IndexError(i)
            return self._held()[i].as_py()  # type: ignore[no-any-return]
        return self.get()[i]


#: Messages made into Python bytes at a time when a :class:`_Lazy` is iterated.
_CHUNK = 1 << 16


def _lazy_rows(population: Population, order: Any) -> _Lazy:
    """Residents' canonical rows (:func:`row_array`), in ``order``."""
    return _Lazy(population.n, lambda nonces: row_array(population, order, nonces))


def _lazy_outcomes(allocation: Allocation, order: Any) -> _Lazy:
    """Residents' canonical outcomes (:func:`outcome_array`), in ``order``."""
    return _Lazy(len(order), lambda nonces: outcome_array(allocation, order, nonces))
