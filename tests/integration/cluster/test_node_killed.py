"""kill -9 of the node running a stream: everyone on the other node sees it end `interrupted`."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.cluster.conftest import REDIS_URL
from tests.integration.test_crash import ServerProcess, poll_until
from tests.support import RoomClient, is_type


@pytest.fixture
async def processes(
    tmp_path: Path, http: aiohttp.ClientSession, postgres_url: str, bus_prefix: str
) -> AsyncIterator[list[ServerProcess]]:
    nodes = []
    for name in ("one", "two"):
        workdir = tmp_path / name
        workdir.mkdir()
        node = ServerProcess(workdir, http)
        node.db = postgres_url
        with node.config.open("a") as config:
            config.write(f'\n[bus]\nredis_url = "{REDIS_URL}"\nkey_prefix = "{bus_prefix}"\n')
        nodes.append(node)
    yield nodes
    for node in nodes:
        if node.proc is not None and node.proc.returncode is None:
            node.proc.kill()
            await node.proc.wait()


async def test_the_stream_of_a_killed_node_ends_interrupted_for_everyone(
    processes: list[ServerProcess], http: aiohttp.ClientSession
) -> None:
    runner, survivor = processes
    await runner.start()
    await survivor.start()
    asker = await RoomClient.connect(http, runner.ws_url(), name="asker")
    watcher = await RoomClient.connect(http, survivor.ws_url(), name="watcher")
    await asker.send({"type": "prompt", "id": "q1", "text": "a long answer", "models": ["slow"]})
    start = await watcher.wait_for(is_type("stream_start"))
    stream = start["stream"]

    async def checkpointed() -> bool:
        return any(m.get("stream") == stream and m["text"] for m in await survivor.messages())

    await poll_until(checkpointed, "the running node wrote no checkpoint")
    runner.signal(signal.SIGKILL)
    assert await runner.exit_code() == -signal.SIGKILL
    # Once the dead node's lease has expired, the survivor ends the stream for everyone.
    end = await watcher.wait_for(is_type("stream_end", stream=stream), timeout=30)
    assert end["reason"] == "interrupted"
    replies = {m["stream"]: m for m in await survivor.messages() if m["role"] == "assistant"}
    stored, streamed = replies[stream]["text"], watcher.texts()[stream]
    assert replies[stream]["status"] == "interrupted"
    assert stored
    assert streamed.startswith(stored)
    # The asker, cut off with its node, comes back to the survivor and resumes there.
    seq = asker.room_events()[-1]["seq"]
    back = await RoomClient.connect(
        http, survivor.ws_url(), name="asker", since={"epoch": asker.welcome["epoch"], "seq": seq}
    )
    await back.wait_for(is_type("stream_end", stream=stream))
    # The room goes on: the survivor runs the next turn.
    await back.send({"type": "prompt", "id": "q2", "text": "again", "models": ["instant"]})
    message = await back.wait_for(is_type("message", prompt_id="q2"))
    after = await back.wait_for(is_type("stream_start", reply_to=message["id"]))
    assert (await back.wait_for(is_type("stream_end", stream=after["stream"])))["reason"] == (
        "complete"
    )
    for client in (asker, watcher, back):
        await client.close()
