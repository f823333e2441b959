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
    Capped, the tests of the mutated module come first (files named after it, then the other
    unit tests, then the rest), taken from each file in turn, so that a file of many quick
    cases does not stand in for every other. A mutant counts as killed only if one of those
    fails, so the score is a lower bound (docs/testing.md).
    """
    cap = os.environ.get("RTSERVER_MUTANT_TESTS")
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not cap or "__mutmut_" not in mutant:
        return
    kept = _in_turns_by_file(items, _module_words(mutant))[: int(cap)]
    chosen = set(kept)
    dropped = [item for item in items if item not in chosen]
    items[:] = kept
    if dropped:
        config.hook.pytest_deselected(items=dropped)


def _module_words(mutant: str) -> set[str]:
    """``rtserver.transports.ws_sink.x...`` -> ``{"ws", "sink", "ws_sink"}``."""
    module = [part for part in mutant.split(".") if not part.startswith("x")][-1]
    return {module, *module.split("_")}


def _in_turns_by_file(items: list[pytest.Item], words: set[str]) -> list[pytest.Item]:
    """Each file's first item, then each one's second, ...; the module's own files first."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::")[0], []).append(item)

    def tier(path: str) -> int:
        stem = path.rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_")
        if words & set(stem.split("_")) or stem in words:
            return 0
        return 1 if path.startswith("tests/unit/") else 2

    groups = sorted(by_file.items(), key=lambda kv: tier(kv[0]))  # stable: fastest first within
    turns: list[pytest.Item] = []
    for level in (0, 1, 2):
        tiered = [group for path, group in groups if tier(path) == level]
        for depth in range(max((len(group) for group in tiered), default=0)):
            turns += [group[depth] for group in tiered if depth < len(group)]
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
