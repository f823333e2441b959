"""Test helpers: a protocol-speaking WebSocket client and settings for fast demo models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import aiohttp
import msgspec

from rtserver.config import Limits, ModelSpec, Settings

Frame = dict[str, Any]


def fast_settings(db_path: str, *, limits: Limits | None = None, **kwargs: Any) -> Settings:
    """Demo models quick enough for tests: `slow` (40 tok/s) and `quick` (400 tok/s).

    Token coalescing is off (one frame per token) unless ``limits`` turns it on: most tests
    count token frames.
    """
    if limits is None or limits.token_flush_ms == Limits().token_flush_ms:
        limits = msgspec.structs.replace(limits or Limits(), token_flush_ms=0)
    models = (
        ModelSpec(id="slow", provider="demo", tokens_per_s=40, first_token_s=0.05, default=True),
        ModelSpec(id="quick", provider="demo", tokens_per_s=400, first_token_s=0.01),
    )
    return Settings(db_path=db_path, models=kwargs.pop("models", models), limits=limits, **kwargs)


class RoomClient:
    """A participant over a real WebSocket, recording every frame it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.binary = ws.protocol == "rt.v1.msgpack"
        self.frames: list[Frame] = []
        self.welcome: Frame = {}
        self.closed_with: int | None = None
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        *,
        name: str = "tester",
        since: Frame | None = None,
        protocol: str = "rt.v1.json",
        hello: bool = True,
    ) -> RoomClient:
        ws = await session.ws_connect(url, protocols=(protocol,), max_msg_size=0)
        client = cls(ws)
        if hello:
            frame: Frame = {"type": "hello", "name": name}
            if since is not None:
                frame["since"] = since
            await client.send(frame)
            client.welcome = await client.receive()
            assert client.welcome["type"] == "welcome", client.welcome
            client.start_reading()
        return client

    async def send(self, frame: Frame) -> None:
        if self.binary:
            await self.ws.send_bytes(msgspec.msgpack.encode(frame))
        else:
            await self.ws.send_str(msgspec.json.encode(frame).decode())

    async def receive(self, timeout: float = 5.0) -> Frame:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.BINARY:
            return msgspec.msgpack.decode(msg.data)  # type: ignore[no-any-return]
        if msg.type == aiohttp.WSMsgType.TEXT:
            return msgspec.json.decode(msg.data)  # type: ignore[no-any-return]
        raise ConnectionError(f"socket ended: {msg.type} {self.ws.close_code}")

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                frame = await self.receive(timeout=60)
            except (ConnectionError, TimeoutError):
                self.closed_with = self.ws.close_code
                self._arrived.set()
                return
            self.frames.append(frame)
            self._arrived.set()

    async def wait_for(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The first recorded frame that matches, waiting for it to arrive."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    if match(frame):
                        return frame
                if self.closed_with is not None:
                    raise ConnectionError(f"closed with {self.closed_with} before a match")
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_count(self, kind: str, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` frames of type ``kind`` have arrived."""
        await self.wait_for(lambda _: len(self.of_type(kind)) >= count, timeout)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        async with asyncio.timeout(timeout):
            while self.closed_with is None:
                self._arrived.clear()
                await self._arrived.wait()
        return self.closed_with

    def of_type(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == kind]

    def room_events(self) -> list[Frame]:
        return [f for f in self.frames if "seq" in f]

    def texts(self) -> dict[str, str]:
        """Each stream's text as the token frames built it."""
        out: dict[str, str] = {}
        for frame in self.frames:
            if frame["type"] == "token":
                out[frame["stream"]] = out.get(frame["stream"], "") + frame["text"]
        return out

    def ended(self, stream: str) -> Frame | None:
        return next(
            (f for f in self.frames if f["type"] == "stream_end" and f["stream"] == stream), None
        )

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.ws.close()


def is_type(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())


def presence_states(welcome: Frame, frames: list[Frame]) -> Iterator[tuple[int, dict[str, Frame]]]:
    """The participant list a client holds after each presence frame: (frame index, list by id).

    It starts from ``welcome`` and applies each ``presence_diff`` (or a retired ``presence``,
    which replaces the list), as every client does.
    """
    listed = {p["id"]: p for p in welcome.get("participants", ())}
    for index, frame in enumerate(frames):
        kind = frame["type"]
        if kind in ("welcome", "presence"):
            listed = {p["id"]: p for p in frame["participants"]}
        elif kind == "presence_diff":
            listed = dict(listed)
            for gone in frame["left"]:
                listed.pop(gone, None)
            listed.update((p["id"], p) for p in frame["changed"])
        else:
            continue
        yield index, listed


class _Presenced(Protocol):
    @property
    def welcome(self) -> Frame: ...
    @property
    def frames(self) -> list[Frame]: ...

    async def wait_for(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> Frame: ...


PresenceMatch = Callable[[dict[str, Frame]], bool]


def names_are(names: set[str]) -> PresenceMatch:
    """A presence match: the list names exactly ``names``."""
    return lambda listed: {p["name"] for p in listed.values()} == names


def presence_index(client: _Presenced, match: PresenceMatch, *, after: int = 0) -> int | None:
    """The index of the first presence frame from ``after`` on whose list ``match`` accepts."""
    for index, listed in presence_states(client.welcome, client.frames):
        if index >= after and match(listed):
            return index
    return None


async def wait_presence(
    client: _Presenced, match: PresenceMatch, *, after: int = 0, timeout: float = 10.0
) -> int:
    """Wait for a presence frame from index ``after`` on whose list ``match`` accepts."""
    await client.wait_for(lambda _: presence_index(client, match, after=after) is not None, timeout)
    index = presence_index(client, match, after=after)
    assert index is not None
    return index


async def eventually(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, checking every few milliseconds; bounded by ``timeout``.

    For server-side state that no frame announces (a connection the server has seen go).
    """
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
