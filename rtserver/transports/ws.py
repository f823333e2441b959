"""The WebSocket transport: decode, hand frames to the room, write what the room queues."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager, suppress

from aiohttp import WSMsgType, web

from rtserver.auth.access import Identity
from rtserver.errors import PeerError
from rtserver.keys import ACCESS, CLIENT_LIMITS, DIRECTORY, SETTINGS, SETUP_GATE
from rtserver.ops import logging as structured
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import SUBPROTOCOLS, Codec, codec_for
from rtserver.protocol.frames import Hello
from rtserver.room.member import Member
from rtserver.transports.fairness import TurnTaker
from rtserver.transports.http import room_id_or_400, seat_for
from rtserver.transports.http_errors import refusal
from rtserver.transports.upgrade import upgrade_route
from rtserver.transports.ws_sink import SocketSink, close_reason
from rtserver.turns.turns import Turns

log = logging.getLogger(__name__)

#: How a connection refused before it joins is closed: retrying cannot help a bad token.
REFUSAL_CLOSE = {
    "unauthorized": CloseCode.POLICY_VIOLATION,
    "forbidden": CloseCode.POLICY_VIOLATION,
    "rate_limited": CloseCode.TRY_AGAIN_LATER,
    "busy": CloseCode.TRY_AGAIN_LATER,
}


@upgrade_route
async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/rooms/{room}/ws``.

    An upgrade route: the API middlewares check the page and do not wait on this handler, so
    it answers its own errors until the upgrade, as they would.
    """
    limits = request.app[SETTINGS].limits
    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS,
        heartbeat=limits.heartbeat,
        # aiohttp refuses a message of max_msg_size bytes itself; the limit is inclusive.
        max_msg_size=limits.max_frame_bytes + 1,
        # Compression would cost one deflate per participant per frame; frames are encoded
        # once per codec and go out as they are.
        compress=False,
    )
    try:
        room_id = room_id_or_400(request)
        with _waiting_for_hello(request):
            await request.app[SETUP_GATE].enter()
            await _upgrade(ws, request)
            codec = codec_for(ws.ws_protocol)
            hello = await _read_hello(ws, codec, limits.hello_timeout)
    except Exception as exc:
        if ws.prepared:
            raise
        return refusal(request, exc)
    if hello is None:
        return ws
    try:
        identity = request.app[ACCESS].identify(request, hello.token, room=room_id, connection=True)
        request.app[CLIENT_LIMITS].join(identity.key)
        with request.app[CLIENT_LIMITS].connection(identity.key):
            await _serve(request, ws, codec, hello, identity)
    except PeerError as exc:
        await _refuse(ws, codec, exc, code=REFUSAL_CLOSE.get(exc.code, CloseCode.PROTOCOL_ERROR))
    return ws


def _waiting_for_hello(request: web.Request) -> AbstractContextManager[None]:
    """Count a socket waiting for its hello against its client's address.

    Before the hello there is no token to count by, and a client must not hold thousands of
    them open. A function of its own, so the handler's frame keeps no key for the connection's
    life.
    """
    waiting = request.app[ACCESS].address_key(request, connection=True)
    return request.app[CLIENT_LIMITS].connection(f"hello:{waiting}")


async def _upgrade(ws: web.WebSocketResponse, request: web.Request) -> None:
    try:
        await ws.prepare(request)
    except web.HTTPBadRequest:
        raise PeerError(
            "bad_frame", "not a WebSocket handshake: this endpoint needs a WebSocket upgrade"
        ) from None


async def _serve(
    request: web.Request,
    ws: web.WebSocketResponse,
    codec: Codec,
    hello: Hello,
    identity: Identity,
) -> None:
    """Join the room as ``identity`` and serve the connection until it ends.

    The reading loop is here rather than in a function of its own: every idle connection
    holds this coroutine's frame for as long as it stays, and one frame less is memory saved.
    """
    joined = await _join(request, ws, codec, hello, identity)
    if joined is None:
        return
    room, member = joined
    grace_s = request.app[SETTINGS].limits.hello_timeout
    sink: SocketSink | None = None
    fair = TurnTaker()
    try:
        sink = SocketSink(request, ws, member.outbox, binary=codec.binary, grace_s=grace_s)
        member.outbox.attach(sink)
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY) or member.outbox.closed:
                # A participant the room let go (slow consumer) acts no more.
                break
            await _act(room, member, codec, msg.data)
            await fair.handled()
    finally:
        room.leave(member)
        if not member.outbox.closed:
            member.outbox.close(CloseCode.NORMAL, "")
        if sink is not None:
            await sink.finished()
        log.info("connection closed", extra={"code": ws.close_code})


async def _join(
    request: web.Request,
    ws: web.WebSocketResponse,
    codec: Codec,
    hello: Hello,
    identity: Identity,
) -> tuple[Turns, Member] | None:
    """Join the room, or refuse the connection (and return None)."""
    room_id = request.match_info["room"]
    await request.app[SETUP_GATE].enter()
    try:
        room = await request.app[DIRECTORY].get(room_id)
        member = room.join(
            name=identity.name or hello.name,
            since=hello.since,
            codec=codec,
            seat=seat_for(request, identity),
        )
    except PeerError as exc:
        await _refuse(ws, codec, exc, code=CloseCode.GOING_AWAY)
        return None
    except Exception:
        log.exception("room %s could not be opened", room_id)
        failure = PeerError("internal", "the room could not be opened; try again")
        await _refuse(ws, codec, failure, code=CloseCode.INTERNAL_ERROR)
        return None
    structured.bind(room=room_id, participant=member.id)
    return room, member


async def _read_hello(ws: web.WebSocketResponse, codec: Codec, wait_s: float) -> Hello | None:
    try:
        async with asyncio.timeout(wait_s):
            msg = await ws.receive()
    except TimeoutError:
        await _refuse(ws, codec, PeerError("bad_frame", "no hello within the hello timeout"))
        return None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    try:
        frame = codec.decode(msg.data)
    except PeerError as exc:
        await _refuse(ws, codec, _as_bad_first_frame(exc))
        return None
    if not isinstance(frame, Hello):
        await _refuse(
            ws, codec, PeerError("bad_frame", "the first frame must be hello", ref=frame.id)
        )
        return None
    return frame


def _as_bad_first_frame(error: PeerError) -> PeerError:
    """A first frame of an unknown type is refused as not being hello, like any other type.

    The protocol answers every first frame that is not hello with ``bad_frame``; the codec's
    ``unknown_type`` would tell the client to look for a typo rather than for the missing hello.
    """
    if error.code != "unknown_type":
        return error
    return PeerError("bad_frame", f"the first frame must be hello ({error.message})", ref=error.ref)


async def _refuse(
    ws: web.WebSocketResponse,
    codec: Codec,
    error: PeerError,
    *,
    code: CloseCode = CloseCode.PROTOCOL_ERROR,
) -> None:
    with suppress(ConnectionError):
        await _send(ws, codec, codec.render(error.to_frame(), None))
        await ws.close(code=code, message=close_reason(error.message))


async def _act(room: Turns, member: Member, codec: Codec, data: str | bytes) -> None:
    try:
        frame = codec.decode(data)
    except PeerError as exc:
        room.tell(member, exc.to_frame())
        return
    await room.handle(member, frame)


async def _send(ws: web.WebSocketResponse, codec: Codec, data: bytes) -> None:
    await ws.send_frame(data, WSMsgType.BINARY if codec.binary else WSMsgType.TEXT)
