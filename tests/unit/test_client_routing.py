"""The Python client's RoomState folds routed streams as the JavaScript one does."""

from __future__ import annotations

from rtserver.client.state import RoomState
from rtserver.protocol.frames import (
    HistoryMessage,
    MessageEvent,
    ModelSwitch,
    Participant,
    RunningStream,
    StreamStart,
    Welcome,
)

ADA = Participant(id="u-1", name="Ada")


def _welcome(
    messages: list[HistoryMessage] | None = None, streams: list[RunningStream] | None = None
) -> Welcome:
    return Welcome(
        session="s",
        participant=ADA,
        room="r",
        epoch="e",
        seq=1,
        resumed=False,
        models=[],
        participants=[],
        messages=messages or [],
        streams=streams or [],
    )


def test_a_routed_stream_is_in_its_routers_lane_and_a_switch_changes_its_model() -> None:
    state = RoomState(clock=lambda: 0.0)
    state.apply(_welcome())
    state.apply(MessageEvent(seq=2, id="m-1", author=ADA, text="hi", prompt_id="p", ts=1))
    state.apply(
        StreamStart(
            seq=3,
            stream="s-1",
            model="fast",
            message="r-1",
            reply_to="m-1",
            ts=1,
            routed_from="auto",
            route_reason="route 2: short",
        )
    )
    switch = ModelSwitch(seq=4, stream="s-1", model="smart", reason="fast failed")
    state.apply(switch)
    state.apply(ModelSwitch(seq=5, stream="unknown", model="x", reason="ignored"))
    reply = state.lanes()["auto"]
    assert (reply.model, reply.lane, reply.route_reason) == ("smart", "auto", "route 2: short")
    assert reply.switches == [switch]
    assert "fast" not in state.lanes()


def test_a_snapshot_keeps_routed_history_and_running_routed_streams() -> None:
    state = RoomState(clock=lambda: 0.0)
    user = HistoryMessage(id="m-1", role="user", text="q", status="complete", ts=1, author=ADA)
    routed = HistoryMessage(
        id="r-1",
        role="assistant",
        text="",
        status="streaming",
        ts=1,
        model="fast",
        reply_to="m-1",
        routed_from="auto",
    )
    running = RunningStream(
        stream="s-1", model="smart", message="r-1", reply_to="m-1", text="go", routed_from="auto"
    )
    state.apply(_welcome([user, routed], [running]))
    reply = state.lanes()["auto"]
    assert (reply.model, reply.text, reply.routed_from) == ("smart", "go", "auto")
    assert state.running() == [reply]
