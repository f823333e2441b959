"""`rtserver chat` in a real pseudo-terminal, driven by keys against a real server.

The terminal's output goes through pyte, a terminal emulator, so the test reads the screen a
person would see: lanes side by side, their heads (state, TTFT, tokens/s) and the status line.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pexpect
import pyte
import pytest
from aiohttp.test_utils import TestServer

from rtserver.app import create_app
from rtserver.config import ModelSpec, Settings
from tests.support import RoomClient, fast_settings, is_type

COLUMNS, ROWS = 140, 40
F1, ESCAPE, CTRL_R, CTRL_Q = "\x1bOP", "\x1b", "\x12", "\x11"
# Slow lanes, so that a key lands while both still stream.
MODELS = (
    ModelSpec(id="tortoise", provider="demo", tokens_per_s=15, first_token_s=0.01, default=True),
    ModelSpec(id="snail", provider="demo", tokens_per_s=15, first_token_s=0.01),
)


class Terminal:
    """A program in a pty, its screen emulated by pyte."""

    def __init__(self, child: pexpect.spawn[Any]) -> None:
        self.child = child
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self._stream = pyte.ByteStream(self.screen)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def pump(self) -> None:
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0)
            except (pexpect.TIMEOUT, pexpect.EOF):
                return
            self._stream.feed(data)

    async def until(self, check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        """Read the terminal until ``check`` holds; fails naming ``what`` and the screen."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self.pump()
                    if check():
                        return
                    # Lets the server, which runs on this loop, do its work meanwhile.
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"never saw {what}; the screen:\n{self.text()}") from None

    async def shows(self, words: str, timeout: float = 20.0) -> None:
        await self.until(lambda: words in self.text(), repr(words), timeout)

    def status(self) -> str:
        return self.screen.display[0].strip()

    def lane_states(self) -> list[str]:
        """Each lane's state word (streaming, complete, cancelled, ...), left to right."""
        rows = self.screen.display
        head = next((i for i, row in enumerate(rows) if "F1 " in row), None)
        if head is None or head + 1 >= len(rows):
            return []
        cells = [c.strip() for c in rows[head + 1].split("│") if c.strip()]
        return [cell.split(" ")[0] for cell in cells]

    def send(self, keys: str) -> None:
        self.child.send(keys)


async def start(settings: Settings, port: int = 0) -> TestServer:
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    return server


@pytest.fixture
async def terminal_of() -> AsyncIterator[Callable[[str], Terminal]]:
    spawned: list[Terminal] = []

    def spawn(url: str) -> Terminal:
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
        child = pexpect.spawn(
            sys.executable,
            ["-m", "rtserver", "chat", url, "lobby", "--name", "ada", "--models", "tortoise,snail"],
            dimensions=(ROWS, COLUMNS),
            env=env,
        )
        terminal = Terminal(child)
        spawned.append(terminal)
        return terminal

    yield spawn
    for terminal in spawned:
        terminal.child.terminate(force=True)


async def test_chat_keys_stop_lanes_interrupt_and_survive_a_restart(
    tmp_path: Path, terminal_of: Callable[[str], Terminal]
) -> None:
    settings = fast_settings(str(tmp_path / "chat.db"), models=MODELS)
    server = await start(settings)
    port = server.port
    servers = [server]
    try:
        async with aiohttp.ClientSession() as http:
            watcher = await RoomClient.connect(http, str(server.make_url("/v1/rooms/lobby/ws")))
            term = terminal_of(str(server.make_url("/")))
            await term.shows("connected · room lobby as ada")
            await term.shows("· 2 here")  # the watcher and ada
            await term.shows("F1 tortoise")
            await term.shows("F2 snail")

            # Enter sends; both lanes stream; F1 stops lane 1 only.
            term.send("rivers and tides\r")
            await term.until(lambda: term.lane_states() == ["streaming"] * 2, "two streams")
            await term.until(lambda: "tok/s" in term.text() and "TTFT" in term.text(), "figures")
            term.send(F1)
            await term.until(
                lambda: term.lane_states() == ["cancelled", "streaming"], "lane 1 cancelled"
            )
            end = await watcher.wait_for(is_type("stream_end"))
            assert end["reason"] == "cancelled"

            # Escape stops everything left.
            term.send(ESCAPE)
            await term.until(lambda: term.lane_states() == ["cancelled"] * 2, "all cancelled")

            # Ctrl+R interrupts running streams and sends the box's text instead.
            term.send("first topic\r")
            await term.until(lambda: term.lane_states() == ["streaming"] * 2, "a new turn")
            term.send("second topic")
            term.send(CTRL_R)
            await watcher.wait_for(is_type("message", text="second topic"))
            await term.until(lambda: term.lane_states() == ["streaming"] * 2, "the redirect")
            reasons = [f["reason"] for f in watcher.of_type("stream_end")]
            assert reasons[-2:] == ["interrupted", "interrupted"]
            await watcher.close()

            # The server restarts; the chat reconnects and takes a snapshot of the new run.
            await server.close()
            await term.until(lambda: term.status().startswith("reconnecting"), "reconnecting")
            servers.append(server := await start(settings, port=port or 0))
            await term.until(
                lambda: term.status().startswith("resumed (snapshot)"), "resumed", timeout=30
            )
            assert term.lane_states() == ["interrupted"] * 2

            term.send(CTRL_Q)
            await term.until(lambda: not term.child.isalive(), "the chat quit")
            assert term.child.exitstatus == 0
    finally:
        for running in servers:
            await running.close()
