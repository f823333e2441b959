"""Which store a ``--db`` value names: a ``postgresql://`` URL, or else an SQLite file."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from rtserver.store.base import Store

POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(db: str) -> bool:
    """True when ``db`` is a PostgreSQL URL rather than an SQLite path."""
    return db.startswith(POSTGRES_SCHEMES)


def describe_db(db: str) -> str:
    """``db`` as it may be printed and logged: a URL without its password or query."""
    if not is_postgres_url(db):
        return db
    try:
        parts = urlsplit(db)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return db.split("://", 1)[0] + "://(unreadable URL)"
    user = f"{parts.username}@" if parts.username else ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


async def open_store(db: str) -> Store:
    """Open the store ``db`` names; StoreError, in one line, when it cannot be used."""
    if is_postgres_url(db):
        from rtserver.store.postgres import PostgresStore

        return await PostgresStore.open(db)
    from rtserver.store.sqlite import SqliteStore

    return await SqliteStore.open(db)
