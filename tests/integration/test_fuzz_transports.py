"""Hostile frames through real sockets: thousands of fuzzed frames on a WebSocket (both
encodings) and on the SSE POST; never `internal` or a 500, the connection stays, and the room
carries on (a ping still gets its pong, and a fresh participant's turn completes)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.fuzz_frames import wire_inputs
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, fast_settings, is_type

FRAMES = 1_500
QUICK_ONLY = fast_settings("unused").models[1:]


def _generate(strategy: st.SearchStrategy[bytes], count: int) -> list[bytes]:
    """``count`` inputs drawn by hypothesis, the same ones every run (no shrinking: the server
    is the system under test, and a failure names the frame)."""
    drawn: list[bytes] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(data: bytes) -> None:
        drawn.append(data)

    collect()
    return drawn


@pytest.fixture
async def server(start_server: ServerFactory, db_path: str) -> TestServer:
    limits = Limits(max_frame_bytes=64 * 1024)
    return await start_server(fast_settings(db_path, limits=limits, models=QUICK_ONLY))


async def _room_carries_on(server: TestServer, http: aiohttp.ClientSession) -> None:
    fresh = await RoomClient.connect(http, ws_url(server), name="fresh")
    # interrupt with text goes ahead of whatever turn the fuzz left running.
    await fresh.send({"type": "interrupt", "id": "after-fuzz", "text": "still working?"})
    message = await fresh.wait_for(is_type("message", prompt_id="after-fuzz"))
    start = await fresh.wait_for(is_type("stream_start", reply_to=message["id"]))
    end = await fresh.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["reason"] == "complete"
    await fresh.close()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["rt.v1.json", "rt.v1.msgpack"])
async def test_fuzzed_frames_on_a_websocket_are_answered_and_the_room_carries_on(
    server: TestServer, http: aiohttp.ClientSession, protocol: str
) -> None:
    binary = protocol == "rt.v1.msgpack"
    inputs = _generate(wire_inputs(msgpack=binary), FRAMES)
    client = await RoomClient.connect(http, ws_url(server), name="fuzzer", protocol=protocol)
    for n, data in enumerate(inputs):
        if binary:
            await client.ws.send_bytes(data)
        else:
            try:
                await client.ws.send_str(data.decode())
            except UnicodeDecodeError:
                await client.ws.send_bytes(data)
        if n % 100 == 0:  # keep pace with the answers, as a client that reads them would
            await client.send({"type": "ping", "id": f"pace-{n}"})
            await client.wait_for(is_type("pong", id=f"pace-{n}"), timeout=30)
    await client.send({"type": "ping", "id": "after"})
    await client.wait_for(is_type("pong", id="after"), timeout=30)
    errors = client.of_type("error")
    assert errors, "hostile frames got error frames"
    codes = {e["code"] for e in errors}
    assert "internal" not in codes, [e for e in errors if e["code"] == "internal"][:3]
    assert client.closed_with is None
    await _room_carries_on(server, http)
    await client.close()


@pytest.mark.timeout(180)
async def test_fuzzed_posts_are_answered_with_their_error_and_never_500(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    inputs = _generate(wire_inputs(msgpack=False), FRAMES // 2)
    sse = await SseClient.connect(http, server.make_url("/"), name="fuzzer")
    statuses: dict[int, int] = {}
    try:
        for data in inputs:
            status, body, _ = await sse.post(data, headers={"Content-Type": "application/json"})
            statuses[status] = statuses.get(status, 0) + 1
            assert status != 500, (data[:200], body)
            if status != 202:
                assert body["type"] == "error", body
                assert body["code"] != "internal", (data[:200], body)
        assert set(statuses) <= {202, 400, 404, 413, 429, 503}, statuses
        assert statuses.get(400, 0) > 0
        status, _, _ = await sse.post({"type": "ping", "id": "after"})
        assert status == 202
        await sse.wait_for(is_type("pong", id="after"), timeout=30)
        assert not sse.ended
        await _room_carries_on(server, http)
    finally:
        sse.close()
