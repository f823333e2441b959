"""``upgrade_route`` marks a handler, and ``is_upgrade`` tells its requests from the others'."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from rtserver.transports.upgrade import is_upgrade, upgrade_route


@upgrade_route
async def marked(request: web.Request) -> web.StreamResponse:
    return web.json_response(is_upgrade(request))


async def unmarked(request: web.Request) -> web.StreamResponse:
    return web.json_response(is_upgrade(request))


async def test_only_requests_to_a_marked_handler_are_upgrades(
    http: aiohttp.ClientSession,
) -> None:
    app = web.Application()
    app.router.add_get("/marked", marked)
    app.router.add_get("/unmarked", unmarked)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        answers = {}
        for path in ("/marked", "/unmarked"):
            async with http.get(server.make_url(path)) as response:
                answers[path] = await response.json()
    finally:
        await server.close()
    assert answers == {"/marked": True, "/unmarked": False}
