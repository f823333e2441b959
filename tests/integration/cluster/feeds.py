"""A node's copy of a room reduced to what the bus gives it: restarts and events, recorded."""

from __future__ import annotations

from rtserver.protocol.frames import RoomEvent


class RecordingFeed:
    """Keeps every event delivered, and each restart as ``(epoch, head)``; checks the order."""

    def __init__(self) -> None:
        self.events: list[RoomEvent] = []
        self.restarts: list[tuple[str, int]] = []
        self.head = 0

    def restart(self, epoch: str, head: int) -> None:
        self.restarts.append((epoch, head))
        self.head = head

    def deliver(self, event: RoomEvent, mine: bool) -> None:
        assert event.seq == self.head + 1, f"seq {event.seq} delivered at head {self.head}"
        self.head = event.seq
        self.events.append(event)

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.events]

    @property
    def epoch(self) -> str:
        return self.restarts[-1][0]
