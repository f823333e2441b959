"""Routed replies in both stores: the router's lane holds what it answered, whichever model did,
and a model's own lane holds none of it; a switch of model is recorded; old files migrate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from rtserver.protocol.frames import HistoryMessage, Participant
from rtserver.store.base import Store
from rtserver.store.sqlite import MIGRATIONS, SqliteStore
from tests.stores import StoreOpener


def _user(n: int) -> HistoryMessage:
    return HistoryMessage(
        id=f"u{n}",
        role="user",
        text=f"question {n}",
        status="complete",
        ts=1_000 + n,
        author=Participant(id="p_ann", name="ann"),
    )


def _reply(
    n: int, model: str, to: HistoryMessage, routed_from: str | None = None
) -> HistoryMessage:
    return HistoryMessage(
        id=f"r{n}-{routed_from or model}",
        role="assistant",
        text="",
        status="streaming",
        ts=to.ts,
        model=model,
        reply_to=to.id,
        stream=f"s{n}-{routed_from or model}",
        routed_from=routed_from,
    )


async def _finish(store: Store, reply: HistoryMessage, text: str) -> None:
    await store.finish_reply(
        reply.id, text=text, status="complete", usage=None, tool_calls=(), error=None
    )


async def test_a_routers_lane_is_what_it_answered_whichever_model_did(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    first, second = _user(1), _user(2)
    routed_fast = _reply(1, "fast", first, routed_from="auto")
    own_fast = _reply(1, "fast", first)
    assert await store.start_turn("r", first, "p1", [routed_fast, own_fast])
    await _finish(store, routed_fast, "auto, by fast")
    await _finish(store, own_fast, "fast itself")
    routed_coder = _reply(2, "coder", second, routed_from="auto")
    assert await store.start_turn("r", second, "p2", [routed_coder])
    await _finish(store, routed_coder, "auto, by coder")

    lane = await store.lane("r", "auto", 10)
    assert [(m.text, m.model, m.routed_from) for m in lane] == [
        ("question 1", None, None),
        ("auto, by fast", "fast", "auto"),
        ("question 2", None, None),
        ("auto, by coder", "coder", "auto"),
    ]
    assert [m.text for m in await store.lane("r", "fast", 10)] == [
        "question 1",
        "fast itself",
        "question 2",
    ]
    assert [m.text for m in await store.lane("r", "coder", 10)] == ["question 1", "question 2"]
    await store.close()

    reopened = await open_store()
    stored = await reopened.recent("r", 10)
    assert [m.routed_from for m in stored] == [None, "auto", None, None, "auto"]


async def test_a_switch_of_model_is_recorded_while_the_reply_streams(store: Store) -> None:
    user = _user(1)
    reply = _reply(1, "fast", user, routed_from="auto")
    assert await store.start_turn("r", user, "p1", [reply])
    await store.switch_model(reply.id, "general")
    await _finish(store, reply, "answered by general")
    # Once finished a reply's model is history: a late switch changes nothing.
    await store.switch_model(reply.id, "late")
    [_, stored] = await store.recent("r", 10)
    assert (stored.model, stored.routed_from) == ("general", "auto")


async def test_a_file_of_the_previous_schema_migrates_and_keeps_its_messages(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO rooms VALUES ('r', 1)")
        db.execute(
            "INSERT INTO messages (id, room, role, model, reply_to, text, status, ts)"
            " VALUES ('m1', 'r', 'assistant', 'demo', 'u0', 'old reply', 'complete', 5)"
        )
    store = await SqliteStore.open(path)
    try:
        [old] = await store.recent("r", 10)
        assert (old.text, old.model, old.routed_from) == ("old reply", "demo", None)
        assert msgspec.json.encode(old).find(b"routed_from") == -1
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
