"""A loopback server that speaks the OpenAI chat completions streaming wire format.

``POST /v1/chat/completions`` with ``stream: true`` answers ``text/event-stream`` lines of
``data: {chat.completion.chunk}``: a first chunk with the assistant role, ``delta.content``
fragments, the thinking of reasoning models as ``delta.reasoning_content`` beside
``"content": null`` (DeepSeek, llama.cpp) or ``delta.reasoning`` beside ``"content": ""``
(Ollama), ``delta.tool_calls`` fragments tagged by ``index`` (``id``, ``type`` and
``function.name`` on a call's first fragment only), a chunk with ``finish_reason``, then, when the
request asked for ``stream_options.include_usage``, a chunk with ``choices: []`` and ``usage``
(every earlier chunk then carries ``"usage": null``), and finally ``data: [DONE]``. Errors are
JSON bodies ``{"error": {message, type, param, code}}`` with the vendor's status codes and
``retry-after`` / ``retry-after-ms`` headers; an error mid-stream is a ``data: {"error": ...}``
line.

A test scripts each reply as a list of steps (:class:`StreamReply`) or an :class:`ErrorReply`,
for every model or for one model name (``server.script(reply, model=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
    "Done",
    "ErrorReply",
    "Finish",
    "Hang",
    "OpenAIServer",
    "Pause",
    "Raw",
    "Reasoning",
    "Refusal",
    "Step",
    "StreamError",
    "StreamReply",
    "Text",
    "ToolArgs",
    "ToolCall",
    "Usage",
    "WaitFor",
    "context_length_exceeded",
    "error_reply",
    "invalid_api_key",
    "rate_limited",
    "reasoning_reply",
    "text_reply",
    "tool_call_reply",
]


@dataclass(frozen=True, slots=True)
class Text:
    """A ``delta.content`` fragment."""

    text: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A fragment of thinking text, under the field name of the server imitated.

    ``reasoning_content`` (DeepSeek, llama.cpp, vLLM before 0.10) comes with ``"content":
    null``; ``reasoning`` (Ollama's /v1, newer vLLM) with ``"content": ""``.
    """

    text: str
    field: Literal["reasoning_content", "reasoning"] = "reasoning_content"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A ``delta.refusal`` fragment: the model declining to answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The first fragment of a tool call: its index, id and function name."""

    index: int
    id: str
    name: str
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolArgs:
    """A further fragment of the JSON arguments of the call at ``index``."""

    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The chunk with ``finish_reason``: stop, length, tool_calls or content_filter."""

    reason: str = "stop"


@dataclass(frozen=True, slots=True)
class Usage:
    """The usage chunk; sent only if the request asked for ``include_usage``, as OpenAI does."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error reported in the middle of a stream, as a ``data: {"error": ...}`` line."""

    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The ``data: [DONE]`` sentinel."""


Step = (
    Text
    | Reasoning
    | Refusal
    | ToolCall
    | ToolArgs
    | Finish
    | Usage
    | StreamError
    | Done
    | ControlStep
)


@dataclass(frozen=True, slots=True)
class StreamReply:
    """A 200 streaming answer made of ``steps``."""

    steps: Sequence[Step]
    headers: dict[str, str] = field(default_factory=dict)
    #: Whether to open with the chunk that only carries ``role: assistant``.
    role_chunk: bool = True


Reply = StreamReply | ErrorReply


def text_reply(
    *chunks: str,
    finish: str = "stop",
    usage: tuple[int, int] | None = (9, 3),
    pace: float = 0.0,
) -> StreamReply:
    """Text in ``chunks``, then ``finish``, the usage chunk and ``[DONE]``."""
    steps: list[Step] = []
    for chunk in chunks:
        if pace:
            steps.append(Pause(pace))
        steps.append(Text(chunk))
    steps.append(Finish(finish))
    if usage is not None:
        steps.append(Usage(*usage))
    steps.append(Done())
    return StreamReply(steps)


def reasoning_reply(
    thoughts: Sequence[str],
    answer: Sequence[str],
    *,
    field: Literal["reasoning_content", "reasoning"] = "reasoning_content",
    usage: tuple[int, int] | None = (9, 12),
) -> StreamReply:
    """Thinking fragments under ``field``, then the ``answer``, the finish and the usage."""
    steps: list[Step] = [Reasoning(t, field) for t in thoughts]
    steps.extend(Text(t) for t in answer)
    steps.append(Finish("stop"))
    if usage is not None:
        steps.append(Usage(*usage))
    steps.append(Done())
    return StreamReply(steps)


def tool_call_reply(
    calls: Sequence[tuple[str, str, Sequence[str]]],
    *,
    text: Sequence[str] = (),
    usage: tuple[int, int] | None = (20, 12),
) -> StreamReply:
    """Optional text, then each ``(id, name, argument fragments)`` call in turn."""
    steps: list[Step] = [Text(t) for t in text]
    for index, (call_id, name, fragments) in enumerate(calls):
        steps.append(ToolCall(index, call_id, name))
        steps.extend(ToolArgs(index, f) for f in fragments)
    steps.append(Finish("tool_calls"))
    if usage is not None:
        steps.append(Usage(*usage))
    steps.append(Done())
    return StreamReply(steps)


def error_reply(
    status: int,
    *,
    message: str = "error",
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> ErrorReply:
    """An error with OpenAI's body shape."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return ErrorReply(status, body, headers or {})


# The bodies OpenAI sends for the common failures.
def rate_limited(*, retry_after: str | None = "7", retry_after_ms: str | None = None) -> ErrorReply:
    headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return error_reply(
        429,
        message="Rate limit reached for requests. Please try again in 7s.",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def invalid_api_key() -> ErrorReply:
    return error_reply(
        401,
        message="Incorrect API key provided: sk-wr***ng. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def context_length_exceeded() -> ErrorReply:
    return error_reply(
        400,
        message="This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130000 tokens. Please reduce the length of the messages.",
        code="context_length_exceeded",
        param="messages",
    )


class OpenAIServer(ScriptedServer[StreamReply]):
    """The fake: ``base_url`` is what the SDK is pointed at."""

    path = "/v1/chat/completions"
    request_id_header = "x-request-id"

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__(api_key=api_key, default=text_reply("Hello", " from", " the", " fake"))

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def key_rejected(self) -> ErrorReply:
        return invalid_api_key()

    def malformed(self, record: RecordedRequest) -> ErrorReply | None:
        if not record.model or not isinstance(record.body.get("messages"), list):
            return error_reply(400, message="you must provide a model parameter", param="model")
        body = record.body
        if "tool_choice" in body and not body.get("tools"):
            return error_reply(
                400,
                message="Invalid value for 'tool_choice': 'tool_choice' is only allowed when"
                " 'tools' are specified.",
                param="tool_choice",
            )
        return _bad_tools(body.get("tools")) or _bad_tool_turns(body["messages"])

    async def write_stream(self, stream: Streaming, reply: StreamReply, request_id: str) -> None:
        chunks = _ChunkWriter(stream.record, chat_id=f"chatcmpl-{request_id}")
        if reply.role_chunk:
            await stream.send(chunks.choice({"role": "assistant", "content": "", "refusal": None}))
        for step in reply.steps:
            if isinstance(step, Text):
                await stream.send(chunks.choice({"content": step.text}))
            elif isinstance(step, Reasoning):
                content = None if step.field == "reasoning_content" else ""
                await stream.send(chunks.choice({"content": content, step.field: step.text}))
            elif isinstance(step, Refusal):
                await stream.send(chunks.choice({"refusal": step.text}))
            elif isinstance(step, ToolCall):
                call = {
                    "index": step.index,
                    "id": step.id,
                    "type": "function",
                    "function": {"name": step.name, "arguments": step.arguments},
                }
                await stream.send(chunks.choice({"tool_calls": [call]}))
            elif isinstance(step, ToolArgs):
                fragment = {"index": step.index, "function": {"arguments": step.arguments}}
                await stream.send(chunks.choice({"tool_calls": [fragment]}))
            elif isinstance(step, Finish):
                await stream.send(chunks.choice({}, finish_reason=step.reason))
            elif isinstance(step, Usage):
                if chunks.include_usage:
                    await stream.send(chunks.usage(step))
            elif isinstance(step, StreamError):
                error = {
                    "message": step.message,
                    "type": step.type,
                    "param": None,
                    "code": step.code,
                }
                await stream.send(sse_event({"error": error}))
            elif isinstance(step, Done):
                await stream.send(b"data: [DONE]\n\n")
            else:
                await stream.control(step)


def _bad_tools(tools: object) -> ErrorReply | None:
    """OpenAI's 400 for a ``tools`` list that is not function definitions."""
    if tools is None:
        return None
    if not isinstance(tools, list) or not tools:
        return error_reply(400, message="[] is too short - 'tools'", param="tools")
    for n, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
        ):
            return error_reply(400, message=f"Missing required parameter: 'tools[{n}].function'.")
        if not isinstance(function.get("name"), str) or not function["name"]:
            return error_reply(
                400, message=f"Missing required parameter: 'tools[{n}].function.name'."
            )
        if not isinstance(function.get("parameters", {}), dict):
            return error_reply(400, message=f"Invalid type for 'tools[{n}].function.parameters'.")
    return None


def _bad_tool_turns(messages: list[Any]) -> ErrorReply | None:
    """OpenAI's 400s for a tool conversation: each assistant ``tool_calls`` message must be
    followed by one ``tool`` message per call id, and every ``tool`` message must answer one."""
    open_ids: list[str] = []
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_ids or not isinstance(message.get("content"), str):
                return error_reply(
                    400,
                    message="Invalid parameter: messages with role 'tool' must be a response to"
                    " a preceeding message with 'tool_calls'.",
                    param=f"messages.[{n}].role",
                )
            open_ids.remove(call_id)
            continue
        if open_ids:
            return _unanswered(open_ids)
        if role == "assistant" and message.get("tool_calls"):
            calls = message["tool_calls"]
            for call in calls:
                function = call.get("function") or {}
                if call.get("type") != "function" or not isinstance(function.get("arguments"), str):
                    return error_reply(
                        400, message=f"Invalid value for 'messages[{n}].tool_calls'."
                    )
            open_ids = [call.get("id") for call in calls]
    return _unanswered(open_ids) if open_ids else None


def _unanswered(ids: list[str]) -> ErrorReply:
    return error_reply(
        400,
        message="An assistant message with 'tool_calls' must be followed by tool messages"
        " responding to each 'tool_call_id'. The following tool_call_ids did not have response"
        f" messages: {', '.join(ids)}",
        param="messages",
    )


class _ChunkWriter:
    """Builds ``chat.completion.chunk`` events with the fields OpenAI puts on every chunk."""

    def __init__(self, record: RecordedRequest, *, chat_id: str) -> None:
        options = record.body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self._base: dict[str, Any] = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": 1_735_689_600,
            "model": record.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }

    def choice(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> bytes:
        chunk = self._base | {
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ]
        }
        if self.include_usage:
            chunk["usage"] = None
        return sse_event(chunk)

    def usage(self, usage: Usage) -> bytes:
        counts = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        return sse_event(self._base | {"choices": [], "usage": counts})
