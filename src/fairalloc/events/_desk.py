"""The desk: what the office does on each event, from the policy, the engine and the log.

The desk holds the pool's recorded state: the allocation decision it serves from (re-run from
the decision log, which checks the policy, the frozen list and the recorded outcome), the
waiting order that decision gave, the offers made since, the review cases and the rotations'
states. Each handler takes one event (a mapping with a ``type``) and returns one reply (a
plain, JSON-ready mapping); what a handler decides comes from the compiled policy and the
engine, never from a second copy of the rules. Time comes from a :class:`Clock`; deadlines
are checked when a ``tick`` event arrives, so the same code runs under the system clock and
under a clock a test moves by hand.

Nothing here imports durable-rules: :mod:`fairalloc.events._durable` builds the ruleset that
routes events to these handlers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairalloc._engine import evaluate_compiled
from fairalloc._population import Population
from fairalloc._ranking import _sort_keys, lottery_key
from fairalloc.allocation._capacity import reserve_order
from fairalloc.allocation._lottery import draw_key
from fairalloc.allocation._state import RotationState
from fairalloc.errors import EventError, PopulationError
from fairalloc.events._clock import Clock, SystemClock, aware
from fairalloc.policy._model import Policy
from fairalloc.records import DecisionLog, Opening, canonical, commit
from fairalloc.review import Case, answer_review, open_review, record_round

__all__ = ["EVENT_TYPES", "Desk", "Offer", "Reply", "record_time"]

#: A reply: plain values (str, int, float, bool, None, lists and mappings of them).
Reply = dict[str, Any]

#: The event types a desk handles, each with the handler's name.
EVENT_TYPES: dict[str, str] = {
    "application": "application",
    "place_freed": "place_freed",
    "offer_accepted": "offer_accepted",
    "offer_declined": "offer_declined",
    "offer_expired": "offer_expired",
    "complaint": "complaint",
    "complaint_answered": "complaint_answered",
    "case_overdue": "case_overdue",
    "round_due": "round_due",
    "tick": "tick",
}


def record_time(when: dt.datetime) -> str:
    """A time as the decision log records it (ISO 8601, UTC, ``Z``)."""
    return aware(when).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Offer:
    """A freed place offered to one resident.

    Attributes:
        number: The offer's number (1 for the first the desk made).
        resident: Who it is offered to.
        position: Their position in the decision's order (1 = first).
        place: The place, as the event named it.
        expires: When the offer lapses unless accepted.
        record: The ``events.offer`` record.
        state: ``open``, ``accepted``, ``declined`` or ``expired``.
    """

    number: int
    resident: str
    position: int
    place: str
    expires: dt.datetime
    record: int
    state: str = "open"
    category: str | None = None


@dataclass(slots=True)
class _Rotation:
    policy: Policy
    policy_record: int
    state: RotationState | None


def _field(event: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = event.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise EventError(
            "FA880",
            f"field {name!r} must be a {want}, got {value!r}",
            event=str(event.get("type")),
        )
    if isinstance(value, str) and not value:
        raise EventError("FA880", f"field {name!r} is empty", event=str(event.get("type")))
    return value


class Desk:
    """The office's event handlers over a recorded allocation decision.

    Args:
        log: The decision log (kept open by the caller).
        policy: The policy the decision applied (its hash must be the one registered).
        residents: The residents the decision applied to, exactly as frozen.
        decision: The ``decision`` record (an allocation) whose order serves freed places and
            whose cut-off applications are compared with.
        clock: Where the time comes from; the system clock by default.
        operator: Who appends the desk's records.
        offer_hours: How long an offer stays open before it lapses.

    Raises:
        EventError: ``FA884`` when the record is not an allocation decision.
        RecordsError: as :meth:`DecisionLog.decision` (another policy, other data, another
            outcome).
    """

    def __init__(
        self,
        log: DecisionLog,
        policy: Policy,
        residents: Any,
        *,
        decision: int,
        clock: Clock | None = None,
        operator: str = "event desk",
        offer_hours: int = 72,
    ) -> None:
        rec = log.record(decision)
        if rec.kind != "decision" or rec.body.get("kind") != "allocation":
            raise EventError(
                "FA884",
                f"record {decision} is not an allocation decision: the desk serves freed places"
                " from one",
            )
        if offer_hours < 1:
            raise EventError("FA880", f"offer_hours must be at least 1, got {offer_hours}")
        self.log = log
        self.policy = policy
        self.residents = residents
        self.decision = decision
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.operator = operator
        self.offer_hours = offer_hours
        recorded = log.decision(decision, policy, residents)
        self._record = recorded.record
        self.allocation = recorded.allocation
        ev = self.allocation.evaluation
        #: The compiled policy every verdict comes from: the decision's own (recorded seed,
        #: recorded as-of date).
        self.compiled = ev.policy
        order = self.allocation.order
        served = self.allocation.served
        self._waiting = [str(ev.id_column[r]) for r in order if not served[r]]
        self._position = {str(ev.id_column[r]): int(self.allocation.position[r]) for r in order}
        self._offered: set[str] = set()
        self._by_category = self._category_orders()
        self._cutoff: tuple[Any, ...] | None = None
        self._cutoff_id: str | None = None
        self._cutoff_score: float | None = None
        for cut in self.allocation.cutoffs():
            if cut.category == "open" and cut.last_id is not None and cut.used >= cut.size:
                row = ev.index_of(cut.last_id)
                self._cutoff = self._key(ev, row)
                self._cutoff_id, self._cutoff_score = cut.last_id, cut.score
        self.offers: dict[int, Offer] = {}
        self.cases: dict[str, Case] = {}
        self._flagged: set[str] = set()
        self._answered: set[str] = set()
        self._rotations: dict[str, _Rotation] = {}
        #: The latest application of each resident who applied through the desk.
        self.applications: dict[str, dict[str, Any]] = {}

    @property
    def waiting(self) -> list[str]:
        """The residents the decision left waiting and not offered a place yet, in order."""
        return [r for r in self._waiting if r not in self._offered]

    def _category_orders(self) -> dict[str, list[str]]:
        """For each reserve, its waiting residents in the order the mechanism serves it.

        Those eligible for the reserve and left waiting by the decision, by the reserve's own
        priority (highest first) where it has one, then the decision's base order, as the
        allocation took them.
        """
        alloc = self.allocation
        ev = alloc.evaluation
        spec = self.compiled.policy.allocation
        out: dict[str, list[str]] = {}
        if spec is None:
            return out
        order = alloc.order[~alloc.served[alloc.order]]
        for c, reserve in enumerate(spec.reserves):
            own = reserve_order(ev, spec, c, order[ev.reserve_eligible[order, c]])
            out[reserve.id] = [str(ev.id_column[r]) for r in own]
        return out

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, event: Mapping[str, Any]) -> Reply:
        """Handle one event (a mapping with a ``type`` of :data:`EVENT_TYPES`).

        Raises:
            EventError: ``FA880`` an event that is not a mapping with a known type, or a field
                missing or of the wrong kind; and as each handler.
        """
        return self.handler(event)(event)

    def handler(self, event: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Reply]:
        """The handler of ``event``'s type (``FA880`` for an unknown one)."""
        if not isinstance(event, Mapping):
            raise EventError("FA880", f"an event is a mapping with a 'type', got {event!r}")
        kind = event.get("type")
        name = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
        if name is None:
            raise EventError(
                "FA880",
                f"unknown event type {kind!r}; known: {', '.join(EVENT_TYPES)}",
            )
        handler: Callable[[Mapping[str, Any]], Reply] = getattr(self, name)
        return handler

    def _now(self) -> dt.datetime:
        return aware(self.clock.now())

    # -- applications --------------------------------------------------------------------------
    def _key(self, ev: Any, row: int) -> tuple[Any, ...]:
        """A resident's place in the mechanism's order (lower is better).

        Under priority: the ranking's own sort keys (score, tie-break chain), then the lottery
        key with the recorded seed. Under a lottery: the resident's draw (lowest first; for a
        weighted lottery from the key and the resident's weight), then the key, as
        :func:`~fairalloc.allocation._lottery.lottery_order` orders them.
        """
        spec = self.compiled.policy.allocation
        if self.allocation.mechanism == "lottery" and spec is not None and spec.lottery:
            weight = float(ev.lottery_weight[row]) if spec.lottery.weight is not None else None
            return draw_key(spec.lottery.seed, str(ev.id_column[row]), weight)
        keys = tuple(k[0].item() for k in _sort_keys(ev, np.array([row], dtype=np.intp)))
        seed = self.compiled.lottery_seed
        if seed is not None:
            keys += (lottery_key(seed, str(ev.id_column[row])),)
        return keys

    def application(self, event: Mapping[str, Any]) -> Reply:
        """An application received or updated (a reassessment): ``{"record": {...}}``.

        The record is validated against the policy's attributes and evaluated by the engine
        with the decision's compiled policy. The reply holds eligibility, the rules failed,
        the exclusion that applied, points per criterion, the score, and the standing against
        the last recorded cut-off: ``above``, ``below`` or ``at`` the cut-off (by the ranking's
        score and tie-break chain, lottery key last; under a lottery mechanism, by the draw
        under the recorded seed), ``places left`` when the decision left open places, or
        ``not eligible``. Neither an
        application nor a reassessment changes the recorded order: they count at the next
        recorded decision.

        Raises:
            EventError: ``FA880`` no record; ``FA881`` a record that does not fit the policy
                (the population error is the cause).
        """
        record = _field(event, "record", Mapping)
        try:
            one = Population.of([dict(record)], self.policy)
        except PopulationError as e:
            raise EventError(
                "FA881", f"the record does not fit the policy: {e}", event="application"
            ) from e
        ev = evaluate_compiled(self.compiled, one)
        verdict = ev.record(0)
        rid = verdict["id"]
        self.applications[rid] = dict(record)
        return {
            "type": "verdict",
            **verdict,
            "standing": self._standing(ev, 0),
            "cutoff_score": self._cutoff_score,
        }

    def _standing(self, ev: Any, row: int) -> str:
        if not bool(ev.eligible[row]):
            return "not eligible"
        if self._cutoff is None:
            return "places left"
        mine = self._key(ev, row)
        if mine < self._cutoff:
            return "above"
        return "below" if mine > self._cutoff else "at"

    # -- freed places and offers ---------------------------------------------------------------
    def place_freed(self, event: Mapping[str, Any]) -> Reply:
        """A place fell free: ``{"place": "unit 12"}``, or ``{"place": ..., "category": ...}``.

        It is offered to the next resident who has not been offered a place yet, and the offer
        is recorded (``events.offer``). A place of a reserve (``category``, one of the
        decision's categories) goes as the mechanism gives that reserve's units: to the next
        resident eligible for it, by its own priority where it has one, then the decision's
        order; when nobody eligible for it waits, the policy's ``unused_reserved`` says what
        happens (``open``: the next resident in the decision's order; ``lapse``: nobody). A
        place of the open category, or with no category, goes by the decision's order.

        Raises:
            EventError: ``FA889`` a category the decision does not have.
        """
        place = _field(event, "place", str)
        category = event.get("category")
        if category is not None and category not in self.allocation.categories:
            raise EventError(
                "FA889",
                f"the decision has no category {category!r}; its categories: "
                + ", ".join(self.allocation.categories),
                event="place_freed",
            )
        return self._offer_next(place, because="place freed", previous=None, category=category)

    def _next_for(self, category: str | None) -> str | None:
        """The next resident not offered a place yet for a place of ``category``."""
        if category is not None and category in self._by_category:
            for resident in self._by_category[category]:
                if resident not in self._offered:
                    return resident
            spec = self.compiled.policy.allocation
            if spec is not None and spec.unused_reserved == "lapse":
                return None
        for resident in self._waiting:
            if resident not in self._offered:
                return resident
        return None

    def _offer_next(
        self,
        place: str,
        *,
        because: str,
        previous: Offer | None,
        category: str | None = None,
    ) -> Reply:
        resident = self._next_for(category)
        if resident is not None:
            self._offered.add(resident)
            return self._make_offer(
                resident, place, because=because, previous=previous, category=category
            )
        reply: Reply = {"type": "nobody_waiting", "place": place, "because": because}
        if category is not None:
            reply["category"] = category
        return reply

    def _make_offer(
        self,
        resident: str,
        place: str,
        *,
        because: str,
        previous: Offer | None,
        category: str | None = None,
    ) -> Reply:
        now = self._now()
        number = len(self.offers) + 1
        expires = now + dt.timedelta(hours=self.offer_hours)
        position = self._position[resident]
        nonces, leaves = commit(
            [canonical({"id": resident, "offer": number, "position": position})]
        )
        body = {
            "because": because,
            "category": category,
            "decision": self._record.hash,
            "decision_record": self._record.seq,
            "expires": record_time(expires),
            "offer": number,
            "place": place,
            "position": position,
            "previous": previous.record if previous is not None else None,
            "resident_commitment": leaves[0].hex(),
        }
        rec = self.log.append(
            "events.offer",
            body,
            operator=self.operator,
            time=record_time(now),
            leaves=leaves,
            opening=Opening([resident], nonces),
        )
        offer = Offer(number, resident, position, place, expires, rec.seq, category=category)
        self.offers[number] = offer
        return {
            "type": "offer",
            "offer": number,
            "resident": resident,
            "position": position,
            "place": place,
            "category": category,
            "expires": record_time(expires),
            "because": because,
            "record": rec.seq,
        }

    def _open_offer(self, event: Mapping[str, Any]) -> Offer:
        number = _field(event, "offer", int)
        offer = self.offers.get(number)
        if offer is None or offer.state != "open":
            state = "no such offer" if offer is None else f"it is {offer.state}"
            raise EventError(
                "FA882", f"offer {number} is not open: {state}", event=str(event.get("type"))
            )
        return offer

    def _close(self, offer: Offer, outcome: str) -> int:
        now = self._now()
        offer.state = outcome
        rec = self.log.append(
            "events.offer_closed",
            {"offer": offer.number, "offer_record": offer.record, "outcome": outcome},
            operator=self.operator,
            time=record_time(now),
        )
        return rec.seq

    def offer_accepted(self, event: Mapping[str, Any]) -> Reply:
        """The resident took the place offered: ``{"offer": 3}`` (recorded)."""
        offer = self._open_offer(event)
        seq = self._close(offer, "accepted")
        return {
            "type": "offer_closed",
            "offer": offer.number,
            "resident": offer.resident,
            "outcome": "accepted",
            "record": seq,
        }

    def offer_declined(self, event: Mapping[str, Any]) -> Reply:
        """The resident declined: ``{"offer": 3}``; the place goes to the next resident."""
        return self._pass_on(self._open_offer(event), "declined")

    def offer_expired(self, event: Mapping[str, Any]) -> Reply:
        """The offer lapsed (posted by a ``tick`` past its expiry): the next resident."""
        offer = self._open_offer(event)
        if self._now() < offer.expires:
            raise EventError(
                "FA882",
                f"offer {offer.number} is open until {record_time(offer.expires)}",
                event="offer_expired",
            )
        return self._pass_on(offer, "expired")

    def _pass_on(self, offer: Offer, outcome: str) -> Reply:
        seq = self._close(offer, outcome)
        reply = self._offer_next(
            offer.place,
            because=f"offer {offer.number} {outcome}",
            previous=offer,
            category=offer.category,
        )
        return {
            "type": "offer_closed",
            "offer": offer.number,
            "resident": offer.resident,
            "outcome": outcome,
            "record": seq,
            "next": reply,
        }

    # -- complaints --------------------------------------------------------------------------
    def complaint(self, event: Mapping[str, Any]) -> Reply:
        """A complaint about the decision: opens a review case (``review.opened``).

        ``{"case": "2026-R-0031", "resident": "R0000172", "grounds": "...",
        "corrections": {"adl_score": [10, "assessment report 2026-118"]}}``; filed today. The
        deadline is the policy's (``review.deadline_days``); a ``tick`` after it, while the
        case is unanswered, posts ``case_overdue``.

        Raises:
            ReviewError: as :func:`~fairalloc.review.open_review`.
        """
        case_id = _field(event, "case", str)
        resident = _field(event, "resident", str)
        grounds = _field(event, "grounds", str)
        raw = event.get("corrections") or {}
        if not isinstance(raw, Mapping):
            raise EventError(
                "FA880", "corrections map an attribute to [value, evidence]", event="complaint"
            )
        corrections: dict[str, tuple[Any, str]] = {}
        for name, pair in raw.items():
            if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
                raise EventError(
                    "FA880", f"correction {name!r} is not [value, evidence]", event="complaint"
                )
            corrections[str(name)] = (pair[0], str(pair[1]))
        now = self._now()
        case = open_review(
            self.log,
            self.decision,
            self.policy,
            self.residents,
            case_id=case_id,
            resident=resident,
            grounds=grounds,
            corrections=corrections,
            filed=now.date(),
            operator=self.operator,
            time=record_time(now),
        )
        self.cases[case.id] = case
        return {"type": "case_opened", "case": case.id, "deadline": case.deadline.isoformat()}

    def complaint_answered(self, event: Mapping[str, Any]) -> Reply:
        """Answer a case today: ``{"case": "2026-R-0031", "lang": "en"}`` (``review.answered``).

        The decision is replayed with the corrections (:func:`~fairalloc.review.answer_review`).
        """
        case_id = _field(event, "case", str)
        case = self.cases.get(case_id)
        if case is None:
            raise EventError("FA882", f"no case {case_id!r} was opened here", event="complaint")
        lang = event.get("lang", "en")
        now = self._now()
        finding = answer_review(
            self.log,
            case,
            self.policy,
            self.residents,
            on=now.date(),
            operator=self.operator,
            lang=str(lang),
            time=record_time(now),
        )
        self.cases[case_id] = finding.case
        self._answered.add(case_id)
        return {
            "type": "case_answered",
            "case": case_id,
            "late": finding.case.late,
            "changed": finding.changed,
            "remedy": str(finding.remedy),
            "answer": finding.for_complainant(),
        }

    def case_overdue(self, event: Mapping[str, Any]) -> Reply:
        """A case passed its deadline unanswered (posted by a ``tick``): ``{"case": ...}``.

        Recorded (``events.overdue``), so that the published log shows it.
        """
        case_id = _field(event, "case", str)
        case = self.cases.get(case_id)
        if case is None:
            raise EventError("FA882", f"no case {case_id!r} was opened here", event="case_overdue")
        today = self._now().date()
        if case.state(today) != "overdue":
            raise EventError(
                "FA882", f"case {case_id} is {case.state(today)}, not overdue", event="case_overdue"
            )
        opened = [
            r
            for r in self.log.records()
            if r.kind == "review.opened" and r.body.get("case") == case_id
        ]
        now = self._now()
        rec = self.log.append(
            "events.overdue",
            {
                "case": case_id,
                "deadline": case.deadline.isoformat(),
                "noticed": today.isoformat(),
                "opened": opened[-1].hash,
                "opened_record": opened[-1].seq,
            },
            operator=self.operator,
            time=record_time(now),
        )
        self._flagged.add(case_id)
        return {
            "type": "case_overdue",
            "case": case_id,
            "deadline": case.deadline.isoformat(),
            "record": rec.seq,
        }

    # -- time ------------------------------------------------------------------------------------
    def due(self) -> list[dict[str, Any]]:
        """The events the passing of time makes due now: lapsed offers, overdue cases."""
        now = self._now()
        out: list[dict[str, Any]] = [
            {"type": "offer_expired", "offer": o.number}
            for o in self.offers.values()
            if o.state == "open" and now >= o.expires
        ]
        out += [
            {"type": "case_overdue", "case": cid}
            for cid, case in sorted(self.cases.items())
            if cid not in self._flagged and case.state(now.date()) == "overdue"
        ]
        return out

    def tick(self, event: Mapping[str, Any]) -> Reply:
        """Time passed: ``{}``.

        The reply lists the events now due (``follow``), which the event loop posts in turn.
        """
        follow = self.due()
        for f in follow:
            if f["type"] == "case_overdue":
                self._flagged.add(f["case"])  # raised once
        return {"type": "tick", "now": record_time(self._now()), "follow": follow}

    # -- rotation rounds -------------------------------------------------------------------------
    def add_rotation(
        self, policy: Policy, *, policy_record: int, state: RotationState | None = None
    ) -> None:
        """Let ``round_due`` events run rounds of ``policy``'s rotation.

        Args:
            policy: A rotation policy registered in the log.
            policy_record: Its ``policy`` record.
            state: The state the log's last round of it left (none before the first round).
        """
        self._rotations[policy.policy.id] = _Rotation(policy, policy_record, state)

    def rotation_state(self, rotation: str) -> RotationState | None:
        """The state the last round of ``rotation`` left (keep it with the office's files)."""
        found = self._rotations.get(rotation)
        return found.state if found is not None else None

    def round_due(self, event: Mapping[str, Any]) -> Reply:
        """The next round of a rotation is due.

        ``{"rotation": "activity-places", "residents": [{...}, ...], "public_randomness":
        "..."}``: the residents present are frozen, the seed derived from the public value
        after the freeze, and the round run from the state the last round left and recorded
        (:func:`~fairalloc.review.record_round`).

        Raises:
            EventError: ``FA884`` a rotation not added with :meth:`add_rotation`.
        """
        name = _field(event, "rotation", str)
        rot = self._rotations.get(name)
        if rot is None:
            raise EventError(
                "FA884", f"no rotation {name!r} was added to the desk", event="round_due"
            )
        residents = _field(event, "residents", list)
        public = _field(event, "public_randomness", str)
        now = self._now()
        when = record_time(now)
        try:
            present = Population.of([dict(r) for r in residents], rot.policy)
        except (PopulationError, TypeError, ValueError) as e:
            raise EventError(
                "FA881", f"the residents do not fit the policy: {e}", event="round_due"
            ) from e
        f = self.log.freeze(
            rot.policy_record, present, policy=rot.policy, operator=self.operator, time=when
        )
        s = self.log.draw_seed(
            f.seq,
            public_randomness=public,
            how="public value given with the round_due event",
            operator=self.operator,
            time=when,
        )
        rnd, rec = record_round(
            self.log,
            rot.policy,
            present,
            freeze=f.seq,
            seed=s.seq,
            state=rot.state,
            operator=self.operator,
            as_of=now.date(),
            time=when,
        )
        rot.state = rnd.state
        return {
            "type": "round",
            "rotation": name,
            "round": rnd.round,
            "served": list(rnd.served),
            "record": rec.seq,
            "freeze": f.seq,
            "seed": s.seq,
        }
