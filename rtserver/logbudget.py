"""One memory budget shared by every room's event log.

Each log keeps its own bounds (events, age, bytes); this holds the sum across the server under
``[limits] event_log_bytes_total``. When the sum passes it, the logs that were written to least
recently are emptied first (idle rooms before busy ones). An emptied log keeps its epoch and
head, so a client resuming from it gets a full snapshot, as the protocol allows, and no client
ever gets a wrong replay.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol


class BudgetedLog(Protocol):
    """What the budget needs of a log."""

    @property
    def bytes(self) -> int: ...

    def drop_oldest(self) -> None:
        """Forget the oldest event kept."""
        ...

    def drop_all(self) -> None:
        """Forget every event kept (the head and epoch stay)."""
        ...


class LogBudget:
    """The bytes of every registered log, held under ``max_bytes`` together."""

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._total = 0
        # Least recently written first.
        self._logs: OrderedDict[BudgetedLog, None] = OrderedDict()

    @property
    def total(self) -> int:
        return self._total

    def changed(self, log: BudgetedLog, delta: int) -> None:
        """``log`` grew (or shrank) by ``delta`` bytes."""
        self._total += delta

    def wrote(self, log: BudgetedLog) -> None:
        """``log`` was just written to: it is the last to be emptied; then fit the budget."""
        self._logs[log] = None
        self._logs.move_to_end(log)
        while self._total > self._max_bytes:
            oldest = next(iter(self._logs))
            if oldest is log:
                if not log.bytes:
                    return
                # Every other log is empty: the one writing gives up its oldest events.
                log.drop_oldest()
            else:
                oldest.drop_all()
                del self._logs[oldest]

    def forget(self, log: BudgetedLog) -> None:
        """``log`` is gone (its room closed): its bytes no longer count."""
        self._logs.pop(log, None)
        log.drop_all()
