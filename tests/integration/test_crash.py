"""Crash safety, on a real server process: kill -9 loses nothing acknowledged; SIGTERM ends well."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.integration.sse_client import SseClient
from tests.support import RoomClient, is_type

CONFIG = """
[limits]
checkpoint_interval = 0.2

[[models]]
id = "slow"
provider = "demo"
tokens_per_s = 25
first_token_s = 0.05
default = true

[[models]]
id = "slower"
provider = "demo"
tokens_per_s = 15
first_token_s = 0.05

[[models]]
id = "instant"
provider = "demo"
tokens_per_s = 2000
first_token_s = 0.0
"""
ROOM = "crash"


async def poll_until(check: Callable[[], Any], failure: str, timeout: float = 20.0) -> None:
    """Poll ``check`` (a coroutine function) until it is true. Another process cannot wake this
    one, so a short poll is the condition wait here."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(failure) from None


SERVING = re.compile(rb"rtserver: serving on (http://127\.0\.0\.1:\d+)/")


class ServerProcess:
    """``python -m rtserver serve`` on a loopback port, with a database that outlives it."""

    def __init__(self, workdir: Path, http: aiohttp.ClientSession) -> None:
        self.workdir = workdir
        self.http = http
        self.config = workdir / "rtserver.toml"
        self.config.write_text(CONFIG)
        self.db: Path | str = workdir / "rooms.db"
        self.log = workdir / "server.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.base = URL()
        self.starts = 0

    async def start(self) -> None:
        """Start the server on a port the system picks, and wait until it answers."""
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.pop("RTSERVER_CONFIG", None)
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "rtserver",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--db",
                str(self.db),
                "--config",
                str(self.config),
                stdout=log,
                stderr=log,
                env=env,
            )
        await poll_until(self._bound, "the server did not say where it serves")
        await poll_until(self._ready, "the server did not start")

    def _check_running(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(f"the server exited: {self.log.read_text()[-2000:]}")

    async def _bound(self) -> bool:
        self._check_running()
        # Each start appends to the log: the last line naming an address is this run's.
        found = SERVING.findall(self.log.read_bytes())
        if len(found) <= self.starts:
            return False
        self.base = URL(found[-1].decode())
        self.starts += 1
        return True

    async def _ready(self) -> bool:
        self._check_running()
        try:
            async with self.http.get(self.base / "v1/models") as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    async def messages(self) -> list[dict[str, Any]]:
        async with self.http.get(self.base / f"v1/rooms/{ROOM}/messages") as response:
            assert response.status == 200
            body = await response.json()
        return list(body["messages"])

    def ws_url(self) -> str:
        return str(self.base / f"v1/rooms/{ROOM}/ws")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def exit_code(self) -> int:
        assert self.proc is not None
        async with asyncio.timeout(15):
            return await self.proc.wait()


@pytest.fixture
async def process(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(tmp_path, http)
    yield server
    if server.proc is not None and server.proc.returncode is None:
        server.proc.kill()
        await server.proc.wait()


async def _prompt(client: RoomClient, pid: str, models: list[str]) -> list[str]:
    """Send a prompt; once its message is acknowledged, its streams in the order of models."""
    await client.send(
        {"type": "prompt", "id": pid, "text": f"tell me about {pid}", "models": models}
    )
    message = await client.wait_for(is_type("message", prompt_id=pid))
    await client.wait_for(
        lambda _: (
            len([s for s in client.of_type("stream_start") if s["reply_to"] == message["id"]])
            == len(models)
        )
    )
    return [s["stream"] for s in client.of_type("stream_start") if s["reply_to"] == message["id"]]


async def test_kill_9_mid_stream_keeps_every_acknowledged_message_and_checkpoint(
    process: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await process.start()
    client = await RoomClient.connect(http, process.ws_url())
    (done,) = await _prompt(client, "first", ["instant"])
    await client.wait_for(is_type("stream_end", stream=done))
    streams = await _prompt(client, "second", ["slow", "slower"])

    checkpointed: dict[str, str] = {}

    async def both_checkpointed() -> bool:
        stored = {m.get("stream"): m["text"] for m in await process.messages()}
        checkpointed.update({s: stored[s] for s in streams if stored.get(s)})
        return len(checkpointed) == len(streams)

    await poll_until(both_checkpointed, "no checkpoint was written")
    # Let the streams run past their checkpoints, so the kill cuts text that was never saved.
    await client.wait_for(
        lambda _: all(len(client.texts().get(s, "")) > len(checkpointed[s]) + 5 for s in streams)
    )
    process.signal(signal.SIGKILL)
    assert await process.exit_code() == -signal.SIGKILL
    seen = client.texts()
    await client.close()

    await process.start()
    messages = await process.messages()
    users = [m for m in messages if m["role"] == "user"]
    assert [(m["prompt_id"], m["text"]) for m in users] == [
        ("first", "tell me about first"),
        ("second", "tell me about second"),
    ]
    replies = {m["stream"]: m for m in messages if m["role"] == "assistant"}
    assert replies[done]["status"] == "complete"
    assert replies[done]["text"] == seen[done]
    for stream in streams:
        reply = replies[stream]
        assert reply["status"] == "interrupted"
        assert reply["text"].startswith(checkpointed[stream])
        # The store holds one checkpoint or another: always a prefix of the streamed text.
        assert seen[stream].startswith(reply["text"]) or reply["text"].startswith(seen[stream])
    # The restarted room offers the same, and takes new prompts.
    again = await RoomClient.connect(http, process.ws_url())
    assert {m["stream"]: m["status"] for m in again.welcome["messages"] if m.get("stream")} == {
        done: "complete",
        **dict.fromkeys(streams, "interrupted"),
    }
    (after,) = await _prompt(again, "third", ["instant"])
    await again.wait_for(is_type("stream_end", stream=after))


async def test_sigterm_ends_streams_persists_them_and_closes_1001(
    process: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await process.start()
    client = await RoomClient.connect(http, process.ws_url())
    sse = await SseClient.connect(http, process.base, ROOM, name="sse")
    (stream,) = await _prompt(client, "only", ["slow"])
    await sse.wait_for(lambda f: f["type"] == "token" and f["stream"] == stream)
    await client.wait_for(lambda _: len(client.texts().get(stream, "")) > 20)

    process.signal(signal.SIGTERM)
    assert await client.wait_closed() == 1001
    await sse.wait_ended()
    assert await process.exit_code() == 0
    end = client.ended(stream)
    assert end is not None
    assert end["reason"] == "interrupted"
    assert sse.comments[-1].startswith("closed 1001")
    assert sse.frames[-1] == end
    streamed = client.texts()[stream]

    await process.start()
    (reply,) = [m for m in await process.messages() if m.get("stream") == stream]
    assert reply["status"] == "interrupted"
    assert reply["text"] == streamed
