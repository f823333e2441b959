"""Nodes on the real Redis (``RTSERVER_TEST_REDIS``, default 127.0.0.1:6379), one key prefix a test.

Every key a test's nodes write is under a prefix of its own, deleted afterwards, so tests share
the server without seeing one another. When Redis does not answer the test fails, saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rtserver.bus.redis import RedisBus

REDIS_URL: Final = os.environ.get("RTSERVER_TEST_REDIS", "redis://127.0.0.1:6379/0")

BusOpener = Callable[..., Awaitable[RedisBus]]


async def delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def bus_prefix() -> AsyncIterator[str]:
    prefix = f"rt-test-{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({exc}): these tests need it; start it "
            "(`redis-server --daemonize yes`, as .ci/run does) or point RTSERVER_TEST_REDIS at one",
            pytrace=False,
        )
    finally:
        await client.aclose()
    yield prefix
    await delete_prefix(REDIS_URL, prefix)


@pytest.fixture
async def open_bus(bus_prefix: str) -> AsyncIterator[BusOpener]:
    """Opens one node's bus on the test's prefix; closes every one opened."""
    opened: list[RedisBus] = []

    async def open_node(url: str = REDIS_URL, **kwargs: Any) -> RedisBus:
        kwargs.setdefault("prefix", bus_prefix)
        bus = await RedisBus.open(url, **kwargs)
        opened.append(bus)
        return bus

    yield open_node
    for bus in opened:
        await bus.close()
