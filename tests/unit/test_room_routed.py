"""The synchronous Room with a routed stream: a snapshot names the model answering now and the
router whose lane the reply is in, before and after a switch."""

from __future__ import annotations

import msgspec

from rtserver.protocol.frames import HistoryMessage, ModelSwitch, StreamStart
from tests.unit.test_room import Live, frames, join, make


def test_a_snapshot_of_a_routed_stream_names_its_model_now_and_its_router() -> None:
    room, _ = make()
    live = Live(model_id="fast", routed_from="auto")
    placeholder = msgspec.convert(
        {
            "id": "r1",
            "role": "assistant",
            "text": "",
            "status": "streaming",
            "ts": 1,
            "model": "fast",
            "reply_to": "u1",
            "stream": "s1",
            "routed_from": "auto",
        },
        HistoryMessage,
    )
    room.stream_started(live, placeholder)
    room.publish(
        StreamStart(
            seq=0,
            stream="s1",
            model="fast",
            message="r1",
            reply_to="u1",
            ts=1,
            routed_from="auto",
            route_reason="route 1",
        )
    )
    room.publish(ModelSwitch(seq=0, stream="s1", model="smart", reason="fast failed"))
    live.model_id = "smart"
    [welcome] = frames(join(room, "late"))
    assert welcome["streams"] == [
        {
            "stream": "s1",
            "model": "smart",
            "message": "r1",
            "reply_to": "u1",
            "text": "",
            "routed_from": "auto",
        }
    ]
    [message] = welcome["messages"]
    assert (message["model"], message["routed_from"]) == ("smart", "auto")
    # The switch is a room event like any other: logged, numbered, replayed on resume.
    [start, switch] = room.log.since(room.log.epoch, 0) or []
    assert isinstance(start.frame, StreamStart)
    assert switch.frame == ModelSwitch(seq=2, stream="s1", model="smart", reason="fast failed")
