"""One room's copy on one node, linked through a Redis stream.

Publishing queues the event's MessagePack bytes (seq left 0); one writer task per link sends
what is queued as a batch to the PUBLISH script, which numbers each event and appends it to the
room's stream. The node's reader hands what the stream holds, from every node, to the copy in
seq order. A batch that fails is sent again, the same batch under the same number, until
Redis takes it: the script knows a batch it already has, so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from itertools import islice
from typing import Final, Protocol

import msgspec
from redis.exceptions import RedisError

from rtserver.bus.base import RoomFeed
from rtserver.bus.keys import RoomKeys
from rtserver.bus.reader import Entry
from rtserver.client.backoff import Backoff
from rtserver.protocol.frames import RoomEvent

log = logging.getLogger(__name__)

#: Events sent in one PUBLISH call at most.
MAX_BATCH: Final = 256
#: Seconds a closing link waits for what it still has to send.
CLOSE_TIMEOUT_S: Final = 5.0
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(RoomEvent).decode


class Scripts(Protocol):
    """The calls a link makes of Redis (the bus's client and scripts)."""

    @property
    def node(self) -> str: ...

    async def publish(
        self, keys: RoomKeys, batch: int, events: list[bytes], new_epoch: str
    ) -> tuple[str, int]: ...

    async def open_room(self, keys: RoomKeys, new_epoch: str) -> tuple[str, int, list[Entry]]: ...


def new_epoch() -> str:
    return secrets.token_urlsafe(9)


def seq_of(entry_id: bytes) -> int:
    """The seq an event stream entry holds: its id is ``SEQ-0``."""
    return int(entry_id.partition(b"-")[0])


class RedisLink:
    """A room's link to its stream: publishes in order, and feeds the copy what others send."""

    def __init__(self, keys: RoomKeys, feed: RoomFeed, scripts: Scripts) -> None:
        self.keys = keys
        self._feed = feed
        self._scripts = scripts
        self._node = scripts.node.encode()
        self._pending: deque[bytes] = deque()
        self._inflight: list[bytes] = []
        self._batch = 0
        self._writer: asyncio.Task[None] | None = None
        self._written = asyncio.Event()
        self._backoff = Backoff(base_s=0.02, max_s=2.0)
        self.epoch = ""
        self.head = 0
        #: The last seq this node's own batches were given.
        self.assigned = 0

    # --- publishing --------------------------------------------------------------------------

    def publish(self, event: RoomEvent) -> None:
        if event.seq:
            event = msgspec.structs.replace(event, seq=0)
        self._pending.append(_encode(event))
        if self._writer is None:
            self._written.clear()
            self._writer = asyncio.create_task(self._write(), name=f"bus writer {self.keys.events}")

    async def settled(self) -> int:
        while self._writer is not None:
            await self._written.wait()
        return self.assigned

    async def _write(self) -> None:
        try:
            while self._pending or self._inflight:
                if not self._inflight:
                    self._batch += 1
                    count = min(len(self._pending), MAX_BATCH)
                    self._inflight = list(islice(self._pending, count))
                    for _ in range(count):
                        self._pending.popleft()
                try:
                    _, first = await self._scripts.publish(
                        self.keys, self._batch, self._inflight, new_epoch()
                    )
                except RedisError as exc:
                    delay = self._backoff.next()
                    log.warning("bus: publishing to %s failed (%s)", self.keys.events, exc)
                    await asyncio.sleep(delay)
                    continue
                self._backoff.reset()
                self.assigned = first + len(self._inflight) - 1
                self._inflight = []
        finally:
            self._writer = None
            self._written.set()

    # --- following ---------------------------------------------------------------------------

    @property
    def cursor(self) -> str:
        return f"{self.head}-0"

    async def start(self) -> None:
        """Read the room's epoch and recent events, and restart the copy with them."""
        epoch, head, newest_first = await self._scripts.open_room(self.keys, new_epoch())
        self._restart(epoch, head, list(reversed(newest_first)))

    async def resync(self) -> None:
        epoch, head, newest_first = await self._scripts.open_room(self.keys, new_epoch())
        if epoch == self.epoch and head >= self.head:
            return  # the stream survived: the reader goes on from the cursor
        log.warning("bus: the log of %s was lost; its copies restart", self.keys.events)
        self._restart(epoch, head, list(reversed(newest_first)))

    def _restart(self, epoch: str, head: int, entries: list[Entry]) -> None:
        """Stand the copy at the oldest event kept, then deliver the rest in order."""
        base = seq_of(entries[0][0]) - 1 if entries else head
        self.epoch, self.head = epoch, base
        self._feed.restart(epoch, base)
        self.take(entries)

    def take(self, entries: list[Entry]) -> None:
        """Deliver the events of ``entries`` in seq order, each once; a gap restarts the copy."""
        for entry_id, fields in entries:
            seq = seq_of(entry_id)
            if seq <= self.head:
                continue  # read twice (a backfill met the live read)
            if seq != self.head + 1:
                # Events between were trimmed before this copy read them: it cannot replay
                # them, so it starts again from here.
                self.head = seq - 1
                self._feed.restart(self.epoch, self.head)
            self.head = seq
            try:
                event = _decode(fields[b"e"])
            except (msgspec.DecodeError, KeyError):
                log.error("bus: entry %s of %s is not an event", seq, self.keys.events)
                self._feed.restart(self.epoch, seq)
                continue
            self._feed.deliver(
                msgspec.structs.replace(event, seq=seq), fields.get(b"n") == self._node
            )

    async def close(self) -> None:
        """Send what is still queued, waiting at most ``CLOSE_TIMEOUT_S`` (Redis may be away)."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.settled()
        except TimeoutError:
            left = len(self._pending) + len(self._inflight)
            log.warning("bus: %d events of %s were never sent", left, self.keys.events)
            if self._writer is not None:
                self._writer.cancel()
