"""Limits counted cluster-wide: a user's prompt rate and daily token budget, in Redis counters.

A user connected to two nodes spends one allowance, not one per node. Counters are fixed
windows (INCRBY, with the window's expiry set by the first add), which at a window's edge allow
at most twice the rate for a moment: a fair price for one round trip and no locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from redis.exceptions import RedisError

from rtserver.bus import scripts
from rtserver.bus.redis import RedisBus
from rtserver.errors import PeerError

DAY_S: Final = 86_400
#: What a sender is told to wait when the counters cannot be reached.
UNREACHABLE_RETRY_S: Final = 1.0


class ClusterCounters:
    """Per-user counters shared by every node of the bus."""

    def __init__(self, bus: RedisBus, *, clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._clock = clock
        self._count = bus.client.register_script(scripts.COUNT)

    async def _add(self, name: str, amount: int, window_s: float) -> tuple[int, float]:
        try:
            total, ttl_ms = await self._count(
                keys=[self._bus.keys.counter(name)], args=[amount, int(window_s * 1000)]
            )
        except RedisError:
            raise PeerError(
                "busy", "limits cannot be checked just now", retry_after=UNREACHABLE_RETRY_S
            ) from None
        return int(total), max(0.0, int(ttl_ms) / 1000)

    async def take_prompt(self, owner: str, *, per_minute: int) -> None:
        """Count one prompt of ``owner``; ``rate_limited`` past ``per_minute`` in this minute."""
        window = int(self._clock() // 60)
        total, left_s = await self._add(f"prompts:{owner}:{window}", 1, 60.0)
        if total > per_minute:
            raise PeerError(
                "rate_limited", f"{per_minute} prompts a minute", retry_after=round(left_s, 3)
            )

    async def check_budget(self, owner: str, *, per_day: int) -> None:
        """``rate_limited`` until the UTC day rolls once ``owner`` spent ``per_day`` tokens."""
        if per_day == 0:
            return
        total, _ = await self._add(self._budget_key(owner), 0, 2 * DAY_S)
        if total >= per_day:
            day = int(self._clock() // DAY_S)
            raise PeerError(
                "rate_limited",
                f"the daily budget of {per_day} output tokens is spent",
                retry_after=round((day + 1) * DAY_S - self._clock(), 3),
            )

    async def spend(self, owner: str, tokens: int) -> int:
        """Count ``tokens`` output tokens against ``owner``'s day; the day's total."""
        total, _ = await self._add(self._budget_key(owner), max(0, tokens), 2 * DAY_S)
        return total

    def _budget_key(self, owner: str) -> str:
        return f"tokens:{owner}:{int(self._clock() // DAY_S)}"
