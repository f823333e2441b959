"""The rules of protocol/PROTOCOL.md sections 8 and 9 that clients rely on, one by one."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rtserver.config import Limits
from rtserver.errors import ProviderError
from rtserver.protocol.codec import JSON, MSGPACK, EventAt, Outgoing
from rtserver.protocol.frames import Pong, ServerFrame
from rtserver.providers.base import Delta, GenerationRequest, TextDelta
from rtserver.room.outbox import Outbox, OutboxClosed
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.turns import Turns
from tests.support import names_are, presence_states, wait_presence
from tests.unit.room_harness import Scripted, Seat, catalog, is_type, join

MakeRoom = Callable[..., Awaitable[Turns]]


@pytest.fixture
async def make_room(tmp_path: Path) -> AsyncIterator[MakeRoom]:
    """Rooms on one SQLite file; every room, seat and store is closed at the end."""
    store = await SqliteStore.open(tmp_path / "rooms.db")
    rooms: list[Turns] = []

    async def make(providers: dict[str, Scripted], **limits: Any) -> Turns:
        # One token frame per token, unless a test asks for coalescing: the rules below count
        # token frames (tests/unit/test_coalesce.py holds coalescing's own).
        limits.setdefault("token_flush_ms", 0)
        room = Turns(
            f"room{len(rooms)}", store=store, catalog=catalog(providers), limits=Limits(**limits)
        )
        await room.load()
        rooms.append(room)
        return room

    try:
        yield make
    finally:
        for room in rooms:
            await room.close()
        await store.close()


@pytest.fixture
async def seats() -> AsyncIterator[list[Seat]]:
    made: list[Seat] = []
    yield made
    for seat in made:
        await seat.stop()


def _seat(seats: list[Seat], room: Turns, **kwargs: Any) -> Seat:
    seat = join(room, **kwargs)
    seats.append(seat)
    return seat


async def _turn(seat: Seat, pid: str, text: str, models: list[str] | None) -> list[dict[str, Any]]:
    """Send a prompt and wait for its streams to end; return their stream_ends in order."""
    frame: dict[str, Any] = {"type": "prompt", "id": pid, "text": text}
    if models is not None:
        frame["models"] = models
    await seat.send(frame)
    message = await seat.wait_for(is_type("message", prompt_id=pid))
    starts = [s for s in seat.of_type("stream_start") if s["reply_to"] == message["id"]]
    return [await seat.wait_for(is_type("stream_end", stream=s["stream"])) for s in starts]


def _events(seat: Seat) -> list[dict[str, Any]]:
    """The room events a seat received (welcome carries a seq but is not one)."""
    return [f for f in seat.frames if "seq" in f and f["type"] != "welcome"]


def _starts_of(seat: Seat, message_id: str) -> list[dict[str, Any]]:
    return [s for s in seat.of_type("stream_start") if s["reply_to"] == message_id]


# --- 9.6 what each model sees -----------------------------------------------------------------


async def test_each_model_sees_every_user_message_and_only_its_own_replies(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a, b = Scripted("from-a"), Scripted("from-b")
    room = await make_room({"a": a, "b": b})
    seat = _seat(seats, room)
    await _turn(seat, "p1", "first question", ["a", "b"])
    await _turn(seat, "p2", "only for b", ["b"])
    await _turn(seat, "p3", "third question", ["a", "b"])

    seen_by_a = [(t.role, t.content) for t in a.requests[-1].messages]
    seen_by_b = [(t.role, t.content) for t in b.requests[-1].messages]
    assert seen_by_a == [
        ("user", "first question"),
        ("assistant", "from-a"),
        ("user", "only for b"),
        ("user", "third question"),
    ]
    assert seen_by_b == [
        ("user", "first question"),
        ("assistant", "from-b"),
        ("user", "only for b"),
        ("assistant", "from-b"),
        ("user", "third question"),
    ]


async def test_a_model_sees_only_the_last_context_messages_of_its_lane(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted("reply")
    room = await make_room({"a": a}, context_messages=3)
    seat = _seat(seats, room)
    await _turn(seat, "p1", "one", ["a"])
    await _turn(seat, "p2", "two", ["a"])
    assert [t.content for t in a.requests[-1].messages] == ["one", "reply", "two"]
    await _turn(seat, "p3", "three", ["a"])
    assert [t.content for t in a.requests[-1].messages] == ["two", "reply", "three"]


# --- 9.2 prompts ------------------------------------------------------------------------------


async def test_duplicate_models_count_once_and_streams_start_in_the_prompts_order(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted(), "b": Scripted(), "c": Scripted()})
    seat = _seat(seats, room)
    await _turn(seat, "p1", "hello", ["c", "a", "c", "b", "a"])
    message = seat.of_type("message")[0]
    assert [s["model"] for s in _starts_of(seat, message["id"])] == ["c", "a", "b"]
    events = _events(seat)
    assert events[0]["type"] == "message", "the message comes before its stream_starts"


async def test_a_prompt_without_models_goes_to_the_defaults(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted(), "b": Scripted()})
    seat = _seat(seats, room)
    await _turn(seat, "p1", "hello", None)
    assert [s["model"] for s in seat.of_type("stream_start")] == ["a"]


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ({"text": "x" * 11}, "too_large", "prompt is 11 characters; the limit is 10"),
        ({"text": "   \n"}, "bad_frame", "prompt text is empty"),
        ({"text": "fine", "models": []}, "bad_frame", "`models` must name at least one model"),
        ({"text": "fine", "models": ["a", "nope"]}, "unknown_model", "unknown model 'nope'"),
    ],
)
async def test_a_refused_prompt_stores_and_starts_nothing(
    make_room: MakeRoom, seats: list[Seat], frame: dict[str, Any], code: str, message: str
) -> None:
    a = Scripted()
    room = await make_room({"a": a}, max_prompt_chars=10)
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", **frame})
    error = await seat.wait_for(is_type("error", ref="p1"))
    assert (error["code"], error["message"]) == (code, message)
    assert not seat.of_type("message")
    assert a.requests == []
    # Refused, not remembered: the same id with a good text is a new prompt.
    await _turn(seat, "p1", "x" * 10, ["a"])
    assert [m["text"] for m in seat.of_type("message")] == ["x" * 10]


async def test_a_prompt_while_a_turn_runs_is_queued_and_a_repeated_id_is_not(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted("one", "two")
    release = a.hold()
    room = await make_room({"a": a})
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", "text": "first", "models": ["a"]})
    await seat.wait_for(is_type("token"))
    await seat.send({"type": "prompt", "id": "p1", "text": "first", "models": ["a"]})
    await seat.send({"type": "prompt", "id": "p2", "text": "second", "models": ["a"]})
    queued = await seat.wait_for(is_type("message", prompt_id="p2"))
    assert queued["queued"] is True
    assert seat.of_type("error") == []
    release.set()
    await seat.wait_for(is_type("unqueued", reason="started"))
    await seat.wait_for(lambda _: len(seat.of_type("stream_end")) == 2)
    assert len(seat.of_type("message")) == 2
    assert len(a.requests) == 2


# --- 9.3 cancel -------------------------------------------------------------------------------


async def test_cancel_with_stream_and_model_follows_the_stream(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a, b = Scripted("a1", "a2"), Scripted("b1", "b2")
    release_a, release_b = a.hold(), b.hold()
    room = await make_room({"a": a, "b": b})
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", "text": "go", "models": ["a", "b"]})
    await seat.wait_for(lambda _: len(seat.of_type("stream_start")) == 2)
    starts = {s["model"]: s["stream"] for s in seat.of_type("stream_start")}
    await seat.send({"type": "cancel", "id": "c1", "stream": starts["a"], "model": "b"})
    end_a = await seat.wait_for(is_type("stream_end", stream=starts["a"]))
    assert end_a["reason"] == "cancelled"
    release_b.set()
    end_b = await seat.wait_for(is_type("stream_end", stream=starts["b"]))
    assert end_b["reason"] == "complete", "the model named beside a stream is ignored"
    release_a.set()
    # With both, a stream that is not running is not_found even if the model were fine.
    await seat.send({"type": "cancel", "id": "c2", "stream": starts["a"], "model": "a"})
    error = await seat.wait_for(is_type("error", ref="c2"))
    assert (error["code"], error["message"]) == ("not_found", f"no running stream {starts['a']!r}")


async def test_cancel_by_model_ends_only_that_models_streams(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a, b = Scripted("a1", "a2"), Scripted("b1", "b2")
    a.hold()
    release_b = b.hold()
    room = await make_room({"a": a, "b": b})
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", "text": "go", "models": ["a", "b"]})
    await seat.wait_for(lambda _: len(seat.of_type("token")) == 2)
    starts = {s["model"]: s["stream"] for s in seat.of_type("stream_start")}
    await seat.send({"type": "cancel", "id": "c1", "model": "a"})
    assert (await seat.wait_for(is_type("stream_end", stream=starts["a"])))["reason"] == (
        "cancelled"
    )
    assert seat.of_type("error") == []
    assert [e["stream"] for e in seat.of_type("stream_end")] == [starts["a"]]
    release_b.set()
    assert (await seat.wait_for(is_type("stream_end", stream=starts["b"])))["reason"] == (
        "complete"
    )
    await seat.send({"type": "cancel", "id": "again", "model": "a"})
    error = await seat.wait_for(is_type("error", ref="again"))
    assert (error["code"], error["message"]) == ("not_found", "model 'a' has no running stream")
    await seat.send({"type": "cancel", "id": "nope", "model": "nope"})
    error = await seat.wait_for(is_type("error", ref="nope"))
    assert (error["code"], error["message"]) == ("unknown_model", "unknown model 'nope'")


async def test_cancel_all_ends_every_stream_and_does_nothing_when_idle(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a, b = Scripted("a1", "a2"), Scripted("b1", "b2")
    a.hold()
    b.hold()
    room = await make_room({"a": a, "b": b})
    seat = _seat(seats, room)
    await seat.send({"type": "cancel", "id": "idle"})
    await seat.send({"type": "prompt", "id": "p1", "text": "go", "models": ["a", "b"]})
    await seat.wait_for(lambda _: len(seat.of_type("token")) == 2)
    await seat.send({"type": "cancel", "id": "all"})
    await seat.wait_for(lambda _: len(seat.of_type("stream_end")) == 2)
    assert [e["reason"] for e in seat.of_type("stream_end")] == ["cancelled", "cancelled"]
    assert seat.of_type("error") == []
    stored = await room._store.recent(room.id, 10)
    assert [(m.status, m.text) for m in stored[1:]] == [("cancelled", "a1"), ("cancelled", "b1")]


# --- 9.4 interrupt ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"text": "  "},
        {"text": "x" * 11},
        {"text": "fine", "models": []},
        {"text": "fine", "models": ["nope"]},
    ],
)
async def test_an_interrupt_that_fails_its_checks_stops_nothing(
    make_room: MakeRoom, seats: list[Seat], frame: dict[str, Any]
) -> None:
    a = Scripted("a1", "a2")
    release = a.hold()
    room = await make_room({"a": a}, max_prompt_chars=10)
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", "text": "go", "models": ["a"]})
    await seat.wait_for(is_type("token"))
    await seat.send({"type": "interrupt", "id": "i1", **frame})
    await seat.wait_for(is_type("error", ref="i1"))
    assert not seat.of_type("stream_end")
    release.set()
    end = await seat.wait_for(is_type("stream_end"))
    assert end["reason"] == "complete"
    assert len(seat.of_type("message")) == 1


async def test_a_repeated_interrupt_does_nothing_at_all(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted("a1", "a2")
    a.hold()
    room = await make_room({"a": a})
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", "text": "first", "models": ["a"]})
    await seat.wait_for(is_type("token"))
    interrupt = {"type": "interrupt", "id": "i1", "text": "instead", "models": ["a"]}
    await seat.send(interrupt)
    redirect = await seat.wait_for(is_type("message", prompt_id="i1"))
    new_stream = (await seat.wait_for(is_type("stream_start", reply_to=redirect["id"])))["stream"]
    await seat.wait_for(is_type("token", stream=new_stream))
    ends_before = list(seat.of_type("stream_end"))
    await seat.send(interrupt)
    await seat.send({"type": "ping", "id": "after"})
    await seat.wait_for(is_type("pong", id="after"))
    assert seat.of_type("stream_end") == ends_before, "the turn the first delivery began runs on"
    assert len(seat.of_type("message")) == 2
    assert len(a.requests) == 2


async def test_an_interrupt_ends_the_turn_before_its_message_and_an_idle_one_is_silent(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted("a1", "a2")
    room = await make_room({"a": a})
    seat = _seat(seats, room)
    await seat.send({"type": "interrupt", "id": "nothing-runs"})
    await seat.send({"type": "ping", "id": "after"})
    await seat.wait_for(is_type("pong", id="after"))
    assert [f["type"] for f in seat.frames[1:] if not f["type"].startswith("presence")] == ["pong"]

    a.hold()
    await seat.send({"type": "prompt", "id": "p1", "text": "first", "models": ["a"]})
    first = await seat.wait_for(is_type("stream_start"))
    await seat.wait_for(is_type("token"))
    a.gate = None
    await seat.send({"type": "interrupt", "id": "i1", "text": "instead", "models": ["a"]})
    redirect = await seat.wait_for(is_type("message", prompt_id="i1"))
    end = next(e for e in seat.of_type("stream_end") if e["stream"] == first["stream"])
    assert end["reason"] == "interrupted"
    assert end["seq"] < redirect["seq"]
    stored = {m.id: m for m in await room._store.recent(room.id, 10)}
    assert (stored[first["message"]].status, stored[first["message"]].text) == (
        "interrupted",
        "a1",
    )


# --- stream_end reasons and stored status -----------------------------------------------------


async def test_a_length_reply_is_stored_and_snapshotted_as_complete(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted("cut", finish="length")})
    seat = _seat(seats, room)
    [end] = await _turn(seat, "p1", "long answer please", ["a"])
    assert end["reason"] == "length"
    stored = await room._store.recent(room.id, 10)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "complete")]
    late = _seat(seats, room)
    await late.wait_for(is_type("welcome"))
    assert [m["status"] for m in late.welcome["messages"]] == ["complete", "complete"]


# --- 8 snapshots and resume -------------------------------------------------------------------


async def test_a_snapshot_carries_each_running_replys_text_so_far(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted("partial ", "rest")
    release = a.hold()
    room = await make_room({"a": a})
    seat = _seat(seats, room)
    await seat.send({"type": "prompt", "id": "p1", "text": "go", "models": ["a"]})
    start = await seat.wait_for(is_type("stream_start"))
    await seat.wait_for(is_type("token"))

    late = _seat(seats, room)
    await late.wait_for(is_type("welcome"))
    reply = next(m for m in late.welcome["messages"] if m["id"] == start["message"])
    assert (reply["text"], reply["status"]) == ("partial ", "streaming")
    assert late.welcome["streams"] == [
        {
            "stream": start["stream"],
            "model": "a",
            "message": start["message"],
            "reply_to": start["reply_to"],
            "text": "partial ",
        }
    ]
    assert reply["reply_to"] == start["reply_to"] == seat.of_type("message")[0]["id"]
    release.set()
    await seat.wait_for(is_type("stream_end"))
    after = _seat(seats, room)
    await after.wait_for(is_type("welcome"))
    reply = next(m for m in after.welcome["messages"] if m["id"] == start["message"])
    assert (reply["text"], reply["status"]) == ("partial rest", "complete")
    assert after.welcome["streams"] == []
    # The finished reply in a snapshot is the stored one, field for field.
    stored = {m.id: m for m in await room._store.recent(room.id, 10)}
    assert reply == msgspec.to_builtins(stored[start["message"]])


@pytest.mark.parametrize(("history", "kept"), [(0, 0), (1, 1), (3, 3), (50, 4)])
async def test_welcome_carries_at_most_history_messages(
    make_room: MakeRoom, seats: list[Seat], history: int, kept: int
) -> None:
    room = await make_room({"a": Scripted()}, history_messages=history)
    seat = _seat(seats, room)
    await _turn(seat, "p1", "one", ["a"])
    await _turn(seat, "p2", "two", ["a"])
    late = _seat(seats, room)
    await late.wait_for(is_type("welcome"))
    assert len(late.welcome["messages"]) == kept
    texts = ["one", "ok", "two", "ok"]
    assert [m["text"] for m in late.welcome["messages"]] == texts[len(texts) - kept :]


async def test_a_resume_replays_exactly_the_missed_events(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted("x", "y")})
    seat = _seat(seats, room)
    await _turn(seat, "p1", "one", ["a"])
    missed_from = seat.frames[-1]["seq"]
    await _turn(seat, "p2", "two", ["a"])
    live = _events(seat)
    back = _seat(seats, room, since={"epoch": seat.welcome["epoch"], "seq": missed_from})
    await back.wait_for(lambda _: len(_events(back)) == len(live) - 5)
    assert back.welcome["resumed"] is True
    assert (back.welcome["messages"], back.welcome["streams"]) == ([], [])
    assert back.welcome["seq"] == live[-1]["seq"]
    assert _events(back) == [f for f in live if f["seq"] > missed_from]


@pytest.mark.parametrize(
    "since",
    [
        {"epoch": "another", "seq": 0},
        {"epoch": None, "seq": 99},
    ],
)
async def test_an_unusable_since_gets_a_snapshot(
    make_room: MakeRoom, seats: list[Seat], since: dict[str, Any]
) -> None:
    room = await make_room({"a": Scripted()})
    seat = _seat(seats, room)
    await _turn(seat, "p1", "one", ["a"])
    since = {**since, "epoch": since["epoch"] or room.room.log.epoch}
    back = _seat(seats, room, since=since)
    await back.wait_for(is_type("welcome"))
    assert back.welcome["resumed"] is False
    assert [m["text"] for m in back.welcome["messages"]] == ["one", "ok"]
    # A usable one at the same moment resumes, so it is the since that was judged.
    good = _seat(seats, room, since={"epoch": room.room.log.epoch, "seq": room.room.log.head})
    await good.wait_for(is_type("welcome"))
    assert good.welcome["resumed"] is True


async def test_a_replay_larger_than_half_the_outbox_becomes_a_snapshot(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted(*["w" * 100 for _ in range(30)])
    room = await make_room({"a": a}, outbox_bytes=8192)
    seat = _seat(seats, room)
    await _turn(seat, "p1", "one", ["a"])
    epoch = seat.welcome["epoch"]
    events = _events(seat)
    sizes: dict[int, int] = {f["seq"]: len(_event_bytes(room, f["seq"])) for f in events}

    def since_for(total: int) -> int:
        """The seq after which the replay's bytes first reach ``total``."""
        acc = 0
        for seq in sorted(sizes, reverse=True):
            acc += sizes[seq]
            if acc > total:
                return seq
        raise AssertionError("the turn is too small for this test")

    half = 8192 // 2
    over = since_for(half)
    just_under = over + 1
    big = _seat(seats, room, since={"epoch": epoch, "seq": over - 1})
    small = _seat(seats, room, since={"epoch": epoch, "seq": just_under - 1})
    await big.wait_for(is_type("welcome"))
    await small.wait_for(is_type("welcome"))
    assert big.welcome["resumed"] is False
    assert small.welcome["resumed"] is True
    replayed = sum(sizes[s] for s in sizes if s >= just_under)
    assert replayed <= half


def _event_bytes(room: Turns, seq: int) -> bytes:
    """The JSON bytes the room's log holds for event ``seq``."""
    events = room.room.log.since(room.room.log.epoch, seq - 1)
    assert events
    return events[0].data(JSON)


# --- fan-out ----------------------------------------------------------------------------------


class CountingCodec:
    """A codec that counts its renders, standing in for JSON or MessagePack."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.binary = inner.binary
        self.renders: list[str] = []

    def render(self, frame: ServerFrame, at: EventAt | None) -> bytes:
        self.renders.append(frame.__class__.__name__)
        return bytes(self.inner.render(frame, at))

    def decode(self, data: str | bytes) -> Any:
        return self.inner.decode(data)


async def test_fan_out_encodes_each_event_once_per_codec(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted("x", "y", "z")})
    text, binary = CountingCodec(JSON), CountingCodec(MSGPACK)
    members = [_seat(seats, room, codec=c) for c in (text, text, text, binary, binary)]
    text.renders.clear()
    binary.renders.clear()
    await _turn(members[0], "p1", "one", ["a"])
    for seat in members:
        await seat.wait_for(is_type("stream_end"))
    events = ["MessageEvent", "StreamStart", "TokenEvent", "TokenEvent", "TokenEvent", "StreamEnd"]
    presence = ("Presence", "PresenceDiff")
    assert [r for r in binary.renders if r not in presence] == events
    # The event log has each event's JSON already (it counts its bytes with it), so the
    # JSON participants' frames are those very bytes: never encoded again for them.
    assert [r for r in text.renders if r not in presence] == []
    assert _events(members[1]) == _events(members[3])


def test_an_outgoing_frame_is_encoded_once_per_codec_name() -> None:
    counting = CountingCodec(JSON)
    out = Outgoing(Pong(id="x"), None)
    assert out.data(counting) == out.data(counting)
    assert counting.renders == ["Pong"]


async def test_an_interrupts_params_reach_the_models_of_its_turn(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    a = Scripted("x")
    room = await make_room({"a": a})
    seat = _seat(seats, room)
    params = {"temperature": 0.5, "max_tokens": 9}
    await seat.send({"type": "interrupt", "id": "i1", "text": "go", "params": params})
    await seat.wait_for(is_type("stream_end"))
    [asked] = a.requests
    assert (asked.temperature, asked.max_tokens) == (0.5, 9)
    assert [(t.role, t.content) for t in asked.messages] == [("user", "go")]


async def test_typing_changes_over_the_rate_are_refused_and_change_nothing(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted()}, typing_changes_per_minute=2)
    seat = _seat(seats, room)
    for n, active in enumerate([True, False, True]):
        await seat.send({"type": "typing", "id": f"t{n}", "active": active})
    error = await seat.wait_for(is_type("error", ref="t2"))
    assert error["code"] == "rate_limited"
    assert error["message"] == "more than 2 typing changes a minute"
    assert error["retry_after"] > 0
    assert seat.member.typing is False
    # A typing that changes nothing is free, even over the rate.
    await seat.send({"type": "typing", "id": "same", "active": False})
    await seat.send({"type": "ping", "id": "after"})
    await seat.wait_for(is_type("pong", id="after"))
    assert [e["ref"] for e in seat.of_type("error")] == ["t2"]


async def test_a_second_hello_is_a_bad_frame_and_the_seat_stays(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted()})
    seat = _seat(seats, room)
    await seat.send({"type": "hello", "id": "h2", "name": "again"})
    error = await seat.wait_for(is_type("error", ref="h2"))
    assert (error["code"], error["message"]) == (
        "bad_frame",
        "hello was already received on this connection",
    )
    assert room.members == [seat.member]


# --- joining, presence and slow consumers -----------------------------------------------------


async def test_welcome_names_the_participant_the_models_and_who_is_there(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted(), "b": Scripted()})
    first = _seat(seats, room, name="  ada  ")
    second = _seat(seats, room, name="   ")
    await second.wait_for(is_type("welcome"))
    welcome = second.welcome
    me = second.member
    assert first.member.name == "ada"
    assert me.name == f"guest-{me.id[-4:]}"
    assert welcome["participant"] == {"id": me.id, "name": me.name}
    assert welcome["session"] == me.session
    assert (welcome["room"], welcome["epoch"], welcome["seq"]) == (room.id, room.room.log.epoch, 0)
    assert [m["id"] for m in welcome["models"]] == ["a", "b"]
    assert [p["name"] for p in welcome["participants"]] == ["ada", me.name]
    index = await wait_presence(first, lambda listed: len(listed) == 2)
    listed = dict(presence_states(first.welcome, first.frames))[index]
    assert list(listed) == [first.member.id, me.id]


async def test_leaving_tells_the_others_and_an_empty_room_reports_idle(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted()})
    idle: list[Turns] = []
    room.room.on_idle = lambda: idle.append(room)
    stays, goes = _seat(seats, room, name="stays"), _seat(seats, room, name="goes")
    joined = await wait_presence(stays, names_are({"stays", "goes"}))
    room.leave(goes.member)
    room.leave(goes.member)  # a second leave does nothing
    await wait_presence(stays, names_are({"stays"}), after=joined + 1)
    assert idle == []
    room.leave(stays.member)
    assert idle == [room]
    assert room.idle


async def test_a_participant_that_falls_behind_is_closed_4000_and_the_room_goes_on(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    words = ["w" * 400 for _ in range(8)]
    room = await make_room({"a": Scripted(*words, paced=True)}, outbox_bytes=1024)
    reader = _seat(seats, room, name="reader")
    stalled = room.join(name="stalled", since=None, codec=JSON)  # nobody reads its outbox
    await _turn(reader, "p1", "flood", ["a"])
    assert stalled.outbox.closed
    assert stalled not in room.members
    with pytest.raises(OutboxClosed) as closed:
        await _drain(stalled.outbox)
    assert (closed.value.code, closed.value.reason) == (4000, "slow consumer: reconnect and resume")
    await reader.wait_for(lambda f: f["type"] == "presence_diff" and f["count"] == 1)
    *_, (_, listed) = presence_states(reader.welcome, reader.frames)
    assert [p["name"] for p in listed.values()] == ["reader"]


async def _drain(outbox: Outbox) -> None:
    """Read ``outbox`` until it raises (it has been closed)."""
    while True:
        await outbox.get()


async def test_answers_to_one_participant_count_toward_its_bound(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted()}, outbox_bytes=1024)
    watcher = _seat(seats, room, name="watcher")
    pinger = room.join(name="pinger", since=None, codec=JSON)
    for n in range(100):
        await room.handle(pinger, JSON.decode(f'{{"type":"ping","id":"{"p" * 100}{n}"}}'))
        if pinger.outbox.closed:
            break
    assert pinger.outbox.closed
    assert pinger not in room.members
    assert watcher.member in room.members


async def test_a_turns_events_name_its_author_message_and_replies(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted("x"), "b": Scripted("y")})
    seat = _seat(seats, room, name="ada")
    await _turn(seat, "p1", "question", ["a", "b"])
    message = seat.of_type("message")[0]
    assert message["author"] == {"id": seat.member.id, "name": "ada"}
    assert (message["text"], message["prompt_id"]) == ("question", "p1")
    assert isinstance(message["ts"], int)
    starts = seat.of_type("stream_start")
    assert [(s["model"], s["reply_to"], s["ts"]) for s in starts] == [
        ("a", message["id"], message["ts"]),
        ("b", message["id"], message["ts"]),
    ]
    stored = {m.id: m for m in await room._store.recent(room.id, 10)}
    assert stored[message["id"]].prompt_id == "p1"
    assert stored[message["id"]].author is not None
    for start, text in zip(starts, ["x", "y"], strict=True):
        reply = stored[start["message"]]
        assert (reply.model, reply.reply_to, reply.stream, reply.text) == (
            start["model"],
            message["id"],
            start["stream"],
            text,
        )
    assert len({s["stream"] for s in starts} | {s["message"] for s in starts}) == 4


async def test_prompts_over_the_rate_are_refused_with_retry_after(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Scripted()}, prompts_per_minute=1)
    seat = _seat(seats, room)
    await _turn(seat, "p1", "one", ["a"])
    await seat.send({"type": "prompt", "id": "p2", "text": "two", "models": ["a"]})
    error = await seat.wait_for(is_type("error", ref="p2"))
    assert (error["code"], error["message"]) == ("rate_limited", "more than 1 prompts a minute")
    assert 0 < error["retry_after"] <= 60
    assert len(seat.of_type("message")) == 1


async def test_a_failed_reply_keeps_its_error_in_store_and_snapshot(
    make_room: MakeRoom, seats: list[Seat]
) -> None:
    room = await make_room({"a": Failing("so far", ProviderError("rate_limited", "slow down"))})
    seat = _seat(seats, room)
    [end] = await _turn(seat, "p1", "go", ["a"])
    assert end["reason"] == "error"
    assert end["error"] == {"code": "rate_limited", "message": "slow down"}
    late = _seat(seats, room)
    await late.wait_for(is_type("welcome"))
    reply = late.welcome["messages"][-1]
    assert (reply["role"], reply["model"], reply["status"], reply["text"]) == (
        "assistant",
        "a",
        "error",
        "so far",
    )
    assert reply["error"] == end["error"]
    stored = (await room._store.recent(room.id, 10))[-1]
    assert reply == msgspec.to_builtins(stored)


class Failing(Scripted):
    """Says ``text``, then fails with ``error``."""

    def __init__(self, text: str, error: ProviderError) -> None:
        super().__init__(text)
        self.error = error

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self.requests.append(request)
        yield TextDelta(self.words[0])
        raise self.error
