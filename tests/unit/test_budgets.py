"""Budgets and ceilings: character cuts, the max_tokens clamp, log bytes, stream slots."""

from __future__ import annotations

import msgspec
import pytest

from rtserver.errors import PeerError
from rtserver.ops.accesslog import redact_query
from rtserver.protocol.codec import JSON, Outgoing
from rtserver.protocol.frames import HistoryMessage, TokenEvent
from rtserver.providers.base import ChatTurn
from rtserver.room.cuts import newest_within
from rtserver.room.eventlog import EventLog
from rtserver.room.memory import MemoryBudget
from rtserver.room.recent import RecentMessages
from rtserver.turns.budgets import clamp_max_tokens, newest_turns_within
from rtserver.turns.slots import Slots


def _message(n: int, size: int) -> HistoryMessage:
    return HistoryMessage(id=f"m{n}", role="user", text="x" * size, status="complete", ts=n)


@pytest.mark.parametrize(
    ("sizes", "budget", "keep_newest", "kept"),
    [
        ([10, 10, 10], 30, False, [0, 1, 2]),
        ([10, 10, 10], 29, False, [1, 2]),
        ([10, 10, 10], 9, False, []),
        ([10, 10, 10], 9, True, [2]),
        ([50, 1, 1], 10, False, [1, 2]),
        ([], 10, True, []),
    ],
)
def test_newest_within_keeps_the_newest_that_fit(
    sizes: list[int], budget: int, keep_newest: bool, kept: list[int]
) -> None:
    messages = [_message(n, size) for n, size in enumerate(sizes)]
    chosen = newest_within(messages, budget, keep_newest=keep_newest)
    assert [m.id for m in chosen] == [f"m{n}" for n in kept]


def test_the_newest_turn_is_always_sent_however_long() -> None:
    turns = [ChatTurn(role="user", content="a" * 5), ChatTurn(role="user", content="b" * 50)]
    assert newest_turns_within(turns, 10) == turns[1:]


@pytest.mark.parametrize(
    ("requested", "configured", "expected"),
    [
        (None, {"max_tokens": 100}, None),
        (1_000_000, {"max_tokens": 100}, 100),
        (50, {"max_tokens": 100}, 50),
        (1_000_000, {}, 4096),
        (1_000_000, {"max_tokens": True}, 4096),
        (1_000_000, {"max_tokens": "100"}, 4096),
        (10, {}, 10),
    ],
)
def test_max_tokens_is_clamped_to_the_configured_or_server_cap(
    requested: int | None, configured: dict[str, object], expected: int | None
) -> None:
    assert clamp_max_tokens(requested, configured, server_cap=4096) == expected


class Clock:
    def __call__(self) -> float:
        return 0.0


def _event(seq: int, size: int) -> TokenEvent:
    return TokenEvent(seq=seq, stream="s", text="t" * size)


def test_an_event_log_keeps_its_bytes_under_max_bytes_dropping_the_oldest() -> None:
    log = EventLog(max_events=1000, max_age_s=60, clock=Clock(), max_bytes=2_000)
    for seq in range(1, 21):
        log.append(_event(seq, 300))
    assert log.bytes <= 2_000
    # Only what had to go went: one more event would not have fitted.
    assert log.bytes > 2_000 - 2 * len(Outgoing(_event(1, 300)).data(JSON))
    assert log.since(log.epoch, 19) is not None
    assert log.since(log.epoch, 10) is None  # dropped: a snapshot, never a partial replay
    assert log.head == 20


def test_the_budget_empties_the_least_recently_written_log_first() -> None:
    budget = MemoryBudget(max_bytes=5_000)
    logs = [EventLog(max_events=1000, max_age_s=60, clock=Clock(), budget=budget) for _ in "abc"]
    a, b, c = logs
    for seq in (1, 2):
        a.append(_event(seq, 1_000))
        b.append(_event(seq, 1_000))
    c.append(_event(1, 1_000))  # over: a, written least recently, is emptied
    assert (a.bytes, b.bytes > 0, c.bytes > 0) == (0, True, True)
    assert budget.total == b.bytes + c.bytes <= 5_000
    assert a.since(a.epoch, 1) is None
    assert a.head == 2
    for seq in range(2, 12):
        c.append(_event(seq, 1_000))  # b goes, then c sheds its own oldest
    assert b.bytes == 0
    assert budget.total == c.bytes <= 5_000
    budget.forget(c)
    assert budget.total == 0


def test_slots_refuse_busy_with_retry_after_and_take_nothing_then() -> None:
    slots = Slots(capacity=3, what="running streams", retry_after=5.0)
    slots.take(2)
    with pytest.raises(PeerError) as refused:
        slots.take(2)
    assert (refused.value.code, refused.value.retry_after) == ("busy", 5.0)
    assert slots.used == 2
    slots.take()
    slots.give_back(3)
    assert slots.used == 0


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("session=abc&x=1", "session=[redacted]&x=1"),
        ("name=al&token=eyJ.x.y&since=e:4", "name=al&token=[redacted]&since=e:4"),
        ("tok%65n=secret", "tok%65n=[redacted]"),
        ("session", "session=[redacted]"),
        ("sessions=ok", "sessions=ok"),
        ("", ""),
    ],
)
def test_secret_query_values_are_redacted(query: str, logged: str) -> None:
    assert redact_query(query) == logged


def test_recent_messages_keep_the_newest_within_count_and_characters() -> None:
    recent = RecentMessages(max_messages=3, max_chars=25, budget=None)
    recent.extend(_message(n, 10) for n in range(5))
    assert [m.id for m in recent] == ["m3", "m4"]
    recent.append(_message(5, 1))
    assert [m.id for m in recent] == ["m3", "m4", "m5"]
    recent.append(_message(6, 1))
    assert [m.id for m in recent] == ["m4", "m5", "m6"]
    # A reply that grew when it ended may push older messages out.
    recent.replace(msgspec.structs.replace(_message(6, 0), text="y" * 20))
    assert [m.id for m in recent] == ["m5", "m6"]


def test_the_budget_frees_something_whole_first_and_counts_histories_too() -> None:
    budget = MemoryBudget(max_bytes=12_000)
    freed: list[str] = []
    idle = RecentMessages(max_messages=50, max_chars=100_000, budget=budget)
    idle.extend([_message(0, 4_000)])

    def let_go_idle() -> bool:
        if freed:
            return False
        freed.append("idle")
        budget.forget(idle)
        return True

    budget.free_first = let_go_idle
    busy = RecentMessages(max_messages=50, max_chars=100_000, budget=budget)
    busy.extend([_message(n, 3_000) for n in range(1, 3)])
    assert freed == []
    busy.append(_message(3, 3_000))  # over: the idle one goes whole
    assert freed == ["idle"]
    assert idle.bytes == 0
    busy.append(_message(4, 3_000))  # over again, nothing idle left: busy sheds its oldest
    assert budget.total == busy.bytes <= 12_000
    assert [m.id for m in busy][-1] == "m4"
