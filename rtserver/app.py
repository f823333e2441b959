"""The aiohttp application: routes, and state opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from aiohttp import web
from opentelemetry.trace import TracerProvider

from rtserver.catalog import Catalog
from rtserver.config import Settings
from rtserver.directory import RoomDirectory
from rtserver.keys import CATALOG, CHAT_RATES, DIRECTORY, METRICS, SETTINGS, STORE
from rtserver.ops import health
from rtserver.ops.metrics import Metrics
from rtserver.providers.base import Provider
from rtserver.providers.registry import build_provider
from rtserver.ratelimit import KeyedBuckets
from rtserver.store.sqlite import SqliteStore
from rtserver.transports import chat, http, sse, ws

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    settings: Settings,
    *,
    providers: Mapping[str, Provider] | None = None,
    env: Mapping[str, str] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> web.Application:
    """Build the server. ``providers`` replaces the provider of the models it names;
    spans go to ``tracer_provider``, else to OpenTelemetry's global provider."""
    app = web.Application(
        middlewares=[http.api_errors], client_max_size=settings.limits.max_frame_bytes
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics(tracer_provider=tracer_provider)
    # /v1/chat has no participant to count prompts against: count them per client address.
    app[CHAT_RATES] = KeyedBuckets(
        capacity=settings.limits.prompts_per_minute,
        per_seconds=60.0,
        clock=time.monotonic,
        max_keys=10_000,
    )
    app.cleanup_ctx.append(_open_store)
    app.cleanup_ctx.append(_catalog_opener(providers or {}, os.environ if env is None else env))
    app.cleanup_ctx.append(_open_directory)
    # WebSockets must be closed before aiohttp waits for handlers to finish.
    app.on_shutdown.append(_close_rooms)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", http.models_handler)
    app.router.add_get("/v1/rooms/{room}/messages", http.messages_handler)
    app.router.add_get("/v1/rooms/{room}/ws", ws.websocket_handler)
    app.router.add_get("/v1/rooms/{room}/events", sse.events_handler)
    app.router.add_post("/v1/rooms/{room}/frames", sse.frames_handler)
    app.router.add_post("/v1/chat", chat.chat_handler)
    health.add_routes(app)
    app.router.add_get("/", _index)
    app.router.add_get("/r/{room}", _index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)


async def _index(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.exists():
        return web.Response(
            text="rtserver is running; the web app is not built (run `make web`).",
            content_type="text/plain",
        )
    return web.FileResponse(index)


async def _open_store(app: web.Application) -> AsyncIterator[None]:
    store = await SqliteStore.open(app[SETTINGS].db_path)
    recovered = await store.recover()
    if recovered:
        log.info("marked %d replies left streaming by the last run as interrupted", recovered)
    app[STORE] = store
    yield
    await store.close()


def _catalog_opener(
    overrides: Mapping[str, Provider], env: Mapping[str, str]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_catalog(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        catalog = Catalog.build(
            settings.models,
            defaults=settings.default_model_ids(),
            make_provider=lambda spec: build_provider(spec, env),
            overrides=overrides,
        )
        app[CATALOG] = catalog
        yield
        await catalog.aclose()

    return open_catalog


async def _open_directory(app: web.Application) -> AsyncIterator[None]:
    directory = RoomDirectory(
        store=app[STORE], catalog=app[CATALOG], limits=app[SETTINGS].limits, metrics=app[METRICS]
    )
    app[DIRECTORY] = directory
    yield
    await directory.close()


async def _close_rooms(app: web.Application) -> None:
    await app[DIRECTORY].close()
