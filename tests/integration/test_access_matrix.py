"""Every bad token and every foreign page, on every endpoint that is not the WebSocket.

tests/integration/test_access.py holds each rule once, mostly on the WebSocket; here the same
refusals are asked of the event stream, posted frames, history and /v1/chat, one case each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.auth.tokens import RoomTokens
from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, bearer, token
from tests.integration.sse_client import SseClient
from tests.support import fast_settings, is_type

FORGED = RoomTokens(secret="another-secret-" + "z" * 40)
BAD = [
    pytest.param(lambda: None, id="none"),
    pytest.param(lambda: token(ttl_s=-30), id="expired"),
    pytest.param(lambda: token(tokens=FORGED), id="wrong-signature"),
    pytest.param(lambda: "not.a.jwt", id="malformed"),
    pytest.param(lambda: token(sub=""), id="empty-sub"),
]
ENDPOINTS = ["events", "frames", "history", "chat"]


@pytest.fixture
async def secured(start_server: ServerFactory, db_path: str) -> TestServer:
    return await start_server(fast_settings(db_path), env=ENV)


async def _ask(
    http: aiohttp.ClientSession,
    server: TestServer,
    endpoint: str,
    *,
    credential: str | None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request to ``endpoint`` with ``credential`` where that endpoint takes a token."""
    headers = dict(headers or {})
    if credential is not None and endpoint != "events":
        headers |= bearer(credential)
    if endpoint == "events":
        query = {} if credential is None else {"token": credential}
        url = server.make_url("/v1/rooms/lobby/events").with_query(query)
        async with http.get(url, headers=headers) as response:
            # A stream that opened goes on: only a refusal has a body to read to its end.
            return response.status, None if response.status == 200 else await response.json()
    if endpoint == "frames":
        # A real session, opened with a good token: only the POST's own credential differs.
        sse = await SseClient.connect(http, server.make_url("/"), token=token(), read=False)
        try:
            status, body, _ = await sse.post({"type": "ping", "id": "x"}, headers=headers)
        finally:
            sse.close()
        return status, body
    if endpoint == "history":
        async with http.get(
            server.make_url("/v1/rooms/lobby/messages"), headers=headers
        ) as response:
            return response.status, await response.json()
    async with http.post(
        server.make_url("/v1/chat"), json={"message": "spend"}, headers=headers
    ) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("make_token", BAD)
async def test_a_bad_token_is_unauthorized_everywhere(
    secured: TestServer,
    http: aiohttp.ClientSession,
    endpoint: str,
    make_token: Callable[[], str | None],
) -> None:
    status, body = await _ask(http, secured, endpoint, credential=make_token())
    assert (status, body["type"], body["code"]) == (401, "error", "unauthorized")


@pytest.mark.parametrize("endpoint", ["events", "history"])
async def test_a_token_for_another_room_is_forbidden(
    secured: TestServer, http: aiohttp.ClientSession, endpoint: str
) -> None:
    status, body = await _ask(http, secured, endpoint, credential=token(rooms=["kitchen"]))
    assert (status, body["code"]) == (403, "forbidden")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_a_foreign_page_is_refused_even_with_a_good_token(
    secured: TestServer, http: aiohttp.ClientSession, endpoint: str, origin: str
) -> None:
    if endpoint == "frames":
        # The session's stream opens from no page; the POST comes from the foreign one.
        sse = await SseClient.connect(http, secured.make_url("/"), token=token(), read=False)
        try:
            status, body, _ = await sse.post(
                {"type": "prompt", "id": "x", "text": "hi"},
                headers={"Origin": origin, **bearer(token())},
            )
        finally:
            sse.close()
    else:
        status, body = await _ask(
            http, secured, endpoint, credential=token(), headers={"Origin": origin}
        )
    assert (status, body["code"]) == (403, "forbidden")
    async with http.get(
        secured.make_url("/v1/rooms/lobby/messages"), headers=bearer(token())
    ) as response:
        assert (await response.json())["messages"] == [], "nothing was stored"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_no_origin_at_all_passes_with_a_good_token(
    secured: TestServer, http: aiohttp.ClientSession, endpoint: str
) -> None:
    status, _ = await _ask(http, secured, endpoint, credential=token())
    assert status in (200, 202)


async def test_a_posted_prompt_for_a_model_outside_the_claim_is_forbidden(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    mine = token(models=["quick"])
    sse = await SseClient.connect(http, secured.make_url("/"), token=mine)
    try:
        status, body, _ = await sse.post(
            {"type": "prompt", "id": "p1", "text": "hi", "models": ["slow"]}, headers=bearer(mine)
        )
        assert (status, body["code"], body["ref"]) == (403, "forbidden", "p1")
        status, _, _ = await sse.post(
            {"type": "prompt", "id": "p2", "text": "hi", "models": ["quick"]}, headers=bearer(mine)
        )
        assert status == 202
        start = await sse.wait_for(is_type("stream_start"))
        assert start["model"] == "quick"
    finally:
        sse.close()


async def test_a_session_is_posted_to_only_with_a_token_of_its_subject_for_its_room(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    mine = token("ada")
    sse = await SseClient.connect(http, secured.make_url("/"), token=mine)
    try:
        ping = {"type": "ping", "id": "x"}
        status, body, _ = await sse.post(ping, headers=bearer(token("mallory")))
        assert (status, body["code"]) == (403, "forbidden")
        assert body["message"] == "this session belongs to another token subject"
        # The same subject, but a token that does not name this room.
        status, body, _ = await sse.post(ping, headers=bearer(token("ada", rooms=["kitchen"])))
        assert (status, body["code"]) == (403, "forbidden")
        status, _, _ = await sse.post(ping, headers=bearer(mine))
        assert status == 202
    finally:
        sse.close()


async def test_a_viewers_chat_is_forbidden_saying_why(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        secured.make_url("/v1/chat"),
        json={"message": "hi"},
        headers=bearer(token(role="viewer")),
    ) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (403, "forbidden")
    assert body["message"] == "a viewer's token does not allow chat"
