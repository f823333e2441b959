"""Token buckets: a burst, then a steady refill; keyed buckets stay bounded."""

from __future__ import annotations

from rtserver.auth.ratelimit import KeyedBuckets, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = Clock()
    bucket = TokenBucket(capacity=3, per_seconds=60, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == 20.0
    clock.now += 20
    assert bucket.take() == 0.0
    assert bucket.take() > 0


def test_keyed_buckets_are_separate_and_bounded() -> None:
    clock = Clock()
    buckets = KeyedBuckets(capacity=1, per_seconds=60, clock=clock, max_keys=2)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0
    assert buckets.take("c") == 0.0  # evicts "a", the least recently used
    assert buckets.take("a") == 0.0
