"""The bus of several nodes: a Redis stream per room, read by every node that has it open.

``rtserver serve --redis URL``. A room's seq is handed out by one Lua script (INCR and XADD
together), so every node delivers the same events in the same order, and a client that comes
back with ``since`` to any node resumes from the same log. Each node reads its streams on one
connection of its own (XREAD BLOCK) and writes on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rtserver.bus import scripts
from rtserver.bus.base import RoomFeed, RoomLink
from rtserver.bus.keys import Keys, RoomKeys
from rtserver.bus.link import RedisLink
from rtserver.bus.reader import BLOCK_MS, Entry, Follower, StreamReader
from rtserver.protocol.frames import RoomEvent

log = logging.getLogger(__name__)

#: How long a room's keys outlive its last event: a room unused for a day starts a new epoch.
ROOM_TTL_MS: Final = 86_400_000
#: How long a node's liveness key outlives its last heartbeat.
ALIVE_TTL_MS: Final = 6_000
#: Control stream entries kept per node.
CONTROL_MAXLEN: Final = 1_000
#: Seconds to wait for Redis to accept a connection or answer a command.
COMMAND_TIMEOUT_S: Final = 3.0

ControlHandler = Callable[[list[Entry]], None]


def _client(url: str, *, socket_timeout: float) -> aioredis.Redis:
    # The bus retries on its own terms (a batch under its number, a read after a resync):
    # redis-py's own silent retries could publish a batch twice, so they are off.
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


class RedisBus:
    """A node's end of the Redis bus."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "rt",
        window: int = 20_000,
        node: str | None = None,
    ) -> None:
        self._url = url
        self.keys = Keys(prefix)
        self._node = node or f"n-{secrets.token_hex(6)}"
        self._window = window
        self.client = _client(url, socket_timeout=COMMAND_TIMEOUT_S)
        self._reader = StreamReader(
            _client(url, socket_timeout=BLOCK_MS / 1000 + COMMAND_TIMEOUT_S),
            wake=self._wake,
            on_health=self._health_changed,
        )
        self._publish = self.client.register_script(scripts.PUBLISH)
        self._open = self.client.register_script(scripts.OPEN)
        self._healthy = True
        self._health_watchers: list[Callable[[bool], None]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._control = _ControlFollower(self)

    @property
    def node(self) -> str:
        return self._node

    @property
    def shared(self) -> bool:
        return True

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> RedisBus:
        """Connect (raising when Redis does not answer) and start reading."""
        bus = cls(url, **kwargs)
        try:
            await bus.client.ping()
            await bus._beat()
        except BaseException:
            await bus.close()
            raise
        bus._reader.follow(bus.keys.control(bus.node), bus._control)
        bus._reader.start()
        bus._heartbeat = asyncio.create_task(bus._beat_forever(), name="bus heartbeat")
        return bus

    # --- rooms -------------------------------------------------------------------------------

    async def attach(self, room_id: str, feed: RoomFeed) -> RoomLink:
        link = RedisLink(self.keys.room(room_id), feed, self)
        await link.start()
        await self.follow(link.keys.events, link)
        return _Attached(link, self)

    async def follow(self, key: str, follower: Follower) -> None:
        """Read ``key`` on this node's reader from now on."""
        self._reader.follow(key, follower)
        await self._reader.wake()

    def unfollow(self, key: str, follower: Follower) -> None:
        """Stop reading ``key`` for ``follower``."""
        self._reader.unfollow(key, follower)

    async def publish(
        self, keys: RoomKeys, batch: int, events: list[bytes], new_epoch: str
    ) -> tuple[str, int]:
        """Number and append ``events`` (batch ``batch`` of this node): the epoch, first seq."""
        epoch, first = await self._publish(
            keys=[keys.seq, keys.events, keys.epoch, keys.writers],
            args=[self.node, batch, self._window, new_epoch, ROOM_TTL_MS, *events],
        )
        return epoch.decode(), int(first)

    async def open_room(self, keys: RoomKeys, new_epoch: str) -> tuple[str, int, list[Entry]]:
        """A room's epoch (made ``new_epoch`` if it has none), head and kept events, newest
        first."""
        epoch, head, entries = await self._open(
            keys=[keys.seq, keys.events, keys.epoch, keys.writers],
            args=[new_epoch, self._window, ROOM_TTL_MS],
        )
        return epoch.decode(), int(head), [(e[0], _fields(e[1])) for e in entries]

    # --- control: messages addressed to this node --------------------------------------------

    def on_control(self, handler: ControlHandler) -> None:
        """Hand entries of this node's control stream (other than wake-ups) to ``handler``."""
        self._control.handler = handler

    async def send_control(self, node: str, fields: dict[str, bytes | str]) -> None:
        """Append a control message to ``node``'s stream."""
        await self.client.xadd(
            self.keys.control(node),
            fields,  # type: ignore[arg-type]
            maxlen=CONTROL_MAXLEN,
            approximate=True,
        )

    async def _wake(self) -> None:
        # When this fails the reader is failing too, and re-reads every stream once Redis is back.
        with contextlib.suppress(aioredis.RedisError):
            await self.send_control(self.node, {"k": "wake"})

    # --- liveness ----------------------------------------------------------------------------

    async def alive(self, node: str) -> bool:
        """True while ``node`` beats (its liveness key has not expired)."""
        return bool(await self.client.exists(self.keys.alive(node)))

    async def _beat(self) -> None:
        await self.client.set(self.keys.alive(self.node), b"1", px=ALIVE_TTL_MS)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_TTL_MS / 3000)
            # The reader reports an outage; the beat resumes with Redis.
            with contextlib.suppress(aioredis.RedisError):
                await self._beat()

    def watch_health(self, watcher: Callable[[bool], None]) -> None:
        """Tell ``watcher`` whenever Redis stops or starts answering."""
        self._health_watchers.append(watcher)

    @property
    def healthy(self) -> bool:
        return self._healthy

    def _health_changed(self, healthy: bool) -> None:
        self._healthy = healthy
        if healthy:
            log.info("bus: Redis answers again")
        for watcher in self._health_watchers:
            watcher(healthy)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await self._reader.close()
        # With Redis gone, the keys expire by themselves.
        with contextlib.suppress(aioredis.RedisError):
            await self.client.delete(self.keys.alive(self.node), self.keys.control(self.node))
        await self.client.aclose()


def _fields(raw: list[bytes]) -> dict[bytes, bytes]:
    """A stream entry's flat ``[field, value, ...]`` list (as a script returns it) as a dict."""
    return dict(zip(raw[::2], raw[1::2], strict=True))


def _position(entry_id: bytes) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition(b"-")
    return int(millis), int(sequence or 0)


class _ControlFollower:
    """Reads this node's control stream; wake-ups only end a blocked read."""

    def __init__(self, bus: RedisBus) -> None:
        self._bus = bus
        self._cursor = "0-0"
        self.handler: ControlHandler | None = None

    @property
    def cursor(self) -> str:
        return self._cursor

    def take(self, entries: list[Entry]) -> None:
        self._cursor = entries[-1][0].decode()
        wanted = [e for e in entries if e[1].get(b"k") != b"wake"]
        if wanted and self.handler is not None:
            self.handler(wanted)

    async def resync(self) -> None:
        # A Redis that lost its data starts the stream again from 0: so does this cursor.
        newest = await self._bus.client.xrevrange(self._bus.keys.control(self._bus.node), count=1)
        if not newest or _position(cast(bytes, newest[0][0])) < _position(self._cursor.encode()):
            self._cursor = "0-0"


class _Attached:
    """The link a room holds: publishing, and detaching on close."""

    def __init__(self, link: RedisLink, bus: RedisBus) -> None:
        self._link = link
        self._bus = bus

    def publish(self, event: RoomEvent) -> None:
        self._link.publish(event)

    async def settled(self) -> int:
        return await self._link.settled()

    async def close(self) -> None:
        await self._link.close()
        self._bus.unfollow(self._link.keys.events, self._link)
