"""Per-user limits across nodes: one person on two nodes spends one allowance."""

from __future__ import annotations

import aiohttp

from rtserver.config import Limits
from tests.conftest import ServerFactory
from tests.integration.access_client import ENV, join, token
from tests.integration.cluster.conftest import REDIS_URL
from tests.integration.test_crash import poll_until
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


async def test_a_daily_budget_spent_on_one_node_holds_on_another(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    limits = Limits(tokens_per_user_per_day=3, token_flush_ms=0)
    settings = fast_settings(
        postgres_url, redis_url=REDIS_URL, bus_prefix=bus_prefix, limits=limits
    )
    first = await start_server(settings, env=ENV)
    second = await start_server(settings, env=ENV)
    ada = token("ada", rooms=["spend"])
    on_first = await join(http, first, "spend", token=ada)
    on_second = await join(http, second, "spend", token=ada)
    await on_first.send({"type": "prompt", "id": "q1", "text": "hi", "models": ["quick"]})
    message = await on_first.wait_for(is_type("message", prompt_id="q1"))
    start = await on_first.wait_for(is_type("stream_start", reply_to=message["id"]))
    end = await on_first.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["usage"]["output_tokens"] >= 3

    attempts = iter(range(1000))

    async def refused() -> bool:
        # The spend is counted once the reply has ended: ask until it shows.
        ref = f"q2-{next(attempts)}"
        await on_second.send({"type": "prompt", "id": ref, "text": "more", "models": ["quick"]})
        frame = await on_second.wait_for(lambda f: ref in (f.get("ref"), f.get("prompt_id")))
        return frame.get("code") == "rate_limited"

    await poll_until(refused, "the budget spent on the first node was not counted")
    for client in (on_first, on_second):
        await client.close()
