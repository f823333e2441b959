"""Typed application state (``web.AppKey``): what the handlers share, and nothing global."""

from __future__ import annotations

from aiohttp import web

from rtserver.auth.access import Access
from rtserver.auth.limits import ClientLimits
from rtserver.auth.origins import OriginPolicy
from rtserver.bus.base import Bus
from rtserver.config import Settings
from rtserver.ops.metrics import Metrics
from rtserver.providers.catalog import Catalog
from rtserver.room.memory import MemoryBudget
from rtserver.store.base import Store
from rtserver.tools.toolbox import Toolbox
from rtserver.transports.fairness import SetupGate
from rtserver.turns.directory import RoomDirectory
from rtserver.turns.slots import Slots

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CATALOG = web.AppKey("catalog", Catalog)
DIRECTORY = web.AppKey("directory", RoomDirectory)
ACCESS = web.AppKey("access", Access)
ORIGINS = web.AppKey("origins", OriginPolicy)
CLIENT_LIMITS = web.AppKey("client_limits", ClientLimits)
#: Running generations of the whole server (``[limits] streams_max``): rooms and /v1/chat.
STREAM_SLOTS = web.AppKey("stream_slots", Slots)
#: The memory rooms hold together for resume and welcomes (``[limits] room_memory_bytes``).
ROOM_MEMORY = web.AppKey("room_memory", MemoryBudget)
METRICS = web.AppKey("metrics", Metrics)
#: How rooms reach their copies on other nodes (``--redis``), or the in-process bus.
BUS = web.AppKey("bus", Bus)
#: The tools models may call: ``builtin`` and the ``[[tools]]`` entries, started with the app.
TOOLBOX = web.AppKey("toolbox", Toolbox)
#: Connection set-ups let through per event-loop turn, for every WebSocket and event stream.
SETUP_GATE = web.AppKey("setup_gate", SetupGate)
