"""What an operator sees: every metric moves when its event happens; health and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from rtserver.app import create_app
from rtserver.config import Limits, ModelSpec
from rtserver.errors import ProviderError
from rtserver.keys import METRICS, STORE
from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, TextDelta
from tests.conftest import ServerFactory, ws_url
from tests.integration.scripted_providers import Firehose
from tests.support import RoomClient, fast_settings, is_type

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Gated:
    """Three tokens, then waits for ``gate`` before it finishes."""

    kind = "demo"

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        for text in ("a", "b", "c"):
            yield TextDelta(text)
        await self.gate.wait()
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


class Failing:
    """One token, then the vendor fails."""

    kind = "demo"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        yield TextDelta("x")
        raise ProviderError("provider_error", "the vendor failed")

    async def aclose(self) -> None:
        return None


async def scrape(http: aiohttp.ClientSession, server: TestServer) -> Samples:
    async with http.get(server.make_url("/metrics")) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def until(
    http: aiohttp.ClientSession, server: TestServer, check: Callable[[Samples], bool]
) -> Samples:
    """Scrape until ``check`` holds (the token counter moves in batches); bounded."""
    async with asyncio.timeout(15):
        while True:
            samples = await scrape(http, server)
            if check(samples):
                return samples
            await asyncio.sleep(0.05)


async def test_every_metric_moves_when_its_event_happens(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    gated = Gated()
    models = (
        ModelSpec(id="gated", provider="demo", default=True),
        ModelSpec(id="failing", provider="demo"),
    )
    settings = fast_settings(db_path, models=models, limits=Limits(checkpoint_interval=0.05))
    server = await start_server(settings, providers={"gated": gated, "failing": Failing()})
    before = await scrape(http, server)
    for name in ("rtserver_connections", "rtserver_rooms", "rtserver_streams_running"):
        assert value(before, name) == 0, name

    alice = await RoomClient.connect(http, ws_url(server, "ops"), name="alice")
    joined = await scrape(http, server)
    assert value(joined, "rtserver_connections") == 1
    assert value(joined, "rtserver_rooms") == 1

    await alice.send({"type": "prompt", "id": "p1", "text": "go", "models": ["gated", "failing"]})
    await alice.wait_for(is_type("stream_end", reason="error"))
    await alice.wait_for(lambda _: len(alice.of_type("token")) == 4)
    running = await until(
        http, server, lambda s: value(s, "rtserver_tokens_total", model="gated") == 3
    )
    assert value(running, "rtserver_streams_running") == 1
    assert value(running, "rtserver_tokens_total", model="failing") == 1
    assert value(running, "rtserver_stream_ends_total", model="failing", reason="error") == 1
    assert (
        value(running, "rtserver_provider_errors_total", model="failing", code="provider_error")
        == 1
    )
    assert value(running, "rtserver_ttft_seconds_count", model="gated") == 1
    assert value(running, "rtserver_ttft_seconds_count", model="failing") == 1
    assert value(running, "rtserver_prompts_total") == 1

    gated.gate.set()
    await alice.wait_count("stream_end", 2)
    ended = await scrape(http, server)
    assert value(ended, "rtserver_streams_running") == 0
    assert value(ended, "rtserver_stream_ends_total", model="gated", reason="complete") == 1

    last = alice.room_events()[-1]["seq"]
    since = {"epoch": alice.welcome["epoch"], "seq": last}
    bob = await RoomClient.connect(http, ws_url(server, "ops"), name="bob", since=since)
    carol = await RoomClient.connect(
        http, ws_url(server, "ops"), name="carol", since={"epoch": "gone", "seq": 3}
    )
    resumed = await scrape(http, server)
    assert value(resumed, "rtserver_resumes_total", kind="replay") == 1
    assert value(resumed, "rtserver_resumes_total", kind="snapshot") == 1
    assert value(resumed, "rtserver_connections") == 3

    for client in (alice, bob, carol):
        await client.close()
    left = await until(http, server, lambda s: value(s, "rtserver_connections") == 0)
    assert value(left, "rtserver_rooms") == 1  # an idle room stays open for resumes


async def test_a_slow_consumer_drop_is_counted(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    hose = Firehose()
    settings = fast_settings(
        db_path,
        models=(ModelSpec(id="hose", provider="demo", default=True),),
        limits=Limits(outbox_bytes=1 << 20),
    )
    server = await start_server(settings, providers={"hose": hose})
    stalled = await RoomClient.connect(http, ws_url(server, "slow"), hello=False)
    try:
        await stalled.send({"type": "hello", "name": "stalled"})
        # It never reads again; the firehose fills every buffer up to its outbox.
        await stalled.send({"type": "prompt", "id": "p1", "text": "flood"})
        dropped = await until(
            http, server, lambda s: value(s, "rtserver_slow_consumer_drops_total") == 1
        )
        assert value(dropped, "rtserver_connections") == 0
    finally:
        hose.stop.set()
        await stalled.close()


async def test_health_stays_up_and_readiness_follows_the_store(
    start_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start_server()
    async with http.get(server.make_url("/healthz")) as health:
        assert health.status == 200
    async with http.get(server.make_url("/readyz")) as ready:
        assert ready.status == 200
        assert (await ready.json())["store"] == "up"

    await server.app[STORE].close()

    async with http.get(server.make_url("/readyz")) as ready:
        assert ready.status == 503
        assert await ready.json() == {"status": "unavailable", "store": "down"}
    async with http.get(server.make_url("/healthz")) as health:
        assert health.status == 200


def test_two_apps_in_one_process_count_apart(db_path: str) -> None:
    first = create_app(fast_settings(db_path))
    second = create_app(fast_settings(db_path + ".2"))
    first[METRICS].prompts.inc()
    assert first[METRICS].registry is not second[METRICS].registry
    assert b"rtserver_prompts_total 1.0" in first[METRICS].render()
    assert b"rtserver_prompts_total 0.0" in second[METRICS].render()
