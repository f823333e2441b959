"""A participant over the SSE fallback: an event stream for server frames, POSTs for its own."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import Any

import aiohttp
import msgspec
from yarl import URL

Frame = dict[str, Any]


class SseClient:
    """Reads ``GET .../events`` like an EventSource would and records every frame and comment."""

    def __init__(self, http: aiohttp.ClientSession, url: URL, response: aiohttp.ClientResponse):
        self.http = http
        self.url = url
        self.response = response
        self.frames: list[Frame] = []
        #: the SSE ``id`` of each recorded frame, None where it had none
        self.ids: list[str | None] = []
        self.comments: list[str] = []
        self.welcome: Frame = {}
        self.ended = False
        self._buffer = bytearray()
        self._blocks: deque[bytes] = deque()
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        http: aiohttp.ClientSession,
        base: URL,
        room: str = "lobby",
        *,
        name: str = "sse",
        since: str | None = None,
        last_event_id: str | None = None,
        read: bool = True,
        token: str | None = None,
    ) -> SseClient:
        """Open the stream and read its welcome; ``read=False`` then reads nothing more."""
        query = {"name": name} | ({"since": since} if since else {})
        if token is not None:
            query["token"] = token
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        url = base.with_path(f"/v1/rooms/{room}/events").with_query(query)
        response = await http.get(url, headers=headers)
        assert response.status == 200, await response.text()
        client = cls(http, url, response)
        await client.read_event()
        assert client.frames[0]["type"] == "welcome", client.frames[0]
        client.welcome = client.frames[0]
        if read:
            client.start_reading()
        return client

    @property
    def last_event_id(self) -> str | None:
        """What an EventSource would send as ``Last-Event-ID`` now."""
        return next((i for i in reversed(self.ids) if i is not None), None)

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while await self.read_event():
                pass
        except (aiohttp.ClientError, ConnectionError):
            pass
        self.ended = True
        self._arrived.set()

    async def read_event(self) -> bool:
        """Read up to the end of the next event or comment; False at the end of the stream."""
        while not self._blocks:
            chunk = await self.response.content.readany()
            if not chunk:
                return False
            self._split(chunk)
        self._parse(self._blocks.popleft())
        self._arrived.set()
        return True

    def _split(self, chunk: bytes) -> None:
        """Add ``chunk`` and set aside every event it completes, copying each byte once."""
        scan_from = max(0, len(self._buffer) - 1)
        self._buffer += chunk
        start = 0
        while (end := self._buffer.find(b"\n\n", max(start, scan_from))) != -1:
            self._blocks.append(bytes(self._buffer[start:end]))
            start = end + 2
        if start:
            del self._buffer[:start]

    def _parse(self, block: bytes) -> None:
        event_id = None
        data = None
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                assert data is None, "one data line per event"
                data = line[6:]
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        if data is not None:
            self.frames.append(msgspec.json.decode(data))
            self.ids.append(event_id)

    async def post(
        self, frame: Frame | bytes | AsyncIterable[bytes], **kwargs: Any
    ) -> tuple[int, Any, Any]:
        """POST one frame for this session: (status, JSON body, headers).

        Bytes and chunks (an async iterable, sent chunked) go as they are; a dict as JSON.
        """
        data = msgspec.json.encode(frame) if isinstance(frame, dict) else frame
        params = kwargs.pop("params", {"session": self.welcome["session"]})
        url = self.url.with_path(self.url.path.replace("/events", "/frames")).with_query(params)
        async with self.http.post(url, data=data, **kwargs) as response:
            return response.status, await response.json(), response.headers

    async def wait_for(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    if match(frame):
                        return frame
                if self.ended:
                    raise ConnectionError("the event stream ended before a match")
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds, checking it whenever something arrives."""
        async with asyncio.timeout(timeout):
            while not condition():
                if self.ended:
                    raise ConnectionError("the event stream ended first")
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_ended(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.ended:
                self._arrived.clear()
                await self._arrived.wait()

    def of_type(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == kind]

    def room_events(self) -> list[Frame]:
        return [f for f in self.frames if "seq" in f and f["type"] != "welcome"]

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self.response.close()
