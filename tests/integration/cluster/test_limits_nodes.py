"""Per-user limits across nodes: one person on two nodes spends one allowance."""

from __future__ import annotations

import aiohttp

from rtserver.config import Limits
from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, join, token
from tests.integration.cluster.conftest import REDIS_URL
from tests.support import fast_settings, is_type


async def test_prompts_per_minute_count_across_nodes(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    limits = Limits(prompts_per_minute=2, token_flush_ms=0)
    settings = fast_settings(
        postgres_url, redis_url=REDIS_URL, bus_prefix=bus_prefix, limits=limits
    )
    first = await start_server(settings, env=ENV)
    second = await start_server(settings, env=ENV)
    ada = token("ada", rooms=["lim"])
    on_first = await join(http, first, "lim", token=ada)
    on_second = await join(http, second, "lim", token=ada)
    for n, client in enumerate((on_first, on_second)):
        await client.send({"type": "prompt", "id": f"q{n}", "text": "hi", "models": ["quick"]})
        message = await client.wait_for(is_type("message", prompt_id=f"q{n}"))
        start = await client.wait_for(is_type("stream_start", reply_to=message["id"]))
        await client.wait_for(is_type("stream_end", stream=start["stream"]))
    await on_first.send({"type": "prompt", "id": "q3", "text": "more", "models": ["quick"]})
    refused = await on_first.wait_for(is_type("error", ref="q3"))
    assert refused["code"] == "rate_limited"
    assert 0 < refused["retry_after"] <= 60
    # Someone else is not held back by ada's prompts.
    bob = await join(http, second, "lim", token=token("bob", rooms=["lim"]))
    await bob.send({"type": "prompt", "id": "b1", "text": "hi", "models": ["quick"]})
    await bob.wait_for(is_type("message", prompt_id="b1"))
    for client in (on_first, on_second, bob):
        await client.close()
