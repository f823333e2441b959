"""The room's queue, withdraw and regenerate over the SSE fallback: POSTed frames act as over
a WebSocket, and their refusals come back as HTTP statuses with the error frame as body."""

from __future__ import annotations

from typing import Any

import aiohttp

from rtserver.config import Limits
from tests.conftest import ServerFactory, ws_url
from tests.integration.scripted_providers import Gate
from tests.integration.sse_client import SseClient
from tests.support import RoomClient, fast_settings, is_type


async def test_queue_withdraw_and_regenerate_through_posted_frames(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    gate = Gate()
    limits = Limits(queue_max=2, max_frame_bytes=1024)
    server = await start_server(fast_settings(db_path, limits=limits), providers={"slow": gate})
    sse = await SseClient.connect(http, server.make_url("/"), name="sse")
    bob = await RoomClient.connect(http, ws_url(server), name="bob")

    async def post(frame: dict[str, Any] | bytes, status: int, code: str | None = None) -> Any:
        got, body, headers = await sse.post(frame)
        assert got == status, body
        if code is not None:
            assert (body["type"], body["code"]) == ("error", code), body
        return body, headers

    await post({"type": "prompt", "id": "run", "text": "run", "models": ["slow"]}, 202)
    running = await sse.wait_for(is_type("message", prompt_id="run"))
    await bob.send({"type": "prompt", "id": "bobs", "text": "bob's", "models": ["slow"]})
    bobs = await sse.wait_for(is_type("message", prompt_id="bobs"))
    assert bobs["queued"] is True
    await post({"type": "prompt", "id": "mine", "text": "mine", "models": ["slow"]}, 202)
    mine = await sse.wait_for(is_type("message", prompt_id="mine"))
    assert mine["queued"] is True

    _, headers = await post(
        {"type": "prompt", "id": "full", "text": "x", "models": ["slow"]}, 503, "busy"
    )
    assert int(headers["Retry-After"]) >= 1
    await post({"type": "withdraw", "id": "w1", "message": bobs["id"]}, 403, "forbidden")
    await post({"type": "withdraw", "id": "w2", "message": "m_none"}, 404, "not_found")
    await post({"type": "withdraw", "id": "w3"}, 400, "bad_frame")
    await post({"type": "withdraw", "id": "w4", "message": "m" * 2000}, 413, "too_large")
    await post({"type": "withdraw", "id": "w5", "message": mine["id"]}, 202)
    withdrawn = await bob.wait_for(is_type("unqueued", reason="withdrawn"))
    assert withdrawn["messages"] == [mine["id"]]
    await post({"type": "withdraw", "id": "w6", "message": mine["id"]}, 404, "not_found")

    args = {"type": "regenerate", "reply_to": running["id"]}
    await post({**args, "id": "g1", "model": "nope"}, 400, "unknown_model")
    await post({**args, "id": "g2", "model": "quick"}, 404, "not_found")
    await post({**args, "id": "g3", "model": "slow"}, 202)
    gate.release(3)
    await bob.wait_count("stream_end", 3)
    starts = bob.of_type("stream_start")
    assert [s["reply_to"] for s in starts] == [running["id"], bobs["id"], running["id"]]
    assert starts[2]["replaces"] == starts[0]["message"]
    await sse.wait_until(lambda: len(sse.of_type("stream_end")) == 3)
    assert sse.room_events() == bob.room_events()
