"""A node's copy of a shared room keeps each delivered prompt and reply whole: every field a
joiner's snapshot shows comes from the delivered events, and an end still finalises a reply
that the copy's recent messages no longer hold."""

from __future__ import annotations

from typing import Any

import msgspec

from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import (
    ErrorInfo,
    MessageEvent,
    Participant,
    RoomEvent,
    StreamEnd,
    StreamStart,
    TokenEvent,
    Usage,
)
from rtserver.room.member import Member
from rtserver.room.mirror import SharedRoom
from rtserver.room.room import RoomLimits
from rtserver.room.scheduler import ManualScheduler

Frame = dict[str, Any]
ADA = Participant(id="p_ada", name="ada")


class Bus:
    """Numbers the events it is given and delivers them to the room, as the Redis bus does."""

    def __init__(self, room: SharedRoom) -> None:
        self.room = room
        self.head = 0
        room.relay = lambda event: None  # nothing here publishes; it is all delivered
        room.restart("ep1", 0)

    def deliver(self, *events: RoomEvent) -> None:
        for event in events:
            self.head += 1
            self.room.deliver(msgspec.structs.replace(event, seq=self.head), False)


def make(**limits: Any) -> tuple[SharedRoom, Bus]:
    scheduler = ManualScheduler()
    room = SharedRoom(
        "r1",
        limits=RoomLimits(**({"token_flush_ms": 0} | limits)),
        scheduler=scheduler,
        clock=scheduler.now,
    )
    return room, Bus(room)


def frames(member: Member) -> list[Frame]:
    return [msgspec.json.decode(data) for data in member.outbox.take_ready()]


def welcome(room: SharedRoom) -> Frame:
    [first] = frames(room.join(name="joiner", since=None, codec=JSON))
    return first


def prompt(mid: str = "m_u", text: str = "hi", *, queued: bool = False) -> MessageEvent:
    return MessageEvent(seq=0, id=mid, author=ADA, text=text, prompt_id="q1", ts=5, queued=queued)


def start(**fields: Any) -> StreamStart:
    event = StreamStart(seq=0, stream="s1", model="m", message="m_r", reply_to="m_u", ts=6)
    return msgspec.structs.replace(event, **fields)


def end(stream: str = "s1", **fields: Any) -> StreamEnd:
    event = StreamEnd(
        seq=0, stream=stream, reason="complete", usage=Usage(input_tokens=3, output_tokens=2),
        ttft_ms=1, duration_ms=2, tokens_per_s=None,
    )  # fmt: skip
    return msgspec.structs.replace(event, **fields)


def test_a_delivered_prompt_is_kept_as_the_user_message_it_was() -> None:
    room, bus = make()
    bus.deliver(
        MessageEvent(seq=0, id="m_q", author=ADA, text="later?", prompt_id="q7", ts=41, queued=True)
    )
    assert welcome(room)["messages"] == [
        {
            "id": "m_q",
            "role": "user",
            "text": "later?",
            "status": "complete",
            "ts": 41,
            "author": {"id": "p_ada", "name": "ada"},
            "prompt_id": "q7",
            "queued": True,
        }
    ]


def test_a_started_reply_is_shown_streaming_with_what_its_start_said() -> None:
    room, bus = make()
    hel = TokenEvent(seq=0, stream="s1", text="Hel")
    bus.deliver(prompt(), start(routed_from="auto", replaces="m_old"), hel)
    assert welcome(room)["messages"][-1] == {
        "id": "m_r",
        "role": "assistant",
        "text": "Hel",
        "status": "streaming",
        "ts": 6,
        "model": "m",
        "reply_to": "m_u",
        "stream": "s1",
        "routed_from": "auto",
        "replaces": "m_old",
    }


def test_a_reply_that_just_started_weighs_nothing_against_the_welcome_characters() -> None:
    # The welcome's budget is exactly the prompt: an empty reply beside it still fits.
    room, bus = make(welcome_chars=len("hi"))
    bus.deliver(prompt(text="hi"), start())
    assert [m["id"] for m in welcome(room)["messages"]] == ["m_u", "m_r"]


def test_a_delivered_end_keeps_the_reply_with_its_start_and_end_fields() -> None:
    room, bus = make()
    failed = ErrorInfo(code="provider_error", message="upstream went away")
    bus.deliver(prompt(), start(routed_from="auto", replaces="m_old"))
    bus.deliver(TokenEvent(seq=0, stream="s1", text="ab"), end(reason="error", error=failed))
    assert not room.streaming
    # The prompt is kept before the reply: the reply's own kept start is what dates it.
    assert welcome(room)["messages"] == [
        {
            "id": "m_u",
            "role": "user",
            "text": "hi",
            "status": "complete",
            "ts": 5,
            "author": {"id": "p_ada", "name": "ada"},
            "prompt_id": "q1",
        },
        {
            "id": "m_r",
            "role": "assistant",
            "text": "ab",
            "status": "error",
            "ts": 6,
            "model": "m",
            "reply_to": "m_u",
            "usage": {"input_tokens": 3, "output_tokens": 2},
            "stream": "s1",
            "error": {"code": "provider_error", "message": "upstream went away"},
            "routed_from": "auto",
            "replaces": "m_old",
        },
    ]


def test_an_end_after_the_reply_left_the_recent_messages_still_ends_its_stream() -> None:
    room, bus = make(history_messages=1)
    watcher = room.join(name="w", since=None, codec=JSON)
    # A busy room: a newer prompt pushes the running reply out of the one message kept.
    bus.deliver(prompt(), start(), prompt("m_u2", "next"), TokenEvent(seq=0, stream="s1", text="x"))
    bus.deliver(end())
    assert not room.streaming
    assert [f["type"] for f in frames(watcher)][-1] == "stream_end"
    later = welcome(room)
    assert [m["id"] for m in later["messages"]] == ["m_u2"]
    assert later["streams"] == []


def test_an_end_of_a_stream_this_copy_never_held_is_fanned_out_and_changes_nothing() -> None:
    room, bus = make()
    watcher = room.join(name="w", since=None, codec=JSON)
    bus.deliver(prompt())
    bus.deliver(end(stream="s_gone", reason="interrupted"))
    assert [(f["type"], f["seq"]) for f in frames(watcher)[1:]] == [
        ("message", 1),
        ("stream_end", 2),
    ]
    assert [(m["id"], m["status"]) for m in welcome(room)["messages"]] == [("m_u", "complete")]
