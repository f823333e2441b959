"""A first frame of an unknown type is refused like any first frame that is not hello."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import ws_url
from tests.support import Frame


async def _refusal(ws: aiohttp.ClientWebSocketResponse, *, binary: bool) -> tuple[Frame, int]:
    """The error frame the server sent first, and the close code that followed it."""
    msg = await ws.receive(timeout=3)
    expected = aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT
    assert msg.type == expected, msg
    error: Frame = (msgspec.msgpack if binary else msgspec.json).decode(msg.data)
    closing = await ws.receive(timeout=3)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    assert ws.close_code is not None
    return error, ws.close_code


@pytest.mark.parametrize("protocol", ["rt.v1.json", "rt.v1.msgpack"])
@pytest.mark.parametrize(
    ("first", "ref"),
    [
        ({"type": "nonsense", "id": "n1"}, "n1"),
        ({"type": "nonsense"}, None),
        # An id that is not a valid id is not echoed, whatever the type.
        ({"type": "nonsense", "id": ""}, None),
    ],
)
async def test_an_unknown_first_frame_type_is_bad_frame_then_1002(
    server: TestServer, http: aiohttp.ClientSession, protocol: str, first: Frame, ref: str | None
) -> None:
    binary = protocol == "rt.v1.msgpack"
    async with http.ws_connect(ws_url(server), protocols=(protocol,)) as ws:
        if binary:
            await ws.send_bytes(msgspec.msgpack.encode(first))
        else:
            await ws.send_str(msgspec.json.encode(first).decode())

        error, code = await _refusal(ws, binary=binary)

    assert (error["type"], error["code"], error.get("ref"), code) == (
        "error",
        "bad_frame",
        ref,
        1002,
    )
    assert "hello" in error["message"]
    assert "nonsense" in error["message"]


@pytest.mark.parametrize("protocol", ["rt.v1.json", "rt.v1.msgpack"])
async def test_after_hello_an_unknown_type_is_still_unknown_type(
    server: TestServer, http: aiohttp.ClientSession, protocol: str
) -> None:
    binary = protocol == "rt.v1.msgpack"
    codec = msgspec.msgpack if binary else msgspec.json

    async def send(ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> None:
        data = codec.encode(frame)
        await (ws.send_bytes(data) if binary else ws.send_str(data.decode()))

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> Frame:
        msg = await ws.receive(timeout=3)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
        frame: Frame = codec.decode(msg.data)
        return frame

    async with http.ws_connect(ws_url(server), protocols=(protocol,)) as ws:
        await send(ws, {"type": "hello", "name": "later"})
        assert (await receive(ws))["type"] == "welcome"
        await send(ws, {"type": "nonsense", "id": "n2"})
        frame = await receive(ws)
        while frame["type"] != "error":
            frame = await receive(ws)
        assert (frame["code"], frame["ref"]) == ("unknown_type", "n2")
        await send(ws, {"type": "ping", "id": "alive"})
        frame = await receive(ws)
        while frame["type"] != "pong":
            frame = await receive(ws)
        assert frame["id"] == "alive"
