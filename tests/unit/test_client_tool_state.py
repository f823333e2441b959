"""The Python client's RoomState folds tool_call, tool_approval, tool_decision and tool_result."""

from __future__ import annotations

from rtserver.client import RoomState
from rtserver.protocol.frames import (
    HistoryMessage,
    MessageEvent,
    Participant,
    RunningStream,
    StreamEnd,
    StreamStart,
    ToolApprovalEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolDecisionEvent,
    ToolErrorInfo,
    ToolResultEvent,
)
from tests.unit.test_client_pieces import ADA, welcome

BOB = Participant(id="u-bob", name="Bob")


def running() -> RoomState:
    state = RoomState()
    state.apply(welcome())
    state.apply(MessageEvent(seq=1, id="m1", author=ADA, text="hi", prompt_id="p1", ts=1))
    state.apply(StreamStart(seq=2, stream="s1", model="demo", message="a1", reply_to="m1", ts=2))
    return state


def test_a_call_its_approval_decision_and_result_are_folded_into_the_reply() -> None:
    state = running()
    state.apply(ToolCallEvent(seq=3, stream="s1", call="c1", name="rm", args='{"pa'))
    state.apply(ToolCallEvent(seq=4, stream="s1", call="c1", args='th":"x"}'))
    state.apply(ToolApprovalEvent(seq=5, stream="s1", call="c1", name="rm", args='{"path":"x"}'))
    reply = state.reply_of_stream("s1")
    assert reply is not None
    assert reply.approvals == {"c1": None}
    state.apply(ToolDecisionEvent(seq=6, stream="s1", call="c1", allow=True, by=BOB))
    state.apply(
        ToolResultEvent(seq=7, stream="s1", call="c1", name="rm", result="done", duration_ms=5)
    )
    assert reply.approvals == {"c1": True}
    call = reply.tool_calls["c1"]
    assert (call.name, call.args, call.result, call.duration_ms) == (
        "rm",
        '{"path":"x"}',
        "done",
        5,
    )


def test_an_error_result_and_a_timed_out_approval() -> None:
    state = running()
    state.apply(ToolApprovalEvent(seq=3, stream="s1", call="c2", name="x", args="{}"))
    state.apply(ToolDecisionEvent(seq=4, stream="s1", call="c2", allow=False))
    error = ToolErrorInfo(code="denied", message="nobody in the room approved the call in time")
    state.apply(
        ToolResultEvent(seq=5, stream="s1", call="c2", name="x", error=error, duration_ms=0)
    )
    state.apply(
        StreamEnd(
            seq=6,
            stream="s1",
            reason="complete",
            usage=None,
            ttft_ms=None,
            duration_ms=1,
            tokens_per_s=None,
        )
    )
    reply = state.reply_of_stream("s1")
    assert reply is not None
    assert reply.approvals == {"c2": False}
    assert reply.tool_calls["c2"].error == error
    assert reply.tool_calls["c2"].result is None


def test_events_of_an_unknown_stream_are_ignored() -> None:
    state = running()
    state.apply(
        ToolResultEvent(seq=3, stream="nope", call="c", name="x", result="1", duration_ms=0)
    )
    reply = state.reply_of_stream("s1")
    assert reply is not None
    assert reply.tool_calls == {}


def test_a_snapshot_of_a_running_stream_brings_its_calls_and_the_waiting_ones() -> None:
    done = ToolCallRecord(call="c1", name="add", args="{}", result="2", duration_ms=3)
    asks = ToolCallRecord(call="c2", name="rm", args="{}")
    state = RoomState()
    state.apply(
        welcome(
            messages=[
                HistoryMessage(id="m1", role="user", text="hi", status="complete", ts=1, author=ADA)
            ],
            streams=[
                RunningStream(
                    stream="s1",
                    model="demo",
                    message="a1",
                    reply_to="m1",
                    text="so far",
                    tool_calls=[done, asks],
                    waiting=["c2"],
                )
            ],
        )
    )
    reply = state.reply_of_stream("s1")
    assert reply is not None
    assert reply.tool_calls == {"c1": done, "c2": asks}
    assert reply.approvals == {"c2": None}
