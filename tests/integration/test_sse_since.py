"""Which SSE ``since`` values count as a resume: the metric tells a parsed one from a dropped one.

An unusable ``since`` is never refused (a browser would give up on the stream); it is either
read as a position in another epoch, which gets a snapshot and counts as a snapshot resume,
or dropped as no position at all, which counts as nothing. ``rtserver_resumes_total`` shows
which of the two the server made of it.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.integration.sse_client import SseClient

SNAPSHOTS = 'rtserver_resumes_total{kind="snapshot"}'


async def _snapshots(http: aiohttp.ClientSession, server: TestServer) -> float:
    async with http.get(server.make_url("/metrics")) as response:
        text = await response.text()
    found = [line for line in text.splitlines() if line.startswith(SNAPSHOTS + " ")]
    assert found, text
    return float(found[0].split()[1])


@pytest.mark.parametrize(
    ("since", "counted"),
    [
        pytest.param("e" * 128 + ":5", True, id="epoch-of-128-characters"),
        pytest.param("e" * 129 + ":5", False, id="epoch-of-129-characters"),
        pytest.param("a:b:5", True, id="epoch-holding-a-colon"),
        pytest.param(":5", False, id="empty-epoch"),
        pytest.param("epoch:x5", False, id="seq-not-digits"),
    ],
)
async def test_a_since_is_read_as_a_position_only_when_well_formed(
    server: TestServer, http: aiohttp.ClientSession, since: str, counted: bool
) -> None:
    before = await _snapshots(http, server)
    sse = await SseClient.connect(http, server.make_url("/"), since=since)
    # Never the room's epoch, so never a replay: the welcome is a full snapshot either way.
    assert sse.welcome["resumed"] is False
    sse.close()
    assert await _snapshots(http, server) == before + (1 if counted else 0)
