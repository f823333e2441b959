"""One frame for every participant of a big room, written a slice per event-loop turn.

A room event goes to everyone at once (its seq orders it; the fan-out is the token path). A
frame without a seq, a ``presence_diff``, need not: in a room of 5,000 it is 5,000 socket
writes, 20 to 80 ms with the loop held, and during a join storm one goes out every second. Sent
a slice at a time, with the loop free between slices, the other rooms' frames wait behind
one slice at most.

Each participant still gets the frames in the order they were sent: a frame starts going out
once the one before it has reached everyone. A participant gets a frame only if it was in the
room when the frame was made (one who joined since had the newer state in its welcome) and is
still there when its slice goes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from rtserver.protocol.codec import Outgoing
from rtserver.room.member import Member
from rtserver.room.scheduler import Scheduler, Timer

#: Writes per loop turn: about 0.2 ms of the loop on the reference machine (64 took 0.9 ms,
#: the longest turn of a join storm after the set-ups were gated).
SLICE: Final = 16


class Spreader:
    """Sends frames to lists of members, ``per_turn`` members per event-loop turn.

    The next slice is a timer of no delay on ``scheduler``: on the event loop, the next turn.
    """

    __slots__ = ("_handle", "_is_here", "_on_slow", "_per_turn", "_queue", "_scheduler")

    def __init__(
        self,
        *,
        is_here: Callable[[Member], bool],
        on_slow: Callable[[Member], None],
        scheduler: Scheduler,
        per_turn: int = SLICE,
    ) -> None:
        self._is_here = is_here
        self._on_slow = on_slow
        self._scheduler = scheduler
        self._per_turn = per_turn
        #: Frames still going out, each with the members it has yet to reach.
        self._queue: deque[tuple[Outgoing, deque[Member]]] = deque()
        self._handle: Timer | None = None

    @property
    def busy(self) -> bool:
        """True while a frame has members left to reach."""
        return bool(self._queue)

    def send(self, out: Outgoing, members: Sequence[Member]) -> None:
        """Send ``out`` to ``members``: the first slice now, the rest on later loop turns."""
        self._queue.append((out, deque(members)))
        if len(self._queue) == 1:
            self._send_slice()

    def cancel(self) -> None:
        """Send nothing more (the room is closing)."""
        self._queue.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _send_slice(self) -> None:
        self._handle = None
        budget = self._per_turn
        while budget > 0 and self._queue:
            out, members = self._queue[0]
            if not members:
                self._queue.popleft()
                continue
            member = members.popleft()
            if not self._is_here(member):
                continue
            budget -= 1
            # A slow member leaves, which may close the room (and cancel this) from inside.
            if not member.send(out):
                self._on_slow(member)
        if self._queue and self._handle is None:
            self._handle = self._scheduler.call_later(0.0, self._send_slice)
