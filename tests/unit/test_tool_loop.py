"""The tool loop's step (rtserver/turns/tools.py) with fake tools and a recording reporter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import pytest

from rtserver.errors import PeerError
from rtserver.protocol.frames import Participant, ToolCallRecord, ToolErrorInfo
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.tools.base import Approval, ToolError, ToolSpec
from rtserver.tools.toolbox import BoundTool, ToolSet
from rtserver.turns.approvals import Approvals
from rtserver.turns.tools import (
    StepCall,
    StepOutcome,
    ToolLimits,
    ToolLoop,
    bounded,
    continuation,
    run_steps,
)

BOB = Participant(id="u-bob", name="Bob")


class FakeTool:
    """A tool whose body is a coroutine function of its arguments."""

    def __init__(self, name: str, body: Callable[[Mapping[str, object]], Awaitable[str]]) -> None:
        self._spec = ToolSpec(name=name, description=f"the {name} tool")
        self._body = body
        self.cancelled = False

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def call(self, args: Mapping[str, object]) -> str:
        try:
            return await self._body(args)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@dataclass
class Recorder:
    """The reporter: what the room would have been told, in order."""

    events: list[tuple[str, object]] = field(default_factory=list)
    asked: asyncio.Event = field(default_factory=asyncio.Event)

    def approval(self, call: str, name: str, args: str) -> None:
        self.events.append(("approval", (call, name, args)))
        self.asked.set()

    def decision(self, call: str, allow: bool, by: Participant | None) -> None:
        self.events.append(("decision", (call, allow, by)))

    def result(self, record: ToolCallRecord) -> None:
        self.events.append(("result", record))

    @property
    def results(self) -> list[ToolCallRecord]:
        return [r for kind, r in self.events if kind == "result"]  # type: ignore[misc]


def toolset(*tools: FakeTool, approval: Approval = "auto", timeout_s: float = 5.0) -> ToolSet:
    return ToolSet(BoundTool(t, "test", approval, timeout_s) for t in tools)


def loop(recorder: Recorder, approvals: Approvals | None = None, **limits: float) -> ToolLoop:
    return ToolLoop(
        reporter=recorder,
        approvals=approvals or Approvals(),
        limits=ToolLimits(**limits),  # type: ignore[arg-type]
    )


async def echo(args: Mapping[str, object]) -> str:
    return json.dumps(args, sort_keys=True)


async def test_a_call_runs_and_its_result_is_reported_and_returned() -> None:
    recorder = Recorder()
    records = await loop(recorder).run(
        [StepCall("c1", "echo", '{"x": 1}')], toolset(FakeTool("echo", echo))
    )
    assert records == recorder.results
    (record,) = records
    assert (record.call, record.name, record.args, record.result) == (
        "c1",
        "echo",
        '{"x": 1}',
        '{"x": 1}',
    )
    assert record.error is None
    assert record.duration_ms is not None


async def test_the_calls_of_one_step_run_concurrently() -> None:
    # Each tool waits for the other to have started: run one after the other, they never end.
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def waiting_for(me: str, other: str) -> Callable[[Mapping[str, object]], Awaitable[str]]:
        async def body(args: Mapping[str, object]) -> str:
            started[me].set()
            await started[other].wait()
            return me

        return body

    tools = toolset(FakeTool("a", waiting_for("a", "b")), FakeTool("b", waiting_for("b", "a")))
    async with asyncio.timeout(5):
        records = await loop(Recorder()).run(
            [StepCall("1", "a", ""), StepCall("2", "b", "")], tools
        )
    assert [r.result for r in records] == ["a", "b"]


async def test_a_call_over_its_timeout_ends_with_a_timeout_error() -> None:
    never = FakeTool("never", lambda args: asyncio.Event().wait())  # type: ignore[arg-type,return-value]
    recorder = Recorder()
    (record,) = await loop(recorder).run(
        [StepCall("c", "never", "{}")], toolset(never, timeout_s=0.05)
    )
    assert record.error is not None
    assert record.error.code == "timeout"
    assert never.cancelled


async def test_a_tool_error_keeps_its_code_and_message() -> None:
    async def refuses(args: Mapping[str, object]) -> str:
        raise ToolError("bad_arguments", "n must be positive")

    (record,) = await loop(Recorder()).run(
        [StepCall("c", "r", "{}")], toolset(FakeTool("r", refuses))
    )
    assert record.error is not None
    assert (record.error.code, record.error.message) == ("bad_arguments", "n must be positive")


async def test_an_exception_from_a_tool_is_a_failed_call_without_its_text() -> None:
    async def raises(args: Mapping[str, object]) -> str:
        raise RuntimeError("secret path /etc/shadow")

    (record,) = await loop(Recorder()).run(
        [StepCall("c", "r", "{}")], toolset(FakeTool("r", raises))
    )
    assert record.error is not None
    assert record.error.code == "failed"
    assert "shadow" not in record.error.message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "nest too deeply"),
    ],
)
async def test_arguments_that_are_not_one_json_object_are_bad_arguments(
    args: str, message: str
) -> None:
    tool = FakeTool("echo", echo)
    (record,) = await loop(Recorder()).run([StepCall("c", "echo", args)], toolset(tool))
    assert record.error is not None
    assert record.error.code == "bad_arguments"
    assert message in record.error.message


async def test_a_call_of_a_tool_not_offered_is_unknown_tool_naming_the_offered_ones() -> None:
    (record,) = await loop(Recorder()).run(
        [StepCall("c", "rm_rf", "{}")], toolset(FakeTool("echo", echo))
    )
    assert record.error is not None
    assert record.error.code == "unknown_tool"
    assert "'rm_rf'" in record.error.message
    assert "echo" in record.error.message


async def test_a_huge_result_is_cut_to_the_limit_and_says_so() -> None:
    async def huge(args: Mapping[str, object]) -> str:
        return "x" * 1_000_000

    (record,) = await loop(Recorder(), result_chars=1000).run(
        [StepCall("c", "h", "{}")], toolset(FakeTool("h", huge))
    )
    assert record.result is not None
    assert record.result.startswith("x" * 1000)
    assert record.result.endswith("[cut: 999000 more characters]")
    assert len(record.result) < 1100


async def test_calls_beyond_the_per_step_limit_are_answered_with_an_error() -> None:
    calls = [StepCall(f"c{n}", "echo", "{}") for n in range(4)]
    records = await loop(Recorder(), calls_per_step=2).run(calls, toolset(FakeTool("echo", echo)))
    assert [r.error is None for r in records] == [True, True, False, False]
    assert records[3].error is not None
    assert "at most 2" in records[3].error.message


async def test_an_allowed_call_runs_after_its_approval() -> None:
    recorder, approvals = Recorder(), Approvals()
    step = asyncio.create_task(
        loop(recorder, approvals).run(
            [StepCall("c", "echo", '{"a": 1}')], toolset(FakeTool("echo", echo), approval="ask")
        )
    )
    await asyncio.wait_for(recorder.asked.wait(), 5)
    approvals.answer("c", allow=True, by=BOB)
    (record,) = await asyncio.wait_for(step, 5)
    assert record.result == '{"a": 1}'
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["approval", "decision", "result"]
    assert recorder.events[0][1] == ("c", "echo", '{"a": 1}')
    assert recorder.events[1][1] == ("c", True, BOB)


async def test_a_denied_call_never_runs_and_the_model_is_told_who_denied_it() -> None:
    recorder, approvals = Recorder(), Approvals()
    ran = FakeTool("echo", echo)
    step = asyncio.create_task(
        loop(recorder, approvals).run([StepCall("c", "echo", "{}")], toolset(ran, approval="ask"))
    )
    await asyncio.wait_for(recorder.asked.wait(), 5)
    approvals.answer("c", allow=False, by=BOB)
    (record,) = await asyncio.wait_for(step, 5)
    assert record.error is not None
    assert record.error.code == "denied"
    assert "Bob" in record.error.message
    assert recorder.events[1][1] == ("c", False, BOB)
    assert record.result is None


async def test_an_unanswered_approval_times_out_as_a_denial() -> None:
    recorder, approvals = Recorder(), Approvals()
    (record,) = await loop(recorder, approvals, approval_s=0.05).run(
        [StepCall("c", "echo", "{}")], toolset(FakeTool("echo", echo), approval="ask")
    )
    assert record.error is not None
    assert record.error.code == "denied"
    assert recorder.events[1][1] == ("c", False, None)
    # The question is gone: a late answer is not_found.
    with pytest.raises(PeerError) as late:
        approvals.answer("c", allow=True, by=BOB)
    assert late.value.code == "not_found"


async def test_an_answer_to_a_call_that_is_not_waiting_is_not_found() -> None:
    with pytest.raises(PeerError) as unknown:
        Approvals().answer("nope", allow=True, by=BOB)
    assert unknown.value.code == "not_found"


async def test_a_second_answer_is_not_found_and_the_first_decides() -> None:
    recorder, approvals = Recorder(), Approvals()
    step = asyncio.create_task(
        loop(recorder, approvals).run(
            [StepCall("c", "echo", "{}")], toolset(FakeTool("echo", echo), approval="ask")
        )
    )
    await asyncio.wait_for(recorder.asked.wait(), 5)
    approvals.answer("c", allow=False, by=BOB)
    with pytest.raises(PeerError):
        approvals.answer("c", allow=True, by=BOB)
    (record,) = await asyncio.wait_for(step, 5)
    assert record.error is not None
    assert record.error.code == "denied"


async def test_cancelling_the_step_cancels_running_tools_and_withdraws_questions() -> None:
    started = asyncio.Event()

    async def hangs(args: Mapping[str, object]) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    recorder, approvals = Recorder(), Approvals()
    hanging = FakeTool("hang", hangs)
    tools = ToolSet(
        [
            BoundTool(hanging, "t", "auto", 60.0),
            BoundTool(FakeTool("asks", echo), "t", "ask", 60.0),
        ]
    )
    step = asyncio.create_task(
        loop(recorder, approvals).run([StepCall("1", "hang", ""), StepCall("2", "asks", "")], tools)
    )
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(recorder.asked.wait(), 5)
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    assert hanging.cancelled
    assert "2" not in approvals
    # Nothing is reported for calls the cancel cut short.
    assert recorder.results == []


def test_bounded_leaves_short_text_alone() -> None:
    assert bounded("abc", 3) == "abc"
    assert bounded("abcd", 3) == "abc\n[cut: 1 more characters]"


def test_continuation_writes_the_step_and_its_results_for_the_provider() -> None:
    ok = ToolCallRecord(call="c1", name="add", args='{"a":1}', result="2", duration_ms=1)
    bad = ToolCallRecord(
        call="c2",
        name="rm",
        args="",
        error=ToolErrorInfo(code="denied", message="Bob denied the call"),
        duration_ms=0,
    )
    assistant, results = continuation("Let me check.", [ok, bad])
    assert assistant.role == "assistant"
    assert assistant.content == "Let me check."
    assert [(c.call, c.name, c.args) for c in assistant.tool_calls] == [
        ("c1", "add", '{"a":1}'),
        ("c2", "rm", "{}"),
    ]
    assert results.role == "tool"
    assert [(r.call, r.content, r.is_error) for r in results.tool_results] == [
        ("c1", "2", False),
        ("c2", "error (denied): Bob denied the call", True),
    ]


class ScriptedSteps:
    """The generation's ``step`` for run_steps: answers each request with the next outcome."""

    def __init__(self, *outcomes: StepOutcome) -> None:
        self._outcomes = list(outcomes)
        self.requests: list[GenerationRequest] = []

    async def __call__(self, request: GenerationRequest) -> StepOutcome:
        self.requests.append(request)
        return self._outcomes.pop(0)


def first_request() -> GenerationRequest:
    return GenerationRequest(messages=(ChatTurn("user", "go"),))


async def test_run_steps_asks_again_with_the_results_until_the_model_answers() -> None:
    steps = ScriptedSteps(
        StepOutcome("Let me see.", [StepCall("c1", "echo", '{"n": 1}')]),
        StepOutcome("", [StepCall("c2", "echo", '{"n": 2}')]),
        StepOutcome("Done.", []),
    )
    offered: list[int] = []

    def tools() -> ToolSet:
        offered.append(len(offered))
        return toolset(FakeTool("echo", echo))

    records = await run_steps(
        first_request(), step=steps, loop=loop(Recorder()), tools=tools, max_steps=5
    )
    assert [r.result for r in records] == ['{"n": 1}', '{"n": 2}']
    assert len(offered) == 3, "the tools are looked up again for every step"
    last = steps.requests[-1]
    assert [t.role for t in last.messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last.messages[1].content == "Let me see."
    assert last.messages[4].tool_results[0].content == '{"n": 2}'
    assert all(r.may_call for r in steps.requests)
    assert [t.name for t in last.tools] == ["echo"]


async def test_run_steps_stops_at_max_steps_and_refuses_the_calls_of_the_last() -> None:
    steps = ScriptedSteps(
        StepOutcome("", [StepCall("c1", "echo", "{}")]),
        StepOutcome("", [StepCall("c2", "echo", "{}")]),
    )
    recorder = Recorder()
    tool = toolset(FakeTool("echo", echo))
    records = await run_steps(
        first_request(), step=steps, loop=loop(recorder), tools=lambda: tool, max_steps=1
    )
    assert [r.call for r in records] == ["c1", "c2"]
    assert records[1].error is not None
    assert "at most 1 rounds" in records[1].error.message
    assert [r.may_call for r in steps.requests] == [True, False]
    assert recorder.results == records


async def test_run_steps_with_no_steps_allowed_tells_the_model_to_answer() -> None:
    steps = ScriptedSteps(StepOutcome("Hi.", []))
    tool = toolset(FakeTool("echo", echo))
    assert (
        await run_steps(
            first_request(), step=steps, loop=loop(Recorder()), tools=lambda: tool, max_steps=0
        )
        == []
    )
    assert not steps.requests[0].may_call


async def test_run_steps_runs_nothing_after_a_step_cut_by_length() -> None:
    steps = ScriptedSteps(StepOutcome("", [StepCall("c1", "echo", '{"a"')], finish="length"))
    tool = toolset(FakeTool("echo", echo))
    (record,) = await run_steps(
        first_request(), step=steps, loop=loop(Recorder()), tools=lambda: tool, max_steps=4
    )
    assert record.error is not None
    assert "length limit" in record.error.message
    assert len(steps.requests) == 1


async def test_the_arguments_shown_for_approval_are_bounded() -> None:
    recorder = Recorder()
    step = asyncio.create_task(
        loop(recorder, approval_s=0.05, result_chars=100).run(
            [StepCall("c", "echo", '{"text": "' + "z" * 10_000 + '"}')],
            toolset(FakeTool("echo", echo), approval="ask"),
        )
    )
    await asyncio.wait_for(step, 5)
    kind, asked = recorder.events[0]
    assert kind == "approval"
    assert isinstance(asked, tuple)
    args = asked[2]
    assert isinstance(args, str)
    assert len(args) < 200
    assert args.endswith("more characters]")


async def test_a_call_cancelled_from_inside_is_a_cancelled_result_and_the_step_goes_on() -> None:
    async def cancels_itself(args: Mapping[str, object]) -> str:
        raise asyncio.CancelledError

    records = await loop(Recorder()).run(
        [StepCall("c1", "quits", "{}"), StepCall("c2", "echo", "{}")],
        toolset(FakeTool("quits", cancels_itself), FakeTool("echo", echo)),
    )
    assert records[0].error is not None
    assert records[0].error.code == "cancelled"
    assert records[1].result == "{}"
