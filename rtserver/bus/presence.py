"""Presence across nodes: each node publishes its own joins and leaves; every node merges them.

:class:`ClusterPresence` stands where a room's :class:`~rtserver.room.presence.PresenceBoard`
stands and has its interface: the room records its own participants as before, and the board
hears of a participant when the first node has them and of their leaving when the last node
lets them go. So ``count`` and the listed few are the whole room's, and a diff still costs a
few bytes per change. A node that dies stops beating; the others remove its participants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Final

import msgspec
from redis.exceptions import RedisError

from rtserver.bus import scripts
from rtserver.bus.reader import Entry
from rtserver.bus.redis import ROOM_TTL_MS, RedisBus
from rtserver.client.backoff import Backoff
from rtserver.protocol.frames import PresenceDiff, PresenceEntry
from rtserver.room.presence import PresenceBoard

log = logging.getLogger(__name__)

#: Presence changes kept per room stream; a node that falls further behind reloads the state.
CHANGES_MAXLEN: Final = 10_000
#: Changes sent in one round trip at most.
MAX_BATCH: Final = 512
#: Seconds a closing room waits to say its participants went.
CLOSE_TIMEOUT_S: Final = 2.0
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PresenceEntry).decode


class ClusterPresence:
    """One room's presence as the whole cluster has it, held for one node's board."""

    def __init__(
        self,
        bus: RedisBus,
        room_id: str,
        board: PresenceBoard,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._bus = bus
        #: Told when another node's change reached the board (the room then sends a diff).
        self._on_change = on_change
        self._keys = bus.keys.room(room_id)
        self._board = board
        #: participant -> node -> entry, for every node (this one too).
        self._where: dict[str, dict[str, PresenceEntry]] = {}
        self._cursor = "0-0"
        self._outgoing: deque[tuple[str, str, bytes]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._script = bus.client.register_script(scripts.PRESENCE)
        self._purge = bus.client.register_script(scripts.PURGE_NODE)

    async def start(self) -> None:
        """Load who is where, then follow the changes."""
        await self._load()
        await self._bus.follow(self._keys.presence_changes, self)

    # --- the board's interface, for this node's own participants -----------------------------

    @property
    def count(self) -> int:
        return self._board.count

    @property
    def pending(self) -> bool:
        return self._board.pending

    def listed(self) -> list[PresenceEntry]:
        return self._board.listed()

    def flush(self) -> PresenceDiff | None:
        return self._board.flush()

    def join(self, entry: PresenceEntry) -> None:
        self._apply(self._bus.node, "j", entry.id, entry)
        self._send("j", entry.id, _encode(entry))

    def update(self, entry: PresenceEntry) -> None:
        self._apply(self._bus.node, "u", entry.id, entry)
        self._send("u", entry.id, _encode(entry))

    def leave(self, participant_id: str) -> None:
        self._apply(self._bus.node, "l", participant_id, None)
        self._send("l", participant_id, b"")

    # --- merging -----------------------------------------------------------------------------

    def _apply(self, node: str, op: str, participant: str, entry: PresenceEntry | None) -> None:
        nodes = self._where.get(participant)
        if op == "l" or entry is None:
            if nodes is None or nodes.pop(node, None) is None:
                return
            if nodes:
                self._board.update(next(iter(nodes.values())))
            else:
                del self._where[participant]
                self._board.leave(participant)
            return
        if nodes is None:
            self._where[participant] = {node: entry}
            self._board.join(entry)
            return
        nodes[node] = entry
        # Typing anywhere is typing: the entry shown is the one that changed last.
        self._board.update(entry)

    @property
    def cursor(self) -> str:
        return self._cursor

    def take(self, entries: list[Entry]) -> None:
        self._cursor = entries[-1][0].decode()
        for _, fields in entries:
            node = fields.get(b"n", b"").decode()
            if node == self._bus.node:
                continue  # applied when it happened
            op = fields.get(b"o", b"").decode()
            participant = fields.get(b"p", b"").decode()
            try:
                entry = _decode(fields[b"e"]) if op in ("j", "u") else None
            except (msgspec.DecodeError, KeyError):
                log.warning("bus: a presence change that is not one was dropped")
                continue
            self._apply(node, op, participant, entry)
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None and self._board.pending:
            self._on_change()

    async def resync(self) -> None:
        """After an outage: reload the others; say again who is here (Redis may have lost it)."""
        await self._load()
        for participant, nodes in self._where.items():
            mine = nodes.get(self._bus.node)
            if mine is not None:
                self._send("j", participant, _encode(mine))

    async def _load(self) -> None:
        async with self._bus.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.presence)
            pipe.xrevrange(self._keys.presence_changes, count=1)
            state, newest = await pipe.execute()
        self._cursor = newest[0][0].decode() if newest else "0-0"
        now: dict[tuple[str, str], PresenceEntry] = {}
        for field, value in state.items():
            node, _, participant = field.decode().partition("|")
            if node != self._bus.node:
                try:
                    now[node, participant] = _decode(value)
                except msgspec.DecodeError:
                    continue
        for participant, nodes in list(self._where.items()):
            for node in list(nodes):
                if node != self._bus.node and (node, participant) not in now:
                    self._apply(node, "l", participant, None)
        for (node, participant), entry in now.items():
            self._apply(node, "j", participant, entry)
        self._changed()

    # --- publishing this node's changes, in order --------------------------------------------

    def _send(self, op: str, participant: str, entry: bytes) -> None:
        self._outgoing.append((op, participant, entry))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        backoff = Backoff(base_s=0.05, max_s=2.0)
        keys = [self._keys.presence, self._keys.presence_changes]
        try:
            while self._outgoing:
                # A join storm is many changes at once: they go in one round trip.
                batch = list(islice(self._outgoing, MAX_BATCH))
                pipe = self._bus.client.pipeline(transaction=False)
                for op, participant, entry in batch:
                    args: list[str | bytes | int] = [
                        self._bus.node,
                        op,
                        participant,
                        entry,
                        CHANGES_MAXLEN,
                        ROOM_TTL_MS,
                    ]
                    await self._script(keys=keys, args=args, client=pipe)
                try:
                    await pipe.execute()
                except RedisError:
                    # Sent again whole: a change told twice is the same change.
                    await asyncio.sleep(backoff.next())
                    continue
                for _ in batch:
                    self._outgoing.popleft()
        finally:
            self._writer = None

    async def sweep(self) -> int:
        """Remove the participants of nodes that stopped beating; how many nodes were gone."""
        others = {n for nodes in self._where.values() for n in nodes if n != self._bus.node}
        gone = 0
        for node in others:
            if not await self._bus.alive(node):
                await self._purge(
                    keys=[self._keys.presence, self._keys.presence_changes],
                    args=[node, CHANGES_MAXLEN],
                )
                for participant in [p for p, nodes in self._where.items() if node in nodes]:
                    self._apply(node, "l", participant, None)
                gone += 1
        self._changed()
        return gone

    async def close(self) -> None:
        """Say this node's participants went, and stop following."""
        for participant, nodes in list(self._where.items()):
            if self._bus.node in nodes:
                self.leave(participant)
        writer = self._writer
        if writer is not None:
            # Redis away: the others' sweep removes what could not be said.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await asyncio.shield(writer)
            writer.cancel()
        self._bus.unfollow(self._keys.presence_changes, self)
