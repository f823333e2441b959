"""Shared fixtures: a real rtserver on a loopback port with a temporary SQLite file."""

from __future__ import annotations

import contextlib
import os
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

#: The exit guard (a run ends soon after its last test) and the ``store`` fixtures, run once
#: per store (SQLite and PostgreSQL).
pytest_plugins = ["tests.exit_guard", "tests.stores"]


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``make mutate``, a mutant runs at most ``RTSERVER_MUTANT_TESTS`` of its tests.

    mutmut hands each mutant every test that reaches the mutated function, the fastest first,
    and one that survives runs them all: for the room's busiest functions, the whole suite.
    Capped, the tests are taken from each file in turn (each file's fastest first), so that a
    file of many quick cases does not stand in for every other; a mutant counts as killed only
    if one of those fails, so the score is a lower bound (docs/testing.md).
    """
    cap = os.environ.get("RTSERVER_MUTANT_TESTS")
    if not cap or "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    kept = _in_turns_by_file(items)[: int(cap)]
    chosen = set(kept)
    dropped = [item for item in items if item not in chosen]
    items[:] = kept
    if dropped:
        config.hook.pytest_deselected(items=dropped)


def _in_turns_by_file(items: list[pytest.Item]) -> list[pytest.Item]:
    """The first item of each file, then the second of each, ...; files in order of their first."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::")[0], []).append(item)
    turns: list[pytest.Item] = []
    for depth in range(max((len(group) for group in by_file.values()), default=0)):
        turns += [group[depth] for group in by_file.values() if depth < len(group)]
    return turns


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
