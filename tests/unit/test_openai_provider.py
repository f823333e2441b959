"""The OpenAI provider drives the real ``openai`` SDK at a loopback server speaking its format."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Sequence

import openai
import pytest

from rtserver.providers.base import ChatTurn, FinishDelta, TextDelta, ToolCallDelta, UsageDelta
from rtserver.providers.openai import OpenAIProvider
from tests.fakes.drive import (
    ask,
    cancel_after_first_delta,
    collect,
    collect_and_close,
    refusing_port,
)
from tests.fakes.openai_server import (
    Abort,
    Done,
    ErrorReply,
    Finish,
    Hang,
    OpenAIServer,
    Raw,
    Refusal,
    Step,
    StreamError,
    StreamReply,
    Text,
    ToolCall,
    context_length_exceeded,
    error_reply,
    rate_limited,
    text_reply,
    tool_call_reply,
)

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def provider(fake: OpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        model="gpt-test",
        api_key=KEY,
        base_url=fake.base_url,
        timeout_s=5,
        params={"system": "Be brief.", "temperature": 0.2, "top_p": 0.9},
        key_env="OPENAI_API_KEY",
    )
    yield provider
    await provider.aclose()


async def test_text_usage_and_finish_arrive_as_deltas(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(text_reply("Hel", "lo", " there", usage=(11, 3)))

    outcome = await collect(provider)

    assert outcome.error is None
    assert outcome.deltas == [
        TextDelta("Hel", tokens=1),
        TextDelta("lo", tokens=1),
        TextDelta(" there", tokens=1),
        UsageDelta(input_tokens=11, output_tokens=3),
        FinishDelta("complete"),
    ]


async def test_request_carries_conversation_params_and_usage_option(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    history = (ChatTurn("user", "first"), ChatTurn("assistant", ""), ChatTurn("assistant", "ok"))

    await collect(provider, ask("second", history=history, temperature=0.7, max_tokens=50))

    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.credential == KEY
    body = request.body
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # The prompt's temperature wins over the configured one; other params pass through.
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.9
    # A compatible server (any base_url but OpenAI's own) is sent the classic field name.
    assert body["max_tokens"] == 50
    assert "max_completion_tokens" not in body
    # The empty reply is left out: it says nothing and some vendors reject it.
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]


async def test_api_openai_com_is_sent_max_completion_tokens(fake: OpenAIServer) -> None:
    provider = OpenAIProvider(
        model="gpt-test", api_key=KEY, base_url="https://api.openai.com/v1", timeout_s=5
    )
    # The field is chosen from the configured URL; the requests themselves go to the fake
    # on loopback, never out to the vendor.
    await provider.aclose()
    provider._client = openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0)
    fake.script(text_reply("ok"))
    try:
        await collect(provider, ask("hello", max_tokens=50))
    finally:
        await provider.aclose()

    [request] = fake.requests
    assert request.body["max_completion_tokens"] == 50
    assert "max_tokens" not in request.body


async def test_a_reply_cut_by_max_tokens_finishes_with_length(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(text_reply("a", "b", finish="length"))

    outcome = await collect(provider)

    assert outcome.finish == "length"
    assert outcome.text == "ab"


async def test_tool_call_fragments_are_tagged_by_call_id(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(
        tool_call_reply(
            [
                ("call_weather", "get_weather", ['{"city"', ': "Paris"', "}"]),
                ("call_time", "get_time", ['{"tz": "CET"}']),
            ],
            text=["Let me check."],
        )
    )

    outcome = await collect(provider)

    assert outcome.error is None
    assert outcome.text == "Let me check."
    calls = [d for d in outcome.deltas if isinstance(d, ToolCallDelta)]
    # The name comes with a call's first fragment only.
    assert [(c.call, c.name) for c in calls if c.name] == [
        ("call_weather", "get_weather"),
        ("call_time", "get_time"),
    ]
    assert outcome.tool_calls() == {
        "call_weather": ("get_weather", '{"city": "Paris"}'),
        "call_time": ("get_time", '{"tz": "CET"}'),
    }
    assert outcome.finish == "complete"
    assert outcome.usage == UsageDelta(input_tokens=20, output_tokens=12)


async def test_a_refusal_is_shown_as_the_answer(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(StreamReply([Refusal("I can't help"), Refusal(" with that."), Finish(), Done()]))

    outcome = await collect(provider)

    assert outcome.text == "I can't help with that."
    assert outcome.finish == "complete"


async def test_a_tool_call_without_id_is_named_by_its_index(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(StreamReply([ToolCall(0, "", "lookup", '{"q": 1}'), Finish("tool_calls"), Done()]))

    outcome = await collect(provider)

    assert outcome.tool_calls() == {"call_0": ("lookup", '{"q": 1}')}


async def test_a_server_without_usage_yields_none(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(text_reply("no", " counts", usage=None))

    outcome = await collect(provider)

    assert outcome.usage is None
    assert outcome.finish == "complete"
    # Each chunk is one token: what the generation counts when no usage comes.
    assert outcome.deltas[:2] == [TextDelta("no", tokens=1), TextDelta(" counts", tokens=1)]


async def test_two_streams_of_one_provider_run_concurrently(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(StreamReply([Text("one"), Hang()]))

    first = asyncio.create_task(collect(provider))
    second = asyncio.create_task(collect(provider))
    try:
        # The first request can never finish on its own: a second request means both are open.
        async with asyncio.timeout(10):
            while len(fake.requests) < 2:  # noqa: ASYNC110 - the fake records, it cannot notify
                await asyncio.sleep(0.005)
        assert not any(r.finished.is_set() for r in fake.requests)
    finally:
        first.cancel()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)


@pytest.mark.parametrize(
    ("reply", "code", "message", "retry_after"),
    [
        pytest.param(
            rate_limited(retry_after="7"),
            "rate_limited",
            "the provider's rate limit was reached; try again later",
            7.0,
            id="429-retry-after-seconds",
        ),
        pytest.param(
            rate_limited(retry_after="20", retry_after_ms="1500"),
            "rate_limited",
            "the provider's rate limit was reached; try again later",
            1.5,
            id="429-retry-after-ms",
        ),
        pytest.param(
            rate_limited(retry_after=None),
            "rate_limited",
            "the provider's rate limit was reached; try again later",
            None,
            id="429-no-header",
        ),
        pytest.param(
            error_reply(429, message="You exceeded your quota", code="insufficient_quota"),
            "provider_error",
            "the account's quota at the provider is used up",
            None,
            id="429-quota",
        ),
        pytest.param(
            context_length_exceeded(),
            "too_large",
            "the conversation is too long for this model",
            None,
            id="400-context-length",
        ),
        pytest.param(
            # vLLM says it in words only.
            error_reply(
                400,
                message="This model's maximum context length is 4096 tokens. However, you "
                "requested 5000 tokens.",
                type="BadRequestError",
            ),
            "too_large",
            "the conversation is too long for this model",
            None,
            id="400-context-length-in-words",
        ),
        pytest.param(
            error_reply(400, message="Unrecognized request argument supplied: foo"),
            "provider_error",
            "the provider rejected the request",
            None,
            id="400-other",
        ),
        pytest.param(
            error_reply(403, message="Project does not have access", type="permission_error"),
            "provider_error",
            "the provider refused access to this model",
            None,
            id="403",
        ),
        pytest.param(
            error_reply(404, message="The model `gpt-test` does not exist", code="model_not_found"),
            "provider_error",
            "the provider answered 404 for model 'gpt-test': it does not offer that model, "
            "or base_url does not lead to its API; the server log names the URL tried",
            None,
            id="404",
        ),
        pytest.param(
            error_reply(500, message="The server had an error", type="server_error"),
            "provider_error",
            "the provider failed while answering",
            None,
            id="500",
        ),
        pytest.param(
            error_reply(503, message="The engine is currently overloaded", type="server_error"),
            "busy",
            "the provider is overloaded; try again later",
            None,
            id="503",
        ),
    ],
)
async def test_error_responses_map_to_our_codes_without_vendor_text(
    fake: OpenAIServer,
    provider: OpenAIProvider,
    reply: ErrorReply,
    code: str,
    message: str,
    retry_after: float | None,
) -> None:
    fake.script(reply)

    outcome = await collect(provider)

    assert outcome.deltas == []
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == (code, message)
    assert outcome.error.retry_after == retry_after
    # The SDK's retries are off: one failure, one request.
    assert len(fake.requests) == 1


async def test_retry_after_may_be_an_http_date(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    in_30_s = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.script(error_reply(503, type="server_error", headers={"retry-after": in_30_s}))

    outcome = await collect(provider)

    assert outcome.error is not None
    assert outcome.error.code == "busy"
    assert outcome.error.retry_after == pytest.approx(30, abs=2)


async def test_a_rejected_key_names_the_variable_but_never_the_key(
    fake: OpenAIServer,
) -> None:
    wrong = "sk-wrong-key-000000"
    provider = OpenAIProvider(
        model="gpt-test", api_key=wrong, base_url=fake.base_url, key_env="OPENAI_API_KEY"
    )
    outcome = await collect_and_close(provider)

    assert outcome.error is not None
    assert outcome.error.code == "provider_error"
    assert outcome.error.message == "the provider rejected the API key (check OPENAI_API_KEY)"
    assert "sk-" not in str(outcome.error)


async def test_an_error_event_mid_stream_ends_it(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(StreamReply([Text("so far"), StreamError("Internal failure, req id abc")]))

    outcome = await collect(provider)

    assert outcome.text == "so far"
    assert outcome.error is not None
    assert outcome.error.code == "provider_error"
    assert "Internal failure" not in outcome.error.message


@pytest.mark.parametrize(
    ("ending", "message"),
    [
        pytest.param([Abort()], "the connection to the provider broke mid-stream", id="broke"),
        # The server closed the body cleanly, but the reply never finished.
        pytest.param(
            [],
            "the provider's stream ended before the reply was complete",
            id="no-finish-reason",
        ),
        pytest.param(
            [Raw(b"data: {not json\n\n")],
            "the provider sent a reply rtserver could not read",
            id="unreadable-chunk",
        ),
    ],
)
async def test_a_stream_that_fails_midway_keeps_the_text_so_far(
    fake: OpenAIServer, provider: OpenAIProvider, ending: Sequence[Step], message: str
) -> None:
    fake.script(StreamReply([Text("partial"), Text(" answer"), *ending]))

    outcome = await collect(provider)

    assert outcome.text == "partial answer"
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == ("provider_error", message)


async def test_a_stalled_server_times_out(fake: OpenAIServer) -> None:
    fake.script(StreamReply([Text("slow"), Hang()]))
    provider = OpenAIProvider(model="m", api_key=KEY, base_url=fake.base_url, timeout_s=0.2)
    outcome = await collect_and_close(provider)

    assert outcome.text == "slow"
    assert outcome.error is not None
    assert outcome.error.code == "provider_error"
    assert outcome.error.message == "the provider did not answer in time"
    [request] = fake.requests
    await asyncio.wait_for(request.disconnected.wait(), 1)


async def test_an_unreachable_server_is_an_error() -> None:
    with refusing_port() as port:
        base_url = f"http://127.0.0.1:{port}/v1"
        outcome = await collect_and_close(OpenAIProvider(model="m", api_key=KEY, base_url=base_url))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.message) == (
        "provider_error",
        "could not reach the provider",
    )


async def test_cancel_closes_the_upstream_connection(
    fake: OpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(StreamReply([Text("thinking"), Hang()]))

    task, _ = await cancel_after_first_delta(provider)

    [request] = fake.requests
    # The script hangs for ever after its first delta: only the cancel can end the request.
    await asyncio.wait_for(request.disconnected.wait(), 10)
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server's handler is over: nothing is left generating.
    assert request.finished.is_set()
    assert not request.completed
