"""Client frames for a turn that runs on another node, and the answers, over control streams.

A ``cancel``, ``interrupt``, queued ``prompt`` or ``approve`` that reaches a node not running
the room's turn goes to the node that holds the turn's lease, as a request on that node's
control stream; its answer (nothing, or the error the sender must hear) comes back on the
asking node's stream. A stream entry is read within one XREAD of being added: no polling.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from redis.exceptions import RedisError

from rtserver.bus.reader import Entry
from rtserver.bus.redis import RedisBus
from rtserver.errors import PeerError
from rtserver.protocol.frames import ClientFrame, ErrorInfo, Participant

log = logging.getLogger(__name__)

#: Seconds an asking node waits for the answer before telling the sender the turn is unreachable.
ANSWER_TIMEOUT_S: Final = 3.0


class Sender(msgspec.Struct, frozen=True, kw_only=True):
    """Who sent a forwarded frame: what the owning node needs to act for them."""

    participant: Participant
    #: The identity key that limits and budgets count under.
    owner: str


class Request(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    origin: str
    room: str
    frame: ClientFrame
    sender: Sender
    #: For a frame POSTed (SSE) to another node than its session's: the session it is for.
    session: str | None = None


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    error: ErrorInfo | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(Request).decode
_decode_answer = msgspec.msgpack.Decoder(Answer).decode

#: Acts on a forwarded frame; raises PeerError for what the sender must be told.
Handler = Callable[[Request], Awaitable[None]]


class Control:
    """This node's end of the control streams: asks other nodes, and answers them."""

    def __init__(self, bus: RedisBus, *, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self._bus = bus
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self._handler: Handler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        bus.on_control(self._take)

    def serve(self, handler: Handler) -> None:
        """Act on requests from other nodes with ``handler``."""
        self._handler = handler

    async def ask(
        self,
        node: str,
        room: str,
        frame: ClientFrame,
        sender: Sender,
        *,
        session: str | None = None,
    ) -> None:
        """Have ``node`` act on ``frame``; raises the PeerError it answered, if any."""
        request = Request(
            id=secrets.token_hex(8),
            origin=self._bus.node,
            room=room,
            frame=frame,
            sender=sender,
            session=session,
        )
        answer = self._waiting[request.id] = asyncio.get_running_loop().create_future()
        try:
            await self._bus.send_control(node, {"k": "req", "m": _encode(request)})
            async with asyncio.timeout(self._timeout_s):
                result = await answer
        except RedisError:
            raise PeerError(
                "busy", "the node running this room's turn cannot be reached", retry_after=1.0
            ) from None
        except TimeoutError:
            raise PeerError(
                "internal", "the node running this room's turn did not answer", retry_after=1.0
            ) from None
        finally:
            self._waiting.pop(request.id, None)
        if result.error is not None:
            error = result.error
            raise PeerError(error.code, error.message, retry_after=error.retry_after)

    def _take(self, entries: list[Entry]) -> None:
        for _, fields in entries:
            kind, body = fields.get(b"k"), fields.get(b"m", b"")
            try:
                if kind == b"req":
                    self._start(_decode_request(body))
                elif kind == b"ans":
                    self._answered(_decode_answer(body))
            except msgspec.DecodeError:
                log.warning("bus: a control message that is not one was dropped")

    def _answered(self, answer: Answer) -> None:
        future = self._waiting.get(answer.id)
        if future is not None and not future.done():
            future.set_result(answer)

    def _start(self, request: Request) -> None:
        task = asyncio.create_task(self._answer(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: Request) -> None:
        error: ErrorInfo | None = None
        try:
            if self._handler is None:
                raise PeerError("internal", "this node takes no forwarded frames")
            await self._handler(request)
        except PeerError as exc:
            error = ErrorInfo(code=exc.code, message=exc.message, retry_after=exc.retry_after)
        except Exception:
            log.exception("bus: failed to act on a forwarded %s", request.frame.__class__.__name__)
            error = ErrorInfo(code="internal", message="the server failed to act on this frame")
        answer = Answer(id=request.id, error=error)
        try:
            await self._bus.send_control(request.origin, {"k": "ans", "m": _encode(answer)})
        except Exception:
            log.warning("bus: could not answer node %s", request.origin)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
