"""The event log's byte bound is a most, not a less-than: events that fill it exactly stay."""

from __future__ import annotations

from rtserver.protocol.codec import JSON, Outgoing
from rtserver.protocol.frames import TokenEvent
from rtserver.room.eventlog import EventLog


def _token(seq: int) -> TokenEvent:
    return TokenEvent(seq=seq, stream="s", text="tok")


def _size(seq: int) -> int:
    # As the log counts an event: its JSON and the frame it was made from, about as large.
    return 2 * len(Outgoing(_token(seq)).data(JSON))


def test_events_that_fill_max_bytes_exactly_are_all_kept() -> None:
    log = EventLog(max_events=100, max_age_s=60, clock=lambda: 0.0, max_bytes=_size(1) + _size(2))
    log.append(_token(0))
    log.append(_token(0))
    assert log.bytes == _size(1) + _size(2)
    replay = log.since(log.epoch, 0)
    assert replay is not None
    assert [out.frame.seq for out in replay] == [1, 2]  # type: ignore[union-attr]
    # A third does not fit beside them: the oldest goes, and only it.
    log.append(_token(0))
    assert log.since(log.epoch, 0) is None
    assert log.since(log.epoch, 1) is not None
