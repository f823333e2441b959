"""The room's queue across nodes: a prompt sent to another node waits in the running turn's."""

from __future__ import annotations

import aiohttp

from tests.conftest import ServerFactory
from tests.integration.cluster.nodes import start_nodes, urls
from tests.support import RoomClient, is_type


async def test_a_prompt_on_another_node_waits_its_turn_and_runs_after(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = await start_nodes(start_server, 2, db=postgres_url, prefix=bus_prefix)
    url_a, url_b = urls([first, second], "queue")
    a = await RoomClient.connect(http, url_a, name="a")
    b = await RoomClient.connect(http, url_b, name="b")
    await a.send({"type": "prompt", "id": "q1", "text": "first", "models": ["slow"]})
    first_start = await b.wait_for(is_type("stream_start"))
    await b.send({"type": "prompt", "id": "q2", "text": "second", "models": ["quick"]})
    await b.send({"type": "prompt", "id": "q3", "text": "third", "models": ["quick"]})
    queued = await a.wait_for(is_type("message", prompt_id="q2"))
    assert queued.get("queued") is True
    third = await a.wait_for(is_type("message", prompt_id="q3"))
    # Its author withdraws one from the node it is on; the turn's node holds the queue.
    await b.send({"type": "withdraw", "id": "w1", "message": third["id"]})
    gone = await a.wait_for(is_type("unqueued", reason="withdrawn"))
    assert gone["messages"] == [third["id"]]
    await a.wait_for(is_type("stream_end", stream=first_start["stream"]), timeout=30)
    started = await b.wait_for(is_type("unqueued", reason="started"), timeout=20)
    assert started["messages"] == [queued["id"]]
    second_start = await b.wait_for(is_type("stream_start", reply_to=queued["id"]))
    await b.wait_for(is_type("stream_end", stream=second_start["stream"]), timeout=20)
    await a.wait_for(is_type("stream_end", stream=second_start["stream"]), timeout=20)
    assert a.room_events() == b.room_events()
    # A joiner anywhere sees the queue's outcome in its snapshot.
    late = await RoomClient.connect(http, url_b, name="late")
    messages = {m["id"]: m for m in late.welcome["messages"]}
    assert messages[third["id"]].get("withdrawn") is True
    assert not messages[queued["id"]].get("queued")
    for client in (a, b, late):
        await client.close()
