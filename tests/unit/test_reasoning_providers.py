"""Thinking tokens from each provider arrive as ReasoningDelta, apart from the answer's text.

The vendor providers drive the real SDKs at the loopback fakes, which send thinking exactly as
the vendors do: Anthropic's ``thinking`` blocks, the ``reasoning_content`` and ``reasoning``
deltas of OpenAI-compatible servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rtserver.providers.anthropic import AnthropicProvider
from rtserver.providers.base import (
    Delta,
    FinishDelta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    UsageDelta,
)
from rtserver.providers.demo import DemoProvider, compose_reasoning, compose_reply
from rtserver.providers.openai import OpenAIProvider
from tests.fakes import anthropic_server as anthropic_fake
from tests.fakes import openai_server as openai_fake
from tests.fakes.drive import ask, collect, collect_and_close

KEY = "sk-test-reasoning"
THINKING = {"type": "enabled", "budget_tokens": 2048}


@pytest.fixture
async def claude() -> AsyncIterator[anthropic_fake.AnthropicServer]:
    async with anthropic_fake.AnthropicServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def compatible() -> AsyncIterator[openai_fake.OpenAIServer]:
    async with openai_fake.OpenAIServer(api_key=KEY) as server:
        yield server


def _claude(server: anthropic_fake.AnthropicServer) -> AnthropicProvider:
    return AnthropicProvider(
        model="claude-test",
        api_key=KEY,
        base_url=server.base_url,
        timeout_s=5,
        params={"thinking": THINKING, "max_tokens": 8192},
    )


def _compatible(server: openai_fake.OpenAIServer) -> OpenAIProvider:
    return OpenAIProvider(model="qwen3", api_key=KEY, base_url=server.base_url, timeout_s=5)


async def test_anthropic_thinking_blocks_stream_as_reasoning_before_the_answer(
    claude: anthropic_fake.AnthropicServer,
) -> None:
    claude.script(anthropic_fake.thinking_reply(["Let me", " add them: 2 + 2"], ["It is", " 4."]))

    outcome = await collect_and_close(_claude(claude))

    assert outcome.error is None
    assert outcome.deltas == [
        ReasoningDelta("Let me"),
        ReasoningDelta(" add them: 2 + 2"),
        TextDelta("It is"),
        TextDelta(" 4."),
        UsageDelta(input_tokens=21, output_tokens=30),
        FinishDelta("complete"),
    ]
    # The configured params turn thinking on: they reach the Messages API as they are.
    body = claude.requests[0].body
    assert body["thinking"] == THINKING
    assert body["max_tokens"] == 8192


async def test_anthropic_signatures_and_redacted_thinking_yield_nothing(
    claude: anthropic_fake.AnthropicServer,
) -> None:
    claude.script(
        anthropic_fake.StreamReply(
            [
                anthropic_fake.RedactedThinking(),
                anthropic_fake.Thinking("plan"),
                anthropic_fake.Text("answer"),
                anthropic_fake.Thinking("again"),
                anthropic_fake.Stop(),
            ]
        )
    )

    outcome = await collect_and_close(_claude(claude))

    # Each thinking block ends with a signature_delta: opaque, neither reasoning nor answer.
    assert outcome.reasoning == "planagain"
    assert outcome.text == "answer"
    assert outcome.finish == "complete"


async def test_anthropic_thinking_cut_short_keeps_what_came(
    claude: anthropic_fake.AnthropicServer,
) -> None:
    claude.script(
        anthropic_fake.StreamReply([anthropic_fake.Thinking("half a"), anthropic_fake.Abort()])
    )

    outcome = await collect_and_close(_claude(claude))

    assert outcome.reasoning == "half a"
    assert outcome.error is not None
    assert outcome.error.code == "provider_error"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_compatible_servers_reasoning_streams_apart_from_content(
    compatible: openai_fake.OpenAIServer, field: str
) -> None:
    compatible.script(
        openai_fake.reasoning_reply(
            ["9.11 vs", " 9.8:"],
            ["9.8 is", " greater."],
            field="reasoning" if field == "reasoning" else "reasoning_content",
        )
    )

    outcome = await collect_and_close(_compatible(compatible))

    assert outcome.error is None
    assert [d for d in outcome.deltas if isinstance(d, ReasoningDelta | TextDelta)] == [
        ReasoningDelta("9.11 vs", tokens=1),
        ReasoningDelta(" 9.8:", tokens=1),
        TextDelta("9.8 is", tokens=1),
        TextDelta(" greater.", tokens=1),
    ]
    assert outcome.usage == UsageDelta(input_tokens=9, output_tokens=12)


async def test_compatible_reasoning_of_another_type_is_not_followed(
    compatible: openai_fake.OpenAIServer,
) -> None:
    chunk = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"reasoning":{"effort":"high"},'
        b'"reasoning_content":42,"content":"ok"},"finish_reason":null}]}\n\n'
    )
    compatible.script(
        openai_fake.StreamReply(
            [openai_fake.Raw(chunk), openai_fake.Finish("stop"), openai_fake.Done()]
        )
    )

    outcome = await collect_and_close(_compatible(compatible))

    assert outcome.error is None
    assert outcome.reasoning == ""
    assert outcome.text == "ok"


def _demo_request(*, reasoning: bool, max_tokens: int | None = None) -> GenerationRequest:
    base = ask("How does caching shape latency?", max_tokens=max_tokens)
    return GenerationRequest(
        messages=base.messages, max_tokens=base.max_tokens, reasoning=reasoning
    )


async def _deltas(provider: DemoProvider, request: GenerationRequest) -> list[Delta]:
    return (await collect(provider, request)).deltas


async def test_demo_thinks_first_when_the_prompt_asks() -> None:
    provider = DemoProvider(tokens_per_s=10_000, first_token_s=0)
    request = _demo_request(reasoning=True)

    deltas = await _deltas(provider, request)

    kinds = [type(d) for d in deltas if isinstance(d, ReasoningDelta | TextDelta)]
    thoughts = compose_reasoning(request)
    answer = compose_reply(request)
    # Every thought, then every answer token: reasoning never interleaves with the answer.
    assert kinds == [ReasoningDelta] * len(thoughts) + [TextDelta] * len(answer)
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    assert "caching" in reasoning
    usage = next(d for d in deltas if isinstance(d, UsageDelta))
    # Thinking is output as vendors count it.
    assert usage.output_tokens == len(thoughts) + len(answer)


async def test_demo_thinks_when_its_configured_params_say_so() -> None:
    provider = DemoProvider(tokens_per_s=10_000, first_token_s=0, params={"reasoning": True})

    deltas = await _deltas(provider, _demo_request(reasoning=False))

    assert isinstance(deltas[0], ReasoningDelta)


async def test_demo_without_reasoning_sends_none_and_max_tokens_caps_the_answer() -> None:
    provider = DemoProvider(tokens_per_s=10_000, first_token_s=0, params={"reasoning": "yes"})

    plain = await _deltas(provider, _demo_request(reasoning=False))
    capped = await _deltas(provider, _demo_request(reasoning=True, max_tokens=3))

    # Only true turns it on: a configured string is no answer to a yes-or-no question.
    assert not any(isinstance(d, ReasoningDelta) for d in plain)
    assert sum(isinstance(d, TextDelta) for d in capped) == 3
    assert any(isinstance(d, ReasoningDelta) for d in capped)
    assert capped[-1] == FinishDelta("length")
