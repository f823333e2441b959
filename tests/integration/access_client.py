"""Helpers for access tests: tokens signed with a test secret, connections that may be refused."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from rtserver.auth.tokens import RoomTokens, TokenRole
from tests.support import Frame, RoomClient

SECRET = "test-secret-" + "x" * 40
ENV = {"RTSERVER_SECRET": SECRET}
TOKENS = RoomTokens(secret=SECRET)


def token(
    sub: str = "ada",
    rooms: Iterable[str] = ("lobby",),
    *,
    role: TokenRole = "member",
    ttl_s: float = 3600,
    name: str | None = None,
    models: Iterable[str] | None = None,
    tokens: RoomTokens = TOKENS,
) -> str:
    return tokens.issue(sub=sub, rooms=rooms, ttl_s=ttl_s, role=role, name=name, models=models)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def say_hello(
    http: aiohttp.ClientSession,
    server: TestServer,
    room: str = "lobby",
    *,
    token: str | None = None,
    name: str = "tester",
    headers: dict[str, str] | None = None,
) -> RoomClient:
    """Open a WebSocket and send ``hello`` (with ``token``); nothing is read yet."""
    url = server.make_url(f"/v1/rooms/{room}/ws")
    ws = await http.ws_connect(url, protocols=("rt.v1.json",), headers=headers, max_msg_size=0)
    client = RoomClient(ws)
    hello: Frame = {"type": "hello", "name": name}
    if token is not None:
        hello["token"] = token
    await client.send(hello)
    return client


async def join(
    http: aiohttp.ClientSession, server: TestServer, room: str = "lobby", **kw: Any
) -> RoomClient:
    """A participant that was welcomed; its frames are recorded from then on."""
    client = await say_hello(http, server, room, **kw)
    client.welcome = await client.receive()
    assert client.welcome["type"] == "welcome", client.welcome
    client.start_reading()
    return client


async def refusal(
    http: aiohttp.ClientSession, server: TestServer, room: str = "lobby", **kw: Any
) -> tuple[Frame, int | None]:
    """The error frame a refused connection gets, and the code it is closed with."""
    client = await say_hello(http, server, room, **kw)
    try:
        frame = await client.receive()
        message = await client.ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        return frame, client.ws.close_code
    finally:
        await client.ws.close()
