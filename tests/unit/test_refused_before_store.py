"""A prompt that the sender's rate refuses is refused before the store is asked about its id.

Otherwise a flood of prompts with fresh ids costs a store query each, in the one queue every
room's store work waits in; here the store is held still, and the refusals come all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rtserver.config import Limits
from rtserver.store.sqlite import SqliteStore
from rtserver.turns.turns import Turns
from tests.unit.room_harness import Scripted, Seat, catalog, is_type, join


class HeldStore:
    """A real store whose ``has_prompt`` waits while ``held`` is clear."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.held = asyncio.Event()
        self.held.set()
        self.asked = 0

    async def has_prompt(self, room: str, prompt_id: str) -> bool:
        self.asked += 1
        await self.held.wait()
        return await self._store.has_prompt(room, prompt_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
async def room(tmp_path: Path) -> AsyncIterator[tuple[Turns, HeldStore, Scripted]]:
    store = HeldStore(await SqliteStore.open(tmp_path / "rooms.db"))
    model = Scripted("one", "two")
    turns = Turns(
        "r",
        store=store,
        catalog=catalog({"a": model}),
        limits=Limits(prompts_per_minute=1, token_flush_ms=0),
    )
    await turns.load()
    try:
        yield turns, store, model
    finally:
        store.held.set()
        await turns.close()
        await store.close()


@pytest.fixture
async def seat(room: tuple[Turns, HeldStore, Scripted]) -> AsyncIterator[Seat]:
    made = join(room[0])
    yield made
    await made.stop()


async def test_a_prompt_over_the_rate_is_refused_while_the_store_is_held(
    room: tuple[Turns, HeldStore, Scripted], seat: Seat
) -> None:
    _, store, _ = room
    await seat.send({"type": "prompt", "id": "p1", "text": "first", "models": ["a"]})
    await seat.wait_for(is_type("stream_end"))
    store.held.clear()
    asked = store.asked
    async with asyncio.timeout(10):  # a refusal that waited for the store would wait forever
        for n in range(2, 50):
            await seat.send({"type": "prompt", "id": f"p{n}", "text": "more", "models": ["a"]})
    await seat.wait_for(is_type("error", ref="p49"))
    errors = [f for f in seat.frames if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["rate_limited"] * 48
    assert all(e["retry_after"] > 0 for e in errors)
    assert store.asked == asked, "no refused prompt waited for the store"
    assert len(seat.of_type("message")) == 1


async def test_an_interrupt_over_the_rate_is_refused_before_it_stops_anything(
    room: tuple[Turns, HeldStore, Scripted], seat: Seat
) -> None:
    _, store, model = room
    gate = model.hold()
    await seat.send({"type": "prompt", "id": "p1", "text": "first", "models": ["a"]})
    await seat.wait_for(is_type("token"))
    store.held.clear()
    async with asyncio.timeout(10):
        await seat.send({"type": "interrupt", "id": "i1", "text": "instead", "models": ["a"]})
    error = await seat.wait_for(is_type("error", ref="i1"))
    assert error["code"] == "rate_limited"
    store.held.set()
    gate.set()
    end = await seat.wait_for(is_type("stream_end"))
    assert end["reason"] == "complete", "the running stream was not interrupted"
