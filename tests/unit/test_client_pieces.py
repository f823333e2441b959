"""The client's pure parts: backoff, the server-frame codec, RoomState."""

from __future__ import annotations

import msgspec
import pytest

from rtserver.client import Backoff, RoomState
from rtserver.protocol.codec import Unrecognised, peer_codec_for
from rtserver.protocol.frames import (
    ErrorFrame,
    HistoryMessage,
    MessageEvent,
    ModelInfo,
    Participant,
    PresenceDiff,
    PresenceEntry,
    Prompt,
    RunningStream,
    StreamEnd,
    StreamStart,
    TokenEvent,
    ToolCallEvent,
    Welcome,
)

ADA = Participant(id="p1", name="ada")


def test_backoff_grows_to_its_cap_with_full_jitter_and_resets() -> None:
    backoff = Backoff(base_s=0.5, max_s=4.0, random_unit=lambda: 0.999)
    delays = [backoff.next() for _ in range(6)]
    assert delays == pytest.approx([0.4995, 0.999, 1.998, 3.996, 3.996, 3.996])
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.ceiling() == 0.5
    assert Backoff(random_unit=lambda: 0.0).next() == 0.0
    assert backoff.jitter(0.25) < 0.25


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_the_peer_codec_reads_server_frames_and_tolerates_newer_ones(name: str) -> None:
    codec = peer_codec_for(name)
    wire = msgspec.msgpack if name == "msgpack" else msgspec.json
    token = {"type": "token", "seq": 3, "stream": "s", "text": "hi", "added_later": 17}
    assert codec.decode(wire.encode(token)) == TokenEvent(seq=3, stream="s", text="hi")
    newer = {"type": "added_later", "seq": 9, "joined": [{"id": "p"}]}
    assert codec.decode(wire.encode(newer)) == Unrecognised(type="added_later", seq=9)
    refusal = {"type": "error", "code": "unauthorized", "message": "no"}
    assert codec.decode(wire.encode(refusal)) == ErrorFrame(code="unauthorized", message="no")
    assert codec.decode(wire.encode({"seq": "x"})) == Unrecognised()
    with pytest.raises(ValueError, match="not a map"):
        codec.decode(wire.encode([1, 2]))
    frame = Prompt(id="p", text="hello")
    assert wire.decode(codec.encode(frame)) == {"type": "prompt", "id": "p", "text": "hello"}


def test_garbage_from_the_server_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="does not decode"):
        peer_codec_for("json").decode(b"{not json")
    with pytest.raises(ValueError, match="codec"):
        peer_codec_for("xml")


def welcome(**fields: object) -> Welcome:
    base: dict[str, object] = {
        "session": "s",
        "participant": ADA,
        "room": "r",
        "epoch": "e",
        "seq": 0,
        "resumed": False,
        "models": [ModelInfo(id="a", label="A", provider="demo")],
        "participants": [],
        "messages": [],
        "streams": [],
    }
    return Welcome(**(base | fields))  # type: ignore[arg-type]


def test_room_state_folds_a_turn_into_lanes_with_live_rates() -> None:
    now = [100.0]
    state = RoomState(clock=lambda: now[0])
    state.apply(welcome())
    state.apply(MessageEvent(seq=1, id="u1", author=ADA, text="q", prompt_id="p", ts=1))
    state.apply(StreamStart(seq=2, stream="s1", model="a", message="m1", reply_to="u1", ts=1))
    state.apply(StreamStart(seq=3, stream="s2", model="b", message="m2", reply_to="u1", ts=1))
    now[0] = 100.5
    state.apply(TokenEvent(seq=4, stream="s1", text="Hel"))
    now[0] = 101.5
    state.apply(TokenEvent(seq=5, stream="s1", text="lo"))
    state.apply(ToolCallEvent(seq=6, stream="s2", call="c", name="f", args='{"x"'))
    state.apply(ToolCallEvent(seq=7, stream="s2", call="c", args=":1}"))
    reply = state.lanes()["a"]
    assert reply.text == "Hello"
    assert state.live_rate(reply) == pytest.approx(1.0)
    assert state.live_ttft_ms(reply) == 500
    assert state.lanes()["b"].tool_calls["c"].args == '{"x":1}'
    assert state.lanes()["b"].tool_calls["c"].name == "f"
    assert state.busy
    state.apply(
        StreamEnd(
            seq=8,
            stream="s1",
            reason="length",
            usage=None,
            ttft_ms=7,
            duration_ms=9,
            tokens_per_s=3.5,
        )
    )
    assert reply.status == "complete"
    assert reply.reason == "length"
    assert state.live_ttft_ms(reply) == 7
    assert [r.model for r in state.running()] == ["b"]


def test_a_snapshot_replaces_everything_and_a_resume_keeps_it() -> None:
    state = RoomState()
    state.apply(welcome())
    state.apply(MessageEvent(seq=1, id="old", author=ADA, text="q", prompt_id="p0", ts=1))
    history = [
        HistoryMessage(id="u1", role="user", text="q", status="complete", ts=1, author=ADA),
        HistoryMessage(
            id="m1",
            role="assistant",
            text="do",
            status="streaming",
            ts=1,
            model="a",
            reply_to="u1",
            stream="s1",
        ),
        # A reply whose prompt is older than the history: left out.
        HistoryMessage(
            id="m0", role="assistant", text="x", status="complete", ts=0, model="a", reply_to="gone"
        ),
    ]
    running = [RunningStream(stream="s1", model="a", message="m1", reply_to="u1", text="done")]
    state.apply(welcome(seq=40, messages=history, streams=running))
    assert [t.id for t in state.turns] == ["u1"]
    assert state.lanes()["a"].text == "done"
    assert state.busy
    assert state.snapshots == 2
    state.apply(welcome(resumed=True, seq=41))
    assert [t.id for t in state.turns] == ["u1"]
    assert state.snapshots == 2
    state.apply(TokenEvent(seq=42, stream="unknown", text="ignored"))
    assert state.lanes()["a"].text == "done"


def test_room_state_applies_presence_diffs_to_the_welcomes_list() -> None:
    ada, bob, eve = (
        PresenceEntry(id=i, name=n, typing=False)
        for i, n in (("a", "Ada"), ("b", "Bob"), ("e", "Eve"))
    )
    state = RoomState()
    state.apply(welcome(participants=[ada, bob], participant_count=250))
    assert (state.participants, state.participant_count) == ([ada, bob], 250)
    typing_bob = PresenceEntry(id="b", name="Bob", typing=True)
    state.apply(PresenceDiff(changed=[typing_bob, eve], left=["a"], count=251))
    assert state.participants == [typing_bob, eve]
    assert state.participant_count == 251
    state.apply(PresenceDiff(changed=[], left=["b", "e", "nobody"], count=1))
    assert (state.participants, state.participant_count) == ([], 1)
