"""Join storm: thousands of WebSockets join one room at once, then all watch one stream.

    .venv/bin/python -m benchmarks.joinstorm [--participants 5000] [--concurrency 100]
        [--server-core N]

The server runs in a child process (on a socket bound to port 0 here), so that its event loop
is not the load generator's. Meanwhile a bystander in another room, in a third process so that
the load generator's own pauses are not counted, pings and runs a stream of its own: the
figures are its ping round trips before and during the storm, how long the storm took, and
how long the storm room's stream took to reach everyone. Every delivered frame is
checked (each participant gets every room event once, in seq order, and the whole reply), so a
fast wrong result cannot pass. ``tests/integration/test_join_storm.py`` drives the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import resource
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import msgspec
from aiohttp import web
from yarl import URL

from benchmarks.procstat import SERVER_CORE_HELP, pin, pin_elsewhere
from benchmarks.remote import Remote
from rtserver.app import create_app
from rtserver.config import Limits, ModelSpec, Settings
from rtserver.ops.serving import serve

#: A demo model quick enough that the stream, not its pacing, is what is measured.
STORM_MODEL = ModelSpec(
    id="storm", provider="demo", tokens_per_s=300, first_token_s=0.0, default=True
)
#: Tokens of the storm room's reply (the demo model's ``max_tokens``).
REPLY_TOKENS = 40
_decode = msgspec.json.Decoder().decode
#: The bystander's pace: a ping 5 ms after the last one's pong, a few hundred in a storm.
PING_EVERY_S = 0.005


def storm_settings(db_path: str) -> Settings:
    return Settings(db_path=db_path, models=(STORM_MODEL,), limits=Limits())


def raise_open_files(needed: int) -> int:
    """Raise the soft limit of open files to at least ``needed`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


@dataclass(eq=False)
class Participant:
    """One storm connection: what it was welcomed with and every room event it received."""

    ws: aiohttp.ClientWebSocketResponse
    welcome: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    closed_with: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        """Record room events and the latest presence count until the socket closes."""
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = _decode(msg.data)
            if "seq" in frame:
                self.events.append(frame)
            elif frame["type"] == "presence_diff":
                self.count = frame["count"]
            self.changed.set()
        self.closed_with = self.ws.close_code
        self.changed.set()

    async def wait(self, condition: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not condition(self):
                if self.closed_with is not None:
                    raise ConnectionError(f"closed with {self.closed_with}")
                self.changed.clear()
                await self.changed.wait()

    def ended(self) -> bool:
        return any(e["type"] == "stream_end" for e in self.events)


async def join(http: aiohttp.ClientSession, url: URL, name: str) -> Participant:
    ws = await http.ws_connect(url, protocols=("rt.v1.json",), max_msg_size=0)
    await ws.send_str(msgspec.json.encode({"type": "hello", "name": name}).decode())
    welcome = _decode((await ws.receive(timeout=60)).data)
    assert welcome["type"] == "welcome", welcome
    participant = Participant(ws=ws, welcome=welcome, count=welcome["participant_count"])
    return participant


async def storm(
    http: aiohttp.ClientSession, url: URL, participants: int, *, concurrency: int
) -> tuple[list[Participant], list[asyncio.Task[None]]]:
    """Join ``participants`` at once, ``concurrency`` handshakes in flight (the listen backlog)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> Participant:
        async with gate:
            return await join(http, url, f"storm-{n}")

    joined = await asyncio.gather(*(one(n) for n in range(participants)))
    readers = [asyncio.create_task(p.read()) for p in joined]
    return list(joined), readers


@dataclass
class Bystander:
    """A participant of another room that pings all along; every ping must be answered."""

    ws: aiohttp.ClientWebSocketResponse
    round_trips: list[float] = field(default_factory=list)
    stream_ended: bool = False
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _pinging: asyncio.Task[None] | None = None
    _streams: int = 0

    @classmethod
    async def enter(cls, http: aiohttp.ClientSession, base: URL) -> Bystander:
        bystander = cls(await http.ws_connect(base / "v1/rooms/elsewhere/ws"))
        await bystander.ws.send_str('{"type":"hello","name":"bystander"}')
        assert _decode((await bystander.ws.receive(timeout=30)).data)["type"] == "welcome"
        return bystander

    async def baseline(self, seconds: float) -> list[float]:
        """Ping alone for ``seconds`` (once at least): the round trips to compare with."""
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        self.round_trips = []
        await self.ping_until(stop, every_s=PING_EVERY_S)
        measured, self.round_trips = self.round_trips, []
        return measured

    async def start(self) -> None:
        """Start a stream of this room's own, then ping on until :meth:`stop`."""
        self._streams += 1
        self._stop.clear()
        self.stream_ended = False
        self.round_trips = []
        prompt = {"type": "prompt", "id": f"by-{self._streams}", "text": "meanwhile"}
        await self.ws.send_str(msgspec.json.encode(prompt).decode())
        self._pinging = asyncio.create_task(self.ping_until(self._stop, every_s=PING_EVERY_S))

    async def stop(self) -> list[float]:
        """Stop pinging, wait for this room's stream to end; the round trips since start."""
        assert self._pinging is not None, "start() first"
        self._stop.set()
        await self._pinging
        await self.finish_stream(timeout=60)
        return self.round_trips

    async def ping_until(self, stop: asyncio.Event, *, every_s: float) -> None:
        """Ping, once at least, until ``stop``; each ping waits for its pong (or fails)."""
        n = 0
        while n == 0 or not stop.is_set():
            n += 1
            sent = time.perf_counter()
            await self.ws.send_str(f'{{"type":"ping","id":"b{n}"}}')
            while True:
                frame = _decode((await self.ws.receive(timeout=30)).data)
                if frame["type"] == "stream_end":
                    self.stream_ended = True
                if frame["type"] == "pong":
                    assert frame["id"] == f"b{n}", frame
                    break
            self.round_trips.append(time.perf_counter() - sent)
            await asyncio.sleep(every_s)  # pacing of the load, not a wait for a condition

    async def finish_stream(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.stream_ended:
                frame = _decode((await self.ws.receive()).data)
                self.stream_ended = frame["type"] == "stream_end"


class Pinger(Protocol):
    """What run_storm needs of the bystander, wherever it runs."""

    async def baseline(self, seconds: float) -> list[float]: ...
    async def start(self) -> None: ...
    async def stop(self) -> list[float]: ...


@asynccontextmanager
async def bystander_at(base: str) -> AsyncIterator[Bystander]:
    """A bystander with a session of its own (for a :class:`Remote`)."""
    async with aiohttp.ClientSession() as http:
        bystander = await Bystander.enter(http, URL(base))
        try:
            yield bystander
        finally:
            await bystander.ws.close()


class RemoteBystander:
    """A :class:`Bystander` in a process of its own.

    The load generator's event loop holds thousands of client sockets, and its own pauses
    (a full garbage collection over them takes hundreds of milliseconds) would be counted as
    the server's if the bystander shared that loop.
    """

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    async def baseline(self, seconds: float) -> list[float]:
        return list(await self._remote.call("baseline", seconds))

    async def start(self) -> None:
        await self._remote.call("start")

    async def stop(self) -> list[float]:
        return list(await self._remote.call("stop"))


def check_delivery(participants: Sequence[Participant], reply: str) -> None:
    """Every participant got each room event once, in seq order, and the whole reply."""
    for p in participants:
        seqs = [e["seq"] for e in p.events]
        start = p.welcome["seq"] + 1
        assert seqs == list(range(start, start + len(seqs))), f"gap or repeat: {seqs[:8]}..."
        kinds = [e["type"] for e in p.events]
        assert kinds[:2] == ["message", "stream_start"], kinds
        assert kinds[-1] == "stream_end", kinds
        text = "".join(e["text"] for e in p.events if e["type"] == "token")
        assert text == reply, "a token was lost"
        assert p.events[-1]["reason"] == "length", "the reply ran to its max_tokens"


@dataclass
class StormReport:
    participants: int
    join_s: float
    stream_s: float
    token_frames: int
    idle_round_trips: list[float]
    storm_round_trips: list[float]


async def run_storm(
    base: URL,
    participants: int,
    *,
    concurrency: int,
    baseline_s: float = 2.0,
    bystander: Pinger | None = None,
) -> StormReport:
    """The whole scenario against a server at ``base``; raises if anything was lost.

    ``baseline_s`` is how long the bystander pings before the storm, for comparison; it runs
    in this process unless ``bystander`` is given.
    """
    raise_open_files(participants * 2 + 256)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        local = None
        if bystander is None:
            bystander = local = await Bystander.enter(http, base)
        idle_round_trips = await bystander.baseline(baseline_s)
        await bystander.start()
        started = time.perf_counter()
        crowd, readers = await storm(
            http, base / "v1/rooms/storm/ws", participants, concurrency=concurrency
        )
        join_s = time.perf_counter() - started
        storm_round_trips = await bystander.stop()
        try:
            # Everyone hears of everyone: the last presence count is the whole crowd.
            for p in crowd:
                await p.wait(lambda q: q.count == participants, timeout=60)
            stream_started = time.perf_counter()
            prompt = {
                "type": "prompt",
                "id": "storm-1",
                "text": "a crowd at once",
                "params": {"max_tokens": REPLY_TOKENS},
            }
            await crowd[0].ws.send_str(msgspec.json.encode(prompt).decode())
            for p in crowd:
                await p.wait(Participant.ended, timeout=120)
            stream_s = time.perf_counter() - stream_started
            reply = await _stored_reply(http, base)
            check_delivery(crowd, reply)
            tokens = sum(1 for e in crowd[0].events if e["type"] == "token")
        finally:
            await asyncio.gather(*(p.ws.close() for p in crowd), return_exceptions=True)
            for reader in readers:
                reader.cancel()
            if local is not None:
                await local.ws.close()
    return StormReport(
        participants=participants,
        join_s=join_s,
        stream_s=stream_s,
        token_frames=tokens * participants,
        idle_round_trips=idle_round_trips,
        storm_round_trips=storm_round_trips,
    )


async def _stored_reply(http: aiohttp.ClientSession, base: URL) -> str:
    async with http.get(base / "v1/rooms/storm/messages") as response:
        messages = (await response.json())["messages"]
    [reply] = [m for m in messages if m["role"] == "assistant"]
    assert reply["status"] == "complete", reply
    return str(reply["text"])


# --- the benchmark: the server in its own process -------------------------------------------


def _serve(
    sock: socket.socket,
    db_path: str,
    participants: int,
    core: int | None,
    accept_batch: int | None,
) -> None:
    pin(core)
    raise_open_files(participants * 2 + 256)
    app = create_app(storm_settings(db_path), own_process=True)
    if accept_batch is None:
        serve(app, [sock])  # as `rtserver serve` serves: each accept passes the set-up gate
    else:
        asyncio.run(_serve_ungated(app, sock, accept_batch))


async def _serve_ungated(app: web.Application, sock: socket.socket, accept_batch: int) -> None:
    """asyncio's own accepting, for comparison: up to ``accept_batch`` per loop callback."""
    runner = web.AppRunner(app)
    await runner.setup()
    # asyncio accepts up to the backlog in one callback and listens with it too: the queue is
    # widened again once the site has started.
    await web.SockSite(runner, sock, backlog=accept_batch).start()
    sock.listen(1024)
    await asyncio.Event().wait()


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


def _print(report: StormReport, control: StormReport | None) -> None:
    print(f"{report.participants} participants joined in {report.join_s:.1f} s")
    print(
        f"storm room stream: {report.token_frames} token frames checked, "
        f"all delivered in {report.stream_s:.2f} s"
    )
    rows = [("before the storm", report.idle_round_trips)]
    if control is not None:
        rows[:0] = [("before the control storm", control.idle_round_trips)]
        rows.append(("during a storm into another server", control.storm_round_trips))
    rows.append(("during the storm", report.storm_round_trips))
    for label, values in rows:
        print(
            f"other room's ping round trip {label} ({len(values)} pings): "
            f"p50 {_ms(values, 0.5)} ms, p95 {_ms(values, 0.95)} ms, "
            f"p99 {_ms(values, 0.99)} ms, max {max(values) * 1000:.1f} ms, "
            f"mean {statistics.fmean(values) * 1000:.1f} ms"
        )


#: Seconds between the control storm's end and the baseline of the storm that follows.
CONTROL_SETTLE_S = 3.0
#: Starts a server process listening on the socket; returns what stops it.
Launcher = Callable[[socket.socket], Callable[[], None]]


async def _measure(
    home: URL, participants: int, concurrency: int, control: Launcher | None
) -> tuple[StormReport, StormReport | None]:
    async with Remote(bystander_at, str(home)) as remote:
        bystander = RemoteBystander(remote)
        before = None
        if control is not None:
            before = await _control_storm(control, participants, concurrency, bystander)
        report = await run_storm(home, participants, concurrency=concurrency, bystander=bystander)
        return report, before


async def _control_storm(
    launch: Launcher, participants: int, concurrency: int, bystander: Pinger
) -> StormReport:
    """The same storm into a server of its own, which is then stopped.

    What the bystander sees meanwhile is what the machine alone (the load generator's work,
    the cores shared) does to its pings: the floor for the storm into its own server.
    """
    sock, base = _listening()
    stop = launch(sock)
    try:
        report = await run_storm(base, participants, concurrency=concurrency, bystander=bystander)
    finally:
        stop()
        sock.close()
    gc.collect()  # the crowd's client objects, before the next baseline
    await asyncio.sleep(CONTROL_SETTLE_S)  # the stopped server's exit, then the next baseline
    return report


def _listening() -> tuple[socket.socket, URL]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock, URL(f"http://127.0.0.1:{sock.getsockname()[1]}/")


def _launcher(tmp: str, args: argparse.Namespace) -> Launcher:
    context = multiprocessing.get_context("fork")
    made = 0

    def launch(sock: socket.socket) -> Callable[[], None]:
        nonlocal made
        made += 1
        db_path = str(Path(tmp) / f"storm-{made}.db")
        server = context.Process(
            target=_serve,
            args=(sock, db_path, args.participants, args.server_core, args.accept_batch),
            daemon=True,
        )
        server.start()

        def stop() -> None:
            server.terminate()
            server.join(15)

        return stop

    return launch


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--server-core", type=int, help=SERVER_CORE_HELP)
    parser.add_argument(
        "--accept-batch",
        type=int,
        help="accept as asyncio does, up to N connections per loop callback (aiohttp's "
        "default is 128), instead of one set-up share each as `rtserver serve` does",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="first run the same storm into a second server while the bystander pings its "
        "own: the machine's share of what the bystander sees",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        launch = _launcher(tmp, args)
        sock, home = _listening()
        stop = launch(sock)
        pin_elsewhere(args.server_core)
        try:
            report, control = asyncio.run(
                _measure(
                    home, args.participants, args.concurrency, launch if args.control else None
                )
            )
        finally:
            stop()
            sock.close()
    _print(report, control)


if __name__ == "__main__":
    main()
