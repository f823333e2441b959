"""What a room's recent messages hold against the memory budget: the memory their texts take
(the answer and, when there is one, the reasoning), kept right as a reply is replaced."""

from __future__ import annotations

import sys

from rtserver.protocol.frames import HistoryMessage
from rtserver.room.memory import MemoryBudget
from rtserver.room.recent import RecentMessages


def _message(mid: str, text: str, reasoning: str | None = None) -> HistoryMessage:
    return HistoryMessage(
        id=mid, role="assistant", text=text, status="complete", ts=1, reasoning=reasoning
    )


def _recent(budget: MemoryBudget | None = None) -> RecentMessages:
    return RecentMessages(max_messages=50, max_chars=100_000, budget=budget)


def test_a_message_weighs_its_text_and_its_reasoning_if_it_has_one() -> None:
    recent = _recent()
    recent.append(_message("m1", "plain"))
    assert recent.bytes == sys.getsizeof("plain")
    recent.append(_message("m2", "empty", reasoning=""))  # no reasoning, as None is
    assert recent.bytes == sys.getsizeof("plain") + sys.getsizeof("empty")
    recent.append(_message("m3", "thought", reasoning="because" * 20))
    assert recent.bytes == (
        sys.getsizeof("plain")
        + sys.getsizeof("empty")
        + sys.getsizeof("thought")
        + sys.getsizeof("because" * 20)
    )


def test_a_replaced_message_weighs_what_replaced_it() -> None:
    budget = MemoryBudget(max_bytes=1 << 20)
    recent = _recent(budget)
    recent.extend([_message("m1", "kept"), _message("m2", "")])
    recent.replace(_message("m2", "a longer final text"))
    assert recent.bytes == sys.getsizeof("kept") + sys.getsizeof("a longer final text")
    assert budget.total == recent.bytes


def test_messages_that_fill_the_budget_exactly_stay() -> None:
    texts = ["first", "second"]
    budget = MemoryBudget(max_bytes=sum(sys.getsizeof(t) for t in texts))
    recent = _recent(budget)
    recent.extend(_message(f"m{n}", t) for n, t in enumerate(texts))
    assert [m.text for m in recent] == texts
