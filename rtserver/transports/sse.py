"""The Server-Sent Events transport, for clients that cannot open a WebSocket.

``GET /v1/rooms/{room}/events`` joins the room exactly as a WebSocket ``hello`` does and streams
the participant's outbox as SSE events; ``POST /v1/rooms/{room}/frames`` carries that
participant's client frames, one JSON frame per request, and answers an error about a frame in
the HTTP response. Both hand frames to the same :class:`~rtserver.turns.turns.Turns` as the
WebSocket transport, so an SSE participant and a WebSocket participant see identical events.
Event ids (``id: <epoch>:<seq>``) are made here, from where the room says each event stands.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Final

import msgspec
from aiohttp import web

from rtserver.auth.access import Identity
from rtserver.errors import PeerError
from rtserver.keys import ACCESS, BUS, CLIENT_LIMITS, DIRECTORY, SETTINGS
from rtserver.ops import logging as structured
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import JSON, EventAt
from rtserver.protocol.frames import ClientFrame, Hello, ServerFrame, Since
from rtserver.room.member import Member
from rtserver.room.outbox import Outbox, OutboxClosed
from rtserver.transports.http import (
    allow_cors,
    ascii_digits,
    error_response,
    identify,
    json_response,
    room_id_or_400,
    seat_for,
)
from rtserver.turns.shared import SharedTurns

SESSION_HEADER: Final = "X-RT-Session"
#: An SSE comment: every SSE parser skips it. It keeps proxies from timing the response out and
#: makes the server write, which is how it notices a peer that vanished without closing.
HEARTBEAT: Final = b": keep-alive\n\n"
#: Seconds between checks that the peer still holds the connection open. aiohttp tells a
#: handler nothing when its client goes, and a participant's presence should not outlive it.
PEER_CHECK_S: Final = 1.0


class SseCodec:
    """Server frames as SSE events: ``id: <epoch>:<seq>`` when the frame has a place in the
    room's order, then ``data: <JSON>``.

    Pure, like every codec. Events carry no ``event:`` name, so ``EventSource.onmessage`` sees
    every frame. JSON never holds a raw line break, so each frame fits on one ``data:`` line.
    Client frames (sent by POST) are plain JSON.
    """

    name: Final = "sse"
    binary: Final = False

    def render(self, frame: ServerFrame, at: EventAt | None) -> bytes:
        data = b"data: " + JSON.encode(frame) + b"\n\n"
        if at is None:
            return data
        return event_id(at) + data

    def decode(self, data: str | bytes) -> ClientFrame:
        return JSON.decode(data)


def event_id(at: EventAt) -> bytes:
    """The ``id:`` line naming an event: ``<epoch>:<seq>``, what ``Last-Event-ID`` resumes from."""
    epoch, seq = at
    return b"id: %s:%d\n" % (epoch.encode(), seq)


SSE: Final = SseCodec()


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    """Start a ``200 text/event-stream`` response that proxies neither buffer nor cache."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    # Prepared here, so the API middleware cannot add its CORS headers afterwards.
    allow_cors(request, response)
    await response.prepare(request)
    return response


async def stream_outbox(
    request: web.Request, response: web.StreamResponse, outbox: Outbox, *, heartbeat: float
) -> None:
    """Write ``outbox`` to ``response`` until the outbox closes or the peer goes away.

    A closed outbox ends the response (after what it still holds, if it was closed with
    ``flush``); a code other than 1000 is named in a last comment, for people and tools.
    """
    keeper = asyncio.create_task(_keep_alive(request, outbox, heartbeat))
    try:
        while True:
            # Everything queued since the last write goes out in one.
            await outbox.wait()
            await response.write(b"".join(outbox.take_ready()))
    except OutboxClosed as closed:
        if closed.code != CloseCode.NORMAL:
            with suppress(ConnectionError):
                await response.write(f": closed {closed.code} {closed.reason}\n\n".encode())
    except ConnectionError:
        outbox.close(CloseCode.CONNECTION_LOST, "connection lost")
    finally:
        keeper.cancel()


async def _keep_alive(request: web.Request, outbox: Outbox, heartbeat: float) -> None:
    """Queue a comment every ``heartbeat`` seconds; close the outbox once the peer has gone.

    Once the outbox is closed, a connection whose writer is still blocked one heartbeat later
    is cut: a peer that stopped reading would otherwise hold it forever.
    """
    loop = asyncio.get_running_loop()
    beat_at = loop.time() + heartbeat
    while not outbox.closed:
        await asyncio.sleep(max(0.0, min(PEER_CHECK_S, beat_at - loop.time())))
        if request.transport is None:
            outbox.close(CloseCode.CONNECTION_LOST, "connection lost")
        elif loop.time() >= beat_at:
            outbox.put(HEARTBEAT, force=True)
            beat_at = loop.time() + heartbeat
    await asyncio.sleep(heartbeat)
    transport = request.transport
    if transport is not None:
        transport.abort()


async def events_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/rooms/{room}/events?name=&token=&since=<epoch>:<seq>`` (or ``Last-Event-ID``)."""
    room_id = room_id_or_400(request)
    hello = _hello_from(request)
    identity = request.app[ACCESS].identify(request, hello.token, room=room_id, connection=True)
    client_limits = request.app[CLIENT_LIMITS]
    client_limits.join(identity.key)
    with client_limits.connection(identity.key):
        return await _stream_room(request, room_id, hello, identity)


async def _stream_room(
    request: web.Request, room_id: str, hello: Hello, identity: Identity
) -> web.StreamResponse:
    room = await request.app[DIRECTORY].get(room_id)
    # No await between opening the room and joining it, so the room cannot expire in between.
    member = room.join(
        name=identity.name or hello.name,
        since=hello.since,
        codec=SSE,
        seat=seat_for(request, identity),
    )
    structured.bind(room=room_id, participant=member.id)
    try:
        response = await open_event_stream(request)
        heartbeat = request.app[SETTINGS].limits.sse_heartbeat
        await stream_outbox(request, response, member.outbox, heartbeat=heartbeat)
    finally:
        room.leave(member)
        member.outbox.close(CloseCode.NORMAL, "")
    return response


def _hello_from(request: web.Request) -> Hello:
    """The ``hello`` that an events request stands for, validated like a WebSocket hello."""
    query = request.query
    fields = {
        "type": "hello",
        "name": query.get("name"),
        "token": query.get("token"),
        # On an automatic reconnect the browser repeats the original URL, with its `since`,
        # and sends the id of the last event it got, which is the newer of the two.
        "since": _parse_since(request.headers.get("Last-Event-ID") or query.get("since")),
    }
    try:
        return msgspec.convert(fields, Hello)
    except msgspec.ValidationError as exc:
        raise PeerError("bad_frame", f"invalid events request: {exc}"[:300]) from None


def _parse_since(value: str | None) -> Since | None:
    """``<epoch>:<seq>`` as a Since; None for anything else, which gets a full snapshot.

    An unusable value is not refused: a browser would give up on the stream for good, while a
    snapshot costs only bytes.
    """
    if not value:
        return None
    epoch, _, seq = value.rpartition(":")
    if not epoch or len(epoch) > 128 or not ascii_digits(seq) or len(seq) > 15:
        return None
    return Since(epoch=epoch, seq=int(seq))


async def frames_handler(request: web.Request) -> web.Response:
    """``POST /v1/rooms/{room}/frames?session=<welcome.session>``: one client frame."""
    room_id = room_id_or_400(request)
    session = request.query.get("session") or request.headers.get(SESSION_HEADER)
    found = request.app[DIRECTORY].member_by_session(room_id, session) if session else None
    if found is None:
        answered = await _post_elsewhere(request, room_id, session) if session else None
        if answered is not None:
            return answered
        # Distinct from not_found (a frame naming a stream that does not exist): this one
        # means "open a new event stream", which the client must be able to tell apart.
        raise PeerError("forbidden", "no such session in this room: open a new event stream")
    room, member = found
    _check_owner(request, room_id, member)
    frame = SSE.decode(await read_body(request))
    if isinstance(frame, Hello):
        raise PeerError("bad_frame", "hello is the events request, not a frame", ref=frame.id)
    try:
        await room.act(member, frame)
    except PeerError as exc:
        return error_response(exc.with_ref(frame.id))
    return json_response({"ok": True}, status=202)


async def _post_elsewhere(request: web.Request, room_id: str, session: str) -> web.Response | None:
    """With several nodes, a POST may reach another node than its event stream's: it is
    sent to that one, and its answer is this POST's. None when no node holds the session."""
    room = await request.app[DIRECTORY].get(room_id) if request.app[BUS].shared else None
    if not isinstance(room, SharedTurns):
        return None
    # The holder checks the token's subject against the session's ("" in open mode: none).
    owner = "" if request.app[ACCESS].open else identify(request, room=room_id).key
    frame = SSE.decode(await read_body(request))
    if isinstance(frame, Hello):
        raise PeerError("bad_frame", "hello is the events request, not a frame", ref=frame.id)
    try:
        if not await room.act_by_session(session, owner, frame):
            return None
    except PeerError as exc:
        return error_response(exc.with_ref(frame.id))
    return json_response({"ok": True}, status=202)


def _check_owner(request: web.Request, room_id: str, member: Member) -> None:
    """With tokens, a POST must bear a token of the subject that holds the session."""
    if request.app[ACCESS].open:
        return
    if identify(request, room=room_id).key != member.owner:
        raise PeerError("forbidden", "this session belongs to another token subject")


async def read_body(request: web.Request) -> bytes:
    """The request body, or ``too_large`` when it passes the frame limit."""
    # The application's client_max_size is the frame limit too.
    limit = request.app[SETTINGS].limits.max_frame_bytes
    too_large = PeerError("too_large", f"a request body may be at most {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
