"""Where a node's copy of a shared room stands on the bus: its first restart only places its
log; a later one (Redis lost the log) sends everyone here to resume; presence is shared once."""

from __future__ import annotations

import pytest

from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import PresenceDiff, PresenceEntry, RoomEvent
from rtserver.room.mirror import SharedRoom
from rtserver.room.presence import PresenceBoard
from rtserver.room.room import RoomLimits
from rtserver.room.scheduler import ManualScheduler


def make() -> tuple[SharedRoom, list[RoomEvent]]:
    scheduler = ManualScheduler()
    room = SharedRoom(
        "r1", limits=RoomLimits(token_flush_ms=0), scheduler=scheduler, clock=scheduler.now
    )
    relayed: list[RoomEvent] = []
    room.relay = relayed.append
    return room, relayed


def test_the_first_restart_places_the_log_and_closes_nobody() -> None:
    room, _ = make()
    restarts: list[int] = []
    room.on_restart = lambda: restarts.append(1)
    member = room.join(name="early", since=None, codec=JSON)
    room.restart("ep1", 7)
    assert (room.log.epoch, room.log.head) == ("ep1", 7)
    assert not member.outbox.closed
    assert room.members == [member]
    assert restarts == [], "nothing held was lost: there is nothing to read again"


def test_a_later_restart_sends_everyone_to_resume_even_with_no_one_to_tell() -> None:
    room, _ = make()
    room.restart("ep1", 0)
    member = room.join(name="x", since=None, codec=JSON)
    room.restart("ep2", 3)  # no on_restart set: the participants still go
    reason = member.outbox.close_reason
    assert reason is not None
    assert (reason.code, reason.reason) == (
        CloseCode.GOING_AWAY,
        "the room's log started again: resume",
    )
    assert room.members == []
    assert (room.log.epoch, room.log.head) == ("ep2", 3)


class Shared:
    """A roster that holds the room's board, as the cluster's presence does."""

    def __init__(self, board: PresenceBoard) -> None:
        self.board = board

    @property
    def count(self) -> int:
        return self.board.count

    @property
    def pending(self) -> bool:
        return self.board.pending

    def listed(self) -> list[PresenceEntry]:
        return self.board.listed()

    def join(self, entry: PresenceEntry) -> None:
        self.board.join(entry)

    def update(self, entry: PresenceEntry) -> None:
        self.board.update(entry)

    def leave(self, participant_id: str) -> None:
        self.board.leave(participant_id)

    def flush(self) -> PresenceDiff | None:
        return self.board.flush()


def test_presence_is_shared_once() -> None:
    room, _ = make()
    roster = room.share_presence(Shared)
    assert isinstance(roster, Shared)
    member = room.join(name="ann", since=None, codec=JSON)
    assert roster.listed() == [member.presence()], "the room records its joins on the roster"
    with pytest.raises(AssertionError, match=r"^presence is shared once$"):
        room.share_presence(Shared)
