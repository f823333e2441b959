"""The bus of one process: a room's own copy is the only one, and its event log numbers.

Publishing is a direct call of the room, on the same turn of the event loop: nothing is
queued, encoded or copied on the way, so the token path costs what it cost without a bus.
"""

from __future__ import annotations

import secrets

import msgspec

from rtserver.bus.base import RoomFeed, RoomLink
from rtserver.protocol.frames import RoomEvent


class LocalLink:
    """A room linked to nothing but itself: its events go straight to its feed."""

    __slots__ = ("_feed", "_head")

    def __init__(self, feed: RoomFeed) -> None:
        self._feed = feed
        self._head = 0

    def publish(self, event: RoomEvent) -> None:
        self._head += 1
        if event.seq != self._head:
            event = msgspec.structs.replace(event, seq=self._head)
        self._feed.deliver(event, True)

    async def settled(self) -> int:
        return self._head

    async def close(self) -> None:
        return None


class LocalBus:
    """One node: rooms are not shared, and each copy of a room is the room."""

    def __init__(self) -> None:
        self._node = f"local-{secrets.token_hex(4)}"

    @property
    def node(self) -> str:
        return self._node

    @property
    def shared(self) -> bool:
        return False

    @property
    def healthy(self) -> bool:
        return True

    async def attach(self, room_id: str, feed: RoomFeed) -> RoomLink:
        feed.restart(secrets.token_urlsafe(9), 0)
        return LocalLink(feed)

    async def close(self) -> None:
        return None
