"""Rooms that span nodes: participants spread over them see one room."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from tests.conftest import ServerFactory
from tests.integration.cluster.nodes import start_nodes, urls
from tests.support import RoomClient, is_type

Frame = dict[str, Any]


def sequence(client: RoomClient) -> list[Frame]:
    """The room events a client received, as they would compare across clients."""
    return client.room_events()


async def prompt(client: RoomClient, text: str, models: list[str], prompt_id: str) -> list[str]:
    """Send a prompt and return the streams it started, in order."""
    await client.send({"type": "prompt", "id": prompt_id, "text": text, "models": models})
    message = await client.wait_for(is_type("message", prompt_id=prompt_id))
    starts = [
        await client.wait_for(is_type("stream_start", reply_to=message["id"], model=model))
        for model in models
    ]
    return [s["stream"] for s in starts]


async def test_participants_on_three_nodes_see_one_sequence(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    nodes = await start_nodes(start_server, 3, db=postgres_url, prefix=bus_prefix)
    a, b, c = [await RoomClient.connect(http, url, name=n) for url, n in
               zip(urls(nodes, "span"), "abc", strict=True)]  # fmt: skip
    streams = await prompt(a, "first", ["quick"], "q1")
    for client in (a, b, c):
        await client.wait_for(is_type("stream_end", stream=streams[0]))
    # A prompt from another node, while nothing runs: that node runs the turn.
    streams2 = await prompt(c, "second", ["quick", "slow"], "q2")
    for client in (a, b, c):
        for stream in streams2:
            await client.wait_for(is_type("stream_end", stream=stream), timeout=20)
    assert sequence(a) == sequence(b) == sequence(c)
    seqs = [f["seq"] for f in sequence(a)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert a.texts() == b.texts() == c.texts()
    assert all(a.texts()[s] for s in streams + streams2)
    for client in (a, b, c):
        await client.close()


async def test_a_joiner_on_another_node_gets_the_same_snapshot_mid_stream(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = await start_nodes(start_server, 2, db=postgres_url, prefix=bus_prefix)
    url_a, url_b = urls([first, second], "snap")
    a = await RoomClient.connect(http, url_a, name="a")
    (stream,) = await prompt(a, "tell me", ["slow"], "q1")
    await a.wait_count("token", 3)
    late = await RoomClient.connect(http, url_b, name="late")
    welcome = late.welcome
    assert [s["stream"] for s in welcome["streams"]] == [stream]
    assert {m["prompt_id"] for m in welcome["messages"] if m["role"] == "user"} == {"q1"}
    await late.wait_for(is_type("stream_end", stream=stream), timeout=20)
    await a.wait_for(is_type("stream_end", stream=stream), timeout=20)
    # The snapshot's text, then the tokens after its seq, make the whole reply.
    (running,) = welcome["streams"]
    assert running["text"] + late.texts().get(stream, "") == a.texts()[stream]
    after = [f for f in sequence(a) if f["seq"] > welcome["seq"]]
    assert sequence(late) == after
    await a.close()
    await late.close()


async def test_a_client_resumes_on_another_node_with_no_gap_or_duplicate(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = await start_nodes(start_server, 2, db=postgres_url, prefix=bus_prefix)
    url_a, url_b = urls([first, second], "resume")
    watcher = await RoomClient.connect(http, url_a, name="watcher")
    mover = await RoomClient.connect(http, url_a, name="mover")
    (stream,) = await prompt(watcher, "go on", ["slow"], "q1")
    await mover.wait_count("token", 4)
    last = mover.room_events()[-1]["seq"]
    epoch = mover.welcome["epoch"]
    await mover.close()
    back = await RoomClient.connect(http, url_b, name="mover", since={"epoch": epoch, "seq": last})
    assert back.welcome["resumed"] is True
    await back.wait_for(is_type("stream_end", stream=stream), timeout=20)
    await watcher.wait_for(is_type("stream_end", stream=stream), timeout=20)
    seen = [f for f in mover.room_events() if f["seq"] <= last] + back.room_events()
    assert seen == sequence(watcher)
    await watcher.close()
    await back.close()


async def test_a_cancel_on_another_node_stops_the_stream(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = await start_nodes(start_server, 2, db=postgres_url, prefix=bus_prefix)
    url_a, url_b = urls([first, second], "cancel")
    runner = await RoomClient.connect(http, url_a, name="runner")
    stopper = await RoomClient.connect(http, url_b, name="stopper")
    (stream,) = await prompt(runner, "a long one", ["slow"], "q1")
    await stopper.wait_count("token", 2)
    started = time.perf_counter()
    await stopper.send({"type": "cancel", "id": "c1", "stream": stream})
    end = await stopper.wait_for(is_type("stream_end", stream=stream))
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"cross-node cancel to stream_end on the canceller's node: {elapsed_ms:.1f} ms")
    assert end["reason"] == "cancelled"
    assert (await runner.wait_for(is_type("stream_end", stream=stream)))["reason"] == "cancelled"
    # A cancel of nothing, from the other node, is answered there as on one node.
    await stopper.send({"type": "cancel", "id": "c2", "stream": "s_none"})
    error = await stopper.wait_for(is_type("error", ref="c2"))
    assert error["code"] == "not_found"
    await runner.close()
    await stopper.close()


async def test_presence_spans_nodes(
    start_server: ServerFactory, postgres_url: str, bus_prefix: str, http: aiohttp.ClientSession
) -> None:
    first, second = await start_nodes(start_server, 2, db=postgres_url, prefix=bus_prefix)
    url_a, url_b = urls([first, second], "who")
    ada = await RoomClient.connect(http, url_a, name="ada")
    bob = await RoomClient.connect(http, url_b, name="bob")
    await ada.wait_for(lambda f: f["type"] == "presence_diff" and f["count"] == 2)
    assert bob.welcome["participant_count"] == 2
    await bob.close()
    await ada.wait_for(lambda f: f["type"] == "presence_diff" and f["count"] == 1)
    await ada.close()
