"""One connection per node that reads every Redis stream the node follows (XREAD BLOCK).

A node follows a few streams per open room and its own control stream. Reading them all with
one blocking XREAD costs one connection however many rooms are open; a stream added while the
read blocks is picked up once the node's control stream wakes it (an entry of kind ``wake``).
Redis going away is retried with backoff; once it answers again every follower is told, so it
can check whether its stream survived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rtserver.client.backoff import Backoff

log = logging.getLogger(__name__)

#: How long one XREAD waits for news before it is sent again (with the streams added since).
BLOCK_MS: Final = 5_000
#: Entries read at most per stream and call: a burst is taken in slices, fairly.
READ_COUNT: Final = 512

Entry = tuple[bytes, dict[bytes, bytes]]


class Follower(Protocol):
    """What reads one stream: where it stands, what to do with news, and with a reconnect."""

    @property
    def cursor(self) -> str:
        """The id of the last entry handled; the next read starts after it."""
        ...

    def take(self, entries: list[Entry]) -> None:
        """Handle entries, oldest first, newer than :attr:`cursor`."""
        ...

    async def resync(self) -> None:
        """Redis answers again after a failure: find out what survived."""
        ...


class StreamReader:
    """Reads the streams of every follower on one connection of its own."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        wake: Callable[[], Awaitable[None]],
        on_health: Callable[[bool], None],
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._wake = wake
        self._on_health = on_health
        self._backoff = backoff or Backoff(base_s=0.05, max_s=2.0)
        self._followers: dict[str, Follower] = {}
        self._task: asyncio.Task[None] | None = None

    def follow(self, key: str, follower: Follower) -> None:
        self._followers[key] = follower

    def unfollow(self, key: str, follower: Follower) -> None:
        """Stop reading ``key`` for ``follower`` (not for one that follows it since)."""
        if self._followers.get(key) is follower:
            del self._followers[key]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bus reader")

    async def wake(self) -> None:
        """Make a blocked read return, so that it reads the streams followed since."""
        await self._wake()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    async def _run(self) -> None:
        failed = False
        while True:
            try:
                if failed:
                    await self._resync()
                    failed = False
                    self._backoff.reset()
                    self._on_health(True)
                reply = await self._read()
            except RedisError as exc:
                if not failed:
                    log.warning("bus: Redis does not answer (%s); retrying", exc)
                    self._on_health(False)
                failed = True
                await asyncio.sleep(self._backoff.next())
                continue
            self._hand_out(reply)

    async def _read(self) -> list[tuple[bytes, list[Entry]]]:
        streams = {key: f.cursor for key, f in self._followers.items()}
        if not streams:
            await asyncio.sleep(BLOCK_MS / 1000)
            return []
        reply = await self._client.xread(streams, count=READ_COUNT, block=BLOCK_MS)  # type: ignore[arg-type]
        # RESP2 (the default): [[key, [(id, {field: value}), ...]], ...]
        return cast(list[tuple[bytes, list[Entry]]], reply or [])

    def _hand_out(self, reply: list[tuple[bytes, list[Entry]]]) -> None:
        for key, entries in reply:
            follower = self._followers.get(key.decode())
            if follower is not None and entries:
                try:
                    follower.take(list(entries))
                except Exception:
                    log.exception("bus: a follower of %s failed on news", key.decode())

    async def _resync(self) -> None:
        for follower in list(self._followers.values()):
            await follower.resync()
