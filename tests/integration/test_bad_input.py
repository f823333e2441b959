"""Bad input gets a clear error naming the problem; the connection and the room carry on."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from rtserver.keys import STORE
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import (
    RoomClient,
    fast_settings,
    is_type,
    names_are,
    presence_states,
    wait_presence,
)


async def _error_for(client: RoomClient, frame: dict[str, object] | str) -> dict[str, object]:
    if isinstance(frame, str):
        await client.ws.send_str(frame)
    else:
        await client.send(frame)
    await client.send({"type": "ping", "id": "after"})
    await client.wait_for(is_type("pong", id="after"))
    errors = client.of_type("error")
    assert errors, "no error frame came back"
    client.frames.clear()
    return errors[-1]


@pytest.fixture
async def client(server: TestServer, http: aiohttp.ClientSession) -> RoomClient:
    return await RoomClient.connect(http, ws_url(server))


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ({"type": "shout", "id": "f1"}, "unknown_type", "shout"),
        ({"type": "prompt", "id": "f2", "text": 42}, "bad_frame", "$.text"),
        ({"type": "prompt", "id": "f3"}, "bad_frame", "text"),
        ({"type": "typing", "id": "f4", "active": "yes"}, "bad_frame", "$.active"),
        (
            {"type": "prompt", "id": "f5", "text": "hi", "models": ["gpt-99"]},
            "unknown_model",
            "gpt-99",
        ),
        ({"type": "prompt", "id": "f6", "text": "   "}, "bad_frame", "empty"),
        ({"type": "prompt", "id": "f7", "text": "x" * 32_001}, "too_large", "32000"),
        ({"type": "cancel", "id": "f8", "stream": "s_nope"}, "not_found", "s_nope"),
        ({"type": "hello", "id": "f9"}, "bad_frame", "hello"),
        (
            {"type": "prompt", "id": "f10", "text": "hi", "params": {"temperature": 9}},
            "bad_frame",
            "temperature",
        ),
        ({"type": "prompt", "id": "f11", "text": "hi", "models": []}, "bad_frame", "models"),
        ({"type": "interrupt", "id": "f12", "text": "hi", "models": []}, "bad_frame", "models"),
    ],
)
async def test_bad_frames_get_named_errors(
    client: RoomClient, frame: dict[str, object], code: str, words: str
) -> None:
    error = await _error_for(client, frame)
    assert error["code"] == code
    assert words in str(error["message"])
    assert error.get("ref") == frame["id"]
    assert error["ref"] == frame["id"]


@pytest.mark.parametrize(
    "raw", ["{not json", "[1, 2]", '"hello"', '{"type": 7}', "[" * 5000 + "]" * 5000, "\x00"]
)
async def test_malformed_frames_keep_the_connection(client: RoomClient, raw: str) -> None:
    error = await _error_for(client, raw)
    assert error["code"] == "bad_frame"
    assert "ref" not in error


async def test_text_frame_on_msgpack_connection(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    binary = await RoomClient.connect(http, ws_url(server), protocol="rt.v1.msgpack")
    error = await _error_for(binary, '{"type": "ping"}')
    assert error["code"] == "bad_frame"
    assert "binary" in str(error["message"])


async def test_invalid_room_id_is_http_400(server: TestServer, http: aiohttp.ClientSession) -> None:
    for room in ("a" * 65, "semi;colon", "sp%20ace"):
        async with http.get(server.make_url(f"/v1/rooms/{room}/ws")) as response:
            assert response.status == 400
            body = await response.json()
            assert body["code"] == "bad_frame"
            assert "room ids" in body["message"]


async def test_rate_limit_names_retry_after(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(prompts_per_minute=2)))
    client = await RoomClient.connect(http, ws_url(server))
    for n in range(2):
        await client.send({"type": "prompt", "id": f"ok{n}", "text": "hi", "models": ["quick"]})
        await client.wait_for(is_type("message", prompt_id=f"ok{n}"))
        await client.send({"type": "cancel"})
        await client.wait_count("stream_end", n + 1)
    await client.send({"type": "prompt", "id": "over", "text": "hi", "models": ["quick"]})
    error = await client.wait_for(is_type("error", ref="over"))
    assert error["code"] == "rate_limited"
    assert 0 < error["retry_after"] <= 30


async def test_history_paging_and_bad_queries(
    server: TestServer, http: aiohttp.ClientSession, client: RoomClient
) -> None:
    for n in range(3):
        await client.send(
            {"type": "prompt", "id": f"q{n}", "text": f"turn {n}", "models": ["quick"]}
        )
        await client.wait_for(is_type("message", prompt_id=f"q{n}"))
        await client.wait_count("stream_end", n + 1)

    base = "/v1/rooms/lobby/messages"
    async with http.get(server.make_url(f"{base}?limit=4")) as response:
        page = await response.json()
    assert len(page["messages"]) == 4
    assert page["messages"][-1]["role"] == "assistant"
    assert page["next"] == page["messages"][0]["id"]
    async with http.get(server.make_url(f"{base}?limit=4&before={page['next']}")) as response:
        older = await response.json()
    assert len(older["messages"]) == 2
    assert older["next"] is None
    assert older["messages"][0]["text"] == "turn 0"
    assert older["messages"][0]["prompt_id"] == "q0"
    whole = older["messages"] + page["messages"]
    assert [m["text"] for m in whole if m["role"] == "user"] == ["turn 0", "turn 1", "turn 2"]

    for query, status in (
        ("limit=0", 400),
        ("limit=abc", 400),
        ("limit=999", 400),
        ("limit=%C2%B2", 400),
        ("limit=%D9%A3", 400),
        ("before=m_x", 404),
    ):
        async with http.get(server.make_url(f"{base}?{query}")) as response:
            assert response.status == status, query
            assert (await response.json())["type"] == "error"


async def test_unicode_and_control_characters_survive(
    server: TestServer, http: aiohttp.ClientSession, client: RoomClient
) -> None:
    text = "héllo 🌍 مرحبا 你好 \u0000 \u202e end"
    await client.send({"type": "prompt", "id": "u", "text": text, "models": ["quick"]})
    message = await client.wait_for(is_type("message", prompt_id="u"))
    assert message["text"] == text
    await client.wait_for(is_type("stream_end"))
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        stored = (await response.json())["messages"]
    assert stored[0]["text"] == text


async def test_a_server_fault_is_answered_internal_and_the_connection_carries_on(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    """A failure inside the server (here the database) answers ``internal``, not a dropped
    connection or a plain-text 500, and never shows the exception's text."""
    store = server.app[STORE]
    start_turn, page = store.start_turn, store.page

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error at /secret/path/rooms.db")

    client = await RoomClient.connect(http, ws_url(server))
    sse = await SseClient.connect(http, server.make_url("/"))
    store.start_turn = broken  # type: ignore[method-assign]
    store.page = broken  # type: ignore[method-assign]

    error = await _error_for(client, {"type": "prompt", "id": "doomed", "text": "hello"})
    assert (error["code"], error.get("ref")) == ("internal", "doomed")
    assert "secret" not in str(error["message"])

    status, body, _ = await sse.post({"type": "prompt", "id": "doomed2", "text": "hello"})
    assert (status, body["type"], body["code"], body.get("ref")) == (
        500,
        "error",
        "internal",
        "doomed2",
    )
    assert "secret" not in str(body["message"])

    from_page = {"Origin": "http://localhost:5173"}
    async with http.get(server.make_url("/v1/rooms/lobby/messages"), headers=from_page) as response:
        assert response.status == 500
        assert response.headers["Access-Control-Allow-Origin"] == from_page["Origin"]
        body = await response.json()
    assert (body["type"], body["code"]) == ("error", "internal")
    assert "secret" not in str(body["message"])

    store.start_turn, store.page = start_turn, page  # type: ignore[method-assign]
    await client.send({"type": "prompt", "id": "fine", "text": "hello", "models": ["quick"]})
    await client.wait_for(is_type("message", prompt_id="fine"))
    sse.close()


async def test_a_room_that_cannot_be_opened_is_answered_internal_and_1011(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    store = server.app[STORE]
    recent = store.recent

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("database is locked at /secret/path")

    store.recent = broken  # type: ignore[method-assign]
    client = await RoomClient.connect(http, ws_url(server, "fresh"), hello=False)
    await client.send({"type": "hello", "id": "h"})
    error = await client.receive()
    assert (error["type"], error["code"]) == ("error", "internal")
    assert "secret" not in error["message"]
    client.start_reading()
    assert await client.wait_closed() == 1011

    store.recent = recent  # type: ignore[method-assign]
    again = await RoomClient.connect(http, ws_url(server, "fresh"))
    assert again.welcome["room"] == "fresh"


async def test_typing_changes_are_rate_limited(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(typing_changes_per_minute=4)))
    typist = await RoomClient.connect(http, ws_url(server), name="typist")
    watcher = await RoomClient.connect(http, ws_url(server), name="watcher")
    await wait_presence(typist, names_are({"typist", "watcher"}))
    for n in range(6):
        await typist.send({"type": "typing", "id": f"t{n}", "active": n % 2 == 0})
    error = await typist.wait_for(is_type("error", ref="t4"))
    assert error["code"] == "rate_limited"
    assert error["retry_after"] > 0
    await typist.send({"type": "typing", "id": "t6", "active": True})
    await typist.send({"type": "ping", "id": "sync"})
    await typist.wait_for(is_type("pong", id="sync"))
    # Changes are coalesced, so what the others see is the state: a participant who joins
    # after the refused changes marks a presence frame that tells every change before it.
    marker = await RoomClient.connect(http, ws_url(server), name="marker")
    await wait_presence(watcher, names_are({"typist", "watcher", "marker"}))
    _, listed = list(presence_states(watcher.welcome, watcher.frames))[-1]
    assert not listed[typist.welcome["participant"]["id"]]["typing"], "a refused change showed"
    await marker.close()
    # t5 (not typing) changes nothing, since the refused t4 never made it typing.
    assert [e["ref"] for e in typist.of_type("error")] == ["t4", "t6"]
