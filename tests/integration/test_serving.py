"""``serve``: what ``rtserver serve`` runs, on real loopback sockets, stopped by a real signal."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from rtserver.keys import SETUP_GATE
from rtserver.ops.serving import serve
from rtserver.transports.fairness import SetupGate
from rtserver.transports.site import listen

LINES: list[str] = []


class ListLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        LINES.append(f"{request.method} {request.path} {response.status}")


def _app(events: list[str]) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def shutting_down(app: web.Application) -> None:
        events.append("shutdown")

    app = web.Application()
    app[SETUP_GATE] = SetupGate()
    app.router.add_get("/", hello)
    app.on_shutdown.append(shutting_down)
    return app


def test_serve_answers_on_its_sockets_until_sigterm_then_shuts_down_gracefully() -> None:
    events: list[str] = []
    sockets = listen("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    LINES.clear()

    async def visit(address: str) -> None:
        async with aiohttp.ClientSession() as http, http.get(address) as response:
            events.append(f"{response.status} {await response.text()}")
        os.kill(os.getpid(), signal.SIGTERM)

    tasks: list[asyncio.Task[Any]] = []

    def on_serving(address: str) -> None:
        events.append(address)
        tasks.append(asyncio.get_running_loop().create_task(visit(address)))

    serve(_app(events), sockets, access_log_class=ListLogger, on_serving=on_serving)
    assert events == [f"http://127.0.0.1:{port}/", "200 hello", "shutdown"]
    assert LINES == ["GET / 200"]
    # The site closed its socket on the way out.
    assert sockets[0].fileno() == -1
    # The signal handler went with the loop: SIGTERM is the default again.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
