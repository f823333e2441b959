"""The routers of a catalog: found by id, choosing by rules or by their classifier."""

from __future__ import annotations

import msgspec

from rtserver.config import DEMO_MODELS, ModelSpec
from rtserver.providers.base import Provider, TextDelta
from rtserver.providers.catalog import Catalog
from rtserver.providers.registry import build_provider
from rtserver.turns.routing import Routing
from tests.unit.test_fallback import Scripted


def _catalog(*routers: dict[str, object], classifier_says: str | None = None) -> Catalog:
    specs = [*DEMO_MODELS, *(msgspec.convert(r, ModelSpec) for r in routers)]
    overrides: dict[str, Provider] = {}
    if classifier_says is not None:
        specs.append(ModelSpec(id="tiny", provider="demo"))
        overrides["tiny"] = Scripted([TextDelta(classifier_says)])
    return Catalog.build(
        specs,
        defaults=["demo"],
        make_provider=lambda spec: build_provider(spec, {}),
        overrides=overrides,
    )


AUTO: dict[str, object] = {
    "id": "auto",
    "provider": "router",
    "routes": [{"when": {"max_chars": 10}, "model": "demo-fast"}],
    "fallback": ["demo", "demo-fast"],
}


async def test_routers_are_known_by_id_and_choose_by_their_rules() -> None:
    routing = Routing(_catalog(AUTO, {**AUTO, "id": "other", "routes": []}))
    assert routing.is_router("auto")
    assert routing.is_router("other")
    assert not routing.is_router("demo")
    choice = await routing.choose("auto", "hi")
    assert choice.reason == "route 1: 2 chars <= 10"
    assert [m.id for m in routing.candidates(choice)] == ["demo-fast", "demo"]
    assert (await routing.choose("other", "hi")).model == "demo"
    assert routing.first_choice("auto", "hi") == choice


async def test_a_router_with_a_classifier_asks_it() -> None:
    routing = Routing(_catalog({**AUTO, "classifier": "tiny"}, classifier_says="demo"))
    choice = await routing.choose("auto", "hi")
    assert choice.candidates == ("demo", "demo-fast")
    assert choice.reason == "chosen by classifier tiny"
    # The rules' choice stays at hand for a stream stopped while the classifier thinks.
    assert routing.first_choice("auto", "hi").model == "demo-fast"
