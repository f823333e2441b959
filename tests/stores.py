"""Both stores for one suite: a real SQLite file, or a fresh schema on a real PostgreSQL.

A test that takes ``store`` or ``open_store`` runs once per store. PostgreSQL is the server at
``RTSERVER_TEST_POSTGRES`` (default 127.0.0.1:5432, database ``test``, trust auth); each test
gets a schema of its own, dropped afterwards. When that server does not answer, the PostgreSQL
half fails, saying so: it is never skipped (``.ci/run`` starts the server).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final, cast

import asyncpg
import pytest

from rtserver.store.base import Store
from rtserver.store.postgres import PostgresStore
from rtserver.store.sqlite import SqliteStore

POSTGRES_URL: Final = os.environ.get("RTSERVER_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
#: Seconds to wait for the test server to answer before failing the test.
CONNECT_TIMEOUT_S: Final = 10.0

StoreOpener = Callable[[], Awaitable[Store]]


async def admin_connection() -> asyncpg.Connection:
    """A connection to the test server; fails the test, naming the fix, when it is down."""
    try:
        return await asyncpg.connect(POSTGRES_URL, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = str(exc) or exc.__class__.__name__
    pytest.fail(
        f"PostgreSQL does not answer at {POSTGRES_URL} ({reason}): these tests need it; "
        "start it (`pg_ctlcluster 15 main start`, as .ci/run does) or point "
        "RTSERVER_TEST_POSTGRES at one",
        pytrace=False,
    )


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A ``--db`` URL whose ``search_path`` is a new, empty schema, dropped at the end."""
    schema = f"rt_test_{uuid.uuid4().hex[:12]}"
    admin = await admin_connection()
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield f"{POSTGRES_URL}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def store_db(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The ``--db`` value of a fresh database of ``store_kind``."""
    if store_kind == "sqlite":
        return str(tmp_path / "store.db")
    return cast(str, request.getfixturevalue("postgres_url"))


@pytest.fixture
async def open_store(store_db: str) -> AsyncIterator[StoreOpener]:
    """Opens ``store_db`` (again, after a close, to see what survived); closes what is open."""
    opened: list[Store] = []

    async def open_again() -> Store:
        store: Store
        if store_db.startswith("postgresql://"):
            store = await PostgresStore.open(store_db)
        else:
            store = await SqliteStore.open(store_db)
        opened.append(store)
        return store

    yield open_again
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: StoreOpener) -> Store:
    return await open_store()


class FullDisk:
    """Makes a store's long writes fail as a full disk does: SQLite's own SQLITE_FULL, or
    PostgreSQL's ``disk_full`` (53100) raised by the server, from a trigger, for long texts."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def fill(self, store: Store) -> None:
        if isinstance(store, SqliteStore):
            db = store._db  # max_page_count is per connection: the store's own
            async with db.execute("PRAGMA page_count") as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await db.execute(f"PRAGMA max_page_count = {int(row[0])}")
            return
        assert isinstance(store, PostgresStore)
        await store._pool.execute(
            "CREATE FUNCTION rt_test_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF length(NEW.text) > 1000 THEN"
            " RAISE EXCEPTION 'could not extend file: No space left on device'"
            " USING ERRCODE = 'disk_full'; END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER rt_test_full BEFORE INSERT OR UPDATE ON messages"
            " FOR EACH ROW EXECUTE FUNCTION rt_test_full()"
        )

    async def free(self, store: Store) -> None:
        if isinstance(store, SqliteStore):
            await store._db.execute("PRAGMA max_page_count = 1073741823")
            return
        assert isinstance(store, PostgresStore)
        await store._pool.execute("DROP TRIGGER rt_test_full ON messages")


@pytest.fixture
def full_disk(store_kind: str) -> FullDisk:
    return FullDisk(store_kind)
