"""A WebSocket's socket as an outbox's :class:`~rtserver.room.outbox.Sink`.

Fan-out writes a frame straight to the transport (one ``write``: header and payload) while the
transport is not paused; under backpressure the outbox queues, and a drainer task, started only
then, writes the backlog in batches (one ``write`` per wake-up) as the socket drains, and ends
when the backlog is gone. An idle connection has no task of its own for writing.

The frame header is made here rather than by aiohttp's writer: aiohttp's ``send_frame`` is a
coroutine, and fan-out is synchronous. Server frames are never masked or compressed (the
WebSocket is opened with ``compress=False``), so the header is two, four or ten bytes.
"""

from __future__ import annotations

import asyncio
import struct
from contextlib import suppress

from aiohttp import WSMsgType, web

from rtserver.protocol.closecodes import CloseCode
from rtserver.room.outbox import Outbox

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def frame_header(opcode: int, length: int) -> bytes:
    """The header of one final, unmasked WebSocket frame of ``length`` payload bytes."""
    first = 0x80 | opcode
    if length < 126:
        return _SHORT.pack(first, length)
    if length < 65536:
        return _MEDIUM.pack(first, 126, length)
    return _LONG.pack(first, 127, length)


class SocketSink:
    """Writes one participant's frames to its WebSocket, draining its outbox under backpressure."""

    __slots__ = (
        "_cut",
        "_drainer",
        "_grace_s",
        "_interrupt",
        "_opcode",
        "_outbox",
        "_protocol",
        "_transport",
        "_ws",
    )

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        outbox: Outbox,
        *,
        binary: bool,
        grace_s: float,
    ) -> None:
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the connection is gone")
        self._transport = transport
        self._protocol = request.protocol
        self._ws = ws
        self._outbox = outbox
        self._opcode = WSMsgType.BINARY if binary else WSMsgType.TEXT
        self._grace_s = grace_s
        self._drainer: asyncio.Task[None] | None = None
        self._cut: asyncio.TimerHandle | None = None
        self._interrupt: asyncio.Future[None] | None = None

    def ready(self) -> bool:
        return not (
            self._protocol.writing_paused or self._ws.closed or self._transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        self._transport.write(frame_header(self._opcode, len(data)) + data)

    def wake(self) -> None:
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        if not self._outbox.closed:
            return
        interrupt = self._interrupt
        if interrupt is not None and not interrupt.done():
            interrupt.set_result(None)
        if self._cut is None:
            # A peer that stopped reading leaves the drainer waiting for the socket to drain,
            # where it would never get to send its close frame: the peer is gone for us, so
            # is its connection.
            loop = asyncio.get_running_loop()
            self._cut = loop.call_later(self._grace_s, self._cut_if_stuck)

    async def finished(self) -> None:
        """Return once the outbox is closed and its close frame sent (or the socket cut)."""
        while self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        try:
            await self._write_backlog()
        except ConnectionError:
            self._outbox.close(CloseCode.CONNECTION_LOST, "connection lost")
            # The outbox wakes this sink once more: the close below is then a no-op.
        finally:
            self._drainer = None

    async def _write_backlog(self) -> None:
        outbox = self._outbox
        while True:
            if outbox.backlog:
                if self._protocol.writing_paused:
                    await self._until_writable()
                    continue
                self._write_batch(outbox.take_ready())
                continue
            closed = outbox.close_reason
            if closed is None:
                return
            # Without waiting for the socket: a close that drops the queue (a slow consumer)
            # goes out behind what the transport holds. A peer that neither reads it nor
            # answers is cut when the grace period set up in wake() ends.
            with suppress(ConnectionError):
                reason = close_reason(closed.reason)
                await self._ws.close(code=closed.code, message=reason, drain=False)
            return

    async def _until_writable(self) -> None:
        """Wait until the socket drains, or the outbox closes (its close need not wait)."""
        loop = asyncio.get_running_loop()
        drained = loop.create_task(self._protocol._drain_helper())
        # Left to finish on its own when interrupted: cancelling it would cancel the
        # protocol's drain waiter, which other writers (aiohttp's pings) may share.
        drained.add_done_callback(_observe)
        self._interrupt = interrupt = loop.create_future()
        try:
            await asyncio.wait((drained, interrupt), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._interrupt = None
        if drained.done():
            drained.result()

    def _write_batch(self, batch: list[bytes]) -> None:
        if self._ws.closed or self._transport.is_closing():
            raise ConnectionResetError("the connection is closing")
        opcode = self._opcode
        parts: list[bytes] = []
        for data in batch:
            parts.append(frame_header(opcode, len(data)))
            parts.append(data)
        self._transport.write(b"".join(parts))

    def _cut_if_stuck(self) -> None:
        # Stuck either in the drainer, or in a transport closed with bytes it cannot send:
        # asyncio would keep that one open until the peer reads them.
        if self._drainer is not None or self._transport.get_write_buffer_size():
            self._transport.abort()


def _observe(task: asyncio.Task[None]) -> None:
    """Retrieve a finished drain's outcome, so that a lost connection is not logged as unseen."""
    if not task.cancelled():
        task.exception()


def close_reason(text: str) -> bytes:
    """``text`` cut to the 123 bytes a close frame holds, on a character boundary.

    Cut by characters instead, a reason quoting a client's non-ASCII text would make a close
    frame that every client must refuse as a protocol error.
    """
    return text.encode()[:123].decode(errors="ignore").encode()
