"""A member's identity, as its welcome names it: the id and name the room gave it."""

from __future__ import annotations

import msgspec

from rtserver.protocol.codec import JSON
from rtserver.room.room import Room, RoomLimits
from rtserver.room.scheduler import ManualScheduler


def test_the_welcome_names_the_participant_by_its_id_and_name() -> None:
    scheduler = ManualScheduler()
    room = Room("r1", limits=RoomLimits(), scheduler=scheduler, clock=scheduler.now)
    member = room.join(name="  ann  ", since=None, codec=JSON)
    [welcome] = [msgspec.json.decode(data) for data in member.outbox.take_ready()]
    assert welcome["participant"] == {"id": member.id, "name": "ann"}
    assert (member.identity.id, member.identity.name) == (member.id, member.name)
