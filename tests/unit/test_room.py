"""The Room driven the way h11's Connection is tested: synchronously, with no sockets, no store
and no event loop. Time moves only when a test advances the ManualScheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import JSON, MSGPACK, Codec
from rtserver.protocol.frames import (
    HistoryMessage,
    ModelInfo,
    Pong,
    RoomEvent,
    Since,
    StreamEnd,
    StreamStart,
    TokenEvent,
    ToolCallRecord,
)
from rtserver.room.member import Member
from rtserver.room.room import Room, RoomLimits
from rtserver.room.scheduler import ManualScheduler

Frame = dict[str, Any]
#: No coalescing unless a test asks: most rows count one frame per token.
PLAIN = RoomLimits(token_flush_ms=0, presence_interval=0.1)


def make(limits: RoomLimits = PLAIN) -> tuple[Room, ManualScheduler]:
    scheduler = ManualScheduler()
    room = Room("r1", limits=limits, scheduler=scheduler, clock=scheduler.now)
    return room, scheduler


def frames(member: Member) -> list[Frame]:
    """Everything queued for ``member`` since the last call, decoded."""
    decode = msgspec.msgpack.decode if member.codec.binary else msgspec.json.decode
    return [decode(data) for data in member.outbox.take_ready()]


def token(text: str, stream: str = "s1") -> TokenEvent:
    return TokenEvent(seq=0, stream=stream, text=text)


def join(room: Room, name: str = "ann", since: Since | None = None, codec: Codec = JSON) -> Member:
    return room.join(name=name, since=since, codec=codec)


@dataclass
class Live:
    """A reply being streamed, as the room sees one."""

    stream: str = "s1"
    model_id: str = "m"
    message_id: str = "r1"
    reply_to: str = "u1"
    text: str = ""
    routed_from: str | None = None
    reasoning: str = ""
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def reply(status: str = "streaming", text: str = "") -> HistoryMessage:
    return msgspec.convert(
        {
            "id": "r1",
            "role": "assistant",
            "text": text,
            "status": status,
            "ts": 1,
            "model": "m",
            "reply_to": "u1",
            "stream": "s1",
        },
        HistoryMessage,
    )


# --- publish: the log numbers every event -------------------------------------------------


def test_publish_numbers_events_in_order_and_returns_each_seq() -> None:
    room, _ = make()
    ann = join(room)
    [welcome] = frames(ann)
    assert (welcome["type"], welcome["seq"], welcome["epoch"]) == ("welcome", 0, room.log.epoch)
    sent = token("a", stream="s9")
    assert [room.publish(sent), room.publish(token("b")), room.publish(token("c"))] == [1, 2, 3]
    assert sent.seq == 0, "the event given is not changed: the log numbers a copy"
    assert [(f["seq"], f["text"]) for f in frames(ann)] == [(1, "a"), (2, "b"), (3, "c")]
    assert room.log.head == 3


def test_each_event_is_encoded_once_per_codec_and_shared() -> None:
    room, _ = make()
    members = [join(room, f"p{n}", codec=JSON if n % 2 else MSGPACK) for n in range(4)]
    for member in members:
        frames(member)
    room.publish(token("x"))
    data = [m.outbox.take_ready()[0] for m in members]
    assert data[1] is data[3], "one bytes object per codec"
    assert data[0] is data[2]
    assert msgspec.json.decode(data[1]) == msgspec.msgpack.decode(data[0])


def test_tell_sends_one_member_a_frame_outside_the_order() -> None:
    room, _ = make()
    ann, bob = join(room, "ann"), join(room, "bob")
    frames(ann), frames(bob)
    room.tell(ann, Pong(id="p1"))
    assert frames(ann) == [{"type": "pong", "id": "p1"}]
    assert frames(bob) == []
    assert room.log.head == 0


# --- join: welcome, snapshot or replay ----------------------------------------------------


@pytest.mark.parametrize(
    ("since", "resumed", "replayed"),
    [
        pytest.param(None, False, [], id="fresh"),
        pytest.param(("same", 1), True, [2, 3], id="replay-from-1"),
        pytest.param(("same", 3), True, [], id="replay-at-head"),
        pytest.param(("same", 0), True, [1, 2, 3], id="replay-all"),
        pytest.param(("same", 4), False, [], id="ahead-of-head-snapshot"),
        pytest.param(("other", 1), False, [], id="other-epoch-snapshot"),
        pytest.param(("same", -1), False, [], id="negative-snapshot"),
    ],
)
def test_a_join_gets_a_welcome_then_a_replay_or_a_snapshot(
    since: tuple[str, int] | None, resumed: bool, replayed: list[int]
) -> None:
    room, _ = make()
    for text in "abc":
        room.publish(token(text))
    at = None
    if since is not None:
        epoch = room.log.epoch if since[0] == "same" else "elsewhere"
        at = Since(epoch=epoch, seq=since[1])
    member = join(room, since=at)
    welcome, *rest = frames(member)
    assert welcome["type"] == "welcome"
    assert (welcome["resumed"], welcome["seq"]) == (resumed, 3)
    assert [f["seq"] for f in rest] == replayed


def test_a_welcome_names_the_member_the_room_and_who_is_here() -> None:
    room, _ = make()
    first = join(room, "ann")
    second = join(room, "bob")
    frames(first)
    [welcome] = frames(second)
    assert welcome["session"] == second.session
    assert welcome["participant"] == {"id": second.id, "name": "bob"}
    assert (welcome["room"], welcome["epoch"]) == ("r1", room.log.epoch)
    assert welcome["participant_count"] == 2
    assert [p["id"] for p in welcome["participants"]] == [first.id, second.id]


@pytest.mark.parametrize(("name", "shown"), [(None, None), ("   ", None), (" ann ", "ann")])
def test_a_member_without_a_name_is_a_guest_named_after_its_id(
    name: str | None, shown: str | None
) -> None:
    room, _ = make()
    member = room.join(name=name, since=None, codec=JSON)
    assert member.name == (shown or f"guest-{member.id[-4:]}")


def test_each_member_gets_its_own_prompt_and_typing_limits() -> None:
    room, _ = make(RoomLimits(prompts_per_minute=2, typing_changes_per_minute=3))
    ann, bob = join(room, "ann"), join(room, "bob")
    assert ann.prompts is not bob.prompts
    assert ann.typing_changes is not bob.typing_changes
    # A burst of the per-minute limit, then the wait for a minute's share of it.
    assert [ann.prompts.take() for _ in range(3)] == [0.0, 0.0, 30.0]
    assert bob.prompts.take() == 0.0
    assert [ann.typing_changes.take() for _ in range(4)] == [0.0, 0.0, 0.0, 20.0]


def test_a_long_replay_becomes_a_snapshot() -> None:
    room, _ = make(RoomLimits(token_flush_ms=0, outbox_bytes=2048))
    for _ in range(10):
        room.publish(token("x" * 200))
    welcome, *rest = frames(join(room, since=Since(epoch=room.log.epoch, seq=0)))
    assert (welcome["resumed"], rest) == (False, [])


def test_a_full_room_refuses_a_join_busy() -> None:
    room, _ = make(RoomLimits(participants_per_room=2))
    join(room, "a"), join(room, "b")
    with pytest.raises(PeerError) as refused:
        join(room, "c")
    assert refused.value.code == "busy"
    assert refused.value.retry_after is not None
    assert len(room.members) == 2


def test_welcome_lists_only_the_models_the_member_may_use() -> None:
    models = [ModelInfo(id=i, label=i, provider="demo") for i in ("a", "b")]
    room = Room("r1", limits=PLAIN, models=models, scheduler=ManualScheduler())
    [welcome] = frames(join(room))
    assert [m["id"] for m in welcome["models"]] == ["a", "b"]


# --- snapshots of live streams ------------------------------------------------------------


def test_a_snapshot_shows_a_live_reply_with_its_text_so_far_then_its_final_form() -> None:
    room, _ = make()
    live = Live()
    room.stream_started(live, reply())
    room.publish(StreamStart(seq=0, stream="s1", model="m", message="r1", reply_to="u1", ts=1))
    live.text = "hel"
    [welcome] = frames(join(room, "late"))
    assert welcome["streams"] == [
        {"stream": "s1", "model": "m", "message": "r1", "reply_to": "u1", "text": "hel"}
    ]
    assert [(m["id"], m["text"]) for m in welcome["messages"]] == [("r1", "hel")]
    live.tool_calls = [ToolCallRecord(call="c1", name="calculator", args="{}", result="2")]
    live.waiting = ["c2"]
    [again] = frames(join(room, "later still"))
    assert again["streams"][0]["tool_calls"] == [
        {"call": "c1", "name": "calculator", "args": "{}", "result": "2"}
    ]
    assert again["streams"][0]["waiting"] == ["c2"]
    assert room.streaming
    room.stream_ended("s1", reply("complete", "hello"))
    [after] = frames(join(room, "later"))
    assert after["streams"] == []
    assert [(m["text"], m["status"]) for m in after["messages"]] == [("hello", "complete")]
    assert not room.streaming


# --- presence -----------------------------------------------------------------------------


def test_presence_changes_of_one_interval_go_out_as_one_diff() -> None:
    room, clock = make()
    ann = join(room, "ann")
    bob, cat = join(room, "bob"), join(room, "cat")
    for member in (ann, bob, cat):
        frames(member)
    clock.advance(0.05)
    assert frames(ann) == [], "nothing before the interval ends"
    clock.advance(0.05)
    [diff] = frames(ann)
    assert (diff["type"], diff["count"]) == ("presence_diff", 3)
    assert {e["name"] for e in diff["changed"]} == {"ann", "bob", "cat"}
    frames(bob), frames(cat)
    room.set_typing(bob, True)
    room.leave(cat)
    clock.advance(0.1)
    [diff] = frames(ann)
    assert diff["left"] == [cat.id]
    assert [(e["name"], e["typing"]) for e in diff["changed"]] == [("bob", True)]
    assert diff["count"] == 2
    clock.advance(1)
    assert frames(ann) == [], "nothing changed, nothing sent"


def test_leaving_twice_is_leaving_once_and_the_last_to_go_leaves_the_room_idle() -> None:
    room, _ = make()
    idle: list[bool] = []
    room.on_idle = lambda: idle.append(room.idle)
    ann = join(room)
    room.leave(ann)
    room.leave(ann)
    assert (idle, room.members) == ([True], [])


# --- slow consumers -----------------------------------------------------------------------


def test_a_member_that_stops_reading_is_closed_4000_and_nobody_else_notices() -> None:
    room, clock = make(RoomLimits(token_flush_ms=0, outbox_bytes=1024, presence_interval=0.1))
    reader, stalled = join(room, "reader"), join(room, "stalled")
    frames(reader), frames(stalled)
    for n in range(1, 6):
        room.publish(token("x" * 300))
        assert [f["seq"] for f in frames(reader)] == [n]
    reason = stalled.outbox.close_reason
    assert reason is not None
    assert reason.code == CloseCode.SLOW_CONSUMER
    assert room.members == [reader]
    clock.advance(0.1)
    diffs = [f for f in frames(reader) if f["type"] == "presence_diff"]
    assert diffs[-1]["count"] == 1


def test_a_slow_member_is_logged_for_operators_with_its_room_and_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    room, _ = make(RoomLimits(token_flush_ms=0, outbox_bytes=1024, presence_interval=0.1))
    stalled = join(room, "stalled")
    with caplog.at_level(logging.INFO, logger="rtserver.room.room"):
        for _ in range(5):
            room.publish(token("x" * 300))
    [record] = [r for r in caplog.records if "too slow" in r.getMessage()]
    assert record.getMessage() == f"room r1: participant {stalled.id} is too slow, closing it"
    assert (record.room, record.participant) == ("r1", stalled.id)  # type: ignore[attr-defined]


def test_a_join_is_logged_with_its_room_participant_and_kind_of_resume(
    caplog: pytest.LogCaptureFixture,
) -> None:
    room, _ = make()
    with caplog.at_level(logging.INFO, logger="rtserver.room.room"):
        fresh = join(room, "ann")
        back = join(room, "bob", since=Since(epoch="another", seq=3))
        again = join(room, "cy", since=Since(epoch=room.log.epoch, seq=0))
    joins = [r for r in caplog.records if r.getMessage() == "joined"]
    seen = [(r.room, r.participant, r.resume) for r in joins]  # type: ignore[attr-defined]
    assert seen == [
        ("r1", fresh.id, None),
        ("r1", back.id, "snapshot"),
        ("r1", again.id, "replay"),
    ]


# --- token coalescing ---------------------------------------------------------------------


def test_tokens_within_the_flush_window_go_out_as_one_frame() -> None:
    room, clock = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    frames(ann)
    outcomes = [room.publish(token(t)) for t in ("a", "b", "c")]
    assert outcomes == [1, None, None], "a quiet stream's first token goes at once"
    assert [f["text"] for f in frames(ann)] == ["a"]
    clock.advance(0.010)
    [frame] = frames(ann)
    assert (frame["seq"], frame["text"], frame["tokens"]) == (2, "bc", 2)


def test_any_other_event_sends_the_gathered_tokens_first() -> None:
    room, _ = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    frames(ann)
    room.publish(token("a"))
    room.publish(token("b"))
    end: RoomEvent = StreamEnd(
        seq=0,
        stream="s1",
        reason="complete",
        usage=None,
        ttft_ms=None,
        duration_ms=1,
        tokens_per_s=None,
    )
    assert room.publish(end) == 3
    assert [(f["type"], f["seq"]) for f in frames(ann)] == [
        ("token", 1),
        ("token", 2),
        ("stream_end", 3),
    ]


def test_close_sends_what_is_gathered_then_closes_everyone_1001() -> None:
    room, clock = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    frames(ann)
    room.publish(token("a"))
    room.publish(token("b"))
    room.close()
    assert [f["text"] for f in frames(ann)] == ["a", "b"]
    reason = ann.outbox.close_reason
    assert reason is not None
    assert reason.code == CloseCode.GOING_AWAY
    assert clock.pending == 0, "no timer is left behind"
    assert room.members == []


def test_a_coalesced_frame_carries_the_stamp_and_count_of_its_tokens() -> None:
    room, clock = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    frames(ann)
    for n, text in enumerate(["a", "b", "c"]):
        room.publish(TokenEvent(seq=0, stream="s1", text=text, emitted_us=1_000 + n))
    clock.advance(0.05)
    sent = [(f["seq"], f["text"], f.get("emitted_us"), f.get("tokens")) for f in frames(ann)]
    # The first goes at once; the two that followed within the window go as one frame,
    # stamped with the first of them (a latency probe reads its emission time).
    assert sent == [(1, "a", 1_000, None), (2, "bc", 1_001, 2)]


def test_a_stream_that_ends_before_its_first_token_ends_cleanly_while_coalescing() -> None:
    room, _ = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    room.stream_started(Live(), reply())
    room.publish(StreamStart(seq=0, stream="s1", model="m", message="r1", reply_to="u1", ts=1))
    room.stream_ended("s1", reply("error"))
    assert not room.streaming
    assert [f["type"] for f in frames(ann)] == ["welcome", "stream_start"]
