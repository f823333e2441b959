"""Shared fixtures: a real rtserver on a loopback port with a temporary SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from rtserver.app import create_app
from rtserver.config import Settings
from tests.support import fast_settings

pytest_plugins = ["tests.exit_guard"]


class ServedAsInProduction(TestServer):
    """A TestServer whose handlers run on when their client goes, as under ``rtserver serve``.

    aiohttp's test server cancels a handler as soon as its client disconnects; ``web.run_app``
    does not. Served like this, only the server's own checks for a vanished peer can end what
    a handler started, so the tests see what production does.
    """

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


ServerFactory = Callable[..., Awaitable[TestServer]]
#: The ``store`` fixtures, run once per store (SQLite and PostgreSQL).
pytest_plugins = ["tests.stores"]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "rooms.db")


@pytest.fixture
async def start_server(db_path: str) -> AsyncIterator[ServerFactory]:
    """Start servers on 127.0.0.1 (port 0: the system picks); all are closed however the test
    ends, each even when closing another fails."""
    async with contextlib.AsyncExitStack() as opened:

        async def start(settings: Settings | None = None, **kwargs: Any) -> TestServer:
            app = create_app(settings or fast_settings(db_path), **kwargs)
            server = ServedAsInProduction(app, host="127.0.0.1", port=0)
            opened.push_async_callback(server.close)
            await server.start_server()
            return server

        yield start


@pytest.fixture
async def server(start_server: ServerFactory) -> TestServer:
    return await start_server()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def ws_url(server: TestServer, room: str = "lobby") -> str:
    return str(server.make_url(f"/v1/rooms/{room}/ws"))
