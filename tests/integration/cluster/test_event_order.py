"""Room events published on several nodes reach every node's copy in one order."""

from __future__ import annotations

import asyncio

from rtserver.protocol.frames import TokenEvent
from tests.integration.cluster.conftest import BusOpener
from tests.integration.cluster.feeds import RecordingFeed
from tests.support import eventually


def token(text: str) -> TokenEvent:
    return TokenEvent(seq=0, stream="s_1", text=text)


async def test_every_node_sees_one_order(open_bus: BusOpener) -> None:
    nodes = [await open_bus() for _ in range(3)]
    feeds = [RecordingFeed() for _ in nodes]
    links = [await node.attach("r1", feed) for node, feed in zip(nodes, feeds, strict=True)]
    for i in range(60):
        links[i % 3].publish(token(f"{i % 3}:{i}"))
        if i % 7 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*(link.settled() for link in links))
    await eventually(lambda: all(len(f.events) == 60 for f in feeds))
    texts = [[e.text for e in f.events if isinstance(e, TokenEvent)] for f in feeds]
    assert texts[0] == texts[1] == texts[2]
    assert feeds[0].seqs == list(range(1, 61))
    assert len({f.epoch for f in feeds}) == 1
    # Each node's own events keep the order it published them in.
    for n in range(3):
        own = [int(t.split(":")[1]) for t in texts[0] if t.startswith(f"{n}:")]
        assert own == sorted(own)


async def test_a_late_copy_starts_from_the_window(open_bus: BusOpener) -> None:
    first, late = await open_bus(window=10), await open_bus(window=10)
    early_feed = RecordingFeed()
    link = await first.attach("r2", early_feed)
    for i in range(50):
        link.publish(token(str(i)))
    assert await link.settled() == 50
    feed = RecordingFeed()
    await late.attach("r2", feed)
    # MAXLEN ~ keeps at least the window: the copy starts at the oldest event kept.
    assert feed.restarts[0][0] == early_feed.epoch
    assert feed.events
    assert feed.seqs == list(range(feed.restarts[0][1] + 1, 51))
    assert len(feed.events) >= 10


async def test_rooms_do_not_mix(open_bus: BusOpener) -> None:
    node = await open_bus()
    a, b = RecordingFeed(), RecordingFeed()
    link_a, link_b = await node.attach("ra", a), await node.attach("rb", b)
    link_a.publish(token("a"))
    link_b.publish(token("b"))
    link_b.publish(token("b2"))
    await eventually(lambda: len(a.events) == 1 and len(b.events) == 2)
    assert [e.seq for e in b.events] == [1, 2]


async def test_a_room_opened_again_keeps_its_new_copy_fed(open_bus: BusOpener) -> None:
    node = await open_bus()
    old, new = RecordingFeed(), RecordingFeed()
    old_link = await node.attach("again", old)
    new_link = await node.attach("again", new)
    # The old copy is let go after the new one is linked: the new one goes on hearing.
    await old_link.close()
    new_link.publish(token("after"))
    await eventually(lambda: [e.seq for e in new.events] == [1])
