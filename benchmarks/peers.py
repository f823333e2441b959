"""The two servers rtserver is measured against, speaking just enough of the same frames.

Both put every connection in one room, greet it with ``welcome`` (the head ``seq``), and on a
``go`` from any participant stream ``tokens`` token frames at ``rate`` per second (0: as fast as
possible), stamped with ``emitted_us`` like rtserver's stamping demo models, then a
``stream_end``. The bare loop is the floor: each token is encoded once and handed to each
socket's ``send_frame``. The python-socketio server is what many projects would write: one
``emit`` per token to a room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

Frame = dict[str, Any]
ROOM = "bench"


def token_text(turn: int, index: int) -> str:
    """The peers' token ``index`` of turn ``turn``: a word with its leading space."""
    return f" t{turn}.{index}"


class Go(msgspec.Struct):
    """A participant's request for one stream."""

    turn: int
    tokens: int
    rate: float = 0.0


class Feed:
    """The room's seq and the paced token stream; ``send`` delivers a frame to everyone."""

    def __init__(self, send: Callable[[Frame], Awaitable[None]]) -> None:
        self.seq = 0
        self._send = send
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, go: Go) -> None:
        task = asyncio.create_task(self._run(go))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, go: Go) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / go.rate if go.rate > 0 else 0.0
        start = loop.time()
        stream = f"s{go.turn}"
        for index in range(go.tokens):
            delay = start + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.seq += 1
            await self._send(
                {
                    "type": "token",
                    "seq": self.seq,
                    "stream": stream,
                    "text": token_text(go.turn, index),
                    "emitted_us": time.time_ns() // 1000,
                }
            )
        self.seq += 1
        await self._send(
            {
                "type": "stream_end",
                "seq": self.seq,
                "stream": stream,
                "usage": {"output_tokens": go.tokens},
            }
        )


SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
FEED = web.AppKey("feed", Feed)


def bare_app() -> web.Application:
    """The floor: encode each frame once, ``send_frame`` it to each socket in turn."""
    app = web.Application()
    sockets: set[web.WebSocketResponse] = set()

    async def send_all(frame: Frame) -> None:
        data = msgspec.json.encode(frame)
        for ws in list(sockets):
            if not ws.closed:
                await ws.send_frame(data, WSMsgType.TEXT)

    app[SOCKETS] = sockets
    app[FEED] = Feed(send_all)
    app.router.add_get("/ws", _bare_socket)
    return app


async def _bare_socket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    feed = request.app[FEED]
    request.app[SOCKETS].add(ws)
    try:
        await ws.send_frame(
            msgspec.json.encode({"type": "welcome", "seq": feed.seq}), WSMsgType.TEXT
        )
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                feed.start(msgspec.json.decode(msg.data, type=Go))
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


def socketio_app() -> web.Application:
    """python-socketio's AsyncServer on aiohttp: one ``emit`` to the room per token."""
    import socketio  # a bench extra; imported here so that the bare peer runs without it

    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"])
    app = web.Application()
    sio.attach(app)

    async def send_all(frame: Frame) -> None:
        await sio.emit(frame["type"], frame, room=ROOM)

    feed = Feed(send_all)
    app[FEED] = feed

    async def connect(sid: str, environ: object) -> None:
        await sio.enter_room(sid, ROOM)
        await sio.emit("welcome", {"type": "welcome", "seq": feed.seq}, to=sid)

    async def go(sid: str, data: Frame) -> None:
        feed.start(msgspec.convert(data, type=Go))

    sio.on("connect", connect)
    sio.on("go", go)
    return app


#: What the refusing peer answers every flooder: the cheapest refusal an aiohttp server has.
REFUSAL = msgspec.json.encode(
    {"type": "error", "code": "rate_limited", "message": "refused", "retry_after": 1.0}
)


def refusing_app() -> web.Application:
    """The floor under a reconnect flood: refuse everyone but the calm room, and do no more.

    A history page is answered 429 at once; a WebSocket is upgraded, its hello read, and it is
    refused with one error frame and a 1013 close. The calm room's socket answers pings. What a
    calm client's ping costs against this peer is what the event loop itself costs while it
    upgrades and refuses as fast as the flood comes.
    """
    app = web.Application()
    app.router.add_get("/v1/models", _no_models)
    app.router.add_get("/v1/rooms/{room}/messages", _too_many)
    app.router.add_get("/v1/rooms/{room}/ws", _refusing_socket)
    return app


async def _no_models(request: web.Request) -> web.Response:
    return web.json_response({"models": []})


async def _too_many(request: web.Request) -> web.Response:
    return web.json_response(
        {"error": {"code": "rate_limited"}}, status=429, headers={"Retry-After": "1"}
    )


async def _refusing_socket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    await ws.receive()  # the hello
    if request.match_info["room"] != "calm":
        await ws.send_frame(REFUSAL, WSMsgType.TEXT)
        await ws.close(code=1013)
        return ws
    await ws.send_frame(msgspec.json.encode({"type": "welcome", "seq": 0}), WSMsgType.TEXT)
    async for msg in ws:
        frame = msgspec.json.decode(msg.data)
        if frame.get("type") == "ping":
            pong = {"type": "pong", "id": frame.get("id")}
            await ws.send_frame(msgspec.json.encode(pong), WSMsgType.TEXT)
    return ws
