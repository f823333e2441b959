"""The room directory: idle rooms stay open for idle_room_seconds, then a new epoch begins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from rtserver.config import Limits
from rtserver.errors import PeerError
from rtserver.protocol.codec import JSON
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.directory import RoomDirectory
from tests.unit.room_harness import Scripted, catalog

MakeDirectory = Callable[..., RoomDirectory]


@pytest.fixture
async def make_directory(tmp_path: Path) -> AsyncIterator[MakeDirectory]:
    store = await SqliteStore.open(tmp_path / "rooms.db")
    made: list[RoomDirectory] = []

    def make(providers: dict[str, Scripted] | None = None, **limits: Any) -> RoomDirectory:
        models = catalog(providers or {"a": Scripted()})
        directory = RoomDirectory(store=store, catalog=models, limits=Limits(**limits))
        made.append(directory)
        return directory

    try:
        yield make
    finally:
        for directory in made:
            await directory.close()
        await store.close()


async def _gone(directory: RoomDirectory, room_id: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while room_id in directory.rooms:  # noqa: ASYNC110 - the expiry is a loop timer
            await asyncio.sleep(0.005)


async def test_an_idle_room_closes_after_idle_room_seconds_and_reopens_in_a_new_epoch(
    make_directory: MakeDirectory,
) -> None:
    directory = make_directory(idle_room_seconds=0.05)
    room = await directory.get("r")
    epoch = room.room.log.epoch
    member = room.join(name="x", since=None, codec=JSON)
    room.leave(member)
    await _gone(directory, "r")
    again = await directory.get("r")
    assert again is not room
    assert again.room.log.epoch != epoch


async def test_a_room_rejoined_before_idle_room_seconds_keeps_its_epoch(
    make_directory: MakeDirectory,
) -> None:
    directory = make_directory(idle_room_seconds=0.05)
    room = await directory.get("r")
    room.leave(room.join(name="x", since=None, codec=JSON))
    # Coming back cancels the expiry: the room, and so resume, outlives the idle time.
    assert await directory.get("r") is room
    assert "r" not in directory._expiry
    member = room.join(name="y", since=None, codec=JSON)
    room.leave(member)
    await _gone(directory, "r")


async def test_a_room_with_a_member_is_never_expired(make_directory: MakeDirectory) -> None:
    directory = make_directory(idle_room_seconds=0)
    room = await directory.get("r")
    first = room.join(name="x", since=None, codec=JSON)
    room.join(name="y", since=None, codec=JSON)
    room.leave(first)
    assert "r" not in directory._expiry, "no expiry is even scheduled"
    assert directory.rooms.get("r") is room


async def test_a_closed_directory_refuses_rooms_as_busy(make_directory: MakeDirectory) -> None:
    directory = make_directory()
    await directory.get("r")
    await directory.close()
    with pytest.raises(PeerError) as refused:
        await directory.get("r")
    assert refused.value.code == "busy"


async def test_a_room_left_while_streaming_closes_once_its_last_stream_ends(
    make_directory: MakeDirectory,
) -> None:
    scripted = Scripted("a", "b")
    release = scripted.hold()
    directory = make_directory({"a": scripted}, idle_room_seconds=0)
    room = await directory.get("r")
    member = room.join(name="x", since=None, codec=JSON)
    await room.handle(member, JSON.decode('{"type":"prompt","id":"p1","text":"go","models":["a"]}'))
    room.leave(member)
    # A stream still runs: the room stays, so the stream's events are kept for a resume.
    assert not room.idle
    assert "r" not in directory._expiry
    assert directory.rooms.get("r") is room
    release.set()
    await _gone(directory, "r")
