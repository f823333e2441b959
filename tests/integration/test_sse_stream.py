"""An SSE event stream as a client reads it: its headers, its heartbeats, a padded resume id."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from tests.conftest import ServerFactory
from tests.integration.sse_client import SseClient
from tests.support import fast_settings


async def test_an_event_stream_is_named_so_and_neither_cached_nor_buffered(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    sse = await SseClient.connect(http, server.make_url("/"))
    headers = sse.response.headers
    # EventSource refuses a stream of any other type.
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    sse.close()


async def test_a_quiet_stream_gets_heartbeat_comments(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(sse_heartbeat=0.05)))
    sse = await SseClient.connect(http, server.make_url("/"))
    await sse.wait_until(lambda: len(sse.comments) >= 2, timeout=5)
    assert set(sse.comments) == {"keep-alive"}
    sse.close()


async def test_a_since_of_fifteen_digits_resumes(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    base = server.make_url("/")
    first = await SseClient.connect(http, base)
    epoch = first.welcome["epoch"]
    first.close()
    # Fifteen digits are the most a seq may have (sixteen get a snapshot); zeros keep it small.
    padded = await SseClient.connect(http, base, since=f"{epoch}:" + "0" * 15)
    assert padded.welcome["resumed"] is True
    padded.close()


def _rooms_open(metrics: str) -> float:
    [line] = [line for line in metrics.splitlines() if line.startswith("rtserver_rooms ")]
    return float(line.split()[1])


async def test_a_post_with_an_unknown_session_opens_no_room_on_a_single_node(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    # Only nodes that share rooms ask the room for a session held elsewhere; alone, a forged
    # session must not make the server load (and keep open) a room nobody is in.
    url = server.make_url("/v1/rooms/nobody/frames")
    async with http.post(url, params={"session": "sess_forged"}, json={"type": "ping"}) as response:
        assert response.status == 403
    async with http.get(server.make_url("/metrics")) as response:
        assert _rooms_open(await response.text()) == 0
