"""Every store (SQLite and PostgreSQL): turns are atomic even when rooms write at the same time."""

from __future__ import annotations

import asyncio

from rtserver.protocol.frames import HistoryMessage
from tests.stores import StoreOpener


def _turn(room: str, n: int) -> tuple[HistoryMessage, list[HistoryMessage]]:
    user = HistoryMessage(id=f"{room}-u{n}", role="user", text=f"q{n}", status="complete", ts=n)
    replies = [
        HistoryMessage(
            id=f"{room}-r{n}-{m}",
            role="assistant",
            text="",
            status="streaming",
            ts=n,
            model=m,
            reply_to=user.id,
            stream=f"s-{room}-{n}-{m}",
        )
        for m in ("a", "b")
    ]
    return user, replies


async def test_concurrent_turns_of_many_rooms_are_each_all_or_nothing(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    rooms = [f"room{n}" for n in range(12)]
    for room in rooms:
        user, replies = _turn(room, 0)
        assert await store.start_turn(room, user, "taken", replies)

    async def attempt(room: str, n: int) -> bool:
        user, replies = _turn(room, n)
        # Every other attempt repeats a prompt id: it must store nothing, and its
        # rollback must not undo the other rooms' turns written at the same time.
        return await store.start_turn(room, user, "taken" if n % 2 else f"fresh{n}", replies)

    results = await asyncio.gather(*(attempt(room, n) for n, room in enumerate(rooms, start=1)))
    assert results == [n % 2 == 0 for n in range(1, len(rooms) + 1)]
    await store.close()

    reopened = await open_store()
    for n, room in enumerate(rooms, start=1):
        kept = await reopened.recent(room, 10)
        expected = 3 + (3 if n % 2 == 0 else 0)
        assert len(kept) == expected, room


async def test_recover_marks_streaming_replies_interrupted_with_their_checkpoint(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    user, replies = _turn("r", 1)
    await store.start_turn("r", user, "p", replies)
    await store.checkpoint(replies[0].id, "partial text")
    await store.close()

    reopened = await open_store()
    assert await reopened.recover() == 2
    kept = {m.id: m for m in await reopened.recent("r", 10)}
    assert (kept[replies[0].id].status, kept[replies[0].id].text) == ("interrupted", "partial text")
    assert kept[replies[1].id].status == "interrupted"
    assert kept[user.id].prompt_id == "p"
