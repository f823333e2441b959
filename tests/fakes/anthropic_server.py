"""A loopback server that speaks the Anthropic Messages API streaming wire format.

``POST /v1/messages`` with ``stream: true`` answers named server-sent events:
``message_start`` (the message with ``usage.input_tokens``), then per content block
``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``, or
``thinking_delta`` then one ``signature_delta`` in a ``thinking`` block) / ``content_block_stop``
(a ``redacted_thinking`` block has no deltas at all), ``ping`` now and then, ``message_delta``
with ``stop_reason`` and the cumulative ``usage.output_tokens``, and ``message_stop``. An error
mid-stream is an ``event: error`` with ``{"type": "error", "error": {type, message}}``; an error
before the stream is that body with the vendor's status code (429 with ``retry-after``, 529
overloaded, ...).

A test scripts each reply as a list of steps (:class:`StreamReply`) or an :class:`ErrorReply`;
content block indexes and their start and stop events are kept by the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._loopback import (
    Abort,
    ControlStep,
    ErrorReply,
    Hang,
    Pause,
    Raw,
    RecordedRequest,
    ScriptedServer,
    Streaming,
    WaitFor,
    sse_event,
)

__all__ = [
    "Abort",
    "AnthropicServer",
    "ErrorReply",
    "Hang",
    "Pause",
    "Ping",
    "Raw",
    "RedactedThinking",
    "Step",
    "Stop",
    "StreamError",
    "StreamReply",
    "Text",
    "Thinking",
    "ToolArgs",
    "ToolUse",
    "WaitFor",
    "error_reply",
    "invalid_api_key",
    "overloaded",
    "prompt_too_long",
    "rate_limited",
    "text_reply",
    "thinking_reply",
    "tool_use_reply",
]


@dataclass(frozen=True, slots=True)
class Text:
    """A ``text_delta``; opens a text block first if none is open."""

    text: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """A ``thinking_delta``; opens a ``thinking`` block first if none is open.

    The block closes, as Anthropic's do, with a ``signature_delta`` just before its
    ``content_block_stop``.
    """

    thinking: str


@dataclass(frozen=True, slots=True)
class RedactedThinking:
    """A ``redacted_thinking`` block: its encrypted ``data`` at the start, no deltas."""

    data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"


@dataclass(frozen=True, slots=True)
class ToolUse:
    """Opens a ``tool_use`` block (``input: {}``) with this id and tool name."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgs:
    """An ``input_json_delta`` fragment of the open tool_use block."""

    partial_json: str


@dataclass(frozen=True, slots=True)
class Ping:
    """The keep-alive ``ping`` event."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Close the open block, then ``message_delta`` (stop reason, usage) and ``message_stop``."""

    reason: str = "end_turn"
    output_tokens: int = 12


@dataclass(frozen=True, slots=True)
class StreamError:
    """An ``event: error`` in the middle of the stream."""

    type: str = "overloaded_error"
    message: str = "Overloaded"


Step = (
    Text
    | Thinking
    | RedactedThinking
    | ToolUse
    | ToolArgs
    | Ping
    | Stop
    | StreamError
    | ControlStep
)


@dataclass(frozen=True, slots=True)
class StreamReply:
    """A 200 streaming answer: ``message_start``, then ``steps``."""

    steps: Sequence[Step]
    input_tokens: int = 21
    headers: dict[str, str] = field(default_factory=dict)


Reply = StreamReply | ErrorReply


def text_reply(
    *chunks: str,
    stop: str = "end_turn",
    output_tokens: int = 12,
    pace: float = 0.0,
) -> StreamReply:
    """Text in ``chunks`` with a ping after the first, then the stop."""
    steps: list[Step] = []
    for n, chunk in enumerate(chunks):
        if pace:
            steps.append(Pause(pace))
        steps.append(Text(chunk))
        if n == 0:
            steps.append(Ping())
    steps.append(Stop(stop, output_tokens))
    return StreamReply(steps)


def thinking_reply(
    thoughts: Sequence[str], answer: Sequence[str], *, output_tokens: int = 30
) -> StreamReply:
    """A thinking block of ``thoughts`` (as ``thinking`` enabled gets), then the ``answer`` text."""
    steps: list[Step] = [Thinking(t) for t in thoughts]
    steps.extend(Text(t) for t in answer)
    steps.append(Stop("end_turn", output_tokens))
    return StreamReply(steps)


def tool_use_reply(
    calls: Sequence[tuple[str, str, Sequence[str]]],
    *,
    text: Sequence[str] = (),
    output_tokens: int = 40,
) -> StreamReply:
    """Optional text, then each ``(id, name, partial_json fragments)`` tool use."""
    steps: list[Step] = [Text(t) for t in text]
    for call_id, name, fragments in calls:
        steps.append(ToolUse(call_id, name))
        # Anthropic opens every tool input with an empty fragment.
        steps.append(ToolArgs(""))
        steps.extend(ToolArgs(f) for f in fragments)
    steps.append(Stop("tool_use", output_tokens))
    return StreamReply(steps)


def error_reply(
    status: int, type: str, message: str, *, headers: dict[str, str] | None = None
) -> ErrorReply:
    body = {
        "type": "error",
        "error": {"type": type, "message": message},
        "request_id": "req_011CFakeRequest",
    }
    return ErrorReply(status, body, headers or {})


def rate_limited(retry_after: str = "12") -> ErrorReply:
    return error_reply(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
        headers={
            "retry-after": retry_after,
            "anthropic-ratelimit-requests-remaining": "0",
        },
    )


def overloaded() -> ErrorReply:
    return error_reply(529, "overloaded_error", "Overloaded")


def prompt_too_long() -> ErrorReply:
    return error_reply(
        400, "invalid_request_error", "prompt is too long: 215304 tokens > 200000 maximum"
    )


def invalid_api_key() -> ErrorReply:
    return error_reply(401, "authentication_error", "invalid x-api-key")


class AnthropicServer(ScriptedServer[StreamReply]):
    """The fake: ``base_url`` is what the SDK is pointed at."""

    path = "/v1/messages"
    request_id_header = "request-id"

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__(api_key=api_key, default=text_reply("Hello", " from", " Claude"))

    @property
    def base_url(self) -> str:
        return self.origin

    def key_rejected(self) -> ErrorReply:
        return invalid_api_key()

    def malformed(self, record: RecordedRequest) -> ErrorReply | None:
        body = record.body
        if not isinstance(body.get("max_tokens"), int):
            return error_reply(400, "invalid_request_error", "max_tokens: Field required")
        if not record.model or not isinstance(body.get("messages"), list):
            return error_reply(400, "invalid_request_error", "model: Field required")
        if not body.get("tools") and _has_tool_blocks(body["messages"]):
            return error_reply(
                400,
                "invalid_request_error",
                "Requests which include `tool_use` or `tool_result` blocks must define tools.",
            )
        return _bad_tools(body.get("tools")) or _bad_tool_turns(body["messages"])

    async def write_stream(self, stream: Streaming, reply: StreamReply, request_id: str) -> None:
        events = _EventWriter(stream)
        await events.send(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{request_id}",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": stream.record.model,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": reply.input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                        "service_tier": "standard",
                    },
                },
            },
        )
        for step in reply.steps:
            if isinstance(step, Text):
                await events.text(step.text)
            elif isinstance(step, Thinking):
                await events.thinking(step.thinking)
            elif isinstance(step, RedactedThinking):
                await events.redacted_thinking(step.data)
            elif isinstance(step, ToolUse):
                await events.tool_use(step)
            elif isinstance(step, ToolArgs):
                await events.delta({"type": "input_json_delta", "partial_json": step.partial_json})
            elif isinstance(step, Ping):
                await events.send("ping", {"type": "ping"})
            elif isinstance(step, Stop):
                await events.stop(step)
            elif isinstance(step, StreamError):
                error = {"type": step.type, "message": step.message}
                await events.send("error", {"type": "error", "error": error})
            else:
                await stream.control(step)


def _bad_tools(tools: object) -> ErrorReply | None:
    """Anthropic's 400 for tool definitions without a name or an object ``input_schema``."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        return error_reply(400, "invalid_request_error", "tools: Input should be a valid list")
    for n, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return error_reply(
                400, "invalid_request_error", f"tools.{n}.custom.name: Field required"
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return error_reply(
                400, "invalid_request_error", f"tools.{n}.custom.input_schema.type: Field required"
            )
    return None


def _has_tool_blocks(messages: list[Any]) -> bool:
    return any(
        isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result")
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for block in message["content"]
    )


def _bad_tool_turns(messages: list[Any]) -> ErrorReply | None:
    """Anthropic's 400s for a tool conversation: the message after an assistant message with
    ``tool_use`` blocks must be a user message whose ``tool_result`` blocks answer every id,
    and no ``tool_result`` may answer an id the previous message did not use."""
    used: list[str] = []
    for n, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        blocks = content if isinstance(content, list) else []
        answered = [
            b.get("tool_use_id")
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        for m, call_id in enumerate(answered):
            if call_id not in used:
                return error_reply(
                    400,
                    "invalid_request_error",
                    f"messages.{n}.content.{m}: unexpected `tool_use_id` found in `tool_result`"
                    f" blocks: {call_id}. Each `tool_result` block must have a corresponding"
                    " `tool_use` block in the previous message.",
                )
        missing = [call_id for call_id in used if call_id not in answered]
        if missing:
            return _unanswered(n - 1, missing)
        used = []
        if message.get("role") == "assistant":
            for block in blocks:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    if not isinstance(block.get("input"), dict):
                        return error_reply(
                            400,
                            "invalid_request_error",
                            f"messages.{n}.content: tool_use.input: Input should be an object",
                        )
                    used.append(str(block.get("id")))
    return _unanswered(len(messages) - 1, used) if used else None


def _unanswered(index: int, ids: list[str]) -> ErrorReply:
    return error_reply(
        400,
        "invalid_request_error",
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately"
        f" after: {', '.join(ids)}. Each `tool_use` block must have a corresponding"
        " `tool_result` block in the next message.",
    )


#: What a thinking block's ``signature_delta`` carries: opaque base64, as the vendor's.
_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


class _EventWriter:
    """Writes named events and keeps track of the open content block."""

    def __init__(self, stream: Streaming) -> None:
        self._stream = stream
        self._next_index = 0
        self._open: tuple[int, str] | None = None

    async def send(self, name: str, payload: object) -> None:
        await self._stream.send(sse_event(payload, name=name))

    async def _start(self, block: dict[str, object]) -> None:
        await self._close_block()
        index = self._next_index
        self._next_index += 1
        self._open = (index, str(block["type"]))
        await self.send(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )

    async def _close_block(self) -> None:
        if self._open is not None:
            if self._open[1] == "thinking":
                await self.delta({"type": "signature_delta", "signature": _SIGNATURE})
            index = self._open[0]
            self._open = None
            await self.send("content_block_stop", {"type": "content_block_stop", "index": index})

    async def text(self, text: str) -> None:
        if self._open is None or self._open[1] != "text":
            await self._start({"type": "text", "text": ""})
        await self.delta({"type": "text_delta", "text": text})

    async def thinking(self, thinking: str) -> None:
        if self._open is None or self._open[1] != "thinking":
            await self._start({"type": "thinking", "thinking": "", "signature": ""})
        await self.delta({"type": "thinking_delta", "thinking": thinking})

    async def redacted_thinking(self, data: str) -> None:
        await self._start({"type": "redacted_thinking", "data": data})

    async def tool_use(self, step: ToolUse) -> None:
        await self._start({"type": "tool_use", "id": step.id, "name": step.name, "input": {}})

    async def delta(self, delta: dict[str, object]) -> None:
        index = self._open[0] if self._open is not None else 0
        await self.send(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    async def stop(self, step: Stop) -> None:
        await self._close_block()
        await self.send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": step.reason, "stop_sequence": None},
                "usage": {"output_tokens": step.output_tokens},
            },
        )
        await self.send("message_stop", {"type": "message_stop"})
