"""``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from rtserver.keys import BUS, METRICS, STORE

log = logging.getLogger(__name__)

#: Seconds the store has to answer a readiness probe.
STORE_PROBE_S: Final = 2.0


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text exposition."""
    body = request.app[METRICS].render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz_handler(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


async def readyz_handler(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 when the store (and the bus, with ``--redis``) answers, else 503."""
    try:
        async with asyncio.timeout(STORE_PROBE_S):
            await request.app[STORE].ping()
    except Exception:
        log.warning("readiness probe: the store does not answer", exc_info=True)
        return web.json_response({"status": "unavailable", "store": "down"}, status=503)
    if not request.app[BUS].healthy:
        # A node cut off from the others would serve rooms that no longer move: out of the
        # balancer until Redis answers again.
        return web.json_response(
            {"status": "unavailable", "store": "up", "bus": "down"}, status=503
        )
    return web.json_response({"status": "ready", "store": "up"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz_handler)
    app.router.add_get("/readyz", readyz_handler)
