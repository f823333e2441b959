"""Demo models call the built-in tools when a prompt asks, and answer from the results."""

from __future__ import annotations

import json

import pytest

from rtserver.providers.base import (
    ChatTurn,
    GenerationRequest,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
)
from rtserver.providers.demo import DemoProvider
from rtserver.tools.toolbox import Toolbox
from rtserver.turns.tools import definitions

TOOLS = definitions(Toolbox.build([]).for_model(["builtin"]))


def asking(text: str, *, tools: bool = True) -> GenerationRequest:
    return GenerationRequest(messages=(ChatTurn("user", text),), tools=TOOLS if tools else ())


async def deltas(request: GenerationRequest) -> list[object]:
    provider = DemoProvider(tokens_per_s=10_000, first_token_s=0)
    return [delta async for delta in provider.stream(request)]


@pytest.mark.parametrize(
    ("prompt", "expression"),
    [
        ("What is 17 * 23?", "17 * 23"),
        ("Please calculate (2 + 3) * 4 for me", "(2 + 3) * 4"),
        ("what's 2^10", "2**10"),
    ],
)
async def test_an_arithmetic_prompt_calls_the_calculator(prompt: str, expression: str) -> None:
    got = await deltas(asking(prompt))
    calls = [d for d in got if isinstance(d, ToolCallDelta)]
    assert calls[0].name == "calculator"
    assert {d.call for d in calls} == {calls[0].call}
    assert json.loads("".join(d.args for d in calls)) == {"expression": expression}
    assert "".join(d.text for d in got if isinstance(d, TextDelta)).startswith("Let me")


async def test_a_question_about_the_time_calls_the_clock() -> None:
    got = await deltas(asking("What time is it?"))
    assert next(d.name for d in got if isinstance(d, ToolCallDelta)) == "clock"


@pytest.mark.parametrize(
    ("prompt", "tools"),
    [
        ("Tell me about caching in 2024", True),
        ("What is 17 * 23?", False),
        ("I have 3 cats - and 2 dogs", True),
    ],
)
async def test_no_call_without_the_tool_or_the_question(prompt: str, tools: bool) -> None:
    got = await deltas(asking(prompt, tools=tools))
    assert not [d for d in got if isinstance(d, ToolCallDelta)]


async def test_after_the_results_the_model_answers_from_them_and_calls_nothing() -> None:
    call = ToolCallPart(call="c1", name="calculator", args='{"expression": "17 * 23"}')
    request = GenerationRequest(
        messages=(
            ChatTurn("user", "What is 17 * 23?"),
            ChatTurn("assistant", "Let me work that out.", tool_calls=(call,)),
            ChatTurn("tool", "", tool_results=(ToolResultPart("c1", "calculator", "391"),)),
        ),
        tools=TOOLS,
    )
    got = await deltas(request)
    assert not [d for d in got if isinstance(d, ToolCallDelta)]
    text = "".join(d.text for d in got if isinstance(d, TextDelta))
    assert text == "\n\nThe calculator says 17 * 23 = 391."


async def test_an_error_result_is_reported_in_the_answer() -> None:
    result = ToolResultPart("c1", "clock", "error (denied): Bob denied the call", is_error=True)
    request = GenerationRequest(
        messages=(
            ChatTurn("user", "what time is it"),
            ChatTurn("assistant", "", tool_calls=(ToolCallPart("c1", "clock", "{}"),)),
            ChatTurn("tool", "", tool_results=(result,)),
        ),
        tools=TOOLS,
    )
    text = "".join(d.text for d in await deltas(request) if isinstance(d, TextDelta))
    assert text == "The clock could not help: error (denied): Bob denied the call."
