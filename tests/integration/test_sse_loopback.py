"""Event streams from a direct loopback peer each count alone, as WebSockets do."""

from __future__ import annotations

import aiohttp

from rtserver.config import Limits
from tests.conftest import ServerFactory
from tests.integration.sse_client import SseClient
from tests.support import fast_settings


async def test_streams_of_a_direct_loopback_peer_past_the_cap_are_each_welcomed(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    """Loopback without a proxy header is one machine's many clients: no shared address cap."""
    server = await start_server(fast_settings(db_path, limits=Limits(connections_per_client=2)))
    streams = []
    try:
        for index in range(3):
            # connect() asserts a 200 and a welcome: a counted third stream would get neither.
            sse = await SseClient.connect(http, server.make_url("/"), name=f"tab{index}")
            streams.append(sse)
        assert len({sse.welcome["participant"]["id"] for sse in streams}) == 3
    finally:
        for sse in streams:
            sse.close()
