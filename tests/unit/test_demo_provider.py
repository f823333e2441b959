"""The demo model: answers from the prompt's words, at its pace, within max_tokens."""

from __future__ import annotations

import time

from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    TextDelta,
    UsageDelta,
)
from rtserver.providers.demo import ANSWER_TOKENS, DemoProvider


def _ask(text: str, *, max_tokens: int | None = None) -> GenerationRequest:
    return GenerationRequest(messages=(ChatTurn("user", text),), max_tokens=max_tokens)


async def _collect(provider: DemoProvider, request: GenerationRequest) -> list[Delta]:
    return [delta async for delta in provider.stream(request)]


async def test_answer_responds_to_the_prompt_and_reports_usage() -> None:
    deltas = await _collect(
        DemoProvider(tokens_per_s=10_000, first_token_s=0), _ask("Why do glaciers move?")
    )
    texts = [d.text for d in deltas if isinstance(d, TextDelta)]
    assert ANSWER_TOKENS * 3 // 4 <= len(texts) <= ANSWER_TOKENS
    assert "glaciers" in "".join(texts)
    assert texts[-1].endswith(".")
    usage = next(d for d in deltas if isinstance(d, UsageDelta))
    assert usage.output_tokens == len(texts)
    assert usage.input_tokens == 4
    assert deltas[-1] == FinishDelta("complete")


async def test_max_tokens_cuts_the_answer_with_reason_length() -> None:
    deltas = await _collect(
        DemoProvider(tokens_per_s=10_000, first_token_s=0), _ask("glaciers", max_tokens=7)
    )
    assert len([d for d in deltas if isinstance(d, TextDelta)]) == 7
    assert deltas[-1] == FinishDelta("length")


async def test_the_pace_is_at_most_the_configured_rate() -> None:
    provider = DemoProvider(tokens_per_s=200, first_token_s=0.05)
    started = time.monotonic()
    await _collect(provider, _ask("pace", max_tokens=21))
    # 50 ms to the first token, then 20 intervals of 5 ms: never faster than that.
    assert time.monotonic() - started >= 0.149


async def test_each_turn_of_a_conversation_opens_differently() -> None:
    fast = DemoProvider(tokens_per_s=10_000, first_token_s=0)
    first = await _collect(fast, _ask("rivers"))
    second_request = GenerationRequest(
        messages=(
            ChatTurn("user", "rivers"),
            ChatTurn("assistant", "..."),
            ChatTurn("user", "rivers"),
        )
    )
    second = await _collect(fast, second_request)
    assert first[:5] != second[:5]


async def test_configured_max_tokens_is_a_default_the_prompt_can_override() -> None:
    provider = DemoProvider(tokens_per_s=10_000, first_token_s=0, params={"max_tokens": 6})
    configured = await _collect(provider, _ask("glaciers"))
    assert len([d for d in configured if isinstance(d, TextDelta)]) == 6
    assert configured[-1] == FinishDelta("length")
    asked = await _collect(provider, _ask("glaciers", max_tokens=3))
    assert len([d for d in asked if isinstance(d, TextDelta)]) == 3
