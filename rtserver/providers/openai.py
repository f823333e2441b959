"""OpenAI chat completions, and every server that speaks the same API through ``base_url``.

One streaming request per generation (``stream_options.include_usage`` asks for the usage chunk).
Reasoning models of compatible servers stream their thinking apart from ``content``: as
``delta.reasoning_content`` (DeepSeek, llama.cpp, vLLM before 0.10) or ``delta.reasoning``
(Ollama, newer vLLM, OpenRouter); either becomes :class:`ReasoningDelta`.
The SDK's own retries are off: a retry would hide a failure, and a cancel or a timeout must end
the request there and then. Closing the iterator closes the HTTP response, so the upstream
server sees its connection closed at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from urllib.parse import urlsplit

import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDelta, ChoiceDeltaToolCall

from rtserver.errors import ProviderError
from rtserver.providers import errors
from rtserver.providers.base import (
    ChatTurn,
    Delta,
    FinishDelta,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageDelta,
)
from rtserver.providers.params import CallParams, call_params, conversation
from rtserver.providers.vendor_stream import Upstream, Vendor, stream_deltas

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """Streams one configured model of an OpenAI-compatible server."""

    kind = "openai"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str = OPENAI_BASE_URL,
        timeout_s: float = 120.0,
        params: Mapping[str, object] | None = None,
        key_env: str | None = None,
        model_id: str | None = None,
    ) -> None:
        self._model = model
        self._params = dict(params or {})
        self._upstream = Upstream(
            model_id=model_id or model, model=model, base_url=base_url, key_env=key_env
        )
        # OpenAI itself wants the newer name; many compatible servers only know ``max_tokens``.
        self._max_tokens_field = (
            "max_completion_tokens"
            if urlsplit(base_url).hostname == "api.openai.com"
            else "max_tokens"
        )
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        params = call_params(self._params, request)
        return stream_deltas(
            _VENDOR,
            upstream=self._upstream,
            open_stream=lambda: self._create(request, params),
            reader=_ChunkReader(),
        )

    async def _create(
        self, request: GenerationRequest, params: CallParams
    ) -> openai.AsyncStream[ChatCompletionChunk]:
        return await self._client.chat.completions.create(
            model=self._model,
            messages=_messages(request, params),
            stream=True,
            stream_options={"include_usage": True},
            tools=_tools(request) or openai.omit,
            tool_choice="none" if request.tools and not request.may_call else openai.omit,
            extra_body=self._body(params),
        )

    def _body(self, params: CallParams) -> dict[str, object]:
        body = params.body()
        if params.max_tokens is not None:
            body[self._max_tokens_field] = params.max_tokens
        return body

    async def aclose(self) -> None:
        await self._client.close()


def _messages(request: GenerationRequest, params: CallParams) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    if params.system:
        messages.append({"role": "system", "content": params.system})
    for turn in conversation(request):
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.content})
        elif turn.role == "assistant":
            messages.append(_assistant(turn))
        else:
            # One `tool` message per call, each naming the call it answers.
            messages.extend(
                {"role": "tool", "tool_call_id": result.call, "content": result.content}
                for result in turn.tool_results
            )
    return messages


def _assistant(turn: ChatTurn) -> ChatCompletionAssistantMessageParam:
    message: ChatCompletionAssistantMessageParam = {"role": "assistant"}
    # A step that only made calls has no text: `content` is then null, as the API writes it.
    message["content"] = turn.content or None
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.call,
                "type": "function",
                "function": {"name": call.name, "arguments": call.args or "{}"},
            }
            for call in turn.tool_calls
        ]
    return message


def _tools(request: GenerationRequest) -> list[ChatCompletionToolParam]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            },
        }
        for tool in request.tools
    ]


#: OpenAI-compatible servers stream one token per chunk; it counts a reply that came without
#: usage (llama.cpp sends none even when asked, and no server sends it for a reply cut short).
TOKENS_PER_CHUNK = 1


#: The names compatible servers give a delta's thinking text; the SDK keeps them as extra fields.
REASONING_FIELDS = ("reasoning_content", "reasoning")


def _reasoning(delta: ChoiceDelta) -> str | None:
    """The delta's thinking text, under whichever name the server uses; None when it has none.

    Only a string counts: OpenRouter may add structured ``reasoning_details`` beside it, and a
    server that sends something else under these names is not followed.
    """
    extra = delta.model_extra
    if not extra:
        return None
    for name in REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return None


class _ChunkReader:
    """Turns ``chat.completion.chunk`` objects into deltas, keeping tool calls apart by index."""

    def __init__(self) -> None:
        self._calls: dict[int, str] = {}
        self._finish: str | None = None

    def read(self, chunk: ChatCompletionChunk) -> list[Delta]:
        deltas: list[Delta] = []
        for choice in chunk.choices:
            # Only one choice is asked for; a server that sends more is not followed further.
            if choice.index != 0:
                continue
            delta = choice.delta
            reasoning = _reasoning(delta)
            if reasoning:
                deltas.append(ReasoningDelta(reasoning, tokens=TOKENS_PER_CHUNK))
            if delta.content:
                deltas.append(TextDelta(delta.content, tokens=TOKENS_PER_CHUNK))
            if delta.refusal:
                # A refusal is the model's answer; showing nothing would look like a failure.
                deltas.append(TextDelta(delta.refusal, tokens=TOKENS_PER_CHUNK))
            for call in delta.tool_calls or ():
                deltas.append(self._tool_call(call))
            if choice.finish_reason is not None:
                self._finish = choice.finish_reason
        if chunk.usage is not None:
            deltas.append(
                UsageDelta(
                    input_tokens=chunk.usage.prompt_tokens,
                    output_tokens=chunk.usage.completion_tokens,
                )
            )
        return deltas

    def _tool_call(self, call: ChoiceDeltaToolCall) -> ToolCallDelta:
        function = call.function
        args = (function.arguments if function else None) or ""
        known = self._calls.get(call.index)
        if known is None:
            # Some compatible servers leave out the id; the index still tells calls apart.
            call_id = call.id or f"call_{call.index}"
            self._calls[call.index] = call_id
            name = function.name if function else None
            return ToolCallDelta(call=call_id, args=args, name=name, tokens=TOKENS_PER_CHUNK)
        return ToolCallDelta(call=known, args=args, tokens=TOKENS_PER_CHUNK)

    def finish(self) -> FinishDelta:
        if self._finish is None:
            # The body ended without a finish_reason: the server stopped mid-reply.
            raise errors.ended_early()
        return FinishDelta("length" if self._finish == "length" else "complete")


def map_openai_error(exc: Exception, *, upstream: Upstream, started: bool) -> ProviderError:
    """Our error for a failure of the OpenAI SDK (or the stream under it)."""
    if isinstance(exc, openai.APITimeoutError):
        return errors.timed_out()
    if isinstance(exc, openai.APIConnectionError):
        return errors.stream_broke() if started else errors.unreachable()
    if isinstance(exc, openai.APIStatusError):
        code = exc.code or ""
        if code == "context_length_exceeded" or (
            exc.status_code in (400, 422) and errors.looks_like_context_overflow(exc.message)
        ):
            return errors.too_large()
        if exc.status_code == 429 and code == "insufficient_quota":
            return errors.quota_exhausted()
        headers = dict(exc.response.headers)
        return errors.from_status(
            exc.status_code,
            headers=headers,
            model=upstream.model,
            key_env=upstream.key_env,
            not_found_hint=_not_found_hint(upstream.base_url),
        )
    if isinstance(exc, openai.APIError):
        # An error object inside a 200 stream: the body names its kind, if anything.
        kind = f"{exc.code or ''} {exc.type or ''}"
        if "context_length" in kind:
            return errors.too_large()
        if "rate_limit" in kind:
            return errors.rate_limited(None)
        return errors.server_failed()
    return errors.unreadable()


def _not_found_hint(base_url: str) -> str | None:
    """Compatible servers serve the API under ``/v1``; a base_url without it gets 404s."""
    if "/v1" in urlsplit(base_url).path:
        return None
    return "is /v1 missing from base_url?"


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APIStatusError):
        request = exc.response.request
        return (
            f"{errors.answered(request.method, str(request.url), exc.status_code)}: "
            f"{type(exc).__name__} type={exc.type} code={exc.code} request_id={exc.request_id}"
        )
    if isinstance(exc, openai.APIError):
        return f"{type(exc).__name__} type={exc.type} code={exc.code}"
    return type(exc).__name__


_VENDOR = Vendor(
    name="openai",
    map_error=map_openai_error,
    describe=_describe,
    incomplete="stream ended without finish_reason",
)
