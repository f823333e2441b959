"""The store's side of the room's queue and of regenerate, run against SQLite and PostgreSQL:
queued prompts kept with what they ask for, started or withdrawn exactly once, and lanes that
send a model its newest reply to each prompt that ran."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from rtserver.errors import PeerError
from rtserver.protocol.frames import HistoryMessage, Params, Participant
from rtserver.store import pg_schema
from rtserver.store.base import PromptRequest, Store
from rtserver.store.postgres import PostgresStore
from rtserver.store.sqlite import MIGRATIONS, SqliteStore
from tests.stores import FullDisk, StoreOpener, admin_connection

ANN = Participant(id="p_ann", name="ann")
ASK = PromptRequest(models=["a", "b"], params=Params(temperature=0.5))


def _user(n: int, text: str = "") -> HistoryMessage:
    return HistoryMessage(
        id=f"u{n}", role="user", text=text or f"question {n}", status="complete", ts=n, author=ANN
    )


def _reply(tag: str, model: str, to: str, *, replaces: str | None = None) -> HistoryMessage:
    return HistoryMessage(
        id=f"r{tag}-{model}",
        role="assistant",
        text="",
        status="streaming",
        ts=1,
        model=model,
        reply_to=to,
        stream=f"s{tag}-{model}",
        replaces=replaces,
    )


async def _done(store: Store, reply: HistoryMessage, text: str, status: str = "complete") -> None:
    await store.finish_reply(
        reply.id,
        text=text,
        status=status,  # type: ignore[arg-type]
        usage=None,
        tool_calls=(),
        error=None,
    )


async def test_a_queued_prompt_is_stored_with_its_request_and_listed_in_order(
    store: Store,
) -> None:
    assert await store.enqueue("r", _user(1), "p1", ASK)
    assert await store.enqueue("r", _user(2), "p2", PromptRequest(models=["a"]))
    assert not await store.enqueue("r", _user(3), "p1", ASK), "a known prompt id stores nothing"
    assert await store.has_prompt("r", "p2")
    queued = await store.queued("r")
    assert [(q.message.id, q.message.queued, q.request) for q in queued] == [
        ("u1", True, ASK),
        ("u2", True, PromptRequest(models=["a"])),
    ]
    assert await store.queued("elsewhere") == []
    assert [m.queued for m in await store.recent("r", 10)] == [True, True]


async def test_starting_a_queued_prompt_moves_it_after_the_replies_before_it(
    store: Store,
) -> None:
    first = _user(1)
    running = _reply("1", "a", "u1")
    assert await store.start_turn("r", first, "p1", [running])
    assert await store.enqueue("r", _user(2), "p2", ASK)
    await _done(store, running, "one")
    assert await store.start_queued("r", "u2", [_reply("2", "a", "u2")])
    assert [m.id for m in await store.recent("r", 10)] == ["u1", "r1-a", "u2", "r2-a"]
    assert not (await store.recent("r", 10))[2].queued
    assert await store.queued("r") == []
    assert not await store.start_queued("r", "u2", []), "a prompt starts once"
    assert [m.id for m in await store.recent("r", 10)] == ["u1", "r1-a", "u2", "r2-a"]


async def test_withdrawn_prompts_never_start_and_are_withdrawn_once(store: Store) -> None:
    for n in (1, 2, 3):
        assert await store.enqueue("r", _user(n), f"p{n}", ASK)
    assert await store.withdraw("r", ["u3", "u1", "nope"]) == ["u3", "u1"]
    assert await store.withdraw("r", ["u1"]) == []
    assert await store.withdraw("other", ["u2"]) == [], "only the room's own messages"
    assert not await store.start_queued("r", "u1", [_reply("1", "a", "u1")])
    assert [q.message.id for q in await store.queued("r")] == ["u2"]
    stored = {m.id: m for m in await store.recent("r", 10)}
    assert (stored["u1"].withdrawn, stored["u1"].queued) == (True, False)
    assert (stored["u2"].withdrawn, stored["u2"].queued) == (False, True)
    assert "r1-a" not in stored


async def test_the_lane_skips_prompts_that_did_not_run(store: Store) -> None:
    first = _reply("1", "a", "u1")
    assert await store.start_turn("r", _user(1), "p1", [first])
    await _done(store, first, "one")
    assert await store.enqueue("r", _user(2), "p2", ASK)
    assert await store.enqueue("r", _user(3), "p3", ASK)
    await store.withdraw("r", ["u2"])
    assert [m.id for m in await store.lane("r", "a", 10)] == ["u1", "r1-a"]
    assert await store.start_queued("r", "u3", [_reply("3", "a", "u3")])
    assert [m.id for m in await store.lane("r", "a", 10)] == ["u1", "r1-a", "u3"]


async def test_a_lane_sends_the_newest_reply_in_its_place(store: Store) -> None:
    old = _reply("1", "a", "u1")
    other = _reply("1", "b", "u1")
    assert await store.start_turn("r", _user(1), "p1", [old, other])
    await _done(store, old, "first try")
    await _done(store, other, "b's")
    second = _reply("2", "a", "u2")
    assert await store.start_turn("r", _user(2), "p2", [second])
    await _done(store, second, "two")
    again = _reply("1x", "a", "u1", replaces=old.id)
    await store.add_replies("r", [again])
    # While the new reply streams, the lane still holds the old one.
    assert [m.id for m in await store.lane("r", "a", 10)] == ["u1", "r1-a", "u2", "r2-a"]
    await _done(store, again, "second try")
    lane = await store.lane("r", "a", 10)
    assert [(m.id, m.text) for m in lane] == [
        ("u1", "question 1"),
        ("r1x-a", "second try"),
        ("u2", "question 2"),
        ("r2-a", "two"),
    ]
    assert [m.id for m in await store.lane("r", "b", 10)] == ["u1", "r1-b", "u2"]
    assert (await store.message("r", "r1x-a")) == (await store.newest_reply("r", "u1", "a"))
    assert (await store.newest_reply("r", "u1", "a")).replaces == "r1-a"  # type: ignore[union-attr]
    assert await store.newest_reply("r", "u1", "c") is None
    assert await store.message("r", "nope") is None
    assert await store.message("elsewhere", "u1") is None


async def test_a_failed_regenerate_with_no_text_leaves_the_earlier_reply(store: Store) -> None:
    old = _reply("1", "a", "u1")
    assert await store.start_turn("r", _user(1), "p1", [old])
    await _done(store, old, "kept", "cancelled")
    again = _reply("1x", "a", "u1", replaces=old.id)
    await store.add_replies("r", [again])
    await _done(store, again, "", "error")
    assert [m.text for m in await store.lane("r", "a", 10)] == ["question 1", "kept"]


async def test_a_lane_up_to_a_prompt_ends_before_its_replies(store: Store) -> None:
    one = _reply("1", "a", "u1")
    assert await store.start_turn("r", _user(1), "p1", [one])
    await _done(store, one, "one")
    two = _reply("2", "a", "u2")
    assert await store.start_turn("r", _user(2), "p2", [two])
    await _done(store, two, "two")
    assert await store.start_turn("r", _user(3), "p3", [])
    assert [m.id for m in await store.lane("r", "a", 10, upto="u2")] == ["u1", "r1-a", "u2"]
    assert [m.id for m in await store.lane("r", "a", 2, upto="u2")] == ["r1-a", "u2"]
    with pytest.raises(PeerError) as refused:
        await store.lane("r", "a", 10, upto="nope")
    assert refused.value.code == "not_found"


async def test_retention_keeps_queued_prompts(store: Store) -> None:
    assert await store.enqueue("r", _user(1), "p1", ASK)
    assert await store.start_turn("r", _user(2), "p2", [])
    assert await store.delete_before(10**12) == 1
    assert [q.message.id for q in await store.queued("r")] == ["u1"]


async def test_hostile_ids_and_text_in_the_queue_come_back_exactly(store: Store) -> None:
    hostile = "a\x00b \ufdd0 '; DROP TABLE messages;-- $1"
    user = HistoryMessage(
        id=hostile, role="user", text=hostile, status="complete", ts=1, author=ANN
    )
    assert await store.enqueue("r\x00", user, hostile, PromptRequest(models=[hostile]))
    [queued] = await store.queued("r\x00")
    assert (queued.message.id, queued.message.text, queued.request.models) == (
        hostile,
        hostile,
        [hostile],
    )
    assert await store.withdraw("r\x00", [hostile]) == [hostile]


async def test_a_queued_prompt_on_a_full_disk_is_refused_busy_and_not_stored(
    open_store: StoreOpener, full_disk: FullDisk
) -> None:
    store = await open_store()
    await full_disk.fill(store)
    try:
        with pytest.raises(PeerError) as refused:
            await store.enqueue("r", _user(1, "x" * 50_000), "p1", ASK)
    finally:
        await full_disk.free(store)
    assert refused.value.code == "busy"
    assert await store.queued("r") == []
    assert await store.enqueue("r", _user(1), "p1", ASK)


async def test_queued_prompts_survive_a_reopen(open_store: StoreOpener) -> None:
    store = await open_store()
    assert await store.enqueue("r", _user(1), "p1", ASK)
    await store.close()
    again = await open_store()
    assert [(q.message.id, q.request) for q in await again.queued("r")] == [("u1", ASK)]


async def test_an_sqlite_file_of_the_first_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(f"BEGIN; {MIGRATIONS[0]} PRAGMA user_version = 1; COMMIT;")
    db.execute("INSERT INTO rooms VALUES ('r', 1)")
    db.execute(
        "INSERT INTO messages (id, room, role, prompt_id, text, status, ts)"
        " VALUES ('u1', 'r', 'user', 'p1', 'old', 'complete', 1)"
    )
    db.commit()
    db.close()
    store = await SqliteStore.open(path)
    try:
        [old] = await store.recent("r", 10)
        assert (old.text, old.queued, old.withdrawn, old.replaces) == ("old", False, False, None)
        assert [m.id for m in await store.lane("r", "a", 10)] == ["u1"]
        assert await store.enqueue("r", _user(2), "p2", ASK)
    finally:
        await store.close()


async def test_a_postgres_database_of_the_first_schema_is_migrated(postgres_url: str) -> None:
    admin = await admin_connection()
    schema = postgres_url.rsplit("search_path=", 1)[1]
    try:
        await admin.execute(f"SET search_path = {schema}")
        await admin.execute(
            "CREATE TABLE rtserver_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT)"
        )
        await admin.execute(pg_schema.MIGRATIONS[0])
        await admin.execute("INSERT INTO rtserver_migrations VALUES (1, 0)")
        await admin.execute("INSERT INTO rooms VALUES ('r', 1)")
        await admin.execute(
            "INSERT INTO messages (id, room, role, prompt_id, text, status, ts)"
            " VALUES ('u1', 'r', 'user', 'p1', 'old', 'complete', 1)"
        )
    finally:
        await admin.close()
    store = await PostgresStore.open(postgres_url)
    try:
        [old] = await store.recent("r", 10)
        assert (old.text, old.queued, old.withdrawn, old.replaces) == ("old", False, False, None)
        assert await store.enqueue("r", _user(2), "p2", ASK)
    finally:
        await store.close()
    check = await asyncpg.connect(postgres_url)
    try:
        assert await check.fetchval("SELECT max(version) FROM rtserver_migrations") == len(
            pg_schema.MIGRATIONS
        )
    finally:
        await check.close()
