"""A generation's reasoning: published apart from the answer, timed, checkpointed and kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

from rtserver.config import ModelSpec
from rtserver.ops.metrics import StreamMeter
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelInfo,
    ReasoningEvent,
    StreamEnd,
    TokenEvent,
    ToolCallRecord,
    Usage,
)
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    GenerationRequest,
    Provider,
    ReasoningDelta,
    TextDelta,
    UsageDelta,
)
from rtserver.providers.catalog import Model
from rtserver.turns.generation import Generation
from tests.unit.test_generation import Sink
from tests.unit.test_generation_numbers import Deltas


class Kept:
    """A reply store that keeps the reasoning it is given, checkpointed and final."""

    def __init__(self) -> None:
        self.checkpoints: list[tuple[str, str | None]] = []
        self.checkpointed = asyncio.Event()
        self.final: dict[str, Any] = {}

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        self.checkpoints.append((text, reasoning))
        self.checkpointed.set()

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
        self.final = {"text": text, "reasoning": reasoning, "usage": usage}


def _generation(provider: Provider, sink: Sink, store: Kept, **kwargs: Any) -> Generation:
    async def prepare() -> GenerationRequest:
        return GenerationRequest(messages=(ChatTurn("user", "q" * 40),))

    return Generation(
        stream="s1",
        model=Model(
            spec=ModelSpec(id="m", provider="demo"),
            provider=provider,
            info=ModelInfo(id="m", label="m", provider="demo"),
        ),
        reply=HistoryMessage(id="r1", role="assistant", text="", status="streaming", ts=1),
        prepare=prepare,
        sink=sink,
        finished=sink.reply_finished,
        store=store,
        checkpoint_interval=0.001,
        **kwargs,
    )


async def _run(provider: Provider, **kwargs: Any) -> tuple[Sink, Kept]:
    sink, store = Sink(), Kept()
    generation = _generation(provider, sink, store, **kwargs)
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    return sink, store


async def test_reasoning_is_published_apart_and_kept_apart_from_the_text() -> None:
    provider = Deltas(
        ReasoningDelta("plan"), ReasoningDelta(""), ReasoningDelta(" it"), TextDelta("done")
    )
    sink, store = await _run(provider)
    kinds = [(type(e).__name__, getattr(e, "text", None)) for e in sink.events]
    assert kinds[:3] == [
        ("ReasoningEvent", "plan"),
        ("ReasoningEvent", " it"),
        ("TokenEvent", "done"),
    ]
    assert all(e.stream == "s1" for e in sink.events if isinstance(e, ReasoningEvent | TokenEvent))
    [final] = sink.finished
    assert (final.text, final.reasoning) == ("done", "plan it")
    assert (store.final["text"], store.final["reasoning"]) == ("done", "plan it")


async def test_time_to_first_token_is_to_the_first_thought() -> None:
    readings = iter((10.0, 10.2, 13.0))
    provider = Deltas(
        ReasoningDelta("hm"), TextDelta("a"), UsageDelta(input_tokens=1, output_tokens=8)
    )
    sink, _ = await _run(provider, clock=lambda: next(readings))
    end = sink.events[-1]
    assert isinstance(end, StreamEnd)
    assert (end.ttft_ms, end.duration_ms) == (200, 3000)
    # Seven tokens after the first, thinking included as the vendor counts it, in 2.8 s.
    assert end.tokens_per_s == 2.5


async def test_a_reply_that_only_thought_has_estimated_usage_and_no_text() -> None:
    sink, store = await _run(Deltas(ReasoningDelta("abcdefgh")))
    end = sink.events[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage == Usage(input_tokens=10, output_tokens=2, estimated=True)
    assert (store.final["text"], store.final["reasoning"]) == ("", "abcdefgh")


async def test_checkpoints_save_the_reasoning_with_the_text() -> None:
    hold = asyncio.Event()
    sink, store = Sink(), Kept()
    generation = _generation(
        Deltas(ReasoningDelta("thin"), ReasoningDelta("king"), hold=hold), sink, store
    )
    generation.start()
    try:
        await asyncio.wait_for(store.checkpointed.wait(), 10)
        assert store.checkpoints[0] == ("", "thinking")
    finally:
        hold.set()
        await asyncio.wait_for(generation.wait(), 10)
    # A reply without reasoning checkpoints as before: None leaves the column as it is.
    plain = Kept()
    hold_plain = asyncio.Event()
    quiet = _generation(Deltas(TextDelta("a"), hold=hold_plain), Sink(), plain)
    quiet.start()
    try:
        await asyncio.wait_for(plain.checkpointed.wait(), 10)
        assert plain.checkpoints[0] == ("a", None)
    finally:
        hold_plain.set()
        await asyncio.wait_for(quiet.wait(), 10)


class Clocked:
    """A model that sets the test's clock before each delta: the time each one arrives."""

    kind = "test"

    def __init__(self, clock: list[float], *timed: tuple[float, Delta]) -> None:
        self._clock = clock
        self._timed = timed

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        for at, delta in self._timed:
            self._clock[0] = at
            yield delta
        self._clock[0] = 13.0

    async def aclose(self) -> None:
        return None


class Meter:
    """Records what a generation tells its stream meter."""

    def __init__(self) -> None:
        self.first_token_s: list[float] = []
        self.counted = 0

    def enter(self) -> None:
        pass

    def first_token(self, seconds: float) -> None:
        self.first_token_s.append(seconds)

    def tokens(self, count: int) -> None:
        self.counted += count

    def ended(self, reason: str, error_code: str | None) -> None:
        pass


async def test_the_first_thought_starts_the_clock_and_every_thought_is_counted() -> None:
    clock = [10.0]
    meter = Meter()
    provider = Clocked(
        clock,
        (10.5, ReasoningDelta("hm")),
        (11.0, ReasoningDelta(" so")),
        (12.0, TextDelta("yes")),
    )
    sink, _ = await _run(provider, clock=lambda: clock[0], meter=cast(StreamMeter, meter))
    end = sink.events[-1]
    assert isinstance(end, StreamEnd)
    assert end.ttft_ms == 500, "the first thought, not the first word of the answer"
    assert meter.first_token_s == [0.5]
    assert meter.counted == 3, "two thoughts and a word"


async def test_a_thoughts_token_count_from_the_provider_is_its_usage() -> None:
    sink, _ = await _run(Deltas(ReasoningDelta("ab", tokens=9)))
    end = sink.events[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage is not None
    assert end.usage.output_tokens == 9, "the provider's count, not one from the characters"
