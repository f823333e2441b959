"""A room's turns on a real SQLite file with scripted models, and seats that read what it sends.

Fast enough for the rules of rooms to be checked one by one (and for mutation testing):
no sockets, but the real Turns, Room, Generation, EventLog, Outbox, codecs and store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any, Literal

import msgspec

from rtserver.config import ModelSpec
from rtserver.protocol.codec import JSON, Codec
from rtserver.protocol.frames import ModelInfo, Since
from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, TextDelta
from rtserver.providers.catalog import Catalog, Model
from rtserver.room.member import Member
from rtserver.room.outbox import OutboxClosed
from rtserver.turns.turns import Turns

Frame = dict[str, Any]


class Scripted:
    """A model that answers with ``words``; while ``gate`` is set it waits after the first."""

    kind = "test"

    def __init__(
        self,
        *words: str,
        finish: Literal["complete", "length"] = "complete",
        paced: bool = False,
    ) -> None:
        self.words = words or ("ok",)
        self.finish = finish
        #: Let the other tasks run between words, as a model's network reads would.
        self.paced = paced
        self.requests: list[GenerationRequest] = []
        #: While not None, the stream waits on it after its first word.
        self.gate: asyncio.Event | None = None

    def hold(self) -> asyncio.Event:
        """Make the next streams pause after their first word until the returned event is set."""
        self.gate = asyncio.Event()
        return self.gate

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        for n, word in enumerate(self.words):
            yield TextDelta(word)
            if n == 0 and self.gate is not None:
                await self.gate.wait()
            if self.paced:
                await asyncio.sleep(0)
        yield FinishDelta(self.finish)

    async def aclose(self) -> None:
        return None


def catalog(providers: dict[str, Scripted], *, defaults: tuple[str, ...] = ()) -> Catalog:
    models = [
        Model(
            spec=ModelSpec(id=model_id, provider="demo"),
            provider=provider,
            info=ModelInfo(id=model_id, label=model_id, provider="demo"),
        )
        for model_id, provider in providers.items()
    ]
    return Catalog(models, defaults=defaults or tuple(providers)[:1])


class Seat:
    """A member of a room with a task that decodes everything its outbox delivers."""

    def __init__(self, room: Turns, member: Member) -> None:
        self.room = room
        self.member = member
        self.frames: list[Frame] = []
        self.closed: OutboxClosed | None = None
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @property
    def welcome(self) -> Frame:
        return self.frames[0]

    async def _read(self) -> None:
        codec = self.member.codec
        while True:
            try:
                data = await self.member.outbox.get()
            except OutboxClosed as closed:
                self.closed = closed
                self._arrived.set()
                return
            decode = msgspec.msgpack.decode if codec.binary else msgspec.json.decode
            self.frames.append(decode(data))
            self._arrived.set()

    async def wait_for(self, match: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """The first frame that matches, waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    if match(frame):
                        return frame
                if self.closed is not None:
                    raise ConnectionError(f"outbox closed with {self.closed.code}")
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_closed(self, timeout: float = 5.0) -> OutboxClosed:
        async with asyncio.timeout(timeout):
            while self.closed is None:
                self._arrived.clear()
                await self._arrived.wait()
        return self.closed

    def of_type(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == kind]

    async def send(self, frame: Frame) -> None:
        """Act on a client frame as a transport does (errors come back as frames)."""
        await self.room.handle(self.member, JSON.decode(msgspec.json.encode(frame)))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def join(
    room: Turns, *, name: str = "tester", since: Frame | None = None, codec: Codec = JSON
) -> Seat:
    member = room.join(
        name=name,
        since=Since(epoch=since["epoch"], seq=since["seq"]) if since else None,
        codec=codec,
    )
    return Seat(room, member)


def is_type(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())
