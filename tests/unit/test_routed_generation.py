"""A router's Generation through its phases: ROUTING first; a stop while routing still publishes
the stream's start (with the rules' choice) before its end, and closes the classifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rtserver.config import DEMO_MODELS, ModelSpec
from rtserver.protocol.frames import HistoryMessage, StreamEnd, StreamStart
from rtserver.providers.base import GenerationRequest, Provider
from rtserver.providers.catalog import Catalog
from rtserver.providers.registry import build_provider
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.generation import Generation, Phase
from rtserver.turns.routed import RoutedStream
from rtserver.turns.routing import Routing
from tests.fakes.drive import ask
from tests.support import eventually
from tests.unit.test_generation import Scripted, Sink

ROUTER = {
    "id": "auto",
    "provider": "router",
    "fallback": ["fast", "slow"],
    "classifier": "tiny",
    "classifier_timeout_s": 30,
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "g.db")
    try:
        yield opened
    finally:
        await opened.close()


async def _routed(
    store: SqliteStore, classifier: Scripted, answer: Scripted
) -> tuple[Generation, Sink, list[Phase]]:
    specs = [
        *DEMO_MODELS,
        ModelSpec(id="tiny", provider="demo"),
        ModelSpec(id="fast", provider="demo"),
        ModelSpec(id="slow", provider="demo"),
        msgspec.convert(ROUTER, ModelSpec),
    ]
    providers: dict[str, Provider] = {"tiny": classifier, "fast": answer}
    catalog = Catalog.build(
        specs, defaults=[], make_provider=lambda s: build_provider(s, {}), overrides=providers
    )
    routing = Routing(catalog)
    user = HistoryMessage(id="u1", role="user", text="hi", status="complete", ts=1)
    reply = HistoryMessage(
        id="r1",
        role="assistant",
        text="",
        status="streaming",
        ts=1,
        model="fast",
        reply_to="u1",
        stream="s1",
        routed_from="auto",
    )
    await store.start_turn("room", user, "p1", [reply])
    sink = Sink()

    def announce(routed: RoutedStream, stopped: bool) -> None:
        sink.publish(
            StreamStart(
                seq=0,
                stream="s1",
                model=routed.model.id,
                message="r1",
                reply_to="u1",
                ts=1,
                routed_from="auto",
                route_reason=routed.reason,
            )
        )

    routed = RoutedStream(
        router_id="auto",
        text="hi",
        stream="s1",
        message_id="r1",
        routing=routing,
        publish=sink.publish,
        store=store,
        announce=announce,
    )

    async def prepare() -> GenerationRequest:
        return ask()

    model = catalog.get("auto")
    assert model is not None
    generation = Generation(
        stream="s1",
        model=model,
        reply=reply,
        prepare=prepare,
        sink=sink,
        finished=sink.reply_finished,
        store=store,
        checkpoint_interval=60,
        routed=routed,
    )
    seen: list[Phase] = []
    enter = generation._enter

    def record(phase: Phase) -> None:
        seen.append(phase)
        enter(phase)

    generation._enter = record  # type: ignore[method-assign]
    return generation, sink, seen


async def test_a_routed_generation_routes_then_streams_as_any_other(store: SqliteStore) -> None:
    generation, sink, seen = await _routed(store, Scripted("slow"), Scripted("hel", "lo"))
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    assert seen == [Phase.ROUTING, Phase.PREPARING, Phase.STREAMING, Phase.ENDING, Phase.ENDED]
    start, *_, end = sink.events
    assert isinstance(start, StreamStart)
    assert (start.model, start.route_reason) == ("slow", "chosen by classifier tiny")
    assert isinstance(end, StreamEnd)
    [final] = sink.finished
    assert (final.model, final.routed_from) == ("slow", "auto")
    [_, stored] = await store.recent("room", 5)
    assert stored.model == "slow"


async def test_a_stop_while_routing_starts_and_ends_the_stream_and_closes_the_classifier(
    store: SqliteStore,
) -> None:
    classifier = Scripted(hang=True)
    answer = Scripted("never")
    generation, sink, seen = await _routed(store, classifier, answer)
    generation.start()
    await eventually(lambda: generation.phase is Phase.ROUTING)
    generation.stop("cancelled")
    await asyncio.wait_for(generation.wait(), 10)
    assert seen == [Phase.ROUTING, Phase.ENDING, Phase.ENDED]
    start, end = sink.events
    assert isinstance(start, StreamStart)
    assert start.route_reason == "no route matched: first fallback (stopped while routing)"
    assert start.model == "fast"
    assert isinstance(end, StreamEnd)
    assert end.reason == "cancelled"
    assert classifier.closed.is_set()
    assert not answer.closed.is_set()


async def test_a_stop_before_the_task_runs_still_starts_the_stream(store: SqliteStore) -> None:
    generation, sink, seen = await _routed(store, Scripted("fast"), Scripted("x"))
    generation.start()
    generation.stop("interrupted")
    await asyncio.wait_for(generation.wait(), 10)
    assert seen == [Phase.ENDING, Phase.ENDED]
    assert [type(e) for e in sink.events] == [StreamStart, StreamEnd]
