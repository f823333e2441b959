"""The plain HTTP API as a client sees it: CORS, static files, 401s, tokens, history pages."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from rtserver.keys import STORE
from rtserver.protocol.frames import HistoryMessage, Participant
from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, bearer, token
from tests.integration.sse_client import SseClient
from tests.support import fast_settings

#: A page on loopback, which the default settings allow.
PAGE = "http://localhost:5173"


async def test_an_allowed_page_may_read_an_answer_and_its_retry_after(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.make_url("/v1/models"), headers={"Origin": PAGE}) as response:
        assert response.status == 200
        headers = response.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == PAGE
    assert headers["Vary"] == "Origin"
    assert headers["Access-Control-Expose-Headers"] == "Retry-After"


async def test_static_files_are_open_to_every_origin(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.make_url("/static/rtclient.js")) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    # Only static files: the page itself is not.
    async with http.get(server.make_url("/")) as response:
        assert response.status == 200
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_401_says_how_to_authenticate_and_a_403_does_not(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    secured = await start_server(fast_settings(db_path), env=ENV)
    url = secured.make_url("/v1/rooms/lobby/messages")
    async with http.get(url) as response:
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="rtserver"'
    async with http.get(url, headers=bearer(token(rooms=["kitchen"]))) as response:
        assert response.status == 403
        assert "WWW-Authenticate" not in response.headers


async def test_a_bearer_token_may_follow_more_than_one_space(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    secured = await start_server(fast_settings(db_path), env=ENV)
    url = secured.make_url("/v1/rooms/lobby/messages")
    spaced = {"Authorization": f"Bearer   {token()}"}
    async with http.get(url, headers=spaced) as response:
        assert response.status == 200, await response.text()
        assert await response.json() == {"messages": [], "next": None}


async def test_history_pages_of_one_loopback_address_share_its_rate_limit(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    # A plain request counts under its address, even from loopback, unlike a connection.
    limits = Limits(history_pages_per_minute=1)
    server = await start_server(fast_settings(db_path, limits=limits))
    url = server.make_url("/v1/rooms/lobby/messages")
    async with http.get(url) as response:
        assert response.status == 200
    async with http.get(url) as response:
        assert response.status == 429
        assert (await response.json())["code"] == "rate_limited"


def _said(n: int, text: str) -> HistoryMessage:
    return HistoryMessage(
        id=f"u{n}",
        role="user",
        text=text,
        status="complete",
        ts=1_000 + n,
        author=Participant(id="p_ann", name="ann"),
    )


async def test_a_page_cut_by_its_text_budget_continues_at_the_oldest_message_kept(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(history_page_chars=25)))
    store = server.app[STORE]
    for n in range(1, 5):
        assert await store.start_turn("lobby", _said(n, f"message {n:02d}"), f"p{n}", [])
    url = server.make_url("/v1/rooms/lobby/messages")
    # Ten characters each: the two newest fit in 25, the third does not.
    async with http.get(url) as response:
        first = await response.json()
    assert [m["id"] for m in first["messages"]] == ["u3", "u4"]
    assert first["next"] == "u3"
    async with http.get(url, params={"before": first["next"]}) as response:
        second = await response.json()
    assert [m["id"] for m in second["messages"]] == ["u1", "u2"]
    assert second["next"] is None


async def test_a_token_holders_sse_session_is_its_own_across_posts(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    secured = await start_server(fast_settings(db_path), env=ENV)
    base = secured.make_url("/")
    ada = token("ada")
    sse = await SseClient.connect(http, base, token=ada)
    again = await SseClient.connect(http, base, token=ada)
    # The participant id is the subject's, the same on every connection.
    assert sse.welcome["participant"]["id"] == again.welcome["participant"]["id"]
    assert sse.welcome["participant"]["id"].startswith("p_")
    status, body, _ = await sse.post({"type": "ping", "id": "mine"}, headers=bearer(ada))
    assert (status, body) == (202, {"ok": True})
    status, body, _ = await sse.post({"type": "ping", "id": "bobs"}, headers=bearer(token("bob")))
    assert (status, body["code"]) == (403, "forbidden")
    sse.close()
    again.close()
