"""Fan-out benchmark: the cost of the token path, in process and over real loopback sockets.

    make bench            # or: .venv/bin/python -m benchmarks.fanout

Part 1 publishes token events into a room with N participants (half JSON, half MessagePack)
whose outboxes are drained, and reports the cost per event and per delivered frame. Part 2 runs
a fast simulated model in a real server with K WebSocket clients on loopback and reports the
frames delivered per second and how long each client took to see the whole stream.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.app import create_app
from rtserver.config import Limits, ModelSpec, Settings
from rtserver.protocol.codec import JSON, MSGPACK
from rtserver.protocol.frames import TokenEvent
from rtserver.providers.demo import DemoProvider
from rtserver.room.room import Room
from rtserver.turns.turns import room_limits

EVENTS = 20_000


async def publish_cost(participants: int) -> tuple[float, float]:
    """Microseconds per published event, and per delivered frame."""
    room = Room("bench", limits=room_limits(Limits(outbox_bytes=1 << 30)))
    members = [
        room.join(name=f"p{n}", since=None, codec=JSON if n % 2 else MSGPACK)
        for n in range(participants)
    ]
    for member in members:
        while member.outbox.queued_bytes:
            await member.outbox.get()
    started = time.perf_counter()
    for _ in range(EVENTS):
        room.publish(TokenEvent(seq=0, stream="s_bench", text=" token"))
    elapsed = time.perf_counter() - started
    return elapsed / EVENTS * 1e6, elapsed / (EVENTS * participants) * 1e6


async def socket_fanout(clients: int, db: Path) -> tuple[float, float, float]:
    """Frames per second delivered to all clients, and p50/max seconds to see a whole stream."""
    model = ModelSpec(id="firehose", provider="demo", tokens_per_s=2000, first_token_s=0.0)
    settings = Settings(db_path=str(db), models=(model,))
    server = TestServer(
        create_app(settings, providers={"firehose": DemoProvider(tokens_per_s=2000)}),
        host="127.0.0.1",
    )
    await server.start_server()
    url = server.make_url("/v1/rooms/bench/ws")
    # No connection limit: every client holds its own socket for the whole run.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await http.ws_connect(url, protocols=("rt.v1.json",)) for _ in range(clients)]
        for n, ws in enumerate(sockets):
            await ws.send_json({"type": "hello", "name": f"c{n}"})
        started = time.perf_counter()
        await sockets[0].send_json({"type": "prompt", "id": f"b{clients}", "text": "go fast"})
        finished = await asyncio.gather(*(_until_end(ws) for ws in sockets))
        elapsed = time.perf_counter() - started
        frames = sum(count for count, _ in finished)
        for ws in sockets:
            await ws.close()
    await server.close()
    durations = [t - started for _, t in finished]
    return frames / elapsed, statistics.median(durations), max(durations)


async def _until_end(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, float]:
    count = 0
    async for msg in ws:
        count += 1
        if '"stream_end"' in msg.data:
            return count, time.perf_counter()
    raise ConnectionError("socket closed before stream_end")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"in-process publish, {EVENTS} token events")
        print(f"{'participants':>12} {'us/event':>10} {'us/frame':>10}")
        for participants in (1, 10, 100, 1000):
            per_event, per_frame = await publish_cost(participants)
            print(f"{participants:>12} {per_event:>10.2f} {per_frame:>10.3f}")
        print("\nloopback WebSockets, one reply of about 150 tokens at 2000 tokens/s")
        print(f"{'clients':>12} {'frames/s':>10} {'p50 s':>8} {'max s':>8}")
        for clients in (1, 10, 50, 200):
            rate, p50, worst = await socket_fanout(clients, Path(tmp) / f"ws{clients}.db")
            print(f"{clients:>12} {rate:>10.0f} {p50:>8.3f} {worst:>8.3f}")


if __name__ == "__main__":
    asyncio.run(main())
