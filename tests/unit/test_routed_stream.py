"""One routed stream: the rules' choice at once, the classifier's when asked, and a switch that
is published, recorded in the store and counted against the model that failed."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rtserver.config import DEMO_MODELS, ModelSpec
from rtserver.errors import ProviderError
from rtserver.ops.metrics import Metrics
from rtserver.protocol.frames import HistoryMessage, ModelSwitch, RoomEvent
from rtserver.providers.base import Provider, TextDelta
from rtserver.providers.catalog import Catalog, Model
from rtserver.providers.registry import build_provider
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.routed import RoutedStream
from rtserver.turns.routing import Routing
from tests.fakes.drive import ask
from tests.unit.test_fallback import Scripted

AUTO: dict[str, object] = {
    "id": "auto",
    "provider": "router",
    "routes": [{"when": {"max_chars": 10}, "model": "demo-fast"}],
    "fallback": ["demo", "demo-fast"],
}


def _routing(router: dict[str, object], providers: dict[str, Provider]) -> Routing:
    specs = [
        *DEMO_MODELS,
        ModelSpec(id="tiny", provider="demo"),
        msgspec.convert(router, ModelSpec),
    ]
    catalog = Catalog.build(
        specs,
        defaults=["auto"],
        make_provider=lambda spec: build_provider(spec, {}),
        overrides=providers,
    )
    return Routing(catalog)


async def _store(tmp_path: Path) -> tuple[SqliteStore, HistoryMessage]:
    store = await SqliteStore.open(tmp_path / "r.db")
    user = HistoryMessage(id="u1", role="user", text="hi", status="complete", ts=1)
    reply = HistoryMessage(
        id="r1",
        role="assistant",
        text="",
        status="streaming",
        ts=1,
        model="demo-fast",
        reply_to="u1",
        stream="s1",
        routed_from="auto",
    )
    assert await store.start_turn("room", user, "p1", [reply])
    return store, reply


async def test_a_failure_before_the_first_token_is_published_recorded_and_counted(
    tmp_path: Path,
) -> None:
    store, reply = await _store(tmp_path)
    down = ProviderError("rate_limited", "the provider's rate limit was reached")
    routing = _routing(AUTO, {"demo-fast": Scripted([], down), "demo": Scripted([TextDelta("ok")])})
    published: list[RoomEvent] = []
    metrics = Metrics()
    routed = RoutedStream(
        router_id="auto",
        text="hi",
        stream="s1",
        message_id=reply.id,
        routing=routing,
        publish=published.append,
        store=store,
        metrics=metrics,
    )
    try:
        assert not routed.needs_asking
        assert (await routed.choose()).reason == "route 1: 2 chars <= 10"
        assert routed.model.id == "demo-fast"
        texts = [d async for d in routed.deltas(ask())]
        await routed.settled()
        assert texts == [TextDelta("ok")]
        assert routed.model.id == "demo"
        assert published == [
            ModelSwitch(
                seq=0,
                stream="s1",
                model="demo",
                reason="demo-fast failed before its first token: "
                "the provider's rate limit was reached",
            )
        ]
        [_, stored] = await store.recent("room", 5)
        assert stored.model == "demo"
        assert b'rtserver_provider_errors_total{code="rate_limited",model="demo-fast"} 1.0' in (
            metrics.render()
        )
    finally:
        await store.close()


async def test_a_router_with_a_classifier_asks_it_and_keeps_the_rules_choice_at_hand(
    tmp_path: Path,
) -> None:
    store, reply = await _store(tmp_path)
    routing = _routing({**AUTO, "classifier": "tiny"}, {"tiny": Scripted([TextDelta("demo")])})
    routed = RoutedStream(
        router_id="auto",
        text="hi",
        stream="s1",
        message_id=reply.id,
        routing=routing,
        publish=lambda event: None,
        store=store,
    )
    try:
        assert routed.needs_asking
        assert routed.first.model == "demo-fast"
        choice = await routed.choose()
        assert choice.reason == "chosen by classifier tiny"
        assert isinstance(routed.model, Model)
        assert routed.model.id == "demo"
    finally:
        await store.close()
