"""rtserver.client against the real server: lanes, cancel, resume, snapshot, refusal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rtserver.client import (
    Backoff,
    ConnectFailed,
    Event,
    Refused,
    RoomClient,
    RoomState,
    StatusChange,
    connect,
    connect_sync,
)
from rtserver.config import Limits, ModelSpec
from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import (
    MessageEvent,
    Participant,
    Pong,
    StreamEnd,
    StreamStart,
    TokenEvent,
    Welcome,
)
from tests.conftest import ServerFactory
from tests.integration.tcp_proxy import TcpProxy
from tests.support import fast_settings

# Slow enough that a cut lands mid-stream, fast enough to keep the tests short.
MODELS = (
    ModelSpec(id="m60", provider="demo", tokens_per_s=60, first_token_s=0.02, default=True),
    ModelSpec(id="m150", provider="demo", tokens_per_s=150, first_token_s=0.02),
)
BOTH = ["m60", "m150"]
ROOM_EVENTS = (MessageEvent, StreamStart, TokenEvent, StreamEnd)


def base(server: TestServer) -> str:
    return str(server.make_url("/"))


class Watcher:
    """Reads a client's events on a task, folding them into a RoomState."""

    def __init__(self, client: RoomClient) -> None:
        self.client = client
        self.state = RoomState()
        self.events: list[Event] = []
        self._arrived = asyncio.Event()
        self.task = asyncio.create_task(self._read())
        self.error: BaseException | None = None

    async def _read(self) -> None:
        try:
            async for event in self.client:
                self.state.apply(event)
                self.events.append(event)
                self._arrived.set()
        except BaseException as exc:
            self.error = exc
            self._arrived.set()

    async def wait(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                if self.task.done():
                    raise AssertionError(f"client stopped: {self.error!r}")
                self._arrived.clear()
                await self._arrived.wait()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def room_seqs(self) -> list[int]:
        return [e.seq for e in self.events if isinstance(e, ROOM_EVENTS)]

    def ended(self, count: int) -> Callable[[], bool]:
        return lambda: len(self.of(StreamEnd)) >= count

    async def stop(self) -> None:
        await self.client.close()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def watchers() -> AsyncIterator[list[Watcher]]:
    made: list[Watcher] = []
    yield made
    for watcher in made:
        await watcher.stop()


async def watch(watchers: list[Watcher], client: RoomClient) -> Watcher:
    await client.start()
    watcher = Watcher(client)
    watchers.append(watcher)
    return watcher


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_prompt_and_watch_two_lanes(
    start_server: ServerFactory, db_path: str, watchers: list[Watcher], codec: Any
) -> None:
    server = await start_server(fast_settings(db_path, models=MODELS))
    alice = await watch(watchers, connect(base(server), "lanes", name="alice", codec=codec))
    bob = await watch(watchers, connect(base(server), "lanes", name="bob"))
    prompt_id = await alice.client.prompt("rivers and tides", models=BOTH)
    await alice.wait(alice.ended(2))
    await bob.wait(bob.ended(2))

    [message] = alice.of(MessageEvent)
    assert message.prompt_id == prompt_id
    assert message.author.name == "alice"
    lanes = alice.state.lanes()
    assert set(lanes) == set(BOTH)
    for model, reply in lanes.items():
        assert reply.status == "complete", model
        assert "rivers" in reply.text
        assert reply.text == bob.state.lanes()[model].text
        assert reply.tokens_per_s is not None
    assert [t.id for t in alice.state.turns] == [message.id]
    assert alice.room_seqs() == list(range(1, len(alice.room_seqs()) + 1))


async def test_a_repeated_prompt_id_starts_nothing(
    start_server: ServerFactory, db_path: str, watchers: list[Watcher]
) -> None:
    server = await start_server(fast_settings(db_path, models=MODELS))
    alice = await watch(watchers, connect(base(server), "idem", name="alice"))
    await alice.client.prompt("once", models=["m150"], id="same-id")
    await alice.wait(alice.ended(1))
    await alice.client.prompt("once", models=["m150"], id="same-id")
    # Frames of one connection are acted on in order: the pong comes after the repeat.
    ping = await alice.client.ping()
    await alice.wait(lambda: any(p.id == ping for p in alice.of(Pong)))
    assert len(alice.of(MessageEvent)) == 1
    assert len(alice.of(StreamStart)) == 1


async def test_cancel_one_model_leaves_the_other_lane_running(
    start_server: ServerFactory, db_path: str, watchers: list[Watcher]
) -> None:
    models = (
        ModelSpec(id="slowest", provider="demo", tokens_per_s=20, first_token_s=0.01),
        ModelSpec(id="m150", provider="demo", tokens_per_s=150, first_token_s=0.01, default=True),
    )
    server = await start_server(fast_settings(db_path, models=models))
    alice = await watch(watchers, connect(base(server), "cancel", name="alice"))
    await alice.client.prompt("lanes", models=["slowest", "m150"])
    await alice.wait(lambda: len(alice.of(TokenEvent)) >= 3)
    await alice.client.cancel(model="slowest")
    await alice.wait(alice.ended(2))
    replies = [(alice.state.reply_of_stream(e.stream), e.reason) for e in alice.of(StreamEnd)]
    reasons = {reply.model: reason for reply, reason in replies if reply is not None}
    assert reasons == {"slowest": "cancelled", "m150": "complete"}

    await alice.client.prompt("again", models=["slowest"])
    await alice.wait(lambda: len(alice.of(StreamStart)) == 3)
    await alice.client.cancel()
    await alice.wait(alice.ended(3))
    assert alice.of(StreamEnd)[-1].reason == "cancelled"


async def test_resume_across_a_forced_cut_has_no_gap_and_no_duplicate(
    start_server: ServerFactory, db_path: str, watchers: list[Watcher]
) -> None:
    server = await start_server(fast_settings(db_path, models=MODELS))
    proxy = await TcpProxy(server.port or 0).start()
    try:
        steady = await watch(watchers, connect(base(server), "cut", name="steady"))
        flaky = await watch(
            watchers,
            connect(proxy.url, "cut", name="flaky", backoff=Backoff(base_s=0.05, max_s=0.2)),
        )
        await flaky.client.prompt("a long answer about estuaries", models=BOTH)
        for cuts in range(1, 4):
            tokens = len(flaky.of(TokenEvent))
            await flaky.wait(lambda: len(flaky.of(TokenEvent)) >= tokens + 15)  # noqa: B023
            proxy.cut()
            await flaky.wait(lambda: len(flaky.of(Welcome)) > cuts)  # noqa: B023
        await steady.wait(steady.ended(2))
        await flaky.wait(flaky.ended(2))
    finally:
        await proxy.close()

    welcomes = flaky.of(Welcome)
    assert len(welcomes) == 4
    assert [w.resumed for w in welcomes] == [False, True, True, True]
    assert flaky.room_seqs() == list(range(1, steady.room_seqs()[-1] + 1))
    assert flaky.room_seqs() == steady.room_seqs()
    assert {m: r.text for m, r in flaky.state.lanes().items()} == {
        m: r.text for m, r in steady.state.lanes().items()
    }
    states = [e.state for e in flaky.of(StatusChange)]
    assert states.count("reconnecting") >= 3


async def test_snapshot_once_the_log_no_longer_holds_what_was_missed(
    start_server: ServerFactory, db_path: str, watchers: list[Watcher]
) -> None:
    settings = fast_settings(db_path, models=MODELS, limits=Limits(event_log_events=10))
    server = await start_server(settings)
    proxy = await TcpProxy(server.port or 0).start()
    try:
        steady = await watch(watchers, connect(base(server), "expire", name="steady"))
        flaky = await watch(
            watchers,
            connect(proxy.url, "expire", name="flaky", backoff=Backoff(base_s=0.05, max_s=0.2)),
        )
        await flaky.client.prompt("a long answer about glaciers", models=BOTH)
        await flaky.wait(lambda: len(flaky.of(TokenEvent)) >= 5)
        proxy.hold()
        proxy.cut()
        seen = flaky.room_seqs()[-1]
        await steady.wait(lambda: steady.room_seqs()[-1] > seen + 20)
        proxy.release()
        await flaky.wait(lambda: len(flaky.of(Welcome)) == 2)
        await steady.wait(steady.ended(2))
        await flaky.wait(lambda: not flaky.state.busy and len(flaky.of(Welcome)) == 2)
    finally:
        await proxy.close()

    snapshot = flaky.of(Welcome)[1]
    assert snapshot.resumed is False
    assert flaky.state.snapshots == 2
    # Nothing is yielded twice: events after the snapshot start right after its head.
    after = [
        e.seq for e in flaky.events[flaky.events.index(snapshot) :] if isinstance(e, ROOM_EVENTS)
    ]
    assert after == list(range(snapshot.seq + 1, snapshot.seq + 1 + len(after)))
    assert {m: r.text for m, r in flaky.state.lanes().items()} == {
        m: r.text for m, r in steady.state.lanes().items()
    }


async def test_a_connection_gone_silent_is_found_by_pings_and_resumed(
    start_server: ServerFactory, db_path: str, watchers: list[Watcher]
) -> None:
    server = await start_server(fast_settings(db_path, models=MODELS))
    proxy = await TcpProxy(server.port or 0).start()
    try:
        client = connect(
            proxy.url,
            "silent",
            ping_interval=0.2,
            ping_timeout=0.5,
            backoff=Backoff(base_s=0.05, max_s=0.2),
        )
        flaky = await watch(watchers, client)
        await flaky.client.prompt("tides", models=["m60"])
        await flaky.wait(lambda: len(flaky.of(TokenEvent)) >= 3)
        proxy.black_hole()
        await flaky.wait(lambda: len(flaky.of(Welcome)) == 2)
        await flaky.wait(flaky.ended(1))
    finally:
        await proxy.close()
    assert flaky.of(Welcome)[1].resumed is True
    assert flaky.room_seqs() == list(range(1, flaky.room_seqs()[-1] + 1))


async def drain(client: RoomClient, into: list[Event] | None = None) -> None:
    """Read the client's events (into ``into``) until it ends; bounded in time."""
    async with asyncio.timeout(10):
        async for event in client:
            if into is not None:
                into.append(event)


def fake_welcome(*, resumed: bool) -> str:
    welcome = Welcome(
        session="s",
        participant=Participant(id="p", name="n"),
        room="r",
        epoch="e",
        seq=0,
        resumed=resumed,
        models=[],
        participants=[],
        messages=[],
        streams=[],
    )
    return JSON.encode(welcome).decode()


@pytest.mark.parametrize("code", [4000, 1001])
async def test_slow_consumer_and_going_away_closes_reconnect_and_resume(code: int) -> None:
    hellos: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("rt.v1.json",))
        await ws.prepare(request)
        hellos.append(msgspec.json.decode((await ws.receive()).data))
        await ws.send_str(fake_welcome(resumed=len(hellos) > 1))
        if len(hellos) == 1:
            await ws.close(code=code, message=b"bye")
        else:
            await ws.close(code=1008, message=b"enough")
        return ws

    app = web.Application()
    app.router.add_get("/v1/rooms/{room}/ws", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = connect(base(server), "r", backoff=Backoff(base_s=0.05, max_s=0.1))
        await client.start()
        with pytest.raises(Refused):
            await drain(client)
    finally:
        await server.close()
    assert len(hellos) == 2
    assert "since" not in hellos[0]
    assert hellos[1]["since"] == {"epoch": "e", "seq": 0}


async def test_duplicates_are_dropped_and_a_gap_resumes_from_the_last_event() -> None:
    hellos: list[dict[str, Any]] = []

    def token(seq: int) -> str:
        return JSON.encode(TokenEvent(seq=seq, stream="s1", text=f"t{seq}")).decode()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("rt.v1.json",))
        await ws.prepare(request)
        hellos.append(msgspec.json.decode((await ws.receive()).data))
        await ws.send_str(fake_welcome(resumed=len(hellos) > 1))
        # A newer server's frame, and a newer room event that still counts in the seqs.
        await ws.send_str('{"type": "presence_diff", "joined": []}')
        if len(hellos) == 1:
            for seq in (1, 1, 2, 4):
                await ws.send_str(token(seq))
        else:
            await ws.send_str('{"type": "reasoning_v9", "seq": 3, "stream": "s1"}')
            await ws.send_str(token(4))
            await ws.close(code=1008)
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/v1/rooms/{room}/ws", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = connect(base(server), "r", backoff=Backoff(base_s=0.05, max_s=0.1))
        await client.start()
        events: list[Event] = []
        with pytest.raises(Refused):
            await drain(client, events)
    finally:
        await server.close()
    assert [e.seq for e in events if isinstance(e, TokenEvent)] == [1, 2, 4]
    assert hellos[1]["since"] == {"epoch": "e", "seq": 2}
    assert [w.resumed for w in events if isinstance(w, Welcome)] == [False, True]


# --- refusals ---------------------------------------------------------------------------


def refusing_app(
    *, error: dict[str, Any] | None, welcome_first: bool
) -> tuple[web.Application, list[int]]:
    """A stand-in for a server with token auth: it refuses with close 1008."""
    attempts: list[int] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("rt.v1.json",))
        await ws.prepare(request)
        attempts.append(1)
        await ws.receive()
        if welcome_first:
            await ws.send_str(fake_welcome(resumed=False))
        if error is not None:
            await ws.send_str(msgspec.json.encode(error).decode())
        await ws.close(code=1008, message=b"token expired")
        return ws

    app = web.Application()
    app.router.add_get("/v1/rooms/{room}/ws", handler)
    return app, attempts


@pytest.mark.parametrize(
    "error",
    [
        # `unauthorized` is the security work's new code: an unknown code must still refuse.
        {"type": "error", "code": "unauthorized", "message": "token expired"},
        {"type": "error", "code": "forbidden", "message": "not in this room"},
        None,
    ],
)
async def test_a_refusal_before_welcome_is_final(error: dict[str, Any] | None) -> None:
    app, attempts = refusing_app(error=error, welcome_first=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        with pytest.raises(Refused) as refused:
            async with connect(base(server), "r", token="t0k"):
                pass
    finally:
        await server.close()
    assert attempts == [1]
    assert refused.value.code == (error or {}).get("code")
    assert str(refused.value) == (error or {}).get("message", "token expired")


async def test_close_1008_after_welcome_ends_iteration_without_reconnecting() -> None:
    app, attempts = refusing_app(error=None, welcome_first=True)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with connect(base(server), "r") as client:
            with pytest.raises(Refused) as refused:
                await drain(client)
    finally:
        await server.close()
    assert attempts == [1]
    assert refused.value.close_code == 1008
    assert client.state == "closed"


async def test_token_goes_in_hello_and_as_bearer() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("rt.v1.json",))
        await ws.prepare(request)
        seen["authorization"] = request.headers.get("Authorization")
        seen["hello"] = msgspec.json.decode((await ws.receive()).data)
        await ws.close(code=1008)
        return ws

    app = web.Application()
    app.router.add_get("/v1/rooms/{room}/ws", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        with pytest.raises(Refused):
            await connect(base(server), "r", name="ada", token="s3cret").start()
    finally:
        await server.close()
    assert seen["authorization"] == "Bearer s3cret"
    assert seen["hello"] == {"type": "hello", "name": "ada", "token": "s3cret"}


async def test_an_http_refusal_of_the_handshake_is_final(server: TestServer) -> None:
    # An invalid room id passes the client's own check only when it is valid, so ask a path
    # the server answers 404.
    client = RoomClient(base(server) + "nowhere/", "r")
    with pytest.raises(Refused, match="404"):
        await client.start()


async def test_no_server_fails_the_first_connection() -> None:
    probe = TestServer(web.Application(), host="127.0.0.1")
    await probe.start_server()
    port = probe.port
    await probe.close()
    with pytest.raises(ConnectFailed):
        await connect(f"http://127.0.0.1:{port}", "r", open_timeout=2).start()


@pytest.mark.parametrize(
    ("base_url", "room"),
    [("ftp://host", "r"), ("http://h", "bad room"), ("http://h", "x" * 65), ("nohost", "r")],
)
def test_bad_urls_and_room_ids_are_refused_up_front(base_url: str, room: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        connect(base_url, room)


async def test_the_sync_wrapper_asks_and_waits_for_every_lane(
    start_server: ServerFactory, db_path: str
) -> None:
    server = await start_server(fast_settings(db_path, models=MODELS))

    def script() -> tuple[dict[str, str], list[str]]:
        # Blocking code, as a script would be; the wrapper runs its own loop in a thread.
        with connect_sync(base(server), "sync", name="script") as room:
            answers = room.ask("rivers", models=BOTH, timeout=20)
            reasons = [str(r.reason) for r in room.state.lanes().values()]
        return answers, reasons

    answers, reasons = await asyncio.to_thread(script)
    assert set(answers) == set(BOTH)
    assert all("rivers" in text for text in answers.values())
    assert reasons == ["complete", "complete"]
