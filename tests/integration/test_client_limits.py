"""Limits that hold per client across its connections: floods are refused, others are served."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from rtserver.keys import DIRECTORY
from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, bearer, join, refusal, token
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, eventually, fast_settings, is_type, wait_presence

EVERY_ROOM = ["*"]


async def _secured(start_server: ServerFactory, db_path: str, **limits: Any) -> TestServer:
    return await start_server(fast_settings(db_path, limits=Limits(**limits)), env=ENV)


async def _prompt(client: RoomClient, prompt_id: str) -> dict[str, Any]:
    """Send a prompt to `quick`; its message, or the error that refused it."""
    await client.send({"type": "prompt", "id": prompt_id, "text": "hi", "models": ["quick"]})
    return await client.wait_for(
        lambda f: (
            (f["type"] == "message" and f["prompt_id"] == prompt_id)
            or (f["type"] == "error" and f.get("ref") == prompt_id)
        )
    )


async def test_prompts_count_per_subject_across_reconnects(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, prompts_per_minute=3)
    flooder = token("flood", EVERY_ROOM)
    # A new connection (and a new room, so that no turn is running) for every prompt.
    for n in range(3):
        client = await join(http, server, f"room-{n}", token=flooder)
        assert (await _prompt(client, f"p{n}"))["type"] == "message"
        await client.close()
    client = await join(http, server, "room-9", token=flooder)
    refused = await _prompt(client, "p9")
    assert refused["code"] == "rate_limited"
    assert 0 < refused["retry_after"] <= 60
    await client.close()
    other = await join(http, server, "room-9", token=token("calm", EVERY_ROOM))
    assert (await _prompt(other, "c1"))["type"] == "message"
    await other.close()


async def test_typing_changes_count_per_subject_across_reconnects(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, typing_changes_per_minute=4)
    flooder = token("typist")
    for _ in range(2):
        client = await join(http, server, token=flooder)
        await client.send({"type": "typing", "active": True})
        await client.send({"type": "typing", "active": False})
        await client.send({"type": "ping", "id": "done"})
        await client.wait_for(is_type("pong", id="done"))
        assert not client.of_type("error")
        await client.close()
    client = await join(http, server, token=flooder)
    await client.send({"type": "typing", "active": True, "id": "t9"})
    error = await client.wait_for(is_type("error", ref="t9"))
    assert (error["code"], error["retry_after"] > 0) == ("rate_limited", True)
    other = await join(http, server, token=token("quiet"))
    await other.send({"type": "typing", "active": True, "id": "q1"})
    await wait_presence(client, lambda listed: any(p["typing"] for p in listed.values()))
    assert not other.of_type("error")
    await client.close()
    await other.close()


async def test_joins_count_per_subject_on_websocket_and_sse(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, joins_per_minute=3)
    flooder = token("joiner")
    for _ in range(3):
        client = await join(http, server, token=flooder)
        await client.close()
    frame, code = await refusal(http, server, token=flooder)
    assert (frame["code"], code) == ("rate_limited", 1013)
    assert frame["retry_after"] > 0
    url = server.make_url("/v1/rooms/lobby/events").with_query(token=flooder)
    async with http.get(url) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["code"] == "rate_limited"
    other = await join(http, server, token=token("newcomer"))
    await other.close()


async def test_open_connections_per_client_are_capped_and_given_back(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, connections_per_client=2)
    hog = token("hog")
    first = await join(http, server, token=hog)
    second = await SseClient.connect(http, server.make_url("/"), token=hog)
    frame, code = await refusal(http, server, token=hog)
    assert (frame["code"], code) == ("rate_limited", 1013)
    assert frame["retry_after"] > 0
    other = await join(http, server, token=token("someone-else"))
    await first.close()
    # The closed connection's place is free again once the server has seen it go.
    room = server.app[DIRECTORY].rooms["lobby"]
    await eventually(lambda: len(room.members) == 2)
    third = await join(http, server, token=hog)
    for client in (third, other):
        await client.close()
    second.close()


async def test_history_pages_count_per_subject(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, history_pages_per_minute=3)
    url = server.make_url("/v1/rooms/lobby/messages")
    reader = bearer(token("reader"))
    for _ in range(3):
        async with http.get(url, headers=reader) as response:
            assert response.status == 200
    async with http.get(url, headers=reader) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["retry_after"] > 0
    async with http.get(url, headers=bearer(token("another"))) as response:
        assert response.status == 200


async def test_chats_count_per_subject(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, prompts_per_minute=2)
    url = server.make_url("/v1/chat")
    body = {"message": "hi", "model": "quick"}
    for _ in range(2):
        async with http.post(url, json=body, headers=bearer(token("chatty"))) as response:
            assert response.status == 200
    async with http.post(url, json=body, headers=bearer(token("chatty"))) as response:
        assert response.status == 429
    async with http.post(url, json=body, headers=bearer(token("polite"))) as response:
        assert response.status == 200


async def test_the_daily_token_budget_refuses_prompts_until_the_day_rolls(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, tokens_per_user_per_day=5)
    spender = token("spender", EVERY_ROOM)
    client = await join(http, server, "budget-1", token=spender)
    assert (await _prompt(client, "b1"))["type"] == "message"
    end = await client.wait_for(is_type("stream_end"))
    assert end["usage"]["output_tokens"] > 5, "one reply spends the whole budget"
    refused = await _prompt(client, "b2")
    assert refused["code"] == "rate_limited"
    assert 0 < refused["retry_after"] <= 86_400
    assert "budget" in refused["message"]
    await client.close()
    # Across connections and rooms, and on /v1/chat too.
    again = await join(http, server, "budget-2", token=spender)
    assert (await _prompt(again, "b3"))["code"] == "rate_limited"
    await again.close()
    async with http.post(
        server.make_url("/v1/chat"), json={"message": "hi"}, headers=bearer(spender)
    ) as response:
        assert response.status == 429
    other = await join(http, server, "budget-1", token=token("saver", EVERY_ROOM))
    assert (await _prompt(other, "s1"))["type"] == "message"
    await other.close()


# --- open mode: client addresses -------------------------------------------------------------


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_open_mode_counts_per_forwarded_address_behind_a_trusted_proxy(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    # Loopback is a trusted proxy by default: the test client stands in for nginx.
    server = await start_server(fast_settings(db_path, limits=Limits(prompts_per_minute=2)))
    for n in range(2):
        client = await join(http, server, f"o{n}", headers=_from("203.0.113.7"))
        assert (await _prompt(client, f"o{n}"))["type"] == "message"
        await client.close()
    client = await join(http, server, "o9", headers=_from("198.51.100.1, 203.0.113.7"))
    assert (await _prompt(client, "o9"))["code"] == "rate_limited", "the left entry is forgeable"
    await client.close()
    other = await join(http, server, "o9", headers=_from("203.0.113.8"))
    assert (await _prompt(other, "x1"))["type"] == "message"
    await other.close()
    # A direct loopback client (no X-Forwarded-For) counts per connection, as before.
    for n in range(3):
        local = await join(http, server, f"local{n}")
        assert (await _prompt(local, f"l{n}"))["type"] == "message"
        await local.close()


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    settings = fast_settings(db_path, limits=Limits(prompts_per_minute=2), trusted_proxies=())
    server = await start_server(settings)
    # Each claims to be someone else; all come from one peer, which is who they count as.
    for n, address in enumerate(("203.0.113.1", "203.0.113.2")):
        client = await join(http, server, f"u{n}", headers=_from(address))
        assert (await _prompt(client, f"u{n}"))["type"] == "message"
        await client.close()
    client = await join(http, server, "u9", headers=_from("203.0.113.3"))
    assert (await _prompt(client, "u9"))["code"] == "rate_limited"
    await client.close()


@pytest.mark.parametrize("header", ["not-an-address", "203.0.113.9, ::zz"])
async def test_a_malformed_forwarded_for_counts_as_the_proxy(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, header: str
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(history_pages_per_minute=1)))
    url = server.make_url("/v1/rooms/lobby/messages")
    async with http.get(url, headers=_from(header)) as response:
        assert response.status == 200
    async with http.get(url, headers=_from("garbage")) as response:
        assert response.status == 429, "both counted as the proxy (127.0.0.1)"


async def test_sockets_waiting_for_their_hello_count_per_address(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await _secured(start_server, db_path, connections_per_client=2, hello_timeout=30)
    url = server.make_url("/v1/rooms/lobby/ws")
    idle = [await http.ws_connect(url, headers=_from("203.0.113.50")) for _ in range(2)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, headers=_from("203.0.113.50"))
    assert refused.value.status == 429
    # Another address is not held up, and a hello frees its place.
    other = await join(http, server, token=token("elsewhere"), headers=_from("203.0.113.51"))
    await idle[0].send_json({"type": "hello", "token": token("slowpoke")})
    assert (await idle[0].receive_json(timeout=5))["type"] == "welcome"
    again = await http.ws_connect(url, headers=_from("203.0.113.50"))
    for ws in (*idle, again):
        await ws.close()
    await other.close()
