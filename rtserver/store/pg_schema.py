"""The PostgreSQL schema, versioned, and moved forward at open under an advisory lock.

``rtserver_migrations`` holds one row per applied version. Every node migrates at open, in one
transaction that first takes a transaction-level advisory lock keyed by the current schema: two
nodes starting together take turns, the second finds the work done, and a migration that fails
leaves nothing behind. Tables are created unqualified, in the first schema of ``search_path``.

``messages.owner`` names the node that writes a reply while it streams. One node recovers only
the replies it owns; several nodes (the Redis bus, later) add a lease per node, so that a
survivor may also recover the replies of a node whose lease ran out.
"""

from __future__ import annotations

from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from rtserver.errors import StoreError

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        created_ts BIGINT NOT NULL
    );
    CREATE TABLE messages (
        n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        room TEXT NOT NULL REFERENCES rooms(id),
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        author_id TEXT,
        author_name TEXT,
        model TEXT,
        stream TEXT,
        prompt_id TEXT,
        reply_to TEXT,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        ts BIGINT NOT NULL,
        usage TEXT,
        tool_calls TEXT,
        error TEXT,
        owner TEXT,
        UNIQUE (room, prompt_id)
    );
    CREATE INDEX messages_by_room ON messages (room, n);
    CREATE INDEX messages_by_ts ON messages (ts);
    CREATE INDEX messages_streaming ON messages (owner) WHERE status = 'streaming';
    """,
    # Issue 16: an assistant message's thinking text, kept apart from its answer.
    """
    ALTER TABLE messages ADD COLUMN reasoning TEXT;
    """,
    # Issue 18: the router whose lane a reply is in (``model`` is the model that answered).
    """
    ALTER TABLE messages ADD COLUMN routed_from TEXT;
    """,
    # The room's queue and regenerate (issue 16): prompts stored while they wait, with what
    # they ask for; prompts that never ran; the reply a regenerated one supersedes.
    """
    ALTER TABLE messages ADD COLUMN queued BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE messages ADD COLUMN withdrawn BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE messages ADD COLUMN request TEXT;
    ALTER TABLE messages ADD COLUMN replaces TEXT;
    CREATE INDEX messages_queued ON messages (room, n) WHERE queued;
    CREATE INDEX messages_by_reply ON messages (reply_to) WHERE reply_to IS NOT NULL;
    """,
)

#: First key of the advisory lock that serialises migrations ("rt" in ASCII); the second is
#: the schema's hash, so that schemas of one database migrate independently.
LOCK_CLASS: Final = 0x7274


async def migrate(conn: asyncpg.Connection | PoolConnectionProxy) -> int:
    """Apply the migrations this database lacks; return its schema version.

    Raises StoreError when the database is newer than this rtserver.
    """
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))",
            LOCK_CLASS,
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS rtserver_migrations ("
            " version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)"
        )
        version = int(
            await conn.fetchval("SELECT coalesce(max(version), 0) FROM rtserver_migrations")
        )
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database schema {version} is newer than this rtserver knows ({len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)
            await conn.execute(
                "INSERT INTO rtserver_migrations (version, applied_ms)"
                " VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                number,
            )
    return len(MIGRATIONS)
