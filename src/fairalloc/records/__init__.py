"""Decisions that can be held to account: a tamper-evident decision log.

The log stores and proves; it never decides. Its records, in order:

* ``policy``: a policy version (canonical hash of the document, version, effective window,
  who approved it and when);
* ``freeze``: the applicant list, as the Merkle root over one hiding commitment per
  resident's row, and the count;
* ``seed``: the lottery seed, drawn in public or derived from a public randomness value and
  the list commitment, after the freeze it names;
* ``decision``: the kind, the policy, list and seed it used, the as-of date, the capacity, the
  library version, and the outcome commitment (Merkle root over one hiding commitment per
  resident's outcome);
* ``erasure``: which leaves' openings were destroyed; and any other kind appended with
  :meth:`DecisionLog.append` (review cases, rotation rounds).

Each record carries the hash of the one before, and the log is a Merkle tree in the manner of
Certificate Transparency (RFC 9162): a head to publish, inclusion and consistency proofs.
Residents' rows never enter the log: only commitments that reveal nothing without their
nonces. See ``docs/records.md`` and ``docs/privacy.md``.
"""

from __future__ import annotations

from fairalloc.records._canonical import canonical
from fairalloc.records._commit import commit, id_order, leaf_of, outcome_messages, policy_hash
from fairalloc.records._log import (
    DECISION_KINDS,
    RESERVED_KINDS,
    Decision,
    DecisionLog,
    Prepared,
    Record,
    TreeHead,
    derive_seed,
    with_seed,
)
from fairalloc.records._merkle import (
    consistency_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from fairalloc.records._retention import (
    Due,
    RetentionRule,
    add_period,
    due_for_erasure,
    retention_schedule,
)
from fairalloc.records._store import Opening, PostgresStore, SQLiteStore, Store, open_store
from fairalloc.records._verify import (
    Problem,
    ReceiptCheck,
    Rerun,
    VerifyReport,
    load_openings,
    rerun_allocation,
    verify_log,
    verify_receipt,
)

__all__ = [
    "DECISION_KINDS",
    "RESERVED_KINDS",
    "Decision",
    "DecisionLog",
    "Due",
    "Opening",
    "PostgresStore",
    "Prepared",
    "Problem",
    "ReceiptCheck",
    "Record",
    "Rerun",
    "RetentionRule",
    "SQLiteStore",
    "Store",
    "TreeHead",
    "VerifyReport",
    "add_period",
    "canonical",
    "commit",
    "consistency_proof",
    "derive_seed",
    "due_for_erasure",
    "id_order",
    "leaf_hash",
    "leaf_of",
    "load_openings",
    "node_hash",
    "open_store",
    "outcome_messages",
    "policy_hash",
    "rerun_allocation",
    "retention_schedule",
    "root_from_inclusion",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "verify_receipt",
    "with_seed",
]
