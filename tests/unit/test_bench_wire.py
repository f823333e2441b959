"""The load generator's lean WebSocket client against aiohttp's server, on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from benchmarks.wire import HandshakeError, WireClient

SIZES = (0, 5, 125, 126, 300, 65_535, 70_000)


async def _socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("rt.v1.json",), autoping=False)
    await ws.prepare(request)
    for size in SIZES:
        await ws.send_str("x" * size)
    await ws.ping(b"are you there")
    pong = await ws.receive(timeout=5)
    echo = await ws.receive(timeout=5)
    await ws.send_str(f"{pong.type.name}:{bytes(pong.data)!r} {echo.type.name}:{echo.data}")
    await ws.close(code=4000)
    return ws


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_get("/ws", _socket)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def _connect(server: TestServer, path: str, got: list[bytes]) -> WireClient:
    assert server.port is not None
    client = WireClient(
        path,
        f"127.0.0.1:{server.port}",
        protocol="rt.v1.json",
        on_message=lambda p, _: got.append(p),
    )
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: client, "127.0.0.1", server.port)
    return client


async def test_frames_of_every_length_arrive_whole_and_pings_and_masking_work(
    server: TestServer,
) -> None:
    got: list[bytes] = []
    client = await _connect(server, "/ws", got)
    try:
        await asyncio.wait_for(client.opened, 5)
        client.send_text("héllo ".encode() * 30)
        code = await asyncio.wait_for(client.closed, 5)
    finally:
        client.close()
    assert code == 4000
    assert [len(p) for p in got[: len(SIZES)]] == list(SIZES)
    assert got[-1].decode() == f"PONG:b'are you there' TEXT:{'héllo ' * 30}"


async def test_a_refused_upgrade_is_a_handshake_error(server: TestServer) -> None:
    client = await _connect(server, "/nowhere", [])
    try:
        with pytest.raises(HandshakeError, match="404"):
            await asyncio.wait_for(client.opened, 5)
    finally:
        client.close()
