"""Token coalescing, in the coalescer alone and in a room with no sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from rtserver.client import RoomState
from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import (
    MessageEvent,
    Participant,
    ReasoningEvent,
    StreamEnd,
    StreamStart,
    TokenEvent,
    ToolCallEvent,
)
from rtserver.room.coalesce import TokenCoalescer
from rtserver.room.room import Room, RoomLimits
from rtserver.room.scheduler import ManualScheduler

Emitted = tuple[str, str, int | None]


def _coalescer(window_s: float = 60.0) -> tuple[TokenCoalescer, list[Emitted]]:
    out: list[Emitted] = []

    def emit(stream: str, parts: list[str], stamp: int | None) -> None:
        out.append((stream, "".join(parts), stamp))

    return TokenCoalescer(window_s=window_s, emit=emit), out


def _token(stream: str, text: str, stamp: int | None = None) -> TokenEvent:
    return TokenEvent(seq=0, stream=stream, text=text, emitted_us=stamp)


async def test_a_quiet_stream_sends_at_once_and_gathers_what_follows_within_the_window() -> None:
    tokens, out = _coalescer()
    tokens.add(_token("s1", "Here", 50))
    assert out == [("s1", "Here", 50)], "nothing was sent lately: no delay"
    tokens.add(_token("s1", " is", 100))
    tokens.add(_token("s1", " how", 200))
    assert out == [("s1", "Here", 50)]
    assert tokens.pending
    tokens.flush()
    assert out[1:] == [("s1", " is how", 100)], "one frame, stamped with its first token"
    assert not tokens.pending


async def test_two_streams_never_share_a_frame_and_keep_the_order_they_began_in() -> None:
    tokens, out = _coalescer()
    tokens.add(_token("b", "0"))
    tokens.add(_token("a", "w"))
    tokens.add(_token("b", "1"))
    tokens.add(_token("a", "x"))
    tokens.add(_token("b", "2"))
    tokens.flush()
    assert out == [("b", "0", None), ("a", "w", None), ("b", "12", None), ("a", "x", None)]


async def test_a_stream_that_ended_starts_quiet_again() -> None:
    tokens, out = _coalescer()
    tokens.add(_token("s", "a"))
    tokens.forget("s")
    tokens.add(_token("s", "b"))
    assert out == [("s", "a", None), ("s", "b", None)]


async def test_the_window_flushes_by_itself() -> None:
    arrived = asyncio.Event()
    out: list[Emitted] = []

    def emit(stream: str, parts: list[str], stamp: int | None) -> None:
        out.append((stream, "".join(parts), stamp))
        arrived.set()

    tokens = TokenCoalescer(window_s=0.001, emit=emit)
    tokens.add(_token("s", "a"))
    arrived.clear()
    tokens.add(_token("s", "b"))
    tokens.add(_token("s", "c"))
    async with asyncio.timeout(5):
        await arrived.wait()
    assert out == [("s", "a", None), ("s", "bc", None)]


class _Reader:
    """Stands for a socket that reads everything: takes the frames a member was sent."""

    @staticmethod
    def frames(room: Room) -> list[dict[str, Any]]:
        [member] = room.members
        return [msgspec.json.decode(d) for d in member.outbox.take_ready()]


def _room(flush_ms: float) -> Room:
    return Room("r", limits=RoomLimits(token_flush_ms=flush_ms))


async def test_a_room_gathers_tokens_and_numbers_frames_contiguously(tmp_path: Path) -> None:
    room = _room(flush_ms=1000)
    try:
        room.join(name="reader", since=None, codec=JSON)
        welcome = _Reader.frames(room)[0]
        for text in ("a", "b", "c"):
            room.publish(TokenEvent(seq=0, stream="s1", text=text))
        room.publish(TokenEvent(seq=0, stream="s2", text="z"))
        sent = [(f["stream"], f["text"]) for f in _Reader.frames(room)]
        assert sent == [("s1", "a"), ("s2", "z")], "each quiet stream's first token at once"
        # Any other event sends what is gathered first, then takes the next seq.
        room.publish(ToolCallEvent(seq=0, stream="s1", call="c", args="{}"))
        room.publish(TokenEvent(seq=0, stream="s1", text="d"))
        end = StreamEnd(
            seq=0,
            stream="s1",
            reason="complete",
            usage=None,
            ttft_ms=None,
            duration_ms=1,
            tokens_per_s=None,
        )
        room.publish(end)
        frames = _Reader.frames(room)
        seen = [(f["type"], f.get("stream"), f.get("text"), f.get("tokens")) for f in frames]
        assert seen == [
            ("token", "s1", "bc", 2),
            ("tool_call", "s1", None, None),
            ("token", "s1", "d", None),
            ("stream_end", "s1", None, None),
        ]
        first = welcome["seq"] + 1
        assert [f["seq"] for f in frames] == list(range(first + 2, first + 6))
        assert room.log.head == first + 5
    finally:
        room.close()


async def test_a_join_sends_what_is_gathered_before_its_welcome(tmp_path: Path) -> None:
    room = _room(flush_ms=1000)
    try:
        room.publish(TokenEvent(seq=0, stream="s1", text="a"))
        room.publish(TokenEvent(seq=0, stream="s1", text="bc"))
        head = room.log.head
        room.join(name="late", since=None, codec=JSON)
        assert room.log.head == head + 1, "the gathered tokens were logged before the welcome"
        [welcome] = _Reader.frames(room)
        assert welcome["seq"] == room.log.head
    finally:
        room.close()


async def test_with_no_window_every_token_is_its_own_frame(tmp_path: Path) -> None:
    room = _room(flush_ms=0)
    try:
        room.join(name="reader", since=None, codec=JSON)
        _Reader.frames(room)
        for text in ("a", "b"):
            room.publish(TokenEvent(seq=0, stream="s1", text=text))
        assert [f["text"] for f in _Reader.frames(room)] == ["a", "b"]
    finally:
        room.close()


def test_the_python_client_counts_the_tokens_of_a_coalesced_frame() -> None:
    now = [10.0]
    state = RoomState(clock=lambda: now[0])
    author = Participant(id="p1", name="ada")
    state.apply(MessageEvent(seq=1, id="u1", author=author, text="q", prompt_id="p", ts=1))
    state.apply(StreamStart(seq=2, stream="s1", model="a", message="m1", reply_to="u1", ts=1))
    state.apply(TokenEvent(seq=3, stream="s1", text="Hel"))
    now[0] = 11.0
    state.apply(TokenEvent(seq=4, stream="s1", text="lo there", tokens=3))
    reply = state.lanes()["a"]
    assert reply.text == "Hello there"
    assert state.live_rate(reply) == 3.0, "three tokens after the first, in one second"


# --- the window, on a clock that moves only when told (times exact in binary) ---------------


def _on_clock(window_s: float = 0.25) -> tuple[TokenCoalescer, list[Emitted], ManualScheduler]:
    out: list[Emitted] = []
    clock = ManualScheduler(start=1.0)

    def emit(stream: str, parts: list[str], stamp: int | None) -> None:
        out.append((stream, "".join(parts), stamp))

    return TokenCoalescer(window_s=window_s, emit=emit, scheduler=clock), out, clock


def test_a_token_a_whole_window_after_its_streams_last_frame_goes_at_once() -> None:
    tokens, out, clock = _on_clock()
    assert tokens.add(_token("s1", "a")) is True
    clock.advance(0.25)
    assert tokens.add(_token("s1", "b")) is True, "a window has passed: not gathered"
    assert [text for _, text, _ in out] == ["a", "b"]


def test_a_gathered_token_is_reported_as_not_sent() -> None:
    tokens, out, clock = _on_clock()
    tokens.add(_token("s1", "a"))
    clock.advance(0.125)
    assert tokens.add(_token("s1", "b")) is False
    assert tokens.add(_token("s1", "c")) is False, "added to what is gathered: not sent either"
    assert [text for _, text, _ in out] == ["a"]


def test_the_window_ends_one_window_after_the_streams_last_frame() -> None:
    tokens, out, clock = _on_clock()
    tokens.add(_token("s1", "a"))  # sent at 1.0
    clock.advance(0.125)
    tokens.add(_token("s1", "b"))  # gathered at 1.125, due at 1.25
    clock.advance(0.0625)
    assert [text for _, text, _ in out] == ["a"], "not before the window ends"
    clock.advance(0.0625)
    assert [text for _, text, _ in out] == ["a", "b"]


def test_after_a_flush_the_stream_waits_a_window_from_the_flush() -> None:
    tokens, out, clock = _on_clock()
    tokens.add(_token("s1", "a"))  # sent at 1.0
    clock.advance(0.125)
    tokens.add(_token("s1", "b"))  # gathered
    clock.advance(0.125)  # the window's flush at 1.25 sends it
    clock.advance(0.125)
    assert tokens.add(_token("s1", "c")) is False, "within a window of the flush's frame"
    tokens.flush()
    clock.advance(0.125)
    assert tokens.add(_token("s1", "d")) is False, "within a window of an explicit flush"
    assert [text for _, text, _ in out] == ["a", "b", "c"]


def test_answer_after_reasoning_sends_the_reasoning_and_gathers_the_answer() -> None:
    out: list[tuple[str, str]] = []
    clock = ManualScheduler(start=1.0)
    tokens = TokenCoalescer(
        window_s=0.25,
        emit=lambda stream, parts, stamp: out.append(("token", "".join(parts))),
        emit_reasoning=lambda stream, parts: out.append(("reasoning", "".join(parts))),
        scheduler=clock,
    )
    assert tokens.add(ReasoningEvent(seq=0, stream="s1", text="hm")) is True
    clock.advance(0.125)
    assert tokens.add(ReasoningEvent(seq=0, stream="s1", text=" so")) is False
    assert tokens.add(_token("s1", "Yes")) is False, "the answer is gathered, not sent"
    assert out == [("reasoning", "hm"), ("reasoning", " so")]
    clock.advance(0.125)
    assert out[-1] == ("token", "Yes")
