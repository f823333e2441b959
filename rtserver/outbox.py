"""A participant's bounded queue of encoded frames, drained by its connection's writer.

Fan-out only ever calls :meth:`Outbox.put`, which never waits: a participant that cannot keep up
fills its own outbox and is closed, while everyone else goes on.
"""

from __future__ import annotations

import asyncio
from collections import deque

SLOW_CONSUMER = 4000
GOING_AWAY = 1001


class OutboxClosed(Exception):
    """The outbox was closed; the connection should close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Outbox:
    """Frames waiting for one participant's socket, bounded in bytes."""

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: deque[bytes] = deque()
        self._bytes = 0
        #: How many items at the front were preloaded and so do not count toward the bound.
        self._preloaded = 0
        self._waiter: asyncio.Future[None] | None = None
        self._closed: OutboxClosed | None = None
        self._closed_event = asyncio.Event()

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def put(self, data: bytes, *, force: bool = False) -> bool:
        """Queue ``data``; False when closed or when it would pass the bound (unless ``force``)."""
        if self._closed is not None:
            return False
        size = len(data)
        if not force and self._bytes + size > self._max_bytes:
            return False
        self._items.append(data)
        self._bytes += size
        self._wake()
        return True

    def preload(self, data: bytes) -> None:
        """Queue ``data`` outside the bound, before any other frame: a joiner's welcome and replay.

        They must reach the participant whatever their size (a room's history may be larger
        than the bound); only what is queued after them measures how far it lags behind.
        """
        if self._closed is not None:
            return
        if len(self._items) != self._preloaded:
            raise RuntimeError("preload must come before any other frame")
        self._items.append(data)
        self._preloaded += 1
        self._wake()

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Stop taking frames; the writer closes with ``code`` (after the queue, if ``flush``)."""
        if self._closed is not None:
            return
        self._closed = OutboxClosed(code, reason)
        self._closed_event.set()
        if not flush:
            self._items.clear()
            self._bytes = 0
            self._preloaded = 0
        self._wake()

    async def wait_closed(self) -> None:
        """Return once the outbox is closed."""
        await self._closed_event.wait()

    async def get(self) -> bytes:
        """The next frame; raises :class:`OutboxClosed` once closed and drained."""
        while not self._items:
            if self._closed is not None:
                raise self._closed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._items.popleft()
        if self._preloaded:
            self._preloaded -= 1
        else:
            self._bytes -= len(data)
        return data

    def take_ready(self) -> list[bytes]:
        """Every frame queued now, oldest first, without waiting (none once closed)."""
        items = list(self._items)
        self._items.clear()
        self._bytes = 0
        self._preloaded = 0
        return items

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
