"""Anthropic's streaming Messages API.

One streaming request per generation: text deltas become :class:`TextDelta`, ``thinking_delta``
fragments of a ``thinking`` block (with ``params.thinking`` configured) become
:class:`ReasoningDelta`, a ``tool_use`` block
and its ``input_json_delta`` fragments become :class:`ToolCallDelta`, usage comes from
``message_start`` (input) and ``message_delta`` (cumulative output), and the stop reason from
``message_delta``. The SDK's own retries are off, and closing the iterator closes the HTTP
response, so the upstream request ends at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from urllib.parse import urlsplit

import anthropic
import httpx2
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)

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
from rtserver.providers.params import CallParams, call_params, conversation, decoded_args
from rtserver.providers.vendor_stream import Upstream, Vendor, stream_deltas

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
#: The Messages API requires ``max_tokens``; this applies when neither config nor prompt sets it.
DEFAULT_MAX_TOKENS = 4096
#: Stop reasons that mean the reply was cut short by a token limit.
_LENGTH_STOPS = frozenset({"max_tokens", "model_context_window_exceeded"})


class AnthropicProvider:
    """Streams one configured Claude model."""

    kind = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str = ANTHROPIC_BASE_URL,
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
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        params = call_params(self._params, request)
        return stream_deltas(
            _VENDOR,
            upstream=self._upstream,
            open_stream=lambda: self._create(request, params),
            reader=_EventReader(),
        )

    async def _create(
        self, request: GenerationRequest, params: CallParams
    ) -> anthropic.AsyncStream[RawMessageStreamEvent]:
        return await self._client.messages.create(
            model=self._model,
            max_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
            messages=_messages(request),
            system=params.system or anthropic.omit,
            tools=_tools(request) or anthropic.omit,
            tool_choice={"type": "none"}
            if request.tools and not request.may_call
            else anthropic.omit,
            stream=True,
            extra_body=params.body(),
        )

    async def aclose(self) -> None:
        await self._client.close()


def _messages(request: GenerationRequest) -> list[MessageParam]:
    messages: list[MessageParam] = []
    for turn in conversation(request):
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.content})
        elif turn.role == "assistant":
            messages.append({"role": "assistant", "content": _assistant_blocks(turn)})
        else:
            # Every result of one step goes in one user message, as the API requires.
            results: list[ToolResultBlockParam] = [
                {
                    "type": "tool_result",
                    "tool_use_id": result.call,
                    "content": result.content,
                    "is_error": result.is_error,
                }
                for result in turn.tool_results
            ]
            messages.append({"role": "user", "content": results})
    return messages


def _assistant_blocks(turn: ChatTurn) -> str | list[TextBlockParam | ToolUseBlockParam]:
    if not turn.tool_calls:
        return turn.content
    blocks: list[TextBlockParam | ToolUseBlockParam] = []
    if turn.content:
        blocks.append({"type": "text", "text": turn.content})
    blocks.extend(
        {"type": "tool_use", "id": call.call, "name": call.name, "input": decoded_args(call.args)}
        for call in turn.tool_calls
    )
    return blocks


def _tools(request: GenerationRequest) -> list[ToolParam]:
    tools: list[ToolParam] = []
    for tool in request.tools:
        schema = dict(tool.parameters)
        schema.setdefault("type", "object")
        tools.append({"name": tool.name, "description": tool.description, "input_schema": schema})
    return tools


class _EventReader:
    """Turns raw Messages stream events into deltas."""

    def __init__(self) -> None:
        self._tool_calls: dict[int, str] = {}
        self._input_tokens = 0
        self._stop_reason: str | None = None
        self._stopped = False

    def read(self, event: RawMessageStreamEvent) -> list[Delta]:
        if isinstance(event, RawMessageStartEvent):
            start = event.message.usage
            self._input_tokens = (
                start.input_tokens
                + (start.cache_creation_input_tokens or 0)
                + (start.cache_read_input_tokens or 0)
            )
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if block.type == "tool_use":
                self._tool_calls[event.index] = block.id
                # Announced at once, as a tool without input may get no delta at all.
                return [ToolCallDelta(call=block.id, args="", name=block.name)]
            if block.type == "text" and block.text:
                return [TextDelta(block.text)]
            if block.type == "thinking" and block.thinking:
                return [ReasoningDelta(block.thinking)]
        elif isinstance(event, RawContentBlockDeltaEvent):
            delta = event.delta
            if delta.type == "text_delta":
                return [TextDelta(delta.text)] if delta.text else []
            if delta.type == "thinking_delta":
                return [ReasoningDelta(delta.thinking)] if delta.thinking else []
            if delta.type == "input_json_delta":
                call = self._tool_calls.get(event.index)
                if call is not None and delta.partial_json:
                    return [ToolCallDelta(call=call, args=delta.partial_json)]
            # A signature only vouches for the thinking when it is sent back, which rtserver
            # does not do (a lane holds answers); citations are not part of the answer's text.
            # A redacted_thinking block has nothing readable, so it yields nothing either.
        elif isinstance(event, RawMessageDeltaEvent):
            if event.delta.stop_reason is not None:
                self._stop_reason = event.delta.stop_reason
            usage = event.usage
            if usage.input_tokens is not None:
                self._input_tokens = (
                    usage.input_tokens
                    + (usage.cache_creation_input_tokens or 0)
                    + (usage.cache_read_input_tokens or 0)
                )
            return [UsageDelta(input_tokens=self._input_tokens, output_tokens=usage.output_tokens)]
        elif isinstance(event, RawMessageStopEvent):
            self._stopped = True
        return []

    def finish(self) -> FinishDelta:
        if not self._stopped:
            raise errors.ended_early()
        return FinishDelta("length" if self._stop_reason in _LENGTH_STOPS else "complete")


def map_anthropic_error(exc: Exception, *, upstream: Upstream, started: bool) -> ProviderError:
    """Our error for a failure of the Anthropic SDK (or the stream under it)."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return errors.timed_out()
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return errors.stream_broke() if started else errors.unreachable()
    if isinstance(exc, anthropic.APIStatusError):
        # An ``error`` event mid-stream arrives with the stream's status, 200: the error type
        # in the body is what says what happened, so it is looked at first.
        headers = dict(exc.response.headers)
        kind: str | None = exc.type
        if kind == "overloaded_error":
            return errors.overloaded(errors.retry_after(headers))
        if kind == "rate_limit_error":
            return errors.rate_limited(errors.retry_after(headers))
        if kind == "authentication_error":
            return errors.key_rejected(upstream.key_env)
        if kind == "permission_error":
            return errors.access_refused()
        if kind == "not_found_error":
            return errors.not_found(upstream.model, hint=_not_found_hint(upstream.base_url))
        if kind == "request_too_large":
            return errors.too_large()
        if kind == "timeout_error":
            return errors.timed_out()
        if kind == "invalid_request_error" and errors.looks_like_context_overflow(exc.api_message):
            return errors.too_large()
        if kind == "api_error" or exc.status_code < 400:
            return errors.server_failed()
        return errors.from_status(
            exc.status_code,
            headers=headers,
            model=upstream.model,
            key_env=upstream.key_env,
            not_found_hint=_not_found_hint(upstream.base_url),
        )
    return errors.unreadable()


def _not_found_hint(base_url: str) -> str | None:
    """The SDK adds ``/v1/messages`` itself: a base_url ending in /v1 asks for /v1/v1/messages."""
    if not urlsplit(base_url).path.rstrip("/").endswith("/v1"):
        return None
    return "base_url must not end in /v1: the SDK adds it"


def _describe(exc: Exception) -> str:
    if isinstance(exc, anthropic.APIStatusError):
        request = exc.response.request
        return (
            f"{errors.answered(request.method, str(request.url), exc.status_code)}: "
            f"{type(exc).__name__} type={exc.type} request_id={exc.request_id}"
        )
    return type(exc).__name__


_VENDOR = Vendor(
    name="anthropic",
    map_error=map_anthropic_error,
    describe=_describe,
    incomplete="stream ended without message_stop",
)
