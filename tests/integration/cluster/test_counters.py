"""Per-user limits counted across nodes: two nodes spend one allowance."""

from __future__ import annotations

import pytest

from rtserver.bus.counters import ClusterCounters
from rtserver.errors import PeerError
from tests.integration.cluster.conftest import BusOpener


async def test_prompts_per_minute_hold_across_nodes(open_bus: BusOpener) -> None:
    a, b = ClusterCounters(await open_bus()), ClusterCounters(await open_bus())
    await a.take_prompt("sub:ada", per_minute=3)
    await b.take_prompt("sub:ada", per_minute=3)
    await a.take_prompt("sub:ada", per_minute=3)
    with pytest.raises(PeerError) as raised:
        await b.take_prompt("sub:ada", per_minute=3)
    assert raised.value.code == "rate_limited"
    assert raised.value.retry_after is not None
    assert 0 < raised.value.retry_after <= 60
    # Someone else's allowance is their own.
    await b.take_prompt("sub:bob", per_minute=3)


async def test_the_daily_budget_is_spent_cluster_wide(open_bus: BusOpener) -> None:
    a, b = ClusterCounters(await open_bus()), ClusterCounters(await open_bus())
    await a.check_budget("sub:ada", per_day=100)
    assert await a.spend("sub:ada", 60) == 60
    await b.check_budget("sub:ada", per_day=100)
    assert await b.spend("sub:ada", 50) == 110
    with pytest.raises(PeerError) as raised:
        await a.check_budget("sub:ada", per_day=100)
    assert raised.value.code == "rate_limited"
    await a.check_budget("sub:ada", per_day=0)  # no budget: never refused
    assert await a.spend("sub:ada", -5) == 110  # nothing is given back
