"""A WebSocket is served past the HTTP API middlewares, which still guard its handshake.

Every coroutine frame between aiohttp and a WebSocket handler stays allocated for as long as
the socket is open (issue 15: memory per idle connection). The API middlewares check an
upgrade route's request and hand it on without awaiting it; these tests read the coroutine
stack of a live connection's handler task, and check that what the middlewares answered for
the handshake (JSON errors, CORS headers) is still answered.
"""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.keys import ACCESS
from rtserver.transports import http as api
from rtserver.transports import http_errors, sse, ws
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, eventually, fast_settings

PAGE = "https://app.example.com"
#: What a browser sends to open a WebSocket (the key is RFC 6455's example).
HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Protocol": "rt.v1.json",
}
MIDDLEWARE_CODES = (api._api_errors.__code__, http_errors._json_http_errors.__code__)


def _stack(task: asyncio.Task[Any]) -> list[types.CodeType]:
    """The code of each coroutine the task is suspended in, outermost first."""
    codes: list[types.CodeType] = []
    awaited: object = task.get_coro()
    while isinstance(awaited, types.CoroutineType):
        codes.append(awaited.cr_code)
        awaited = awaited.cr_await
    return codes


async def _stack_of_task_in(handler: types.CodeType) -> list[types.CodeType]:
    """The stack of the one task suspended in ``handler`` (waiting until there is one)."""
    found: list[list[types.CodeType]] = []

    def one_found() -> bool:
        found[:] = [s for t in asyncio.all_tasks() if handler in (s := _stack(t))]
        return len(found) == 1

    await eventually(one_found)
    return found[0]


@pytest.fixture
async def page_server(start_server: ServerFactory, db_path: str) -> TestServer:
    return await start_server(fast_settings(db_path, allowed_origins=(PAGE,)))


@pytest.mark.frame_layout
async def test_an_idle_websocket_holds_no_frame_of_the_api_middlewares(
    page_server: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await RoomClient.connect(http, ws_url(page_server))
    try:
        stack = await _stack_of_task_in(ws._serve.__code__)
    finally:
        await client.close()

    assert not set(MIDDLEWARE_CODES) & set(stack)
    handler = stack.index(ws.websocket_handler.__code__)
    assert all("/aiohttp/" in code.co_filename for code in stack[:handler]), stack[:handler]


@pytest.mark.frame_layout
async def test_an_event_stream_does_hold_them_which_the_stack_shows(
    page_server: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await SseClient.connect(http, page_server.make_url("/"))
    try:
        stack = await _stack_of_task_in(sse.events_handler.__code__)
    finally:
        client.close()

    assert set(MIDDLEWARE_CODES) <= set(stack)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/v1/rooms/bad.room/ws", HANDSHAKE, 400, "bad_frame"),
        ("GET", "/v1/rooms/lobby/ws", {}, 400, "bad_frame"),
        (
            "GET",
            "/v1/rooms/lobby/ws",
            {**HANDSHAKE, "Sec-WebSocket-Version": "99"},
            400,
            "bad_frame",
        ),
    ],
)
async def test_refusals_before_the_upgrade_are_json_with_the_apis_cors_headers(
    page_server: TestServer,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    headers = {**headers, "Origin": PAGE}
    async with http.request(method, page_server.make_url(path), headers=headers) as response:
        assert response.status == status
        assert response.headers["Access-Control-Allow-Origin"] == PAGE
        assert response.headers["Vary"] == "Origin"
        assert response.content_type == "application/json"
        body = await response.json()
    assert (body["type"], body["code"]) == ("error", code)


async def test_a_foreign_page_is_refused_before_the_upgrade_without_cors(
    page_server: TestServer, http: aiohttp.ClientSession
) -> None:
    headers = {**HANDSHAKE, "Origin": "https://evil.example"}
    async with http.get(page_server.make_url("/v1/rooms/lobby/ws"), headers=headers) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        body = await response.json()
    assert (body["type"], body["code"]) == ("error", "forbidden")


async def test_a_failure_before_the_upgrade_is_an_internal_error_that_tells_nothing(
    page_server: TestServer,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(page_server.app[ACCESS], "address_key", broken)
    headers = {**HANDSHAKE, "Origin": PAGE}
    with caplog.at_level(logging.ERROR):
        async with http.get(
            page_server.make_url("/v1/rooms/lobby/ws"), headers=headers
        ) as response:
            assert response.status == 500
            assert response.headers["Access-Control-Allow-Origin"] == PAGE
            body = await response.json()
    assert (body["type"], body["code"]) == ("error", "internal")
    assert "secret" not in body["message"]
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)
