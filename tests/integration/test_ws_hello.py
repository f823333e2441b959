"""Before the join: the handshake, the wait for hello, and how a missing hello is refused."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.support import Frame, fast_settings


async def _refusal(ws: aiohttp.ClientWebSocketResponse, *, binary: bool) -> tuple[Frame, int]:
    """The error frame a refused socket gets first, and the code it is then closed with."""
    msg = await ws.receive(timeout=5)
    assert msg.type == (aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT), msg
    error: Frame = (msgspec.msgpack if binary else msgspec.json).decode(msg.data)
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    assert ws.close_code is not None
    return error, ws.close_code


@pytest.mark.parametrize("protocol", ["rt.v1.json", "rt.v1.msgpack"])
async def test_a_socket_silent_past_the_hello_timeout_is_told_so_and_closed_1002(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, protocol: str
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(hello_timeout=0.2)))
    async with http.ws_connect(ws_url(server), protocols=(protocol,)) as ws:
        error, code = await _refusal(ws, binary=protocol == "rt.v1.msgpack")
    assert (error["type"], error["code"], error["message"]) == (
        "error",
        "bad_frame",
        "no hello within the hello timeout",
    )
    assert error.get("ref") is None
    assert code == 1002


@pytest.mark.parametrize("protocol", ["rt.v1.json", "rt.v1.msgpack"])
async def test_a_first_frame_of_another_type_is_refused_naming_its_id(
    server: TestServer, http: aiohttp.ClientSession, protocol: str
) -> None:
    binary = protocol == "rt.v1.msgpack"
    first = {"type": "ping", "id": "too-early"}
    async with http.ws_connect(ws_url(server), protocols=(protocol,)) as ws:
        if binary:
            await ws.send_bytes(msgspec.msgpack.encode(first))
        else:
            await ws.send_str(msgspec.json.encode(first).decode())
        error, code = await _refusal(ws, binary=binary)
    assert (error["type"], error["code"], error["message"], error["ref"]) == (
        "error",
        "bad_frame",
        "the first frame must be hello",
        "too-early",
    )
    assert code == 1002


async def test_a_plain_get_is_told_the_endpoint_needs_a_websocket_upgrade(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(ws_url(server)) as response:
        assert response.status == 400
        body = await response.json()
    assert body == {
        "type": "error",
        "code": "bad_frame",
        "message": "not a WebSocket handshake: this endpoint needs a WebSocket upgrade",
    }


async def test_sockets_waiting_for_hello_on_a_direct_loopback_peer_each_count_alone(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    """Loopback without a proxy header is one machine's many clients: no shared address cap."""
    limits = Limits(connections_per_client=2, hello_timeout=30)
    server = await start_server(fast_settings(db_path, limits=limits))
    url = ws_url(server)
    waiting = [await http.ws_connect(url, protocols=("rt.v1.json",)) for _ in range(3)]
    try:
        # Each socket past the cap still gets its welcome: none was counted with the others.
        for index, ws in enumerate(waiting):
            await ws.send_json({"type": "hello", "name": f"tab{index}"})
            assert (await ws.receive_json(timeout=5))["type"] == "welcome"
    finally:
        for ws in waiting:
            await ws.close()
