"""Server-wide and per-room caps at the socket, on WebSocket, SSE and plain HTTP.

Each cap is set low in ``[limits]``; the test reaches it, checks the refusal (``busy`` with
``retry_after`` where waiting helps, ``too_large`` where it does not), and checks that the
server takes the request once there is room again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from rtserver.config import Limits, ModelSpec
from rtserver.keys import DIRECTORY, STREAM_SLOTS
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import Frame, RoomClient, fast_settings, is_type

MODELS = (
    ModelSpec(id="slow", provider="demo", tokens_per_s=40, first_token_s=0.05, default=True),
    ModelSpec(id="quick", provider="demo", tokens_per_s=400, first_token_s=0.01),
    # Runs until cancelled, for as long as any test needs a stream to hold its slot.
    ModelSpec(id="crawl", provider="demo", tokens_per_s=1, first_token_s=0.0),
)


async def _server(start_server: ServerFactory, db_path: str, **limits: Any) -> TestServer:
    return await start_server(fast_settings(db_path, models=MODELS, limits=Limits(**limits)))


def _base(server: TestServer) -> URL:
    return URL(str(server.make_url("/")))


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for server-side state that no frame announces (a room going idle, a slot freed):
    with nothing to wake the test, a short poll is the condition wait here."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def _refused_join(http: aiohttp.ClientSession, url: str) -> tuple[Frame, int | None]:
    """Connect and say hello to a room that must refuse: its error frame and close code."""
    client = await RoomClient.connect(http, url, hello=False)
    try:
        await client.send({"type": "hello", "name": "late"})
        error = await client.receive()
        with pytest.raises(ConnectionError):
            await client.receive()
        return error, client.ws.close_code
    finally:
        await client.close()


# --- models_per_prompt ---------------------------------------------------------------------


async def test_a_prompt_naming_more_models_than_models_per_prompt_is_too_large(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, models_per_prompt=2)
    client = await RoomClient.connect(http, ws_url(server))
    sse = await SseClient.connect(http, _base(server))
    try:
        three = {"type": "prompt", "id": "p3", "text": "hi", "models": ["slow", "quick", "crawl"]}
        await client.send(three)
        error = await client.wait_for(is_type("error", ref="p3"))
        assert error["code"] == "too_large"
        assert "at most 2 models" in error["message"]
        # Made-up ids are refused for their number, before any is looked up; thousands of them
        # are refused by the decoder already.
        made_up = [f"m{i}" for i in range(20)]
        await client.send({"type": "prompt", "id": "pm", "text": "hi", "models": made_up})
        assert (await client.wait_for(is_type("error", ref="pm")))["code"] == "too_large"
        thousands = [f"m{i}" for i in range(5000)]
        await client.send({"type": "prompt", "id": "pt", "text": "hi", "models": thousands})
        assert (await client.wait_for(is_type("error", ref="pt")))["code"] == "bad_frame"
        status, body, _ = await sse.post(three | {"id": "s3"})
        assert (status, body["code"], body["ref"]) == (413, "too_large", "s3")
        # A repeated id counts once: two distinct models pass.
        await client.send({"type": "prompt", "id": "p2", "text": "hi", "models": ["quick"] * 5})
        await client.wait_for(is_type("message", prompt_id="p2"))
        assert client.of_type("message")[0]["prompt_id"] == "p2"
    finally:
        sse.close()
        await client.close()


# --- streams_max -----------------------------------------------------------------------------


async def test_streams_max_holds_across_rooms_sse_and_chat_then_frees_a_slot_on_cancel(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, streams_max=2)
    holder = await RoomClient.connect(http, ws_url(server, "holder"))
    other = await RoomClient.connect(http, ws_url(server, "other"))
    sse = await SseClient.connect(http, _base(server), "third")
    try:
        await holder.send({"type": "prompt", "id": "h", "text": "go", "models": ["crawl", "slow"]})
        await holder.wait_count("stream_start", 2)

        await other.send({"type": "prompt", "id": "o1", "text": "me too", "models": ["quick"]})
        error = await other.wait_for(is_type("error", ref="o1"))
        assert error["code"] == "busy"
        assert error["retry_after"] > 0
        assert "2 running streams" in error["message"]

        status, body, headers = await sse.post(
            {"type": "prompt", "id": "s1", "text": "and me", "models": ["quick"]}
        )
        assert (status, body["code"]) == (503, "busy")
        assert int(headers["Retry-After"]) >= 1

        async with http.post(server.make_url("/v1/chat"), json={"message": "hi"}) as response:
            assert response.status == 503
            assert (await response.json())["code"] == "busy"
            assert int(response.headers["Retry-After"]) >= 1

        # The refused prompt was not stored: nothing to resume, nothing in history.
        async with http.get(server.make_url("/v1/rooms/other/messages")) as response:
            assert (await response.json())["messages"] == []

        await holder.send({"type": "cancel", "model": "crawl"})
        crawl = next(s["stream"] for s in holder.of_type("stream_start") if s["model"] == "crawl")
        await holder.wait_for(is_type("stream_end", stream=crawl))
        await other.send({"type": "prompt", "id": "o2", "text": "now?", "models": ["quick"]})
        await other.wait_for(is_type("message", prompt_id="o2"))
    finally:
        sse.close()
        await holder.close()
        await other.close()


async def test_an_interrupt_frees_the_slots_of_the_streams_it_ends_before_taking_its_own(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, streams_max=1)
    client = await RoomClient.connect(http, ws_url(server))
    try:
        await client.send({"type": "prompt", "id": "p1", "text": "go", "models": ["crawl"]})
        await client.wait_count("stream_start", 1)
        await client.send({"type": "interrupt", "id": "i1", "text": "instead", "models": ["quick"]})
        redirected = await client.wait_for(is_type("message", prompt_id="i1"))
        start = await client.wait_for(is_type("stream_start", reply_to=redirected["id"]))
        await client.wait_for(is_type("stream_end", stream=start["stream"]))
        assert not client.of_type("error")
        assert server.app[STREAM_SLOTS].used == 0
    finally:
        await client.close()


async def test_a_running_chat_holds_a_stream_slot_until_it_ends(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, streams_max=1)
    client = await RoomClient.connect(http, ws_url(server))
    slots = server.app[STREAM_SLOTS]
    try:
        chat = await http.post(
            server.make_url("/v1/chat"), json={"message": "hi", "model": "crawl", "stream": True}
        )
        assert chat.status == 200
        await chat.content.readline()  # the first token: the chat is running
        await client.send({"type": "prompt", "id": "p1", "text": "hi", "models": ["quick"]})
        assert (await client.wait_for(is_type("error", ref="p1")))["code"] == "busy"
        chat.close()
        await _until(lambda: slots.used == 0)
        await client.send({"type": "prompt", "id": "p2", "text": "hi", "models": ["quick"]})
        await client.wait_for(is_type("message", prompt_id="p2"))
    finally:
        await client.close()


# --- rooms_max -------------------------------------------------------------------------------


async def test_rooms_max_refuses_a_new_room_until_an_idle_one_can_be_let_go(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, rooms_max=2)
    directory = server.app[DIRECTORY]
    first = await RoomClient.connect(http, ws_url(server, "r1"))
    second = await RoomClient.connect(http, ws_url(server, "r2"))
    try:
        error, close_code = await _refused_join(http, ws_url(server, "r3"))
        assert (error["code"], close_code) == ("busy", 1001)
        assert error["retry_after"] > 0
        async with http.get(server.make_url("/v1/rooms/r3/events")) as response:
            assert response.status == 503
            assert (await response.json())["code"] == "busy"
            assert int(response.headers["Retry-After"]) >= 1
        # A room everyone has left is let go to make room, though its idle time has not run out.
        await first.close()
        await _until(lambda: directory.rooms["r1"].idle)
        third = await RoomClient.connect(http, ws_url(server, "r3"))
        await third.close()
        assert "r1" not in directory.rooms
    finally:
        await first.close()
        await second.close()


# --- participants_per_room -------------------------------------------------------------------


async def test_participants_per_room_refuses_one_more_until_someone_leaves(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _server(start_server, db_path, participants_per_room=2)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await SseClient.connect(http, _base(server), name="bob")
    try:
        error, close_code = await _refused_join(http, ws_url(server))
        assert (error["code"], close_code) == ("busy", 1001)
        assert error["retry_after"] > 0
        assert "full" in error["message"]
        async with http.get(server.make_url("/v1/rooms/lobby/events")) as response:
            assert response.status == 503
            assert (await response.json())["code"] == "busy"
        # Another room is not affected.
        elsewhere = await RoomClient.connect(http, ws_url(server, "elsewhere"))
        await elsewhere.close()
        await alice.close()
        room = server.app[DIRECTORY].rooms["lobby"]
        await _until(lambda: len(room.members) == 1)
        carol = await RoomClient.connect(http, ws_url(server), name="carol")
        assert len(room.members) == 2
        await carol.close()
    finally:
        bob.close()
        await alice.close()


# --- aiohttp's own errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nope", 404, "not_found"),
        ("GET", "/no/such/page", 404, "not_found"),
        ("DELETE", "/v1/models", 405, "bad_frame"),
        ("POST", "/v1/rooms/lobby/ws", 405, "bad_frame"),
        ("PUT", "/v1/chat", 405, "bad_frame"),
        # A plain GET where a WebSocket upgrade belongs: a bad handshake.
        ("GET", "/v1/rooms/lobby/ws", 400, "bad_frame"),
        ("GET", "/v1/" + "x" * 5000, 404, "not_found"),
        # A file the web app does not have, and names that would leave its directory.
        ("GET", "/static/no-such-file.js", 404, "not_found"),
        ("HEAD", "/static/no-such-file.js", 404, None),
        ("GET", "/static/%2e%2e/app.py", 404, "not_found"),
        ("GET", "/static/..%2f..%2fpyproject.toml", 404, "not_found"),
        ("GET", "/static/%2fetc%2fpasswd", 404, "not_found"),
        ("GET", "/static/", 404, "not_found"),
    ],
)
async def test_aiohttp_level_errors_are_json_error_frames(
    server: TestServer,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    status: int,
    code: str | None,
) -> None:
    url = server.make_url("/").with_path(path, encoded=True)
    async with http.request(method, url) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        if code is None:  # HEAD: the same answer without its body
            return
        body = await response.json()
    assert body["type"] == "error"
    assert body["code"] == code
    assert 0 < len(body["message"]) <= 400
    if status == 405:
        assert response.headers["Allow"]


async def test_a_websocket_handshake_with_a_bad_version_gets_a_json_error(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "7",
        "Sec-WebSocket-Key": "not-base64!",
    }
    async with http.get(server.make_url("/v1/rooms/lobby/ws"), headers=headers) as response:
        assert response.status == 400
        body = await response.json()
    assert (body["type"], body["code"]) == ("error", "bad_frame")
    assert "WebSocket" in body["message"]


async def test_the_web_apps_files_are_served_with_cors_for_any_origin(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    # The one file there whether or not the web app is built (its bundle is not committed).
    async with http.get(server.make_url("/static/.gitkeep")) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert await response.read() == b""
