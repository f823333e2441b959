"""``POST /v1/chat``: one prompt, one model, one reply, outside any room, for simple integrations.

The reply is a one-shot turn of the turns layer (:class:`~rtserver.turns.oneshot.OneShot`); this
transport only reads the request, streams the turn's ``token``, ``tool_call`` and ``stream_end``
events as SSE (or answers once with the whole reply) and ends the turn when the client goes, which
ends the upstream request too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from aiohttp import web

from rtserver.auth.limits import DailyBudget
from rtserver.errors import PeerError
from rtserver.keys import CATALOG, CLIENT_LIMITS, METRICS, SETTINGS, STREAM_SLOTS
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.frames import (
    ErrorInfo,
    ModelId,
    RoomEvent,
    StreamEnd,
    StreamReason,
    TokenEvent,
    ToolCallEvent,
    Usage,
)
from rtserver.protocol.nesting import check_nesting, too_deep_error
from rtserver.providers.catalog import Model
from rtserver.room.outbox import Outbox
from rtserver.transports.http import identify, json_response
from rtserver.transports.sse import (
    PEER_CHECK_S,
    SSE,
    open_event_stream,
    read_body,
    stream_outbox,
)
from rtserver.turns.oneshot import OneShot, chat_model
from rtserver.turns.routing import Routing


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


def _to_outbox(outbox: Outbox) -> tuple[Callable[[RoomEvent], None], Callable[[], None]]:
    """What a streamed chat does with each event, and once the reply is final."""

    def deliver(event: RoomEvent) -> None:
        if not isinstance(event, TokenEvent | ToolCallEvent | StreamEnd):
            return
        if not outbox.put(SSE.render(event, None)):
            # The handler sees the closed outbox and stops the turn.
            outbox.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def done() -> None:
        outbox.close(CloseCode.NORMAL, "", flush=True)

    return deliver, done


async def chat_handler(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat`` with ``{message, model?, stream?}``."""
    identity = identify(request, room=None)
    if identity.grant.role == "viewer":
        raise PeerError("forbidden", "a viewer's token does not allow chat")
    chat = _parse(await read_body(request))
    limits = request.app[SETTINGS].limits
    model = chat_model(request.app[CATALOG], identity.grant, chat.message, chat.model, limits)
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
    deliver, done = _to_outbox(outbox) if outbox is not None else (_ignore, _nothing)
    turn = OneShot(
        model=model,
        text=chat.message,
        limits=limits,
        budget=budget,
        deliver=deliver,
        done=done,
        meter=request.app[METRICS].stream(model.id),
        routing=Routing(request.app[CATALOG]),
    )
    turn.start()
    try:
        if outbox is None:
            if not await _until_done_or_gone(request, turn):
                # The client went away; this answer reaches nobody.
                return web.Response(status=204)
            return _reply(model, turn)
        response = await open_event_stream(request)
        await stream_outbox(request, response, outbox, heartbeat=limits.sse_heartbeat)
        return response
    finally:
        await turn.stop()


def _ignore(event: RoomEvent) -> None:
    return None


def _nothing() -> None:
    return None


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


async def _until_done_or_gone(request: web.Request, turn: OneShot) -> bool:
    """Wait for the reply to end (True) or for the client to go (False)."""
    done = asyncio.ensure_future(turn.generation.wait())
    try:
        while not done.done():
            if request.transport is None:
                return False
            await asyncio.wait({done}, timeout=PEER_CHECK_S)
        return True
    finally:
        done.cancel()


def _reply(model: Model, turn: OneShot) -> web.Response:
    end, reply = turn.end, turn.reply
    # A generation always ends by publishing stream_end and then handing over its reply.
    assert end is not None
    assert reply is not None
    return json_response(
        ChatReply(
            # A router's reply names the model that wrote it.
            model=reply.model or model.id,
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
