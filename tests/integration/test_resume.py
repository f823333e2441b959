"""Resume: a client that loses its connection comes back to exactly what it would have seen."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiohttp

from rtserver.config import Limits, ModelSpec
from rtserver.providers.base import Provider
from tests.conftest import ServerFactory, ws_url
from tests.integration.room_view import RoomView
from tests.integration.scripted_providers import Endless
from tests.support import RoomClient, fast_settings, is_type

# Three paces, so that the streams interleave and end at different times.
MODELS = (
    ModelSpec(id="m60", provider="demo", tokens_per_s=60, first_token_s=0.02, default=True),
    ModelSpec(id="m90", provider="demo", tokens_per_s=90, first_token_s=0.02),
    ModelSpec(id="m150", provider="demo", tokens_per_s=150, first_token_s=0.02),
)
ALL = [m.id for m in MODELS]


def endless(done: asyncio.Event) -> dict[str, Provider]:
    """The three models as streams that run, interleaved, until ``done`` is set."""
    return {
        "m60": Endless(done, interval=0.01),
        "m90": Endless(done, interval=0.006),
        "m150": Endless(done, interval=0.004),
    }


def cut(client: RoomClient) -> None:
    """Drop the client's TCP connection on the spot: no close frame, nothing more read."""
    sock = client.ws.get_extra_info("socket")
    # Linger 0: when the socket is released the peer gets a reset, not an orderly end.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.shutdown(socket.SHUT_RDWR)


async def drop(client: RoomClient, view: RoomView) -> None:
    """Cut ``client`` and add what it had received to ``view``."""
    cut(client)
    await client.wait_closed()
    view.apply(client.frames)
    await client.close()


def view_of(client: RoomClient) -> RoomView:
    view = RoomView()
    view.apply([client.welcome, *client.frames])
    return view


async def wait_seq(client: RoomClient, seq: int) -> None:
    await client.wait_for(lambda f: f.get("seq", 0) >= seq)


async def wait_ends(client: RoomClient, count: int) -> list[str]:
    """The streams of the first ``count`` stream_starts, once each has ended."""
    await client.wait_for(lambda f: len(client.of_type("stream_start")) >= count)
    streams = [f["stream"] for f in client.of_type("stream_start")[:count]]
    for stream in streams:
        await client.wait_for(is_type("stream_end", stream=stream))
    return streams


async def test_abrupt_cuts_mid_generation_resume_to_identical_texts(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    done = asyncio.Event()
    server = await start_server(fast_settings(db_path, models=MODELS), providers=endless(done))
    url = ws_url(server)
    steady = await RoomClient.connect(http, url, name="steady")
    flaky = await RoomClient.connect(http, url, name="flaky")
    view = RoomView()
    view.apply([flaky.welcome])
    await flaky.send(
        {"type": "prompt", "id": "p1", "text": "rivers, deltas and tides", "models": ALL}
    )

    cut_at: list[int] = []
    for _ in range(4):
        await wait_seq(steady, view.seq + 15)
        await drop(flaky, view)
        cut_at.append(view.seq)
        # The room moves on without it: these are the events the resume must replay.
        await wait_seq(steady, view.seq + 10)
        flaky = await RoomClient.connect(http, url, name="flaky", since=view.since)
        assert flaky.welcome["resumed"] is True
        assert flaky.welcome["seq"] >= view.seq + 10
        view.apply([flaky.welcome])

    done.set()
    streams = await wait_ends(steady, len(ALL))
    for stream in streams:
        await flaky.wait_for(is_type("stream_end", stream=stream))
    view.apply(flaky.frames)
    reference = view_of(steady)

    first_end = min(reference.ends[s]["seq"] for s in streams)
    assert max(cut_at) < first_end, "every cut fell while all streams were running"
    assert view.resumes == 4
    assert view.snapshots == 1
    assert set(reference.texts) == set(streams)
    assert view.texts == reference.texts
    assert view.events == reference.events
    assert all(reference.ends[s]["reason"] == "complete" for s in streams)


async def test_clients_that_cannot_resume_get_a_snapshot_with_running_text(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    limits = Limits(event_log_events=20)
    done = asyncio.Event()
    settings = fast_settings(db_path, models=MODELS, limits=limits)
    server = await start_server(settings, providers=endless(done))
    url = ws_url(server)
    steady = await RoomClient.connect(http, url, name="steady")
    epoch = steady.welcome["epoch"]
    await steady.send(
        {"type": "prompt", "id": "p1", "text": "glaciers and moraines", "models": ALL}
    )
    await wait_seq(steady, 60)

    joiners = {
        "late joiner": None,
        "another epoch": {"epoch": "elsewhere", "seq": 3},
        "seq past the head": {"epoch": epoch, "seq": 10_000},
        "events no longer held": {"epoch": epoch, "seq": 5},
    }
    clients = {
        why: await RoomClient.connect(http, url, name=why, since=since)
        for why, since in joiners.items()
    }
    done.set()
    streams = await wait_ends(steady, len(ALL))
    reference = view_of(steady)
    for why, client in clients.items():
        welcome = client.welcome
        assert welcome["resumed"] is False, why
        assert welcome["epoch"] == epoch
        running = {s["stream"]: s["text"] for s in welcome["streams"]}
        assert set(running) == set(streams), f"{why}: the snapshot names the running streams"
        for stream, text in running.items():
            upto = "".join(
                e["text"]
                for e in reference.events
                if e["type"] == "token" and e["stream"] == stream and e["seq"] <= welcome["seq"]
            )
            assert text == upto, why
        for stream in streams:
            await client.wait_for(is_type("stream_end", stream=stream))
        assert view_of(client).texts == reference.texts, why


async def test_a_prompt_resent_after_a_reconnect_runs_once(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    settings = fast_settings(db_path, models=MODELS)
    server = await start_server(settings)
    url = ws_url(server)
    prompt = {"type": "prompt", "id": "once", "text": "only once please", "models": ["m60", "m150"]}
    client = await RoomClient.connect(http, url)
    view = RoomView()
    view.apply([client.welcome])
    # Cut right after sending: the client cannot know whether the prompt was taken.
    await client.send(prompt)
    await drop(client, view)

    client = await RoomClient.connect(http, url, since=view.since)
    await client.send(prompt)
    await client.send({"type": "ping", "id": "after-resend"})
    await client.wait_for(is_type("pong", id="after-resend"))
    streams = await wait_ends(client, 2)
    view.apply([client.welcome, *client.frames])
    messages = [e for e in view.events if e["type"] == "message"]
    assert [m["prompt_id"] for m in messages] == ["once"]
    assert len([e for e in view.events if e["type"] == "stream_start"]) == 2
    # A repeat is not refused as busy: it is simply already done.
    assert client.of_type("error") == []

    async def resend_on_a_new_connection(url: str) -> RoomClient:
        again = await RoomClient.connect(http, url)
        await again.send(prompt)
        await again.send({"type": "ping", "id": "barrier"})
        await again.wait_for(is_type("pong", id="barrier"))
        assert again.room_events() == []
        assert again.of_type("error") == []
        users = [m for m in again.welcome["messages"] if m["role"] == "user"]
        assert [m["prompt_id"] for m in users] == ["once"]
        return again

    await resend_on_a_new_connection(url)
    await server.close()
    # After a restart the room's memory is gone; the stored prompt id still holds.
    restarted = await start_server(settings)
    again = await resend_on_a_new_connection(ws_url(restarted))
    replies = [m for m in again.welcome["messages"] if m["role"] == "assistant"]
    assert {m["stream"] for m in replies} == set(streams)
