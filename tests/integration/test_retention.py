"""Retention: ``[store] retain_days`` deletes old messages from every store (SQLite, PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import msgspec
import pytest

from rtserver.config import ConfigFile, StoreSection, build_settings, read_config_file
from rtserver.errors import ConfigError
from rtserver.protocol.frames import HistoryMessage, Participant
from rtserver.store.base import Store
from rtserver.store.retention import DAY_S, Retention
from rtserver.store.sqlite import SqliteStore
from tests.conftest import ServerFactory
from tests.integration.test_crash import poll_until
from tests.support import fast_settings

NOW_S = 1_800_000_000.0
AUTHOR = Participant(id="p_a", name="a")


class Clock:
    """Unix seconds, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _user(n: int, age_days: float) -> HistoryMessage:
    return HistoryMessage(
        id=f"m{n}",
        role="user",
        text=f"message {n}",
        status="complete",
        ts=int((NOW_S - age_days * DAY_S) * 1000),
        author=AUTHOR,
        prompt_id=f"p{n}",
    )


def _reply(n: int, to: HistoryMessage) -> HistoryMessage:
    return HistoryMessage(
        id=f"r{n}",
        role="assistant",
        text="",
        status="streaming",
        ts=to.ts,
        model="demo",
        reply_to=to.id,
        stream=f"s{n}",
    )


async def _ids(store: Store, room: str) -> list[str]:
    return [m.id for m in await store.recent(room, 1000)]


async def test_prune_deletes_what_is_older_than_retain_days_and_nothing_else(
    store: Store,
) -> None:
    ages = {0: 10.0, 1: 7.5, 2: 6.9, 3: 0.0}
    for n, age in ages.items():
        user = _user(n, age)
        reply = _reply(n, user)
        assert await store.start_turn("r", user, user.prompt_id or "", [reply])
        await store.finish_reply(
            reply.id, text="done", status="complete", usage=None, tool_calls=(), error=None
        )
    clock = Clock(NOW_S)
    retention = Retention(store=store, retain_days=7, clock=clock)
    assert await retention.prune() == 4  # m0, r0, m1, r1
    assert await _ids(store, "r") == ["m2", "r2", "m3", "r3"]
    # A day later m2 is past the line too.
    clock.now += DAY_S
    assert await retention.prune() == 2
    assert await _ids(store, "r") == ["m3", "r3"]
    assert await retention.prune() == 0


async def test_a_reply_still_streaming_is_never_deleted(store: Store) -> None:
    user = _user(0, 30.0)
    assert await store.start_turn("r", user, "p0", [_reply(0, user)])
    retention = Retention(store=store, retain_days=1, clock=Clock(NOW_S))
    assert await retention.prune() == 1
    assert await _ids(store, "r") == ["r0"]


async def test_prune_goes_in_batches_through_many_rows(store: Store) -> None:
    for n in range(1_200):
        user = _user(n, 3.0)
        assert await store.start_turn(f"room{n % 3}", user, f"p{n}", [])
    retention = Retention(store=store, retain_days=2, clock=Clock(NOW_S))
    assert await retention.prune() == 1_200
    for room in ("room0", "room1", "room2"):
        assert await _ids(store, room) == []
    # Prompt ids are idempotent only while their message is kept: p0 may be used again.
    assert not await store.has_prompt("room0", "p0")


async def test_the_server_prunes_at_start_when_retain_days_is_set(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    # A message of 40 days ago and one of now, by the real clock this time.
    store = await SqliteStore.open(db_path)
    try:
        for n, age_days in enumerate((40, 0)):
            user = msgspec.structs.replace(
                _user(n, 0), ts=int((time.time() - age_days * DAY_S) * 1000)
            )
            assert await store.start_turn("kept", user, f"p{n}", [])
    finally:
        await store.close()
    server = await start_server(msgspec.structs.replace(fast_settings(db_path), retain_days=30))

    async def only_the_new_one_left() -> bool:
        async with http.get(server.make_url("/v1/rooms/kept/messages")) as response:
            body = await response.json()
        return [m["id"] for m in body["messages"]] == ["m1"]

    await poll_until(only_the_new_one_left, "the old message was not deleted")


def test_retain_days_is_read_from_the_store_section() -> None:
    settings = build_settings(ConfigFile(store=StoreSection(retain_days=14)), env={})
    assert settings.retain_days == 14
    assert build_settings(None, env={}).retain_days == 0


@pytest.mark.parametrize("value", ["-1", "1.5", '"7"', "100001"])
def test_a_bad_retain_days_is_a_config_error_naming_it(tmp_path: Path, value: str) -> None:
    config = tmp_path / "rtserver.toml"
    config.write_text(f"[store]\nretain_days = {value}\n")
    with pytest.raises(ConfigError, match="retain_days"):
        read_config_file(config)
