"""The Anthropic provider drives the real ``anthropic`` SDK at a loopback Messages API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from rtserver.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicProvider
from rtserver.providers.base import ChatTurn, FinishDelta, TextDelta, ToolCallDelta, UsageDelta
from tests.fakes.anthropic_server import (
    Abort,
    AnthropicServer,
    ErrorReply,
    Hang,
    Ping,
    Raw,
    Step,
    Stop,
    StreamError,
    StreamReply,
    Text,
    ToolArgs,
    ToolUse,
    error_reply,
    overloaded,
    prompt_too_long,
    rate_limited,
    text_reply,
    tool_use_reply,
)
from tests.fakes.drive import (
    ask,
    cancel_after_first_delta,
    collect,
    collect_and_close,
    refusing_port,
)

KEY = "sk-ant-test-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[AnthropicServer]:
    async with AnthropicServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def provider(fake: AnthropicServer) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(
        model="claude-test",
        api_key=KEY,
        base_url=fake.base_url,
        timeout_s=5,
        params={"system": "Be brief.", "temperature": 0.3, "top_k": 5},
        key_env="ANTHROPIC_API_KEY",
    )
    yield provider
    await provider.aclose()


async def test_text_usage_and_stop_arrive_as_deltas(
    fake: AnthropicServer, provider: AnthropicProvider
) -> None:
    fake.script(
        StreamReply([Text("Hel"), Ping(), Text("lo"), Stop("end_turn", 7)], input_tokens=30)
    )

    outcome = await collect(provider)

    assert outcome.error is None
    assert outcome.deltas == [
        TextDelta("Hel"),
        TextDelta("lo"),
        UsageDelta(input_tokens=30, output_tokens=7),
        FinishDelta("complete"),
    ]


async def test_request_carries_conversation_system_and_params(
    fake: AnthropicServer, provider: AnthropicProvider
) -> None:
    history = (ChatTurn("user", "first"), ChatTurn("assistant", ""), ChatTurn("assistant", "ok"))

    await collect(provider, ask("second", history=history, temperature=0.9))

    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert request.credential == KEY
    assert "anthropic-version" in request.headers
    body = request.body
    assert body["model"] == "claude-test"
    assert body["stream"] is True
    assert body["system"] == "Be brief."
    assert body["temperature"] == 0.9
    assert body["top_k"] == 5
    # The Messages API requires max_tokens; without one configured the default is sent.
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    # An empty assistant turn is rejected by Anthropic, so it is left out.
    assert body["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]


async def test_max_tokens_stop_finishes_with_length(
    fake: AnthropicServer, provider: AnthropicProvider
) -> None:
    fake.script(text_reply("a", "b", stop="max_tokens", output_tokens=2))

    outcome = await collect(provider, ask(max_tokens=2))

    assert outcome.finish == "length"
    assert fake.requests[0].body["max_tokens"] == 2


async def test_tool_use_blocks_stream_as_tool_call_fragments(
    fake: AnthropicServer, provider: AnthropicProvider
) -> None:
    fake.script(
        tool_use_reply(
            [
                ("toolu_01", "get_weather", ['{"city": ', '"Paris"}']),
                ("toolu_02", "get_time", ['{"tz": "CET"}']),
            ],
            text=["Checking."],
        )
    )

    outcome = await collect(provider)

    assert outcome.error is None
    assert outcome.text == "Checking."
    calls = [d for d in outcome.deltas if isinstance(d, ToolCallDelta)]
    assert [(c.call, c.name) for c in calls if c.name] == [
        ("toolu_01", "get_weather"),
        ("toolu_02", "get_time"),
    ]
    # The empty fragment Anthropic opens each input with is not passed on.
    assert all(c.args or c.name for c in calls)
    assert outcome.tool_calls() == {
        "toolu_01": ("get_weather", '{"city": "Paris"}'),
        "toolu_02": ("get_time", '{"tz": "CET"}'),
    }
    assert outcome.usage == UsageDelta(input_tokens=21, output_tokens=40)
    assert outcome.finish == "complete"


async def test_a_tool_without_input_is_still_announced(
    fake: AnthropicServer, provider: AnthropicProvider
) -> None:
    fake.script(StreamReply([ToolUse("toolu_9", "now"), ToolArgs("{}"), Stop("tool_use")]))

    outcome = await collect(provider)

    assert outcome.tool_calls() == {"toolu_9": ("now", "{}")}


@pytest.mark.parametrize(
    ("reply", "code", "message", "retry_after"),
    [
        pytest.param(
            rate_limited("12"),
            "rate_limited",
            "the provider's rate limit was reached; try again later",
            12.0,
            id="429",
        ),
        pytest.param(
            overloaded(),
            "busy",
            "the provider is overloaded; try again later",
            None,
            id="529-overloaded",
        ),
        pytest.param(
            prompt_too_long(),
            "too_large",
            "the conversation is too long for this model",
            None,
            id="400-prompt-too-long",
        ),
        pytest.param(
            error_reply(413, "request_too_large", "Request exceeds the maximum allowed size"),
            "too_large",
            "the conversation is too long for this model",
            None,
            id="413",
        ),
        pytest.param(
            error_reply(400, "invalid_request_error", "messages: roles must alternate"),
            "provider_error",
            "the provider rejected the request",
            None,
            id="400-other",
        ),
        pytest.param(
            error_reply(403, "permission_error", "Your API key does not have permission"),
            "provider_error",
            "the provider refused access to this model",
            None,
            id="403",
        ),
        pytest.param(
            error_reply(404, "not_found_error", "model: claude-test"),
            "provider_error",
            "the provider answered 404 for model 'claude-test': it does not offer that model, "
            "or base_url does not lead to its API; the server log names the URL tried",
            None,
            id="404",
        ),
        pytest.param(
            error_reply(500, "api_error", "Internal server error"),
            "provider_error",
            "the provider failed while answering",
            None,
            id="500",
        ),
    ],
)
async def test_error_responses_map_to_our_codes_without_vendor_text(
    fake: AnthropicServer,
    provider: AnthropicProvider,
    reply: ErrorReply,
    code: str,
    message: str,
    retry_after: float | None,
) -> None:
    fake.script(reply)

    outcome = await collect(provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message, outcome.error.retry_after) == (
        code,
        message,
        retry_after,
    )
    assert len(fake.requests) == 1


async def test_a_rejected_key_names_the_variable_but_never_the_key(
    fake: AnthropicServer,
) -> None:
    provider = AnthropicProvider(
        model="claude-test",
        api_key="sk-ant-wrong",
        base_url=fake.base_url,
        key_env="ANTHROPIC_API_KEY",
    )
    outcome = await collect_and_close(provider)

    assert outcome.error is not None
    assert outcome.error.code == "provider_error"
    assert outcome.error.message == "the provider rejected the API key (check ANTHROPIC_API_KEY)"


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        ("overloaded_error", "busy"),
        ("rate_limit_error", "rate_limited"),
        ("api_error", "provider_error"),
    ],
)
async def test_an_error_event_mid_stream_keeps_the_text_so_far(
    fake: AnthropicServer, provider: AnthropicProvider, error_type: str, code: str
) -> None:
    fake.script(StreamReply([Text("so far"), StreamError(error_type, "Something vendor-ish")]))

    outcome = await collect(provider)

    assert outcome.text == "so far"
    assert outcome.error is not None
    assert outcome.error.code == code
    assert "vendor" not in outcome.error.message


@pytest.mark.parametrize(
    ("ending", "message"),
    [
        pytest.param([Abort()], "the connection to the provider broke mid-stream", id="broke"),
        pytest.param(
            [],
            "the provider's stream ended before the reply was complete",
            id="no-message-stop",
        ),
        pytest.param(
            [Raw(b"event: content_block_delta\ndata: {oops\n\n")],
            "the provider sent a reply rtserver could not read",
            id="unreadable-event",
        ),
    ],
)
async def test_a_stream_that_fails_midway_keeps_the_text_so_far(
    fake: AnthropicServer, provider: AnthropicProvider, ending: Sequence[Step], message: str
) -> None:
    fake.script(StreamReply([Text("partial"), Text(" answer"), *ending]))

    outcome = await collect(provider)

    assert outcome.text == "partial answer"
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == ("provider_error", message)


async def test_a_stalled_server_times_out(fake: AnthropicServer) -> None:
    fake.script(StreamReply([Text("slow"), Hang()]))
    provider = AnthropicProvider(model="m", api_key=KEY, base_url=fake.base_url, timeout_s=0.2)
    outcome = await collect_and_close(provider)

    assert outcome.text == "slow"
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == (
        "provider_error",
        "the provider did not answer in time",
    )


async def test_an_unreachable_server_is_an_error() -> None:
    with refusing_port() as port:
        base_url = f"http://127.0.0.1:{port}"
        provider = AnthropicProvider(model="m", api_key=KEY, base_url=base_url)
        outcome = await collect_and_close(provider)

    assert outcome.error is not None
    assert outcome.error.message == "could not reach the provider"


async def test_cancel_closes_the_upstream_connection(
    fake: AnthropicServer, provider: AnthropicProvider
) -> None:
    fake.script(StreamReply([Text("thinking"), Hang()]))

    task, _ = await cancel_after_first_delta(provider)

    [request] = fake.requests
    # The script hangs for ever after its first delta: only the cancel can end the request.
    await asyncio.wait_for(request.disconnected.wait(), 10)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert request.finished.is_set()
    assert not request.completed
