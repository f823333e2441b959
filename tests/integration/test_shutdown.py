"""A graceful shutdown: streams end interrupted and are kept, sockets close 1001, newcomers 503."""

from __future__ import annotations

import asyncio

import aiohttp

from rtserver.keys import STORE
from tests.conftest import ServerFactory, ws_url
from tests.integration.scripted_providers import Endless
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, fast_settings, is_type


async def test_shutdown_interrupts_streams_closes_1001_and_refuses_newcomers_busy(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    endless = Endless(asyncio.Event(), interval=0.01)
    server = await start_server(fast_settings(db_path), providers={"slow": endless})
    client = await RoomClient.connect(http, ws_url(server))
    sse = await SseClient.connect(http, server.make_url("/"), name="reader")
    await client.send({"type": "prompt", "id": "p1", "text": "go on", "models": ["slow"]})
    start = await client.wait_for(is_type("stream_start"))
    await client.wait_for(is_type("token"))

    # What aiohttp does first on SIGTERM: the shutdown signal, with the sockets still open.
    await server.app.shutdown()

    end = await client.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["reason"] == "interrupted"
    assert await client.wait_closed() == 1001
    await sse.wait_ended()
    assert sse.comments[-1].startswith("closed 1001")
    assert sse.of_type("stream_end")[-1]["reason"] == "interrupted"
    stored = await server.app[STORE].recent("lobby", 5)
    reply = next(m for m in stored if m.id == start["message"])
    assert reply.status == "interrupted"
    assert reply.text == client.texts()[start["stream"]]

    async with http.get(server.make_url("/v1/rooms/lobby/events")) as response:
        assert response.status == 503
        assert (await response.json())["code"] == "busy"
    late = await http.ws_connect(ws_url(server), protocols=("rt.v1.json",))
    await late.send_json({"type": "hello", "name": "late"})
    refusal = await late.receive_json(timeout=10)
    assert (refusal["type"], refusal["code"]) == ("error", "busy")
    closing = await late.receive(timeout=10)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (1001, "the server is shutting down")
    sse.close()
