"""Typed application state (``web.AppKey``): what the handlers share, and nothing global."""

from __future__ import annotations

from aiohttp import web

from rtserver.catalog import Catalog
from rtserver.config import Settings
from rtserver.directory import RoomDirectory
from rtserver.memory import MemoryBudget
from rtserver.ratelimit import KeyedBuckets
from rtserver.slots import Slots
from rtserver.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CATALOG = web.AppKey("catalog", Catalog)
DIRECTORY = web.AppKey("directory", RoomDirectory)
CHAT_RATES = web.AppKey("chat_rates", KeyedBuckets)
#: Running generations of the whole server (``[limits] streams_max``): rooms and /v1/chat.
STREAM_SLOTS = web.AppKey("stream_slots", Slots)
#: The memory rooms hold together for resume and welcomes (``[limits] room_memory_bytes``).
ROOM_MEMORY = web.AppKey("room_memory", MemoryBudget)
