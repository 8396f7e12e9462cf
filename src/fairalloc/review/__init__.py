"""Re-review of decisions (§2.3.2): cases, exact replays, corrections, remedies, deadlines.

A resident who contests a decision files a :class:`Case` (:func:`open_case`): the grounds and
the corrected facts, each with a reference to its evidence; the policy's ``review`` section
gives the deadline. :func:`review` replays the decision from exactly the policy and data it
recorded (refused when their hashes differ), applies the corrections, reports whether the
outcome changes and why (from the complainant's own facts), and applies the remedy the policy
declares: a correction never takes a place from a resident already served unless the policy
says ``displace: true``. :func:`overdue` lists the cases unanswered past their deadline.

What a complainant is shown (:meth:`Finding.for_complainant`,
:meth:`Finding.complainant_text`) never includes another resident's data.

The core (:func:`open_case`, :func:`review`, :func:`overdue`) keeps no records and takes the
hashes to check as inputs; :func:`open_review`, :func:`answer_review` and
:func:`case_statuses` do the same on a :class:`~fairalloc.records.DecisionLog`, which stores a
commitment to each case and answer (``review.opened``, ``review.answered``) and supplies the
hashes. :func:`record_round` runs and records a rotation round (``round``) from the state the
log's last round committed to.
"""

from fairalloc.review._case import (
    CASE_SCHEMA,
    Case,
    CaseState,
    Correction,
    DecisionRef,
    open_case,
    overdue,
)
from fairalloc.review._log import (
    CaseStatus,
    answer_review,
    case_statuses,
    last_round,
    open_review,
    record_round,
    recorded_decision,
    rerun_round,
    round_outcomes,
    state_commitment,
)
from fairalloc.review._review import ANSWER_SCHEMA, Finding, Remedy, review

__all__ = [
    "ANSWER_SCHEMA",
    "CASE_SCHEMA",
    "Case",
    "CaseState",
    "CaseStatus",
    "Correction",
    "DecisionRef",
    "Finding",
    "Remedy",
    "answer_review",
    "case_statuses",
    "last_round",
    "open_case",
    "open_review",
    "overdue",
    "record_round",
    "recorded_decision",
    "rerun_round",
    "review",
    "round_outcomes",
    "state_commitment",
]
