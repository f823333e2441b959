"""Real providers in a room: the real SDKs stream from loopback vendor servers to WebSockets.

The OpenAI and Anthropic models of these rooms point at ``tests.fakes`` servers that speak the
vendors' exact streaming formats; participants are real WebSocket clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import ModelSpec
from tests.conftest import ServerFactory, ws_url
from tests.fakes import anthropic_server as anth
from tests.fakes import openai_server as oai
from tests.fakes.drive import refusing_port
from tests.support import Frame, RoomClient, fast_settings, is_type

OPENAI_KEY = "sk-loopback-openai-000"
ANTHROPIC_KEY = "sk-ant-loopback-111"
ENV = {"TEST_OPENAI_KEY": OPENAI_KEY, "TEST_ANTHROPIC_KEY": ANTHROPIC_KEY}


@dataclass
class Vendors:
    openai: oai.OpenAIServer
    anthropic: anth.AnthropicServer


@pytest.fixture
async def vendors() -> AsyncIterator[Vendors]:
    async with (
        oai.OpenAIServer(api_key=OPENAI_KEY) as openai,
        anth.AnthropicServer(api_key=ANTHROPIC_KEY) as anthropic,
    ):
        yield Vendors(openai, anthropic)


@pytest.fixture
async def server(
    start_server: ServerFactory, db_path: str, vendors: Vendors
) -> AsyncIterator[TestServer]:
    """A server whose models are ``gpt`` and ``claude`` at the fakes, ``demo``, and a few
    models that fail in ways of their own."""
    with refusing_port() as offline:
        yield await _server(start_server, db_path, vendors, offline)


async def _server(
    start_server: ServerFactory, db_path: str, vendors: Vendors, offline: int
) -> TestServer:

    def openai(model_id: str, **fields: Any) -> ModelSpec:
        return ModelSpec(
            id=model_id,
            provider="openai",
            model=model_id,
            base_url=fields.pop("base_url", vendors.openai.base_url),
            api_key_env=fields.pop("api_key_env", "TEST_OPENAI_KEY"),
            **fields,
        )

    models = (
        openai("gpt", default=True, timeout_s=5),
        ModelSpec(
            id="claude",
            provider="anthropic",
            model="claude",
            base_url=vendors.anthropic.base_url,
            api_key_env="TEST_ANTHROPIC_KEY",
            default=True,
            timeout_s=5,
        ),
        ModelSpec(id="demo", provider="demo", tokens_per_s=1500, first_token_s=0.01),
        openai("gpt-impatient", timeout_s=0.3),
        openai("gpt-offline", base_url=f"http://127.0.0.1:{offline}/v1"),
        openai("gpt-keyless", api_key_env="TEST_UNSET_KEY"),
    )
    return await start_server(fast_settings(db_path, models=models), env=ENV)


async def _prompt(client: RoomClient, text: str, models: list[str], pid: str = "p1") -> str:
    await client.send({"type": "prompt", "id": pid, "text": text, "models": models})
    message = await client.wait_for(is_type("message", prompt_id=pid))
    return str(message["id"])


async def _ends(client: RoomClient, reply_to: str, models: list[str]) -> dict[str, Frame]:
    """model -> its stream_end, once every model's stream has ended."""
    await client.wait_for(
        lambda _: (
            len([s for s in client.of_type("stream_start") if s["reply_to"] == reply_to])
            >= len(models)
        )
    )
    streams = {
        s["stream"]: s["model"] for s in client.of_type("stream_start") if s["reply_to"] == reply_to
    }
    ends: dict[str, Frame] = {}
    for stream, model in streams.items():
        ends[model] = await client.wait_for(is_type("stream_end", stream=stream))
    return ends


def _stream_of(client: RoomClient, model: str) -> str:
    return str(next(s["stream"] for s in client.of_type("stream_start") if s["model"] == model))


def _tool_frames(client: RoomClient, stream: str) -> list[Frame]:
    return [f for f in client.of_type("tool_call") if f["stream"] == stream]


async def test_text_tool_calls_and_usage_reach_every_participant(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    # Both vendors hold their streams after the first words until the test has seen all three
    # models' tokens: the streams can only finish if they run at the same time.
    all_running = asyncio.Event()
    vendors.openai.script(
        oai.StreamReply(
            [
                oai.Text("It"),
                oai.WaitFor(all_running),
                oai.Text(" is"),
                oai.Text(" sunny"),
                oai.ToolCall(0, "call_w1", "get_weather"),
                oai.ToolArgs(0, '{"city": '),
                oai.ToolArgs(0, '"Paris"}'),
                oai.Finish("tool_calls"),
                oai.Usage(31, 17),
                oai.Done(),
            ]
        )
    )
    vendors.anthropic.script(
        anth.StreamReply(
            [
                anth.Text("Let"),
                anth.WaitFor(all_running),
                anth.Text(" me"),
                anth.Text(" look"),
                anth.ToolUse("toolu_01", "lookup"),
                anth.ToolArgs('{"q": '),
                anth.ToolArgs('"weather"}'),
                anth.Stop("tool_use", 23),
            ],
            input_tokens=44,
        )
    )
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")

    models = ["gpt", "claude", "demo"]
    await _prompt(alice, "weather in Paris", models)
    await alice.wait_for(lambda _: len(alice.of_type("stream_start")) == 3)
    streams = {s["model"]: s["stream"] for s in alice.of_type("stream_start")}
    await alice.wait_for(lambda _: set(streams.values()) <= set(alice.texts()))
    all_running.set()
    ends = {
        model: await alice.wait_for(is_type("stream_end", stream=streams[model]))
        for model in models
    }
    for end in ends.values():
        await bob.wait_for(is_type("stream_end", stream=end["stream"]))

    assert alice.room_events() == bob.room_events()
    gpt, claude = streams["gpt"], streams["claude"]
    assert alice.texts()[gpt] == "It is sunny"
    assert alice.texts()[claude] == "Let me look"

    gpt_calls = _tool_frames(alice, gpt)
    assert [(f["call"], f.get("name"), f["args"]) for f in gpt_calls] == [
        ("call_w1", "get_weather", ""),
        ("call_w1", None, '{"city": '),
        ("call_w1", None, '"Paris"}'),
    ]
    claude_calls = _tool_frames(bob, claude)
    assert claude_calls[0]["name"] == "lookup"
    assert "".join(f["args"] for f in claude_calls) == '{"q": "weather"}'

    assert ends["gpt"]["reason"] == ends["claude"]["reason"] == "complete"
    assert ends["gpt"]["usage"] == {"input_tokens": 31, "output_tokens": 17}
    assert ends["claude"]["usage"] == {"input_tokens": 44, "output_tokens": 23}
    for end in (ends["gpt"], ends["claude"]):
        assert end["ttft_ms"] >= 0
        assert end["duration_ms"] >= end["ttft_ms"]
        assert end["tokens_per_s"] > 0

    # The finished calls are stored with the replies.
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        history = (await response.json())["messages"]
    stored = {m["model"]: m for m in history if m["role"] == "assistant"}
    assert stored["gpt"]["tool_calls"] == [
        {"call": "call_w1", "name": "get_weather", "args": '{"city": "Paris"}'}
    ]
    assert stored["claude"]["tool_calls"] == [
        {"call": "toolu_01", "name": "lookup", "args": '{"q": "weather"}'}
    ]
    assert stored["gpt"]["usage"] == {"input_tokens": 31, "output_tokens": 17}


async def test_a_server_without_usage_gets_estimated_usage(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.text_reply("no", " counts", " here", usage=None))
    alice = await RoomClient.connect(http, ws_url(server))

    message_id = await _prompt(alice, "count", ["gpt"])
    end = (await _ends(alice, message_id, ["gpt"]))["gpt"]

    assert end["reason"] == "complete"
    assert end["usage"]["estimated"] is True


async def test_cancel_of_a_real_stream_closes_its_upstream(
    server: TestServer, http: aiohttp.ClientSession, vendors: Vendors
) -> None:
    vendors.openai.script(oai.StreamReply([oai.Text("half an"), oai.Text(" answer"), oai.Hang()]))
    vendors.anthropic.script(anth.text_reply("one", " two", " three", pace=0.05))
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    models = ["gpt", "claude", "demo"]
    message_id = await _prompt(alice, "cancel the gpt one", models)
    await alice.wait_for(lambda f: f["type"] == "token" and f["text"] == " answer")
    stream = _stream_of(alice, "gpt")

    await bob.send({"type": "cancel", "stream": stream})
    [upstream] = vendors.openai.requests
    # Its script hangs for ever: only the cancel can have closed the request.
    await asyncio.wait_for(upstream.disconnected.wait(), 10)
    ends = await _ends(alice, message_id, models)
    assert ends["gpt"]["reason"] == "cancelled"
    assert ends["claude"]["reason"] == ends["demo"]["reason"] == "complete"
    assert alice.texts()[ends["claude"]["stream"]] == "one two three"
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        history = (await response.json())["messages"]
    reply = next(m for m in history if m.get("model") == "gpt")
    assert (reply["status"], reply["text"]) == ("cancelled", "half an answer")


ERROR_CASES = [
    pytest.param(
        "gpt", oai.rate_limited(retry_after="7"), "rate_limited", 7.0, "", id="openai-429"
    ),
    pytest.param(
        "gpt", oai.invalid_api_key(), "provider_error", None, "", id="openai-key-rejected"
    ),
    pytest.param(
        "gpt", oai.context_length_exceeded(), "too_large", None, "", id="openai-context-length"
    ),
    pytest.param(
        "gpt",
        oai.StreamReply([oai.Text("partial"), oai.Abort()]),
        "provider_error",
        None,
        "partial",
        id="openai-broken-stream",
    ),
    pytest.param(
        "gpt-impatient",
        oai.StreamReply([oai.Text("slow"), oai.Hang()]),
        "provider_error",
        None,
        "slow",
        id="openai-timeout",
    ),
    pytest.param("gpt-offline", None, "provider_error", None, "", id="openai-unreachable"),
    pytest.param("gpt-keyless", None, "provider_error", None, "", id="missing-key"),
    pytest.param("claude", anth.overloaded(), "busy", None, "", id="anthropic-overloaded"),
    pytest.param("claude", anth.rate_limited("12"), "rate_limited", 12.0, "", id="anthropic-429"),
    pytest.param(
        "claude", anth.prompt_too_long(), "too_large", None, "", id="anthropic-prompt-too-long"
    ),
    pytest.param(
        "claude",
        anth.StreamReply([anth.Text("so far"), anth.StreamError("overloaded_error", "Overloaded")]),
        "busy",
        None,
        "so far",
        id="anthropic-error-event",
    ),
]


@pytest.mark.parametrize(("model", "reply", "code", "retry_after", "kept"), ERROR_CASES)
async def test_each_failure_ends_its_stream_with_our_code_while_others_complete(
    server: TestServer,
    http: aiohttp.ClientSession,
    vendors: Vendors,
    model: str,
    reply: oai.Reply | anth.Reply | None,
    code: str,
    retry_after: float | None,
    kept: str,
) -> None:
    healthy = "claude" if model.startswith("gpt") else "gpt"
    vendors.openai.script(oai.text_reply("fine", pace=0.02))
    vendors.anthropic.script(anth.text_reply("fine", pace=0.02))
    # Both fakes share ErrorReply: for an error, the model says which fake answers.
    if isinstance(reply, oai.StreamReply) or (
        isinstance(reply, oai.ErrorReply) and model.startswith("gpt")
    ):
        vendors.openai.script(reply, model=model)
    elif reply is not None:
        vendors.anthropic.script(reply, model=model)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    models = [model, healthy, "demo"]

    message_id = await _prompt(alice, "please fail politely", models)
    ends = await _ends(alice, message_id, models)
    bob_end = await bob.wait_for(is_type("stream_end", stream=ends[model]["stream"]))

    failed = ends[model]
    assert failed == bob_end
    assert failed["reason"] == "error"
    assert failed["error"]["code"] == code
    assert failed["error"].get("retry_after") == retry_after
    for secret in (
        OPENAI_KEY,
        ANTHROPIC_KEY,
        "Incorrect API key",
        "prompt is too long",
        "Overloaded",
    ):
        assert secret not in failed["error"]["message"]
    assert alice.texts().get(failed["stream"], "") == kept
    assert ends[healthy]["reason"] == ends["demo"]["reason"] == "complete"
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        history = (await response.json())["messages"]
    stored = next(m for m in history if m.get("model") == model)
    assert (stored["status"], stored["text"]) == ("error", kept)
