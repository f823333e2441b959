"""One person in several tabs, ids, refusals, metrics and shutdown, as the Room sees them."""

from __future__ import annotations

import re

import pytest

from rtserver.auth.limits import DailyBudget, Quota
from rtserver.auth.ratelimit import TokenBucket
from rtserver.auth.tokens import Grant
from rtserver.errors import PeerError
from rtserver.ops.metrics import Metrics
from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import ModelInfo, Since
from rtserver.room.member import Member, Seat
from rtserver.room.room import Room, RoomLimits, new_id
from rtserver.room.scheduler import ManualScheduler
from tests.unit.test_room import PLAIN, Live, frames, join, make, reply, token


def _seat(member_id: str | None = "p_same", grant: Grant | None = None) -> Seat:
    clock = ManualScheduler().now
    quota = Quota(
        prompts=TokenBucket(capacity=5, per_seconds=60.0, clock=clock),
        typing_changes=TokenBucket(capacity=5, per_seconds=60.0, clock=clock),
        budget=DailyBudget(per_day=1_000, clock=clock),
    )
    return Seat(owner="sub", member_id=member_id, grant=grant or Grant(), quota=quota)


def _listed(room: Room) -> tuple[set[str], int]:
    """Who a new joiner's welcome lists besides itself, and how many (the joiner then leaves)."""
    probe = join(room, "probe")
    [welcome] = frames(probe)
    room.leave(probe)
    return {p["id"] for p in welcome["participants"]} - {probe.id}, welcome["participant_count"] - 1


def test_a_seat_joins_as_its_own_member_id_in_every_tab() -> None:
    room, _ = make()
    seat = _seat()
    tabs = [room.join(name="ann", since=None, codec=JSON, seat=seat) for _ in range(2)]
    assert [tab.id for tab in tabs] == ["p_same", "p_same"]
    assert tabs[0].session != tabs[1].session
    [welcome] = frames(tabs[1])
    assert welcome["participant"] == {"id": "p_same", "name": "ann"}


def test_a_person_stays_listed_until_the_last_of_their_tabs_leaves() -> None:
    room, _ = make()
    other = join(room, "bob")
    seat = _seat()
    tabs = [room.join(name="ann", since=None, codec=JSON, seat=seat) for _ in range(3)]
    assert _listed(room) == ({other.id, "p_same"}, 2)
    room.leave(tabs[0])
    assert _listed(room) == ({other.id, "p_same"}, 2)
    room.leave(tabs[1])
    assert _listed(room) == ({other.id, "p_same"}, 2)
    room.leave(tabs[2])
    assert _listed(room) == ({other.id}, 1)
    # Back again: listed once more, from a first tab.
    again = room.join(name="ann", since=None, codec=JSON, seat=seat)
    assert _listed(room) == ({other.id, "p_same"}, 2)
    room.leave(again)
    assert _listed(room) == ({other.id}, 1)


def test_a_welcome_lists_only_the_models_the_seats_grant_allows() -> None:
    models = [ModelInfo(id=i, label=i, provider="demo") for i in ("a", "b", "c")]
    room = Room("r1", limits=PLAIN, models=models, scheduler=ManualScheduler())
    seat = _seat(grant=Grant(models=frozenset({"a", "c"})))
    member = room.join(name="ann", since=None, codec=JSON, seat=seat)
    [welcome] = frames(member)
    assert [m["id"] for m in welcome["models"]] == ["a", "c"]


def test_a_new_id_is_its_prefix_and_16_fresh_url_safe_characters() -> None:
    ids = {new_id("s") for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"s_[A-Za-z0-9_-]{16}", i) for i in ids), ids


def test_a_full_room_says_it_is_full_and_how_many_it_holds() -> None:
    room, _ = make(RoomLimits(participants_per_room=1))
    join(room, "a")
    with pytest.raises(PeerError) as refused:
        join(room, "b")
    assert refused.value.message == "room r1 is full (1 participants)"


def test_a_join_counts_its_kind_of_resume_for_operators() -> None:
    metrics = Metrics()
    scheduler = ManualScheduler()
    room = Room("r1", limits=PLAIN, scheduler=scheduler, clock=scheduler.now, metrics=metrics)
    room.publish(token("a"))
    join(room, since=Since(epoch=room.log.epoch, seq=0))
    join(room, since=Since(epoch="elsewhere", seq=0))
    join(room, since=Since(epoch=room.log.epoch, seq=1))
    join(room)
    text = metrics.render().decode()
    assert 'rtserver_resumes_total{kind="replay"} 2.0' in text
    assert 'rtserver_resumes_total{kind="snapshot"} 1.0' in text
    assert "rtserver_connections 4.0" in text


def test_shutdown_tells_each_connection_why_it_closes() -> None:
    room, _ = make()
    members: list[Member] = [join(room, "ann"), join(room, "bob")]
    room.close()
    for member in members:
        reason = member.outbox.close_reason
        assert reason is not None
        assert (reason.code, reason.reason) == (CloseCode.GOING_AWAY, "server shutting down")


def test_ending_a_stream_the_room_never_showed_keeps_its_final_form_quietly() -> None:
    room, _ = make()
    room.remember(reply("streaming"))
    room.stream_ended("s-unknown", reply("complete", "done"))
    assert not room.streaming
    [welcome] = frames(join(room))
    assert [(m["text"], m["status"]) for m in welcome["messages"]] == [("done", "complete")]


def test_once_a_stream_ends_its_coalescing_window_is_forgotten() -> None:
    """A token under the same stream id right after the end goes out at once, not gathered."""
    room, _ = make(RoomLimits(token_flush_ms=10))
    ann = join(room)
    frames(ann)
    room.stream_started(Live(), reply())
    assert room.publish(token("a")) == 1
    room.stream_ended("s1", reply("complete", "a"))
    assert room.publish(token("b")) == 2
    assert [(f["seq"], f["text"]) for f in frames(ann)] == [(1, "a"), (2, "b")]
