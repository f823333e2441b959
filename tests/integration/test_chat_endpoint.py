"""``POST /v1/chat``: one prompt, one reply, as JSON or as an SSE stream, outside any room."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits, ModelSpec
from rtserver.errors import ProviderError
from tests.conftest import ServerFactory
from tests.integration.scripted_providers import (
    Endless,
    FailsMidway,
    Firehose,
    Recording,
    Watched,
)
from tests.support import fast_settings

QUICK_FIRST = (
    ModelSpec(id="quick", provider="demo", tokens_per_s=400, first_token_s=0.01, default=True),
    ModelSpec(id="slow", provider="demo", tokens_per_s=40, first_token_s=0.01),
)


@pytest.fixture
async def quick_server(start_server: ServerFactory, db_path: str) -> TestServer:
    return await start_server(fast_settings(db_path, models=QUICK_FIRST))


async def _chat(http: aiohttp.ClientSession, server: TestServer, body: Any) -> tuple[int, Any]:
    async with http.post(server.make_url("/v1/chat"), json=body) as response:
        return response.status, await response.json()


def _events(raw: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(id, frame) of each SSE event; comments are skipped."""
    events = []
    for block in raw.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        assert set(fields) <= {"id", "data"}, block
        events.append((fields.get("id"), msgspec.json.decode(fields["data"])))
    return events


async def test_a_json_chat_answers_the_reply_and_its_numbers(
    quick_server: TestServer, http: aiohttp.ClientSession
) -> None:
    status, reply = await _chat(http, quick_server, {"message": "tell me about harbours"})
    assert status == 200
    assert set(reply) == {
        "model",
        "text",
        "reason",
        "usage",
        "ttft_ms",
        "duration_ms",
        "tokens_per_s",
    }
    assert reply["model"] == "quick"
    assert reply["reason"] == "complete"
    assert "harbours" in reply["text"]
    # The demo model's tokens are its words: one token per space-separated piece.
    assert reply["usage"]["output_tokens"] == len(reply["text"].split(" "))
    assert reply["duration_ms"] >= reply["ttft_ms"] >= 0
    assert reply["tokens_per_s"] > 0
    # Unknown fields are ignored, as in every frame.
    status, other = await _chat(
        http, quick_server, {"message": "tell me about harbours", "model": "quick", "x": 1}
    )
    assert (status, other["text"]) == (200, reply["text"])


async def test_a_streamed_chat_sends_tokens_then_one_stream_end(
    quick_server: TestServer, http: aiohttp.ClientSession
) -> None:
    body = {"message": "tell me about harbours", "model": "quick", "stream": True}
    async with http.post(quick_server.make_url("/v1/chat"), json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["X-Accel-Buffering"] == "no"
        raw = await response.text()
    events = _events(raw)
    frames = [frame for _, frame in events]
    assert ":" not in [line[:1] for line in raw.split("\n")], "a normal end has no comment"
    assert all(event_id is None for event_id, _ in events)
    assert [f["type"] for f in frames] == ["token"] * (len(frames) - 1) + ["stream_end"]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    [stream_id] = {f["stream"] for f in frames}
    assert isinstance(stream_id, str)
    assert stream_id
    end = frames[-1]
    assert end["reason"] == "complete"
    status, reply = await _chat(http, quick_server, {"message": "tell me about harbours"})
    assert status == 200
    assert "".join(f["text"] for f in frames[:-1]) == reply["text"]
    assert end["usage"] == reply["usage"]


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{nope", 400, "bad_frame", "the body is not valid JSON"),
        (b"[]", 400, "bad_frame", "invalid chat request: Expected `object`, got `array`"),
        (b"{}", 400, "bad_frame", "invalid chat request: Object missing required field `message`"),
        (b'{"message": 5}', 400, "bad_frame",
         "invalid chat request: Expected `str`, got `int` - at `$.message`"),
        (b'{"message": "hi", "stream": "yes"}', 400, "bad_frame",
         "invalid chat request: Expected `bool`, got `str` - at `$.stream`"),
        (b'{"message": "   "}', 400, "bad_frame", "message is empty"),
        (b'{"message": "hi", "model": "gpt-99"}', 400, "unknown_model", "unknown model 'gpt-99'"),
        (b'{"message": "hi", "model": ""}', 400, "bad_frame", None),
        (b'{"message": "' + b"x" * 51 + b'"}', 413, "too_large",
         "message is 51 characters; the limit is 50"),
        (b'{"message": "hi", "pad": "' + b"x" * 2000 + b'"}', 413, "too_large", None),
    ],
)  # fmt: skip
async def test_bad_chat_requests_get_named_errors(
    start_server: ServerFactory,
    db_path: str,
    http: aiohttp.ClientSession,
    body: bytes,
    status: int,
    code: str,
    message: str | None,
) -> None:
    limits = Limits(max_frame_bytes=1024, max_prompt_chars=50)
    server = await start_server(fast_settings(db_path, models=QUICK_FIRST, limits=limits))
    async with http.post(
        server.make_url("/v1/chat"), data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == status
        error = await response.json()
    assert (error["type"], error["code"]) == ("error", code)
    if message is not None:
        assert error["message"] == message


async def test_a_message_of_exactly_max_prompt_chars_is_taken(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    limits = Limits(max_prompt_chars=50)
    server = await start_server(fast_settings(db_path, models=QUICK_FIRST, limits=limits))
    status, reply = await _chat(http, server, {"message": "x" * 50})
    assert (status, reply["reason"]) == (200, "complete")


async def test_the_model_is_asked_the_message_alone_with_its_configured_params(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    models = (
        ModelSpec(id="tuned", provider="demo", params={"temperature": 1, "max_tokens": 7}),
        ModelSpec(id="odd", provider="demo"),
    )
    tuned, odd = Recording("fine"), Recording("fine")
    server = await start_server(
        fast_settings(db_path, models=models), providers={"tuned": tuned, "odd": odd}
    )
    for model in ("tuned", "odd"):
        status, reply = await _chat(http, server, {"message": "just this", "model": model})
        assert (status, reply["model"], reply["text"]) == (200, model, "fine")
    [asked] = tuned.requests
    assert [(t.role, t.content) for t in asked.messages] == [("user", "just this")]
    assert (asked.temperature, asked.max_tokens) == (1.0, 7)
    assert isinstance(asked.temperature, float)
    [asked_odd] = odd.requests
    assert (asked_odd.temperature, asked_odd.max_tokens) == (None, None)


async def test_a_silent_streamed_chat_sends_heartbeat_comments(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    release = asyncio.Event()
    silent = Recording("late", release=release)
    settings = fast_settings(db_path, models=QUICK_FIRST, limits=Limits(sse_heartbeat=0.05))
    server = await start_server(settings, providers={"quick": silent})
    body = {"message": "take your time", "stream": True}
    async with http.post(server.make_url("/v1/chat"), json=body) as response:
        assert response.status == 200
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        assert first.startswith(b":"), first
        release.set()
        raw = first.decode() + await response.text()
    assert [f["type"] for _, f in _events(raw)] == ["token", "stream_end"]


@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_that_goes_away_ends_the_upstream_request(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, stream: bool
) -> None:
    # A reply that never ends on its own: only the client going away can close its request.
    watched = Watched(Endless(asyncio.Event(), interval=0.01))
    server = await start_server(fast_settings(db_path), providers={"slow": watched})
    body = {"message": "a long answer please", "model": "slow", "stream": stream}
    if stream:
        response = await http.post(server.make_url("/v1/chat"), json=body)
        assert b'"token"' in await response.content.readuntil(b"\n\n")
        response.close()
    else:
        with pytest.raises(TimeoutError):
            await http.post(
                server.make_url("/v1/chat"), json=body, timeout=aiohttp.ClientTimeout(total=0.3)
            )
    await asyncio.wait_for(watched.closed.wait(), timeout=10)
    assert not watched.completed


async def test_chats_are_rate_limited_per_address(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(
        fast_settings(db_path, models=QUICK_FIRST, limits=Limits(prompts_per_minute=2))
    )
    for _ in range(2):
        status, _reply = await _chat(http, server, {"message": "hello"})
        assert status == 200
    async with http.post(server.make_url("/v1/chat"), json={"message": "hello"}) as response:
        assert response.status == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 30
        body = await response.json()
    assert body["code"] == "rate_limited"
    assert "2 chats a minute" in body["message"]
    # Another address has its own budget (all of 127.0.0.0/8 is loopback).
    other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=other) as elsewhere:
        status, _reply = await _chat(elsewhere, server, {"message": "hello"})
        assert status == 200
    # A refused chat starts nothing: a bad request still gets its own error, not 429.
    status, error = await _chat(http, server, {"message": ""})
    assert (status, error["code"]) == (400, "bad_frame")


@pytest.mark.parametrize("stream", [True, False])
async def test_a_chat_that_fails_after_its_start_reports_the_error_with_200(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, stream: bool
) -> None:
    failing = FailsMidway(
        "half an ans", ProviderError("rate_limited", "slow down", retry_after=3.0)
    )
    server = await start_server(fast_settings(db_path), providers={"slow": failing})
    body = {"message": "a long answer please", "model": "slow", "stream": stream}
    async with http.post(server.make_url("/v1/chat"), json=body) as response:
        assert response.status == 200
        raw = await response.text()
    if stream:
        frames = [frame for _, frame in _events(raw)]
        assert [f["type"] for f in frames] == ["token", "stream_end"]
        assert frames[0]["text"] == "half an ans"
        end = frames[-1]
    else:
        end = msgspec.json.decode(raw)
        assert (end["model"], end["text"]) == ("slow", "half an ans")
    assert end["reason"] == "error"
    assert end["error"] == {"code": "rate_limited", "message": "slow down", "retry_after": 3.0}


async def test_a_streamed_chat_that_outgrows_its_outbox_ends_as_a_slow_consumer(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    # One chunk is larger than the whole outbox: it cannot be queued, however fast the reader.
    hose = Watched(Firehose(chunk_bytes=2048))
    settings = fast_settings(db_path, limits=Limits(outbox_bytes=1024))
    server = await start_server(settings, providers={"slow": hose})
    body = {"message": "everything", "model": "slow", "stream": True}
    async with http.post(server.make_url("/v1/chat"), json=body) as response:
        assert response.status == 200
        raw = await asyncio.wait_for(response.text(), 10)
    assert raw.rstrip("\n").endswith(": closed 4000 slow consumer")
    assert _events(raw) == []
    await asyncio.wait_for(hose.closed.wait(), 10)
    assert not hose.completed
