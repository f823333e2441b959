"""Run the app on listening sockets until SIGINT or SIGTERM, then shut down gracefully.

What ``rtserver serve`` runs, and the benchmarks with it, so that they measure the server as
it is served: each socket is a :class:`~rtserver.transports.site.GatedSite`, whose accepts
take their turn at the app's set-up gate.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger

from rtserver.keys import SETUP_GATE
from rtserver.transports.site import GatedSite, address_of

#: How long a graceful shutdown waits for handlers to finish before it closes what is left.
SHUTDOWN_TIMEOUT_S: Final = 10.0
#: An idle keep-alive HTTP connection is closed after this long (aiohttp's run_app default).
KEEPALIVE_TIMEOUT_S: Final = 75.0


def serve(
    app: web.Application,
    sockets: Sequence[socket.socket],
    *,
    access_log_class: type[AbstractAccessLogger] = AccessLogger,
    on_serving: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` on ``sockets`` until a signal to stop; returns after the shutdown.

    ``on_serving`` gets the first socket's address once every socket accepts connections.
    The shutdown is the app's own: streams end as interrupted and are persisted, sockets
    close with 1001, then every task still running is cancelled.
    """
    asyncio.run(_serve(app, sockets, access_log_class=access_log_class, on_serving=on_serving))


async def _serve(
    app: web.Application,
    sockets: Sequence[socket.socket],
    *,
    access_log_class: type[AbstractAccessLogger],
    on_serving: Callable[[str], None] | None,
) -> None:
    runner = web.AppRunner(
        app,
        access_log_class=access_log_class,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
    )
    await runner.setup()
    try:
        for sock in sockets:
            await GatedSite(runner, sock, gate=app[SETUP_GATE]).start()
        stop = _stop_on_signals()
        if on_serving is not None:
            on_serving(address_of(sockets[0]))
        await stop.wait()
    finally:
        await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
