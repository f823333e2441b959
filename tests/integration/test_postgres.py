"""What only the PostgreSQL store has: migrations shared by nodes, replies owned by a node,
a server that goes away, and a whole ``rtserver serve --db postgresql://...`` that is killed and
restarted. Each test has a schema of its own on the real server (tests/stores.py)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from rtserver.config import Limits, build_settings, read_config_file
from rtserver.errors import PeerError, StoreError
from rtserver.keys import STORE
from rtserver.protocol.frames import HistoryMessage
from rtserver.store.lock import DatabaseLock
from rtserver.store.pg_schema import LOCK_CLASS, MIGRATIONS
from rtserver.store.postgres import PostgresStore
from rtserver.store.selection import describe_db
from tests.conftest import ServerFactory, ws_url
from tests.fakes.drive import refusing_port
from tests.integration.test_crash import ServerProcess, _prompt, poll_until
from tests.integration.test_store_ops import _one_clear_line, _serve_expecting_exit
from tests.stores import POSTGRES_URL, admin_connection
from tests.support import RoomClient, fast_settings, is_type
from tests.unit.test_store_contract import HOSTILE


def _turn(n: int) -> tuple[HistoryMessage, list[HistoryMessage]]:
    user = HistoryMessage(id=f"u{n}", role="user", text=f"q{n}", status="complete", ts=n)
    reply = HistoryMessage(
        id=f"r{n}", role="assistant", text="", status="streaming", ts=n, model="a", reply_to=user.id
    )
    return user, [reply]


async def _versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r["version"] for r in await conn.fetch("SELECT version FROM rtserver_migrations")]
    finally:
        await conn.close()


# --- migrations ----------------------------------------------------------------------------------


async def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(postgres_url) for _ in range(4)))
    try:
        assert await _versions(postgres_url) == list(range(1, len(MIGRATIONS) + 1))
        user, replies = _turn(1)
        assert await stores[0].start_turn("r", user, "p", replies)
        assert [m.id for m in await stores[3].recent("r", 10)] == ["u1", "r1"]
    finally:
        for store in stores:
            await store.close()


async def test_a_node_waits_for_the_migration_lock_another_holds(postgres_url: str) -> None:
    holder = await asyncpg.connect(postgres_url)
    opening: asyncio.Task[PostgresStore] | None = None
    try:
        holder_tx = holder.transaction()
        await holder_tx.start()
        await holder.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", LOCK_CLASS
        )
        opening = asyncio.create_task(PostgresStore.open(postgres_url))

        async def waiting() -> bool:
            return bool(
                await holder.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = $1",
                    LOCK_CLASS,
                )
            )

        await poll_until(waiting, "the opening node did not wait for the migration lock")
        assert not opening.done()
        await holder_tx.rollback()
        store = await asyncio.wait_for(opening, 20)
        await store.close()
        assert await _versions(postgres_url) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        if opening is not None and not opening.done():
            opening.cancel()
        await holder.close()


async def test_a_schema_newer_than_this_rtserver_is_refused(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO rtserver_migrations VALUES (99, 0)")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="newer"):
        await PostgresStore.open(postgres_url)


# --- replies owned by a node ---------------------------------------------------------------------


async def test_recover_leaves_the_replies_of_another_node_streaming(postgres_url: str) -> None:
    one = await PostgresStore.open(postgres_url, node="one")
    two = await PostgresStore.open(postgres_url, node="two")
    try:
        for n, store in enumerate((one, two)):
            user, replies = _turn(n)
            assert await store.start_turn("r", user, f"p{n}", replies)
        assert await one.recover() == 1
        status = {m.id: m.status for m in await two.recent("r", 10)}
        assert (status["r0"], status["r1"]) == ("interrupted", "streaming")
        assert await two.recover() == 1
    finally:
        await one.close()
        await two.close()


# --- a server that goes away ---------------------------------------------------------------------


class CuttableLink:
    """A loopback TCP relay to PostgreSQL that the test can cut (every connection dropped, new
    ones refused at once) and restore: the database server going away and coming back."""

    def __init__(self) -> None:
        self.down = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.down:
            client_w.close()
            return
        target = urlsplit(POSTGRES_URL)
        server_r, server_w = await asyncio.open_connection(target.hostname, target.port or 5432)
        self._writers |= {client_w, server_w}
        await asyncio.gather(
            self._pipe(client_r, server_w), self._pipe(server_r, client_w), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)

    def cut(self) -> None:
        self.down = True
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_database_that_goes_away_refuses_prompts_busy_and_loses_no_final_write(
    postgres_url: str,
) -> None:
    link = CuttableLink()
    await link.start()
    url = postgres_url.replace(urlsplit(POSTGRES_URL).netloc, f"127.0.0.1:{link.port}")
    store = await PostgresStore.open(url, connect_timeout_s=5)
    try:
        user, replies = _turn(1)
        assert await store.start_turn("r", user, "p1", replies)
        link.cut()
        with pytest.raises(PeerError) as refused:
            await store.start_turn("r", *_turn_with_id(2))
        assert (refused.value.code, refused.value.retry_after is not None) == ("busy", True)
        with pytest.raises(StoreError, match="cannot"):
            await store.ping()
        with pytest.raises(StoreError):
            await store.finish_reply(
                "r1", text="the end", status="complete", usage=None, tool_calls=(), error=None
            )
        link.down = False

        async def finalised() -> bool:
            return [m.status for m in await store.recent("r", 10)] == ["complete", "complete"]

        await poll_until(finalised, "the final write was not saved once the database was back")
        assert await store.start_turn("r", *_turn_with_id(2))
    finally:
        await store.close()
        await link.close()


def _turn_with_id(n: int) -> tuple[HistoryMessage, str, list[HistoryMessage]]:
    user, replies = _turn(n)
    return user, f"p{n}", replies


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://root:hunter2@127.0.0.1:{free}/test", "cannot reach the server"),
        ("postgresql://no_such_role:hunter2@127.0.0.1:5432/test", "refused the login"),
        ("postgresql://127.0.0.1:5432/no_such_database", "does not exist"),
        ("postgresql://root:hunter2@127.0.0.1:notaport/test", "not a usable PostgreSQL URL"),
    ],
)
async def test_an_unusable_database_is_one_store_error_without_the_password(
    url: str, reason: str
) -> None:
    await admin_connection()  # these cases mean something only while the server is up
    with refusing_port() as port, pytest.raises(StoreError) as refused:
        await PostgresStore.open(url.replace("{free}", str(port)), connect_timeout_s=5)
    line = str(refused.value)
    assert reason in line
    assert "\n" not in line
    assert "hunter2" not in line


async def test_serve_exits_2_with_one_line_when_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    with refusing_port() as port:
        url = f"postgresql://root:hunter2@127.0.0.1:{port}/test"
        code, stderr = await _serve_expecting_exit(url, tmp_path)
    line = _one_clear_line(stderr)
    assert code == 2
    assert describe_db(url) in line
    assert "cannot reach the server" in line
    assert "hunter2" not in stderr


def test_the_single_server_lock_does_not_apply_to_postgresql(tmp_path: Path) -> None:
    assert DatabaseLock.acquire(f"{POSTGRES_URL}?search_path=x") is None
    assert list(tmp_path.iterdir()) == []


# --- a whole server ------------------------------------------------------------------------------


async def test_a_url_in_the_config_file_serves_on_postgresql_and_readyz_follows_it(
    start_server: ServerFactory, postgres_url: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    config = tmp_path / "rtserver.toml"
    config.write_text(f'[server]\ndb = "{postgres_url}"\n')
    settings = build_settings(read_config_file(config), env={})
    server = await start_server(settings)
    store = server.app[STORE]
    assert isinstance(store, PostgresStore)
    async with http.get(server.make_url("/readyz")) as response:
        assert (response.status, (await response.json())["store"]) == (200, "up")
    await store._pool.close()
    async with http.get(server.make_url("/readyz")) as response:
        assert (response.status, (await response.json())["store"]) == (503, "down")


async def test_a_server_on_postgresql_is_killed_mid_stream_and_recovers_everything(
    tmp_path: Path, http: aiohttp.ClientSession, postgres_url: str
) -> None:
    process = ServerProcess(tmp_path, http)
    process.db = postgres_url.replace("postgresql://", "postgresql://root:hunter2@")
    try:
        await _kill_mid_stream_and_restart(process, http)
    finally:
        if process.proc is not None and process.proc.returncode is None:
            process.proc.kill()
            await process.proc.wait()
    log = process.log.read_text()
    assert f"(db {describe_db(str(process.db))})" in log
    assert "hunter2" not in log


async def _kill_mid_stream_and_restart(process: ServerProcess, http: aiohttp.ClientSession) -> None:
    await process.start()
    client = await RoomClient.connect(http, process.ws_url())
    (done,) = await _prompt(client, "first", ["instant"])
    await client.wait_for(is_type("stream_end", stream=done))
    (running,) = await _prompt(client, "second", ["slow"])

    async def checkpointed() -> bool:
        stored = {m.get("stream"): m["text"] for m in await process.messages()}
        return bool(stored.get(running))

    await poll_until(checkpointed, "no checkpoint was written")
    process.signal(signal.SIGKILL)
    assert await process.exit_code() == -signal.SIGKILL
    seen = client.texts()
    await client.close()

    await process.start()
    async with http.get(process.base / "readyz") as response:
        assert response.status == 200
    messages = await process.messages()
    assert [m["prompt_id"] for m in messages if m["role"] == "user"] == ["first", "second"]
    replies = {m["stream"]: m for m in messages if m["role"] == "assistant"}
    assert (replies[done]["status"], replies[done]["text"]) == ("complete", seen[done])
    assert replies[running]["status"] == "interrupted"
    assert replies[running]["text"]
    # One checkpoint or another: a prefix of what was streamed, or the other way round.
    stored, streamed = replies[running]["text"], seen[running]
    assert streamed.startswith(stored) or stored.startswith(streamed)
    again = await RoomClient.connect(http, process.ws_url())
    try:
        assert [m["id"] for m in again.welcome["messages"]] == [m["id"] for m in messages]
        (after,) = await _prompt(again, "third", ["instant"])
        await again.wait_for(is_type("stream_end", stream=after))
    finally:
        await again.close()
    assert [m["prompt_id"] for m in await process.messages() if m["role"] == "user"] == [
        "first",
        "second",
        "third",
    ]


async def test_hostile_prompts_through_a_server_on_postgresql_are_kept_exactly(
    start_server: ServerFactory, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    limits = Limits(max_prompt_chars=20_000)
    server = await start_server(fast_settings(postgres_url, limits=limits))
    name = "ann\x00\ufdd0\u202e"
    text = (HOSTILE * (limits.max_prompt_chars // len(HOSTILE) + 1))[: limits.max_prompt_chars]
    assert len(text) == limits.max_prompt_chars
    client = await RoomClient.connect(http, ws_url(server), name=name)
    try:
        await client.send({"type": "prompt", "id": "p\x00", "text": text, "models": ["quick"]})
        message = await client.wait_for(is_type("message", prompt_id="p\x00"))
        assert (message["text"], message["author"]["name"]) == (text, name)
        end = await client.wait_for(is_type("stream_end"))
        assert end["reason"] == "complete"
        await client.send({"type": "prompt", "id": "big", "text": text + "x", "models": ["quick"]})
        assert (await client.wait_for(is_type("error", ref="big")))["code"] == "too_large"
    finally:
        await client.close()
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        stored = (await response.json())["messages"]
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert (stored[0]["text"], stored[0]["author"]["name"], stored[0]["prompt_id"]) == (
        text,
        name,
        "p\x00",
    )
    assert stored[1]["text"] == client.texts()[end["stream"]]
