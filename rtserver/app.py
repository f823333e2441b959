"""The aiohttp application: routes, and state opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import suppress

from aiohttp import web
from opentelemetry.trace import TracerProvider

from rtserver.auth.access import Access, check_open_mode
from rtserver.auth.limits import ClientLimits
from rtserver.auth.origins import OriginPolicy
from rtserver.auth.tokens import RoomTokens, secret_from
from rtserver.bus.control import Control, Request
from rtserver.bus.counters import ClusterCounters
from rtserver.bus.redis import RedisBus
from rtserver.bus.selection import open_bus
from rtserver.config import Settings
from rtserver.keys import (
    ACCESS,
    BUS,
    CATALOG,
    CLIENT_LIMITS,
    DIRECTORY,
    METRICS,
    ORIGINS,
    ROOM_MEMORY,
    SETTINGS,
    SETUP_GATE,
    STORE,
    STREAM_SLOTS,
    TOOLBOX,
)
from rtserver.ops import health
from rtserver.ops.collector import govern_collections
from rtserver.ops.descriptors import reserved_descriptors
from rtserver.ops.metrics import Metrics
from rtserver.providers.base import Provider
from rtserver.providers.catalog import Catalog
from rtserver.providers.registry import build_provider
from rtserver.room.memory import MemoryBudget
from rtserver.store.retention import Retention
from rtserver.store.selection import open_store
from rtserver.tools.toolbox import Toolbox
from rtserver.transports import chat, http, sse, ws
from rtserver.transports.fairness import SetupGate
from rtserver.transports.http_errors import json_http_errors
from rtserver.transports.static import STATIC_DIR, static_handler
from rtserver.turns.directory import RoomDirectory, check_room_id
from rtserver.turns.shared import Cluster, SharedTurns
from rtserver.turns.slots import Slots
from rtserver.turns.turns import STREAMS_RETRY_S, Turns

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    providers: Mapping[str, Provider] | None = None,
    env: Mapping[str, str] | None = None,
    tracer_provider: TracerProvider | None = None,
    own_process: bool = False,
) -> web.Application:
    """Build the server. ``providers`` replaces the provider of the models it names;
    spans go to ``tracer_provider``, else to OpenTelemetry's global provider.

    ``own_process`` is for a process that is the server: full garbage collections wait until
    connections stop pouring in (:mod:`rtserver.ops.collector`), and the descriptor table is
    sized once for every connection to come (:mod:`rtserver.ops.descriptors`). It changes the
    whole process.
    """
    app = web.Application(
        # json_http_errors runs inside api_errors, so its answers get the API's headers too.
        middlewares=[http.api_errors, json_http_errors],
        client_max_size=settings.limits.max_frame_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics(tracer_provider=tracer_provider)
    env = os.environ if env is None else env
    app[ACCESS] = _access(settings, env)
    app[ORIGINS] = OriginPolicy(
        allowed=settings.allowed_origins, any_host_name=not app[ACCESS].open
    )
    app[CLIENT_LIMITS] = ClientLimits(settings.limits)
    app[SETUP_GATE] = SetupGate()
    app[STREAM_SLOTS] = Slots(
        capacity=settings.limits.streams_max, what="running streams", retry_after=STREAMS_RETRY_S
    )
    app[ROOM_MEMORY] = MemoryBudget(max_bytes=settings.limits.room_memory_bytes)
    # Built here, before anything listens, so that a function tool that cannot be imported is a
    # ConfigError of `serve` itself; its MCP servers start with the app.
    app[TOOLBOX] = Toolbox.build(settings.tools)
    app.cleanup_ctx.append(_open_bus)
    app.cleanup_ctx.append(_open_store)
    app.cleanup_ctx.append(_run_retention)
    app.cleanup_ctx.append(_catalog_opener(providers or {}, env))
    app.cleanup_ctx.append(_open_tools)
    app.cleanup_ctx.append(_open_directory)
    if own_process:
        app.cleanup_ctx.append(reserved_descriptors)
        # Last, so that what every other context opened is frozen as start-up's.
        app.cleanup_ctx.append(govern_collections)
    # WebSockets must be closed before aiohttp waits for handlers to finish.
    app.on_shutdown.append(_close_rooms)
    _add_routes(app)
    return app


def _access(settings: Settings, env: Mapping[str, str]) -> Access:
    """Tokens when a secret is set; open mode, only where it is safe or asked for, if not."""
    secret = secret_from(env, settings.auth.secret_env)
    check_open_mode(host=settings.host, secret=secret, open_on_purpose=settings.auth.open)
    tokens = RoomTokens(secret=secret) if secret is not None else None
    return Access(tokens=tokens, trusted_proxies=settings.trusted_proxies)


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
    app.router.add_get("/static/{path:.+}", static_handler())


async def _index(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.exists():
        return web.Response(
            text="rtserver is running; the web app is not built (run `make web`).",
            content_type="text/plain",
        )
    return web.FileResponse(index)


async def _open_bus(app: web.Application) -> AsyncIterator[None]:
    bus = await open_bus(app[SETTINGS])
    app[BUS] = bus
    yield
    await bus.close()


async def _open_store(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[SETTINGS].db_path)
    try:
        # Nodes share the store: a node starting must not end the replies others stream. A
        # dead node's replies are ended room by room, once its turn lease has expired.
        recovered = 0 if app[BUS].shared else await store.recover()
    except BaseException:
        await store.close()
        raise
    if recovered:
        log.info("marked %d replies left streaming by the last run as interrupted", recovered)
    app[STORE] = store
    yield
    await store.close()


async def _run_retention(app: web.Application) -> AsyncIterator[None]:
    """Delete messages older than ``[store] retain_days`` while the server runs (0: never)."""
    days = app[SETTINGS].retain_days
    task = None
    if days > 0:
        task = asyncio.create_task(Retention(store=app[STORE], retain_days=days).run())
    yield
    if task is not None:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


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


async def _open_tools(app: web.Application) -> AsyncIterator[None]:
    """Start the MCP servers (in the background); stop them when the app stops."""
    toolbox = app[TOOLBOX]
    await toolbox.start()
    yield
    await toolbox.aclose()


async def _open_directory(app: web.Application) -> AsyncIterator[None]:
    bus = app[BUS]
    control: Control | None = None
    make: Callable[[str], Turns] | None = None
    if isinstance(bus, RedisBus):
        control = Control(bus)
        cluster = Cluster(bus=bus, control=control, counters=ClusterCounters(bus))

        def make(room_id: str) -> Turns:
            return SharedTurns(
                room_id,
                cluster=cluster,
                store=app[STORE],
                catalog=app[CATALOG],
                limits=app[SETTINGS].limits,
                streams=app[STREAM_SLOTS],
                memory=app[ROOM_MEMORY],
                metrics=app[METRICS],
                toolbox=app[TOOLBOX],
            )

    directory = RoomDirectory(
        store=app[STORE],
        catalog=app[CATALOG],
        limits=app[SETTINGS].limits,
        streams=app[STREAM_SLOTS],
        memory=app[ROOM_MEMORY],
        metrics=app[METRICS],
        make=make,
        toolbox=app[TOOLBOX],
    )
    app[DIRECTORY] = directory
    if control is not None:
        control.serve(lambda request: _forwarded(directory, request))
    yield
    await directory.close()
    if control is not None:
        await control.close()


async def _forwarded(directory: RoomDirectory, request: Request) -> None:
    """A frame another node sent to this one, which runs (or is to run) its room's turn."""
    turns = await directory.get(check_room_id(request.room))
    assert isinstance(turns, SharedTurns)
    await turns.act_forwarded(request)


async def _close_rooms(app: web.Application) -> None:
    await app[DIRECTORY].close()
