"""The numbers a stream_end carries (usage, ttft, duration, rate) and the checkpoints on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import pytest

from rtserver.config import ModelSpec
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelInfo,
    StreamEnd,
    ToolCallRecord,
    Usage,
)
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    GenerationRequest,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from rtserver.providers.catalog import Model
from rtserver.turns.generation import Generation
from tests.unit.test_generation import Sink


class Deltas:
    """A model that sends ``deltas``, then waits on ``hold`` (if given) before it ends."""

    kind = "test"

    def __init__(self, *deltas: Delta, hold: asyncio.Event | None = None) -> None:
        self.deltas = deltas
        self.hold = hold

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        for delta in self.deltas:
            yield delta
        if self.hold is not None:
            await self.hold.wait()

    async def aclose(self) -> None:
        return None


class Recorded:
    """A reply store that records what it is asked to write."""

    def __init__(self) -> None:
        self.checkpoints: list[str] = []
        self.checkpointed = asyncio.Event()
        self.finished: list[dict[str, Any]] = []

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        self.checkpoints.append(text)
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
        self.finished.append({"id": message_id, "text": text, "status": status, "usage": usage})


def _clock(*moments: float) -> Any:
    """A clock that reads ``moments`` in turn (start, first token, end)."""
    readings: Iterator[float] = iter(moments)
    return lambda: next(readings)


async def _run(
    provider: Deltas, *, prompt: str = "", clock: Any = None, store: Recorded | None = None
) -> tuple[StreamEnd, Recorded]:
    sink = Sink()
    store = store or Recorded()

    async def prepare() -> GenerationRequest:
        return GenerationRequest(messages=(ChatTurn("user", prompt),) if prompt else ())

    reply = HistoryMessage(id="r1", role="assistant", text="", status="streaming", ts=1)
    generation = Generation(
        stream="s1",
        model=Model(
            spec=ModelSpec(id="m", provider="demo"),
            provider=provider,
            info=ModelInfo(id="m", label="m", provider="demo"),
        ),
        reply=reply,
        prepare=prepare,
        sink=sink,
        finished=sink.reply_finished,
        store=store,
        checkpoint_interval=0.001,
        **({"clock": clock} if clock else {}),
    )
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    end = sink.events[-1]
    assert isinstance(end, StreamEnd)
    return end, store


async def test_the_vendors_usage_gives_the_rate_after_the_first_token() -> None:
    provider = Deltas(TextDelta("a"), TextDelta("b"), UsageDelta(input_tokens=7, output_tokens=5))
    end, store = await _run(provider, clock=_clock(10.0, 10.5, 12.5))
    assert end.usage == Usage(input_tokens=7, output_tokens=5)
    assert (end.ttft_ms, end.duration_ms) == (500, 2500)
    # Four tokens after the first, in the two seconds after it.
    assert end.tokens_per_s == 2.0
    assert store.finished[-1]["usage"] == end.usage


async def test_without_the_vendors_counts_usage_is_estimated_at_four_characters_a_token() -> None:
    provider = Deltas(TextDelta("abcdefgh"), ToolCallDelta(call="c", name="f", args="{}1234"))
    end, _ = await _run(provider, prompt="x" * 40)
    assert end.usage == Usage(input_tokens=10, output_tokens=4, estimated=True)


async def test_an_estimate_is_never_below_one_token() -> None:
    end, _ = await _run(Deltas(TextDelta("a")))
    assert end.usage == Usage(input_tokens=1, output_tokens=1, estimated=True)


async def test_no_text_and_no_calls_has_no_usage_ttft_or_rate() -> None:
    end, _ = await _run(Deltas(), clock=_clock(1.0, 1.25))
    assert (end.usage, end.ttft_ms, end.tokens_per_s) == (None, None, None)
    assert end.duration_ms == 250


@pytest.mark.parametrize(
    ("output_tokens", "moments", "rate"),
    [
        (1, (0.0, 1.0, 2.0), None),
        (2, (0.0, 1.0, 1.0), None),
        (2, (0.0, 1.0, 1.5), 2.0),
        (5, (0.0, 1.0, 4.0), 1.33),
    ],
)
async def test_a_rate_needs_two_tokens_and_some_time(
    output_tokens: int, moments: tuple[float, ...], rate: float | None
) -> None:
    usage = UsageDelta(input_tokens=1, output_tokens=output_tokens)
    end, _ = await _run(Deltas(TextDelta("a"), usage), clock=_clock(*moments))
    assert end.tokens_per_s == rate


async def test_checkpoints_save_the_text_so_far() -> None:
    hold = asyncio.Event()
    store = Recorded()
    provider = Deltas(TextDelta("par"), TextDelta("tial"), hold=hold)
    task = asyncio.create_task(_run(provider, store=store))
    try:
        await asyncio.wait_for(store.checkpointed.wait(), 10)
        assert store.checkpoints[0] == "partial"
    finally:
        hold.set()
        end, _ = await task
    assert set(store.checkpoints) == {"partial"}
    assert (end.reason, store.finished[-1]["text"]) == ("complete", "partial")


async def test_empty_text_deltas_are_skipped_and_the_stream_goes_on() -> None:
    end, store = await _run(Deltas(TextDelta(""), TextDelta("x"), TextDelta(""), TextDelta("y")))
    assert store.finished[-1]["text"] == "xy"
    assert end.reason == "complete"


async def test_a_one_character_reply_is_checkpointed_too() -> None:
    hold = asyncio.Event()
    store = Recorded()
    task = asyncio.create_task(_run(Deltas(TextDelta("a"), hold=hold), store=store))
    try:
        await asyncio.wait_for(store.checkpointed.wait(), 10)
    finally:
        hold.set()
        await task
    assert store.checkpoints[0] == "a"


async def test_times_at_the_start_itself_are_zero() -> None:
    end, _ = await _run(Deltas(TextDelta("a")), clock=_clock(5.0, 5.0, 5.0))
    assert (end.ttft_ms, end.duration_ms) == (0, 0)


async def test_a_reply_that_cannot_be_saved_still_ends_its_stream() -> None:
    class Unsaveable(Recorded):
        async def finish_reply(self, message_id: str, **fields: Any) -> None:
            raise OSError("disk full")

    end, _ = await _run(Deltas(TextDelta("a")), store=Unsaveable())
    assert end.reason == "complete"
