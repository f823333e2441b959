"""A room's recent messages, kept in memory for welcomes, within its bounds and the budget.

Bounded by count (``history_messages``), by characters of text (``welcome_chars``, oldest first)
and, with the event logs, by the server's shared memory budget. Emptied by the budget, a room's
welcomes carry fewer messages (or none) until new ones arrive: the rest is a history page away.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Iterator

from rtserver.protocol.frames import HistoryMessage
from rtserver.room.cuts import newest_within
from rtserver.room.memory import MemoryBudget


def _size(message: HistoryMessage) -> int:
    # The memory the texts take (one to four bytes a character), fields aside.
    reasoning = message.reasoning
    return sys.getsizeof(message.text) + (sys.getsizeof(reasoning) if reasoning else 0)


class RecentMessages:
    """The newest messages of a room, oldest first."""

    def __init__(self, *, max_messages: int, max_chars: int, budget: MemoryBudget | None) -> None:
        self._messages: deque[HistoryMessage] = deque()
        self._max_messages = max_messages
        self._max_chars = max_chars
        self._budget = budget
        self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __iter__(self) -> Iterator[HistoryMessage]:
        return iter(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def extend(self, messages: Iterable[HistoryMessage]) -> None:
        for message in messages:
            self._messages.append(message)
            self._grow(_size(message))
        self._fit()

    def append(self, message: HistoryMessage) -> None:
        self.extend((message,))

    def replace(self, message: HistoryMessage) -> None:
        """Put ``message`` in the place of the kept message with its id, if one is kept."""
        for index, kept in enumerate(self._messages):
            if kept.id == message.id:
                self._messages[index] = message
                self._grow(_size(message) - _size(kept))
                self._fit()
                return

    def get(self, message_id: str) -> HistoryMessage | None:
        """The kept message with this id, if one is kept."""
        return next((m for m in self._messages if m.id == message_id), None)

    def drop_oldest(self) -> None:
        if self._messages:
            self._grow(-_size(self._messages.popleft()))

    def drop_all(self) -> None:
        self._messages.clear()
        self._grow(-self._bytes)

    def _fit(self) -> None:
        keep = newest_within(self._messages, self._max_chars, keep_newest=False)
        for _ in range(
            max(len(self._messages) - len(keep), len(self._messages) - self._max_messages)
        ):
            self.drop_oldest()
        if self._budget is not None:
            self._budget.wrote(self)

    def _grow(self, delta: int) -> None:
        self._bytes += delta
        if self._budget is not None:
            self._budget.changed(self, delta)
