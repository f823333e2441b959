"""Running the store: one server per database, unusable databases, a full disk, the access log.

Exit codes are about processes, so those tests run ``python -m rtserver serve`` for real; the
full disk is SQLite's own SQLITE_FULL, made with ``PRAGMA max_page_count`` on the server's
connection to a real database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.config import Limits, ModelSpec
from rtserver.keys import STORE
from rtserver.providers.base import Delta, FinishDelta, GenerationRequest, TextDelta
from rtserver.store.sqlite import SqliteStore
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.integration.test_crash import ServerProcess, poll_until
from tests.support import RoomClient, fast_settings, is_type

#: Bound on how long a refused server may take to exit.
EXIT_TIMEOUT_S = 20.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("RTSERVER_CONFIG", None)
    return env


async def _serve_expecting_exit(db: Path | str, workdir: Path) -> tuple[int, str]:
    """Run ``serve`` on ``db`` and wait (bounded) for it to exit: its status and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtserver",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        # It must exit before it listens; were it to listen, the system picks the port.
        "0",
        "--db",
        str(db),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    try:
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


def _one_clear_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("rtserver: ")
    return lines[0]


@pytest.fixture
async def first(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(tmp_path, http)
    yield server
    if server.proc is not None and server.proc.returncode is None:
        server.proc.kill()
        await server.proc.wait()


# --- one server per database -------------------------------------------------------------------


async def test_a_second_server_on_the_same_database_exits_2_naming_the_first(
    first: ServerProcess, tmp_path: Path
) -> None:
    await first.start()
    assert first.proc is not None
    code, stderr = await _serve_expecting_exit(first.db, tmp_path)
    line = _one_clear_line(stderr)
    assert code == 2
    assert "in use" in line
    assert f"pid {first.proc.pid}" in line
    assert str(first.base) in line
    # The first one is unharmed.
    messages = await first.messages()
    assert messages == []


async def test_the_lock_goes_with_its_process_even_after_kill_9(
    first: ServerProcess, tmp_path: Path
) -> None:
    await first.start()
    assert first.proc is not None
    first.proc.kill()
    await first.proc.wait()
    await first.start()
    assert await first.messages() == []


async def test_servers_on_different_databases_run_side_by_side(
    first: ServerProcess, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    await first.start()
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    second = ServerProcess(other_dir, http)
    try:
        await second.start()
        assert await second.messages() == []
    finally:
        if second.proc is not None:
            second.proc.kill()
            await second.proc.wait()


# --- unusable databases --------------------------------------------------------------------------


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make the file or folder ``path`` unwritable for this process: immutable when running as
    root (whom permissions do not stop), else read-only by mode."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            raise AssertionError("running as root needs chattr to make a file read-only")
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


async def _existing_database(path: Path) -> None:
    store = await SqliteStore.open(path)
    await store.close()
    # Checkpointed into the main file, so the read-only file is the whole database.
    for suffix in ("-wal", "-shm"):
        await asyncio.to_thread(Path(f"{path}{suffix}").unlink, missing_ok=True)


async def test_a_read_only_database_exits_2_with_one_line_and_serves_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "rooms.db"
    await _existing_database(db)
    with _read_only(db):
        code, stderr = await _serve_expecting_exit(db, tmp_path)
    line = _one_clear_line(stderr)
    assert code == 2
    assert str(db) in line
    assert "readonly" in line or "read-only" in line


async def test_a_read_only_folder_exits_2_with_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    db = folder / "rooms.db"
    await _existing_database(db)
    with _read_only(folder):
        code, stderr = await _serve_expecting_exit(db, tmp_path)
    line = _one_clear_line(stderr)
    assert code == 2
    assert str(db) in line


@pytest.mark.parametrize("kind", ["directory", "missing folder", "not a database"])
async def test_an_unusable_database_path_exits_2_with_one_line(tmp_path: Path, kind: str) -> None:
    if kind == "directory":
        db = tmp_path / "a-folder.db"
        db.mkdir()
    elif kind == "missing folder":
        db = tmp_path / "no" / "such" / "rooms.db"
    else:
        db = tmp_path / "garbage.db"
        db.write_bytes(b"this is not SQLite at all " * 200)
    code, stderr = await _serve_expecting_exit(db, tmp_path)
    line = _one_clear_line(stderr)
    assert code == 2
    assert str(db) in line


# --- the access log ------------------------------------------------------------------------


async def test_the_access_log_never_holds_a_session_id_or_token(
    first: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await first.start()
    token = "eyJhbGciOiJIUzI1NiJ9.secret-token-value.sig"
    sse = await SseClient.connect(http, first.base, "logged")
    session = sse.welcome["session"]
    try:
        status, _, _ = await sse.post({"type": "ping", "id": "p"})
        assert status == 202
        url = first.base.with_path("/v1/rooms/logged/events").with_query(
            {"token": token, "name": "again"}
        )
        async with http.get(url) as response:
            assert response.status == 200
    finally:
        sse.close()
    await poll_until(
        lambda: _log_has(first, "POST /v1/rooms/logged/frames"), "the POST was not logged"
    )
    first.signal(15)
    assert await first.exit_code() == 0
    log = first.log.read_text()
    assert "session=[redacted]" in log
    assert "token=[redacted]" in log
    assert session not in log
    assert "secret-token-value" not in log


async def _log_has(server: ServerProcess, text: str) -> bool:
    return text in server.log.read_text()


# --- a full disk ---------------------------------------------------------------------------


class GatedProvider:
    """Says a few words, waits for ``go``, then sends a long paragraph: enough to need pages."""

    kind = "demo"

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        yield TextDelta("first words ")
        await self.go.wait()
        yield TextDelta(LONG)
        yield FinishDelta("complete")

    async def aclose(self) -> None:
        return None


LONG = "and a long paragraph " * 2_000
MODELS = (ModelSpec(id="gated", provider="demo", default=True),)


async def _fill_disk(store: SqliteStore) -> None:
    """SQLITE_FULL from now on: the database may not grow by one page."""
    db = store._db  # the server's own connection: max_page_count is per connection
    async with db.execute("PRAGMA page_count") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    await db.execute(f"PRAGMA max_page_count = {int(row[0])}")


async def _free_disk(store: SqliteStore) -> None:
    await store._db.execute("PRAGMA max_page_count = 1073741823")


async def _reply(http: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    async with http.get(server.make_url("/v1/rooms/lobby/messages")) as response:
        body = await response.json()
    return next(m for m in body["messages"] if m["role"] == "assistant")


async def _stream_into_a_full_disk(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> tuple[TestServer, SqliteStore, RoomClient]:
    """A reply checkpointed as "first words ", then the disk fills and the reply ends."""
    provider = GatedProvider()
    settings = fast_settings(db_path, models=MODELS, limits=Limits(checkpoint_interval=0.05))
    server = await start_server(settings, providers={"gated": provider})
    store = cast(SqliteStore, server.app[STORE])
    client = await RoomClient.connect(http, ws_url(server))
    await client.send({"type": "prompt", "id": "p1", "text": "fill it"})
    start = await client.wait_for(is_type("stream_start"))

    async def checkpointed() -> bool:
        return bool((await _reply(http, server))["text"] == "first words ")

    await poll_until(checkpointed, "the first words were not checkpointed")
    await _fill_disk(store)
    provider.go.set()
    end = await client.wait_for(is_type("stream_end", stream=start["stream"]))
    assert end["reason"] == "complete"
    # The final write failed: the stored reply is still streaming, as far as it was saved.
    reply = await _reply(http, server)
    assert (reply["status"], reply["text"]) == ("streaming", "first words ")
    return server, store, client


async def test_a_final_write_lost_to_a_full_disk_is_saved_once_there_is_room(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, store, client = await _stream_into_a_full_disk(start_server, db_path, http)
    try:
        # Meanwhile a prompt cannot be stored: the room is told so, clearly, and may retry.
        # (Long enough to need new pages: a short one may fit in a page's free space.)
        await client.send({"type": "prompt", "id": "p2", "text": "and now? " * 3_000})
        error = await client.wait_for(is_type("error", ref="p2"))
        assert error["code"] == "busy"
        assert error["retry_after"] > 0
        await _free_disk(store)

        async def finalised() -> bool:
            return bool((await _reply(http, server))["status"] == "complete")

        await poll_until(finalised, "the reply was never finalised after the disk had room")
        reply = await _reply(http, server)
        assert reply["text"] == "first words " + LONG
    finally:
        await client.close()


async def test_a_server_stopped_while_the_disk_is_full_recovers_the_reply_as_interrupted(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server, _, client = await _stream_into_a_full_disk(start_server, db_path, http)
    await client.close()
    await server.close()
    store = await SqliteStore.open(db_path)
    try:
        assert await store.recover() == 1
        messages = await store.recent("lobby", 10)
    finally:
        await store.close()
    reply = next(m for m in messages if m.role == "assistant")
    assert (reply.status, reply.text) == ("interrupted", "first words ")
