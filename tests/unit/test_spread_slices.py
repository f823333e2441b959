"""How a spread frame uses each loop turn: a slice is ``per_turn`` writes to members still
here, across frames, and cancelling is harmless however often it is done."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from rtserver.auth.ratelimit import TokenBucket
from rtserver.protocol.codec import JSON, Outgoing
from rtserver.protocol.frames import Pong
from rtserver.room.member import Member
from rtserver.room.outbox import Outbox
from rtserver.room.scheduler import Timer
from rtserver.room.spread import Spreader


class _Timer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Turns:
    """A scheduler whose timers run one event-loop turn at a time, when the test says."""

    def __init__(self) -> None:
        self._due: list[_Timer] = []

    def now(self) -> float:
        return 0.0

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _Timer(callback)
        self._due.append(timer)
        return timer

    @property
    def pending(self) -> int:
        return sum(1 for timer in self._due if not timer.cancelled)

    def turn(self) -> None:
        """Run what was due at the start of this turn (what it schedules runs at the next)."""
        due, self._due = self._due, []
        for timer in due:
            if not timer.cancelled:
                timer.callback()


def member(n: int) -> Member:
    bucket = TokenBucket(capacity=1, per_seconds=60.0, clock=time.monotonic)
    return Member(
        id=f"p{n}",
        name=f"p{n}",
        session=f"s{n}",
        codec=JSON,
        outbox=Outbox(max_bytes=1 << 20),
        prompts=bucket,
        typing_changes=bucket,
    )


def received(m: Member) -> list[str | None]:
    """The ids of the pongs queued for ``m`` since last asked, in order."""
    return [msgspec.json.decode(data)["id"] for data in m.outbox.take_ready()]


def spreader(turns: Turns, here: set[str], per_turn: int) -> Spreader:
    return Spreader(
        is_here=lambda m: m.session in here,
        on_slow=lambda m: None,
        scheduler=turns,
        per_turn=per_turn,
    )


def test_a_slice_that_finishes_a_frame_goes_on_with_the_next() -> None:
    crowd = [member(n) for n in range(15)]
    turns = Turns()
    spread = spreader(turns, {m.session for m in crowd}, per_turn=10)
    spread.send(Outgoing(Pong(id="a")), crowd)
    spread.send(Outgoing(Pong(id="b")), crowd)
    assert [received(m) for m in crowd] == [["a"]] * 10 + [[]] * 5
    turns.turn()  # the last five of "a", then the first five of "b": ten writes
    assert [received(m) for m in crowd] == [["b"]] * 5 + [[]] * 5 + [["a"]] * 5
    turns.turn()
    assert [received(m) for m in crowd] == [[]] * 5 + [["b"]] * 10
    # A slice that used its whole budget leaves the finished frame for the next to clear.
    turns.turn()
    assert not spread.busy
    assert turns.pending == 0


def test_members_who_left_do_not_use_up_the_slice() -> None:
    crowd = [member(n) for n in range(6)]
    here = {m.session for m in crowd[2:]}
    turns = Turns()
    spread = spreader(turns, here, per_turn=3)
    spread.send(Outgoing(Pong(id="a")), crowd)
    assert [received(m) for m in crowd] == [[], [], ["a"], ["a"], ["a"], []]
    turns.turn()
    assert [received(m) for m in crowd] == [[]] * 5 + [["a"]]
    assert not spread.busy


def test_cancelling_again_is_harmless_and_the_next_frame_still_reaches_everyone() -> None:
    crowd = [member(n) for n in range(20)]
    turns = Turns()
    spread = spreader(turns, {m.session for m in crowd}, per_turn=10)
    spread.send(Outgoing(Pong(id="a")), crowd)
    spread.cancel()
    spread.cancel()  # nothing is left to stop: a no-op
    assert turns.pending == 0
    spread.send(Outgoing(Pong(id="b")), crowd)
    turns.turn()
    turns.turn()
    assert not spread.busy
    assert [received(m) for m in crowd] == [["a", "b"]] * 10 + [["b"]] * 10
