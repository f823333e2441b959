"""Typed application state (``web.AppKey``): what the handlers share, and nothing global."""

from __future__ import annotations

from aiohttp import web

from rtserver.catalog import Catalog
from rtserver.config import Settings
from rtserver.directory import RoomDirectory
from rtserver.ops.metrics import Metrics
from rtserver.ratelimit import KeyedBuckets
from rtserver.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CATALOG = web.AppKey("catalog", Catalog)
DIRECTORY = web.AppKey("directory", RoomDirectory)
CHAT_RATES = web.AppKey("chat_rates", KeyedBuckets)
METRICS = web.AppKey("metrics", Metrics)
