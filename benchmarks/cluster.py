"""Cross-node fan-out: what the Redis bus costs against one node, as ratios.

    make bench-cluster        # or: .venv/bin/python -m benchmarks.cluster [--redis URL]

Part 1, the bus alone: a burst of token events published into one room and delivered to every
node's copy, through the in-process bus (one node: the baseline) and through Redis to 1, 2 and 3
nodes. It reports events per second until the last copy has them all (and the median time from
publish to delivery there, which in a burst is mostly queueing), then the delay from publish to
delivery on the last node at one event a millisecond. Needs the Redis of ``--redis`` (default
the test one on 127.0.0.1:6379); everything it writes is under a key prefix of its own, deleted
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from rtserver.bus.base import Bus, RoomLink
from rtserver.bus.local import LocalBus
from rtserver.bus.redis import RedisBus
from rtserver.protocol.frames import RoomEvent, TokenEvent

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
#: Events of the paced run (one a millisecond): the delay a participant on another node sees.
PACED_EVENTS = 2_000


class CountingFeed:
    """A node's copy that counts what it is given and notes when each event arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.arrived: list[float] = []
        self.done = asyncio.Event()

    def restart(self, epoch: str, head: int) -> None:
        return None

    def deliver(self, event: RoomEvent, mine: bool) -> None:
        self.count += 1
        self.arrived.append(time.perf_counter())
        if self.count == self.expected:
            self.done.set()


async def burst(buses: Sequence[Bus], events: int, room: str) -> tuple[float, float]:
    """Events per second to the last copy, and the median publish-to-delivery ms elsewhere."""
    feeds = [CountingFeed(events) for _ in buses]
    links: list[RoomLink] = [await b.attach(room, f) for b, f in zip(buses, feeds, strict=True)]
    sent: list[float] = []
    started = time.perf_counter()
    for n in range(events):
        sent.append(time.perf_counter())
        links[0].publish(TokenEvent(seq=0, stream="s_bench", text=" token"))
        if n % 64 == 63:
            await asyncio.sleep(0)  # a generation yields between tokens
    async with asyncio.timeout(120):
        await asyncio.gather(*(f.done.wait() for f in feeds))
    elapsed = time.perf_counter() - started
    far = feeds[-1]
    latency = statistics.median((a - s) * 1000 for a, s in zip(far.arrived, sent, strict=True))
    for link in links:
        await link.close()
    return events / elapsed, latency


async def paced(buses: Sequence[Bus], events: int, room: str) -> tuple[float, float]:
    """Publish one event a millisecond: median and p99 ms from publish to the last copy."""
    feeds = [CountingFeed(events) for _ in buses]
    links: list[RoomLink] = [await b.attach(room, f) for b, f in zip(buses, feeds, strict=True)]
    sent: list[float] = []
    for _ in range(events):
        sent.append(time.perf_counter())
        links[0].publish(TokenEvent(seq=0, stream="s_bench", text=" token"))
        await asyncio.sleep(0.001)
    async with asyncio.timeout(120):
        await asyncio.gather(*(f.done.wait() for f in feeds))
    far = feeds[-1]
    waits = sorted((a - s) * 1000 for a, s in zip(far.arrived, sent, strict=True))
    for link in links:
        await link.close()
    return statistics.median(waits), waits[int(len(waits) * 0.99)]


async def bus_part(url: str, events: int) -> None:
    prefix = f"rt-bench-{uuid.uuid4().hex[:8]}"
    opened: list[RedisBus] = []
    try:
        base_rate, base_latency = await burst([LocalBus()], events, "local")
        print(f"in-process bus        {base_rate:>10.0f} events/s  {base_latency:7.3f} ms   1.00x")
        for nodes in (1, 2, 3):
            buses = [await RedisBus.open(url, prefix=prefix) for _ in range(nodes)]
            opened += buses
            rate, latency = await burst(buses, events, f"r{nodes}")
            median, p99 = await paced(buses, PACED_EVENTS, f"p{nodes}")
            print(
                f"redis, {nodes} node{'s' if nodes > 1 else ' '}        {rate:>10.0f} events/s"
                f"  {latency:7.3f} ms   {base_rate / rate:.1f}x the cost;"
                f" paced: {median:.2f} ms median, {p99:.2f} ms p99 to the last node"
            )
    finally:
        for bus in opened:
            await bus.close()
        client = aioredis.Redis.from_url(url)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL (default: %(default)s)")
    parser.add_argument("--events", type=int, default=20_000, help="events per burst")
    args = parser.parse_args()
    print(f"part 1: the bus alone, {args.events} token events into one room")
    asyncio.run(bus_part(args.redis, args.events))


if __name__ == "__main__":
    main()
