"""A room's bounded log of recent events, for exact resume.

Pure: the clock is passed in. The log numbers events with ``seq`` (1, 2, 3...) inside an
``epoch``, a random string that is new whenever a log starts, so a client holding a seq of an
earlier log can tell it no longer applies.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from itertools import islice

from rtserver.codec import Outgoing


class EventLog:
    """Recent room events, bounded by count and by age."""

    def __init__(self, *, max_events: int, max_age_s: float, clock: Callable[[], float]) -> None:
        self.epoch = secrets.token_urlsafe(9)
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._clock = clock
        self._head = 0
        self._events: deque[tuple[float, Outgoing]] = deque()

    @property
    def head(self) -> int:
        """The seq of the newest event, 0 before the first."""
        return self._head

    def next_seq(self) -> int:
        """The seq the next appended event must carry."""
        return self._head + 1

    def event_id(self, seq: int) -> str:
        """The ``epoch:seq`` name of an event, as SSE ids carry it."""
        return f"{self.epoch}:{seq}"

    def append(self, event: Outgoing) -> None:
        """Keep ``event``, which carries seq :meth:`next_seq`, dropping what is too old."""
        now = self._clock()
        self._head += 1
        self._events.append((now, event))
        events = self._events
        if len(events) > self._max_events:
            events.popleft()
        horizon = now - self._max_age_s
        while events and events[0][0] < horizon:
            events.popleft()

    def since(self, epoch: str, seq: int) -> list[Outgoing] | None:
        """Every event after ``seq`` of ``epoch``, oldest first, or None if any is gone."""
        if epoch != self.epoch or seq > self._head or seq < 0:
            return None
        missing = self._head - seq
        if missing > len(self._events):
            return None
        start = len(self._events) - missing
        return [event for _, event in islice(self._events, start, None)]
