"""A participant's bounded queue of encoded frames, and the switch that mostly bypasses it.

Fan-out only ever calls :meth:`Outbox.put`, which never waits. With a :class:`Sink` attached
(a WebSocket's socket), a frame goes straight to the socket when nothing is queued and the
socket takes bytes without backpressure: one write, no task woken. Only under backpressure is
it queued, and the sink is told there is a backlog to drain. A participant that cannot keep up
fills its own outbox and is closed, while everyone else goes on.

Order holds across the switch: a frame is written through only while the queue is empty, and a
drainer takes the whole queue and writes it before it next waits, so no frame can pass one
queued before it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class OutboxClosed(Exception):
    """The outbox was closed; the connection should close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Sink(Protocol):
    """Where an outbox writes through to: one connection's socket."""

    def ready(self) -> bool:
        """True when a write now would go out without waiting (the socket is not paused)."""
        ...

    def write(self, data: bytes) -> None:
        """Write one frame, synchronously."""
        ...

    def wake(self) -> None:
        """There is a backlog to drain, or the outbox was closed: see to it."""
        ...


class Outbox:
    """Frames waiting for one participant's socket, bounded in bytes."""

    __slots__ = (
        "_bytes",
        "_closed",
        "_closed_event",
        "_items",
        "_max_bytes",
        "_preloaded",
        "_sink",
        "_waiter",
    )

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        #: None while nothing is queued (most of the time): an empty deque holds a 0.5 KB block.
        self._items: deque[bytes] | None = None
        self._bytes = 0
        #: How many items at the front were preloaded and so do not count toward the bound.
        self._preloaded = 0
        self._waiter: asyncio.Future[None] | None = None
        self._closed: OutboxClosed | None = None
        #: Made only when someone waits for the close: most connections never do.
        self._closed_event: asyncio.Event | None = None
        self._sink: Sink | None = None

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def close_reason(self) -> OutboxClosed | None:
        """Why the outbox was closed, once it is."""
        return self._closed

    @property
    def backlog(self) -> bool:
        """True while frames wait in the queue."""
        return bool(self._items)

    def attach(self, sink: Sink) -> None:
        """Write through to ``sink`` from now on whenever nothing is queued and it is ready."""
        self._sink = sink
        if self._items or self._closed is not None:
            sink.wake()

    def put(self, data: bytes, *, force: bool = False) -> bool:
        """Send or queue ``data``; False when closed or when it would pass the bound.

        ``force`` queues past the bound (heartbeats, which must not close a connection).
        """
        if self._closed is not None:
            return False
        sink = self._sink
        if sink is not None and not self._items and sink.ready():
            sink.write(data)
            return True
        size = len(data)
        if not force and self._bytes + size > self._max_bytes:
            return False
        self._queue().append(data)
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
        items = self._queue()
        if len(items) != self._preloaded or self._sink is not None:
            raise RuntimeError("preload must come before any other frame")
        items.append(data)
        self._preloaded += 1
        self._wake()

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Stop taking frames; the writer closes with ``code`` (after the queue, if ``flush``)."""
        if self._closed is not None:
            return
        self._closed = OutboxClosed(code, reason)
        if self._closed_event is not None:
            self._closed_event.set()
        if not flush:
            self._items = None
            self._bytes = 0
            self._preloaded = 0
        self._wake()

    async def wait_closed(self) -> None:
        """Return once the outbox is closed."""
        if self._closed is not None:
            return
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        await self._closed_event.wait()

    async def wait(self) -> None:
        """Return once something is queued; raises :class:`OutboxClosed` once closed and empty."""
        while not self._items:
            if self._closed is not None:
                raise self._closed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get(self) -> bytes:
        """The next frame; raises :class:`OutboxClosed` once closed and drained."""
        await self.wait()
        items = self._queue()
        data = items.popleft()
        if not items:
            self._items = None
        if self._preloaded:
            self._preloaded -= 1
        else:
            self._bytes -= len(data)
        return data

    def take_ready(self) -> list[bytes]:
        """Every frame queued now, oldest first, without waiting.

        A drainer writes all of them before it next waits: until then the queue looks empty,
        and a frame written through meanwhile would pass them.
        """
        items = list(self._items or ())
        self._items = None
        self._bytes = 0
        self._preloaded = 0
        return items

    def _queue(self) -> deque[bytes]:
        items = self._items
        if items is None:
            items = self._items = deque()
        return items

    def _wake(self) -> None:
        if self._sink is not None:
            self._sink.wake()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
