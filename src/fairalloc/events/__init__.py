"""Event-driven operation: a community system's events, decided by the policy itself.

Residents apply and are reassessed, places fall free, offers are declined or lapse,
complaints are filed and their deadlines run, rotation rounds fall due. A :class:`Desk` holds
the pool's recorded state (the allocation decision re-run from the decision log, the offers,
the review cases, the rotations' states) and handles each event with the compiled policy and
the engine; its records go into the same decision log as every decision. An
:class:`EventLoop` plugs the desk into durable-rules (``pip install 'fairalloc[events]'``):
one rule per event type, and durable-rules' timer for the heartbeat in production.

Time comes from a :class:`Clock`: :class:`SystemClock` in production, :class:`ManualClock`
in tests and replays; deadlines are checked on each ``tick``. See ``docs/events.md``.

The desk needs nothing beyond fairalloc; only :class:`EventLoop` imports durable-rules, when
one is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairalloc.events._clock import Clock, ManualClock, SystemClock
from fairalloc.events._desk import EVENT_TYPES, Desk, Offer, Reply, record_time

if TYPE_CHECKING:
    from fairalloc.events._durable import EventLoop, ruleset_definition

__all__ = [
    "EVENT_TYPES",
    "Clock",
    "Desk",
    "EventLoop",
    "ManualClock",
    "Offer",
    "Reply",
    "SystemClock",
    "record_time",
    "ruleset_definition",
]


def __getattr__(name: str) -> Any:
    """Load the durable-rules glue on first use (``FA910`` when durable-rules is missing)."""
    if name in ("EventLoop", "ruleset_definition", "HEARTBEAT"):
        from fairalloc.events import _durable

        return getattr(_durable, name)
    raise AttributeError(f"module 'fairalloc.events' has no attribute {name!r}")
