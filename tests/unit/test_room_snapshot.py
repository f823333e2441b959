"""What a joiner's welcome holds and where it stands: snapshot, replay, and the welcome's place."""

from __future__ import annotations

from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import Since, StreamStart, ToolCallRecord
from rtserver.room.room import RoomLimits
from rtserver.transports.sse import SSE, event_id
from tests.unit.test_room import Live, frames, join, make, reply, token


def _start(stream: str = "s1") -> StreamStart:
    return StreamStart(seq=0, stream=stream, model="m", message="r1", reply_to="u1", ts=1)


def test_an_sse_welcome_is_named_after_the_seq_its_client_stands_at() -> None:
    """Fresh or given a snapshot: the log's head; during a replay: the point it resumes from."""
    room, _ = make()
    for text in "abc":
        room.publish(token(text))
    epoch = room.log.epoch

    fresh = join(room, codec=SSE).outbox.take_ready()
    assert fresh[0].startswith(event_id((epoch, 3)) + b"data: ")

    replayed = join(room, since=Since(epoch=epoch, seq=1), codec=SSE).outbox.take_ready()
    assert [data.split(b"\n", 1)[0] for data in replayed] == [
        b"id: %s:1" % epoch.encode(),
        b"id: %s:2" % epoch.encode(),
        b"id: %s:3" % epoch.encode(),
    ]
    assert b'"resumed":true' in replayed[0]

    snapshot = join(room, since=Since(epoch="elsewhere", seq=1), codec=SSE).outbox.take_ready()
    assert len(snapshot) == 1
    assert snapshot[0].startswith(event_id((epoch, 3)))
    assert b'"resumed":false' in snapshot[0]


def test_a_replayed_welcome_carries_no_snapshot_of_messages_or_streams() -> None:
    room, _ = make()
    live = Live(text="so far")
    room.stream_started(live, reply())
    room.publish(_start())
    seq = room.log.head
    room.publish(token("x"))
    welcome, *rest = frames(join(room, since=Since(epoch=room.log.epoch, seq=seq)))
    assert welcome["resumed"] is True
    assert (welcome.get("messages", []), welcome.get("streams", [])) == ([], [])
    assert [f["seq"] for f in rest] == [seq + 1]
    # The same room, joined fresh, does show both.
    [fresh] = frames(join(room))
    assert [m["id"] for m in fresh["messages"]] == ["r1"]
    assert [s["stream"] for s in fresh["streams"]] == ["s1"]


def test_a_live_reply_in_the_snapshot_has_its_text_reasoning_and_model_so_far() -> None:
    room, _ = make()
    live = Live(model_id="m2", text="hel", reasoning="thinking")
    room.stream_started(live, reply())
    room.publish(_start())
    [welcome] = frames(join(room))
    [message] = welcome["messages"]
    assert (message["text"], message.get("reasoning"), message["model"]) == (
        "hel",
        "thinking",
        "m2",
    )
    [stream] = welcome["streams"]
    assert (stream["text"], stream.get("reasoning")) == ("hel", "thinking")


def test_a_live_reply_without_reasoning_shows_none_in_the_snapshot() -> None:
    room, _ = make()
    room.stream_started(Live(text="hel"), reply())
    [welcome] = frames(join(room))
    assert "reasoning" not in welcome["messages"][0]
    assert welcome["streams"][0] == {
        "stream": "s1",
        "model": "m",
        "message": "r1",
        "reply_to": "u1",
        "text": "hel",
    }


def test_a_running_streams_reasoning_tool_calls_and_waiting_calls_are_in_the_snapshot() -> None:
    room, _ = make()
    call = ToolCallRecord(call="c1", name="calculator", args="{}")
    room.stream_started(Live(reasoning="hmm", tool_calls=[call], waiting=["c1"]), reply())
    [welcome] = frames(join(room))
    [stream] = welcome["streams"]
    assert stream["reasoning"] == "hmm"
    assert stream["tool_calls"] == [{"call": "c1", "name": "calculator", "args": "{}"}]
    assert stream["waiting"] == ["c1"]


def test_a_live_reply_grown_past_the_welcome_budget_leaves_the_snapshot_messages() -> None:
    """The budget cuts the newest message too: the stream still carries its text."""
    room, _ = make(RoomLimits(token_flush_ms=0, welcome_chars=10))
    room.stream_started(Live(text="x" * 50), reply())
    [welcome] = frames(join(room))
    assert welcome.get("messages", []) == []
    assert welcome["streams"][0]["text"] == "x" * 50


def test_a_replay_of_exactly_half_the_outbox_is_replayed() -> None:
    probe, _ = make()
    for text in ("one", "two", "three"):
        probe.publish(token(text))
    size = sum(len(e.data(JSON)) for e in probe.log.since(probe.log.epoch, 0) or [])

    for outbox_bytes, replayed in ((2 * size, True), (2 * size - 2, False)):
        room, _ = make(RoomLimits(token_flush_ms=0, outbox_bytes=outbox_bytes))
        for text in ("one", "two", "three"):
            room.publish(token(text))
        welcome, *rest = frames(join(room, since=Since(epoch=room.log.epoch, seq=0)))
        assert welcome["resumed"] is replayed, outbox_bytes
        assert [f["seq"] for f in rest] == ([1, 2, 3] if replayed else [])
