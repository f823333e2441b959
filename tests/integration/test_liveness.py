"""Liveness: hello in time, frame size, heartbeats, and presence when a participant goes."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import (
    Frame,
    RoomClient,
    fast_settings,
    is_type,
    names_are,
    presence_states,
    wait_presence,
)


async def _server(start_server: ServerFactory, db_path: str, limits: Limits) -> TestServer:
    return await start_server(fast_settings(db_path, limits=limits))


async def _refusal(ws: aiohttp.ClientWebSocketResponse) -> tuple[Frame, int | None]:
    """The error frame a refused connection gets, and its close code."""
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    error: Frame = msgspec.json.decode(msg.data)
    closing = await ws.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    return error, ws.close_code


async def _presence_becomes(client: RoomClient, names: set[str], *, after: int) -> int:
    """The index of the first presence frame from ``after`` on that leaves exactly ``names``."""
    return await wait_presence(client, names_are(names), after=after, timeout=3)


async def test_no_hello_within_the_timeout_is_a_protocol_error(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, Limits(hello_timeout=0.3))
    ws = await http.ws_connect(ws_url(server), protocols=("rt.v1.json",))
    error, code = await _refusal(ws)
    assert (error["type"], error["code"], code) == ("error", "bad_frame", 1002)
    assert error["message"] == "no hello within the hello timeout"


@pytest.mark.parametrize(
    ("first", "ref"),
    [
        ({"type": "ping", "id": "early"}, "early"),
        ({"type": "prompt", "id": "p1", "text": "hi"}, "p1"),
        ({"type": "hello", "name": "n" * 65}, None),
        ("not json at all", None),
        # The close reason quotes the type: 120 characters of it are far over the 123 bytes
        # a WebSocket close reason may hold.
        ({"type": "\u00e9" * 150, "id": "wide"}, "wide"),
    ],
)
async def test_a_first_frame_that_is_not_a_valid_hello_is_a_protocol_error(
    server: TestServer, http: aiohttp.ClientSession, first: Frame | str, ref: str | None
) -> None:
    ws = await http.ws_connect(ws_url(server), protocols=("rt.v1.json",))
    await ws.send_str(first if isinstance(first, str) else msgspec.json.encode(first).decode())
    error, code = await _refusal(ws)
    assert (error["code"], error.get("ref"), code) == ("bad_frame", ref, 1002)
    if ref in ("early", "p1"):
        assert error["message"] == "the first frame must be hello"


@pytest.mark.parametrize("after_hello", [False, True])
async def test_a_frame_over_the_limit_closes_1009(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, after_hello: bool
) -> None:
    server = await _server(start_server, db_path, Limits(max_frame_bytes=1024))
    watcher = await RoomClient.connect(http, ws_url(server), name="watcher")
    big = RoomClient(await http.ws_connect(ws_url(server), protocols=("rt.v1.json",)))
    if after_hello:
        await big.send({"type": "hello", "name": "big"})
        assert (await big.receive())["type"] == "welcome"
        await wait_presence(watcher, lambda listed: "big" in {p["name"] for p in listed.values()})
    await big.send({"type": "ping", "id": "x" * 100, "pad": "y" * 1024})
    while True:
        msg = await big.ws.receive(timeout=10)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert big.ws.close_code == 1009
    if after_hello:
        await _presence_becomes(watcher, {"watcher"}, after=len(watcher.frames))
    # The room carries on for everyone else.
    await watcher.send({"type": "ping", "id": "still-here"})
    await watcher.wait_for(is_type("pong", id="still-here"))


async def test_a_peer_that_stops_answering_pings_is_closed_and_leaves(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, Limits(heartbeat=0.2))
    # The watcher reads over SSE, which has no pings to miss: however slow the machine,
    # only the mute peer can be closed by the heartbeat.
    watcher = await SseClient.connect(http, server.make_url("/"), name="watcher")
    mute = RoomClient(
        await http.ws_connect(ws_url(server), protocols=("rt.v1.json",), autoping=False)
    )
    await mute.send({"type": "hello", "name": "mute"})
    assert (await mute.receive())["type"] == "welcome"
    pings = 0
    while True:
        msg = await mute.ws.receive(timeout=10)
        if msg.type == aiohttp.WSMsgType.PING:
            pings += 1
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert pings >= 1
    joined = await wait_presence(watcher, names_are({"watcher", "mute"}))
    await wait_presence(watcher, names_are({"watcher"}), after=joined)
    watcher.close()


async def test_presence_follows_participants_typing_and_leaving(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    await _presence_becomes(alice, {"alice", "bob"}, after=0)
    await bob.send({"type": "typing", "active": True})
    typing = await wait_presence(alice, lambda listed: any(p["typing"] for p in listed.values()))
    _, listed = list(presence_states(alice.welcome, alice.frames[: typing + 1]))[-1]
    assert [p["name"] for p in listed.values() if p["typing"]] == ["bob"]
    await bob.close()
    await _presence_becomes(alice, {"alice"}, after=typing + 1)
