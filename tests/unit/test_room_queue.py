"""The room's side of the queue, synchronously: a queued prompt shows as queued in welcomes
until it leaves the queue, then as started or withdrawn."""

from __future__ import annotations

from rtserver.protocol.frames import HistoryMessage, Participant
from tests.unit.test_room import frames, join, make

ANN = Participant(id="p_ann", name="ann")


def _queued(message_id: str) -> HistoryMessage:
    return HistoryMessage(
        id=message_id,
        role="user",
        text=message_id,
        status="complete",
        ts=1,
        author=ANN,
        queued=True,
    )


def test_a_queued_prompt_leaves_the_queue_started_or_withdrawn() -> None:
    room, _ = make()
    room.remember(_queued("m1"), _queued("m2"), _queued("m3"))
    room.unqueued("m1", withdrawn=False)
    room.unqueued("m2", withdrawn=True)
    room.unqueued("not-kept", withdrawn=True)
    [welcome] = frames(join(room))
    # Flags that are false are left out of the frame (not sent as null).
    flags = [
        (m["id"], {k: m[k] for k in ("queued", "withdrawn") if k in m}) for m in welcome["messages"]
    ]
    assert flags == [("m1", {}), ("m2", {"withdrawn": True}), ("m3", {"queued": True})]
