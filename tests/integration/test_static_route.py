"""``GET /static/{path}`` at a real server: a file's bytes, or the API's JSON 404."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.transports.static import STATIC_DIR


async def test_a_file_of_the_web_app_is_served_as_it_is_on_disk(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.make_url("/static/rt-chat.js")) as response:
        assert response.status == 200
        body = await response.read()
    assert body == (STATIC_DIR / "rt-chat.js").read_bytes()


async def test_a_missing_file_is_a_json_not_found(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.make_url("/static/no-such-file.js")) as response:
        assert response.status == 404
        assert response.content_type == "application/json"
        body = await response.json()
    assert (body["type"], body["code"]) == ("error", "not_found")
