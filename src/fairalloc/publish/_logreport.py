"""The period report from a decision log (§2.2.2): decisions re-run, waits, rotation, reviews.

Every allocation decision of the period is re-run from the policy and the data the office
kept, and the log checks it against what it recorded (the policy's hash, the frozen list and
the outcome commitment) before a figure is taken from it; so the report states what was
decided, not what a file says. On top of the tables of :class:`~fairalloc.publish.PeriodReport`
it adds, from the log:

* every decision of the period, including rotation rounds (their counts are in the log);
* the distribution of waiting times of the residents given a place: days from the first
  frozen list that held them to the decision that served them (ids come from the office's
  private openings; only counts per band are published);
* with the rotation's state after the period's last round: how many times residents have been
  served, and their longest waits in rounds;
* reviews (§2.3.2): opened, answered, answered within the deadline, outcome changed, overdue.

Counts of residents are one-dimensional tables with a published total; a band with fewer than
``min_cell`` residents is suppressed, and when that leaves a single band suppressed, the
smallest other band with residents is suppressed too, so that no suppressed count follows from
the total (the attacker's linear program pins none: each suppressed band ranges from 0 to the
sum of the suppressed bands). Review counts are about cases, not residents' characteristics,
and are published whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairalloc.allocation import Allocation
from fairalloc.allocation._state import RotationState
from fairalloc.errors import PublishError
from fairalloc.policy._model import Policy
from fairalloc.records import DecisionLog, Record

__all__ = ["WAIT_BANDS", "LogFacts", "log_facts", "protect_counts"]

#: Waiting-time bands in days: ``(low, high)``, ``high`` excluded, ``None`` for no bound.
WAIT_BANDS: tuple[tuple[int, int | None], ...] = (
    (0, 30),
    (30, 90),
    (90, 180),
    (180, 365),
    (365, None),
)
#: Bands of times served and of the longest wait (in rounds) in a rotation.
SERVED_BANDS: tuple[tuple[int, int | None], ...] = ((0, 1), (1, 2), (2, 3), (3, None))
WAIT_ROUND_BANDS: tuple[tuple[int, int | None], ...] = ((0, 1), (1, 2), (2, 3), (3, 5), (5, None))


def protect_counts(counts: Sequence[int], min_cell: int) -> list[int | None]:
    """Suppress the small bands of a one-dimensional table whose total is published.

    A band with 1 to ``min_cell - 1`` residents is suppressed (``None``); when that leaves one
    band suppressed, the smallest other band with residents is suppressed as well (the total
    would give it back otherwise), or an empty band when no other band has residents. Other
    empty bands are published: a zero says nothing of anyone.

    Examples:
        >>> protect_counts([12, 3, 0, 9], 5)
        [12, None, 0, None]
        >>> protect_counts([12, 7, 0, 9], 5)
        [12, 7, 0, 9]
        >>> protect_counts([0, 0, 4], 5)
        [None, 0, None]
    """
    out: list[int | None] = [None if 0 < c < min_cell else int(c) for c in counts]
    hidden = [i for i, c in enumerate(out) if c is None]
    if len(hidden) == 1:
        # The smallest band with residents; failing that, an empty band (its zero is then
        # unknown too, so the one small band is no longer the total less what is shown).
        rest = [(c == 0, c, i) for i, c in enumerate(counts) if out[i] is not None]
        if rest:
            out[min(rest)[2]] = None
    return out


def _band(value: int, bands: Sequence[tuple[int, int | None]]) -> int:
    for k, (low, high) in enumerate(bands):
        if value >= low and (high is None or value < high):
            return k
    return len(bands) - 1  # pragma: no cover - the last band is open and takes the rest


def _table(
    values: Sequence[int], bands: Sequence[tuple[int, int | None]], min_cell: int
) -> dict[str, Any]:
    counts = [0] * len(bands)
    for v in values:
        counts[_band(v, bands)] += 1
    shown = protect_counts(counts, min_cell)
    return {
        "bands": [[low, high] for low, high in bands],
        "counts": shown,
        "total": len(values),
        "suppressed": sum(1 for c in shown if c is None),
    }


@dataclass
class LogFacts:
    """What the decision log adds to a period report.

    Attributes:
        decisions: Every decision of the period (allocations and rotation rounds), in order:
            record, kind, date, applications, eligible, capacity, served.
        waiting: Days waited by the residents given a place by an allocation of the period
            (bands, protected counts, total), or None when no allocation gave a place.
        times_served: With a rotation state: residents by times served (as ``waiting``).
        longest_wait: With a rotation state: residents by their longest wait, in rounds.
        reviews: Cases opened, answered, answered in time, with a changed outcome, overdue.
        min_cell: The smallest count published in a band.
    """

    decisions: list[dict[str, Any]] = field(default_factory=list)
    waiting: dict[str, Any] | None = None
    times_served: dict[str, Any] | None = None
    longest_wait: dict[str, Any] | None = None
    reviews: dict[str, int] = field(default_factory=dict)
    min_cell: int = 5

    def to_dict(self) -> dict[str, Any]:
        """As plain values (part of the report's JSON)."""
        return {
            "decisions": self.decisions,
            "waiting_days": self.waiting,
            "times_served": self.times_served,
            "longest_wait_rounds": self.longest_wait,
            "reviews": self.reviews,
            "min_cell": self.min_cell,
        }


def _day(rec: Record) -> dt.date:
    """A record's day: its ``as_of`` where it states one, else the day it was appended."""
    as_of = rec.body.get("as_of")
    if isinstance(as_of, str):
        return dt.date.fromisoformat(as_of)
    return dt.date.fromisoformat(rec.time[:10])


def _data_for(residents: Any, freeze: int) -> Any:
    if isinstance(residents, Mapping):
        if freeze not in residents and None in residents:
            return residents[None]
        if freeze not in residents:
            raise PublishError(
                f"no data given for the list frozen in record {freeze}: give residents as a"
                " mapping from each freeze's record number to its data, or one source for all",
                code="FA856",
            )
        return residents[freeze]
    return residents


def log_facts(
    log: DecisionLog,
    policy: Policy,
    residents: Any,
    *,
    start: dt.date,
    end: dt.date,
    state: RotationState | None = None,
    min_cell: int = 5,
) -> tuple[list[tuple[dt.date, Allocation]], LogFacts]:
    """The period's allocations, re-run and checked by the log, and the log's own facts.

    Raises:
        PublishError: ``FA856`` no data for a decision's frozen list, ``FA857`` a decision
            that does not re-run to what the log recorded (the log's error is the cause).
    """
    from fairalloc.errors import RecordsError

    records = log.records()
    facts = LogFacts(min_cell=min_cell)
    rounds: list[tuple[dt.date, Allocation]] = []
    first_seen: dict[str, dt.date] = {}
    waits: list[int] = []
    for rec in records:
        if rec.kind == "freeze":
            opening = log.store.opening(rec.seq)
            day = _day(rec)
            for rid in opening.ids if opening is not None else ():
                if rid and rid not in first_seen:
                    first_seen[rid] = day
            continue
        if rec.kind != "decision":
            continue
        day = _day(rec)
        if not start <= day <= end:
            continue
        body = rec.body
        kind = str(body.get("kind"))
        row: dict[str, Any] = {
            "record": rec.seq,
            "kind": kind,
            "date": day.isoformat(),
            "applications": int(body.get("present", body.get("count", 0))),
            "eligible": body.get("eligible"),
            "capacity": body.get("capacity"),
            "served": int(body.get("served", 0)),
        }
        if kind == "allocation":
            data = _data_for(residents, int(body["freeze_record"]))
            try:
                decision = log.decision(rec.seq, policy, data)
            except RecordsError as e:
                raise PublishError(
                    f"decision {rec.seq} does not re-run from the policy and data given: {e}",
                    code="FA857",
                ) from e
            alloc = decision.allocation
            row["eligible"] = int(alloc.evaluation.eligible.sum())
            rounds.append((day, alloc))
            for rid in alloc.served_ids():
                seen = first_seen.get(str(rid), day)
                waits.append(max(0, (day - seen).days))
        facts.decisions.append(row)
    if waits:
        facts.waiting = _table(waits, WAIT_BANDS, min_cell)
    if state is not None:
        present = [r for r in state.residents if not r.departed]
        facts.times_served = _table([r.times_served for r in present], SERVED_BANDS, min_cell)
        facts.longest_wait = _table([r.longest_wait for r in present], WAIT_ROUND_BANDS, min_cell)
    facts.reviews = _reviews(records, start, end)
    return rounds, facts


def _reviews(records: Sequence[Record], start: dt.date, end: dt.date) -> dict[str, int]:
    opened = {str(r.body["case"]): r for r in records if r.kind == "review.opened"}
    answered = {str(r.body["case"]): r for r in records if r.kind == "review.answered"}
    out = {"opened": 0, "answered": 0, "in_time": 0, "changed": 0, "overdue": 0}
    for case, r in opened.items():
        filed = dt.date.fromisoformat(str(r.body["filed"]))
        deadline = dt.date.fromisoformat(str(r.body["deadline"]))
        if start <= filed <= end:
            out["opened"] += 1
        a = answered.get(case)
        on = dt.date.fromisoformat(str(a.body["answered"])) if a is not None else None
        if on is not None and start <= on <= end:
            out["answered"] += 1
            out["in_time"] += int(on <= deadline)
            out["changed"] += int(bool(a.body.get("outcome_changed"))) if a is not None else 0
        # Overdue at the end of the period: the deadline passed in it with no answer by then.
        if start <= deadline < end and (on is None or on > end):
            out["overdue"] += 1
    return out
