"""A generation's checkpoint loop: one write per change of the reply, none while nothing
changed, and the meter told of each token once.

With ``checkpoint_interval=0`` the loop looks at the reply at every turn of the event loop, so
it has looked (at least once) at whatever the reply is while the model waits on a gate, before
the test lets the model go on: no test here waits on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, cast

from rtserver.config import ModelSpec
from rtserver.ops.metrics import StreamMeter
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelInfo,
    ToolCallRecord,
    Usage,
)
from rtserver.providers.base import Delta, GenerationRequest, ReasoningDelta, TextDelta
from rtserver.providers.catalog import Model
from rtserver.turns.generation import Generation
from tests.unit.test_generation import Sink


class Gated:
    """A model that sends its deltas, stopping at each gate (an Event) until it is set."""

    kind = "test"

    def __init__(self, *script: Delta | asyncio.Event) -> None:
        self.script = script
        self.at_gate = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        for step in self.script:
            if isinstance(step, asyncio.Event):
                self.at_gate.set()
                await step.wait()
                self.at_gate.clear()
            else:
                yield step

    async def aclose(self) -> None:
        return None


class Checkpoints:
    """A reply store that records every checkpoint, in order."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str | None]] = []
        self._changed = asyncio.Event()

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        self.written.append((text, reasoning))
        self._changed.set()

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
        return None


class TokenMeter:
    """Records each batch of tokens a generation tells its stream meter of."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.told = asyncio.Event()

    def enter(self) -> None:
        pass

    def first_token(self, seconds: float) -> None:
        pass

    def tokens(self, count: int) -> None:
        self.batches.append(count)
        self.told.set()

    def ended(self, reason: str, error_code: str | None) -> None:
        pass


def _generation(provider: Gated, store: Checkpoints, **kwargs: Any) -> Generation:
    sink = Sink()

    async def prepare() -> GenerationRequest:
        return GenerationRequest(messages=())

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
        checkpoint_interval=0,
        **kwargs,
    )


async def test_a_checkpoint_is_written_once_per_change_and_never_for_an_empty_reply() -> None:
    before, after_a, after_b = asyncio.Event(), asyncio.Event(), asyncio.Event()
    provider = Gated(before, TextDelta("a"), after_a, TextDelta("b"), after_b)
    store = Checkpoints()
    generation = _generation(provider, store)
    generation.start()
    try:
        # Nothing streamed yet: the loop looks, and has nothing to save.
        await asyncio.wait_for(provider.at_gate.wait(), 5)
        before.set()
        await store.until(lambda: ("a", None) in store.written)
        # The loop goes on looking after an unchanged reply, and saves the next change.
        after_a.set()
        await store.until(lambda: ("ab", None) in store.written)
    finally:
        for gate in (before, after_a, after_b):
            gate.set()
        await asyncio.wait_for(generation.wait(), 5)
    assert store.written == [("a", None), ("ab", None)]


async def test_a_reply_of_one_thought_is_checkpointed() -> None:
    gate = asyncio.Event()
    store = Checkpoints()
    generation = _generation(Gated(ReasoningDelta("h"), gate), store)
    generation.start()
    try:
        await store.until(lambda: bool(store.written))
    finally:
        gate.set()
        await asyncio.wait_for(generation.wait(), 5)
    assert store.written == [("", "h")]


async def test_the_meter_is_told_of_each_token_once_across_batches() -> None:
    gate = asyncio.Event()
    meter = TokenMeter()
    provider = Gated(TextDelta("a"), gate, TextDelta("b"), ReasoningDelta("c"))
    generation = _generation(provider, Checkpoints(), meter=cast(StreamMeter, meter))
    generation.start()
    try:
        await asyncio.wait_for(meter.told.wait(), 5)
        assert meter.batches == [1]
    finally:
        gate.set()
    await asyncio.wait_for(generation.wait(), 5)
    # The first batch while streaming, the rest as the stream ends: three tokens in all.
    assert meter.batches[0] == 1
    assert sum(meter.batches) == 3
