"""Flood benchmark: one hostile client against the per-client limits, and a calm client's pings.

    .venv/bin/python -m benchmarks.flood [--seconds 10] [--workers 4] [--rate 0]
        [--mode reconnect|frames] [--server-core N] [--peer] [--control]

A real server with room tokens on a loopback port. A calm client (its own token subject, its
own room, its own process) measures ping round trips alone: the baseline. Then, for
``--seconds`` in all, flooders sharing one subject reconnect as fast as they can, each time
sending a prompt, two typing changes and a history page request (``--mode frames``: each keeps one
connection and sends typing changes, prompts and pings on it as fast as the socket takes them),
while the calm client measures again; five windows of each, in turns (one of each for
``--mode frames``). It prints what the flood got through and what was refused, and the calm
client's p50 and p99 in both phases. The calm client pings 200 times a second in both.
``--server-core N`` gives the server core N of its own and the clients the others, as a
server and its clients would be on separate machines. ``--peer`` floods, in the same run, a
bare aiohttp server that refuses everyone as cheaply as it can (``benchmarks/peers.py``): the
floor of what a calm client's ping costs while one event loop upgrades and refuses that fast.
``--control`` floods a second rtserver while the calm client pings its own, idle one: what the
flood costs the calm client through the machine alone (the load generator, the cores shared).
Everything is bounded in time and stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import secrets
import socket
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from benchmarks.peers import refusing_app
from benchmarks.procstat import SERVER_CORE_HELP, pin, pin_elsewhere
from benchmarks.remote import Remote
from rtserver.app import create_app
from rtserver.auth.tokens import RoomTokens
from rtserver.config import Limits, ModelSpec, Settings
from rtserver.ops.serving import serve

SECRET = "flood-benchmark-" + "s" * 40
#: The calm client's pace: 200 pings a second, each waiting for its pong.
CALM_EVERY_S = 0.005
#: Windows alone and under the flood, taken in turns.
WINDOWS = 5


async def _ping_times(
    ws: aiohttp.ClientWebSocketResponse, count: int, *, every_s: float = 0.0
) -> list[float]:
    """Round trips of ``count`` pings, one after another, in milliseconds.

    With ``every_s``, a ping starts that long after the one before it started (or when it was
    answered, if later): a calm client, whose own pings are no load on the server.
    """
    times: list[float] = []
    for n in range(count):
        if every_s and times:
            await asyncio.sleep(max(0.0, every_s - times[-1] / 1000))  # pacing of the load
        started = time.perf_counter()
        await ws.send_json({"type": "ping", "id": f"k{n}"})
        while True:
            frame = await ws.receive_json(timeout=10)
            if frame["type"] == "pong" and frame.get("id") == f"k{n}":
                break
        times.append((time.perf_counter() - started) * 1000)
    return times


async def _flood(
    http: aiohttp.ClientSession,
    base: URL,
    token: str,
    until: float,
    tally: Counter[str],
    *,
    rate: float,
) -> None:
    """Reconnect and misbehave until ``until`` (``rate`` rounds a second, 0 flat out)."""
    n = 0
    started = time.perf_counter()
    worker = secrets.token_hex(4)  # prompt ids are idempotent per room: keep them apart
    history = base / "v1/rooms/flood-0/messages"
    while time.perf_counter() < until:
        n += 1
        if rate:
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        room = f"flood-{worker}-{n % 50}"
        async with http.get(history, headers={"Authorization": f"Bearer {token}"}) as response:
            tally[f"history {response.status}"] += 1
        ws = await http.ws_connect(base / f"v1/rooms/{room}/ws")
        try:
            await ws.send_json({"type": "hello", "token": token})
            first = await ws.receive_json(timeout=10)
            if first["type"] != "welcome":
                tally[f"join {first['code']}"] += 1
                continue
            tally["join ok"] += 1
            await ws.send_json(
                {"type": "prompt", "id": f"f{worker}{n}", "text": "x", "models": ["quick"]}
            )
            await ws.send_json({"type": "typing", "active": True, "id": f"t{n}a"})
            await ws.send_json({"type": "typing", "active": False, "id": f"t{n}b"})
            await ws.send_json({"type": "ping", "id": "end"})
            while (frame := await ws.receive_json(timeout=10))["type"] != "pong":
                if frame["type"] == "message":
                    tally["prompt accepted"] += 1
                elif frame["type"] == "error":
                    kind = "prompt" if frame.get("ref", "").startswith("f") else "typing"
                    tally[f"{kind} {frame['code']}"] += 1
        finally:
            await ws.close()


async def _flood_frames(
    http: aiohttp.ClientSession, base: URL, token: str, until: float, tally: Counter[str]
) -> None:
    """One connection sending frames as fast as the socket takes them until ``until``: typing
    changes, prompts and pings; the answers are read (and counted) on the side."""
    worker = secrets.token_hex(4)
    # Closed at ``until`` whatever the server still has to read: a close handshake would wait
    # for the server to get through every frame queued in the socket first.
    ws = await http.ws_connect(
        base / f"v1/rooms/flood-{worker}/ws", timeout=aiohttp.ClientWSTimeout(ws_close=0.5)
    )
    await ws.send_json({"type": "hello", "token": token})
    assert (await ws.receive_json(timeout=10))["type"] == "welcome"

    async def read() -> None:
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame["type"] == "error":
                tally[f"frame {frame['code']}"] += 1
            elif frame["type"] in ("pong", "message"):
                tally[f"frame {frame['type']}"] += 1

    reader = asyncio.create_task(read())
    n = 0
    try:
        async with asyncio.timeout(max(0.0, until - time.perf_counter())):
            while True:
                n += 1
                await ws.send_str('{"type":"typing","active":true}')
                await ws.send_str('{"type":"typing","active":false}')
                await ws.send_str(f'{{"type":"prompt","id":"{worker}-{n}","text":"x"}}')
                await ws.send_str(f'{{"type":"ping","id":"{n}"}}')
    except TimeoutError:
        pass  # the window is over
    finally:
        await ws.close()
        reader.cancel()
        with suppress(asyncio.CancelledError):
            await reader


class Calm:
    """The calm client: a subject and a room of its own, one ping after another."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    async def pings_for(self, seconds: float) -> list[float]:
        """Round trips of pings sent every ``CALM_EVERY_S`` for ``seconds``."""
        until = time.perf_counter() + seconds
        times: list[float] = []
        while time.perf_counter() < until:
            times += await _ping_times(self._ws, 50, every_s=CALM_EVERY_S)
        return times


@asynccontextmanager
async def calm_at(base: str, token: str) -> AsyncIterator[Calm]:
    """The calm client, joined and warmed up; in a process of its own (a :class:`Remote`), so
    that the flooders' work in this one is not counted as the server's."""
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(URL(base) / "v1/rooms/calm/ws")
        await ws.send_json({"type": "hello", "token": token})
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
        await _ping_times(ws, 50)  # warm up
        try:
            yield Calm(ws)
        finally:
            await ws.close()


def _summary(times: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(times, n=100)
    return statistics.median(times), cuts[98]


def _serve(sock: socket.socket, db_path: str, workers: int, core: int | None, peer: str) -> None:
    """The server, in a process of its own so that the clients do not share its event loop."""
    pin(core)
    if peer == "refusing":
        web.run_app(refusing_app(), sock=sock, print=None, handle_signals=True)
        return
    model = ModelSpec(id="quick", provider="demo", tokens_per_s=2000, first_token_s=0.0)
    settings = Settings(
        db_path=db_path, models=(model,), limits=Limits(connections_per_client=workers + 1)
    )
    # Served as `rtserver serve` serves it: each accept passes the set-up gate.
    serve(create_app(settings, env={"RTSERVER_SECRET": SECRET}, own_process=True), [sock])


async def run(
    seconds: float,
    workers: int,
    rate: float,
    mode: str,
    core: int | None,
    peer: str = "rtserver",
    *,
    control: bool = False,
) -> None:
    """One flood; with ``control``, the flood goes to a second server of the same kind while
    the calm client pings its own: what the machine alone does to the calm client."""
    with tempfile.TemporaryDirectory() as tmp:
        processes, bases = [], []
        for n in range(2 if control else 1):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                sock.listen(512)
                bases.append(URL(f"http://127.0.0.1:{sock.getsockname()[1]}"))
                db_path = str(Path(tmp) / f"flood-{n}.db")
                process = multiprocessing.get_context("fork").Process(
                    target=_serve, args=(sock, db_path, workers, core, peer)
                )
                process.start()
            processes.append(process)
        pin_elsewhere(core)
        label = f"{peer} (control: the flood into another {peer})" if control else peer
        try:
            await _measure(bases[0], bases[-1], seconds, workers, rate, mode, label)
        finally:
            for process in processes:
                process.terminate()
                process.join(timeout=15)


async def _wait_until_serving(http: aiohttp.ClientSession, base: URL) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                async with http.get(base / "v1/models") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


async def _measure(
    base: URL, flooded: URL, seconds: float, workers: int, rate: float, mode: str, peer: str
) -> None:
    tokens = RoomTokens(secret=SECRET)
    calm_token = tokens.issue(sub="calm", rooms=["calm"], ttl_s=3600)
    flood_token = tokens.issue(sub="flooder", rooms=["*"], ttl_s=3600)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await _wait_until_serving(http, base)
        await _wait_until_serving(http, flooded)
        tally: Counter[str] = Counter()
        baseline: list[float] = []
        loaded: list[float] = []
        # A frame flood outlives its window (the server works through what its sockets hold
        # after the flooders have gone), so it gets one window, after the baseline.
        windows = 1 if mode == "frames" else WINDOWS
        window = seconds / windows
        async with Remote(calm_at, str(base), calm_token) as calm:
            # Alone and under the flood in turns, so that both phases see the same machine
            # (on a shared one, other work comes and goes over seconds).
            for _ in range(windows):
                baseline += await calm.call("pings_for", window)
                until = time.perf_counter() + window
                flooders = [
                    asyncio.create_task(
                        _flood_frames(http, flooded, flood_token, until, tally)
                        if mode == "frames"
                        else _flood(http, flooded, flood_token, until, tally, rate=rate)
                    )
                    for _ in range(workers)
                ]
                loaded += await calm.call("pings_for", window)
                await asyncio.gather(*flooders)
    base_p50, base_p99 = _summary(baseline)
    load_p50, load_p99 = _summary(loaded)
    attempts = sum(tally.values())
    pace = f"{rate:g} reconnects/s each" if rate else "flat out"
    if mode == "frames":
        pace = "frames flat out on one connection each"
    print(
        f"{peer}: flood for {seconds:.0f} s, {workers} workers ({pace}) sharing one token subject"
    )
    print(f"({attempts / seconds:.0f} outcomes a second):")
    for outcome, count in sorted(tally.items()):
        print(f"  {outcome:<28} {count:>7}")
    print(f"calm client's pings: {len(baseline)} alone, {len(loaded)} under the flood")
    print(f"calm client's ping, alone:       p50 {base_p50:6.2f} ms  p99 {base_p99:6.2f} ms")
    print(f"calm client's ping, under flood: p50 {load_p50:6.2f} ms  p99 {load_p99:6.2f} ms")
    print(f"p99 under flood / alone: {load_p99 / base_p99:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="reconnects a second per worker (0: flat out)"
    )
    parser.add_argument(
        "--mode",
        choices=("reconnect", "frames"),
        default="reconnect",
        help="reconnect and misbehave each round, or send frames flat out on one connection",
    )
    parser.add_argument("--server-core", type=int, help=SERVER_CORE_HELP)
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also flood a bare aiohttp server that only refuses (the floor), in the same run",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="also flood a second rtserver while the calm client pings the first (the "
        "machine's share), in the same run",
    )
    args = parser.parse_args()
    workers = max(1, min(args.workers, 64))
    seconds, rate = min(args.seconds, 120.0), max(0.0, args.rate)
    asyncio.run(run(seconds, workers, rate, args.mode, args.server_core))
    if args.control:
        asyncio.run(run(seconds, workers, rate, args.mode, args.server_core, control=True))
    if args.peer:
        asyncio.run(run(seconds, workers, rate, args.mode, args.server_core, "refusing"))


if __name__ == "__main__":
    main()
