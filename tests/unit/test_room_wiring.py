"""Each of the Room's limits reaches the part it bounds: log, history, presence, coalescing."""

from __future__ import annotations

import pytest

from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.frames import HistoryMessage, Pong, ReasoningEvent, Since, TokenEvent
from rtserver.room.memory import MemoryBudget
from rtserver.room.room import Room, RoomLimits
from rtserver.room.scheduler import ManualScheduler
from rtserver.room.spread import SLICE
from tests.unit.test_room import PLAIN, frames, join, make, reply, token


def test_the_event_log_keeps_to_its_byte_bound_and_an_old_resume_gets_a_snapshot() -> None:
    room, _ = make(RoomLimits(token_flush_ms=0, event_log_bytes=1_000))
    for _ in range(20):
        room.publish(token("x" * 200))
    assert 0 < room.log.bytes <= 1_000
    welcome, *rest = frames(join(room, since=Since(epoch=room.log.epoch, seq=0)))
    assert (welcome["resumed"], rest) == (False, [])


def test_the_log_and_the_history_are_held_against_the_memory_budget() -> None:
    budget = MemoryBudget(max_bytes=1 << 30)
    scheduler = ManualScheduler()
    room = Room("r1", limits=PLAIN, scheduler=scheduler, clock=scheduler.now, memory=budget)
    room.publish(token("some text"))
    assert room.log.bytes > 0
    assert budget.total == room.log.bytes
    history: HistoryMessage = reply("complete", "kept")
    room.remember(history)
    log, recent = room.budgeted()
    assert recent.bytes > 0
    assert budget.total == log.bytes + recent.bytes


def test_a_welcome_lists_at_most_presence_listed_participants_but_counts_all() -> None:
    room, _ = make(RoomLimits(token_flush_ms=0, presence_listed=2))
    first, second = join(room, "a"), join(room, "b")
    [welcome] = frames(join(room, "c"))
    assert [p["id"] for p in welcome["participants"]] == [first.id, second.id]
    assert welcome["participant_count"] == 3


def test_a_member_whose_outbox_a_presence_diff_overflows_is_closed_4000() -> None:
    room, clock = make(RoomLimits(token_flush_ms=0, outbox_bytes=200, presence_interval=0.1))
    stalled = join(room, "stalled")
    reader = join(room, "reader")
    frames(stalled), frames(reader)
    # A pong the stalled member never reads leaves no room for the diff.
    room.tell(stalled, Pong(id="p" * 120))
    assert stalled.outbox.close_reason is None
    clock.advance(0.1)
    reason = stalled.outbox.close_reason
    assert reason is not None
    assert reason.code == CloseCode.SLOW_CONSUMER
    assert room.members == [reader]
    assert [f["type"] for f in frames(reader)] == ["presence_diff"]


def test_a_presence_diff_reaches_a_big_room_a_slice_per_turn_of_the_rooms_scheduler() -> None:
    room, clock = make(RoomLimits(token_flush_ms=0, presence_interval=0.1))
    members = [join(room, f"p{n}") for n in range(SLICE + 6)]
    for member in members:
        frames(member)
    clock.advance(0.1)
    clock.advance(0.0)
    for member in members:
        [diff] = frames(member)
        assert (diff["type"], diff["count"]) == ("presence_diff", SLICE + 6)


def test_without_coalescing_a_token_goes_out_as_it_was_published() -> None:
    """``token_flush_ms = 0``: a relayed frame keeps its own token count and stamp."""
    room, _ = make(RoomLimits(token_flush_ms=0))
    ann = join(room)
    frames(ann)
    assert room.publish(TokenEvent(seq=0, stream="s1", text="abc", emitted_us=7, tokens=3)) == 1
    assert room.publish(token("d")) == 2
    sent = [(f["seq"], f["text"], f.get("emitted_us"), f.get("tokens")) for f in frames(ann)]
    assert sent == [(1, "abc", 7, 3), (2, "d", None, None)]


def test_a_one_millisecond_window_still_gathers_tokens() -> None:
    room, clock = make(RoomLimits(token_flush_ms=1))
    ann = join(room)
    frames(ann)
    assert room.publish(token("a")) == 1
    assert room.publish(token("b")) is None
    assert [f["text"] for f in frames(ann)] == ["a"]
    clock.advance(0.001)
    assert [(f["seq"], f["text"]) for f in frames(ann)] == [(2, "b")]


def test_a_gathered_token_waits_the_whole_window() -> None:
    room, clock = make(RoomLimits(token_flush_ms=1_000))
    ann = join(room)
    frames(ann)
    room.publish(token("a"))
    room.publish(token("b"))
    frames(ann)
    clock.advance(0.9995)
    tokens = [f for f in frames(ann) if f["type"] == "token"]
    assert tokens == [], "the window is one second of the room's clock"
    clock.advance(0.0005)
    assert [f["text"] for f in frames(ann) if f["type"] == "token"] == ["b"]


@pytest.mark.parametrize("gathered", [False, True], ids=["at-once", "gathered"])
def test_reasoning_is_coalesced_into_reasoning_frames(gathered: bool) -> None:
    room, clock = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    frames(ann)
    room.publish(ReasoningEvent(seq=0, stream="s1", text="think"))
    if gathered:
        room.publish(ReasoningEvent(seq=0, stream="s1", text="ing"))
        room.publish(ReasoningEvent(seq=0, stream="s1", text="!"))
        clock.advance(0.01)
    sent = [(f["type"], f["seq"], f["text"]) for f in frames(ann)]
    expected = [("reasoning", 1, "think")] + ([("reasoning", 2, "ing!")] if gathered else [])
    assert sent == expected
