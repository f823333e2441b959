"""``POST /v1/chat``: one prompt, one model, one reply, outside any room, for simple integrations.

The reply runs through the same :class:`~rtserver.turns.generation.Generation` as a room's
streams, so its ``token`` and ``stream_end`` frames are the ones a room would send. Nothing
is stored: there is no room to keep it in, nobody else to watch it and nothing to resume, so
closing the connection ends the generation (and with it the upstream request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from aiohttp import web

from rtserver.auth.limits import DailyBudget
from rtserver.errors import PeerError
from rtserver.keys import CATALOG, CLIENT_LIMITS, METRICS, SETTINGS, STREAM_SLOTS
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    ModelId,
    RoomEvent,
    StreamEnd,
    StreamReason,
    TokenEvent,
    ToolCallEvent,
    ToolCallRecord,
    Usage,
)
from rtserver.protocol.nesting import check_nesting, too_deep_error
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.providers.catalog import Model
from rtserver.room.outbox import Outbox
from rtserver.room.room import new_id, now_ms
from rtserver.transports.http import identify, json_response
from rtserver.transports.sse import (
    PEER_CHECK_S,
    SSE,
    open_event_stream,
    read_body,
    stream_outbox,
)
from rtserver.turns.generation import Generation


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The body of ``POST /v1/chat``; unknown fields are ignored, as in every frame."""

    message: str
    model: ModelId | None = None
    stream: bool = False


class ChatReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The answer of a ``stream: false`` chat: a ``stream_end``'s fields with model and text."""

    model: str
    text: str
    reason: StreamReason
    usage: Usage | None
    ttft_ms: int | None
    duration_ms: int
    tokens_per_s: float | None
    error: ErrorInfo | None = None
    tokens_per_s_estimated: bool = False


_decode_request = msgspec.json.Decoder(ChatRequest).decode


class _NotKept:
    """The store of a one-shot reply: nothing is kept."""

    async def checkpoint(self, message_id: str, text: str) -> None:
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
    ) -> None:
        return None


class _OneShot:
    """The event sink of one chat: numbers its frames and queues them for the response."""

    def __init__(self, outbox: Outbox | None, budget: DailyBudget) -> None:
        self._outbox = outbox
        self._budget = budget
        self._seq = 0
        self.end: StreamEnd | None = None
        self.reply: HistoryMessage | None = None

    def next_seq(self) -> int:
        return self._seq + 1

    def publish(self, event: RoomEvent) -> None:
        self._seq = event.seq
        if isinstance(event, StreamEnd):
            self.end = event
        outbox = self._outbox
        if outbox is None or not isinstance(event, TokenEvent | ToolCallEvent | StreamEnd):
            return
        if not outbox.put(SSE.render(event, None)):
            # The handler sees the closed outbox and stops the generation.
            outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def reply_finished(self, generation: Generation, message: HistoryMessage) -> None:
        self.reply = message
        if message.usage is not None:
            self._budget.spend(message.usage.output_tokens)
        if self._outbox is not None:
            self._outbox.close(CloseCode.NORMAL, "", flush=True)


async def chat_handler(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat`` with ``{message, model?, stream?}``."""
    identity = identify(request, room=None)
    if identity.grant.role == "viewer":
        raise PeerError("forbidden", "a viewer's token does not allow chat")
    chat = _parse(await read_body(request))
    limits = request.app[SETTINGS].limits
    if not chat.message.strip():
        raise PeerError("bad_frame", "message is empty")
    if len(chat.message) > limits.max_prompt_chars:
        raise PeerError(
            "too_large",
            f"message is {len(chat.message)} characters; the limit is {limits.max_prompt_chars}",
        )
    model = _model(request, chat.model)
    if not identity.grant.allows_model(model.id):
        raise PeerError("forbidden", f"your token does not allow model {model.id!r}")
    client_limits = request.app[CLIENT_LIMITS]
    client_limits.chat(identity.key)
    # A chat is a running stream like a room's: it counts toward streams_max.
    slots = request.app[STREAM_SLOTS]
    slots.take()
    try:
        return await _run_chat(request, model, chat, client_limits.budget(identity.key))
    finally:
        slots.give_back()


async def _run_chat(
    request: web.Request, model: Model, chat: ChatRequest, budget: DailyBudget
) -> web.StreamResponse:
    limits = request.app[SETTINGS].limits
    outbox = Outbox(max_bytes=limits.outbox_bytes) if chat.stream else None
    sink = _OneShot(outbox, budget)
    generation = Generation(
        stream=new_id("s"),
        model=model,
        reply=HistoryMessage(
            id=new_id("m"), role="assistant", text="", status="streaming", ts=now_ms()
        ),
        prepare=_prepared(_generation_request(model, chat.message)),
        sink=sink,
        store=_NotKept(),
        checkpoint_interval=limits.checkpoint_interval,
        meter=request.app[METRICS].stream(model.id),
    )
    generation.start()
    try:
        if outbox is None:
            if not await _until_done_or_gone(request, generation):
                # The client went away; this answer reaches nobody.
                return web.Response(status=204)
            return _reply(model, sink)
        response = await open_event_stream(request)
        await stream_outbox(request, response, outbox, heartbeat=limits.sse_heartbeat)
        return response
    finally:
        generation.stop("cancelled")
        await generation.wait()


def _parse(body: bytes) -> ChatRequest:
    try:
        chat = _decode_request(body)
    except msgspec.ValidationError as exc:
        check_nesting(body, msgpack=False)
        raise PeerError("bad_frame", f"invalid chat request: {exc}"[:300]) from None
    except msgspec.DecodeError:
        raise PeerError("bad_frame", "the body is not valid JSON") from None
    except RecursionError:
        raise too_deep_error() from None
    check_nesting(body, msgpack=False)
    return chat


def _model(request: web.Request, model_id: str | None) -> Model:
    catalog = request.app[CATALOG]
    chosen = model_id or next(iter(catalog.defaults), None)
    model = catalog.get(chosen) if chosen else None
    if model is None:
        raise PeerError("unknown_model", f"unknown model {(chosen or '')[:128]!r}")
    return model


def _generation_request(model: Model, message: str) -> GenerationRequest:
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


async def _until_done_or_gone(request: web.Request, generation: Generation) -> bool:
    """Wait for the reply to end (True) or for the client to go (False)."""
    done = asyncio.ensure_future(generation.wait())
    try:
        while not done.done():
            if request.transport is None:
                return False
            await asyncio.wait({done}, timeout=PEER_CHECK_S)
        return True
    finally:
        done.cancel()


def _reply(model: Model, sink: _OneShot) -> web.Response:
    end, reply = sink.end, sink.reply
    # A generation always ends by publishing stream_end and then handing over its reply.
    assert end is not None
    assert reply is not None
    return json_response(
        ChatReply(
            model=model.id,
            text=reply.text,
            reason=end.reason,
            usage=end.usage,
            ttft_ms=end.ttft_ms,
            duration_ms=end.duration_ms,
            tokens_per_s=end.tokens_per_s,
            error=end.error,
            tokens_per_s_estimated=end.tokens_per_s_estimated,
        )
    )
