"""A one-shot turn: one prompt, one model, one reply, outside any room (``POST /v1/chat``).

It runs through the same :class:`~rtserver.turns.generation.Generation` as a room's streams, so
its ``token`` and ``stream_end`` events are the ones a room would send, numbered by the turn
itself from 1. Nothing is stored: there is no room to keep it in, nobody else to watch it and
nothing to resume. The transport is handed each event as it is published and decides what
reaches its client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec

from rtserver.auth.limits import DailyBudget
from rtserver.auth.tokens import Grant
from rtserver.config import Limits
from rtserver.errors import PeerError
from rtserver.ops.metrics import StreamMeter
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    RoomEvent,
    StreamEnd,
    ToolCallRecord,
    Usage,
)
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.providers.catalog import Catalog, Model
from rtserver.room.room import new_id
from rtserver.turns.generation import Generation
from rtserver.turns.routed import RoutedStream
from rtserver.turns.routing import Routing
from rtserver.turns.turns import now_ms


class _NotKept:
    """The store of a one-shot reply: nothing is kept."""

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        return None

    async def switch_model(self, message_id: str, model: str) -> None:
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


def chat_model(
    catalog: Catalog, grant: Grant, text: str, model_id: str | None, limits: Limits
) -> Model:
    """The model a one-shot prompt runs on, once the prompt and the grant are checked."""
    if not text.strip():
        raise PeerError("bad_frame", "message is empty")
    if len(text) > limits.max_prompt_chars:
        raise PeerError(
            "too_large",
            f"message is {len(text)} characters; the limit is {limits.max_prompt_chars}",
        )
    chosen = model_id or next(iter(catalog.defaults), None)
    model = catalog.get(chosen) if chosen else None
    if model is None:
        raise PeerError("unknown_model", f"unknown model {(chosen or '')[:128]!r}")
    if not grant.allows_model(model.id):
        raise PeerError("forbidden", f"your token does not allow model {model.id!r}")
    return model


class OneShot:
    """One generation of ``model`` for ``text``, its events handed to ``deliver``.

    ``done`` is called once the reply is final (after its ``stream_end`` was delivered);
    :attr:`end` and :attr:`reply` hold them from then on.
    """

    def __init__(
        self,
        *,
        model: Model,
        text: str,
        limits: Limits,
        budget: DailyBudget,
        deliver: Callable[[RoomEvent], None],
        done: Callable[[], None] = lambda: None,
        meter: StreamMeter | None = None,
        routing: Routing | None = None,
    ) -> None:
        self._budget = budget
        self._deliver = deliver
        self._done = done
        self._seq = 0
        self.end: StreamEnd | None = None
        self.reply: HistoryMessage | None = None
        stream = new_id("s")
        reply = HistoryMessage(
            id=new_id("m"), role="assistant", text="", status="streaming", ts=now_ms()
        )
        routed = None
        if routing is not None and routing.is_router(model.id):
            # The chosen model answers; a switch before its first token is the transport's to
            # show or not (a chat's stream carries tokens and its end only).
            routed = RoutedStream(
                router_id=model.id,
                text=text,
                stream=stream,
                message_id=reply.id,
                routing=routing,
                publish=self.publish,
                store=_NotKept(),
                retarget=lambda candidate, _: _request(candidate, text),
            )
        self.generation = Generation(
            stream=stream,
            model=model,
            reply=reply,
            routed=routed,
            prepare=_prepared(_request(routed.model if routed else model, text)),
            sink=self,
            finished=self._finished,
            store=_NotKept(),
            checkpoint_interval=limits.checkpoint_interval,
            meter=meter,
        )

    def start(self) -> None:
        self.generation.start()

    async def stop(self) -> None:
        """End the reply as cancelled (if it still runs) and wait until it has ended."""
        self.generation.stop("cancelled")
        await self.generation.wait()

    def publish(self, event: RoomEvent) -> int:
        """Number ``event`` in this turn's own order and hand it to the transport."""
        self._seq += 1
        event = msgspec.structs.replace(event, seq=self._seq)
        if isinstance(event, StreamEnd):
            self.end = event
        self._deliver(event)
        return self._seq

    def _finished(self, generation: Generation, message: HistoryMessage) -> None:
        self.reply = message
        if message.usage is not None:
            self._budget.spend(message.usage.output_tokens)
        self._done()


def _request(model: Model, message: str) -> GenerationRequest:
    params = model.spec.params
    temperature = params.get("temperature")
    max_tokens = params.get("max_tokens")
    return GenerationRequest(
        messages=(ChatTurn(role="user", content=message),),
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
    )


def _prepared(request: GenerationRequest) -> Callable[[], Awaitable[GenerationRequest]]:
    async def prepare() -> GenerationRequest:
        return request

    return prepare
