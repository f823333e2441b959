"""A provider that reports no usage: what it streamed is counted, and marked estimated.

The real SDKs stream from the loopback vendor fakes into a room (or ``/v1/chat``); the OpenAI
fake is scripted to send no usage chunk, as llama.cpp's server does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import ModelSpec
from tests.conftest import ServerFactory, ws_url
from tests.fakes import anthropic_server as anth
from tests.fakes import openai_server as oai
from tests.support import Frame, RoomClient, fast_settings, is_type

KEY = "sk-loopback-usage-000"
ENV = {"TEST_KEY": KEY}
#: Words of several characters each: at four characters a token they would count about twice.
WORDS = [" harbour", " lighthouse", " breakwater", " mooring", " anchorage", " quay", " tide"]


@pytest.fixture
async def openai() -> AsyncIterator[oai.OpenAIServer]:
    async with oai.OpenAIServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def anthropic() -> AsyncIterator[anth.AnthropicServer]:
    async with anth.AnthropicServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def server(
    start_server: ServerFactory,
    db_path: str,
    openai: oai.OpenAIServer,
    anthropic: anth.AnthropicServer,
) -> TestServer:
    models = (
        ModelSpec(
            id="local",
            provider="openai",
            model="llama",
            base_url=openai.base_url,
            api_key_env="TEST_KEY",
            default=True,
            timeout_s=5,
        ),
        ModelSpec(
            id="claude",
            provider="anthropic",
            model="claude",
            base_url=anthropic.base_url,
            api_key_env="TEST_KEY",
            timeout_s=5,
        ),
    )
    return await start_server(fast_settings(db_path, models=models), env=ENV)


async def _stream_end(server: TestServer, http: aiohttp.ClientSession, model: str) -> Frame:
    client = await RoomClient.connect(http, ws_url(server))
    try:
        await client.send({"type": "prompt", "id": "p1", "text": "ports?", "models": [model]})
        start = await client.wait_for(is_type("stream_start", model=model))
        return await client.wait_for(is_type("stream_end", stream=start["stream"]))
    finally:
        await client.close()


async def test_without_usage_each_openai_chunk_counts_as_one_token(
    server: TestServer, http: aiohttp.ClientSession, openai: oai.OpenAIServer
) -> None:
    openai.script(oai.text_reply(*WORDS, usage=None, pace=0.01))

    end = await _stream_end(server, http, "local")

    assert end["reason"] == "complete"
    assert end["usage"]["output_tokens"] == len(WORDS)
    assert end["usage"]["estimated"] is True
    assert end["tokens_per_s"] > 0
    assert end["tokens_per_s_estimated"] is True
    # The stored reply carries the same counts.
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        history = (await response.json())["messages"]
    reply = next(m for m in history if m["role"] == "assistant")
    assert reply["usage"] == end["usage"]


async def test_a_cancelled_openai_stream_counts_the_chunks_it_got(
    server: TestServer, http: aiohttp.ClientSession, openai: oai.OpenAIServer
) -> None:
    # No server sends usage for a reply cut short: its usage chunk would have come last.
    openai.script(oai.StreamReply([*(oai.Text(w) for w in WORDS[:3]), oai.Hang()]))
    client = await RoomClient.connect(http, ws_url(server))
    try:
        await client.send({"type": "prompt", "id": "p1", "text": "ports?", "models": ["local"]})
        start = await client.wait_for(is_type("stream_start", model="local"))
        await client.wait_for(lambda _: client.texts().get(start["stream"]) == "".join(WORDS[:3]))
        await client.send({"type": "cancel", "stream": start["stream"]})
        end = await client.wait_for(is_type("stream_end", stream=start["stream"]))
    finally:
        await client.close()

    assert end["reason"] == "cancelled"
    assert end["usage"]["output_tokens"] == 3
    assert end["usage"]["estimated"] is True


async def test_tool_call_fragments_without_usage_count_as_tokens_too(
    server: TestServer, http: aiohttp.ClientSession, openai: oai.OpenAIServer
) -> None:
    fragments = ['{"city":', ' "Paris"', "}"]
    openai.script(
        oai.StreamReply(
            [
                oai.Text("Let me look."),
                oai.ToolCall(0, "call_1", "weather"),
                *(oai.ToolArgs(0, f) for f in fragments),
                oai.Finish("tool_calls"),
                oai.Done(),
            ]
        )
    )

    end = await _stream_end(server, http, "local")

    # One text chunk, the call's opening chunk and its three argument chunks.
    assert end["usage"]["output_tokens"] == 1 + 1 + len(fragments)
    assert end["usage"]["estimated"] is True


async def test_usage_the_openai_server_reports_is_taken_as_it_is(
    server: TestServer, http: aiohttp.ClientSession, openai: oai.OpenAIServer
) -> None:
    openai.script(oai.text_reply(*WORDS, usage=(30, 9), pace=0.01))

    end = await _stream_end(server, http, "local")

    assert end["usage"] == {"input_tokens": 30, "output_tokens": 9}
    assert end["tokens_per_s"] > 0
    assert "tokens_per_s_estimated" not in end


async def test_anthropic_usage_is_unaffected(
    server: TestServer, http: aiohttp.ClientSession, anthropic: anth.AnthropicServer
) -> None:
    anthropic.script(anth.text_reply(*WORDS, output_tokens=17, pace=0.01))

    end = await _stream_end(server, http, "claude")

    assert end["usage"] == {"input_tokens": 21, "output_tokens": 17}
    assert end["tokens_per_s"] > 0
    assert "tokens_per_s_estimated" not in end


async def test_a_json_chat_says_its_rate_is_estimated(
    server: TestServer, http: aiohttp.ClientSession, openai: oai.OpenAIServer
) -> None:
    openai.script(oai.text_reply(*WORDS, usage=None, pace=0.01))

    async with http.post(server.make_url("/v1/chat"), json={"message": "ports?"}) as response:
        assert response.status == 200
        reply: dict[str, Any] = await response.json()

    assert reply["text"] == "".join(WORDS)
    assert reply["usage"]["output_tokens"] == len(WORDS)
    assert reply["usage"]["estimated"] is True
    assert reply["tokens_per_s_estimated"] is True
