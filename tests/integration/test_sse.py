"""The SSE fallback: the same participant, the same events, resumable by Last-Event-ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.integration.room_view import RoomView
from tests.integration.sse_client import SseClient
from tests.support import (
    RoomClient,
    fast_settings,
    is_type,
    names_are,
    wait_presence,
)


async def _ended_streams(client: RoomClient | SseClient, reply_to: str, count: int) -> list[str]:
    await client.wait_for(
        lambda f: (
            len([s for s in client.of_type("stream_start") if s["reply_to"] == reply_to]) >= count
        )
    )
    streams = [s["stream"] for s in client.of_type("stream_start") if s["reply_to"] == reply_to]
    for stream in streams:
        await client.wait_for(is_type("stream_end", stream=stream))
    return streams


async def test_sse_and_websocket_participants_see_identical_events(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    socket = await RoomClient.connect(http, ws_url(server), name="socket")
    sse = await SseClient.connect(http, server.make_url("/"), name="stream")
    headers = sse.response.headers
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert "Access-Control-Allow-Origin" not in headers, "no Origin, no CORS"
    epoch = sse.welcome["epoch"]
    assert sse.ids[0] == f"{epoch}:{sse.welcome['seq']}"
    await wait_presence(socket, names_are({"socket", "stream"}))

    prompt = {"type": "prompt", "id": "p1", "text": "canyons", "models": ["slow", "quick"]}
    status, body, _ = await sse.post(prompt)
    assert (status, body) == (202, {"ok": True})
    message = await socket.wait_for(is_type("message", prompt_id="p1"))
    assert message["author"]["name"] == "stream"
    streams = await _ended_streams(socket, message["id"], 2)
    await _ended_streams(sse, message["id"], 2)

    assert sse.room_events() == socket.room_events()
    for frame, event_id in zip(sse.frames[1:], sse.ids[1:], strict=True):
        expected = f"{epoch}:{frame['seq']}" if "seq" in frame else None
        assert event_id == expected, frame
    texts = RoomView()
    texts.apply([sse.welcome, *sse.frames])
    assert set(texts.texts) == set(streams)
    assert all(texts.texts.values())


async def test_last_event_id_resumes_and_wins_over_the_original_since(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    base = server.make_url("/")
    socket = await RoomClient.connect(http, ws_url(server), name="socket")
    sse = await SseClient.connect(http, base, name="stream")
    await socket.send({"type": "prompt", "id": "p1", "text": "estuaries", "models": ["slow"]})
    await sse.wait_for(lambda f: f.get("seq", 0) >= 10)
    sse.close()
    view = RoomView()
    view.apply(sse.frames)
    assert sse.last_event_id == f"{view.epoch}:{view.seq}"
    await socket.wait_for(lambda f: f.get("seq", 0) >= view.seq + 10)

    # As a browser reconnects: the original URL (its since long stale) plus Last-Event-ID.
    again = await SseClient.connect(
        http, base, name="stream", since=f"{view.epoch}:0", last_event_id=sse.last_event_id
    )
    assert again.welcome["resumed"] is True
    assert again.ids[0] == sse.last_event_id
    stream = (await socket.wait_for(is_type("stream_start")))["stream"]
    await socket.wait_for(is_type("stream_end", stream=stream))
    await again.wait_for(is_type("stream_end", stream=stream))
    view.apply(again.frames)
    reference = RoomView()
    reference.apply([socket.welcome, *socket.frames])
    assert view.events == reference.events
    assert view.texts == reference.texts


async def test_since_in_the_query_alone_resumes(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    base = server.make_url("/")
    socket = await RoomClient.connect(http, ws_url(server), name="socket")
    sse = await SseClient.connect(http, base, name="stream")
    await socket.send({"type": "prompt", "id": "p1", "text": "estuaries", "models": ["quick"]})
    stream = (await socket.wait_for(is_type("stream_start")))["stream"]
    await sse.wait_for(lambda f: f.get("seq", 0) >= 5)
    sse.close()
    view = RoomView()
    view.apply(sse.frames)
    await socket.wait_for(is_type("stream_end", stream=stream))

    again = await SseClient.connect(http, base, name="stream", since=f"{view.epoch}:{view.seq}")
    assert again.welcome["resumed"] is True
    assert again.ids[0] == f"{view.epoch}:{view.seq}"
    await again.wait_for(is_type("stream_end", stream=stream))
    view.apply(again.frames)
    reference = RoomView()
    reference.apply([socket.welcome, *socket.frames])
    assert view.events == reference.events
    again.close()


#: Values of ``since`` that do not parse as ``<epoch>:<seq>``, built on the room's real epoch
#: so that only the parsing can make them fail; ``{epoch}:0`` itself resumes.
UNUSABLE = [
    "{epoch}",
    "{epoch}:",
    ":0",
    "{epoch}:-1",
    "{epoch}:1e3",
    "{epoch}: 0",
    "{epoch}:\u00b2",
    "{epoch}:\u0663",
    "{epoch}:" + "0" * 16,
    "x" * 300 + ":0",
]


@pytest.mark.parametrize("via", ["header", "query"])
@pytest.mark.parametrize("template", UNUSABLE)
async def test_an_unusable_since_gets_a_snapshot(
    server: TestServer, http: aiohttp.ClientSession, template: str, via: str
) -> None:
    base = server.make_url("/")
    first = await SseClient.connect(http, base)
    epoch = first.welcome["epoch"]
    first.close()
    usable = await SseClient.connect(http, base, since=f"{epoch}:0")
    assert usable.welcome["resumed"] is True, "the room's own since resumes"
    usable.close()

    since = template.replace("{epoch}", epoch)
    if via == "header":
        sse = await SseClient.connect(http, base, last_event_id=since)
    else:
        sse = await SseClient.connect(http, base, since=since)
    assert sse.welcome["resumed"] is False
    assert sse.welcome["epoch"] == epoch
    sse.close()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/v1/rooms/ok/events?name=" + "n" * 65, "name"),
        ("/v1/rooms/ok/events?token=" + "t" * 4097, "token"),
        ("/v1/rooms/bad%20room/events", "room ids"),
    ],
)
async def test_bad_event_stream_requests_are_refused(
    server: TestServer, http: aiohttp.ClientSession, path: str, words: str
) -> None:
    async with http.get(server.make_url(path)) as response:
        assert response.status == 400
        error = await response.json()
    assert error["type"] == "error"
    assert error["code"] == "bad_frame"
    assert words in error["message"]


async def test_posted_frames_get_their_errors_in_the_http_response(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    limits = Limits(max_frame_bytes=1024, prompts_per_minute=1)
    server = await start_server(fast_settings(db_path, limits=limits))
    sse = await SseClient.connect(http, server.make_url("/"))

    async def refused(frame: dict[str, Any] | bytes, status: int, code: str, **kw: Any) -> Any:
        got, body, headers = await sse.post(frame, **kw)
        assert (got, body["type"], body["code"]) == (status, "error", code), body
        return body, headers

    await refused(b"{nope", 400, "bad_frame")
    await refused(b"[1, 2]", 400, "bad_frame")
    await refused(b"\xff\xfe{", 400, "bad_frame")
    await refused(b"", 400, "bad_frame")
    body, _ = await refused(b'{"type": "ping", "id": "' + b"x" * 2000 + b'"}', 413, "too_large")
    assert body["message"] == "a request body may be at most 1024 bytes"
    # Exactly at the limit is taken (and then judged as a frame).
    at_limit = b'{"type": "ping", "id": "x"}'.ljust(1024)
    assert (await sse.post(at_limit))[0] == 202

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"type": "ping",'
        yield b' "id": "chunked"}'

    # A body without Content-Length (chunked) is read under the same limit.
    assert (await sse.post(chunked()))[0] == 202
    body, _ = await refused({"type": "shout", "id": "u1"}, 400, "unknown_type")
    assert body["ref"] == "u1"
    body, _ = await refused({"type": "hello", "id": "h1"}, 400, "bad_frame")
    assert (body["message"], body["ref"]) == ("hello is the events request, not a frame", "h1")
    body, _ = await refused({"type": "ping"}, 403, "forbidden", params={"session": "sess_nope"})
    assert body["message"] == "no such session in this room: open a new event stream"
    await refused({"type": "ping"}, 403, "forbidden", params={})
    other_room = sse.url.with_path("/v1/rooms/elsewhere/frames")
    async with http.post(
        other_room, params={"session": sse.welcome["session"]}, json={"type": "ping"}
    ) as response:
        assert response.status == 403, "a session belongs to its room"
    body, _ = await refused({"type": "cancel", "stream": "s_nope", "id": "c1"}, 404, "not_found")
    assert body["ref"] == "c1"

    prompt = {"type": "prompt", "id": "p1", "text": "dunes", "models": ["slow"]}
    assert (await sse.post(prompt))[:2] == (202, {"ok": True})
    # A second prompt while the first runs would be queued; here it is over the rate first.
    await refused({**prompt, "id": "p2"}, 429, "rate_limited")
    assert (await sse.post(prompt))[:2] == (202, {"ok": True}), "a repeated prompt id"
    assert (await sse.post({"type": "cancel"}))[0] == 202
    await sse.wait_for(is_type("stream_end"))
    # A page of an allowed origin (loopback, by default) may read Retry-After.
    page = {"Origin": "http://localhost:5173"}
    body, headers = await refused({**prompt, "id": "p3"}, 429, "rate_limited", headers=page)
    assert body["retry_after"] > 0
    assert int(headers["Retry-After"]) >= 1
    assert headers["Access-Control-Expose-Headers"] == "Retry-After"

    # The session header works as well as the query, and pong comes on the stream.
    status, _, _ = await sse.post(
        {"type": "ping", "id": "hdr"}, params={}, headers={"X-RT-Session": sse.welcome["session"]}
    )
    assert status == 202
    await sse.wait_for(is_type("pong", id="hdr"))
    # Errors answering POSTs never also come on the stream.
    assert sse.of_type("error") == []


async def test_cors_preflight_allows_the_sse_headers(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.options(server.make_url("/v1/rooms/lobby/frames")) as response:
        assert response.status == 204
        headers = response.headers
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, X-RT-Session, Last-Event-ID"
    )
    assert headers["Access-Control-Max-Age"] == "600"


async def test_heartbeat_comments_and_presence_when_an_sse_participant_goes(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, limits=Limits(sse_heartbeat=0.2)))
    socket = await RoomClient.connect(http, ws_url(server), name="socket")
    sse = await SseClient.connect(http, server.make_url("/"), name="stream")
    await sse.wait_until(lambda: len(sse.comments) >= 2, timeout=3)
    assert set(sse.comments) == {"keep-alive"}
    await wait_presence(socket, names_are({"socket", "stream"}))
    before = len(socket.frames)
    sse.close()
    await wait_presence(socket, names_are({"socket"}), after=before, timeout=3)
    # Its session went with it.
    status, body, _ = await sse.post({"type": "ping"})
    assert (status, body["code"]) == (403, "forbidden")
