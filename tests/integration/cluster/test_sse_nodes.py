"""SSE without sticky sessions: a POST that reaches another node than its event stream's."""

from __future__ import annotations

import aiohttp
import msgspec
from yarl import URL

from tests.conftest import ServerFactory
from tests.integration.cluster.nodes import start_nodes
from tests.integration.sse_client import SseClient
from tests.support import is_type


async def test_frames_posted_to_the_other_node_reach_the_session(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = await start_nodes(start_server, 2, db=postgres_url, prefix=bus_prefix)
    sse = await SseClient.connect(http, URL(str(first.make_url("/"))), "posts", name="ada")
    other = URL(str(second.make_url("/v1/rooms/posts/frames")))
    session = {"session": sse.welcome["session"]}

    async def post(body: bytes, params: dict[str, str] = session) -> tuple[int, dict[str, object]]:
        async with http.post(other.with_query(params), data=body) as response:
            return response.status, await response.json()

    frame = {"type": "prompt", "id": "q1", "text": "hi", "models": ["quick"]}
    assert await post(msgspec.json.encode(frame)) == (202, {"ok": True})
    message = await sse.wait_for(is_type("message", prompt_id="q1"))
    assert message["author"]["name"] == "ada"
    start = await sse.wait_for(is_type("stream_start"))
    await sse.wait_for(is_type("stream_end", stream=start["stream"]))
    # The session's node answers what the frame earned, with its ref, as on one node.
    status, body = await post(msgspec.json.encode({"type": "cancel", "id": "c1", "stream": "s_x"}))
    assert (status, body["code"], body["ref"]) == (404, "not_found", "c1")
    # A session no node holds, a malformed frame and a hello are refused clearly.
    status, body = await post(msgspec.json.encode(frame), {"session": "sess_forged"})
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await post(b"{not json")
    assert (status, body["code"]) == (400, "bad_frame")
    status, body = await post(msgspec.json.encode({"type": "hello", "name": "x"}))
    assert (status, body["code"]) == (400, "bad_frame")
    sse.close()
