"""The WebSocket sink at a real socket: write-through, the drainer under backpressure, the close.

A small server upgrades each connection and attaches a :class:`SocketSink` to a real outbox,
serving it the way the WebSocket transport does (read until the socket closes or the outbox
does, then wait for the sink). The peer is a raw WebSocket client on a socket with small
buffers, so that a test decides when it reads, whether it answers a close, and how much it
writes while reading nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import WSMsgType, web

from rtserver.protocol.closecodes import CloseCode
from rtserver.room.outbox import Outbox
from rtserver.transports.ws_sink import SocketSink
from tests.conftest import ServedAsInProduction
from tests.support import eventually

#: Far longer than any test here: a close that waits for the peer's answer ends only by a cut.
WS_TIMEOUT = 60.0
#: Long enough never to cut a connection in a test that does not wait for the cut.
NO_CUT = 30.0
#: Short, for the tests that wait for the cut.
GRACE = 0.05
#: What the server's transport holds before it pauses: far more than the peer's buffers take,
#: so that what it holds when the outbox closes stays there until the peer reads.
HIGH_WATER = 256 * 1024
BUFFER = 4096
FRAME = 1000
#: A frame the server answers by closing the outbox, as it does when an answer overflows it.
CLOSE_ME = "close me"


@dataclass
class Served:
    """One connection as the server holds it."""

    ws: web.WebSocketResponse
    outbox: Outbox
    sink: SocketSink
    transport: asyncio.Transport
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Harness:
    """The server, the connections it serves (in order), and the peers that connected."""

    server: ServedAsInProduction
    served: asyncio.Queue[Served]
    peers: list[Peer] = field(default_factory=list)


@contextlib.asynccontextmanager
async def start(grace_s: float) -> AsyncIterator[Harness]:
    served: asyncio.Queue[Served] = asyncio.Queue()

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, timeout=WS_TIMEOUT)
        await ws.prepare(request)
        transport = request.transport
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        outbox = Outbox(max_bytes=1 << 30)
        sink = SocketSink(request, ws, outbox, binary=False, grace_s=grace_s)
        outbox.attach(sink)
        one = Served(ws, outbox, sink, transport)
        served.put_nowait(one)
        try:
            async for msg in ws:
                if outbox.closed:
                    break
                if msg.data == CLOSE_ME:
                    # As a frame whose answer overflows the outbox closes it, from this task.
                    outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer")
        finally:
            if not outbox.closed:
                outbox.close(CloseCode.NORMAL, "")
            await sink.finished()
            one.done.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = ServedAsInProduction(app, host="127.0.0.1", port=0)
    await server.start_server()
    harness = Harness(server, served)
    try:
        yield harness
    finally:
        # A connection a failed test left open would hold the server's shutdown for a minute.
        for peer in harness.peers:
            peer.close()
        await server.close()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with start(NO_CUT) as started:
        yield started


@pytest.fixture
async def cutting() -> AsyncIterator[Harness]:
    async with start(GRACE) as started:
        yield started


@pytest.fixture
async def cutting_at_once() -> AsyncIterator[Harness]:
    async with start(0.0) as started:
        yield started


class Peer:
    """A raw WebSocket client: reads only when told to, answers a close only when told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, harness: Harness) -> tuple[Peer, Served]:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", harness.server.port or 0))
        # A small stream buffer: the peer's side takes little before the server's pauses.
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        peer = cls(reader, writer)
        harness.peers.append(peer)
        async with asyncio.timeout(10):
            return peer, await harness.served.get()

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server: its opcode and payload."""
        first, length = await self.reader.readexactly(2)
        assert not length & 0x80, "a server frame is never masked"
        length &= 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def until_close(self, *, answer: bool) -> tuple[list[bytes], int, bytes]:
        """The text frames up to the close, and the close's code and reason."""
        texts: list[bytes] = []
        async with asyncio.timeout(10):
            while True:
                opcode, payload = await self.frame()
                if opcode == WSMsgType.CLOSE:
                    if answer:
                        self.send(WSMsgType.CLOSE, payload[:2])
                    (code,) = struct.unpack("!H", payload[:2])
                    return texts, code, payload[2:]
                assert opcode == WSMsgType.TEXT
                texts.append(payload)

    async def until_end(self) -> list[tuple[int, bytes]]:
        """Every frame up to the end of the connection (whole frames only)."""
        frames: list[tuple[int, bytes]] = []
        async with asyncio.timeout(10):
            while True:
                try:
                    frames.append(await self.frame())
                except (asyncio.IncompleteReadError, ConnectionError):
                    return frames

    def send(self, opcode: int, *payloads: bytes) -> None:
        """Client frames in one write, masked (with a zero key, which leaves them as they are)."""
        frames = []
        for payload in payloads:
            size = len(payload)
            if size < 126:
                head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
            else:
                head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
            frames.append(head + b"\0\0\0\0" + payload)
        self.writer.write(b"".join(frames))

    def close(self) -> None:
        self.writer.transport.abort()


def numbered(n: int) -> bytes:
    return f"{n:06d}".encode().ljust(FRAME, b".")


def fill(served: Served) -> int:
    """Put numbered frames until the socket pushes back and the outbox queues; their count."""
    n = 0
    while not served.outbox.backlog and n < 5000:
        served.outbox.put(numbered(n))
        n += 1
    assert served.outbox.backlog, "the socket never pushed back"
    return n


async def ended(served: Served) -> None:
    async with asyncio.timeout(10):
        await served.done.wait()


async def test_a_closed_outbox_sends_its_code_and_reason_and_finished_waits_for_it(
    harness: Harness,
) -> None:
    peer, served = await Peer.connect(harness)
    assert served.sink.ready()
    served.outbox.put(b'{"type":"pong"}')
    assert not served.outbox.backlog, "an idle socket is written through"
    served.outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and resume")
    await served.sink.finished()
    assert served.ws.closed, "the close frame went out before finished() returned"
    await served.sink.finished()  # and again, once there is no drainer left
    assert await peer.until_close(answer=True) == (
        [b'{"type":"pong"}'],
        CloseCode.SLOW_CONSUMER,
        b"slow consumer: reconnect and resume",
    )
    await ended(served)


async def test_a_frame_met_once_the_connection_is_closing_is_not_sent_and_the_outbox_is_lost(
    harness: Harness,
) -> None:
    peer, served = await Peer.connect(harness)
    # The server lets go of the connection (as the sink's own cut does), and a frame comes
    # before its WebSocket has noticed.
    served.transport.close()
    assert not served.sink.ready()
    served.outbox.put(b"late")
    await served.sink.finished()
    assert served.outbox.close_reason is not None
    assert served.outbox.close_reason.code == CloseCode.CONNECTION_LOST
    assert await peer.until_end() == [], "nothing was sent"
    await ended(served)


async def test_a_backlog_reaches_a_reader_that_comes_back_in_order_then_a_flushed_close(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    peer, served = await Peer.connect(harness)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        sent = fill(served)
        assert not served.sink.ready()
        for n in range(sent, sent + 5):
            assert served.outbox.put(numbered(n))
        served.outbox.close(CloseCode.GOING_AWAY, "server shutting down", flush=True)
        texts, code, reason = await peer.until_close(answer=True)
        await ended(served)
    assert texts == [numbered(n) for n in range(sent + 5)]
    assert (code, reason) == (CloseCode.GOING_AWAY, b"server shutting down")
    # A drain that ends is no error: nothing for an operator to see in the log.
    assert [r for r in caplog.records if r.name == "asyncio"] == []


async def test_an_outbox_closed_after_the_socket_drained_again_still_sends_its_close(
    harness: Harness,
) -> None:
    peer, served = await Peer.connect(harness)
    sent = fill(served)
    for n in range(sent):
        assert await peer.frame() == (WSMsgType.TEXT, numbered(n))
    # The drainer wrote its backlog (the last frames read) and has gone: a close starts anew.
    served.outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer")
    assert await peer.until_close(answer=True) == ([], CloseCode.SLOW_CONSUMER, b"slow consumer")
    await ended(served)


async def test_a_reader_that_lags_is_never_cut_while_its_outbox_is_open(
    cutting_at_once: Harness,
) -> None:
    peer, served = await Peer.connect(cutting_at_once)
    sent = fill(served)
    # A cut scheduled now would run on the loop's next turn, well before the peer reads.
    for n in range(sent):
        assert await peer.frame() == (WSMsgType.TEXT, numbered(n))
    assert not served.transport.is_closing()
    peer.close()
    await ended(served)


async def test_a_peer_that_stops_reading_is_cut_after_the_grace_once_its_outbox_closes(
    cutting: Harness,
) -> None:
    peer, served = await Peer.connect(cutting)
    fill(served)
    served.outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer")
    await ended(served)
    # The close frame sits behind what the transport holds, which the peer does not read: the
    # cut drops it all rather than keep the connection for as long as the peer likes.
    transport = served.transport
    await eventually(lambda: transport.get_write_buffer_size() == 0)
    frames = await peer.until_end()
    assert frames
    assert all(opcode == WSMsgType.TEXT for opcode, _ in frames), "no close frame came"


def close_me(peer: Peer) -> None:
    """Ask the server to close the outbox, and send a frame behind it in the same write.

    The server reads the second frame at once and so leaves its reading loop, as the transport
    does on its next frame once the outbox is closed: the close then waits for the peer.
    """
    peer.send(WSMsgType.TEXT, CLOSE_ME.encode(), b"next")


async def test_a_peer_that_reads_but_never_answers_the_close_is_cut_after_the_grace(
    cutting: Harness,
) -> None:
    peer, served = await Peer.connect(cutting)
    close_me(peer)
    assert (await peer.until_close(answer=False))[1] == CloseCode.SLOW_CONSUMER
    # Without the cut, the server would wait for the answer for WS_TIMEOUT.
    assert await peer.until_end() == []
    await ended(served)


async def test_a_peer_that_writes_without_reading_is_read_once_its_outbox_closes(
    harness: Harness,
) -> None:
    """Its frames are read and dropped until its answer to the close, so it is not blocked."""
    peer, served = await Peer.connect(harness)
    sent = fill(served)
    close_me(peer)
    # 15 MB: far more than the buffers between the two take (the kernels' and aiohttp's,
    # which reads a megabyte or so ahead of the handler before it stops reading).
    peer.send(WSMsgType.TEXT, *[b"p" * 60_000] * 256)
    transport = peer.writer.transport
    await eventually(lambda: transport.get_write_buffer_size() == 0)
    texts, code, _ = await peer.until_close(answer=True)
    assert code == CloseCode.SLOW_CONSUMER
    assert texts == [numbered(n) for n in range(len(texts))]
    assert len(texts) <= sent, "the backlog was dropped with the close"
    await ended(served)
