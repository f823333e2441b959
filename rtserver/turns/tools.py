"""The tool loop: run the calls a model made, send it the results, and let it go on.

:func:`run_steps` is the seam the generation calls: it asks the provider one step at a time
(through the generation's own ``step``, which streams the deltas to the room) and, after a step
that made calls, hands them to :meth:`ToolLoop.run`, then asks again with the calls and their
results appended, at most ``max_steps`` times; the last request still describes the tools but
tells the model to answer.
Every call of the step runs concurrently; each ends as a :class:`ToolCallRecord` with a result or
an error, and nothing but ``CancelledError`` escapes: an unknown tool, arguments that are not a
JSON object, a denial, a timeout or a tool that raised all become error results the model is
told about. Calls of tools with ``approval = "ask"`` wait for a member's ``approve`` first.

What the room sees goes through a :class:`ToolReporter` (the generation publishes the events),
so this module knows nothing of seq or fan-out. Cancelling the task that awaits ``run`` (cancel,
interrupt) cancels every call still running; an MCP server is told by the SDK.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from rtserver.protocol.frames import Participant, ToolCallRecord, ToolErrorInfo
from rtserver.providers.base import (
    ChatTurn,
    GenerationRequest,
    ToolCallPart,
    ToolDefinition,
    ToolResultPart,
)
from rtserver.tools.base import ToolError
from rtserver.tools.toolbox import BoundTool, ToolSet
from rtserver.turns.approvals import Approvals

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepCall:
    """One call a model made in a step, as its ``tool_call`` fragments assembled it."""

    call: str
    name: str | None
    args: str


@dataclass(frozen=True, slots=True)
class ToolLimits:
    """The bounds of one reply's tool use (``[limits]``, and a model's ``max_tool_steps``)."""

    max_steps: int = 8
    approval_s: float = 120.0
    result_chars: int = 20_000
    calls_per_step: int = 16


@dataclass(frozen=True, slots=True)
class ToolAccess:
    """What one reply needs to run its model's tools: them (as they are at each step), the
    room's approvals, and the bounds."""

    toolset: Callable[[], ToolSet]
    approvals: Approvals
    limits: ToolLimits


class ToolReporter(Protocol):
    """Where a step tells the room about its calls: the generation, which publishes events."""

    def approval(self, call: str, name: str, args: str) -> None:
        """A call waits for a member's ``approve`` (``tool_approval``)."""
        ...

    def decision(self, call: str, allow: bool, by: Participant | None) -> None:
        """It was answered, or timed out (``tool_decision``)."""
        ...

    def result(self, record: ToolCallRecord) -> None:
        """A call ended (``tool_result``); ``record`` holds its result or error."""
        ...


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one provider request of a reply produced: its text, its calls, why it stopped."""

    text: str
    calls: Sequence[StepCall]
    finish: Literal["complete", "length"] = "complete"


#: The generation's part: stream one request's deltas to the room, and say what came.
Step = Callable[[GenerationRequest], Awaitable[StepOutcome]]


async def run_steps(
    request: GenerationRequest,
    *,
    step: Step,
    loop: ToolLoop,
    tools: Callable[[], ToolSet],
    max_steps: int,
) -> list[ToolCallRecord]:
    """Ask step by step until the model answers without calls; every call's record, in order.

    ``tools`` gives the model's tools as they are now (an MCP server's list may change between
    steps). A reply cut by ``length`` makes no more steps. Calls made in the last step, when the
    model was told not to call, get an error result and are not run.
    """
    records: list[ToolCallRecord] = []
    messages = request.messages
    for number in range(max_steps + 1):
        toolset = tools()
        last = number == max_steps
        asked = replace(request, messages=messages, tools=definitions(toolset), may_call=not last)
        outcome = await step(asked)
        if not outcome.calls:
            break
        if last or outcome.finish == "length":
            records.extend(loop.refuse(outcome.calls, _no_more_steps(max_steps, outcome.finish)))
            break
        made = await loop.run(outcome.calls, toolset)
        records.extend(made)
        messages = (*messages, *continuation(outcome.text, made))
    return records


def _no_more_steps(max_steps: int, finish: str) -> str:
    if finish == "length":
        return "the reply reached its length limit before the call could run"
    return f"a reply may make at most {max_steps} rounds of tool calls"


def definitions(tools: ToolSet) -> tuple[ToolDefinition, ...]:
    """What the provider is told about the tools."""
    return tuple(
        ToolDefinition(name=spec.name, description=spec.description, parameters=spec.parameters)
        for spec in tools.specs
    )


class ToolLoop:
    """Runs the calls of one reply's steps against the tools its model may use."""

    def __init__(
        self,
        *,
        reporter: ToolReporter,
        approvals: Approvals,
        limits: ToolLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reporter = reporter
        self._approvals = approvals
        self._limits = limits
        self._clock = clock

    async def run(self, calls: Sequence[StepCall], tools: ToolSet) -> list[ToolCallRecord]:
        """Run one step's calls together; their records, in the order the model made them."""
        allowed = self._limits.calls_per_step
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    self._one(call, tools) if n < allowed else self._too_many(call, allowed)
                )
                for n, call in enumerate(calls)
            ]
        return [task.result() for task in tasks]

    def refuse(self, calls: Sequence[StepCall], message: str) -> list[ToolCallRecord]:
        """Calls that will not run: each gets a ``failed`` result, reported like any other."""
        return [self._failed(call, 0, ToolError("failed", message)) for call in calls]

    async def _too_many(self, call: StepCall, allowed: int) -> ToolCallRecord:
        return self._failed(
            call, 0, ToolError("failed", f"at most {allowed} tool calls run in one step")
        )

    async def _one(self, call: StepCall, tools: ToolSet) -> ToolCallRecord:
        bound = tools.get(call.name) if call.name is not None else None
        if bound is None:
            return self._failed(call, 0, ToolError("unknown_tool", _unknown(call.name, tools)))
        try:
            args = decode_args(call.args)
        except ToolError as exc:
            return self._failed(call, 0, exc)
        if bound.approval == "ask":
            denial = await self._ask(call, bound)
            if denial is not None:
                return self._failed(call, 0, denial)
        started = self._clock()
        try:
            async with asyncio.timeout(bound.timeout_s):
                text = await bound.tool.call(args)
        except TimeoutError:
            error = ToolError("timeout", f"the tool took longer than {bound.timeout_s:g} s")
            return self._failed(call, self._ms(started), error)
        except asyncio.CancelledError:
            if _being_cancelled():
                raise
            # Cancelled from inside (a library's own cancel scope), not by a stop of the stream:
            # the reply goes on, and the model hears of it.
            error = ToolError("cancelled", "the call was cancelled before it finished")
            return self._failed(call, self._ms(started), error)
        except ToolError as exc:
            return self._failed(call, self._ms(started), exc)
        except Exception:
            # A tool that breaks our interface; its text stays in the log.
            log.exception("tool %s failed", bound.name)
            error = ToolError("failed", "the tool failed")
            return self._failed(call, self._ms(started), error)
        record = ToolCallRecord(
            call=call.call,
            name=bound.name,
            args=call.args,
            result=bounded(text, self._limits.result_chars),
            duration_ms=self._ms(started),
        )
        self._reporter.result(record)
        return record

    async def _ask(self, call: StepCall, bound: BoundTool) -> ToolError | None:
        """Ask the room; the denial the model is told, or None when a member allowed it."""
        # Arguments as long as a result may be are plenty to judge a call by.
        self._reporter.approval(
            call.call, bound.name, bounded(call.args, self._limits.result_chars)
        )
        decision = await self._approvals.wait(call.call, timeout_s=self._limits.approval_s)
        self._reporter.decision(call.call, decision.allow, decision.by)
        if decision.allow:
            return None
        if decision.by is None:
            return ToolError("denied", "nobody in the room approved the call in time")
        return ToolError("denied", f"{decision.by.name} denied the call")

    def _failed(self, call: StepCall, duration_ms: int, error: ToolError) -> ToolCallRecord:
        record = ToolCallRecord(
            call=call.call,
            name=call.name,
            args=call.args,
            error=ToolErrorInfo(code=error.code, message=bounded(error.message, 1000)),
            duration_ms=duration_ms,
        )
        self._reporter.result(record)
        return record

    def _ms(self, started: float) -> int:
        return max(0, round((self._clock() - started) * 1000))


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def decode_args(args: str) -> Mapping[str, object]:
    """A call's JSON arguments; ``bad_arguments`` unless they are one JSON object."""
    try:
        value = json.loads(args) if args.strip() else {}
    except ValueError:
        raise ToolError("bad_arguments", "the arguments are not valid JSON") from None
    except RecursionError:
        raise ToolError("bad_arguments", "the arguments nest too deeply") from None
    if not isinstance(value, dict):
        raise ToolError("bad_arguments", "the arguments must be a JSON object")
    return value


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[cut: {len(text) - limit} more characters]"


def _unknown(name: str | None, tools: ToolSet) -> str:
    offered = ", ".join(bound.name for bound in tools) or "none"
    shown = repr(name[:64]) if name else "no name"
    return f"no tool {shown} is offered (offered: {offered})"


def continuation(text: str, records: Sequence[ToolCallRecord]) -> tuple[ChatTurn, ChatTurn]:
    """What the next step's request adds: the step as the model made it, and the results."""
    calls = tuple(
        ToolCallPart(call=r.call, name=r.name or "", args=r.args or "{}") for r in records
    )
    results = tuple(
        ToolResultPart(
            call=r.call,
            name=r.name or "",
            content=_error_text(r.error) if r.error is not None else r.result or "",
            is_error=r.error is not None,
        )
        for r in records
    )
    return (
        ChatTurn(role="assistant", content=text, tool_calls=calls),
        ChatTurn(role="tool", content="", tool_results=results),
    )


def _error_text(error: ToolErrorInfo) -> str:
    return f"error ({error.code}): {error.message}"
