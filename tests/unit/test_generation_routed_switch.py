"""A router's generation whose first candidate fails before its first token: the next one is
asked the same request, and the reply is final only once the switch is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import msgspec

from rtserver.config import DEMO_MODELS, ModelSpec
from rtserver.errors import ProviderError
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelSwitch,
    ToolCallRecord,
    Usage,
)
from rtserver.providers.base import ChatTurn, Delta, GenerationRequest, Provider, TextDelta
from rtserver.providers.catalog import Catalog
from rtserver.providers.registry import build_provider
from rtserver.turns.generation import Generation, Phase
from rtserver.turns.routed import RoutedStream
from rtserver.turns.routing import Routing
from tests.support import eventually
from tests.unit.test_generation import Sink, _end

ASKED = GenerationRequest(messages=(ChatTurn("user", "hi"),))


class Candidate:
    """A model that records each request, sends ``deltas``, then raises ``fail`` if given."""

    kind = "test"

    def __init__(self, *deltas: Delta, fail: ProviderError | None = None) -> None:
        self.deltas = deltas
        self.fail = fail
        self.requests: list[GenerationRequest | None] = []

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        for delta in self.deltas:
            yield delta
        if self.fail is not None:
            raise self.fail

    async def aclose(self) -> None:
        return None


class Ledger:
    """The store of both sides: the switch's record (held until released) and the final write.

    ``order`` says which write landed first.
    """

    def __init__(self) -> None:
        self.order: list[str] = []
        self.release = asyncio.Event()

    async def switch_model(self, message_id: str, model: str) -> None:
        await self.release.wait()
        self.order.append(f"switch {model}")

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        return None

    async def finish_reply(
        self,
        message_id: str,
        *,
        text: str,
        status: MessageStatus,
        usage: Usage | None,
        tool_calls: Sequence[ToolCallRecord],
        error: ErrorInfo | None,
        reasoning: str = "",
    ) -> None:
        self.order.append(f"finish {status} {text}")


def _routed(providers: dict[str, Provider], ledger: Ledger) -> tuple[Generation, Sink]:
    router = {"id": "auto", "provider": "router", "fallback": ["fast", "slow"]}
    specs = [
        *DEMO_MODELS,
        ModelSpec(id="fast", provider="demo"),
        ModelSpec(id="slow", provider="demo"),
        msgspec.convert(router, ModelSpec),
    ]
    catalog = Catalog.build(
        specs, defaults=[], make_provider=lambda s: build_provider(s, {}), overrides=providers
    )
    sink = Sink()
    routed = RoutedStream(
        router_id="auto",
        text="hi",
        stream="s1",
        message_id="r1",
        routing=Routing(catalog),
        publish=sink.publish,
        store=ledger,
    )

    async def prepare() -> GenerationRequest:
        return ASKED

    model = catalog.get("auto")
    assert model is not None
    generation = Generation(
        stream="s1",
        model=model,
        reply=HistoryMessage(id="r1", role="assistant", text="", status="streaming", ts=1),
        prepare=prepare,
        sink=sink,
        finished=sink.reply_finished,
        store=ledger,
        checkpoint_interval=60,
        routed=routed,
    )
    return generation, sink


async def test_a_switch_asks_the_next_model_and_is_recorded_before_the_reply_is_final() -> None:
    down = ProviderError("rate_limited", "slow down")
    fast, slow = Candidate(fail=down), Candidate(TextDelta("hel"), TextDelta("lo"))
    ledger = Ledger()
    generation, sink = _routed({"fast": fast, "slow": slow}, ledger)
    generation.start()
    try:
        # Its answer streamed, the stream waits on the switch's record to end.
        await eventually(lambda: generation.phase in (Phase.ENDING, Phase.ENDED))
        assert ledger.order == [], "not final while the switch is unrecorded"
    finally:
        ledger.release.set()
    await asyncio.wait_for(generation.wait(), 10)
    assert ledger.order == ["switch slow", "finish complete hello"]
    assert (fast.requests, slow.requests) == ([ASKED], [ASKED])
    [switch] = [e for e in sink.events if isinstance(e, ModelSwitch)]
    assert switch.model == "slow"
    assert _end(sink).reason == "complete"
    assert (sink.finished[0].model, sink.finished[0].routed_from) == ("slow", "auto")
