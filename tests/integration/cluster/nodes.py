"""Several rtserver nodes in one test process: one Redis key prefix, one PostgreSQL schema."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.integration.cluster.conftest import REDIS_URL
from tests.support import fast_settings


async def start_nodes(
    start_server: ServerFactory,
    count: int,
    *,
    db: str,
    prefix: str,
    redis_url: str = REDIS_URL,
    limits: Limits | None = None,
    **settings: Any,
) -> list[TestServer]:
    """``count`` nodes sharing rooms: the same store and the same bus."""
    return [
        await start_server(
            fast_settings(db, redis_url=redis_url, bus_prefix=prefix, limits=limits, **settings)
        )
        for _ in range(count)
    ]


def urls(nodes: list[TestServer], room: str) -> list[str]:
    return [ws_url(node, room) for node in nodes]
