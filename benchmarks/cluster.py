"""Cross-node fan-out: what the Redis bus costs against one node, as ratios.

    make bench-cluster        # or: .venv/bin/python -m benchmarks.cluster [--redis URL]

Part 2, whole servers: one fast reply watched by K WebSocket clients on loopback, served by one
node (the in-process bus), then by two nodes on Redis with the clients split over them. Both
on the PostgreSQL of ``RTSERVER_TEST_POSTGRES`` (a schema of their own, dropped at the end), in
this one process: the figures are CPU microseconds per delivered frame (servers and clients),
costs on the same CPU, not the capacity of two machines.

Part 1, the bus alone: a burst of token events published into one room and delivered to every
node's copy, through the in-process bus (one node: the baseline) and through Redis to 1, 2 and 3
nodes. It reports the CPU time this process spends per event (every node's share, publishing
and delivering; Redis's own is not counted), then the delay from publish to delivery on the
last node at one event a millisecond. CPU time, not wall time: on a shared machine it is what
another process's load disturbs least. Needs the Redis of ``--redis`` (default
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
    """CPU microseconds of this process (every node's) per event, and the median
    publish-to-delivery ms on the last node."""
    feeds = [CountingFeed(events) for _ in buses]
    links: list[RoomLink] = [await b.attach(room, f) for b, f in zip(buses, feeds, strict=True)]
    sent: list[float] = []
    cpu = time.process_time()
    for n in range(events):
        sent.append(time.perf_counter())
        links[0].publish(TokenEvent(seq=0, stream="s_bench", text=" token"))
        if n % 64 == 63:
            await asyncio.sleep(0)  # a generation yields between tokens
    async with asyncio.timeout(120):
        await asyncio.gather(*(f.done.wait() for f in feeds))
    cpu_us = (time.process_time() - cpu) / events * 1e6
    far = feeds[-1]
    latency = statistics.median((a - s) * 1000 for a, s in zip(far.arrived, sent, strict=True))
    for link in links:
        await link.close()
    return cpu_us, latency


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


async def bus_part(url: str, events: int, reps: int) -> None:
    prefix = f"rt-bench-{uuid.uuid4().hex[:8]}"
    opened: list[RedisBus] = []
    try:
        print(f"{'':<16} {'CPU us/event':>13} {'cost':>7} {'paced median':>13} {'p99':>9}")
        base = statistics.median([(await burst([LocalBus()], events, f"l{n}"))[0]
                                  for n in range(reps)])  # fmt: skip
        print(f"{'in-process bus':<16} {base:>13.2f} {1.0:>6.1f}x")
        for nodes in (1, 2, 3):
            buses = [await RedisBus.open(url, prefix=prefix) for _ in range(nodes)]
            opened += buses
            await burst(buses, events // 10, f"w{nodes}")  # warm: scripts loaded, pools filled
            costs = [(await burst(buses, events, f"r{nodes}-{n}"))[0] for n in range(reps)]
            median, p99 = await paced(buses, PACED_EVENTS, f"p{nodes}")
            cost = statistics.median(costs)
            print(
                f"{f'redis, {nodes} node' + ('s' if nodes > 1 else ''):<16} {cost:>13.2f}"
                f" {cost / base:>6.1f}x {median:>10.2f} ms {p99:>6.2f} ms"
            )
    finally:
        for bus in opened:
            await bus.close()
        await _delete_prefix(url, prefix)


async def _delete_prefix(url: str, prefix: str) -> None:
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


async def watch_replies(
    nodes: Sequence[TestServer], clients: int, room: str, turns: int
) -> tuple[float, float]:
    """CPU microseconds of this process (servers and clients) per frame delivered, and the
    median seconds for a client to see one whole reply."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = []
        for n in range(clients):
            url = nodes[n % len(nodes)].make_url(f"/v1/rooms/{room}/ws")
            ws = await http.ws_connect(url, protocols=("rt.v1.json",))
            await ws.send_json({"type": "hello", "name": f"c{n}"})
            await ws.receive()  # the welcome
            sockets.append(ws)
        frames, durations = 0, []
        cpu = time.process_time()
        for turn in range(turns):
            started = time.perf_counter()
            prompt = {"type": "prompt", "id": f"p-{room}-{turn}", "text": "go fast"}
            await sockets[turn % len(sockets)].send_json(prompt)
            finished = await asyncio.gather(*(_until_end(ws) for ws in sockets))
            frames += sum(count for count, _ in finished)
            durations += [t - started for _, t in finished]
        cpu_us = (time.process_time() - cpu) / frames * 1e6
        for ws in sockets:
            await ws.close()
    return cpu_us, statistics.median(durations)


async def _until_end(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, float]:
    count = 0
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        count += 1
        if '"stream_end"' in msg.data:
            return count, time.perf_counter()
    raise ConnectionError("socket closed before stream_end")


async def server_part(url: str, postgres: str, clients_list: Sequence[int], turns: int) -> None:
    schema = f"rt_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"rt-bench-{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres)
    await admin.execute(f"CREATE SCHEMA {schema}")
    db = f"{postgres}?search_path={schema}"
    try:
        print(f"{'clients':>8} {'one node':>20} {'two nodes on Redis':>24} {'cost':>7}")
        for clients in clients_list:
            single = await serve(db, None, prefix)
            try:
                one = await watch_replies([single], clients, f"one{clients}", turns)
            finally:
                await single.close()
            pair = [await serve(db, url, prefix) for _ in range(2)]
            try:
                two = await watch_replies(pair, clients, f"two{clients}", turns)
            finally:
                for node in pair:
                    await node.close()
            print(
                f"{clients:>8} {one[0]:>7.1f} us/fr {one[1]:>6.3f} s"
                f" {two[0]:>11.1f} us/fr {two[1]:>6.3f} s {two[0] / one[0]:>6.2f}x"
            )
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
        await _delete_prefix(url, prefix)


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
    parser.add_argument("--reps", type=int, default=3, help="part 1's bursts per bus (median)")
    parser.add_argument("--turns", type=int, default=5, help="part 2's replies per run")
    args = parser.parse_args()
    print(f"part 1: the bus alone, bursts of {args.events} token events into one room")
    asyncio.run(bus_part(args.redis, args.events, args.reps))
    clients = [int(n) for n in args.clients.split(",")]
    print(
        f"\npart 2: {args.turns} replies of about 150 tokens at 2000 tokens/s, one frame per"
        " token, clients split over the nodes"
    )
    asyncio.run(server_part(args.redis, args.postgres, clients, args.turns))


if __name__ == "__main__":
    main()
