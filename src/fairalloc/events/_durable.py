"""The durable-rules ruleset that routes events to a :class:`~fairalloc.events.Desk`.

durable-rules 2.0.28 is used in the one way found safe (see ``docs/events.md``):

* **one thread.** Its ``Host`` starts two background threads that run actions and timers
  while the caller posts, on the same engine handle and without a lock: with actions that
  delete their session's state this crashes the process (a segmentation fault within
  seconds), and actions would run on another thread than the one that opened the decision
  log. :class:`EventLoop` uses a host that starts no thread: timers are dispatched by
  :meth:`EventLoop.pump`, called by the thread that posts.
* **one event per post, one session.** ``post_batch`` over several sessions runs
  synchronously the actions of one session only; the others wait for the background thread,
  or run inside a later, unrelated post to their session; within a session a batch's actions
  run last event first. :meth:`EventLoop.post_many` posts events one by one, all to one
  session, and every post checks that the action of that event, and of no other, ran exactly
  once (``FA888`` otherwise).
* **errors surface.** An exception in an action is caught by durable-rules and written into
  the session's state, and the post returns normally. The loop's actions catch their own
  errors and :meth:`EventLoop.post` raises them in the caller's thread.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fairalloc._optional import require
from fairalloc.errors import EventError, MissingDependency
from fairalloc.events._desk import EVENT_TYPES, Desk, Reply

__all__ = ["HEARTBEAT", "SESSION", "EventLoop", "ruleset_definition"]

#: The name of the durable-rules timer that wakes the loop in production.
HEARTBEAT = "fairalloc.heartbeat"
#: The one durable-rules session all events go to (so nothing depends on batch semantics).
SESSION = "desk"


def _engine() -> Any:
    """durable-rules' engine module.

    ``FA910`` when it is not installed, ``FA886`` when it is installed but does not import
    (its C extension on a Python it was not built for).
    """
    try:
        return require("durable.engine", extra="events", feature="event-driven operation")
    except MissingDependency:
        raise
    except ImportError as e:
        raise EventError(
            "FA886",
            f"durable-rules is installed but does not import on Python"
            f" {sys.version_info.major}.{sys.version_info.minor} ({e}): its last release"
            " supports Python 3.11 and 3.12; run the event loop there (the desk itself works"
            " everywhere)",
        ) from e


def ruleset_definition(
    actions: Mapping[str, Callable[[Any], None]], *, heartbeat: Callable[[Any], None] | None
) -> dict[str, Any]:
    """The durable-rules ruleset, in its JSON form.

    One rule per event type, matching ``m.type``, and one on the heartbeat timer.

    Args:
        actions: The action of each event type.
        heartbeat: The action run when the heartbeat timer fires.
    """
    rules: dict[str, Any] = {
        f"on_{kind}": {"all": [{"m": {"type": kind}}], "run": actions[kind]} for kind in EVENT_TYPES
    }
    if heartbeat is not None:
        rules["on_heartbeat"] = {"all": [{"m": {"$timerName": HEARTBEAT}}], "run": heartbeat}
    return rules


class EventLoop:
    """A durable-rules host whose rules hand each event to a desk, and return its reply.

    Args:
        desk: The desk that decides.
        name: The ruleset's name in the host.

    Raises:
        MissingDependency: ``FA910`` when durable-rules is not installed
            (``pip install 'fairalloc[events]'``).
        EventError: ``FA886`` when it is installed but does not import on this Python.

    Examples:
        Post events one at a time; each returns the replies of the event and of the events
        it made due (a ``tick`` posts the offers that lapsed and the cases now overdue)::

            loop = EventLoop(desk)
            loop.post({"type": "application", "record": {...}})
            loop.post({"type": "place_freed", "place": "unit 12"})
            clock.advance(days=4)
            loop.tick()
    """

    def __init__(self, desk: Desk, *, name: str = "fairalloc") -> None:
        engine = _engine()

        class _Host(engine.Host):  # type: ignore[misc, name-defined]
            def _run(self) -> None:
                """Start no dispatch thread: the loop's owner pumps timers itself."""

        self.desk = desk
        self.name = name
        self._ids = itertools.count(1)
        self._owner = threading.get_ident()
        self._replies: list[Reply] = []
        self._errors: list[BaseException] = []
        self._ran: list[str] = []  # ids of the events whose action ran
        self._actions = 0  # actions run, heartbeats included
        self._heartbeat: float | None = None
        self._beats = 0
        actions = {kind: self._action(kind) for kind in EVENT_TYPES}
        self._host = _Host()
        self._host.register_rulesets(
            {name: ruleset_definition(actions, heartbeat=self._on_heartbeat)}
        )
        self._rules = self._host.get_ruleset(name)

    # -- actions ---------------------------------------------------------------------------------
    def _action(self, kind: str) -> Callable[[Any], None]:
        def run(c: Any) -> None:
            self._actions += 1
            self._ran.append(str(c.m._d.get("id")))
            try:
                event = {k: v for k, v in c.m._d.items() if k not in ("id", "sid")}
                self._replies.append(self.desk.handler(event)(event))
            except BaseException as e:  # raised again by post(), in the caller's thread
                self._errors.append(e)

        run.__name__ = f"on_{kind}"
        return run

    def _on_heartbeat(self, c: Any) -> None:
        self._actions += 1
        self._beats += 1
        try:
            self._replies.append(self.desk.tick({"type": "tick"}))
        except BaseException as e:
            self._errors.append(e)

    # -- posting ---------------------------------------------------------------------------------
    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise EventError(
                "FA887",
                "events are posted by the thread that made the loop: durable-rules' engine"
                " is not safe to share between threads",
            )

    def _collect(self, expected: list[str], kind: str) -> list[Reply]:
        """The replies of the actions just run, after checking which ran."""
        ran, self._ran = self._ran, []
        replies, self._replies = self._replies, []
        if self._errors:
            error, self._errors = self._errors[0], []
            raise error
        if ran != expected:
            raise EventError(
                "FA888",
                f"durable-rules ran the actions of events {ran} where {expected} were expected",
                event=kind,
            )
        return replies

    def _restart_heartbeat(self) -> None:
        if self._beats and self._heartbeat is not None:
            # Restarted once the actions are done, never inside its own action: a timer
            # restarted in its action with a short period fires again in the same dispatch.
            self._rules.start_timer(SESSION, HEARTBEAT, self._heartbeat, manual_reset=False)
        self._beats = 0

    def _post_one(self, event: Mapping[str, Any]) -> list[Reply]:
        self.desk.handler(event)  # FA880 for what no rule would match
        message = {**event, "id": f"e{next(self._ids)}", "sid": SESSION}
        state = self._host.post(self.name, message)
        kind = str(event.get("type"))
        replies = self._collect([message["id"]], kind)
        if isinstance(state, Mapping) and "exception" in state:
            raise EventError("FA888", f"durable-rules reported {state['exception']!r}", event=kind)
        return replies

    def _post_all(self, first: list[Reply]) -> list[Reply]:
        """``first``, then the replies of the events they made due, in order."""
        out: list[Reply] = []
        queue = list(first)
        while queue:
            reply = queue.pop(0)
            out.append(reply)
            for follow in reply.get("follow", ()):
                queue += self._post_one(follow)
        return out

    def post(self, event: Mapping[str, Any]) -> list[Reply]:
        """Post one event; return its reply, then the replies of the events it made due.

        A heartbeat timer that is due may fire during the post: its tick's reply is among
        those returned.

        Raises:
            EventError: ``FA880`` an unknown type or a malformed event, ``FA887`` a post from
                another thread than the loop's, ``FA888`` when durable-rules did not run the
                event's action exactly once, or ran another event's; and whatever the desk's
                handler raised.
        """
        self._check_thread()
        try:
            return self._post_all(self._post_one(event))
        finally:
            self._restart_heartbeat()

    def post_many(self, events: Iterable[Mapping[str, Any]]) -> list[list[Reply]]:
        """Post events in order, one post each (never durable-rules' ``post_batch``)."""
        return [self.post(e) for e in events]

    def tick(self) -> list[Reply]:
        """Post a ``tick``: the desk reads its clock and the events now due are posted."""
        return self.post({"type": "tick"})

    # -- durable-rules' own timers (production) -------------------------------------------------
    def start_heartbeat(self, seconds: float) -> None:
        """Start durable-rules' timer that posts a ``tick`` every ``seconds``.

        The timer fires when :meth:`pump` runs (the host starts no thread of its own): call
        it from the loop's thread, for example once a second between incoming events.
        """
        self._check_thread()
        if seconds < 0:
            raise EventError("FA880", f"a heartbeat of {seconds} seconds")
        self._heartbeat = seconds
        self._rules.start_timer(SESSION, HEARTBEAT, seconds, manual_reset=False)

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat timer."""
        self._heartbeat = None
        self._rules.cancel_timer(SESSION, HEARTBEAT)

    def pump(self) -> list[Reply]:
        """Fire durable-rules' timers that are due and run their actions, in this thread.

        Returns:
            The replies of the ticks the timers posted, and of the events those made due.
        """
        self._check_thread()
        try:
            self._rules.dispatch_timers()
            first: list[Reply] = []
            while True:
                before = self._actions
                self._rules.dispatch()
                if self._actions == before:
                    break
                first += self._collect([], "tick")
            return self._post_all(first)
        finally:
            self._restart_heartbeat()
