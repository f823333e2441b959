"""One model's stream of one turn: provider deltas in, room events out.

A :class:`Generation` runs as one asyncio task through the phases of :class:`Phase`, each move
checked against one table. Stopping it (cancel or interrupt) records the reason and cancels the
task, which closes the provider's iterator and so its upstream request. Whatever way it ends, the
reply is finalised in the store and then exactly one ``stream_end`` is published.

A router's stream (``routed``) first chooses its model (phase ``ROUTING``); its ``stream_start``
is published then, by the turns layer's hook, and its deltas come from the candidates in turn
(turns/routed.py), so ``model`` is the model answering at each moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing, suppress
from enum import Enum
from typing import Final, Literal, Protocol

from rtserver.errors import ProviderError
from rtserver.ops import logging as structured
from rtserver.ops.metrics import StreamMeter
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    Participant,
    ReasoningEvent,
    RoomEvent,
    StreamEnd,
    StreamReason,
    TokenEvent,
    ToolApprovalEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolDecisionEvent,
    ToolResultEvent,
    Usage,
)
from rtserver.providers.base import (
    FinishDelta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from rtserver.providers.catalog import Model
from rtserver.store.base import ReplyStore
from rtserver.turns.routed import RoutedStream
from rtserver.turns.tools import StepCall, StepOutcome, ToolAccess, ToolLoop, run_steps
from rtserver.turns.usage_estimate import StreamedOutput

log = logging.getLogger(__name__)

#: Why a stream is stopped from outside: a cancel, or an interrupt (and shutdown).
StopReason = Literal["cancelled", "interrupted"]
_STATUS_OF_REASON: dict[StreamReason, MessageStatus] = {
    "complete": "complete",
    "length": "complete",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
    "error": "error",
}


class Phase(Enum):
    """Where a generation is in its life."""

    #: Made and started, its task not yet begun.
    PENDING = "pending"
    #: A router's stream: its model being chosen (a classifier may be thinking).
    ROUTING = "routing"
    #: Gathering what the model is asked (its lane, from the store).
    PREPARING = "preparing"
    #: Reading the provider's deltas and publishing them.
    STREAMING = "streaming"
    #: Running the tool calls of a step (turns/tools.py); the next step streams again.
    TOOLS = "tools"
    #: Finalising the reply in the store, then publishing ``stream_end``: a stop waits.
    ENDING = "ending"
    #: ``stream_end`` is published and the reply handed over.
    ENDED = "ended"


#: Every move a generation may make; any other is a bug, raised at once.
TRANSITIONS: Final[dict[Phase, frozenset[Phase]]] = {
    Phase.PENDING: frozenset({Phase.ROUTING, Phase.PREPARING, Phase.ENDING}),
    Phase.ROUTING: frozenset({Phase.PREPARING, Phase.ENDING}),
    Phase.PREPARING: frozenset({Phase.STREAMING, Phase.ENDING}),
    Phase.STREAMING: frozenset({Phase.TOOLS, Phase.ENDING}),
    Phase.TOOLS: frozenset({Phase.STREAMING, Phase.ENDING}),
    Phase.ENDING: frozenset({Phase.ENDED}),
    Phase.ENDED: frozenset(),
}
#: The phases in which a stop cancels the task; before them it is recorded, after them ignored.
_CANCELLABLE: Final = frozenset({Phase.ROUTING, Phase.PREPARING, Phase.STREAMING, Phase.TOOLS})


class EventSink(Protocol):
    """Where a generation's events go: its room, which numbers each (the seq is returned)."""

    def publish(self, event: RoomEvent) -> int | None: ...


#: Told the final reply once its ``stream_end`` is published.
Finished = Callable[["Generation", HistoryMessage], None]


class Generation:
    """One running reply of one model."""

    def __init__(
        self,
        *,
        stream: str,
        model: Model,
        reply: HistoryMessage,
        prepare: Callable[[], Awaitable[GenerationRequest]],
        sink: EventSink,
        finished: Finished,
        store: ReplyStore,
        checkpoint_interval: float,
        clock: Callable[[], float] = time.monotonic,
        meter: StreamMeter | None = None,
        routed: RoutedStream | None = None,
        tools: ToolAccess | None = None,
    ) -> None:
        self.stream = stream
        self._model = model
        #: A router's stream: its choice of model and its candidates (turns/routed.py).
        self.routed = routed
        self.reply = reply
        self._prepare = prepare
        self._request = GenerationRequest(messages=())
        self._sink = sink
        self._finished = finished
        self._store = store
        self._checkpoint_interval = checkpoint_interval
        self._clock = clock
        self._parts: list[str] = []
        #: The thinking, kept apart from the answer: stored and shown, never sent to a model.
        self._thoughts: list[str] = []
        #: Every tool call of the reply (all steps), in the order they were made.
        self._calls: dict[str, ToolCallRecord] = {}
        #: The current step's calls, and the ones waiting for an approval now.
        self._step_calls: dict[str, ToolCallRecord] = {}
        self._waiting: list[str] = []
        self._tools = tools
        #: Usage of the steps so far, added up; a step's own replaces its earlier reports.
        self._usage: UsageDelta | None = None
        self._step_usage: UsageDelta | None = None
        self._streamed = StreamedOutput()
        self._finish: str = "complete"
        self._stop_reason: StopReason | None = None
        self._started = clock()
        self._first_token: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._phase = Phase.PENDING
        self._meter = meter
        #: Token deltas streamed, and how many of them the meter has been told of.
        self._token_count = 0
        self._tokens_metered = 0

    @property
    def text(self) -> str:
        """The reply so far."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def model(self) -> Model:
        """The model answering: a router's choice, and after a switch the next candidate."""
        return self.routed.model if self.routed is not None else self._model

    @property
    def reasoning(self) -> str:
        """The reply's thinking so far."""
        if len(self._thoughts) > 1:
            self._thoughts[:] = ["".join(self._thoughts)]
        return self._thoughts[0] if self._thoughts else ""

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        """The reply's tool calls so far, with the results of those that ended."""
        return list(self._calls.values())

    @property
    def waiting(self) -> list[str]:
        """Its calls waiting for an ``approve`` now."""
        return list(self._waiting)

    @property
    def model_id(self) -> str:
        return self.model.id

    @property
    def routed_from(self) -> str | None:
        """The router whose lane this stream is in, if routed."""
        return self.routed.router_id if self.routed is not None else None

    @property
    def message_id(self) -> str:
        return self.reply.id

    @property
    def reply_to(self) -> str:
        return self.reply.reply_to or ""

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def stopping(self) -> bool:
        """True once cancel or interrupt was asked for."""
        return self._stop_reason is not None

    def _enter(self, phase: Phase) -> None:
        if phase not in TRANSITIONS[self._phase]:
            raise RuntimeError(f"generation {self.stream}: {self._phase.name} -> {phase.name}")
        self._phase = phase

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"generation {self.stream}")

    def stop(self, reason: StopReason) -> None:
        """End the stream with ``reason``; the provider's request is closed at once."""
        if self._stop_reason is not None or self._task is None:
            return
        if self._phase in (Phase.ENDING, Phase.ENDED):
            # The reply is being finalised with its own reason; cancelling the task now
            # would cut that short, and stream_end would never be published.
            return
        self._stop_reason = reason
        # A task cancelled before its first step never runs its body, and so would never
        # publish stream_end: a PENDING one sees the reason when it begins.
        if self._phase in _CANCELLABLE:
            self._task.cancel()

    async def wait(self) -> None:
        """Return once the reply is finalised and ``stream_end`` published."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        structured.bind(stream=self.stream)
        if self._meter is not None:
            self._meter.enter()
        if self._stop_reason is not None:
            await self._end(self._stop_reason, None)
            return
        checkpoints = asyncio.create_task(self._checkpoint_loop())
        reason: StreamReason
        error: ErrorInfo | None = None
        try:
            if self.routed is not None:
                self._enter(Phase.ROUTING)
                await self.routed.choose()
                self.routed.announce()
            self._enter(Phase.PREPARING)
            self._request = await self._prepare()
            self._enter(Phase.STREAMING)
            await self._consume()
            reason = "length" if self._finish == "length" else "complete"
        except asyncio.CancelledError:
            reason = self._stop_reason or "interrupted"
        except ProviderError as exc:
            reason, error = "error", exc.to_info()
        except Exception:
            log.exception("generation %s failed", self.stream)
            reason = "error"
            error = ErrorInfo(code="internal", message="the server failed while generating")
        finally:
            checkpoints.cancel()
        await self._end(reason, error)

    async def _consume(self) -> None:
        """The reply: one provider request, or with tools one per step of the tool loop."""
        if self._tools is None:
            await self._step(self._request)
            return
        loop = ToolLoop(
            reporter=self,
            approvals=self._tools.approvals,
            limits=self._tools.limits,
            clock=self._clock,
        )
        await run_steps(
            self._request,
            step=self._step,
            loop=loop,
            tools=self._tools.toolset,
            max_steps=self._tools.limits.max_steps,
        )

    async def _step(self, request: GenerationRequest) -> StepOutcome:
        """Stream one provider request's deltas to the room; what it wrote and called."""
        if self._phase is Phase.TOOLS:
            self._enter(Phase.STREAMING)
        self._step_calls = {}
        self._step_usage = None
        self._finish = "complete"
        written = len(self.text)
        try:
            await self._stream_deltas(request)
        finally:
            self._add_step_usage()
        calls = [StepCall(c.call, c.name, c.args) for c in self._step_calls.values()]
        if calls:
            self._enter(Phase.TOOLS)
        finish: Literal["complete", "length"] = "length" if self._finish == "length" else "complete"
        return StepOutcome(text=self.text[written:], calls=calls, finish=finish)

    async def _stream_deltas(self, request: GenerationRequest) -> None:
        sink = self._sink
        routed = self.routed
        if routed is not None and not routed.streamed:
            # The candidates are tried at the first step only; after a tool call the model
            # that answered goes on.
            stream = routed.deltas(request)
        else:
            stream = self.model.provider.stream(request)
        async with aclosing(stream) as deltas:
            async for delta in deltas:
                if isinstance(delta, TextDelta):
                    if not delta.text:
                        continue
                    if self._first_token is None:
                        self._first_token_now()
                    self._token_count += 1
                    self._parts.append(delta.text)
                    self._streamed.add(delta.text, delta.tokens)
                    sink.publish(
                        TokenEvent(
                            seq=0,
                            stream=self.stream,
                            text=delta.text,
                            emitted_us=delta.emitted_us,
                        )
                    )
                elif isinstance(delta, ReasoningDelta):
                    self._reasoning(delta)
                elif isinstance(delta, ToolCallDelta):
                    self._tool_call(delta)
                elif isinstance(delta, UsageDelta):
                    self._step_usage = delta
                elif isinstance(delta, FinishDelta):
                    self._finish = delta.reason

    def _add_step_usage(self) -> None:
        step, total = self._step_usage, self._usage
        if step is None:
            return
        if total is None:
            self._usage = step
        else:
            self._usage = UsageDelta(
                input_tokens=total.input_tokens + step.input_tokens,
                output_tokens=total.output_tokens + step.output_tokens,
            )

    # --- the room hears of the tool loop (ToolReporter) ----------------------------------

    def approval(self, call: str, name: str, args: str) -> None:
        self._waiting.append(call)
        self._sink.publish(
            ToolApprovalEvent(seq=0, stream=self.stream, call=call, name=name, args=args)
        )

    def decision(self, call: str, allow: bool, by: Participant | None) -> None:
        if call in self._waiting:
            self._waiting.remove(call)
        self._sink.publish(
            ToolDecisionEvent(seq=0, stream=self.stream, call=call, allow=allow, by=by)
        )

    def result(self, record: ToolCallRecord) -> None:
        self._calls[record.call] = record
        self._sink.publish(
            ToolResultEvent(
                seq=0,
                stream=self.stream,
                call=record.call,
                name=record.name or "",
                result=record.result,
                error=record.error,
                duration_ms=record.duration_ms or 0,
            )
        )

    def _first_token_now(self) -> None:
        self._first_token = self._clock()
        if self._meter is not None:
            self._meter.first_token(self._first_token - self._started)

    def _meter_tokens(self) -> None:
        """Tell the meter of the tokens since the last time: batched, off the token path."""
        fresh = self._token_count - self._tokens_metered
        if fresh and self._meter is not None:
            self._meter.tokens(fresh)
            self._tokens_metered = self._token_count

    def _reasoning(self, delta: ReasoningDelta) -> None:
        if not delta.text:
            return
        # Time to first token is to the first token of either kind: a thinking model is
        # answering from its first thought on.
        if self._first_token is None:
            self._first_token_now()
        self._token_count += 1
        self._thoughts.append(delta.text)
        self._streamed.add(delta.text, delta.tokens)
        self._sink.publish(ReasoningEvent(seq=0, stream=self.stream, text=delta.text))

    def _tool_call(self, delta: ToolCallDelta) -> None:
        if self._first_token is None:
            self._first_token_now()
        known = self._step_calls.get(delta.call)
        name = delta.name or (known.name if known else None)
        args = (known.args if known else "") + delta.args
        record = ToolCallRecord(call=delta.call, name=name, args=args)
        self._step_calls[delta.call] = self._calls[delta.call] = record
        self._streamed.add(delta.args, delta.tokens)
        sink = self._sink
        sink.publish(
            ToolCallEvent(
                seq=0,
                stream=self.stream,
                call=delta.call,
                name=delta.name,
                args=delta.args,
            )
        )

    async def _checkpoint_loop(self) -> None:
        saved = (0, 0)
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            self._meter_tokens()
            text, reasoning = self.text, self.reasoning
            if (len(text), len(reasoning)) == saved:
                continue
            try:
                await self._store.checkpoint(self.reply.id, text, reasoning or None)
            except Exception:
                # A failed checkpoint is retried at the next one; the stream goes on.
                log.exception("could not checkpoint reply %s", self.reply.id)
                continue
            saved = (len(text), len(reasoning))

    async def _end(self, reason: StreamReason, error: ErrorInfo | None) -> None:
        self._enter(Phase.ENDING)
        if self.routed is not None:
            # A stream stopped before its router chose still starts before it ends.
            self.routed.announce(stopped=True)
            with suppress(Exception):
                await asyncio.shield(self.routed.settled())
        # A question the stream took with it is no longer open (turns/approvals.py withdrew it).
        self._waiting.clear()
        ended = self._clock()
        text = self.text
        usage = self._final_usage(text)
        rate = self._rate(usage, ended)
        final = HistoryMessage(
            id=self.reply.id,
            role="assistant",
            text=text,
            status=_STATUS_OF_REASON[reason],
            ts=self.reply.ts,
            model=self.model.id,
            reply_to=self.reply.reply_to,
            usage=usage,
            stream=self.stream,
            tool_calls=list(self._calls.values()) or None,
            error=error,
            routed_from=self.routed_from,
            reasoning=self.reasoning or None,
        )
        # Finalise before announcing the end: a client that saw stream_end can rely on
        # the stored reply. Shielded so that a second cancel cannot lose the write.
        with suppress(Exception):
            await asyncio.shield(self._save(final))
        sink = self._sink
        sink.publish(
            StreamEnd(
                seq=0,
                stream=self.stream,
                reason=reason,
                usage=usage,
                ttft_ms=self._ms(self._first_token),
                duration_ms=self._ms(ended) or 0,
                tokens_per_s=rate,
                tokens_per_s_estimated=rate is not None and usage is not None and usage.estimated,
                error=error,
            )
        )
        self._meter_tokens()
        if self._meter is not None:
            self._meter.ended(reason, error.code if error is not None else None)
        log.info(
            "stream ended",
            extra={
                "model": self.model.id,
                "reason": reason,
                "code": error.code if error is not None else None,
                "duration_ms": self._ms(ended),
            },
        )
        self._enter(Phase.ENDED)
        self._finished(self, final)

    async def _save(self, final: HistoryMessage) -> None:
        try:
            await self._store.finish_reply(
                final.id,
                text=final.text,
                status=final.status,
                usage=final.usage,
                tool_calls=final.tool_calls or (),
                error=final.error,
                reasoning=final.reasoning or "",
            )
        except Exception:
            log.exception("could not finalise reply %s", final.id)
            raise

    def _final_usage(self, text: str) -> Usage | None:
        if self._usage is not None:
            return Usage(
                input_tokens=self._usage.input_tokens, output_tokens=self._usage.output_tokens
            )
        if not text and not self._calls and not self._thoughts:
            return None
        return self._streamed.usage(turn.content for turn in self._request.messages)

    def _ms(self, moment: float | None) -> int | None:
        return None if moment is None else max(0, round((moment - self._started) * 1000))

    def _rate(self, usage: Usage | None, ended: float) -> float | None:
        if usage is None or self._first_token is None or usage.output_tokens < 2:
            return None
        seconds = ended - self._first_token
        if seconds <= 0:
            return None
        # The first token's arrival starts the clock, so it is not counted in the rate.
        return round((usage.output_tokens - 1) / seconds, 2)
