"""What each model is sent, bounded: the context by messages and characters, max_tokens clamped.

The models point at the vendor-format fakes, which record every request body the real SDKs
send, so the assertions are about the bytes that would reach OpenAI and Anthropic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits, ModelSpec
from tests.conftest import ServerFactory, ws_url
from tests.fakes import anthropic_server as anth
from tests.fakes import openai_server as oai
from tests.fakes._loopback import RecordedRequest
from tests.support import RoomClient, fast_settings, is_type

ENV = {"TEST_OPENAI_KEY": "sk-caps-openai", "TEST_ANTHROPIC_KEY": "sk-ant-caps"}


@dataclass
class Vendors:
    openai: oai.OpenAIServer
    anthropic: anth.AnthropicServer

    def bodies(self, vendor_model: str) -> list[dict[str, Any]]:
        requests: list[RecordedRequest] = self.openai.requests + self.anthropic.requests
        return [r.body for r in requests if r.model == vendor_model]


@pytest.fixture
async def vendors() -> AsyncIterator[Vendors]:
    async with (
        oai.OpenAIServer(api_key=ENV["TEST_OPENAI_KEY"]) as openai,
        anth.AnthropicServer(api_key=ENV["TEST_ANTHROPIC_KEY"]) as anthropic,
    ):
        yield Vendors(openai, anthropic)


def _models(vendors: Vendors) -> tuple[ModelSpec, ...]:
    """gpt and claude, each once with a configured max_tokens and once without."""

    def gpt(model_id: str, **params: object) -> ModelSpec:
        return ModelSpec(
            id=model_id,
            provider="openai",
            model=f"vendor-{model_id}",
            base_url=vendors.openai.base_url,
            api_key_env="TEST_OPENAI_KEY",
            params=dict(params),
            timeout_s=5,
        )

    def claude(model_id: str, **params: object) -> ModelSpec:
        return ModelSpec(
            id=model_id,
            provider="anthropic",
            model=f"vendor-{model_id}",
            base_url=vendors.anthropic.base_url,
            api_key_env="TEST_ANTHROPIC_KEY",
            params=dict(params),
            timeout_s=5,
        )

    return (
        gpt("gpt", default=True),
        gpt("gpt-capped", max_tokens=256),
        claude("claude"),
        claude("claude-capped", max_tokens=300),
    )


async def _start(
    start_server: ServerFactory, db_path: str, vendors: Vendors, limits: Limits
) -> TestServer:
    settings = fast_settings(db_path, models=_models(vendors), limits=limits)
    return await start_server(settings, env=ENV)


async def _turn(client: RoomClient, pid: str, text: str, models: list[str], **extra: Any) -> None:
    """Send a prompt and wait until every model's stream has ended."""
    await client.send({"type": "prompt", "id": pid, "text": text, "models": models, **extra})
    message = await client.wait_for(is_type("message", prompt_id=pid))
    await client.wait_for(
        lambda _: (
            len([s for s in client.of_type("stream_start") if s["reply_to"] == message["id"]])
            == len(models)
        )
    )
    for start in [s for s in client.of_type("stream_start") if s["reply_to"] == message["id"]]:
        end = await client.wait_for(is_type("stream_end", stream=start["stream"]))
        assert end["reason"] == "complete", end


def _sent_chars(body: dict[str, Any]) -> int:
    return sum(len(m["content"]) for m in body["messages"] if isinstance(m["content"], str))


def _user_texts(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


async def test_context_chars_bounds_every_upstream_request_keeping_the_newest_prompt(
    start_server: ServerFactory, db_path: str, vendors: Vendors, http: aiohttp.ClientSession
) -> None:
    limits = Limits(context_chars=7_000, max_prompt_chars=4_000, context_messages=100)
    server = await _start(start_server, db_path, vendors, limits)
    client = await RoomClient.connect(http, ws_url(server, "ctx"))
    try:
        for n in range(6):
            await _turn(client, f"p{n}", f"{n}" * 3_000, ["gpt", "claude"])
    finally:
        await client.close()
    for vendor_model in ("vendor-gpt", "vendor-claude"):
        bodies = vendors.bodies(vendor_model)
        assert len(bodies) == 6
        for n, body in enumerate(bodies):
            assert _sent_chars(body) <= 7_000, (vendor_model, n, _sent_chars(body))
            # The prompt that started the request is always its last user turn.
            assert _user_texts(body)[-1] == f"{n}" * 3_000
        # Without the budget the last request would carry all six prompts (18,000 characters).
        assert len(_user_texts(bodies[-1])) == 2


async def test_context_messages_bounds_every_upstream_request(
    start_server: ServerFactory, db_path: str, vendors: Vendors, http: aiohttp.ClientSession
) -> None:
    server = await _start(start_server, db_path, vendors, Limits(context_messages=3))
    client = await RoomClient.connect(http, ws_url(server, "ctx-count"))
    try:
        for n in range(5):
            await _turn(client, f"p{n}", f"prompt number {n}", ["gpt", "claude"])
    finally:
        await client.close()
    for vendor_model in ("vendor-gpt", "vendor-claude"):
        bodies = vendors.bodies(vendor_model)
        assert [len(b["messages"]) for b in bodies][-3:] == [3, 3, 3]
        assert _user_texts(bodies[-1])[-1] == "prompt number 4"


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        # model -> the max_tokens its upstream request carries
        (1_000_000, {"gpt": 1_000, "gpt-capped": 256, "claude": 1_000, "claude-capped": 300}),
        (100, {"gpt": 100, "gpt-capped": 100, "claude": 100, "claude-capped": 100}),
    ],
)
async def test_a_prompts_max_tokens_is_clamped_to_the_models_or_the_servers_cap(
    start_server: ServerFactory,
    db_path: str,
    vendors: Vendors,
    http: aiohttp.ClientSession,
    asked: int,
    expected: dict[str, int],
) -> None:
    server = await _start(start_server, db_path, vendors, Limits(max_tokens=1_000))
    client = await RoomClient.connect(http, ws_url(server, "clamp"))
    try:
        await _turn(client, "p1", "hello", list(expected), params={"max_tokens": asked})
    finally:
        await client.close()
    sent = {model: vendors.bodies(f"vendor-{model}")[0]["max_tokens"] for model in expected}
    assert sent == expected


async def test_without_a_prompt_value_the_configured_max_tokens_is_sent(
    start_server: ServerFactory, db_path: str, vendors: Vendors, http: aiohttp.ClientSession
) -> None:
    server = await _start(start_server, db_path, vendors, Limits(max_tokens=1_000))
    client = await RoomClient.connect(http, ws_url(server, "clamp-none"))
    try:
        await _turn(client, "p1", "hello", ["gpt-capped", "claude-capped"])
    finally:
        await client.close()
    assert vendors.bodies("vendor-gpt-capped")[0]["max_tokens"] == 256
    assert vendors.bodies("vendor-claude-capped")[0]["max_tokens"] == 300
