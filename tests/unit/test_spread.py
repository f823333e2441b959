"""A frame spread over many loop turns: everyone still in the room gets it, once, in order,
and other work runs between the slices."""

from __future__ import annotations

import asyncio
import time

import msgspec

from rtserver.auth.ratelimit import TokenBucket
from rtserver.protocol.codec import JSON, Outgoing
from rtserver.protocol.frames import Pong
from rtserver.room.member import Member
from rtserver.room.outbox import Outbox
from rtserver.room.scheduler import LOOP, ManualScheduler
from rtserver.room.spread import Spreader
from tests.support import eventually


def member(n: int, *, max_bytes: int = 1 << 20) -> Member:
    bucket = TokenBucket(capacity=1, per_seconds=60.0, clock=time.monotonic)
    return Member(
        id=f"p{n}",
        name=f"p{n}",
        session=f"s{n}",
        codec=JSON,
        outbox=Outbox(max_bytes=max_bytes),
        prompts=bucket,
        typing_changes=bucket,
    )


def received(m: Member) -> list[str | None]:
    """The ids of the pongs queued for ``m``, in order."""
    return [msgspec.json.decode(data)["id"] for data in m.outbox.take_ready()]


class Room:
    """Who is here, and who was dropped as slow."""

    def __init__(self, members: list[Member]) -> None:
        self.here = {m.session for m in members}
        self.dropped: list[Member] = []

    def is_here(self, m: Member) -> bool:
        return m.session in self.here

    def drop(self, m: Member) -> None:
        self.dropped.append(m)
        self.here.discard(m.session)

    def spreader(self, per_turn: int) -> Spreader:
        return Spreader(is_here=self.is_here, on_slow=self.drop, scheduler=LOOP, per_turn=per_turn)


async def test_the_first_slice_goes_at_once_and_the_rest_on_later_turns() -> None:
    crowd = [member(n) for n in range(600)]
    spreader = Room(crowd).spreader(per_turn=256)
    spreader.send(Outgoing(Pong(id="a")), crowd)
    assert sum(1 for m in crowd if m.outbox.backlog) == 256
    assert spreader.busy
    await eventually(lambda: not spreader.busy)
    assert all(received(m) == ["a"] for m in crowd)


async def test_other_callbacks_run_between_slices() -> None:
    crowd = [member(n) for n in range(1000)]
    spreader = Room(crowd).spreader(per_turn=100)
    reached_when_ran: list[int] = []
    spreader.send(Outgoing(Pong(id="a")), crowd)
    asyncio.get_running_loop().call_soon(
        lambda: reached_when_ran.append(sum(1 for m in crowd if m.outbox.backlog))
    )
    await eventually(lambda: not spreader.busy)
    assert len(reached_when_ran) == 1
    assert reached_when_ran[0] < len(crowd)


async def test_frames_reach_each_member_in_the_order_they_were_sent() -> None:
    crowd = [member(n) for n in range(300)]
    spreader = Room(crowd).spreader(per_turn=64)
    for frame_id in ("a", "b", "c"):
        spreader.send(Outgoing(Pong(id=frame_id)), crowd)
    await eventually(lambda: not spreader.busy)
    assert all(received(m) == ["a", "b", "c"] for m in crowd)


async def test_only_those_given_and_still_here_get_the_frame() -> None:
    crowd = [member(n) for n in range(200)]
    room = Room(crowd)
    spreader = room.spreader(per_turn=50)
    latecomer = member(999)
    room.here.add(latecomer.session)
    spreader.send(Outgoing(Pong(id="a")), crowd)
    gone = crowd[150]
    room.here.discard(gone.session)  # leaves before its slice goes
    await eventually(lambda: not spreader.busy)
    assert received(gone) == []
    assert received(latecomer) == []
    assert all(received(m) == ["a"] for m in crowd if m is not gone)


async def test_a_slow_member_is_dropped_and_the_others_still_get_the_frame() -> None:
    crowd = [member(n) for n in range(20)]
    crowd[5] = member(5, max_bytes=1)
    room = Room(crowd)
    spreader = room.spreader(per_turn=8)
    spreader.send(Outgoing(Pong(id="a")), crowd)
    spreader.send(Outgoing(Pong(id="b")), crowd)
    await eventually(lambda: not spreader.busy)
    assert room.dropped == [crowd[5]], "dropped once, then no longer here"
    assert all(received(m) == ["a", "b"] for n, m in enumerate(crowd) if n != 5)


async def test_cancel_sends_nothing_more_of_what_was_going_out() -> None:
    crowd = [member(n) for n in range(100)]
    spreader = Room(crowd).spreader(per_turn=10)
    spreader.send(Outgoing(Pong(id="a")), crowd)
    spreader.cancel()
    assert not spreader.busy
    # Ten loop turns for the next frame: any slice of the first left scheduled would run too.
    spreader.send(Outgoing(Pong(id="b")), crowd)
    await eventually(lambda: not spreader.busy)
    assert [received(m) for m in crowd] == [["a", "b"]] * 10 + [["b"]] * 90


def test_on_a_manual_clock_the_rest_goes_when_the_clock_is_moved() -> None:
    crowd = [member(n) for n in range(30)]
    room = Room(crowd)
    clock = ManualScheduler()
    spreader = Spreader(is_here=room.is_here, on_slow=room.drop, scheduler=clock, per_turn=10)
    spreader.send(Outgoing(Pong(id="a")), crowd)
    assert sum(1 for m in crowd if m.outbox.backlog) == 10
    clock.advance(0)
    assert not spreader.busy
    assert all(received(m) == ["a"] for m in crowd)


def test_a_drop_that_cancels_the_spread_ends_it_there() -> None:
    crowd = [member(n) for n in range(30)]
    crowd[3] = member(3, max_bytes=1)
    room = Room(crowd)
    clock = ManualScheduler()

    def drop_and_close(m: Member) -> None:
        room.drop(m)
        spreader.cancel()  # as a room left idle by the drop is closed

    spreader = Spreader(is_here=room.is_here, on_slow=drop_and_close, scheduler=clock, per_turn=10)
    spreader.send(Outgoing(Pong(id="a")), crowd)
    clock.advance(0)
    assert not spreader.busy
    assert clock.pending == 0
    assert [bool(m.outbox.backlog) for m in crowd] == [True] * 3 + [False] * 27
