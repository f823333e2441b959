"""The event log's replay window and the outbox's bound."""

from __future__ import annotations

import asyncio

import pytest

from rtserver.protocol.codec import Outgoing
from rtserver.protocol.frames import TokenEvent
from rtserver.room.eventlog import EventLog
from rtserver.room.outbox import Outbox, OutboxClosed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fill(log: EventLog, count: int, clock: Clock | None = None) -> None:
    for _ in range(count):
        log.append(TokenEvent(seq=0, stream="s", text="t"))
        if clock is not None:
            clock.now += 1


def _seqs(events: list[Outgoing] | None) -> list[int]:
    assert events is not None
    return [e.frame.seq for e in events]  # type: ignore[union-attr]


def test_since_replays_exactly_the_missed_events() -> None:
    log = EventLog(max_events=100, max_age_s=60, clock=Clock())
    _fill(log, 10)
    assert _seqs(log.since(log.epoch, 7)) == [8, 9, 10]
    assert _seqs(log.since(log.epoch, 10)) == []
    assert _seqs(log.since(log.epoch, 0)) == list(range(1, 11))


def test_since_refuses_other_epochs_future_seqs_and_gaps() -> None:
    log = EventLog(max_events=5, max_age_s=60, clock=Clock())
    _fill(log, 10)
    assert log.since("another", 9) is None
    assert log.since(log.epoch, 11) is None
    assert log.since(log.epoch, -1) is None
    assert log.since(log.epoch, 4) is None  # 5 is gone
    assert _seqs(log.since(log.epoch, 5)) == [6, 7, 8, 9, 10]


def test_old_events_age_out() -> None:
    clock = Clock()
    log = EventLog(max_events=100, max_age_s=3.5, clock=clock)
    _fill(log, 10, clock)
    assert log.since(log.epoch, 5) is None
    assert _seqs(log.since(log.epoch, 6)) == [7, 8, 9, 10]


def test_epochs_differ_between_logs() -> None:
    assert (
        EventLog(max_events=1, max_age_s=1, clock=Clock()).epoch
        != EventLog(max_events=1, max_age_s=1, clock=Clock()).epoch
    )


async def test_outbox_refuses_past_its_bound_but_force_passes() -> None:
    box = Outbox(max_bytes=10)
    assert box.put(b"12345")
    assert box.put(b"12345")
    assert not box.put(b"1")
    assert box.put(b"welcome", force=True)
    assert box.queued_bytes == 17
    assert await box.get() == b"12345"
    assert box.queued_bytes == 12


async def test_outbox_wakes_its_reader_and_closes() -> None:
    box = Outbox(max_bytes=100)
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put(b"x")
    assert await reader == b"x"
    box.put(b"dropped")
    box.close(4000, "slow")
    with pytest.raises(OutboxClosed) as closed:
        await box.get()
    assert closed.value.code == 4000
    assert not box.put(b"late")


async def test_outbox_close_with_flush_delivers_queued_frames_first() -> None:
    box = Outbox(max_bytes=100)
    box.put(b"a")
    box.put(b"b")
    box.close(1001, "bye", flush=True)
    assert [await box.get(), await box.get()] == [b"a", b"b"]
    with pytest.raises(OutboxClosed):
        await box.get()


def test_the_log_numbers_what_it_is_given_and_names_where_each_stands() -> None:
    log = EventLog(max_events=3, max_age_s=60, clock=Clock())
    assert log.head == 0
    _fill(log, 3)
    out = log.append(TokenEvent(seq=77, stream="s", text="x"))
    assert log.head == 4
    assert (out.frame.seq, out.at) == (4, (log.epoch, 4))  # type: ignore[union-attr]
    # The log holds exactly max_events: the last three, and nothing older.
    assert _seqs(log.since(log.epoch, 1)) == [2, 3, 4]
    assert log.since(log.epoch, 0) is None


def test_an_event_exactly_max_age_old_is_still_held() -> None:
    clock = Clock()
    log = EventLog(max_events=100, max_age_s=3, clock=clock)
    _fill(log, 4, clock)  # appended at 0, 1, 2, 3; the clock now reads 4
    clock.now = 3.0
    _fill(log, 1)  # at 3: the horizon is 0, so the event of time 0 stays
    assert _seqs(log.since(log.epoch, 0)) == [1, 2, 3, 4, 5]


async def test_preloaded_frames_come_first_and_do_not_count_toward_the_bound() -> None:
    box = Outbox(max_bytes=4)
    box.preload(b"welcome-frame")
    box.preload(b"replayed")
    assert box.queued_bytes == 0
    assert box.put(b"1234")
    assert not box.put(b"5")
    with pytest.raises(RuntimeError, match=r"^preload must come before any other frame$"):
        box.preload(b"too late")
    assert [await box.get() for _ in range(3)] == [b"welcome-frame", b"replayed", b"1234"]
    assert box.queued_bytes == 0
    assert box.put(b"abcd")


async def test_a_closed_outbox_keeps_its_first_reason_and_takes_nothing() -> None:
    box = Outbox(max_bytes=100)
    assert not box.closed
    waiter = asyncio.create_task(box.wait_closed())
    box.put(b"queued")
    box.close(4000, "slow consumer")
    box.close(1001, "later")
    await asyncio.wait_for(waiter, 5)
    assert box.closed
    assert box.queued_bytes == 0
    box.preload(b"ignored")
    assert not box.put(b"x", force=True)
    with pytest.raises(OutboxClosed) as closed:
        await box.get()
    assert (closed.value.code, closed.value.reason, str(closed.value)) == (
        4000,
        "slow consumer",
        "slow consumer",
    )
