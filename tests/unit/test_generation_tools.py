"""A generation with tools: its steps move through the TOOLS phase, every event is published
in order, usage adds up across steps, and the stored reply holds the calls and results."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path

import pytest

from rtserver.config import ModelSpec
from rtserver.protocol.frames import (
    HistoryMessage,
    ModelInfo,
    StreamEnd,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from rtserver.providers.catalog import Model
from rtserver.store.sqlite import SqliteStore
from rtserver.tools.base import ToolSpec
from rtserver.tools.toolbox import BoundTool, ToolSet
from rtserver.turns.approvals import Approvals
from rtserver.turns.generation import Generation, Phase
from rtserver.turns.tools import ToolAccess, ToolLimits
from tests.unit.test_generation import Sink, _end


class TwoSteps:
    """Step one calls ``slow`` (and stops there); step two answers from the result."""

    kind = "test"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        if request.messages[-1].role == "tool":
            yield TextDelta("It says ")
            yield TextDelta(request.messages[-1].tool_results[0].content)
            yield UsageDelta(input_tokens=20, output_tokens=2)
        else:
            yield TextDelta("Asking. ")
            yield ToolCallDelta(call="c1", name="slow", args='{"x":')
            yield ToolCallDelta(call="c1", args=" 1}")
            yield UsageDelta(input_tokens=10, output_tokens=5)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


class Slow:
    """A tool that waits until released (or cancelled)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = False

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name="slow", description="waits")

    async def call(self, args: Mapping[str, object]) -> str:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return f"got {args['x']}"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "g.db")
    try:
        yield opened
    finally:
        await opened.close()


async def generation_with(
    store: SqliteStore, provider: TwoSteps, tool: Slow
) -> tuple[Generation, Sink]:
    user = HistoryMessage(id="u1", role="user", text="hi", status="complete", ts=1)
    reply = HistoryMessage(
        id="r1", role="assistant", text="", status="streaming", ts=1, model="m", reply_to="u1"
    )
    await store.start_turn("room", user, "p1", [reply])
    sink = Sink()

    async def prepare() -> GenerationRequest:
        return GenerationRequest(messages=(ChatTurn("user", "hi"),))

    tools = ToolSet([BoundTool(tool, "t", "auto", 5.0)])
    generation = Generation(
        stream="s1",
        model=Model(
            spec=ModelSpec(id="m", provider="demo"),
            provider=provider,
            info=ModelInfo(id="m", label="m", provider="x"),
        ),
        reply=reply,
        prepare=prepare,
        sink=sink,
        finished=sink.reply_finished,
        store=store,
        checkpoint_interval=0.01,
        tools=ToolAccess(toolset=lambda: tools, approvals=Approvals(), limits=ToolLimits()),
    )
    return generation, sink


async def test_a_tool_step_then_an_answer_through_the_phases(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, tool = TwoSteps(), Slow()
    generation, sink = await generation_with(store, provider, tool)
    seen: list[Phase] = []
    enter = generation._enter

    def record(phase: Phase) -> None:
        seen.append(phase)
        enter(phase)

    monkeypatch.setattr(generation, "_enter", record)
    generation.start()
    await asyncio.wait_for(tool.started.wait(), 5)
    assert generation.phase is Phase.TOOLS
    assert [c.call for c in generation.tool_calls] == ["c1"]
    tool.release.set()
    await asyncio.wait_for(generation.wait(), 5)
    assert seen == [
        Phase.PREPARING,
        Phase.STREAMING,
        Phase.TOOLS,
        Phase.STREAMING,
        Phase.ENDING,
        Phase.ENDED,
    ]
    kinds = [type(e).__name__ for e in sink.events]
    assert kinds == [
        "TokenEvent",
        "ToolCallEvent",
        "ToolCallEvent",
        "ToolResultEvent",
        "TokenEvent",
        "TokenEvent",
        "StreamEnd",
    ]
    (result,) = [e for e in sink.events if isinstance(e, ToolResultEvent)]
    assert (result.call, result.name, result.result) == ("c1", "slow", "got 1")
    end = _end(sink)
    assert end.reason == "complete"
    assert end.usage is not None
    assert (end.usage.input_tokens, end.usage.output_tokens) == (30, 7)
    (final,) = sink.finished
    assert final.text == "Asking. It says got 1"
    assert final.tool_calls is not None
    (call,) = final.tool_calls
    assert (call.args, call.result) == ('{"x": 1}', "got 1")
    (stored,) = [m for m in await store.recent("room", 10) if m.role == "assistant"]
    assert stored.tool_calls == final.tool_calls
    # The second request carries the first step and its result.
    assert [t.role for t in provider.requests[1].messages] == ["user", "assistant", "tool"]
    assert [t.name for t in provider.requests[0].tools] == ["slow"]


async def test_a_stop_while_a_tool_runs_cancels_it_and_ends_the_stream(
    store: SqliteStore,
) -> None:
    provider, tool = TwoSteps(), Slow()
    generation, sink = await generation_with(store, provider, tool)
    generation.start()
    await asyncio.wait_for(tool.started.wait(), 5)
    generation.stop("cancelled")
    await asyncio.wait_for(generation.wait(), 5)
    assert tool.cancelled
    assert _end(sink).reason == "cancelled"
    assert not [e for e in sink.events if isinstance(e, ToolResultEvent)]
    assert len(provider.requests) == 1
    (final,) = sink.finished
    assert final.status == "cancelled"
    assert final.text == "Asking. "
    assert final.tool_calls is not None
    assert final.tool_calls[0].result is None
    assert [type(e) for e in sink.events[:2]] == [TokenEvent, ToolCallEvent]
    assert isinstance(sink.events[-1], StreamEnd)
