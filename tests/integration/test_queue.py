"""The room's queue at the socket: prompts while streams run are stored, shown to everyone and
run in arrival order; withdraw, cancel-all and interrupt act on the queue as the spec says."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.integration.scripted_providers import Gate
from tests.support import Frame, RoomClient, fast_settings, is_type


async def _gated(
    start_server: ServerFactory, db_path: str, **limits: Any
) -> tuple[TestServer, Gate]:
    gate = Gate()
    settings = fast_settings(db_path, limits=Limits(**limits) if limits else None)
    server = await start_server(settings, providers={"slow": gate})
    return server, gate


async def _prompt(client: RoomClient, pid: str, text: str = "") -> Frame:
    await client.send({"type": "prompt", "id": pid, "text": text or pid, "models": ["slow"]})
    return await client.wait_for(is_type("message", prompt_id=pid))


async def _started(client: RoomClient, reply_to: str) -> Frame:
    return await client.wait_for(is_type("stream_start", reply_to=reply_to))


async def _messages(http: aiohttp.ClientSession, server: TestServer) -> list[Frame]:
    async with http.get(server.make_url("/v1/rooms/lobby/messages?limit=100")) as response:
        assert response.status == 200
        body = await response.json()
    return list(body["messages"])


def _started_order(client: RoomClient) -> list[str]:
    return [f["reply_to"] for f in client.of_type("stream_start")]


async def test_two_participants_prompting_at_once_both_run_in_arrival_order(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    await asyncio.gather(
        alice.send({"type": "prompt", "id": "a", "text": "alice asks", "models": ["slow"]}),
        bob.send({"type": "prompt", "id": "b", "text": "bob asks", "models": ["slow"]}),
    )
    first, second = sorted(
        [await alice.wait_for(is_type("message", prompt_id=p)) for p in ("a", "b")],
        key=lambda m: m["seq"],
    )
    assert "queued" not in first
    assert second["queued"] is True
    await _started(alice, first["id"])
    assert alice.of_type("error") == bob.of_type("error") == []
    gate.release()
    started = await bob.wait_for(is_type("unqueued", reason="started"))
    assert started["messages"] == [second["id"]]
    await _started(bob, second["id"])
    gate.release()
    await bob.wait_count("stream_end", 2)
    assert _started_order(alice) == _started_order(bob) == [first["id"], second["id"]]
    # The second turn's model saw the first turn, then the second prompt.
    assert [m.content for m in gate.requests[1].messages] == [
        first["text"],
        "started done",
        second["text"],
    ]
    assert alice.room_events() == bob.room_events()
    # Stored in the order they ran, and no longer queued.
    stored = [(m["role"], m.get("queued", False)) for m in await _messages(http, server)]
    assert stored == [("user", False), ("assistant", False)] * 2


async def test_three_queued_then_cancel_all_clears_the_queue_for_everyone(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    running = await _prompt(alice, "run")
    await _started(alice, running["id"])
    queued = [await _prompt(c, p) for c, p in ((bob, "q1"), (alice, "q2"), (bob, "q3"))]
    assert all(m["queued"] for m in queued)
    await bob.send({"type": "cancel", "id": "stop"})
    cleared = await alice.wait_for(is_type("unqueued", reason="cleared"))
    assert cleared["messages"] == [m["id"] for m in queued]
    await bob.wait_for(is_type("unqueued", reason="cleared"))
    end = await alice.wait_for(is_type("stream_end"))
    assert end["reason"] == "cancelled"
    # Nothing of the queue runs: the next prompt starts at once, not queued.
    after = await _prompt(bob, "after")
    assert "queued" not in after
    await _started(alice, after["id"])
    assert _started_order(alice) == [running["id"], after["id"]]
    gate.release()
    await alice.wait_count("stream_end", 2)
    history = {m["id"]: m for m in await _messages(http, server)}
    assert [history[m["id"]].get("withdrawn") for m in queued] == [True, True, True]
    assert all("queued" not in history[m["id"]] for m in queued)
    assert alice.of_type("error") == []


async def test_withdraw_own_prompt_others_forbidden_twice_not_found(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    running = await _prompt(alice, "run")
    mine = await _prompt(bob, "mine")
    kept = await _prompt(bob, "kept")
    await alice.send({"type": "withdraw", "id": "w1", "message": mine["id"]})
    refused = await alice.wait_for(is_type("error", ref="w1"))
    assert refused["code"] == "forbidden"
    await bob.send({"type": "withdraw", "id": "w2", "message": mine["id"]})
    withdrawn = await alice.wait_for(is_type("unqueued", reason="withdrawn"))
    assert withdrawn["messages"] == [mine["id"]]
    for ref, message in (("w3", mine["id"]), ("w4", running["id"]), ("w5", "m_nothing")):
        await bob.send({"type": "withdraw", "id": ref, "message": message})
        assert (await bob.wait_for(is_type("error", ref=ref)))["code"] == "not_found"
    assert bob.of_type("error")[0]["ref"] == "w3", "the withdraw itself was not answered"
    gate.release(2)
    await alice.wait_count("stream_end", 2)
    assert _started_order(alice) == [running["id"], kept["id"]]
    # Withdrawing did not spend the queue's place for anyone else, and it shows in history.
    history = {m["id"]: m for m in await _messages(http, server)}
    assert history[mine["id"]]["withdrawn"] is True
    assert "withdrawn" not in history[kept["id"]]


async def test_an_interrupt_with_text_goes_before_the_queue(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    running = await _prompt(alice, "run")
    await _started(alice, running["id"])
    waiting = await _prompt(bob, "waiting")
    await alice.send({"type": "interrupt", "id": "now", "text": "this first", "models": ["slow"]})
    first = await bob.wait_for(is_type("message", prompt_id="now"))
    assert "queued" not in first
    assert (await bob.wait_for(is_type("stream_end")))["reason"] == "interrupted"
    await _started(bob, first["id"])
    assert bob.of_type("unqueued") == []
    gate.release()
    await bob.wait_for(is_type("unqueued", reason="started"))
    await _started(bob, waiting["id"])
    gate.release()
    await bob.wait_count("stream_end", 3)
    assert _started_order(bob) == [running["id"], first["id"], waiting["id"]]


async def test_a_bare_interrupt_ends_the_streams_and_the_queue_runs_on(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    running = await _prompt(alice, "run")
    waiting = await _prompt(alice, "waiting")
    await _started(alice, running["id"])
    await alice.send({"type": "interrupt", "id": "i"})
    await _started(alice, waiting["id"])
    gate.release()
    await alice.wait_count("stream_end", 2)
    assert [e["reason"] for e in alice.of_type("stream_end")] == ["interrupted", "complete"]


async def test_a_repeated_prompt_id_while_queued_does_nothing(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    await _prompt(alice, "run")
    await _prompt(alice, "again")
    await alice.send({"type": "prompt", "id": "again", "text": "again", "models": ["slow"]})
    await alice.send({"type": "ping", "id": "after"})
    await alice.wait_for(is_type("pong", id="after"))
    assert len(alice.of_type("message")) == 2
    assert alice.of_type("error") == []
    gate.release(2)
    await alice.wait_count("stream_end", 2)


async def test_the_queue_is_bounded_and_a_turn_by_streams_per_room(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path, queue_max=2, streams_per_room=1)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    await alice.send({"type": "prompt", "id": "wide", "text": "x", "models": ["slow", "quick"]})
    wide = await alice.wait_for(is_type("error", ref="wide"))
    assert wide["code"] == "too_large"
    assert "1" in wide["message"]
    await _prompt(alice, "run")
    await _prompt(alice, "q1")
    await _prompt(alice, "q2")
    await alice.send({"type": "prompt", "id": "q3", "text": "q3", "models": ["slow"]})
    full = await alice.wait_for(is_type("error", ref="q3"))
    assert full["code"] == "busy"
    assert full["retry_after"] > 0
    assert "queue" in full["message"]
    gate.release()
    await alice.wait_for(is_type("unqueued", reason="started"))
    # A place came free: the refused prompt goes in now (it was not stored before).
    assert (await _prompt(alice, "q3"))["queued"] is True
    gate.release(3)
    await alice.wait_count("stream_end", 4)
    assert len(alice.of_type("message")) == 4


async def test_queued_prompts_run_after_a_restart(
    start_server: ServerFactory, store_db: str, http: aiohttp.ClientSession
) -> None:
    """In SQLite and in PostgreSQL alike."""
    server, _gate = await _gated(start_server, store_db)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    running = await _prompt(alice, "run")
    await _started(alice, running["id"])
    queued = [await _prompt(alice, p) for p in ("q1", "q2")]
    await alice.close()
    await server.close()

    again, gate = await _gated(start_server, store_db)
    bob = await RoomClient.connect(http, ws_url(again), name="bob")
    gate.release(2)
    # The second cannot start before the first ends, which waits for the release after bob's
    # welcome: bob sees it start and end live, whenever the first started.
    last = await _started(bob, queued[1]["id"])
    await bob.wait_for(is_type("stream_end", stream=last["stream"]))
    history = await _messages(http, again)
    replies = [m for m in history if m["role"] == "assistant"]
    assert [(r["reply_to"], r["status"]) for r in replies] == [
        (running["id"], "interrupted"),
        (queued[0]["id"], "complete"),
        (queued[1]["id"], "complete"),
    ]
    assert not any(m.get("queued") for m in history)


async def test_a_queued_prompt_for_a_model_gone_after_a_restart_is_withdrawn(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, _gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    running = await _prompt(alice, "run")
    await _started(alice, running["id"])
    await alice.send({"type": "prompt", "id": "q", "text": "q", "models": ["quick"]})
    queued = await alice.wait_for(is_type("message", prompt_id="q"))
    await alice.close()
    await server.close()

    only_slow = fast_settings(db_path)
    only_slow = msgspec.structs.replace(only_slow, models=only_slow.models[:1])
    again = await start_server(only_slow)
    bob = await RoomClient.connect(http, ws_url(again), name="bob")
    snapshot = {m["id"]: m for m in bob.welcome["messages"]}
    if snapshot[queued["id"]].get("queued"):
        await bob.wait_for(is_type("unqueued", reason="withdrawn"))
    history = {m["id"]: m for m in await _messages(http, again)}
    assert history[queued["id"]]["withdrawn"] is True


async def test_a_welcome_shows_the_queue_to_a_newcomer(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    await _prompt(alice, "run")
    waiting = await _prompt(alice, "waiting")
    carol = await RoomClient.connect(http, ws_url(server), name="carol")
    [entry] = [m for m in carol.welcome["messages"] if m.get("queued")]
    assert (entry["id"], entry["author"]["name"]) == (waiting["id"], "alice")
    gate.release(2)
    await carol.wait_for(is_type("unqueued", reason="started"))
    await alice.wait_count("stream_end", 2)


async def test_malformed_oversized_and_hostile_withdraws_get_clear_errors(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server, gate = await _gated(start_server, db_path, max_frame_bytes=2048)
    alice = await RoomClient.connect(http, ws_url(server), name="alice")
    await _prompt(alice, "run")
    waiting = await _prompt(alice, "waiting")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("no-message", {}, "bad_frame"),
        ("number", {"message": 7}, "bad_frame"),
        ("empty", {"message": ""}, "bad_frame"),
        ("long", {"message": "m" * 129}, "bad_frame"),
        ("list", {"message": [waiting["id"]]}, "bad_frame"),
        ("hostile", {"message": "\x00\u202e<script>'; DROP TABLE messages;--"}, "not_found"),
        ("prompt-id", {"message": "waiting"}, "not_found"),
    ]
    for ref, fields, code in cases:
        await alice.send({"type": "withdraw", "id": ref, **fields})
        error = await alice.wait_for(is_type("error", ref=ref))
        assert error["code"] == code, (ref, error)
        assert len(error["message"]) <= 300
    # Nothing was withdrawn, and the connection carries on.
    assert alice.of_type("unqueued") == []
    gate.release()
    await _started(alice, waiting["id"])
    # A frame over the limit closes the socket (1009), as any frame would; the room goes on.
    await alice.send({"type": "withdraw", "id": "big", "message": "m" * 4000})
    assert await alice.wait_closed() == 1009
    bob = await RoomClient.connect(http, ws_url(server), name="bob")
    gate.release()
    await bob.wait_for(is_type("stream_end"))
