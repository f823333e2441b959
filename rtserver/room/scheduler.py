"""The room's clock for timers, as a seam: the event loop in the server, a manual one in tests.

The room and its token coalescer never touch the event loop themselves; they ask a
:class:`Scheduler` for the time and for a callback later. :class:`ManualScheduler` runs those
callbacks when a test advances it, so a room can be driven with no loop at all.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from itertools import count
from typing import Protocol


class Timer(Protocol):
    """A callback waiting to run; cancelling it means it never does."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Time and timers."""

    def now(self) -> float:
        """Seconds on the clock the timers run on."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once ``delay`` seconds have passed."""
        ...


class LoopScheduler:
    """The running event loop's clock and timers."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


LOOP = LoopScheduler()


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """A clock that moves only when told to, running the callbacks that fall due."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._order = count()
        self._due: list[tuple[float, int, _ManualTimer]] = []

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(callback)
        heapq.heappush(self._due, (self._now + max(0.0, delay), next(self._order), timer))
        return timer

    @property
    def pending(self) -> int:
        """How many timers wait, not counting cancelled ones."""
        return sum(1 for _, _, timer in self._due if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``, running every timer due by then, in time order."""
        until = self._now + seconds
        while self._due and self._due[0][0] <= until:
            at, _, timer = heapq.heappop(self._due)
            self._now = at
            if not timer.cancelled:
                timer.callback()
        self._now = until
