"""The embedded default store: one SQLite file through aiosqlite.

WAL journal with ``synchronous=NORMAL``: a commit survives the process being killed, which is
the crash the delivery guarantees speak of. The schema is versioned with ``user_version`` and
moved forward by the migrations below, in order.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite
import msgspec

from rtserver.errors import PeerError, StoreError
from rtserver.protocol.frames import (
    ErrorInfo,
    HistoryMessage,
    MessageStatus,
    Participant,
    ToolCallRecord,
    Usage,
)
from rtserver.store.base import PromptRequest, QueuedPrompt

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        created_ts INTEGER NOT NULL
    );
    CREATE TABLE messages (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
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
        ts INTEGER NOT NULL,
        usage TEXT,
        tool_calls TEXT,
        error TEXT,
        UNIQUE (room, prompt_id)
    );
    CREATE INDEX messages_by_room ON messages (room, n);
    CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';
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
    ALTER TABLE messages ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN request TEXT;
    ALTER TABLE messages ADD COLUMN replaces TEXT;
    CREATE INDEX messages_queued ON messages (room, n) WHERE queued = 1;
    CREATE INDEX messages_by_reply ON messages (reply_to) WHERE reply_to IS NOT NULL;
    """,
)

log = logging.getLogger(__name__)
#: Seconds before a failed final write is first tried again, and the longest wait between tries.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
#: Messages deleted per transaction by retention, so that writers never wait long.
DELETE_BATCH = 500
#: Seconds a client is told to wait when its prompt could not be stored for want of space.
FULL_RETRY_S = 60.0

_COLUMNS = (
    "id, role, author_id, author_name, model, stream, reply_to, text, status, ts, "
    "usage, tool_calls, error, prompt_id, reasoning, routed_from, queued, withdrawn, replaces"
)
#: The lane's messages: prompts that ran, and the model's newest finished reply to each.
_LANE_MEMBER: Final = (
    "(m.role = 'user' AND m.queued = 0 AND m.withdrawn = 0)"
    " OR (coalesce(m.routed_from, m.model) = ?"
    " AND m.status != 'streaming' AND m.text != ''"
    " AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.reply_to = m.reply_to"
    " AND coalesce(r.routed_from, r.model) = coalesce(m.routed_from, m.model)"
    " AND r.n > m.n AND r.status != 'streaming' AND r.text != ''))"
)
_LANE_COLUMNS: Final = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
_T = TypeVar("_T")
_request_decoder = msgspec.json.Decoder(PromptRequest)
_usage_decoder = msgspec.json.Decoder(Usage)
_calls_decoder = msgspec.json.Decoder(list[ToolCallRecord])
_error_decoder = msgspec.json.Decoder(ErrorInfo)
_encode = msgspec.json.Encoder().encode


def _json_or_none(value: object) -> str | None:
    if value is None or value == []:
        return None
    return _encode(value).decode()


def _row_to_message(row: Sequence[Any]) -> HistoryMessage:
    (mid, role, author_id, author_name, model, stream, reply_to, text, status, ts) = row[:10]
    usage, calls, error, prompt_id, reasoning, routed_from, queued, withdrawn, replaces = row[10:19]
    return HistoryMessage(
        id=mid,
        role=role,
        author=Participant(id=author_id, name=author_name) if author_id else None,
        model=model,
        stream=stream,
        reply_to=reply_to,
        text=text,
        status=status,
        ts=ts,
        usage=_usage_decoder.decode(usage) if usage else None,
        tool_calls=_calls_decoder.decode(calls) if calls else None,
        error=_error_decoder.decode(error) if error else None,
        prompt_id=prompt_id,
        reasoning=reasoning or None,
        routed_from=routed_from,
        queued=bool(queued),
        withdrawn=bool(withdrawn),
        replaces=replaces,
    )


class SqliteStore:
    """Rooms and messages in one SQLite database file."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # One connection serves every room: without this, one room's commit could commit
        # another room's half-written turn, and one room's rollback undo another's write.
        self._writing = asyncio.Lock()
        # Final writes of replies that failed (a full disk, say), by message id, tried again
        # until they succeed: else a reply that ended stays `streaming` while the server runs.
        self._unsaved: dict[str, tuple[str, Sequence[object]]] = {}
        self._retrying: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) and migrate the database at ``path``.

        Raises StoreError, with one line that says why, when the file cannot be opened,
        migrated or written (a read-only file or folder fails here, not at the first prompt).
        """
        try:
            # Probed first with plain sqlite3: when aiosqlite fails to connect, its thread
            # reports the failure later, to an event loop that may be closed by then.
            await asyncio.to_thread(_probe, path)
            db = await aiosqlite.connect(path)
        except sqlite3.Error as exc:
            raise StoreError(_cannot_use(path, exc)) from None
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await _migrate(db)
            await _check_writable(db)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(_cannot_use(path, exc)) from None
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
        await self._save_unsaved()
        for message_id in self._unsaved:
            log.error(
                "reply %s could not be finalised; the next start marks it interrupted", message_id
            )
        # Logged once: closing again (a fixture's safety net, say) has nothing left to try.
        self._unsaved.clear()
        await self._db.close()

    async def ping(self) -> None:
        async with self._db.execute("SELECT 1") as cursor:
            await cursor.fetchone()

    async def recover(self) -> int:
        try:
            async with self._writing:
                cursor = await self._db.execute(
                    "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'"
                )
                await self._db.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot recover replies left streaming: {_reason(exc)}") from None
        return cursor.rowcount

    async def start_turn(
        self, room: str, user: HistoryMessage, prompt_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        # Shielded: a cancelled caller must not leave half a turn in an open transaction.
        return await asyncio.shield(self._start_turn(room, user, prompt_id, replies))

    async def _start_turn(
        self, room: str, user: HistoryMessage, prompt_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        async def insert() -> None:
            await self._insert_user(room, user, prompt_id, None)
            await self._insert_replies(room, replies)

        return await self._new_prompt(room, prompt_id, insert)

    async def _new_prompt(
        self, room: str, prompt_id: str, insert: Callable[[], Awaitable[None]]
    ) -> bool:
        """Run ``insert`` in a transaction; False, storing nothing, if ``prompt_id`` is known."""
        try:
            await self._transaction(room, insert)
        except aiosqlite.IntegrityError:
            if await self.has_prompt(room, prompt_id):
                return False
            raise
        return True

    async def _transaction(self, room: str, work: Callable[[], Awaitable[_T]]) -> _T:
        """``work`` in one transaction, committed, or rolled back when it raises.

        A full disk becomes ``busy`` for the client: it can try again once there is space.
        """
        async with self._writing:
            try:
                result = await work()
            except sqlite3.OperationalError as exc:
                await self._db.rollback()
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                    raise
                log.error("the database is full: a prompt in room %s was not stored", room)
                raise PeerError(
                    "busy",
                    "the server has no room to store messages right now: try again later",
                    retry_after=FULL_RETRY_S,
                ) from None
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()
        return result

    async def _insert_user(
        self, room: str, user: HistoryMessage, prompt_id: str, request: PromptRequest | None
    ) -> None:
        db = self._db
        await db.execute(
            "INSERT OR IGNORE INTO rooms (id, created_ts) VALUES (?, ?)", (room, user.ts)
        )
        await db.execute(
            "INSERT INTO messages (id, room, role, author_id, author_name, prompt_id, text,"
            " status, ts, queued, request) VALUES (?, ?, 'user', ?, ?, ?, ?, 'complete', ?, ?, ?)",
            (
                user.id,
                room,
                _author_id(user),
                _author_name(user),
                prompt_id,
                user.text,
                user.ts,
                int(request is not None),
                _json_or_none(request),
            ),
        )

    async def _insert_replies(self, room: str, replies: Sequence[HistoryMessage]) -> None:
        await self._db.executemany(
            "INSERT INTO messages (id, room, role, model, stream, reply_to, text, status, ts,"
            " replaces, routed_from) VALUES (?, ?, 'assistant', ?, ?, ?, '', 'streaming', ?, ?, ?)",
            [
                (r.id, room, r.model, r.stream, r.reply_to, r.ts, r.replaces, r.routed_from)
                for r in replies
            ],
        )

    # --- the room's queue and regenerate ---------------------------------------------------

    async def enqueue(
        self, room: str, user: HistoryMessage, prompt_id: str, request: PromptRequest
    ) -> bool:
        async def insert() -> None:
            await self._insert_user(room, user, prompt_id, request)

        return await asyncio.shield(self._new_prompt(room, prompt_id, insert))

    async def start_queued(
        self, room: str, message_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        async def start() -> bool:
            # Moved to the end of the room's order: its turn runs after every reply before it.
            cursor = await self._db.execute(
                "UPDATE messages SET queued = 0, request = NULL,"
                " n = (SELECT max(n) FROM messages) + 1"
                " WHERE room = ? AND id = ? AND queued = 1",
                (room, message_id),
            )
            if cursor.rowcount == 0:
                return False
            await self._insert_replies(room, replies)
            return True

        return await asyncio.shield(self._transaction(room, start))

    async def withdraw(self, room: str, message_ids: Sequence[str]) -> list[str]:
        async def mark() -> list[str]:
            done = []
            for message_id in message_ids:
                cursor = await self._db.execute(
                    "UPDATE messages SET queued = 0, withdrawn = 1, request = NULL"
                    " WHERE room = ? AND id = ? AND queued = 1",
                    (room, message_id),
                )
                if cursor.rowcount:
                    done.append(message_id)
            return done

        return await asyncio.shield(self._transaction(room, mark))

    async def queued(self, room: str) -> list[QueuedPrompt]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_COLUMNS}, request FROM messages WHERE room = ? AND queued = 1 ORDER BY n",
            (room,),
        )
        return [
            QueuedPrompt(message=_row_to_message(r), request=_request_decoder.decode(r[-1]))
            for r in rows
        ]

    async def add_replies(self, room: str, replies: Sequence[HistoryMessage]) -> None:
        async def insert() -> None:
            await self._insert_replies(room, replies)

        await asyncio.shield(self._transaction(room, insert))

    async def message(self, room: str, message_id: str) -> HistoryMessage | None:
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id = ?", (room, message_id)
        ) as cursor:
            row = await cursor.fetchone()
        return _row_to_message(row) if row is not None else None

    async def newest_reply(self, room: str, reply_to: str, model: str) -> HistoryMessage | None:
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND reply_to = ? AND model = ?"
            " ORDER BY n DESC LIMIT 1",
            (room, reply_to, model),
        ) as cursor:
            row = await cursor.fetchone()
        return _row_to_message(row) if row is not None else None

    async def has_prompt(self, room: str, prompt_id: str) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM messages WHERE room = ? AND prompt_id = ?", (room, prompt_id)
        ) as cursor:
            return await cursor.fetchone() is not None

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        """Save a streaming reply's text so far, and its reasoning when one is given."""
        if reasoning is None:
            await self._write(
                "UPDATE messages SET text = ? WHERE id = ? AND status = 'streaming'",
                (text, message_id),
            )
            return
        await self._write(
            "UPDATE messages SET text = ?, reasoning = ? WHERE id = ? AND status = 'streaming'",
            (text, reasoning or None, message_id),
        )

    async def switch_model(self, message_id: str, model: str) -> None:
        await self._write(
            "UPDATE messages SET model = ? WHERE id = ? AND status = 'streaming'",
            (model, message_id),
        )

    async def finish_reply(
        self,
        message_id: str,
        *,
        text: str,
        status: MessageStatus,
        usage: Usage | None,
        tool_calls: Sequence[ToolCallRecord],
        error: ErrorInfo | None,
        reasoning: str = "",
    ) -> None:
        sql = (
            "UPDATE messages SET text = ?, status = ?, usage = ?, tool_calls = ?, error = ?,"
            " reasoning = ? WHERE id = ?"
        )
        parameters = (
            text,
            status,
            _json_or_none(usage),
            _json_or_none(list(tool_calls)),
            _json_or_none(error),
            reasoning or None,
            message_id,
        )
        try:
            await self._write(sql, parameters)
        except sqlite3.Error:
            self._unsaved[message_id] = (sql, parameters)
            if self._retrying is None or self._retrying.done():
                self._retrying = asyncio.create_task(self._retry_unsaved())
            raise

    async def _retry_unsaved(self) -> None:
        """Try the failed final writes again, waiting longer each time, until all succeed."""
        delay = RETRY_FIRST_S
        while self._unsaved:
            await asyncio.sleep(delay)
            await self._save_unsaved()
            delay = min(RETRY_MAX_S, delay * 2)

    async def _save_unsaved(self) -> None:
        for message_id, (sql, parameters) in list(self._unsaved.items()):
            try:
                await self._write(sql, parameters)
            except sqlite3.Error as exc:
                log.warning("reply %s is still not finalised: %s", message_id, _reason(exc))
                return
            del self._unsaved[message_id]
            log.info("reply %s finalised after an earlier failure", message_id)

    async def _write(self, sql: str, parameters: Sequence[object]) -> int:
        """One statement in its own transaction, committed before returning; rows changed."""
        return await asyncio.shield(self._write_now(sql, parameters))

    async def _write_now(self, sql: str, parameters: Sequence[object]) -> int:
        async with self._writing:
            try:
                cursor = await self._db.execute(sql, parameters)
            except Exception:
                await self._db.rollback()
                raise
            await self._db.commit()
        return cursor.rowcount

    async def delete_before(self, ts_ms: int) -> int:
        deleted = 0
        while True:
            batch = await self._write(
                "DELETE FROM messages WHERE n IN (SELECT n FROM messages"
                " WHERE ts < ? AND status != 'streaming' AND queued = 0 LIMIT ?)",
                (ts_ms, DELETE_BATCH),
            )
            deleted += batch
            if batch < DELETE_BATCH:
                break
        if deleted:
            await self._write(
                "DELETE FROM rooms WHERE NOT EXISTS"
                " (SELECT 1 FROM messages WHERE messages.room = rooms.id)",
                (),
            )
        return deleted

    async def recent(self, room: str, limit: int) -> list[HistoryMessage]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? ORDER BY n DESC LIMIT ?",
            (room, limit),
        )
        return [_row_to_message(r) for r in reversed(list(rows))]

    async def page(
        self, room: str, *, limit: int, before: str | None
    ) -> tuple[list[HistoryMessage], str | None]:
        bound = await self._position(room, before) if before else None
        rows = list(
            await self._db.execute_fetchall(
                f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND n < ? ORDER BY n DESC LIMIT ?",
                (room, bound if bound is not None else 2**62, limit + 1),
            )
        )
        more = len(rows) > limit
        messages = [_row_to_message(r) for r in reversed(rows[:limit])]
        return messages, (messages[0].id if more and messages else None)

    async def lane(
        self, room: str, model: str, limit: int, *, upto: str | None = None
    ) -> list[HistoryMessage]:
        # A reply stands with the user message it answers (a regenerated one was stored later);
        # `upto` ends the lane at that user message, before any reply to it.
        bound = await self._position(room, upto) if upto else 2**62
        rows = await self._db.execute_fetchall(
            f"SELECT {_LANE_COLUMNS} FROM messages m LEFT JOIN messages u ON u.id = m.reply_to"
            f" WHERE m.room = ? AND ({_LANE_MEMBER})"
            " AND (coalesce(u.n, m.n) < ? OR m.id = ?)"
            " ORDER BY coalesce(u.n, m.n) DESC, m.n DESC LIMIT ?",
            (room, model, bound, upto or "", limit),
        )
        return [_row_to_message(r) for r in reversed(list(rows))]

    async def _position(self, room: str, message_id: str) -> int:
        async with self._db.execute(
            "SELECT n FROM messages WHERE room = ? AND id = ?", (room, message_id)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise PeerError("not_found", f"no message {message_id[:128]!r} in this room")
        return int(row[0])


def _reason(exc: sqlite3.Error) -> str:
    """SQLite's own words for a failure, for the operator's log and terminal (never a peer)."""
    text = str(exc) or exc.__class__.__name__
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY or "readonly" in text:
        text += " (rtserver must be able to write the file and its folder)"
    return text


def _cannot_use(path: str | Path, exc: sqlite3.Error) -> str:
    return f"cannot use database {path}: {_reason(exc)}"


def _probe(path: str | Path) -> None:
    sqlite3.connect(path).close()


async def _check_writable(db: aiosqlite.Connection) -> None:
    """Fail now if the database cannot be written (SQLite opens a read-only file quietly)."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(f"PRAGMA user_version = {int(row[0]) if row else 0}")
    finally:
        await db.rollback()


def _author_id(message: HistoryMessage) -> str | None:
    return message.author.id if message.author else None


def _author_name(message: HistoryMessage) -> str | None:
    return message.author.name if message.author else None


async def _migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise StoreError(f"database schema {version} is newer than this rtserver knows")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")
