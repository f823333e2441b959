"""A routed stream over its candidates, with the real SDKs against the loopback fakes: the next
model takes over after a failure before the first token (429, refused connection, missing key,
an overloaded stream), never after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing

import pytest

from rtserver.config import ModelSpec
from rtserver.errors import ProviderError
from rtserver.protocol.frames import ModelInfo
from rtserver.providers.base import (
    Delta,
    FinishDelta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    UsageDelta,
)
from rtserver.providers.catalog import Model
from rtserver.providers.registry import build_provider
from rtserver.turns.fallback import routed_deltas, switch_reason
from tests.fakes import anthropic_server as claude
from tests.fakes import openai_server as oai
from tests.fakes.drive import ask, refusing_port
from tests.support import eventually

OPENAI_KEY = "sk-openai-fallback"
ANTHROPIC_KEY = "sk-ant-fallback"
ENV = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}


@pytest.fixture
async def openai_fake() -> AsyncIterator[oai.OpenAIServer]:
    async with oai.OpenAIServer(api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[claude.AnthropicServer]:
    async with claude.AnthropicServer(api_key=ANTHROPIC_KEY) as server:
        yield server


def model(spec: ModelSpec, env: dict[str, str] = ENV) -> Model:
    info = ModelInfo(id=spec.id, label=spec.id, provider=spec.provider)
    return Model(spec=spec, provider=build_provider(spec, env), info=info)


def gpt(fake: oai.OpenAIServer | None = None, *, base_url: str | None = None) -> Model:
    url = base_url or (fake.base_url if fake else None)
    spec = ModelSpec(
        id="gpt", provider="openai", model="gpt-x", base_url=url, api_key_env="OPENAI_API_KEY"
    )
    return model(spec)


def sonnet(fake: claude.AnthropicServer) -> Model:
    return model(
        ModelSpec(id="sonnet", provider="anthropic", model="claude-x", base_url=fake.base_url)
    )


class Run:
    """One routed stream run to its end: what it yielded, who started, what switched."""

    def __init__(self) -> None:
        self.deltas: list[Delta] = []
        self.started: list[str] = []
        self.switches: list[tuple[str, str, str]] = []
        self.error: ProviderError | None = None
        self.asked: list[str] = []

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas if isinstance(d, TextDelta))

    def request_for(self, candidate: Model) -> GenerationRequest:
        self.asked.append(candidate.id)
        return ask("the lane's question")

    async def go(self, candidates: Sequence[Model]) -> Run:
        stream = routed_deltas(
            candidates,
            self.request_for,
            on_switch=lambda failed, to, exc: self.switches.append(
                (failed.id, to.id, switch_reason(failed, exc))
            ),
            on_start=lambda m: self.started.append(m.id),
        )
        try:
            async with aclosing(stream) as deltas:
                async for delta in deltas:
                    self.deltas.append(delta)
        except ProviderError as exc:
            self.error = exc
        finally:
            for candidate in candidates:
                await candidate.provider.aclose()
        return self


async def test_a_429_before_the_first_token_hands_the_stream_to_the_next(
    openai_fake: oai.OpenAIServer, anthropic_fake: claude.AnthropicServer
) -> None:
    openai_fake.script(oai.rate_limited(retry_after="7"))
    anthropic_fake.script(claude.text_reply("Hello", " from Claude", output_tokens=4))
    run = await Run().go([gpt(openai_fake), sonnet(anthropic_fake)])
    assert run.error is None
    assert run.text == "Hello from Claude"
    assert run.started == ["gpt", "sonnet"]
    assert run.asked == ["gpt", "sonnet"]
    [(failed, to, reason)] = run.switches
    assert (failed, to) == ("gpt", "sonnet")
    assert reason == "gpt failed before its first token: " + (
        "the provider's rate limit was reached; try again later"
    )
    assert len(openai_fake.requests) == 1
    assert anthropic_fake.requests[0].body["messages"][-1]["content"] == "the lane's question"


async def test_a_refused_connection_hands_the_stream_to_the_next(
    anthropic_fake: claude.AnthropicServer,
) -> None:
    with refusing_port() as port:
        run = await Run().go([gpt(base_url=f"http://127.0.0.1:{port}/v1"), sonnet(anthropic_fake)])
    assert run.error is None
    assert run.text == "Hello from Claude"
    assert [s[:2] for s in run.switches] == [("gpt", "sonnet")]


async def test_a_missing_key_hands_the_stream_to_the_next(
    anthropic_fake: claude.AnthropicServer,
) -> None:
    keyless = model(ModelSpec(id="gpt", provider="openai", model="gpt-x"), env={})
    run = await Run().go([keyless, sonnet(anthropic_fake)])
    assert run.text == "Hello from Claude"
    assert run.switches[0][2] == "gpt failed before its first token: OPENAI_API_KEY is not set"


async def test_what_a_failed_candidate_sent_before_failing_is_dropped(
    openai_fake: oai.OpenAIServer, anthropic_fake: claude.AnthropicServer
) -> None:
    # message_start (with its usage) comes first, then the overload: nothing of it survives.
    anthropic_fake.script(claude.StreamReply([claude.StreamError()], input_tokens=999))
    openai_fake.script(oai.text_reply("fine", usage=(5, 1)))
    run = await Run().go([sonnet(anthropic_fake), gpt(openai_fake)])
    assert run.error is None
    assert [s[:2] for s in run.switches] == [("sonnet", "gpt")]
    usages = [d for d in run.deltas if isinstance(d, UsageDelta)]
    assert usages == [UsageDelta(input_tokens=5, output_tokens=1)]


async def test_a_failure_after_the_first_token_ends_the_stream(
    openai_fake: oai.OpenAIServer, anthropic_fake: claude.AnthropicServer
) -> None:
    openai_fake.script(oai.StreamReply([oai.Text("Half"), oai.StreamError()]))
    run = await Run().go([gpt(openai_fake), sonnet(anthropic_fake)])
    assert run.text == "Half"
    assert run.error is not None
    assert run.switches == []
    assert run.started == ["gpt"]
    assert anthropic_fake.requests == []


async def test_when_every_candidate_fails_the_last_error_ends_the_stream(
    openai_fake: oai.OpenAIServer, anthropic_fake: claude.AnthropicServer
) -> None:
    openai_fake.script(oai.rate_limited())
    anthropic_fake.script(claude.error_reply(529, "overloaded_error", "Overloaded"))
    run = await Run().go([gpt(openai_fake), sonnet(anthropic_fake)])
    assert run.deltas == []
    assert run.error is not None
    assert run.error.code == "busy"  # the last candidate's error: overloaded
    assert [s[:2] for s in run.switches] == [("gpt", "sonnet")]


class Scripted:
    """A provider that yields ``deltas``, then raises ``error`` if given."""

    kind = "scripted"

    def __init__(self, deltas: Sequence[Delta], error: ProviderError | None = None) -> None:
        self._deltas = deltas
        self._error = error
        self.closed = False

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        try:
            for delta in self._deltas:
                yield delta
            if self._error is not None:
                raise self._error
        finally:
            self.closed = True

    async def aclose(self) -> None:
        return None


def scripted(model_id: str, deltas: Sequence[Delta], error: ProviderError | None = None) -> Model:
    spec = ModelSpec(id=model_id, provider="demo")
    info = ModelInfo(id=model_id, label=model_id, provider="demo")
    return Model(spec=spec, provider=Scripted(deltas, error), info=info)


async def test_early_deltas_of_the_candidate_that_answers_are_kept_in_order() -> None:
    answering = scripted(
        "b", [UsageDelta(3, 0), TextDelta(""), TextDelta("hi"), FinishDelta("complete")]
    )
    failing = scripted("a", [UsageDelta(9, 9)], ProviderError("provider_error", "down"))
    run = await Run().go([failing, answering])
    assert run.deltas == [UsageDelta(3, 0), TextDelta(""), TextDelta("hi"), FinishDelta("complete")]


async def test_a_failure_after_the_first_thought_ends_the_stream() -> None:
    thinker = scripted("a", [ReasoningDelta("hmm")], ProviderError("provider_error", "down"))
    run = await Run().go([thinker, scripted("b", [TextDelta("unused")])])
    assert run.deltas == [ReasoningDelta("hmm")]
    assert run.error is not None
    assert run.switches == []


async def test_a_candidate_that_ends_without_a_token_is_its_answer() -> None:
    empty = scripted("a", [UsageDelta(3, 0), FinishDelta("length")])
    run = await Run().go([empty, scripted("b", [TextDelta("unused")])])
    assert run.deltas == [UsageDelta(3, 0), FinishDelta("length")]
    assert run.started == ["a"]


async def test_cancelling_while_a_candidate_hangs_closes_its_request(
    openai_fake: oai.OpenAIServer, anthropic_fake: claude.AnthropicServer
) -> None:
    openai_fake.script(oai.StreamReply([oai.Hang()]))
    run = Run()
    task = asyncio.create_task(run.go([gpt(openai_fake), sonnet(anthropic_fake)]))
    await eventually(lambda: bool(openai_fake.requests))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(openai_fake.requests[0].disconnected.wait(), 5)
    assert run.switches == []
    assert anthropic_fake.requests == []


async def test_no_candidates_is_a_mistake_of_the_caller() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        await Run().go([])
