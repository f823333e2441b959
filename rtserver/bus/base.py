"""The bus interface: how a node's copy of a room hears the room's events, in one order.

A room's events are published to the bus, which gives each its ``seq`` in one place and hands
it, in seq order, to every node's copy of the room (its :class:`RoomFeed`); that copy fans it out
to its own participants. With one node the place is the room's own event log (``local``); with
several it is a Redis stream per room (``redis``).
"""

from __future__ import annotations

from typing import Protocol

from rtserver.protocol.frames import RoomEvent


class RoomFeed(Protocol):
    """A node's copy of a room, as the bus feeds it."""

    def restart(self, epoch: str, head: int) -> None:
        """The room's log stands at ``head`` of ``epoch``: the next event delivered is seq
        ``head + 1``. Called when the copy is attached, and again when the shared log was lost
        (Redis restarted empty): then its participants must resume from a snapshot."""
        ...

    def deliver(self, event: RoomEvent, mine: bool) -> None:
        """One room event, its ``seq`` assigned, in seq order, exactly once; ``mine`` when
        this node published it."""
        ...


class RoomLink(Protocol):
    """One room's connection to the bus."""

    def publish(self, event: RoomEvent) -> None:
        """Send ``event`` (its ``seq`` ignored) to every node's copy of the room, in order.

        Never blocks: the event is numbered where the bus numbers them and then delivered to
        every copy (this node's too) through :meth:`RoomFeed.deliver`.
        """
        ...

    async def settled(self) -> int:
        """Wait until every event published so far is numbered; the last seq handed out."""
        ...

    async def close(self) -> None:
        """Stop feeding this copy; events published and not yet numbered are sent first."""
        ...


class Bus(Protocol):
    """Rooms' links to one another across the nodes of a deployment."""

    @property
    def node(self) -> str:
        """This node's id, unique among the nodes sharing the bus."""
        ...

    @property
    def shared(self) -> bool:
        """True when other nodes may hold copies of the same rooms."""
        ...

    @property
    def healthy(self) -> bool:
        """False while the bus cannot reach the other nodes (Redis does not answer)."""
        ...

    async def attach(self, room_id: str, feed: RoomFeed) -> RoomLink:
        """Link this node's copy of ``room_id``: ``feed`` is restarted, then fed."""
        ...

    async def close(self) -> None: ...
