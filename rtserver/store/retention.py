"""Retention: messages older than ``[store] retain_days`` are deleted, at start and hourly.

Deleting is done in batches, each its own short transaction, so that rooms writing meanwhile
wait for one batch at most, never for the whole clean-up. A reply still streaming is never
deleted. SQLite reuses the freed pages, so the file stops growing rather than shrinking.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

log = logging.getLogger(__name__)

DAY_S: Final = 86_400
#: Seconds between clean-ups after the first, which runs at start.
INTERVAL_S: Final = 3_600.0


class PruningStore(Protocol):
    async def delete_before(self, ts_ms: int) -> int:
        """Delete every finished message with ``ts`` before ``ts_ms``; return how many."""
        ...


class Retention:
    """Deletes what is older than ``retain_days`` (measured by ``clock``, Unix seconds)."""

    def __init__(
        self,
        *,
        store: PruningStore,
        retain_days: int,
        clock: Callable[[], float] = time.time,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self._store = store
        self._retain_s = retain_days * DAY_S
        self._clock = clock
        self._interval_s = interval_s

    async def prune(self) -> int:
        """Delete what is older than the retention period now; return how many messages."""
        cutoff_ms = int((self._clock() - self._retain_s) * 1000)
        return await self._store.delete_before(cutoff_ms)

    async def run(self) -> None:
        """Prune now and then every ``interval_s``, until cancelled; a failure waits a round."""
        while True:
            try:
                deleted = await self.prune()
            except Exception:
                log.exception("could not delete old messages; trying again next round")
            else:
                if deleted:
                    log.info("deleted %d messages older than the retention period", deleted)
            await asyncio.sleep(self._interval_s)
