"""Redis restarted (empty) under two nodes mid-stream: clear errors, recovery, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from rtserver.keys import BUS, STORE
from rtserver.store.postgres import PostgresStore
from tests.conftest import ServerFactory
from tests.integration.cluster.nodes import start_nodes, urls
from tests.integration.cluster.redis_server import OwnRedis
from tests.integration.test_crash import poll_until
from tests.support import RoomClient, eventually, is_type


async def test_redis_restarted_mid_stream(
    start_server: ServerFactory,
    postgres_url: str,
    bus_prefix: str,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    redis = OwnRedis(tmp_path)
    await redis.start()
    try:
        nodes = await start_nodes(
            start_server, 2, db=postgres_url, prefix=bus_prefix, redis_url=redis.url
        )
        url_a, url_b = urls(nodes, "outage")
        a = await RoomClient.connect(http, url_a, name="a")
        b = await RoomClient.connect(http, url_b, name="b")
        await a.send({"type": "prompt", "id": "q1", "text": "long", "models": ["slow"]})
        start = await b.wait_for(is_type("stream_start"))
        await b.wait_count("token", 3)

        redis.kill()
        await eventually(lambda: not any(n.app[BUS].healthy for n in nodes))
        # While Redis is away a prompt is refused, clearly, and the room carries on.
        await b.send({"type": "prompt", "id": "q-during", "text": "now?", "models": ["quick"]})
        refused = await b.wait_for(is_type("error", ref="q-during"), timeout=20)
        assert refused["code"] == "busy"
        assert refused["retry_after"] > 0
        await redis.start()
        await eventually(lambda: all(n.app[BUS].healthy for n in nodes), timeout=30)

        # The log was lost with Redis: both nodes start a new epoch and send their
        # participants away (1001) to come back for a snapshot of it.
        assert await a.wait_closed(timeout=30) == 1001
        assert await b.wait_closed(timeout=30) == 1001
        since = {"epoch": b.welcome["epoch"], "seq": b.room_events()[-1]["seq"]}
        back = await RoomClient.connect(http, url_b, name="b", since=since)
        assert back.welcome["resumed"] is False
        assert back.welcome["epoch"] != since["epoch"]

        # Nothing acknowledged is lost: the prompt, and the reply with its reason and text.
        store = nodes[0].app[STORE]

        async def finished() -> dict[str, object] | None:
            for message in await store.recent("outage", 10):
                if message.stream == start["stream"] and message.status != "streaming":
                    return {"status": message.status, "text": message.text}
            return None

        async def reply_final() -> bool:
            return await finished() is not None

        await poll_until(reply_final, "the reply was never finalised", timeout=30)
        final = await finished()
        assert final is not None
        # What was streamed before the outage is the start of what was kept.
        assert str(final["text"]).startswith(b.texts()[start["stream"]])
        users = [m.prompt_id for m in await store.recent("outage", 10) if m.role == "user"]
        assert users == ["q1"]

        # And the room goes on, on either node.
        await back.send({"type": "prompt", "id": "q2", "text": "again", "models": ["quick"]})
        message = await back.wait_for(is_type("message", prompt_id="q2"), timeout=20)
        after = await back.wait_for(is_type("stream_start", reply_to=message["id"]))
        end = await back.wait_for(is_type("stream_end", stream=after["stream"]), timeout=20)
        assert end["reason"] == "complete"
        await back.close()
    finally:
        redis.kill()


async def test_a_node_stops_while_redis_is_away(
    start_server: ServerFactory,
    postgres_url: str,
    bus_prefix: str,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    redis = OwnRedis(tmp_path)
    await redis.start()
    try:
        (node,) = await start_nodes(
            start_server, 1, db=postgres_url, prefix=bus_prefix, redis_url=redis.url
        )
        (url,) = urls([node], "away")
        client = await RoomClient.connect(http, url, name="a")
        await client.send({"type": "prompt", "id": "q1", "text": "long", "models": ["slow"]})
        start = await client.wait_for(is_type("stream_start"))
        redis.kill()
        await eventually(lambda: not node.app[BUS].healthy)
        # Shutting down ends the stream (stored interrupted) without waiting on Redis forever.
        async with asyncio.timeout(60):
            await node.close()
        assert await client.wait_closed(timeout=30) == 1001
        store_db = [m async for m in _replies(postgres_url, start["stream"])]
        assert store_db == ["interrupted"]
    finally:
        redis.kill()


async def _replies(db: str, stream: str) -> AsyncIterator[str]:
    store = await PostgresStore.open(db)
    try:
        for message in await store.recent("away", 10):
            if message.stream == stream:
                yield message.status
    finally:
        await store.close()
