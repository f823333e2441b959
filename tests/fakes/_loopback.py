"""The part every fake vendor shares: a loopback aiohttp server that records its requests.

Each request is kept as a :class:`RecordedRequest`, which also tells whether and when the client
closed the connection while the server was still streaming. aiohttp is run with
``handler_cancellation`` so that a client's disconnect cancels the handler at once; that moment
is what the cancel tests wait for.

:class:`ScriptedServer` answers each request with the reply a test scripted: a JSON error
(:class:`ErrorReply`) or a stream the vendor module writes in its own wire format.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait this many seconds before the next step."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Hang:
    """Send nothing more and keep the connection open until the client closes it."""


@dataclass(frozen=True, slots=True)
class WaitFor:
    """Send nothing until the test sets ``event``."""

    event: asyncio.Event


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the connection in the middle of the body, as a crashed server would."""


@dataclass(frozen=True, slots=True)
class Raw:
    """Write these bytes as they are (for malformed streams)."""

    data: bytes


ControlStep = Pause | Hang | WaitFor | Abort | Raw


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A non-200 answer with the vendor's JSON error body."""

    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RecordedRequest:
    """One request the fake received, and what became of its connection."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    #: Set once the server stops serving this request, however that happened.
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when the client closed the connection before the server was done.
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected_at: float | None = None
    #: True when the server sent its whole script.
    completed: bool = False
    #: True when the script dropped the connection on purpose (:class:`Abort`).
    aborted: bool = False
    #: Number of SSE events written before the connection ended.
    events_sent: int = 0

    @property
    def model(self) -> str | None:
        value = self.body.get("model")
        return value if isinstance(value, str) else None

    @property
    def credential(self) -> str | None:
        """The key the client sent, from ``Authorization: Bearer`` or ``x-api-key``."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("x-api-key")


class Streaming:
    """A streaming response in progress: the handler writes events through it."""

    def __init__(self, request: web.Request, response: web.StreamResponse, record: RecordedRequest):
        self.request = request
        self.response = response
        self.record = record

    async def send(self, data: bytes) -> None:
        await self.response.write(data)
        self.record.events_sent += 1

    async def control(self, step: ControlStep) -> None:
        """Carry out a step that is the same for every vendor."""
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Hang):
            await asyncio.Event().wait()
        elif isinstance(step, WaitFor):
            await step.event.wait()
        elif isinstance(step, Abort):
            self.record.aborted = True
            transport = self.request.transport
            if transport is not None:
                transport.abort()
            # Give aiohttp the chance to notice, so the handler ends the way a crash would.
            await asyncio.Event().wait()
        else:
            await self.response.write(step.data)


Handler = Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]]


class LoopbackServer:
    """An aiohttp server on 127.0.0.1 with a random port; subclasses route the vendor paths."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.port = int(port)

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests have arrived."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests[:count]

    async def record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body if isinstance(body, dict) else {},
            received_at=asyncio.get_running_loop().time(),
        )
        async with self._arrived:
            self.requests.append(record)
            self._arrived.notify_all()
        return record

    async def serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the request, run ``handler`` and note how the connection ended."""
        record = await self.record(request)
        try:
            response = await handler(request, record)
            record.completed = True
            return response
        except asyncio.CancelledError:
            if not self._closing and not record.aborted:
                record.disconnected_at = asyncio.get_running_loop().time()
                record.disconnected.set()
            raise
        except ConnectionResetError:
            # A write to a connection the client already closed.
            if not self._closing and record.disconnected_at is None:
                record.disconnected_at = asyncio.get_running_loop().time()
                record.disconnected.set()
            raise
        finally:
            record.finished.set()


class StreamScript(Protocol):
    """A vendor's scripted 200 answer: what it streams is the vendor module's business."""

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        ...


StreamReplyT = TypeVar("StreamReplyT", bound=StreamScript)


class ScriptedServer(LoopbackServer, Generic[StreamReplyT]):
    """A fake vendor that answers ``path`` with scripted replies, for every model or for one.

    A subclass says how the vendor refuses a request and writes a streaming reply.
    """

    #: The endpoint the vendor's SDK posts to.
    path: str
    #: The response header that carries the request id.
    request_id_header: str

    def __init__(self, *, api_key: str | None, default: StreamReplyT) -> None:
        super().__init__()
        #: When set, requests with another key get the vendor's 401.
        self.api_key = api_key
        self.default: StreamReplyT | ErrorReply = default
        self.by_model: dict[str, StreamReplyT | ErrorReply] = {}
        #: Replies for the next requests, in order (a tool loop's steps), before the above.
        self.queued: collections.deque[StreamReplyT | ErrorReply] = collections.deque()
        self._ids = itertools.count(1)

    def script(self, reply: StreamReplyT | ErrorReply, *, model: str | None = None) -> None:
        """Answer every request (or those for ``model``) with ``reply``."""
        if model is None:
            self.default = reply
        else:
            self.by_model[model] = reply

    def script_steps(self, *replies: StreamReplyT | ErrorReply) -> None:
        """Answer the next requests with ``replies``, one each, then as scripted before.

        A tool loop is one request per step: the first reply makes calls, the next ones answer
        the requests that carry their results.
        """
        self.queued.extend(replies)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.path, self._post)]

    def key_rejected(self) -> ErrorReply:
        """The vendor's answer to a wrong key."""
        raise NotImplementedError

    def malformed(self, record: RecordedRequest) -> ErrorReply | None:
        """The vendor's answer to a request missing what it requires, if it is."""
        raise NotImplementedError

    async def write_stream(self, stream: Streaming, reply: StreamReplyT, request_id: str) -> None:
        """Write ``reply`` in the vendor's wire format; the body is ended afterwards."""
        raise NotImplementedError

    async def _post(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, self._answer)

    def _reply_for(self, record: RecordedRequest) -> StreamReplyT | ErrorReply:
        if self.api_key is not None and record.credential != self.api_key:
            return self.key_rejected()
        rejection = self.malformed(record)
        if rejection is not None:
            return rejection
        if self.queued:
            return self.queued.popleft()
        return self.by_model.get(record.model or "", self.default)

    async def _answer(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        reply = self._reply_for(record)
        request_id = f"req_{next(self._ids):06d}"
        headers = {self.request_id_header: request_id}
        if isinstance(reply, ErrorReply):
            return json_response(reply.status, reply.body, headers | reply.headers)
        response = await start_sse(request, headers | reply.headers)
        await self.write_stream(Streaming(request, response, record), reply, request_id)
        await response.write_eof()
        return response


async def start_sse(request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
    """Open a ``text/event-stream`` response as the vendors send it."""
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        | headers,
    )
    await response.prepare(request)
    return response


def sse_event(payload: object, *, name: str | None = None) -> bytes:
    """One server-sent event of compact JSON, named when the vendor names its events."""
    data = json.dumps(payload, separators=(",", ":"))
    prefix = f"event: {name}\n" if name is not None else ""
    return f"{prefix}data: {data}\n\n".encode()


def json_response(status: int, body: object, headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"} | headers,
    )
