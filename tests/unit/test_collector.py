"""The collection governor: a full collection waits for the heap to settle, but not forever."""

from __future__ import annotations

import gc

from aiohttp.test_utils import TestServer

from rtserver.ops.collector import MIDDLE_EVERY, CollectionGovernor
from tests.conftest import ServerFactory


class Heap:
    """A heap size and a clock that the test moves, and the collections asked for."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.now = 0.0
        self.collections = 0

    def collect(self) -> None:
        self.collections += 1

    def governor(self, **kwargs: float) -> CollectionGovernor:
        return CollectionGovernor(
            heap=lambda: self.size, clock=lambda: self.now, collect=self.collect, **kwargs
        )

    def step(self, governor: CollectionGovernor, *, seconds: float = 1.0, size: int) -> bool:
        self.now += seconds
        self.size = size
        return governor.tick()


def test_no_collection_while_the_heap_has_grown_less_than_asked() -> None:
    heap = Heap(1000)
    governor = heap.governor(growth=0.5, settle_s=2.0)
    for size in (1100, 1200, 1300, 1400, 1400, 1400, 1400):
        assert not heap.step(governor, size=size)
    assert heap.collections == 0


def test_a_due_collection_waits_until_the_heap_stops_growing() -> None:
    heap = Heap(1000)
    governor = heap.governor(growth=0.5, settle_s=2.0, max_defer_s=30.0)
    for size in (1300, 1600, 1900, 2200):  # due from 1,600 on, but still growing
        assert not heap.step(governor, size=size)
    assert not heap.step(governor, size=2200)  # still for one second
    assert heap.step(governor, size=2200)  # still for two: now
    assert heap.collections == 1


def test_a_collection_deferred_for_max_defer_s_runs_however_the_heap_grows() -> None:
    heap = Heap(1000)
    governor = heap.governor(growth=0.5, settle_s=2.0, max_defer_s=5.0)
    size, ran_at = 1000, []
    for second in range(1, 12):
        size = int(size * 1.2)  # a storm that never ends
        if heap.step(governor, size=size):
            ran_at.append(second)
    # Due at second 3 (1,728 >= 1,500), run five seconds later; then due again, and so on.
    assert ran_at == [8]
    assert heap.collections == 1


def test_growth_is_counted_from_the_heap_after_the_last_collection() -> None:
    heap = Heap(1000)
    governor = heap.governor(growth=0.5, settle_s=1.0)
    heap.step(governor, size=1600)
    assert heap.step(governor, size=1600)
    # The collection freed nothing: the heap must grow by half of 1,600 before the next.
    for size in (2000, 2000, 2000):
        assert not heap.step(governor, size=size)
    assert heap.step(governor, seconds=0, size=2400) is False  # just grew
    assert heap.step(governor, size=2400)
    assert heap.collections == 2


def test_what_refcounting_frees_lowers_the_mark() -> None:
    heap = Heap(1000)
    governor = heap.governor(growth=0.5, settle_s=1.0)
    heap.step(governor, size=400)  # connections gone: their memory freed without a collection
    heap.step(governor, size=600)
    assert heap.step(governor, size=600), "600 is half as much again as 400"


def test_small_growth_between_ticks_counts_as_standing_still() -> None:
    heap = Heap(1000)
    governor = heap.governor(growth=0.5, settle_s=2.0, still=0.01)
    heap.step(governor, size=1600)
    assert not heap.step(governor, size=1605)
    assert heap.step(governor, size=1610)


async def test_a_governed_server_freezes_its_start_and_hands_back_the_collector(
    start_server: ServerFactory,
) -> None:
    thresholds = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    server: TestServer = await start_server(own_process=True)
    try:
        assert gc.get_freeze_count() > frozen_before
        young, middle, old = gc.get_threshold()
        assert young == thresholds[0]
        # The middle generation is collected after every MIDDLE_EVERY young collections.
        assert middle == MIDDLE_EVERY != thresholds[1]
        assert old > 1_000_000, "CPython starts no full collection of its own"
    finally:
        await server.close()
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == frozen_before
