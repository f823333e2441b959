"""A room's bounded log of recent events, for exact resume.

Pure: the clock is passed in. The log is what numbers events: each appended event gets the next
``seq`` (1, 2, 3...), which nobody else computes, inside an ``epoch``, a random string that is
new whenever a log starts, so a client holding a seq of an earlier log can tell it no longer
applies.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from itertools import islice

import msgspec

from rtserver.protocol.codec import JSON, Outgoing
from rtserver.protocol.frames import RoomEvent
from rtserver.room.memory import MemoryBudget


class EventLog:
    """Recent room events, bounded by count, by age and by bytes.

    An event's size is twice its JSON encoding (which fan-out needs anyway for JSON clients):
    the encoding and the frame it was made from. With a ``budget``, the log also counts toward a
    total shared with the other rooms.
    """

    def __init__(
        self,
        *,
        max_events: int,
        max_age_s: float,
        clock: Callable[[], float],
        max_bytes: int | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.epoch = secrets.token_urlsafe(9)
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._max_bytes = max_bytes
        self._budget = budget
        self._clock = clock
        self._head = 0
        self._bytes = 0
        self._events: deque[tuple[float, Outgoing, int]] = deque()

    @property
    def head(self) -> int:
        """The seq of the newest event, 0 before the first."""
        return self._head

    @property
    def bytes(self) -> int:
        """The encoded size of the events kept."""
        return self._bytes

    def append(self, event: RoomEvent) -> Outgoing:
        """Number ``event`` with the next seq and keep it, dropping what is too old.

        ``event`` may carry any seq (0, say): the one it is kept with is the log's. The
        result, encoded once per codec, is what every participant is sent.
        """
        now = self._clock()
        self._head += 1
        seq = self._head
        if event.seq != seq:
            event = msgspec.structs.replace(event, seq=seq)
        out = Outgoing(event, (self.epoch, seq))
        # The frame and its JSON take about the same memory: count both.
        size = 2 * len(out.data(JSON))
        self._events.append((now, out, size))
        self._grow(size)
        events = self._events
        if len(events) > self._max_events:
            self.drop_oldest()
        horizon = now - self._max_age_s
        while events and events[0][0] < horizon:
            self.drop_oldest()
        if self._max_bytes is not None:
            while self._bytes > self._max_bytes and events:
                self.drop_oldest()
        if self._budget is not None:
            self._budget.wrote(self)
        return out

    def drop_oldest(self) -> None:
        """Forget the oldest event kept; a resume from before it gets a snapshot."""
        if self._events:
            _, _, size = self._events.popleft()
            self._grow(-size)

    def restart(self, epoch: str, head: int) -> None:
        """Stand at ``head`` of ``epoch``, keeping nothing: the log is a copy of one kept
        elsewhere (the Redis bus's), which numbers events; the next appended is ``head + 1``."""
        self.drop_all()
        self.epoch, self._head = epoch, head

    def drop_all(self) -> None:
        """Forget every event kept; the epoch and head stay, so later seqs still follow."""
        self._events.clear()
        self._grow(-self._bytes)

    def _grow(self, delta: int) -> None:
        self._bytes += delta
        if self._budget is not None:
            self._budget.changed(self, delta)

    def since(self, epoch: str, seq: int) -> list[Outgoing] | None:
        """Every event after ``seq`` of ``epoch``, oldest first, or None if any is gone."""
        if epoch != self.epoch or seq > self._head or seq < 0:
            return None
        missing = self._head - seq
        if missing > len(self._events):
            return None
        start = len(self._events) - missing
        return [event for _, event, _ in islice(self._events, start, None)]
