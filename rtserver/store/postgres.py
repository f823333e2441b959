"""The store for several nodes: PostgreSQL through an asyncpg connection pool.

Same contract as the SQLite store (rtserver/store/base.py): every write is its own transaction,
committed before its coroutine returns, and shielded from the caller's cancellation. Failures of
asyncpg and of the network are mapped here, once, to StoreError (the operator's one line), or to
PeerError ``busy`` where a client may simply try again (a full disk, an unreachable server).
Strings pass through rtserver/store/pg_text.py, because PostgreSQL text cannot hold U+0000.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

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
from rtserver.store.pg_schema import migrate
from rtserver.store.pg_text import escape, escape_or_none, unescape, unescape_or_none
from rtserver.store.selection import describe_db

log = logging.getLogger(__name__)
Connection = asyncpg.Connection | PoolConnectionProxy
_T = TypeVar("_T")

#: The owner written on replies while one node serves a database (see pg_schema.py).
DEFAULT_NODE: Final = "default"
#: Seconds before a failed final write is first tried again, and the longest wait between tries.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
#: Messages deleted per transaction by retention, so that writers never wait long.
DELETE_BATCH = 500
#: Seconds a client is told to wait when its prompt could not be stored.
UNAVAILABLE_RETRY_S = 60.0
#: Seconds close() waits for borrowed connections before cutting them.
CLOSE_TIMEOUT_S = 10.0

#: What asyncpg and the network raise; each is mapped by _reason() and _refusal().
DB_ERRORS: Final = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
#: Failures a client can wait out: no space, no connection, a server restarting.
_TRANSIENT: Final = (
    asyncpg.InsufficientResourcesError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    # A connection the server has just closed, used before asyncpg has noticed.
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

_COLUMNS: Final = (
    "id, role, author_id, author_name, model, stream, reply_to, text, status, ts,"
    " usage, tool_calls, error, prompt_id, reasoning, routed_from, queued, withdrawn, replaces"
)
_LANE_COLUMNS: Final = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
#: The lane's messages: prompts that ran, and the model's newest finished reply to each.
_LANE_MEMBER: Final = (
    "(m.role = 'user' AND NOT m.queued AND NOT m.withdrawn)"
    " OR (coalesce(m.routed_from, m.model) = $2"
    " AND m.status <> 'streaming' AND m.text <> ''"
    " AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.reply_to = m.reply_to"
    " AND coalesce(r.routed_from, r.model) = coalesce(m.routed_from, m.model)"
    " AND r.n > m.n AND r.status <> 'streaming' AND r.text <> ''))"
)
_request_decoder = msgspec.json.Decoder(PromptRequest)
_usage_decoder = msgspec.json.Decoder(Usage)
_calls_decoder = msgspec.json.Decoder(list[ToolCallRecord])
_error_decoder = msgspec.json.Decoder(ErrorInfo)
_encode = msgspec.json.Encoder().encode


class PostgresStore:
    """Rooms and messages in a PostgreSQL database; ``node`` owns the replies it starts."""

    def __init__(self, pool: asyncpg.Pool, *, node: str = DEFAULT_NODE) -> None:
        self._pool = pool
        self.node = node
        # Final writes of replies that failed, by message id, tried again until they succeed:
        # else a reply that ended stays `streaming` while the server runs.
        self._unsaved: dict[str, tuple[str, Sequence[object]]] = {}
        self._retrying: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        node: str = DEFAULT_NODE,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout_s: float = 10.0,
        command_timeout_s: float = 30.0,
    ) -> PostgresStore:
        """Connect to ``url`` (``postgresql://user@host:port/db``) and migrate its schema.

        Raises StoreError, with one line that says why and never the password, when the
        server cannot be reached, refuses the login, or the schema cannot be brought up to date.
        """
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_connections,
                max_size=max_connections,
                timeout=connect_timeout_s,
                command_timeout=command_timeout_s,
                server_settings={"application_name": "rtserver"},
            )
        except (*DB_ERRORS, ValueError) as exc:
            raise StoreError(f"cannot use database {describe_db(url)}: {_reason(exc)}") from None
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except DB_ERRORS as exc:
            await pool.close()
            raise StoreError(f"cannot use database {describe_db(url)}: {_reason(exc)}") from None
        except BaseException:
            await pool.close()
            raise
        return cls(pool, node=node)

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
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            self._pool.terminate()

    async def ping(self) -> None:
        await self._fetchval("answer a probe", "SELECT 1")

    async def recover(self) -> int:
        return await self._write(
            "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' AND owner = $1",
            (escape(self.node),),
            what="recover replies left streaming",
        )

    async def start_turn(
        self, room: str, user: HistoryMessage, prompt_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        # Shielded: the turn is committed, or not, whatever happens to the caller.
        return await self._stored(room, self._start_turn(room, user, prompt_id, replies))

    async def _start_turn(
        self, room: str, user: HistoryMessage, prompt_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._insert_user(conn, room, user, prompt_id, None):
                return False
            await self._insert_replies(conn, room, replies)
        return True

    async def _insert_user(
        self,
        conn: Connection,
        room: str,
        user: HistoryMessage,
        prompt_id: str,
        request: PromptRequest | None,
    ) -> bool:
        """Insert a user message (queued, with a ``request``); False if ``prompt_id`` is known."""
        # An update, not "do nothing": it locks the room's row, which retention skips.
        await conn.execute(
            "INSERT INTO rooms (id, created_ts) VALUES ($1, $2)"
            " ON CONFLICT (id) DO UPDATE SET created_ts = rooms.created_ts",
            escape(room),
            user.ts,
        )
        stored = await conn.fetchval(
            "INSERT INTO messages (id, room, role, author_id, author_name, prompt_id, text,"
            " status, ts, queued, request)"
            " VALUES ($1, $2, 'user', $3, $4, $5, $6, 'complete', $7, $8, $9)"
            " ON CONFLICT (room, prompt_id) DO NOTHING RETURNING n",
            escape(user.id),
            escape(room),
            escape_or_none(user.author.id if user.author else None),
            escape_or_none(user.author.name if user.author else None),
            escape(prompt_id),
            escape(user.text),
            user.ts,
            request is not None,
            _json_or_none(request),
        )
        return stored is not None

    async def _insert_replies(
        self, conn: Connection, room: str, replies: Sequence[HistoryMessage]
    ) -> None:
        await conn.executemany(
            "INSERT INTO messages (id, room, role, model, stream, reply_to, text, status, ts,"
            " owner, replaces, routed_from)"
            " VALUES ($1, $2, 'assistant', $3, $4, $5, '', 'streaming', $6, $7, $8, $9)",
            [
                (
                    escape(r.id),
                    escape(room),
                    escape_or_none(r.model),
                    escape_or_none(r.stream),
                    escape_or_none(r.reply_to),
                    r.ts,
                    escape(self.node),
                    escape_or_none(r.replaces),
                    escape_or_none(r.routed_from),
                )
                for r in replies
            ],
        )

    # --- the room's queue and regenerate ---------------------------------------------------

    async def enqueue(
        self, room: str, user: HistoryMessage, prompt_id: str, request: PromptRequest
    ) -> bool:
        async def insert() -> bool:
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._insert_user(conn, room, user, prompt_id, request)

        return await self._stored(room, insert())

    async def start_queued(
        self, room: str, message_id: str, replies: Sequence[HistoryMessage]
    ) -> bool:
        async def start() -> bool:
            async with self._pool.acquire() as conn, conn.transaction():
                # A new n: the turn runs after every reply before it, and stands there.
                moved = await conn.fetchval(
                    "UPDATE messages SET queued = false, request = NULL, n = DEFAULT"
                    " WHERE room = $1 AND id = $2 AND queued RETURNING n",
                    escape(room),
                    escape(message_id),
                )
                if moved is None:
                    return False
                await self._insert_replies(conn, room, replies)
            return True

        return await self._stored(room, start())

    async def withdraw(self, room: str, message_ids: Sequence[str]) -> list[str]:
        async def mark() -> list[str]:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    "UPDATE messages SET queued = false, withdrawn = true, request = NULL"
                    " WHERE room = $1 AND id = ANY($2::text[]) AND queued RETURNING id",
                    escape(room),
                    [escape(i) for i in message_ids],
                )
            done = {unescape(r["id"]) for r in rows}
            return [i for i in message_ids if i in done]

        return await self._stored(room, mark())

    async def queued(self, room: str) -> list[QueuedPrompt]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS}, request FROM messages WHERE room = $1 AND queued ORDER BY n",
            escape(room),
        )
        return [
            QueuedPrompt(message=_message(r), request=_request_decoder.decode(r["request"]))
            for r in rows
        ]

    async def add_replies(self, room: str, replies: Sequence[HistoryMessage]) -> None:
        async def insert() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._insert_replies(conn, room, replies)

        await self._stored(room, insert())

    async def message(self, room: str, message_id: str) -> HistoryMessage | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE room = $1 AND id = $2",
            escape(room),
            escape(message_id),
        )
        return _message(rows[0]) if rows else None

    async def newest_reply(self, room: str, reply_to: str, model: str) -> HistoryMessage | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE room = $1 AND reply_to = $2 AND model = $3"
            " ORDER BY n DESC LIMIT 1",
            escape(room),
            escape(reply_to),
            escape(model),
        )
        return _message(rows[0]) if rows else None

    async def _stored(self, room: str, write: Coroutine[Any, Any, _T]) -> _T:
        """Await a write shielded from the caller; a failure a client can wait out is ``busy``."""
        try:
            return await asyncio.shield(write)
        except DB_ERRORS as exc:
            raise _refusal(exc, room) from None

    async def has_prompt(self, room: str, prompt_id: str) -> bool:
        found = await self._fetchval(
            "look up a prompt",
            "SELECT 1 FROM messages WHERE room = $1 AND prompt_id = $2",
            escape(room),
            escape(prompt_id),
        )
        return found is not None

    async def checkpoint(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        """Save a streaming reply's text so far, and its reasoning when one is given."""
        if reasoning is None:
            await self._write(
                "UPDATE messages SET text = $1 WHERE id = $2 AND status = 'streaming'",
                (escape(text), escape(message_id)),
                what="checkpoint a reply",
            )
            return
        await self._write(
            "UPDATE messages SET text = $1, reasoning = $2 WHERE id = $3 AND status = 'streaming'",
            (escape(text), escape(reasoning) if reasoning else None, escape(message_id)),
            what="checkpoint a reply",
        )

    async def switch_model(self, message_id: str, model: str) -> None:
        await self._write(
            "UPDATE messages SET model = $1 WHERE id = $2 AND status = 'streaming'",
            (escape(model), escape(message_id)),
            what="record a routed reply's model",
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
            "UPDATE messages SET text = $1, status = $2, usage = $3, tool_calls = $4, error = $5,"
            " reasoning = $6 WHERE id = $7"
        )
        parameters = (
            escape(text),
            status,
            _json_or_none(usage),
            _json_or_none(list(tool_calls)),
            _json_or_none(error),
            escape(reasoning) if reasoning else None,
            escape(message_id),
        )
        try:
            await self._write(sql, parameters, what="finalise a reply")
        except StoreError:
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
                await self._write(sql, parameters, what="finalise a reply")
            except StoreError as exc:
                log.warning("reply %s is still not finalised: %s", message_id, exc)
                return
            del self._unsaved[message_id]
            log.info("reply %s finalised after an earlier failure", message_id)

    async def delete_before(self, ts_ms: int) -> int:
        deleted = 0
        while True:
            batch = await self._write(
                "DELETE FROM messages WHERE n IN (SELECT n FROM messages"
                " WHERE ts < $1 AND status <> 'streaming' AND NOT queued LIMIT $2)",
                (ts_ms, DELETE_BATCH),
                what="delete old messages",
            )
            deleted += batch
            if batch < DELETE_BATCH:
                break
        if deleted:
            # SKIP LOCKED: a room whose turn is being stored right now is not empty for long.
            await self._write(
                "DELETE FROM rooms WHERE id IN (SELECT id FROM rooms WHERE NOT EXISTS"
                " (SELECT 1 FROM messages WHERE messages.room = rooms.id) FOR UPDATE SKIP LOCKED)",
                (),
                what="delete empty rooms",
            )
        return deleted

    async def recent(self, room: str, limit: int) -> list[HistoryMessage]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE room = $1 ORDER BY n DESC LIMIT $2",
            escape(room),
            limit,
        )
        return [_message(r) for r in reversed(rows)]

    async def page(
        self, room: str, *, limit: int, before: str | None
    ) -> tuple[list[HistoryMessage], str | None]:
        bound = await self._position(room, before) if before else 2**62
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE room = $1 AND n < $2 ORDER BY n DESC LIMIT $3",
            escape(room),
            bound,
            limit + 1,
        )
        more = len(rows) > limit
        messages = [_message(r) for r in reversed(rows[:limit])]
        return messages, (messages[0].id if more and messages else None)

    async def lane(
        self, room: str, model: str, limit: int, *, upto: str | None = None
    ) -> list[HistoryMessage]:
        # A reply stands with the user message it answers (a regenerated one was stored later);
        # `upto` ends the lane at that user message, before any reply to it.
        bound = await self._position(room, upto) if upto else 2**62
        rows = await self._fetch(
            f"SELECT {_LANE_COLUMNS} FROM messages m LEFT JOIN messages u ON u.id = m.reply_to"
            f" WHERE m.room = $1 AND ({_LANE_MEMBER})"
            " AND (coalesce(u.n, m.n) < $3 OR m.id = $4)"
            " ORDER BY coalesce(u.n, m.n) DESC, m.n DESC LIMIT $5",
            escape(room),
            escape(model),
            bound,
            escape(upto or ""),
            limit,
        )
        return [_message(r) for r in reversed(rows)]

    async def _position(self, room: str, message_id: str) -> int:
        n = await self._fetchval(
            "find a message",
            "SELECT n FROM messages WHERE room = $1 AND id = $2",
            escape(room),
            escape(message_id),
        )
        if n is None:
            raise PeerError("not_found", f"no message {message_id[:128]!r} in this room")
        return int(n)

    # --- the boundary: every query goes through one of these -----------------------------------

    async def _write(self, sql: str, parameters: Sequence[object], *, what: str) -> int:
        """One statement in its own transaction, committed before returning; rows changed."""
        try:
            status = await asyncio.shield(self._pool.execute(sql, *parameters))
        except DB_ERRORS as exc:
            raise StoreError(f"cannot {what}: {_reason(exc)}") from None
        # A command tag such as "UPDATE 3" or "DELETE 0".
        return int(status.rsplit(" ", 1)[-1])

    async def _fetch(self, sql: str, *parameters: object) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(sql, *parameters)
        except DB_ERRORS as exc:
            raise StoreError(f"cannot read messages: {_reason(exc)}") from None

    async def _fetchval(self, what: str, sql: str, *parameters: object) -> Any:
        try:
            return await self._pool.fetchval(sql, *parameters)
        except DB_ERRORS as exc:
            raise StoreError(f"cannot {what}: {_reason(exc)}") from None


def _refusal(exc: BaseException, room: str) -> Exception:
    """What storing a turn failed with, for the room: ``busy`` when waiting helps."""
    if isinstance(exc, _TRANSIENT):
        log.error("a prompt in room %s was not stored: %s", room, _reason(exc))
        return PeerError(
            "busy",
            "the server cannot store messages right now: try again later",
            retry_after=UNAVAILABLE_RETRY_S,
        )
    return StoreError(f"cannot store a turn: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """One line saying why, for the operator's log and terminal (never a peer)."""
    if isinstance(exc, TimeoutError):
        text = "the server did not answer in time"
    elif isinstance(exc, OSError) and not isinstance(exc, asyncpg.PostgresError):
        text = f"cannot reach the server ({os.strerror(exc.errno) if exc.errno else exc})"
    elif isinstance(exc, ValueError):
        text = f"not a usable PostgreSQL URL ({exc})"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        text = f"the server refused the login ({exc})"
    elif isinstance(exc, asyncpg.DiskFullError):
        text = f"the database server's disk is full ({exc})"
    else:
        text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())


def _json_or_none(value: object) -> str | None:
    if value is None or value == []:
        return None
    return _encode(value).decode()


def _message(row: asyncpg.Record) -> HistoryMessage:
    author_id = unescape_or_none(row["author_id"])
    usage, calls, error = row["usage"], row["tool_calls"], row["error"]
    return HistoryMessage(
        id=unescape(row["id"]),
        role=row["role"],
        author=(
            Participant(id=author_id, name=unescape(row["author_name"] or ""))
            if author_id
            else None
        ),
        model=unescape_or_none(row["model"]),
        stream=unescape_or_none(row["stream"]),
        reply_to=unescape_or_none(row["reply_to"]),
        text=unescape(row["text"]),
        status=row["status"],
        ts=row["ts"],
        usage=_usage_decoder.decode(usage) if usage else None,
        tool_calls=_calls_decoder.decode(calls) if calls else None,
        error=_error_decoder.decode(error) if error else None,
        prompt_id=unescape_or_none(row["prompt_id"]),
        reasoning=unescape_or_none(row["reasoning"]) or None,
        routed_from=unescape_or_none(row["routed_from"]),
        queued=row["queued"],
        withdrawn=row["withdrawn"],
        replaces=unescape_or_none(row["replaces"]),
    )
