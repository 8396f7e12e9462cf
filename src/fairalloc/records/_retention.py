"""Retention: how long each kind of record is kept, as the policy declares, and what is due.

A policy's ``records: {retention: {data, openings, log}}`` section declares the periods (see
:class:`~fairalloc.policy.Retention`). :func:`retention_schedule` lists them with what each
covers; :func:`due_for_erasure` lists the records of a log whose openings are past their period,
so the operator erases them (:meth:`DecisionLog.erase` per resident, or the whole record's data).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from fairalloc.policy._model import Policy
from fairalloc.records._log import DecisionLog

__all__ = ["Due", "RetentionRule", "add_period", "due_for_erasure", "retention_schedule"]

_COVERS = {
    "data": "residents' rows in the operator's own store (files or tables the data came from)",
    "openings": "the nonces that open residents' commitments (needed for receipts and re-runs)",
    "log": "the log's records: policies, commitments, seeds, decisions (no resident's data)",
}


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """One declared period: ``what`` is kept for ``period`` (``None``: not declared)."""

    what: str
    period: str | None
    covers: str


@dataclass(frozen=True, slots=True)
class Due:
    """A record whose residents' openings are past the declared period."""

    record: int
    kind: str
    time: str
    due: dt.date
    residents: int


def retention_schedule(policy: Policy) -> list[RetentionRule]:
    """The retention periods the policy declares, one per kind of record.

    Examples:
        >>> import fairalloc as fa
        >>> p = fa.parse_policy('''
        ... policy: {id: demo, version: "1", title: Demo}
        ... attributes: {id: {type: str, role: id}}
        ... records: {retention: {data: 3 years, openings: 5 years}}
        ... ''')
        >>> [(r.what, r.period) for r in retention_schedule(p)]
        [('data', '3 years'), ('openings', '5 years'), ('log', 'permanent')]
    """
    spec = policy.records.retention if policy.records is not None else None
    return [
        RetentionRule(
            what, getattr(spec, what) if spec else ("permanent" if what == "log" else None), covers
        )
        for what, covers in _COVERS.items()
    ]


def add_period(start: dt.date, period: str) -> dt.date:
    """``start`` plus a period such as ``6 months`` (the last day of a shorter month).

    Examples:
        >>> add_period(dt.date(2026, 8, 31), "6 months")
        datetime.date(2027, 2, 28)
    """
    count_text, unit = period.split()
    count = int(count_text)
    if unit.startswith("day"):
        return start + dt.timedelta(days=count)
    months = count * (12 if unit.startswith("year") else 1)
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_for_erasure(log: DecisionLog, policy: Policy, today: dt.date) -> list[Due]:
    """Records whose residents' openings are kept beyond the policy's ``openings`` period."""
    period = policy.records.retention.openings if policy.records is not None else None
    if period is None:
        return []
    out = []
    for rec in log.records():
        if rec.kind not in ("freeze", "decision"):
            continue
        opening = log.store.opening(rec.seq)
        if opening is None:
            continue
        kept = sum(1 for i in opening.ids if i)
        due = add_period(dt.date.fromisoformat(rec.time[:10]), period)
        if kept and due <= today:
            out.append(Due(rec.seq, rec.kind, rec.time, due, kept))
    return out
