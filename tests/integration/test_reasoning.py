"""Reasoning at the socket: from each vendor fake through its real SDK and from the demo models,
apart from the answer in every frame, snapshot, replay, store and history page, and never sent
back to a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.client import RoomState, connect
from rtserver.config import Limits, ModelSpec
from rtserver.protocol.frames import Params, StreamEnd
from rtserver.providers.base import ChatTurn, GenerationRequest
from rtserver.providers.demo import compose_reasoning, compose_reply
from tests.conftest import ServerFactory, ws_url
from tests.fakes import anthropic_server as anth
from tests.fakes import openai_server as oai
from tests.integration.sse_client import SseClient
from tests.support import Frame, RoomClient, fast_settings, is_type

ENV = {"TEST_OPENAI_KEY": "sk-reasoning-openai", "TEST_ANTHROPIC_KEY": "sk-ant-reasoning"}
THINKING = {"type": "enabled", "budget_tokens": 1024}


@dataclass
class Vendors:
    openai: oai.OpenAIServer
    anthropic: anth.AnthropicServer


@pytest.fixture
async def vendors() -> AsyncIterator[Vendors]:
    async with (
        oai.OpenAIServer(api_key=ENV["TEST_OPENAI_KEY"]) as openai,
        anth.AnthropicServer(api_key=ENV["TEST_ANTHROPIC_KEY"]) as anthropic,
    ):
        yield Vendors(openai, anthropic)


def _models(vendors: Vendors) -> tuple[ModelSpec, ...]:
    return (
        ModelSpec(
            id="claude",
            provider="anthropic",
            model="claude-thinks",
            base_url=vendors.anthropic.base_url,
            api_key_env="TEST_ANTHROPIC_KEY",
            params={"thinking": THINKING, "max_tokens": 4096},
            timeout_s=5,
        ),
        ModelSpec(
            id="qwen",
            provider="openai",
            model="qwen3",
            base_url=vendors.openai.base_url,
            api_key_env="TEST_OPENAI_KEY",
            timeout_s=5,
        ),
        # Thinks whatever the prompt asks, slowly enough to be joined mid-thought.
        ModelSpec(
            id="thinker",
            provider="demo",
            tokens_per_s=40,
            first_token_s=0.01,
            params={"reasoning": True},
        ),
        ModelSpec(id="fast", provider="demo", tokens_per_s=2_000, first_token_s=0, default=True),
    )


async def _server(
    start_server: ServerFactory, db_path: str, vendors: Vendors, **limits: Any
) -> TestServer:
    settings = fast_settings(db_path, models=_models(vendors), limits=Limits(**limits))
    return await start_server(settings, env=ENV)


async def _ask(client: RoomClient, pid: str, models: list[str], **extra: Any) -> list[Frame]:
    """Send a prompt; wait for each model's stream_end; return the stream_starts, in order."""
    text = extra.pop("text", "Why is the sea salty?")
    await client.send({"type": "prompt", "id": pid, "text": text, "models": models, **extra})
    message = await client.wait_for(is_type("message", prompt_id=pid))
    await client.wait_for(
        lambda _: (
            len([s for s in client.of_type("stream_start") if s["reply_to"] == message["id"]])
            == len(models)
        )
    )
    starts = [s for s in client.of_type("stream_start") if s["reply_to"] == message["id"]]
    for start in starts:
        await client.wait_for(is_type("stream_end", stream=start["stream"]))
    return starts


def _joined(frames: list[Frame], kind: str, stream: str) -> str:
    return "".join(f["text"] for f in frames if f["type"] == kind and f["stream"] == stream)


async def _history(http: aiohttp.ClientSession, server: TestServer, room: str) -> list[Frame]:
    async with http.get(server.make_url(f"/v1/rooms/{room}/messages")) as response:
        assert response.status == 200
        body: dict[str, list[Frame]] = await response.json()
    return body["messages"]


async def test_anthropic_thinking_reaches_the_room_the_store_and_never_the_model_again(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
) -> None:
    vendors.anthropic.script(
        anth.thinking_reply(["The sea", " gathers salt", " from rocks."], ["Rivers carry", " it."])
    )
    server = await _server(start_server, db_path, vendors)
    client = await RoomClient.connect(http, ws_url(server, "claude"))
    try:
        [start] = await _ask(client, "p1", ["claude"])
        stream = start["stream"]
        assert _joined(client.frames, "reasoning", stream) == "The sea gathers salt from rocks."
        assert _joined(client.frames, "token", stream) == "Rivers carry it."
        end = client.ended(stream)
        assert end is not None
        assert end["reason"] == "complete"
        assert end["ttft_ms"] is not None
        # The model's params turned thinking on, through the real SDK.
        assert vendors.anthropic.requests[0].body["thinking"] == THINKING

        await _ask(client, "p2", ["claude"], text="And the Dead Sea?")
    finally:
        await client.close()
    [_, again] = vendors.anthropic.requests
    assistant = [m for m in again.body["messages"] if m["role"] == "assistant"]
    assert assistant == [{"role": "assistant", "content": "Rivers carry it."}]
    stored = [m for m in await _history(http, server, "claude") if m["role"] == "assistant"]
    assert stored[0]["text"] == "Rivers carry it."
    assert stored[0]["reasoning"] == "The sea gathers salt from rocks."


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_of_an_openai_compatible_server_is_shown_apart(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
    field: str,
) -> None:
    vendors.openai.script(
        oai.reasoning_reply(
            ["9.11 or", " 9.8?"],
            ["9.8."],
            field="reasoning" if field == "reasoning" else "reasoning_content",
        )
    )
    server = await _server(start_server, db_path, vendors)
    client = await RoomClient.connect(http, ws_url(server, "compat"))
    try:
        [start] = await _ask(client, "p1", ["qwen"])
        await _ask(client, "p2", ["qwen"], text="Sure?")
    finally:
        await client.close()
    stream = start["stream"]
    assert _joined(client.frames, "reasoning", stream) == "9.11 or 9.8?"
    assert _joined(client.frames, "token", stream) == "9.8."
    sent = vendors.openai.requests[1].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "assistant"] == ["9.8."]
    assert all("reasoning" not in m and "reasoning_content" not in m for m in sent)


async def test_demo_models_think_first_when_asked_and_frames_never_mix(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
) -> None:
    # Coalescing on, and two fast streams at once: frames gather several tokens each.
    server = await _server(start_server, db_path, vendors, token_flush_ms=20)
    client = await RoomClient.connect(http, ws_url(server, "demo"))
    prompt = "How does caching shape latency?"
    try:
        starts = await _ask(
            client, "p1", ["fast", "thinker"], text=prompt, params={"reasoning": True}
        )
        plain = await _ask(client, "p2", ["fast"], text=prompt)
    finally:
        await client.close()
    request = GenerationRequest(messages=(ChatTurn("user", prompt),), reasoning=True)
    thoughts = "".join(compose_reasoning(request))
    for start in starts:
        stream = start["stream"]
        frames = [f for f in client.room_events() if f.get("stream") == stream]
        kinds = [f["type"] for f in frames if f["type"] in ("reasoning", "token")]
        # All of the thinking, then all of the answer; every frame of one stream and one kind.
        assert kinds == sorted(kinds, key=lambda k: k == "token"), kinds
        assert _joined(frames, "reasoning", stream) == thoughts
        assert _joined(frames, "token", stream) == "".join(compose_reply(request))
    assert any(f["type"] == "reasoning" and f["text"].count(" ") > 1 for f in client.frames), (
        "coalescing gathered no reasoning at all"
    )
    assert not [
        f for f in client.frames if f["type"] == "reasoning" and f["stream"] == plain[0]["stream"]
    ], "a demo model thinks only when asked"


def _reasoning_seen(welcome: Frame, frames: list[Frame], stream: str) -> str:
    """A stream's reasoning as a client builds it: its snapshot, then the events after it."""
    start = next((s.get("reasoning", "") for s in welcome["streams"] if s["stream"] == stream), "")
    for message in welcome["messages"]:
        if message.get("stream") == stream:
            start = message.get("reasoning", "") or start
    return start + _joined(frames, "reasoning", stream)


async def _wait_reasoning(client: RoomClient, stream: str, text: str) -> None:
    await client.wait_for(lambda _: _joined(client.frames, "reasoning", stream) == text)


async def test_a_late_joiner_and_a_resumed_client_see_the_same_reasoning(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
) -> None:
    # The fake thinks, waits (a late joiner comes, a client leaves), thinks on while that client
    # is away, waits for it to come back, then answers: the test, not the clock, decides.
    joined, away = asyncio.Event(), asyncio.Event()
    vendors.anthropic.script(
        anth.StreamReply(
            [
                anth.Thinking("First,"),
                anth.Thinking(" the moon"),
                anth.WaitFor(joined),
                anth.Thinking(" pulls"),
                anth.Thinking(" the sea."),
                anth.WaitFor(away),
                anth.Text("Tides."),
                anth.Stop(),
            ]
        )
    )
    full = "First, the moon pulls the sea."
    server = await _server(start_server, db_path, vendors)
    url = ws_url(server, "late")
    first = await RoomClient.connect(http, url, name="first")
    leaving = await RoomClient.connect(http, url, name="leaving")
    await first.send({"type": "prompt", "id": "p1", "text": "tides?", "models": ["claude"]})
    stream = (await first.wait_for(is_type("stream_start")))["stream"]
    for client in (first, leaving):
        await _wait_reasoning(client, stream, "First, the moon")
    late = await RoomClient.connect(http, url, name="late")
    last_seq = max(f["seq"] for f in leaving.room_events())
    await leaving.close()
    joined.set()
    await _wait_reasoning(first, stream, full)
    back = await RoomClient.connect(
        http, url, name="leaving", since={"epoch": leaving.welcome["epoch"], "seq": last_seq}
    )
    away.set()
    try:
        for client in (first, late, back):
            await client.wait_for(is_type("stream_end", stream=stream))
        # The snapshot mid-thought holds the reasoning so far, apart from the (empty) text.
        [running] = late.welcome["streams"]
        assert (running["reasoning"], running["text"]) == ("First, the moon", "")
        assert _reasoning_seen(late.welcome, late.frames, stream) == full
        assert back.welcome["resumed"] is True
        before = [f for f in leaving.frames if f.get("seq", 0) <= last_seq]
        assert _reasoning_seen(leaving.welcome, before + back.frames, stream) == full
        assert _reasoning_seen(first.welcome, first.frames, stream) == full
        stored = [m for m in await _history(http, server, "late") if m["role"] == "assistant"]
        assert (stored[0]["reasoning"], stored[0]["text"]) == (full, "Tides.")
        newcomer = await RoomClient.connect(http, url, name="newcomer")
        [reply] = [m for m in newcomer.welcome["messages"] if m["role"] == "assistant"]
        assert reply["reasoning"] == full
        await newcomer.close()
    finally:
        for client in (first, late, back):
            await client.close()


async def test_a_non_boolean_params_reasoning_is_a_bad_frame_and_the_room_goes_on(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
) -> None:
    server = await _server(start_server, db_path, vendors)
    client = await RoomClient.connect(http, ws_url(server, "bad"))
    try:
        for n, value in enumerate(["yes", 1, {"on": True}, [True]]):
            pid = f"bad-{n}"
            await client.send(
                {"type": "prompt", "id": pid, "text": "hi", "params": {"reasoning": value}}
            )
            error = await client.wait_for(is_type("error", ref=pid))
            assert error["code"] == "bad_frame"
            assert "reasoning" in error["message"]
        assert client.of_type("message") == []
        await _ask(client, "ok", ["fast"], params={"reasoning": None})
    finally:
        await client.close()


async def test_hostile_and_huge_reasoning_is_kept_exactly_and_bounded_like_text(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
) -> None:
    hostile = '<img src=x onerror="alert(1)"> \x00 \u202e </think> ```'
    chunk = "thinking hard " * 400
    vendors.openai.script(oai.reasoning_reply([hostile, *[chunk] * 40], ["fine"]))
    server = await _server(start_server, db_path, vendors, welcome_chars=50_000)
    url = ws_url(server, "huge")
    client = await RoomClient.connect(http, url)
    try:
        [start] = await _ask(client, "p1", ["qwen"])
        await _ask(client, "p2", ["fast"], text="short one")
    finally:
        await client.close()
    whole = hostile + chunk * 40
    assert len(whole) > 200_000
    assert _joined(client.frames, "reasoning", start["stream"]) == whole
    stored = [m for m in await _history(http, server, "huge") if m.get("model") == "qwen"]
    assert stored[0]["reasoning"] == whole
    # Over welcome_chars with its reasoning, the reply is left out of a welcome like long text;
    # the messages after it still come, and the page holds it.
    joiner = await RoomClient.connect(http, url, name="joiner")
    try:
        ids = [m["id"] for m in joiner.welcome["messages"]]
        assert stored[0]["id"] not in ids
        assert any(m.get("model") == "fast" for m in joiner.welcome["messages"])
    finally:
        await joiner.close()


async def test_sse_carries_reasoning_with_ids_and_a_bad_params_reasoning_is_400(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
) -> None:
    server = await _server(start_server, db_path, vendors)
    sse = await SseClient.connect(http, server.make_url("/"), room="sse", name="stream")
    try:
        status, body, _ = await sse.post(
            {"type": "prompt", "id": "bad", "text": "hi", "params": {"reasoning": "on"}}
        )
        assert (status, body["code"], body["ref"]) == (400, "bad_frame", "bad")
        prompt = {
            "type": "prompt",
            "id": "p1",
            "text": "Why is the sea salty?",
            "models": ["fast"],
            "params": {"reasoning": True},
        }
        assert (await sse.post(prompt))[0] == 202
        end = await sse.wait_for(is_type("stream_end"))
    finally:
        sse.close()
    thoughts = [
        (frame, event_id)
        for frame, event_id in zip(sse.frames, sse.ids, strict=True)
        if frame["type"] == "reasoning"
    ]
    request = GenerationRequest(messages=(ChatTurn("user", "Why is the sea salty?"),))
    assert "".join(f["text"] for f, _ in thoughts) == "".join(compose_reasoning(request))
    # Room events like any other: each has its epoch:seq id for Last-Event-ID.
    assert all(i == f"{sse.welcome['epoch']}:{f['seq']}" for f, i in thoughts)
    assert end["ttft_ms"] is not None


async def test_the_python_client_folds_reasoning_from_the_server(
    start_server: ServerFactory, db_path: str, vendors: Vendors
) -> None:
    server = await _server(start_server, db_path, vendors)
    async with connect(str(server.make_url("/")), "py", name="script") as room:
        state = RoomState()
        await room.prompt("What is a tide?", models=["fast"], params=Params(reasoning=True))
        async with asyncio.timeout(10):
            async for event in room:
                state.apply(event)
                if isinstance(event, StreamEnd):
                    break
    [reply] = state.lanes().values()
    request = GenerationRequest(messages=(ChatTurn("user", "What is a tide?"),))
    assert reply.reasoning == "".join(compose_reasoning(request))
    assert reply.text == "".join(compose_reply(request))
