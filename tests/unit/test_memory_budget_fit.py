"""The shared memory budget: a total that reaches it exactly fits; freeing a whole idle room
that was not enough goes on to the least recently written log."""

from __future__ import annotations

from rtserver.protocol.codec import JSON, Outgoing
from rtserver.protocol.frames import TokenEvent
from rtserver.room.eventlog import EventLog
from rtserver.room.memory import MemoryBudget

SMALL, BIG = "s", "b" * 200


def _token(text: str) -> TokenEvent:
    return TokenEvent(seq=1, stream="s", text=text)


def _size(text: str) -> int:
    # What a log counts for its first event (seq 1): its JSON, twice.
    return 2 * len(Outgoing(_token(text)).data(JSON))


def _log(budget: MemoryBudget) -> EventLog:
    return EventLog(max_events=100, max_age_s=60, clock=lambda: 0.0, budget=budget)


def test_logs_that_fill_the_budget_exactly_are_all_kept() -> None:
    budget = MemoryBudget(max_bytes=_size(BIG) + _size(SMALL))
    freed: list[int] = []

    def nothing_idle() -> bool:
        freed.append(1)
        return False

    budget.free_first = nothing_idle
    first, second = _log(budget), _log(budget)
    first.append(_token(BIG))
    second.append(_token(SMALL))
    assert budget.total == _size(BIG) + _size(SMALL)
    assert (first.bytes, second.bytes) == (_size(BIG), _size(SMALL))
    assert freed == [], "nothing was over, so nothing whole was asked for"


def test_when_freeing_an_idle_room_is_not_enough_the_oldest_written_log_is_emptied() -> None:
    budget = MemoryBudget(max_bytes=2 * _size(BIG) + _size(SMALL))
    idle, old, new = _log(budget), _log(budget), _log(budget)
    idle.append(_token(SMALL))
    old.append(_token(BIG))
    new.append(_token(BIG))
    asked: list[str] = []

    def let_go_idle() -> bool:
        # As the server does: the idle room goes whole, once; then nothing idle is left.
        asked.append("idle" if idle.bytes else "none")
        if not idle.bytes:
            return False
        budget.forget(idle)
        return True

    budget.free_first = let_go_idle
    new.append(_token(BIG))  # over by a big event: the idle room's small one is not enough
    assert asked == ["idle", "none"]
    assert (idle.bytes, old.bytes) == (0, 0)
    assert new.bytes == 2 * _size(BIG)
    assert budget.total == new.bytes <= 2 * _size(BIG) + _size(SMALL)
    assert old.head == 1, "an emptied log keeps its head: a resume from it gets a snapshot"
