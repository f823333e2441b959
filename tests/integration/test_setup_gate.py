"""Every WebSocket set-up waits its turn at the server's set-up gate: once before the upgrade,
once before it joins (and gets its welcome)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from rtserver.transports.fairness import SetupGate
from tests.conftest import ws_url
from tests.support import RoomClient, eventually


class HeldGate:
    """Patches :meth:`SetupGate.enter`: counts the set-ups and holds them until released."""

    def __init__(self) -> None:
        self.entered = 0
        self.open = asyncio.Event()

    async def enter(self) -> None:
        self.entered += 1
        await self.open.wait()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldGate]:
    gate = HeldGate()

    async def enter(self: SetupGate) -> None:
        await gate.enter()

    monkeypatch.setattr(SetupGate, "enter", enter)
    yield gate
    gate.open.set()


async def test_no_upgrade_before_the_gate_lets_the_set_up_through(
    held: HeldGate, server: TestServer, http: aiohttp.ClientSession
) -> None:
    connecting = asyncio.create_task(http.ws_connect(ws_url(server), protocols=("rt.v1.json",)))
    try:
        await eventually(lambda: held.entered == 1)
        assert not connecting.done(), "the handshake was answered while the gate held it"
        held.open.set()
        async with asyncio.timeout(10):
            ws = await connecting
        await ws.close()
    finally:
        connecting.cancel()


async def test_a_set_up_passes_the_gate_before_the_upgrade_and_before_the_join(
    held: HeldGate, server: TestServer, http: aiohttp.ClientSession
) -> None:
    held.open.set()
    client = await RoomClient.connect(http, ws_url(server))
    try:
        assert client.welcome["type"] == "welcome"
        assert held.entered == 2
    finally:
        await client.close()
