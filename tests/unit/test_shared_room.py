"""A node's copy of a shared room, driven synchronously: what it publishes goes out unnumbered;
what it holds and sends follows only the events delivered back, from any node."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import (
    HistoryMessage,
    MessageEvent,
    Participant,
    RoomEvent,
    Since,
    StreamEnd,
    StreamStart,
    TokenEvent,
    ToolCallEvent,
    Usage,
)
from rtserver.room.member import Member
from rtserver.room.mirror import SharedRoom
from rtserver.room.room import RoomLimits
from rtserver.room.scheduler import ManualScheduler

Frame = dict[str, Any]
ADA = Participant(id="p_ada", name="ada")


class Bus:
    """Numbers what the room relays, and delivers it back when told to (as Redis would)."""

    def __init__(self, room: SharedRoom) -> None:
        self.room = room
        self.relayed: list[RoomEvent] = []
        self.head = 0
        room.relay = self.relayed.append
        room.restart("ep1", 0)

    def deliver(self, *events: RoomEvent, mine: bool = False) -> None:
        for event in events:
            self.head += 1
            self.room.deliver(msgspec.structs.replace(event, seq=self.head), mine)

    def echo(self) -> None:
        """Deliver back what the room relayed, in order."""
        relayed, self.relayed = self.relayed, []
        self.deliver(*relayed, mine=True)


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


def message(mid: str = "m_u") -> MessageEvent:
    return MessageEvent(seq=0, id=mid, author=ADA, text="hi", prompt_id="q1", ts=5)


def start(stream: str = "s1", mid: str = "m_r") -> StreamStart:
    return StreamStart(seq=0, stream=stream, model="m", message=mid, reply_to="m_u", ts=6)


def end(stream: str = "s1", reason: Any = "complete") -> StreamEnd:
    return StreamEnd(
        seq=0, stream=stream, reason=reason, usage=Usage(input_tokens=1, output_tokens=2),
        ttft_ms=1, duration_ms=2, tokens_per_s=None,
    )  # fmt: skip


def token(text: str, stream: str = "s1") -> TokenEvent:
    return TokenEvent(seq=0, stream=stream, text=text)


def test_publishing_relays_unnumbered_and_sends_nothing_until_delivered() -> None:
    room, bus = make()
    member = room.join(name="ann", since=None, codec=JSON)
    frames(member)
    assert room.publish(message()) is None
    assert [type(e) for e in bus.relayed] == [MessageEvent]
    assert frames(member) == []
    assert room.log.head == 0
    bus.echo()
    [sent] = frames(member)
    assert (sent["type"], sent["seq"]) == ("message", 1)


def test_a_joiner_sees_only_what_was_delivered() -> None:
    room, bus = make()
    # The turns layer's own bookkeeping is not what a snapshot shows...
    room.remember(HistoryMessage(id="m_u", role="user", text="hi", status="complete", ts=5))
    room.publish(message())
    room.publish(start())
    room.publish(token("Hel"))
    early = room.join(name="early", since=None, codec=JSON)
    [welcome] = frames(early)
    assert (welcome["seq"], welcome["messages"], welcome["streams"]) == (0, [], [])
    # ...the delivered events are, on the node that published them as on any other.
    bus.echo()
    bus.deliver(token("lo"))
    late = room.join(name="late", since=None, codec=JSON)
    [welcome] = frames(late)
    assert welcome["seq"] == 4
    assert [m["id"] for m in welcome["messages"]] == ["m_u", "m_r"]
    assert welcome["streams"] == [
        {"stream": "s1", "model": "m", "message": "m_r", "reply_to": "m_u", "text": "Hello"}
    ]
    assert [f["seq"] for f in frames(early)] == [1, 2, 3, 4]


def test_a_delivered_end_finalises_the_reply_as_its_events_made_it() -> None:
    room, bus = make()
    bus.deliver(message(), start(), token("a"), token("b"))
    bus.deliver(ToolCallEvent(seq=0, stream="s1", call="c1", name="f", args="{}"))
    bus.deliver(end(reason="cancelled"))
    assert not room.streaming
    member = room.join(name="x", since=None, codec=JSON)
    [welcome] = frames(member)
    reply = welcome["messages"][-1]
    assert (reply["text"], reply["status"], reply["usage"]["output_tokens"]) == (
        "ab", "cancelled", 2
    )  # fmt: skip
    assert reply["tool_calls"] == [{"call": "c1", "name": "f", "args": "{}"}]
    assert welcome["streams"] == []


def test_messages_loaded_from_the_store_are_not_doubled_by_their_events() -> None:
    room, bus = make()
    stored = [
        HistoryMessage(id="m_u", role="user", text="hi", status="complete", ts=5),
        HistoryMessage(id="m_r", role="assistant", text="che", status="streaming", ts=6,
                       model="m", reply_to="m_u", stream="s1"),
    ]  # fmt: skip
    room.load(stored)
    bus.deliver(message(), start(), token("cheese"))
    member = room.join(name="x", since=None, codec=JSON)
    [welcome] = frames(member)
    assert [m["id"] for m in welcome["messages"]] == ["m_u", "m_r"]
    assert [s["text"] for s in welcome["streams"]] == ["cheese"]


def test_an_end_whose_start_this_copy_never_saw_finalises_what_the_store_had() -> None:
    room, bus = make()
    room.load([HistoryMessage(id="m_r", role="assistant", text="half", status="streaming",
                              ts=6, model="m", reply_to="m_u", stream="s9")])  # fmt: skip
    bus.deliver(token("unseen", stream="s9"), end(stream="s9", reason="interrupted"))
    member = room.join(name="x", since=None, codec=JSON)
    [welcome] = frames(member)
    assert [(m["text"], m["status"]) for m in welcome["messages"]] == [("half", "interrupted")]


def test_resume_works_from_the_delivered_log() -> None:
    room, bus = make()
    bus.deliver(message(), start(), token("a"), token("b"))
    member = room.join(name="x", since=Since(epoch="ep1", seq=2), codec=JSON)
    replayed = frames(member)
    assert replayed[0]["resumed"] is True
    assert [f["seq"] for f in replayed[1:]] == [3, 4]


def test_a_log_started_again_sends_everyone_to_resume() -> None:
    room, bus = make()
    restarts: list[int] = []
    room.on_restart = lambda: restarts.append(1)
    member = room.join(name="x", since=None, codec=JSON)
    bus.deliver(message())
    room.restart("ep2", 0)
    reason = member.outbox.close_reason
    assert reason is not None
    assert reason.code == CloseCode.GOING_AWAY
    assert room.members == []
    assert restarts == [1]
    assert (room.log.epoch, room.log.head) == ("ep2", 0)
    again = room.join(name="x", since=Since(epoch="ep1", seq=1), codec=JSON)
    assert frames(again)[0]["resumed"] is False


def test_an_unlinked_room_refuses_to_publish() -> None:
    scheduler = ManualScheduler()
    room = SharedRoom("r1", limits=RoomLimits(token_flush_ms=0), scheduler=scheduler)
    with pytest.raises(RuntimeError, match="not linked"):
        room.publish(message())


def test_gathered_tokens_are_relayed_as_one_frame() -> None:
    room, bus = make(token_flush_ms=10)
    room.publish(token("a"))
    room.publish(token("b"))
    room.publish(end())
    # The first goes at once (its stream was quiet); the next is gathered until the end.
    assert [type(e) for e in bus.relayed] == [TokenEvent, TokenEvent, StreamEnd]
    assert [e.text for e in bus.relayed if isinstance(e, TokenEvent)] == ["a", "b"]


def test_reasoning_is_mirrored_apart_from_the_answer() -> None:
    from rtserver.protocol.frames import ReasoningEvent

    room, bus = make()
    bus.deliver(message(), start(), ReasoningEvent(seq=0, stream="s1", text="hmm, "))
    bus.deliver(ReasoningEvent(seq=0, stream="s1", text="so"), token("Yes"))
    member = room.join(name="x", since=None, codec=JSON)
    [welcome] = frames(member)
    [running] = welcome["streams"]
    assert (running["text"], running["reasoning"]) == ("Yes", "hmm, so")
    bus.deliver(end())
    later = room.join(name="y", since=None, codec=JSON)
    [welcome] = frames(later)
    reply = welcome["messages"][-1]
    assert (reply["text"], reply["reasoning"]) == ("Yes", "hmm, so")


def test_a_routed_stream_that_falls_back_is_mirrored_with_its_new_model() -> None:
    from rtserver.protocol.frames import ModelSwitch

    room, bus = make()
    routed = msgspec.structs.replace(start(), model="small", routed_from="auto", route_reason="r")
    bus.deliver(message(), routed, ModelSwitch(seq=0, stream="s1", model="big", reason="failed"))
    member = room.join(name="x", since=None, codec=JSON)
    [welcome] = frames(member)
    [running] = welcome["streams"]
    assert (running["model"], running["routed_from"]) == ("big", "auto")
    bus.deliver(token("ok"), end())
    later = room.join(name="y", since=None, codec=JSON)
    [welcome] = frames(later)
    reply = welcome["messages"][-1]
    assert (reply["model"], reply["routed_from"], reply["text"]) == ("big", "auto", "ok")


def test_the_queue_is_followed_from_its_events() -> None:
    from rtserver.protocol.frames import Unqueued

    room, bus = make()
    room.unqueued("m_u", withdrawn=True)  # the turns layer's word is not what counts
    bus.deliver(msgspec.structs.replace(message("m_q"), queued=True), message("m_w"))
    bus.deliver(msgspec.structs.replace(message("m_w2"), queued=True))
    bus.deliver(Unqueued(seq=0, messages=["m_w2"], reason="withdrawn"))
    bus.deliver(Unqueued(seq=0, messages=["m_q"], reason="started"))
    member = room.join(name="x", since=None, codec=JSON)
    [welcome] = frames(member)
    kept = {m["id"]: m for m in welcome["messages"]}
    assert not kept["m_q"].get("queued")
    assert not kept["m_q"].get("withdrawn")
    assert kept["m_w2"].get("withdrawn") is True
