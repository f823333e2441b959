"""Rooms over real loopback WebSockets: concurrent tagged streams, cancel, interrupt, history."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer

from tests.conftest import ServerFactory, ws_url
from tests.integration.scripted_providers import Endless
from tests.support import RoomClient, fast_settings, is_type


async def _prompt(client: RoomClient, text: str, models: list[str], pid: str = "p1") -> str:
    await client.send({"type": "prompt", "id": pid, "text": text, "models": models})
    message = await client.wait_for(is_type("message", prompt_id=pid))
    return str(message["id"])


async def _streams(client: RoomClient, reply_to: str, count: int) -> dict[str, str]:
    """model -> stream id of the replies to ``reply_to``, once all have started."""
    await client.wait_for(
        lambda f: (
            len([s for s in client.of_type("stream_start") if s["reply_to"] == reply_to]) >= count
        )
    )
    return {
        s["model"]: s["stream"] for s in client.of_type("stream_start") if s["reply_to"] == reply_to
    }


async def test_two_participants_see_same_interleaved_streams(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    message_id = await _prompt(alice, "Tell me about rivers and mountains", ["slow", "quick"])
    streams = await _streams(alice, message_id, 2)
    for stream in streams.values():
        await alice.wait_for(is_type("stream_end", stream=stream))
        await bob.wait_for(is_type("stream_end", stream=stream))

    assert alice.room_events() == bob.room_events()
    seqs = [f["seq"] for f in alice.room_events()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    ends = {f["stream"]: f for f in alice.of_type("stream_end")}
    for stream in streams.values():
        end = ends[stream]
        assert end["reason"] == "complete"
        assert end["usage"]["output_tokens"] == len(
            [t for t in alice.of_type("token") if t["stream"] == stream]
        )
        assert end["ttft_ms"] >= 0
        assert end["duration_ms"] >= end["ttft_ms"]
        assert end["tokens_per_s"] > 0
    assert "rivers" in alice.texts()[streams["slow"]]


async def test_the_streams_of_a_turn_run_at_once(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    done = asyncio.Event()
    endless = {m: Endless(done, interval=0.01) for m in ("slow", "quick")}
    server = await start_server(fast_settings(db_path), providers=endless)
    client = await RoomClient.connect(http, ws_url(server))
    message_id = await _prompt(client, "together", ["slow", "quick"])
    streams = await _streams(client, message_id, 2)

    def tokens(stream: str) -> int:
        return len([t for t in client.of_type("token") if t["stream"] == stream])

    # Each has sent several tokens and neither has ended: they run side by side.
    await client.wait_for(lambda _: all(tokens(s) >= 3 for s in streams.values()))
    assert client.of_type("stream_end") == []
    done.set()
    for stream in streams.values():
        assert (await client.wait_for(is_type("stream_end", stream=stream)))["reason"] == (
            "complete"
        )


async def test_json_and_msgpack_participants_get_the_same_events(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    text = await RoomClient.connect(http, ws_url(server))
    binary = await RoomClient.connect(http, ws_url(server), protocol="rt.v1.msgpack")
    assert binary.ws.protocol == "rt.v1.msgpack"
    assert text.ws.protocol == "rt.v1.json"
    message_id = await _prompt(binary, "msgpack and json together", ["quick"])
    stream = (await _streams(text, message_id, 1))["quick"]
    await text.wait_for(is_type("stream_end", stream=stream))
    await binary.wait_for(is_type("stream_end", stream=stream))
    assert text.room_events() == binary.room_events()


async def test_cancel_one_stream_while_the_other_completes(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    alice = await RoomClient.connect(http, ws_url(server))
    bob = await RoomClient.connect(http, ws_url(server))
    message_id = await _prompt(alice, "cancel the slow one", ["slow", "quick"])
    streams = await _streams(bob, message_id, 2)
    await bob.wait_for(is_type("token", stream=streams["slow"]))
    await bob.send({"type": "cancel", "stream": streams["slow"], "id": "c1"})
    slow_end = await alice.wait_for(is_type("stream_end", stream=streams["slow"]))
    quick_end = await alice.wait_for(is_type("stream_end", stream=streams["quick"]))
    assert slow_end["reason"] == "cancelled"
    assert quick_end["reason"] == "complete"
    # Nothing of the cancelled stream comes after its end.
    events = alice.room_events()
    end_at = events.index(slow_end)
    assert not [f for f in events[end_at + 1 :] if f.get("stream") == streams["slow"]]
    assert len(alice.texts()[streams["slow"]]) < len(alice.texts()[streams["quick"]])

    # Cancelling it again, or a stream that never was, is answered with not_found.
    await bob.send({"type": "cancel", "stream": streams["slow"], "id": "c2"})
    error = await bob.wait_for(is_type("error", ref="c2"))
    assert error["code"] == "not_found"


async def test_cancel_by_model_and_cancel_all(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await RoomClient.connect(http, ws_url(server))
    message_id = await _prompt(client, "first turn", ["slow", "quick"])
    streams = await _streams(client, message_id, 2)
    await client.send({"type": "cancel", "model": "slow"})
    end = await client.wait_for(is_type("stream_end", stream=streams["slow"]))
    assert end["reason"] == "cancelled"
    await client.wait_for(is_type("stream_end", stream=streams["quick"]))

    await client.send({"type": "cancel", "model": "slow", "id": "again"})
    assert (await client.wait_for(is_type("error", ref="again")))["code"] == "not_found"
    await client.send({"type": "cancel", "model": "nope", "id": "bad"})
    assert (await client.wait_for(is_type("error", ref="bad")))["code"] == "unknown_model"


async def test_cancel_all_ends_every_running_stream(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    # Streams that only a cancel can end, so that each end reason is known in advance.
    done = asyncio.Event()
    endless = {m: Endless(done, interval=0.01) for m in ("slow", "quick")}
    server = await start_server(fast_settings(db_path), providers=endless)
    client = await RoomClient.connect(http, ws_url(server))
    message_id = await _prompt(client, "second turn", ["slow", "quick"], pid="p2")
    streams = await _streams(client, message_id, 2)
    for stream in streams.values():
        await client.wait_for(is_type("token", stream=stream))
    await client.send({"type": "cancel"})
    ends = [await client.wait_for(is_type("stream_end", stream=s)) for s in streams.values()]
    assert [e["reason"] for e in ends] == ["cancelled", "cancelled"]


async def test_interrupt_with_redirect(server: TestServer, http: aiohttp.ClientSession) -> None:
    client = await RoomClient.connect(http, ws_url(server))
    first = await _prompt(client, "talk about oceans", ["slow"])
    old = (await _streams(client, first, 1))["slow"]
    await client.wait_for(is_type("token", stream=old))
    await client.send(
        {"type": "interrupt", "id": "p2", "text": "no, talk about deserts", "models": ["slow"]}
    )
    end = await client.wait_for(is_type("stream_end", stream=old))
    assert end["reason"] == "interrupted"
    redirect = await client.wait_for(is_type("message", prompt_id="p2"))
    events = client.room_events()
    assert events.index(end) < events.index(redirect)
    new = (await _streams(client, redirect["id"], 1))["slow"]
    await client.wait_for(lambda f: "deserts" in client.texts().get(new, ""))
    await client.send({"type": "cancel", "stream": new})
    await client.wait_for(is_type("stream_end", stream=new))


async def test_prompt_while_streaming_is_queued_and_repeat_id_is_ignored(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await RoomClient.connect(http, ws_url(server))
    first = await _prompt(client, "one", ["slow"])
    stream = (await _streams(client, first, 1))["slow"]
    await client.send({"type": "prompt", "id": "p1", "text": "one", "models": ["slow"]})
    await client.send({"type": "prompt", "id": "p9", "text": "two", "models": ["slow"]})
    queued = await client.wait_for(is_type("message", prompt_id="p9"))
    assert queued["queued"] is True
    await client.send({"type": "cancel"})
    await client.wait_for(is_type("stream_end", stream=stream))
    cleared = await client.wait_for(is_type("unqueued"))
    assert (cleared["reason"], cleared["messages"]) == ("cleared", [queued["id"]])
    assert len(client.of_type("message")) == 2
    assert client.of_type("error") == []


async def test_late_joiner_sees_cancelled_partial_text_and_running_streams(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    alice = await RoomClient.connect(http, ws_url(server))
    message_id = await _prompt(alice, "partial text please", ["slow", "quick"])
    streams = await _streams(alice, message_id, 2)
    await alice.wait_for(is_type("stream_end", stream=streams["quick"]))
    await alice.wait_for(lambda f: len(alice.texts().get(streams["slow"], "")) > 20)

    mid = await RoomClient.connect(http, ws_url(server), name="mid")
    running = {s["stream"]: s for s in mid.welcome["streams"]}
    assert set(running) == {streams["slow"]}
    head = mid.welcome["seq"]
    upto = "".join(
        f["text"]
        for f in alice.room_events()
        if f["type"] == "token" and f["stream"] == streams["slow"] and f["seq"] <= head
    )
    assert running[streams["slow"]]["text"] == upto

    await alice.send({"type": "cancel", "stream": streams["slow"]})
    await alice.wait_for(is_type("stream_end", stream=streams["slow"]))
    partial = alice.texts()[streams["slow"]]
    # The mid-stream joiner ends with the same text, live tokens after its snapshot.
    await mid.wait_for(is_type("stream_end", stream=streams["slow"]))
    assert upto + mid.texts().get(streams["slow"], "") == partial

    late = await RoomClient.connect(http, ws_url(server), name="late")
    history = {m["id"]: m for m in late.welcome["messages"]}
    reply = next(m for m in history.values() if m.get("stream") == streams["slow"])
    assert reply["status"] == "cancelled"
    assert reply["text"] == partial
    assert history[message_id]["text"] == "partial text please"
    assert late.welcome["streams"] == []


async def test_restart_keeps_all_history(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    first = await start_server(fast_settings(db_path))
    client = await RoomClient.connect(http, ws_url(first, "keep"))
    message_id = await _prompt(client, "remember this", ["quick"])
    stream = (await _streams(client, message_id, 1))["quick"]
    await client.wait_for(is_type("stream_end", stream=stream))
    text = client.texts()[stream]
    await client.close()
    await first.close()

    second = await start_server(fast_settings(db_path))
    again = await RoomClient.connect(http, ws_url(second, "keep"))
    assert again.welcome["epoch"] != client.welcome["epoch"]
    messages = again.welcome["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["text"] == "remember this"
    assert messages[1]["text"] == text
    assert messages[1]["status"] == "complete"
    async with http.get(second.make_url("/v1/rooms/keep/messages")) as response:
        body = await response.json()
    assert [m["id"] for m in body["messages"]] == [m["id"] for m in messages]
    assert body["next"] is None


async def test_prompt_params_reach_the_model(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    client = await RoomClient.connect(http, ws_url(server))
    await client.send(
        {
            "type": "prompt",
            "id": "short",
            "text": "be brief",
            "models": ["quick"],
            "params": {"max_tokens": 5},
        }
    )
    end = await client.wait_for(is_type("stream_end"))
    assert end["reason"] == "length"
    assert end["usage"]["output_tokens"] == 5
    assert len(client.of_type("token")) == 5
