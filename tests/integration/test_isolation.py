"""Isolation: many rooms, participants acting at random (prompts, cancels, interrupts, typing,
reconnects) over WebSocket (JSON and MessagePack) and SSE; no frame of one room ever reaches
another. Every id a client receives (messages, streams, participants, prompt ids) is checked
against what its own room stored and who joined it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import ServerFactory, ws_url
from tests.integration.sse_client import SseClient
from tests.support import Frame, RoomClient, fast_settings

ROOMS = [f"iso-{n}" for n in range(6)]
ACTIONS = 400
QUICK_ONLY = fast_settings("unused").models[1:]


@dataclass
class Seat:
    """One participant slot of a room, over one transport; it may reconnect."""

    room: str
    kind: str  # "rt.v1.json", "rt.v1.msgpack" or "sse"
    connections: list[RoomClient | SseClient] = field(default_factory=list)

    @property
    def live(self) -> RoomClient | SseClient:
        return self.connections[-1]

    def frames(self) -> list[Frame]:
        out: list[Frame] = []
        for connection in self.connections:
            if isinstance(connection, RoomClient):
                out.append(connection.welcome)
            out.extend(connection.frames)
        return out

    async def connect(self, server: TestServer, http: aiohttp.ClientSession) -> None:
        since = self._since()
        if self.kind == "sse":
            text = f"{since['epoch']}:{since['seq']}" if since else None
            self.connections.append(
                await SseClient.connect(http, server.make_url("/"), self.room, since=text)
            )
        else:
            self.connections.append(
                await RoomClient.connect(
                    http, ws_url(server, self.room), name=self.room, since=since, protocol=self.kind
                )
            )

    def _since(self) -> dict[str, Any] | None:
        if not self.connections:
            return None
        frames = self.frames()
        welcome = [f for f in frames if f["type"] == "welcome"][-1]
        seqs = [f["seq"] for f in frames if "seq" in f and f["type"] != "welcome"]
        return {"epoch": welcome["epoch"], "seq": max([welcome["seq"], *seqs])}

    async def send(self, frame: Frame) -> None:
        live = self.live
        if isinstance(live, SseClient):
            await live.post(frame)
        else:
            await live.send(frame)

    async def close(self) -> None:
        live = self.live
        if isinstance(live, SseClient):
            live.close()
        else:
            await live.close()


async def _act(seat: Seat, rng: random.Random, n: int, server: TestServer, http: Any) -> None:
    choice = rng.random()
    if choice < 0.25:
        await seat.send({"type": "prompt", "id": f"{seat.room}:p{n}", "text": f"tell {n}"})
    elif choice < 0.35:
        await seat.send({"type": "interrupt", "id": f"{seat.room}:i{n}", "text": f"no, {n}"})
    elif choice < 0.5:
        await seat.send({"type": "cancel"})
    elif choice < 0.7:
        await seat.send({"type": "typing", "active": rng.random() < 0.5})
    elif choice < 0.8:
        await seat.close()
        await seat.connect(server, http)
    else:
        await seat.send({"type": "ping", "id": f"{seat.room}:g{n}"})


def _room_truth(messages: list[Frame]) -> tuple[set[str], set[str], set[str]]:
    ids = {m["id"] for m in messages}
    streams = {m["stream"] for m in messages if m.get("stream")}
    prompts = {m["prompt_id"] for m in messages if m.get("prompt_id")}
    return ids, streams, prompts


def _check(frame: Frame, room: str, ids: set[str], streams: set[str], people: set[str]) -> None:
    kind = frame["type"]
    if kind == "welcome":
        assert frame["room"] == room
        assert {p["id"] for p in frame["participants"]} <= people
        assert {m["id"] for m in frame["messages"]} <= ids
        assert {s["stream"] for s in frame["streams"]} <= streams
    elif kind == "message":
        assert frame["id"] in ids
        assert frame["author"]["id"] in people
        assert frame["prompt_id"].startswith(f"{room}:")
    elif kind in ("stream_start", "token", "tool_call", "stream_end"):
        assert frame["stream"] in streams
        if kind == "stream_start":
            assert {frame["message"], frame["reply_to"]} <= ids
    elif kind == "presence_diff":
        assert {p["id"] for p in frame["changed"]} <= people
        assert set(frame["left"]) <= people
    elif kind == "error" and "ref" in frame:
        assert frame["ref"].startswith(f"{room}:")
    elif kind == "pong":
        assert frame["id"].startswith(f"{room}:") or frame["id"] == "sync"


async def _until_all_ended(observer: RoomClient) -> None:
    """Wait (bounded) until every stream the observer saw start has ended."""

    def all_ended(_: Frame) -> bool:
        started = [f["stream"] for f in observer.of_type("stream_start")]
        return all(observer.ended(stream) is not None for stream in started)

    await observer.wait_for(all_ended)


@pytest.mark.timeout(180)
async def test_no_frame_of_one_room_reaches_another(
    start_server: ServerFactory, db_path: str, http: aiohttp.ClientSession
) -> None:
    server = await start_server(fast_settings(db_path, models=QUICK_ONLY))
    rng = random.Random(14)
    seats = [Seat(room, kind) for room in ROOMS for kind in ("rt.v1.json", "rt.v1.msgpack", "sse")]
    observers = {room: await RoomClient.connect(http, ws_url(server, room)) for room in ROOMS}
    for seat in seats:
        await seat.connect(server, http)
    for n in range(ACTIONS):
        await _act(rng.choice(seats), rng, n, server, http)
    for observer in observers.values():
        await observer.send({"type": "cancel"})
        await observer.send({"type": "ping", "id": "sync"})
    for observer in observers.values():
        await _until_all_ended(observer)

    for room in ROOMS:
        async with http.get(server.make_url(f"/v1/rooms/{room}/messages?limit=200")) as response:
            ids, streams, prompts = _room_truth((await response.json())["messages"])
        assert all(p.startswith(f"{room}:") for p in prompts)
        room_seats = [s for s in seats if s.room == room]
        everyone = [*(f for s in room_seats for f in s.frames()), observers[room].welcome]
        people = {f["participant"]["id"] for f in everyone if f["type"] == "welcome"}
        frames = [*everyone, *observers[room].frames]
        for frame in frames:
            _check(frame, room, ids, streams, people)
        assert any(f["type"] == "token" for f in frames), f"{room} saw no stream at all"
    for seat in seats:
        await seat.close()
    for observer in observers.values():
        await observer.close()
