"""Clocks: where an event desk reads the time, so that tests can move it by hand."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from fairalloc.errors import EventError

__all__ = ["Clock", "ManualClock", "SystemClock", "aware"]


class Clock(Protocol):
    """Anything with a ``now()`` giving a time with a zone."""

    def now(self) -> dt.datetime:
        """The current time (with a zone)."""
        ...  # pragma: no cover - a protocol


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> dt.datetime:
        """The current time in UTC."""
        return dt.datetime.now(dt.UTC)


def aware(when: dt.datetime) -> dt.datetime:
    """``when`` in UTC; a time without a zone is refused (``FA885``)."""
    if when.tzinfo is None:
        raise EventError("FA885", f"time {when.isoformat()} has no zone: give it in UTC")
    return when.astimezone(dt.UTC)


class ManualClock:
    """A clock that moves only when told to: for tests, replays and simulated weeks.

    Args:
        start: The time it shows first (with a zone).

    Examples:
        >>> import datetime as dt
        >>> clock = ManualClock(dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC))
        >>> clock.advance(hours=49).isoformat()
        '2026-12-09T10:00:00+00:00'
    """

    def __init__(self, start: dt.datetime) -> None:
        self._now = aware(start)

    def now(self) -> dt.datetime:
        """The time it shows."""
        return self._now

    def set(self, when: dt.datetime) -> dt.datetime:
        """Move to ``when``; never backwards (``FA885``)."""
        when = aware(when)
        if when < self._now:
            raise EventError(
                "FA885", f"the clock cannot go back from {self._now.isoformat()} to {when}"
            )
        self._now = when
        return when

    def advance(self, **delta: float) -> dt.datetime:
        """Move forward by ``datetime.timedelta(**delta)`` (e.g. ``days=1``)."""
        return self.set(self._now + dt.timedelta(**delta))
