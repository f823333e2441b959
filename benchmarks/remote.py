"""An async object in a process of its own, whose methods are called over a pipe.

A benchmark's measuring client must not share an event loop with its load generator: the
generator's own work (thousands of sockets, and full garbage collections over them) would be
counted as the server's latency. The object is made in the child by an async context manager
and lives until the parent leaves ``async with Remote(...)``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from multiprocessing.connection import Connection
from typing import Any

Factory = Callable[..., AbstractAsyncContextManager[Any]]


class Remote:
    """``await remote.call("method", *args)`` runs ``await obj.method(*args)`` in the child."""

    def __init__(self, factory: Factory, *args: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_child, args=(factory, args, child), daemon=True)

    async def __aenter__(self) -> Remote:
        self._process.start()
        await self._reply()  # the object is made
        return self

    async def __aexit__(self, *exc: object) -> None:
        with suppress(OSError):  # a child that failed has closed its end
            self._conn.send(None)
        await asyncio.to_thread(self._process.join, 30)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()

    async def call(self, method: str, *args: Any) -> Any:
        self._conn.send((method, args))
        return await self._reply()

    async def _reply(self) -> Any:
        ok, value = await asyncio.to_thread(self._conn.recv)
        if not ok:
            raise AssertionError(f"the remote peer failed: {value}")
        return value


def _child(factory: Factory, args: tuple[Any, ...], conn: Connection) -> None:
    asyncio.run(_serve_calls(factory, args, conn))


async def _serve_calls(factory: Factory, args: tuple[Any, ...], conn: Connection) -> None:
    try:
        async with factory(*args) as obj:
            conn.send((True, None))
            while (command := await asyncio.to_thread(conn.recv)) is not None:
                method, call_args = command
                conn.send((True, await getattr(obj, method)(*call_args)))
    except Exception as exc:
        conn.send((False, f"{exc.__class__.__name__}: {exc}"))
