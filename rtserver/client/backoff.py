"""Reconnect delays: capped exponential backoff with full jitter.

Full jitter (a uniform draw between zero and the exponential ceiling) spreads out the clients
that a restarting server dropped all at once, so they do not come back in one wave.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays, in seconds, before each reconnect attempt."""

    def __init__(
        self,
        *,
        base_s: float = 0.5,
        max_s: float = 15.0,
        random_unit: Callable[[], float] = random.random,
    ) -> None:
        self._base_s = base_s
        self._max_s = max_s
        self._random = random_unit
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Failed attempts since the last :meth:`reset`."""
        return self._attempt

    def ceiling(self) -> float:
        """The largest delay the next call of :meth:`next` may return."""
        return min(self._max_s, self._base_s * 2.0**self._attempt)

    def next(self) -> float:
        """The delay before the next attempt; counts one more failed attempt."""
        delay = self._random() * self.ceiling()
        self._attempt += 1
        return delay

    def jitter(self, max_s: float) -> float:
        """A uniform delay below ``max_s`` that counts no attempt: for a retry expected to work."""
        return self._random() * max_s

    def reset(self) -> None:
        self._attempt = 0
