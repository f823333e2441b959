"""The join after hello: resume point, seat of a token's subject, a room that fails to open."""

from __future__ import annotations

import contextlib
import logging
import sqlite3

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import ServerFactory, ws_url
from tests.integration.access_client import ENV, join, token
from tests.support import RoomClient, fast_settings, names_are, wait_presence


async def test_a_hello_with_since_resumes_from_that_point(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    first = await RoomClient.connect(http, ws_url(server), name="first")
    point = {"epoch": first.welcome["epoch"], "seq": first.welcome["seq"]}
    again = await RoomClient.connect(http, ws_url(server), name="again", since=point)
    try:
        assert first.welcome["resumed"] is False
        assert again.welcome["resumed"] is True
        assert again.welcome["seq"] == point["seq"]
    finally:
        await again.close()
        await first.close()


async def test_two_connections_of_one_token_subject_are_one_participant(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path), env=ENV)
    one = await join(http, server, token=token("ada"), name="one")
    two = await join(http, server, token=token("ada"), name="two")
    other = await join(http, server, token=token("bob"), name="other")
    try:
        ada = one.welcome["participant"]["id"]
        assert two.welcome["participant"]["id"] == ada
        assert other.welcome["participant"]["id"] != ada
        # Listed once however many tabs it has open.
        listed = [p["id"] for p in other.welcome["participants"]]
        assert sorted(listed) == sorted({ada, other.welcome["participant"]["id"]})
    finally:
        for client in (one, two, other):
            await client.close()


async def test_a_room_whose_store_fails_is_refused_internal_and_closed_1011(
    server: TestServer, http: aiohttp.ClientSession, db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A real store failure: the room's first load reads a table that is no longer there.
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("ALTER TABLE messages RENAME TO messages_gone")
        db.commit()
    with caplog.at_level(logging.ERROR, logger="rtserver.transports.ws"):
        async with http.ws_connect(ws_url(server, "broken"), protocols=("rt.v1.json",)) as ws:
            await ws.send_json({"type": "hello", "name": "unlucky"})
            error = await ws.receive_json(timeout=5)
            closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    assert (error["type"], error["code"], error["message"]) == (
        "error",
        "internal",
        "the room could not be opened; try again",
    )
    assert ws.close_code == 1011
    assert "messages" not in error["message"], "the store's detail stays in the server's log"
    [record] = [r for r in caplog.records if r.name == "rtserver.transports.ws"]
    assert record.getMessage() == "room broken could not be opened"
    assert record.exc_info is not None
    assert "messages" in str(record.exc_info[1])


async def test_a_participant_that_closes_is_gone_from_everyones_presence(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    stays = await RoomClient.connect(http, ws_url(server), name="stays")
    goes = await RoomClient.connect(http, ws_url(server), name="goes")
    try:
        both = await wait_presence(stays, names_are({"stays", "goes"}))
        await goes.close()
        await wait_presence(stays, names_are({"stays"}), after=both + 1)
    finally:
        await stays.close()
