"""Rate limits: a token bucket, and buckets by key for requests outside any room."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from rtserver.errors import PeerError


class TokenBucket:
    """Allows a burst of ``capacity`` actions, refilled steadily over ``per_seconds``."""

    __slots__ = ("_at", "_capacity", "_clock", "_rate", "_tokens")

    def __init__(self, *, capacity: float, per_seconds: float, clock: Callable[[], float]) -> None:
        # float() of a float is that float: the buckets of a table, given its float capacity,
        # share it rather than hold a copy each (there is one bucket per connection).
        self._capacity = float(capacity)
        self._rate = capacity / per_seconds
        self._clock = clock
        self._tokens = self._capacity
        self._at = clock()

    def take(self) -> float:
        """Spend one action; 0 when allowed, else the seconds until one is allowed."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class KeyedBuckets:
    """One bucket per key (a client address), keeping at most ``max_keys`` of the newest."""

    def __init__(
        self, *, capacity: int, per_seconds: float, clock: Callable[[], float], max_keys: int
    ) -> None:
        self._capacity = float(capacity)
        self._per_seconds = per_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one action for ``key``; 0 when allowed, else seconds to wait."""
        return self.bucket(key).take()

    def bucket(self, key: str) -> TokenBucket:
        """The bucket of ``key`` (full the first time), to hold and spend from directly."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self.unkept()
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def unkept(self) -> TokenBucket:
        """A full bucket of this table's rate that the table does not keep."""
        return TokenBucket(
            capacity=self._capacity, per_seconds=self._per_seconds, clock=self._clock
        )


def refuse_if_waiting(wait: float, what: str) -> None:
    """Raise ``rate_limited`` when a bucket said to wait ``wait`` seconds; ``what`` is over."""
    if wait > 0:
        raise PeerError("rate_limited", f"more than {what}", retry_after=round(wait, 3))
