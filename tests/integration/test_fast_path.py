"""The fast token path at real sockets: one write per delivered frame, and coalesced tokens.

Write-through: a participant that reads along gets each frame in exactly one ``write`` of the
server's transport. Coalescing (``[limits] token_flush_ms``): a fast stream's token frames carry
several tokens, never two streams, with contiguous seqs, and snapshots and resumes taken in the
middle add up to the full text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits, ModelSpec
from rtserver.transports.ws_sink import SocketSink
from tests.conftest import ServerFactory, ws_url
from tests.integration.room_view import RoomView
from tests.integration.test_resume import drop, view_of
from tests.support import RoomClient, fast_settings, is_type

FAST = (
    ModelSpec(id="fast", provider="demo", tokens_per_s=400, first_token_s=0.01, default=True),
    ModelSpec(id="faster", provider="demo", tokens_per_s=600, first_token_s=0.01),
)


class CountingWrites:
    """Wraps every server-side transport's ``write``, recording what each call wrote."""

    def __init__(self, server: TestServer) -> None:
        runner = server.runner
        assert runner is not None
        assert runner.server is not None
        self.writes: list[bytes] = []
        self._transports: list[Any] = []
        for handler in runner.server.connections:
            transport = handler.transport
            assert transport is not None
            self._wrap(transport)

    def _wrap(self, transport: Any) -> None:
        original: Callable[[bytes], None] = transport.write

        def write(data: bytes) -> None:
            self.writes.append(bytes(data))
            original(data)

        transport.write = write
        self._transports.append(transport)

    def undo(self) -> None:
        for transport in self._transports:
            del transport.write


def websocket_frames(data: bytes) -> list[bytes]:
    """The payloads of the unmasked WebSocket frames that ``data`` holds, whole frames only."""
    payloads = []
    at = 0
    while at < len(data):
        length = data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length = int.from_bytes(data[at : at + 2], "big")
            at += 2
        elif length == 127:
            length = int.from_bytes(data[at : at + 8], "big")
            at += 8
        payloads.append(data[at : at + length])
        at += length
    assert at == len(data), "a write ended in the middle of a frame"
    return payloads


async def test_each_frame_to_a_reading_participant_is_one_socket_write(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wakes: list[SocketSink] = []
    wake = SocketSink.wake

    def counted_wake(sink: SocketSink) -> None:
        wakes.append(sink)
        wake(sink)

    monkeypatch.setattr(SocketSink, "wake", counted_wake)
    settings = fast_settings(db_path, models=FAST, limits=Limits(token_flush_ms=0))
    server = await start_server(settings)
    reader = await RoomClient.connect(http, ws_url(server), name="reader")
    await reader.wait_for(is_type("presence_diff"))
    before = len(reader.frames)
    wakes.clear()
    counting = CountingWrites(server)
    try:
        await reader.send({"type": "prompt", "id": "p1", "text": "one write per frame"})
        start = await reader.wait_for(is_type("stream_start"))
        end = await reader.wait_for(is_type("stream_end", stream=start["stream"]))
    finally:
        counting.undo()
    delivered = reader.frames[before : reader.frames.index(end) + 1]
    tokens = [f for f in delivered if f["type"] == "token"]
    assert len(tokens) == end["usage"]["output_tokens"] > 10
    # Every write is exactly one whole frame, and every delivered frame took one write.
    assert all(len(websocket_frames(w)) == 1 for w in counting.writes)
    assert len(counting.writes) == len(delivered)
    # Written straight from the fan-out: no drainer was woken for any of them.
    assert wakes == []


async def _coalescing_server(start_server: ServerFactory, db_path: str) -> TestServer:
    # A window far longer than the streams' token gaps: every frame gathers several tokens.
    limits = Limits(token_flush_ms=80)
    return await start_server(fast_settings(db_path, models=FAST, limits=limits))


async def _stored_texts(http: aiohttp.ClientSession, server: TestServer) -> dict[str, str]:
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        body = await response.json()
    return {m["stream"]: m["text"] for m in body["messages"] if m.get("stream")}


def _token_frames(frames: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "token" and f["stream"] == stream]


async def test_coalesced_frames_carry_several_tokens_of_one_stream(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _coalescing_server(start_server, db_path)
    steady = await RoomClient.connect(http, ws_url(server), name="steady")
    await steady.send(
        {"type": "prompt", "id": "p1", "text": "rivers and tides", "models": ["fast", "faster"]}
    )
    await steady.wait_count("stream_end", 2)
    view = view_of(steady)  # asserts seqs rise by exactly one, no gap, no repeat
    stored = await _stored_texts(http, server)
    assert len(stored) == 2
    for stream, text in stored.items():
        frames = _token_frames(steady.frames, stream)
        end = steady.ended(stream)
        assert end is not None
        assert len(frames) < end["usage"]["output_tokens"], "tokens were gathered into frames"
        # Each frame says how many it holds, so a client can count them.
        assert sum(f.get("tokens", 1) for f in frames) == end["usage"]["output_tokens"]
        # Each stream's frames add up to its own text exactly: no frame held the other's.
        assert "".join(f["text"] for f in frames) == text
    assert len(view.events) == len(steady.room_events())


async def test_snapshots_and_resumes_in_the_middle_of_coalescing_are_exact(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _coalescing_server(start_server, db_path)
    url = ws_url(server)
    steady = await RoomClient.connect(http, url, name="steady")
    flaky = await RoomClient.connect(http, url, name="flaky")
    flaky_view = RoomView()
    flaky_view.apply([flaky.welcome])
    await steady.send(
        {"type": "prompt", "id": "p1", "text": "deltas and estuaries", "models": ["fast"]}
    )
    start = await steady.wait_for(is_type("stream_start"))
    stream = start["stream"]
    await flaky.wait_for(is_type("token", stream=stream))
    await drop(flaky, flaky_view)
    # A newcomer joins while tokens are being gathered: its snapshot must not miss or repeat.
    late = await RoomClient.connect(http, url, name="late")
    await steady.wait_for(lambda f: len(_token_frames(steady.frames, stream)) >= 2)
    back = await RoomClient.connect(http, url, name="flaky", since=flaky_view.since)
    assert back.welcome["resumed"] is True
    for client in (steady, late, back):
        await client.wait_for(is_type("stream_end", stream=stream))
    flaky_view.apply([back.welcome, *back.frames])
    late_view = view_of(late)
    steady_view = view_of(steady)
    [text] = (await _stored_texts(http, server)).values()
    for view in (steady_view, late_view, flaky_view):
        assert view.texts[stream] == text
    assert late_view.seq == steady_view.seq == flaky_view.seq
