"""A stamping demo model's `emitted_us` reaches every participant, over both codecs."""

from __future__ import annotations

import time

import aiohttp

from rtserver.config import ModelSpec
from tests.conftest import ServerFactory, ws_url
from tests.support import RoomClient, fast_settings


async def test_token_frames_of_a_stamping_model_carry_emitted_us(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    models = (
        ModelSpec(id="stamped", provider="demo", tokens_per_s=400, first_token_s=0, stamp=True),
        ModelSpec(id="plain", provider="demo", tokens_per_s=400, first_token_s=0, default=True),
    )
    server = await start_server(fast_settings(db_path, models=models))
    clients = [
        await RoomClient.connect(http, ws_url(server), protocol=protocol)
        for protocol in ("rt.v1.json", "rt.v1.msgpack")
    ]
    try:
        sent_us = time.time_ns() // 1000
        await clients[0].send(
            {"type": "prompt", "id": "p1", "text": "glaciers", "models": ["stamped", "plain"]}
        )
        for client in clients:
            await client.wait_count("stream_end", 2)
        streams = {f["model"]: f["stream"] for f in clients[0].of_type("stream_start")}
        for client in clients:
            tokens = client.of_type("token")
            stamped = [f["emitted_us"] for f in tokens if f["stream"] == streams["stamped"]]
            plain = [f for f in tokens if f["stream"] == streams["plain"]]
            assert stamped
            assert plain
            assert all(sent_us <= s <= time.time_ns() // 1000 for s in stamped)
            assert stamped == sorted(stamped)
            assert not any("emitted_us" in f for f in plain)
    finally:
        for client in clients:
            await client.close()
