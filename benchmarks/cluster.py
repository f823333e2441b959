"""Cross-node fan-out: what the Redis bus costs against one node, as ratios.

    make bench-cluster        # or: .venv/bin/python -m benchmarks.cluster [--redis URL]

Part 2, whole servers: one fast reply watched by K WebSocket clients on loopback, served by one
node (the in-process bus), then by two nodes on Redis with the clients split over them. Both
on the PostgreSQL of ``RTSERVER_TEST_POSTGRES`` (a schema of their own, dropped at the end), in
this one process: the figures are costs on the same CPU, not the capacity of two machines.

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
import os
import statistics
import time
import uuid
from collections.abc import Sequence

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from rtserver.app import create_app
from rtserver.bus.base import Bus, RoomLink
from rtserver.bus.local import LocalBus
from rtserver.bus.redis import RedisBus
from rtserver.config import Limits, ModelSpec, Settings
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


FIREHOSE = ModelSpec(id="firehose", provider="demo", tokens_per_s=2000, first_token_s=0.0)
POSTGRES = "postgresql://127.0.0.1:5432/test"


async def serve(db: str, redis_url: str | None, prefix: str) -> TestServer:
    settings = Settings(
        db_path=db,
        models=(FIREHOSE,),
        limits=Limits(token_flush_ms=0),
        redis_url=redis_url,
        bus_prefix=prefix,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    return server


async def watch_one_reply(
    nodes: Sequence[TestServer], clients: int, room: str
) -> tuple[float, float]:
    """Frames per second delivered to every client, and the median seconds to see it all."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = []
        for n in range(clients):
            url = nodes[n % len(nodes)].make_url(f"/v1/rooms/{room}/ws")
            ws = await http.ws_connect(url, protocols=("rt.v1.json",))
            await ws.send_json({"type": "hello", "name": f"c{n}"})
            await ws.receive()  # the welcome
            sockets.append(ws)
        started = time.perf_counter()
        await sockets[0].send_json({"type": "prompt", "id": f"p-{room}", "text": "go fast"})
        finished = await asyncio.gather(*(_until_end(ws) for ws in sockets))
        elapsed = time.perf_counter() - started
        for ws in sockets:
            await ws.close()
    frames = sum(count for count, _ in finished)
    return frames / elapsed, statistics.median(t - started for _, t in finished)


async def _until_end(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, float]:
    count = 0
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        count += 1
        if '"stream_end"' in msg.data:
            return count, time.perf_counter()
    raise ConnectionError("socket closed before stream_end")


async def server_part(url: str, postgres: str, clients_list: Sequence[int]) -> None:
    schema = f"rt_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"rt-bench-{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres)
    await admin.execute(f"CREATE SCHEMA {schema}")
    db = f"{postgres}?search_path={schema}"
    try:
        print(f"{'clients':>8} {'one node':>22} {'two nodes on Redis':>26} {'cost':>7}")
        for clients in clients_list:
            single = await serve(db, None, prefix)
            try:
                one_rate, one_p50 = await watch_one_reply([single], clients, f"one{clients}")
            finally:
                await single.close()
            pair = [await serve(db, url, prefix) for _ in range(2)]
            try:
                two_rate, two_p50 = await watch_one_reply(pair, clients, f"two{clients}")
            finally:
                for node in pair:
                    await node.close()
            print(
                f"{clients:>8} {one_rate:>9.0f} fr/s {one_p50:>6.3f} s"
                f" {two_rate:>12.0f} fr/s {two_p50:>6.3f} s {one_rate / two_rate:>6.2f}x"
            )
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
        client = aioredis.Redis.from_url(url)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL (default: %(default)s)")
    parser.add_argument("--events", type=int, default=20_000, help="events per burst")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("RTSERVER_TEST_POSTGRES", POSTGRES),
        help="PostgreSQL URL for part 2 (default: $RTSERVER_TEST_POSTGRES or %(default)s)",
    )
    parser.add_argument("--clients", default="1,10,100", help="part 2's client counts")
    args = parser.parse_args()
    print(f"part 1: the bus alone, {args.events} token events into one room")
    asyncio.run(bus_part(args.redis, args.events))
    clients = [int(n) for n in args.clients.split(",")]
    print("\npart 2: one reply of about 150 tokens at 2000 tokens/s, one frame per token")
    asyncio.run(server_part(args.redis, args.postgres, clients))


if __name__ == "__main__":
    main()
