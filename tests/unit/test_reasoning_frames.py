"""Reasoning on the wire and in the pure parts: frames, coalescing, the Python RoomState."""

from __future__ import annotations

import msgspec
import pytest

from rtserver.client import RoomState
from rtserver.protocol.codec import JSON, MSGPACK, Codec
from rtserver.protocol.frames import (
    HistoryMessage,
    MessageEvent,
    Participant,
    Prompt,
    ReasoningEvent,
    RunningStream,
    StreamEnd,
    StreamStart,
    TokenEvent,
    Welcome,
)
from rtserver.room.coalesce import TokenCoalescer
from rtserver.room.cuts import chars_of, newest_within
from rtserver.room.recent import RecentMessages

ADA = Participant(id="p1", name="ada")
Emitted = tuple[str, str, str]


def _coalescer() -> tuple[TokenCoalescer, list[Emitted]]:
    out: list[Emitted] = []
    coalescer = TokenCoalescer(
        window_s=60.0,
        emit=lambda stream, parts, _: out.append(("token", stream, "".join(parts))),
        emit_reasoning=lambda stream, parts: out.append(("reasoning", stream, "".join(parts))),
    )
    return coalescer, out


def _thought(stream: str, text: str) -> ReasoningEvent:
    return ReasoningEvent(seq=0, stream=stream, text=text)


def _token(stream: str, text: str) -> TokenEvent:
    return TokenEvent(seq=0, stream=stream, text=text)


async def test_reasoning_is_gathered_like_tokens_but_never_into_a_token_frame() -> None:
    frames, out = _coalescer()
    frames.add(_thought("s", "Let"))
    frames.add(_thought("s", " me"))
    frames.add(_thought("s", " see"))
    frames.add(_token("s", "It"))
    frames.add(_token("s", " is"))
    frames.flush()
    assert out == [
        ("reasoning", "s", "Let"),
        ("reasoning", "s", " me see"),
        ("token", "s", "It is"),
    ]


async def test_a_switch_back_to_reasoning_keeps_the_streams_order() -> None:
    frames, out = _coalescer()
    frames.add(_token("s", "a"))
    frames.add(_token("s", "b"))
    frames.add(_thought("s", "hm"))
    frames.add(_thought("t", "other"))
    frames.add(_token("s", "c"))
    frames.flush()
    # Stream t was quiet, so its reasoning went at once; stream s kept its own order.
    assert out == [
        ("token", "s", "a"),
        ("token", "s", "b"),
        ("reasoning", "t", "other"),
        ("reasoning", "s", "hm"),
        ("token", "s", "c"),
    ]
    assert not frames.pending


async def test_a_coalescer_without_a_reasoning_emitter_refuses_reasoning() -> None:
    frames = TokenCoalescer(window_s=60.0, emit=lambda *_: None)
    with pytest.raises(RuntimeError, match="emit_reasoning"):
        frames.add(_thought("s", "x"))


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_reasoning_fields_are_left_out_when_absent(codec: Codec) -> None:
    wire = msgspec.msgpack if codec is MSGPACK else msgspec.json
    running = RunningStream(stream="s", model="m", message="a", reply_to="u", text="")
    assert wire.decode(wire.encode(running)) == {
        "stream": "s",
        "model": "m",
        "message": "a",
        "reply_to": "u",
        "text": "",
    }
    event = ReasoningEvent(seq=7, stream="s", text="think")
    assert wire.decode(codec.render(event, None)) == {
        "type": "reasoning",
        "seq": 7,
        "stream": "s",
        "text": "think",
    }


@pytest.mark.parametrize("value", ["yes", 1, [], {"on": True}])
def test_params_reasoning_must_be_a_bool(value: object) -> None:
    frame = {"type": "prompt", "id": "p", "text": "hi", "params": {"reasoning": value}}
    with pytest.raises(msgspec.ValidationError, match="reasoning"):
        msgspec.json.decode(msgspec.json.encode(frame), type=Prompt)


def _welcome(**fields: object) -> Welcome:
    base: dict[str, object] = {
        "session": "s",
        "participant": ADA,
        "room": "r",
        "epoch": "e",
        "seq": 0,
        "resumed": False,
        "models": [],
        "participants": [],
        "messages": [],
        "streams": [],
    }
    return msgspec.convert({**base, **fields}, Welcome, from_attributes=True)


def test_the_python_room_state_folds_reasoning_apart_from_the_answer() -> None:
    state = RoomState()
    state.apply(_welcome())
    state.apply(MessageEvent(seq=1, id="u1", author=ADA, text="q", prompt_id="p", ts=1))
    state.apply(StreamStart(seq=2, stream="s1", model="a", message="m1", reply_to="u1", ts=1))
    state.apply(ReasoningEvent(seq=3, stream="s1", text="Let me"))
    state.apply(ReasoningEvent(seq=4, stream="s1", text=" think"))
    state.apply(TokenEvent(seq=5, stream="s1", text="Four."))
    state.apply(ReasoningEvent(seq=6, stream="gone", text="ignored"))
    reply = state.lanes()["a"]
    assert (reply.reasoning, reply.text) == ("Let me think", "Four.")
    # Reasoning is not answer text: the live token count is the answer's.
    assert reply.live_tokens == 1
    end = StreamEnd(
        seq=7,
        stream="s1",
        reason="complete",
        usage=None,
        ttft_ms=1,
        duration_ms=2,
        tokens_per_s=None,
    )
    state.apply(end)
    assert reply.reasoning == "Let me think"


def test_a_snapshot_brings_the_reasoning_of_history_and_of_running_streams() -> None:
    state = RoomState()
    history = [
        HistoryMessage(id="u1", role="user", text="q", status="complete", ts=1, author=ADA),
        HistoryMessage(
            id="m1",
            role="assistant",
            text="done",
            status="complete",
            ts=1,
            model="a",
            reply_to="u1",
            reasoning="first I thought",
        ),
        HistoryMessage(id="u2", role="user", text="q2", status="complete", ts=2, author=ADA),
        HistoryMessage(
            id="m2", role="assistant", text="", status="streaming", ts=2, model="b", reply_to="u2"
        ),
    ]
    running = [
        RunningStream(
            stream="s2", model="b", message="m2", reply_to="u2", text="", reasoning="half a tho"
        )
    ]
    state.apply(_welcome(seq=9, messages=history, streams=running))
    replies = {r.id: r for t in state.turns for r in t.replies}
    assert replies["m1"].reasoning == "first I thought"
    assert replies["m2"].reasoning == "half a tho"
    state.apply(ReasoningEvent(seq=10, stream="s2", text="ught"))
    assert replies["m2"].reasoning == "half a thought"


def _reply(n: int, *, text: int, reasoning: int) -> HistoryMessage:
    return HistoryMessage(
        id=f"m{n}",
        role="assistant",
        text="t" * text,
        status="complete",
        ts=n,
        reasoning="r" * reasoning or None,
    )


def test_budgets_weigh_reasoning_like_text() -> None:
    messages = [_reply(0, text=5, reasoning=0), _reply(1, text=5, reasoning=20)]
    assert chars_of(messages[1]) == 25
    assert [m.id for m in newest_within(messages, 25, keep_newest=False)] == ["m1"]
    assert newest_within(messages, 24, keep_newest=False) == []
    # A message whose reasoning alone is over the budget is left out like a long answer.
    recent = RecentMessages(max_messages=10, max_chars=100, budget=None)
    recent.extend([_reply(0, text=1, reasoning=0), _reply(1, text=1, reasoning=500)])
    assert [m.id for m in recent] == []
    recent.append(_reply(2, text=1, reasoning=50))
    assert [m.id for m in recent] == ["m2"]
    assert recent.bytes > 50
