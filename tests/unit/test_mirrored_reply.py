"""A node's copy of a reply streamed on another node follows its tool events as they come."""

from __future__ import annotations

from rtserver.protocol.frames import (
    StreamStart,
    ToolApprovalEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolDecisionEvent,
    ToolErrorInfo,
    ToolResultEvent,
)
from rtserver.room.mirror import MirroredReply

START = StreamStart(seq=1, stream="s1", model="m", message="a1", reply_to="u1", ts=1)


def fragment(call: str, args: str, name: str | None = None) -> ToolCallEvent:
    return ToolCallEvent(seq=0, stream="s1", call=call, args=args, name=name)


def test_a_calls_fragments_are_joined_under_the_name_of_the_first() -> None:
    reply = MirroredReply(START)
    reply.follow_tool(fragment("c1", '{"q": ', name="search"))
    reply.follow_tool(fragment("c2", "{}", name="fetch"))
    reply.follow_tool(fragment("c1", '"x"}'))
    assert reply.tool_calls == [
        ToolCallRecord(call="c1", name="search", args='{"q": "x"}'),
        ToolCallRecord(call="c2", name="fetch", args="{}"),
    ]


def test_a_result_completes_its_call_and_keeps_its_arguments() -> None:
    reply = MirroredReply(START)
    reply.follow_tool(fragment("c1", '{"q": 1}', name="search"))
    failure = ToolErrorInfo(code="failed", message="no")
    reply.follow_tool(
        ToolResultEvent(seq=0, stream="s1", call="c1", name="search", duration_ms=5, error=failure)
    )
    assert reply.tool_calls == [
        ToolCallRecord(call="c1", name="search", args='{"q": 1}', error=failure, duration_ms=5)
    ]


def test_a_result_for_a_call_never_seen_has_no_arguments() -> None:
    reply = MirroredReply(START)
    reply.follow_tool(
        ToolResultEvent(seq=0, stream="s1", call="c9", name="f", duration_ms=1, result="ok")
    )
    assert reply.tool_calls == [
        ToolCallRecord(call="c9", name="f", args="", result="ok", duration_ms=1)
    ]


def test_a_call_waits_from_its_approval_until_its_decision() -> None:
    reply = MirroredReply(START)
    reply.follow_tool(ToolApprovalEvent(seq=0, stream="s1", call="c1", name="f", args="{}"))
    reply.follow_tool(ToolApprovalEvent(seq=0, stream="s1", call="c2", name="g", args="{}"))
    assert reply.waiting == ["c1", "c2"]
    reply.follow_tool(ToolDecisionEvent(seq=0, stream="s1", call="c2", allow=False))
    reply.follow_tool(ToolDecisionEvent(seq=0, stream="s1", call="never-asked", allow=True))
    assert reply.waiting == ["c1"]


def test_a_first_fragment_without_a_name_leaves_the_call_unnamed() -> None:
    reply = MirroredReply(START)
    reply.follow_tool(fragment("c1", "{}"))
    assert reply.tool_calls == [ToolCallRecord(call="c1", args="{}")]
