"""The Python client of rtserver rooms.

    from rtserver.client import connect

    async with connect("http://127.0.0.1:8080", "lobby", name="ada") as room:
        await room.prompt("Why is the sea salty?", models=["demo", "demo-fast"])
        async for event in room:
            ...

Events are the typed frames of :mod:`rtserver.protocol.frames` plus :class:`StatusChange`.
"""

from rtserver.client.backoff import Backoff
from rtserver.client.connection import RoomClient, connect, room_url
from rtserver.client.events import (
    ClientError,
    ConnectFailed,
    ConnectionState,
    Event,
    Refused,
    StatusChange,
)
from rtserver.client.state import Reply, RoomState, Turn
from rtserver.client.sync import SyncRoom, connect_sync

__all__ = [
    "Backoff",
    "ClientError",
    "ConnectFailed",
    "ConnectionState",
    "Event",
    "Refused",
    "Reply",
    "RoomClient",
    "RoomState",
    "StatusChange",
    "SyncRoom",
    "Turn",
    "connect",
    "connect_sync",
    "room_url",
]
