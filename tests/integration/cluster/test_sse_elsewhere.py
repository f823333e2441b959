"""A POST that reaches another node than its event stream's, with room tokens."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
from yarl import URL

from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, bearer, token
from tests.integration.cluster.conftest import REDIS_URL
from tests.integration.sse_client import SseClient
from tests.support import fast_settings, is_type


async def test_the_other_node_checks_the_posts_token_and_refuses_a_hello(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = [
        await start_server(
            fast_settings(postgres_url, redis_url=REDIS_URL, bus_prefix=bus_prefix), env=ENV
        )
        for _ in range(2)
    ]
    ada = token("ada", ["posts"])
    sse = await SseClient.connect(http, URL(str(first.make_url("/"))), "posts", token=ada)
    other = URL(str(second.make_url("/v1/rooms/posts/frames")))
    session = {"session": sse.welcome["session"]}

    async def post(frame: dict[str, Any], as_token: str) -> tuple[int, Any]:
        async with http.post(
            other.with_query(session), data=msgspec.json.encode(frame), headers=bearer(as_token)
        ) as response:
            return response.status, await response.json()

    assert await post({"type": "ping", "id": "there"}, ada) == (202, {"ok": True})
    await sse.wait_for(is_type("pong", id="there"))
    # Another subject's token may not post for ada's session.
    status, body = await post({"type": "ping", "id": "bob"}, token("bob", ["posts"]))
    assert (status, body["code"]) == (403, "forbidden")
    # The same subject, with a token for another room only: refused before the frame is sent.
    status, body = await post({"type": "ping", "id": "x"}, token("ada", ["kitchen"]))
    assert (status, body["code"]) == (403, "forbidden")
    assert body["message"] == "the token does not allow room 'posts'"
    status, body = await post({"type": "hello", "id": "h1"}, ada)
    assert (status, body["code"]) == (400, "bad_frame")
    assert (body["message"], body["ref"]) == ("hello is the events request, not a frame", "h1")
    # With no session named, no node is asked and the frame is not read: open a new stream.
    async with http.post(
        other, data=msgspec.json.encode({"type": "hello", "id": "h2"}), headers=bearer(ada)
    ) as response:
        assert response.status == 403
        body = await response.json()
    assert body["message"] == "no such session in this room: open a new event stream"
    sse.close()
