"""Slow consumers: one who stops reading is closed with 4000, nobody else waits, and it catches up.

The stalled clients here simply stop reading their socket; the firehose model then fills every
buffer on the way (the kernel's too, however large it makes them) until the server-side outbox
overflows.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.config import Limits, ModelSpec
from rtserver.keys import DIRECTORY
from tests.conftest import ServerFactory, ws_url
from tests.integration.room_view import RoomView
from tests.integration.scripted_providers import Firehose
from tests.integration.sse_client import SseClient
from tests.support import (
    Frame,
    RoomClient,
    eventually,
    fast_settings,
    is_type,
    names_are,
    presence_index,
    wait_presence,
)

#: Far more than the firehose runs ahead of the steady reader (16 chunks of 16 KiB), so only
#: the stalled client overflows.
OUTBOX = 1 << 20


async def _start(start_server: ServerFactory, db_path: str, hose: Firehose) -> TestServer:
    settings = fast_settings(
        db_path,
        models=(ModelSpec(id="hose", provider="demo", default=True),),
        limits=Limits(outbox_bytes=OUTBOX),
    )
    return await start_server(settings, providers={"hose": hose})


async def _presence_becomes(client: RoomClient, names: set[str], *, after: int) -> int:
    """The index of the first presence frame from ``after`` on that leaves exactly ``names``."""
    return await wait_presence(client, names_are(names), after=after)


async def _drop_while_steady_flows(steady: RoomClient, hose: Firehose) -> int:
    """Start the firehose; return the seq steady had when the stalled one was let go."""
    hose.paced_by = lambda: len(steady.frames)
    joined = await _presence_becomes(steady, {"steady", "stalled"}, after=0)
    await steady.send({"type": "prompt", "id": "flood", "text": "everything at once"})
    await _presence_becomes(steady, {"steady"}, after=joined + 1)
    dropped_at = max(f.get("seq", 0) for f in steady.frames)
    # The room keeps going for the reader while the stalled client still reads nothing.
    await steady.wait_for(lambda f: f.get("seq", 0) >= dropped_at + 50)
    assert not hose.stop.is_set()
    return int(dropped_at)


def _view(*frame_lists: list[Frame]) -> RoomView:
    view = RoomView()
    for frames in frame_lists:
        view.apply(frames)
    return view


async def test_a_websocket_that_stops_reading_is_closed_4000_then_resumes_exactly(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    hose = Firehose()
    server = await _start(start_server, db_path, hose)
    url = ws_url(server)
    steady = await RoomClient.connect(http, url, name="steady")
    stalled = await RoomClient.connect(http, url, name="stalled", hello=False)
    await stalled.send({"type": "hello", "name": "stalled"})
    stalled.welcome = await stalled.receive()
    # From here on nobody reads the stalled client's socket.

    dropped_at = await _drop_while_steady_flows(steady, hose)
    stalled.start_reading()
    assert await stalled.wait_closed() == 4000
    view = _view([stalled.welcome], stalled.frames)
    assert view.seq <= dropped_at, "nothing reached it after it was let go"

    back = await RoomClient.connect(http, url, name="stalled", since=view.since)
    view.apply([back.welcome])
    hose.stop.set()
    end = await steady.wait_for(is_type("stream_end"))
    await back.wait_for(is_type("stream_end"))
    view.apply(back.frames)
    reference = _view([steady.welcome], steady.frames)
    assert end["reason"] == "complete"
    assert view.seq == reference.seq
    assert view.texts == reference.texts
    assert len(reference.texts[end["stream"]]) > 50 * 16_384


async def test_an_event_stream_that_stops_reading_is_ended_then_resumes_by_last_event_id(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    hose = Firehose()
    server = await _start(start_server, db_path, hose)
    steady = await RoomClient.connect(http, ws_url(server), name="steady")
    base = server.make_url("/")
    stalled = await SseClient.connect(http, base, name="stalled", read=False)

    dropped_at = await _drop_while_steady_flows(steady, hose)
    stalled.start_reading()
    await stalled.wait_ended()
    assert stalled.comments[-1].startswith("closed 4000")
    view = _view(stalled.frames)
    assert view.seq <= dropped_at

    back = await SseClient.connect(http, base, name="stalled", last_event_id=stalled.last_event_id)
    hose.stop.set()
    end = await steady.wait_for(is_type("stream_end"))
    await back.wait_for(is_type("stream_end"))
    view.apply(back.frames)
    reference = _view([steady.welcome], steady.frames)
    assert view.seq == reference.seq
    assert view.texts == reference.texts
    assert len(reference.texts[end["stream"]]) > 50 * 16_384


async def test_a_client_that_sends_pings_but_never_reads_is_closed_4000(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    """Answers to one participant (pong, error) count toward its outbox bound like room events.

    Otherwise a client that sends frames and reads nothing makes the server queue their
    answers without limit.
    """
    server = await start_server(fast_settings(db_path, limits=Limits(outbox_bytes=4096)))
    url = ws_url(server)
    watcher = await RoomClient.connect(http, url, name="watcher")
    pinger = await RoomClient.connect(http, url, name="pinger", hello=False)
    await pinger.send({"type": "hello", "name": "pinger"})
    pinger.welcome = await pinger.receive()
    joined = await _presence_becomes(watcher, {"watcher", "pinger"}, after=0)
    # From here on nobody reads the pinger's socket: its pongs pile up on the server.
    ping = {"type": "ping", "id": "p" * 128}
    bad = {"type": "shout", "id": "b" * 128}

    def dropped() -> bool:
        return presence_index(watcher, names_are({"watcher"}), after=joined + 1) is not None

    for _ in range(200):
        if dropped():
            break
        for n in range(1_000):
            await pinger.send(bad if n % 2 else ping)
    await _presence_becomes(watcher, {"watcher"}, after=joined + 1)
    pinger.start_reading()
    assert await pinger.wait_closed() == 4000


async def test_a_websocket_that_never_reads_again_is_cut_after_a_grace(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    hose = Firehose()
    settings = fast_settings(
        db_path,
        models=(ModelSpec(id="hose", provider="demo", default=True),),
        limits=Limits(outbox_bytes=OUTBOX, hello_timeout=0.5, heartbeat=60),
    )
    server = await start_server(settings, providers={"hose": hose})
    steady = await RoomClient.connect(http, ws_url(server), name="steady")
    stalled = await RoomClient.connect(http, ws_url(server), name="stalled", hello=False)
    await stalled.send({"type": "hello", "name": "stalled"})
    stalled.welcome = await stalled.receive()
    runner = server.runner
    assert runner is not None
    assert runner.server is not None
    http_server = runner.server
    open_before = len(http_server.connections)

    await _drop_while_steady_flows(steady, hose)
    # Its writer is stuck on a full socket and can never send the close frame: the server
    # cuts the connection itself instead of waiting for a heartbeat a minute away.
    async with asyncio.timeout(10):
        while len(http_server.connections) >= open_before:  # noqa: ASYNC110 - aiohttp's state
            await asyncio.sleep(0.05)
    hose.stop.set()
    await steady.wait_for(is_type("stream_end"))


async def test_an_event_stream_that_never_reads_again_is_cut_after_a_grace(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    hose = Firehose()
    settings = fast_settings(
        db_path,
        models=(ModelSpec(id="hose", provider="demo", default=True),),
        limits=Limits(outbox_bytes=OUTBOX, sse_heartbeat=0.5),
    )
    server = await start_server(settings, providers={"hose": hose})
    steady = await RoomClient.connect(http, ws_url(server), name="steady")
    stalled = await SseClient.connect(http, server.make_url("/"), name="stalled", read=False)
    runner = server.runner
    assert runner is not None
    assert runner.server is not None
    http_server = runner.server
    open_before = len(http_server.connections)

    await _drop_while_steady_flows(steady, hose)
    # The response's writer is stuck on a full socket: one heartbeat after the outbox closed,
    # the server aborts the connection rather than hold it for as long as the peer likes.
    async with asyncio.timeout(10):
        while len(http_server.connections) >= open_before:  # noqa: ASYNC110 - aiohttp's state
            await asyncio.sleep(0.05)
    hose.stop.set()
    await steady.wait_for(is_type("stream_end"))
    stalled.close()


async def test_a_reader_that_falls_behind_within_its_outbox_loses_nothing(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    """The socket fills, the outbox queues behind it, and once the reader reads again the
    drainer writes the backlog out as the socket drains: every chunk, in order, no close."""
    hose = Firehose()
    settings = fast_settings(
        db_path,
        models=(ModelSpec(id="hose", provider="demo", default=True),),
        limits=Limits(outbox_bytes=256 << 20),
    )
    server = await start_server(settings, providers={"hose": hose})
    lagging = await RoomClient.connect(http, ws_url(server), name="lagging", hello=False)
    await lagging.send({"type": "hello", "name": "lagging"})
    lagging.welcome = await lagging.receive()
    await lagging.send({"type": "prompt", "id": "p", "text": "everything at once"})
    # Read nothing until the server's socket to it is full and its outbox holds the rest.
    room = await server.app[DIRECTORY].get("lobby")
    [member] = room.members
    await eventually(lambda: member.outbox.backlog, timeout=60)
    hose.stop.set()
    lagging.start_reading()
    end = await lagging.wait_for(is_type("stream_end"), timeout=60)
    assert end["reason"] == "complete"
    assert lagging.closed_with is None
    text = "".join(f["text"] for f in lagging.frames if f["type"] == "token")
    chunks = [c for c in text.split(".") if c]
    assert chunks == [f"<{n}>" for n in range(len(chunks))], "every chunk, in order"
    assert len(text) > 2 * (1 << 20), "more than a socket's buffers held"


async def test_a_backlog_left_when_the_room_goes_quiet_goes_out_once_the_reader_reads(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    """Nothing new arrives to wake the socket's writer: its drainer alone must see the socket
    drain and write the rest, the reply's end included."""
    hose = Firehose()
    settings = fast_settings(
        db_path,
        models=(ModelSpec(id="hose", provider="demo", default=True),),
        limits=Limits(outbox_bytes=256 << 20),
    )
    server = await start_server(settings, providers={"hose": hose})
    lagging = await RoomClient.connect(http, ws_url(server), name="lagging", hello=False)
    await lagging.send({"type": "hello", "name": "lagging"})
    lagging.welcome = await lagging.receive()
    await lagging.send({"type": "prompt", "id": "p", "text": "everything at once"})
    room = await server.app[DIRECTORY].get("lobby")
    [member] = room.members
    await eventually(lambda: member.outbox.backlog, timeout=60)
    hose.stop.set()
    # The reply has ended and its end waits in the outbox: the room sends nothing more.
    await eventually(lambda: not room.room.streaming, timeout=60)
    assert member.outbox.backlog
    lagging.start_reading()
    end = await lagging.wait_for(is_type("stream_end"), timeout=30)
    assert end["reason"] == "complete"
    assert lagging.closed_with is None
