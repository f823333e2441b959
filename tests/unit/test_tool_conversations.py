"""A whole tool loop through the real OpenAI and Anthropic SDKs against the vendor fakes.

Step one streams two parallel calls; the loop runs them (the built-in calculator, and a tool the
model was not offered); step two's request must carry the calls and their results in the
vendor's exact format, which the fakes check as the vendors do (a call without its result is a
400), and the model answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rtserver.protocol.frames import ToolCallRecord
from rtserver.providers.anthropic import AnthropicProvider
from rtserver.providers.base import (
    ChatTurn,
    GenerationRequest,
    Provider,
    ToolCallPart,
    ToolResultPart,
)
from rtserver.providers.openai import OpenAIProvider
from rtserver.tools.toolbox import Toolbox, ToolSet
from rtserver.turns.approvals import Approvals
from rtserver.turns.tools import StepCall, StepOutcome, ToolLimits, ToolLoop, run_steps
from tests.fakes import anthropic_server, openai_server
from tests.fakes.drive import collect

KEY = "sk-test-tools"
PROMPT = "What is 17*23, and how is the weather in Oslo?"
CALC_ARGS = '{"expression": "17*23"}'
WEATHER_ARGS = '{"city": "Oslo"}'


class _Silent:
    def approval(self, call: str, name: str, args: str) -> None: ...
    def decision(self, call: str, allow: bool, by: object) -> None: ...
    def result(self, record: ToolCallRecord) -> None: ...


def builtin_tools() -> ToolSet:
    return Toolbox.build([]).for_model(["builtin"])


async def run_loop(
    provider: Provider, tools: ToolSet, *, max_steps: int = 3
) -> tuple[str, list[ToolCallRecord]]:
    """What the generation does: step, run the calls, send the results, step again."""
    texts: list[str] = []

    async def step(request: GenerationRequest) -> StepOutcome:
        outcome = await collect(provider, request)
        assert outcome.error is None, outcome.error
        texts.append(outcome.text)
        calls = [StepCall(c, name, args) for c, (name, args) in outcome.tool_calls().items()]
        return StepOutcome(text=outcome.text, calls=calls)

    loop = ToolLoop(reporter=_Silent(), approvals=Approvals(), limits=ToolLimits())
    records = await run_steps(
        GenerationRequest(messages=(ChatTurn("user", PROMPT),)),
        step=step,
        loop=loop,
        tools=lambda: tools,
        max_steps=max_steps,
    )
    return "".join(texts), records


@pytest.fixture
async def openai_fake() -> AsyncIterator[openai_server.OpenAIServer]:
    async with openai_server.OpenAIServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[anthropic_server.AnthropicServer]:
    async with anthropic_server.AnthropicServer(api_key=KEY) as server:
        yield server


async def test_openai_a_two_call_step_and_the_answer_after_its_results(
    openai_fake: openai_server.OpenAIServer,
) -> None:
    openai_fake.script_steps(
        openai_server.tool_call_reply(
            [
                ("call_calc", "calculator", ['{"expression"', ': "17*23"}']),
                ("call_wx", "weather", [WEATHER_ARGS]),
            ],
            text=["Checking."],
        ),
        openai_server.text_reply("It is ", "391."),
    )
    provider = OpenAIProvider(model="gpt-test", api_key=KEY, base_url=openai_fake.base_url)
    try:
        text, records = await run_loop(provider, builtin_tools())
    finally:
        await provider.aclose()
    assert text == "Checking.It is 391."
    assert [(r.call, r.result, r.error and r.error.code) for r in records] == [
        ("call_calc", "391", None),
        ("call_wx", None, "unknown_tool"),
    ]
    error = records[1].error
    assert error is not None
    first, second = openai_fake.requests
    assert [t["function"]["name"] for t in first.body["tools"]] == ["calculator", "clock"]
    assert first.body["tools"][0]["type"] == "function"
    assert first.body["tools"][0]["function"]["parameters"]["required"] == ["expression"]
    assert second.body["messages"] == [
        {"role": "user", "content": PROMPT},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_calc",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": CALC_ARGS},
                },
                {
                    "id": "call_wx",
                    "type": "function",
                    "function": {"name": "weather", "arguments": WEATHER_ARGS},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_calc", "content": "391"},
        {
            "role": "tool",
            "tool_call_id": "call_wx",
            "content": f"error (unknown_tool): {error.message}",
        },
    ]


async def test_anthropic_a_two_call_step_and_the_answer_after_its_results(
    anthropic_fake: anthropic_server.AnthropicServer,
) -> None:
    anthropic_fake.script_steps(
        anthropic_server.tool_use_reply(
            [
                ("toolu_calc", "calculator", ['{"expression"', ': "17*23"}']),
                ("toolu_wx", "weather", [WEATHER_ARGS]),
            ],
            text=["Checking."],
        ),
        anthropic_server.text_reply("It is ", "391."),
    )
    provider = AnthropicProvider(model="claude-test", api_key=KEY, base_url=anthropic_fake.base_url)
    try:
        text, records = await run_loop(provider, builtin_tools())
    finally:
        await provider.aclose()
    assert text == "Checking.It is 391."
    first, second = anthropic_fake.requests
    assert [t["name"] for t in first.body["tools"]] == ["calculator", "clock"]
    assert first.body["tools"][0]["input_schema"]["type"] == "object"
    error = records[1].error
    assert error is not None
    assert second.body["messages"] == [
        {"role": "user", "content": PROMPT},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_calc",
                    "name": "calculator",
                    "input": json.loads(CALC_ARGS),
                },
                {
                    "type": "tool_use",
                    "id": "toolu_wx",
                    "name": "weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_calc",
                    "content": "391",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_wx",
                    "content": f"error (unknown_tool): {error.message}",
                    "is_error": True,
                },
            ],
        },
    ]


def _dangling_call() -> GenerationRequest:
    """A step's calls sent back without their results: what the vendors refuse."""
    call = ToolCallPart(call="call_1", name="calculator", args="{}")
    return GenerationRequest(
        messages=(
            ChatTurn("user", "hi"),
            ChatTurn("assistant", "", tool_calls=(call,)),
            ChatTurn("user", "and?"),
        ),
    )


async def test_openai_fake_refuses_a_call_without_its_result(
    openai_fake: openai_server.OpenAIServer,
) -> None:
    provider = OpenAIProvider(model="gpt-test", api_key=KEY, base_url=openai_fake.base_url)
    try:
        outcome = await collect(provider, _dangling_call())
    finally:
        await provider.aclose()
    assert outcome.error is not None
    assert outcome.error.code == "provider_error"


async def test_anthropic_fake_refuses_a_call_without_its_result(
    anthropic_fake: anthropic_server.AnthropicServer,
) -> None:
    provider = AnthropicProvider(model="claude-test", api_key=KEY, base_url=anthropic_fake.base_url)
    try:
        outcome = await collect(provider, _dangling_call())
    finally:
        await provider.aclose()
    assert outcome.error is not None
    assert outcome.error.code == "provider_error"


@pytest.mark.parametrize(
    "messages",
    [
        # A tool message answering no call.
        [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "1"}],
        # Two calls, one result.
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "user", "content": "y"},
        ],
    ],
)
def test_openai_fake_knows_the_rules_of_a_tool_conversation(messages: list[Any]) -> None:
    assert openai_server._bad_tool_turns(messages) is not None


@pytest.mark.parametrize(
    "messages",
    [
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}],
            },
            {"role": "user", "content": [{"type": "text", "text": "no result"}]},
        ],
        [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "z"}]},
        ],
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "a", "name": "f", "input": "{}"}],
            },
        ],
    ],
)
def test_anthropic_fake_knows_the_rules_of_a_tool_conversation(messages: list[Any]) -> None:
    assert anthropic_server._bad_tool_turns(messages) is not None


async def test_openai_the_last_step_describes_the_tools_and_forbids_calls(
    openai_fake: openai_server.OpenAIServer,
) -> None:
    openai_fake.script_steps(
        openai_server.tool_call_reply([("call_1", "calculator", [CALC_ARGS])]),
        openai_server.text_reply("391."),
    )
    provider = OpenAIProvider(model="gpt-test", api_key=KEY, base_url=openai_fake.base_url)
    try:
        text, _ = await run_loop(provider, builtin_tools(), max_steps=1)
    finally:
        await provider.aclose()
    assert text == "391."
    first, last = openai_fake.requests
    assert "tool_choice" not in first.body
    assert last.body["tool_choice"] == "none"
    assert [t["function"]["name"] for t in last.body["tools"]] == ["calculator", "clock"]


async def test_anthropic_the_last_step_describes_the_tools_and_forbids_calls(
    anthropic_fake: anthropic_server.AnthropicServer,
) -> None:
    anthropic_fake.script_steps(
        anthropic_server.tool_use_reply([("toolu_1", "calculator", [CALC_ARGS])]),
        anthropic_server.text_reply("391."),
    )
    provider = AnthropicProvider(model="claude-test", api_key=KEY, base_url=anthropic_fake.base_url)
    try:
        text, _ = await run_loop(provider, builtin_tools(), max_steps=1)
    finally:
        await provider.aclose()
    assert text == "391."
    first, last = anthropic_fake.requests
    assert "tool_choice" not in first.body
    assert last.body["tool_choice"] == {"type": "none"}
    assert [t["name"] for t in last.body["tools"]] == ["calculator", "clock"]


async def test_anthropic_fake_wants_tools_defined_when_the_conversation_holds_tool_blocks(
    anthropic_fake: anthropic_server.AnthropicServer,
) -> None:
    provider = AnthropicProvider(model="claude-test", api_key=KEY, base_url=anthropic_fake.base_url)
    request = GenerationRequest(
        messages=(
            ChatTurn("user", "hi"),
            ChatTurn("assistant", "", tool_calls=(ToolCallPart("c", "calculator", "{}"),)),
            ChatTurn("tool", "", tool_results=(ToolResultPart("c", "calculator", "1"),)),
        )
    )
    try:
        outcome = await collect(provider, request)
    finally:
        await provider.aclose()
    assert outcome.error is not None
