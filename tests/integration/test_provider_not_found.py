"""A configured base_url without /v1, seen from a room: the peer is told what to check, and the
operator's log names the rtserver model, its base URL and the URL that answered 404."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import ModelSpec
from tests.conftest import ServerFactory, ws_url
from tests.fakes import openai_server as oai
from tests.support import RoomClient, fast_settings, is_type

KEY = "sk-loopback-notfound-000"


@pytest.fixture
async def openai() -> AsyncIterator[oai.OpenAIServer]:
    async with oai.OpenAIServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def server(start_server: ServerFactory, db_path: str, openai: oai.OpenAIServer) -> TestServer:
    spec = ModelSpec(
        id="local-llama",
        provider="openai",
        model="llama3.2",
        # The mistake of the issue: Ollama's address without its /v1.
        base_url=openai.origin,
        api_key_env="TEST_KEY",
        default=True,
        timeout_s=5,
    )
    return await start_server(fast_settings(db_path, models=(spec,)), env={"TEST_KEY": KEY})


async def test_a_404_from_a_base_url_without_v1_says_what_to_check(
    server: TestServer,
    http: aiohttp.ClientSession,
    openai: oai.OpenAIServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await RoomClient.connect(http, ws_url(server))
    try:
        with caplog.at_level(logging.WARNING, logger="rtserver.providers"):
            await client.send({"type": "prompt", "id": "p1", "text": "hi"})
            start = await client.wait_for(is_type("stream_start", model="local-llama"))
            end = await client.wait_for(is_type("stream_end", stream=start["stream"]))
    finally:
        await client.close()

    assert end["reason"] == "error"
    message = end["error"]["message"]
    assert end["error"]["code"] == "provider_error"
    assert "is /v1 missing from base_url?" in message
    assert openai.origin.removeprefix("http://") not in message
    lines = [r.getMessage() for r in caplog.records if r.name == "rtserver.providers"]
    assert len(lines) == 1
    assert lines[0].startswith(f"model 'local-llama' (openai 'llama3.2' at {openai.origin})")
    assert f"POST {openai.origin}/chat/completions answered 404" in lines[0]
    assert KEY not in lines[0]
