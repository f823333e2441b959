"""Redis restarted mid-stream (empty): errors are clear, nodes reconnect, nothing is lost."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rtserver.protocol.frames import TokenEvent
from tests.integration.cluster.conftest import BusOpener
from tests.integration.cluster.feeds import RecordingFeed
from tests.integration.cluster.redis_server import OwnRedis
from tests.support import eventually


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    await server.start()
    yield server
    server.kill()


def texts(feed: RecordingFeed) -> list[str]:
    return [e.text for e in feed.events if isinstance(e, TokenEvent)]


async def test_a_restart_loses_nothing_published(
    open_bus: BusOpener, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rtserver.bus")
    writer, reader = await open_bus(own_redis.url), await open_bus(own_redis.url)
    health: list[bool] = []
    reader.watch_health(health.append)
    mine, theirs = RecordingFeed(), RecordingFeed()
    link = await writer.attach("r", mine)
    await reader.attach("r", theirs)
    for i in range(10):
        link.publish(TokenEvent(seq=0, stream="s", text=f"before {i}"))
    await eventually(lambda: len(theirs.events) == 10)
    first_epoch = theirs.epoch

    own_redis.kill()
    # Published while Redis is away: queued, sent once it is back.
    for i in range(5):
        link.publish(TokenEvent(seq=0, stream="s", text=f"during {i}"))
    await eventually(lambda: health[-1:] == [False])
    assert not reader.healthy
    await own_redis.start()
    assert await link.settled() > 0
    await eventually(lambda: health[-1:] == [True], timeout=20)

    # Redis came back empty: a new epoch, which every copy restarts at, then everything
    # published during the outage, once each and in order.
    expected = [f"during {i}" for i in range(5)]
    for feed in (mine, theirs):
        await eventually(lambda feed=feed: texts(feed)[-5:] == expected, timeout=20)  # type: ignore[misc]
        assert feed.epoch != first_epoch
        assert texts(feed) == [f"before {i}" for i in range(10)] + expected
    assert "Redis does not answer" in caplog.text
    assert "Redis answers again" in caplog.text
    link.publish(TokenEvent(seq=0, stream="s", text="after"))
    await eventually(lambda: texts(theirs)[-1:] == ["after"])
    assert theirs.events[-1].seq == 6
