"""The tutorial's client works as the tutorial says, against a real server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp.test_utils import TestServer

from rtserver.config import DEMO_MODELS, Settings
from tests.conftest import ServerFactory

WATCH = Path(__file__).parents[2] / "docs" / "tutorial" / "watch.py"


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(WATCH), *args, stdout=asyncio.subprocess.PIPE
    )


async def test_two_tutorial_clients_print_the_same_streams(
    start_server: ServerFactory, db_path: str
) -> None:
    server: TestServer = await start_server(Settings(db_path=db_path, models=DEMO_MODELS))
    url = str(server.make_url("/"))
    bob = await _run(url, "tutorial", "bob")
    assert bob.stdout is not None
    joined = await asyncio.wait_for(bob.stdout.readline(), timeout=15)
    assert joined.decode().strip() == "joined tutorial as bob"
    alice = await _run(url, "tutorial", "alice", "Tell me about rivers")
    alice_out, _ = await asyncio.wait_for(alice.communicate(), timeout=30)
    bob_out, _ = await asyncio.wait_for(bob.communicate(), timeout=30)
    alice_lines = alice_out.decode().splitlines()
    assert alice_lines[0] == "joined tutorial as alice"
    assert any(line.startswith("[demo] ended: complete") for line in alice_lines)
    assert any(line.startswith("[demo-fast] ended: complete") for line in alice_lines)
    assert "rivers" in "".join(line for line in alice_lines if line.startswith("[demo]"))
    assert bob_out.decode().splitlines() == alice_lines[1:]
