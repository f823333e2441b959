"""Presence at scale: the board's coalesced, bounded diffs, and Rooms of thousands, no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from rtserver.protocol.codec import JSON
from rtserver.protocol.frames import PresenceDiff, PresenceEntry, TokenEvent
from rtserver.room.member import Member
from rtserver.room.presence import PresenceBoard
from rtserver.room.room import Room, RoomLimits


def _entry(n: int, *, typing: bool = False) -> PresenceEntry:
    return PresenceEntry(id=f"p{n}", name=f"n{n}", typing=typing)


def _apply(listed: dict[str, PresenceEntry], diff: PresenceDiff) -> dict[str, PresenceEntry]:
    """What a client does with a diff."""
    out = {k: v for k, v in listed.items() if k not in set(diff.left)}
    out.update((e.id, e) for e in diff.changed)
    return out


# --- the board, pure ------------------------------------------------------------------------


def test_changes_between_flushes_are_one_diff_and_then_none() -> None:
    board = PresenceBoard(listed_max=10)
    for n in range(3):
        board.join(_entry(n))
    board.leave("p1")
    board.update(_entry(2, typing=True))
    assert board.flush() == PresenceDiff(
        changed=[_entry(0), _entry(2, typing=True)], left=[], count=2
    )
    assert board.flush() is None
    assert not board.pending


def test_one_who_joins_and_leaves_between_flushes_is_not_told_at_all() -> None:
    board = PresenceBoard(listed_max=10)
    board.join(_entry(0))
    board.flush()
    board.join(_entry(1))
    board.leave("p1")
    assert board.flush() is None


def test_only_the_first_listed_max_are_listed_and_the_rest_counted() -> None:
    board = PresenceBoard(listed_max=3)
    for n in range(5):
        board.join(_entry(n))
    first = board.flush()
    assert first is not None
    assert [e.id for e in first.changed] == ["p0", "p1", "p2"]
    assert first.count == 5
    board.join(_entry(5))
    board.update(_entry(4, typing=True))  # unlisted: nobody is told but the count
    assert board.flush() == PresenceDiff(changed=[], left=[], count=6)
    board.leave("p1")  # a listed one goes: the next to have joined takes the place
    assert board.flush() == PresenceDiff(changed=[_entry(3)], left=["p1"], count=5)
    assert [e.id for e in board.listed()] == ["p0", "p2", "p3"]


def test_a_participant_who_leaves_and_rejoins_with_its_id_is_told_again() -> None:
    """With stable ids, a joiner's welcome may lack someone the board told before."""
    board = PresenceBoard(listed_max=10)
    board.join(_entry(0))
    board.flush()
    board.leave("p0")
    board.join(_entry(0))
    diff = board.flush()
    assert diff is not None
    assert diff.changed == [_entry(0)]


def test_listed_max_zero_sends_counts_only() -> None:
    board = PresenceBoard(listed_max=0)
    board.join(_entry(0))
    assert board.listed() == []
    assert board.flush() == PresenceDiff(changed=[], left=[], count=1)


_OPS = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "type", "flush", "snapshot"]), st.integers(0, 12)),
    max_size=80,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(ops=_OPS, listed_max=st.integers(0, 6))
def test_every_client_that_applies_the_diffs_holds_the_listed_participants(
    ops: list[tuple[str, int]], listed_max: int
) -> None:
    """Clients that joined at any moment, applying each diff, end with what the board lists."""
    board = PresenceBoard(listed_max=listed_max)
    clients: list[dict[str, PresenceEntry]] = [{}]
    counts: list[int] = [0]
    for op, n in ops:
        if op == "join":
            board.join(_entry(n))
        elif op == "leave":
            board.leave(f"p{n}")
        elif op == "type":
            board.update(_entry(n, typing=n % 2 == 0))
        elif op == "snapshot":  # a joiner's welcome
            clients.append({e.id: e for e in board.listed()})
            counts.append(board.count)
        elif (diff := board.flush()) is not None:
            clients = [_apply(c, diff) for c in clients]
            counts = [diff.count] * len(counts)
    if (diff := board.flush()) is not None:
        clients = [_apply(c, diff) for c in clients]
        counts = [diff.count] * len(counts)
    expected = {e.id: e for e in board.listed()}
    assert all(c == expected for c in clients)
    assert len(expected) <= listed_max
    if len(clients) > 1 or ops:
        assert counts[-1] == board.count or board.count == 0


# --- a room of thousands, no sockets --------------------------------------------------------


def _room(limits: RoomLimits) -> Room:
    return Room("big", limits=limits)


def _drain(member: Member) -> list[dict[str, Any]]:
    """Every frame queued for a participant, decoded, without waiting."""
    return [msgspec.json.decode(data) for data in member.outbox.take_ready()]


async def _next_presence(member: Member) -> dict[str, Any]:
    """Wait (bounded) for the next ``presence_diff`` queued for ``member``."""
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = msgspec.json.decode(await member.outbox.get())
            if frame["type"] == "presence_diff":
                return frame


async def _presence_count(member: Member) -> int:
    return int((await _next_presence(member))["count"])


def _counts(frames: list[dict[str, Any]]) -> list[int]:
    return [f["count"] for f in frames if f["type"] == "presence_diff"]


async def test_three_thousand_joins_cost_each_participant_a_few_small_frames() -> None:
    room = _room(RoomLimits(presence_listed=50, presence_interval=0.05))
    members = [room.join(name=f"n{n}", since=None, codec=JSON) for n in range(3_000)]
    first, last = members[0], members[-1]
    welcome = _drain(last)[0]
    assert welcome["participant_count"] == 3_000
    assert len(welcome["participants"]) == 50, "welcome lists a bounded few"
    diff = await _next_presence(first)
    # All joins of one interval are one frame, however many they were.
    assert diff["count"] == 3_000
    assert _counts(_drain(first)) == []
    assert len(diff["changed"]) == 50, "only the listed participants are named"
    for member in members[1:]:
        _drain(member)
    # A leave costs everyone one small frame, not the list of 2,999.
    room.leave(members[1234])
    assert await _presence_count(first) == 2_999
    assert _drain(members[2]) == [
        {"type": "presence_diff", "changed": [], "left": [], "count": 2_999}
    ]
    # A listed one leaving names it, and the next in line, and nothing else.
    room.leave(members[7])
    assert await _presence_count(first) == 2_998
    [diff] = _drain(members[2])
    assert diff["left"] == [members[7].id]
    assert [e["id"] for e in diff["changed"]] == [members[50].id]
    room.close()


async def test_slow_participants_are_dropped_without_a_cascade() -> None:
    """Half of 2,000 participants overflow at once; each drop is recorded, none fans out.

    Before drops were deferred, each drop broadcast presence from inside the fan-out that
    found the drop, which found the next slow participant: a recursion 1,000 drops deep.
    """
    limits = RoomLimits(
        outbox_bytes=1024, presence_listed=5, presence_interval=0.05, token_flush_ms=0
    )
    room = _room(limits)
    members = [room.join(name=f"n{n}", since=None, codec=JSON) for n in range(2_000)]
    readers, stalled = members[::2], members[1::2]
    assert await _presence_count(members[0]) == 2_000
    for member in members:
        _drain(member)
    text = "x" * 700
    for seq in (1, 2):
        room.publish(TokenEvent(seq=0, stream="s", text=text))
        for reader in readers:
            assert [f["seq"] for f in _drain(reader)] == [seq]
    assert all(m.outbox.closed for m in stalled)
    assert not any(m.outbox.closed for m in readers)
    assert len(room.members) == 1_000
    assert await _presence_count(readers[0]) == 1_000
    assert all(_counts(_drain(r)) == [1_000] for r in readers[1:]), "one diff tells every drop"
    # The room goes on: a third event reaches every reader.
    room.publish(TokenEvent(seq=0, stream="s", text="more"))
    assert all(_drain(r)[-1]["seq"] == 3 for r in readers)
    room.close()
