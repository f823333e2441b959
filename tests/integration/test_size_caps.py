"""What one answer may weigh: history pages, welcomes, and the event logs held for resume."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from rtserver.config import Limits
from rtserver.keys import DIRECTORY, ROOM_MEMORY
from rtserver.protocol.frames import HistoryMessage, Participant
from rtserver.store.sqlite import SqliteStore
from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, fast_settings, is_type

ROOM = "heavy"
AUTHOR = Participant(id="p_author", name="author")


async def _fill(db_path: str, sizes: list[int]) -> list[str]:
    """Store one user message per size (its text that many characters); their ids in order."""
    store = await SqliteStore.open(db_path)
    ids = []
    try:
        for n, size in enumerate(sizes):
            message = HistoryMessage(
                id=f"m{n:03d}",
                role="user",
                text=chr(ord("a") + n % 26) * size,
                status="complete",
                ts=1_700_000_000_000 + n,
                author=AUTHOR,
                prompt_id=f"p{n}",
            )
            assert await store.start_turn(ROOM, message, f"p{n}", [])
            ids.append(message.id)
    finally:
        await store.close()
    return ids


async def _page(http: aiohttp.ClientSession, server: TestServer, **query: str) -> Any:
    url = server.make_url(f"/v1/rooms/{ROOM}/messages").with_query(query)
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


# --- history pages ---------------------------------------------------------------------------


async def test_a_history_page_holds_at_most_history_page_chars_and_pages_on(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    ids = await _fill(db_path, [3_000] * 10)
    server = await start_server(fast_settings(db_path, limits=Limits(history_page_chars=10_000)))
    seen: list[str] = []
    before: str | None = None
    pages = 0
    while True:
        query = {"limit": "200"} | ({"before": before} if before else {})
        body = await _page(http, server, **query)
        pages += 1
        assert 0 < sum(len(m["text"]) for m in body["messages"]) <= 10_000
        seen[:0] = [m["id"] for m in body["messages"]]
        before = body["next"]
        if before is None:
            break
        assert before == body["messages"][0]["id"]
    # Every message once, in order, three to a page.
    assert seen == ids
    assert pages == 4


async def test_a_message_larger_than_the_page_budget_comes_alone(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    ids = await _fill(db_path, [10, 5_000, 10])
    server = await start_server(fast_settings(db_path, limits=Limits(history_page_chars=1_000)))
    first = await _page(http, server)
    assert [m["id"] for m in first["messages"]] == ids[2:]
    second = await _page(http, server, before=first["next"])
    assert [m["id"] for m in second["messages"]] == [ids[1]]
    third = await _page(http, server, before=second["next"])
    assert [m["id"] for m in third["messages"]] == [ids[0]]
    assert third["next"] is None


@pytest.mark.parametrize(
    "limit", ["-1", "0", "201", str(10**20), "abc", "", "1e3", "²", " 5", "5 ", "0x10", "1.5"]
)
async def test_bad_page_limits_are_refused_with_a_named_error(
    server: TestServer, http: aiohttp.ClientSession, limit: str
) -> None:
    url = server.make_url("/v1/rooms/lobby/messages").with_query({"limit": limit})
    async with http.get(url) as response:
        assert response.status == 400
        body = await response.json()
    assert (body["type"], body["code"]) == ("error", "bad_frame")
    assert "limit" in body["message"]


@pytest.mark.parametrize("before", ["nope", "x" * 5_000, "m_\u0000", "'; DROP TABLE messages;--"])
async def test_an_unknown_before_is_not_found_and_quotes_at_most_a_little(
    server: TestServer, http: aiohttp.ClientSession, before: str
) -> None:
    url = server.make_url("/v1/rooms/lobby/messages").with_query({"before": before})
    async with http.get(url) as response:
        assert response.status == 404
        body = await response.json()
    assert body["code"] == "not_found"
    assert len(body["message"]) < 300


# --- welcome -----------------------------------------------------------------------------------


async def test_welcome_messages_are_the_newest_within_welcome_chars(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    ids = await _fill(db_path, [4_000] * 8)
    limits = Limits(welcome_chars=10_000, history_messages=50)
    server = await start_server(fast_settings(db_path, limits=limits))
    client = await RoomClient.connect(http, ws_url(server, ROOM))
    sse = await SseClient.connect(http, URL(str(server.make_url("/"))), ROOM)
    try:
        for welcome in (client.welcome, sse.welcome):
            assert [m["id"] for m in welcome["messages"]] == ids[-2:]
        # What the welcome leaves out is one page away.
        page = await _page(http, server, before=ids[-2])
        assert page["messages"][-1]["id"] == ids[-3]
        # The room's own memory is held to the same budget.
        room = server.app[DIRECTORY].rooms[ROOM]
        assert sum(len(m.text) for m in room.room._history) <= 10_000
    finally:
        sse.close()
        await client.close()


# --- event logs ----------------------------------------------------------------------------------


async def _chat(client: RoomClient, pid: str, text: str) -> None:
    await client.send({"type": "prompt", "id": pid, "text": text, "models": ["quick"]})
    message = await client.wait_for(is_type("message", prompt_id=pid))
    start = await client.wait_for(is_type("stream_start", reply_to=message["id"]))
    await client.wait_for(is_type("stream_end", stream=start["stream"]))


async def test_rooms_memory_stays_within_its_total_idle_rooms_going_first(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    total = 128 * 1024
    server = await start_server(fast_settings(db_path, limits=Limits(room_memory_bytes=total)))
    budget = server.app[ROOM_MEMORY]
    rooms = server.app[DIRECTORY].rooms
    # "watched" keeps a participant, so it stays open; "left" is left by everyone.
    watcher = await RoomClient.connect(http, ws_url(server, "watched"))
    await _chat(watcher, "w1", "a few words")
    watched_since = {"epoch": watcher.welcome["epoch"], "seq": watcher.room_events()[0]["seq"]}
    leaver = await RoomClient.connect(http, ws_url(server, "left"))
    await _chat(leaver, "l1", "other words")
    left_since = {"epoch": leaver.welcome["epoch"], "seq": leaver.room_events()[0]["seq"]}
    await leaver.close()
    # Right away, both logs still replay exactly.
    for room, since in (("watched", watched_since), ("left", left_since)):
        check = await RoomClient.connect(http, ws_url(server, room), since=since)
        assert check.welcome["resumed"] is True
        await check.close()

    busy = await RoomClient.connect(http, ws_url(server, "busy"))
    try:
        for n in range(15):
            await _chat(busy, f"b{n}", f"{n} " + "x" * 6_000)
            assert budget.total <= total
        assert 0 < sum(held.bytes for held in rooms["busy"].budgeted()) <= total
        # The room nobody was in went first, whole; the watched one is open, its log emptied.
        assert "left" not in rooms
        assert rooms["watched"].room.log.bytes == 0
    finally:
        await busy.close()
    try:
        late = await RoomClient.connect(http, ws_url(server, "watched"), since=watched_since)
        assert late.welcome["resumed"] is False
        assert late.welcome["epoch"] == watched_since["epoch"]
        assert late.welcome["seq"] == watcher.room_events()[-1]["seq"]
        await late.close()
        back = await RoomClient.connect(http, ws_url(server, "left"), since=left_since)
        assert back.welcome["resumed"] is False
        # Loaded again from the store: the history is all there.
        assert [m["prompt_id"] for m in back.welcome["messages"] if m["role"] == "user"] == ["l1"]
        await back.close()
    finally:
        await watcher.close()
