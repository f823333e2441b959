"""Access at the socket: room tokens on WebSocket, SSE and HTTP; roles; models; origins; ids."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.auth.tokens import RoomTokens
from rtserver.keys import DIRECTORY
from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, bearer, join, refusal, token
from tests.integration.sse_client import SseClient
from tests.support import (
    eventually,
    fast_settings,
    is_type,
    presence_index,
    presence_states,
    wait_presence,
)

EVIL = "https://evil.example"
FORGED = RoomTokens(secret="another-secret-" + "y" * 40)


@pytest.fixture
async def secured(start_server: ServerFactory, db_path: str) -> TestServer:
    """A server that needs room tokens (a secret is set)."""
    return await start_server(fast_settings(db_path), env=ENV)


# --- WebSocket -------------------------------------------------------------------------------

# Made when the test runs, so that a long test session cannot expire the ones meant to be valid.
BAD_TOKENS = [
    pytest.param(lambda: None, "needs a room token", id="none"),
    pytest.param(lambda: token(ttl_s=-30), "expired", id="expired"),
    pytest.param(lambda: token(tokens=FORGED), "signature", id="wrong-signature"),
    pytest.param(lambda: "not.a.jwt", "not a valid", id="malformed"),
    pytest.param(lambda: token(sub=""), "claims", id="empty-sub"),
]


@pytest.mark.parametrize(("make_token", "words"), BAD_TOKENS)
async def test_a_websocket_without_a_valid_token_is_unauthorized_and_closed_1008(
    secured: TestServer,
    http: aiohttp.ClientSession,
    make_token: Callable[[], str | None],
    words: str,
) -> None:
    frame, code = await refusal(http, secured, token=make_token())
    assert (frame["type"], frame["code"], code) == ("error", "unauthorized", 1008)
    assert words in frame["message"]


async def test_an_unsigned_token_is_refused_whatever_it_claims(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"sub": "x", "rooms": ["*"], "exp": 9999999999}
    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
    frame, code = await refusal(http, secured, token=unsigned)
    assert (frame["code"], code) == ("unauthorized", 1008)


async def test_a_token_for_another_room_is_forbidden_and_closed_1008(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    frame, code = await refusal(http, secured, "lobby", token=token(rooms=["kitchen"]))
    assert (frame["code"], code) == ("forbidden", 1008)
    assert "lobby" in frame["message"]


@pytest.mark.parametrize(
    ("rooms", "room", "allowed"),
    [
        (["team-*"], "team-a", True),
        (["team-*"], "team-", True),
        (["team-*"], "teams", False),
        (["team-*"], "xteam-a", False),
        (["*"], "anything_at-all", True),
        (["lobby"], "lobby2", False),
    ],
)
async def test_room_patterns_match_exactly_or_by_prefix(
    secured: TestServer, http: aiohttp.ClientSession, rooms: list[str], room: str, allowed: bool
) -> None:
    if allowed:
        client = await join(http, secured, room, token=token(rooms=rooms))
        assert client.welcome["room"] == room
        await client.close()
    else:
        frame, code = await refusal(http, secured, room, token=token(rooms=rooms))
        assert (frame["code"], code) == ("forbidden", 1008)


async def test_a_viewer_watches_but_its_prompt_interrupt_and_cancel_are_forbidden(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    member = await join(http, secured, token=token("maker"))
    viewer = await join(http, secured, token=token("watcher", role="viewer"), name="eyes")
    for frame in (
        {"type": "prompt", "id": "v1", "text": "hi"},
        {"type": "interrupt", "id": "v2", "text": "stop that"},
        {"type": "interrupt", "id": "v3"},
        {"type": "cancel", "id": "v4"},
        {"type": "regenerate", "id": "v5", "model": "quick", "reply_to": "m_any"},
        {"type": "withdraw", "id": "v6", "message": "m_any"},
    ):
        await viewer.send(frame)
        error = await viewer.wait_for(is_type("error", ref=frame["id"]))
        assert error["code"] == "forbidden", error
    await viewer.send({"type": "typing", "active": True})
    await viewer.send({"type": "ping", "id": "still-here"})
    await viewer.wait_for(is_type("pong", id="still-here"))
    # What the member starts, the viewer sees.
    await member.send({"type": "prompt", "id": "m1", "text": "tides", "models": ["quick"]})
    start = await viewer.wait_for(is_type("stream_start"))
    await viewer.wait_for(is_type("stream_end", stream=start["stream"]))
    assert not member.of_type("error")
    assert not any(f.get("author", {}).get("name") == "eyes" for f in viewer.of_type("message"))
    await viewer.close()
    await member.close()


async def test_a_queued_prompt_is_withdrawn_by_its_subject_from_any_tab_and_by_no_one_else(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    tab1 = await join(http, secured, token=token("ada"))
    tab2 = await join(http, secured, token=token("ada"))
    other = await join(http, secured, token=token("bea"))
    await other.send({"type": "prompt", "id": "run", "text": "rivers", "models": ["slow"]})
    await other.wait_for(is_type("stream_start"))
    await tab1.send({"type": "prompt", "id": "q", "text": "next", "models": ["slow"]})
    queued = await tab2.wait_for(is_type("message", prompt_id="q"))
    assert queued["queued"] is True
    await other.send({"type": "withdraw", "id": "w1", "message": queued["id"]})
    assert (await other.wait_for(is_type("error", ref="w1")))["code"] == "forbidden"
    # The same subject is the same participant, whichever tab it writes from.
    await tab2.send({"type": "withdraw", "id": "w2", "message": queued["id"]})
    await tab1.wait_for(is_type("unqueued", reason="withdrawn"))
    assert tab2.of_type("error") == []
    await other.send({"type": "cancel"})
    await other.wait_for(is_type("stream_end"))
    for client in (tab1, tab2, other):
        await client.close()


async def test_a_model_outside_the_tokens_models_is_forbidden_and_hidden(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await join(http, secured, token=token(models=["quick"]))
    assert [m["id"] for m in client.welcome["models"]] == ["quick"]
    await client.send({"type": "prompt", "id": "p1", "text": "hi", "models": ["quick", "slow"]})
    error = await client.wait_for(is_type("error", ref="p1"))
    assert error["code"] == "forbidden"
    assert "slow" in error["message"]
    # Without `models` a prompt goes to the defaults (`slow` here), which this token may not use.
    await client.send({"type": "prompt", "id": "p2", "text": "hi"})
    assert (await client.wait_for(is_type("error", ref="p2")))["code"] == "forbidden"
    await client.send({"type": "prompt", "id": "p3", "text": "hi", "models": ["quick"]})
    start = await client.wait_for(is_type("stream_start"))
    assert start["model"] == "quick"
    assert not client.of_type("message")[0].get("queued")
    await client.close()


async def test_a_subject_keeps_its_participant_id_across_connections_and_rooms(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    rooms = ["lobby", "kitchen"]
    first = await join(http, secured, token=token("ada", rooms), name="asked-for")
    again = await join(http, secured, token=token("ada", rooms))
    elsewhere = await join(http, secured, "kitchen", token=token("ada", rooms))
    other = await join(http, secured, token=token("bob", rooms))
    ada = first.welcome["participant"]["id"]
    assert again.welcome["participant"]["id"] == ada
    assert elsewhere.welcome["participant"]["id"] == ada
    assert other.welcome["participant"]["id"] != ada
    assert "ada" not in ada, "the id does not give the subject away"
    # Two tabs of one person: closing one leaves the other in the room, and in its presence.
    room = secured.app[DIRECTORY].rooms["lobby"]
    await first.close()
    await eventually(lambda: len(room.members) == 2)
    carol = await join(http, secured, token=token("carol", rooms))
    carol_id = carol.welcome["participant"]["id"]
    await wait_presence(other, lambda listed: carol_id in listed)
    index = presence_index(other, lambda listed: carol_id in listed)
    assert index is not None
    states = dict(presence_states(other.welcome, other.frames))
    assert sorted(states[index]) == sorted([ada, other.welcome["participant"]["id"], carol_id])
    assert sorted(p["id"] for p in carol.welcome["participants"]) == sorted(states[index])
    await carol.close()
    await again.send({"type": "ping", "id": "alive"})
    await again.wait_for(is_type("pong", id="alive"))
    for client in (again, elsewhere, other):
        await client.close()


async def test_the_tokens_name_wins_over_the_one_hello_asks_for(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    named = await join(http, secured, token=token(name="Ada L."), name="Admin")
    unnamed = await join(http, secured, token=token("bob"), name="Bob")
    assert named.welcome["participant"]["name"] == "Ada L."
    assert unnamed.welcome["participant"]["name"] == "Bob"
    await named.close()
    await unnamed.close()


async def test_open_mode_ignores_any_token(server: TestServer, http: aiohttp.ClientSession) -> None:
    client = await join(http, server, token="whatever")
    assert client.welcome["type"] == "welcome"
    await client.close()


# --- SSE -------------------------------------------------------------------------------------


async def _events_status(
    http: aiohttp.ClientSession, server: TestServer, room: str = "lobby", **params: str
) -> tuple[int, Any]:
    url = server.make_url(f"/v1/rooms/{room}/events").with_query(params)
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_an_event_stream_needs_a_valid_token_for_its_room(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    for params, status, code in (
        ({}, 401, "unauthorized"),
        ({"token": token(ttl_s=-5)}, 401, "unauthorized"),
        ({"token": token(tokens=FORGED)}, 401, "unauthorized"),
        ({"token": token(rooms=["kitchen"])}, 403, "forbidden"),
    ):
        got, body = await _events_status(http, secured, **params)
        assert (got, body["type"], body["code"]) == (status, "error", code), params
    sse = await SseClient.connect(http, secured.make_url("/"), token=token(name="Sam"))
    assert sse.welcome["participant"]["name"] == "Sam"
    sse.close()


async def test_posted_frames_need_the_bearer_token_of_the_sessions_subject(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    mine = token("ada")
    sse = await SseClient.connect(http, secured.make_url("/"), token=mine)
    ping = {"type": "ping", "id": "x"}
    status, body, _ = await sse.post(ping)
    assert (status, body["code"]) == (401, "unauthorized")
    status, body, _ = await sse.post(ping, headers={"Authorization": "Basic abc"})
    assert (status, body["code"]) == (401, "unauthorized")
    status, body, _ = await sse.post(ping, headers=bearer(token(ttl_s=-1)))
    assert (status, body["code"]) == (401, "unauthorized")
    status, body, _ = await sse.post(ping, headers=bearer(token("mallory")))
    assert (status, body["code"]) == (403, "forbidden"), "another subject may not use the session"
    status, body, _ = await sse.post(ping, headers=bearer(mine))
    assert (status, body) == (202, {"ok": True})
    await sse.wait_for(is_type("pong", id="x"))
    sse.close()


async def test_a_viewers_posted_prompt_is_forbidden_with_its_ref_and_the_session_goes_on(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    viewer = token("eve", role="viewer")
    sse = await SseClient.connect(http, secured.make_url("/"), token=viewer)
    status, body, _ = await sse.post(
        {"type": "prompt", "id": "vp", "text": "hi"}, headers=bearer(viewer)
    )
    assert (status, body["code"], body["ref"]) == (403, "forbidden", "vp")
    status, _, _ = await sse.post({"type": "ping", "id": "y"}, headers=bearer(viewer))
    assert status == 202
    await sse.wait_for(is_type("pong", id="y"))
    sse.close()


# --- plain HTTP ------------------------------------------------------------------------------


async def test_history_needs_a_bearer_token_for_its_room(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    url = secured.make_url("/v1/rooms/lobby/messages")
    for headers, status, code in (
        ({}, 401, "unauthorized"),
        (bearer("junk"), 401, "unauthorized"),
        (bearer(token(rooms=["kitchen"])), 403, "forbidden"),
    ):
        async with http.get(url, headers=headers) as response:
            body = await response.json()
            assert (response.status, body["code"]) == (status, code), headers
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with http.get(url, headers=bearer(token(role="viewer"))) as response:
        assert response.status == 200
        assert (await response.json())["messages"] == []


async def test_chat_needs_a_members_token_and_an_allowed_model(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    url = secured.make_url("/v1/chat")
    for headers, body, status, code in (
        ({}, {"message": "hi"}, 401, "unauthorized"),
        (bearer(token(tokens=FORGED)), {"message": "hi"}, 401, "unauthorized"),
        (bearer(token(role="viewer")), {"message": "hi"}, 403, "forbidden"),
        (bearer(token(models=["quick"])), {"message": "hi", "model": "slow"}, 403, "forbidden"),
    ):
        async with http.post(url, json=body, headers=headers) as response:
            answer = await response.json()
            assert (response.status, answer["code"]) == (status, code), (headers, body)
    # `rooms` does not matter to a chat, which is in no room.
    headers = bearer(token(rooms=[], models=["quick"]))
    async with http.post(
        url, json={"message": "hi", "model": "quick"}, headers=headers
    ) as response:
        assert response.status == 200
        assert (await response.json())["reason"] == "complete"


async def test_the_model_list_needs_no_token(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(secured.make_url("/v1/models")) as response:
        assert response.status == 200
        assert {m["id"] for m in (await response.json())["models"]} == {"slow", "quick"}


# --- origins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1.evil.example:80", "file://"])
async def test_a_websocket_handshake_from_a_foreign_page_is_refused_before_the_upgrade(
    server: TestServer, http: aiohttp.ClientSession, origin: str
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(server.make_url("/v1/rooms/lobby/ws"), headers={"Origin": origin})
    assert refused.value.status == 403
    assert "lobby" not in server.app[DIRECTORY].rooms, "the room was never opened"


async def test_the_servers_own_page_an_allowed_origin_and_no_origin_pass(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    allowed = ("https://app.example.com", "http://dev.example:*")
    server = await start_server(fast_settings(db_path, allowed_origins=allowed))
    own = f"http://127.0.0.1:{server.port}"
    for headers in (
        {},
        {"Origin": own},
        {"Origin": "https://app.example.com"},
        {"Origin": "http://dev.example:3000"},
    ):
        client = await join(http, server, headers=headers)
        await client.close()
    for origin in (
        "https://app.example.com:8443",
        "http://app.example.com",
        EVIL,
        "http://localhost:5173",
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.make_url("/v1/rooms/lobby/ws"), headers={"Origin": origin})
        assert refused.value.status == 403, origin


async def test_a_cross_origin_text_plain_post_runs_nothing(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    sse = await SseClient.connect(http, server.make_url("/"))
    simple = {"Origin": EVIL, "Content-Type": "text/plain"}
    status, body, headers = await sse.post(
        {"type": "prompt", "id": "x1", "text": "hi"}, headers=simple
    )
    assert (status, body["code"]) == (403, "forbidden")
    assert "Access-Control-Allow-Origin" not in headers
    async with http.post(
        server.make_url("/v1/chat"), data=b'{"message": "spend"}', headers=simple
    ) as response:
        assert response.status == 403
    status, _, _ = await _events_or_status(http, server, {"Origin": "null"})
    assert status == 403
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        assert (await response.json())["messages"] == [], "no prompt was stored"
    sse.close()


async def _events_or_status(
    http: aiohttp.ClientSession, server: TestServer, headers: dict[str, str]
) -> tuple[int, Any, Any]:
    async with http.get(server.make_url("/v1/rooms/lobby/events"), headers=headers) as response:
        return response.status, await response.json(), response.headers


async def test_cors_headers_name_allowed_origins_only(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    url = server.make_url("/v1/rooms/lobby/messages")
    page = "http://localhost:5173"  # loopback pages are allowed by default
    async with http.get(url, headers={"Origin": page}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == page
        assert "Origin" in response.headers["Vary"]
    async with http.get(url) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
    async with http.get(url, headers={"Origin": EVIL}) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
    preflight = {"Origin": page, "Access-Control-Request-Method": "POST"}
    async with http.options(server.make_url("/v1/chat"), headers=preflight) as response:
        assert response.headers["Access-Control-Allow-Origin"] == page
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    async with http.options(
        server.make_url("/v1/chat"), headers={**preflight, "Origin": EVIL}
    ) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
    async with http.get(
        server.make_url("/v1/rooms/lobby/events"), headers={"Origin": page}
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == page


# --- DNS rebinding ---------------------------------------------------------------------------


async def test_open_mode_answers_only_to_addresses_localhost_and_allowed_names(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    allowed = ("https://chat.example.com",)
    server = await start_server(fast_settings(db_path, allowed_origins=allowed))
    port = server.port
    # A page of rebind.example, once its name resolves to 127.0.0.1, is "same origin".
    rebound = {"Host": f"rebind.example:{port}"}
    for path in ("/v1/rooms/lobby/messages", "/v1/models", "/"):
        async with http.get(server.make_url(path), headers=rebound) as response:
            assert response.status == 403, path
            assert (await response.json())["code"] == "forbidden"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(
            server.make_url("/v1/rooms/lobby/ws"),
            headers={**rebound, "Origin": f"http://rebind.example:{port}"},
        )
    assert refused.value.status == 403
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "chat.example.com"):
        async with http.get(server.make_url("/v1/models"), headers={"Host": host}) as response:
            assert response.status == 200, host


async def test_with_tokens_any_host_name_will_do(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    headers = {"Host": "chat.example.com", **bearer(token())}
    async with http.get(secured.make_url("/v1/rooms/lobby/messages"), headers=headers) as response:
        assert response.status == 200


async def test_oversized_tokens_are_refused_cleanly(
    secured: TestServer, http: aiohttp.ClientSession
) -> None:
    huge = "e" * 6000
    async with http.get(
        secured.make_url("/v1/rooms/lobby/messages"), headers=bearer(huge)
    ) as response:
        assert (response.status, (await response.json())["code"]) == (401, "unauthorized")
    status, body = await _events_status(http, secured, token=huge)
    assert (status, body["code"]) == (400, "bad_frame"), "hello.token holds at most 4,096"
    frame, code = await refusal(http, secured, token=huge)
    assert (frame["code"], code) == ("bad_frame", 1002)
