"""Typed frames of protocol v1.

Every frame on the wire is a map with a ``type`` key; here each frame type is a frozen
:class:`msgspec.Struct` tagged by that key. Pure data: no I/O, no clock.

Optional fields default to ``None`` (or ``False``) and are left out of encoded frames when they
hold that default; fields that the protocol always sends, even as ``null``, have no default.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ModelId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
StreamId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

StreamReason = Literal["complete", "cancelled", "interrupted", "length", "error"]
MessageStatus = Literal["complete", "streaming", "cancelled", "interrupted", "error"]
Role = Literal["user", "assistant"]
ErrorCode = Literal[
    "bad_frame",
    "unknown_type",
    "unknown_model",
    "not_found",
    "forbidden",
    "unauthorized",
    "rate_limited",
    "too_large",
    "busy",
    "provider_error",
    "internal",
]


class Frame(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type"):
    """Base of every frame; the subclass's tag is its ``type``."""


# --- client -> server -----------------------------------------------------------------------


class Since(msgspec.Struct, frozen=True, kw_only=True):
    """The last room event a client saw."""

    epoch: Annotated[str, msgspec.Meta(max_length=128)]
    #: At most 2**53 - 1, as every integer of the protocol (a JavaScript number holds it).
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]


class Params(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Generation parameters a prompt may set."""

    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    #: Ask the demo models to think aloud first; vendor models think by their configured params.
    reasoning: bool | None = None


class Hello(Frame, frozen=True, kw_only=True, tag="hello"):
    id: MessageId | None = None
    name: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    token: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    since: Since | None = None


class Prompt(Frame, frozen=True, kw_only=True, tag="prompt"):
    id: MessageId
    text: str
    models: Annotated[list[ModelId], msgspec.Meta(max_length=32)] | None = None
    params: Params | None = None


class Cancel(Frame, frozen=True, kw_only=True, tag="cancel"):
    id: MessageId | None = None
    stream: StreamId | None = None
    model: ModelId | None = None


class Interrupt(Frame, frozen=True, kw_only=True, tag="interrupt"):
    id: MessageId | None = None
    text: str | None = None
    models: Annotated[list[ModelId], msgspec.Meta(max_length=32)] | None = None
    params: Params | None = None


class Typing(Frame, frozen=True, kw_only=True, tag="typing"):
    id: MessageId | None = None
    active: bool


class Ping(Frame, frozen=True, kw_only=True, tag="ping"):
    id: MessageId | None = None


class Approve(Frame, frozen=True, kw_only=True, tag="approve"):
    """A member's answer to a ``tool_approval``: run the call (``allow``) or deny it."""

    id: MessageId | None = None
    call: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    allow: bool


# --- client -> server: the room's queue and regenerate (issue 16) ----------------------------


class Withdraw(Frame, frozen=True, kw_only=True, tag="withdraw"):
    """Take one's own queued prompt out of the room's queue before it runs."""

    id: MessageId | None = None
    #: The user message id of the queued prompt (``message.id``, not its ``prompt_id``).
    message: MessageId


class Regenerate(Frame, frozen=True, kw_only=True, tag="regenerate"):
    """Run ``model``'s reply to user message ``reply_to`` again; queued like a prompt."""

    id: MessageId | None = None
    model: ModelId
    reply_to: MessageId


ClientFrame = Hello | Prompt | Cancel | Interrupt | Typing | Ping | Approve | Withdraw | Regenerate
CLIENT_TYPES = frozenset(
    (
        "hello",
        "prompt",
        "cancel",
        "interrupt",
        "typing",
        "ping",
        "approve",
        "withdraw",
        "regenerate",
    )
)


# --- shared records -------------------------------------------------------------------------


class Participant(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str


class PresenceEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    typing: bool


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    label: str
    provider: str
    #: True for the built-in demo models, whose text is made up on the server.
    simulated: bool = False
    #: True for the models a prompt without ``models`` goes to.
    default: bool = False


class Usage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    input_tokens: int
    output_tokens: int
    #: True when the provider sent no counts and the server estimated them.
    estimated: bool = False


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    code: ErrorCode
    message: str
    retry_after: float | None = None


ToolErrorCode = Literal["failed", "timeout", "denied", "unknown_tool", "bad_arguments", "cancelled"]


class ToolErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Why a tool call has no result; the model is told the same."""

    code: ToolErrorCode
    message: str


class ToolCallRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A finished tool call as stored with a reply: ``args`` is the whole JSON text."""

    call: str
    name: str | None = None
    args: str = ""
    #: Extension (tools the server runs): the call's result or its error, and how long it ran.
    result: str | None = None
    error: ToolErrorInfo | None = None
    duration_ms: int | None = None


class HistoryMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    role: Role
    text: str
    status: MessageStatus
    ts: int
    author: Participant | None = None
    model: str | None = None
    reply_to: str | None = None
    usage: Usage | None = None
    #: Extension: the stream that produced an assistant message.
    stream: str | None = None
    #: Extension: finished tool calls of an assistant message.
    tool_calls: list[ToolCallRecord] | None = None
    #: Extension: what went wrong, for status ``error``.
    error: ErrorInfo | None = None
    #: Extension: the client's ``prompt.id`` of a user message, so that a client that got a full
    #: snapshot instead of a resume can still tell whether a prompt it sent was stored.
    prompt_id: str | None = None
    #: Extension (issue 18): the router whose lane this reply is in; ``model`` answered it.
    routed_from: str | None = None
    #: Extension: a user message waiting in the room's queue for the running streams to end.
    queued: bool = False
    #: Extension: a user message that never ran (withdrawn, cleared by a cancel, or dropped).
    withdrawn: bool = False
    #: Extension: the assistant message id an assistant message (a regenerated reply) supersedes.
    replaces: str | None = None
    #: Extension: an assistant message's thinking text, kept apart from ``text``.
    reasoning: str | None = None


class RunningStream(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    stream: str
    model: str
    message: str
    reply_to: str
    text: str
    #: Extension (issue 18): the router whose lane this stream is in; ``model`` answers it.
    routed_from: str | None = None
    #: Extension: the stream's thinking text so far, when it has some.
    reasoning: str | None = None
    #: Extension (tools the server runs): the stream's tool calls so far, with the results of
    #: those that ended, and the calls waiting for an ``approve`` now.
    tool_calls: list[ToolCallRecord] | None = None
    waiting: list[str] | None = None


# --- server -> client -----------------------------------------------------------------------


class Welcome(Frame, frozen=True, kw_only=True, tag="welcome"):
    session: str
    participant: Participant
    room: str
    epoch: str
    seq: int
    resumed: bool
    models: list[ModelInfo]
    participants: list[PresenceEntry]
    messages: list[HistoryMessage]
    streams: list[RunningStream]
    #: Extension: how many participants are connected; ``participants`` lists a bounded few.
    participant_count: int | None = None


class MessageEvent(Frame, frozen=True, kw_only=True, tag="message"):
    seq: int
    id: str
    author: Participant
    text: str
    prompt_id: str
    ts: int
    #: Extension: stored but waiting in the room's queue; an ``unqueued`` event follows.
    queued: bool = False


class StreamStart(Frame, frozen=True, kw_only=True, tag="stream_start"):
    seq: int
    stream: str
    model: str
    message: str
    reply_to: str
    ts: int
    #: Extension (issue 18): the router that chose ``model``, and why, in a few words.
    routed_from: str | None = None
    route_reason: str | None = None
    #: Extension: the assistant message this stream supersedes (it regenerates that reply).
    replaces: str | None = None


class TokenEvent(Frame, frozen=True, kw_only=True, tag="token"):
    seq: int
    stream: str
    text: str
    #: Unix microseconds when the provider emitted the (first) token; stamping demo models only.
    emitted_us: int | None = None
    #: How many tokens ``text`` holds, when more than one (a coalesced frame).
    tokens: Annotated[int, msgspec.Meta(ge=2)] | None = None


class ToolCallEvent(Frame, frozen=True, kw_only=True, tag="tool_call"):
    seq: int
    stream: str
    call: str
    args: str
    name: str | None = None


class StreamEnd(Frame, frozen=True, kw_only=True, tag="stream_end"):
    seq: int
    stream: str
    reason: StreamReason
    usage: Usage | None
    ttft_ms: int | None
    duration_ms: int
    tokens_per_s: float | None
    error: ErrorInfo | None = None
    #: Extension: true when ``tokens_per_s`` was derived from an estimated ``usage``.
    tokens_per_s_estimated: bool = False


class Presence(Frame, frozen=True, kw_only=True, tag="presence"):
    """Retired: the whole participant list. Servers now send presence_diff instead."""

    participants: list[PresenceEntry]


class PresenceDiff(Frame, frozen=True, kw_only=True, tag="presence_diff"):
    """What changed in the room's participant list since the last presence frame.

    ``changed`` entries are added or replace the entry with their id; ``left`` ids are removed;
    ``count`` is how many participants are connected, listed or not.
    """

    changed: list[PresenceEntry]
    left: list[str]
    count: int


class ErrorFrame(Frame, frozen=True, kw_only=True, tag="error"):
    code: ErrorCode
    message: str
    ref: str | None = None
    retry_after: float | None = None


class Pong(Frame, frozen=True, kw_only=True, tag="pong"):
    id: str | None = None


class ToolResultEvent(Frame, frozen=True, kw_only=True, tag="tool_result"):
    """A tool call the server ran has ended: its ``result``, or its ``error``."""

    seq: int
    stream: str
    call: str
    name: str
    duration_ms: int
    result: str | None = None
    error: ToolErrorInfo | None = None


class ToolApprovalEvent(Frame, frozen=True, kw_only=True, tag="tool_approval"):
    """A tool call waits for a member's ``approve``; ``args`` is its whole JSON text."""

    seq: int
    stream: str
    call: str
    name: str
    args: str


class ToolDecisionEvent(Frame, frozen=True, kw_only=True, tag="tool_decision"):
    """A ``tool_approval`` was answered by ``by``, or timed out (``by`` absent, a denial)."""

    seq: int
    stream: str
    call: str
    allow: bool
    by: Participant | None = None


class ReasoningEvent(Frame, frozen=True, kw_only=True, tag="reasoning"):
    """Thinking text of a stream, to append to its reasoning; never part of the answer."""

    seq: int
    stream: str
    text: str


# --- router (issue 18) -----------------------------------------------------------------------


class ModelSwitch(Frame, frozen=True, kw_only=True, tag="model_switch"):
    """A routed stream's model failed before its first token; ``model`` answers from now on."""

    seq: int
    stream: str
    model: str
    reason: str


# --- server -> client: the room's queue (issue 16) -------------------------------------------

UnqueuedReason = Literal["started", "withdrawn", "cleared"]


class Unqueued(Frame, frozen=True, kw_only=True, tag="unqueued"):
    """Queued prompts left the room's queue: they started, or were withdrawn or cleared."""

    seq: int
    #: User message ids, in queue order.
    messages: list[str]
    reason: UnqueuedReason


RoomEvent = (
    MessageEvent
    | StreamStart
    | TokenEvent
    | ToolCallEvent
    | StreamEnd
    | ReasoningEvent
    | ModelSwitch
    | ToolResultEvent
    | ToolApprovalEvent
    | ToolDecisionEvent
    | Unqueued
)
ServerFrame = Welcome | RoomEvent | Presence | PresenceDiff | ErrorFrame | Pong
