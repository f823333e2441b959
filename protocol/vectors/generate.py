"""Generate the golden vectors of protocol v1 from the typed frames in rtserver.

Run from the repository root with the project's environment::

    .venv/bin/python protocol/vectors/generate.py          # rewrite the vector files
    .venv/bin/python protocol/vectors/generate.py --check  # exit 1 if any file is stale

The bytes in the files are whatever rtserver's codecs produce, so a codec change that alters the
wire format shows up here as a diff to review. The format is described in README.md beside this
file. Output is deterministic: fixed inputs, no clock, no randomness.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec

from rtserver.protocol.closecodes import CloseCode
from rtserver.protocol.codec import JSON, MSGPACK
from rtserver.protocol.frames import (
    Approve,
    Cancel,
    ClientFrame,
    ErrorFrame,
    ErrorInfo,
    Hello,
    HistoryMessage,
    Interrupt,
    MessageEvent,
    MessageStatus,
    ModelInfo,
    ModelSwitch,
    Params,
    Participant,
    Ping,
    Pong,
    Presence,
    PresenceDiff,
    PresenceEntry,
    Prompt,
    ReasoningEvent,
    Regenerate,
    RunningStream,
    ServerFrame,
    Since,
    StreamEnd,
    StreamStart,
    TokenEvent,
    ToolApprovalEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolDecisionEvent,
    ToolErrorInfo,
    ToolResultEvent,
    Typing,
    Unqueued,
    Usage,
    Welcome,
    Withdraw,
)
from rtserver.protocol.nesting import MAX_NESTING

VECTOR_DIR: Final = Path(__file__).resolve().parent
PROTOCOL: Final = "rt.v1"

#: Largest integer every client can hold exactly (JavaScript numbers are IEEE-754 doubles).
MAX_SAFE_INT: Final = 2**53 - 1

TS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms: beyond 32 bits, as every real ts.

# Text that trips naive encoders: astral-plane emoji and a ZWJ sequence (UTF-16 surrogate pairs),
# CJK, right-to-left scripts, a combining mark, and characters JSON must or may escape.
EMOJI: Final = "\U0001f642 \U0001f469\U0001f3fd\u200d\U0001f4bb \U0001f1ef\U0001f1f5"  # ZWJ, flag
CJK: Final = "你好\uff0c世界。こんにちは。안녕하세요"
RTL: Final = "שלום עולם — مرحبا بالعالم"
COMBINING: Final = "e\u0301"  # "é" as e + COMBINING ACUTE ACCENT: not normalised on the wire.
ESCAPES: Final = 'line 1\nline 2\t"quoted" \\ back\u2028sep \u0001 end'

ALICE: Final = Participant(id="u-alice", name="Alice")
BOB: Final = Participant(id="u-bob", name="بوب")

#: The failure of stream s-3: in the history snapshot and in that stream's ``stream_end``.
OVERLOADED: Final = ErrorInfo(
    code="provider_error", message="the provider is overloaded", retry_after=30.0
)


def client_frames() -> list[tuple[str, ClientFrame]]:
    """Every client frame type, with optional fields absent and present."""
    return [
        ("hello-minimal", Hello()),
        (
            "hello-full",
            Hello(
                id="h-1",
                name="Ada Lovelace",
                token="tok_abc.def-123",
                since=Since(epoch="ep-7f3a9c", seq=4_294_967_296),
            ),
        ),
        ("hello-since-zero", Hello(name="李雷", since=Since(epoch="e0", seq=0))),
        ("hello-max-safe-seq", Hello(since=Since(epoch="e1", seq=MAX_SAFE_INT))),
        ("prompt-minimal", Prompt(id="p-1", text="Hello")),
        (
            "prompt-full",
            Prompt(
                id="p-2",
                text=f"Compare: {EMOJI} {CJK} {RTL} {COMBINING}",
                models=["demo", "gpt-4o-mini"],
                params=Params(temperature=0.7, max_tokens=256),
            ),
        ),
        ("prompt-escapes", Prompt(id="p-3", text=ESCAPES, params=Params(max_tokens=1))),
        ("prompt-temperature-zero", Prompt(id="p-4", text="x", params=Params(temperature=0.0))),
        ("prompt-empty-models-params", Prompt(id="p-5", text="hi", params=Params())),
        ("cancel-all", Cancel()),
        ("cancel-stream", Cancel(id="c-1", stream="s-1")),
        ("cancel-model", Cancel(id="c-2", model="demo")),
        ("interrupt-bare", Interrupt()),
        (
            "interrupt-redirect",
            Interrupt(
                id="p-6",
                text="Shorter, please.",
                models=["demo"],
                params=Params(temperature=1.5),
            ),
        ),
        ("typing-on", Typing(active=True)),
        ("typing-off-with-id", Typing(id="t-1", active=False)),
        ("ping-bare", Ping()),
        ("ping-with-id", Ping(id="ping-42")),
        # Reasoning (issue 16): ask the demo models to think first.
        (
            "prompt-reasoning",
            Prompt(id="p-20", text="Think first", params=Params(reasoning=True, max_tokens=64)),
        ),
        *_tool_client_frames(),
    ]


def _tool_client_frames() -> list[tuple[str, ClientFrame]]:
    """Issue 17: a member's answer to a tool_approval."""
    return [
        ("approve-allow", Approve(call="call-7", allow=True)),
        ("approve-deny-with-id", Approve(id="a-1", call="toolu_01A", allow=False)),
    ]


def _prompt_message(
    *, id: str, text: str, ts: int, author: Participant, prompt_id: str
) -> HistoryMessage:
    """A participant's prompt as the history keeps it."""
    return HistoryMessage(
        id=id, role="user", text=text, status="complete", ts=ts, author=author, prompt_id=prompt_id
    )


def _reply_message(
    *,
    id: str,
    text: str,
    status: MessageStatus,
    ts: int,
    model: str,
    reply_to: str,
    stream: str,
    usage: Usage | None = None,
    tool_calls: list[ToolCallRecord] | None = None,
    error: ErrorInfo | None = None,
) -> HistoryMessage:
    """A model's reply as the history keeps it."""
    return HistoryMessage(
        id=id,
        role="assistant",
        text=text,
        status=status,
        ts=ts,
        model=model,
        reply_to=reply_to,
        usage=usage,
        stream=stream,
        tool_calls=tool_calls,
        error=error,
    )


def _history() -> list[HistoryMessage]:
    return [
        _prompt_message(
            id="m-1", text=f"Say hi in three scripts {EMOJI}", ts=TS, author=ALICE, prompt_id="p-1"
        ),
        _reply_message(
            id="m-2",
            text=f"{CJK} {RTL}",
            status="complete",
            ts=TS + 12,
            model="demo",
            reply_to="m-1",
            usage=Usage(input_tokens=12, output_tokens=34),
            stream="s-1",
        ),
        _reply_message(
            id="m-3",
            text="",
            status="complete",
            ts=TS + 13,
            model="gpt-4o-mini",
            reply_to="m-1",
            usage=Usage(input_tokens=12, output_tokens=20, estimated=True),
            stream="s-2",
            tool_calls=[
                ToolCallRecord(call="call-1", name="get_time", args='{"tz":"Asia/Tokyo"}'),
                ToolCallRecord(call="call-2"),
            ],
        ),
        _reply_message(
            id="m-4",
            text="Part",
            status="error",
            ts=TS + 14,
            model="claude",
            reply_to="m-1",
            stream="s-3",
            error=OVERLOADED,
        ),
        _prompt_message(id="m-5", text=ESCAPES, ts=TS + 5_000, author=BOB, prompt_id="b-9"),
        _reply_message(
            id="m-6",
            text="Cut sh",
            status="cancelled",
            ts=TS + 5_010,
            model="demo",
            reply_to="m-5",
            stream="s-4",
        ),
        _reply_message(
            id="m-7",
            text="Stopped",
            status="interrupted",
            ts=TS + 5_011,
            model="claude",
            reply_to="m-5",
            stream="s-5",
        ),
        _prompt_message(id="m-8", text="And now?", ts=TS + 9_000, author=ALICE, prompt_id="p-2"),
        _reply_message(
            id="m-9",
            text="Working on",
            status="streaming",
            ts=TS + 9_010,
            model="demo",
            reply_to="m-8",
            stream="s-6",
        ),
    ]


def _present(participant: Participant, *, typing: bool) -> PresenceEntry:
    return PresenceEntry(id=participant.id, name=participant.name, typing=typing)


def server_frames() -> list[tuple[str, ServerFrame]]:
    """Every server frame type, with optional fields absent and present, nulls where allowed."""
    demo = ModelInfo(id="demo", label="Demo", provider="demo", simulated=True, default=True)
    both_present = [_present(ALICE, typing=True), _present(BOB, typing=False)]
    empty_room = Welcome(
        session="sess-1",
        participant=ALICE,
        room="lobby",
        epoch="ep-1",
        seq=0,
        resumed=False,
        models=[demo],
        participants=[_present(ALICE, typing=False)],
        messages=[],
        streams=[],
    )
    return [
        ("welcome-empty-room", empty_room),
        (
            "welcome-snapshot",
            Welcome(
                session="sess-2",
                participant=BOB,
                room="team_42-a",
                epoch="ep-7f3a9c",
                seq=4_294_967_296,
                resumed=False,
                models=[
                    demo,
                    ModelInfo(id="gpt-4o-mini", label="GPT-4o mini", provider="openai"),
                    ModelInfo(id="claude", label="Claude", provider="anthropic", default=True),
                ],
                participants=both_present,
                messages=_history(),
                streams=[
                    RunningStream(
                        stream="s-6", model="demo", message="m-9", reply_to="m-8", text="Working on"
                    )
                ],
            ),
        ),
        # The same room for a client that resumed: the snapshot is empty, ``seq`` moved on.
        (
            "welcome-resumed",
            msgspec.structs.replace(empty_room, session="sess-3", seq=57, resumed=True),
        ),
        # A big room: ``participants`` lists the first few to join, ``participant_count`` all.
        (
            "welcome-counted",
            msgspec.structs.replace(
                empty_room, session="sess-4", participants=both_present, participant_count=5_000
            ),
        ),
        (
            "message",
            MessageEvent(seq=1, id="m-1", author=ALICE, text=f"Hi {EMOJI}", prompt_id="p-1", ts=TS),
        ),
        (
            "message-multilingual",
            MessageEvent(
                seq=2,
                id="m-5",
                author=BOB,
                text=f"{RTL} {CJK} {COMBINING}",
                prompt_id="b-9",
                ts=TS + 5_000,
            ),
        ),
        (
            "stream_start",
            StreamStart(seq=3, stream="s-1", model="demo", message="m-2", reply_to="m-1", ts=TS),
        ),
        ("token-ascii", TokenEvent(seq=4, stream="s-1", text="Hello")),
        ("token-unicode", TokenEvent(seq=5, stream="s-1", text=f"{EMOJI}{CJK}{RTL}")),
        ("token-escapes", TokenEvent(seq=6, stream="s-1", text=ESCAPES)),
        ("token-whitespace", TokenEvent(seq=7, stream="s-1", text=" ")),
        ("token-max-safe-seq", TokenEvent(seq=MAX_SAFE_INT, stream="s-1", text="z")),
        (
            "token-emitted_us",
            TokenEvent(seq=8, stream="s-1", text=" stamped", emitted_us=1_796_000_000_123_456),
        ),
        (
            "token-coalesced",
            TokenEvent(seq=8, stream="s-1", text=" three tokens", tokens=3),
        ),
        (
            "tool_call-first",
            ToolCallEvent(seq=8, stream="s-2", call="call-1", name="get_time", args='{"tz":'),
        ),
        ("tool_call-fragment", ToolCallEvent(seq=9, stream="s-2", call="call-1", args='"UTC"}')),
        (
            "stream_end-complete",
            StreamEnd(
                seq=10,
                stream="s-1",
                reason="complete",
                usage=Usage(input_tokens=12, output_tokens=34),
                ttft_ms=180,
                duration_ms=1_250,
                tokens_per_s=31.5,
            ),
        ),
        (
            "stream_end-length-estimated",
            StreamEnd(
                seq=11,
                stream="s-2",
                reason="length",
                usage=Usage(input_tokens=1_000_000, output_tokens=4_096, estimated=True),
                ttft_ms=0,
                duration_ms=60_000,
                tokens_per_s=68.27,
            ),
        ),
        (
            "stream_end-cancelled-null-usage",
            StreamEnd(
                seq=12,
                stream="s-4",
                reason="cancelled",
                usage=None,
                ttft_ms=None,
                duration_ms=40,
                tokens_per_s=None,
            ),
        ),
        (
            "stream_end-interrupted",
            StreamEnd(
                seq=13,
                stream="s-5",
                reason="interrupted",
                usage=Usage(input_tokens=7, output_tokens=2, estimated=True),
                ttft_ms=95,
                duration_ms=300,
                tokens_per_s=None,
            ),
        ),
        (
            "stream_end-error",
            StreamEnd(
                seq=14,
                stream="s-3",
                reason="error",
                usage=None,
                ttft_ms=210,
                duration_ms=2_000,
                tokens_per_s=None,
                error=OVERLOADED,
            ),
        ),
        (
            "stream_end-error-no-retry",
            StreamEnd(
                seq=15,
                stream="s-7",
                reason="error",
                usage=None,
                ttft_ms=None,
                duration_ms=3,
                tokens_per_s=None,
                error=ErrorInfo(code="internal", message="the reply could not be generated"),
            ),
        ),
        (
            "stream_end-counted-no-usage",
            StreamEnd(
                seq=16,
                stream="s-8",
                reason="complete",
                usage=Usage(input_tokens=40, output_tokens=108, estimated=True),
                ttft_ms=320,
                duration_ms=4_900,
                tokens_per_s=23.36,
                tokens_per_s_estimated=True,
            ),
        ),
        ("presence-empty", Presence(participants=[])),
        ("presence", Presence(participants=both_present)),
        (
            "presence-diff-joined",
            PresenceDiff(changed=[_present(BOB, typing=False)], left=[], count=2),
        ),
        (
            "presence-diff-typing-and-left",
            PresenceDiff(changed=[_present(ALICE, typing=True)], left=[BOB.id], count=1),
        ),
        # Someone beyond the listed few joined or left: only the count changes.
        ("presence-diff-count-only", PresenceDiff(changed=[], left=[], count=4_999)),
        ("error-minimal", ErrorFrame(code="internal", message="something went wrong")),
        (
            "error-with-ref",
            ErrorFrame(code="not_found", message="no running stream s-9", ref="c-1"),
        ),
        (
            "error-rate-limited",
            ErrorFrame(
                code="rate_limited",
                message="too many prompts; wait a moment",
                ref="p-7",
                retry_after=1.5,
            ),
        ),
        (
            "error-retry-after-integral",
            ErrorFrame(code="rate_limited", message="slow down", retry_after=2.0),
        ),
        ("error-busy", ErrorFrame(code="busy", message="a turn is running", ref="p-8")),
        ("error-unknown-model", ErrorFrame(code="unknown_model", message="no model 'x'")),
        (
            "error-unauthorized",
            ErrorFrame(code="unauthorized", message="the token has expired: get a new one"),
        ),
        (
            "error-forbidden-with-ref",
            ErrorFrame(
                code="forbidden", message="a viewer's token does not allow prompt", ref="p-9"
            ),
        ),
        ("pong-bare", Pong()),
        ("pong-with-id", Pong(id="ping-42")),
        # Reasoning (issue 16): thinking text of a stream, and where a snapshot keeps it.
        ("reasoning", ReasoningEvent(seq=11, stream="s-1", text="Let me think: 2 + 2")),
        ("reasoning-unicode", ReasoningEvent(seq=12, stream="s-1", text=f"{CJK} {RTL} {ESCAPES}")),
        ("welcome-reasoning", _reasoning_welcome(empty_room)),
        *_tool_server_frames(),
        *_routed_frames(empty_room),
    ]


def _routed_frames(room: Welcome) -> list[tuple[str, ServerFrame]]:
    """Issue 18: a router's stream, its switch of model, and routed replies in a snapshot."""
    auto = ModelInfo(id="auto", label="Auto", provider="router", default=True)
    routed_reply = HistoryMessage(
        id="m-21",
        role="assistant",
        text="Use a dict.",
        status="complete",
        ts=TS + 9_000,
        model="demo-fast",
        reply_to="m-20",
        stream="s-20",
        routed_from="auto",
    )
    return [
        (
            "stream_start-routed",
            StreamStart(
                seq=17,
                stream="s-21",
                model="gpt-4o-mini",
                message="m-23",
                reply_to="m-22",
                ts=TS + 10_000,
                routed_from="auto",
                route_reason="route 1: contains code",
            ),
        ),
        (
            "model_switch",
            ModelSwitch(
                seq=18,
                stream="s-21",
                model="claude",
                reason="gpt-4o-mini failed before its first token: rate limit reached",
            ),
        ),
        (
            "welcome-routed",
            msgspec.structs.replace(
                room,
                session="sess-5",
                seq=18,
                models=[*room.models, auto],
                messages=[
                    _prompt_message(
                        id="m-20",
                        text="How do I count words?",
                        ts=TS + 9_000,
                        author=ALICE,
                        prompt_id="p-20",
                    ),
                    routed_reply,
                ],
                streams=[
                    RunningStream(
                        stream="s-21",
                        model="claude",
                        message="m-23",
                        reply_to="m-22",
                        text="",
                        routed_from="auto",
                    )
                ],
            ),
        ),
    ]


def _tool_server_frames() -> list[tuple[str, ServerFrame]]:
    """Issue 17: tool calls the server runs, their approvals and results."""
    return [
        (
            "tool-result-ok",
            ToolResultEvent(
                seq=30, stream="s-1", call="call-7", name="calculator", result="391", duration_ms=3
            ),
        ),
        (
            "tool-result-unicode",
            ToolResultEvent(
                seq=31,
                stream="s-1",
                call="call-8",
                name="lookup",
                result=f"{CJK} {ESCAPES}",
                duration_ms=0,
            ),
        ),
        (
            "tool-result-error",
            ToolResultEvent(
                seq=32,
                stream="s-2",
                call="toolu_01A",
                name="search",
                error=ToolErrorInfo(code="timeout", message="the tool took longer than 30 s"),
                duration_ms=30_000,
            ),
        ),
        (
            "tool-approval",
            ToolApprovalEvent(
                seq=33, stream="s-2", call="toolu_01B", name="delete_file", args='{"path":"a.txt"}'
            ),
        ),
        (
            "tool-decision-by",
            ToolDecisionEvent(seq=34, stream="s-2", call="toolu_01B", allow=True, by=BOB),
        ),
        (
            "tool-decision-timeout",
            ToolDecisionEvent(seq=35, stream="s-2", call="toolu_01C", allow=False),
        ),
        (
            "welcome-tool-results",
            Welcome(
                session="sess-9",
                participant=ALICE,
                room="tools",
                epoch="ep-9",
                seq=36,
                resumed=False,
                models=[],
                participants=[],
                messages=[
                    _reply_message(
                        id="m-9",
                        text="17 * 23 = 391",
                        status="complete",
                        ts=TS + 90,
                        model="demo",
                        reply_to="m-8",
                        stream="s-1",
                        tool_calls=[
                            ToolCallRecord(
                                call="call-7",
                                name="calculator",
                                args='{"expression":"17*23"}',
                                result="391",
                                duration_ms=3,
                            ),
                            ToolCallRecord(
                                call="call-9",
                                name="delete_file",
                                args="{}",
                                error=ToolErrorInfo(code="denied", message="Bob denied the call"),
                                duration_ms=0,
                            ),
                        ],
                    )
                ],
                streams=[
                    RunningStream(
                        stream="s-2",
                        model="claude",
                        message="m-10",
                        reply_to="m-8",
                        text="Let me look.",
                        tool_calls=[
                            ToolCallRecord(
                                call="toolu_01D",
                                name="search",
                                args='{"q":"rtserver"}',
                                result="3 hits",
                                duration_ms=120,
                            ),
                            ToolCallRecord(call="toolu_01E", name="delete_file", args="{}"),
                        ],
                        waiting=["toolu_01E"],
                    )
                ],
            ),
        ),
    ]


def _reasoning_welcome(room: Welcome) -> Welcome:
    """A snapshot with a finished reply's reasoning and a running stream's reasoning so far."""
    asked = _prompt_message(id="m-1", text="2 + 2?", ts=TS, author=ALICE, prompt_id="p-20")
    thought = msgspec.structs.replace(
        _reply_message(
            id="m-2",
            text="4.",
            status="complete",
            ts=TS + 10,
            model="claude",
            reply_to="m-1",
            stream="s-1",
        ),
        reasoning=f"Two and two {EMOJI}",
    )
    thinking = _reply_message(
        id="m-3",
        text="",
        status="streaming",
        ts=TS + 11,
        model="demo",
        reply_to="m-1",
        stream="s-2",
    )
    running = RunningStream(
        stream="s-2", model="demo", message="m-3", reply_to="m-1", text="", reasoning="The ques"
    )
    return msgspec.structs.replace(
        room, session="sess-5", seq=30, messages=[asked, thought, thinking], streams=[running]
    )


# --- the room's queue and regenerate (issue 16) ------------------------------------------------


def queue_client_frames() -> list[tuple[str, ClientFrame]]:
    """``withdraw`` and ``regenerate``, with and without their optional ``id``."""
    return [
        ("withdraw", Withdraw(message="m-5")),
        ("withdraw-with-id", Withdraw(id="w-1", message="m-5")),
        ("regenerate", Regenerate(model="demo", reply_to="m-1")),
        ("regenerate-with-id", Regenerate(id="g-1", model="claude", reply_to="m-1")),
    ]


def queue_server_frames() -> list[tuple[str, ServerFrame]]:
    """A queued ``message``, each ``unqueued`` reason, a ``stream_start`` that replaces a reply,
    and history with queued, withdrawn and regenerated messages."""
    queued = _prompt_message(id="m-10", text="Next?", ts=TS + 9_500, author=BOB, prompt_id="b-10")
    regenerated = _reply_message(
        id="m-12",
        text="Hello again",
        status="complete",
        ts=TS + 20_000,
        model="claude",
        reply_to="m-1",
        stream="s-9",
    )
    history = [
        *_history(),
        msgspec.structs.replace(queued, queued=True),
        _prompt_message(id="m-11", text="Never mind", ts=TS + 9_600, author=ALICE, prompt_id="p-3"),
        msgspec.structs.replace(regenerated, replaces="m-4"),
    ]
    history[-2] = msgspec.structs.replace(history[-2], withdrawn=True)
    return [
        (
            "message-queued",
            MessageEvent(
                seq=20, id="m-10", author=BOB, text="Next?", prompt_id="b-10", ts=TS, queued=True
            ),
        ),
        ("unqueued-started", Unqueued(seq=21, messages=["m-10"], reason="started")),
        ("unqueued-withdrawn", Unqueued(seq=22, messages=["m-11"], reason="withdrawn")),
        ("unqueued-cleared", Unqueued(seq=23, messages=["m-10", "m-11"], reason="cleared")),
        (
            "stream_start-replaces",
            StreamStart(
                seq=24,
                stream="s-9",
                model="claude",
                message="m-12",
                reply_to="m-1",
                ts=TS + 20_000,
                replaces="m-4",
            ),
        ),
        (
            "welcome-queue",
            Welcome(
                session="sess-6",
                participant=ALICE,
                room="lobby",
                epoch="ep-9",
                seq=24,
                resumed=False,
                models=[ModelInfo(id="claude", label="Claude", provider="anthropic")],
                participants=[_present(ALICE, typing=False)],
                messages=history,
                streams=[],
            ),
        ),
    ]


def queue_invalid_inputs() -> list[tuple[str, dict[str, str], str, str | None]]:
    """``withdraw`` and ``regenerate`` missing, mistyped or oversized fields."""
    long_id = "x" * 129
    return [
        ("withdraw-message-missing", _both({"type": "withdraw", "id": "w-1"}), "bad_frame", "w-1"),
        (
            "withdraw-message-number",
            _both({"type": "withdraw", "id": "w-2", "message": 5}),
            "bad_frame",
            "w-2",
        ),
        (
            "withdraw-message-empty",
            _both({"type": "withdraw", "id": "w-3", "message": ""}),
            "bad_frame",
            "w-3",
        ),
        (
            "withdraw-message-too-long",
            _both({"type": "withdraw", "id": "w-4", "message": long_id}),
            "bad_frame",
            "w-4",
        ),
        (
            "regenerate-model-missing",
            _both({"type": "regenerate", "id": "g-1", "reply_to": "m-1"}),
            "bad_frame",
            "g-1",
        ),
        (
            "regenerate-reply-to-missing",
            _both({"type": "regenerate", "id": "g-2", "model": "demo"}),
            "bad_frame",
            "g-2",
        ),
        (
            "regenerate-model-list",
            _both({"type": "regenerate", "id": "g-3", "model": ["demo"], "reply_to": "m-1"}),
            "bad_frame",
            "g-3",
        ),
        (
            "regenerate-reply-to-too-long",
            _both({"type": "regenerate", "id": "g-4", "model": "demo", "reply_to": long_id}),
            "bad_frame",
            "g-4",
        ),
    ]


def _ping_nested(levels: int) -> dict[str, object]:
    """A ping whose unknown field ``x`` makes the frame ``levels`` maps and arrays deep."""
    inner: object = []
    for level in range(levels - 2):
        inner = {"k": inner} if level % 2 else [inner]
    return {"type": "ping", "x": inner}


def _deep_ping(levels: int) -> dict[str, str]:
    """A ping nested ``levels`` deep, written out directly (no encoder recurses that far)."""
    arrays = levels - 1
    return {
        "json": '{"type":"ping","x":' + "[" * arrays + "]" * arrays + "}",
        "msgpack_hex": (b"\x82\xa4type\xa4ping\xa1x" + b"\x91" * (arrays - 1) + b"\x90").hex(),
    }


def _both(value: object) -> dict[str, str]:
    """The same (invalid or unusual) value as JSON text and as MessagePack bytes."""
    return {
        "json": json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        "msgpack_hex": msgspec.msgpack.encode(value).hex(),
    }


def invalid_inputs() -> list[dict[str, object]]:
    """Client input the server must reject with an ``error`` frame: ``code`` and ``ref``."""
    long_id = "x" * 129
    cases: list[tuple[str, dict[str, str], str, str | None]] = [
        ("json-syntax", {"json": '{"type":"ping"'}, "bad_frame", None),
        ("json-trailing-data", {"json": '{"type":"ping"} {}'}, "bad_frame", None),
        ("msgpack-truncated", {"msgpack_hex": "82a474797065a470696e67a2"}, "bad_frame", None),
        ("msgpack-int-keys", {"msgpack_hex": "8101a470696e67"}, "bad_frame", None),
        ("not-a-map-array", _both(["ping"]), "bad_frame", None),
        ("not-a-map-string", _both("ping"), "bad_frame", None),
        ("not-a-map-null", _both(None), "bad_frame", None),
        ("type-missing", _both({"id": "c-1"}), "bad_frame", "c-1"),
        ("type-null", _both({"type": None, "id": "c-2"}), "bad_frame", "c-2"),
        ("type-not-string", _both({"type": 7, "id": "c-3"}), "bad_frame", "c-3"),
        ("type-unknown", _both({"type": "shout", "id": "c-4"}), "unknown_type", "c-4"),
        ("type-unknown-no-id", _both({"type": "shout"}), "unknown_type", None),
        ("type-server-only", _both({"type": "welcome", "id": "c-5"}), "unknown_type", "c-5"),
        ("nesting-too-deep", _both(_ping_nested(MAX_NESTING + 1)), "bad_frame", None),
        ("nesting-far-too-deep", _deep_ping(2_000), "bad_frame", None),
        ("type-wrong-case", _both({"type": "Ping", "id": "c-6"}), "unknown_type", "c-6"),
        ("prompt-id-missing", _both({"type": "prompt", "text": "hi"}), "bad_frame", None),
        ("prompt-id-empty", _both({"type": "prompt", "id": "", "text": "hi"}), "bad_frame", None),
        (
            "prompt-id-too-long",
            _both({"type": "prompt", "id": long_id, "text": "hi"}),
            "bad_frame",
            None,
        ),
        ("prompt-id-number", _both({"type": "prompt", "id": 5, "text": "hi"}), "bad_frame", None),
        ("prompt-text-missing", _both({"type": "prompt", "id": "p-1"}), "bad_frame", "p-1"),
        (
            "prompt-text-number",
            _both({"type": "prompt", "id": "p-2", "text": 5}),
            "bad_frame",
            "p-2",
        ),
        (
            "prompt-text-null",
            _both({"type": "prompt", "id": "p-3", "text": None}),
            "bad_frame",
            "p-3",
        ),
        (
            "prompt-models-not-list",
            _both({"type": "prompt", "id": "p-4", "text": "hi", "models": "demo"}),
            "bad_frame",
            "p-4",
        ),
        (
            "prompt-models-too-many",
            _both({"type": "prompt", "id": "p-5", "text": "hi", "models": ["demo"] * 33}),
            "bad_frame",
            "p-5",
        ),
        (
            "prompt-model-id-empty",
            _both({"type": "prompt", "id": "p-6", "text": "hi", "models": [""]}),
            "bad_frame",
            "p-6",
        ),
        (
            "prompt-temperature-high",
            _both({"type": "prompt", "id": "p-7", "text": "hi", "params": {"temperature": 2.5}}),
            "bad_frame",
            "p-7",
        ),
        (
            "prompt-temperature-string",
            _both({"type": "prompt", "id": "p-8", "text": "hi", "params": {"temperature": "1"}}),
            "bad_frame",
            "p-8",
        ),
        (
            "prompt-max-tokens-zero",
            _both({"type": "prompt", "id": "p-9", "text": "hi", "params": {"max_tokens": 0}}),
            "bad_frame",
            "p-9",
        ),
        (
            "prompt-max-tokens-fraction",
            _both({"type": "prompt", "id": "p-10", "text": "hi", "params": {"max_tokens": 1.5}}),
            "bad_frame",
            "p-10",
        ),
        (
            "hello-since-negative",
            _both({"type": "hello", "id": "h-1", "since": {"epoch": "e", "seq": -1}}),
            "bad_frame",
            "h-1",
        ),
        (
            "hello-since-past-max-safe-seq",
            _both({"type": "hello", "id": "h-3", "since": {"epoch": "e", "seq": MAX_SAFE_INT + 1}}),
            "bad_frame",
            "h-3",
        ),
        (
            "hello-since-no-epoch",
            _both({"type": "hello", "since": {"seq": 3}}),
            "bad_frame",
            None,
        ),
        (
            "hello-name-too-long",
            _both({"type": "hello", "id": "h-2", "name": "n" * 65}),
            "bad_frame",
            "h-2",
        ),
        ("typing-active-missing", _both({"type": "typing", "id": "t-1"}), "bad_frame", "t-1"),
        (
            "typing-active-string",
            _both({"type": "typing", "id": "t-2", "active": "yes"}),
            "bad_frame",
            "t-2",
        ),
        (
            "cancel-stream-number",
            _both({"type": "cancel", "id": "c-7", "stream": 5}),
            "bad_frame",
            "c-7",
        ),
        (
            "interrupt-text-number",
            _both({"type": "interrupt", "id": "i-1", "text": 1}),
            "bad_frame",
            "i-1",
        ),
        ("ping-id-empty", _both({"type": "ping", "id": ""}), "bad_frame", None),
        (
            "prompt-reasoning-string",
            _both({"type": "prompt", "id": "p-21", "text": "hi", "params": {"reasoning": "yes"}}),
            "bad_frame",
            "p-21",
        ),
        (
            "approve-allow-missing",
            _both({"type": "approve", "id": "a-2", "call": "c"}),
            "bad_frame",
            "a-2",
        ),
        (
            "approve-call-empty",
            _both({"type": "approve", "id": "a-3", "call": "", "allow": True}),
            "bad_frame",
            "a-3",
        ),
        (
            "approve-allow-string",
            _both({"type": "approve", "id": "a-4", "call": "c", "allow": "yes"}),
            "bad_frame",
            "a-4",
        ),
        *queue_invalid_inputs(),
    ]
    return [
        {"name": name, "direction": "client", **data, "code": code, "ref": ref}
        for name, data, code, ref in cases
    ]


def tolerant_inputs() -> list[dict[str, object]]:
    """Input a receiver must accept although no conforming sender produces it exactly so.

    ``frame`` is what the input means once unknown fields are dropped and defaults filled in;
    ``null`` means the receiver ignores the whole frame (an unknown server frame type).
    """
    cases: list[tuple[str, str, object, object]] = [
        (
            "client-unknown-fields",
            "client",
            {"type": "ping", "id": "x-1", "future": {"a": [1, None]}, "n": 3},
            {"type": "ping", "id": "x-1"},
        ),
        (
            "client-type-last",
            "client",
            {"id": "p-1", "text": "hi", "type": "prompt"},
            {"type": "prompt", "id": "p-1", "text": "hi"},
        ),
        (
            "client-explicit-nulls",
            "client",
            {"type": "hello", "id": None, "name": None, "token": None, "since": None},
            {"type": "hello"},
        ),
        (
            "client-integral-temperature",
            "client",
            {"type": "prompt", "id": "p-2", "text": "hi", "params": {"temperature": 1}},
            {"type": "prompt", "id": "p-2", "text": "hi", "params": {"temperature": 1.0}},
        ),
        (
            "client-explicit-null-lists",
            "client",
            {"type": "prompt", "id": "p-3", "text": "hi", "models": None, "params": None},
            {"type": "prompt", "id": "p-3", "text": "hi"},
        ),
        (
            "server-unknown-fields",
            "server",
            {"type": "token", "seq": 4, "stream": "s-1", "text": "a", "lang": "en"},
            {"type": "token", "seq": 4, "stream": "s-1", "text": "a"},
        ),
        (
            "server-unknown-nested-fields",
            "server",
            {
                "type": "presence",
                "participants": [{"id": "u-1", "name": "A", "typing": False, "avatar": "x"}],
            },
            {"type": "presence", "participants": [{"id": "u-1", "name": "A", "typing": False}]},
        ),
        (
            "server-unknown-room-event",
            "server",
            {"type": "annotation", "seq": 42, "stream": "s-1", "text": "a note"},
            None,
        ),
        ("server-unknown-frame", "server", {"type": "notice", "text": "hello"}, None),
        # The deepest a client frame may nest: an unknown field fills all 32 levels.
        ("client-nesting-at-limit", "client", _ping_nested(MAX_NESTING), {"type": "ping"}),
        (
            "client-null-reasoning",
            "client",
            {"type": "prompt", "id": "p-22", "text": "hi", "params": {"reasoning": None}},
            {"type": "prompt", "id": "p-22", "text": "hi", "params": {}},
        ),
    ]
    return [
        {"name": name, "direction": direction, **_both(value), "frame": frame}
        for name, direction, value, frame in cases
    ]


# rtserver only decodes client frames; these are the encoders a Python client uses, with
# msgspec's defaults, the same settings as the server's codecs.
_CLIENT_JSON: Final = msgspec.json.Encoder()
_CLIENT_MSGPACK: Final = msgspec.msgpack.Encoder()


def _vector(name: str, direction: str, text: bytes, packed: bytes) -> dict[str, object]:
    return {
        "name": name,
        "direction": direction,
        "frame": json.loads(text),
        "json": text.decode("utf-8"),
        "msgpack_hex": packed.hex(),
    }


def _client_vector(name: str, frame: ClientFrame) -> dict[str, object]:
    return _vector(name, "client", _CLIENT_JSON.encode(frame), _CLIENT_MSGPACK.encode(frame))


def _server_vector(name: str, frame: ServerFrame) -> dict[str, object]:
    # Through the server's own codecs, so the vectors pin what rtserver puts on the wire.
    return _vector(name, "server", JSON.encode(frame), MSGPACK.encode(frame))


def _document(vectors: Sequence[dict[str, object]]) -> str:
    names = [v["name"] for v in vectors]
    if len(set(names)) != len(names):
        raise ValueError("vector names must be unique")
    doc = {
        "protocol": PROTOCOL,
        "generated_by": "protocol/vectors/generate.py (do not edit by hand)",
        "vectors": list(vectors),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def close_codes() -> list[dict[str, object]]:
    """Every close code of :class:`CloseCode`, by the name both clients give it."""
    return [{"name": code.name, "code": int(code)} for code in CloseCode]


def build() -> dict[str, str]:
    """Every vector file's name and exact text."""
    return {
        "client.json": _document(
            [_client_vector(n, f) for n, f in client_frames() + queue_client_frames()]
        ),
        "server.json": _document(
            [_server_vector(n, f) for n, f in server_frames() + queue_server_frames()]
        ),
        "invalid.json": _document(invalid_inputs()),
        "tolerant.json": _document(tolerant_inputs()),
        "closecodes.json": _document(close_codes()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the vector files, or with ``--check`` report those that are missing or stale."""
    parser = argparse.ArgumentParser(description="Generate protocol/vectors/*.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build().items():
        path = VECTOR_DIR / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            f"stale vectors in {VECTOR_DIR}: {', '.join(stale)}. "
            "Run `python protocol/vectors/generate.py` and review the diff.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
