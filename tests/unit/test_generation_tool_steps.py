"""A generation's tool steps: each step hands the model back only its own text, a step cut at
its length limit runs none of its calls, and an asked call waits for the room's approvals and
is timed by the generation's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

from rtserver.config import ModelSpec
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelInfo,
    Participant,
    ToolApprovalEvent,
    ToolCallRecord,
    ToolErrorInfo,
    ToolResultEvent,
    Usage,
)
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    TextDelta,
    ToolCallDelta,
)
from rtserver.providers.catalog import Model
from rtserver.tools.base import Approval, ToolSpec
from rtserver.tools.toolbox import BoundTool, ToolSet
from rtserver.turns.approvals import Approvals
from rtserver.turns.generation import Generation
from rtserver.turns.tools import ToolAccess, ToolLimits
from tests.unit.test_generation import Sink, _end

ANN = Participant(id="p_ann", name="ann")
#: What the model says at each step (by how many tool results it has been sent), and calls.
Steps = Callable[[int], Sequence[Delta]]


class Stepped:
    """A model whose deltas depend on the step; it records every request."""

    kind = "test"

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.requests: list[GenerationRequest] = []

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        for delta in self.steps(sum(t.role == "tool" for t in request.messages)):
            yield delta

    async def aclose(self) -> None:
        return None


class Echo:
    """A tool that answers ``echo <x>``, advancing ``clock`` by a quarter second as it works."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.calls: list[Mapping[str, object]] = []

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name="echo", description="echoes x")

    async def call(self, args: Mapping[str, object]) -> str:
        self.calls.append(args)
        self.clock[0] += 0.25
        return f"echo {args['x']}"


class Quiet:
    """A reply store that keeps nothing."""

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
        return None


def _generation(
    provider: Stepped, tool: Echo, *, approval: Approval = "auto", **kwargs: Any
) -> tuple[Generation, Sink, Approvals]:
    sink = Sink()
    approvals = Approvals()
    tools = ToolSet([BoundTool(tool, "t", approval, 5.0)])

    async def prepare() -> GenerationRequest:
        return GenerationRequest(messages=(ChatTurn("user", "hi"),))

    generation = Generation(
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
        store=Quiet(),
        checkpoint_interval=60,
        clock=lambda: tool.clock[0],
        tools=ToolAccess(toolset=lambda: tools, approvals=approvals, limits=ToolLimits()),
        **kwargs,
    )
    return generation, sink, approvals


def _call(call: str, x: int) -> ToolCallDelta:
    return ToolCallDelta(call=call, name="echo", args=f'{{"x": {x}}}')


async def test_each_step_hands_the_model_back_only_the_text_of_that_step() -> None:
    def steps(results: int) -> Sequence[Delta]:
        if results == 0:
            return [TextDelta("One. "), _call("c1", 1)]
        if results == 1:
            return [TextDelta("Two. "), _call("c2", 2)]
        return [TextDelta("Done.")]

    provider, tool = Stepped(steps), Echo([0.0])
    generation, sink, _ = _generation(provider, tool)
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    assert _end(sink).reason == "complete"
    assert sink.finished[0].text == "One. Two. Done."
    third = provider.requests[2]
    assert [(t.role, t.content) for t in third.messages if t.role != "tool"] == [
        ("user", "hi"),
        ("assistant", "One. "),
        ("assistant", "Two. "),
    ]
    assert [t.tool_results[0].content for t in third.messages if t.role == "tool"] == [
        "echo 1",
        "echo 2",
    ]


async def test_the_calls_of_a_step_cut_at_its_length_limit_are_refused_not_run() -> None:
    provider, tool = (
        Stepped(lambda _: [TextDelta("Let me "), _call("c1", 1), FinishDelta("length")]),
        Echo([0.0]),
    )
    generation, sink, _ = _generation(provider, tool)
    generation.start()
    await asyncio.wait_for(generation.wait(), 10)
    assert tool.calls == []
    assert len(provider.requests) == 1, "no step after a cut one"
    [result] = [e for e in sink.events if isinstance(e, ToolResultEvent)]
    assert (result.call, result.result) == ("c1", None)
    assert result.error == ToolErrorInfo(
        code="failed", message="the reply reached its length limit before the call could run"
    )
    assert _end(sink).reason == "length"


async def test_an_asked_call_waits_for_the_rooms_approval_and_is_timed_by_the_stream_clock() -> (
    None
):
    def steps(results: int) -> Sequence[Delta]:
        return [_call("c1", 7)] if results == 0 else [TextDelta("It said echo 7.")]

    provider, tool = Stepped(steps), Echo([100.0])
    generation, sink, approvals = _generation(provider, tool, approval="ask")
    generation.start()
    try:
        await sink.wait_events(2)
        assert isinstance(sink.events[1], ToolApprovalEvent)
        assert generation.waiting == ["c1"]
        approvals.answer("c1", allow=True, by=ANN)
    finally:
        await asyncio.wait_for(generation.wait(), 10)
    [result] = [e for e in sink.events if isinstance(e, ToolResultEvent)]
    # The quarter second the tool took on the generation's (manual) clock.
    assert (result.result, result.duration_ms) == ("echo 7", 250)
    assert tool.calls == [{"x": 7}]
    assert _end(sink).reason == "complete"
