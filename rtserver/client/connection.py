"""One participant's connection to one room, kept alive across network trouble.

The client reads frames on its own task and queues them for ``async for event in room``. After a
drop (or close 4000, slow consumer, or 1001, server going away) it reconnects with backoff and
sends ``hello.since``: the server replays what was missed, or sends a fresh snapshot, and the
client drops replayed duplicates, so every room event is yielded exactly once and in order.
WebSocket pings find a connection that died without closing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Final, Literal, get_args
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from rtserver.client.backoff import Backoff
from rtserver.client.events import (
    ConnectFailed,
    ConnectionState,
    Event,
    Refused,
    StatusChange,
)
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import PeerCodec, Unrecognised, peer_codec_for
from rtserver.protocol.frames import (
    Approve,
    Cancel,
    ClientFrame,
    ErrorFrame,
    Hello,
    Interrupt,
    MessageEvent,
    Params,
    Ping,
    Prompt,
    Regenerate,
    RoomEvent,
    ServerFrame,
    Since,
    Typing,
    Welcome,
    Withdraw,
)

log = logging.getLogger(__name__)

_ROOM_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Close codes after which retrying cannot help: policy (auth) and protocol error.
_FINAL_CLOSES: Final = frozenset((CloseCode.PROTOCOL_ERROR, CloseCode.POLICY_VIOLATION))
#: Error codes that, before a welcome, refuse the client for good.
_FINAL_ERRORS: Final = frozenset(("unauthorized", "forbidden"))
#: Every room event type this client knows: the members of the protocol's RoomEvent union.
_ROOM_EVENTS: Final = get_args(RoomEvent)
_END: Final = object()

Codec = Literal["json", "msgpack"]


def new_id() -> str:
    """A fresh frame id; a prompt's id makes resending it harmless."""
    return uuid.uuid4().hex


def room_url(base_url: str, room: str) -> str:
    """The WebSocket URL of ``room`` on the server at ``base_url`` (http(s) or ws(s))."""
    if not _ROOM_ID.fullmatch(room):
        raise ValueError(f"room ids are 1 to 64 characters of A-Z, a-z, 0-9, _ and -: {room!r}")
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"base_url must be an http(s):// or ws(s):// URL: {base_url!r}")
    path = parts.path.rstrip("/") + f"/v1/rooms/{quote(room)}/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class _Reconnect(Exception):
    """The connection must be dropped and resumed (a gap in the room events)."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """How one connection ended: why, its close code if any, and whether for good."""

    reason: str
    code: int | None = None
    refused: Refused | None = None


class RoomClient:
    """A participant of one room; use it through :func:`rtserver.client.connect`.

    ``ping_interval`` and ``ping_timeout`` (seconds) set the WebSocket pings that find a dead
    connection; ``max_events`` bounds the frames queued for a reader that falls behind (the
    server then closes the connection as a slow consumer, and the client resumes).
    """

    def __init__(
        self,
        base_url: str,
        room: str,
        *,
        name: str | None = None,
        token: str | None = None,
        codec: Codec = "json",
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float = 10.0,
        max_events: int = 10_000,
        backoff: Backoff | None = None,
    ) -> None:
        self.room = room
        self.url = room_url(base_url, room)
        self._name = name
        self._token = token
        self._codec: PeerCodec = peer_codec_for(codec)
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._backoff = backoff or Backoff()
        # Unbounded, so that a status change or the end always fits; room frames wait for
        # room below max_events instead (see _queue_frame).
        self._events: asyncio.Queue[Event | object] = asyncio.Queue()
        self._max_events = max_events
        self._taken = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._since: Since | None = None
        self._welcome: Welcome | None = None
        self._welcomed = False
        self._state: ConnectionState = "connecting"
        self._refused: Refused | None = None
        self._ended = False
        #: Prompts (and interrupts with text) not yet seen stored: resent after a reconnect.
        self._pending: dict[str, Prompt | Interrupt] = {}
        #: Cancels and interrupts asked for while disconnected, sent after the next welcome.
        self._queued: list[ClientFrame] = []

    # --- state --------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def since(self) -> Since | None:
        """The last room event yielded: where a resume starts."""
        return self._since

    @property
    def welcome(self) -> Welcome | None:
        """The latest welcome; its ``resumed`` says whether the last reconnect replayed."""
        return self._welcome

    @property
    def refused(self) -> Refused | None:
        """Why the server refused this client for good, once it has."""
        return self._refused

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> RoomClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and wait for the first welcome.

        Raises :class:`Refused` when the server refuses this client, :class:`ConnectFailed`
        when the first connection fails otherwise.
        """
        if self._task is not None:
            return
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"rtserver client {self.room}")
        try:
            await self._first
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """End the connection for good; the room's streams run on."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self._finish("closed", None)

    # --- sending ------------------------------------------------------------------------

    async def prompt(
        self,
        text: str,
        *,
        models: list[str] | None = None,
        params: Params | None = None,
        id: str | None = None,
    ) -> str:
        """Send a prompt; returns its id.

        A prompt sent while disconnected, or whose connection drops before the server echoes
        it, is resent after reconnecting; its id makes that safe (the server starts nothing
        twice).
        """
        frame = Prompt(id=id or new_id(), text=text, models=models, params=params)
        self._pending[frame.id] = frame
        await self._send_now(frame)
        return frame.id

    async def cancel(self, *, stream: str | None = None, model: str | None = None) -> None:
        """Cancel one stream, one model's streams, or (with neither) every running stream."""
        await self._send_or_queue(Cancel(id=new_id(), stream=stream, model=model))

    async def interrupt(
        self,
        *,
        text: str | None = None,
        models: list[str] | None = None,
        params: Params | None = None,
    ) -> str:
        """End every running stream; with ``text``, then send it as a new prompt.

        Returns the frame's id, which is also the new prompt's id.
        """
        frame = Interrupt(id=new_id(), text=text, models=models, params=params)
        if text is None:
            await self._send_or_queue(frame)
        else:
            self._pending[frame.id or ""] = frame
            await self._send_now(frame)
        return frame.id or ""

    async def approve(self, call: str, *, allow: bool) -> str:
        """Answer a ``tool_approval``: run the call or deny it; returns the frame's id."""
        frame = Approve(id=new_id(), call=call, allow=allow)
        await self._send_or_queue(frame)
        return frame.id or ""

    async def regenerate(self, model: str, reply_to: str) -> str:
        """Run ``model``'s reply to user message ``reply_to`` again; returns the frame's id.

        While streams run it waits in the room's queue like a prompt; its ``stream_start``
        names the reply it replaces. An ``error`` refusing it carries the id as ``ref``.
        """
        frame = Regenerate(id=new_id(), model=model, reply_to=reply_to)
        await self._send_or_queue(frame)
        return frame.id or ""

    async def withdraw(self, message: str) -> str:
        """Take one's own queued prompt (its user message id) out of the room's queue.

        The room hears of it as ``unqueued`` with reason ``withdrawn``. Returns the frame's id.
        """
        frame = Withdraw(id=new_id(), message=message)
        await self._send_or_queue(frame)
        return frame.id or ""

    async def typing(self, active: bool) -> None:
        """Tell the room whether this participant is typing; dropped while disconnected."""
        await self._send_now(Typing(active=active))

    async def ping(self) -> str:
        """Ask for a ``pong`` carrying the returned id; dropped while disconnected."""
        frame = Ping(id=new_id())
        await self._send_now(frame)
        return frame.id or ""

    async def _send_now(self, frame: ClientFrame) -> None:
        ws = self._ws
        if ws is None or not self._welcomed:
            return
        data = self._codec.encode(frame)
        with suppress(ConnectionClosed):
            await ws.send(data if self._codec.binary else data.decode())

    async def _send_or_queue(self, frame: ClientFrame) -> None:
        if self._ws is None or not self._welcomed:
            self._queued.append(frame)
        else:
            await self._send_now(frame)

    # --- receiving ----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            if self._ended and self._events.empty():
                break
            item = await self._take()
            if item is _END:
                break
            yield item  # type: ignore[misc]
        if self._refused is not None:
            raise self._refused

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, or None once the client has closed; raises TimeoutError after
        ``timeout`` seconds, and :class:`Refused` once the server refused the client."""
        async with asyncio.timeout(timeout):
            if self._ended and self._events.empty():
                item: object = _END
            else:
                item = await self._take()
        if item is _END:
            if self._refused is not None:
                raise self._refused
            return None
        return item  # type: ignore[return-value]

    async def _take(self) -> object:
        item = await self._events.get()
        self._taken.set()
        return item

    async def _queue_frame(self, frame: Event) -> None:
        """Queue a frame for the reader, waiting while ``max_events`` are unread.

        While it waits nothing more is read from the socket, so the server sees a slow
        consumer, closes it with 4000, and the client resumes once the reader catches up.
        """
        while self._events.qsize() >= self._max_events:
            self._taken.clear()
            await self._taken.wait()
        self._events.put_nowait(frame)

    # --- the connection loop ------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            ended = await self._connect_once()
            first = self._first is not None and not self._first.done()
            if ended.refused is not None or first:
                self._fail_first(ended.refused or ConnectFailed(ended.reason))
                self._finish("closed", ended.refused)
                return
            delay = self._retry_delay(ended.code)
            self._status("reconnecting", retry_in=delay, reason=ended.reason)
            await asyncio.sleep(delay)

    def _retry_delay(self, code: int | None) -> float:
        # A slow consumer was cut off on purpose and the server is fine: come back at once,
        # with a little jitter so that a burst of them does not return together.
        if code == CloseCode.SLOW_CONSUMER:
            return self._backoff.jitter(0.25)
        return self._backoff.next()

    async def _connect_once(self) -> _Ended:
        """One connection, from handshake to close: why it ended, and whether for good."""
        self._welcomed = False
        self._status("reconnecting" if self._welcome else "connecting")
        try:
            async with ws_connect(
                self.url,
                subprotocols=[Subprotocol(self._codec.name)],
                additional_headers=self._headers(),
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                max_size=None,
                compression=None,
            ) as ws:
                self._ws = ws
                try:
                    await self._converse(ws)
                finally:
                    self._ws = None
                    self._welcomed = False
                    await ws.close()
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = f"the server answered HTTP {status}"
            final = 400 <= status < 500 and status != 429
            return _Ended(reason, refused=Refused(reason) if final else None)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return _Ended(f"cannot connect: {exc}")
        except _Reconnect as exc:
            return _Ended(str(exc))
        except ConnectionClosed as exc:
            return self._closed(
                exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else ""
            )
        return self._closed(ws.close_code, ws.close_reason or "")

    def _closed(self, code: int | None, text: str) -> _Ended:
        if self._refused is not None:
            return _Ended(str(self._refused), code, self._refused)
        reason = (
            f"closed with {code}" + (f": {text}" if text else "") if code else "connection lost"
        )
        if code in _FINAL_CLOSES:
            return _Ended(reason, code, Refused(text or reason, close_code=code))
        return _Ended(reason, code)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _converse(self, ws: ClientConnection) -> None:
        hello = Hello(name=self._name, token=self._token, since=self._since)
        data = self._codec.encode(hello)
        await ws.send(data if self._codec.binary else data.decode())
        async for message in ws:
            try:
                frame = self._codec.decode(message)
            except ValueError as exc:
                raise _Reconnect(str(exc)) from None
            await self._receive(ws, frame)
            if self._refused is not None:
                return

    async def _receive(self, ws: ClientConnection, frame: ServerFrame | Unrecognised) -> None:
        if isinstance(frame, Unrecognised):
            # A newer frame: ignored, but a room event's seq still counts, and a newer
            # refusal still ends the client.
            if frame.seq is not None:
                self._in_sequence(frame.seq)
            self._check_refusal(frame.code, frame.message or f"refused ({frame.code})")
            return
        if isinstance(frame, Welcome):
            await self._on_welcome(ws, frame)
            return
        if isinstance(frame, _ROOM_EVENTS):
            if not self._in_sequence(frame.seq):
                return
            if isinstance(frame, MessageEvent):
                self._pending.pop(frame.prompt_id, None)
        elif isinstance(frame, ErrorFrame):
            if frame.ref is not None:
                self._pending.pop(frame.ref, None)
            self._check_refusal(frame.code, frame.message)
        await self._queue_frame(frame)

    def _check_refusal(self, code: str | None, message: str) -> None:
        if code in _FINAL_ERRORS and not self._welcomed:
            self._refused = Refused(message, code=code)

    async def _on_welcome(self, ws: ClientConnection, welcome: Welcome) -> None:
        since = self._since
        resumed = welcome.resumed and since is not None and since.epoch == welcome.epoch
        if not resumed:
            self._since = Since(epoch=welcome.epoch, seq=welcome.seq)
            # A snapshot holds the prompts the server already took: those need no resend.
            for message in welcome.messages:
                if message.prompt_id is not None:
                    self._pending.pop(message.prompt_id, None)
            welcome = msgspec.structs.replace(welcome, resumed=False)
        self._welcome = welcome
        self._welcomed = True
        self._backoff.reset()
        if self._first is not None and not self._first.done():
            self._first.set_result(None)
        self._status("open")
        await self._queue_frame(welcome)
        await self._flush(ws)

    def _in_sequence(self, seq: int) -> bool:
        """Move ``since`` on to ``seq``; False for a duplicate (drop it). A gap reconnects."""
        since = self._since
        if not self._welcomed or since is None or seq <= since.seq:
            return False
        if seq != since.seq + 1:
            raise _Reconnect(f"missed room events {since.seq + 1} to {seq - 1}")
        self._since = Since(epoch=since.epoch, seq=seq)
        return True

    async def _flush(self, ws: ClientConnection) -> None:
        # Cancels go before prompts: a prompt sent first would wait in the room's queue behind
        # the very streams the cancel was meant to end, and a cancel of everything clears it.
        queued, self._queued = self._queued, []
        for frame in [*queued, *self._pending.values()]:
            data = self._codec.encode(frame)
            await ws.send(data if self._codec.binary else data.decode())

    # --- status -------------------------------------------------------------------------

    def _status(
        self, state: ConnectionState, *, retry_in: float | None = None, reason: str | None = None
    ) -> None:
        if state == self._state and retry_in is None:
            return
        self._state = state
        change = StatusChange(
            state=state, attempt=self._backoff.attempt, retry_in=retry_in, reason=reason
        )
        self._events.put_nowait(change)

    def _fail_first(self, error: Exception) -> None:
        if self._first is not None and not self._first.done():
            self._first.set_exception(error)

    def _finish(self, state: ConnectionState, refused: Refused | None) -> None:
        if self._ended:
            return
        self._refused = self._refused or refused
        self._ended = True
        self._state = state
        reason = str(refused) if refused else None
        self._events.put_nowait(StatusChange(state="closed", reason=reason))
        self._events.put_nowait(_END)


def connect(
    base_url: str,
    room: str,
    *,
    name: str | None = None,
    token: str | None = None,
    codec: Codec = "json",
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    open_timeout: float = 10.0,
    max_events: int = 10_000,
    backoff: Backoff | None = None,
) -> RoomClient:
    """A client of ``room`` on the server at ``base_url``; use it as ``async with``.

    ``token`` goes in ``hello.token`` and as an ``Authorization: Bearer`` header; ``codec`` is
    ``"json"`` (``rt.v1.json``) or ``"msgpack"`` (``rt.v1.msgpack``).
    """
    return RoomClient(
        base_url,
        room,
        name=name,
        token=token,
        codec=codec,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        open_timeout=open_timeout,
        max_events=max_events,
        backoff=backoff,
    )
