"""Frame limits at the socket: exactly the maximum is read, one byte more is refused, and deep
nesting is a clear bad_frame on every transport, after which each carries on."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from rtserver.protocol.nesting import MAX_NESTING
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, fast_settings, is_type

LIMIT = 4096
QUICK_ONLY = fast_settings("unused").models[1:]


def _ping_of_size(size: int, *, ping_id: str = "big") -> bytes:
    """A JSON ping frame of exactly ``size`` bytes (the padding is an unknown field)."""
    head = b'{"type":"ping","id":"' + ping_id.encode() + b'","pad":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _chat_of_size(size: int) -> bytes:
    head = b'{"message":"hi","pad":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


DEEP = b'{"type":"ping","id":"deep","x":' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.fixture
async def limited(start_server: ServerFactory, db_path: str) -> TestServer:
    limits = Limits(max_frame_bytes=LIMIT)
    return await start_server(fast_settings(db_path, limits=limits, models=QUICK_ONLY))


async def test_websocket_reads_a_frame_of_exactly_the_limit_and_closes_1009_past_it(
    limited: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await RoomClient.connect(http, ws_url(limited))
    exact = _ping_of_size(LIMIT)
    assert len(exact) == LIMIT
    await client.ws.send_str(exact.decode())
    await client.wait_for(is_type("pong", id="big"))
    await client.ws.send_str(_ping_of_size(LIMIT + 1).decode())
    assert await client.wait_closed() == 1009
    assert not client.of_type("error")


@pytest.mark.parametrize("protocol", ["rt.v1.json", "rt.v1.msgpack"])
async def test_websocket_answers_deep_nesting_bad_frame_and_carries_on(
    limited: TestServer, http: aiohttp.ClientSession, protocol: str
) -> None:
    client = await RoomClient.connect(http, ws_url(limited), protocol=protocol)
    if client.binary:
        await client.ws.send_bytes(
            b"\x83\xa4type\xa4ping\xa2id\xa4deep\xa1x" + b"\x91" * 999 + b"\x90"
        )
    else:
        await client.ws.send_str(DEEP.decode())
    await client.send({"type": "ping", "id": "after"})
    await client.wait_for(is_type("pong", id="after"))
    [error] = client.of_type("error")
    assert error["code"] == "bad_frame"
    assert f"more than {MAX_NESTING} levels" in error["message"]
    assert not client.of_type("pong")[:-1], "the deep ping was not answered"
    await client.close()


async def test_a_deep_hello_is_bad_frame_then_close_1002(
    limited: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await RoomClient.connect(http, ws_url(limited), hello=False)
    await client.ws.send_str('{"type":"hello","x":' + "[" * 1000 + "]" * 1000 + "}")
    error = await client.receive()
    assert (error["type"], error["code"]) == ("error", "bad_frame")
    assert "levels deep" in error["message"]
    closing = await client.ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert client.ws.close_code == 1002


async def test_sse_post_reads_exactly_the_limit_refuses_past_it_and_deep_nesting(
    limited: TestServer, http: aiohttp.ClientSession
) -> None:
    sse = await SseClient.connect(http, limited.make_url("/"))
    try:
        status, body, _ = await sse.post(_ping_of_size(LIMIT))
        assert (status, body) == (202, {"ok": True})
        await sse.wait_for(is_type("pong", id="big"))
        status, body, _ = await sse.post(_ping_of_size(LIMIT + 1))
        assert (status, body["code"]) == (413, "too_large")
        status, body, _ = await sse.post(DEEP)
        assert (status, body["code"]) == (400, "bad_frame")
        assert "levels deep" in body["message"]
        status, body, _ = await sse.post({"type": "ping", "id": "after"})
        assert status == 202
        await sse.wait_for(is_type("pong", id="after"))
    finally:
        sse.close()


async def test_chat_reads_exactly_the_limit_refuses_past_it_and_deep_nesting(
    limited: TestServer, http: aiohttp.ClientSession
) -> None:
    url = limited.make_url("/v1/chat")
    headers = {"Content-Type": "application/json"}

    async def post(body: bytes) -> tuple[int, dict[str, object]]:
        async with http.post(url, data=body, headers=headers) as response:
            return response.status, await response.json()

    status, reply = await post(_chat_of_size(LIMIT))
    assert (status, reply["reason"]) == (200, "complete")
    status, error = await post(_chat_of_size(LIMIT + 1))
    assert (status, error["code"]) == (413, "too_large")
    status, error = await post(b'{"message":"hi","x":' + b"[" * 1000 + b"]" * 1000 + b"}")
    assert (status, error["code"]) == (400, "bad_frame")
    assert "levels deep" in str(error["message"])
    status, reply = await post(b'{"message":"still here"}')
    assert status == 200
