"""A router's classifier, the real OpenAI SDK against the loopback fake: it answers, is too slow,
fails or talks nonsense, and routing always ends with a choice, the rules' when need be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import msgspec
import pytest

from rtserver.config import ModelSpec
from rtserver.providers.base import Delta, GenerationRequest, TextDelta
from rtserver.providers.openai import OpenAIProvider
from rtserver.turns.classifier import PROMPT_CHARS, classifier_request, classify
from rtserver.turns.router import Router
from tests.fakes.drive import refusing_port
from tests.fakes.openai_server import (
    Hang,
    OpenAIServer,
    StreamReply,
    Text,
    rate_limited,
    text_reply,
)

KEY = "sk-classifier-test"
CODE = "```\nx = 1\n```"
LABELS = {"coder": "Strong coder", "fast": "Fast and cheap", "general": "General"}


def make_router(timeout_s: float = 5.0) -> Router:
    spec = msgspec.convert(
        {
            "id": "auto",
            "provider": "router",
            "routes": [{"when": {"contains_code": True}, "model": "coder"}],
            "fallback": ["general", "fast"],
            "classifier": "tiny",
            "classifier_timeout_s": timeout_s,
        },
        ModelSpec,
    )
    return Router(spec)


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def tiny(fake: OpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        model="tiny-1",
        api_key=KEY,
        base_url=fake.base_url,
        timeout_s=5,
        params={},
        key_env="OPENAI_API_KEY",
        model_id="tiny",
    )
    yield provider
    await provider.aclose()


async def test_the_classifier_chooses_and_the_rules_order_follows(
    fake: OpenAIServer, tiny: OpenAIProvider
) -> None:
    fake.script(text_reply("fa", "st"))
    choice = await classify(make_router(), CODE, classifier_id="tiny", provider=tiny, labels=LABELS)
    assert choice.candidates == ("fast", "coder", "general")
    assert choice.reason == "chosen by classifier tiny"
    [asked] = fake.requests
    question = asked.body["messages"][-1]["content"]
    assert "- coder: Strong coder" in question
    assert "- fast: Fast and cheap" in question
    assert question.endswith(CODE)
    assert asked.body["max_tokens"] == 16
    assert asked.body["temperature"] == 0.0


async def test_a_classifier_too_slow_leaves_it_to_the_rules_and_closes_its_request(
    fake: OpenAIServer, tiny: OpenAIProvider
) -> None:
    fake.script(StreamReply([Text("co"), Hang()]))
    choice = await classify(
        make_router(timeout_s=0.2), CODE, classifier_id="tiny", provider=tiny, labels=LABELS
    )
    assert choice.candidates == ("coder", "general", "fast")
    assert choice.reason == "route 1: contains code (classifier tiny too slow)"
    # On a busy machine the request may not have got there in time; one that did is closed.
    for asked in fake.requests:
        await asyncio.wait_for(asked.disconnected.wait(), 5)


class Silent:
    """A classifier that never answers, with no network in the way: the timeout alone decides."""

    kind = "silent"

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        try:
            await asyncio.Event().wait()
            yield TextDelta("never")
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        return None


async def test_a_silent_classifier_is_given_up_on_and_closed() -> None:
    silent = Silent()
    choice = await classify(
        make_router(timeout_s=0.05), "hi", classifier_id="tiny", provider=silent, labels={}
    )
    assert choice.reason == "no route matched: first fallback (classifier tiny too slow)"
    assert silent.closed.is_set()


@pytest.mark.parametrize(
    "answer",
    ["banana", "coder or fast", "", "\u202e\x00", "fastest", "general-purpose model"],
)
async def test_nonsense_from_the_classifier_leaves_it_to_the_rules(
    fake: OpenAIServer, tiny: OpenAIProvider, answer: str
) -> None:
    fake.script(text_reply(answer) if answer else text_reply())
    choice = await classify(
        make_router(), "hello there", classifier_id="tiny", provider=tiny, labels=LABELS
    )
    assert choice.candidates == ("general", "fast")
    assert choice.reason == "no route matched: first fallback (classifier tiny named no candidate)"


async def test_a_long_answer_is_not_read_to_its_end(
    fake: OpenAIServer, tiny: OpenAIProvider
) -> None:
    fake.script(StreamReply([Text("blah " * 100), Hang()]))
    choice = await classify(
        make_router(), "hello", classifier_id="tiny", provider=tiny, labels=LABELS
    )
    assert "named no candidate" in choice.reason
    await asyncio.wait_for(fake.requests[0].disconnected.wait(), 5)


async def test_a_rate_limited_classifier_leaves_it_to_the_rules(
    fake: OpenAIServer, tiny: OpenAIProvider
) -> None:
    fake.script(rate_limited())
    choice = await classify(make_router(), CODE, classifier_id="tiny", provider=tiny, labels={})
    assert choice.model == "coder"
    assert choice.reason == "route 1: contains code (classifier tiny failed: rate_limited)"


async def test_an_unreachable_classifier_leaves_it_to_the_rules() -> None:
    with refusing_port() as port:
        provider = OpenAIProvider(
            model="tiny-1",
            api_key=KEY,
            base_url=f"http://127.0.0.1:{port}/v1",
            timeout_s=5,
            params={},
            key_env="OPENAI_API_KEY",
            model_id="tiny",
        )
        try:
            choice = await classify(
                make_router(), "hi", classifier_id="tiny", provider=provider, labels={}
            )
        finally:
            await provider.aclose()
    assert choice.model == "general"
    assert "(classifier tiny failed: provider_error)" in choice.reason


class Broken:
    """A provider with a bug: not a ProviderError, which routing must survive too."""

    kind = "broken"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        yield TextDelta("fa")
        raise RuntimeError("a bug")

    async def aclose(self) -> None:
        return None


async def test_a_classifier_that_breaks_leaves_it_to_the_rules() -> None:
    choice = await classify(make_router(), "hi", classifier_id="tiny", provider=Broken(), labels={})
    assert choice.reason == "no route matched: first fallback (classifier tiny failed)"


def test_the_classifier_is_shown_a_bounded_part_of_a_huge_prompt() -> None:
    request = classifier_request("é" * 100_000, {"a": "A"})
    assert request.messages[-1].content.count("é") == PROMPT_CHARS
