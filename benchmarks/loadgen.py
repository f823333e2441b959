"""The load generator: N participants in one process, every frame checked.

    python -m benchmarks.loadgen '<Spec as JSON>'

Run by :mod:`benchmarks.bench`, pinned to the core the server does not use. It connects the
participants (lean sockets from :mod:`benchmarks.wire`), waits for the server to go idle, then
has participant 0 start ``turns`` streams one after another and measures the server's CPU time
over the run from /proc. Every frame goes through :mod:`benchmarks.checks`; the result (one JSON
line on stdout) carries figures only if every connection got every stream whole.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import time
from typing import Literal

import aiohttp
import msgspec

from benchmarks import procstat
from benchmarks.checks import ConnectionLog, Expected, FrameCheckError, percentile, verify_run
from benchmarks.dialects import DIALECTS, Incoming
from benchmarks.peers import ROOM, token_text
from benchmarks.wire import WireClient

Mode = Literal["stream", "idle", "first_token"]
ServerKind = Literal["rtserver", "bare", "socketio"]


class Spec(msgspec.Struct, kw_only=True):
    """One run, as the orchestrator asks for it."""

    kind: ServerKind
    port: int
    server_pid: int
    mode: Mode
    participants: int
    turns: int = 1
    tokens: int = 100
    #: The peers' pace in tokens a second (0: as fast as possible); rtserver's is in its config.
    rate: float = 0.0
    #: The server may put several tokens in one frame (token_flush_ms).
    coalesced: bool = False
    join_timeout_s: float = 60.0
    run_timeout_s: float = 60.0
    connect_concurrency: int = 100
    core: int | None = None


class Result(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    error: str | None = None
    figures: dict[str, float] = msgspec.field(default_factory=dict)


class Participant:
    """One connection and its checked log."""

    def __init__(self, index: int, run: Run) -> None:
        self.index = index
        self.run = run
        self.dialect = run.dialect
        self.client = WireClient(
            self.dialect.path,
            f"127.0.0.1:{run.spec.port}",
            protocol=self.dialect.protocol,
            on_message=self.on_message,
        )
        self.log = ConnectionLog(f"participant {index}", next_seq=-1)
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ends = 0
        self.turn_tokens = 0

    def on_message(self, payload: bytes, now_us: int) -> None:
        try:
            frame = self.dialect.decode(payload, self.client)
            if frame is not None:
                self._handle(frame, now_us, payload)
        except Exception as exc:
            self.run.fail(exc)

    def _handle(self, frame: Incoming, now_us: int, payload: bytes) -> None:
        kind = frame.type
        if kind in ("token", "stream_end") and (frame.seq is None or frame.stream is None):
            raise FrameCheckError(f"participant {self.index}: {kind} without seq or stream")
        if kind == "token":
            assert frame.seq is not None
            assert frame.stream is not None
            self.log.token(frame.seq, frame.stream, frame.text or "", frame.emitted_us, now_us)
            if self.turn_tokens == 0 and self.index == 0:
                self.run.first_token(frame.emitted_us, now_us)
            self.turn_tokens += 1
        elif kind == "stream_end":
            assert frame.seq is not None
            assert frame.stream is not None
            tokens = frame.usage.output_tokens if frame.usage else 0
            self.log.stream_end(frame.seq, frame.stream, tokens)
            self.turn_tokens = 0
            self.ends += 1
            self.run.stream_ended(self)
        elif kind == "welcome":
            if frame.seq is None:
                raise FrameCheckError(f"participant {self.index}: welcome without seq")
            self.log = ConnectionLog(f"participant {self.index}", next_seq=frame.seq + 1)
            self.welcomed.set_result(None)
        elif kind == "error":
            raise FrameCheckError(f"participant {self.index} got {payload[:300]!r}")
        elif frame.seq is not None:
            self.log.room_event(frame.seq)


class Run:
    """The participants of one run and the turns participant 0 starts."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.dialect = DIALECTS[spec.kind]
        self.participants: list[Participant] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.finished = 0
        self.turn = 0
        self.sent_us: list[int] = []
        self.first_emitted_us: list[int | None] = []
        self.first_arrived_us: list[int] = []
        self.closing = False

    def received_mb(self) -> float:
        return sum(p.client.received_bytes for p in self.participants) / 1e6

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def start_turn(self) -> None:
        self.turn += 1
        self.sent_us.append(time.time_ns() // 1000)
        trigger = self.dialect.trigger(self.turn, self.spec.tokens, self.spec.rate)
        self.participants[0].client.send_text(trigger)

    def first_token(self, emitted_us: int | None, now_us: int) -> None:
        self.first_emitted_us.append(emitted_us)
        self.first_arrived_us.append(now_us)

    def stream_ended(self, participant: Participant) -> None:
        if participant.index == 0 and self.turn < self.spec.turns:
            self.start_turn()
        if participant.ends == self.spec.turns:
            self.finished += 1
            if self.finished == len(self.participants) and not self.done.done():
                self.done.set_result(None)

    def watch_close(self, participant: Participant) -> None:
        def closed(future: asyncio.Future[int | None]) -> None:
            if not self.closing:
                code = None if future.cancelled() else future.result()
                self.fail(FrameCheckError(f"participant {participant.index} closed ({code})"))

        participant.client.closed.add_done_callback(closed)


async def connect(run: Run, count: int) -> None:
    """Connect ``count`` more participants; each is in once its welcome arrived."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(run.spec.connect_concurrency)

    async def one(participant: Participant) -> None:
        async with gate:
            await loop.create_connection(lambda: participant.client, "127.0.0.1", run.spec.port)
            await participant.client.opened
            run.dialect.opened(participant.client, participant.index)
            await participant.welcomed

    start = len(run.participants)
    fresh = [Participant(start + n, run) for n in range(count)]
    run.participants.extend(fresh)
    for participant in fresh:
        run.watch_close(participant)
    try:
        async with asyncio.timeout(run.spec.join_timeout_s):
            await asyncio.gather(*(one(p) for p in fresh))
    except TimeoutError:
        joined = sum(1 for p in run.participants if p.welcomed.done())
        raise FrameCheckError(
            f"joins did not complete in {run.spec.join_timeout_s:.0f} s: "
            f"{joined} of {len(run.participants)} welcomed, {run.received_mb():,.0f} MB received"
        ) from None
    if run.done.done():
        run.done.result()  # a participant was closed while the others joined


async def expected_streams(run: Run) -> dict[str, Expected]:
    """What the source really sent: rtserver's stored replies, or the peers' known tokens."""
    spec = run.spec
    if spec.kind != "rtserver":
        return {
            f"s{turn}": Expected(
                text="".join(token_text(turn, n) for n in range(spec.tokens)), tokens=spec.tokens
            )
            for turn in range(1, spec.turns + 1)
        }
    url = f"http://127.0.0.1:{spec.port}/v1/rooms/{ROOM}/messages?limit=100"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        body = await response.json()
    replies = [m for m in body["messages"] if m["role"] == "assistant"]
    if len(replies) != spec.turns:
        raise FrameCheckError(f"the server stored {len(replies)} replies for {spec.turns} turns")
    return {
        m["stream"]: Expected(text=m["text"], tokens=m["usage"]["output_tokens"]) for m in replies
    }


async def stream_run(run: Run) -> dict[str, float]:
    """Participant 0 starts each turn; measured until every participant saw every stream end."""
    spec = run.spec
    await connect(run, spec.participants)
    if not await procstat.wait_idle(spec.server_pid):
        raise FrameCheckError("the server did not go idle after the joins")
    cpu_before = procstat.cpu_ns(spec.server_pid)
    own_before = time.process_time()
    started = time.perf_counter()
    run.start_turn()
    try:
        await asyncio.wait_for(asyncio.shield(run.done), spec.run_timeout_s)
    except TimeoutError:
        frames = sum(len(p.log.arrivals) for p in run.participants)
        raise FrameCheckError(
            f"the run did not finish in {spec.run_timeout_s:.0f} s: "
            f"{run.finished} of {len(run.participants)} participants saw every stream end, "
            f"{frames:,} of {len(run.participants) * spec.turns * spec.tokens:,} token frames came"
        ) from None
    wall = time.perf_counter() - started
    cpu_ms = (procstat.cpu_ns(spec.server_pid) - cpu_before) / 1e6
    own = time.process_time() - own_before
    checked = verify_run(
        [p.log for p in run.participants],
        await expected_streams(run),
        frame_per_token=not spec.coalesced,
    )
    figures = {
        "server_cpu_ms": cpu_ms,
        "cpu_ms_per_1000_frames": cpu_ms / checked.token_frames * 1000,
        "tokens_per_cpu_s": checked.tokens / (cpu_ms / 1000),
        "token_frames": checked.token_frames,
        "tokens": checked.tokens,
        "wall_s": wall,
        "loadgen_busy": own / wall,
        "latency_p50_ms": percentile(checked.latencies_us, 0.5) / 1000,
        "latency_p99_ms": percentile(checked.latencies_us, 0.99) / 1000,
        "skew_p50_ms": percentile(checked.skews_us, 0.5) / 1000,
        "skew_p99_ms": percentile(checked.skews_us, 0.99) / 1000,
    }
    if spec.mode == "first_token":
        figures.update(first_token_figures(run))
    return figures


def first_token_figures(run: Run) -> dict[str, float]:
    """Prompt to first token as participant 0 saw it, and prompt to the provider's emit."""
    total = [(a - s) / 1000 for s, a in zip(run.sent_us, run.first_arrived_us, strict=True)]
    to_emit = [
        (e - s) / 1000
        for s, e in zip(run.sent_us, run.first_emitted_us, strict=True)
        if e is not None
    ]
    figures = {"first_token_ms": statistics.median(total)}
    if to_emit:
        figures["prompt_to_emit_ms"] = statistics.median(to_emit)
    return figures


async def idle_run(run: Run) -> dict[str, float]:
    """Resident memory per idle participant: the growth from one participant to 1 + N."""
    pid = run.spec.server_pid
    await connect(run, 1)
    await procstat.wait_idle(pid)
    before = procstat.rss_bytes(pid)
    await connect(run, run.spec.participants)
    if not await procstat.wait_idle(pid):
        raise FrameCheckError("the server did not go idle after the joins")
    grown = procstat.rss_bytes(pid) - before
    return {"kb_per_connection": grown / run.spec.participants / 1024}


async def execute(spec: Spec) -> Result:
    run = Run(spec)
    try:
        figures = await (idle_run(run) if spec.mode == "idle" else stream_run(run))
        return Result(ok=True, figures=figures)
    except (FrameCheckError, OSError, aiohttp.ClientError, KeyError) as exc:
        return Result(ok=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        run.closing = True
        for participant in run.participants:
            participant.client.close()


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    spec = msgspec.json.decode(sys.argv[1], type=Spec)
    if spec.core is not None:
        os.sched_setaffinity(0, {spec.core})
    _raise_file_limit()
    result = asyncio.run(execute(spec))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
