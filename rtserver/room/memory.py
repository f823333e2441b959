"""One memory budget shared by every room: its event log and its recent messages.

Each room's event log and recent messages keep their own bounds; this holds their sum across the
server under ``[limits] room_memory_bytes``. When the sum passes it, rooms nobody is in are
let go first, longest idle first (they load again from the store when next used); then the log
or history written to least recently is emptied. An emptied log keeps its epoch and head, so a
client resuming from it gets a full snapshot, as the protocol allows, and never a wrong replay.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class Budgeted(Protocol):
    """What the budget needs of what it holds (an event log, a room's recent messages)."""

    @property
    def bytes(self) -> int: ...

    def drop_oldest(self) -> None:
        """Forget the oldest item kept."""
        ...

    def drop_all(self) -> None:
        """Forget every item kept (a log keeps its head and epoch)."""
        ...


class MemoryBudget:
    """The bytes of everything registered, held under ``max_bytes`` together."""

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._total = 0
        #: Asked first when the budget is passed, to free something whole (an idle room);
        #: returns False when it has nothing to free.
        self.free_first: Callable[[], bool] = lambda: False
        # Least recently written first.
        self._logs: OrderedDict[Budgeted, None] = OrderedDict()

    @property
    def total(self) -> int:
        return self._total

    def changed(self, log: Budgeted, delta: int) -> None:
        """``log`` grew (or shrank) by ``delta`` bytes."""
        self._total += delta

    def wrote(self, log: Budgeted) -> None:
        """``log`` was just written to: it is the last to be emptied; then fit the budget."""
        self._logs[log] = None
        self._logs.move_to_end(log)
        while self._total > self._max_bytes:
            if self.free_first():
                continue
            oldest = next(iter(self._logs))
            if oldest is log:
                if not log.bytes:
                    return
                # Every other log is empty: the one writing gives up its oldest events.
                log.drop_oldest()
            else:
                oldest.drop_all()
                del self._logs[oldest]

    def forget(self, log: Budgeted) -> None:
        """``log`` is gone (its room closed): its bytes no longer count."""
        self._logs.pop(log, None)
        log.drop_all()
