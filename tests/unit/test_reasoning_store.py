"""Reasoning in both stores: kept apart from the answer, exactly, and added to old databases.

Runs against a real SQLite file and a real PostgreSQL schema (tests/stores.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from rtserver.protocol.frames import HistoryMessage, Participant
from rtserver.store import pg_schema, sqlite
from rtserver.store.base import Store
from rtserver.store.postgres import PostgresStore
from rtserver.store.sqlite import SqliteStore
from tests.stores import StoreOpener

#: NUL (which PostgreSQL text cannot hold), the escape's own character, and odd Unicode.
HOSTILE = "think\x00 \ufdd0 \ufdd00 \U0010ffff \u202e e\u0301 '; DROP TABLE messages;-- $1"

ANN = Participant(id="p_ann", name="ann")


def _turn(n: int) -> tuple[HistoryMessage, HistoryMessage]:
    user = HistoryMessage(
        id=f"u{n}", role="user", text=f"question {n}", status="complete", ts=n, author=ANN
    )
    reply = HistoryMessage(
        id=f"r{n}",
        role="assistant",
        text="",
        status="streaming",
        ts=n,
        model="m",
        reply_to=user.id,
        stream=f"s{n}",
    )
    return user, reply


async def _start(store: Store, n: int) -> HistoryMessage:
    user, reply = _turn(n)
    assert await store.start_turn("room", user, f"p{n}", [reply])
    return reply


async def test_reasoning_is_stored_apart_from_the_text_exactly_and_survives_a_reopen(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    assert isinstance(store, SqliteStore | PostgresStore)
    reply = await _start(store, 1)
    await store.checkpoint(reply.id, "", reasoning="half")
    assert (await store.recent("room", 5))[1].reasoning == "half"
    await store.finish_reply(
        reply.id,
        text="the answer",
        status="complete",
        usage=None,
        tool_calls=(),
        error=None,
        reasoning=HOSTILE * 100,
    )
    await store.close()

    reopened = await open_store()
    stored = (await reopened.recent("room", 5))[1]
    assert (stored.text, stored.reasoning) == ("the answer", HOSTILE * 100)
    page, _ = await reopened.page("room", limit=5, before=None)
    assert page[1].reasoning == HOSTILE * 100
    # The user message has none; an empty reasoning is stored as none at all.
    assert page[0].reasoning is None


async def test_a_reply_that_only_thought_is_no_part_of_the_lane(store: Store) -> None:
    assert isinstance(store, SqliteStore | PostgresStore)
    thought_only = await _start(store, 1)
    await store.finish_reply(
        thought_only.id,
        text="",
        status="cancelled",
        usage=None,
        tool_calls=(),
        error=None,
        reasoning="all thinking, no answer",
    )
    answered = await _start(store, 2)
    await store.finish_reply(
        answered.id,
        text="answer",
        status="complete",
        usage=None,
        tool_calls=(),
        error=None,
        reasoning="thinking",
    )
    lane = await store.lane("room", "m", 10)
    assert [m.id for m in lane] == ["u1", "u2", "r2"]


async def test_a_checkpoint_without_reasoning_keeps_the_reasoning_checkpointed(
    store: Store,
) -> None:
    assert isinstance(store, SqliteStore | PostgresStore)
    reply = await _start(store, 1)
    await store.checkpoint(reply.id, "a", reasoning="plan")
    await store.checkpoint(reply.id, "ab")
    assert await store.recover() == 1
    stored = (await store.recent("room", 5))[1]
    # A restart marks it interrupted with the text and the reasoning it had.
    assert (stored.status, stored.text, stored.reasoning) == ("interrupted", "ab", "plan")


def _old_sqlite(path: Path) -> None:
    """A database as rtserver made it before reasoning: schema 1, one finished turn."""
    db = sqlite3.connect(path)
    try:
        db.executescript(f"BEGIN; {sqlite.MIGRATIONS[0]} PRAGMA user_version = 1; COMMIT;")
        db.execute("INSERT INTO rooms VALUES ('room', 1)")
        db.execute(
            "INSERT INTO messages (id, room, role, model, reply_to, text, status, ts)"
            " VALUES ('r0', 'room', 'assistant', 'm', 'u0', 'old answer', 'complete', 1)"
        )
        db.commit()
    finally:
        db.close()


async def test_an_sqlite_database_of_schema_1_gains_reasoning(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_sqlite(path)
    store = await SqliteStore.open(path)
    try:
        [old] = await store.recent("room", 5)
        assert (old.text, old.reasoning) == ("old answer", None)
        reply = await _start(store, 1)
        await store.finish_reply(
            reply.id,
            text="x",
            status="complete",
            usage=None,
            tool_calls=(),
            error=None,
            reasoning="new",
        )
        assert (await store.recent("room", 5))[-1].reasoning == "new"
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(sqlite.MIGRATIONS),)


async def test_a_postgres_database_of_schema_1_gains_reasoning(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(pg_schema.MIGRATIONS[0])
        await conn.execute(
            "CREATE TABLE rtserver_migrations (version INTEGER PRIMARY KEY,"
            " applied_ms BIGINT NOT NULL); INSERT INTO rtserver_migrations VALUES (1, 0);"
            " INSERT INTO rooms VALUES ('room', 1);"
            " INSERT INTO messages (id, room, role, model, reply_to, text, status, ts)"
            " VALUES ('r0', 'room', 'assistant', 'm', 'u0', 'old answer', 'complete', 1)"
        )
    finally:
        await conn.close()
    store = await PostgresStore.open(postgres_url)
    try:
        [old] = await store.recent("room", 5)
        assert (old.text, old.reasoning) == ("old answer", None)
        reply = await _start(store, 1)
        await store.checkpoint(reply.id, "", reasoning=HOSTILE)
        assert (await store.recent("room", 5))[-1].reasoning == HOSTILE
    finally:
        await store.close()
